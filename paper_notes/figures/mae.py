"""Figures for the MAE concept page (docs/concepts/mae.md), drawn from ``papers/mae.yaml``.

``mae/decoder.svg``: fine-tuning and linear-probing accuracy against decoder depth (MAE Table 1a)
and decoder width (MAE Table 1b), the numbers the page also shows as tables.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ._results import number, results


def decoder() -> Figure:
    """Two panels: decoder depth and decoder width, each with fine-tuning and linear probing."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, n, name in zip(axes, ("1a", "1b"), ("decoder depth (blocks)", "decoder width")):
        data = results("mae", "table", n)
        xs = [number(row[0]) for row in data.rows]
        for col, label in ((1, "fine-tuning"), (2, "linear probing")):
            ax.plot(xs, [number(row[col]) for row in data.rows], "-o", markersize=4, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(name)
        ax.set_title(f"MAE Table {n} (ViT-L, 800 epochs; default: 8 blocks, 512 wide)", fontsize=8)
    axes[0].set_ylabel("top-1 (%)")
    axes[0].legend(fontsize=8)
    return fig


FIGURES = {"mae/decoder.svg": decoder}
