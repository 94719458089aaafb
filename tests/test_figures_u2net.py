"""The U²-Net page's figures (``paper_notes/figures/u2net.py``): they render, and what they draw is what
``refimpl.u2net`` builds and computes.

The receptive field measured by gradients is checked against the same field worked out on paper,
row interval by row interval, from the block's layers (3x3 convolutions with their dilations,
2x2 ceil-mode pools, bilinear upsampling to the skip's size); the stage table against the factory
configurations; the parameter and FLOP counts per stage against the model's totals and against
``2 * C_in * C_out * 9 * H_out * W_out`` summed over the convolutions.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from paper_notes.figures import render_svg
from paper_notes.figures import u2net as figures
from refimpl.u2net import U2NET_FULL, U2NET_LITE

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "concepts" / "u2net.md"
CONFIGS = {"U²-Net": U2NET_FULL, "U²-Net†": U2NET_LITE}
PARAMS = {"U²-Net": 44_009_869, "U²-Net†": 1_131_181}


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_every_u2net_figure_renders_as_an_svg_with_its_text_as_paths(name):
    svg = render_svg(figures.FIGURES[name])
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"<text" not in svg


def test_every_u2net_figure_is_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    assert all(f"../figures/{name})" in text for name in figures.FIGURES)


# --- the receptive field, worked out on paper -------------------------------------------------


def _conv(interval, d, n):
    a, b = interval
    return max(0, a - d), min(n - 1, b + d)


def _pool(interval, n_fine):
    """Rows of the finer map that pooled rows ``interval`` read (2x2, stride 2, ceil mode)."""
    a, b = interval
    return 2 * a, min(n_fine - 1, 2 * b + 1)


def _up(interval, n_small, n_big):
    """Rows of the small map that bilinear rows ``interval`` of the big one read (align_corners=False)."""
    def reads(i):
        src = max((i + 0.5) * n_small / n_big - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_small - 1)
        i1 = min(i0 + 1, n_small - 1)
        return (i0, i1) if src - i0 > 0 else (i0, i0)
    lo, hi = zip(*(reads(i) for i in range(interval[0], interval[1] + 1)))
    return min(lo), max(hi)


def _hull(*intervals):
    return min(a for a, _ in intervals), max(b for _, b in intervals)


def rsu_rows(height, dilated, n, centre):
    """The input rows output row ``centre`` of RSU-``height`` depends on: the layers of the paper's
    RSU-L (and RSU-LF) walked backwards, independently of the module."""
    L = height
    sizes = [n]
    for _ in range(L - 2 if not dilated else 0):
        sizes.append(math.ceil(sizes[-1] / 2))
    size = (lambda i: sizes[i - 1]) if not dilated else (lambda i: n)

    def rate(i):
        return 2 ** (i - 1) if dilated else (2 if i == L else 1)

    def x_in(rows):  # rebnconvin on the input
        return _conv(rows, 1, n)

    def enc(i, rows):  # encoder convolution at level i: its rows -> input rows
        rows = _conv(rows, rate(i), size(i))
        if i == 1:
            return x_in(rows)
        return enc(i - 1, rows if dilated else _pool(rows, size(i - 1)))

    def bottom(rows):  # at the level of the deepest encoder convolution
        return enc(L - 1, _conv(rows, rate(L), size(L - 1)))

    def dec(i, rows):  # decoder convolution at level i, on [the level below, the skip]
        rows = _conv(rows, rate(i), size(i))
        if i == L - 1:
            below = bottom(rows)
        elif dilated:
            below = dec(i + 1, rows)
        else:
            below = dec(i + 1, _up(rows, size(i + 1), size(i)))
        return _hull(below, enc(i, rows))

    a, b = _hull(dec(1, (centre, centre)), x_in((centre, centre)))  # plus the residual
    return a - centre, b - centre


@pytest.mark.parametrize("height, dilated, size", [
    *[(L, d, None) for L, d in figures.BLOCKS],
    (4, False, 61), (5, False, 131), (3, False, 40), (6, False, 75), (4, True, 30), (7, False, 200),
])
def test_the_measured_receptive_field_is_the_one_the_blocks_layers_give(height, dilated, size):
    field = figures.receptive_field(height, dilated, size)
    n = size or figures.default_size(height)
    assert (field.first, field.last) == rsu_rows(height, dilated, n, n // 2)
    assert field.gradient.shape == (n, n) and (field.gradient >= 0).all()


def test_the_receptive_field_does_not_depend_on_the_channels_of_the_block():
    one = figures.receptive_field(4, False, 64)
    real = figures.receptive_field(4, False, 64, channels=(64, 16, 64))  # U²-Net†'s En_4
    assert (one.first, one.last) == (real.first, real.last)
    assert ((one.gradient > 0) == (real.gradient > 0)).all()


def test_the_figures_receptive_fields_grow_with_the_height_far_beyond_a_plain_stack_of_as_many_convolutions():
    sides = [figures.receptive_field(L).side for L in range(2, 8)]
    assert sides == sorted(sides) and sides[-1] > figures.IMAGE  # RSU-7 (En_1) sees more than a 320 x 320 image
    assert all(s > figures.plain_stack_side(L) for L, s in zip(range(2, 8), sides))


# --- the stages, their parameters and FLOPs ---------------------------------------------------


@pytest.mark.parametrize("size", figures.SIZES)
def test_the_drawn_stages_are_the_factory_configurations(size):
    table = figures.stage_table(figures.build_meta(size))
    config = CONFIGS[size]
    assert [(s.height, s.in_ch, s.mid_ch, s.out_ch, s.dilated) for s in table] == \
        [tuple(stage) for stage in (*config["encoder"], *config["decoder"])]
    assert [s.label for s in table] == [f"En_{i}" for i in range(1, 7)] + [f"De_{i}" for i in range(5, 0, -1)]


def _conv_flops(module: torch.nn.Module, image: int) -> int:
    """``2 * C_in/groups * C_out * k_h * k_w * H_out * W_out`` summed over the convolutions of a forward."""
    total = 0

    def hook(conv, _, out):
        nonlocal total
        kh, kw = conv.kernel_size
        total += 2 * conv.in_channels // conv.groups * conv.out_channels * kh * kw * out.shape[-2] * out.shape[-1]

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    module(torch.empty(1, 3, image, image, device="meta"))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("size", figures.SIZES)
def test_the_costs_per_stage_add_up_to_the_models_parameters_and_its_convolutions_flops(size):
    costs = figures.stage_costs(size)
    model = figures.build_meta(size)
    assert sum(c.params for c in costs) == sum(p.numel() for p in model.parameters()) == PARAMS[size]
    assert sum(c.flops for c in costs) == _conv_flops(model, figures.IMAGE)
    stage1 = next(c for c in costs if c.name == "stage1")
    conv = model.stage1.rebnconvin.conv_s1  # the first convolution alone, at 320 x 320
    assert stage1.flops > 2 * conv.in_channels * conv.out_channels * 9 * figures.IMAGE ** 2


def test_the_decoders_last_stage_is_the_same_block_in_both_sizes_so_it_costs_the_small_model_half_its_flops():
    full, lite = ({c.name: c for c in figures.stage_costs(size)} for size in figures.SIZES)
    assert full["stage1d"] == lite["stage1d"]
    assert 0.5 < lite["stage1d"].flops / sum(c.flops for c in lite.values()) < 0.55


# --- the page's sentences ---------------------------------------------------------------------


def test_the_pages_receptive_fields_are_the_measured_ones():
    text = PAGE.read_text(encoding="utf-8")
    sides = [figures.receptive_field(L).side for L in range(2, 8)]
    assert "、".join(map(str, sides)) + " 像素" in text
    assert f"RSU-2 的 {sides[0]} 像素长到 RSU-7 的 {sides[-1]} 像素" in text
    assert f"{figures.plain_stack_side(2)} 到 {figures.plain_stack_side(7)} 像素" in text
    four_f, four = figures.receptive_field(4, True), figures.receptive_field(4)
    assert f"{four_f.side} 像素的感受野，比 RSU-4 的 {four.side} 小" in text
    assert f"中心上方 {-four.first} 行到下方 {four.last} 行" in text


def test_the_pages_costs_are_the_counted_ones():
    text = PAGE.read_text(encoding="utf-8")
    full, lite = ({c.name: c for c in figures.stage_costs(size)} for size in figures.SIZES)
    total = {name: sum(c.flops for c in costs.values()) for name, costs in (("full", full), ("lite", lite))}
    assert f"{total['full'] / 1e9:.1f} 和 {total['lite'] / 1e9:.1f} GFLOPs" in text
    deep = ("stage5", "stage6", "stage5d")
    params = sum(c.params for c in full.values())
    assert f"{100 * sum(full[n].params for n in deep) / params:.1f}% 的参数" in text
    assert f"只占 {100 * sum(full[n].flops for n in deep) / total['full']:.1f}% 的计算" in text
    assert f"{100 * lite['stage1d'].flops / total['lite']:.1f}% 在 De_1" in text
    assert f"都是 {lite['stage1d'].flops / 1e9:.1f} GFLOPs" in text

    model = figures.build_meta("U²-Net")  # En_1: the three full-resolution convolutions against the whole block
    with figures.FlopCounterMode(display=False) as counter:
        model.stage1(torch.empty(1, 3, figures.IMAGE, figures.IMAGE, device="meta"))
    counts = counter.get_flop_counts()
    block = sum(counts["RSU"].values())
    top = sum(sum(counts[f"RSU.{n}"].values()) for n in ("rebnconvin", "rebnconv1", "rebnconv1d"))
    everything_at_full = sum(2 * m.in_channels * m.out_channels * 9 * figures.IMAGE ** 2
                             for m in model.stage1.modules() if isinstance(m, torch.nn.Conv2d))
    assert block == full["stage1"].flops
    assert f"一共 {block / 1e9:.1f} GFLOPs，其中 {100 * top / block:.0f}% 在全分辨率" in text
    assert f"只占 {100 - round(100 * top / block)}%" in text
    assert f"要 {everything_at_full / 1e9:.1f} GFLOPs" in text
