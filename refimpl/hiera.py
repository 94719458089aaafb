r"""Hiera (Ryali et al., ICML 2023): a hierarchical ViT with nothing but plain blocks, and its MAE.

Hiera starts from a multi-stage ("hierarchical") vision transformer, MViTv2-L, and removes its
vision-specific extras one step at a time under MAE pretraining (Hiera Table 1): relative
position embeddings become absolute ones, convolutions become max-pools, stride-1 pools go,
kernels shrink to their stride, the attention's query residual goes, and KV pooling becomes
mask unit attention (Hiera Fig. 5b). MAE pretraining is supposed to teach the spatial bias those
parts used to give. What is left is four stages of ordinary pre-norm transformer blocks
(Hiera Fig. 2). At each stage transition the token grid is halved in each direction by a 2x2 **max-pool
of the queries** (and of the residual), while the width and the number of heads double.

Two things make it work on MAE's sparse input (Hiera Fig. 4), the first from the paper, the second
the official code's way of doing what Hiera Fig. 4e asks:

- **Mask units** (Hiera Fig. 4a). The mask is drawn over units of ``ku x kv`` tokens (8 x 8 tokens
  = 32 x 32 pixels at 224 px), never single tokens. A whole unit is kept or removed, and every
  pooling kernel equals its stride (Hiera Fig. 4e), so every 2x2 pooling window of every stage lies
  inside one unit and the pooling never needs a token that is not there.
- **Unroll** (a name from the official code; the paper does not use the word).
  [`unroll`][refimpl.unroll.unroll] reorders the tokens once, right after the patch
  embedding, so that (a) the members of every 2x2 pooling window of every stage are the same
  position in ``q`` equal slices of the sequence: pooling is ``view(B, 4, N // 4, C).max(1)``;
  and (b) the mask unit is the fastest-running index: the tokens of unit ``u`` are
  ``u, u + U, u + 2U, ...``, a column of a ``(tokens per unit, U)`` view, so removing units
  removes columns and (a) still holds on what remains. Attention inside a mask unit is a reshape
  too. [`reroll`][refimpl.unroll.reroll] puts stage outputs back into raster order.

**Video.** Nothing above depends on the grid having two axes, and every function and class here
takes a token grid with any number of them; a video model is the same model given 3-D sizes (the
official ``*_16x224`` configs, Kinetics-400). A clip ``(B, C, F, H, W)`` of 16 frames at 224 px
becomes ``8 x 56 x 56`` tokens: the patch embedding is a ``3 x 7 x 7`` convolution with stride
``(2, 4, 4)``, so a token spans 2 frames. The query stride is ``(1, 2, 2)``: pooling halves only
height and width, and every stage keeps all 8 token frames. A mask unit is ``1 x 8 x 8`` tokens,
one token frame deep, so the clip has ``8 x 7 x 7 = 392`` units and the mask is drawn over space
and time alike. The position embedding is split (``sep_pos_embed``): one table over the ``h x w``
grid, one over the ``t`` token frames, summed. The MAE target of a token frame is its first video
frame only.

Shape letters, used in every docstring of this module (video adds the letters in brackets):

- ``B``: batch; ``C``: image channels; ``H``, ``W``: image (or frame) size in pixels; [``F``:
  frames of a clip].
- ``h, w``: the token grid of the current stage (56 x 56 at stage 1 of a 224-px input, patch
  stride 4); [``t``: token frames, 8 for 16 frames at temporal patch stride 2, the same at every
  stage]; ``L = h * w`` [``t * h * w``] its number of tokens.
- ``sy, sx``: the query stride (2 x 2) [``st``: its temporal part, 1]; ``q = sy * sx``
  [``st * sy * sx``] (4) tokens pooled into one.
- ``ku, kv``: the mask unit of the current stage in tokens (8 x 8 at stage 1, 4 x 4, 2 x 2,
  1 x 1) [``kt``: its depth in token frames, 1 at every stage]; ``T = ku * kv`` [``kt * ku * kv``]
  tokens per unit (not frames); ``U = (h / ku) * (w / kv)`` [``(t / kt) * (h / ku) * (w / kv)``]
  units per sample (49 at 224 px, 392 for 16 x 224 x 224); ``U_keep`` units kept by the mask.
- ``N``: tokens in the sequence the blocks see, ``T * U`` (or ``T * U_keep`` when masked).
- ``D``, ``D_out``: token width in and out of a block; ``heads``; ``d_h = D_out / heads``.

Masks follow the package convention, **1 = removed** (see [`refimpl.masking`][refimpl.masking]);
official Hiera passes 1 = keep, so compare with ``official_mask = ~ours.bool()``.

State-dict keys are those of the official code (``facebookresearch/hiera``, PyPI
``hiera-transformer``), so its checkpoints (a dict with a ``"model_state"`` entry), image and
video, load with ``strict=True`` through
[`load_checkpoint`][refimpl.checkpoints.load_checkpoint].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from . import checks
from .masking import MaskIds, _order, _removed_in_original_order, ids_from_mask, normalize_patches, unshuffle
from .unroll import pool_tokens, reroll, reroll_units, units_to_raster, unroll
from .vit import LN_EPS, DropPath, Mlp, init_linear_and_norm_

__all__ = [
    "HieraConfig",
    "MaskUnitAttention",
    "HieraBlock",
    "HieraPatchEmbed",
    "Head",
    "HieraFeatures",
    "HieraBackbone",
    "Hiera",
    "MAEHieraOutput",
    "MaskedAutoencoderHiera",
    "HIERA_ENCODER_PREFIXES",
    "hiera_encoder_state",
    "hiera_tiny_224",
    "hiera_small_224",
    "hiera_base_224",
    "hiera_base_plus_224",
    "hiera_large_224",
    "hiera_huge_224",
    "mae_hiera_tiny_224",
    "mae_hiera_small_224",
    "mae_hiera_base_224",
    "mae_hiera_base_plus_224",
    "mae_hiera_large_224",
    "mae_hiera_huge_224",
    "hiera_base_16x224",
    "hiera_base_plus_16x224",
    "hiera_large_16x224",
    "hiera_huge_16x224",
    "mae_hiera_base_16x224",
    "mae_hiera_base_plus_16x224",
    "mae_hiera_large_16x224",
    "mae_hiera_huge_16x224",
]

_LayerNorm = partial(nn.LayerNorm, eps=LN_EPS)  # official Hiera: eps 1e-6
_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}  # by the number of grid axes


# --- the blocks ----------------------------------------------------------------------------


class MaskUnitAttention(nn.Module):
    r"""Attention within mask units or over all tokens, with max-pooled queries (Hiera §3.2, Fig. 5b).

    The sequence is unrolled, so the unit is the fastest index: ``reshape(B, T, U, ...)`` gives
    each unit its own column, and attention runs per unit (``use_mask_unit_attn``, stages 1-2)
    or over everything (``U = 1`` as far as this layer is concerned, stages 3-4). At a stage
    transition (the first block of stages 2-4, when that transition pools) the queries are
    max-pooled over their ``q_stride`` slices
    ([`pool_tokens`][refimpl.unroll.pool_tokens] done per unit), so the output has
    ``N / q_stride`` tokens, while keys and values keep the full resolution. Each head computes
    $\mathrm{softmax}(Q K^\top / \sqrt{d_h}) V$.

    Args:
        dim: input width ``D``.
        dim_out: output width ``D_out``; ``qkv`` maps ``D -> 3 * D_out``.
        heads: attention heads, ``d_h = D_out / heads``.
        q_stride: tokens pooled into one query, ``sy * sx`` [``st * sy * sx``] (1: no pooling).
        window_size: tokens per mask unit *after* pooling (used with ``use_mask_unit_attn``).
        use_mask_unit_attn: attend within each mask unit, else globally.
        fused_attn: use ``F.scaled_dot_product_attention`` (the official code does; the paper's
            timings did not); ``False`` computes the softmax formula step by step.

    Raises:
        ValueError: if ``dim_out`` is not divisible by ``heads``.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        heads: int,
        q_stride: int = 1,
        window_size: int = 0,
        use_mask_unit_attn: bool = False,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if dim_out % heads:
            raise ValueError(f"dim_out={dim_out} is not divisible by heads={heads}")
        self.dim, self.dim_out, self.heads = dim, dim_out, heads
        self.q_stride, self.window_size = q_stride, window_size
        self.use_mask_unit_attn, self.fused_attn = use_mask_unit_attn, fused_attn
        self.head_dim = dim_out // heads
        self.scale = self.head_dim**-0.5  # 1 / sqrt(d_h)
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """Attend within units (or globally) and pool the queries.

        Args:
            x: unrolled tokens, shape ``(B, N, D)``.

        Returns:
            ``(B, N / q_stride, D_out)``, still unrolled.
        """
        N = x.shape[1]
        U = N // (self.q_stride * self.window_size) if self.use_mask_unit_attn else 1  # windows
        # Unrolled, the unit is the fastest index: token n belongs to window n % U (see unroll).
        q, k, v = rearrange(self.qkv(x), "b (t u) (three heads d) -> three b heads u t d",
                            u=U, three=3, heads=self.heads).unbind(0)  # 3 x (B, heads, U, T, d_h)
        if self.q_stride > 1:  # max over the q slices of each unit: a 2x2 [1x2x2] max-pool, see unroll
            q = reduce(q, "b heads u (q t) d -> b heads u t d", "max", q=self.q_stride)  # (B, heads, U, T/q, d_h)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, U, T/q, d_h)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, U, T/q, T)
            x = attn.softmax(dim=-1) @ v  # (B, heads, U, T/q, d_h)
        return self.proj(rearrange(x, "b heads u t d -> b (t u) (heads d)"))  # (B, N/q, D_out), still unrolled


class HieraBlock(nn.Module):
    """A pre-norm transformer block; the first block after a stage transition widens and pools (Hiera Fig. 2).

    ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``. When the width changes (the first block
    of stages 2-4), the residual becomes ``pool(proj(norm1(x)))``: a linear map of the *normalised*
    input, max-pooled like the queries; a quirk of the official code kept for checkpoint parity.

    Args:
        dim: input width ``D``.
        dim_out: output width ``D_out``.
        heads: attention heads.
        mlp_ratio: MLP hidden width / ``D_out``.
        drop_path: stochastic-depth probability.
        q_stride: tokens pooled into one (1: none).
        window_size: tokens per mask unit after pooling.
        use_mask_unit_attn: attention within mask units, else global.
        fused_attn: passed to [`MaskUnitAttention`][refimpl.hiera.MaskUnitAttention].
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        q_stride: int = 1,
        window_size: int = 0,
        use_mask_unit_attn: bool = False,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.norm1 = _LayerNorm(dim)
        self.attn = MaskUnitAttention(dim, dim_out, heads, q_stride, window_size, use_mask_unit_attn, fused_attn)
        self.norm2 = _LayerNorm(dim_out)
        self.mlp = Mlp(dim_out, int(dim_out * mlp_ratio))
        self.drop_path = DropPath(drop_path, check=False)  # a rate the model's config checked
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: unrolled tokens, shape ``(B, N, D)``.

        Returns:
            ``(B, N / q_stride, D_out)``.
        """
        x_norm = self.norm1(x)
        if self.dim != self.dim_out:
            x = pool_tokens(self.proj(x_norm), self.attn.q_stride)  # (B, N/q, D_out)
        x = x + self.drop_path(self.attn(x_norm))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class HieraPatchEmbed(nn.Module):
    """Overlapping patch embedding, as in the official code: a 7x7 convolution, stride 4, padding 3, for images;
    a 3x7x7 one, stride ``(2, 4, 4)``, padding ``(1, 3, 3)``, for video (a token spans 2 frames).

    With a mask, the pixels of removed units are set to zero first, so the overlapping kernel
    cannot see into them from a kept neighbour (in time as well as in space).

    Args:
        in_chans: image channels ``C``.
        embed_dim: token width.
        kernel: convolution kernel, one entry per axis: 2 entries build a ``Conv2d`` (images),
            3 a ``Conv3d`` (video).
        stride: patch stride (the token grid is ``H / stride``, per axis).
        padding: convolution padding.

    Raises:
        ValueError: if ``kernel`` has not 2 or 3 entries, or ``stride``/``padding`` another number.
    """

    def __init__(
        self,
        in_chans: int,
        embed_dim: int,
        kernel: tuple[int, ...] = (7, 7),
        stride: tuple[int, ...] = (4, 4),
        padding: tuple[int, ...] = (3, 3),
    ) -> None:
        super().__init__()
        if len(kernel) not in _CONV or len(stride) != len(kernel) or len(padding) != len(kernel):
            raise ValueError(
                f"kernel={tuple(kernel)}, stride={tuple(stride)}, padding={tuple(padding)}; expected 2 entries each "
                f"(images) or 3 (video)"
            )
        self.proj = _CONV[len(kernel)](in_chans, embed_dim, kernel_size=kernel, stride=stride, padding=padding)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """Embed, after blanking removed units.

        Args:
            x: images ``(B, C, H, W)`` [clips ``(B, C, F, H, W)``].
            keep: optional grid of units ``(B, 1, H / 32, W / 32)`` [``(B, 1, F / 2, H / 32,
                W / 32)``], 1 = **kept** (an internal helper of the forward pass; the public mask
                is 1 = removed).

        Returns:
            Tokens in raster order, shape ``(B, L, D)``.
        """
        if keep is not None:
            pixels = keep
            for axis in range(2, x.ndim):  # each unit's value over all of its pixels (and frames)
                pixels = pixels.repeat_interleave(x.shape[axis] // keep.shape[axis], dim=axis)
            x = x * pixels  # pixels: (B, 1, [F,] H, W)
        return rearrange(self.proj(x), "b d ... -> b (...) d")  # (B, D, [t,] h, w) -> (B, L, D) raster order


class Head(nn.Module):
    """Classification head: dropout, then a linear map (``head.projection`` in the state dict).

    The official head also applies a softmax in eval mode; this one always returns logits (apply
    ``.softmax(-1)`` yourself for probabilities).

    Args:
        dim: input width.
        num_classes: output classes.
        dropout: dropout before the linear map.
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, D)`` pooled features -> ``(B, num_classes)`` logits."""
        return self.projection(self.dropout(x))


# --- the encoder ---------------------------------------------------------------------------


class HieraFeatures(NamedTuple):
    """What [`HieraBackbone.forward_features`][refimpl.hiera.HieraBackbone.forward_features] returns."""

    tokens: Tensor
    """Output of the last block, ``(B, N, D_last)``, unrolled (raster order at the last stage of
    a classifier, where every stride has been consumed)."""
    stages: list[Tensor]
    """One output per stage. Without a mask: ``(B, h_s, w_s, D_s)`` [``(B, t, h_s, w_s, D_s)``]
    in spatial order. With a mask: ``(B, U_keep, ku_s, kv_s, D_s)`` [``(B, U_keep, kt, ku_s,
    kv_s, D_s)``], the kept units in ascending order."""


@dataclass(frozen=True)
class HieraConfig:
    """The sizes of a Hiera encoder, validated once, when built (Hiera Table 2 names the published ones).

    Every rule between the fields is checked here and nowhere else, so a model built from a config
    reads as the architecture. Images or video by the sizes alone: 2-entry sizes describe an image
    model, 3-entry ones (first entry: time) a video model. The official video configs are
    ``input_size=(16, 224, 224)``, ``q_stride=(1, 2, 2)``, ``mask_unit_size=(1, 8, 8)``,
    ``patch_kernel=(3, 7, 7)``, ``patch_stride=(2, 4, 4)``, ``patch_padding=(1, 3, 3)``,
    ``sep_pos_embed=True`` (see [`hiera_base_16x224`][refimpl.hiera.hiera_base_16x224]).

    Raises:
        TypeError: if ``input_size`` is not a tuple, or a count or rate is not a number of its kind.
        ValueError: if the sizes do not fit: ``input_size`` not 2 or 3 entries, a per-axis size
            (``q_stride``, ``mask_unit_size``, ``patch_*``) with another number of entries,
            ``input_size`` not a multiple of ``patch_stride * mask_unit_size``, a patch
            convolution whose output grid is not ``input_size // patch_stride``,
            ``mask_unit_size != q_stride ** (len(stages) - 1)``, ``q_pool >= len(stages)``,
            ``len(mask_unit_attn) != len(stages)`` or ``sep_pos_embed`` for images; also if
            ``mlp_ratio``, ``dim_mul`` or ``head_mul`` is not a positive finite number.

    Examples:
        >>> config = HieraConfig(input_size=(64, 64))
        >>> config.tokens_spatial_shape, config.mask_spatial_shape  # tokens and mask units of stage 1
        ((16, 16), (2, 2))
        >>> HieraConfig(stages=(1, 1, 1, 1), q_pool=4)
        Traceback (most recent call last):
        ...
        ValueError: q_pool=4; expected 0 <= q_pool < len(stages) = 4
    """

    input_size: tuple[int, ...] = (224, 224)
    """``(H, W)`` [``(F, H, W)``]."""
    in_chans: int = 3
    """Image channels ``C``."""
    embed_dim: int = 96
    """Width of stage 1."""
    num_heads: int = 1
    """Heads of stage 1."""
    stages: tuple[int, ...] = (2, 3, 16, 3)
    """Blocks per stage."""
    q_pool: int = 3
    """How many stage transitions pool (3 for classifiers, 2 for MAE, Hiera App. A)."""
    q_stride: tuple[int, ...] = (2, 2)
    """``(sy, sx)`` [``(st, sy, sx)``]: the query pooling at a stage transition."""
    mask_unit_size: tuple[int, ...] = (8, 8)
    """``(ku, kv)`` [``(kt, ku, kv)``] at stage 1, in tokens; must be ``q_stride ** (len(stages) - 1)``."""
    mask_unit_attn: tuple[bool, ...] = (True, True, False, False)
    """Per stage, attention within mask units (else global)."""
    dim_mul: float = 2.0
    """Width multiplier at each stage transition."""
    head_mul: float = 2.0
    """Heads multiplier at each stage transition."""
    patch_kernel: tuple[int, ...] = (7, 7)
    """Patch-embedding kernel."""
    patch_stride: tuple[int, ...] = (4, 4)
    """Patch-embedding stride."""
    patch_padding: tuple[int, ...] = (3, 3)
    """Patch-embedding padding."""
    mlp_ratio: float = 4.0
    """MLP hidden width / block width."""
    drop_path_rate: float = 0.0
    """Stochastic depth of the last block, rising linearly from 0."""
    fused_attn: bool = True
    """Use ``F.scaled_dot_product_attention``."""
    sep_pos_embed: bool = False
    """Video only: learn the position embedding as a spatial table ``pos_embed_spatial (1, h * w, D)``
    plus a temporal one ``pos_embed_temporal (1, t, D)`` instead of one ``pos_embed (1, L, D)``."""

    def __post_init__(self) -> None:
        self._check_numbers()
        self._check_sizes()

    def _check_numbers(self) -> None:
        """Each field alone: its kind and range."""
        if not isinstance(self.input_size, (tuple, list, torch.Size)):
            raise TypeError(f"input_size must be a tuple, (H, W) for images or (F, H, W) for video, got "
                            f"{type(self.input_size).__name__} {self.input_size!r}; expected e.g. (224, 224)")
        for name in ("in_chans", "embed_dim", "num_heads"):
            checks.integer(getattr(self, name), name, example="96" if name == "embed_dim" else "3")
        stages = tuple(checks.integer(v, f"stages[{i}]", example="2") for i, v in enumerate(self.stages))
        checks.real(self.mlp_ratio, "mlp_ratio", 0.0, math.inf, low_open=True, high_open=True, example="4.0")
        checks.real(self.drop_path_rate, "drop_path_rate", 0.0, 1.0, high_open=True, example="0.1")
        for name in ("dim_mul", "head_mul"):  # int(dim * nan) would say nothing
            checks.real(getattr(self, name), name, 0.0, math.inf, low_open=True, high_open=True, example="2.0")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "mask_unit_attn", tuple(self.mask_unit_attn))
        for name in ("q_stride", "mask_unit_size", "patch_kernel", "patch_stride", "patch_padding"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def _check_sizes(self) -> None:
        """The rules between the fields: every size has one entry per axis, and the schedule fits the grid."""
        n = len(self.input_size)
        if n not in _CONV:
            raise ValueError(f"input_size={tuple(self.input_size)}; expected (H, W) for images or (F, H, W) for video")
        object.__setattr__(self, "input_size", checks.sizes(self.input_size, "input_size", n, example="(224, 224)"))
        if not 0 <= self.q_pool < len(self.stages):
            raise ValueError(f"q_pool={self.q_pool}; expected 0 <= q_pool < len(stages) = {len(self.stages)}")
        if len(self.mask_unit_attn) != len(self.stages):
            raise ValueError(f"mask_unit_attn has {len(self.mask_unit_attn)} entries; expected one per stage "
                             f"({len(self.stages)})")
        for name in ("q_stride", "mask_unit_size", "patch_kernel", "patch_stride", "patch_padding"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{name}={getattr(self, name)} has {len(getattr(self, name))} entries but input_size="
                    f"{self.input_size} has {n}; expected one per axis. The defaults are for images only: a video "
                    f"model needs 3-entry q_stride, mask_unit_size and patch_kernel/stride/padding, as in "
                    f"hiera_base_16x224"
                )
        if self.sep_pos_embed and n != 3:
            raise ValueError(
                f"sep_pos_embed=True with input_size={self.input_size}; expected a video input_size (F, H, W): "
                f"the separate tables are one over time and one over space"
            )
        unrolls = len(self.stages) - 1
        if self.mask_unit_size != tuple(s**unrolls for s in self.q_stride):
            raise ValueError(
                f"mask_unit_size={self.mask_unit_size} with q_stride={self.q_stride} and {len(self.stages)} stages; "
                f"expected mask_unit_size == q_stride ** {unrolls} = {tuple(s**unrolls for s in self.q_stride)}"
            )
        unit_px = tuple(p * k for p, k in zip(self.patch_stride, self.mask_unit_size))
        if any(i % u for i, u in zip(self.input_size, unit_px)):
            example = tuple(m * u for m, u in zip((8, 7, 7)[-n:], unit_px))  # 16 x 224 x 224 or 224 x 224
            raise ValueError(
                f"input_size={self.input_size} is not a multiple of patch_stride * mask_unit_size = {unit_px} "
                f"{'(frames, pixels, pixels)' if n == 3 else 'pixels'}; expected e.g. {example}"
            )
        conv_out = tuple((i + 2 * pad - k) // s + 1 for i, k, s, pad in
                         zip(self.input_size, self.patch_kernel, self.patch_stride, self.patch_padding))
        if conv_out != self.tokens_spatial_shape:
            raise ValueError(
                f"patch_kernel={self.patch_kernel} with patch_padding={self.patch_padding} and patch_stride="
                f"{self.patch_stride} makes a {conv_out} token grid from input_size={self.input_size}; expected "
                f"input_size // patch_stride = {self.tokens_spatial_shape} (an odd kernel with padding "
                f"(kernel - 1) / 2 does)"
            )

    @property
    def tokens_spatial_shape(self) -> tuple[int, ...]:
        """The token grid of stage 1, ``([t,] h, w) = input_size // patch_stride``."""
        return tuple(i // p for i, p in zip(self.input_size, self.patch_stride))

    @property
    def mask_spatial_shape(self) -> tuple[int, ...]:
        """The grid of mask units, ``([ut,] uy, ux)`` (7 x 7 at 224 px, 8 x 7 x 7 for 16 x 224 x 224)."""
        return tuple(t // k for t, k in zip(self.tokens_spatial_shape, self.mask_unit_size))


class HieraBackbone(nn.Module):
    """The Hiera encoder: patch embedding, position embedding, unroll, four stages of blocks (Hiera Fig. 2).

    Shared by [`Hiera`][refimpl.hiera.Hiera] (adds a norm and a head) and
    [`MaskedAutoencoderHiera`][refimpl.hiera.MaskedAutoencoderHiera] (adds fusion and a decoder).
    Stage ``s`` has ``stages[s]`` blocks; its first block (for ``s >= 1``) multiplies the width
    by ``dim_mul`` and the heads by ``head_mul``, and, if ``s <= q_pool``, pools by ``q_stride``.
    Mask-unit attention is on in the stages marked in ``mask_unit_attn``; the setting changes one
    block late, so the pooling block still attends like the stage before it (official code).

    Args:
        **config: the fields of [`HieraConfig`][refimpl.hiera.HieraConfig] (sizes, stages, ...),
            by keyword; the model keeps the validated config as ``.config``.

    Raises:
        TypeError, ValueError: as [`HieraConfig`][refimpl.hiera.HieraConfig], if the sizes do not fit.
    """

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config = c = HieraConfig(**config)
        self.input_size, self.in_chans, self.patch_stride = c.input_size, c.in_chans, c.patch_stride
        self.q_pool, self.q_stride, self.mask_unit_size = c.q_pool, c.q_stride, c.mask_unit_size
        self.tokens_spatial_shape = c.tokens_spatial_shape  # ([t,] h, w) at stage 1
        self.mask_spatial_shape = c.mask_spatial_shape  # ([ut,] uy, ux): the grid of units
        self.stage_ends = [sum(c.stages[: i + 1]) - 1 for i in range(len(c.stages))]  # last block of each stage
        self.unroll_strides = [c.q_stride] * (len(c.stages) - 1)  # one unroll step per stage transition

        # Tokens: an overlapping patch convolution plus a learned absolute position (Hiera Table 1).
        self.patch_embed = HieraPatchEmbed(c.in_chans, c.embed_dim, c.patch_kernel, c.patch_stride, c.patch_padding)
        self.sep_pos_embed = c.sep_pos_embed
        if c.sep_pos_embed:  # registered in the official order: spatial, then temporal
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, math.prod(self.tokens_spatial_shape[1:]), c.embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, self.tokens_spatial_shape[0], c.embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.tokens_spatial_shape), c.embed_dim))

        # The stages (Hiera Fig. 2): plain blocks; the first block of a stage widens, and pools while q_pool lasts.
        q = math.prod(c.q_stride)  # tokens pooled into one
        pool_blocks = {end + 1 for end in self.stage_ends[: c.q_pool]}
        window = math.prod(c.mask_unit_size)  # tokens per unit, after each block's pooling
        rates = torch.linspace(0, c.drop_path_rate, sum(c.stages), device="cpu").tolist()
        self.blocks = nn.ModuleList()
        dim, heads, stage = c.embed_dim, c.num_heads, 0
        for i, rate in enumerate(rates):
            dim_out, use_mu_attn = dim, c.mask_unit_attn[stage]  # read before the stage advances: one block late
            if i - 1 in self.stage_ends:  # first block of a new stage
                dim_out, heads, stage = int(dim * c.dim_mul), int(heads * c.head_mul), stage + 1
            stride = q if i in pool_blocks else 1
            window //= stride
            self.blocks.append(HieraBlock(dim, dim_out, heads, c.mlp_ratio, rate, stride, window, use_mu_attn,
                                          c.fused_attn))
            dim = dim_out

        # Which strides are still unrolled, and the grid, after each block (for reroll).
        self._layout: list[tuple[tuple[int, ...], list[tuple[int, ...]]]] = []
        grid, strides = self.tokens_spatial_shape, list(self.unroll_strides)
        for i in range(len(self.blocks)):
            if i in pool_blocks:
                grid = tuple(g // s for g, s in zip(grid, c.q_stride))
                strides = strides[1:]
            self._layout.append((grid, strides))

    @staticmethod
    @torch.no_grad()
    def _init_module(module: nn.Module) -> None:
        """Official Hiera init of one module: truncated normal (std 0.02) weights; biases start at 0.02, not 0."""
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.constant_(module.bias, 0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.constant_(module.bias, 0.02)
            nn.init.ones_(module.weight)

    def _pos_embed_tables(self) -> list[nn.Parameter]:
        """The learned position tables: ``[pos_embed]``, or ``[pos_embed_spatial, pos_embed_temporal]``."""
        return [self.pos_embed_spatial, self.pos_embed_temporal] if self.sep_pos_embed else [self.pos_embed]

    def get_pos_embed(self) -> Tensor:
        """The position embedding of every stage-1 token, raster order, ``(1, L, D)``.

        With ``sep_pos_embed`` (video), token ``(i, j)``, token frame ``i`` and position ``j`` of
        the ``h x w`` grid, gets ``pos_embed_temporal[i] + pos_embed_spatial[j]``: ``t + h * w``
        learned vectors instead of ``t * h * w``.

        Returns:
            ``(1, L, D)``, added to the patch embedding before [`unroll`][refimpl.unroll.unroll].
        """
        if not self.sep_pos_embed:
            return self.pos_embed
        table = self.pos_embed_temporal[:, :, None] + self.pos_embed_spatial[:, None]  # (1, t, h*w, D)
        return table.flatten(1, 2)  # (1, L, D): frame by frame, like the tokens

    @property
    def num_mask_units(self) -> int:
        """``U`` at stage 1 (49 for a 224-px image, 392 for a 16 x 224 x 224 clip)."""
        return math.prod(self.mask_spatial_shape)

    def _check_images(self, imgs: object, nonempty: bool = False) -> Tensor:
        video = len(self.input_size) == 3
        layout = "(B, C, F, H, W)" if video else "(B, C, H, W)"
        imgs = checks.images(imgs, "imgs", layout, None, self.patch_embed.proj.weight.dtype, nonempty)
        expected = (self.in_chans, *self.input_size)
        if imgs.ndim != len(expected) + 1 or tuple(imgs.shape[1:]) != expected:
            hint = ""
            if video and imgs.ndim == 4:
                hint = f"; this is a video model: it takes clips {layout} with F={self.input_size[0]} frames"
            elif not video and imgs.ndim == 5:
                hint = "; this is an image model: for clips (B, C, F, H, W) build a video one such as hiera_base_16x224"
            elif video and imgs.ndim == 5 and imgs.shape[2] != self.input_size[0]:
                hint = (f"; the clip has F={imgs.shape[2]} frames but the model was built for F={self.input_size[0]} "
                        f"(its temporal position embedding has {self.tokens_spatial_shape[0]} token frames)")
            raise ValueError(
                f"imgs has shape {tuple(imgs.shape)}; expected (B, {', '.join(map(str, expected))}) for this model "
                f"(in_chans={self.in_chans}, input_size={self.input_size}){hint}"
            )
        return imgs

    def _check_mask(self, mask: object, batch: int, values: bool = True) -> Tensor:
        """Check a ``(B, U)`` mask's type and shape, and (``values``, eager only) that it is a 0/1 mask
        removing the same number of units per sample, at least one kept: reading values waits for the GPU."""
        U = self.num_mask_units
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask must be a torch.Tensor of shape (B, U) = ({batch}, {U}), got {type(mask).__name__}")
        if tuple(mask.shape) != (batch, U):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}; expected (B, U) = ({batch}, {U}): one value per mask unit "
                f"of the {' x '.join(map(str, self.mask_spatial_shape))} unit grid, 1 = removed"
            )
        if not values or torch.compiler.is_compiling():  # the checks below read values: eager only
            return mask
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask holds values other than 0 and 1; expected 1 = removed, 0 = kept")
        removed = mask.sum(dim=1)
        if bool((removed != removed[0]).any()):
            raise ValueError(f"mask removes {removed.int().tolist()} units per sample; expected the same number in every row")
        if int(removed[0]) == U:
            raise ValueError(f"mask removes all {U} mask units; expected at least one kept unit")
        if int(removed[0]) == 0:
            raise ValueError(f"mask removes none of the {U} mask units, so the loss (a mean over the removed "
                             f"patches) is undefined; expected at least one removed unit")
        return mask

    def forward_features(self, imgs: Tensor, mask: Tensor | None = None, ids: MaskIds | None = None, *,
                         check: bool = True) -> HieraFeatures:
        """Run the encoder, on all tokens or on the kept mask units only.

        Args:
            imgs: ``(B, C, H, W)`` [``(B, C, F, H, W)``] with ``([F,] H, W) == input_size``.
            mask: optional ``(B, U)`` over the mask units in raster order (for video: frame by
                frame), **1 = removed**, the same number removed per sample (official Hiera:
                1 = keep).
            ids: ``ids_from_mask(mask)`` if the caller has it already (the MAE computes it once
                for the encoder and the decoder, from a count it knows, so ``torch.compile``
                traces the masked path without reading the mask). The mask's values are then
                taken as checked: only its type and shape are.
            check: ``False`` when the caller has checked ``imgs`` and ``mask`` (the MAE does).

        Returns:
            ``HieraFeatures(tokens, stages)``; see [`HieraFeatures`][refimpl.hiera.HieraFeatures].

        Raises:
            TypeError: if ``imgs`` or ``mask`` is not a tensor.
            ValueError: if ``imgs`` is not ``(B, in_chans, *input_size)`` (e.g. an image given to
                a video model, or a clip of another length) or holds NaN or infinite values, or
                ``mask`` is not a ``(B, U)`` 0/1 mask removing the same number of units per
                sample, at least one kept.
        """
        if check:
            imgs = self._check_images(imgs)
            if mask is not None:  # given ids, the caller made them from a valid mask: no value is read
                mask = self._check_mask(mask, imgs.shape[0], values=ids is None)
        B = imgs.shape[0]
        keep = None
        if mask is not None:
            keep = (1 - mask.to(imgs.dtype)).reshape(B, 1, *self.mask_spatial_shape)  # (B, 1, [ut,] uy, ux), 1 = kept
        x = self.patch_embed(imgs, keep) + self.get_pos_embed()  # (B, L, D)
        x = unroll(x, self.tokens_spatial_shape, self.unroll_strides)  # (B, L, D), unit index fastest
        if mask is not None:  # drop removed units: columns of the (T, U) view
            ids_keep = (ids or ids_from_mask(mask, int(mask[0].sum()), check=False)).ids_keep  # (B, U_keep) ascending
            T, D = x.shape[1] // self.num_mask_units, x.shape[2]
            x = x.reshape(B, T, self.num_mask_units, D)  # (B, T, U, D)
            index = ids_keep[:, None, :, None].expand(B, T, ids_keep.shape[1], D)  # (B, T, U_keep, D)
            x = torch.gather(x, 2, index).reshape(B, -1, D)  # (B, T * U_keep, D)

        stages = []
        ends = set(self.stage_ends)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in ends:
                grid, strides = self._layout[i]
                if mask is None:
                    stages.append(reroll(x, grid, strides).reshape(B, *grid, x.shape[-1]))  # (B, [t,] h, w, D)
                else:
                    stages.append(reroll_units(x, strides, len(grid)))  # (B, U_keep, [kt,] ku, kv, D)
        return HieraFeatures(x, stages)


class Hiera(HieraBackbone):
    """Hiera classifier (Hiera Fig. 2; the sizes are Hiera Table 2): the encoder, mean over tokens, LayerNorm, head.

    For images, or for video clips when built with 3-D sizes (the ``*_16x224`` factories).

    Args:
        num_classes: classes of the head.
        head_dropout: dropout before the head.
        head_init_scale: the head's initial weights and biases are scaled by this (official 0.001).
        **kwargs: passed to [`HieraBackbone`][refimpl.hiera.HieraBackbone] (sizes, stages, ...).

    Raises:
        ValueError: if the sizes do not fit (see ``HieraBackbone``), ``head_dropout`` is outside
            ``[0, 1)`` or ``head_init_scale`` is not finite.

    Examples:
        >>> import torch
        >>> model = Hiera(input_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1),
        ...               num_classes=10).eval()
        >>> imgs = torch.randn(2, 3, 64, 64)
        >>> [tuple(s.shape) for s in model.forward_features(imgs).stages]
        [(2, 16, 16, 16), (2, 8, 8, 32), (2, 4, 4, 64), (2, 2, 2, 128)]
        >>> model(imgs).shape
        torch.Size([2, 10])
        >>> video = hiera_base_16x224(input_size=(4, 64, 64), embed_dim=16, stages=(1, 1, 1, 1),
        ...                           num_classes=10).eval()  # the video config, tiny
        >>> clips = torch.randn(2, 3, 4, 64, 64)  # (B, C, F, H, W): 4 frames -> t = 2 token frames
        >>> [tuple(s.shape) for s in video.forward_features(clips).stages]
        [(2, 2, 16, 16, 16), (2, 2, 8, 8, 32), (2, 2, 4, 4, 64), (2, 2, 2, 2, 128)]
        >>> video(clips).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, num_classes: int = 1000, head_dropout: float = 0.0, head_init_scale: float = 0.001, **kwargs: Any
    ) -> None:
        checks.real(head_dropout, "head_dropout", 0.0, 1.0, high_open=True, example="0.0")
        checks.real(head_init_scale, "head_init_scale", -math.inf, math.inf, low_open=True, high_open=True,
                    example="0.001")
        super().__init__(**kwargs)
        width = self.blocks[-1].dim_out
        self.norm = _LayerNorm(width)
        self.head = Head(width, num_classes, head_dropout)
        self.head_init_scale = head_init_scale
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """As the official Hiera: truncated-normal (std 0.02) position tables and weights, biases 0.02,
        and the head's weights and bias scaled down by ``head_init_scale``."""
        for table in self._pos_embed_tables():
            nn.init.trunc_normal_(table, std=0.02)
        self.apply(self._init_module)
        self.head.projection.weight.mul_(self.head_init_scale)
        self.head.projection.bias.mul_(self.head_init_scale)

    def forward(self, imgs: Tensor) -> Tensor:
        """Classify a batch of images (or clips).

        Args:
            imgs: ``(B, C, H, W)`` [``(B, C, F, H, W)``] with ``([F,] H, W) == input_size``.

        Returns:
            Logits ``(B, num_classes)`` (the official model returns softmax probabilities in eval
            mode; these are the numbers before it).

        Raises:
            TypeError: if ``imgs`` is not a tensor.
            ValueError: if ``imgs`` is not ``(B, in_chans, *input_size)`` or holds NaN or infinite values.
        """
        tokens = self.forward_features(imgs).tokens  # (B, N, D_last)
        return self.head(self.norm(tokens.mean(dim=1)))


# --- MAE with a Hiera encoder ------------------------------------------------------------


class MAEHieraOutput(NamedTuple):
    """What [`MaskedAutoencoderHiera.forward`][refimpl.hiera.MaskedAutoencoderHiera.forward] returns."""

    loss: Tensor
    """Scalar: mean squared error over the removed prediction patches."""
    pred: Tensor
    """``(B, L_pred, C * p * p)`` predicted pixels of every prediction patch, raster order, each patch
    flattened channels first ``(C, p, p)`` (``L_pred = 14 * 14``, ``p = 16`` at 224 px). Video:
    ``L_pred = t * 14 * 14`` patches of one frame each, flattened channels last ``(p, p, C)``."""
    target: Tensor
    """``(B, L_pred, C * p * p)`` the pixels, normalised per patch when ``norm_pix_loss``."""
    mask: Tensor
    """``(B, L_pred)``, 1 = removed, at the resolution of the prediction."""
    units: Tensor
    """``(B, U)``, 1 = removed, over the mask units (what was passed in or drawn)."""


class MaskedAutoencoderHiera(HieraBackbone):
    """MAE with a Hiera encoder (Hiera Fig. 4, §4, App. A): masked mask units, fused stages, decoder.

    1. Mask whole mask units (by default 0.6 of them for images and 0.9 for video, the best
       ratios of Hiera Table 3b), blank their pixels and drop their tokens: the encoder runs on
       the kept units only.
    2. The encoder pools only ``q_pool = 2`` times (the pooling before the last stage is left out
       for MAE pretraining, Hiera App. A), so its last stages run at 1/16 of the image
       side (14 x 14 tokens, 2 x 2 per unit at 224 px). The outputs of stage 1 and 2 are brought to
       that resolution by a strided convolution each (``multi_scale_fusion_heads``), added to the
       last stage's output, and normalised (``encoder_norm``): the multi-scale decoder input of
       Hiera Table 3a. Stage 3 is not fused (official code).
    3. The decoder, plain global-attention blocks, sees every position: encoded tokens for kept
       units, the learned ``mask_token`` for removed ones, in raster order, plus a learned position
       embedding.
    4. A linear layer predicts the ``16 x 16`` pixels of each position (``16 = patch_stride *
       q_stride ** q_pool``); the loss is the mean squared error on removed positions against
       per-patch normalised pixels (the official image models always normalise).

    Video (3-D sizes): the same steps on ``t x 14 x 14`` positions, units ``1 x 2 x 2`` at the
    end, ``Conv3d`` fusion heads. A position still predicts ``16 x 16`` pixels of *one* frame: the
    first of the ``patch_stride[0] = 2`` frames its token spans (the official "time-strided"
    target), flattened ``(p, p, C)``, channels last, unlike images; an official quirk kept for
    checkpoint parity.

    Args:
        decoder_embed_dim: decoder width.
        decoder_depth: decoder blocks.
        decoder_num_heads: decoder heads.
        norm_pix_loss: normalise each target patch by its mean and (unbiased) variance.
        q_pool: pooling stage transitions in the encoder (official MAE: 2).
        **kwargs: passed to [`HieraBackbone`][refimpl.hiera.HieraBackbone].

    Raises:
        ValueError: if the sizes do not fit (see ``HieraBackbone``).
    """

    def __init__(
        self,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        norm_pix_loss: bool = True,
        q_pool: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(q_pool=q_pool, **kwargs)
        self.norm_pix_loss = norm_pix_loss
        width = self.blocks[-1].dim_out
        shrink = [s**q_pool for s in self.q_stride]
        self.mask_unit_size_final = tuple(k // s for k, s in zip(self.mask_unit_size, shrink))  # ([1,] 2, 2)
        self.tokens_spatial_shape_final = tuple(t // s for t, s in zip(self.tokens_spatial_shape, shrink))  # ([t,] 14, 14)
        self.encoder_norm = _LayerNorm(width)

        # One strided conv per pooled stage takes its units to the final unit size.
        conv = _CONV[len(self.input_size)]
        self.multi_scale_fusion_heads = nn.ModuleList()
        unit = self.mask_unit_size
        for end in self.stage_ends[:q_pool]:
            kernel = tuple(k // f for k, f in zip(unit, self.mask_unit_size_final))
            self.multi_scale_fusion_heads.append(conv(self.blocks[end].dim_out, width, kernel, stride=kernel))
            unit = tuple(k // s for k, s in zip(unit, self.q_stride))
        self.multi_scale_fusion_heads.append(nn.Identity())  # the last stage is at the final size already

        self.decoder_embed = nn.Linear(width, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.tokens_spatial_shape_final), decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList(
            [HieraBlock(decoder_embed_dim, decoder_embed_dim, decoder_num_heads, self.config.mlp_ratio,
                        fused_attn=self.config.fused_attn) for _ in range(decoder_depth)]
        )
        self.decoder_norm = _LayerNorm(decoder_embed_dim)
        self.pred_stride = self.patch_stride[-1] * self.q_stride[-1] ** q_pool  # 16 pixels
        self.decoder_pred = nn.Linear(decoder_embed_dim, self.pred_stride**2 * self.in_chans)  # one frame for video too
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """As the official MAE-Hiera: Hiera's init for the encoder, then Xavier-uniform linear maps with
        zero biases everywhere, the patch conv initialised as a linear map, truncated-normal tokens."""
        for param in (*self._pos_embed_tables(), self.mask_token, self.decoder_pos_embed):
            nn.init.trunc_normal_(param, std=0.02)
        init_linear_and_norm_(self)
        w = self.patch_embed.proj.weight  # (D, C, [3,] 7, 7)
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def forward_encoder(self, imgs: Tensor, mask: Tensor, ids: MaskIds | None = None, *, check: bool = True) -> Tensor:
        """Encode the kept units and fuse the stages (step 1-2).

        Args:
            imgs: ``(B, C, H, W)`` [``(B, C, F, H, W)``].
            mask: ``(B, U)``, 1 = removed.
            ids: ``ids_from_mask(mask)``, if already computed.
            check: ``False`` when the caller has checked ``imgs`` and ``mask`` (``forward`` does).

        Returns:
            ``(B, U_keep, ku_f, kv_f, D_last)`` [``(B, U_keep, 1, ku_f, kv_f, D_last)``]: the kept
            units at the final resolution (2 x 2).

        Raises:
            TypeError, ValueError: as [`forward_features`][refimpl.hiera.HieraBackbone.forward_features].
        """
        if check:
            imgs = self._check_images(imgs)
            mask = self._check_mask(mask, imgs.shape[0], values=ids is None)
        stages = self.forward_features(imgs, mask, ids, check=False).stages  # (B, U_keep, [kt,] ku_s, kv_s, D_s) each
        fused = 0.0
        for head, units in zip(self.multi_scale_fusion_heads, stages[: self.q_pool] + stages[-1:]):
            if not isinstance(head, nn.Identity):  # each unit an image of its own, convolved to the final size
                one_image_per_unit = rearrange(units, "b u ... d -> (b u) d ...")  # (B*U, D_s, [kt,] ku, kv)
                units = rearrange(head(one_image_per_unit), "(b u) d ... -> b u ... d", b=units.shape[0])
            fused = fused + units  # (B, U, [kt,] ku_f, kv_f, D_last)
        return self.encoder_norm(fused)

    def forward_decoder(self, latent: Tensor, mask: Tensor, ids: MaskIds | None = None) -> Tensor:
        """Put mask tokens in the removed units, restore raster order, decode pixels (step 3-4).

        Args:
            latent: ``(B, U_keep, ku_f, kv_f, D_last)`` [``(B, U_keep, 1, ku_f, kv_f, D_last)``]
                from the encoder.
            mask: ``(B, U)``, 1 = removed.
            ids: ``ids_from_mask(mask)``, if already computed.

        Returns:
            Predicted pixels ``(B, L_pred, C * p * p)``, raster order.
        """
        x = self.decoder_embed(latent)  # (B, U_keep, [kt,] ku_f, kv_f, D_dec)
        B, _, *unit, D = x.shape
        T = math.prod(unit)  # positions per unit (4)
        ids_restore = (ids or ids_from_mask(mask)).ids_restore  # (B, U): kept units first, as in x
        fill = self.mask_token.expand(1, T, D).reshape(T * D)  # one mask token per position of a unit
        x = unshuffle(x.reshape(B, -1, T * D), ids_restore, fill, check=False)  # (B, U, T*D_dec) raster over units
        x = units_to_raster(x.reshape(B, -1, *unit, D), self.mask_spatial_shape)  # (B, L_pred, D_dec)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        # A copy: a Linear on (B, L, D) returns a view of its 2-D product, and FSDP2 warns when a
        # sharded model returns a view (an in-place op on it would skip the backward hook).
        return self.decoder_pred(self.decoder_norm(x)).clone()  # (B, L_pred, C*p*p)

    def pixel_target(self, imgs: Tensor) -> Tensor:
        """The prediction target: ``p x p`` patches, ``p = pred_stride``, flattened channels first.

        Video: one frame per token frame, the first of the ``patch_stride[0]`` frames the token
        spans (``imgs[:, :, ::2]``), and each patch flattened channels *last*, ``(p, p, C)``: the
        official layout (its code calls it a mistake made during training), kept so that official
        checkpoints predict what this target expects.

        Args:
            imgs: ``(B, C, H, W)`` [``(B, C, F, H, W)``].

        Returns:
            ``(B, L_pred, C * p * p)``, normalised per patch when ``norm_pix_loss``. The order
            ``(C, p, p)`` inside a patch is the official one (MAE's ``patchify`` puts channels last).
        """
        p = self.pred_stride
        if len(self.input_size) == 3:  # video: the first frame of each token frame, channels last
            frames = imgs[:, :, :: self.patch_stride[0]]  # (B, C, t, H, W)
            x = rearrange(frames, "b c t (h p) (w q) -> b (t h w) (p q c)", p=p, q=p)  # (B, L_pred, p*p*C)
        else:
            x = rearrange(imgs, "b c (h p) (w q) -> b (h w) (c p q)", p=p, q=p)  # (B, L_pred, C*p*p)
        return normalize_patches(x).patches if self.norm_pix_loss else x

    def _check_noise(self, noise: object, batch: int) -> Tensor:
        U = self.num_mask_units
        if not isinstance(noise, Tensor):
            raise TypeError(f"noise must be a torch.Tensor of shape (B, U) = ({batch}, {U}), got {type(noise).__name__}")
        if tuple(noise.shape) != (batch, U) or not noise.is_floating_point():
            raise ValueError(
                f"noise has shape {tuple(noise.shape)} and dtype {noise.dtype}; expected a floating (B, U) = "
                f"({batch}, {U}) tensor: one value per mask unit of the {' x '.join(map(str, self.mask_spatial_shape))} "
                f"unit grid"
            )
        return checks.finite(noise, "noise")  # NaN has no place in a sort order

    # The interface MAE-ViT and MAE-Hiera share (the trainer and its figures use only this).

    @property
    def noise_length(self) -> int:
        """Masking noise values per sample: one per mask unit, ``U``."""
        return self.num_mask_units

    @property
    def pred_patch_size(self) -> int:
        """Side of a predicted patch in pixels: ``pred_stride`` (16 at any input size)."""
        return self.pred_stride

    def pred_channels_last(self, pred: Tensor) -> Tensor:
        """``pred`` ``(B, L_pred, C*p*p)``, flattened channels first, reordered to MAE's ``(p, p, C)``."""
        return rearrange(pred, "b l (c p q) -> b l (p q c)", c=self.in_chans, p=self.pred_stride)

    def encoder_state(self, state: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """The encoder's entries of ``state`` (default: this model's): [`hiera_encoder_state`][refimpl.hiera.hiera_encoder_state]."""
        return hiera_encoder_state(self.state_dict() if state is None else state)

    @property
    def default_mask_ratio(self) -> float:
        """The mask ratio ``forward`` uses when given none: 0.6 for images, 0.9 for video.

        These are the best ratios of Hiera Table 3b, and the pretraining settings of
        Hiera Table 14 (images) and Hiera Table 11 (video). The official ``forward`` defaults to
        0.6 for both, so a video model called without a ratio would train at one the paper found
        worse; here the default follows the model.
        """
        return 0.9 if len(self.input_size) == 3 else 0.6

    def forward(
        self, imgs: Tensor, mask_ratio: float | None = None, mask: Tensor | None = None, noise: Tensor | None = None
    ) -> MAEHieraOutput:
        """Mask units, encode, decode and score one batch (Hiera §3.1, MAE §3).

        Args:
            imgs: ``(B, C, H, W)`` [``(B, C, F, H, W)``] with ``([F,] H, W) == input_size``.
            mask_ratio: fraction of mask units removed, in ``[0, 1)``; ``None`` (default) means
                [`default_mask_ratio`][refimpl.hiera.MaskedAutoencoderHiera.default_mask_ratio]:
                0.6 for images, 0.9 for video (Hiera Table 3b). Ignored when ``mask`` is given.
            mask: optional ``(B, U)`` over the mask units, **1 = removed** (official: 1 = keep).
                Default: [`mask_unit_masking`][refimpl.masking.mask_unit_masking] at ``mask_ratio``.
            noise: optional ``(B, U)`` floating values, one per mask unit, whose argsort picks the
                kept units (smallest first) in place of the internal ``torch.rand(B, U)`` draw: the
                same noise gives the same mask (the trainer draws it per sample, so a resumed run
                masks exactly as an uninterrupted one). Not together with ``mask``.

        Returns:
            ``MAEHieraOutput(loss, pred, target, mask, units)``; ``pred[mask.bool()]`` and
            ``target[mask.bool()]`` are the official ``pred`` and ``label``.

        Raises:
            TypeError: if ``imgs``, ``mask`` or ``noise`` is not a tensor or ``mask_ratio`` not a number.
            ValueError: if ``imgs`` has the wrong shape or holds NaN or infinite values (the loss
                would be NaN), ``mask_ratio`` is outside ``[0, 1)`` or keeps no unit, ``mask`` is
                not a valid ``(B, U)`` 0/1 mask, ``noise`` is not a finite floating ``(B, U)``
                tensor, or both ``mask`` and ``noise`` are given.
        """
        imgs = self._check_images(imgs, nonempty=True)
        B = imgs.shape[0]
        mask, num_removed = self._mask_to_use(B, mask_ratio, mask, noise, imgs.device)  # (B, U), 1 = removed
        ids = ids_from_mask(mask, num_removed, check=False)  # once, for the encoder and the decoder
        latent = self.forward_encoder(imgs, mask, ids, check=False)  # steps 1-2: (B, U_keep, [kt,] ku_f, kv_f, D_last)
        pred = self.forward_decoder(latent, mask, ids)  # steps 3-4: (B, L_pred, C*p*p)
        target = self.pixel_target(imgs)  # (B, L_pred, C*p*p)
        n = len(self.mask_unit_size_final)  # each unit's value to its ([1,] 2, 2) prediction patches
        removed = mask.reshape(B, -1, *[1] * n, 1).expand(B, -1, *self.mask_unit_size_final, 1)  # (B, U, [1,] 2, 2, 1)
        removed = units_to_raster(removed, self.mask_spatial_shape).reshape(B, -1)  # (B, L_pred)
        # Mean over removed patches and their pixels; a weighted sum, not pred[removed.bool()], whose
        # data-dependent shape would stop torch.compile.
        loss = (((pred - target) ** 2).mean(dim=-1) * removed).sum() / removed.sum()
        return MAEHieraOutput(loss, pred, target, removed.to(pred.dtype), mask)

    def _mask_to_use(
        self, batch: int, mask_ratio: object, mask: object, noise: object, device: torch.device
    ) -> tuple[Tensor, int]:
        """The door of ``forward``'s masking arguments: the ``(B, U)`` mask, 1 = removed, and its count per row.

        A given ``mask`` is checked, and its count read once (eager; under ``torch.compile`` this
        breaks the graph, which the training path never takes). Otherwise ``mask_ratio`` (default:
        the model's) and ``noise`` (default: ``torch.rand(B, U)``) are checked and the mask is drawn
        as official Hiera's ``get_random_mask`` draws it, with a count known without reading it.
        """
        U = self.num_mask_units
        if mask is not None:
            if noise is not None:
                raise ValueError("noise and mask are both given; expected one: noise draws a mask, mask is the mask")
            mask = self._check_mask(mask, batch)
            return mask, int(mask[0].sum())
        if mask_ratio is None:
            mask_ratio = self.default_mask_ratio
        mask_ratio = checks.fraction(mask_ratio, "mask_ratio", example=str(self.default_mask_ratio))
        num_kept = int(U * (1 - mask_ratio))  # as mask_unit_masking counts them
        if num_kept == 0:
            raise ValueError(f"mask_ratio={mask_ratio!r} keeps int({U} * (1 - {mask_ratio})) = 0 of {U} mask units")
        if num_kept == U:
            raise ValueError(f"mask_ratio={mask_ratio!r} removes none of the {U} mask units, so the loss (a mean "
                             f"over the removed patches) is undefined; expected a ratio such as 0.6")
        noise = torch.rand(batch, U, device=device) if noise is None else self._check_noise(noise, batch)
        # The units of smallest noise are kept (the same draw as masking.mask_unit_masking, unchecked).
        return _removed_in_original_order(_order(noise).ids_restore, num_kept), U - num_kept


HIERA_ENCODER_PREFIXES = ("patch_embed.", "pos_embed", "blocks.")
"""Keys an MAE-Hiera shares with a [`Hiera`][refimpl.hiera.Hiera] classifier (``pos_embed`` also
matches the video tables ``pos_embed_spatial`` and ``pos_embed_temporal``)."""


def hiera_encoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The encoder's entries of an MAE-Hiera state dict: what a ``Hiera`` classifier of the same size takes.

    Kept: ``patch_embed.*``, the position embedding and ``blocks.*``. Left out: the MAE-only parts
    (``multi_scale_fusion_heads``, ``encoder_norm``, ``mask_token``, ``decoder_*``). The classifier
    pools three times where the MAE pools twice (``q_pool``), but pooling has no weights, so the
    blocks load unchanged; only the classifier's ``norm`` and ``head`` start fresh.

    Args:
        state: a [`MaskedAutoencoderHiera`][refimpl.hiera.MaskedAutoencoderHiera] state dict (official keys).

    Returns:
        The entries a [`Hiera`][refimpl.hiera.Hiera] takes, the same tensors.

    Examples:
        >>> mae = mae_hiera_tiny_224(input_size=(64, 64), embed_dim=8, stages=(1, 1, 1, 1), decoder_depth=1)
        >>> report = Hiera(input_size=(64, 64), embed_dim=8, stages=(1, 1, 1, 1)).load_state_dict(
        ...     hiera_encoder_state(mae.state_dict()), strict=False)
        >>> report.missing_keys, report.unexpected_keys
        (['norm.weight', 'norm.bias', 'head.projection.weight', 'head.projection.bias'], [])
    """
    return {k: v for k, v in state.items() if k.startswith(HIERA_ENCODER_PREFIXES)}


# --- named configs (Hiera Table 2) ---------------------------------------------------------


def hiera_tiny_224(**kwargs: Any) -> Hiera:
    """Hiera-T: width 96, 1 head, stages (1, 2, 7, 2); ``kwargs`` override."""
    return Hiera(**{**dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2)), **kwargs})


def hiera_small_224(**kwargs: Any) -> Hiera:
    """Hiera-S: width 96, 1 head, stages (1, 2, 11, 2); ``kwargs`` override."""
    return Hiera(**{**dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2)), **kwargs})


def hiera_base_224(**kwargs: Any) -> Hiera:
    """Hiera-B: width 96, 1 head, stages (2, 3, 16, 3); ``kwargs`` override."""
    return Hiera(**{**dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), **kwargs})


def hiera_base_plus_224(**kwargs: Any) -> Hiera:
    """Hiera-B+: width 112, 2 heads, stages (2, 3, 16, 3); ``kwargs`` override."""
    return Hiera(**{**dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)), **kwargs})


def hiera_large_224(**kwargs: Any) -> Hiera:
    """Hiera-L: width 144, 2 heads, stages (2, 6, 36, 4); ``kwargs`` override."""
    return Hiera(**{**dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)), **kwargs})


def hiera_huge_224(**kwargs: Any) -> Hiera:
    """Hiera-H: width 256, 4 heads, stages (2, 6, 36, 4); ``kwargs`` override."""
    return Hiera(**{**dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)), **kwargs})


def mae_hiera_tiny_224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-T encoder (``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2)), **kwargs})


def mae_hiera_small_224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-S encoder (``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2)), **kwargs})


def mae_hiera_base_224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-B encoder (``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), **kwargs})


def mae_hiera_base_plus_224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-B+ encoder (``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)), **kwargs})


def mae_hiera_large_224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-L encoder (``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)), **kwargs})


def mae_hiera_huge_224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-H encoder (``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)), **kwargs})


# The official video configs: 16-frame 224-px clips (Kinetics-400), tokens 8 x 56 x 56.
_VIDEO_16X224: dict[str, Any] = dict(
    input_size=(16, 224, 224),
    q_stride=(1, 2, 2),  # pool space only
    mask_unit_size=(1, 8, 8),  # one token frame deep
    patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4),  # a token spans 2 frames
    patch_padding=(1, 3, 3),
    sep_pos_embed=True,
)


def hiera_base_16x224(**kwargs: Any) -> Hiera:
    """Hiera-B for 16-frame 224-px clips: width 96, 1 head, stages (2, 3, 16, 3), 400 classes (Kinetics-400).

    ``kwargs`` override; e.g. ``input_size=(8, 224, 224)`` for 8-frame clips.
    """
    return Hiera(**{**_VIDEO_16X224, **dict(num_classes=400, embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), **kwargs})


def hiera_base_plus_16x224(**kwargs: Any) -> Hiera:
    """Hiera-B+ for 16-frame 224-px clips: width 112, 2 heads, stages (2, 3, 16, 3), 400 classes; ``kwargs`` override."""
    return hiera_base_16x224(**{**dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)), **kwargs})


def hiera_large_16x224(**kwargs: Any) -> Hiera:
    """Hiera-L for 16-frame 224-px clips: width 144, 2 heads, stages (2, 6, 36, 4), 400 classes; ``kwargs`` override."""
    return hiera_base_16x224(**{**dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)), **kwargs})


def hiera_huge_16x224(**kwargs: Any) -> Hiera:
    """Hiera-H for 16-frame 224-px clips: width 256, 4 heads, stages (2, 6, 36, 4), 400 classes; ``kwargs`` override."""
    return hiera_base_16x224(**{**dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)), **kwargs})


def mae_hiera_base_16x224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-B video encoder (16 x 224 x 224, ``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderHiera(**{**_VIDEO_16X224, **dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), **kwargs})


def mae_hiera_base_plus_16x224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-B+ video encoder (16 x 224 x 224, ``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return mae_hiera_base_16x224(**{**dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)), **kwargs})


def mae_hiera_large_16x224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-L video encoder (16 x 224 x 224, ``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return mae_hiera_base_16x224(**{**dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)), **kwargs})


def mae_hiera_huge_16x224(**kwargs: Any) -> MaskedAutoencoderHiera:
    """MAE with a Hiera-H video encoder (16 x 224 x 224, ``q_pool=2``), decoder 512-d, 8 blocks, 16 heads."""
    return mae_hiera_base_16x224(**{**dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)), **kwargs})
