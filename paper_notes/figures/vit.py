"""Figures for the ViT concept page (docs/concepts/vit.md)."""

from __future__ import annotations

from matplotlib.figure import Figure

GRID = 14  # ViT-B/16 and MAE at 224 x 224: a 14 x 14 patch grid
EMBED_DIM = 768  # ViT-B width
REFERENCES = [(0, 0), (3, 10), (7, 7), (12, 3)]  # (row, column) of the reference cells


def sincos_similarity() -> Figure:
    """Cosine similarity between the 2-D sin-cos embedding of each cell and a few reference cells."""
    import torch.nn.functional as F

    from refimpl.pos_embed import get_2d_sincos_pos_embed

    pe = get_2d_sincos_pos_embed(EMBED_DIM, GRID)  # (L, D), raster order
    pe = F.normalize(pe, dim=1)  # unit rows: dot product = cosine similarity
    fig = Figure(figsize=(2.6 * len(REFERENCES), 3.0))
    axes = fig.subplots(1, len(REFERENCES))
    maps = [(pe @ pe[r * GRID + c]).reshape(GRID, GRID) for r, c in REFERENCES]  # each (h, w)
    low = min(m.min().item() for m in maps)  # one colour scale for all panels
    for ax, (r, c), similarity in zip(axes, REFERENCES, maps):
        image = ax.imshow(similarity.numpy(), cmap="viridis", vmin=low, vmax=1.0)
        ax.scatter([c], [r], marker="x", color="red", s=40)
        ax.set_title(f"第 {r} 行、第 {c} 列（红叉）", fontsize=9)
        ax.set_xticks([0, GRID - 1])
        ax.set_yticks([0, GRID - 1])
        ax.set_xlabel("列", fontsize=9)
        if ax is axes[0]:
            ax.set_ylabel("行", fontsize=9)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="余弦相似度 (cosine similarity)")
    fig.suptitle(f"固定的二维正弦余弦位置嵌入 (2-D sin-cos position embedding)：D = {EMBED_DIM}，{GRID} × {GRID} 网格",
                 fontsize=11)
    return fig


FIGURES = {"vit/sincos_similarity.svg": sincos_similarity}
