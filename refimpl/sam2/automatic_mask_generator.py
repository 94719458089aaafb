r"""Automatic mask generation: prompt SAM 2 with a grid of clicks and keep every distinct, confident mask (SAM 2 §5.1).

Without a prompt from a person, SAM 2 can still find the objects of an image: click everywhere
and keep what comes back well. The SAM 2 data engine does this on the first frame of a video to
propose masklets, "a regular grid of points" (SAM 2 §5.1, App. D.1); on a single image it is the
"everything" mode that the two SAM 2 evaluation papers on the reading list call automatic mode.
The recipe is that of SAM's automatic mask generator, which the official SAM 2 code carries over:

1. **Crops.** The whole image, and for each of ``crop_n_layers`` further layers ``i = 1, 2, ...``
   a ``2^i x 2^i`` grid of overlapping crops ([`crop_boxes`][refimpl.sam2.automatic_mask_generator.crop_boxes]);
   each crop is encoded once, as an image of its own, so small objects get more pixels.
2. **Clicks.** A regular grid of ``points_per_side^2`` points over each crop
   ([`point_grid`][refimpl.sam2.automatic_mask_generator.point_grid]; ``crop_n_points_downscale_factor^i``
   times fewer per side in layer ``i``), ``points_per_batch`` at a time, one positive click
   per prompt: three candidate masks per click (the click is ambiguous: part, object, whole).
3. **Refinement** (``use_m2m``): each candidate is fed back as the mask prompt together with its
   click, and the decoder's single answer replaces it.
4. **Filters.** Keep a mask if the model's own predicted IoU is above ``pred_iou_thresh`` and
   if it is *stable* ([`stability_score`][refimpl.sam2.automatic_mask_generator.stability_score]):
   thresholding its logits at ``mask_threshold`` ``±`` ``stability_score_offset`` gives nearly
   the same mask. Then drop masks whose box touches a crop border that is not the image border:
   they are cut objects, which another crop sees whole.
5. **Duplicates.** Many clicks land on the same object: box non-maximum suppression (NMS)
   within a crop keeps the one with the highest predicted IoU, then NMS across crops prefers
   the mask from the smaller crop (it saw the object at a higher resolution).

Small regions (``min_mask_region_area``): as in the official generator, holes and islands of
at most that many pixels are removed from each mask's low-resolution logits before they are
upsampled ([`fill_small_regions`][refimpl.sam2.automatic_mask_generator.fill_small_regions]).
The official code finds the regions with a CUDA extension of its package and, where that
extension is missing (every CPU-only install), skips the step with a warning; here the regions
come from ``scipy.ndimage.label`` (8-connected, the extension's connectivity) on any device.

Masks travel between the steps as uncompressed COCO run-length encodings
([`encode_rle`][refimpl.sam2.automatic_mask_generator.encode_rle]), as in the official code, so
that hundreds of candidates of a large image fit in memory.

Shape letters: ``N`` clicks in a batch, ``M`` masks per click (3 or 1), ``K`` masks kept,
``H, W`` the image, ``h, w`` a crop, ``S`` the model's input side, ``s = S / 4`` the side of
the decoder's low-resolution logits.

```python
from refimpl.sam2 import AutomaticMaskGenerator, sam2_hiera_tiny
generator = AutomaticMaskGenerator(sam2_hiera_tiny().eval(), points_per_side=32)
records = generator.generate(image)  # (H, W, 3) uint8; one dict per object
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import batched_nms

from .. import checks, coco
from .image_predictor import _predict, _preprocess, to_model_coords
from .model import SAM2

__all__ = [
    "AutomaticMaskGenerator",
    "Crop",
    "OUTPUT_MODES",
    "crop_boxes",
    "decode_rle",
    "encode_rle",
    "fill_small_regions",
    "mask_boxes",
    "point_grid",
    "stability_score",
]

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
"""What a record's ``segmentation`` holds: a ``(H, W)`` bool tensor, an uncompressed COCO RLE, or a compressed one."""

EDGE_TOLERANCE = 20.0
"""A box within this many pixels of a crop border (that is not the image border) is taken as cut by the crop."""


# --- where to click ------------------------------------------------------------------------------


class Crop(NamedTuple):
    """One crop of the image: its box ``x0, y0, x1, y1`` in image pixels (``x1, y1`` excluded) and its layer."""

    box: tuple[int, int, int, int]
    layer: int


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> list[Crop]:
    """The whole image, then ``2^i x 2^i`` overlapping crops for each layer ``i = 1 .. n_layers``.

    In layer ``i`` neighbouring crops overlap by ``overlap_ratio * min(H, W) * 2 / 2^i`` pixels
    (rounded down), and each crop is as long as it must be for ``2^i`` of them to cover the side
    with that overlap. Crops are listed column by column (``x0`` outer, ``y0`` inner), the
    order in which the official code processes them, which decides the order of the output.

    Args:
        height: ``H``.
        width: ``W``.
        n_layers: layers of crops after the whole image (0: the whole image only).
        overlap_ratio: overlap of the first layer's crops, as a fraction of the image's short side.

    Returns:
        ``1 + 4 + 16 + ...`` [`Crop`][refimpl.sam2.automatic_mask_generator.Crop]s.

    Examples:
        >>> [c.box for c in crop_boxes(100, 200, 1, 0.25)]
        [(0, 0, 200, 100), (0, 0, 113, 63), (0, 38, 113, 100), (88, 0, 200, 63), (88, 38, 200, 100)]
    """
    crops = [Crop((0, 0, width, height), 0)]
    short = min(height, width)
    for layer in range(1, n_layers + 1):
        n = 2**layer  # crops per side
        overlap = int(overlap_ratio * short * (2 / n))
        crop_w = int(math.ceil((overlap * (n - 1) + width) / n))
        crop_h = int(math.ceil((overlap * (n - 1) + height) / n))
        xs = [int((crop_w - overlap) * i) for i in range(n)]
        ys = [int((crop_h - overlap) * i) for i in range(n)]
        for x0, y0 in product(xs, ys):
            crops.append(Crop((x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)), layer))
    return crops


def point_grid(n_per_side: int) -> Tensor:
    """``n_per_side^2`` points ``(x, y)`` in ``[0, 1]^2``, at the centres of an ``n x n`` grid of cells, row by row.

    Float64 from ``numpy.linspace``, as the official grid (``torch.linspace`` rounds some of them
    differently in the last bit, which can move a click by a float32 step).

    Examples:
        >>> point_grid(2).tolist()
        [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    """
    half_cell = 1 / (2 * n_per_side)
    side = torch.from_numpy(np.linspace(half_cell, 1 - half_cell, n_per_side))  # (n,)
    ys, xs = torch.meshgrid(side, side, indexing="ij")  # (n, n) each: x varies along a row
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)  # (n, n, 2) -> (n*n, 2)


# --- what to keep --------------------------------------------------------------------------------


def stability_score(logits: Tensor, threshold: float, offset: float) -> Tensor:
    r"""How little a mask changes when its threshold moves: IoU of the masks at ``threshold ± offset``.

    The mask at the higher threshold lies inside the one at the lower threshold, so their IoU is
    a ratio of pixel counts:
    $\frac{|\{\ell > t + \delta\}|}{|\{\ell > t - \delta\}|}$. A mask whose logits rise
    steeply at its border scores near 1; a blurry one scores low. ``0 / 0`` (no pixel above
    ``t - δ``) is NaN, which no threshold keeps.

    Args:
        logits: mask logits ``(K, h, w)``.
        threshold: ``t``, where a mask is cut.
        offset: ``δ``.

    Returns:
        ``(K,)`` float32.

    Examples:
        >>> stability_score(torch.tensor([[[-3.0, 0.5, 2.0, 4.0]]]), 0.0, 1.0)
        tensor([0.6667])
    """
    inner = (logits > threshold + offset).flatten(1).sum(1)  # (K,)
    outer = (logits > threshold - offset).flatten(1).sum(1)
    return inner / outer


def mask_boxes(masks: Tensor) -> Tensor:
    """The box around each mask, ``x0, y0, x1, y1`` of its first and last pixels (both included); zeros for an empty mask.

    Args:
        masks: ``(K, h, w)`` bool.

    Returns:
        ``(K, 4)`` int64.

    Examples:
        >>> m = torch.zeros(2, 4, 5, dtype=torch.bool)
        >>> m[0, 1:3, 2:5] = True
        >>> mask_boxes(m).tolist()
        [[2, 1, 4, 2], [0, 0, 0, 0]]
    """
    K, h, w = masks.shape
    rows, cols = masks.any(dim=2).to(torch.uint8), masks.any(dim=1).to(torch.uint8)  # (K, h), (K, w)
    y0, x0 = rows.argmax(dim=1), cols.argmax(dim=1)  # argmax gives the first maximum
    y1, x1 = h - 1 - rows.flip(1).argmax(dim=1), w - 1 - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)  # (K, 4)
    return boxes.masked_fill(rows.amax(dim=1, keepdim=True) == 0, 0) if K else boxes


def fill_small_regions(logits: Tensor, max_area: int, threshold: float = 0.0) -> Tensor:
    """Fill holes and remove islands of at most ``max_area`` pixels from mask logits, as the official predictor does.

    Regions are 8-connected. A *hole* is a connected part of the background (``<= threshold``)
    of at most ``max_area`` pixels (one touching the border counts too); its logits become
    ``threshold + 10``. An *island* is such a part of the foreground (``> threshold``) *of the
    input*; its logits become ``threshold - 10``. Kept for parity: islands are found before the
    holes are filled, so a filled hole inside a removed island stays filled.

    Args:
        logits: ``(K, s, s)`` low-resolution mask logits.
        max_area: the largest region removed, in low-resolution pixels.
        threshold: where the mask is cut (the official predictor's own ``mask_threshold``,
            0, whatever the generator's is).

    Returns:
        ``(K, s, s)``, a new tensor.

    Examples:
        >>> x = -torch.ones(1, 4, 6)
        >>> x[0, :, 2:] = 1.0  # an object with a one-pixel hole, and a one-pixel island
        >>> x[0, 1, 4], x[0, 2, 0] = -1.0, 1.0
        >>> (fill_small_regions(x, 1)[0] > 0).int().tolist()
        [[0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]]
    """
    background = (logits <= threshold).cpu().numpy()  # (K, s, s)
    holes = torch.from_numpy(_small_components(background, max_area)).to(logits.device)
    islands = torch.from_numpy(_small_components(~background, max_area)).to(logits.device)
    logits = torch.where(holes, threshold + 10.0, logits)
    return torch.where(islands, threshold - 10.0, logits)


def _small_components(regions: np.ndarray, max_area: int) -> np.ndarray:
    """``(K, s, s)`` bool -> the pixels of 8-connected components of at most ``max_area`` pixels, per mask."""
    from scipy import ndimage

    within_one_mask = np.zeros((3, 3, 3), dtype=bool)
    within_one_mask[1] = True  # 8 neighbours in the plane, none in the masks before or after
    labels, _ = ndimage.label(regions, structure=within_one_mask)  # (K, s, s), 0 outside the regions
    small = np.bincount(labels.ravel(), minlength=1) <= max_area  # per label
    small[0] = False
    return small[labels]


# --- run-length encoding -------------------------------------------------------------------------


def encode_rle(masks: Tensor) -> list[dict[str, Any]]:
    """Masks -> uncompressed COCO run-length encodings (pycocotools' ``frPyObjects`` reads them).

    ``counts`` are the lengths of alternating runs of 0 and 1 in column-major order (down the
    first column, then the next), starting with a run of 0s (of length 0 if the first pixel is
    inside); ``size`` is ``[h, w]``.

    Args:
        masks: ``(K, h, w)`` bool.

    Returns:
        ``K`` dicts ``{"size": [h, w], "counts": [int, ...]}``.

    Examples:
        >>> encode_rle(torch.tensor([[[True, False], [True, True]]]))
        [{'size': [2, 2], 'counts': [0, 2, 1, 1]}]
    """
    K, h, w = masks.shape
    columns = masks.transpose(1, 2).reshape(K, w * h)  # (K, h, w) -> (K, w, h) -> (K, w*h): column-major
    k, i = (columns[:, 1:] != columns[:, :-1]).nonzero(as_tuple=True)  # run ends: pixel i differs from i + 1
    ends = (i + 1).cpu().split(torch.bincount(k, minlength=K).tolist())
    first_inside = columns[:, 0].tolist()
    out = []
    for m in range(K):
        edges = [0, *ends[m].tolist(), w * h]
        runs = [b - a for a, b in zip(edges, edges[1:])]
        out.append({"size": [h, w], "counts": [0, *runs] if first_inside[m] else runs})
    return out


def decode_rle(rle: dict[str, Any]) -> Tensor:
    """An uncompressed COCO run-length encoding -> the ``(h, w)`` bool mask (the inverse of ``encode_rle``).

    Raises:
        ValueError: if ``rle`` is not ``{"size": [h, w], "counts": [...]}`` with counts that are
            non-negative ints summing to ``h * w``.

    Examples:
        >>> decode_rle({"size": [2, 2], "counts": [0, 2, 1, 1]}).tolist()
        [[True, False], [True, True]]
    """
    size, counts = (rle.get("size"), rle.get("counts")) if isinstance(rle, dict) else (None, None)
    if (not isinstance(size, (list, tuple)) or len(size) != 2 or not isinstance(counts, (list, tuple))
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (*size, *counts))
            or sum(counts) != size[0] * size[1]):
        raise ValueError(f"rle={str(rle)[:80]!r} is not an uncompressed COCO RLE; expected {{'size': [h, w], 'counts': [...]}} "
                         f"with non-negative int counts summing to h * w")
    h, w = size
    inside = np.arange(len(counts)) % 2 == 1  # runs alternate: outside, inside, outside, ...
    columns = np.repeat(inside, counts)  # (w*h,)
    return torch.from_numpy(np.ascontiguousarray(columns.reshape(w, h).T))  # (w, h) -> (h, w)


# --- the generator -------------------------------------------------------------------------------


@dataclass
class _Found:
    """The masks kept so far, one row per mask (tensors on the model's device)."""

    rles: list[dict[str, Any]]
    boxes: Tensor  # (K, 4) int64, x0 y0 x1 y1 with both ends inside
    iou: Tensor  # (K,) predicted IoU
    points: Tensor  # (K, 2) the click, in pixels
    stability: Tensor  # (K,)

    def select(self, keep: Tensor) -> _Found:
        """The rows ``keep`` (bool mask or indices), in that order."""
        index = keep.nonzero()[:, 0] if keep.dtype == torch.bool else keep
        rows = index.tolist()
        return _Found([self.rles[i] for i in rows], self.boxes[index], self.iou[index], self.points[index], self.stability[index])

    @staticmethod
    def cat(parts: list[_Found]) -> _Found:
        return _Found([r for p in parts for r in p.rles], *(torch.cat([getattr(p, f) for p in parts])
                                                          for f in ("boxes", "iou", "points", "stability")))


class AutomaticMaskGenerator:
    """Every object of an image, from a grid of clicks (SAM 2 §5.1); the official ``SAM2AutomaticMaskGenerator``.

    The arguments and their defaults are the official generator's (tuned there for Hiera-L);
    the steps are listed in the [module's description][refimpl.sam2.automatic_mask_generator].

    Args:
        model: a [`SAM2`][refimpl.sam2.model.SAM2], in eval mode.
        points_per_side: clicks per side of the grid (``points_per_side^2`` per crop of layer 0);
            ``None`` when ``point_grids`` are given.
        points_per_batch: clicks decoded at once (memory, not results).
        pred_iou_thresh: keep masks whose predicted IoU is above this (0: no filter).
        stability_score_thresh: keep masks whose stability score is at least this (0: no filter).
        stability_score_offset: ``δ`` of the stability score.
        mask_threshold: logits above this are inside the mask.
        box_nms_thresh: box IoU above which the less confident of two masks of a crop is dropped.
        crop_n_layers: layers of crops after the whole image.
        crop_nms_thresh: box IoU above which a mask from a larger crop gives way to one from a smaller crop.
        crop_overlap_ratio: overlap of the first layer's crops, as a fraction of the image's short side.
        crop_n_points_downscale_factor: layer ``i`` gets ``points_per_side / factor^i`` points per side.
        point_grids: instead of ``points_per_side``, one ``(P, 2)`` grid of ``(x, y)`` in
            ``[0, 1]`` per layer.
        min_mask_region_area: holes and islands up to this many low-resolution pixels are
            removed (0: kept); see [`fill_small_regions`][refimpl.sam2.automatic_mask_generator.fill_small_regions].
        output_mode: one of [`OUTPUT_MODES`][refimpl.sam2.automatic_mask_generator.OUTPUT_MODES];
            ``"coco_rle"`` compresses the RLE by [`refimpl.coco.compress`][refimpl.coco.compress].
        use_m2m: refine each mask once with itself as the mask prompt.
        multimask_output: three masks per click, or one.

    Raises:
        TypeError: for a ``model`` that is not ``SAM2``, or an argument of the wrong type.
        ValueError: for a value out of range, both or neither of ``points_per_side`` and
            ``point_grids``, a grid per layer missing, or a layer left without points.
    """

    def __init__(
        self,
        model: SAM2,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[Tensor | np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
    ) -> None:
        if not isinstance(model, SAM2):
            raise TypeError(f"model must be a refimpl.sam2.SAM2, got {type(model).__name__}")
        self.model = model
        self.points_per_batch = checks.integer(points_per_batch, "points_per_batch", example="64")
        self.pred_iou_thresh = checks.real(pred_iou_thresh, "pred_iou_thresh", 0.0, 1.0, example="0.8")
        self.stability_score_thresh = checks.real(stability_score_thresh, "stability_score_thresh", 0.0, 1.0, example="0.95")
        self.stability_score_offset = checks.real(stability_score_offset, "stability_score_offset", 0.0, example="1.0")
        self.mask_threshold = checks.real(mask_threshold, "mask_threshold", example="0.0")
        self.box_nms_thresh = checks.real(box_nms_thresh, "box_nms_thresh", 0.0, 1.0, example="0.7")
        self.crop_n_layers = checks.integer(crop_n_layers, "crop_n_layers", 0, example="1")
        self.crop_nms_thresh = checks.real(crop_nms_thresh, "crop_nms_thresh", 0.0, 1.0, example="0.7")
        self.crop_overlap_ratio = checks.fraction(crop_overlap_ratio, "crop_overlap_ratio", example="0.34")
        self.crop_n_points_downscale_factor = checks.integer(crop_n_points_downscale_factor, "crop_n_points_downscale_factor", example="2")
        self.min_mask_region_area = checks.integer(min_mask_region_area, "min_mask_region_area", 0, example="100")
        self.output_mode = checks.choice(output_mode, "output_mode", OUTPUT_MODES)
        for name, flag in (("use_m2m", use_m2m), ("multimask_output", multimask_output)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__} {flag!r}; expected True or False")
        self.use_m2m, self.multimask_output = use_m2m, multimask_output
        self.point_grids = self._grids(points_per_side, point_grids)
        self.points_per_side = points_per_side

    def _grids(self, points_per_side: int | None, point_grids: list | None) -> list[Tensor]:
        """One float64 ``(P, 2)`` grid per layer, in ``[0, 1]``, none empty."""
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side (e.g. 32) and point_grids (one (P, 2) grid per crop layer)")
        layers = self.crop_n_layers + 1
        if points_per_side is not None:
            n = checks.integer(points_per_side, "points_per_side", example="32")
            factor = self.crop_n_points_downscale_factor
            sides = [int(n / factor**i) for i in range(layers)]
            if sides[-1] < 1:
                raise ValueError(f"points_per_side={n} with crop_n_points_downscale_factor={factor} leaves crop layer "
                                 f"{sides.index(0)} without points; expected points_per_side >= {factor**(layers - 1)}")
            return [point_grid(side) for side in sides]
        if not isinstance(point_grids, (list, tuple)) or len(point_grids) != layers:
            raise ValueError(f"point_grids holds {len(point_grids) if isinstance(point_grids, (list, tuple)) else type(point_grids).__name__}"
                             f" grids; expected a list of one (P, 2) grid per crop layer ({layers} with crop_n_layers={self.crop_n_layers})")
        grids = []
        for i, grid in enumerate(point_grids):
            grid = torch.as_tensor(grid).to(torch.float64) if isinstance(grid, (Tensor, np.ndarray)) else grid
            checks.tensor(grid, f"point_grids[{i}]", "(P, 2)", 2)
            if grid.shape[1] != 2 or grid.shape[0] == 0:
                raise ValueError(f"point_grids[{i}] has shape {tuple(grid.shape)}; expected (P, 2) with P >= 1")
            if not bool(((grid >= 0) & (grid <= 1)).all()):  # NaN fails too
                raise ValueError(f"point_grids[{i}] holds values outside [0, 1] (or NaN); expected (x, y) as fractions of the crop")
            grids.append(grid.cpu())
        return grids

    def generate(self, image: Tensor | np.ndarray) -> list[dict[str, Any]]:
        """Find every object of an image: one record per mask, in the official order.

        That order is by predicted IoU, best first; with crop layers, the masks of the smallest
        crops come first (the cross-crop NMS ranks by crop area) and, within a crop size, in the
        order PyTorch's unstable sort leaves them, as in the official code.

        Args:
            image: ``(H, W, 3)`` uint8 RGB, a tensor or a NumPy array.

        Returns:
            Dicts with the official keys: ``segmentation`` (as ``output_mode`` says; a
            ``(H, W)`` bool tensor by default), ``area`` (pixels, int), ``bbox`` (``[x, y, w, h]``
            floats, where ``w, h`` are last minus first pixel, one less than COCO's width:
            kept for parity), ``predicted_iou``, ``point_coords`` (``[[x, y]]``, the click in
            image pixels), ``stability_score``, ``crop_box`` (``[x, y, w, h]``).

        Raises:
            TypeError: if ``image`` is not a uint8 tensor or array.
            ValueError: if it is not ``(H, W, 3)`` with ``H, W >= 1``, or too small for the crop layers.
        """
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image)) if image.dtype == np.uint8 else image
        if not isinstance(image, Tensor) or image.dtype != torch.uint8:
            raise TypeError(f"image must be a uint8 (H, W, 3) tensor or NumPy array, got {getattr(image, 'dtype', type(image).__name__)}")
        if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ValueError(f"image has shape {tuple(image.shape)}; expected (H, W, 3) RGB with H, W >= 1")
        H, W = image.shape[:2]
        crops = crop_boxes(H, W, self.crop_n_layers, self.crop_overlap_ratio)
        for crop in crops:
            x0, y0, x1, y1 = crop.box
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"image of {W}x{H} pixels is too small for crop_n_layers={self.crop_n_layers}: "
                                 f"crop {crop.box} is empty; use fewer crop layers")
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            image, found, crop_of = image.to(device), [], []
            for crop in crops:
                kept = self._crop(image, crop, (H, W), device)
                found.append(kept)
                crop_of += [crop.box] * len(kept.rles)
            masks = _Found.cat(found)
            crops_xyxy = torch.tensor(crop_of, dtype=torch.int64, device=device).reshape(-1, 4)  # (K, 4)
            if len(crops) > 1:  # the same object seen in several crops: keep the view from the smallest crop
                area = (crops_xyxy[:, 2] - crops_xyxy[:, 0]) * (crops_xyxy[:, 3] - crops_xyxy[:, 1])
                keep = batched_nms(masks.boxes.float(), 1 / area, torch.zeros_like(area), self.crop_nms_thresh)
                masks, crops_xyxy = masks.select(keep), crops_xyxy[keep]
        return self._records(masks, crops_xyxy)

    def _crop(self, image: Tensor, crop: Crop, image_hw: tuple[int, int], device: torch.device) -> _Found:
        """The masks of one crop, duplicates removed, in image coordinates."""
        x0, y0, x1, y1 = crop.box
        h, w = y1 - y0, x1 - x0
        # the crop, as an image of its own (generate checked the image: the unchecked steps)
        features = self.model.forward_image(_preprocess(image[y0:y1, x0:x1], self.model.image_size))
        grid = self.point_grids[crop.layer] * torch.tensor([w, h], dtype=torch.float64)  # (P, 2) pixels of the crop
        points = grid.to(torch.float32).to(device)
        batches = [self._batch(features, chunk, crop.box, image_hw) for chunk in points.split(self.points_per_batch)]
        kept = _Found.cat(batches)
        keep = batched_nms(kept.boxes.float(), kept.iou, torch.zeros_like(kept.boxes[:, 0]), self.box_nms_thresh)  # one mask per object
        kept = kept.select(keep)
        offset = torch.tensor([x0, y0], device=device)
        return _Found(kept.rles, kept.boxes + offset.repeat(2), kept.iou, kept.points + offset, kept.stability)

    def _batch(self, features, points: Tensor, crop: tuple[int, int, int, int], image_hw: tuple[int, int]) -> _Found:
        """Decode ``N`` clicks ``(N, 2)`` (pixels of the crop), filter the masks, and encode the survivors.

        Box coordinates stay those of the crop (``_crop`` moves them); the RLEs are already of
        the whole image.
        """
        x0, y0, x1, y1 = crop
        crop_hw = (y1 - y0, x1 - x0)
        N = points.shape[0]
        clicks = to_model_coords(points, crop_hw, self.model.image_size)[:, None]  # (N, 1, 2) model-input pixels
        positive = torch.ones(N, 1, dtype=torch.int32, device=points.device)
        out = _predict(self.model, features, clicks, positive, None, self.multimask_output)  # clicks from our grid: no checks
        M = out.masks.shape[1]
        low_res = out.masks.flatten(0, 1)  # (N, M, s, s) -> (N*M, s, s)
        iou = out.iou.flatten(0, 1)  # (N*M,)
        points = points.repeat_interleave(M, dim=0)  # (N*M, 2): each mask's click
        if self.use_m2m:
            low_res, iou = self._refine(features, points, low_res, crop_hw)

        if self.pred_iou_thresh > 0:  # the model's own estimate of the mask's quality
            keep = iou > self.pred_iou_thresh
            low_res, iou, points = low_res[keep], iou[keep], points[keep]
        if self.min_mask_region_area > 0:
            low_res = fill_small_regions(low_res, self.min_mask_region_area)  # at the official predictor's threshold, 0
        logits = F.interpolate(low_res[:, None], crop_hw, mode="bilinear", align_corners=False)[:, 0]  # (K, h, w)
        stability = stability_score(logits, self.mask_threshold, self.stability_score_offset)
        if self.stability_score_thresh > 0:
            keep = stability >= self.stability_score_thresh
            logits, iou, points, stability = logits[keep], iou[keep], points[keep], stability[keep]

        masks = logits > self.mask_threshold  # (K, h, w)
        boxes = mask_boxes(masks)  # (K, 4) in the crop
        cut = _touches_crop_edge(boxes, crop, image_hw)  # a part of an object that runs on beyond the crop
        if bool(cut.any()):
            keep = ~cut
            masks, boxes, iou, points, stability = masks[keep], boxes[keep], iou[keep], points[keep], stability[keep]
        H, W = image_hw
        if (x0, y0, x1, y1) != (0, 0, W, H):
            masks = F.pad(masks, (x0, W - x1, y0, H - y1), value=False)  # (K, h, w) -> (K, H, W)
        return _Found(encode_rle(masks), boxes, iou, points, stability)

    def _refine(self, features, points: Tensor, low_res: Tensor, crop_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Mask-to-mask refinement: each mask ``(K, s, s)`` prompts again with its click; one mask back each."""
        clicks = to_model_coords(points, crop_hw, self.model.image_size)[:, None]  # (K, 1, 2)
        positive = torch.ones(clicks.shape[0], 1, dtype=torch.int32, device=points.device)
        prompts = low_res.clamp(-32.0, 32.0)[:, None]  # (K, 1, s, s): clamped, as the official predictor hands them back
        masks, ious = [], []
        for start in range(0, clicks.shape[0], self.points_per_batch):
            part = slice(start, start + self.points_per_batch)
            out = _predict(self.model, features, clicks[part], positive[part], prompts[part], False)
            masks.append(out.masks[:, 0])
            ious.append(out.iou[:, 0])
        return torch.cat(masks), torch.cat(ious)

    def _records(self, masks: _Found, crops_xyxy: Tensor) -> list[dict[str, Any]]:
        """The official records, one per mask."""
        def xywh(boxes: Tensor) -> list[list[float]]:
            b = boxes.float().cpu()  # (K, 4)
            return torch.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], dim=1).tolist()

        if self.output_mode == "binary_mask":
            segmentations: list[Any] = [decode_rle(rle) for rle in masks.rles]
        elif self.output_mode == "coco_rle":
            segmentations = [coco.compress(rle) for rle in masks.rles]  # counts as text, for JSON
        else:
            segmentations = masks.rles
        rows = zip(segmentations, masks.rles, xywh(masks.boxes), masks.iou.cpu().tolist(), masks.points.cpu().tolist(),
                   masks.stability.cpu().tolist(), xywh(crops_xyxy), strict=True)
        return [
            dict(segmentation=seg, area=sum(rle["counts"][1::2]), bbox=box, predicted_iou=iou, point_coords=[point],
                 stability_score=stability, crop_box=crop)
            for seg, rle, box, iou, point, stability, crop in rows
        ]


def _touches_crop_edge(boxes: Tensor, crop: tuple[int, int, int, int], image_hw: tuple[int, int]) -> Tensor:
    """``(K,)``: the box ``(K, 4)`` (crop pixels) lies within ``EDGE_TOLERANCE`` of a crop border that is not an image border."""
    H, W = image_hw
    x0, y0 = crop[:2]
    in_image = (boxes + torch.tensor([x0, y0, x0, y0], device=boxes.device)).float()  # (K, 4)
    near_crop = (in_image - torch.tensor(crop, dtype=torch.float32, device=boxes.device)).abs() <= EDGE_TOLERANCE
    near_image = (in_image - torch.tensor([0, 0, W, H], dtype=torch.float32, device=boxes.device)).abs() <= EDGE_TOLERANCE
    return (near_crop & ~near_image).any(dim=1)
