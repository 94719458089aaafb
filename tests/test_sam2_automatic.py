"""SAM 2's automatic mask generator: exact against the official ``SAM2AutomaticMaskGenerator``, its steps, its errors, ``--auto``.

Both generators run on the small model of ``tests/test_sam2.py`` (128 px input) with the same
random weights, float32 on CPU, on a 96 x 160 image. Random weights give masks that barely depend
on the click; to get masks of many shapes and stability scores between 0 and 1, the weights are
the constructors' own (noise added only where they are constant, as ``benchmarks/sam2.py`` does)
with the hypernetworks' last layers scaled up (sharper logits), and the occlusion head shifted so
the object counts as present. The thresholds are lowered so that masks survive, and set so that
every filter removes some.

Small regions: the official predictor finds them with a CUDA extension that is not built here
(without it the official code skips the step with a warning). The tests give the official code
OpenCV's ``connectedComponentsWithStats`` (8-connected, as the extension) in its place, and
compare our ``scipy.ndimage.label`` with it.
"""

from __future__ import annotations

import errno
import json
import math
import os
import warnings
from pathlib import Path

import cv2  # the test extra: the stand-in for the official CUDA kernel
import numpy as np
import pycocotools.mask as mask_utils  # the test extra: the COCO API reads our RLE
import pytest
import torch

from refimpl.sam2 import AutomaticMaskGenerator, build_sam2
from refimpl import command_io
from refimpl.sam2.automatic_mask_generator import (
    crop_boxes,
    decode_rle,
    encode_rle,
    fill_small_regions,
    mask_boxes,
    point_grid,
    stability_score,
)
from anchors.sam2_official import official_video_predictor, randomize_
from refimpl.sam2.segment import main as segment_main

from faults import one_line, snapshot

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("sam2")
    import sam2.utils.misc as official_misc
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.utils import amg as official_amg
    from sam2.utils.transforms import SAM2Transforms


TOL = 1e-5  # scores, float32 on CPU; the masks, boxes, clicks and crops are compared for equality
SMALL = dict(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), global_att_blocks=(4,), window_pos_embed_bkg_spatial_size=(4, 4),
             image_size=128, d_model=64, mem_dim=16, memory_ffn_dim=128)
H, W = 96, 160
LOWERED = dict(points_per_side=6, points_per_batch=16, pred_iou_thresh=0.49, stability_score_thresh=0.5, box_nms_thresh=0.9)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(5)
    theirs = official_video_predictor(**SMALL).eval()
    mine = build_sam2(**SMALL).eval()
    state = randomize_(theirs, seed=5, scale=0.02, constant_only=True)
    for i in range(4):  # sharper mask logits: stability scores spread over (0, 1)
        state[f"sam_mask_decoder.output_hypernetworks_mlps.{i}.layers.2.weight"] *= 100
        state[f"sam_mask_decoder.output_hypernetworks_mlps.{i}.layers.2.bias"] *= 100
    state["sam_mask_decoder.pred_obj_score_head.layers.2.bias"] += 5.0  # present: masks, not -1024
    theirs.load_state_dict(state, strict=True)
    mine.load_state_dict(state, strict=True)
    return mine, theirs


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    img = (torch.rand(H, W, 3, generator=generator) * 60).to(torch.uint8)
    img[30:60, 40:100] = torch.tensor([220, 180, 60], dtype=torch.uint8)  # objects
    img[10:40, 110:150] = torch.tensor([40, 200, 90], dtype=torch.uint8)
    img[65:90, 10:50] = torch.tensor([200, 40, 200], dtype=torch.uint8)
    return img


def opencv_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stand-in for the official CUDA kernel: ``(N, 1, h, w)`` -> 8-connected labels and each pixel's component area (0 outside)."""
    m = mask.to(torch.uint8).cpu().numpy()
    labels, areas = np.zeros(m.shape, np.int32), np.zeros(m.shape, np.int32)
    for i in range(m.shape[0]):
        _, lab, stats, _ = cv2.connectedComponentsWithStats(m[i, 0], connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
        area[0] = 0  # the background of this mask
        labels[i, 0], areas[i, 0] = lab, area[lab]
    return torch.from_numpy(labels), torch.from_numpy(areas)


@pytest.fixture
def official_components(monkeypatch):
    monkeypatch.setattr(official_misc, "get_connected_components", opencv_components)


def official_generate(theirs, image: torch.Tensor, **settings) -> list[dict]:
    generator = SAM2AutomaticMaskGenerator(theirs, **settings)
    generator.predictor._bb_feat_sizes = [(32, 32), (16, 16), (8, 8)]  # it assumes 1024 px
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Skipping the post-processing step" would be a silent difference
        return generator.generate(image.numpy())


def compare(ours: list[dict], theirs: list[dict]) -> dict[str, float]:
    """Assert the same masks in the same order; return the largest score differences."""
    assert len(ours) == len(theirs)
    diffs = {"predicted_iou": 0.0, "stability_score": 0.0}
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert sorted(a) == sorted(b)
        assert isinstance(a["segmentation"], torch.Tensor) and a["segmentation"].dtype == torch.bool
        assert np.array_equal(a["segmentation"].numpy(), b["segmentation"]), f"mask {i}"
        for key in ("area", "bbox", "point_coords", "crop_box"):
            assert a[key] == b[key], f"mask {i}: {key}"
        for key in diffs:
            diffs[key] = max(diffs[key], abs(a[key] - b[key]))
    assert all(d <= TOL for d in diffs.values()), diffs
    return diffs


CASES = {
    "whole image": dict(),
    "no NMS: every mask that passes the filters, best first": dict(box_nms_thresh=1.0),
    "one crop layer": dict(crop_n_layers=1, crop_overlap_ratio=0.25),
    "two crop layers, fewer points in each": dict(crop_n_layers=2, crop_n_points_downscale_factor=2, crop_nms_thresh=0.5),
    # With these weights the single-mask token gives a mask of nearly the whole image for every click, which the
    # refinement uses too: NMS would leave one. Without NMS, ~100 masks of different areas and scores, in order.
    "mask-to-mask refinement": dict(use_m2m=True, box_nms_thresh=1.0),
    "small regions removed": dict(min_mask_region_area=25),
    "one mask per click": dict(multimask_output=False, box_nms_thresh=1.0),
    "everything at once, no NMS: crops, refinement, small regions": dict(
        crop_n_layers=1, crop_n_points_downscale_factor=2, use_m2m=True, min_mask_region_area=25, points_per_batch=20,
        box_nms_thresh=1.0, crop_nms_thresh=1.0),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_masks_boxes_and_scores_equal_the_official_generator_in_the_same_order(pair, image, official_components, case):
    mine, theirs = pair
    settings = {**LOWERED, **CASES[case]}
    expected = official_generate(theirs, image, **settings)
    found = AutomaticMaskGenerator(mine, **settings).generate(image)
    compare(found, expected)
    assert len({(tuple(r["bbox"]), r["area"]) for r in found}) >= 3  # several different masks, not one
    if "crop layer" in case:
        assert any(r["crop_box"] != [0.0, 0.0, W, H] for r in found)  # some masks come from the crops
    if case.startswith("no NMS"):
        ious = [r["predicted_iou"] for r in found]
        assert ious == sorted(ious, reverse=True) and len(found) > 20


def test_the_filters_each_remove_masks_at_these_settings(pair, image):
    """The exactness cases are not vacuous: the IoU, stability and NMS steps each drop masks here."""
    mine, _ = pair
    def count(**settings):
        return len(AutomaticMaskGenerator(mine, **{**LOWERED, **settings}).generate(image))

    none = count(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)
    assert none == 6 * 6 * 3
    assert count(stability_score_thresh=0.0, box_nms_thresh=1.0) < none
    assert count(pred_iou_thresh=0.0, box_nms_thresh=1.0) < none
    assert count() < count(box_nms_thresh=1.0)


def test_without_its_cuda_extension_the_official_generator_keeps_small_regions_and_ours_removes_them(pair, image):
    mine, theirs = pair
    generator = SAM2AutomaticMaskGenerator(theirs, **LOWERED, min_mask_region_area=25)
    generator.predictor._bb_feat_sizes = [(32, 32), (16, 16), (8, 8)]
    with pytest.warns(UserWarning, match="Skipping the post-processing step"):
        skipped = generator.generate(image.numpy())
    compare(AutomaticMaskGenerator(mine, **LOWERED).generate(image), skipped)  # the official result: as if the area were 0
    removed = AutomaticMaskGenerator(mine, **LOWERED, min_mask_region_area=25).generate(image)
    assert [r["area"] for r in removed] != [r["area"] for r in skipped]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' own decode, under NumPy 2
def test_rle_output_modes_are_the_official_ones_and_pycocotools_decodes_them(pair, image):
    mine, theirs = pair
    binary = AutomaticMaskGenerator(mine, **LOWERED).generate(image)
    for mode in ("uncompressed_rle", "coco_rle"):
        ours = AutomaticMaskGenerator(mine, **LOWERED, output_mode=mode).generate(image)
        official = official_generate(theirs, image, **LOWERED, output_mode=mode)
        assert [r["segmentation"] for r in ours] == [r["segmentation"] for r in official]
        for record, expected in zip(ours, binary, strict=True):
            rle = record["segmentation"]
            coco = mask_utils.frPyObjects(rle, H, W) if mode == "uncompressed_rle" else {**rle, "counts": rle["counts"].encode()}
            assert np.array_equal(mask_utils.decode(coco).astype(bool), expected["segmentation"].numpy())
            assert int(mask_utils.area(coco)) == record["area"]
        json.dumps(ours)  # both RLE modes serialise as they are


# --- the steps, one by one, against the official helpers ------------------------------------------


@pytest.mark.parametrize(("size", "layers", "ratio"), [((96, 160), 1, 512 / 1500), ((1500, 2250), 2, 0.34), ((7, 5), 1, 0.9),
                                                       ((1024, 1024), 3, 0.0), ((33, 480), 2, 0.5)])
def test_crop_boxes_are_the_official_crops_in_the_official_order(size, layers, ratio):
    boxes, layer_of = official_amg.generate_crop_boxes(size, layers, ratio)
    crops = crop_boxes(*size, layers, ratio)
    assert [list(c.box) for c in crops] == boxes and [c.layer for c in crops] == layer_of


@pytest.mark.parametrize("n", [1, 2, 5, 7, 10, 32, 64, 100])
def test_the_point_grid_is_the_official_one_to_the_last_bit(n):
    assert torch.equal(point_grid(n), torch.from_numpy(official_amg.build_point_grid(n)))


def test_stability_scores_boxes_and_rles_equal_the_official_helpers():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(40, 23, 31, generator=g) * 4
    logits[0] = -9  # nothing inside even at the lower threshold: 0 / 0
    logits[1] = 9  # everything inside
    logits[2, :, :] = -9
    logits[2, 0, 0] = 9  # the first pixel alone (a run of 0 zeros first)
    for threshold, offset in [(0.0, 1.0), (0.5, 0.25), (-1.0, 3.0)]:
        ours, theirs = stability_score(logits, threshold, offset), official_amg.calculate_stability_score(logits, threshold, offset)
        assert torch.equal(ours.isnan(), theirs.isnan()) and torch.equal(ours[~ours.isnan()], theirs[~theirs.isnan()])
    masks = logits > 0
    assert torch.equal(mask_boxes(masks), official_amg.batched_mask_to_box(masks))
    assert mask_boxes(masks)[0].tolist() == [0, 0, 0, 0]
    rles = encode_rle(masks)
    assert rles == official_amg.mask_to_rle_pytorch(masks)
    for rle, mask in zip(rles, masks, strict=True):
        assert torch.equal(decode_rle(rle), mask)
        assert np.array_equal(official_amg.rle_to_mask(rle), mask.numpy())
    assert encode_rle(torch.zeros(0, 4, 4, dtype=torch.bool)) == []


def test_small_holes_and_islands_are_removed_as_the_official_predictor_does_with_8_connected_regions(monkeypatch):
    """Ours (scipy) against the official post-processing with the OpenCV stand-in, on random speckle at several densities."""
    monkeypatch.setattr(official_misc, "get_connected_components", opencv_components)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 4, 32, 32, generator=g)
    logits += torch.linspace(-2, 2, 4)[None, :, None, None]  # sparse to dense foreground
    logits[0, 0] = -1
    logits[0, 0, 5, 5] = logits[0, 0, 6, 6] = 1  # two pixels that touch only at a corner: one region of 2
    logits[0, 1] = -1
    logits[0, 1, 10:13, 10:13] = 1
    logits[0, 1, 11, 11] = -1  # a ring of 8 around a hole of 1: with area 9 the hole is filled, the ring removed
    for area in (1, 2, 5, 40):
        transforms = SAM2Transforms(resolution=128, mask_threshold=0.0, max_hole_area=area, max_sprinkle_area=area)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            expected = transforms.postprocess_masks(logits, (32, 32))  # resized to its own size: unchanged values
        assert torch.equal(fill_small_regions(logits.flatten(0, 1), area).reshape(logits.shape), expected), f"area {area}"
    assert (fill_small_regions(logits[0, :1], 1)[0, 5:7, 5:7] > 0).tolist() == [[True, False], [False, True]]  # kept: 2 > 1
    ring = fill_small_regions(logits[0, 1:2], 9)[0, 10:13, 10:13] > 0
    assert ring.tolist() == [[False] * 3, [False, True, False], [False] * 3]  # the islands are those of the input


def test_masks_near_a_crop_border_but_not_the_image_border_are_those_the_official_helper_finds():
    from refimpl.sam2.automatic_mask_generator import _touches_crop_edge

    g = torch.Generator().manual_seed(5)
    for crop in [(0, 0, 160, 96), (0, 0, 93, 57), (67, 39, 160, 96), (40, 20, 120, 80)]:
        w, h = crop[2] - crop[0], crop[3] - crop[1]
        corner = torch.randint(0, min(w, h), (500, 2), generator=g)
        size = torch.randint(0, min(w, h), (500, 2), generator=g)
        boxes = torch.cat([corner, (corner + size).clamp(max=torch.tensor([w - 1, h - 1]))], dim=1)  # (500, 4) in the crop
        expected = official_amg.is_box_near_crop_edge(boxes, list(crop), [0, 0, 160, 96])
        assert torch.equal(_touches_crop_edge(boxes, crop, (96, 160)), expected)
        assert 0 < int(expected.sum()) < 500 or crop == (0, 0, 160, 96)


# --- what is refused -----------------------------------------------------------------------------


BAD_SETTINGS = {
    "points_per_side=0": (dict(points_per_side=0), ValueError, r"points_per_side=0 is not positive"),
    "both grids": (dict(point_grids=[np.zeros((4, 2))]), ValueError, "give exactly one of points_per_side"),
    "neither grid": (dict(points_per_side=None), ValueError, "give exactly one of points_per_side"),
    "too few grids": (dict(points_per_side=None, point_grids=[np.zeros((4, 2))], crop_n_layers=1), ValueError,
                      r"point_grids holds 1 grids; expected .* \(2 with crop_n_layers=1\)"),
    "grid outside [0, 1]": (dict(points_per_side=None, point_grids=[np.full((4, 2), 1.5)]), ValueError, r"point_grids\[0\] holds values"),
    "empty grid": (dict(points_per_side=None, point_grids=[np.zeros((0, 2))]), ValueError, r"point_grids\[0\] has shape \(0, 2\)"),
    "layer without points": (dict(points_per_side=3, crop_n_layers=2, crop_n_points_downscale_factor=2), ValueError,
                             "leaves crop layer 2 without points"),
    "IoU threshold above 1": (dict(pred_iou_thresh=1.5), ValueError, "pred_iou_thresh=1.5"),
    "NaN stability threshold": (dict(stability_score_thresh=math.nan), ValueError, "stability_score_thresh=nan"),
    "negative offset": (dict(stability_score_offset=-1.0), ValueError, "stability_score_offset=-1.0"),
    "overlap of 1": (dict(crop_overlap_ratio=1.0), ValueError, r"crop_overlap_ratio=1.0 is outside \[0, 1\)"),
    "float layers": (dict(crop_n_layers=1.0), TypeError, "crop_n_layers must be an int"),
    "negative area": (dict(min_mask_region_area=-1), ValueError, "min_mask_region_area=-1 is below 0"),
    "unknown output mode": (dict(output_mode="polygon"), ValueError, "output_mode='polygon' is not supported"),
    "m2m as a string": (dict(use_m2m="yes"), TypeError, "use_m2m must be a bool"),
    "batch of 0": (dict(points_per_batch=0), ValueError, "points_per_batch=0 is not positive"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=list(BAD_SETTINGS))
def test_bad_settings_are_refused_in_one_line_naming_the_argument(pair, case):
    mine, _ = pair
    settings, error, message = BAD_SETTINGS[case]
    with pytest.raises(error, match=message) as info:
        AutomaticMaskGenerator(mine, **settings)
    assert "\n" not in str(info.value)


def test_bad_models_and_images_are_refused_in_one_line(pair):
    mine, theirs = pair
    with pytest.raises(TypeError, match="model must be a refimpl.sam2.SAM2, got SAM2VideoPredictor"):
        AutomaticMaskGenerator(theirs)
    generator = AutomaticMaskGenerator(mine, points_per_side=2, crop_n_layers=3)
    for bad, error, message in [
        (np.zeros((8, 8, 3), np.float32), TypeError, "image must be a uint8"),
        (torch.zeros(8, 8, dtype=torch.uint8), ValueError, r"image has shape \(8, 8\)"),
        (torch.zeros(0, 8, 3, dtype=torch.uint8), ValueError, r"image has shape \(0, 8, 3\)"),
        (torch.zeros(4, 4, 3, dtype=torch.uint8), ValueError, "image of 4x4 pixels is too small for crop_n_layers=3"),
    ]:
        with pytest.raises(error, match=message):
            generator.generate(bad)
    with pytest.raises(ValueError, match="is not an uncompressed COCO RLE"):
        decode_rle({"size": [2, 2], "counts": [1, 2]})


def test_coco_rle_needs_no_pycocotools(pair, image, monkeypatch):
    """refimpl.coco compresses the RLE; pycocotools is only the anchor the test above compares with."""
    import sys

    expected = AutomaticMaskGenerator(pair[0], **LOWERED, output_mode="coco_rle").generate(image)
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import fails
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
    assert AutomaticMaskGenerator(pair[0], **LOWERED, output_mode="coco_rle").generate(image) == expected


# --- sam2-segment --auto -------------------------------------------------------------------------


AUTO = ["--auto", "--points-per-side", "6", "--points-per-batch", "16", "--pred-iou-thresh", "0.49", "--stability-score-thresh", "0.5",
        "--box-nms-thresh", "0.9"]


@pytest.fixture(scope="module")
def files(pair, image, tmp_path_factory) -> dict[str, Path]:
    from PIL import Image

    mine, _ = pair
    folder = tmp_path_factory.mktemp("sam2_auto")
    paths = {"checkpoint": folder / "small.pt", "config": folder / "small.json", "image": folder / "photo.png"}
    torch.save({"model": mine.state_dict()}, paths["checkpoint"])
    paths["config"].write_text(json.dumps(SMALL), encoding="utf-8")
    Image.fromarray(image.numpy()).save(paths["image"])
    return paths


def run(capsys, files: dict[str, Path], out: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = segment_main([str(files["image"]), "--checkpoint", str(files["checkpoint"]), "--config", str(files["config"]),
                         "--out", str(out), "--device", "cpu", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_auto_writes_every_mask_as_a_png_and_the_records_as_json_and_never_overwrites(pair, image, files, tmp_path, capsys):
    from PIL import Image

    mine, _ = pair
    out = tmp_path / "objects"
    code, printed, err = run(capsys, files, out, *AUTO, "--crop-n-layers", "1", "--crop-overlap-ratio", "0.25")
    assert code == 0, err
    expected = AutomaticMaskGenerator(mine, **LOWERED, crop_n_layers=1, crop_overlap_ratio=0.25).generate(image)
    document = json.loads((out / "photo_auto.json").read_text(encoding="utf-8"))
    assert document["image"] == {"file_name": "photo.png", "height": H, "width": W}
    assert document["settings"]["crop_n_layers"] == 1 and document["settings"]["crop_overlap_ratio"] == 0.25
    assert document["settings"]["crop_nms_thresh"] == 0.7  # the official default, recorded
    records = document["annotations"]
    assert len(records) == len(expected) >= 3
    assert sorted(p.name for p in out.iterdir()) == sorted(["photo_auto.json", *(f"photo_auto{i}.png" for i in range(len(records)))])
    for i, (record, want) in enumerate(zip(records, expected, strict=True)):
        png = np.array(Image.open(out / record["mask_file"]))
        assert record["mask_file"] == f"photo_auto{i}.png" and png.dtype == np.uint8 and set(np.unique(png)) <= {0, 255}
        assert np.array_equal(png == 255, want["segmentation"].numpy())
        assert torch.equal(decode_rle(record["segmentation"]), want["segmentation"])
        assert {k: record[k] for k in ("area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box")} == \
            {k: want[k] for k in ("area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box")}
    assert len(printed.splitlines()) == len(records) + 1 and f"{len(records)} masks" in printed
    before = snapshot(out)
    code, printed, err = run(capsys, files, out, *AUTO)
    assert code == 2 and "already exist; nothing was written" in one_line(err) and printed == ""
    assert snapshot(out) == before


def test_auto_with_a_write_that_fails_halfway_leaves_nothing_and_the_rerun_works(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "objects"
    out.mkdir()
    (out / "mine.txt").write_text("the user's own file")
    real, calls = command_io._link_new, []

    def third_fails(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(command_io, "_link_new", third_fails)
    code, _, err = run(capsys, files, out, *AUTO)
    assert code == 2 and "No space left on device; nothing was written" in one_line(err)
    assert snapshot(out) == {"mine.txt": b"the user's own file"}
    monkeypatch.setattr(command_io, "_link_new", real)
    assert run(capsys, files, out, *AUTO)[0] == 0
    assert "photo_auto.json" in {p.name for p in out.iterdir()}


AUTO_ERRORS = {
    "--auto with a click": (["--auto", "--point", "5,5"], "--auto finds every object without a prompt; drop --point"),
    "--auto with a box": (["--auto", "--box", "1,1,9,9"], "drop --box"),
    "--auto with --best": (["--auto", "--best"], "drop --best"),
    "a setting without --auto": (["--point", "5,5", "--points-per-side", "8"], "--points-per-side is a setting of automatic mode; add --auto"),
    "--use-m2m without --auto": (["--box", "1,1,9,9", "--use-m2m"], "--use-m2m is a setting of automatic mode"),
    "0 points per side": (["--auto", "--points-per-side", "0"], "--points-per-side '0': expected an int >= 1, e.g. 32"),
    "a fractional count": (["--auto", "--points-per-batch", "2.5"], "--points-per-batch '2.5': expected an int >= 1"),
    "an IoU threshold of 2": (["--auto", "--pred-iou-thresh", "2"], "--pred-iou-thresh '2': expected a number in [0, 1]"),
    "NaN stability": (["--auto", "--stability-score-thresh", "nan"], "--stability-score-thresh 'nan': expected a number in [0, 1]"),
    "an overlap of 1": (["--auto", "--crop-overlap-ratio", "1"], "--crop-overlap-ratio 1.0 is outside [0, 1)"),
    "a layer without points": (["--auto", "--points-per-side", "2", "--crop-n-layers", "2", "--crop-n-points-downscale-factor", "2"],
                               "--points-per-side 2 with --crop-n-points-downscale-factor 2 leaves crop layer 2 without points; expected --points-per-side >= 4"),
    "too many crop layers": (["--auto", "--crop-n-layers", "8", "--points-per-side", "1"],
                             "image of 160x96 pixels is too small for --crop-n-layers 8"),
    "no prompt and no --auto": ([], "give a prompt: --point X,Y"),
}


@pytest.mark.parametrize("case", AUTO_ERRORS, ids=list(AUTO_ERRORS))
def test_bad_auto_usage_is_one_line_and_exit_2_and_writes_nothing(files, tmp_path, capsys, case):
    extra, message = AUTO_ERRORS[case]
    code, printed, err = run(capsys, files, tmp_path / "objects", *extra)
    assert code == 2 and message in one_line(err) and printed == ""
    assert not (tmp_path / "objects").exists()


def test_auto_finding_nothing_writes_an_empty_record_list(files, tmp_path, capsys):
    out = tmp_path / "objects"
    code, printed, _ = run(capsys, files, out, "--auto", "--points-per-side", "2", "--pred-iou-thresh", "1")
    assert code == 0 and printed.strip().endswith("0 masks")
    assert [p.name for p in out.iterdir()] == ["photo_auto.json"]
    assert json.loads((out / "photo_auto.json").read_text())["annotations"] == []
