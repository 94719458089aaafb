r"""Kolmogorov–Arnold Networks (KAN): learnable 1-D functions on edges, sums on nodes.

Liu et al., "KAN: Kolmogorov-Arnold Networks" (ICLR 2025, arXiv 2404.19756), KAN §2. A KAN layer
with ``in`` inputs and ``out`` outputs holds one learnable function $\phi_{i,o}$ per edge
and sums on the nodes (paper Eq. 2.5–2.6); every function is a residual SiLU plus a B-spline
(KAN §2.2, "Implementation details"):

$$
y_o = \sum_{i=1}^{\text{in}} \phi_{i,o}(x_i), \qquad
\phi_{i,o}(x) = m_{i,o}\Big(w^b_{i,o}\,\mathrm{silu}(x) + w^s_{i,o} \sum_{c=0}^{G+k-1} c_{i,o,c}\, B_c(x;\, t_i)\Big).
$$

``scale_base`` is $w^b$, ``scale_sp`` is $w^s$, ``coef`` is $c$, ``mask`` is $m$ (1 = edge
kept, 0 = pruned), and ``grid`` holds the knots $t_i$ of each input: ``G`` intervals on
``grid_range`` plus ``k`` extension knots on each side, ``G + 2k + 1`` knots, which carry
``G + k`` B-spline bases of order ``k`` ([`bspline_basis`][refimpl.bspline.bspline_basis]). The names,
the factorisation and the numerics are those of the official pykan (``kan.KANLayer``,
``kan.MultKAN``), so its state dicts load and the tests compare outputs and gradients with it.

Since $\phi_{i,o}$ is linear in its parameters, the whole layer is one matrix product: per
input, a feature row $[\mathrm{silu}(x_i), B_0(x_i), \dots, B_{G+k-1}(x_i)]$ of ``F = 1 + G + k``
numbers, and the weights $W_{(i,f),o}$ collect $m w^b$ and $m w^s c$:

$$
y = \big[\mathrm{silu}(x),\, B(x)\big]_{(N,\ \text{in}\cdot F)}\; W_{(\text{in}\cdot F,\ \text{out})}.
$$

Only ``k + 1`` bases of an input are non-zero, so the fast path computes just those (in
closed form on a uniform grid, by the local Cox–de Boor triangle otherwise), writes them into
the feature matrix, multiplies, and recomputes them in backward instead of storing them.
No ``(N, in, out)`` tensor is ever formed.

Shape letters, used in every docstring of this module:

- ``N``: number of samples (all leading dimensions of the input, flattened).
- ``in``, ``out``: input and output widths of a layer.
- ``G``: grid intervals (``grid_size``); ``k``: spline order (``spline_order``; 3 = cubic).
- ``n = G + 2k + 1``: knots per input; ``G + k``: bases per input; ``F = 1 + G + k``:
  features per input (the SiLU branch, then the bases).

Departures from pykan, each on purpose: ``update_grid`` rejects non-finite samples and
constant columns (pykan writes NaN knots or a zero-width grid); the spline order ``k = 0``
works (pykan cannot build it); repeated knots follow the convention ``0 / 0 = 0`` term by term
(pykan zeroes the whole value when one of its two terms is ``0 / 0``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from . import checks
from .bspline import SplineGrid, _check_layer_knots, _extend, bspline_basis, spline_grid, spline_linear, uniform_grid

__all__ = [
    "KANConfig",
    "KANLinear",
    "KANForward",
    "EdgeCurves",
    "KAN",
]


# --------------------------------------------------------------------------------------------
# The settings every edge function of a layer shares
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KANConfig:
    """The settings of a layer's edge functions (pykan's ``KANLayer`` arguments), validated once, when built.

    A [`KAN`][refimpl.kan.KAN] builds one config and gives it to every layer, so a hyper-parameter
    is checked once per network, not once per layer.

    Raises:
        TypeError, ValueError: if a field is not of the kind described; each message names the field.

    Examples:
        >>> KANConfig(grid_size=3).grid_range
        (-1.0, 1.0)
        >>> KANConfig(grid_eps=1.5)
        Traceback (most recent call last):
        ...
        ValueError: grid_eps=1.5 is outside [0, 1]; expected a number such as 0.02
    """

    grid_size: int = 5
    """Intervals ``G >= 1`` on ``grid_range``."""
    spline_order: int = 3
    """Order ``k >= 0`` of the B-splines (3 = cubic; 0 = piecewise constant)."""
    grid_range: tuple[float, float] = (-1.0, 1.0)
    """``(lo, hi)`` of the initial grid, ``lo < hi``."""
    base_activation: type[nn.Module] = nn.SiLU
    """Class of the residual branch ``b(x)`` (paper: SiLU)."""
    grid_eps: float = 0.02
    """Weight of the uniform grid in ``KANLinear.update_grid``, in ``[0, 1]`` (0: sample quantiles
    only, 1: uniform only)."""
    noise_scale: float = 0.5
    """Size of the initial spline noise."""
    scale_base_mu: float = 0.0
    """Centre of the initial ``scale_base`` (times ``sqrt(in)``)."""
    scale_base_sigma: float = 1.0
    """Half-width of the initial ``scale_base`` (times ``sqrt(in)``)."""
    scale_sp: float = 1.0
    """Initial ``scale_sp`` (times ``sqrt(in)``)."""
    sb_trainable: bool = True
    """Whether ``scale_base`` is trained (pykan's flag of that name)."""
    sp_trainable: bool = True
    """Whether ``scale_sp`` is trained."""

    def __post_init__(self) -> None:
        def set_(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        set_("grid_size", checks.integer(self.grid_size, "grid_size", 1, "5"))
        set_("spline_order", checks.integer(self.spline_order, "spline_order", 0, "3"))
        set_("grid_range", checks.interval(self.grid_range, "grid_range", example="(-1, 1)"))
        if not (isinstance(self.base_activation, type) and issubclass(self.base_activation, nn.Module)):
            raise TypeError(
                f"base_activation must be an nn.Module class such as nn.SiLU, got {self.base_activation!r}"
            )
        set_("grid_eps", checks.real(self.grid_eps, "grid_eps", 0.0, 1.0, example="0.02"))
        set_("noise_scale", _real(self.noise_scale, "noise_scale", 0.0, "0.5"))
        set_("scale_base_mu", _real(self.scale_base_mu, "scale_base_mu", example="0.0"))
        set_("scale_sp", _real(self.scale_sp, "scale_sp"))
        set_("scale_base_sigma", _real(self.scale_base_sigma, "scale_base_sigma", 0.0))


# --------------------------------------------------------------------------------------------
# Argument checks (at the public entry points only)
# --------------------------------------------------------------------------------------------


def _check_input(x: object, layer: KANLinear, name: str = "x", finite: bool = True) -> Tensor:
    """Check a layer input ``(..., in)`` against the layer's width and dtype, and (``finite``) its values.

    ``finite=False`` where the caller checks the values itself (the grid update, whose message
    names the columns); the check of values never makes the host wait for a GPU.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., {layer.in_features}), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; expected a floating dtype ({layer.coef.dtype}, the layer's)")
    if x.dtype != layer.coef.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the layer's parameters are {layer.coef.dtype}; "
            f"expected the same dtype (convert one with .to())"
        )
    if x.ndim == 0 or x.shape[-1] != layer.in_features:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}; expected (..., {layer.in_features}), "
            f"the last dimension equal to in_features={layer.in_features}"
        )
    return checks.finite(x, name) if finite else x


def _check_batch(x: object, layer: KANLinear) -> Tensor:
    """A batch ``(N, in)`` with ``N >= 2``, over which edge scales measure spreads."""
    x = _check_input(x, layer)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x has {x.shape[0] if x.ndim == 2 else 'no'} samples (shape {tuple(x.shape)}); expected "
                         f"(N, {layer.in_features}) with N >= 2 to measure spreads over the batch")
    return x


def _real(value: object, name: str, low: float = -math.inf, example: str = "1.0") -> float:
    """A finite real number ``>= low`` (``-inf``: any finite number)."""
    return checks.real(value, name, low, math.inf, low_open=math.isinf(low), high_open=True, example=example)


def _check_samples(x: Tensor, name: str, distinct: bool) -> None:
    """Samples for a grid update: finite, at least 2 rows, and (if ``distinct``) no constant column."""
    if x.shape[0] < 2:
        raise ValueError(f"{name} has {x.shape[0]} samples; expected at least 2 rows of (N, in)")
    if not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).any(dim=0).nonzero().flatten().tolist()
        raise ValueError(f"{name} holds NaN or inf in input columns {bad}; expected finite samples")
    if distinct:
        flat = (x.amax(dim=0) == x.amin(dim=0)).nonzero().flatten().tolist()
        if flat:
            raise ValueError(
                f"{name} is constant in input columns {flat}; expected at least two distinct values "
                f"per column to place a grid (pykan would build a zero-width grid)"
            )


# --------------------------------------------------------------------------------------------
# One layer
# --------------------------------------------------------------------------------------------


def _fit_transfer(x_sorted: Tensor, new_grid: Tensor, old_basis: Tensor, k: int) -> Tensor:
    """Least squares from old bases to new ones, per input: ``(in, G_new + k, G_old + k)``.

    Refitting every edge's spline on new knots (pykan's ``curve2coef``) is linear in the old
    coefficients, so one solve per input serves all ``out`` edges and no ``(N, in, out)``
    target is formed.
    """
    new_basis = bspline_basis(x_sorted, new_grid, k, check=False)  # (N, in, G_new + k)
    a = new_basis.transpose(0, 1)  # (in, N, G_new + k)
    b = old_basis.transpose(0, 1)  # (in, N, G_old + k)
    return torch.linalg.lstsq(a, b).solution  # (in, G_new + k, G_old + k)


class KANLinear(nn.Module):
    r"""One KAN layer: a learnable 1-D function on every edge ``i -> o``, summed at ``o`` (KAN §2.2).

    $y_o = \sum_i m_{i,o}\,\big(w^b_{i,o}\,\mathrm{silu}(x_i) + w^s_{i,o}\sum_c c_{i,o,c} B_c(x_i)\big)$;
    see the module docstring. Parameters and their initialisation follow pykan's ``KANLayer``:
    ``coef`` fits small uniform noise at the grid points, ``scale_base`` is uniform in
    ``(mu - sigma, mu + sigma) / sqrt(in)``, ``scale_sp`` is ``scale_sp / sqrt(in)``.
    ``grid`` and ``mask`` are buffers (pykan: frozen parameters), so state-dict keys match.

    Args:
        in_features: inputs ``in``.
        out_features: outputs ``out``.
        config: the edge functions' settings, a [`KANConfig`][refimpl.kan.KANConfig] (default: its
            defaults).
        **settings: fields of [`KANConfig`][refimpl.kan.KANConfig] by keyword (``grid_size``,
            ``spline_order``, ``grid_range``, ...), in place of ``config`` or overriding it.

    Raises:
        TypeError, ValueError: if an argument is not of the kind described above.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> layer = KANLinear(3, 2, grid_size=5, spline_order=3)
        >>> layer.grid.shape, layer.coef.shape  # G + 2k + 1 knots, G + k bases per edge
        (torch.Size([3, 12]), torch.Size([3, 2, 8]))
        >>> layer(torch.randn(4, 7, 3)).shape  # any leading dimensions
        torch.Size([4, 7, 2])
    """

    grid: Tensor
    mask: Tensor

    def __init__(
        self, in_features: int, out_features: int, *, config: KANConfig | None = None, **settings: Any
    ) -> None:
        super().__init__()
        self.in_features = checks.integer(in_features, "in_features", 1, "64")
        self.out_features = checks.integer(out_features, "out_features", 1, "64")
        if config is None:
            config = KANConfig(**settings)
        elif settings:
            config = replace(config, **settings)
        self.config = c = config
        self.grid_size, self.spline_order, self.grid_range = c.grid_size, c.spline_order, c.grid_range
        self.grid_eps = c.grid_eps
        self.base_activation = c.base_activation()

        G, k, n_in, n_out = self.grid_size, self.spline_order, self.in_features, self.out_features
        self.register_buffer("grid", uniform_grid(n_in, G, k, c.grid_range, check=False))  # (in, G + 2k + 1)
        self.register_buffer("mask", torch.ones(n_in, n_out))  # (in, out): 1 = edge kept
        # Noise at the G + 1 grid points, fitted by the bases: a near-zero spline to start from.
        points = self.grid[:, k : k + G + 1].T  # (G + 1, in)
        noise = (torch.rand(G + 1, n_in, n_out) - 0.5) * c.noise_scale / G  # (G + 1, in, out)
        basis = bspline_basis(points, self.grid, k, check=False).transpose(0, 1)  # (in, G + 1, G + k)
        coef = torch.linalg.lstsq(basis, noise.transpose(0, 1)).solution  # (in, G + k, out)
        self.coef = nn.Parameter(coef.transpose(1, 2).contiguous())  # (in, out, G + k)
        rand = torch.rand(n_in, n_out) * 2 - 1
        self.scale_base = nn.Parameter(
            (c.scale_base_mu + c.scale_base_sigma * rand) / math.sqrt(n_in), requires_grad=c.sb_trainable
        )  # (in, out)
        self.scale_sp = nn.Parameter(
            torch.full((n_in, n_out), c.scale_sp / math.sqrt(n_in)), requires_grad=c.sp_trainable
        )  # (in, out)
        self._cache: SplineGrid | None = None

    @classmethod
    def from_pykan(cls, layer: nn.Module) -> KANLinear:
        """The same layer as a pykan ``KANLayer``: its knots, parameters, flags and dtype, copied.

        Args:
            layer: a ``kan.KANLayer.KANLayer``.

        Returns:
            A ``KANLinear`` that computes what ``layer`` computes (its first output).

        Raises:
            TypeError: if ``layer`` does not look like a pykan ``KANLayer`` or its base
                function is not an ``nn.Module``.
        """
        needed = ("in_dim", "out_dim", "num", "k", "grid", "coef", "scale_base", "scale_sp", "mask", "base_fun")
        missing = [a for a in needed if not hasattr(layer, a)]
        if missing:
            raise TypeError(f"layer lacks {missing}; expected a pykan KANLayer")
        if not isinstance(layer.base_fun, nn.Module):
            raise TypeError(f"layer.base_fun is {layer.base_fun!r}; expected an nn.Module such as nn.SiLU()")
        grid = layer.grid.detach()
        G, k = int(layer.num), int(layer.k)
        lo, hi = float(grid[0, k]), float(grid[0, k + G])
        ours = cls(
            int(layer.in_dim), int(layer.out_dim), grid_size=G, spline_order=k, grid_range=(lo, hi),
            base_activation=type(layer.base_fun), grid_eps=float(layer.grid_eps),
            sb_trainable=layer.scale_base.requires_grad, sp_trainable=layer.scale_sp.requires_grad,
        ).to(device=grid.device, dtype=layer.coef.dtype)
        with torch.no_grad():
            for name in ("grid", "mask", "coef", "scale_base", "scale_sp"):
                getattr(ours, name).copy_(getattr(layer, name).detach())
        return ours

    # --- the function on every edge ---------------------------------------------------------

    def _grid_info(self) -> SplineGrid:
        key = (self.grid.data_ptr(), self.grid._version, self.grid.dtype, self.grid.device)
        if self._cache is None or self._cache.key != key:  # the knots are checked once per change
            self._cache = spline_grid(_check_layer_knots(self.grid, self.spline_order), self.spline_order, check=False)
        return self._cache

    def weight(self) -> Tensor:
        """The layer as one matrix ``W``: rows ``(i, f)``, ``f = 0`` the SiLU branch, then the bases.

        Returns:
            ``W``, shape ``(in * F, out)``, with ``W[(i, 0), o] = m w^b`` and
            ``W[(i, 1 + c), o] = m w^s c_{i,o,c}``.
        """
        base_w = (self.mask * self.scale_base).unsqueeze(1)  # (in, 1, out)
        spline_w = ((self.mask * self.scale_sp).unsqueeze(-1) * self.coef).transpose(1, 2)  # (in, G + k, out)
        return torch.cat([base_w, spline_w], dim=1).reshape(-1, self.out_features)  # (in * F, out)

    def features(self, x: Tensor) -> Tensor:
        """Every input's feature row ``[silu(x_i), B_0(x_i), ..., B_{G+k-1}(x_i)]``, dense.

        Args:
            x: inputs, shape ``(N, in)``.

        Returns:
            Features, shape ``(N, in, F)``; ``features(x).flatten(1) @ weight()`` is the layer.

        Raises:
            TypeError, ValueError: as [`forward`][refimpl.kan.KANLinear.forward].
        """
        return self._features(_check_input(x, self))

    def _features(self, x: Tensor) -> Tensor:
        """Unchecked [`features`][refimpl.kan.KANLinear.features]."""
        basis = bspline_basis(x, self.grid, self.spline_order, check=False)  # (N, in, G + k)
        return torch.cat([self.base_activation(x).unsqueeze(-1), basis], dim=-1)  # (N, in, F)

    def forward(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Apply the layer (fast path: non-zero bases only, recomputed in backward).

        Args:
            x: inputs, shape ``(..., in)``, the layer's dtype.
            check: ``False`` when the caller has checked ``x`` ([`KAN`][refimpl.kan.KAN] checks it
                once for all its layers).

        Returns:
            Outputs, shape ``(..., out)``.

        Raises:
            TypeError: if ``x`` is not a floating tensor of the layer's dtype.
            ValueError: if the last dimension of ``x`` is not ``in``, or ``x`` holds NaN or
                infinite values.
        """
        if check:
            x = _check_input(x, self)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # (N, in)
        base = self.base_activation(x2)  # (N, in): its own backward comes from autograd
        # x and the grid fit by construction: the kernel without its shape checks.
        y = spline_linear(x2, base, self.weight(), self.grid, self._grid_info(), self.spline_order, check=False)
        return y.reshape(*lead, self.out_features)  # (..., out)

    def forward_reference(self, x: Tensor) -> Tensor:
        r"""The layer written as the formula, with dense bases: slow, for reading and testing.

        Args:
            x: inputs, shape ``(N, in)``.

        Returns:
            Outputs, shape ``(N, out)``.

        Raises:
            TypeError, ValueError: as [`forward`][refimpl.kan.KANLinear.forward].
        """
        x = _check_input(x, self)
        basis = bspline_basis(x, self.grid, self.spline_order, check=False)  # (N, in, G + k)
        spline_w = (self.mask * self.scale_sp).unsqueeze(-1) * self.coef  # (in, out, G + k)
        # n: sample, i: input, c: basis, o: output; sums over i and c, no (N, in, out) tensor
        spline = torch.einsum("nic,ioc->no", basis, spline_w)  # (N, out)
        return self.base_activation(x) @ (self.mask * self.scale_base) + spline

    def edge_scales(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Outputs and the size of every edge's activation on a batch, as pykan measures it.

        ``scale[o, i] = std_n(phi_{i,o}(x_{n,i})) / (std_n(x_{n,i}) + 0.1)`` (unbiased std over
        the batch): pykan's ``acts_scale_spline``, the quantity its regulariser penalises.
        Since ``phi_{i,o}`` is linear in the features, its variance is ``w^T C_i w`` with
        ``C_i`` the features' covariance of input ``i``: no ``(N, in, out)`` tensor.

        Args:
            x: inputs, shape ``(N, in)``, ``N >= 2``.

        Returns:
            ``(y (N, out), scale (out, in))``.

        Raises:
            TypeError, ValueError: as [`forward`][refimpl.kan.KANLinear.forward], and for fewer
                than 2 samples (a spread over one sample is NaN).
        """
        return self._edge_scales(_check_batch(x, self))

    def _edge_scales(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Unchecked [`edge_scales`][refimpl.kan.KANLinear.edge_scales]."""
        feats = self._features(x)  # (N, in, F)
        N = feats.shape[0]
        w3 = self.weight().view(self.in_features, -1, self.out_features)  # (in, F, out)
        y = feats.flatten(1) @ w3.flatten(0, 1)  # (N, out)
        centred = feats - feats.mean(dim=0, keepdim=True)  # (N, in, F)
        cov = torch.einsum("nif,nig->ifg", centred, centred) / (N - 1)  # (in, F, F)
        var = torch.einsum("ifo,ifg,igo->oi", w3, cov, w3).clamp_min(0)  # (out, in)
        positive = var > 0
        std = torch.where(positive, torch.where(positive, var, 1.0).sqrt(), 0.0)  # no inf slope at 0
        return y, std / (x.std(dim=0) + 0.1)

    # --- grid update (KAN §2.2) and grid extension (KAN §2.4) --------------------------------

    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        r"""Grid update: move the knots to where the inputs are, keeping every edge's spline (KAN §2.2).

        As pykan's ``update_grid_from_samples``: sort each input's samples; the adaptive grid
        takes the samples at positions ``int(N / G * j)`` for ``j < G`` and the largest one;
        the uniform grid spans the same ``[min, max]`` in ``G`` equal steps (no margin); the
        new interior knots are ``grid_eps * uniform + (1 - grid_eps) * adaptive``, extended by
        ``k`` knots of the mean spacing on each side; ``coef`` is refitted by least squares
        to the old spline at the samples. ``scale_base``, ``scale_sp`` and ``mask`` stay.

        Args:
            x: samples of the layer's input, shape ``(..., in)``, at least 2 in total.

        Raises:
            TypeError: if ``x`` is not a floating tensor of the layer's dtype.
            ValueError: if its last dimension is not ``in``, it holds NaN or inf, or an input
                column is constant.
        """
        x = _check_input(x, self, finite=False).reshape(-1, self.in_features)  # (N, in)
        _check_samples(x, "x", distinct=True)
        G, k, N = self.grid_size, self.spline_order, x.shape[0]
        x_sorted = x.sort(dim=0).values  # (N, in)
        old_basis = bspline_basis(x_sorted, self.grid, k, check=False)  # (N, in, G + k)
        ids = [int(N / G * j) for j in range(G)] + [N - 1]  # pykan's positions, float division
        adaptive = x_sorted[ids].T  # (in, G + 1)
        lo, hi = adaptive[:, :1], adaptive[:, -1:]
        steps = torch.arange(G + 1, dtype=x.dtype, device=x.device)  # (G + 1,)
        uniform = lo + (hi - lo) / G * steps  # (in, G + 1)
        grid = _extend(self.grid_eps * uniform + (1 - self.grid_eps) * adaptive, k)  # (in, n)
        transfer = _fit_transfer(x_sorted, grid, old_basis, k)  # (in, G + k, G + k)
        self.coef.copy_(torch.einsum("icd,iod->ioc", transfer, self.coef))  # (in, out, G + k)
        self.grid.copy_(grid)

    @torch.no_grad()
    def refine(self, new_grid_size: int, x: Tensor) -> KANLinear:
        r"""Grid extension (KAN §2.4): a copy of this layer on a finer grid, fitted to it.

        As pykan's ``initialize_grid_from_parent``: the new interior knots interpolate the
        current ones piecewise-linearly at ``G_new + 1`` evenly spaced positions (so a uniform
        grid stays uniform and an updated one keeps its shape); ``coef`` is the least-squares
        fit of the current spline at the samples ``x``; ``scale_base``, ``scale_sp`` and
        ``mask`` are copied. This layer is left unchanged.

        Exact or approximate (our reasoning; the paper states only the least-squares fit)? When
        every old knot is also a new knot (nested grids: on a uniform grid, ``G_new`` a multiple
        of ``G``, e.g. 3 -> 12), each old spline is a piecewise polynomial whose breaks are new
        knots, so it lies in the new spline space: the fit reproduces it exactly on the samples
        inside the grid, up to rounding. Otherwise (3 -> 5) the old spline has breaks the new
        one cannot bend at, and the fit is the closest new spline, an approximation.
        ``tests/test_kan.py`` measures both.

        Args:
            new_grid_size: ``G_new >= 1`` (usually larger than ``G``).
            x: samples of the layer's input, shape ``(..., in)``, finite.

        Returns:
            A new ``KANLinear`` with ``G_new`` intervals.

        Raises:
            TypeError, ValueError: for a bad ``new_grid_size`` or ``x`` (see
                ``KANLinear.update_grid``).
        """
        G_new = checks.integer(new_grid_size, "new_grid_size", 1, "10")
        x = _check_input(x, self, finite=False).reshape(-1, self.in_features)  # (N, in)
        _check_samples(x, "x", distinct=False)
        G, k = self.grid_size, self.spline_order
        interior = self.grid[:, k : k + G + 1]  # (in, G + 1)
        pos = torch.arange(G_new + 1, dtype=torch.float64) * G / G_new  # (G_new + 1,): in old intervals
        left = pos.floor().clamp(max=G - 1).long()  # (G_new + 1,)
        frac = (pos - left).to(x.dtype).to(x.device)
        new_interior = interior[:, left] + frac * (interior[:, left + 1] - interior[:, left])  # (in, G_new + 1)
        grid = _extend(new_interior, k)  # (in, G_new + 2k + 1)
        x_sorted = x.sort(dim=0).values  # (N, in)
        old_basis = bspline_basis(x_sorted, self.grid, k, check=False)  # (N, in, G + k)
        transfer = _fit_transfer(x_sorted, grid, old_basis, k)  # (in, G_new + k, G + k)
        child = KANLinear(
            self.in_features, self.out_features, config=self.config, grid_size=G_new,
            base_activation=type(self.base_activation), sb_trainable=self.scale_base.requires_grad,
            sp_trainable=self.scale_sp.requires_grad,
        ).to(device=x.device, dtype=x.dtype)
        child.grid.copy_(grid)
        child.coef.copy_(torch.einsum("icd,iod->ioc", transfer, self.coef))  # (in, out, G_new + k)
        for name in ("mask", "scale_base", "scale_sp"):
            getattr(child, name).copy_(getattr(self, name))
        return child

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"grid_size={self.grid_size}, spline_order={self.spline_order}"
        )


# --------------------------------------------------------------------------------------------
# A network of layers
# --------------------------------------------------------------------------------------------


class KANForward(NamedTuple):
    """Output of ``KAN.forward_with_scales``."""

    y: Tensor  # (N, widths[-1])
    scales: list[Tensor]  # per layer, (out, in): the size of every edge's activation


class EdgeCurves(NamedTuple):
    """Every learned edge function of one layer, sampled: what ``KAN.activation_curves`` returns per layer."""

    x: Tensor
    """``(P, in)``: ``P`` points across each input's grid range ``[t_k, t_{k+G}]``."""
    phi: Tensor
    """``(P, in, out)``: ``phi[p, i, o]`` is the function on edge ``i -> o`` at ``x[p, i]``."""
    kept: Tensor
    """``(in, out)`` bool: the edges not pruned (``mask = 1``)."""


class KAN(nn.Module):
    r"""A KAN: layers of [`KANLinear`][refimpl.kan.KANLinear], ``widths = [n_0, n_1, ..., n_L]`` (KAN §2.2).

    The paper's ``[2, 5, 1]`` is ``KAN([2, 5, 1])``: two inputs, five hidden nodes, one
    output. As pykan's ``MultKAN`` without multiplication nodes and symbolic branch (its
    node affine maps start as the identity and are not trained by default, so they are left out).

    Args:
        widths: node counts ``[n_0, ..., n_L]``, at least two entries, each ``>= 1``.
        grid_size: ``G`` of every layer.
        spline_order: ``k`` of every layer.
        grid_range: initial ``(lo, hi)`` of every grid.
        **layer_kwargs: passed to every [`KANLinear`][refimpl.kan.KANLinear] (``grid_eps``,
            ``noise_scale``, ``base_activation``, ...).

    Raises:
        TypeError, ValueError: if ``widths`` is not a list of at least two positive ints, or
            a layer argument is bad.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = KAN([2, 5, 1], grid_size=3)
        >>> x = torch.rand(64, 2) * 2 - 1
        >>> out = model.forward_with_scales(x)
        >>> out.y.shape, [tuple(s.shape) for s in out.scales]
        (torch.Size([64, 1]), [(5, 2), (1, 5)])
        >>> model.regularization(out.scales).shape
        torch.Size([])
        >>> model.refine(10, x).layers[0].grid_size
        10
    """

    def __init__(
        self,
        widths: Sequence[int],
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(widths, Sequence) or len(widths) < 2:
            raise TypeError(f"widths must be a list of at least two ints, got {widths!r}; expected e.g. [2, 5, 1]")
        self.widths = [checks.integer(w, f"widths[{j}]", 1, "5") for j, w in enumerate(widths)]
        self.config = KANConfig(grid_size, spline_order, grid_range, **layer_kwargs)  # shared by every layer
        self.layers = nn.ModuleList(
            KANLinear(a, b, config=self.config) for a, b in zip(self.widths[:-1], self.widths[1:])
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply every layer (fast path).

        Args:
            x: inputs, shape ``(..., n_0)``.

        Returns:
            Outputs, shape ``(..., n_L)``.

        Raises:
            TypeError, ValueError: as [`KANLinear.forward`][refimpl.kan.KANLinear.forward]; ``x``
                is checked once, here, not again by each layer.
        """
        x = _check_input(x, self.layers[0])
        for layer in self.layers:
            x = layer(x, check=False)
        return x

    def forward_with_scales(self, x: Tensor) -> KANForward:
        """Apply every layer and measure every edge, for the regulariser and pruning.

        Args:
            x: inputs, shape ``(N, n_0)``, ``N >= 2``.

        Returns:
            ``KANForward(y (N, n_L), scales)`` with one ``(n_{l+1}, n_l)`` tensor per layer,
            from ``KANLinear.edge_scales``.

        Raises:
            TypeError, ValueError: as [`KANLinear.edge_scales`][refimpl.kan.KANLinear.edge_scales],
                checked once, here.
        """
        x = _check_batch(x, self.layers[0])
        scales = []
        for layer in self.layers:
            x, scale = layer._edge_scales(x)
            scales.append(scale)
        return KANForward(x, scales)

    def regularization(
        self,
        scales: Sequence[Tensor],
        lamb_l1: float = 1.0,
        lamb_entropy: float = 2.0,
        lamb_coef: float = 0.0,
        lamb_coefdiff: float = 0.0,
    ) -> Tensor:
        r"""The sparsity penalty of KAN §2.5.1, as pykan's ``MultKAN.reg`` computes it.

        Per layer, with ``s`` the ``(out, in)`` edge scales: the L1 term ``sum(s)``, plus the
        entropy of each row and each column of ``s`` normalised by its sum plus 1,
        $-\frac{1}{R}\sum_{\text{rows}} \sum p \log_2(p + 10^{-4})$ (rows and columns alike);
        plus optional L1 penalties on ``coef`` and on its differences. Departure from the
        paper, kept for pykan parity: the paper's L1 norm is the mean ``|phi|`` over the batch
        and its entropy divides by the plain sum; pykan uses the normalised spread above.

        Args:
            scales: from ``KAN.forward_with_scales``.
            lamb_l1: weight of the L1 term (pykan's default 1).
            lamb_entropy: weight of the entropy terms (pykan's default 2).
            lamb_coef: weight of ``sum_i mean_o sum_c |c|`` (default 0, as pykan's ``fit``).
            lamb_coefdiff: weight of the same on ``diff(c)`` along the bases (default 0).

        Returns:
            The penalty, a scalar; the training loss is ``loss + lamb * penalty``.

        Raises:
            ValueError: if a weight is negative, NaN or infinite.
        """
        lamb_l1, lamb_entropy = _real(lamb_l1, "lamb_l1", 0.0), _real(lamb_entropy, "lamb_entropy", 0.0, "2.0")
        lamb_coef, lamb_coefdiff = _real(lamb_coef, "lamb_coef", 0.0), _real(lamb_coefdiff, "lamb_coefdiff", 0.0)
        total = self.layers[0].coef.new_zeros(())
        for s in scales:
            p_row = s / (s.sum(dim=1, keepdim=True) + 1)  # (out, in)
            p_col = s / (s.sum(dim=0, keepdim=True) + 1)
            entropy_row = -(p_row * torch.log2(p_row + 1e-4)).sum(dim=1).mean()
            entropy_col = -(p_col * torch.log2(p_col + 1e-4)).sum(dim=0).mean()
            total = total + lamb_l1 * s.sum() + lamb_entropy * (entropy_row + entropy_col)
        for layer in self.layers:
            total = total + lamb_coef * layer.coef.abs().mean(dim=1).sum()
            total = total + lamb_coefdiff * layer.coef.diff(dim=-1).abs().mean(dim=1).sum()
        return total

    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Grid update of every layer to the inputs it sees, first layer first (KAN §2.2).

        Args:
            x: inputs, shape ``(N, n_0)``; see ``KANLinear.update_grid``.
        """
        for layer in self.layers:
            layer.update_grid(x)  # checks what each layer sees: a hidden column can be constant
            x = layer(x, check=False)

    @torch.no_grad()
    def refine(self, new_grid_size: int, x: Tensor) -> KAN:
        """Grid extension: a copy of the network on finer grids, each layer fitted to this one (KAN §2.4).

        Args:
            new_grid_size: ``G_new`` of every layer.
            x: inputs, shape ``(N, n_0)``; each layer is fitted on what it sees here.

        Returns:
            A new ``KAN``; this one is unchanged.
        """
        child = copy.deepcopy(self)
        layers = []
        for layer in self.layers:
            layers.append(layer.refine(new_grid_size, x))  # checks x, as update_grid does
            x = layer(x, check=False)
        child.layers = nn.ModuleList(layers)
        return child

    @torch.no_grad()
    def prune(self, x: Tensor, threshold: float = 1e-2) -> list[Tensor]:
        """Switch off hidden nodes whose edges are all small (KAN §2.5.1, "Pruning").

        A hidden node is kept if its largest incoming and its largest outgoing edge scale
        both exceed ``threshold``; the edges of every other hidden node get ``mask = 0``, so
        they compute 0 from then on (shapes stay). Departure from the paper: the edge size
        is the normalised spread that the regulariser uses, not the mean ``|phi|``.

        Args:
            x: inputs, shape ``(N, n_0)``, ``N >= 2``.
            threshold: the paper's ``theta`` (default ``1e-2``), a finite number ``>= 0``.

        Returns:
            For every hidden layer, the indices of the nodes kept.

        Raises:
            TypeError, ValueError: for a bad ``x`` (see ``KAN.forward_with_scales``) or a
                ``threshold`` that is negative, NaN (which would switch every node off) or infinite.
        """
        threshold = _real(threshold, "threshold", 0.0, "1e-2")
        scales = self.forward_with_scales(x).scales
        kept = []
        for l in range(len(self.layers) - 1):
            incoming = scales[l].amax(dim=1)  # (n_{l+1},): over the layer's inputs
            outgoing = scales[l + 1].amax(dim=0)  # (n_{l+1},): over the next layer's outputs
            keep = (incoming > threshold) & (outgoing > threshold)
            self.layers[l].mask[:, ~keep] = 0
            self.layers[l + 1].mask[~keep, :] = 0
            kept.append(keep.nonzero().flatten())
        return kept

    @torch.no_grad()
    def activation_curves(self, num_points: int = 200) -> list[EdgeCurves]:
        r"""Every learned edge function $\phi_{i,o}$, sampled on its grid's interior range: the data of a KAN plot.

        ``paper_notes.figures.kan.edge_functions`` draws them, one panel per layer (the site's
        figures live there, not in the reference code).

        Args:
            num_points: points ``P`` per curve, at least 2.

        Returns:
            One [`EdgeCurves`][refimpl.kan.EdgeCurves] per layer; ``phi.sum(1)`` is the layer's
            output at ``x`` (the sum on the nodes).

        Raises:
            TypeError, ValueError: if ``num_points`` is not an int ``>= 2``.

        Examples:
            >>> _ = torch.manual_seed(0)
            >>> [tuple(c.phi.shape) for c in KAN([2, 3, 1], grid_size=3).activation_curves(50)]
            [(50, 2, 3), (50, 3, 1)]
        """
        num_points = checks.integer(num_points, "num_points", 2, "200")
        curves = []
        for layer in self.layers:
            k, G = layer.spline_order, layer.grid_size
            lo, hi = layer.grid[:, k], layer.grid[:, k + G]  # (in,)
            steps = torch.linspace(0, 1, num_points, dtype=lo.dtype, device=lo.device)  # (P,)
            xs = lo + (hi - lo) * steps.unsqueeze(1)  # (P, in)
            w3 = layer.weight().view(layer.in_features, -1, layer.out_features)  # (in, F, out)
            phi = torch.einsum("pif,ifo->pio", layer._features(xs), w3)  # (P, in, out), P small
            curves.append(EdgeCurves(xs, phi, layer.mask > 0))
        return curves
