r"""SAM 2's image encoder: a Hiera trunk with windowed attention, and an FPN neck (SAM 2 §4, App. C.1).

The trunk is Hiera (Ryali et al. 2023; [`refimpl.hiera`][refimpl.hiera]) pretrained with MAE,
run once per frame. It keeps Hiera's four stages, their widths and heads, and the max-pooling of
the queries at each stage transition, but changes how tokens meet each other and where they
are:

- **Windows instead of mask units.** MAE-Hiera attends within *mask units* in an *unrolled*
  token order ([`refimpl.hiera.unroll`][refimpl.hiera.unroll]) because its input is sparse: a
  masked image has only some units, and the unrolled order turns pooling into a reshape on
  whatever units are left. SAM 2 never drops tokens, so it keeps the plain spatial layout
  ``(B, h, w, C)``, cuts it into square windows ([`window_partition`][refimpl.sam2.image_encoder.window_partition],
  padding the grid when it is not a multiple of the window, e.g. 64 x 64 tokens in windows of
  14) and pools with ``max_pool2d``. A few blocks attend globally instead (SAM 2 Tab. 13: blocks
  5-7-9 for T, 7-10-13 for S, 12-16-20 for B+, 23-33-43 for L).
- **Windowed absolute position embedding** (SAM 2 App. C.1, following Bolya et al., "Window attention
  is bugged"): a small *background* embedding (7 x 7 or 14 x 14) is interpolated bicubically to
  the token grid, and a window-sized embedding (8 x 8) is tiled over it, so that every window
  sees the same window-relative part. There is no relative position bias (SAM 2 §8.2.2, Tab. 11).
- **Multi-scale output and an FPN neck.** All four stage outputs leave the trunk. The neck maps
  each to ``D = 256`` channels by a 1x1 convolution and adds the upsampled coarser level to the
  stride-16 level only (stride-32 into stride-16, nearest neighbour); the stride-32 level is then
  dropped (``scalp``). The stride-16 map is the frame embedding that the memory attention and
  the mask decoder read; the stride-4 and stride-8 maps go straight to the mask decoder's
  upsampling (SAM 2 §4 "Image encoder", App. C.1).

What is shared with [`refimpl.hiera`][refimpl.hiera] is the patch embedding (a 7x7 convolution,
stride 4, the official name ``patch_embed.proj``) and the stochastic depth; the blocks differ
as said above, so they are written again here.

Shape letters: ``B`` batch; ``S`` the image side (1024 in every released model); ``h, w`` the
token grid of a stage (``S/4`` at stage 1, halved at each stage); ``C`` a stage's width
(``embed_dim``, doubled at each stage); ``ws`` a window side; ``nW`` windows per image;
``D`` the neck's width (256).

State-dict keys are the official ones (``image_encoder.trunk.blocks.N.attn.qkv``,
``image_encoder.neck.convs.N.conv``, ...).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .. import checks
from ..hiera import HieraPatchEmbed
from ..vit import LN_EPS, DropPath
from .layers import MLP
from .position import cached_table, sine_table_2d

__all__ = [
    "window_partition",
    "window_unpartition",
    "windowed_pos_embed",
    "MultiScaleAttention",
    "MultiScaleBlock",
    "Hiera",
    "FpnNeck",
    "ImageFeatures",
    "ImageEncoder",
]


def window_partition(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """Cut a token grid into non-overlapping ``window x window`` squares, zero-padding the bottom and right.

    Args:
        x: tokens ``(B, h, w, C)``.
        window: ``ws``.

    Returns:
        ``(windows (B * nW, ws, ws, C), (h_pad, w_pad))``, windows in raster order of the padded grid.

    Examples:
        >>> x = torch.arange(9.0).reshape(1, 3, 3, 1)
        >>> windows, padded = window_partition(x, 2)
        >>> windows.shape, padded
        (torch.Size([4, 2, 2, 1]), (4, 4))
        >>> windows[1, :, :, 0].tolist()  # top-right window: column 2 and the padding
        [[2.0, 0.0], [5.0, 0.0]]
    """
    h, w = x.shape[1:3]
    pad_h, pad_w = (window - h % window) % window, (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # zeros after the last row and column
    hp, wp = h + pad_h, w + pad_w
    windows = rearrange(x, "b (nh wh) (nw ww) c -> (b nh nw) wh ww c", wh=window, ww=window)  # nW = nh * nw windows per image
    return windows, (hp, wp)


def window_unpartition(windows: Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Put windows back on the grid and cut the padding away: the inverse of [`window_partition`][refimpl.sam2.image_encoder.window_partition].

    Args:
        windows: ``(B * nW, ws, ws, C)``.
        window: ``ws``.
        padded: ``(h_pad, w_pad)``.
        size: ``(h, w)`` without padding.

    Returns:
        ``(B, h, w, C)``.

    Examples:
        >>> x = torch.randn(2, 5, 7, 3)
        >>> windows, padded = window_partition(x, 4)  # 5 x 7 padded to 8 x 8: 4 windows per image
        >>> torch.equal(window_unpartition(windows, 4, padded, (5, 7)), x)
        True
    """
    hp, wp = padded
    h, w = size
    x = rearrange(windows, "(b nh nw) wh ww c -> b (nh wh) (nw ww) c", nh=hp // window, nw=wp // window)  # (B, h_pad, w_pad, C)
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x


def windowed_pos_embed(background: Tensor, window_embed: Tensor, size: tuple[int, int]) -> Tensor:
    """The windowed absolute position embedding of a ``h x w`` grid (SAM 2 App. C.1; Bolya et al.).

    The background table is resized bicubically to the grid, and the window table is tiled over
    it, one copy per stage-1 window.

    Args:
        background: ``(1, C, bh, bw)``, ``pos_embed`` (7 x 7 for T, S and L; 14 x 14 for B+).
        window_embed: ``(1, C, ws, ws)``, ``pos_embed_window`` (8 x 8: the stage-1 window).
        size: ``(h, w)``, multiples of ``ws``.

    Returns:
        ``(1, h, w, C)``, to be added to the patch tokens.
    """
    table = F.interpolate(background, size=size, mode="bicubic")  # (1, C, h, w)
    reps = [a // b for a, b in zip(table.shape, window_embed.shape)]  # (1, 1, h/ws, w/ws)
    table = table + window_embed.tile(reps)
    return table.permute(0, 2, 3, 1)  # (1, h, w, C)


def _max_pool(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """``(B, h, w, C)`` -> ``(B, h/sy, w/sx, C)``: a ``stride`` max-pool of the grid."""
    x = F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=stride, stride=stride)  # (B, C, h', w')
    return x.permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Attention over a window (or the whole grid), queries max-pooled at a stage transition.

    Keys and values keep the full resolution; pooling the queries halves the grid, which is
    how Hiera (and MViTv2 before it) downsamples between stages.

    Args:
        dim: ``C`` in.
        dim_out: ``C`` out; ``qkv`` maps ``dim -> 3 * dim_out``.
        num_heads: heads.
        q_stride: query pooling stride (``None``: no pooling).
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.dim, self.dim_out, self.num_heads, self.q_stride = dim, dim_out, num_heads, q_stride
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """``(B', h, w, dim)`` -> ``(B', h', w', dim_out)``, ``h' = h / sy`` when pooling (``B'``: batch times windows)."""
        B, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(B, h * w, 3, self.num_heads, -1)  # (B', N, 3, heads, d_h)
        q, k, v = torch.unbind(qkv, 2)  # 3 x (B', N, heads, d_h)
        if self.q_stride:
            q = _max_pool(q.reshape(B, h, w, -1), self.q_stride)  # (B', h', w', heads * d_h)
            h, w = q.shape[1:3]
            q = q.reshape(B, h * w, self.num_heads, -1)  # (B', N', heads, d_h)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B', heads, N', d_h)
        x = x.transpose(1, 2).reshape(B, h, w, -1)  # (B', h', w', dim_out)
        return self.proj(x)


class MultiScaleBlock(nn.Module):
    """A Hiera block on the spatial grid, in windows of ``window`` tokens (0: global attention).

    Pre-norm: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``. At a stage transition the
    queries are pooled, and the residual becomes ``pool(proj(norm1(x)))``, a linear map of the
    *normalised* input as in MAE-Hiera ([`refimpl.hiera.HieraBlock`][refimpl.hiera.HieraBlock]).
    Windows are cut *after* ``norm1``, so the padding tokens are zeros that every window's
    queries still attend to (no attention mask, as in the official code). After pooling, the
    windows are ``window / sy`` wide.

    Args:
        dim: ``C`` in.
        dim_out: ``C`` out.
        num_heads: heads.
        mlp_ratio: MLP hidden width / ``dim_out``.
        drop_path: stochastic-depth probability.
        q_stride: query pooling stride at a stage transition, else ``None``.
        window: window side ``ws`` on the input grid; 0 for global attention.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        q_stride: tuple[int, int] | None = None,
        window: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out, self.window, self.q_stride = dim, dim_out, window, q_stride
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.drop_path = DropPath(drop_path, check=False)  # a rate Hiera's constructor checked
        self.norm2 = nn.LayerNorm(dim_out, eps=LN_EPS)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, h, w, dim)`` -> ``(B, h', w', dim_out)``."""
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.q_stride:
                shortcut = _max_pool(shortcut, self.q_stride)  # (B, h', w', dim_out)
        window = self.window
        if window > 0:
            size = x.shape[1:3]
            x, padded = window_partition(x, window)  # (B * nW, ws, ws, dim)
        x = self.attn(x)  # (B * nW, ws', ws', dim_out) or (B, h', w', dim_out)
        if self.window > 0:
            if self.q_stride:  # the grid and the windows shrank with the queries
                window //= self.q_stride[0]
                size = shortcut.shape[1:3]
                padded = tuple(s + (window - s % window) % window for s in size)
            x = window_unpartition(x, window, padded, size)  # (B, h', w', dim_out)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Hiera(nn.Module):
    """The SAM 2 image trunk ("HieraDet" in the official code): four stages of windowed Hiera blocks.

    Not [`refimpl.hiera.Hiera`][refimpl.hiera.Hiera] (MAE-Hiera's mask-unit attention and unroll):
    this one is the official ``sam2.modeling.backbones.hieradet.Hiera``: windowed attention, no mask units.

    Stage ``s`` has ``stages[s]`` blocks; the first block of stages 2-4 doubles the width and
    the heads and pools the queries by ``q_stride``. A block attends in windows of
    ``window_spec[s]`` tokens, except the blocks listed in ``global_att_blocks``, which attend
    over the whole grid. The window setting changes one block late: the first block of a stage
    uses the previous stage's window (on its un-pooled input), as in the official code.

    Args:
        embed_dim: width of stage 1 (96 for T and S, 112 for B+, 144 for L).
        num_heads: heads of stage 1.
        stages: blocks per stage.
        global_att_blocks: indices of the blocks with global attention.
        window_spec: window side per stage.
        window_pos_embed_bkg_spatial_size: ``(bh, bw)``, the background position table.
        q_stride: pooling stride between stages.
        q_pool: how many stage transitions pool.
        dim_mul: width multiplier per stage transition.
        head_mul: heads multiplier per stage transition.
        mlp_ratio: MLP hidden width / block width.
        drop_path_rate: stochastic depth of the last block, rising linearly from 0.

    Raises:
        ValueError: if ``window_spec`` has not one entry per stage or ``q_pool`` is out of range.
    """

    def __init__(
        self,
        embed_dim: int = 96,
        num_heads: int = 1,
        stages: tuple[int, ...] = (2, 3, 16, 3),
        global_att_blocks: tuple[int, ...] = (12, 16, 20),
        window_spec: tuple[int, ...] = (8, 4, 14, 7),
        window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14),
        q_stride: tuple[int, int] = (2, 2),
        q_pool: int = 3,
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(window_spec) != len(stages):
            raise ValueError(f"window_spec={tuple(window_spec)} has {len(window_spec)} entries; expected one per stage ({len(stages)})")
        if not 0 <= q_pool < len(stages):
            raise ValueError(f"q_pool={q_pool}; expected 0 <= q_pool < len(stages) = {len(stages)}")
        drop_path_rate = checks.fraction(drop_path_rate, "drop_path_rate", example="0.1")
        self.window_spec, self.global_att_blocks = tuple(window_spec), tuple(global_att_blocks)
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        pool_blocks = {end + 1 for end in self.stage_ends[:-1][:q_pool]}

        self.patch_embed = HieraPatchEmbed(3, embed_dim)  # 7x7 convolution, stride 4, padding 3
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))

        rates = torch.linspace(0, drop_path_rate, sum(stages), device="cpu").tolist()
        self.blocks = nn.ModuleList()
        dim, heads, stage = embed_dim, num_heads, 0
        for i, rate in enumerate(rates):
            window = 0 if i in self.global_att_blocks else window_spec[stage]  # read before the stage advances
            dim_out = dim
            if i - 1 in self.stage_ends:  # first block of a new stage
                dim_out, heads, stage = int(dim * dim_mul), int(heads * head_mul), stage + 1
            stride = tuple(q_stride) if i in pool_blocks else None
            self.blocks.append(MultiScaleBlock(dim, dim_out, heads, mlp_ratio, rate, stride, window))
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]  # coarsest first, as the neck wants

    def forward(self, images: Tensor) -> list[Tensor]:
        """Run the trunk.

        Args:
            images: ``(B, 3, S, S)``, normalised; ``S / 4`` a multiple of the stage-1 window.

        Returns:
            One map per stage, finest first: ``(B, C_s, S / 4 / 2^s, S / 4 / 2^s)``.
        """
        x = self.patch_embed(images)  # (B, h * w, C), raster order
        h, w = images.shape[-2] // 4, images.shape[-1] // 4
        x = x.unflatten(1, (h, w))  # (B, h, w, C)
        x = x + windowed_pos_embed(self.pos_embed, self.pos_embed_window, (h, w))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))  # (B, C_s, h_s, w_s)
        return outputs


class FpnNeck(nn.Module):
    """SAM 2's feature pyramid: 1x1 convolutions to ``D`` channels, top-down only into the coarse levels.

    ``convs[0]`` maps the coarsest level (the official order). Levels listed in
    ``fpn_top_down_levels`` (the stride-16 and stride-32 ones, ``(2, 3)``, in every released
    config) add the 2x nearest-neighbour upsampling of the level above; the finer levels are
    the lateral convolutions alone. Each level also gets its 2-D sine position table.

    Args:
        backbone_channel_list: the trunk's widths, coarsest first.
        d_model: ``D``.
        fpn_top_down_levels: levels (0 = finest) that receive the top-down path.
        fpn_interp_model: the upsampling mode (``"nearest"`` in every released config).
    """

    def __init__(
        self,
        backbone_channel_list: list[int],
        d_model: int = 256,
        fpn_top_down_levels: tuple[int, ...] = (2, 3),
        fpn_interp_model: str = "nearest",
    ) -> None:
        super().__init__()
        self.backbone_channel_list, self.d_model = list(backbone_channel_list), d_model
        self.convs = nn.ModuleList(
            nn.Sequential(OrderedDict(conv=nn.Conv2d(c, d_model, kernel_size=1))) for c in backbone_channel_list
        )
        self.fpn_top_down_levels, self.fpn_interp_model = tuple(fpn_top_down_levels), fpn_interp_model
        self._tables: dict[tuple[int, int, torch.device], Tensor] = {}

    def position_table(self, h: int, w: int, device: torch.device) -> Tensor:
        """The ``(D, h, w)`` sine table of a level, built once per size and device (outside autograd)."""
        return cached_table(self._tables, (h, w, device), lambda: sine_table_2d(h, w, self.d_model, device=device))

    def forward(self, xs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Fuse the trunk's maps.

        Args:
            xs: the trunk's outputs, finest first, ``(B, C_s, h_s, w_s)``.

        Returns:
            ``(features, positions)``, each a list of ``(B, D, h_s, w_s)``, finest first.
        """
        n = len(self.convs) - 1
        features: list[Tensor] = [torch.empty(0)] * (n + 1)
        positions: list[Tensor] = [torch.empty(0)] * (n + 1)
        above = None
        for i in range(n, -1, -1):  # coarsest first: the top-down path
            lateral = self.convs[n - i](xs[i])  # (B, D, h_i, w_i)
            if i in self.fpn_top_down_levels and above is not None:
                align = None if self.fpn_interp_model == "nearest" else False
                up = F.interpolate(above.float(), scale_factor=2.0, mode=self.fpn_interp_model, align_corners=align, antialias=False)
                above = lateral + up
            else:
                above = lateral
            features[i] = above
            B, _, h, w = above.shape
            positions[i] = self.position_table(h, w, above.device).to(above.dtype).expand(B, -1, -1, -1)
        return features, positions


class ImageFeatures(NamedTuple):
    """What [`ImageEncoder`][refimpl.sam2.image_encoder.ImageEncoder] returns (finest level first)."""

    vision_features: Tensor
    """The stride-16 frame embedding, ``(B, D, S/16, S/16)`` (the last entry of ``backbone_fpn``)."""
    vision_pos_enc: list[Tensor]
    """Sine position tables of the kept levels, ``(B, D, h_s, w_s)`` each."""
    backbone_fpn: list[Tensor]
    """The kept levels, strides 4, 8, 16: ``(B, D, h_s, w_s)`` each."""


class ImageEncoder(nn.Module):
    """Trunk, then neck, then drop the ``scalp`` coarsest levels (1: the stride-32 level).

    Args:
        trunk: a [`Hiera`][refimpl.sam2.image_encoder.Hiera].
        neck: an [`FpnNeck`][refimpl.sam2.image_encoder.FpnNeck] with the trunk's widths.
        scalp: how many coarse levels to drop after the neck.

    Raises:
        ValueError: if the neck's widths are not the trunk's.
    """

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ValueError(f"the neck expects widths {neck.backbone_channel_list}; the trunk gives {trunk.channel_list}")
        self.trunk, self.neck, self.scalp = trunk, neck, scalp

    def forward(self, images: Tensor) -> ImageFeatures:
        """``(B, 3, S, S)`` normalised images -> [`ImageFeatures`][refimpl.sam2.image_encoder.ImageFeatures]."""
        features, positions = self.neck(self.trunk(images))
        if self.scalp > 0:
            features, positions = features[: -self.scalp], positions[: -self.scalp]
        return ImageFeatures(features[-1], positions, features)
