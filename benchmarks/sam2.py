"""SAM 2 at a released size: refimpl's distance from the official ``sam2`` package, and both speeds side by side.

Both models get the same random weights (the official initialisation, with noise added to every
tensor it leaves constant, and the occlusion head shifted so the object counts as present) and
the same inputs, at the released image size (1024 px).

- **Parity** (``--parity``, on by default): the largest absolute difference of every output:
  trunk stages, neck levels and position tables; masks, IoU and object score for one click and
  for a box (official ``SAM2ImagePredictor``); memory attention over 1 + 6 memory frames and
  pointers; and a 4-frame video after a click on frame 0 (official ``SAM2VideoPredictor`` on a
  synthetic clip): masks, object pointers, object scores and memories, frame by frame.
- **Speed**: the image encoder on one frame, and one tracking step (a frame attending to one
  prompted and six recent memories and their pointers, then the decoder and the memory
  encoder); median milliseconds of alternating rounds, and the speed ratio ours/official.
- **Automatic mode** (``--auto``, instead of the two parts above): ``AutomaticMaskGenerator``
  against the official ``SAM2AutomaticMaskGenerator`` on one ``H x W`` image with a reduced grid
  (``--points-per-side``, 8 by default): the masks (how many, whether identical, in the same
  order), the largest score differences, and the time of one ``generate`` call each. Two
  settings: every candidate kept (thresholds 0, no NMS: every mask is upsampled, filtered and
  encoded, the most work for both) and the official defaults (random weights predict IoUs near
  0.5, so the IoU filter drops nearly every candidate before it is upsampled: ours only
  upsamples the candidates that pass, the official code upsamples all three masks of every click).

Not a test: run it by hand and quote the output with the command::

    .venv/bin/python benchmarks/sam2.py                          # Hiera-T, 1024 px, CPU, float32
    .venv/bin/python benchmarks/sam2.py --size base_plus --no-parity
    .venv/bin/python benchmarks/sam2.py --device cuda --dtype bfloat16 --no-parity
    .venv/bin/python benchmarks/sam2.py --auto --runs 3             # automatic mode, Hiera-T, 720 x 1280 image
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# This file is itself named sam2.py: take its folder off the path so "import sam2" finds the package.
sys.path = [p for p in sys.path if p != sys.path[0] or not p.endswith("benchmarks")]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the anchors' builders

from refimpl.sam2 import SIZES, MemoryBank, build_sam2, to_model_coords  # noqa: E402
from anchors.sam2_official import official_video_predictor, randomize_, write_synthetic_clip  # noqa: E402

def diff(a: torch.Tensor, b: torch.Tensor | np.ndarray) -> float:
    return (a.float().cpu() - torch.as_tensor(b).float().cpu()).abs().max().item()


def parity(mine: torch.nn.Module, theirs: torch.nn.Module, device: str, H: int = 720, W: int = 1280) -> dict[str, float]:
    """Largest absolute differences, per output; the image and the clip are ``H x W``."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    out: dict[str, float] = {}
    S = mine.image_size
    x = torch.randn(1, 3, S, S, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        for i, (a, b) in enumerate(zip(mine.image_encoder.trunk(x), theirs.image_encoder.trunk(x))):
            out[f"trunk stage {i + 1}"] = diff(a, b)
        ours_f, theirs_f = mine.encode_image(x), theirs.forward_image(x)
        for i, (a, b) in enumerate(zip(ours_f.backbone_fpn, theirs_f["backbone_fpn"])):
            out[f"neck level {i} (stride {4 * 2**i})"] = diff(a, b)
        out["neck position tables"] = max(diff(a, b) for a, b in zip(ours_f.vision_pos_enc, theirs_f["vision_pos_enc"]))

        image = (torch.rand(H, W, 3, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
        predictor = SAM2ImagePredictor(theirs)
        predictor._bb_feat_sizes = [(S // 4, S // 4), (S // 8, S // 8), (S // 16, S // 16)]  # it assumes 1024 px
        predictor.set_image(image.numpy())
        features = mine.encode_image(mine.preprocess(image.to(device)))
        click = np.array([[W * 0.3, H * 0.4]])
        box = np.array([W * 0.2, H * 0.2, W * 0.6, H * 0.7])
        for name, kwargs in [("click", dict(point_coords=click, point_labels=np.array([1]), multimask_output=True)),
                             ("box", dict(box=box, multimask_output=False))]:
            masks, iou, _ = predictor.predict(return_logits=True, **kwargs)
            pts = to_model_coords(torch.tensor(click, dtype=torch.float32, device=device), (H, W), S)[None] if name == "click" else None
            bx = (to_model_coords(torch.tensor(box, dtype=torch.float32, device=device).reshape(2, 2), (H, W), S).reshape(1, 4)
                  if name == "box" else None)
            labels = torch.tensor([[1]], device=device) if name == "click" else None
            pred = mine.predict(features, pts, labels, bx, multimask_output=kwargs["multimask_output"])
            out[f"{name}: masks at image size"] = diff(F.interpolate(pred.masks, (H, W), mode="bilinear", align_corners=False)[0], masks)
            out[f"{name}: IoU"] = diff(pred.iou[0], iou)
            corners = torch.tensor(box, dtype=torch.float32).reshape(1, 2, 2) if name == "box" else torch.tensor(click, dtype=torch.float32)[None]
            corner_labels = torch.tensor([[2, 3]] if name == "box" else [[1]], dtype=torch.int32)
            coords = to_model_coords(corners, (H, W), S).to(device)
            sparse, dense = theirs.sam_prompt_encoder(points=(coords, corner_labels.to(device)), boxes=None, masks=None)
            feats = predictor._features
            *_, score = theirs.sam_mask_decoder(image_embeddings=feats["image_embed"], image_pe=theirs.sam_prompt_encoder.get_dense_pe(),
                                                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                                multimask_output=kwargs["multimask_output"], repeat_image=False,
                                                high_res_features=feats["high_res_feats"])
            out[f"{name}: object score"] = diff(pred.object_score_logits, score)

        g = torch.Generator().manual_seed(2)
        hw, P = (S // 16) ** 2, 4 * 7
        cur, cur_pos = (torch.randn(hw, 1, 256, generator=g).to(device) for _ in range(2))
        mem, mem_pos = (torch.randn(7 * hw + P, 1, 64, generator=g).to(device) for _ in range(2))
        a = mine.memory_attention(cur.transpose(0, 1), cur_pos.transpose(0, 1), mem.transpose(0, 1), mem_pos.transpose(0, 1), P)
        out["memory attention (7 frames + 7 pointers)"] = diff(a, theirs.memory_attention(cur, mem, cur_pos, mem_pos, P).transpose(0, 1))

    with tempfile.TemporaryDirectory() as folder, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_synthetic_clip(Path(folder), 4, H, W)
        state = theirs.init_state(folder)
        click = torch.tensor([[W * 0.25, H * 0.45]])
        theirs.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=click.numpy(), labels=np.array([1]))
        their_masks = {t: m for t, _, m in theirs.propagate_in_video(state)}
        their_frames = state["output_dict_per_obj"][0]
        bank = MemoryBank()
        for t in range(4):
            feats = mine.encode_image(state["images"][t : t + 1].float().to(device))
            prompt = dict(points=to_model_coords(click, (H, W), S)[None].to(device), labels=torch.tensor([[1]], device=device)) if t == 0 else {}
            step = mine.track_step(t, feats, bank, num_frames=4, **prompt)
            ref = their_frames["cond_frame_outputs"].get(t) or their_frames["non_cond_frame_outputs"][t]
            masks = F.interpolate(step.masks, (H, W), mode="bilinear", align_corners=False)
            out[f"video frame {t}: masks"] = diff(masks, their_masks[t])
            out[f"video frame {t}: object pointer"] = diff(step.obj_ptr, ref["obj_ptr"])
            out[f"video frame {t}: object score"] = diff(step.object_score_logits, ref["object_score_logits"])
            out[f"video frame {t}: memory (bfloat16)"] = diff(step.memory.features, ref["maskmem_features"])
    return out


def median_ms(calls: dict[str, Callable[[], object]], warmup: int, runs: int, device: str) -> dict[str, float]:
    """Median milliseconds of each call, timed in rounds that alternate the order (no side is favoured by load or caches)."""
    def timed(call: Callable[[], object]) -> float:
        start = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000

    for call in calls.values():
        for _ in range(warmup):
            timed(call)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(runs):
        for key in list(calls) if round_ % 2 == 0 else list(reversed(calls)):
            times[key].append(timed(calls[key]))
    return {k: statistics.median(v) for k, v in times.items()}


def speed(mine: torch.nn.Module, theirs: torch.nn.Module, device: str, dtype: torch.dtype | None, warmup: int, runs: int) -> list[tuple[str, float, float]]:
    """``(what, ours ms, official ms)`` for the image encoder and a tracking step."""
    S = mine.image_size
    x = torch.randn(1, 3, S, S, generator=torch.Generator().manual_seed(3)).to(device)
    autocast = torch.autocast(device, dtype=dtype, enabled=dtype is not None)
    rows = []
    with torch.inference_mode(), autocast:
        rows.append(("image encoder", *median_ms({"ours": lambda: mine.encode_image(x), "official": lambda: theirs.forward_image(x)},
                                                 warmup, runs, device).values()))
        features = mine.encode_image(x)
        _, vision, vision_pos, sizes = theirs._prepare_backbone_features(theirs.forward_image(x))
        click = torch.tensor([[[S * 0.3, S * 0.4]]], device=device)
        bank, history = MemoryBank(), {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        for t in range(7):  # one prompted frame, six tracked ones
            prompt = dict(points=click, labels=torch.ones(1, 1, dtype=torch.int32, device=device)) if t == 0 else {}
            mine.track_step(t, features, bank, num_frames=8, **prompt)
            points = {"point_coords": click, "point_labels": prompt["labels"]} if t == 0 else None
            key = "cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"
            history[key][t] = theirs.track_step(t, t == 0, vision, vision_pos, sizes, points, None, history, 8)
        rows.append(("tracking step (7 memories)", *median_ms({
            "ours": lambda: mine.track_step(7, features, bank, num_frames=8),
            "official": lambda: theirs.track_step(7, False, vision, vision_pos, sizes, None, None, history, 8),
        }, warmup, runs, device).values()))
    return rows


AUTO_SETTINGS = {
    "every candidate kept": dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0),
    "official defaults": dict(),
}
"""The automatic mode's two settings (with ``points_per_side`` and ``points_per_batch`` added)."""


def automatic(mine: torch.nn.Module, theirs: torch.nn.Module, device: str, H: int, W: int, points_per_side: int,
              check: bool, warmup: int, runs: int) -> tuple[dict[str, str], list[tuple[str, float, float]]]:
    """Automatic mode on one ``H x W`` image: ``(parity rows, [(setting, ours ms, official ms)])``."""
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    from refimpl.sam2 import AutomaticMaskGenerator

    S = mine.image_size
    image = (torch.rand(H, W, 3, generator=torch.Generator().manual_seed(4)) * 60).to(torch.uint8)
    image[H // 4 : H // 2, W // 5 : W // 2] = torch.tensor([220, 180, 60], dtype=torch.uint8)  # two objects
    image[H // 2 : 7 * H // 8, 3 * W // 5 : 4 * W // 5] = torch.tensor([40, 200, 90], dtype=torch.uint8)
    parity: dict[str, str] = {}
    rows = []
    for name, settings in AUTO_SETTINGS.items():
        settings = dict(settings, points_per_side=points_per_side, points_per_batch=64)
        ours = AutomaticMaskGenerator(mine, **settings)
        official = SAM2AutomaticMaskGenerator(theirs, **settings)
        official.predictor._bb_feat_sizes = [(S // 4, S // 4), (S // 8, S // 8), (S // 16, S // 16)]  # it assumes 1024 px
        if check:
            a, b = ours.generate(image), official.generate(image.numpy())
            same = len(a) == len(b) and all(
                np.array_equal(x["segmentation"].cpu().numpy(), y["segmentation"])
                and all(x[k] == y[k] for k in ("area", "bbox", "point_coords", "crop_box")) for x, y in zip(a, b))
            parity[f"auto, {name}: masks ours / official"] = f"{len(a)} / {len(b)}"
            parity[f"auto, {name}: same masks, boxes, clicks, crops, same order"] = "yes" if same else "NO"
            for key in ("predicted_iou", "stability_score"):
                value = max((abs(x[key] - y[key]) for x, y in zip(a, b)), default=0.0)
                parity[f"auto, {name}: {key}"] = f"{value:.3g}"
        times = median_ms({"ours": lambda: ours.generate(image), "official": lambda: official.generate(image.numpy())},
                          warmup, runs, device)
        rows.append((f"automatic mode, {name} ({points_per_side}x{points_per_side} clicks, {H}x{W})", times["ours"], times["official"]))
    return parity, rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="tiny")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="autocast dtype of the speed part")
    parser.add_argument("--parity", action=argparse.BooleanOptionalAction, default=True, help="print the differences first")
    parser.add_argument("--frame-size", type=int, nargs=2, default=(720, 1280), metavar=("H", "W"),
                        help="size of the synthetic image and clip of the parity part (default: 720 1280)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--auto", action="store_true", help="automatic mode instead of the parts: parity and speed of generate()")
    parser.add_argument("--points-per-side", type=int, default=8, help="automatic mode's grid (default 8: 64 clicks)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")

    config = dict(SIZES[args.size], image_size=args.image_size)
    torch.manual_seed(0)
    theirs = official_video_predictor(**config).to(args.device).eval()
    mine = build_sam2(**config).eval()
    state = randomize_(theirs.cpu(), seed=0, scale=0.02, constant_only=True)  # realistic scales: no subnormal activations
    state["sam_mask_decoder.pred_obj_score_head.layers.2.bias"] += 1.0  # the object is present: masks, not -1024
    mine.load_state_dict(state, strict=True)
    theirs.to(args.device), mine.to(args.device)
    print(f"SAM 2.1 Hiera-{args.size} at {args.image_size} px, {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.auto:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the official transforms' torch.jit.script deprecation
            parity_rows, rows = automatic(mine, theirs, args.device, *args.frame_size, args.points_per_side, args.parity,
                                          args.warmup, args.runs)
        if args.parity:
            print("\n| automatic mode | ours vs official |\n| --- | --- |")
            for name, value in parity_rows.items():
                print(f"| {name} | {value} |")
        print("\n| float32 | ours ms | official ms | ours/official speed |\n| --- | --- | --- | --- |")
        for name, ours_ms, theirs_ms in rows:
            print(f"| {name} | {ours_ms:.1f} | {theirs_ms:.1f} | {theirs_ms / ours_ms:.2f}x |")
        return
    if args.parity:
        print("\n| output | max abs difference |\n| --- | --- |")
        for name, value in parity(mine, theirs, args.device, *args.frame_size).items():
            print(f"| {name} | {value:.3g} |")
    dtype = None if args.dtype == "float32" else getattr(torch, args.dtype)
    print(f"\n| {args.dtype} | ours ms | official ms | ours/official speed |\n| --- | --- | --- | --- |")
    for name, ours_ms, theirs_ms in speed(mine, theirs, args.device, dtype, args.warmup, args.runs):
        print(f"| {name} | {ours_ms:.1f} | {theirs_ms:.1f} | {theirs_ms / ours_ms:.2f}x |")


if __name__ == "__main__":
    main()
