"""A helper the grid figures share: an axes that shows a ``rows x cols`` board of unit cells."""

from __future__ import annotations


def board_axes(ax, rows: int, cols: int, title: str, margin: float = 0.1, fontsize: float = 9) -> None:
    """Fit ``ax`` to a board of ``rows x cols`` unit squares (row 0 at the top), square cells, no axis lines."""
    ax.set_xlim(-margin, cols + margin)
    ax.set_ylim(-margin, rows + margin)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=fontsize)
