"""Segmenting an image from a prompt (SAM 2 §3, Fig. 8: the single-image case of the task); the official ``sam2/sam2_image_predictor.py``.

An image is a frame with an empty memory bank: [`preprocess`][refimpl.sam2.image_predictor.preprocess]
makes the model input, [`SAM2.encode_image`][refimpl.sam2.model.SAM2.encode_image] runs the image
encoder once, and [`predict`][refimpl.sam2.image_predictor.predict] answers each prompt (clicks,
a box, a mask) from those features. The official ``SAM2ImagePredictor`` holds the model and the
features of the image set last; here the features are an argument, and the three functions are
also methods of [`SAM2`][refimpl.sam2.model.SAM2] (``model.predict(features, ...)``).

Prompts are checked here, once, at the door (also for
[`track_step`][refimpl.sam2.tracking.track_step]); ``_predict``, the official name of the step
after the checks, trusts them, as does the
[automatic mask generator][refimpl.sam2.automatic_mask_generator.AutomaticMaskGenerator] that
calls it per batch of clicks.

Shape letters: ``B`` prompts, ``S`` the model's input side, ``P`` points, ``M`` masks (1 or 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .. import checks
from .image_encoder import ImageFeatures
from .prompt_encoder import points_with_box

if TYPE_CHECKING:
    from .model import SAM2

__all__ = ["Prediction", "predict", "preprocess", "to_model_coords"]


class Prediction(NamedTuple):
    """What [`predict`][refimpl.sam2.image_predictor.predict] returns for an image."""

    masks: Tensor
    """Mask logits at stride 4, ``(B, M, S/4, S/4)``; > 0 is inside."""
    iou: Tensor
    """Predicted IoU per mask, ``(B, M)``."""
    object_score_logits: Tensor
    """Occlusion head, ``(B, 1)``: > 0 means the object is present."""


def to_model_coords(coords: Tensor, orig_hw: tuple[int, int], image_size: int) -> Tensor:
    """Pixel coordinates ``(..., 2)`` (``x, y``) of an ``orig_hw = (H, W)`` image -> those of the model's ``S x S`` input.

    The official predictors divide by ``(W, H)`` and multiply by ``S``, in that order.

    Examples:
        >>> to_model_coords(torch.tensor([[50.0, 25.0]]), (100, 200), 1024).tolist()
        [[256.0, 256.0]]
    """
    scale = torch.tensor([orig_hw[1], orig_hw[0]], dtype=coords.dtype, device=coords.device)
    return coords / scale * image_size


def preprocess(model: SAM2, image: Tensor) -> Tensor:
    """An ``(H, W, 3)`` uint8 RGB image -> the normalised ``(1, 3, S, S)`` model input.

    As the official ``SAM2Transforms``: scale to ``[0, 1]``, resize to ``S x S`` (bilinear,
    antialiased, aspect ratio not kept), subtract the ImageNet mean and divide by its std.

    Raises:
        TypeError: if ``image`` is not a uint8 tensor.
        ValueError: if it is not ``(H, W, 3)``.
    """
    if not isinstance(image, Tensor) or image.dtype != torch.uint8:
        raise TypeError(f"image must be a uint8 torch.Tensor (H, W, 3), got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image has shape {tuple(image.shape)}; expected (H, W, 3) RGB")
    return _preprocess(image, model.image_size)


def _preprocess(image: Tensor, image_size: int) -> Tensor:
    """[`preprocess`][refimpl.sam2.image_predictor.preprocess] without its checks (``SAM2Transforms.__call__``)."""
    x = rearrange(image, "h w c -> c h w").contiguous().float().div(255)  # in [0, 1]
    x = F.interpolate(x[None], size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def predict(
    model: SAM2,
    features: ImageFeatures,
    points: Tensor | None = None,
    labels: Tensor | None = None,
    box: Tensor | None = None,
    mask_input: Tensor | None = None,
    multimask_output: bool = True,
) -> Prediction:
    """Segment an image from a prompt (SAM 2 §3, Fig. 8: the single-image case of the task).

    As the official ``SAM2ImagePredictor.predict``: the image embedding gets ``no_mem_embed``
    added (no memory), a box becomes two corner points in front of the clicks, and the
    occlusion head does not change the masks. Also ``model.predict(features, ...)``.

    Args:
        model: the [`SAM2`][refimpl.sam2.model.SAM2].
        features: [`encode_image`][refimpl.sam2.model.SAM2.encode_image] of one image (or of
            as many images as prompts).
        points: clicks ``(B, P, 2)`` in model-input pixels, ``0 <= x, y <= S`` (see
            [`to_model_coords`][refimpl.sam2.image_predictor.to_model_coords]); ``P = 0`` is no click.
        labels: ``(B, P)``: 1 positive, 0 negative.
        box: ``(B, 4)``, ``x0, y0, x1, y1`` in model-input pixels, with ``0 <= x0 < x1 <= S``
            and ``0 <= y0 < y1 <= S``: a box partly outside the image is refused, as a click
            outside is, rather than clipped.
        mask_input: mask logits ``(B, 1, S/4, S/4)``, e.g. a previous prediction.
        multimask_output: three candidate masks (good for one ambiguous click) or one.

    Returns:
        [`Prediction`][refimpl.sam2.image_predictor.Prediction].

    Raises:
        TypeError: if a prompt is not a tensor, or ``features`` are not ``ImageFeatures``.
        ValueError: for no prompt at all (zero clicks and no box or mask), wrong shapes or
            labels, NaN or infinity in a prompt or in ``features``, a click or box outside the
            image, an inverted or empty box, or batches that do not match.
    """
    _check_features(features)
    points, labels = _check_prompt(model.image_size, points, labels, box, mask_input, "mask_input")
    _check_image_prompt(features, points, mask_input, model.sam_prompt_encoder.mask_input_size)
    return _predict(model, features, points, labels, mask_input, multimask_output)


def _predict(
    model: SAM2, features: ImageFeatures, points: Tensor | None, labels: Tensor | None, mask_input: Tensor | None, multimask_output: bool
) -> Prediction:
    """[`predict`][refimpl.sam2.image_predictor.predict] after its checks, the box already in ``points`` (the official ``_predict``)."""
    image = features.vision_features + model.no_mem_embed.view(1, -1, 1, 1)  # (B_img, D, h, w): no memory
    prompts = model.sam_prompt_encoder(points, labels, mask_input)
    repeat = image.shape[0] == 1 and prompts.sparse.shape[0] > 1  # one image's maps broadcast over the prompts
    out = model.sam_mask_decoder(
        image, model.sam_prompt_encoder.dense_pe(), prompts.sparse, prompts.dense, features.backbone_fpn[:2], multimask_output, repeat
    )
    return Prediction(out.masks, out.iou, out.object_score_logits)


# --- the door: features and prompts, checked once ------------------------------------------------


def _check_features(features: object) -> None:
    """The frame's features must be those of ``encode_image``, finite (the levels the decoder reads)."""
    if not isinstance(features, ImageFeatures):
        raise TypeError(f"features must be the ImageFeatures that SAM2.encode_image returns, got {type(features).__name__}")
    checks.finite(features.vision_features, "features.vision_features")
    for i, level in enumerate(features.backbone_fpn[:2]):
        checks.finite(level, f"features.backbone_fpn[{i}]")


def _check_prompt(
    S: int, points: Tensor | None, labels: Tensor | None, box: Tensor | None, mask: Tensor | None, mask_name: str
) -> tuple[Tensor | None, Tensor | None]:
    """Check a prompt for an ``S x S`` model input, once, and merge the box into the points.

    Points and box corners are model-input pixels and must lie in the input: ``0 <= x, y <= S``
    (NaN and infinity fail that too, and are named first). A box must have ``x0 < x1`` and
    ``y0 < y1`` and lie wholly inside, like the points: a box partly outside is refused, not
    clipped (clipping would move its corners, which the model reads as the object's extent).
    An empty set of clicks (``P = 0``) is no prompt.

    Returns:
        ``(points, labels)`` with the box's corners first (labels int32), ``(None, None)``
        without clicks or box.
    """
    if (points is None) != (labels is None):
        raise ValueError("points and labels go together: pass both or neither")
    if points is not None:
        checks.tensor(points, "points", "(B, P, 2)", 3)
        checks.tensor(labels, "labels", "(B, P)", 2)
        if points.shape[-1] != 2 or tuple(labels.shape) != tuple(points.shape[:2]):
            raise ValueError(f"points {tuple(points.shape)} and labels {tuple(labels.shape)}; expected (B, P, 2) and (B, P)")
        if points.shape[0] == 0:
            raise ValueError(f"points has shape {tuple(points.shape)}, a batch of 0 prompts; expected B >= 1")
        checks.holds((points >= 0) & (points <= S), "a click is outside the model input, or NaN (run on the CPU for the values)",
                     _finite_first(points, "points", lambda: f"points {points.tolist()} reach outside the {S}x{S} model input; "
                                                             f"expected 0 <= x, y <= {S} (model-input pixels: see to_model_coords)"))
        bad = set(labels.unique().tolist()) - {0, 1}
        if bad:
            raise ValueError(f"labels contain {sorted(bad)}; expected 1 (positive click) or 0 (negative click)")
        if points.shape[1] == 0:  # no click is no prompt, as no points at all
            points = labels = None
    if box is not None:
        checks.tensor(box, "box", "(B, 4)", 2)
        if box.shape[1] != 4:
            raise ValueError(f"box has shape {tuple(box.shape)}; expected (B, 4) as x0, y0, x1, y1")
        if box.shape[0] == 0:
            raise ValueError(f"box has shape {tuple(box.shape)}, a batch of 0 boxes; expected B >= 1")
        if points is not None and box.shape[0] != points.shape[0]:
            raise ValueError(f"box has batch {box.shape[0]} but points have {points.shape[0]}")
        x0, y0, x1, y1 = box.unbind(-1)
        inverted = ~((x0 < x1) & (y0 < y1))
        outside = ~((x0 >= 0) & (y0 >= 0) & (x1 <= S) & (y1 <= S))
        checks.holds(~(inverted | outside), "a box is inverted, outside the model input, or NaN (run on the CPU for the values)",
                     _finite_first(box, "box", lambda: (
                         f"box {box.tolist()} is inverted or empty; expected x0 < x1 and y0 < y1 (x0, y0, x1, y1)" if bool(inverted.any())
                         else f"box {box.tolist()} reaches outside the {S}x{S} model input; expected 0 <= x0 < x1 <= {S} and "
                              f"0 <= y0 < y1 <= {S} (a box partly outside is not clipped)")))
    if mask is not None:
        checks.tensor(mask, mask_name, "(B, 1, H, W)", 4, finite_values=True)
        if mask.shape[1] != 1 or mask.shape[0] == 0 or 0 in mask.shape[-2:]:
            raise ValueError(f"{mask_name} has shape {tuple(mask.shape)}; expected one channel (B, 1, H, W) with B, H, W >= 1")
    if points is not None:
        labels = labels.to(torch.int32)
    return points_with_box(points, labels, box)


def _check_image_prompt(features: ImageFeatures, points: Tensor | None, mask_input: Tensor | None, side: tuple[int, int]) -> None:
    """What ``predict`` asks beyond a valid prompt: one at all, a mask at stride 4, one image or one per prompt."""
    if points is None and mask_input is None:  # zero clicks count as none
        raise ValueError("predict needs a prompt: points with labels (at least one click), a box, or a mask_input")
    if mask_input is not None and tuple(mask_input.shape[-2:]) != side:
        raise ValueError(f"mask_input has shape {tuple(mask_input.shape)}; expected (B, 1, {side[0]}, {side[1]})")
    images, batch = features.vision_features.shape[0], (points if points is not None else mask_input).shape[0]
    if images not in (1, batch):
        raise ValueError(f"features hold {images} images but the prompts {batch}; expected 1 image or one per prompt")


def _finite_first(x: Tensor, name: str, message: Callable[[], str]) -> Callable[[], str]:
    """The words for a range rule that NaN and infinity fail too: [`finite`][refimpl.checks.finite]'s for those, else ``message()``."""
    def detail() -> str:
        checks.finite(x, name)  # raises, naming x, if that is why
        return message()
    return detail
