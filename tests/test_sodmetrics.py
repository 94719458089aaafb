"""The SOD/COD measures against py_sod_metrics 1.6.2 (the toolkits' code): every measure, every map, within 1e-10.

py_sod_metrics takes uint8 maps with ``normalize=True`` (divided by 255, stretched; masks > 128) and
float maps in [0, 1] with bool masks with ``normalize=False``; ours reads the dtype. Its curves run
from threshold 255 down to 0, ours from 0 up, hence the ``[::-1]``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refimpl import sodmetrics as ours

# The anchor: `make` installs it (pyproject.toml, [tool.paper-notes] no-deps-anchors); a machine without it,
# such as a CUDA image running only the gpu-marked tests, skips this file instead of failing to collect it.
theirs = pytest.importorskip("py_sod_metrics")
pytestmark = pytest.mark.filterwarnings("ignore:This class will be removed")  # py_sod_metrics.Fmeasure

TOL = 1e-10
FIXED = settings(max_examples=60, deadline=None, derandomize=True, database=None)  # the same maps every run


# ----------------------------------------------------------------------------------------------
# Maps: hypothesis draws a shape, a mask of one of the kinds the formulas special-case, and a map
# ----------------------------------------------------------------------------------------------

MASKS = ("blob", "noise", "one pixel", "corner pixel", "all background", "all object", "line at the border")


def mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    gt = np.zeros((h, w), bool)
    if kind == "blob":
        y, x = rng.integers(0, h), rng.integers(0, w)
        gt[y:y + rng.integers(1, h + 1), x:x + rng.integers(1, w + 1)] = True
    elif kind == "noise":
        gt = rng.random((h, w)) < rng.uniform(0.05, 0.95)
    elif kind == "one pixel":
        gt[rng.integers(0, h), rng.integers(0, w)] = True
    elif kind == "corner pixel":
        gt[(0, h - 1)[rng.integers(0, 2)], (0, w - 1)[rng.integers(0, 2)]] = True
    elif kind == "all object":
        gt[:] = True
    elif kind == "line at the border":
        gt[:, w - 1] = True
    return gt


@st.composite
def float_maps(draw: st.DrawFn, max_side: int = 24) -> tuple[np.ndarray, np.ndarray]:
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    gt = mask(draw(st.sampled_from(MASKS)), h, w, np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    values = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 0.3, 1 / 255, 254 / 255]), st.floats(0, 1))
    kind = draw(st.sampled_from(["any", "constant", "near the mask"]))
    if kind == "constant":
        pred = np.full((h, w), draw(values))
    elif kind == "near the mask":
        pred = np.clip(gt + draw(hnp.arrays(np.float64, (h, w), elements=st.floats(-0.4, 0.4))), 0, 1)
    else:
        pred = draw(hnp.arrays(np.float64, (h, w), elements=values))
    return pred, gt


@st.composite
def uint8_maps(draw: st.DrawFn, max_side: int = 24) -> tuple[np.ndarray, np.ndarray]:
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    gt = mask(draw(st.sampled_from(MASKS)), h, w, np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    low, span = draw(st.integers(0, 255)), draw(st.sampled_from([256, 40, 2, 1]))  # narrow ranges get stretched
    grey = draw(hnp.arrays(np.int64, (h, w), elements=st.integers(0, 255)))
    pred = np.minimum(low + grey % span, 255).astype(np.uint8)
    edge = draw(st.sampled_from([255, 200]))  # 200: an anti-aliased mask edge, read as object (> 128)
    return pred, np.where(gt, edge, 0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Comparison with py_sod_metrics, one map at a time
# ----------------------------------------------------------------------------------------------

def anchor(pred: np.ndarray, gt: np.ndarray, normalize: bool) -> dict[str, dict]:
    results = {}
    for name, cls in (("mae", theirs.MAE), ("f", theirs.Fmeasure), ("wf", theirs.WeightedFmeasure),
                      ("s", theirs.Smeasure), ("e", theirs.Emeasure)):
        accumulator = cls()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty quadrant (S-measure)
            accumulator.step(pred, gt, normalize=normalize)
        results[name] = accumulator.get_results()
    return results


def empty_quadrant(gt: np.ndarray) -> bool:
    """Whether the S-measure's split at the object's centroid leaves a quadrant of zero area."""
    if gt.all() or not gt.any():
        return False
    cy, cx = np.argwhere(gt).mean(axis=0).round() + 1
    return cy == gt.shape[0] or cx == gt.shape[1]


def s_measure_without_empty_quadrants(pred: np.ndarray, gt: np.ndarray) -> float:
    """py_sod_metrics' own S-measure parts, with a quadrant of zero area left out instead of giving NaN."""
    s = theirs.Smeasure()
    h, w = gt.shape
    cy, cx = (int(c) + 1 for c in np.argwhere(gt).mean(axis=0).round())
    region = sum(s.ssim(pred[r, c], gt[r, c]) * pred[r, c].size / (h * w)
                 for r in (slice(0, cy), slice(cy, h)) for c in (slice(0, cx), slice(cx, w)) if pred[r, c].size)
    return max(0.0, 0.5 * s.object(pred, gt) + 0.5 * region)


def assert_equal_to_anchor(pred: np.ndarray, gt: np.ndarray, normalize: bool) -> None:
    expected = anchor(pred, gt, normalize)
    got_pred, got_gt = ours.prepare(pred, gt)
    assert abs(ours.mean_absolute_error(pred, gt) - expected["mae"]["mae"]) <= TOL
    f = ours.f_measure(pred, gt)
    assert abs(f.adaptive - expected["f"]["fm"]["adp"]) <= TOL
    np.testing.assert_allclose(f.curve, expected["f"]["fm"]["curve"][::-1], rtol=0, atol=TOL)
    np.testing.assert_allclose(f.precision, expected["f"]["pr"]["p"][::-1], rtol=0, atol=TOL)
    np.testing.assert_allclose(f.recall, expected["f"]["pr"]["r"][::-1], rtol=0, atol=TOL)
    assert abs(ours.weighted_f_measure(pred, gt) - expected["wf"]["wfm"]) <= TOL
    s = ours.s_measure(pred, gt)
    if empty_quadrant(got_gt):  # the one departure: theirs is NaN there
        assert math.isnan(expected["s"]["sm"])
        assert abs(s - s_measure_without_empty_quadrants(got_pred, got_gt)) <= TOL
    else:
        assert abs(s - expected["s"]["sm"]) <= TOL
    assert 0 <= s <= 1
    if gt.size > 1:  # the other departure: a one-pixel map is refused (theirs divides by N - 1 = 0)
        e = ours.e_measure(pred, gt)
        assert abs(e.adaptive - expected["e"]["em"]["adp"]) <= TOL
        np.testing.assert_allclose(e.curve, expected["e"]["em"]["curve"][::-1], rtol=0, atol=TOL)


@FIXED
@given(float_maps())
def test_every_measure_equals_py_sod_metrics_on_float_maps(maps: tuple[np.ndarray, np.ndarray]) -> None:
    assert_equal_to_anchor(*maps, normalize=False)


@FIXED
@given(uint8_maps())
def test_uint8_maps_are_divided_by_255_and_stretched_and_masks_cut_at_128_as_the_toolkits_read_pngs(
        maps: tuple[np.ndarray, np.ndarray]) -> None:
    assert_equal_to_anchor(*maps, normalize=True)


EDGE_MASKS = {name: (lambda name=name: mask(name, 7, 9, np.random.default_rng(3))) for name in MASKS}
EDGE_MASKS |= {"centre pixel": lambda: np.pad(np.ones((1, 1), bool), ((3, 3), (4, 4))),
               "bottom-right pixel": lambda: np.pad(np.ones((1, 1), bool), ((6, 0), (8, 0)))}
CONSTANTS = (0.0, 1.0, 0.5, 0.3)


@pytest.mark.parametrize("value", CONSTANTS)
@pytest.mark.parametrize("kind", sorted(EDGE_MASKS))
def test_constant_predictions_on_every_kind_of_mask_equal_py_sod_metrics(kind: str, value: float) -> None:
    assert_equal_to_anchor(np.full((7, 9), value), EDGE_MASKS[kind](), normalize=False)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (2, 3), (3, 17), (17, 3), (1, 40)])
@pytest.mark.parametrize("kind", MASKS)
def test_tiny_and_thin_maps_equal_py_sod_metrics(shape: tuple[int, int], kind: str) -> None:
    rng = np.random.default_rng(sum(shape))
    gt = mask(kind, *shape, rng)
    for pred in (rng.random(shape), gt.astype(float), 1.0 - gt, np.full(shape, 0.5)):
        assert_equal_to_anchor(pred, gt, normalize=False)


def test_a_perfect_map_scores_best_and_its_inverse_worst() -> None:
    gt = mask("blob", 30, 40, np.random.default_rng(0))
    best, worst = ours.Measures().step(gt.astype(float), gt), ours.Measures().step(1.0 - gt, gt)
    assert best.mae == 0 and worst.mae == 1
    assert best.max_f == best.adaptive_f == 1 and worst.max_f < 0.5
    assert best.s_measure == pytest.approx(1) and worst.s_measure == 0
    assert best.weighted_f == pytest.approx(1) and worst.weighted_f < 0.05  # not 0: the Gaussian meets the border


# ----------------------------------------------------------------------------------------------
# Over a data set: the accumulators average as py_sod_metrics' classes do
# ----------------------------------------------------------------------------------------------

@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(st.lists(uint8_maps(max_side=16), min_size=1, max_size=6))
def test_dataset_means_equal_py_sod_metrics_accumulators(dataset: list[tuple[np.ndarray, np.ndarray]]) -> None:
    dataset = [(p, g) for p, g in dataset if p.size > 1 and not empty_quadrant(g > 128)]
    if not dataset:
        return
    mine = {name: cls() for name, cls in (("mae", ours.MeanAbsoluteError), ("f", ours.Fmeasure),
                                          ("wf", ours.WeightedFmeasure), ("s", ours.Smeasure), ("e", ours.Emeasure))}
    reference = {"mae": theirs.MAE(), "f": theirs.Fmeasure(), "wf": theirs.WeightedFmeasure(),
                 "s": theirs.Smeasure(), "e": theirs.Emeasure()}
    measures = ours.Measures()
    for pred, gt in dataset:
        for name in mine:
            mine[name].step(pred, gt)
            reference[name].step(pred, gt)
        measures.step(pred, gt)
    r = {name: acc.get_results() for name, acc in reference.items()}
    f, e = mine["f"].get_results(), mine["e"].get_results()
    assert abs(mine["mae"].get_results() - r["mae"]["mae"]) <= TOL
    assert abs(mine["wf"].get_results() - r["wf"]["wfm"]) <= TOL
    assert abs(mine["s"].get_results() - r["s"]["sm"]) <= TOL
    assert abs(f.adaptive - r["f"]["fm"]["adp"]) <= TOL and abs(e.adaptive - r["e"]["em"]["adp"]) <= TOL
    np.testing.assert_allclose(f.curve, r["f"]["fm"]["curve"][::-1], rtol=0, atol=TOL)
    np.testing.assert_allclose(e.curve, r["e"]["em"]["curve"][::-1], rtol=0, atol=TOL)
    # a paper's mean and max F / E: over the curve averaged per threshold over the images
    assert abs(f.max - r["f"]["fm"]["curve"].max()) <= TOL and abs(e.mean - r["e"]["em"]["curve"].mean()) <= TOL
    scores = measures.get_results()
    assert scores == ours.Scores(mine["s"].get_results(), mine["wf"].get_results(), mine["mae"].get_results(),
                                 e.adaptive, e.mean, e.max, f.adaptive, f.mean, f.max)
    assert mine["mae"].count == measures.mae.count == len(dataset)


# ----------------------------------------------------------------------------------------------
# The formulas as written: the counting shortcuts equal the pixel-wise definitions
# ----------------------------------------------------------------------------------------------

def e_measure_pixelwise(cut: np.ndarray, gt: np.ndarray) -> float:
    """The E-measure's definition, pixel by pixel (with the official code's special cases and N - 1)."""
    m, g = cut.astype(float), gt.astype(float)
    if not gt.any():
        phi = 1 - m
    elif gt.all():
        phi = m
    else:
        phi_m, phi_g = m - m.mean(), g - g.mean()
        xi = 2 * phi_g * phi_m / (phi_g**2 + phi_m**2 + ours.EPS)
        phi = (1 + xi) ** 2 / 4
    return phi.sum() / (gt.size - 1 + ours.EPS)


@FIXED
@given(float_maps())
def test_curves_at_threshold_t_are_the_measures_of_the_map_cut_at_floor_255_s_ge_t(
        maps: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = maps
    if pred.size < 2:
        return
    f, e = ours.f_measure(pred, gt), ours.e_measure(pred, gt)
    level = np.floor(pred * 255)
    for t in (0, 1, 77, 128, 254, 255):
        cut = level >= t
        tp = np.count_nonzero(cut & gt)
        p, r = tp / max(cut.sum(), 1), tp / max(gt.sum(), 1)
        assert f.curve[t] == pytest.approx(0 if tp == 0 else 1.3 * p * r / (0.3 * p + r), abs=1e-12)
        assert e.curve[t] == pytest.approx(e_measure_pixelwise(cut, gt), abs=1e-12)
    assert e.adaptive == pytest.approx(e_measure_pixelwise(pred >= min(2 * pred.mean(), 1), gt), abs=1e-12)


# ----------------------------------------------------------------------------------------------
# Inputs: what is accepted, and one line for what is not
# ----------------------------------------------------------------------------------------------

def test_tensors_bool_maps_and_float_masks_give_the_numbers_of_the_equivalent_arrays() -> None:
    rng = np.random.default_rng(1)
    pred, gt = rng.random((12, 10)), mask("blob", 12, 10, rng)
    expected = ours.Measures().step(pred, gt)
    assert ours.Measures().step(torch.from_numpy(pred), torch.from_numpy(gt)) == expected
    half = torch.from_numpy(pred).bfloat16()  # NumPy has no bfloat16
    assert ours.mean_absolute_error(half, gt) == ours.mean_absolute_error(half.double().numpy(), gt)
    assert ours.Measures().step(pred, gt.astype(np.float32)) == expected
    assert ours.Measures().step(pred, (gt * 255).astype(np.uint8)) == expected
    assert ours.Measures().step(gt, gt) == ours.Measures().step(gt.astype(float), gt)


BAD = {
    "a list": (lambda p, g: ours.s_measure(p.tolist(), g), TypeError, "pred must be a NumPy array or a torch.Tensor"),
    "3-D map": (lambda p, g: ours.mean_absolute_error(p[None], g), ValueError, "pred has shape (1, 4, 5) (3-D)"),
    "shapes differ": (lambda p, g: ours.f_measure(p, g.T), ValueError, "but gt has shape (5, 4)"),
    "empty map": (lambda p, g: ours.mean_absolute_error(p[:0], g[:0]), ValueError, "0 pixel(s)"),
    "NaN": (lambda p, g: ours.s_measure(np.where(g, np.nan, p), g), ValueError, "pred holds NaN"),
    "infinity": (lambda p, g: ours.weighted_f_measure(np.where(g, np.inf, p), g), ValueError, "pred holds NaN or inf"),
    "above 1": (lambda p, g: ours.e_measure(p * 255, g), ValueError, "expected floats in [0, 1]"),
    "below 0": (lambda p, g: ours.f_measure(p - 1, g), ValueError, "expected floats in [0, 1]"),
    "int64 map": (lambda p, g: ours.s_measure((p * 255).astype(np.int64), g), TypeError, "pred has dtype int64"),
    "0/1 uint8 mask": (lambda p, g: ours.e_measure(p, g.astype(np.uint8)), ValueError, "gt is uint8 with values 0 and"),
    "soft float mask": (lambda p, g: ours.e_measure(p, g * 0.5), ValueError, "gt holds floating values other than"),
    "int mask": (lambda p, g: ours.e_measure(p, g.astype(np.int32)), TypeError, "gt has dtype int32"),
    "one-pixel E-measure": (lambda p, g: ours.e_measure(p[:1, :1], g[:1, :1]), ValueError, "at least 2 (the E-"),
    "one-pixel Measures": (lambda p, g: ours.Measures().step(p[:1, :1], g[:1, :1]), ValueError, "at least 2"),
    "alpha 2": (lambda p, g: ours.s_measure(p, g, alpha=2), ValueError, "alpha=2 is outside [0, 1]"),
    "beta2 0": (lambda p, g: ours.Fmeasure(beta2=0), ValueError, "beta2=0 is not above 0"),
    "beta2 NaN": (lambda p, g: ours.weighted_f_measure(p, g, beta2=float("nan")), ValueError, "beta2=nan"),
    "no maps yet": (lambda p, g: ours.Smeasure().get_results(), ValueError, "Smeasure has seen no maps"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_at_the_door_in_one_line_naming_the_argument(case: str) -> None:
    call, error, words = BAD[case]
    pred, gt = np.random.default_rng(0).random((4, 5)), mask("blob", 4, 5, np.random.default_rng(0))
    with pytest.raises(error) as caught:
        call(pred, gt)
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_the_anchor_gives_nan_or_1_over_eps_exactly_where_we_depart_from_it() -> None:
    """Why the two departures: py_sod_metrics' S-measure is NaN for an object whose centroid is in the
    last column, and its E-measure of a one-pixel map is 1 / eps."""
    gt = EDGE_MASKS["bottom-right pixel"]()
    pred = np.random.default_rng(0).random(gt.shape)
    assert math.isnan(anchor(pred, gt, normalize=False)["s"]["sm"])
    assert 0 <= ours.s_measure(pred, gt) <= 1
    one = anchor(np.array([[0.7]]), np.array([[True]]), normalize=False)["e"]["em"]["curve"]
    assert one.max() == pytest.approx(1 / ours.EPS)


def test_the_benchmark_times_every_measure_and_finds_the_dataset_scores_equal(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "sodmetrics.py"
    spec = importlib.util.spec_from_file_location("benchmark_sodmetrics", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    bench.main(["--maps", "4", "--size", "48", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line.startswith("| ") and not line.startswith(("| measure", "| ---"))]
    rows = [line.split(" | ")[0] for line in table]
    assert rows == ["| MAE", "| F-measure", "| weighted F", "| S-measure", "| E-measure", "| all five"]
    differences = [float(line.split(": ")[1]) for line in lines if line.startswith("  ")]
    assert len(differences) == len(ours.Scores._fields) and max(differences) <= TOL
