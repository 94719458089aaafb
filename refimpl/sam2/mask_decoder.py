"""SAM 2's mask decoder: a two-way transformer, several masks, their IoU, and an occlusion score (SAM 2 §4, Fig. 9).

SAM's decoder (Kirillov et al. 2023) with two additions from SAM 2
(SAM 2 §4 "Prompt encoder and mask decoder", App. C.1, Fig. 9):

- **High-resolution features.** The stride-4 and stride-8 maps of the image encoder skip the
  memory attention and are added inside the upsampling that turns the stride-16 output into
  stride-4 mask logits.
- **An occlusion (object-score) head.** An extra output token goes through the transformer
  with the others, and an MLP on it predicts whether the object is present in the frame at all
  (a logit; > 0 means present). In video, the official code replaces the mask of a frame judged
  empty by a large negative constant before it is stored.

The output tokens, in order: the object-score token, the IoU token, 4 mask tokens (token 0 for a
single-mask answer, tokens 1-3 for three candidate masks when the prompt is ambiguous, e.g. a
single click). They are concatenated with the prompt tokens and attend to the image
([`TwoWayTransformer`][refimpl.sam2.mask_decoder.TwoWayTransformer]); each mask token then
becomes, through its own MLP, a set of weights whose dot product with the upsampled image
features gives that mask's logits. The mask token also serves as the frame's **object
pointer** (through a projection in [`SAM2`][refimpl.sam2.model.SAM2]).

Shape letters: ``B`` batch (objects), ``T`` tokens (6 output tokens + prompt tokens), ``D``
width (256), ``h, w`` the stride-16 grid, ``M`` masks returned (1 or 3).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from .layers import MLP, Attention, LayerNorm2d

__all__ = ["TwoWayAttentionBlock", "TwoWayTransformer", "DecoderOutput", "MaskDecoder"]


class TwoWayAttentionBlock(nn.Module):
    """One block of SAM's two-way transformer: tokens attend to themselves and to the image, and the image to the tokens.

    Post-norm, four steps: (1) self-attention of the tokens, (2) tokens to image
    cross-attention, (3) an MLP on the tokens, (4) image to tokens cross-attention. Position
    encodings are added to the queries and keys of every attention, not to the values; the first
    block's self-attention takes the bare tokens and has no residual (official code).

    Args:
        embedding_dim: ``D``.
        num_heads: heads of every attention.
        mlp_dim: hidden width of the MLP.
        attention_downsample_rate: the cross-attentions work at ``D / rate``.
        skip_first_layer_pe: the first block's special self-attention.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens ``(B, T, D)`` and image ``(B, h * w, D)`` with their encodings -> both updated."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """SAM's two-way transformer: ``depth`` two-way blocks, then a last token-to-image attention.

    Args:
        depth: blocks (2).
        embedding_dim: ``D``.
        num_heads: heads (8).
        mlp_dim: MLP hidden width (2048).
        attention_downsample_rate: cross-attention narrowing (2).
    """

    def __init__(
        self, depth: int = 2, embedding_dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048, attention_downsample_rate: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate, skip_first_layer_pe=i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image: Tensor, image_pe: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Attend.

        Args:
            image: ``(B, D, h, w)``.
            image_pe: ``(B, D, h, w)``.
            tokens: ``(B, T, D)``, also their own position encoding.

        Returns:
            ``(tokens (B, T, D), image (B, h * w, D))``.
        """
        keys = rearrange(image, "b c h w -> b (h w) c")
        key_pe = rearrange(image_pe, "b c h w -> b (h w) c")
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        q, k = queries + tokens, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class DecoderOutput(NamedTuple):
    """What [`MaskDecoder`][refimpl.sam2.mask_decoder.MaskDecoder] returns."""

    masks: Tensor
    """Mask logits at stride 4, ``(B, M, 4h, 4w)``."""
    iou: Tensor
    """Predicted IoU of each mask, ``(B, M)`` (after a sigmoid in SAM 2)."""
    tokens: Tensor
    """Mask tokens for the object pointer, ``(B, M', D)``: the three multi-mask tokens when
    three masks are returned, else the single-mask token."""
    object_score_logits: Tensor
    """Occlusion head, ``(B, 1)``: > 0 means the object is present."""


class MaskDecoder(nn.Module):
    """SAM 2's mask decoder (SAM 2 Fig. 9).

    Args:
        transformer_dim: ``D``.
        transformer: the [`TwoWayTransformer`][refimpl.sam2.mask_decoder.TwoWayTransformer].
        num_multimask_outputs: candidate masks for ambiguous prompts (3).
        iou_head_depth: layers of the IoU MLP (3).
        iou_head_hidden_dim: its hidden width (256).
        dynamic_multimask_via_stability: when one mask is asked for and the single-mask
            token's mask is unstable (its area changes by more than ``1 - thresh`` when the
            logit threshold moves by ``delta``), answer with the best of the three candidates
            instead. On in the official predictors (their "post-processing"), not in training.
        dynamic_multimask_stability_delta: ``delta`` (0.05).
        dynamic_multimask_stability_thresh: ``thresh`` (0.98).
    """

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        dynamic_multimask_via_stability: bool = True,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
    ) -> None:
        super().__init__()
        d = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, d)
        self.obj_score_token = nn.Embedding(1, d)
        self.output_upscaling = nn.Sequential(  # stride 16 -> 4, with the high-resolution maps added inside
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.conv_s0 = nn.Conv2d(d, d // 8, kernel_size=1)  # stride-4 map, D -> D/8
        self.conv_s1 = nn.Conv2d(d, d // 4, kernel_size=1)  # stride-8 map, D -> D/4
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(d, d, d // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(d, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth, sigmoid_output=True)
        self.pred_obj_score_head = MLP(d, d, 1, 3)
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.stability_delta = dynamic_multimask_stability_delta
        self.stability_thresh = dynamic_multimask_stability_thresh

    def predict_masks(
        self, image: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor, high_res: list[Tensor], repeat_image: bool = False
    ) -> DecoderOutput:
        """All four masks and IoUs, before choosing between one and three.

        Args:
            image: the frame embedding ``(B_img, D, h, w)``.
            image_pe: ``(1, D, h, w)``.
            sparse: prompt tokens ``(B, P, D)``.
            dense: mask prompt map ``(B, D, h, w)``.
            high_res: ``[(B_img, D/8, 4h, 4w), (B_img, D/4, 2h, 2w)]``, already through
                ``conv_s0`` and ``conv_s1``.
            repeat_image: one image for several prompts (``B_img = 1``): repeat it.

        Returns:
            [`DecoderOutput`][refimpl.sam2.mask_decoder.DecoderOutput] with all
            ``num_mask_tokens`` masks, IoUs and mask tokens.
        """
        B = sparse.shape[0]
        output_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(B, -1, -1), sparse), dim=1)  # (B, 6 + P, D)
        src = torch.repeat_interleave(image, B, dim=0) if repeat_image else image
        src = src + dense
        pos = torch.repeat_interleave(image_pe, B, dim=0)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)  # (B, T, D), (B, h * w, D)
        mask_tokens = hs[:, 2 : 2 + self.num_mask_tokens, :]  # (B, 4, D)

        # (B, h*w, D) -> (B, D, h, w) as the official view: einops gives the same layout but another batch stride, and with
        # B = 1 that picks a convolution kernel that rounds differently
        src = src.transpose(1, 2).view(b, c, h, w)
        up1, norm1, act1, up2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res
        x = act1(norm1(up1(src) + feat_s1))  # (B, D/4, 2h, 2w)
        x = act2(up2(x) + feat_s0)  # (B, D/8, 4h, 4w)
        weights = torch.stack([mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)  # (B, 4, D/8)
        b, c, h, w = x.shape
        masks = (weights @ x.view(b, c, h * w)).view(b, -1, h, w)  # (B, 4, 4h, 4w)
        iou = self.iou_prediction_head(hs[:, 1, :])  # (B, 4)
        return DecoderOutput(masks, iou, mask_tokens, self.pred_obj_score_head(hs[:, 0, :]))

    def stability(self, logits: Tensor) -> Tensor:
        """Stability of masks ``(B, M, H, W)``: area above ``+delta`` over area above ``-delta``, ``(B, M)`` (1 if empty)."""
        logits = logits.flatten(-2)
        inner = torch.sum(logits > self.stability_delta, dim=-1).float()
        outer = torch.sum(logits > -self.stability_delta, dim=-1).float()
        return torch.where(outer > 0, inner / outer, 1.0)

    def forward(
        self,
        image: Tensor,
        image_pe: Tensor,
        sparse: Tensor,
        dense: Tensor,
        high_res: list[Tensor],
        multimask_output: bool,
        repeat_image: bool = False,
    ) -> DecoderOutput:
        """Predict masks and choose one or three.

        Args:
            image: ``(B_img, D, h, w)``.
            image_pe: ``(1, D, h, w)``.
            sparse: ``(B, P, D)``.
            dense: ``(B, D, h, w)``.
            high_res: the stride-4 and stride-8 maps after ``conv_s0``/``conv_s1``.
            multimask_output: three candidate masks (``M = 3``) or one (``M = 1``).
            repeat_image: see [`predict_masks`][refimpl.sam2.mask_decoder.MaskDecoder.predict_masks].

        Returns:
            [`DecoderOutput`][refimpl.sam2.mask_decoder.DecoderOutput].
        """
        out = self.predict_masks(image, image_pe, sparse, dense, high_res, repeat_image)
        masks, iou, tokens = out.masks, out.iou, out.tokens
        if multimask_output:
            return DecoderOutput(masks[:, 1:], iou[:, 1:], tokens[:, 1:], out.object_score_logits)
        single, single_iou = masks[:, 0:1], iou[:, 0:1]
        if self.dynamic_multimask_via_stability and not self.training:
            best = torch.argmax(iou[:, 1:], dim=-1)  # (B,)
            rows = torch.arange(iou.shape[0], device=iou.device)
            best_mask, best_iou = masks[:, 1:][rows, best].unsqueeze(1), iou[:, 1:][rows, best].unsqueeze(1)
            stable = self.stability(single) >= self.stability_thresh  # (B, 1)
            single = torch.where(stable[..., None, None].expand_as(single), single, best_mask)
            single_iou = torch.where(stable.expand_as(single_iou), single_iou, best_iou)
        # The pointer token stays the single-mask token even when a candidate mask was chosen (official).
        return DecoderOutput(single, single_iou, tokens[:, 0:1], out.object_score_logits)
