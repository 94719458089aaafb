r"""Instance-level evaluation of SAM 2, as sam2-instance does it (arXiv 2409.02567; code PJLallen/InstanceSAM2Eval).

The paper runs SAM 2 on class-agnostic instance tasks in two ways and scores the masks with
COCO mask AP (computed by [`refimpl.coco`][refimpl.coco], which the tests compare with
pycocotools' ``COCOeval``, the paper's tool):

1. **Automatic mode** ([`auto_detections`][refimpl.sam2.instance_eval.auto_detections]): the
   [automatic mask generator][refimpl.sam2.automatic_mask_generator.AutomaticMaskGenerator]
   returns every mask it finds (the paper's code lowers ``pred_iou_thresh`` to 0.5). They are
   far more than the objects, so the code first *matches*: a Hungarian assignment between the
   masks' boxes and the ground-truth boxes, the cost of DETR's matcher (L1 distance of the
   ``x0, y0, x1, y1`` boxes in pixels, minus their generalised IoU;
   [`match_boxes`][refimpl.sam2.instance_eval.match_boxes]). Each ground-truth object keeps
   one mask, scored by its predicted IoU; the unmatched masks are dropped before AP. So AP here
   measures how good the best-placed mask per object is, not whether SAM 2 finds objects
   without also finding everything else.
2. **Box prompts** ([`box_detections`][refimpl.sam2.instance_eval.box_detections]): each
   ground-truth box prompts one mask (``multimask_output=False``), scored by its predicted IoU.

[`mask_ap`][refimpl.sam2.instance_eval.mask_ap] then gives ``AP`` (IoU 0.5:0.95), ``AP50``,
``AP75`` (as ``COCOeval.summarize``) and ``AP70``, which the paper's code reads from the same
precision table at IoU 0.7 for the salient-instance data sets.

For dichotomous image segmentation (one object per image, fine structure) the paper takes, per
image, the automatic mask with the highest IoU to the ground truth
([`best_iou_mask`][refimpl.sam2.instance_eval.best_iou_mask]) and reports the salient-object
measures of [`refimpl.sodmetrics`][refimpl.sodmetrics]
([`dis_measures`][refimpl.sam2.instance_eval.dis_measures]). (It also reports HCE, which is
not here.)

Shape letters: ``K`` masks of an image, ``G`` ground-truth objects, ``H, W`` the image.

```python
gt = coco_ground_truth([masks_of_image_1, masks_of_image_2])      # (G, H, W) bool each
found = []
for image_id, image in enumerate(images, start=1):
    found += auto_detections(generator.generate(image), gt, image_id)
mask_ap(gt, found)  # {'AP': ..., 'AP50': ..., 'AP70': ..., 'AP75': ...}
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import generalized_box_iou

from .. import coco
from ..sodmetrics import Measures, Scores
from .automatic_mask_generator import decode_rle, encode_rle, mask_boxes
from .image_predictor import to_model_coords
from .model import SAM2

__all__ = [
    "AP_KEYS",
    "auto_detections",
    "best_iou_mask",
    "box_detections",
    "coco_ground_truth",
    "dis_measures",
    "mask_ap",
    "match_boxes",
]

AP_KEYS = ("AP", "AP50", "AP70", "AP75")
"""What [`mask_ap`][refimpl.sam2.instance_eval.mask_ap] returns, in this order."""


def _compressed(masks: Tensor) -> list[dict[str, Any]]:
    """``(K, H, W)`` bool masks -> compressed COCO RLEs with ``counts`` as text (JSON-able)."""
    return [coco.compress(rle) for rle in encode_rle(masks)]


def _as_mask(segmentation: Any) -> Tensor:
    """A record's ``segmentation`` in any of the generator's output modes -> ``(H, W)`` bool."""
    if isinstance(segmentation, Tensor):
        return segmentation.bool().cpu()
    if isinstance(segmentation, np.ndarray):
        return torch.from_numpy(segmentation.astype(bool))
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):
        return decode_rle(coco.decompress(segmentation))
    return decode_rle(segmentation)


# --- ground truth --------------------------------------------------------------------------------


def coco_ground_truth(masks: Sequence[Tensor | np.ndarray], category_id: int = 1) -> dict[str, Any]:
    """Per-image instance masks -> a COCO ground truth with one class (the tasks are class-agnostic).

    Images get ids ``1, 2, ...`` in the order given, annotations ids ``1, 2, ...`` in order;
    ``bbox`` is COCO's ``[x, y, width, height]`` of the mask's pixels and ``segmentation`` a
    compressed RLE.

    Args:
        masks: one ``(G, H, W)`` bool array or tensor per image (``G`` may be 0); no mask empty.
        category_id: the one category's id.

    Returns:
        A COCO dataset dict: ``images``, ``annotations``, ``categories``.

    Raises:
        TypeError: if an entry is not a bool array or tensor.
        ValueError: if an entry is not ``(G, H, W)`` or holds an empty mask.

    Examples:
        >>> m = torch.zeros(1, 4, 6, dtype=torch.bool); m[0, 1:3, 2:5] = True
        >>> gt = coco_ground_truth([m])
        >>> gt["images"], gt["annotations"][0]["bbox"], gt["annotations"][0]["area"]
        ([{'id': 1, 'height': 4, 'width': 6, 'file_name': '1.png'}], [2.0, 1.0, 3.0, 2.0], 6)
    """
    images, annotations = [], []
    for i, m in enumerate(masks):
        m = torch.from_numpy(m) if isinstance(m, np.ndarray) else m
        if not isinstance(m, Tensor) or m.dtype != torch.bool:
            raise TypeError(f"masks[{i}] is {getattr(m, 'dtype', type(m).__name__)}; expected a bool (G, H, W) array or tensor")
        if m.ndim != 3 or 0 in m.shape[1:]:
            raise ValueError(f"masks[{i}] has shape {tuple(m.shape)}; expected (G, H, W) with H, W >= 1")
        empty = (~m.flatten(1).any(1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"masks[{i}][{empty[0]}] is empty; expected every ground-truth object to have a pixel")
        image_id = i + 1
        images.append({"id": image_id, "height": int(m.shape[1]), "width": int(m.shape[2]), "file_name": f"{image_id}.png"})
        boxes = mask_boxes(m).tolist()  # (G, 4) first and last pixels, both included
        for g, rle, (x0, y0, x1, y1) in zip(m, _compressed(m), boxes, strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "segmentation": rle, "area": int(g.sum()),
                                "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)], "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [{"id": category_id, "name": "object"}]}


def _image(ground_truth: dict[str, Any], image_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ground truth's entry for ``image_id`` and its annotations (the door of the protocol functions)."""
    if not isinstance(ground_truth, dict) or not all(isinstance(ground_truth.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError("ground_truth is not a COCO dataset; expected a dict with lists 'images', 'annotations' and 'categories' "
                         "(see coco_ground_truth)")
    entry = next((im for im in ground_truth["images"] if im.get("id") == image_id), None)
    if entry is None:
        raise ValueError(f"image_id={image_id!r} is not in ground_truth['images']; expected one of its ids")
    return entry, [a for a in ground_truth["annotations"] if a.get("image_id") == image_id]


def _xyxy(xywh: Sequence[float]) -> list[float]:
    """``[x, y, w, h]`` -> ``[x, y, x + w, y + h]``, as the paper's code converts both kinds of box."""
    x, y, w, h = xywh
    return [x, y, x + w, y + h]


# --- automatic mode ------------------------------------------------------------------------------


def match_boxes(predicted: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """One predicted box per target box, by the Hungarian assignment of DETR's matcher (the paper's code).

    The cost of a pair is the L1 distance of the two ``x0, y0, x1, y1`` boxes (in pixels, so it
    dominates) minus their generalised IoU; the matcher's class term is the same for every pair
    (one class) and leaves the assignment unchanged. With more targets than predictions, some
    targets stay unmatched.

    Args:
        predicted: ``(K, 4)`` boxes ``x0, y0, x1, y1``.
        target: ``(G, 4)`` boxes.

    Returns:
        ``(predicted indices, target indices)``, each ``(min(K, G),)`` int64, ordered by the
        predicted index (scipy's order).

    Examples:
        >>> p = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [1, 1, 11, 11]])
        >>> t = torch.tensor([[49.0, 50, 60, 61], [0, 0, 10, 10]])
        >>> [x.tolist() for x in match_boxes(p, t)]
        [[0, 1], [1, 0]]
    """
    from scipy.optimize import linear_sum_assignment

    p, t = predicted.double(), target.double()
    if len(p) == 0 or len(t) == 0:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    cost = torch.cdist(p, t, p=1) - generalized_box_iou(p, t)  # (K, G)
    rows, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)


def auto_detections(records: Sequence[dict[str, Any]], ground_truth: dict[str, Any], image_id: int) -> list[dict[str, Any]]:
    """Automatic mode, as the paper's code: match the generator's masks to the objects, keep one mask per object.

    Each ground-truth object gets the mask whose box the assignment of
    [`match_boxes`][refimpl.sam2.instance_eval.match_boxes] gives it (the record's ``bbox``,
    ``[x, y, w, h]``, turned into ``x, y, x + w, y + h`` as there), scored by the record's
    ``predicted_iou`` and labelled with the object's category. The other masks are dropped.

    Args:
        records: [`AutomaticMaskGenerator.generate`][refimpl.sam2.automatic_mask_generator.AutomaticMaskGenerator.generate]
            of the image, in any output mode.
        ground_truth: a COCO dataset (e.g. [`coco_ground_truth`][refimpl.sam2.instance_eval.coco_ground_truth]).
        image_id: the image's id in it.

    Returns:
        COCO results, ``min(K, G)`` dicts ``image_id, category_id, segmentation`` (compressed
        RLE) ``, score``.

    Raises:
        ValueError: if ``ground_truth`` is not a COCO dataset, ``image_id`` is not in it, or a
            mask's size is not the image's.
    """
    entry, anns = _image(ground_truth, image_id)
    if not records or not anns:
        return []
    predicted = torch.tensor([_xyxy(r["bbox"]) for r in records], dtype=torch.float32)  # (K, 4), float32 as there
    target = torch.tensor([_xyxy(a["bbox"]) for a in anns], dtype=torch.float32)  # (G, 4)
    out = []
    for i, j in zip(*match_boxes(predicted, target)):
        mask = _as_mask(records[int(i)]["segmentation"])
        if tuple(mask.shape) != (entry["height"], entry["width"]):
            raise ValueError(f"records[{int(i)}] has a mask of {tuple(mask.shape)}; expected the image's "
                             f"({entry['height']}, {entry['width']}) of ground_truth image {image_id}")
        out.append({"image_id": image_id, "category_id": anns[int(j)]["category_id"], "segmentation": _compressed(mask[None])[0],
                    "score": float(records[int(i)]["predicted_iou"])})
    return out


# --- box prompts ---------------------------------------------------------------------------------


def box_detections(model: SAM2, image: Tensor, ground_truth: dict[str, Any], image_id: int) -> list[dict[str, Any]]:
    """Box prompts, as the paper's code: each ground-truth box prompts one mask, scored by its predicted IoU.

    The box ``[x, y, w, h]`` becomes ``x, y, x + w, y + h`` in image pixels, then model-input
    pixels; [`SAM2.predict`][refimpl.sam2.image_predictor.predict] with
    ``multimask_output=False``; the low-resolution logits are resized to the image and cut at 0,
    as the official ``SAM2ImagePredictor`` does. The image is encoded once, the boxes decoded
    together.

    Args:
        model: SAM 2, in eval mode.
        image: ``(H, W, 3)`` uint8 RGB.
        ground_truth: a COCO dataset.
        image_id: the image's id in it.

    Returns:
        COCO results, one per ground-truth object, in the annotations' order.

    Raises:
        TypeError: if ``model`` is not ``SAM2`` or ``image`` not a uint8 tensor.
        ValueError: if ``ground_truth`` is not a COCO dataset, ``image_id`` is not in it, or
            ``image`` is not ``(H, W, 3)`` of the size the ground truth gives.
    """
    if not isinstance(model, SAM2):
        raise TypeError(f"model must be a refimpl.sam2.SAM2, got {type(model).__name__}")
    entry, anns = _image(ground_truth, image_id)
    if not isinstance(image, Tensor) or image.dtype != torch.uint8:
        raise TypeError(f"image must be a uint8 (H, W, 3) tensor, got {getattr(image, 'dtype', type(image).__name__)}")
    H, W = entry["height"], entry["width"]
    if tuple(image.shape) != (H, W, 3):
        raise ValueError(f"image has shape {tuple(image.shape)}; expected ({H}, {W}, 3), the size ground_truth gives image {image_id}")
    if not anns:
        return []
    device = next(model.parameters()).device
    with torch.inference_mode():
        features = model.encode_image(model.preprocess(image.to(device)))
        boxes = torch.tensor([_xyxy(a["bbox"]) for a in anns], dtype=torch.float32, device=device)  # (G, 4) pixels
        boxes = to_model_coords(boxes.reshape(-1, 2, 2), (H, W), model.image_size).reshape(-1, 4)
        out = model.predict(features, box=boxes, multimask_output=False)
        masks = F.interpolate(out.masks, (H, W), mode="bilinear", align_corners=False)[:, 0] > 0  # (G, H, W)
    return [{"image_id": image_id, "category_id": a["category_id"], "segmentation": rle, "score": float(s)}
            for a, rle, s in zip(anns, _compressed(masks.cpu()), out.iou[:, 0].cpu().tolist(), strict=True)]


# --- AP ------------------------------------------------------------------------------------------


def mask_ap(ground_truth: dict[str, Any], detections: Sequence[dict[str, Any]]) -> dict[str, float]:
    """COCO mask AP of the detections, as ``pycocotools.cocoeval.COCOeval`` (``iouType="segm"``) gives it.

    By [`refimpl.coco.evaluate`][refimpl.coco.evaluate]: ``AP``, ``AP50`` and ``AP75`` are
    ``COCOeval.summarize``'s first three numbers (all areas, at most 100 detections per image,
    101-point interpolated precision); ``AP70`` is read from the precision table at IoU 0.7 as
    the paper's ``eva_AP70.py`` does, averaging only the cells ``summarize`` would (theirs also
    averages the ``-1`` of a category without objects, which a one-class ground truth never
    has). No detection at all gives 0 everywhere.

    Args:
        ground_truth: a COCO dataset.
        detections: COCO results, e.g. from [`auto_detections`][refimpl.sam2.instance_eval.auto_detections].

    Returns:
        ``{"AP", "AP50", "AP70", "AP75"}`` in ``[0, 1]`` (``-1`` where the ground truth has no object).

    Raises:
        ValueError: if ``ground_truth`` is not a COCO dataset, or a detection's ``image_id`` is not
            in it (more in [`refimpl.coco.evaluate`][refimpl.coco.evaluate]).
    """
    evaluation = coco.evaluate(ground_truth, detections)
    ap = evaluation.average_precision
    return {"AP": ap(), "AP50": ap(iou=0.5), "AP70": ap(iou=0.7), "AP75": ap(iou=0.75)}


# --- dichotomous image segmentation --------------------------------------------------------------


def best_iou_mask(masks: Tensor, gt: Tensor) -> Tensor:
    """The mask with the highest IoU to the ground truth, as the paper's ``findMaxIoUMask`` script.

    The first of equal IoUs wins; if no mask overlaps the ground truth (every IoU 0), the
    answer is an empty mask (the script saves a black image).

    Args:
        masks: ``(K, H, W)`` bool, e.g. the automatic masks of one image (``K`` may be 0).
        gt: ``(H, W)`` bool.

    Returns:
        ``(H, W)`` bool.

    Raises:
        TypeError: if either is not a bool tensor.
        ValueError: if the shapes are not ``(K, H, W)`` and ``(H, W)``.

    Examples:
        >>> gt = torch.zeros(4, 4, dtype=torch.bool); gt[:2] = True
        >>> masks = torch.zeros(2, 4, 4, dtype=torch.bool); masks[0, :1] = True; masks[1, :3] = True
        >>> best_iou_mask(masks, gt).sum().item()  # IoU 0.5 and 0.667
        12
    """
    for name, x in (("masks", masks), ("gt", gt)):
        if not isinstance(x, Tensor) or x.dtype != torch.bool:
            raise TypeError(f"{name} is {getattr(x, 'dtype', type(x).__name__)}; expected a bool tensor")
    if gt.ndim != 2 or masks.ndim != 3 or masks.shape[1:] != gt.shape:
        raise ValueError(f"masks has shape {tuple(masks.shape)} and gt {tuple(gt.shape)}; expected (K, H, W) and (H, W)")
    inter = (masks & gt).flatten(1).sum(1)  # (K,)
    union = (masks | gt).flatten(1).sum(1)
    iou = torch.where(union > 0, inter / union.clamp(min=1), 0.0)
    if len(iou) == 0 or iou.max() <= 0:
        return torch.zeros_like(gt)
    return masks[int(iou.argmax())]  # argmax gives the first maximum


def dis_measures(pairs: Sequence[tuple[Tensor, Tensor]]) -> Scores:
    """The SOD measures of the best-IoU automatic mask per image, over a data set (the paper's DIS protocol).

    Args:
        pairs: per image, ``(masks (K, H, W) bool, gt (H, W) bool)``.

    Returns:
        [`Scores`][refimpl.sodmetrics.Scores] of [`Measures`][refimpl.sodmetrics.Measures]:
        per-image means, and the mean and maximum of the mean F and E curves.

    Raises:
        TypeError, ValueError: as [`best_iou_mask`][refimpl.sam2.instance_eval.best_iou_mask].
    """
    measures = Measures()
    for masks, gt in pairs:
        measures.step(best_iou_mask(masks, gt).numpy(), gt.numpy())
    return measures.get_results()
