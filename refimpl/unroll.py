r"""Unroll: the token order that makes Hiera's pooling a reshape and its mask units columns.

The Hiera paper asks two things of MAE's sparse input (Hiera Fig. 4): the mask is drawn over
mask units, not single tokens (Hiera Fig. 4a), and every pooling kernel equals its stride, so that
no kernel crosses a unit (Hiera Fig. 4e). This module holds the official code's answer, which the
paper does not describe: the word "unroll" is the code's (``Unroll``/``Reroll`` in
``facebookresearch/hiera``), not the paper's.

[`unroll`][refimpl.unroll.unroll] reorders the raster-order tokens once, right after the patch
embedding, so that (a) the members of every 2x2 pooling window of every stage are the same
position in ``q`` equal slices of the sequence, so pooling is
[`pool_tokens`][refimpl.unroll.pool_tokens], a ``view`` and a ``max``; and (b) the mask unit is the
fastest-running index: the tokens of unit ``u`` are ``u, u + U, u + 2U, ...``, a column of a
``(tokens per unit, U)`` view, so removing units removes columns and (a) still holds on what is
left. [`reroll`][refimpl.unroll.reroll] puts a stage's output back into raster order, and
[`reroll_units`][refimpl.unroll.reroll_units] gives each kept unit as its own little image.

Shape letters are those of [`refimpl.hiera`][refimpl.hiera]: ``B`` batch, ``h, w`` [``t``] the
token grid, ``L`` its tokens, ``C`` channels, ``sy, sx`` [``st``] a query stride with
``q = sy * sx`` tokens pooled into one, ``ku, kv`` [``kt``] a mask unit, ``U`` units per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from einops import rearrange, reduce
from torch import Tensor

__all__ = ["pool_tokens", "reroll", "reroll_units", "units_to_raster", "unroll"]


def unroll(x: Tensor, grid_size: tuple[int, ...], strides: Sequence[tuple[int, ...]]) -> Tensor:
    """Reorder raster-order tokens so that every later pooling is a reshape + max (official Hiera code).

    The paper asks for pooling whose kernel equals its stride, so that no kernel crosses a mask
    unit (Hiera Fig. 4e); ``Unroll`` is how the official code makes that a reshape + max on a
    sequence from which whole units may be missing. The word is the code's, not the paper's.

    One step with stride ``(sy, sx)`` cuts the grid ``(h, w)`` into ``sy x sx`` windows and
    moves the offset inside the window to the front: the sequence becomes ``q = sy * sx``
    sub-sampled grids ``(h / sy, w / sx)`` one after the other, the first holding every
    window's top-left token, the second every window's top-right token, and so on. Each later
    step does the same to every one of those sub-grids. For a 224-px input (56 x 56 tokens),
    strides ``[(2, 2)] * 3``, ``C = 96``::

        (B, 3136, 96)                         raster order
        (B, 56, 56, 96)                       the grid
        step 1: (B*4, 28, 28, 96)             offset (sy1, sx1) in 2x2 windows joins the batch
        step 2: (B*16, 14, 14, 96)            offset (sy2, sx2) in the 28 x 28 grids
        step 3: (B*64, 7, 7, 96)              offset (sy3, sx3) in the 14 x 14 grids
        (B, 3136, 96)                         order (sy1, sx1, sy2, sx2, sy3, sx3, uy, ux)

    Read backwards, position ``n`` of the result is the token at row
    ``uy * 8 + sy3 * 4 + sy2 * 2 + sy1`` and column ``ux * 8 + sx3 * 4 + sx2 * 2 + sx1`` of the
    raster grid, where ``n`` written in mixed radix ``(2, 2, 2, 2, 2, 2, 7, 7)`` gives the
    digits. Hence: (a) ``view(B, 4, N // 4, C).max(1)`` takes the max over the offset
    ``(sy1, sx1)``, i.e. over every 2x2 window, and leaves the result unrolled for the next
    stage; (b) the unit ``(uy, ux)`` of 8 x 8 tokens is the last, fastest index: unit ``u``
    owns positions ``u, u + 49, u + 98, ...``.

    Video: the same steps on the grid ``(t, h, w)`` with strides ``(st, sy, sx) = (1, 2, 2)``.
    An offset along an axis of stride 1 has one value, so the token frame never moves to the
    front: it stays in the grid that is left at the end, and the order of a 16-frame 224-px clip
    is ``(sy1, sx1, sy2, sx2, sy3, sx3, ut, uy, ux)`` with ``8 x 7 x 7`` units of ``1 x 8 x 8``.

    Args:
        x: tokens in raster order, shape ``(B, L, C)`` with ``L = h * w`` [``t * h * w``].
        grid_size: ``(h, w)`` [``(t, h, w)``]; each side must be divisible by the product of
            the strides on it.
        strides: the pooling strides of the stages, finest first, one entry per grid axis each,
            e.g. ``[(2, 2)] * 3`` [``[(1, 2, 2)] * 3``].

    Returns:
        The same tokens, reordered, shape ``(B, L, C)``.

    Raises:
        ValueError: if ``x`` is not ``(B, L, C)`` with ``L`` the product of ``grid_size``, a
            stride has not one entry per axis, or a side is not divisible by its strides.

    Examples:
        >>> import torch
        >>> x = torch.arange(16).reshape(1, 16, 1)  # a 4 x 4 grid, token i holds i
        >>> unroll(x, (4, 4), [(2, 2)]).flatten().tolist()  # top-lefts, top-rights, ...
        [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]
        >>> y = unroll(x, (4, 4), [(2, 2)]).reshape(4, 4)  # (offset, unit): unit 0 is column 0
        >>> y.tolist()
        [[0, 2, 8, 10], [1, 3, 9, 11], [4, 6, 12, 14], [5, 7, 13, 15]]
        >>> y.amax(dim=0).tolist()  # one max over the 4 slices = a 2x2 max-pool
        [5, 7, 13, 15]
        >>> clip = torch.arange(8).reshape(1, 8, 1)  # t = 2 token frames of 2 x 2
        >>> unroll(clip, (2, 2, 2), [(1, 2, 2)]).flatten().tolist()  # frame stays with the unit
        [0, 4, 1, 5, 2, 6, 3, 7]
    """
    size = _check_tokens(x, grid_size, strides, "x")
    axes = _axes(len(size))
    grid = " ".join(a.grid for a in axes)  # "h w" ("t h w")
    offsets = " ".join(a.offset for a in axes)  # "sy sx" ("st sy sx")
    windows = " ".join(f"({a.grid} {a.offset})" for a in axes)  # "(h sy) (w sx)"
    B = x.shape[0]
    x = rearrange(x, f"b ({grid}) c -> b {grid} c", **dict(zip(grid.split(), size)))  # (B, [t,] h, w, C)
    for stride in strides:
        # "b (h sy) (w sx) c -> (b sy sx) h w c": the offset inside each window joins the batch
        x = rearrange(x, f"b {windows} c -> (b {offsets}) {grid} c", **dict(zip(offsets.split(), stride)))
    return rearrange(x, f"(b q) {grid} c -> b (q {grid}) c", b=B)  # (B, L, C): first step's offsets outermost


def reroll_units(x: Tensor, strides: Sequence[tuple[int, ...]], ndim: int | None = None) -> Tensor:
    """Gather each unit's tokens of an unrolled sequence into its ``ku x kv`` square.

    The inverse of [`unroll`][refimpl.unroll.unroll] inside the units: it needs only the
    strides, not the grid, so it works on a masked sequence that holds some units only. For the
    stage-1 sequence of a 224-px input (``strides = [(2, 2)] * 3``)::

        (B, 64 * U, C)                              order (sy1, sx1, sy2, sx2, sy3, sx3, u)
        (B, 2, 2, 2, 2, 2, 2, U, C)                 the digits as axes
        (B, U, sy3, sy2, sy1, sx3, sx2, sx1, C)     coarse to fine, rows then columns
        (B, U, 8, 8, C)                             row = sy3 * 4 + sy2 * 2 + sy1

    Video (``strides = [(1, 2, 2)] * 3``) gives ``(B, U, 1, 8, 8, C)`` the same way: the
    temporal digits all have one value.

    Args:
        x: an unrolled sequence, shape ``(B, T * U, C)`` with ``T`` the product of the strides.
        strides: the strides still unrolled in ``x``, finest first (``[]`` at the last stage).
        ndim: axes of the token grid, 2 [3]; read from ``strides`` when they are given, needed
            only when ``strides`` is empty (default there: 2, images).

    Returns:
        ``(B, U, ku, kv, C)`` [``(B, U, kt, ku, kv, C)``] with ``kt``, ``ku``, ``kv`` the
        products of the strides on each axis; units in the order they have in ``x``.

    Raises:
        ValueError: if ``ndim`` disagrees with the length of the strides.

    Examples:
        >>> import torch
        >>> x = unroll(torch.arange(16).reshape(1, 16, 1), (4, 4), [(2, 2)])
        >>> reroll_units(x, [(2, 2)])[0, :, :, :, 0].tolist()  # 4 units of 2 x 2
        [[[0, 1], [4, 5]], [[2, 3], [6, 7]], [[8, 9], [12, 13]], [[10, 11], [14, 15]]]
        >>> reroll_units(torch.zeros(1, 3, 8), [], ndim=3).shape  # last stage of a video: 1 x 1 x 1
        torch.Size([1, 3, 1, 1, 1, 8])
    """
    if strides:
        n = len(strides[0])
        if ndim is not None and ndim != n:
            raise ValueError(f"ndim={ndim} but the strides {list(strides)} have {n} entries each; expected them to agree")
    else:
        n = 2 if ndim is None else ndim  # nothing left to read the axes from: images unless told
    axes, steps = _axes(n), range(1, len(strides) + 1)
    digits = " ".join(f"{a.offset}{i}" for i in steps for a in axes)  # "sy1 sx1 sy2 sx2 sy3 sx3", finest first
    coarse_first = " ".join("(" + " ".join(f"{a.offset}{i}" for i in reversed(steps)) + ")" for a in axes)
    sizes = {f"{a.offset}{i}": s for i, stride in zip(steps, strides) for a, s in zip(axes, stride)}
    # 224 px, stage 1: "b (sy1 sx1 sy2 sx2 sy3 sx3 u) c -> b u (sy3 sy2 sy1) (sx3 sx2 sx1) c"
    return rearrange(x, f"b ({digits} u) c -> b u {coarse_first} c", **sizes)  # (B, U, [kt,] ku, kv, C)


def units_to_raster(units: Tensor, unit_grid: tuple[int, ...]) -> Tensor:
    """Lay units ``(B, U, [kt,] ku, kv, C)`` out on their ``unit_grid`` and flatten: ``(B, L, C)`` raster.

    Args:
        units: one little image per unit, ``(B, U, [kt,] ku, kv, C)``, units in raster order.
        unit_grid: the grid of units, ``([ut,] uy, ux)`` with ``U`` cells.

    Returns:
        ``(B, L, C)`` tokens in raster order over the whole ``([ut kt,] uy ku, ux kv)`` grid.
    """
    axes = _axes(units.ndim - 3)
    unit_grid_names = " ".join(a.unit for a in axes)  # "uy ux" ("ut uy ux")
    inside = " ".join(a.inside for a in axes)  # "ku kv" ("kt ku kv")
    side_by_side = " ".join(f"{a.unit} {a.inside}" for a in axes)  # "uy ku ux kv": unit row, then the row inside it
    # "b (uy ux) ku kv c -> b (uy ku ux kv) c"
    pattern = f"b ({unit_grid_names}) {inside} c -> b ({side_by_side}) c"
    return rearrange(units, pattern, **dict(zip(unit_grid_names.split(), unit_grid)))  # (B, L, C) raster


def reroll(x: Tensor, grid_size: tuple[int, ...], strides: Sequence[tuple[int, ...]]) -> Tensor:
    """Put an unrolled sequence back into raster order: the inverse of [`unroll`][refimpl.unroll.unroll].

    Two steps: [`reroll_units`][refimpl.unroll.reroll_units] builds every unit's square,
    ``(B, U, ku, kv, C)``, then the units are laid out on their ``(h / ku) x (w / kv)`` grid.
    At stage ``s`` of Hiera pass the stage's grid and the strides not yet consumed by pooling;
    for a 224-px input: stage 1 ``(56, 56)`` with 3 strides, stage 2 ``(28, 28)`` with 2, stage
    3 ``(14, 14)`` with 1, stage 4 ``(7, 7)`` with none::

        (B, L, C) unrolled -> (B, U, ku, kv, C) -> (B, h/ku, ku, w/kv, kv, C) -> (B, L, C) raster

    Video: the same with a ``(t, h, w)`` grid and 3-entry strides; the units are
    ``(B, U, kt, ku, kv, C)`` and the raster order is frame by frame.

    Args:
        x: unrolled tokens of a full (unmasked) grid, shape ``(B, L, C)``, ``L = h * w``
            [``t * h * w``].
        grid_size: ``(h, w)`` [``(t, h, w)``].
        strides: the strides ``x`` is unrolled with, finest first.

    Returns:
        Tokens in raster order, shape ``(B, L, C)``.

    Raises:
        ValueError: if ``x`` is not ``(B, L, C)`` with ``L`` the product of ``grid_size``, a
            stride has not one entry per axis, or a side is not divisible by its strides.

    Examples:
        >>> import torch
        >>> x = torch.randn(2, 64, 3)
        >>> torch.equal(reroll(unroll(x, (8, 8), [(2, 2)] * 2), (8, 8), [(2, 2)] * 2), x)
        True
        >>> clip = torch.randn(2, 3 * 64, 3)  # t = 3 token frames of 8 x 8
        >>> torch.equal(reroll(unroll(clip, (3, 8, 8), [(1, 2, 2)] * 2), (3, 8, 8), [(1, 2, 2)] * 2), clip)
        True
    """
    size = _check_tokens(x, grid_size, strides, "x")
    units = reroll_units(x, strides, len(size))  # (B, U, [kt,] ku, kv, C)
    unit = units.shape[2:-1]
    return units_to_raster(units, tuple(g // k for g, k in zip(size, unit)))  # (B, L, C)


def pool_tokens(x: Tensor, stride: int) -> Tensor:
    """Max-pool an unrolled sequence: the ``stride`` slices of the sequence, elementwise max.

    After [`unroll`][refimpl.unroll.unroll] the ``q`` members of every pooling window sit at
    the same position of ``q`` equal slices, so this is a 2x2 max-pool of the grid (any order
    of units, any number of units); for video a ``1 x 2 x 2`` one, each token frame on its own.

    Args:
        x: unrolled tokens, shape ``(B, N, C)``, ``N`` divisible by ``stride``.
        stride: ``q = sy * sx`` [``st * sy * sx``], tokens pooled into one (1: no pooling).

    Returns:
        ``(B, N / stride, C)``, still unrolled for the strides that are left.
    """
    return reduce(x, "b (q n) c -> b n c", "max", q=stride)  # (B, q * N/q, C) -> (B, N / q, C)


class _Axis(NamedTuple):
    """The names one grid axis has in the patterns: ``h`` is cut into windows of ``sy`` and units of ``ku``."""

    grid: str  # the token grid: t, h, w
    offset: str  # the offset inside a pooling window: st, sy, sx
    unit: str  # the grid of mask units: ut, uy, ux
    inside: str  # a token's place inside its unit: kt, ku, kv


_AXES = {"t": _Axis("t", "st", "ut", "kt"), "h": _Axis("h", "sy", "uy", "ku"), "w": _Axis("w", "sx", "ux", "kv")}


def _axes(n: int) -> list[_Axis]:
    """The names of ``n`` grid axes: ``h, w`` for images, ``t, h, w`` for video (numbered beyond 3 axes)."""
    if n <= 3:
        return [_AXES[a] for a in "thw"[3 - n :]]
    return [_Axis(f"g{i}", f"s{i}_", f"u{i}_", f"k{i}_") for i in range(n)]


def _check_tokens(
    x: Tensor, grid_size: tuple[int, ...], strides: Sequence[tuple[int, ...]], name: str
) -> tuple[int, ...]:
    """Check ``x`` is ``(B, L, C)`` over ``grid_size`` and each side divides by its strides; return the grid."""
    if not isinstance(x, Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} is {shape}; expected a 3-D tensor (B, L, C)")
    size = tuple(int(s) for s in grid_size)
    for i, stride in enumerate(strides):
        if len(stride) != len(size):
            raise ValueError(
                f"strides[{i}]={tuple(stride)} has {len(stride)} entries but grid_size={size} has {len(size)} axes; "
                f"expected one stride per axis, e.g. {(1,) * (len(size) - 2) + (2, 2)}"
            )
    product = " * ".join(("t", "h", "w")[-len(size):]) if len(size) <= 3 else "the product of grid_size"
    if x.shape[1] != math.prod(size):
        raise ValueError(
            f"{name} has L={x.shape[1]} tokens but grid_size={size} has {math.prod(size)}; expected L == {product}"
        )
    unit = tuple([math.prod([s[a] for s in strides]) for a in range(len(size))])  # lists: dynamo traces them
    if any(g % k for g, k in zip(size, unit)):
        raise ValueError(
            f"grid_size={size} is not divisible by the strides {list(strides)} (product {unit}); "
            f"expected each side to be a multiple of the product of its strides"
        )
    return size
