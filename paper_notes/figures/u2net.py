"""Figures for the U²-Net concept page (docs/concepts/u2net.md), computed by ``refimpl.u2net``.

- ``u2net/receptive_field.svg``: how far one output pixel of an RSU-L sees, for ``L = 2 ... 7`` and
  RSU-4F, measured on the block itself ([`receptive_field`][paper_notes.figures.u2net.receptive_field]:
  the gradient of the centre output with respect to the input), beside a plain stack of as many
  3x3 convolutions; and the gradient maps of RSU-4 and RSU-4F.
- ``u2net/architecture.svg``: the eleven stages of U²-Net and U²-Net†, each with its RSU height and
  its I, M, O channels read from the built model ([`stage_table`][paper_notes.figures.u2net.stage_table]).
- ``u2net/cost_per_stage.svg``: where the parameters and the FLOPs of a 320 x 320 forward sit,
  stage by stage, for both sizes ([`stage_costs`][paper_notes.figures.u2net.stage_costs]).

The pure helpers return the data the figures draw; ``tests/test_figures_u2net.py`` checks them
against an independent computation and renders every figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch.utils.flop_counter import FlopCounterMode

from refimpl.u2net import model as u2net_model
from refimpl.u2net.model import RSU, U2Net, u2net_full, u2net_lite

SIZES: dict[str, Callable[[], U2Net]] = {"U²-Net": u2net_full, "U²-Net†": u2net_lite}
"""The two released sizes, by the name the paper gives them."""

IMAGE = 320
"""The input side the released weights expect; the FLOPs are counted at ``IMAGE x IMAGE``."""


# --- receptive field of one RSU ---------------------------------------------------------------


class _AveragePools:
    """``torch.nn.functional`` with max-pooling swapped for average pooling over the same windows.

    Max-pooling sends the gradient only to the largest value of each window, so a gradient
    taken through it shows one path, not every input the output depends on; an average over
    the same 2x2 windows (same stride, same ceil mode) depends on all of them.
    """

    max_pool2d = staticmethod(F.avg_pool2d)

    def __getattr__(self, name: str) -> object:
        return getattr(F, name)


class ReceptiveField(NamedTuple):
    """Which input rows (and, by symmetry, columns) one output pixel of a block depends on."""

    first: int
    """The first input row, relative to the output pixel's row (negative: above it)."""
    last: int
    """The last input row, relative to the output pixel's row."""
    gradient: np.ndarray
    """``(size, size)``: the absolute gradient of that output pixel with respect to the input."""

    @property
    def side(self) -> int:
        """The receptive field's side in input pixels."""
        return self.last - self.first + 1


def default_size(height: int) -> int:
    """An input side large enough that the centre pixel's receptive field never meets the border."""
    return 3 * 2 ** height + 33


def receptive_field(height: int, dilated: bool = False, size: int | None = None,
                    channels: tuple[int, int, int] = (1, 1, 1)) -> ReceptiveField:
    """The receptive field of the centre output pixel of ``RSU(height, *channels, dilated)``, measured.

    The block is the real [`RSU`][refimpl.u2net.model.RSU] in float64 and eval mode, every
    convolution weight set to ``1/9`` (so every path adds a positive amount and none cancels),
    the input all ones, max-pooling replaced by average pooling over the same windows (see
    ``_AveragePools``). The input pixels with a non-zero gradient of the centre output are
    exactly those it depends on.

    Args:
        height: ``L``.
        dilated: RSU-LF.
        size: the input side; default [`default_size`][paper_notes.figures.u2net.default_size].
        channels: ``(C_in, M, C_out)``; the receptive field does not depend on them.
    """
    size = size or default_size(height)
    block = RSU(height, *channels, dilated=dilated).double().eval()
    with torch.no_grad():
        for conv in block.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.fill_(1 / 9)
    x = torch.ones(1, channels[0], size, size, dtype=torch.float64, requires_grad=True)
    with mock.patch.object(u2net_model, "F", _AveragePools()):
        y = block(x)
    centre = size // 2
    y[0, :, centre, centre].sum().backward()
    gradient = x.grad[0].abs().sum(0).numpy()  # (size, size)
    rows = np.flatnonzero(gradient.sum(1))
    return ReceptiveField(int(rows[0]) - centre, int(rows[-1]) - centre, gradient)


BLOCKS: tuple[tuple[int, bool], ...] = tuple((L, False) for L in range(2, 8)) + ((4, True),)
"""The blocks the figure measures: RSU-2 ... RSU-7 and RSU-4F."""


def block_name(height: int, dilated: bool) -> str:
    return f"RSU-{height}{'F' if dilated else ''}"


def plain_stack_side(height: int) -> int:
    """The receptive field of ``2L`` plain 3x3 convolutions at full resolution, as many as RSU-L has (our comparison)."""
    return 2 * (2 * height) + 1


def receptive_field_figure() -> Figure:
    """Receptive-field side of RSU-L against L (log scale), and the gradient maps of RSU-4 and RSU-4F."""
    fields = {b: receptive_field(*b) for b in BLOCKS}
    fig = Figure(figsize=(11, 3.8))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.5, 1, 1], wspace=0.3)
    ax = fig.add_subplot(grid[0])
    heights = [L for L, dilated in BLOCKS if not dilated]
    sides = [fields[(L, False)].side for L in heights]
    ax.plot(heights, sides, "o-", color="#1f77b4", label="RSU-L（逐级池化，底部空洞率 2）")
    ax.plot(heights, [plain_stack_side(L) for L in heights], "s--", color="0.5",
            label="同样多的 3×3 卷积，不池化")
    four_f = fields[(4, True)].side
    ax.plot([4], [four_f], "D", color="#d62728", label="RSU-4F（空洞率 1, 2, 4, 8）")
    for L, s in zip(heights, sides):
        ax.annotate(str(s), (L, s), textcoords="offset points", xytext=(-4, 6), ha="right", fontsize=8)
    ax.annotate(str(four_f), (4, four_f), textcoords="offset points", xytext=(6, -10), fontsize=8, color="#d62728")
    ax.set_yscale("log", base=2)
    ax.set_xticks(heights)
    ax.set_xlim(1.5, 7.5)
    ax.set_xlabel("块的高度 L")
    ax.set_ylabel("感受野边长（块输入的像素）")
    ax.set_title("中心像素的感受野（由梯度量出）", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")
    size = default_size(4)
    for k, block in enumerate(((4, False), (4, True)), start=1):
        field = receptive_field(*block, size=size)
        g = field.gradient
        shown = np.where(g > 0, np.log10(np.where(g > 0, g, 1)), np.nan)
        c = size // 2
        half = 34
        a = fig.add_subplot(grid[k])
        image = a.imshow(shown[c - half: c + half + 1, c - half: c + half + 1], cmap="viridis",
                         extent=(-half - 0.5, half + 0.5, half + 0.5, -half - 0.5))
        a.set_title(f"{block_name(*block)}：梯度的大小（log10）\n感受野 {field.side} × {field.side}", fontsize=9)
        a.set_xlabel("相对中心的列", fontsize=8)
        a.set_ylabel("相对中心的行", fontsize=8)
        a.tick_params(labelsize=7)
        a.set_facecolor("0.93")
        fig.colorbar(image, ax=a, shrink=0.8).ax.tick_params(labelsize=7)
    return fig


# --- the eleven stages ------------------------------------------------------------------------


class StageInfo(NamedTuple):
    """One stage of the big U, as read from the built model."""

    name: str
    """The official module name: ``stage1`` ... ``stage6``, ``stage5d`` ... ``stage1d``."""
    label: str
    """The paper's name of the stage: ``En_1`` ... ``En_6``, ``De_5`` ... ``De_1``."""
    level: int
    """1 ... 6: the stage runs at ``ceil(H / 2^(level - 1))``."""
    height: int
    dilated: bool
    in_ch: int
    mid_ch: int
    out_ch: int

    @property
    def block(self) -> str:
        return block_name(self.height, self.dilated)


def build_meta(size: str) -> U2Net:
    """One of [`SIZES`][paper_notes.figures.u2net.SIZES] on the meta device: shapes, no memory."""
    with torch.device("meta"):
        return SIZES[size]()


def stage_table(model: U2Net) -> list[StageInfo]:
    """The stages of ``model`` in data-flow order (``En_1 ... En_n``, ``De_{n-1} ... De_1``), read from its modules."""
    n = model.levels
    names = [(f"stage{i}", f"En_{i}", i) for i in range(1, n + 1)] + [(f"stage{i}d", f"De_{i}", i) for i in range(n - 1, 0, -1)]
    table = []
    for name, label, level in names:
        block: RSU = getattr(model, name)
        table.append(StageInfo(name, label, level, block.height, block.dilated, block.rebnconvin.conv_s1.in_channels,
                               block.rebnconv1.conv_s1.out_channels, block.rebnconvin.conv_s1.out_channels))
    return table


def _draw_u(ax, model: U2Net, title: str) -> None:
    stages = stage_table(model)
    n = model.levels
    width, height = 2.2, 0.78
    place = {}
    for s in stages:  # the encoder goes down on the left, the decoder up on the right, En_n at the bottom
        column = 2 if s.name.endswith("d") else (1 if s.level == n else 0)
        place[s.name] = (column * 1.7, -(s.level - 1) * 1.05)
    colours = {False: "#dbe9f6", True: "#fde0c5"}
    for s in stages:
        x, y = place[s.name]
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                    facecolor=colours[s.dilated], edgecolor="0.35", linewidth=0.8))
        ax.text(x, y + 0.14, f"{s.label}  {s.block}", ha="center", va="center", fontsize=8)
        ax.text(x, y - 0.17, f"{s.in_ch} → {s.mid_ch} → {s.out_ch}", ha="center", va="center", fontsize=7.5,
                color="0.25")

    def arrow(a, b, **kw) -> None:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=8, color=kw.get("color", "0.45"),
                                     linewidth=0.8, linestyle=kw.get("ls", "-"), shrinkA=0, shrinkB=0))

    for i in range(1, n):  # down the encoder (max-pool), up the decoder (upsample), skips across
        (x0, y0), (x1, y1) = place[f"stage{i}"], place[f"stage{i + 1}"]
        arrow((x0, y0 - height / 2), (x1 - (width / 2 if i + 1 == n else 0), y1 + (0 if i + 1 == n else height / 2)))
        up_from = place[f"stage{i + 1}d"] if i + 1 < n else place[f"stage{n}"]
        xd, yd = place[f"stage{i}d"]
        start = (up_from[0] + (width / 2 if i + 1 == n else 0), up_from[1] + (0 if i + 1 == n else height / 2))
        arrow(start, (xd, yd - height / 2))
        arrow((x0 + width / 2, y0), (xd - width / 2, yd), ls=":", color="0.6")
    sides = [f"stage{i}d" for i in range(1, n)] + [f"stage{n}"]
    right = max(x for x, _ in place.values()) + width / 2 + 0.35
    for i, name in enumerate(sides, start=1):
        x, y = place[name]
        if name == f"stage{n}":
            ax.text(x, y - height / 2 - 0.22, f"S{i}", ha="center", va="top", fontsize=7.5, color="#2ca02c")
        else:
            arrow((x + width / 2, y), (right, y), color="#2ca02c")
            ax.text(right + 0.08, y, f"S{i}", ha="left", va="center", fontsize=7.5, color="#2ca02c")
    ax.text(right + 0.6, -(n - 1) * 1.05 / 2, "六张侧输出图\n3×3 卷积、上采样\n→ 1×1 融合", ha="left", va="center",
            fontsize=7.5, color="#2ca02c")
    params = sum(p.numel() for p in model.parameters())
    ax.set_title(f"{title}：{params:,} 个参数", fontsize=10)
    ax.set_xlim(-1.5, right + 2.3)
    ax.set_ylim(-(n - 1) * 1.05 - 0.9, 0.6)
    ax.set_aspect("equal")
    ax.axis("off")


def architecture_figure() -> Figure:
    """The two sizes' stages, each box: the stage, its RSU, and ``I → M → O`` from the model's convolutions."""
    fig = Figure(figsize=(12, 4.6))
    axes = fig.subplots(1, 2)
    for ax, size in zip(axes, SIZES):
        _draw_u(ax, build_meta(size), size)
    fig.text(0.5, 0.02, "方框：阶段名、RSU 的高度（F：空洞卷积代替池化，橙色）、输入 → 中间 → 输出通道数 (I → M → O)；"
                        "实线：最大池化向下、上采样向上；点线：跳跃连接（拼接）", ha="center", fontsize=8, color="0.3")
    return fig


# --- parameters and FLOPs per stage -----------------------------------------------------------


class StageCost(NamedTuple):
    """The parameters and the forward FLOPs of one part of the model."""

    name: str
    """A stage's official name, or ``"sides"`` for the six side convolutions and the fusion."""
    label: str
    params: int
    flops: int
    """As ``torch.utils.flop_counter`` counts them at ``IMAGE x IMAGE``: 2 per multiply-add of a convolution."""


def stage_costs(size: str, image: int = IMAGE) -> list[StageCost]:
    """Parameters and forward FLOPs of every stage (and of the side outputs with the fusion), on the meta device."""
    model = build_meta(size)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, image, image, device="meta"))
    counts = counter.get_flop_counts()

    def flops(name: str) -> int:
        return int(sum(counts.get(f"U2Net.{name}", {}).values()))

    costs = [StageCost(s.name, s.label, sum(p.numel() for p in getattr(model, s.name).parameters()), flops(s.name))
             for s in stage_table(model)]
    heads = [f"side{i}" for i in range(1, model.levels + 1)] + ["outconv"]
    costs.append(StageCost("sides", "侧输出与融合", sum(p.numel() for h in heads for p in getattr(model, h).parameters()),
                           sum(flops(h) for h in heads)))
    return costs


def cost_figure() -> Figure:
    """Share of the parameters and of the FLOPs per stage, U²-Net beside U²-Net†."""
    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, size in zip(axes, SIZES):
        costs = stage_costs(size)
        params = np.array([c.params for c in costs], dtype=float)
        flops = np.array([c.flops for c in costs], dtype=float)
        y = np.arange(len(costs))
        ax.barh(y - 0.2, 100 * params / params.sum(), height=0.4, color="#1f77b4", label="参数")
        ax.barh(y + 0.2, 100 * flops / flops.sum(), height=0.4, color="#ff7f0e", label=f"FLOPs（{IMAGE}×{IMAGE}）")
        ax.set_yticks(y, [c.label for c in costs], fontsize=8)
        ax.set_xlabel("占全模型的百分比 (%)")
        ax.set_title(f"{size}：{params.sum() / 1e6:.2f} M 参数，{flops.sum() / 1e9:.1f} GFLOPs", fontsize=10)
        ax.grid(axis="x", color="0.9")
        ax.set_axisbelow(True)
    axes[0].invert_yaxis()  # En_1 on top, in data-flow order (the axes share y: once is enough)
    axes[0].legend(fontsize=8, loc="center right")
    return fig


FIGURES = {
    "u2net/receptive_field.svg": receptive_field_figure,
    "u2net/architecture.svg": architecture_figure,
    "u2net/cost_per_stage.svg": cost_figure,
}
