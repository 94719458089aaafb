"""Tests for refimpl.kan: parity with the official pykan, gradients, B-spline properties, errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import matplotlib
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kan.KANLayer import KANLayer
from kan.MultKAN import MultKAN
from torch import Tensor

from checks_counter import checked_twice
from paper_notes.figures.kan import edge_functions
from refimpl import bspline
from refimpl.bspline import bspline_basis, extend_grid, uniform_grid
from refimpl.kan import KAN, KANConfig, KANLinear

matplotlib.use("Agg")

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
DTYPES = [torch.float32, torch.float64]
FAST = settings(max_examples=40, deadline=None)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """pykan builds its tensors (knots, refine's helper layer) in the default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def pykan_layer(dtype: torch.dtype, n_in: int = 4, n_out: int = 3, G: int = 5, k: int = 3, seed: int = 0) -> KANLayer:
    torch.manual_seed(seed)
    with default_dtype(dtype):
        layer = KANLayer(n_in, n_out, num=G, k=k, noise_scale=0.5)
        with torch.no_grad():  # non-trivial scales, so every parameter's gradient matters
            layer.scale_sp.mul_(torch.rand(n_in, n_out) + 0.5)
    return layer


def samples(dtype: torch.dtype, n: int, n_in: int = 4, scale: float = 1.3, seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, n_in, generator=g, dtype=torch.float64) * scale).to(dtype)


def max_diff(a: Tensor, b: Tensor) -> float:
    return (a.detach() - b.detach()).abs().max().item()


def compare_with_pykan(theirs: KANLayer, ours: KANLinear, x: Tensor) -> dict[str, float]:
    """Max abs differences of outputs and of every gradient, for a mean loss with random weights."""
    weights = torch.randn(x.shape[0], ours.out_features, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    weights = weights.to(x.device)
    x_theirs, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_theirs, y_ours = theirs(x_theirs)[0], ours(x_ours)
    (y_theirs * weights).mean().backward()
    (y_ours * weights).mean().backward()
    diffs = {"output": max_diff(y_theirs, y_ours), "x": max_diff(x_theirs.grad, x_ours.grad)}
    for name in ("coef", "scale_base", "scale_sp"):
        diffs[name] = max_diff(getattr(theirs, name).grad, getattr(ours, name).grad)
        getattr(theirs, name).grad, getattr(ours, name).grad = None, None
    return diffs


# --------------------------------------------------------------------------------------------
# Exactness against pykan
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("G", "k"), [(5, 3), (3, 1), (7, 2), (20, 3)])
def test_layer_matches_pykan_outputs_and_every_gradient(dtype: torch.dtype, G: int, k: int) -> None:
    theirs = pykan_layer(dtype, G=G, k=k)
    ours = KANLinear.from_pykan(theirs)
    diffs = compare_with_pykan(theirs, ours, samples(dtype, 96))
    assert max(diffs.values()) <= TOL[dtype], diffs


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_matches_pykan_with_pruned_edges_and_frozen_scales(dtype: torch.dtype) -> None:
    theirs = pykan_layer(dtype)
    with torch.no_grad():
        theirs.mask[1, 2] = 0
        theirs.mask[3, 0] = 0
    theirs.scale_base.requires_grad_(False)  # pykan's sb_trainable=False
    ours = KANLinear.from_pykan(theirs)
    assert not ours.scale_base.requires_grad
    x = samples(dtype, 64)
    x_theirs, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    theirs(x_theirs)[0].sum().backward()
    ours(x_ours).sum().backward()
    assert max_diff(theirs(x)[0], ours(x)) <= TOL[dtype]
    assert max_diff(x_theirs.grad, x_ours.grad) <= TOL[dtype] * 10
    assert ours.scale_base.grad is None
    assert ours.scale_sp.grad[1, 2] == 0 and ours.coef.grad[3, 0].abs().sum() == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_update_grid_matches_pykan_knots_coefficients_outputs_and_gradients(dtype: torch.dtype) -> None:
    theirs = pykan_layer(dtype)
    ours = KANLinear.from_pykan(theirs)
    x = samples(dtype, 203, scale=0.7)  # N not a multiple of G: pykan's int(N / G * j) positions
    with default_dtype(dtype):
        theirs.update_grid_from_samples(x)
    ours.update_grid(x)
    assert max_diff(theirs.grid, ours.grid) <= TOL[dtype]
    assert max_diff(theirs.coef, ours.coef) <= TOL[dtype]
    diffs = compare_with_pykan(theirs, ours, samples(dtype, 96, seed=5))  # non-uniform knots now
    assert max(diffs.values()) <= TOL[dtype], diffs


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_on_cuda_layer_and_grid_update_match_pykan(dtype: torch.dtype) -> None:
    """The comparisons above on a GPU: outputs and gradients, then knots and coefficients after a grid update."""
    theirs = pykan_layer(dtype)
    ours = KANLinear.from_pykan(theirs)
    theirs.to("cuda")  # pykan's own .to also records the device it builds helper tensors on
    ours.to("cuda")
    diffs = compare_with_pykan(theirs, ours, samples(dtype, 96).cuda())
    assert max(diffs.values()) <= TOL[dtype], diffs
    x = samples(dtype, 203, scale=0.7).cuda()
    with default_dtype(dtype):
        theirs.update_grid_from_samples(x)
    ours.update_grid(x)
    assert ours.grid.is_cuda and ours.coef.is_cuda
    assert max_diff(theirs.grid, ours.grid) <= TOL[dtype]
    # Both fit by least squares, pykan on the curve values and ours on the basis change; CUDA's
    # lstsq (QR only) rounds differently from the CPU's, hence the looser bound.
    assert max_diff(theirs.coef, ours.coef) <= 10 * TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("updated_first", [False, True])
def test_refine_matches_pykan_initialize_grid_from_parent(dtype: torch.dtype, updated_first: bool) -> None:
    parent_theirs = pykan_layer(dtype, G=3)
    parent_ours = KANLinear.from_pykan(parent_theirs)
    x = samples(dtype, 150, scale=0.6)
    if updated_first:
        with default_dtype(dtype):
            parent_theirs.update_grid_from_samples(x)
        parent_ours.update_grid(x)
    with default_dtype(dtype):
        child_theirs = KANLayer(4, 3, num=10, k=3)
        child_theirs.initialize_grid_from_parent(parent_theirs, x)
    for name in ("scale_base", "scale_sp", "mask"):  # what MultKAN.refine copies from the parent
        getattr(child_theirs, name).data = getattr(parent_theirs, name).data.clone()
    child_ours = parent_ours.refine(10, x)
    assert child_ours.grid_size == 10 and parent_ours.grid_size == 3
    assert max_diff(child_theirs.grid, child_ours.grid) <= TOL[dtype]
    assert max_diff(child_theirs.coef, child_ours.coef) <= TOL[dtype]
    diffs = compare_with_pykan(child_theirs, child_ours, samples(dtype, 96, seed=7, scale=0.5))
    assert max(diffs.values()) <= TOL[dtype], diffs


def test_pykan_state_dict_loads_with_the_same_keys() -> None:
    theirs = pykan_layer(torch.float32)
    ours = KANLinear(4, 3)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = samples(torch.float32, 32)
    assert max_diff(theirs(x)[0], ours(x)) <= TOL[torch.float32]


@pytest.mark.parametrize("dtype", DTYPES)
def test_regularization_matches_multkan_reg_and_its_gradients(dtype: torch.dtype) -> None:
    with default_dtype(dtype):
        theirs = MultKAN(width=[3, 4, 2], grid=5, k=3, seed=0, auto_save=False, symbolic_enabled=False)
        with torch.no_grad():
            for layer in theirs.act_fun:
                layer.coef.mul_(8)  # spline large enough to matter next to the SiLU branch
    ours = KAN([3, 4, 2], grid_size=5).to(dtype)
    for l, layer in enumerate(theirs.act_fun):
        ours.layers[l] = KANLinear.from_pykan(layer)
    x = samples(dtype, 80, n_in=3, scale=0.8)
    y_theirs = theirs(x)
    reg_theirs = theirs.reg("edge_forward_spline_n", 1.0, 2.0, 0.5, 0.3)
    out = ours.forward_with_scales(x)
    reg_ours = ours.regularization(out.scales, 1.0, 2.0, 0.5, 0.3)
    assert max_diff(y_theirs, out.y) <= TOL[dtype]
    for s_theirs, s_ours in zip(theirs.acts_scale_spline, out.scales):
        assert max_diff(s_theirs, s_ours) <= TOL[dtype]
    assert abs(reg_theirs.item() - reg_ours.item()) <= TOL[dtype]
    (y_theirs.pow(2).mean() + 0.1 * reg_theirs).backward()
    (out.y.pow(2).mean() + 0.1 * reg_ours).backward()
    for layer_theirs, layer_ours in zip(theirs.act_fun, ours.layers):
        for name in ("coef", "scale_base", "scale_sp"):
            assert max_diff(getattr(layer_theirs, name).grad, getattr(layer_ours, name).grad) <= 10 * TOL[dtype]


# --------------------------------------------------------------------------------------------
# Gradients and the fast path
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "updated"), [(1, False), (3, False), (3, True)])
def test_gradcheck_in_float64(k: int, updated: bool) -> None:
    torch.manual_seed(0)
    layer = KANLinear(2, 2, grid_size=3, spline_order=k).double()
    if updated:  # non-uniform knots: the general path
        layer.update_grid(samples(torch.float64, 50, n_in=2, scale=0.5))
    x = samples(torch.float64, 4, n_in=2, scale=0.6).requires_grad_()
    params = {name: p.detach().clone().requires_grad_() for name, p in layer.named_parameters()}

    def f(x: Tensor, coef: Tensor, scale_base: Tensor, scale_sp: Tensor) -> Tensor:
        state = {"coef": coef, "scale_base": scale_base, "scale_sp": scale_sp}
        return torch.func.functional_call(layer, state, (x,))

    assert torch.autograd.gradcheck(f, (x, params["coef"], params["scale_base"], params["scale_sp"]))


@given(
    G=st.integers(1, 8),
    k=st.integers(0, 4),
    updated=st.booleans(),
    seed=st.integers(0, 2**16),
)
@FAST
def test_fast_path_equals_the_dense_cox_de_boor_formula(G: int, k: int, updated: bool, seed: int) -> None:
    torch.manual_seed(seed)
    layer = KANLinear(3, 2, grid_size=G, spline_order=k).double()
    if updated:
        layer.update_grid(torch.randn(40, 3, dtype=torch.float64))
    # inside the grid, in the extension, and beyond the last knots on both sides
    x = torch.randn(2, 25, 3, dtype=torch.float64) * 2.5
    assert torch.allclose(layer(x), layer.forward_reference(x.reshape(-1, 3)).reshape(2, 25, 2), atol=1e-10)


def test_any_leading_dimensions_like_nn_linear() -> None:
    layer = KANLinear(4, 3)
    x = torch.randn(2, 3, 5, 4)
    y = layer(x)
    assert y.shape == (2, 3, 5, 3)
    assert torch.allclose(y.reshape(-1, 3), layer(x.reshape(-1, 4)))
    assert layer(torch.randn(4)).shape == (3,)


def test_spline_order_zero_works_piecewise_constant_with_zero_slope() -> None:
    torch.manual_seed(0)
    layer = KANLinear(2, 2, grid_size=4, spline_order=0).double()
    layer.base_activation = torch.nn.Identity()  # so d y / d x is the scale_base row sum only
    x = torch.rand(30, 2, dtype=torch.float64).mul(1.8).sub(0.9).requires_grad_()
    assert torch.allclose(layer(x), layer.forward_reference(x), atol=1e-12)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, layer.scale_base.sum(dim=1).expand(30, 2))
    layer.update_grid(x.detach())
    assert layer.refine(8, x.detach()).grid.shape == (2, 9)


# --------------------------------------------------------------------------------------------
# B-spline bases: properties
# --------------------------------------------------------------------------------------------

orders = st.integers(0, 4)
grid_sizes = st.integers(1, 10)
ranges = st.tuples(st.floats(-3, 3), st.floats(0.1, 4)).map(lambda t: (t[0], t[0] + t[1]))


@given(G=grid_sizes, k=orders, grid_range=ranges, u=st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=20))
@FAST
def test_bases_are_non_negative_with_at_most_k_plus_1_non_zero(G: int, k: int, grid_range, u: list[float]) -> None:
    lo, hi = grid_range
    grid = uniform_grid(1, G, k, grid_range, dtype=torch.float64)
    x = (lo + (hi - lo) * torch.tensor(u, dtype=torch.float64)).unsqueeze(1)  # (N, 1)
    basis = bspline_basis(x, grid, k)  # (N, 1, G + k)
    assert basis.shape == (len(u), 1, G + k)
    assert bool((basis >= 0).all())
    assert bool(((basis != 0).sum(-1) <= k + 1).all())


@given(G=grid_sizes, k=orders, grid_range=ranges, u=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=20))
@FAST
def test_bases_sum_to_one_inside_grid_range(G: int, k: int, grid_range, u: list[float]) -> None:
    lo, hi = grid_range
    grid = uniform_grid(1, G, k, grid_range, dtype=torch.float64)
    x = (lo + (hi - lo) * torch.tensor(u, dtype=torch.float64)).clamp(max=grid[0, k + G].item()).unsqueeze(1)
    x = x[x[:, 0] < grid[0, k + G]].reshape(-1, 1)
    assert torch.allclose(bspline_basis(x, grid, k).sum(-1), torch.ones(len(x), 1, dtype=torch.float64))


@given(G=grid_sizes, k=orders, grid_range=ranges, gap=st.floats(0, 10))
@FAST
def test_bases_are_exactly_zero_beyond_the_extended_knots(G: int, k: int, grid_range, gap: float) -> None:
    layer = KANLinear(1, 2, grid_size=G, spline_order=k, grid_range=grid_range).double()
    with torch.no_grad():
        layer.scale_base.zero_()  # only the spline branch: it must vanish out there
    grid = layer.grid
    x = torch.tensor([[grid[0, 0].item() - gap - 1e-9], [grid[0, -1].item() + gap]], dtype=torch.float64)
    assert bool((bspline_basis(x, grid, k) == 0).all())
    assert bool((layer(x) == 0).all())


def test_extend_grid_adds_k_knots_at_the_mean_spacing() -> None:
    interior = torch.tensor([[0.0, 1.0, 3.0]])
    assert torch.equal(extend_grid(interior, 2), torch.tensor([[-3.0, -1.5, 0.0, 1.0, 3.0, 4.5, 6.0]]))


# --------------------------------------------------------------------------------------------
# The network: contract, grid update, pruning, plotting
# --------------------------------------------------------------------------------------------


def test_kan_forward_backward_gives_every_parameter_a_gradient() -> None:
    torch.manual_seed(0)
    model = KAN([2, 5, 1], grid_size=3)
    x = torch.rand(32, 2) * 2 - 1
    out = model.forward_with_scales(x)
    assert torch.allclose(out.y, model(x), atol=1e-6)
    (out.y.pow(2).mean() + 0.01 * model.regularization(out.scales)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name


def test_kan_update_grid_then_refine_keeps_the_function() -> None:
    torch.manual_seed(0)
    model = KAN([2, 3, 1], grid_size=5)
    x = torch.rand(256, 2) * 2 - 1
    before = model(x)
    model.update_grid(x)
    assert (model(x) - before).abs().max() < 0.05
    fine = model.refine(20, x)
    assert [layer.grid_size for layer in fine.layers] == [20, 20]
    assert (fine(x) - model(x)).abs().max() < 0.05


@pytest.mark.parametrize("updated_first", [False, True])
def test_grid_extension_is_exact_for_nested_knots_and_only_approximate_otherwise(updated_first: bool) -> None:
    """KAN §2.4 fits the fine spline to the coarse one by least squares. With nested knots
    (G = 3 -> 12: every old knot is a new knot) the coarse spline lies in the fine spline space
    and the fit is exact; with G = 3 -> 5 it is only the closest fine spline."""
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 401, dtype=torch.float64).unsqueeze(1)  # (N, 1) inside the grid
    layer = KANLinear(1, 2, grid_size=3).double()
    with torch.no_grad():
        layer.coef.normal_()  # a wiggly coarse spline, so the difference shows
        if updated_first:  # a non-uniform grid from samples: nesting still holds for 3 -> 12
            samples = torch.rand(300, 1, dtype=torch.float64) * 1.6 - 0.9
            layer.update_grid(samples)
            x = samples
        y = layer(x)
        nested = (layer.refine(12, x)(x) - y).abs().max().item()
        not_nested = (layer.refine(5, x)(x) - y).abs().max().item()
    assert nested < 1e-12
    assert not_nested > 1e-3


def test_prune_masks_the_edges_of_a_dead_hidden_node() -> None:
    torch.manual_seed(0)
    model = KAN([2, 3, 1], grid_size=3)
    with torch.no_grad():
        model.layers[1].scale_base[1] = 0
        model.layers[1].scale_sp[1] = 0  # hidden node 1 feeds nothing forward
    kept = model.prune(torch.rand(64, 2) * 2 - 1)
    assert kept[0].tolist() == [0, 2]
    assert bool((model.layers[0].mask[:, 1] == 0).all()) and bool((model.layers[1].mask[1] == 0).all())
    assert bool((model.layers[0].mask[:, [0, 2]] == 1).all())


def test_the_activation_curves_are_the_edge_functions_and_sum_to_the_layer_at_each_point() -> None:
    torch.manual_seed(0)
    model = KAN([2, 3, 1], grid_size=3)
    with torch.no_grad():
        model.layers[1].mask[1, 0] = 0  # a pruned edge: its curve is flat zero
    curves = model.activation_curves(num_points=20)
    assert [tuple(c.phi.shape) for c in curves] == [(20, 2, 3), (20, 3, 1)]
    for layer, c in zip(model.layers, curves):
        assert torch.allclose(c.phi.sum(1), layer.forward_reference(c.x), atol=1e-6)  # sums on the nodes
        assert torch.equal(c.x[[0, -1]].T, layer.grid[:, [3, 3 + 3]])  # the grid's interior range
    assert not curves[1].kept[1, 0] and bool((curves[1].phi[:, 1, 0] == 0).all())


def test_the_edge_function_figure_draws_one_axis_per_edge() -> None:
    model = KAN([2, 3, 1], grid_size=3)
    fig = edge_functions(model, num_points=20)
    assert len(fig.axes) == 2 * 3 + 3 * 1


# --------------------------------------------------------------------------------------------
# Checks at the door: each input once per call
# --------------------------------------------------------------------------------------------


def _entry_points() -> dict[str, object]:
    """Every public call of KAN and of its B-splines, on valid input built outside the count.

    The models are run once first: a layer checks its knots when they change (the first call, a
    state dict, a grid update), not on every call.
    """
    torch.manual_seed(0)
    model, layer, x = KAN([3, 4, 4, 1], grid_size=4), KANLinear(3, 2), torch.rand(8, 3)
    model(x), layer(x)
    grid = uniform_grid(3, 4, 3)
    info = bspline.spline_grid(grid, 3)
    weight = torch.rand(3 * (1 + 4 + 3), 2)
    return {
        "KAN.forward": lambda: model(x),
        "KAN.forward_with_scales": lambda: model.forward_with_scales(x),
        "KAN.regularization": lambda: model.regularization(model.forward_with_scales(x).scales),
        "KAN.activation_curves": lambda: model.activation_curves(20),
        "KANLinear.forward": lambda: layer(x),
        "KANLinear.forward_reference": lambda: layer.forward_reference(x),
        "KANLinear.features": lambda: layer.features(x),
        "KANLinear.edge_scales": lambda: layer.edge_scales(x),
        "KANLinear()": lambda: KANLinear(3, 2, grid_size=4, noise_scale=0.1),
        "KANConfig()": lambda: KANConfig(grid_size=4),
        "uniform_grid": lambda: uniform_grid(3, 4, 3),
        "extend_grid": lambda: extend_grid(grid[:, 3:8], 3),
        "bspline_basis": lambda: bspline_basis(x, grid, 3),
        "spline_grid": lambda: bspline.spline_grid(grid, 3),
        "spline_linear": lambda: bspline.spline_linear(x, torch.nn.functional.silu(x), weight, grid, info, 3),
    }


@pytest.mark.parametrize("entry", list(_entry_points()))
def test_each_argument_of_a_public_kan_call_is_checked_at_most_once(entry: str) -> None:
    assert checked_twice(_entry_points()[entry]) == {}


def test_a_kan_builds_its_settings_once_and_every_layer_shares_them() -> None:
    model = KAN([2, 3, 1], grid_size=4, noise_scale=0.1)
    assert all(layer.config is model.config for layer in model.layers)
    assert model.config == KANConfig(grid_size=4, noise_scale=0.1)
    # Built once for the network: only each layer's own sizes are checked per layer (3 layers here).
    assert checked_twice(lambda: KAN([3, 4, 4, 1], grid_size=4)) == {"in_features": 3, "out_features": 3}


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"grid_size": 0}, ValueError, "grid_size"),
        ({"grid_size": 2.5}, TypeError, "grid_size"),
        ({"spline_order": -1}, ValueError, "spline_order"),
        ({"grid_range": (1, 1)}, ValueError, "grid_range"),
        ({"grid_range": (2, -2)}, ValueError, "grid_range"),
        ({"grid_range": 1.0}, TypeError, "grid_range"),
        ({"grid_eps": 1.5}, ValueError, "grid_eps"),
        ({"base_activation": torch.sin}, TypeError, "base_activation"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        KANLinear(3, 2, **kwargs)


def test_bad_inputs_are_rejected_with_the_expectation() -> None:
    layer = KANLinear(3, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        layer(torch.randn(5, 4))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.randn(5, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(5, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[0.0, 1.0, 2.0]])
    with pytest.raises(TypeError, match="widths"):
        KAN([3])


def test_update_grid_rejects_non_finite_samples_and_constant_columns() -> None:
    layer = KANLinear(3, 2)
    grid = layer.grid.clone()
    x = torch.randn(20, 3)
    x[4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf in input columns \[1\]"):
        layer.update_grid(x)
    x[4, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        layer.update_grid(x)
    x = torch.randn(20, 3)
    x[:, 2] = 0.5
    with pytest.raises(ValueError, match=r"constant in input columns \[2\]"):
        layer.update_grid(x)
    assert torch.equal(layer.grid, grid)  # nothing was written
