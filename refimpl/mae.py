r"""Masked Autoencoders (MAE; He et al., CVPR 2022): an asymmetric ViT encoder-decoder.

The method in four steps (MAE Fig. 1 and §3):

1. Cut the image into non-overlapping patches and embed each as a token (a linear projection
   plus a fixed 2-D sin-cos position embedding).
2. Keep a random subset of the tokens, ``1 - mask_ratio`` of them (75 % removed by default):
   [`random_masking`][refimpl.masking.random_masking] shuffles by sorting per-sample noise and
   keeps the first part.
3. The **encoder**, a standard ViT, runs on the kept tokens only (plus a cls token). No mask
   token ever enters it, so it sees a quarter of the tokens; with the decoder, which sees them
   all, the paper measures 3.3x fewer training FLOPs and a 2.8x wall-clock speed-up for ViT-L
   (MAE Table 1c and Table 2): about a third of the cost, not a quarter.
4. A light **decoder** receives the encoded tokens, a shared learned mask token in every removed
   slot ([`unshuffle`][refimpl.masking.unshuffle] restores the original order), and its own
   position embedding; a linear layer predicts the pixels of every patch. The loss is the mean
   squared error on the removed patches only, optionally against per-patch normalised pixels
   (``norm_pix_loss``).

After pretraining the decoder is dropped; [`vit_from_mae`][refimpl.mae.vit_from_mae] turns the
encoder into a [`VisionTransformer`][refimpl.vit.VisionTransformer] for fine-tuning.

State-dict keys are those of the official code (``facebookresearch/mae``, ``models_mae.py``), so
its checkpoints load with ``strict=True``; see [`refimpl.checkpoints`][refimpl.checkpoints] for
loading files, including Hugging Face ``ViTMAEForPreTraining`` ones.

Shapes: ``B`` batch, ``C`` channels, ``H = W`` image side, ``p`` patch size, ``L = (H/p)^2``
patches, ``L_keep = int(L (1 - mask_ratio))``, ``D`` encoder width, ``D_dec`` decoder width.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from . import checks
from .masking import normalize_patches, patchify, random_masking, unshuffle
from .pos_embed import get_2d_sincos_pos_embed
from .vit import LN_EPS, Block, PatchEmbed, VisionTransformer, init_linear_and_norm_
from .vit import _encoder_fields, _freeze, _stack_fields  # the checks MAEConfig shares with ViTConfig

# The official configs' LayerNorm eps is 1e-6 (Hugging Face's ViTMAE defaults to 1e-12).
_LayerNorm = partial(nn.LayerNorm, eps=LN_EPS)


class EncoderOutput(NamedTuple):
    """What [`MaskedAutoencoderViT.forward_encoder`][refimpl.mae.MaskedAutoencoderViT.forward_encoder] returns."""

    latent: Tensor
    """Encoded cls + kept tokens, ``(B, 1 + L_keep, D)``."""
    mask: Tensor
    """``(B, L)``, 1 = removed (hidden from the encoder), 0 = kept."""
    ids_restore: Tensor
    """``(B, L)``: the permutation that undoes the shuffle."""


class MAEOutput(NamedTuple):
    """What [`MaskedAutoencoderViT.forward`][refimpl.mae.MaskedAutoencoderViT.forward] returns."""

    loss: Tensor
    """Scalar: mean squared error over the removed patches."""
    pred: Tensor
    """Predicted pixels of every patch, ``(B, L, p*p*C)`` in [`patchify`][refimpl.masking.patchify] order."""
    mask: Tensor
    """``(B, L)``, 1 = removed."""


@dataclass(frozen=True)
class MAEConfig:
    """The hyper-parameters of a [`MaskedAutoencoderViT`][refimpl.mae.MaskedAutoencoderViT] (MAE Table 1), checked once.

    Every rule is checked when the config is built (``__post_init__``), with one message each,
    and nowhere else: the model's layers trust it. A NumPy number is stored as a Python one.

    Attributes:
        img_size: input side ``H = W``; a multiple of ``patch_size``.
        patch_size: patch side ``p``.
        in_chans: channels ``C``.
        embed_dim: encoder width ``D``, a multiple of ``num_heads`` and of 4 (the sin-cos
            position embedding).
        depth: encoder blocks.
        num_heads: encoder attention heads.
        decoder_embed_dim: decoder width ``D_dec`` (512 by default; MAE Table 1b), a multiple of
            ``decoder_num_heads`` and of 4.
        decoder_depth: decoder blocks (8 by default; MAE Table 1a).
        decoder_num_heads: decoder attention heads (16 in the official configs).
        mlp_ratio: MLP hidden width / model width.
        norm_pix_loss: reconstruct per-patch normalised pixels (MAE §3, "Reconstruction target";
            measured in MAE Table 1d).
        fused_attn: use ``F.scaled_dot_product_attention`` (else the explicit softmax path).

    Raises:
        TypeError: if a size, depth or head count is not an ``int``, or ``mlp_ratio`` not a real number.
        ValueError: if one is not positive (``mlp_ratio`` finite and positive), ``img_size`` is not a
            multiple of ``patch_size``, or a width does not split into its heads or is not a multiple of 4.

    Examples:
        >>> MAEConfig(decoder_depth=0)
        Traceback (most recent call last):
        ...
        ValueError: decoder_depth=0 is not positive; expected an int >= 1 such as 12
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_pix_loss: bool = False
    fused_attn: bool = True

    def __post_init__(self) -> None:
        _freeze(self, **_encoder_fields(self, sincos=True), **_stack_fields(self, "decoder_", sincos=True))


class MaskedAutoencoderViT(nn.Module):
    """MAE with a ViT encoder and a lightweight Transformer decoder (MAE §3, Fig. 1).

    Args:
        config: the hyper-parameters, a [`MAEConfig`][refimpl.mae.MAEConfig]; default ``MAEConfig()``.
        **fields: fields of [`MAEConfig`][refimpl.mae.MAEConfig] as keywords (``img_size=224``,
            ``decoder_depth=8``, ...), which replace those of ``config``. The result is ``self.config``.

    Raises:
        TypeError: as [`MAEConfig`][refimpl.mae.MAEConfig], and for a keyword that is not one of its fields.
        ValueError: as [`MAEConfig`][refimpl.mae.MAEConfig].
    """

    def __init__(self, config: MAEConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = c = MAEConfig(**fields) if config is None else replace(config, **fields)
        # norm_pix_loss is an attribute too, so a benchmark can compare both targets on one model.
        self.patch_size, self.in_chans, self.norm_pix_loss = c.patch_size, c.in_chans, c.norm_pix_loss

        # Encoder (MAE §3, "MAE encoder"): a ViT on the kept tokens; its position embedding is fixed sin-cos.
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, c.in_chans, c.embed_dim, check=False)
        L = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + L, c.embed_dim), requires_grad=False)
        block = partial(Block, mlp_ratio=c.mlp_ratio, qkv_bias=True, fused_attn=c.fused_attn)
        self.blocks = nn.ModuleList([block(c.embed_dim, c.num_heads) for _ in range(c.depth)])
        self.norm = _LayerNorm(c.embed_dim)

        # Decoder (MAE §3, "MAE decoder"): only used during pretraining.
        self.decoder_embed = nn.Linear(c.embed_dim, c.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1 + L, c.decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([block(c.decoder_embed_dim, c.decoder_num_heads)
                                             for _ in range(c.decoder_depth)])
        self.decoder_norm = _LayerNorm(c.decoder_embed_dim)
        self.decoder_pred = nn.Linear(c.decoder_embed_dim, c.patch_size**2 * c.in_chans)  # pixels of one patch
        self.init_weights()

    @property
    def num_patches(self) -> int:
        return self.patch_embed.num_patches

    # The interface MAE-ViT and MAE-Hiera share (the trainer and its figures use only this).

    @property
    def noise_length(self) -> int:
        """Masking noise values per sample: one per patch, ``L``."""
        return self.patch_embed.num_patches

    @property
    def pred_patch_size(self) -> int:
        """Side of a predicted patch in pixels: ``p``."""
        return self.patch_size

    def pred_channels_last(self, pred: Tensor) -> Tensor:
        """``pred`` ``(B, L, p*p*C)`` in [`patchify`][refimpl.masking.patchify]'s layout: already is."""
        return pred

    def encoder_state(self, state: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """The encoder's entries of ``state`` (default: this model's): [`encoder_state`][refimpl.mae.encoder_state]."""
        return encoder_state(self.state_dict() if state is None else state)

    def init_weights(self) -> None:
        """Sin-cos position embeddings; Xavier-uniform linear layers; normal(0.02) cls and mask tokens."""
        grid = self.patch_embed.grid_size
        for table in (self.pos_embed, self.decoder_pos_embed):  # (1, 1 + L, width): the config checked the widths
            table.data.copy_(get_2d_sincos_pos_embed(table.shape[-1], grid, cls_token=True, check=False)[None])
        # The patch projection is a linear map in conv clothing: initialise it as one.
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        init_linear_and_norm_(self)

    def _checked(self, imgs: object, mask_ratio: object, noise: object, for_loss: bool = False
                 ) -> tuple[Tensor, float, Tensor | None]:
        """The door of ``forward`` and ``forward_encoder``: each input checked once, the layers behind it trust them.

        ``for_loss`` adds what the loss needs: at least one image, and at least one removed patch.
        """
        L = self.num_patches
        imgs = self._checked_images(imgs, nonempty=for_loss)
        ratio = checks.fraction(mask_ratio, "mask_ratio")
        if for_loss and L - int(L * (1 - ratio)) == 0:
            raise ValueError(f"mask_ratio={mask_ratio!r} removes no patch of {L}, so the loss (a mean over the removed "
                             f"patches) is undefined; expected a ratio that removes at least one, such as 0.75")
        if noise is not None:
            noise = checks.noise(noise, "noise", "(B, L)", (imgs.shape[0], L))
        return imgs, ratio, noise

    def _checked_images(self, imgs: object, nonempty: bool) -> Tensor:
        """Images for this model: ``(B, in_chans, img_size, img_size)``, finite, in the model's dtype."""
        size = self.patch_embed.img_size
        layout = f"(B, {self.in_chans}, {size}, {size})"
        imgs = checks.images(imgs, "imgs", layout, 4, self.patch_embed.proj.weight.dtype, nonempty=nonempty)
        if tuple(imgs.shape[1:]) != (self.in_chans, size, size):
            raise ValueError(f"imgs has shape {tuple(imgs.shape)}; expected {layout} "
                             f"for this model (in_chans={self.in_chans}, img_size={size})")
        return imgs

    def _checked_loss(self, imgs: object, pred: object, mask: object) -> tuple[Tensor, Tensor, Tensor]:
        """The door of ``forward_loss``: images as ``forward`` checks them, predictions and mask by shape."""
        imgs = self._checked_images(imgs, nonempty=True)
        B, L, P = imgs.shape[0], self.num_patches, self.pred_patch_size ** 2 * self.in_chans
        pred = checks.floating(pred, "pred", f"(B, {L}, {P})", 3, finite_values=True)
        mask = checks.floating(mask, "mask", f"(B, {L})", 2)
        if tuple(pred.shape) != (B, L, P) or tuple(mask.shape) != (B, L):
            raise ValueError(f"pred {tuple(pred.shape)} and mask {tuple(mask.shape)}; expected ({B}, {L}, {P}) and "
                             f"({B}, {L}) for these imgs and this model (as forward_decoder and random_masking give)")
        checks.holds(mask.sum() > 0, "mask removes no patch, so the loss (a mean over the removed patches) is "
                                     "undefined; expected at least one 1")
        return imgs, pred, mask

    def forward_encoder(self, imgs: Tensor, mask_ratio: float, noise: Tensor | None = None, *,
                        check: bool = True) -> EncoderOutput:
        """Embed, mask, and encode the kept patches (MAE Fig. 1, left).

        Args:
            imgs: ``(B, C, H, W)``.
            mask_ratio: fraction of patches removed, in ``[0, 1)``.
            noise: optional ``(B, L)``; its per-row argsort defines which patches are kept.
            check: ``False`` when the caller has checked the three (as
                [`forward`][refimpl.mae.MaskedAutoencoderViT.forward] does).

        Returns:
            ``EncoderOutput(latent (B, 1 + L_keep, D), mask (B, L), ids_restore (B, L))``.

        Raises:
            TypeError: for images that are not floating point in the model's dtype (outside
                autocast), or ``noise`` that is not a floating tensor.
            ValueError: for images of the wrong shape or not finite, ``mask_ratio`` outside
                ``[0, 1)`` or ``noise`` that is not ``(B, L)`` or not finite.
        """
        if check:
            imgs, mask_ratio, noise = self._checked(imgs, mask_ratio, noise)
        x = self.patch_embed._embed(imgs)  # (B, L, D)
        x = x + self.pos_embed[:, 1:, :]  # position first, so shuffled tokens still know their place
        kept, mask, ids_restore, _ = random_masking(x, mask_ratio, noise, check=False)  # kept: (B, L_keep, D)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(kept.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, kept], dim=1)  # (B, 1 + L_keep, D)
        for blk in self.blocks:
            x = blk(x)
        return EncoderOutput(self.norm(x), mask, ids_restore)

    def forward_decoder(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        """Fill the removed slots with the mask token, restore order, decode pixels (MAE Fig. 1, right).

        It takes what [`forward_encoder`][refimpl.mae.MaskedAutoencoderViT.forward_encoder] returns
        and trusts it: nothing is checked here.

        Args:
            latent: encoder output ``(B, 1 + L_keep, D)``.
            ids_restore: ``(B, L)`` from the encoder.

        Returns:
            Predicted pixels ``(B, L, p*p*C)``.
        """
        x = self.decoder_embed(latent)  # (B, 1 + L_keep, D_dec)
        patches = unshuffle(x[:, 1:, :], ids_restore, self.mask_token, check=False)  # (B, L, D_dec)
        x = torch.cat([x[:, :1, :], patches], dim=1)  # (B, 1 + L, D_dec)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))  # (B, 1 + L, p*p*C)
        # The cls slot predicts nothing. Copy rather than return a view: FSDP2 warns when a sharded
        # model returns one (an in-place op on it would skip the backward hook).
        return x[:, 1:, :].contiguous()

    def forward_loss(self, imgs: Tensor, pred: Tensor, mask: Tensor, *, check: bool = True) -> Tensor:
        r"""Mean squared error on the removed patches only (MAE §3, "Reconstruction target").

        $$\mathcal{L} = \frac{1}{|M|} \sum_{i \in M} \frac{1}{p^2 C} \lVert \hat{x}_i - x_i \rVert_2^2$$

        where $M$ is the set of removed patches. With ``norm_pix_loss`` each target patch
        $x_i$ is first standardised by its own mean and (unbiased) variance, plus $10^{-6}$.

        Args:
            imgs: ``(B, C, H, W)``.
            pred: ``(B, L, p*p*C)``.
            mask: ``(B, L)``, 1 = removed, at least one per batch.
            check: ``False`` when the caller has checked the three
                ([`forward`][refimpl.mae.MaskedAutoencoderViT.forward] does).

        Returns:
            The scalar loss.

        Raises:
            TypeError: as [`forward`][refimpl.mae.MaskedAutoencoderViT.forward] for ``imgs``; if
                ``pred`` or ``mask`` is not a floating tensor.
            ValueError: as ``forward`` for ``imgs``; if ``pred`` is not ``(B, L, p*p*C)`` or
                ``mask`` not ``(B, L)`` for this model and batch, or ``mask`` removes nothing
                (the mean over removed patches would be 0/0).
        """
        if check:
            imgs, pred, mask = self._checked_loss(imgs, pred, mask)
        target = patchify(imgs, self.patch_size, check=False)  # (B, L, p*p*C)
        if self.norm_pix_loss:
            target = normalize_patches(target).patches
        per_patch = ((pred - target) ** 2).mean(dim=-1)  # (B, L)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, imgs: Tensor, mask_ratio: float = 0.75, noise: Tensor | None = None) -> MAEOutput:
        """Mask, encode, decode and score one batch.

        Args:
            imgs: ``(B, C, H, W)``.
            mask_ratio: fraction of patches removed, in ``[0, 1)``; 0.75 in the paper.
            noise: optional ``(B, L)`` noise that fixes the mask (same noise, same mask).

        Returns:
            ``MAEOutput(loss, pred (B, L, p*p*C), mask (B, L))``.

        Raises:
            TypeError: as [`forward_encoder`][refimpl.mae.MaskedAutoencoderViT.forward_encoder].
            ValueError: as [`forward_encoder`][refimpl.mae.MaskedAutoencoderViT.forward_encoder] (NaN or
                infinite pixels included: they would make the loss NaN), and for an empty batch or
                a ``mask_ratio`` that removes no patch: the loss is a mean over the removed
                patches, so it would be 0/0.
        """
        imgs, mask_ratio, noise = self._checked(imgs, mask_ratio, noise, for_loss=True)
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise, check=False)
        pred = self.forward_decoder(latent, ids_restore)
        return MAEOutput(self.forward_loss(imgs, pred, mask, check=False), pred, mask)

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The encoder's weights under ``VisionTransformer`` / timm names (no decoder keys)."""
        return self.encoder_state()


def encoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The encoder's entries of an MAE state dict: everything but the decoder and the mask token.

    Args:
        state: a [`MaskedAutoencoderViT`][refimpl.mae.MaskedAutoencoderViT] state dict (official keys).

    Returns:
        The entries a ``VisionTransformer`` (timm names) takes, the same tensors.
    """
    return {k: v for k, v in state.items() if not k.startswith(("decoder_", "mask_token"))}


def vit_from_mae(
    mae: MaskedAutoencoderViT, num_classes: int = 1000, global_pool: str = "avg", **kwargs: Any
) -> VisionTransformer:
    """A ViT classifier initialised from a pretrained MAE encoder, ready for fine-tuning.

    As in MAE's fine-tuning recipe the position embedding is loaded from the fixed sin-cos values
    but becomes trainable, and the classification head is new. ``global_pool="avg"`` is the
    default of the official fine-tuning script; the paper itself uses the class token and says
    average pooling works about as well (MAE App. A.1). With ``"avg"`` the encoder's final
    ``norm`` is replaced by ``fc_norm`` after pooling, so ``norm`` is not used and ``fc_norm``
    starts fresh.

    Args:
        mae: a (pretrained) MAE.
        num_classes: classes of the new head.
        global_pool: ``"avg"`` or ``"token"``.
        **kwargs: passed to ``VisionTransformer`` (e.g. ``drop_path_rate``).

    Returns:
        The classifier.
    """
    c = mae.config
    vit = VisionTransformer(
        img_size=c.img_size,
        patch_size=c.patch_size,
        in_chans=c.in_chans,
        num_classes=num_classes,
        global_pool=global_pool,
        embed_dim=c.embed_dim,
        depth=c.depth,
        num_heads=c.num_heads,
        mlp_ratio=c.mlp_ratio,
        **kwargs,
    )
    state = {k: v for k, v in mae.encoder_state_dict().items() if k in vit.state_dict()}
    missing, unexpected = vit.load_state_dict(state, strict=False)
    new = {k for k in missing if not k.startswith(("head.", "fc_norm."))}
    if new or unexpected:  # a mismatch between the two classes, not user input
        raise RuntimeError(f"MAE encoder does not match VisionTransformer: missing {sorted(new)}, unexpected {unexpected}")
    return vit


def mae_vit_tiny_patch16(**kwargs: Any) -> MaskedAutoencoderViT:
    """A small MAE for CPU demos and tests: ViT-Ti/16 encoder (192-d, 12 blocks, 3 heads), 128-d 4-block decoder."""
    config = dict(patch_size=16, embed_dim=192, depth=12, num_heads=3,
                  decoder_embed_dim=128, decoder_depth=4, decoder_num_heads=4, mlp_ratio=4.0)
    return MaskedAutoencoderViT(**{**config, **kwargs})


def mae_vit_base_patch16(**kwargs: Any) -> MaskedAutoencoderViT:
    """ViT-B/16 encoder (768-d, 12 blocks, 12 heads); decoder 512-d, 8 blocks, 16 heads (MAE's default)."""
    config = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12,
                  decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0)
    return MaskedAutoencoderViT(**{**config, **kwargs})


def mae_vit_large_patch16(**kwargs: Any) -> MaskedAutoencoderViT:
    """ViT-L/16 encoder (1024-d, 24 blocks, 16 heads); decoder 512-d, 8 blocks, 16 heads."""
    config = dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16,
                  decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0)
    return MaskedAutoencoderViT(**{**config, **kwargs})


def mae_vit_huge_patch14(**kwargs: Any) -> MaskedAutoencoderViT:
    """ViT-H/14 encoder (1280-d, 32 blocks, 16 heads); decoder 512-d, 8 blocks, 16 heads."""
    config = dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16,
                  decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0)
    return MaskedAutoencoderViT(**{**config, **kwargs})
