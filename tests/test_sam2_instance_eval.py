"""Instance-level evaluation as sam2-instance does it: COCO mask AP of SAM 2 in automatic and box-prompt mode.

AP is ``refimpl.coco``'s (``tests/test_coco.py`` compares it with pycocotools on random data
sets); here every AP is also compared with pycocotools' ``COCOeval`` (``theirs_ap``, the paper's
tool, to ``TOL``), and the tests check what we feed it (masks, boxes, scores, categories, the
matching) and a few cases whose AP can be worked out by hand from COCO's 101-point
interpolation. End to end: a small synthetic set (blobs on noise), the small random SAM 2 of
``tests/test_sam2.py``, ground truth -> SAM 2 -> records -> AP.
"""

from __future__ import annotations

import copy
import itertools
import sys

import numpy as np
import pycocotools.mask as mask_utils  # the test extra
import pytest
import torch

from refimpl.sam2 import AutomaticMaskGenerator, build_sam2
from refimpl.sam2.instance_eval import (
    AP_KEYS,
    auto_detections,
    best_iou_mask,
    box_detections,
    coco_ground_truth,
    dis_measures,
    mask_ap,
    match_boxes,
)
from anchors.sam2_official import randomize_
from refimpl.sam2.segment import segment_image
from refimpl.sodmetrics import Measures

from faults import one_line
from test_coco import TOL, theirs_evaluate

SMALL = dict(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), global_att_blocks=(4,), window_pos_embed_bkg_spatial_size=(4, 4),
             image_size=128, d_model=64, mem_dim=16, memory_ffn_dim=128)
H, W = 64, 96
BLOBS = [  # per image: (y0, y1, x0, x1, colour) of each object
    [(8, 30, 10, 40, (220, 180, 60)), (36, 58, 55, 90, (40, 200, 90))],
    [(5, 25, 5, 30, (200, 40, 200)), (30, 60, 35, 60, (230, 230, 230)), (10, 28, 65, 92, (60, 90, 220))],
    [(20, 50, 20, 75, (250, 120, 20)), (2, 14, 80, 94, (30, 220, 220))],
]


def blob_image(index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic image and its ``(G, H, W)`` object masks."""
    generator = torch.Generator().manual_seed(index)
    image = (torch.rand(H, W, 3, generator=generator) * 60).to(torch.uint8)
    masks = torch.zeros(len(BLOBS[index]), H, W, dtype=torch.bool)
    for g, (y0, y1, x0, x1, colour) in enumerate(BLOBS[index]):
        image[y0:y1, x0:x1] = torch.tensor(colour, dtype=torch.uint8)
        masks[g, y0:y1, x0:x1] = True
    return image, masks


@pytest.fixture(scope="module")
def dataset():
    pairs = [blob_image(i) for i in range(len(BLOBS))]
    return [image for image, _ in pairs], [masks for _, masks in pairs], coco_ground_truth([m for _, m in pairs])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(5)
    sam = build_sam2(**SMALL).eval()
    state = randomize_(sam, seed=5, scale=0.02, constant_only=True)
    for i in range(4):  # sharper mask logits, as tests/test_sam2_automatic.py
        state[f"sam_mask_decoder.output_hypernetworks_mlps.{i}.layers.2.weight"] *= 100
        state[f"sam_mask_decoder.output_hypernetworks_mlps.{i}.layers.2.bias"] *= 100
    sam.load_state_dict(state, strict=True)
    return sam


def theirs_ap(gt: dict, found: list[dict]) -> dict[str, float]:
    """The four numbers by pycocotools' COCOeval (the anchor): AP70 read from its precision table at IoU 0.7."""
    evaluation = theirs_evaluate(gt, found)
    if evaluation is None:  # loadRes cannot read an empty list
        return {k: 0.0 for k in AP_KEYS} if gt["annotations"] else {k: -1.0 for k in AP_KEYS}
    at70 = int(np.flatnonzero(np.isclose(evaluation.params.iouThrs, 0.7))[0])
    cells = evaluation.eval["precision"][at70, :, :, 0, -1]  # (recall, category) at area "all", maxDets 100
    ap70 = float(np.mean(cells[cells > -1])) if (cells > -1).any() else -1.0
    stats = evaluation.stats
    return {"AP": float(stats[0]), "AP50": float(stats[1]), "AP70": ap70, "AP75": float(stats[2])}


def ours_and_theirs(gt: dict, found: list[dict]) -> dict[str, float]:
    """``mask_ap``, after checking that it equals pycocotools' numbers to ``TOL``."""
    ours, theirs = mask_ap(gt, found), theirs_ap(gt, found)
    assert set(ours) == set(AP_KEYS) and max(abs(ours[k] - theirs[k]) for k in AP_KEYS) <= TOL, (ours, theirs)
    return ours


def results(masks: torch.Tensor, image_id: int, scores: list[float]) -> list[dict]:
    """COCO results for given masks, category 1."""
    out = []
    for m, s in zip(masks, scores, strict=True):
        rle = mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
        rle["counts"] = rle["counts"].decode()
        out.append({"image_id": image_id, "category_id": 1, "segmentation": rle, "score": s})
    return out


# --- AP by hand ----------------------------------------------------------------------------------


def test_ap_is_one_when_the_predictions_are_the_ground_truth(dataset):
    _, masks, gt = dataset
    found = [r for i, m in enumerate(masks) for r in results(m, i + 1, [0.9] * len(m))]
    before = copy.deepcopy((gt, found))
    assert ours_and_theirs(gt, found) == {k: 1.0 for k in AP_KEYS}
    assert (gt, found) == before  # mask_ap leaves what it is given as it was (pycocotools writes into it)


def test_the_ground_truth_has_one_entry_per_object_with_coco_boxes(dataset):
    _, masks, gt = dataset
    assert [im["id"] for im in gt["images"]] == [1, 2, 3]
    assert len(gt["annotations"]) == sum(len(m) for m in masks) == 7
    y0, y1, x0, x1, _ = BLOBS[1][2]
    ann = [a for a in gt["annotations"] if a["image_id"] == 2][2]
    assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0] and ann["area"] == (y1 - y0) * (x1 - x0)
    assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), masks[1][2].numpy())
    for ann, m in zip(gt["annotations"], [g for image in masks for g in image], strict=True):  # as pycocotools writes them
        theirs = mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
        assert ann["segmentation"]["counts"].encode() == theirs["counts"] and ann["bbox"] == mask_utils.toBbox(theirs).tolist()


def test_one_of_two_objects_found_gives_51_of_101_recall_points():
    """Recall reaches 0.5 with precision 1: COCO's 101 recall points 0, 0.01, ..., 0.5 have precision 1, the rest 0."""
    _, masks = blob_image(0)
    gt = coco_ground_truth([masks])
    assert ours_and_theirs(gt, results(masks[:1], 1, [0.8])) == pytest.approx({k: 51 / 101 for k in AP_KEYS}, abs=1e-12)


def test_a_false_positive_ranked_first_halves_the_precision():
    """Detections, best first: a miss, then object 0. Precision 0 then 1/2; its right envelope is 1/2 up to recall 1/2."""
    _, masks = blob_image(0)
    gt = coco_ground_truth([masks])
    miss = torch.zeros_like(masks[:1])
    miss[0, 0:5, 60:90] = True  # overlaps no object
    found = results(masks[:1], 1, [0.8]) + results(miss, 1, [0.9])
    assert ours_and_theirs(gt, found) == pytest.approx({k: 0.5 * 51 / 101 for k in AP_KEYS}, abs=1e-12)


def test_a_mask_of_iou_072_counts_up_to_ap70_and_not_at_ap75():
    """IoU 0.72 passes the thresholds 0.50, 0.55, ..., 0.70 (5 of 10) and fails 0.75, ..., 0.95."""
    gt_mask = torch.zeros(1, H, W, dtype=torch.bool)
    gt_mask[0, 10:20, 10:20] = True  # 100 pixels
    part = torch.zeros_like(gt_mask)
    part[0, 10:20, 10:17] = True
    part[0, 10:12, 17:18] = True  # 72 pixels inside: IoU 0.72
    gt = coco_ground_truth([gt_mask])
    assert ours_and_theirs(gt, results(part, 1, [0.7])) == pytest.approx({"AP": 0.5, "AP50": 1.0, "AP70": 1.0, "AP75": 0.0}, abs=1e-12)


def test_no_detection_scores_zero(dataset):
    assert ours_and_theirs(dataset[2], []) == {k: 0.0 for k in AP_KEYS}


# --- the matching of automatic mode --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_the_matching_minimises_l1_minus_giou_over_every_assignment(seed):
    generator = torch.Generator().manual_seed(seed)
    def boxes(n):
        xy = torch.rand(n, 2, generator=generator) * 50
        return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=generator) * 30], dim=1)
    predicted, target = boxes(5), boxes(3)
    rows, cols = match_boxes(predicted, target)
    l1 = torch.cdist(predicted.double(), target.double(), p=1)
    from torchvision.ops import generalized_box_iou
    cost = l1 - generalized_box_iou(predicted.double(), target.double())
    best = min(sum(cost[p, t] for t, p in enumerate(perm)) for perm in itertools.permutations(range(5), 3))
    assert sorted(cols.tolist()) == [0, 1, 2] and rows.tolist() == sorted(rows.tolist())
    assert float(cost[rows, cols].sum()) == pytest.approx(float(best), abs=1e-9)


def test_automatic_mode_keeps_the_matched_mask_per_object_with_its_predicted_iou(dataset):
    """Records built by hand: the object's own mask (far in the list) beats a nearby blob and a whole-image mask."""
    _, masks, gt = dataset
    m = masks[0]
    whole = torch.ones(H, W, dtype=torch.bool)
    shifted = torch.roll(m[1], shifts=(2, 3), dims=(0, 1))
    def record(mask, iou):
        ys, xs = mask.nonzero(as_tuple=True)
        x0, y0, x1, y1 = xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()
        return {"segmentation": mask, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "predicted_iou": iou}
    records = [record(whole, 0.99), record(shifted, 0.95), record(m[0], 0.7), record(m[1], 0.6)]
    found = auto_detections(records, gt, 1)
    assert [d["score"] for d in found] == [0.7, 0.6]  # the nearly right blob and the whole image are dropped
    assert [d["category_id"] for d in found] == [1, 1]
    for d, g in zip(found, m):
        assert np.array_equal(mask_utils.decode(d["segmentation"]).astype(bool), g.numpy())
    assert ours_and_theirs(gt, found)["AP"] < 1  # images 2 and 3 have no detection
    assert ours_and_theirs({**gt, "images": gt["images"][:1], "annotations": gt["annotations"][:2]}, found) == {k: 1.0 for k in AP_KEYS}


# --- end to end: ground truth -> SAM 2 -> records -> AP ------------------------------------------


def test_automatic_mode_end_to_end(dataset, model):
    images, masks, gt = dataset
    generator = AutomaticMaskGenerator(model, points_per_side=6, points_per_batch=36, pred_iou_thresh=0.0,
                                       stability_score_thresh=0.0, box_nms_thresh=0.9, output_mode="uncompressed_rle")
    found = []
    for image_id, image in enumerate(images, start=1):
        records = generator.generate(image)
        assert records, "the lowered thresholds keep masks"
        detections = auto_detections(records, gt, image_id)
        assert len(detections) == min(len(records), len(masks[image_id - 1]))
        scores = {r["predicted_iou"] for r in records}
        assert all(d["score"] in scores and d["image_id"] == image_id for d in detections)
        found += detections
    ap = ours_and_theirs(gt, found)
    assert set(ap) == set(AP_KEYS) and all(0.0 <= v <= 1.0 for v in ap.values())
    assert ap["AP50"] >= ap["AP70"] >= ap["AP75"] and ap["AP50"] >= ap["AP"]


def test_box_mode_end_to_end_gives_the_predictors_masks(dataset, model):
    images, masks, gt = dataset
    found = []
    for image_id, image in enumerate(images, start=1):
        detections = box_detections(model, image, gt, image_id)
        anns = [a for a in gt["annotations"] if a["image_id"] == image_id]
        assert len(detections) == len(anns)
        for d, a in zip(detections, anns):  # one box at a time through the single-image path gives the same mask
            x, y, w, h = a["bbox"]
            with torch.no_grad():
                mask, iou = segment_image(model, image, None, None, torch.tensor([x, y, x + w, y + h]), multimask=False)
            assert np.array_equal(mask_utils.decode(d["segmentation"]).astype(bool), mask[0].numpy())
            assert d["score"] == pytest.approx(float(iou[0]), abs=1e-5)
        found += detections
    ap = ours_and_theirs(gt, found)
    assert all(0.0 <= v <= 1.0 for v in ap.values())


# --- dichotomous image segmentation --------------------------------------------------------------


def test_dis_takes_the_highest_iou_mask_and_scores_it_with_the_sod_measures():
    _, masks = blob_image(1)
    gt = masks[1]
    candidates = torch.stack([masks[0], masks[1] | masks[2], masks[1][:, :].clone().roll(1, 0), masks[2]])
    ious = [((c & gt).sum() / (c | gt).sum()).item() for c in candidates]
    assert torch.equal(best_iou_mask(candidates, gt), candidates[int(np.argmax(ious))])
    expected = Measures()
    expected.step(candidates[int(np.argmax(ious))].numpy(), gt.numpy())
    expected.step(np.zeros((H, W), bool), masks[0].numpy())  # nothing overlaps: a black map
    assert dis_measures([(candidates, gt), (candidates[2:3] & ~candidates[2:3], masks[0])]) == expected.get_results()


def test_dis_with_the_ground_truth_among_the_masks_is_perfect():
    _, masks = blob_image(2)
    scores = dis_measures([(masks, masks[0])])
    assert scores.mae == 0.0 and scores.s_measure == pytest.approx(1.0) and scores.max_f == pytest.approx(1.0)


# --- refused input -------------------------------------------------------------------------------


@pytest.mark.parametrize("call, fragment", [
    (lambda gt, model, image: auto_detections([], gt, 9), "image_id=9 is not in ground_truth"),
    (lambda gt, model, image: box_detections(model, image, gt, 4), "image_id=4 is not in ground_truth"),
    (lambda gt, model, image: box_detections(model, image[:10], gt, 1), "expected (64, 96, 3)"),
    (lambda gt, model, image: box_detections(model, image.float(), gt, 1), "uint8"),
    (lambda gt, model, image: box_detections(object(), image, gt, 1), "refimpl.sam2.SAM2"),
    (lambda gt, model, image: mask_ap({"images": []}, []), "not a COCO dataset"),
    (lambda gt, model, image: mask_ap(gt, [{"image_id": 7, "category_id": 1}]), "image_id is not in ground_truth"),
    (lambda gt, model, image: coco_ground_truth([torch.zeros(1, 4, 4, dtype=torch.bool)]), "masks[0][0] is empty"),
    (lambda gt, model, image: coco_ground_truth([np.zeros((4, 4), bool)]), "expected (G, H, W)"),
    (lambda gt, model, image: coco_ground_truth([np.zeros((1, 4, 4), np.uint8)]), "expected a bool"),
    (lambda gt, model, image: best_iou_mask(torch.zeros(2, 4, 4, dtype=torch.bool), torch.zeros(4, 5, dtype=torch.bool)), "(K, H, W) and (H, W)"),
])
def test_refused_input_is_one_line_naming_the_argument(dataset, model, call, fragment):
    images, _, gt = dataset
    with pytest.raises((ValueError, TypeError)) as error:
        call(gt, model, images[0])
    assert fragment in one_line(str(error.value))


def test_without_pycocotools_everything_still_works(monkeypatch, dataset):
    """pycocotools is the anchor the tests compare with, not a dependency of refimpl."""
    _, masks, gt = dataset
    found = [r for i, m in enumerate(masks) for r in results(m, i + 1, [0.9] * len(m))]
    for name in ("pycocotools", "pycocotools.mask", "pycocotools.coco", "pycocotools.cocoeval"):
        monkeypatch.setitem(sys.modules, name, None)
    assert mask_ap(coco_ground_truth(masks), found) == {k: 1.0 for k in AP_KEYS}
    with pytest.raises(ValueError) as error:
        mask_ap(gt, [{"image_id": 9}])
    assert "image_id is not in ground_truth" in one_line(str(error.value))
