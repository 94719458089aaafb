"""The measures page (docs/concepts/sod-measures.md) states what ``refimpl.sodmetrics`` computes.

Every number the page writes about its examples (the tables under the two figures, the rankings, the
oddities) is recomputed here from ``paper_notes/figures/sod_measures.py`` and compared with the page's
text at the digits shown; the figures render.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from paper_notes.figures import render_svg
from paper_notes.figures import sod_measures as figures
from refimpl import sodmetrics

from conftest import ROOT

PAGE = (ROOT / "docs/concepts/sod-measures.md").read_text(encoding="utf-8")


def _row(label: str, s: sodmetrics.Scores) -> str:
    """The page's table row of one prediction: the measures in the page's column order, 4 decimals."""
    values = (s.mae, s.s_measure, s.weighted_f, s.adaptive_f, s.mean_f, s.max_f, s.adaptive_e, s.mean_e, s.max_e)
    return f"| {label} | " + " | ".join(f"{v:.4f}" for v in values) + " |"


@pytest.fixture(scope="module")
def same_mae() -> dict[str, sodmetrics.Scores]:
    return {key: figures.scores(example.pred) for key, example in figures.same_mae_maps().items()}


@pytest.fixture(scope="module")
def curves() -> dict[str, sodmetrics.Scores]:
    return {key: figures.scores(example.pred) for key, example in figures.curve_maps().items()}


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_every_measures_figure_renders_as_an_svg_with_its_text_as_paths(name: str) -> None:
    svg = render_svg(figures.FIGURES[name])
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"<text" not in svg


def test_the_six_predictions_have_exactly_the_same_mae_240_over_4096(same_mae) -> None:
    gt = figures.ground_truth()
    assert gt.shape == (64, 64) and int(gt.sum()) == 727
    for s in same_mae.values():
        assert s.mae == pytest.approx(figures.WRONG / gt.size, abs=1e-15)
    assert f"{figures.WRONG / gt.size:.4f}" == "0.0586" and "$240 / 4096 = 0.0586$" in PAGE


@pytest.mark.parametrize("key", ["dim", "hole", "bottom", "noise", "near", "far"])
def test_the_same_mae_table_on_the_page_is_what_refimpl_computes(same_mae, key: str) -> None:
    label = figures.same_mae_maps()[key].label
    assert _row(label, same_mae[key]) in PAGE


@pytest.mark.parametrize("key", ["shifted", "blurred"])
def test_the_curves_table_on_the_page_is_what_refimpl_computes(curves, key: str) -> None:
    label = figures.curve_maps()[key].label
    assert _row(label, curves[key]) in PAGE


def test_the_numbers_drawn_under_each_map_are_those_of_its_row_on_the_page(same_mae) -> None:
    fig = figures.same_mae_figure()
    axes = fig.axes[1:]
    maps = figures.same_mae_maps()
    assert [ax.get_title() for ax in axes] == [example.label for example in maps.values()]
    for ax, key in zip(axes, maps):
        drawn = re.findall(r"[0-9]+\.[0-9]{4}", ax.get_xlabel())
        s = same_mae[key]
        assert drawn == [f"{v:.4f}" for v in (s.mae, s.s_measure, s.weighted_f, s.max_f, s.mean_e)]
        assert _row(maps[key].label, s) in PAGE


def _best_and_worst(same_mae, field: str) -> tuple[set[str], set[str]]:
    values = {key: round(getattr(s, field), 4) for key, s in same_mae.items()}
    return ({k for k, v in values.items() if v == max(values.values())},
            {k for k, v in values.items() if v == min(values.values())})


def test_the_rankings_the_page_states_hold(same_mae) -> None:
    assert _best_and_worst(same_mae, "s_measure") == ({"dim"}, {"bottom"})
    assert _best_and_worst(same_mae, "weighted_f") == ({"hole"}, {"far"})
    assert _best_and_worst(same_mae, "mean_f")[1] == {"dim"}
    assert _best_and_worst(same_mae, "mean_e") == ({"noise"}, {"dim"})
    assert same_mae["dim"].max_f == 1.0
    # S, weighted F and mean E pick three different winners
    winners = [_best_and_worst(same_mae, f)[0] for f in ("s_measure", "weighted_f", "mean_e")]
    assert all(len(w) == 1 for w in winners) and len(set.union(*winners)) == 3
    # the same extra blob, near or far: the same F, weighted F about 0.04 apart
    near, far = same_mae["near"], same_mae["far"]
    assert near.max_f == far.max_f and f"{near.max_f:.4f}" == "0.7975"
    assert round(near.weighted_f - far.weighted_f, 2) == 0.04
    # the noise map comes after the two maps with a piece missing on max F
    assert same_mae["noise"].max_f < same_mae["hole"].max_f == same_mae["bottom"].max_f
    assert "0.8067 对 0.8979" in PAGE and "从 0.7944 到 0.9209" in PAGE


def test_the_dim_map_is_blank_above_170_of_255_and_the_ground_truth_below(same_mae) -> None:
    dim = figures.same_mae_maps()["dim"].pred
    level = int(dim.max() * 255)
    assert level == 170 and f"{dim.max():.2f}" == "0.67"
    f = sodmetrics.f_measure(dim, figures.ground_truth())
    assert np.all(f.curve[level + 1:] == 0) and np.all(f.curve[1:level + 1] == 1.0)


def test_the_dim_map_read_back_from_a_png_is_stretched_into_the_ground_truth() -> None:
    png = np.round(figures.same_mae_maps()["dim"].pred * 255).astype(np.uint8)
    s = figures.scores(png)
    assert s.mae == 0 and f"{s.s_measure:.4f}" == "1.0000"
    assert "MAE 变成 0，结构度量变成 1.0000" in PAGE


def test_an_all_black_map_on_the_ellipse_has_mae_0_1775() -> None:
    mae = sodmetrics.mean_absolute_error(np.zeros((64, 64)), figures.ground_truth())
    assert f"{mae:.4f}" == "0.1775" and "全黑图的 MAE 是 0.1775" in PAGE


def test_sharp_but_shifted_beats_blurred_on_mae_and_weighted_f_and_loses_on_s_and_max_f(curves) -> None:
    sharp, blurred = curves["shifted"], curves["blurred"]
    assert sharp.mae < blurred.mae and sharp.weighted_f > blurred.weighted_f
    assert sharp.s_measure < blurred.s_measure and sharp.max_f < blurred.max_f
    assert abs(sharp.mean_f - blurred.mean_f) < 0.001  # "几乎一样"
    assert f"{sharp.max_f:.4f} 对 {blurred.max_f:.4f}" in PAGE  # the key point


ODDITIES = [  # (key, the value at the digits the page shows, text on the page)
    ("e_perfect_16", "1.0667", "4 × 4 的图上是 1.0667"),
    ("wf_black_5x5", "0.6326", "加权 F 值 0.6326"),
    ("s_grey_6x6", "0.4000", "灰图结构度量是 0.4000"),
    ("s_black_6x6", "0.4444", "全黑图是 0.4444"),
    ("s_corner_perfect", "1.0000", "结构度量 1.0000"),
    ("f_black_max", "0.1398", "最大 F 值 0.1398"),
]


@pytest.mark.parametrize("key, shown, text", ODDITIES, ids=[o[0] for o in ODDITIES])
def test_each_oddity_on_the_page_is_what_refimpl_computes(key: str, shown: str, text: str) -> None:
    assert f"{figures.oddities()[key].value:.4f}" == shown
    assert text in PAGE


def test_the_oddities_explanations_hold_exactly() -> None:
    odd = figures.oddities()
    assert odd["e_perfect_16"].value == pytest.approx(16 / 15, abs=1e-12)
    assert f"{320 * 320 / (320 * 320 - 1):.5f}" == "1.00001" and f"{4096 / 4095:.4f}" == "1.0002"
    assert odd["wf_black_10x10"].value == 0.0
    assert odd["s_black_6x6"].value == pytest.approx(0.5 * 8 / 9, abs=1e-12)  # region part 0, object part 8/9
    assert odd["s_grey_6x6"].value == pytest.approx(0.5 * 0.8, abs=1e-12)  # O(0.5) = 0.8
    assert odd["f_black_max"].value == pytest.approx(1.3 * (4 / 36) / (0.3 * 4 / 36 + 1), abs=1e-12)
    with pytest.raises(ValueError, match="expected at least 2"):
        sodmetrics.e_measure(np.zeros((1, 1)), np.zeros((1, 1), bool))


def test_the_anchor_agrees_on_the_border_oddity_and_gives_nan_and_1_over_eps_where_the_page_says() -> None:
    theirs = pytest.importorskip("py_sod_metrics")
    five = np.zeros((5, 5), np.uint8)
    five[1:4, 1:4] = 255
    wf = theirs.WeightedFmeasure()
    wf.step(np.zeros((5, 5), np.uint8), five)
    assert f"{wf.get_results()['wfm']:.4f}" == "0.6326"
    corner = np.zeros((5, 5), np.uint8)
    corner[4, 4] = 255
    sm = theirs.Smeasure()
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        sm.step(corner, corner)
    assert math.isnan(sm.get_results()["sm"])
    em = theirs.Emeasure()
    em.step(np.full((1, 1), 255, np.uint8), np.full((1, 1), 255, np.uint8))
    assert f"{em.get_results()['em']['adp']:.1e}" == "4.5e+15" and r"4.5 \times 10^{15}" in PAGE
