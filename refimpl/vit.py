r"""Vision Transformer (ViT): a plain Transformer encoder on a sequence of image patches.

Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), ViT §3.1. The image is cut into
``p x p`` patches, each patch is flattened and mapped linearly to a ``D``-vector (a token), a
learnable class token is put in front, a position embedding is added, and a stack of
identical pre-norm Transformer blocks processes the sequence (Eq. 1–4 of the paper):

$$
\begin{aligned}
z_0 &= [\,x_\text{class};\; x_p^1 E;\; x_p^2 E;\; \dots;\; x_p^N E\,] + E_\text{pos},
  && E \in \mathbb{R}^{(p^2 C) \times D},\ E_\text{pos} \in \mathbb{R}^{(N+1) \times D} && (1)\\
z'_\ell &= \mathrm{MSA}(\mathrm{LN}(z_{\ell-1})) + z_{\ell-1}, && \ell = 1, \dots, \text{depth} && (2)\\
z_\ell &= \mathrm{MLP}(\mathrm{LN}(z'_\ell)) + z'_\ell, && \ell = 1, \dots, \text{depth} && (3)\\
y &= \mathrm{LN}(z^0_\text{depth}) && && (4)
\end{aligned}
$$

The paper writes ``N`` for the number of patches and ``L`` for the depth; here, as in
[`refimpl.masking`][refimpl.masking], ``L`` is the number of patch tokens and the depth is ``depth``.

Shape letters, used in every docstring of this module:

- ``B``: batch size; ``C``: image channels; ``H``, ``W``: image height and width in pixels.
- ``p``: patch side; ``h = H / p``, ``w = W / p``: the patch grid (rows, columns).
- ``L = h * w``: number of patch tokens; the class token makes the sequence ``1 + L`` long.
- ``D``: token width (``embed_dim``). Note that in [`refimpl.masking`][refimpl.masking] ``D`` is the
  length ``p * p * C`` of a raw flattened patch; here it is the width after the linear map.
- ``heads``: number of attention heads; ``d_h = D / heads``: width of one head.

State-dict names are those of timm's ``VisionTransformer`` (``blocks.N.attn.qkv`` …), which
the official MAE encoder also uses, so their checkpoints load with ``strict=True``. Dropout
(used in the paper's training recipes) is left out; stochastic depth, which MAE's
fine-tuning uses, is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from . import checks
from .pos_embed import get_2d_sincos_pos_embed

__all__ = [
    "ViTConfig",
    "PatchEmbed",
    "Attention",
    "Mlp",
    "DropPath",
    "Block",
    "VisionTransformer",
    "init_linear_and_norm_",
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_large_patch16_224",
    "vit_huge_patch14_224",
]

LN_EPS = 1e-6  # LayerNorm epsilon of the official ViT, MAE and timm configs (PyTorch's default is 1e-5)


def init_linear_and_norm_(model: nn.Module) -> None:
    """MAE/timm-style init: Xavier-uniform ``nn.Linear`` weights with zero biases, ``nn.LayerNorm`` as identity.

    Args:
        model: every ``nn.Linear`` and ``nn.LayerNorm`` inside it is re-initialised in place.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class PatchEmbed(nn.Module):
    """Cut an image into patches and map each linearly to a token (ViT Eq. 1, ``x_p^i E``).

    Flattening a ``p x p`` patch and multiplying by ``E`` is the same as a convolution with
    kernel size = stride = ``p``, which is how it is computed; token ``i`` is grid cell
    ``(i // w, i % w)``, the order of [`patchify`][refimpl.masking.patchify].

    Args:
        img_size: side ``H = W`` of the square input image, in pixels.
        patch_size: patch side ``p``; must divide ``img_size``.
        in_chans: number of image channels ``C``.
        embed_dim: token width ``D``.
        check: ``False`` when a validated config gives the sizes (the models do): then they are
            not checked again.

    Raises:
        TypeError: if a size is not an ``int``.
        ValueError: if a size is not positive, or ``img_size`` is not a multiple of ``patch_size``.
    """

    def __init__(
        self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768, *,
        check: bool = True,
    ) -> None:
        super().__init__()
        if check:
            img_size, patch_size, in_chans = _patch_sizes(img_size, patch_size, in_chans)
            embed_dim = checks.integer(embed_dim, "embed_dim")
        self.img_size = img_size
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.grid_size = (img_size // patch_size, img_size // patch_size)  # (h, w)
        self.num_patches = self.grid_size[0] * self.grid_size[1]  # L
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """Embed a batch of images.

        Args:
            x: images, shape ``(B, C, H, W)`` with ``C == in_chans`` and ``H == W == img_size``.

        Returns:
            Patch tokens, shape ``(B, L, D)``.

        Raises:
            TypeError: if ``x`` is not a floating tensor in the model's dtype.
            ValueError: if ``x`` is not 4-D, its channels or size differ from the model's, or it
                holds NaN or infinite values.
        """
        x = checks.images(x, "x", "(B, C, H, W)", 4, self.proj.weight.dtype)
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"x has {x.shape[1]} channels (shape {tuple(x.shape)}); expected in_chans={self.in_chans}"
            )
        if x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise ValueError(
                f"x has image size {tuple(x.shape[2:])}; expected "
                f"img_size={self.img_size}, i.e. ({self.img_size}, {self.img_size})"
            )
        return self._embed(x)

    def _embed(self, x: Tensor) -> Tensor:
        """[`forward`][refimpl.vit.PatchEmbed.forward] without its checks, for a model that checked ``x`` already."""
        x = self.proj(x)  # (B, D, h, w): one D-vector per grid cell
        return rearrange(x, "b d h w -> b (h w) d")  # raster order over the grid


class Attention(nn.Module):
    r"""Multi-head self-attention, MSA in ViT Eq. 2 (written out in ViT App. A).

    One linear map gives queries, keys and values for all heads at once (``qkv``), each
    head attends with $\mathrm{softmax}(Q K^\top / \sqrt{d_h})\, V$, and ``proj`` mixes the
    concatenated heads.

    Args:
        dim: token width ``D``; must be divisible by ``num_heads``.
        num_heads: number of heads; each has width ``d_h = D / num_heads``.
        qkv_bias: whether ``qkv`` has a bias (ViT and MAE: yes).
        fused_attn: use ``F.scaled_dot_product_attention`` (fast, same result up to float
            rounding); ``False`` computes the softmax formula above step by step.
        check: ``False`` when a validated config gives ``dim`` and ``num_heads`` (a model's
            blocks): then they are not checked again.

    Raises:
        ValueError: if ``dim`` is not divisible by ``num_heads``.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, qkv_bias: bool = True, fused_attn: bool = True, *, check: bool = True
    ) -> None:
        super().__init__()
        if check:
            _divides(dim, "dim", num_heads, "num_heads", "the token width to split evenly into heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5  # 1 / sqrt(d_h)
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over the whole sequence.

        Args:
            x: tokens, shape ``(B, N, D)`` (``N = 1 + L`` inside a ViT).

        Returns:
            Tokens, shape ``(B, N, D)``.
        """
        qkv = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        q, k, v = qkv.unbind(0)  # 3 x (B, heads, N, d_h)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d_h)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, N, N): query x key
            x = attn.softmax(dim=-1) @ v  # (B, heads, N, d_h): each row of weights sums to 1
        return self.proj(rearrange(x, "b h n d -> b n (h d)"))  # heads side by side


class Mlp(nn.Module):
    """The two-layer MLP of a Transformer block, MLP in ViT Eq. 3: Linear, GELU, Linear.

    Args:
        dim: token width ``D`` (input and output).
        hidden_dim: width of the hidden layer (``4 * D`` in every ViT size).
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()  # exact (erf) GELU, as the paper and timm
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP to every token independently.

        Args:
            x: tokens, shape ``(B, N, D)``.

        Returns:
            Tokens, shape ``(B, N, D)``.
        """
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): in training, skip a residual branch per sample.

    Each sample's branch output is zeroed with probability ``p`` and otherwise scaled by
    ``1 / (1 - p)``, so the expected output is unchanged; in eval mode it is the identity.

    Args:
        p: probability of dropping the branch, in ``[0, 1)``.
        check: ``False`` when a validated config gives ``p`` (a model's blocks, from its
            ``drop_path_rate``): then it is not checked again.

    Raises:
        ValueError: if ``p`` is outside ``[0, 1)`` (NaN included).
    """

    def __init__(self, p: float = 0.0, *, check: bool = True) -> None:
        super().__init__()
        self.p = checks.real(p, "p", 0.0, 1.0, high_open=True, example="0.1") if check else p

    def forward(self, x: Tensor) -> Tensor:
        """Drop whole samples of a residual branch.

        Args:
            x: branch output, shape ``(B, N, D)`` (any shape ``(B, ...)``: SAM 2's Hiera passes
                ``(B, h, w, D)``).

        Returns:
            The shape of ``x``: ``x`` itself, or ``x`` with some samples zeroed and the rest
                scaled.
        """
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], *[1] * (x.ndim - 1)).bernoulli_(1.0 - self.p)  # (B, 1, ...): 1 = keep
        return x * keep / (1.0 - self.p)


class Block(nn.Module):
    """One pre-norm Transformer encoder block (ViT Eq. 2–3).

    ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``: the LayerNorm comes before each
    sub-layer, and the residual path from input to output has no normalization on it.

    A block trusts its caller: the model's config checked every argument once, so a block checks
    none of them again (a width that does not split into heads fails in the first forward).

    Args:
        dim: token width ``D``.
        num_heads: number of attention heads.
        mlp_ratio: hidden width of the MLP as a multiple of ``D``.
        qkv_bias: whether the attention's ``qkv`` map has a bias.
        drop_path: stochastic-depth probability of both residual branches.
        fused_attn: passed to [`Attention`][refimpl.vit.Attention].
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, fused_attn=fused_attn, check=False)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path, check=False)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: tokens ``z_{l-1}``, shape ``(B, N, D)``.

        Returns:
            Tokens ``z_l``, shape ``(B, N, D)``.
        """
        x = x + self.drop_path(self.attn(self.norm1(x)))  # Eq. 2
        return x + self.drop_path(self.mlp(self.norm2(x)))  # Eq. 3


@dataclass(frozen=True)
class ViTConfig:
    """The hyper-parameters of a [`VisionTransformer`][refimpl.vit.VisionTransformer] (ViT Table 1), checked once.

    Every rule is checked when the config is built (``__post_init__``), with one message each,
    and nowhere else: the model's layers trust it. A NumPy number is stored as a Python one.

    Attributes:
        img_size: side of the square input image, in pixels.
        patch_size: patch side ``p``; must divide ``img_size``.
        in_chans: image channels ``C``.
        num_classes: classes of the linear head; ``0`` gives no head (features out).
        embed_dim: token width ``D``; a multiple of ``num_heads`` (and of 4 for ``"sincos"``).
        depth: number of blocks.
        num_heads: attention heads per block.
        mlp_ratio: MLP hidden width as a multiple of ``D``.
        qkv_bias: whether each ``qkv`` map has a bias.
        pos_embed: ``"learn"``: trainable, initialised as timm does (truncated normal,
            std 0.02) (ViT); ``"sincos"``: fixed 2-D sine-cosine from
            [`get_2d_sincos_pos_embed`][refimpl.pos_embed.get_2d_sincos_pos_embed], not
            trained (MAE). Either way it is stored as ``pos_embed``, shape ``(1, 1 + L, D)``.
        global_pool: ``"token"`` (class token) or ``"avg"`` (mean of the patch tokens).
        drop_path_rate: stochastic depth of the last block, in ``[0, 1)``; it rises linearly
            from 0 at the first block.
        fused_attn: passed to every [`Attention`][refimpl.vit.Attention].

    Raises:
        TypeError: if a size, depth or count is not an ``int``, or a ratio not a real number.
        ValueError: if one is out of range, ``pos_embed`` or ``global_pool`` is not one of the
            choices above, ``img_size`` is not a multiple of ``patch_size``, or ``embed_dim`` is
            not divisible by ``num_heads`` (by 4 as well for ``"sincos"``).

    Examples:
        >>> ViTConfig(img_size=32, embed_dim=30, num_heads=4)
        Traceback (most recent call last):
        ...
        ValueError: embed_dim=30 is not divisible by num_heads=4; expected the token width to split evenly into heads
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pos_embed: str = "learn"
    global_pool: str = "token"
    drop_path_rate: float = 0.0
    fused_attn: bool = True

    def __post_init__(self) -> None:
        sincos = checks.choice(self.pos_embed, "pos_embed", ("learn", "sincos")) == "sincos"
        checks.choice(self.global_pool, "global_pool", ("token", "avg"))
        rate = checks.real(self.drop_path_rate, "drop_path_rate", 0.0, 1.0, high_open=True, example="0.1")
        _freeze(self, **_encoder_fields(self, sincos), drop_path_rate=rate,
                num_classes=checks.integer(self.num_classes, "num_classes", 0, "1000"))


class VisionTransformer(nn.Module):
    """ViT for image classification (ViT §3.1, Eq. 1–4).

    Patch tokens plus a class token plus a position embedding (Eq. 1), ``depth`` blocks
    (Eq. 2–3), a final LayerNorm and a linear head. With ``global_pool="token"`` the head
    reads the class token (Eq. 4); with ``"avg"`` it reads the mean of the patch tokens, and
    the final LayerNorm moves after the pooling (``norm`` is then the identity and
    ``fc_norm`` the LayerNorm), as in timm and MAE's fine-tuning code.

    Args:
        config: the hyper-parameters, a [`ViTConfig`][refimpl.vit.ViTConfig]; default ``ViTConfig()``.
        **fields: fields of [`ViTConfig`][refimpl.vit.ViTConfig] as keywords (``img_size=224``,
            ``depth=12``, ...), which replace those of ``config``. The result is ``self.config``.

    Raises:
        TypeError: as [`ViTConfig`][refimpl.vit.ViTConfig], and for a keyword that is not one of its fields.
        ValueError: as [`ViTConfig`][refimpl.vit.ViTConfig].

    Examples:
        >>> import torch
        >>> model = VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2,
        ...                           num_heads=4, num_classes=10)
        >>> x = torch.randn(2, 3, 32, 32)
        >>> model.forward_features(x).shape  # class token + 2 x 2 patches
        torch.Size([2, 5, 64])
        >>> model(x).shape
        torch.Size([2, 10])
    """

    def __init__(self, config: ViTConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = c = ViTConfig(**fields) if config is None else replace(config, **fields)

        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, c.in_chans, c.embed_dim, check=False)
        num_tokens = 1 + self.patch_embed.num_patches  # 1 + L
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))  # x_class
        self.pos_embed = nn.Parameter(  # E_pos; MAE's fixed sin-cos is not trained
            torch.zeros(1, num_tokens, c.embed_dim), requires_grad=c.pos_embed == "learn"
        )
        rates = torch.linspace(0, c.drop_path_rate, c.depth, device="cpu").tolist()  # deeper drops more
        self.blocks = nn.Sequential(
            *[Block(c.embed_dim, c.num_heads, c.mlp_ratio, c.qkv_bias, rate, c.fused_attn) for rate in rates]
        )
        use_fc_norm = c.global_pool == "avg"
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(c.embed_dim, eps=LN_EPS)
        self.fc_norm = nn.LayerNorm(c.embed_dim, eps=LN_EPS) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(c.embed_dim, c.num_classes) if c.num_classes > 0 else nn.Identity()
        self.init_weights()

    # timm's VisionTransformer exposes these; code written against timm reads them.
    num_classes = property(lambda self: self.config.num_classes, doc="Classes of the head (0: no head).")
    embed_dim = property(lambda self: self.config.embed_dim, doc="Token width ``D``.")
    num_features = embed_dim
    global_pool = property(lambda self: self.config.global_pool, doc="``'token'`` or ``'avg'``.")

    @torch.no_grad()
    def init_weights(self) -> None:
        """Initialise the weights as the official MAE code does.

        Xavier-uniform linear maps (the patch map on its flattened ``(D, C * p * p)`` view),
        zero biases, LayerNorm weight 1 and bias 0, class token normal with std 0.02, and
        the position embedding as ``pos_embed`` says.
        """
        init_linear_and_norm_(self)
        w = self.patch_embed.proj.weight  # (D, C, p, p)
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # (D, C*p*p): init as the linear map E
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        if self.config.pos_embed == "learn":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            table = get_2d_sincos_pos_embed(self.config.embed_dim, self.patch_embed.grid_size, True, check=False)
            self.pos_embed.copy_(table.unsqueeze(0))  # (1, 1 + L, D); zeros for the class token

    def forward_features(self, x: Tensor) -> Tensor:
        """Run Eq. 1–3 and the final norm of Eq. 4 (the identity with ``global_pool="avg"``).

        Args:
            x: images, shape ``(B, C, H, W)`` with ``H == W == img_size``.

        Returns:
            Tokens, shape ``(B, 1 + L, D)``; index 0 is the class token.

        Raises:
            TypeError: if ``x`` is not a floating tensor in the model's dtype.
            ValueError: if ``x`` is not 4-D, its channels or size differ from the model's, or it
                holds NaN or infinite values.
        """
        x = self.patch_embed(x)  # (B, L, D); the one check of x
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1 + L, D): z_0, Eq. 1
        x = self.blocks(x)  # (B, 1 + L, D)
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool the tokens and classify.

        Args:
            x: output of [`forward_features`][refimpl.vit.VisionTransformer.forward_features],
                shape ``(B, 1 + L, D)``.
            pre_logits: if ``True``, return the pooled, normalised features ``(B, D)``.

        Returns:
            Logits, shape ``(B, num_classes)`` (``(B, D)`` when ``num_classes=0`` or
                ``pre_logits``).
        """
        x = x[:, 1:].mean(dim=1) if self.config.global_pool == "avg" else x[:, 0]  # (B, D)
        x = self.fc_norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        """Classify a batch of images.

        Args:
            x: images, shape ``(B, C, H, W)`` with ``H == W == img_size``.

        Returns:
            Logits, shape ``(B, num_classes)`` (``(B, D)`` when ``num_classes=0``).

        Raises:
            TypeError: if ``x`` is not a floating tensor in the model's dtype.
            ValueError: if ``x`` is not 4-D, its channels or size differ from the model's, or it
                holds NaN or infinite values.
        """
        return self.forward_head(self.forward_features(x))


def _vit(defaults: dict[str, Any], overrides: dict[str, Any]) -> VisionTransformer:
    """Build a [`VisionTransformer`][refimpl.vit.VisionTransformer] from a named config; ``overrides`` win."""
    return VisionTransformer(**{**defaults, **overrides})


def vit_tiny_patch16_224(**kwargs: Any) -> VisionTransformer:
    """ViT-Ti/16 (DeiT's tiny size): ``D=192``, 12 blocks, 3 heads; ``kwargs`` override."""
    return _vit(dict(patch_size=16, embed_dim=192, depth=12, num_heads=3), kwargs)


def vit_small_patch16_224(**kwargs: Any) -> VisionTransformer:
    """ViT-S/16 (DeiT's small size): ``D=384``, 12 blocks, 6 heads; ``kwargs`` override."""
    return _vit(dict(patch_size=16, embed_dim=384, depth=12, num_heads=6), kwargs)


def vit_base_patch16_224(**kwargs: Any) -> VisionTransformer:
    """ViT-B/16 (ViT Table 1): ``D=768``, 12 blocks, 12 heads; ``kwargs`` override."""
    return _vit(dict(patch_size=16, embed_dim=768, depth=12, num_heads=12), kwargs)


def vit_large_patch16_224(**kwargs: Any) -> VisionTransformer:
    """ViT-L/16 (ViT Table 1): ``D=1024``, 24 blocks, 16 heads; ``kwargs`` override."""
    return _vit(dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16), kwargs)


def vit_huge_patch14_224(**kwargs: Any) -> VisionTransformer:
    """ViT-H/14 (ViT Table 1): ``D=1280``, 32 blocks, 16 heads; ``kwargs`` override."""
    return _vit(dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16), kwargs)


# --- the configs' checks, shared by ViTConfig and MAEConfig ----------------------------------------


def _encoder_fields(config: Any, sincos: bool) -> dict[str, Any]:
    """The fields a ViT and an MAE's encoder share, checked: ``img_size`` … ``mlp_ratio``, normalised."""
    fields = dict(zip(("img_size", "patch_size", "in_chans"), _patch_sizes(config.img_size, config.patch_size,
                                                                            config.in_chans)))
    fields.update(_stack_fields(config, "", sincos))
    fields["mlp_ratio"] = checks.real(config.mlp_ratio, "mlp_ratio", 0.0, math.inf, low_open=True, high_open=True,
                                      example="4.0")
    return fields


def _patch_sizes(img_size: object, patch_size: object, in_chans: object) -> tuple[int, int, int]:
    """``img_size``, ``patch_size`` and ``in_chans`` checked: positive ints, ``patch_size`` dividing ``img_size``."""
    img_size = checks.integer(img_size, "img_size", example="224")
    patch_size = checks.integer(patch_size, "patch_size")
    _divides(img_size, "img_size", patch_size, "patch_size", "img_size to be a multiple of patch_size")
    return img_size, patch_size, checks.integer(in_chans, "in_chans", example="3")


def _stack_fields(config: Any, prefix: str, sincos: bool) -> dict[str, Any]:
    """``{prefix}embed_dim``, ``{prefix}depth`` and ``{prefix}num_heads`` of ``config``, checked.

    A stack of blocks: positive ints, the width split evenly into heads, and a multiple of 4 under
    a 2-D sin-cos position embedding (``sincos``), which gives a quarter of the width to each of
    sin and cos of the row and the column.
    """
    dim, depth, heads = (prefix + name for name in ("embed_dim", "depth", "num_heads"))
    fields = {dim: checks.integer(getattr(config, dim), dim, example="64", multiple=4 if sincos else 1),
              depth: checks.integer(getattr(config, depth), depth, example="12"),
              heads: checks.integer(getattr(config, heads), heads, example="12")}
    _divides(fields[dim], dim, fields[heads], heads, "the token width to split evenly into heads")
    return fields


def _divides(value: int, name: str, divisor: int, divisor_name: str, expected: str) -> None:
    if value % divisor != 0:
        raise ValueError(f"{name}={value} is not divisible by {divisor_name}={divisor}; expected {expected}")


def _freeze(config: Any, **fields: Any) -> None:
    """Store the checked, normalised ``fields`` on a frozen dataclass (from its ``__post_init__``)."""
    for name, value in fields.items():
        object.__setattr__(config, name, value)
