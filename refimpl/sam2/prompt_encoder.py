"""SAM 2's prompt encoder: clicks, boxes and masks as tokens and a dense map (SAM 2 §4, "Prompt encoder and mask decoder").

The prompt encoder is SAM's, unchanged (SAM 2 §4). A prompt becomes:

- **sparse tokens**, one per point: the random Fourier encoding of the point's position plus a
  learned embedding of its kind. The kinds (labels) are 0 negative click, 1 positive click,
  2 top-left box corner, 3 bottom-right box corner, and -1 "not a point" (padding, which
  replaces the position encoding by its own embedding). SAM 2 always writes a box as its two
  corners *before* the clicks and always appends one padding point, for boxes too (the
  official predictors do; SAM's separate box path without the padding point is not used).
- **a dense map** ``(B, D, h, w)`` added to the image features: the downscaled mask prompt (a
  low-resolution mask logit map, e.g. the previous prediction), or a learned "no mask"
  embedding everywhere.

Shape letters: ``B`` batch (objects), ``N`` points (after the box corners and padding), ``D``
width (256), ``h, w`` the stride-16 grid (``S / 16``), ``S`` the image side. Point coordinates
are pixels ``(x, y)`` of the model's ``S x S`` input.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .layers import LayerNorm2d
from .position import RandomFourierEncoding

__all__ = ["PromptEmbeddings", "PromptEncoder", "points_with_box"]

POINT_LABELS = (-1, 0, 1, 2, 3)
"""Padding, negative click, positive click, box top-left, box bottom-right."""


class PromptEmbeddings(NamedTuple):
    """What [`PromptEncoder`][refimpl.sam2.prompt_encoder.PromptEncoder] returns."""

    sparse: Tensor
    """Point tokens, ``(B, N, D)``."""
    dense: Tensor
    """Mask prompt (or "no mask") map, ``(B, D, h, w)``."""


def points_with_box(
    points: Tensor | None, labels: Tensor | None, box: Tensor | None
) -> tuple[Tensor | None, Tensor | None]:
    """Write a box as two labelled corner points in front of the clicks, as SAM 2 is trained.

    Args:
        points: clicks ``(B, P, 2)`` or ``None``.
        labels: their labels ``(B, P)`` (int32), or ``None``.
        box: ``(B, 4)`` as ``x0, y0, x1, y1``, or ``None``.

    Returns:
        ``(points (B, 2 + P, 2), labels (B, 2 + P))`` with labels 2 and 3 for the corners; the
        inputs unchanged without a box.
    """
    if box is None:
        return points, labels
    corners = box.reshape(-1, 2, 2)  # (B, 2, 2)
    corner_labels = torch.tensor([[2, 3]], dtype=torch.int32, device=box.device).repeat(corners.shape[0], 1)
    if points is None:
        return corners, corner_labels
    return torch.cat([corners, points], dim=1), torch.cat([corner_labels, labels], dim=1)


class PromptEncoder(nn.Module):
    """Encode clicks, box corners and a mask prompt (SAM's prompt encoder, SAM 2 §4).

    Args:
        embed_dim: ``D``.
        image_embedding_size: ``(h, w)``, the stride-16 grid.
        input_image_size: ``(S, S)``, the model's input size in pixels.
        mask_in_chans: hidden channels of the mask downscaling (16).
    """

    def __init__(
        self, embed_dim: int, image_embedding_size: tuple[int, int], input_image_size: tuple[int, int], mask_in_chans: int = 16
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size, self.input_image_size = tuple(image_embedding_size), tuple(input_image_size)
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))  # labels 0, 1, 2, 3
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(  # (B, 1, 4h, 4w) -> (B, D, h, w)
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> Tensor:
        """The position encoding of the image grid, ``(1, D, h, w)``, added to the keys in the mask decoder."""
        return self.pe_layer.grid(*self.image_embedding_size).unsqueeze(0)

    def embed_points(self, points: Tensor, labels: Tensor) -> Tensor:
        """Point tokens: position encoding plus the embedding of the label, with one padding point appended.

        Args:
            points: ``(B, P, 2)`` pixel coordinates ``(x, y)``.
            labels: ``(B, P)`` in ``{-1, 0, 1, 2, 3}``.

        Returns:
            ``(B, P + 1, D)``.
        """
        points = points + 0.5  # the centre of the pixel
        points = torch.cat([points, torch.zeros((points.shape[0], 1, 2), device=points.device)], dim=1)  # (B, P+1, 2)
        labels = torch.cat([labels, -torch.ones((labels.shape[0], 1), device=labels.device)], dim=1)  # (B, P+1)
        tokens = self.pe_layer.points(points, self.input_image_size)  # (B, P+1, D)
        kinds = torch.cat([e.weight for e in self.point_embeddings])  # (4, D): one row per label 0..3
        padding = (labels == -1).unsqueeze(-1)  # (B, P+1, 1)
        tokens = torch.where(padding, torch.zeros_like(tokens) + self.not_a_point_embed.weight, tokens)
        return torch.where(padding, tokens, tokens + kinds[labels.clamp(min=0).long()])

    def forward(self, points: Tensor | None, labels: Tensor | None, masks: Tensor | None = None) -> PromptEmbeddings:
        """Encode a prompt.

        Args:
            points: ``(B, P, 2)``, clicks (and box corners first, see
                [`points_with_box`][refimpl.sam2.prompt_encoder.points_with_box]); ``P`` may be 0.
                ``None`` (a mask prompt alone) gives no sparse token at all, not even the padding.
            labels: ``(B, P)``, or ``None`` with ``points``.
            masks: optional mask logits ``(B, 1, 4h, 4w)``.

        Returns:
            [`PromptEmbeddings`][refimpl.sam2.prompt_encoder.PromptEmbeddings] with ``N = P + 1``
            (0 without points).
        """
        if points is not None and labels is not None:
            sparse = self.embed_points(points, labels)
        else:
            batch = masks.shape[0] if masks is not None else 1
            sparse = torch.empty((batch, 0, self.embed_dim), device=self.no_mask_embed.weight.device)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(sparse.shape[0], -1, *self.image_embedding_size)
        return PromptEmbeddings(sparse, dense)
