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
    for ax, n, name in zip(axes, ("1a", "1b"), ("解码器深度 (decoder depth)：块数", "解码器宽度 (decoder width)")):
        data = results("mae", "table", n)
        xs = [number(row[0]) for row in data.rows]
        for col, label in ((1, "微调 (fine-tuning)"), (2, "线性探测 (linear probing)")):
            ax.plot(xs, [number(row[col]) for row in data.rows], "-o", markersize=4, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(name)
        ax.set_title(f"MAE 表 {n}（ViT-L，预训练 800 轮；默认 8 块、宽 512）", fontsize=8)
    axes[0].set_ylabel("top-1 精度 (%)")
    axes[0].legend(fontsize=8)
    return fig


FIGURES = {"mae/decoder.svg": decoder}
