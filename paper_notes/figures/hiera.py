"""Figures for the Hiera concept page (docs/concepts/hiera.md), drawn by code.

``hiera/mae_for_hierarchical.svg`` explains, on a toy grid, the five panels of Hiera Fig. 4 (how
MAE can work with a hierarchical model); ``hiera/table1_steps.svg`` and ``hiera/mask_ratio.svg`` draw
the numbers of Hiera Table 1 and Hiera Table 3b from ``papers/hiera.yaml``. The other figures show
the official code's ``unroll``, its way of doing what Hiera Fig. 4e asks, computed by
[`unroll`][refimpl.unroll.unroll].

The worked example of the 2024-10-24 diary entry: an 8 x 8 token grid, mask units of 4 x 4 tokens
(a 2 x 2 grid of units), query stride 2 x 2, two unroll steps. Every token keeps one colour
throughout: the hue says which mask unit it belongs to, the shade says its offset inside its 2 x 2
pooling window (dark = top-left ... light = bottom-right), and the number is its raster index. The
orders are computed by [`unroll`][refimpl.unroll.unroll], not typed in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from refimpl.unroll import pool_tokens, unroll

from ._grid import board_axes
from ._results import number, results

SIDE, UNIT = 8, 4  # token grid side, mask unit side
UNITS_ACROSS = SIDE // UNIT
HUES = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]  # unit 0..3 in raster order
SHADE = [0.0, 0.3, 0.5, 0.7]  # mix with white by offset (0,0), (0,1), (1,0), (1,1)
REMOVED = (1, 2)  # the units removed in the masking figure


def _unit(i: int) -> int:
    r, c = divmod(i, SIDE)
    return (r // UNIT) * UNITS_ACROSS + c // UNIT


def _color(i: int) -> tuple[float, float, float]:
    r, c = divmod(i, SIDE)
    base = np.array(mcolors.to_rgb(HUES[_unit(i)]))
    mix = SHADE[(r % 2) * 2 + c % 2]
    return tuple(base * (1 - mix) + mix)  # type: ignore[return-value]


def _order(steps: int) -> np.ndarray:
    """Raster ids in the order ``unroll`` leaves them after ``steps`` 2 x 2 steps."""
    ids = torch.arange(SIDE * SIDE).reshape(1, -1, 1)
    return unroll(ids, (SIDE, SIDE), [(2, 2)] * steps).flatten().numpy()


def _cells(ax, ids: np.ndarray, title: str, removed: set[int] = frozenset(), outline: set[int] = frozenset(),
           fontsize: float = 7, unit_of: Callable[[int], int] = _unit,
           color_of: Callable[[int], tuple[float, float, float]] = _color) -> None:
    """Draw a 2-D array of raster ids as coloured cells, row 0 at the top; units in ``removed`` grey."""
    rows, cols = ids.shape
    for r in range(rows):
        for c in range(cols):
            i = int(ids[r, c])
            gone = unit_of(i) in removed
            face = (0.93, 0.93, 0.93) if gone else color_of(i)
            ax.add_patch(Rectangle((c, rows - 1 - r), 1, 1, facecolor=face, edgecolor="white", linewidth=0.8))
            ax.text(c + 0.5, rows - 0.5 - r, str(i), ha="center", va="center", fontsize=fontsize,
                    color=(0.6, 0.6, 0.6) if gone else "black")
            if i in outline:
                ax.add_patch(Rectangle((c + 0.05, rows - 0.95 - r), 0.9, 0.9, fill=False, edgecolor="black",
                                       linewidth=2.0))
    board_axes(ax, rows, cols, title)


def tokens_and_units() -> Figure:
    """The 8 x 8 grid in raster order: hue = mask unit, shade = offset in the 2 x 2 window."""
    fig = Figure(figsize=(7.5, 3.6))
    grid, legend = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    ids = np.arange(SIDE * SIDE).reshape(SIDE, SIDE)
    _cells(grid, ids, "8 × 8 个 token（数字：光栅序号）；4 个 4 × 4 的掩码单元 (mask unit)")
    for k in range(1, UNITS_ACROSS):
        grid.plot([k * UNIT, k * UNIT], [0, SIDE], color="black", linewidth=1.5)
        grid.plot([0, SIDE], [k * UNIT, k * UNIT], color="black", linewidth=1.5)
    for u, hue in enumerate(HUES):
        legend.add_patch(Rectangle((0, 3 - u), 0.8, 0.8, color=hue))
        legend.text(1.0, 3.4 - u, f"掩码单元 {u}", va="center", fontsize=8)
    for k, (name, mix) in enumerate(zip(["左上", "右上", "左下", "右下"], SHADE)):
        shade = np.array(mcolors.to_rgb("#777777")) * (1 - mix) + mix
        legend.add_patch(Rectangle((0, -1.5 - k), 0.8, 0.8, color=tuple(shade)))
        legend.text(1.0, -1.1 - k, f"在所属 2×2 窗口的{name}", va="center", fontsize=8)
    legend.set_xlim(0, 5)
    legend.set_ylim(-5, 4)
    legend.axis("off")
    return fig


def unroll_steps() -> Figure:
    """The sequence (64 tokens, read row by row) before unroll, after step 1 and after step 2."""
    fig = Figure(figsize=(9, 6.4))
    axes = fig.subplots(3, 1)
    titles = [
        "展开重排 (unroll) 之前的序列：光栅顺序（从左往右读，读完一行接下一行）",
        "展开重排第 1 步之后：第 k 行 = 每个 2×2 窗口里偏移为 k 的 16 个 token（4 个 4 × 4 的子网格）",
        "第 2 步之后：每行之内先按较粗一级 2×2 里的偏移排，再按掩码单元排（变化最快）",
    ]
    for steps, (ax, title) in enumerate(zip(axes, titles)):
        _cells(ax, _order(steps).reshape(4, 16), title)
    return fig


def pool_one_window() -> Figure:
    """One max-pool: a 2 x 2 window in the grid is one column of the unrolled (4, 16) view."""
    fig = Figure(figsize=(9.5, 3.4))
    grid, seq, out = fig.subplots(1, 3, gridspec_kw={"width_ratios": [8, 16, 4]})
    window = {18, 19, 26, 27}  # rows 2-3, columns 2-3
    _cells(grid, np.arange(64).reshape(8, 8), "网格里的一个 2×2 窗口", outline=window)
    order = _order(2).reshape(4, 16)
    _cells(seq, order, "同样这 4 个 token：view(4, 16) 的一列", outline=window)
    pooled = pool_tokens(torch.as_tensor(order.reshape(1, 64, 1)), 4).flatten().numpy()  # max of raster ids
    _cells(out, pooled.reshape(4, 4), "每列 4 行取最大（对\n序号即右下角）：16 个\ntoken，仍是展开顺序")
    return fig


def masked_unit_disappears() -> Figure:
    """Removing mask units 1 and 2 removes the same columns of every row; pooling is unchanged."""
    fig = Figure(figsize=(9.5, 5.2))
    axes = fig.subplot_mosaic([["grid", "seq"], ["grid", "kept"]], gridspec_kw={"width_ratios": [8, 16]})
    _cells(axes["grid"], np.arange(64).reshape(8, 8), "去掉掩码单元 1 和 2（灰色）", removed=set(REMOVED))
    order = _order(2)
    _cells(axes["seq"], order.reshape(4, 16), "展开重排之后：单元 1 和 2 是整列", removed=set(REMOVED))
    kept = np.array([i for i in order if _unit(i) not in REMOVED])
    _cells(axes["kept"], kept.reshape(4, 8),
           "编码器拿到的：32 个 token；每一列仍是一个 2×2 窗口")
    return fig


FRAMES = 3  # token frames of the video example
REMOVED_VIDEO = (1, 6, 8, 11)  # units (ut, uy, ux) in raster order: some of every token frame


def _video_unit(i: int) -> int:
    """The unit of raster id ``i`` of a ``FRAMES x 8 x 8`` clip; units ``1 x 4 x 4``, ``(ut, uy, ux)`` order."""
    t, rest = divmod(i, SIDE * SIDE)
    return t * UNITS_ACROSS**2 + _unit(rest)


def _video_color(i: int) -> tuple[float, float, float]:
    """Hue: the unit's place in the frame (as in the image figures); shade: the token frame."""
    t, rest = divmod(i, SIDE * SIDE)
    base = np.array(mcolors.to_rgb(HUES[_unit(rest)]))
    mix = [0.0, 0.35, 0.6][t]
    return tuple(base * (1 - mix) + mix)  # type: ignore[return-value]


def video_units() -> Figure:
    """A clip of 3 token frames: units are 1 x 4 x 4, and after unroll each one is still a column."""
    fig = Figure(figsize=(10, 7.2))
    axes = fig.subplot_mosaic([[f"t{t}" for t in range(FRAMES)], ["seq"] * FRAMES], height_ratios=[1, 1.45])
    ids = np.arange(FRAMES * SIDE * SIDE).reshape(FRAMES, SIDE, SIDE)
    video = dict(removed=set(REMOVED_VIDEO), fontsize=5, unit_of=_video_unit, color_of=_video_color)
    for t in range(FRAMES):
        _cells(axes[f"t{t}"], ids[t], f"token 帧 {t}：掩码单元 {4 * t}–{4 * t + 3}", **video)
    order = unroll(torch.arange(ids.size).reshape(1, -1, 1), (FRAMES, SIDE, SIDE), [(1, 2, 2)] * 2).flatten().numpy()
    units = FRAMES * UNITS_ACROSS**2
    _cells(axes["seq"], order.reshape(-1, units),
           f"按步长 (1, 2, 2) 展开重排两次之后：view(16, {units})；第 u 列 = 掩码单元 u（按帧优先编号），"
           f"去掉了单元 {'、'.join(map(str, REMOVED_VIDEO))}", **video)
    return fig


def _toy(ax, title: str, removed: set[int], fill_removed: bool = False) -> None:
    """The 8 x 8 toy grid with its 4 units outlined; removed units blank (or hatched [M] tokens)."""
    for i in range(SIDE * SIDE):
        r, c = divmod(i, SIDE)
        gone = _unit(i) in removed
        if gone and not fill_removed:
            continue
        face = (0.85, 0.85, 0.85) if gone else mcolors.to_rgb(HUES[_unit(i)])
        ax.add_patch(Rectangle((c, SIDE - 1 - r), 1, 1, facecolor=face, edgecolor="white", linewidth=0.6,
                               hatch="//" if gone else None))
    for k in range(0, SIDE + 1, UNIT):
        ax.plot([k, k], [0, SIDE], color="black", linewidth=1.2)
        ax.plot([0, SIDE], [k, k], color="black", linewidth=1.2)
    ax.set_xlim(-0.6, SIDE + 0.6)
    ax.set_ylim(-0.6, SIDE + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=8)


def _kernel(ax, col: float, row: float, size: float, color: str = "black") -> None:
    """A pooling/conv kernel of ``size`` tokens with its top-left cell at grid (row, col)."""
    ax.add_patch(Rectangle((col, SIDE - row - size), size, size, fill=False, edgecolor=color, linewidth=2.2))


def mae_for_hierarchical() -> Figure:
    """Hiera Fig. 4 in five toy panels: units, deleting them, [M] tokens, separate + pad, kernel = stride."""
    fig = Figure(figsize=(14, 3.3))
    axes = fig.subplots(1, 5)
    removed = set(REMOVED)
    _toy(axes[0], "(a) 整个掩码单元一起遮\n（这里是 4 × 4 个 token），\n而不是单个 token", removed, fill_removed=True)
    _toy(axes[1], "(b) 像 MAE 那样删掉（稀疏）：\n3×3 的核要用到\n已被删掉的 token", removed)
    _kernel(axes[1], 3, 2, 3, "crimson")
    _toy(axes[2], "(c) 用掩码 token [M] 补上：\n网格完整了，\n但计算一点也没省", removed, fill_removed=True)
    _kernel(axes[2], 3, 2, 3)
    ax = axes[3]  # (d): the kept units as separate little images, each padded
    ax.set_title("(d) 保留的单元各当一张小图，\n边上补零：是稀疏的，\n但补零有开销", fontsize=8)
    for k, u in enumerate(sorted(set(range(4)) - removed)):
        x0, y0 = k * (UNIT + 3), 2
        ax.add_patch(Rectangle((x0 - 1, y0 - 1), UNIT + 2, UNIT + 2, facecolor="white", edgecolor="0.6",
                               linestyle="--"))
        ax.add_patch(Rectangle((x0, y0), UNIT, UNIT, facecolor=HUES[u], edgecolor="black"))
        ax.add_patch(Rectangle((x0 - 1, y0 + UNIT - 2), 3, 3, fill=False, edgecolor="black", linewidth=2.2))
    ax.set_xlim(-1.6, 2 * (UNIT + 3) - 1.4)
    ax.set_ylim(-0.6, SIDE + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    _toy(axes[4], "(e) 核大小 = 步长\n（2×2，步长 2）：没有\n窗口跨过单元边界", removed)
    for row in range(0, SIDE, 2):
        for col in range(0, SIDE, 2):
            if _unit(row * SIDE + col) not in removed:
                _kernel(axes[4], col, row, 2)
    return fig


def table1_steps() -> Figure:
    """Hiera Table 1 as a path: accuracy against throughput, image and video, step by step."""
    data = results("hiera", "table", "1")
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    labels = ["MViTv2-L（有监督）"] + [row[0][:1] for row in data.rows[1:]]
    for ax, (acc, speed, data_set, unit) in zip(axes, ((1, 2, "图像 IN1K", "im/s"), (3, 4, "视频 K400", "clip/s"))):
        xs = [number(row[speed]) for row in data.rows]
        ys = [number(row[acc]) for row in data.rows]
        ax.plot(xs[1:], ys[1:], "-o", color="C0", markersize=4)
        ax.plot(xs[:1], ys[:1], "s", color="C3", markersize=6)
        for x, y, label in zip(xs, ys, labels):
            below = label in ("e", "b")  # d and e nearly coincide
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, -12 if below else 4), fontsize=8)
        ax.set_xlabel(f"吞吐量 (throughput)：{unit}，A100 fp16")
        ax.set_ylabel("top-1 精度 (%)")
        ax.set_title(f"Hiera 表 1，{data_set}：从 MViTv2-L 到 Hiera-L 的 a–f 各步", fontsize=9)
    return fig


def mask_ratio() -> Figure:
    """Hiera Table 3b: accuracy against mask ratio, images and video."""
    data = results("hiera", "table", "3b")
    fig = Figure(figsize=(8, 3.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, prefix, name in zip(axes, ("图像", "视频"), ("图像 (IN1K)", "视频 (K400)")):
        rows = [row for row in data.rows if row[0].startswith(prefix)]
        xs, ys = [number(r[1]) for r in rows], [number(r[2]) for r in rows]
        ax.plot(xs, ys, "-o")
        best = ys.index(max(ys))
        ax.annotate(f"最好：{xs[best]}", (xs[best], ys[best]), textcoords="offset points", xytext=(-10, -14),
                    fontsize=8)
        ax.set_xlabel("掩码率 (masking ratio)")
        ax.set_ylabel("top-1 精度 (%)")
        ax.set_title(f"Hiera-L，{name}", fontsize=9)
    return fig


FIGURES = {
    "hiera/mae_for_hierarchical.svg": mae_for_hierarchical,
    "hiera/table1_steps.svg": table1_steps,
    "hiera/mask_ratio.svg": mask_ratio,
    "hiera/tokens_and_units.svg": tokens_and_units,
    "hiera/unroll_steps.svg": unroll_steps,
    "hiera/pool_one_window.svg": pool_one_window,
    "hiera/masked_unit.svg": masked_unit_disappears,
    "hiera/video_units.svg": video_units,
}
