r"""B-spline bases on a grid of knots, and the fast kernel of a KAN layer.

A KAN edge's function is a weighted sum of B-splines (KAN §2.2): ``G`` intervals on a range,
``k`` extra knots on each side ([`uniform_grid`][refimpl.bspline.uniform_grid],
[`extend_grid`][refimpl.bspline.extend_grid]), and ``G + k`` bases of order ``k`` on those
knots ([`bspline_basis`][refimpl.bspline.bspline_basis], the Cox-de Boor recursion).

Only ``k + 1`` bases are non-zero at any point. [`spline_linear`][refimpl.bspline.spline_linear]
uses that: it computes just those, in closed form when the grid is uniform (exact polynomials,
derived once with fractions) and by the local Cox-de Boor triangle otherwise, writes them into
the layer's feature matrix, multiplies, and recomputes them in backward instead of storing them.
[`refimpl.kan`][refimpl.kan] builds the layer on these.

Shape letters are those of [`refimpl.kan`][refimpl.kan]: ``N`` samples, ``in``/``out`` widths,
``G`` intervals, ``k`` the order, ``F = 1 + G + k`` features per input.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any, NamedTuple

import torch
from torch import Tensor

from . import checks

__all__ = ["SplineGrid", "bspline_basis", "extend_grid", "spline_grid", "spline_linear", "uniform_grid"]


def _order(spline_order: object) -> int:
    return checks.integer(spline_order, "spline_order", 0, "3")


def _check_knots(grid: object, name: str, minimum: int, why: str) -> Tensor:
    """Knots per input: a floating ``(in, n)`` tensor, ``n >= minimum``, finite, non-decreasing, ``t_0 < t_{n-1}``.

    Repeated knots are allowed (``0 / 0 = 0``); decreasing ones, or a row that spans no
    interval, would give bases that are silently all zero or negative. The values are read in
    one check, which on a GPU does not wait (``checks.holds``).
    """
    grid = checks.floating(grid, name, "(in, n)", ndim=2)
    n = grid.shape[1]
    if n < minimum:
        raise ValueError(f"{name} has {n} knot{'' if n == 1 else 's'} per row (shape {tuple(grid.shape)}); {why}")
    finite = torch.isfinite(grid).all(dim=1)  # (in,)
    rises = (grid.diff(dim=1) >= 0).all(dim=1)  # (in,)
    spans = grid[:, -1] > grid[:, 0]  # (in,)

    def detail() -> str:
        if not bool(finite.all()):
            return f"{name} holds NaN or infinite values; expected finite values"
        row = int((~(rises & spans)).nonzero()[0])
        knots = grid[row].tolist()
        shown = ", ".join(f"{v:g}" for v in knots[:8]) + (", ..." if len(knots) > 8 else "")
        problem = "is not increasing" if not bool(rises[row]) else "spans no interval"
        return f"{name} row {row} {problem}: [{shown}]; expected non-decreasing knots with t_0 < t_last"

    checks.holds(finite & rises & spans, f"{name} holds NaN or infinity, or a row of knots that decreases or "
                                         f"spans no interval; expected finite, non-decreasing knots with t_0 < t_last",
                 detail)
    return grid


def extend_grid(interior: Tensor, spline_order: int) -> Tensor:
    """Add ``k`` knots on each side of a grid, spaced like the grid on average (KAN §2.2).

    The spacing is ``(t_G - t_0) / G``, as pykan's ``extend_grid``; the extension lets the
    ``G + k`` bases cover the whole of ``[t_0, t_G]`` with a partition of unity.

    Args:
        interior: knots ``t_0 <= ... <= t_G`` per input with ``t_0 < t_G`` (``G >= 1``), finite,
            shape ``(in, G + 1)``.
        spline_order: ``k >= 0``.

    Returns:
        Knots, shape ``(in, G + 2k + 1)``.

    Raises:
        TypeError: if ``interior`` is not a floating tensor or ``spline_order`` not an ``int``.
        ValueError: if ``interior`` is not 2-D, has fewer than 2 knots per row, holds NaN or
            infinity, or a row decreases or spans no interval; or ``spline_order < 0``.

    Examples:
        >>> extend_grid(torch.tensor([[0.0, 1.0, 2.0]]), 1)
        tensor([[-1.,  0.,  1.,  2.,  3.]])
        >>> extend_grid(torch.tensor([[0.5]]), 3)
        Traceback (most recent call last):
        ...
        ValueError: interior has 1 knot per row (shape (1, 1)); expected at least 2, t_0 < t_G, to space the new knots
    """
    k = _order(spline_order)
    interior = _check_knots(interior, "interior", 2, "expected at least 2, t_0 < t_G, to space the new knots")
    return _extend(interior, k)


def _extend(interior: Tensor, spline_order: int) -> Tensor:
    """Unchecked [`extend_grid`][refimpl.bspline.extend_grid]."""
    G = interior.shape[1] - 1
    h = (interior[:, -1:] - interior[:, :1]) / G  # (in, 1)
    steps = torch.arange(1, spline_order + 1, dtype=interior.dtype, device=interior.device)  # (k,)
    left = interior[:, :1] - h * steps.flip(0)  # (in, k): t_0 - k h, ..., t_0 - h
    right = interior[:, -1:] + h * steps  # (in, k): t_G + h, ..., t_G + k h
    return torch.cat([left, interior, right], dim=1)  # (in, G + 2k + 1)


def uniform_grid(
    in_features: int,
    grid_size: int,
    spline_order: int,
    grid_range: tuple[float, float] = (-1.0, 1.0),
    dtype: torch.dtype | None = None,
    *,
    check: bool = True,
) -> Tensor:
    """The initial knots of a layer: ``G`` equal intervals on ``grid_range``, extended by ``k``.

    Args:
        in_features: number of inputs ``in`` (every input gets the same knots).
        grid_size: ``G >= 1``.
        spline_order: ``k >= 0``.
        grid_range: ``(lo, hi)`` with ``lo < hi``.
        dtype: floating dtype of the result (default: PyTorch's default dtype).
        check: ``False`` when the arguments come from a validated config (a KAN layer's):
            then they are not checked again.

    Returns:
        Knots, shape ``(in, G + 2k + 1)``.

    Raises:
        TypeError, ValueError: if an argument is not of the kind described above.

    Examples:
        >>> uniform_grid(1, 4, 1)
        tensor([[-1.5000, -1.0000, -0.5000,  0.0000,  0.5000,  1.0000,  1.5000]])
    """
    G, k = grid_size, spline_order
    if check:
        in_features, G = checks.integer(in_features, "in_features", 1, "64"), checks.integer(G, "grid_size", 1, "5")
        k, grid_range = _order(k), checks.interval(grid_range, "grid_range", example="(-1, 1)")
    lo, hi = grid_range
    interior = torch.linspace(lo, hi, G + 1, dtype=dtype).expand(in_features, G + 1)  # (in, G + 1)
    return _extend(interior, k)


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with ``0 / 0 = 0`` (and ``x / 0 = 0``): a B-spline over an empty span is 0."""
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, torch.ones_like(den), den))


def bspline_basis(x: Tensor, grid: Tensor, spline_order: int, *, check: bool = True) -> Tensor:
    r"""All B-spline bases of order ``k`` at ``x``, by the Cox–de Boor recursion (KAN §2.2).

    Order 0 is the indicator of a half-open interval, and each order mixes two of the
    previous one with weights that rise and fall linearly across their support:

    $$
    B_{j,0}(x) = [\,t_j \le x < t_{j+1}\,], \qquad
    B_{j,p}(x) = \frac{x - t_j}{t_{j+p} - t_j} B_{j,p-1}(x)
               + \frac{t_{j+p+1} - x}{t_{j+p+1} - t_{j+1}} B_{j+1,p-1}(x),
    $$

    with ``0 / 0 = 0`` where knots repeat. This is the plain, dense reference; the layer's
    fast path computes only the ``k + 1`` non-zero bases of each input and agrees with it.

    Args:
        x: inputs, shape ``(N, in)``, finite.
        grid: knots per input, non-decreasing with ``t_0 < t_{n-1}``, finite, shape ``(in, n)``.
        spline_order: ``k >= 0``; ``n >= k + 2``.
        check: ``False`` for a caller that checked its arguments (a KAN layer: its input at its
            ``forward``, its knots when they change).

    Returns:
        Bases ``B_{j,k}(x_i)``, shape ``(N, in, n - k - 1)``; non-negative, at most ``k + 1``
        non-zero per input, zero outside ``[t_0, t_{n-1})``, summing to 1 on
        ``[t_k, t_{n-k-1})``.

    Raises:
        TypeError: if ``x`` or ``grid`` is not a floating tensor, or ``spline_order`` not an ``int``.
        ValueError: if ``spline_order < 0``; ``grid`` has fewer than ``k + 2`` knots per row (no
            basis), a row that decreases or spans no interval, or NaN or infinity; ``x`` is not
            ``(N, in)`` with one input per row of ``grid``, or holds NaN or infinity.

    Examples:
        >>> grid = uniform_grid(1, 2, 1)  # knots -2, -1, 0, 1, 2
        >>> bspline_basis(torch.tensor([[-0.5], [0.25]]), grid, 1)
        tensor([[[0.5000, 0.5000, 0.0000]],
        <BLANKLINE>
                [[0.0000, 0.7500, 0.2500]]])
    """
    if check:
        x, grid, spline_order = _check_basis_inputs(x, grid, spline_order)
    xe = x.unsqueeze(-1)  # (N, in, 1)
    t = grid.unsqueeze(0)  # (1, in, n)
    basis = ((xe >= t[..., :-1]) & (xe < t[..., 1:])).to(x.dtype)  # (N, in, n - 1): order 0
    for p in range(1, spline_order + 1):
        t_j, t_jp = t[..., : -(p + 1)], t[..., p:-1]  # t_j, t_{j+p}
        t_j1, t_jp1 = t[..., 1:-p], t[..., p + 1 :]  # t_{j+1}, t_{j+p+1}
        rise = _safe_div(xe - t_j, t_jp - t_j)  # (N, in, n - p - 1)
        fall = _safe_div(t_jp1 - xe, t_jp1 - t_j1)
        basis = rise * basis[..., :-1] + fall * basis[..., 1:]  # (N, in, n - p - 1)
    return basis


def _check_basis_inputs(x: object, grid: object, spline_order: object) -> tuple[Tensor, Tensor, int]:
    """The arguments of [`bspline_basis`][refimpl.bspline.bspline_basis], checked: ``(x, grid, k)``."""
    k = _order(spline_order)
    grid = _check_layer_knots(grid, k)
    x = checks.floating(x, "x", "(N, in)", ndim=2, finite_values=True)
    if x.shape[1] != grid.shape[0]:
        raise ValueError(f"x has {x.shape[1]} inputs (shape {tuple(x.shape)}) but grid has {grid.shape[0]} rows "
                         f"(shape {tuple(grid.shape)}); expected one row of knots per input")
    return x, grid, k


def _check_layer_knots(grid: object, k: int) -> Tensor:
    """The knots of a layer of order ``k``: ``_check_knots`` with at least ``k + 2`` of them, for one basis."""
    return _check_knots(grid, "grid", k + 2, f"spline_order={k} needs at least {k + 2} (k + 2), for one basis")


class SplineGrid(NamedTuple):
    """What the fast path needs about a layer's knots, recomputed only when they change."""

    key: tuple[int, int, torch.dtype, torch.device]
    uniform: bool  # equally spaced knots: closed-form bases
    t0: Tensor  # (in, 1) first knot
    h: Tensor  # (in, 1) spacing (uniform only)
    padded: Tensor  # (in, n + 2k) knots with k more on each side (non-uniform only)
    poly: Tensor  # (k + 1, k + 1): [p, r] = coefficient of u^p in the r-th non-zero basis
    poly_slope: Tensor  # (k + 1, k + 1): the same for its derivative in u


@functools.lru_cache(maxsize=None)
def _uniform_polynomials(k: int) -> tuple[tuple[float, ...], ...]:
    """On equally spaced knots, the ``k + 1`` non-zero bases are fixed polynomials of ``u``.

    For ``x = t_s + u h`` with ``u`` in ``[0, 1)``, basis ``B_{s-k+r}(x)`` is ``sum_p A[p][r] u^p``;
    ``A`` is found by running the de Boor triangle on polynomials with exact fractions
    (left gap ``u + j - r - 1``, right gap ``r + 1 - u``, every denominator ``j``).
    """

    def add(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
        return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(max(len(a), len(b)))]

    def mul(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
        out = [Fraction(0)] * (len(a) + len(b) - 1)
        for i, ai in enumerate(a):
            for j, bj in enumerate(b):
                out[i + j] += ai * bj
        return out

    values = [[Fraction(1)]]
    for j in range(1, k + 1):
        saved, nxt = [Fraction(0)], []
        for r in range(j):
            temp = [c / j for c in values[r]]
            nxt.append(add(saved, mul([Fraction(r + 1), Fraction(-1)], temp)))  # (r + 1 - u) * temp
            saved = mul([Fraction(j - r - 1), Fraction(1)], temp)  # (u + j - r - 1) * temp
        nxt.append(saved)
        values = nxt
    return tuple(tuple(float(v[p]) if p < len(v) else 0.0 for v in values) for p in range(k + 1))


def spline_grid(grid: Tensor, k: int, *, check: bool = True) -> SplineGrid:
    """What [`spline_linear`][refimpl.bspline.spline_linear] needs about the knots ``grid``, computed once.

    Whether the knots are equally spaced (to rounding), so the non-zero bases have a closed form,
    and the tensors either way takes.

    Its knots are checked here, once per change of the grid: a layer's knots enter as a buffer
    (a state dict, ``update_grid``), not as an argument of ``forward``.

    Args:
        grid: knots ``(in, n)``, finite, non-decreasing with ``t_0 < t_{n-1}``, ``n >= k + 2``.
        k: spline order, ``>= 0``.
        check: ``False`` for knots the caller checked (a layer checks its own, with its order).

    Returns:
        A [`SplineGrid`][refimpl.bspline.SplineGrid]; a layer keeps it until its knots change.

    Raises:
        TypeError, ValueError: as [`bspline_basis`][refimpl.bspline.bspline_basis] for ``grid``
            and ``k``.
    """
    if check:
        k = _order(k)
        grid = _check_layer_knots(grid, k)
    n = grid.shape[1]
    t0 = grid[:, :1].contiguous()  # (in, 1)
    h = (grid[:, -1:] - t0) / (n - 1)  # (in, 1)
    exact = t0 + h * torch.arange(n, dtype=grid.dtype, device=grid.device)  # (in, n)
    scale = grid.abs().amax().clamp_min(1.0)
    tol = 32 * torch.finfo(grid.dtype).eps * scale
    # k = 0 is discontinuous at knots: rounding the interval index differently would show.
    uniform = k > 0 and bool((h > 0).all()) and bool(((grid - exact).abs() <= tol).all())
    # Extra knots outside the grid only feed bases that are dropped; they just have to increase.
    step = (grid[:, -1:] - t0).clamp_min(1.0)  # (in, 1)
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)  # (k,)
    padded = torch.cat([t0 - step * steps.flip(0), grid, grid[:, -1:] + step * steps], dim=1)  # (in, n + 2k)
    key = (grid.data_ptr(), grid._version, grid.dtype, grid.device)
    poly = torch.tensor(_uniform_polynomials(k), dtype=grid.dtype, device=grid.device)  # (k + 1, k + 1)
    powers = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device).unsqueeze(1)  # (k, 1)
    poly_slope = torch.cat([poly[1:] * powers, torch.zeros_like(poly[:1])])  # d/du: p A[p] u^(p-1)
    return SplineGrid(key, uniform, t0, h, padded.contiguous(), poly, poly_slope)


class _LocalBases(NamedTuple):
    """The ``k + 1`` non-zero bases of every input and where they go.

    ``first`` is the index of the first one (``B_{s-k}`` for the span ``t_s <= x < t_{s+1}``),
    clamped into ``[0, G + k - 1]``; ``values[..., r]`` is ``B_{first+r}``, set to 0 where that
    basis does not exist or ``x`` lies outside the knots; ``slope`` is its derivative in ``x``.
    """

    index: Tensor  # (N, in, k + 1) long: basis index, clamped
    values: Tensor  # (N, in, k + 1)
    slope: Tensor | None  # (N, in, k + 1), or None when not asked for


def _local_bases(x: Tensor, grid: Tensor, cache: SplineGrid, k: int, with_slope: bool) -> _LocalBases:
    """The non-zero B-spline bases of each input, and where they go in the layer's features."""
    n = grid.shape[1]
    if cache.uniform:
        span, values, slope = _uniform_bases(x, grid, cache, k, with_slope)
    else:
        span, values, slope = _de_boor_bases(x, grid, cache, k, with_slope)
    # B_{s-k+r} exists for 0 <= s-k+r < G+k, and x must lie inside the knots (0 <= s <= n-2).
    offsets = torch.arange(k + 1, device=x.device)  # (k + 1,)
    lowest = (k - offsets).clamp_min(0)  # (k + 1,): smallest valid span for basis r
    highest = n - 2 - offsets  # (k + 1,)
    spans = span.unsqueeze(-1)  # (N, in, 1)
    valid = (spans >= lowest) & (spans <= highest)  # (N, in, k + 1)
    values = torch.where(valid, values, 0)
    slope = torch.where(valid, slope, 0) if slope is not None else None
    index = (spans - k + offsets).clamp_(0, n - k - 2)  # (N, in, k + 1): into the G + k bases
    return _LocalBases(index, values, slope)


def _uniform_bases(
    x: Tensor, grid: Tensor, cache: SplineGrid, k: int, with_slope: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Equally spaced knots: span ``s`` and ``u`` from one division, then fixed polynomials of ``u``.

    Returns:
        ``(span (N, in), values (N, in, k + 1), slope (N, in, k + 1) or None)``; the slopes are
        the polynomials' derivatives divided by the spacing ``h``.
    """
    pos = (x - cache.t0.T) / cache.h.T  # (N, in): knot units from t_0
    span_f = pos.floor()
    u = pos - span_f  # (N, in) in [0, 1)
    powers = u.new_empty(*u.shape, k + 1)  # (N, in, k + 1): 1, u, u^2, ...
    powers[..., 0] = 1
    if k >= 1:
        powers[..., 1] = u
    for p in range(2, k + 1):
        torch.mul(powers[..., p - 1], u, out=powers[..., p])
    values = powers @ cache.poly  # (N, in, k + 1)
    slope = (powers @ cache.poly_slope) / cache.h.T.unsqueeze(-1) if with_slope else None
    return span_f.clamp(-1, grid.shape[1] - 1).long(), values, slope


def _de_boor_bases(
    x: Tensor, grid: Tensor, cache: SplineGrid, k: int, with_slope: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Any knots: the span by binary search, then the local de Boor triangle (NURBS Book A2.2/A2.3).

    Returns:
        ``(span (N, in), values (N, in, k + 1), slope (N, in, k + 1) or None)``, with
        ``t_s <= x < t_{s+1}``.
    """
    n = grid.shape[1]
    span = (torch.searchsorted(grid.contiguous(), x.T.contiguous(), right=True) - 1).T  # (N, in): t_s <= x < t_{s+1}
    base = torch.arange(grid.shape[0], device=x.device).unsqueeze(0) * (n + 2 * k)  # (1, in): row offsets
    safe = span.clamp(0, n - 2) + k + base  # (N, in): position of t_s in the padded rows

    def knot(offset: int) -> Tensor:  # t_{s+offset}, (N, in)
        return cache.padded.view(-1)[safe + offset]

    left = [None] + [x - knot(1 - j) for j in range(1, k + 1)]  # x - t_{s+1-j}
    right = [None] + [knot(j) - x for j in range(1, k + 1)]  # t_{s+j} - x
    triangle = [torch.ones_like(x)]  # order 0: only B_s is non-zero, and it is 1
    lower: list[Tensor] = triangle
    for j in range(1, k + 1):
        lower = triangle  # order j - 1, kept for the slope
        saved = torch.zeros_like(x)
        nxt = []
        for r in range(j):
            # B_{s-j+r, j} takes the falling part of B_{s-j+r, j-1}, B_{s-j+r+1, j} its rising part.
            temp = triangle[r] / (right[r + 1] + left[j - r])
            nxt.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        nxt.append(saved)
        triangle = nxt
    values = torch.stack(triangle, dim=-1)  # (N, in, k + 1)
    if not with_slope:
        return span, values, None
    # dB_{m,k}/dx = k (B_{m,k-1} / (t_{m+k} - t_m) - B_{m+1,k-1} / (t_{m+k+1} - t_{m+1})), m = s - k + r
    terms = []
    for r in range(k + 1):
        term = torch.zeros_like(x)
        if r >= 1:
            term = term + lower[r - 1] / (knot(r) - knot(r - k))
        if r <= k - 1:
            term = term - lower[r] / (knot(r + 1) - knot(r + 1 - k))
        terms.append(term * k)
    return span, values, torch.stack(terms, dim=-1)  # slope: (N, in, k + 1)


def _features(base: Tensor, local: _LocalBases, n_basis: int) -> Tensor:
    """The feature matrix ``[silu(x), B(x)]``, shape ``(N, in * F)``, from the non-zero bases."""
    N, in_dim = base.shape
    feats = base.new_zeros(N, in_dim, 1 + n_basis)  # (N, in, F)
    feats[..., 0] = base
    # Clamped duplicate indices carry value 0, so adding them changes nothing.
    feats[..., 1:].scatter_add_(2, local.index, local.values)
    return feats.view(N, in_dim * (1 + n_basis))  # (N, in * F)


CHUNK_ELEMENTS = 2**15  # inputs (rows * in) per chunk: bounds the fast path's temporaries


class _SplineMatmul(torch.autograd.Function):
    """``[base, B(x)] @ W`` with the bases recomputed in backward instead of stored.

    Rows go in chunks of about ``CHUNK_ELEMENTS`` inputs, so the feature matrix and the
    basis temporaries never exist for the whole batch at once: the peak memory stays a
    fraction of what a stored feature matrix would take, at the speed of one large matmul.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, base: Tensor, weight: Tensor, grid: Tensor, cache: SplineGrid, k: int) -> Tensor:
        N, in_dim = x.shape
        n_basis = grid.shape[1] - k - 1
        y = x.new_empty(N, weight.shape[1])  # (N, out)
        for rows in _chunks(N, in_dim):
            local = _local_bases(x[rows], grid, cache, k, with_slope=False)
            torch.mm(_features(base[rows], local, n_basis), weight, out=y[rows])
        ctx.save_for_backward(x, base, weight, grid)
        ctx.cache, ctx.k = cache, k
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        x, base, weight, grid = ctx.saved_tensors
        k = ctx.k
        n_basis = grid.shape[1] - k - 1
        N, in_dim = x.shape
        need_x, need_base, need_w = ctx.needs_input_grad[:3]
        grad_y = grad_y.contiguous()
        grad_x = torch.empty_like(x) if need_x else None
        grad_base = torch.empty_like(base) if need_base else None
        grad_w = torch.zeros_like(weight) if need_w else None
        for rows in _chunks(N, in_dim):
            local = _local_bases(x[rows], grid, ctx.cache, k, with_slope=need_x)
            if need_w:
                grad_w.addmm_(_features(base[rows], local, n_basis).T, grad_y[rows])  # (in * F, out)
            if need_x or need_base:
                grad_f = (grad_y[rows] @ weight.T).view(-1, in_dim, 1 + n_basis)  # (rows, in, F)
                if need_base:
                    grad_base[rows] = grad_f[..., 0]
                if need_x:
                    picked = grad_f[..., 1:].gather(2, local.index)  # (rows, in, k + 1)
                    grad_x[rows] = (picked * local.slope).sum(-1)
        return grad_x, grad_base, grad_w, None, None, None


def _chunks(N: int, in_dim: int) -> list[slice]:
    """Row slices of about ``CHUNK_ELEMENTS`` inputs each."""
    step = max(1, CHUNK_ELEMENTS // in_dim)
    return [slice(start, min(start + step, N)) for start in range(0, N, step)]


def spline_linear(
    x: Tensor, base: Tensor, weight: Tensor, grid: Tensor, info: SplineGrid, k: int, *, check: bool = True
) -> Tensor:
    """The layer's one matrix product, ``[base, B(x)] @ weight``, without storing ``B(x)``.

    Only the ``k + 1`` non-zero bases of each input are computed (closed form on a uniform grid,
    the local Cox-de Boor triangle otherwise), in chunks of rows, and computed again in backward:
    no ``(N, in * F)`` feature matrix is kept for the backward pass and no ``(N, in, out)`` tensor
    is ever formed.

    Args:
        x: inputs ``(N, in)``, finite (not checked here: the values are the caller's, e.g.
            [`KANLinear.forward`][refimpl.kan.KANLinear.forward], which checks them).
        base: the residual branch ``b(x)``, ``(N, in)``.
        weight: ``(in * F, out)``, per input its base weight then its ``G + k`` spline weights.
        grid: knots ``(in, G + 2k + 1)``.
        info: [`spline_grid`][refimpl.bspline.spline_grid]``(grid, k)``.
        k: spline order.
        check: ``False`` for a caller whose shapes fit by construction (a KAN layer).

    Returns:
        ``(N, out)``.

    Raises:
        ValueError: if the shapes do not fit together, or ``info`` was made for another grid
            size or order than ``grid`` and ``k``.
    """
    if check:
        _check_kernel_inputs(x, base, weight, grid, info, k)
    return _SplineMatmul.apply(x, base, weight, grid, info, k)


def _check_kernel_inputs(x: Tensor, base: Tensor, weight: Tensor, grid: Tensor, info: SplineGrid, k: int) -> None:
    """The shapes [`spline_linear`][refimpl.bspline.spline_linear] needs to fit together."""
    in_dim, n = grid.shape
    if tuple(info.poly.shape) != (k + 1, k + 1) or tuple(info.padded.shape) != (in_dim, n + 2 * k):
        raise ValueError(f"k={k} but info was made for spline_order={info.poly.shape[0] - 1} and a grid of shape "
                         f"{tuple(info.padded.shape[:1]) + (info.padded.shape[1] - 2 * (info.poly.shape[0] - 1),)}; "
                         f"expected info = spline_grid(grid, k) for grid of shape {tuple(grid.shape)}")
    if x.ndim != 2 or x.shape[1] != in_dim or tuple(base.shape) != tuple(x.shape):
        raise ValueError(f"x has shape {tuple(x.shape)} and base {tuple(base.shape)}; expected both (N, in) = "
                         f"(N, {in_dim}), one input per row of grid")
    if weight.ndim != 2 or weight.shape[0] != in_dim * (n - k):
        raise ValueError(f"weight has shape {tuple(weight.shape)}; expected (in * F, out) = ({in_dim * (n - k)}, out) "
                         f"with F = 1 + G + k = {n - k}")
