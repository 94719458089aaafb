"""SAM 2's memory encoder: the predicted mask and the frame embedding fused into a memory (SAM 2 §4 "Memory encoder", App. C.1).

A memory is made from what the model just predicted: the mask logits of the frame (at the
input resolution) are turned into probabilities, downsampled 16x by a small convolution stack,
added to a 1x1 projection of the frame's *unconditioned* stride-16 embedding (the image
encoder's output, not the memory attention's, so no separate image encoder is needed for
memories), fused by two ConvNeXt blocks and projected from ``D = 256`` down to ``D_mem = 64``
channels (SAM 2 App. C.1); 64 channels store 4x less than 256 for little loss
(SAM 2 §8.2.1, Tab. 10). The memory also gets a sine position table for the memory attention's keys.

Shape letters: ``B`` batch (objects), ``S`` the image side, ``h, w = S / 16``, ``D`` 256,
``D_mem`` 64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..vit import DropPath
from .layers import LayerNorm2d
from .position import cached_table, sine_table_2d

__all__ = ["MaskDownSampler", "CXBlock", "Fuser", "Memory", "MemoryEncoder", "mask_for_memory"]


class MaskDownSampler(nn.Module):
    """Downsample a mask by ``total_stride`` in steps of ``stride``, widening ``stride**2`` times per step.

    Each step is a convolution, a channel LayerNorm and GELU: ``1 -> 4 -> 16 -> 64 -> 256``
    channels for the released configs (kernel 3, stride 2, padding 1, four steps), then a 1x1
    convolution to ``D``.

    Args:
        embed_dim: ``D``.
        kernel_size: kernel of each step.
        stride: stride of each step.
        padding: padding of each step.
        total_stride: overall downsampling (16).

    Raises:
        ValueError: if ``total_stride`` is not a power of ``stride``.
    """

    def __init__(self, embed_dim: int = 256, kernel_size: int = 3, stride: int = 2, padding: int = 1, total_stride: int = 16) -> None:
        super().__init__()
        steps = int(math.log2(total_stride) // math.log2(stride))
        if stride**steps != total_stride:
            raise ValueError(f"total_stride={total_stride} is not a power of stride={stride}")
        layers: list[nn.Module] = []
        channels = 1
        for _ in range(steps):
            out = channels * stride**2
            layers += [nn.Conv2d(channels, out, kernel_size, stride, padding), LayerNorm2d(out), nn.GELU()]
            channels = out
        layers.append(nn.Conv2d(channels, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, mask: Tensor) -> Tensor:
        """``(B, 1, S, S)`` -> ``(B, D, S/16, S/16)``."""
        return self.encoder(mask)


class CXBlock(nn.Module):
    """A ConvNeXt block: depthwise 7x7 convolution, channel LayerNorm, MLP (x4) with layer scale, residual.

    Args:
        dim: channels.
        kernel_size: depthwise kernel (7).
        padding: its padding (3).
        drop_path: stochastic depth.
        layer_scale_init_value: initial layer scale ``gamma`` (1e-6).
    """

    def __init__(self, dim: int, kernel_size: int = 7, padding: int = 3, drop_path: float = 0.0, layer_scale_init_value: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)  # 1x1 convolutions written as linear maps on (B, h, w, C)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        self.drop_path = DropPath(drop_path, check=False)  # a building block: its caller passes a valid rate

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, h, w)`` -> ``(B, C, h, w)``."""
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # (B, h, w, C)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + self.drop_path(y.permute(0, 3, 1, 2))  # (B, C, h, w)


class Fuser(nn.Module):
    """A stack of [`CXBlock`][refimpl.sam2.memory_encoder.CXBlock]s (two in the released configs).

    Args:
        dim: channels.
        num_layers: blocks.
    """

    def __init__(self, dim: int, num_layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, h, w)`` -> ``(B, C, h, w)``."""
        for layer in self.layers:
            x = layer(x)
        return x


class Memory(NamedTuple):
    """A frame's memory, as [`MemoryEncoder`][refimpl.sam2.memory_encoder.MemoryEncoder] returns it."""

    features: Tensor
    """``(B, D_mem, h, w)``."""
    pos: Tensor
    """Its sine position table, ``(B, D_mem, h, w)``."""


class MemoryEncoder(nn.Module):
    """Fuse a mask with the frame embedding into a ``D_mem``-channel memory (SAM 2 §4, App. C.1).

    Args:
        out_dim: ``D_mem`` (64).
        in_dim: ``D`` (256).
        fuser_layers: ConvNeXt blocks (2).
    """

    def __init__(self, out_dim: int = 64, in_dim: int = 256, fuser_layers: int = 2) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim, fuser_layers)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()
        self.out_dim = out_dim
        self._tables: dict[tuple[int, int, torch.device], Tensor] = {}

    def forward(self, frame: Tensor, mask: Tensor) -> Memory:
        """Encode a memory.

        Args:
            frame: the unconditioned frame embedding ``(B, D, h, w)``.
            mask: mask *probabilities* (or a binary mask) at the input size, ``(B, 1, S, S)``;
                [`SAM2`][refimpl.sam2.model.SAM2] scales them to ``[-10, 10]`` first.

        Returns:
            [`Memory`][refimpl.sam2.memory_encoder.Memory].
        """
        x = self.pix_feat_proj(frame) + self.mask_downsampler(mask)  # (B, D, h, w)
        x = self.out_proj(self.fuser(x))  # (B, D_mem, h, w)
        B, _, h, w = x.shape
        table = cached_table(self._tables, (h, w, x.device), lambda: sine_table_2d(h, w, self.out_dim, device=x.device))
        return Memory(x, table.to(x.dtype).expand(B, -1, -1, -1))


def mask_for_memory(high_res_logits: Tensor, binarize: bool) -> Tensor:
    """The mask a memory is made from: ``20 * sigmoid(logits) - 10``, or ``20 * [logits > 0] - 10``.

    The scale and bias (20, -10) are the released configs' ``sigmoid_scale_for_mem_enc`` and
    ``sigmoid_bias_for_mem_enc``. ``binarize`` is the official video predictor's choice for
    frames the user clicked on, so that the memory holds exactly the mask the user saw.

    Args:
        high_res_logits: ``(B, 1, S, S)``.
        binarize: threshold instead of the sigmoid.

    Returns:
        ``(B, 1, S, S)`` in ``[-10, 10]``.
    """
    mask = (high_res_logits > 0).float() if binarize else torch.sigmoid(high_res_logits)
    return mask * 20.0 + -10.0

