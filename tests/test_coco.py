"""COCO's RLE and mask AP (refimpl.coco) against pycocotools, the COCO API it reproduces.

The RLE text is compared byte for byte with ``pycocotools.mask.encode`` on random masks and the
edge cases (empty, full, one pixel, odd sizes, long runs); area and IoU (with crowd regions)
exactly. Mask AP is compared with ``COCOeval(..., "segm")``: the 12 numbers of ``summarize`` and
the whole precision and recall tables, on random data sets with several images and categories,
crowd regions, tied scores, objects of every area range, images without objects or detections,
categories without detections, and more than 100 detections on an image. Tolerance: ``TOL`` =
1e-12 (they come out equal; the same floating-point operations in the same order).
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pycocotools.mask as mask_utils  # the test extra: the anchor
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from refimpl import coco
from refimpl.sam2.automatic_mask_generator import encode_rle

from faults import one_line

TOL = 1e-12


def runs(mask: np.ndarray) -> dict:
    """An ``(h, w)`` bool mask -> its uncompressed RLE (column-major runs, 0s first), by the generator's ``encode_rle``."""
    return encode_rle(torch.from_numpy(mask)[None])[0]


def theirs_rle(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blobs (a box, an ellipse, noise inside a box) so that runs are long and short."""
    mask = np.zeros((h, w), bool)
    y0, x0 = rng.integers(0, h), rng.integers(0, w)
    y1, x1 = rng.integers(y0, h) + 1, rng.integers(x0, w) + 1
    kind = rng.integers(3)
    if kind == 0:
        mask[y0:y1, x0:x1] = True
    elif kind == 1:
        yy, xx = np.mgrid[:h, :w]
        mask = ((yy - (y0 + y1) / 2) / max(y1 - y0, 1)) ** 2 + ((xx - (x0 + x1) / 2) / max(x1 - x0, 1)) ** 2 <= 0.25
    else:
        mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < rng.uniform(0.3, 0.95)
    return mask


# --- the RLE -------------------------------------------------------------------------------------


EDGE_MASKS = {
    "empty": np.zeros((5, 7), bool),
    "full": np.ones((5, 7), bool),
    "first pixel": np.eye(1, 35, 0, dtype=bool).reshape(7, 5).T,
    "last pixel": np.eye(1, 35, 34, dtype=bool).reshape(7, 5).T,
    "one pixel in the middle": np.pad(np.ones((1, 1), bool), ((2, 2), (3, 3))),
    "1 x 1 inside": np.ones((1, 1), bool),
    "1 x 1 outside": np.zeros((1, 1), bool),
    "one row": np.array([[True, False, False, True, True, False, True]]),
    "one column": np.array([[True], [True], [False], [True]]),
    "stripes": np.tile([[True], [False]], (17, 13)),
    "checkerboard": (np.add.outer(np.arange(31), np.arange(29)) % 2).astype(bool),
    "long runs": np.pad(np.ones((1500, 1400), bool), ((400, 100), (300, 0))),  # runs far beyond 2^5, 2^10, 2^15, 2^20
}


@pytest.mark.parametrize("name", EDGE_MASKS)
def test_the_rle_text_is_pycocotools_byte_for_byte_on_the_edge_cases(name):
    mask = EDGE_MASKS[name]
    theirs = theirs_rle(mask)
    ours = coco.compress(runs(mask))
    assert ours["counts"].encode("ascii") == theirs["counts"] and ours["size"] == list(theirs["size"])
    assert coco.decompress(theirs) == runs(mask)  # and back, from their bytes
    assert coco.area(ours) == int(mask_utils.area(theirs)) == int(mask.sum())


def test_the_rle_text_is_pycocotools_byte_for_byte_on_random_masks_of_odd_sizes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        mask = random_mask(rng, h, w) if rng.random() < 0.7 else rng.random((h, w)) < rng.random()
        theirs = theirs_rle(mask)
        ours = coco.compress(runs(mask))
        assert ours["counts"].encode("ascii") == theirs["counts"]
        assert coco.decompress(ours)["counts"] == runs(mask)["counts"]
        assert coco.area(theirs) == int(mask_utils.area(theirs))


def test_uncompressed_rle_with_an_inner_run_of_zero_is_compressed_as_pycocotools_does():
    rle = {"size": [4, 5], "counts": [3, 0, 2, 5, 0, 10]}  # runs of length 0 inside: frPyObjects keeps them
    theirs = mask_utils.frPyObjects(rle, 4, 5)
    assert coco.compress(rle)["counts"].encode("ascii") == theirs["counts"]
    assert coco.decompress(theirs) == rle


def test_iou_is_pycocotools_with_and_without_crowd_regions():
    rng = np.random.default_rng(1)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        dt = [random_mask(rng, h, w) for _ in range(rng.integers(0, 7))] + [np.zeros((h, w), bool)]
        gt = [random_mask(rng, h, w) for _ in range(rng.integers(1, 6))] + [dt[0]]
        crowd = rng.random(len(gt)) < 0.4
        theirs = mask_utils.iou([theirs_rle(m) for m in dt], [theirs_rle(m) for m in gt], crowd.astype(np.uint8))
        ours = coco.iou([coco.compress(runs(m)) for m in dt], [runs(m) for m in gt], crowd)
        assert ours.shape == (len(dt), len(gt)) and np.array_equal(ours, theirs)


# --- mask AP -------------------------------------------------------------------------------------


def theirs_evaluate(ground_truth: dict, detections: list[dict]) -> COCOeval | None:
    """pycocotools' COCOeval, on copies (it writes into its input); None when it cannot read an empty result list."""
    if not detections:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(copy.deepcopy(detections)), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def random_dataset(seed: int, images: int = 6, categories: int = 3, many: bool = False) -> tuple[dict, list[dict]]:
    """A COCO dataset and results: objects of every size, crowd regions, detections near objects and far, tied scores."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": c, "name": f"c{c}"} for c in (3, 1, 7)[:categories]]}
    found = []
    for i in range(images):
        image_id = 10 * (images - i)  # ids not in list order: COCO sorts them
        h, w = (int(v) for v in rng.integers(20, 140, 2))
        gt["images"].append({"id": image_id, "height": h, "width": w, "file_name": f"{image_id}.png"})
        empty = rng.random() < 0.15  # no object at all in some images
        for category in [c["id"] for c in gt["categories"]]:
            objects = [] if empty else [random_mask(rng, h, w) for _ in range(rng.integers(0, 5))]
            objects = [m for m in objects if m.any()]
            for m in objects:
                crowd = int(rng.random() < 0.15)
                area = float(m.sum()) if rng.random() < 0.8 else float(m.sum()) * rng.uniform(0.5, 1.5)  # "area" as given
                gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": category,
                                          "segmentation": coco.compress(runs(m)), "area": area, "iscrowd": crowd})
            n = int(rng.integers(0, 130 if many else 12))
            for _ in range(n):
                if objects and rng.random() < 0.6:  # a noisy copy of an object
                    m = objects[rng.integers(len(objects))].copy()
                    m ^= rng.random((h, w)) < rng.uniform(0, 0.3) * (rng.random((h, w)) < 0.3)
                else:
                    m = random_mask(rng, h, w)
                score = float(rng.choice([0.9, 0.5, 0.25])) if rng.random() < 0.3 else float(rng.random())  # ties
                found.append({"image_id": image_id, "category_id": category, "segmentation": coco.compress(runs(m)),
                              "score": score})
    return gt, found


def assert_equal_to_theirs(gt: dict, found: list[dict]) -> coco.MaskEvaluation:
    ours = coco.evaluate(gt, found)
    theirs = theirs_evaluate(gt, found)
    stats = np.array([ours.summary()[k] for k in coco.SUMMARY])
    assert np.abs(stats - theirs.stats).max() <= TOL, (stats, theirs.stats)
    assert np.abs(ours.precision - theirs.eval["precision"]).max() <= TOL
    assert np.abs(ours.recall - theirs.eval["recall"]).max() <= TOL
    return ours


@pytest.mark.parametrize("seed", range(8))
def test_mask_ap_is_cocoeval_on_random_data_sets(seed):
    gt, found = random_dataset(seed)
    assert_equal_to_theirs(gt, found)


def test_mask_ap_is_cocoeval_with_more_than_100_detections_per_image():
    gt, found = random_dataset(100, images=3, categories=2, many=True)
    per_image = max(sum(d["image_id"] == im["id"] and d["category_id"] == 3 for d in found) for im in gt["images"])
    assert per_image > 100
    ours = assert_equal_to_theirs(gt, found)
    assert ours.average_precision(max_dets=1) != ours.average_precision(max_dets=100)


def test_mask_ap_is_cocoeval_when_a_category_or_an_image_has_no_detection():
    gt, found = random_dataset(7)
    found = [d for d in found if d["category_id"] != 1 and d["image_id"] != gt["images"][0]["id"]]
    ours = assert_equal_to_theirs(gt, found)
    assert (ours.precision[:, :, ours.category_ids.index(1), 0] == 0).all()  # objects, no detection: precision 0


def test_mask_ap_is_cocoeval_with_unlisted_categories_uncompressed_ground_truth_and_all_scores_equal():
    gt, found = random_dataset(11)
    for a in gt["annotations"][::3]:
        a["segmentation"] = coco.decompress(a["segmentation"])  # COCO's crowd regions come uncompressed
    assert_equal_to_theirs(gt, found + [{**d, "category_id": 99} for d in found[:5]])  # 99: not in the dataset, left out
    assert_equal_to_theirs(gt, [{**d, "score": 0.5} for d in found])  # one big tie: the results' order decides


def test_mask_ap_when_nothing_is_found_is_0_and_without_objects_minus_1():
    gt, _ = random_dataset(3)
    assert coco.evaluate(gt, []).summary() == {k: 0.0 for k in coco.SUMMARY} | {
        k: -1.0 for k, area in zip(coco.SUMMARY, ["all", "all", "all", "small", "medium", "large"] * 2)
        if not any(lo <= a["area"] <= hi and not a["iscrowd"] for a in gt["annotations"]
                   for lo, hi in [coco.AREA_RANGES[area]])}
    no_objects = {**gt, "annotations": []}
    assert coco.evaluate(no_objects, []).summary() == {k: -1.0 for k in coco.SUMMARY}
    _, found = random_dataset(3)
    assert_equal_to_theirs(no_objects, found)


def test_a_hand_worked_case():
    """One 10 x 10 image, two objects (20 and 8 pixels) and a crowd region; four detections.

    Best first: 0.9 the first object exactly (IoU 1), 0.8 a miss, 0.8 inside the crowd region
    (ignored), 0.6 the second object's top 6 pixels (IoU 6/8 = 0.75). At thresholds up to 0.75
    the curve is hit, miss, (ignored), hit: precision 1, 1/2, 1/2, 2/3 at recall 1/2, 1/2, 1/2, 1;
    its envelope is 1 up to recall 1/2 (the points 0, ..., 0.5: 51 of 101) and 2/3 beyond (50
    points), so AP at 0.5 to 0.75 (6 thresholds) is (51 + 50 * 2/3) / 101; above, only the first
    hit counts: precision 1 on the 51 points up to recall 1/2, 0 beyond.
    """
    size = (10, 10)
    def mask(y0, y1, x0, x1):
        m = np.zeros(size, bool)
        m[y0:y1, x0:x1] = True
        return m
    objects = [mask(0, 4, 0, 5), mask(6, 10, 0, 2), mask(0, 10, 7, 10)]
    gt = {"images": [{"id": 1, "height": 10, "width": 10}], "categories": [{"id": 1}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": runs(m), "area": float(m.sum()),
                           "iscrowd": int(i == 2)} for i, m in enumerate(objects)]}
    found = [(objects[0], 0.9), (mask(5, 6, 3, 7), 0.8), (mask(2, 5, 8, 10), 0.8), (mask(6, 9, 0, 2), 0.6)]
    found = [{"image_id": 1, "category_id": 1, "segmentation": coco.compress(runs(m)), "score": s} for m, s in found]
    ours = coco.evaluate(gt, found)
    up_to_75 = (51 + 50 * 2 / 3) / 101
    assert ours.average_precision(iou=0.75) == pytest.approx(up_to_75, abs=TOL)
    assert ours.average_precision(iou=0.8) == pytest.approx(51 / 101, abs=TOL)
    assert ours.average_precision() == pytest.approx((6 * up_to_75 + 4 * 51 / 101) / 10, abs=TOL)
    assert ours.average_recall(max_dets=1) == pytest.approx(0.5, abs=TOL)
    assert ours.summary()["APm"] == -1.0  # no object of 32^2 to 96^2 pixels
    assert_equal_to_theirs(gt, found)


# --- refused input -------------------------------------------------------------------------------


@pytest.mark.parametrize("call, fragment", [
    (lambda: coco.compress({"size": [2, 2], "counts": [1, 2]}), "summing to 3; expected non-negative runs summing to h * w = 4"),
    (lambda: coco.compress({"size": [2], "counts": [4]}), "is not an RLE"),
    (lambda: coco.decompress({"size": [2, 2], "counts": "0p"}), "is not COCO's RLE text"),
    (lambda: coco.decompress({"size": [2, 2], "counts": "0a"}), "the last one without the continuation bit"),
    (lambda: coco.area([[0.0, 0.0, 1.0, 1.0, 2.0, 0.0]]), "is a polygon"),
    (lambda: coco.iou([{"size": [2, 2], "counts": [4]}], [{"size": [2, 3], "counts": [6]}], [0]), "expected one size"),
    (lambda: coco.iou([], [{"size": [2, 2], "counts": [4]}], [0, 1]), "is not 1 flags"),
    (lambda: coco.evaluate({"images": []}, []), "not a COCO dataset"),
    (lambda: coco.evaluate(random_dataset(1)[0], [{"image_id": 99}]), "image_id is not in ground_truth"),
    (lambda: coco.evaluate({**random_dataset(1)[0], "annotations": [{"id": 0}]}, []), "distinct int ids >= 1"),
    (lambda: coco.evaluate(*random_dataset(1))._mean(np.zeros(1), 0.52, "all", 100), "iou=0.52 is not one of the thresholds"),
    (lambda: coco.evaluate(*random_dataset(1)).average_precision(area="tiny"), "area='tiny' is not supported"),
    (lambda: coco.evaluate(*random_dataset(1)).average_recall(max_dets=20), "max_dets=20 is not one of COCO's limits"),
])
def test_refused_input_is_one_line_naming_the_argument(call, fragment):
    with pytest.raises(ValueError) as error:
        call()
    assert fragment in one_line(str(error.value))


def test_a_detection_of_another_size_than_its_image_is_refused():
    gt, found = random_dataset(2)
    found[0] = {**found[0], "segmentation": {"size": [3, 3], "counts": [9]}}
    with pytest.raises(ValueError, match=r"detections\[0\]'s mask is 3 x 3; expected the size of image"):
        coco.evaluate(gt, found)


def test_the_benchmark_finds_no_difference_from_cocoeval(capsys):
    from test_benchmarks import load_benchmark

    bench = load_benchmark("coco")
    bench.main(["--images", "4", "--detections", "20", "--size", "60", "80", "--repeats", "1"])
    assert capsys.readouterr().out.rstrip().endswith("largest difference of the 12 numbers 0")
