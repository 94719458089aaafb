"""``sam2-segment``: segment an image from clicks or a box with official SAM 2 weights, masks as PNGs.

```text
sam2-segment photo.jpg --checkpoint sam2.1_hiera_large.pt --point 420,310
sam2-segment photo.jpg --checkpoint sam2.1_hiera_tiny.pt --box 100,80,600,500 --out masks/
sam2-segment photo.jpg --checkpoint sam2_hiera_small.pt --point 420,310 --negative 500,300 --best
```

Coordinates are pixels of the image as it is on disk (``x`` to the right, ``y`` down). The size
and version (SAM 2 or SAM 2.1) are read from the checkpoint; ``--config FILE.json`` gives the
[`build_sam2`][refimpl.sam2.model.build_sam2] arguments of another model instead. One click
alone gives three candidate masks (the click is ambiguous), anything more one mask; ``--best``
keeps only the mask with the highest predicted IoU. Masks are written as 8-bit PNGs (255
inside, 0 outside) at the image's size, named ``<image stem>_mask<i>.png``.

Nothing is overwritten: if a mask file exists, nothing is written. Each file is written to a
temporary name and linked into place. Exit codes: 0 done, 2 bad usage, unreadable input or a
file in the way (one line on stderr).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoints import load_state, read_state_dict
from .model import SAM2, SIZES, build_sam2, to_model_coords

__all__ = ["main", "model_for_checkpoint", "segment_image"]

_SIZES = {(size["embed_dim"], sum(size["stages"])): size for size in SIZES.values()}
"""(stage-1 width, blocks) -> the released size's arguments; both are read from the checkpoint's trunk."""


class UsageError(Exception):
    """A problem with what the user gave: reported in one line, exit code 2."""


def model_for_checkpoint(state: dict[str, Tensor], config: dict | None = None) -> SAM2:
    """The SAM 2 model a state dict was saved from: one of the four released sizes, SAM 2 or SAM 2.1.

    Args:
        state: official keys (``image_encoder.trunk.patch_embed.proj.weight`` tells the width,
            the ``image_encoder.trunk.blocks.N`` keys the depth; ``no_obj_embed_spatial`` is
            only in SAM 2.1).
        config: [`build_sam2`][refimpl.sam2.model.build_sam2] arguments for another model.

    Returns:
        The model (random weights; load ``state`` into it).

    Raises:
        UsageError: if the state dict is not one of the released sizes and no ``config`` is given.
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


def _pair(text: str, count: int, flag: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count:
        raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected {count} comma-separated numbers, e.g. "
                                         f"{'420,310' if count == 2 else '100,80,600,500'}")
    return values


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"sam2-segment: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sam2-segment", description="Segment an image from clicks or a box with SAM 2 weights.")
    parser.add_argument("image", type=Path, help="the image (any format Pillow reads)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="official SAM 2 / SAM 2.1 weights (.pt), or ours")
    parser.add_argument("--point", action="append", default=[], type=lambda t: _pair(t, 2, "--point"), metavar="X,Y",
                        help="a positive click (repeatable)")
    parser.add_argument("--negative", action="append", default=[], type=lambda t: _pair(t, 2, "--negative"), metavar="X,Y",
                        help="a negative click: not the object (repeatable)")
    parser.add_argument("--box", type=lambda t: _pair(t, 4, "--box"), metavar="X0,Y0,X1,Y1", help="a box around the object")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the PNGs (default: here)")
    parser.add_argument("--best", action="store_true", help="write only the mask with the highest predicted IoU")
    parser.add_argument("--config", type=Path, help="JSON object of build_sam2 arguments, for a model that is not a released size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (default: cuda if there is one)")
    return parser


def _read_image(path: Path) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UsageError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"image {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from None
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).reshape(rgb.height, rgb.width, 3)


def _png(mask: Tensor) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((mask.to(torch.uint8) * 255).numpy()).save(buffer, format="PNG")  # 2-D uint8: 8-bit grey
    return buffer.getvalue()


def _run(args: argparse.Namespace) -> int:
    from paper_notes.files import write_new_file

    if not args.point and not args.box:
        raise UsageError("give a prompt: --point X,Y (and --negative X,Y) or --box X0,Y0,X1,Y1")
    image = _read_image(args.image)
    H, W = image.shape[:2]
    for x, y in args.point + args.negative:
        if not (0 <= x < W and 0 <= y < H):
            raise UsageError(f"point {x:g},{y:g} is outside the {W}x{H} image")
    config = None
    if args.config is not None:
        try:
            config = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"--config {str(args.config)!r}: {exc}") from None
        if not isinstance(config, dict):
            raise UsageError(f"--config {str(args.config)!r} holds {type(config).__name__}; expected a JSON object")
    try:
        state = read_state_dict(args.checkpoint)
        model = model_for_checkpoint(state, config)
        load_state(model, state, str(args.checkpoint), strict=True)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    model = model.to(args.device).eval()

    clicks = args.point + args.negative
    points = torch.tensor(clicks, dtype=torch.float32) if clicks else None
    labels = torch.tensor([1] * len(args.point) + [0] * len(args.negative), dtype=torch.int32) if clicks else None
    box = torch.tensor(args.box, dtype=torch.float32) if args.box else None
    multimask = len(clicks) == 1 and box is None  # one click is ambiguous: three candidates (official default)
    with torch.inference_mode():
        masks, iou = segment_image(model, image, points, labels, box, multimask)
    keep = [int(iou.argmax())] if args.best else list(range(len(iou)))
    targets = {i: args.out / f"{args.image.stem}_mask{i}.png" for i in keep}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing:
        raise UsageError(f"{', '.join(existing)} already exist; nothing was written (choose another --out)")
    for i, path in targets.items():
        try:
            write_new_file(path, _png(masks[i]))
        except FileExistsError:
            raise UsageError(f"{path} appeared while writing; it was left as it is") from None
        print(f"{path}\tpredicted IoU {iou[i].item():.3f}\t{int(masks[i].sum())} pixels")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sam2-segment``; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already reported in one line (2)
        return int(exc.code or 0)
    try:
        return _run(args)
    except UsageError as exc:
        print(f"sam2-segment: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
