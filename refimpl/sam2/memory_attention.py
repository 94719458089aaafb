"""SAM 2's memory attention: the current frame's features conditioned on the memory bank (SAM 2 §4 "Memory attention", App. C.1).

A stack of ``L = 4`` pre-norm transformer blocks over the stride-16 tokens of the current
frame. Each block does self-attention among the frame's tokens, cross-attention from them to
the memory bank (the spatial memories of past and prompted frames, then the object-pointer
tokens), and an MLP. Both attentions are plain attention (so efficient kernels apply) with
2-D rotary position encodings (RoPE) on queries and keys; the object pointers carry no
spatial position and are not rotated (SAM 2 App. C.1). Memory keys also get their sine table plus a
learned temporal embedding added (built by [`SAM2`][refimpl.sam2.model.SAM2]). The paper compares RoPE in the memory attention
against no RoPE (SAM 2 §8.2.2, Tab. 11).

Shape letters: ``B`` batch (objects), ``N = h * w`` current-frame tokens (stride 16), ``D``
256, ``K`` memory tokens (``n_frames * N`` spatial plus ``P`` pointer tokens), ``D_mem`` 64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import Attention
from .position import apply_rope, axial_rope, cached_table

__all__ = ["RoPEAttention", "MemoryAttentionLayer", "MemoryAttention"]


class RoPEAttention(Attention):
    """[`Attention`][refimpl.sam2.layers.Attention] with 2-D rotary position encoding (SAM 2 App. C.1).

    The query grid is square (``h = w = sqrt(N_q)``). The keys are rotated with the same
    rotations, repeated once per memory frame when there are several (``rope_k_repeat``); the
    last ``num_k_exclude_rope`` keys (object pointers) are left as they are.

    Args:
        embedding_dim: ``D``.
        num_heads: heads (1).
        dropout: attention dropout in training (0.1).
        kv_in_dim: width of keys and values in (``D_mem`` for the cross-attention).
        rope_theta: base of the frequency ladder (10000).
        rope_k_repeat: allow more keys than queries, as whole repeats of the grid.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
    ) -> None:
        super().__init__(embedding_dim, num_heads, dropout=dropout, kv_in_dim=kv_in_dim)
        self.rope_theta, self.rope_k_repeat = rope_theta, rope_k_repeat
        self._rotations: dict[tuple[int, torch.device], Tensor] = {}

    def rotations(self, n: int, device: torch.device) -> Tensor:
        """The complex rotations of a square grid of ``n`` tokens, ``(n, d_h / 2)``, built once per size."""
        side = math.isqrt(n)
        return cached_table(self._rotations, (n, device),
                            lambda: axial_rope(self.internal_dim // self.num_heads, side, side, self.rope_theta).to(device))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_k_exclude_rope: int = 0) -> Tensor:
        """Attend.

        Args:
            q: ``(B, N, D)``.
            k: ``(B, K, kv_in_dim)``.
            v: ``(B, K, kv_in_dim)``.
            num_k_exclude_rope: trailing keys not rotated (object pointers).

        Returns:
            ``(B, N, D)``.
        """
        q, k, v = self.project(q, k, v)  # (B, heads, N or K, d_h)
        rot = self.rotations(q.shape[-2], q.device)
        num_rope = k.shape[-2] - num_k_exclude_rope
        q = apply_rope(q, rot)
        if num_rope > 0:
            k[:, :, :num_rope] = apply_rope(k[:, :, :num_rope], rot, repeat=num_rope // q.shape[-2] if self.rope_k_repeat else 1)
        return self.attend(q, k, v)


class MemoryAttentionLayer(nn.Module):
    """One memory-attention block: self-attention, cross-attention to the memories, MLP; pre-norm.

    Position encodings as in the released configs: none on the self-attention's queries and keys
    (RoPE only), none on the cross-attention's queries, the memory's encoding added to its keys.

    Args:
        d_model: ``D``.
        mem_dim: ``D_mem``.
        dim_feedforward: MLP hidden width (2048).
        dropout: dropout in training (0.1).
        num_heads: heads of both attentions (1).
    """

    def __init__(self, d_model: int = 256, mem_dim: int = 64, dim_feedforward: int = 2048, dropout: float = 0.1, num_heads: int = 1) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn_image = RoPEAttention(d_model, num_heads, dropout=dropout, kv_in_dim=mem_dim, rope_k_repeat=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, memory_pos: Tensor, num_obj_ptr_tokens: int = 0) -> Tensor:
        """``(B, N, D)`` frame tokens, ``(B, K, D_mem)`` memory and its encoding -> ``(B, N, D)``."""
        y = self.norm1(x)
        x = x + self.dropout1(self.self_attn(y, y, y))
        y = self.norm2(x)
        x = x + self.dropout2(self.cross_attn_image(y, memory + memory_pos, memory, num_k_exclude_rope=num_obj_ptr_tokens))
        y = self.norm3(x)
        return x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(y)))))


class MemoryAttention(nn.Module):
    """``L`` [`MemoryAttentionLayer`][refimpl.sam2.memory_attention.MemoryAttentionLayer]s and a final LayerNorm (SAM 2 §4).

    The frame tokens enter with ``0.1 x`` their sine position table added (released configs).

    Args:
        d_model: ``D``.
        mem_dim: ``D_mem``.
        num_layers: ``L`` (4).
        dim_feedforward: MLP hidden width (2048).
        dropout: dropout in training (0.1).
    """

    def __init__(self, d_model: int = 256, mem_dim: int = 64, num_layers: int = 4, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MemoryAttentionLayer(d_model, mem_dim, dim_feedforward, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, current: Tensor, current_pos: Tensor, memory: Tensor, memory_pos: Tensor, num_obj_ptr_tokens: int = 0) -> Tensor:
        """Condition the current frame on the memories.

        Args:
            current: the frame's stride-16 tokens ``(B, N, D)``.
            current_pos: their sine table ``(B, N, D)``.
            memory: ``(B, K, D_mem)``, spatial memories first, the ``P`` pointer tokens last.
            memory_pos: ``(B, K, D_mem)``.
            num_obj_ptr_tokens: ``P``.

        Returns:
            ``(B, N, D)``.
        """
        x = current + 0.1 * current_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_obj_ptr_tokens)
        return self.norm(x)
