"""Time refimpl.coco's mask AP against pycocotools' COCOeval on a generated data set.

Both read the same COCO dataset and results (compressed RLE, as a results file holds them):
default 200 images of 480 x 640 with 2 categories, about 4 objects of each per image (some of
them crowd regions), and 50 detections per image (noisy copies of the objects and stray
blobs). Ours: ``coco.evaluate`` and ``summary``; theirs: ``COCO``, ``loadRes``, ``evaluate``,
``accumulate``, ``summarize`` (its printing silenced). Each timing is the best of
``--repeats`` runs, in wall-clock seconds and in CPU seconds of this process (steadier on a
shared machine; both are single-threaded); the largest difference of the 12 summary numbers is
printed too:

    .venv/bin/python benchmarks/coco.py
    .venv/bin/python benchmarks/coco.py --images 50 --detections 100 --repeats 1
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time
from importlib.metadata import version

import numpy as np
import torch

from refimpl import coco
from refimpl.sam2.automatic_mask_generator import encode_rle


def ellipse(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(3, h / 4), rng.uniform(3, w / 4)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def rle(mask: np.ndarray) -> dict:
    """A mask -> its compressed COCO RLE."""
    return coco.compress(encode_rle(torch.from_numpy(mask)[None])[0])


def make_dataset(images: int, detections: int, h: int, w: int, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    found = []
    for image_id in range(1, images + 1):
        gt["images"].append({"id": image_id, "height": h, "width": w})
        objects = []
        for category in (1, 2):
            for _ in range(rng.integers(1, 8)):
                m = ellipse(rng, h, w)
                objects.append((m, category))
                gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": category,
                                          "segmentation": rle(m), "area": float(m.sum()), "iscrowd": int(rng.random() < 0.05)})
        for _ in range(detections):
            if rng.random() < 0.7:
                m, category = objects[rng.integers(len(objects))]
                m = np.roll(m, tuple(rng.integers(-8, 9, 2)), axis=(0, 1))
            else:
                m, category = ellipse(rng, h, w), int(rng.integers(1, 3))
            found.append({"image_id": image_id, "category_id": category, "segmentation": rle(m), "score": float(rng.random())})
    return gt, found


def theirs(gt: dict, found: list[dict]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = copy.deepcopy(gt)  # COCOeval writes into both
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(copy.deepcopy(found)), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


def ours(gt: dict, found: list[dict]) -> np.ndarray:
    summary = coco.evaluate(gt, found).summary()
    return np.array([summary[k] for k in coco.SUMMARY])


def best(fn, gt: dict, found: list[dict], repeats: int) -> tuple[float, float, np.ndarray]:
    """The best wall-clock and CPU seconds of ``repeats`` runs, and the result."""
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn(gt, found)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--detections", type=int, default=50, help="per image")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    gt, found = make_dataset(args.images, args.detections, *args.size)
    print(f"{args.images} images of {args.size[0]} x {args.size[1]}, {len(gt['annotations'])} objects, "
          f"{len(found)} detections; pycocotools {version('pycocotools')}")
    ours_s, ours_cpu, ours_stats = best(ours, gt, found, args.repeats)
    theirs_s, theirs_cpu, theirs_stats = best(theirs, gt, found, args.repeats)
    print(f"{'':<14}{'wall s':>8}{'CPU s':>8}")
    print(f"{'refimpl.coco':<14}{ours_s:>8.3f}{ours_cpu:>8.3f}")
    print(f"{'pycocotools':<14}{theirs_s:>8.3f}{theirs_cpu:>8.3f}")
    print(f"ours/theirs {ours_s / theirs_s:.2f} (wall), {ours_cpu / theirs_cpu:.2f} (CPU); "
          f"largest difference of the 12 numbers {np.abs(ours_stats - theirs_stats).max():.3g}")


if __name__ == "__main__":
    main()
