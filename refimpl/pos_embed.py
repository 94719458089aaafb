r"""Fixed sine-cosine position embeddings, built exactly as the official MAE code builds them.

A Transformer treats its input as a set: without extra information it cannot tell which
patch came from where. A position embedding is one ``D``-vector per grid cell, added to the
token of that cell. ViT learns it (ViT §3.1); MAE (He et al. 2022, MAE App. A.1, and its
official ``util/pos_embed.py``) fixes it to sines and cosines of the cell's column and row, so
that it needs no training and treats every position alike.

Shape letters, used in every docstring of this module:

- ``D``: embedding width (``embed_dim``), a multiple of 4 for the 2-D embedding.
- ``h``, ``w``: the patch grid has ``h`` rows and ``w`` columns.
- ``M``: number of positions given to the 1-D embedding.

Positions run over the grid in raster order (row by row: position ``i`` is cell
``(i // w, i % w)``), the token order of [`patchify`][refimpl.masking.patchify].
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import checks

__all__ = ["get_1d_sincos_pos_embed", "get_2d_sincos_pos_embed"]


def _grid_size(grid_size: object) -> tuple[int, int]:
    """``(h, w)`` from ``grid_size``, an ``int`` (a square grid) or a pair of positive ints."""
    if isinstance(grid_size, int) and not isinstance(grid_size, bool):
        grid_size = (grid_size, grid_size)
    if not isinstance(grid_size, (tuple, list, torch.Size)) or len(grid_size) != 2:
        raise ValueError(f"grid_size={grid_size!r} is neither an int nor a pair; expected h or (h, w)")
    return checks.pair(grid_size, "grid_size")


def _sincos(embed_dim: int, positions: Tensor) -> Tensor:
    """``[sin(pos * omega) | cos(pos * omega)]`` in float64; no argument checks.

    Args:
        embed_dim: output width ``D``, even.
        positions: float64 positions, shape ``(M,)``.

    Returns:
        float64 tensor, shape ``(M, D)``.
    """
    k = torch.arange(embed_dim // 2, dtype=torch.float64, device=positions.device)
    omega = 1.0 / 10000 ** (k / (embed_dim // 2))  # (D/2,): wavelengths 2*pi ... 2*pi*10000
    angles = torch.outer(positions, omega)  # (M, D/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (M, D)


def get_1d_sincos_pos_embed(embed_dim: int, positions: Tensor) -> Tensor:
    r"""Sine-cosine embedding of scalar positions (the original Transformer's sinusoids, as in MAE's code).

    With $K = D/2$ and $\omega_k = 1 / 10000^{k/K}$ for $k = 0, \dots, K-1$:

    $$
    \mathrm{PE}(m)_k = \sin(m\,\omega_k), \qquad \mathrm{PE}(m)_{K+k} = \cos(m\,\omega_k).
    $$

    Computed in float64 (as the official numpy code) and returned as float32.

    Args:
        embed_dim: output width ``D``, a positive even ``int``.
        positions: positions of any shape; flattened to ``(M,)`` in row-major order.

    Returns:
        float32 tensor, shape ``(M, D)``, on the device of ``positions``.

    Raises:
        TypeError: if ``embed_dim`` is not an ``int`` or ``positions`` is not a tensor.
        ValueError: if ``embed_dim`` is not a positive even number, or ``positions`` holds NaN or
            infinite values (their sines would be NaN).

    Examples:
        >>> import torch
        >>> get_1d_sincos_pos_embed(4, torch.tensor([0.0, 1.0]))
        tensor([[0.0000, 0.0000, 1.0000, 1.0000],
                [0.8415, 0.0100, 0.5403, 0.9999]])
    """
    embed_dim = checks.integer(embed_dim, "embed_dim", example="32", multiple=2)
    if not isinstance(positions, Tensor):
        raise TypeError(
            f"positions must be a torch.Tensor, got {type(positions).__name__}; "
            f"expected e.g. torch.arange(14.0)"
        )
    positions = checks.finite(positions, "positions").reshape(-1).to(torch.float64)  # (M,)
    return _sincos(embed_dim, positions).float()  # (M, D)


def get_2d_sincos_pos_embed(
    embed_dim: int,
    grid_size: int | tuple[int, int],
    cls_token: bool = False,
    *,
    check: bool = True,
) -> Tensor:
    r"""Fixed 2-D sine-cosine position embedding of a patch grid (MAE, ``util/pos_embed.py``).

    Half of the channels encode the column $c$ of a cell, the other half its row $r$, each
    with the 1-D embedding of
    [`get_1d_sincos_pos_embed`][refimpl.pos_embed.get_1d_sincos_pos_embed] at width $D/2$.
    With $K = D/4$ and $\omega_k = 1 / 10000^{k/K}$, $k = 0, \dots, K-1$, the cell $(r, c)$ gets

    $$
    \mathrm{PE}(r, c) = \big[\, \sin(c\,\omega_k)_{k} \;\big|\; \cos(c\,\omega_k)_{k}
    \;\big|\; \sin(r\,\omega_k)_{k} \;\big|\; \cos(r\,\omega_k)_{k} \,\big] \in \mathbb{R}^{D}.
    $$

    The official code builds ``meshgrid(grid_w, grid_h)``, so the first half encodes the
    column (x, width) coordinate and the second half the row (y, height), although its
    variable for the first half is called ``emb_h``; we keep that order, which MAE
    checkpoints and decoders were trained with. Computed in float64, returned as float32.

    Args:
        embed_dim: width ``D`` of each embedding, a positive multiple of 4.
        grid_size: the patch grid, ``h`` for a square grid or ``(h, w)`` (rows, columns).
        cls_token: if ``True``, put an all-zero row first, for the class token.
        check: ``False`` for a model whose validated config holds ``embed_dim`` (a multiple of 4)
            and ``grid_size`` as ``(h, w)``: then nothing is checked again.

    Returns:
        float32 tensor, shape ``(h * w, D)``, or ``(1 + h * w, D)`` with ``cls_token``;
            row ``i`` (after the optional zero row) is grid cell ``(i // w, i % w)``.

    Raises:
        TypeError: if ``embed_dim`` or an entry of ``grid_size`` is not an ``int``.
        ValueError: if ``embed_dim`` is not a positive multiple of 4, or ``grid_size`` is
            not a positive int or a pair of them.

    Examples:
        >>> get_2d_sincos_pos_embed(768, 14, cls_token=True).shape
        torch.Size([197, 768])
        >>> pe = get_2d_sincos_pos_embed(8, (2, 3))  # 2 rows, 3 columns
        >>> pe[:, 0]  # channel 0 = sin(column): changes along a row
        tensor([0.0000, 0.8415, 0.9093, 0.0000, 0.8415, 0.9093])
        >>> pe[:, 4]  # channel D/2 = sin(row): changes from one row to the next
        tensor([0.0000, 0.0000, 0.0000, 0.8415, 0.8415, 0.8415])
    """
    if check:
        embed_dim, grid_size = checks.integer(embed_dim, "embed_dim", example="64", multiple=4), _grid_size(grid_size)
    h, w = grid_size

    rows = torch.arange(h, dtype=torch.float64)
    cols = torch.arange(w, dtype=torch.float64)
    row_of, col_of = torch.meshgrid(rows, cols, indexing="ij")  # (h, w) each: raster order
    emb_col = _sincos(embed_dim // 2, col_of.reshape(-1))  # (h*w, D/2)
    emb_row = _sincos(embed_dim // 2, row_of.reshape(-1))  # (h*w, D/2)
    pos_embed = torch.cat([emb_col, emb_row], dim=1)  # (h*w, D): column half first, as MAE
    if cls_token:
        pos_embed = torch.cat([pos_embed.new_zeros(1, embed_dim), pos_embed], dim=0)  # (1+h*w, D)
    return pos_embed.float()
