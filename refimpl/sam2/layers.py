"""Small layers shared by SAM 2's parts: the MLP, a channel LayerNorm for feature maps, attention.

These come from SAM (Kirillov et al. 2023), whose prompt encoder and mask decoder SAM 2 builds on
(SAM 2 §4); the memory attention reuses the same attention layer with rotary
position encodings added ([`RoPEAttention`][refimpl.sam2.memory_attention.RoPEAttention]).

Shape letters: ``B`` batch, ``N`` tokens, ``D`` width, ``C`` channels of a map ``(B, C, h, w)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["MLP", "LayerNorm2d", "Attention"]


class MLP(nn.Module):
    """``num_layers`` linear maps with an activation between them (none after the last).

    The name ``layers.N`` is the official one (SAM's ``MLP``): the mask decoder's heads, the
    object-pointer projection and every Hiera block use it.

    Args:
        input_dim: width in.
        hidden_dim: width of every hidden layer.
        output_dim: width out.
        num_layers: number of linear maps (2 in a Hiera block, 3 in the heads).
        activation: the activation class (ReLU in SAM's heads, GELU in Hiera).
        sigmoid_output: apply a sigmoid to the output (SAM 2's IoU head does).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        widths = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        """``(..., input_dim)`` -> ``(..., output_dim)``."""
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        x = self.layers[-1](x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a ``(B, C, h, w)`` map (ConvNeXt's, as in SAM).

    Args:
        channels: ``C``.
        eps: added to the variance (1e-6, as in the official code).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, h, w)`` -> ``(B, C, h, w)``, each pixel's channels normalised then scaled."""
        mean = x.mean(1, keepdim=True)  # (B, 1, h, w)
        var = (x - mean).pow(2).mean(1, keepdim=True)  # (B, 1, h, w), biased like nn.LayerNorm
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Attention(nn.Module):
    """Multi-head attention with separate query, key and value maps that may narrow the width.

    SAM's attention: queries, keys and values are projected to ``D / downsample_rate`` (the
    decoder's cross-attentions use 2, halving their cost), split into heads, attended with
    ``F.scaled_dot_product_attention`` and projected back to ``D``. Keys and values may come
    from a narrower input (``kv_in_dim``): the memory attention reads 64-wide memories with
    256-wide queries.

    Args:
        embedding_dim: ``D``, the width of queries in and of the output.
        num_heads: heads; must divide ``D / downsample_rate``.
        downsample_rate: inner width is ``D / downsample_rate``.
        dropout: attention dropout in training (the memory attention uses 0.1).
        kv_in_dim: width of the key and value inputs (default ``D``).

    Raises:
        ValueError: if the inner width is not divisible by ``num_heads``.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        if self.internal_dim % num_heads:
            raise ValueError(
                f"embedding_dim // downsample_rate = {self.internal_dim} is not divisible by num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.dropout_p = dropout
        kv_in_dim = embedding_dim if kv_in_dim is None else kv_in_dim
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: Tensor) -> Tensor:
        """``(B, N, heads * d_h)`` -> ``(B, heads, N, d_h)``."""
        return rearrange(x, "b n (heads d) -> b heads n d", heads=self.num_heads)

    def project(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The three projections, split into heads: each ``(B, heads, N_q or N_k, d_h)``."""
        return self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Attention of projected heads ``(B, heads, N_q, d_h)`` -> output ``(B, N_q, D)``."""
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout_p if self.training else 0.0)
        return self.out_proj(rearrange(x, "b heads n d -> b n (heads d)"))  # heads side by side

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Attend.

        Args:
            q: queries, ``(B, N_q, D)``.
            k: keys, ``(B, N_k, kv_in_dim)``.
            v: values, ``(B, N_k, kv_in_dim)``.

        Returns:
            ``(B, N_q, D)``.
        """
        return self.attend(*self.project(q, k, v))
