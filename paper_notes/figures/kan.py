"""Figures for the KAN page (docs/concepts/kan.md), drawn with ``refimpl.kan`` itself.

``kan/bspline_bases.svg``: the B-spline bases of orders 0 to 3 on the default grid (G = 5 on
[-1, 1], k extension knots each side), with their sum, so the page shows exactly what
``bspline_basis`` computes. ``kan/grid_extension.svg``: one edge function fitted on a coarse
grid, then refined with ``KANLinear.refine`` to a nested grid (G = 3 -> 12, exact) and to one
that is not nested (G = 3 -> 5, approximate), fixed seed.

``edge_functions`` draws the learned edge functions of any ``KAN`` (``docs/notebooks/kan_fit.py``
draws its trained one) from ``KAN.activation_curves``: the reference code gives the curves, this
module draws them.
"""

from __future__ import annotations

import math

import torch

from refimpl.bspline import bspline_basis, uniform_grid
from refimpl.kan import KAN, KANLinear

G = 5
SEED = 0


def bspline_bases():
    """One panel per order k = 0..3: every basis over the extended knots, and their sum."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(11, 2.8), layout="constrained", sharey=True)
    for k, ax in enumerate(axes):
        grid = uniform_grid(1, G, k, dtype=torch.float64)  # (1, G + 2k + 1)
        x = torch.linspace(grid[0, 0].item(), grid[0, -1].item() - 1e-9, 800, dtype=torch.float64)
        basis = bspline_basis(x.unsqueeze(1), grid, k)[:, 0]  # (P, G + k)
        ax.axvspan(-1, 1, color="0.93", zorder=0)
        for c in range(basis.shape[1]):
            ax.plot(x, basis[:, c], linewidth=1.3)
        ax.plot(x, basis.sum(-1), color="black", linestyle="--", linewidth=1.0, label="各基函数之和")
        ax.plot(grid[0], torch.zeros_like(grid[0]), "k|", markersize=9)
        ax.set_title(f"阶数 k = {k}：{G + k} 个基函数，{G + 2 * k + 1} 个节点", fontsize=9)
        ax.set_xlabel("x（灰底：grid_range [-1, 1]）", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def _fit(layer: KANLinear, x: torch.Tensor, target: torch.Tensor) -> None:
    """Least-squares spline coefficients of a 1 -> 1 layer (what training would approach)."""
    basis = bspline_basis(x, layer.grid, layer.spline_order)[:, 0]  # (P, G + k)
    layer.coef.copy_(torch.linalg.lstsq(basis, target).solution.T.unsqueeze(0))  # (1, 1, G + k)


@torch.no_grad()
def grid_extension():
    """Grid extension from a coarse fit (G = 3): to G = 12 (nested knots, the same curve) and to
    G = 5 (knots not nested, only the closest curve); then the G = 12 copy trained further."""
    import matplotlib.pyplot as plt

    torch.manual_seed(SEED)
    x = torch.linspace(-1, 1, 400, dtype=torch.float64).unsqueeze(1)  # (P, 1)
    target = torch.sin(math.pi * x) + 0.3 * torch.cos(4 * math.pi * x)  # (P, 1)
    coarse = KANLinear(1, 1, grid_size=3).double()
    coarse.scale_base.zero_()  # spline branch only, to show the grid
    coarse.scale_sp.fill_(1.0)
    _fit(coarse, x, target)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained", sharey=True)
    for ax, G in zip(axes, (12, 5)):
        fine = coarse.refine(G, x)  # least-squares copy of the coarse curve on G intervals
        start = fine(x)
        gap = (start - coarse(x)).abs().max().item()
        ax.plot(x, target, color="black", linewidth=2.4, alpha=0.3, label="目标函数")
        ax.plot(x, coarse(x), linewidth=1.4, label="G = 3，拟合结果")
        ax.plot(x, start, linestyle="--", linewidth=1.4, label=f"refine({G})：最大 |差| = {gap:.1e}")
        if G == 12:
            _fit(fine, x, target)
            ax.plot(x, fine(x), linewidth=1.4, label="G = 12，继续拟合")
        ax.plot(coarse.grid[0, 3:7], torch.zeros(4), "|", color="C0", markersize=12)
        ax.plot(fine.grid[0, 3 : 4 + G], torch.zeros(G + 1) - 0.15, "|", color="C1", markersize=8)
        nested = "节点嵌套：精确" if G % 3 == 0 else "节点不嵌套：近似"
        ax.set_title(f"网格扩展 (grid extension) G = 3 → {G}（{nested}）", fontsize=9)
        ax.set_xlabel(f"x（竖线：G = 3 与 G = {G} 的内部节点）")
        ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("φ(x)")
    return fig


def edge_functions(model: KAN, num_points: int = 200):
    """Every learned edge function ``phi_{i,o}`` of ``model`` on its grid's interior range.

    One panel per layer, a row per output and a column per input; pruned edges (``mask = 0``)
    are drawn grey and flat.

    Args:
        model: a [`KAN`][refimpl.kan.KAN].
        num_points: points per curve (see [`KAN.activation_curves`][refimpl.kan.KAN.activation_curves]).

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    import matplotlib.pyplot as plt

    curves = model.activation_curves(num_points)
    fig = plt.figure(figsize=(3.0 * len(curves) + 1.5, 4.2), layout="constrained")
    panels = fig.subfigures(1, len(curves), squeeze=False)[0]
    for l, (layer, panel) in enumerate(zip(curves, panels), 1):
        n_in, n_out = layer.kept.shape
        axes = panel.subplots(n_out, n_in, squeeze=False)
        for o in range(n_out):
            for i in range(n_in):
                ax = axes[o][i]
                on = bool(layer.kept[i, o])
                ax.plot(layer.x[:, i].cpu(), layer.phi[:, i, o].cpu(), color="C0" if on else "0.7", linewidth=1.2)
                ax.set_xticks([])
                ax.set_yticks([])
                if o == n_out - 1:
                    ax.set_xlabel(f"输入 {i}", fontsize=7)
                if i == 0:
                    ax.set_ylabel(f"输出 {o}", fontsize=7)
        panel.suptitle(f"第 {l} 层：{n_in} 个输入 → {n_out} 个输出", fontsize=9)
    return fig


FIGURES = {
    "kan/bspline_bases.svg": bspline_bases,
    "kan/grid_extension.svg": grid_extension,
}
