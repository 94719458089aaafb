"""``sam2-segment``: segment an image from clicks or a box with official SAM 2 weights, masks as PNGs.

```text
sam2-segment photo.jpg --checkpoint sam2.1_hiera_large.pt --point 420,310
sam2-segment photo.jpg --checkpoint sam2.1_hiera_tiny.pt --box 100,80,600,500 --out masks/
sam2-segment photo.jpg --checkpoint sam2_hiera_small.pt --point 420,310 --negative 500,300 --best
sam2-segment photo.jpg --checkpoint sam2.1_hiera_large.pt --auto --points-per-side 16 --out objects/
```

Coordinates are pixels of the image **as a photo viewer shows it**: ``x`` to the right, ``y``
down, origin at the top-left corner, after the rotation the photo's EXIF orientation asks for
(a phone photo stored sideways is turned upright first, as every viewer does). A click must
lie inside the image (``0 <= x < W``, ``0 <= y < H``); a box must have ``x0 < x1``, ``y0 < y1``
and lie inside too (``0 <= x0 < x1 <= W``): a box partly outside is refused, not clipped.
Negative numbers may follow the flag directly (``--box -5,0,90,60`` is read as a value, and
refused as outside).

How the image is read ([`read_image`][refimpl.command_io.read_image]): EXIF orientation
applied; 8-bit images as they are; 16-bit greyscale (PNG, TIFF) scaled to 8 bits
(``round(v / 257)``); 32-bit integer images read as 16-bit when their values lie in
``0..65535``, refused otherwise; floating-point images scaled from ``[0, 1]``, refused outside
it; palette images through their palette; an alpha channel is dropped (the colours under it
are kept); CMYK converted without a colour profile; colour profiles are not applied; the first
frame of an animation. Other modes (e.g. LAB) are refused with one line.

The size and version (SAM 2 or SAM 2.1) are read from the checkpoint; ``--config FILE.json``
gives the [`build_sam2`][refimpl.sam2.build.build_sam2] arguments of another model instead. One
click alone gives three candidate masks (the click is ambiguous), anything more one mask;
``--best`` keeps only the mask with the highest predicted IoU. Masks are written as 8-bit PNGs
(255 inside, 0 outside) at the size and orientation of the image as shown, named
``<image stem>_mask<i>.png``.

``--auto`` finds every object instead, with no prompt: the
[automatic mask generator][refimpl.sam2.automatic_mask_generator.AutomaticMaskGenerator] clicks a
grid of points and keeps the distinct, confident masks. Its settings are flags named after its
arguments (``--points-per-side 16``, ``--pred-iou-thresh 0.7``, ``--crop-n-layers 1``,
``--use-m2m``, ...; the official defaults otherwise). Every mask is written as
``<image stem>_auto<i>.png``, and ``<image stem>_auto.json`` holds the records in the order of
the masks: for each, its PNG, its uncompressed COCO RLE (``{"size": [H, W], "counts": [...]}``,
pycocotools reads it), area, box ``[x, y, w, h]``, predicted IoU, stability score, click and
crop box.

Nothing is overwritten: if a mask file exists, nothing is written. Each file is written to a
temporary name and linked into place; if one cannot be written (a full or read-only disk), the
masks this run wrote are removed again: all masks or none. Exit codes: 0 done, 2 bad usage,
unreadable input, a file in the way or a write that failed (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import checks
from ..checkpoints import load_state, read_state_dict
from ..command_io import (
    OneLineParser,
    UsageError,
    encode_png,
    one_line,
    out_problem,
    parse_device,
    read_image,
    read_json_config,
    run_command,
    write_all_or_none,
)
from .automatic_mask_generator import AutomaticMaskGenerator, decode_rle
from .build import SIZES, SAM2Config, build_sam2
from .image_predictor import to_model_coords
from .model import SAM2

__all__ = ["main", "model_for_checkpoint", "segment_image"]

_SIZES = {(size["embed_dim"], sum(size["stages"])): size for size in SIZES.values()}
"""(stage-1 width, blocks) -> the released size's arguments; both are read from the checkpoint's trunk."""

_CONFIG_FIELDS = sorted(field.name for field in dataclasses.fields(SAM2Config))
"""What ``--config`` may set: the fields of ``SAM2Config``."""


def model_for_checkpoint(state: dict[str, Tensor], config: dict | None = None) -> SAM2:
    """The SAM 2 model a state dict was saved from: one of the four released sizes, SAM 2 or SAM 2.1.

    Args:
        state: official keys (``image_encoder.trunk.patch_embed.proj.weight`` tells the width,
            the ``image_encoder.trunk.blocks.N`` keys the depth; ``no_obj_embed_spatial`` is
            only in SAM 2.1).
        config: [`build_sam2`][refimpl.sam2.build.build_sam2] arguments for another model.

    Returns:
        The model (random weights; load ``state`` into it).

    Raises:
        UsageError: if the state dict is not one of the released sizes and no ``config`` is given.
        TypeError: if ``config`` holds a value of the wrong type (from ``build_sam2``).
        ValueError: if ``config`` holds a wrong value (from ``build_sam2``).
    """
    version = "2.1" if "no_obj_embed_spatial" in state else "2"
    if config is not None:
        return build_sam2(**{"version": version, **config})
    patch = state.get("image_encoder.trunk.patch_embed.proj.weight")
    blocks = {k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")}
    key = (int(patch.shape[0]) if patch is not None else -1, len(blocks))
    if key not in _SIZES:
        raise UsageError(
            f"the checkpoint is not one of the released SAM 2 sizes (stage-1 width {key[0]}, {key[1]} blocks); "
            f"pass --config FILE.json with its build_sam2 arguments"
        )
    return build_sam2(**_SIZES[key], version=version)


def segment_image(
    model: SAM2, image: Tensor, points: Tensor | None, labels: Tensor | None, box: Tensor | None, multimask: bool
) -> tuple[Tensor, Tensor]:
    """Masks of one image at its own size, as the official ``SAM2ImagePredictor`` gives them.

    Args:
        model: SAM 2, in eval mode.
        image: ``(H, W, 3)`` uint8 RGB.
        points: ``(P, 2)`` pixel coordinates of ``image``, or ``None``.
        labels: ``(P,)``: 1 positive, 0 negative.
        box: ``(4,)`` ``x0, y0, x1, y1`` in pixels of ``image``, or ``None``.
        multimask: three candidates or one.

    Returns:
        ``(masks (M, H, W) bool, iou (M,))``.
    """
    H, W = image.shape[:2]
    device = next(model.parameters()).device
    features = model.encode_image(model.preprocess(image.to(device)))
    pts = to_model_coords(points.to(device), (H, W), model.image_size)[None] if points is not None else None
    lab = labels.to(device)[None] if labels is not None else None
    bx = to_model_coords(box.to(device).reshape(2, 2), (H, W), model.image_size).reshape(1, 4) if box is not None else None
    out = model.predict(features, pts, lab, bx, multimask_output=multimask)
    logits = F.interpolate(out.masks, (H, W), mode="bilinear", align_corners=False)  # (1, M, H, W)
    return (logits[0] > 0).cpu(), out.iou[0].cpu()


# --- reading the image ---------------------------------------------------------------------------


# --- arguments -----------------------------------------------------------------------------------


def _numbers(text: str, count: int, flag: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        what = "numbers" if len(values) != count else "numbers, finite"
        raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected {count} comma-separated {what}, e.g. "
                                         f"{'420,310' if count == 2 else '100,80,600,500'}")
    return values


_VALUE_FLAGS = ("--point", "--negative", "--box")
_NEGATIVE = re.compile(r"-\.?\d[\d.,eE+-]*")


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--box -100,80,600,500`` -> ``--box=-100,80,600,500``: argparse would take ``-100,...`` for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":
            return out + list(argv[i:])
        if argv[i] in _VALUE_FLAGS and i + 1 < len(argv) and _NEGATIVE.fullmatch(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


_EPILOG = """\
coordinates: pixels of the image as a photo viewer shows it: x to the right, y down, origin at
the top-left corner, after the rotation its EXIF orientation asks for. A click must lie inside
(0 <= x < W, 0 <= y < H); a box must have X0 < X1, Y0 < Y1 and lie inside (0 <= X0 < X1 <= W):
a box partly outside is refused, not clipped. Negative values may follow the flag directly.

image: EXIF orientation applied; 16-bit greyscale scaled to 8 bits (v / 257), 32-bit integer
images read as 16-bit (values 0..65535), float images from [0, 1]; palette images through
their palette; an alpha channel is dropped; CMYK converted without a colour profile; colour
profiles are not applied; the first frame of an animation. Masks are PNGs at the size and
orientation of the image as shown.

automatic mode (--auto): every object, from a grid of clicks, with the settings of the
official SAM2AutomaticMaskGenerator (its defaults unless a flag is given). Writes
<stem>_auto<i>.png per mask and <stem>_auto.json with the records (RLE, area, box, scores).

exit codes: 0 done, 2 bad usage, unreadable input, a file in the way or a failed write (one
line on stderr; a failed write leaves none of this run's masks behind).
"""


def _auto_setting(kind: type, flag: str, minimum: float, maximum: float | None, example: str):
    """An argparse type: a number of ``kind`` for an automatic-mode flag, in ``[minimum, maximum]``, one-line refusal otherwise."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            what = f"an int >= {minimum:g}" if kind is int else (f"a number in [{minimum:g}, {maximum:g}]" if maximum is not None
                                                                 else f"a number >= {minimum:g}")
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected {what}, e.g. {example}")
        return value
    return parse


_AUTO_FLAGS: dict[str, tuple[type, float, float | None, str]] = {
    "--points-per-side": (int, 1, None, "32"),
    "--points-per-batch": (int, 1, None, "64"),
    "--pred-iou-thresh": (float, 0, 1, "0.8"),
    "--stability-score-thresh": (float, 0, 1, "0.95"),
    "--stability-score-offset": (float, 0, None, "1.0"),
    "--box-nms-thresh": (float, 0, 1, "0.7"),
    "--crop-n-layers": (int, 0, None, "0"),
    "--crop-nms-thresh": (float, 0, 1, "0.7"),
    "--crop-overlap-ratio": (float, 0, 1, "0.341"),
    "--crop-n-points-downscale-factor": (int, 1, None, "1"),
    "--min-mask-region-area": (int, 0, None, "0"),
}
"""Automatic-mode flags: (type, minimum, maximum, official default); each sets the AutomaticMaskGenerator argument of its name."""

_AUTO_RECORDED = [flag[2:].replace("-", "_") for flag in _AUTO_FLAGS] + ["mask_threshold", "use_m2m", "multimask_output"]
"""The generator settings written into ``<stem>_auto.json``, defaults included."""


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sam2-segment", description="Segment an image from clicks or a box with SAM 2 weights.",
                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path, help="the image (any format Pillow reads; see 'image' below)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="official SAM 2 / SAM 2.1 weights (.pt), or ours")
    parser.add_argument("--point", action="append", default=[], type=lambda t: _numbers(t, 2, "--point"), metavar="X,Y",
                        help="a positive click (repeatable)")
    parser.add_argument("--negative", action="append", default=[], type=lambda t: _numbers(t, 2, "--negative"), metavar="X,Y",
                        help="a negative click: not the object (repeatable)")
    parser.add_argument("--box", type=lambda t: _numbers(t, 4, "--box"), metavar="X0,Y0,X1,Y1", help="a box around the object")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the PNGs, created if needed (default: here)")
    parser.add_argument("--best", action="store_true", help="write only the mask with the highest predicted IoU")
    parser.add_argument("--config", type=Path, help="JSON object of build_sam2 arguments, for a model that is not a released size")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda if there is one, else cpu)")
    auto = parser.add_argument_group("automatic mode", "every object, no prompt (the official SAM2AutomaticMaskGenerator)")
    auto.add_argument("--auto", action="store_true", help="find every object from a grid of clicks; writes <stem>_auto<i>.png "
                                                          "and <stem>_auto.json")
    for flag, (kind, low, high, default) in _AUTO_FLAGS.items():
        auto.add_argument(flag, type=_auto_setting(kind, flag, low, high, default), metavar="N" if kind is int else "X",
                          help=f"default {default}" if flag != "--crop-overlap-ratio" else "default 512/1500")
    auto.add_argument("--use-m2m", action="store_true", help="refine each mask once with itself as the mask prompt")
    auto.add_argument("--single-mask", action="store_true", help="one mask per click instead of three")
    return parser


# --- writing -------------------------------------------------------------------------------------


# --- the command ---------------------------------------------------------------------------------


def _auto_settings(args: argparse.Namespace) -> dict:
    """The AutomaticMaskGenerator arguments the flags set; refuses automatic-mode flags without ``--auto`` and prompts with it."""
    given = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in _AUTO_FLAGS}
    given = {flag: value for flag, value in given.items() if value is not None}
    switches = [flag for flag, on in (("--use-m2m", args.use_m2m), ("--single-mask", args.single_mask)) if on]
    if not args.auto:
        if given or switches:
            raise UsageError(f"{[*given, *switches][0]} is a setting of automatic mode; add --auto (or drop it to segment from a prompt)")
        return {}
    prompts = [flag for flag, value in (("--point", args.point), ("--negative", args.negative), ("--box", args.box), ("--best", args.best))
               if value]
    if prompts:
        raise UsageError(f"--auto finds every object without a prompt; drop {prompts[0]} (or drop --auto to segment from a prompt)")
    settings = {flag[2:].replace("-", "_"): value for flag, value in given.items()}
    return {**settings, "use_m2m": args.use_m2m, "multimask_output": not args.single_mask, "output_mode": "uncompressed_rle"}


def _run(args: argparse.Namespace) -> int:
    auto = _auto_settings(args)
    if not args.auto and not args.point and not args.box:
        raise UsageError("give a prompt: --point X,Y (and --negative X,Y) or --box X0,Y0,X1,Y1; or --auto for every object")
    device = parse_device(args.device)
    problem = checks.path_problem(args.checkpoint)
    if problem:
        raise UsageError(f"checkpoint {str(args.checkpoint)!r} {problem}")
    problem = out_problem(args.out)
    if problem:
        raise UsageError(f"--out {str(args.out)!r} {problem}")
    config = read_json_config(args.config, _CONFIG_FIELDS, "build_sam2 arguments") if args.config is not None else None
    try:
        image = read_image(args.image)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    H, W = image.shape[:2]
    for x, y in args.point + args.negative:
        if not (0 <= x < W and 0 <= y < H):
            raise UsageError(f"point {x:g},{y:g} is outside the {W}x{H} image (as displayed, EXIF rotation applied); "
                             f"expected 0 <= x < {W}, 0 <= y < {H}")
    if args.box:
        x0, y0, x1, y1 = args.box
        shown = f"{x0:g},{y0:g},{x1:g},{y1:g}"
        if not (x0 < x1 and y0 < y1):
            raise UsageError(f"box {shown} is inverted or empty; expected X0 < X1 and Y0 < Y1")
        if not (0 <= x0 and 0 <= y0 and x1 <= W and y1 <= H):
            raise UsageError(f"box {shown} reaches outside the {W}x{H} image (as displayed, EXIF rotation applied); "
                             f"expected 0 <= X0 < X1 <= {W} and 0 <= Y0 < Y1 <= {H} (clip it to the image if you mean the part inside)")
    try:
        state = read_state_dict(args.checkpoint)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(one_line(exc)) from None
    try:
        model = model_for_checkpoint(state, config)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--config {str(args.config)!r}: {one_line(exc)}") from None
    try:
        load_state(model, state, str(args.checkpoint), strict=True)
    except (ValueError, TypeError) as exc:
        raise UsageError(one_line(exc)) from None
    if args.auto:
        return _run_auto(args, auto, model, image, device)

    clicks = args.point + args.negative
    points = torch.tensor(clicks, dtype=torch.float32) if clicks else None
    labels = torch.tensor([1] * len(args.point) + [0] * len(args.negative), dtype=torch.int32) if clicks else None
    box = torch.tensor(args.box, dtype=torch.float32) if args.box else None
    multimask = len(clicks) == 1 and box is None  # one click is ambiguous: three candidates (official default)
    try:
        model = model.to(device).eval()
        with torch.inference_mode():
            masks, iou = segment_image(model, image, points, labels, box, multimask)
    except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError from 2.5 on
        raise UsageError(f"out of memory on {device} for a {W}x{H} image with this model; try --device cpu") from None
    keep = [int(iou.argmax())] if args.best else list(range(len(iou)))
    targets = {i: args.out / f"{args.image.stem}_mask{i}.png" for i in keep}
    existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
    if existing:
        raise UsageError(f"{', '.join(existing)} already exist; nothing was written (choose another --out)")
    try:
        write_all_or_none(args.out, {path: encode_png((masks[i].to(torch.uint8) * 255).numpy()) for i, path in targets.items()})
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename2 or exc.filename} appeared while writing; nothing was written (choose another --out)") from None
    except OSError as exc:
        raise UsageError(f"cannot write the masks to {str(args.out)!r}: {exc.strerror or one_line(exc)}; nothing was written") from None
    for i, path in targets.items():
        print(f"{path}\tpredicted IoU {iou[i].item():.3f}\t{int(masks[i].sum())} pixels")
    return 0


def _run_auto(args: argparse.Namespace, settings: dict, model: SAM2, image: Tensor, device: torch.device) -> int:
    """``--auto``: every mask as ``<stem>_auto<i>.png`` and the records in ``<stem>_auto.json``, all or none."""
    H, W = image.shape[:2]
    try:
        generator = AutomaticMaskGenerator(model.to(device).eval(), **settings)
    except (TypeError, ValueError) as exc:  # a rule between settings: name the flags
        message = one_line(exc)
        for flag in _AUTO_FLAGS:
            name = flag[2:].replace("-", "_")
            message = re.sub(rf"\b{name}\b=?", lambda m: flag + (" " if m.group().endswith("=") else ""), message)
        raise UsageError(message) from None
    try:
        records = generator.generate(image)
    except ValueError as exc:  # an image too small for the crop layers
        raise UsageError(one_line(exc).replace("crop_n_layers=", "--crop-n-layers ")) from None
    except torch.cuda.OutOfMemoryError:
        raise UsageError(f"out of memory on {device} for a {W}x{H} image with this model; try --device cpu "
                         f"or a smaller --points-per-batch") from None
    stem = args.image.stem
    pngs = [args.out / f"{stem}_auto{i}.png" for i in range(len(records))]
    table = args.out / f"{stem}_auto.json"
    existing = [str(p) for p in [*pngs, table] if p.exists() or p.is_symlink()]
    if existing:
        raise UsageError(f"{', '.join(existing)} already exist; nothing was written (choose another --out)")
    annotations = []
    for i, (record, png) in enumerate(zip(records, pngs, strict=True)):
        stability = record["stability_score"]  # NaN only for an empty mask kept with --stability-score-thresh 0
        annotations.append({"id": i, "mask_file": png.name, **record,
                            "stability_score": stability if math.isfinite(stability) else None})
    document = {"image": {"file_name": args.image.name, "height": H, "width": W},
                "settings": {name: getattr(generator, name) for name in _AUTO_RECORDED}, "annotations": annotations}
    files = {png: encode_png((decode_rle(record["segmentation"]).to(torch.uint8) * 255).numpy()) for record, png in zip(records, pngs, strict=True)}
    files[table] = (json.dumps(document, allow_nan=False) + "\n").encode("utf-8")
    try:
        write_all_or_none(args.out, files)
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename2 or exc.filename} appeared while writing; nothing was written (choose another --out)") from None
    except OSError as exc:
        raise UsageError(f"cannot write the masks to {str(args.out)!r}: {exc.strerror or one_line(exc)}; nothing was written") from None
    for record, png in zip(records, pngs, strict=True):
        print(f"{png}\tpredicted IoU {record['predicted_iou']:.3f}\t{record['area']} pixels")
    print(f"{table}\t{len(records)} masks")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sam2-segment``; returns the exit code (0 done, 2 refused or failed, with one line on stderr)."""
    return run_command(_parser(), _join_negative_values(sys.argv[1:] if argv is None else argv), _run)


if __name__ == "__main__":
    sys.exit(main())
