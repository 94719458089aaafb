"""Figures for the Hiera concept page (docs/concepts/hiera.md): Figure 4 redrawn from ``refimpl.hiera``.

The worked example of the 2024-10-24 diary entry: an 8 x 8 token grid, mask units of 4 x 4 tokens
(a 2 x 2 grid of units), query stride 2 x 2, two unroll steps. Every token keeps one colour
throughout: the hue says which mask unit it belongs to, the shade says its offset inside its 2 x 2
pooling window (dark = top-left ... light = bottom-right), and the number is its raster index. The
orders are computed by [`unroll`][refimpl.hiera.unroll], not typed in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from refimpl.hiera import pool_tokens, unroll

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
    ax.set_xlim(-0.1, cols + 0.1)
    ax.set_ylim(-0.1, rows + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def tokens_and_units() -> Figure:
    """The 8 x 8 grid in raster order: hue = mask unit, shade = offset in the 2 x 2 window."""
    fig = Figure(figsize=(7.5, 3.6))
    grid, legend = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    ids = np.arange(SIDE * SIDE).reshape(SIDE, SIDE)
    _cells(grid, ids, "8 x 8 tokens, raster index; 4 mask units of 4 x 4")
    for k in range(1, UNITS_ACROSS):
        grid.plot([k * UNIT, k * UNIT], [0, SIDE], color="black", linewidth=1.5)
        grid.plot([0, SIDE], [k * UNIT, k * UNIT], color="black", linewidth=1.5)
    for u, hue in enumerate(HUES):
        legend.add_patch(Rectangle((0, 3 - u), 0.8, 0.8, color=hue))
        legend.text(1.0, 3.4 - u, f"mask unit {u}", va="center", fontsize=8)
    for k, (name, mix) in enumerate(zip(["top-left", "top-right", "bottom-left", "bottom-right"], SHADE)):
        shade = np.array(mcolors.to_rgb("#777777")) * (1 - mix) + mix
        legend.add_patch(Rectangle((0, -1.5 - k), 0.8, 0.8, color=tuple(shade)))
        legend.text(1.0, -1.1 - k, f"{name} of its 2x2", va="center", fontsize=8)
    legend.set_xlim(0, 5)
    legend.set_ylim(-5, 4)
    legend.axis("off")
    return fig


def unroll_steps() -> Figure:
    """The sequence (64 tokens, read row by row) before unroll, after step 1 and after step 2."""
    fig = Figure(figsize=(9, 6.4))
    axes = fig.subplots(3, 1)
    titles = [
        "sequence before unroll: raster order (read left to right, then the next row)",
        "after unroll step 1: row k = the 16 tokens at offset k of every 2x2 window (4 sub-grids of 4 x 4)",
        "after step 2: inside each row, offset in the coarser 2x2, then the mask unit (fastest)",
    ]
    for steps, (ax, title) in enumerate(zip(axes, titles)):
        _cells(ax, _order(steps).reshape(4, 16), title)
    return fig


def pool_one_window() -> Figure:
    """One max-pool: a 2 x 2 window in the grid is one column of the unrolled (4, 16) view."""
    fig = Figure(figsize=(9.5, 3.4))
    grid, seq, out = fig.subplots(1, 3, gridspec_kw={"width_ratios": [8, 16, 4]})
    window = {18, 19, 26, 27}  # rows 2-3, columns 2-3
    _cells(grid, np.arange(64).reshape(8, 8), "one 2x2 window in the grid", outline=window)
    order = _order(2).reshape(4, 16)
    _cells(seq, order, "the same 4 tokens: one column of view(4, 16)", outline=window)
    pooled = pool_tokens(torch.as_tensor(order.reshape(1, 64, 1)), 4).flatten().numpy()  # max of raster ids
    _cells(out, pooled.reshape(4, 4), "max over rows (of the ids:\nthe bottom-right): 16 tokens,\nstill unrolled")
    return fig


def masked_unit_disappears() -> Figure:
    """Removing mask units 1 and 2 removes the same columns of every row; pooling is unchanged."""
    fig = Figure(figsize=(9.5, 5.2))
    axes = fig.subplot_mosaic([["grid", "seq"], ["grid", "kept"]], gridspec_kw={"width_ratios": [8, 16]})
    _cells(axes["grid"], np.arange(64).reshape(8, 8), "mask units 1 and 2 removed (grey)", removed=set(REMOVED))
    order = _order(2)
    _cells(axes["seq"], order.reshape(4, 16), "unrolled: units 1 and 2 are whole columns", removed=set(REMOVED))
    kept = np.array([i for i in order if _unit(i) not in REMOVED])
    _cells(axes["kept"], kept.reshape(4, 8),
           "what the encoder gets: 32 tokens; each column is still one 2x2 window")
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
        _cells(axes[f"t{t}"], ids[t], f"token frame {t}: units {4 * t}-{4 * t + 3}", **video)
    order = unroll(torch.arange(ids.size).reshape(1, -1, 1), (FRAMES, SIDE, SIDE), [(1, 2, 2)] * 2).flatten().numpy()
    units = FRAMES * UNITS_ACROSS**2
    _cells(axes["seq"], order.reshape(-1, units),
           f"after unroll with strides (1, 2, 2) x 2: view(16, {units}); column u = mask unit u "
           f"(frame-major), units {', '.join(map(str, REMOVED_VIDEO))} removed", **video)
    return fig


FIGURES = {
    "hiera/tokens_and_units.svg": tokens_and_units,
    "hiera/unroll_steps.svg": unroll_steps,
    "hiera/pool_one_window.svg": pool_one_window,
    "hiera/masked_unit.svg": masked_unit_disappears,
    "hiera/video_units.svg": video_units,
}
