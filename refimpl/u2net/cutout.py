"""``u2net-cutout``: the saliency map of an image with released U²-Net weights, and the cut-out object.

```text
u2net-cutout photo.jpg --checkpoint u2net.pth                 # photo_saliency.png
u2net-cutout photo.jpg --checkpoint u2netp.pth --cutout --out results/
                                                              # + photo_cutout.png (RGBA)
```

What it does, step by step, as the official ``u2net_test.py`` does unless said otherwise:

1. **Read** the image as a photo viewer shows it ([`read_image`][refimpl.command_io.read_image]):
   EXIF orientation applied; 16-bit greyscale scaled to 8 bits (``round(v / 257)``); 32-bit
   integer images read as 16-bit when their values lie in ``0..65535``; float images from
   ``[0, 1]``; palette, grey, CMYK converted to RGB; an alpha channel dropped; the first frame
   of an animation. Other modes (e.g. LAB) are refused.
2. **Normalise** ([`normalize`][refimpl.u2net.cutout.normalize]): resize to ``--size`` x
   ``--size`` (320, what the released weights were trained at), divide by the image's
   largest value (the official quirk: not by 255, so a dark image is brightened), then the
   ImageNet mean and standard deviation per channel. *Departure:* the resize is PyTorch's
   bilinear with antialiasing; the official script uses scikit-image's ``resize`` (a Gaussian
   pre-filter and zero padding at the border), so the maps differ slightly from the official
   script's, not from the official model's.
3. **Predict** the fused map ([`saliency_map`][refimpl.u2net.cutout.saliency_map]) and stretch
   it to ``[0, 1]`` by its own minimum and maximum (the official ``normPRED``; a constant map,
   which ``normPRED`` would divide by zero, is kept as it is).
4. **Resize back** to the image's size (bilinear; the official script resizes the 8-bit map
   with Pillow's bilinear filter, here the float map is resized, then rounded to 8 bits).
5. **Write** ``<stem>_saliency.png`` (8-bit grey, 255 = salient) and with ``--cutout``
   ``<stem>_cutout.png``: the image's RGB with the saliency map as its alpha channel, so the
   background becomes transparent.

The model is read from the checkpoint: U²-Net (``u2net.pth``) or U²-Net† (``u2netp.pth``),
recognised by the shapes of its tensors; ``--config FILE.json`` gives the
[`U2Net`][refimpl.u2net.model.U2Net] arguments of another one (``{"encoder": [[7, 3, 16, 64],
...], "decoder": [...]}``).

Nothing is overwritten: if an output file exists, nothing is written. Each file is written to a
temporary name and linked into place; if one cannot be written (a full or read-only disk), the
files this run wrote are removed again. Exit codes: 0 done, 2 bad usage, unreadable input, a
file in the way or a failed write (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
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
from .model import U2Net, u2net_full, u2net_lite

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "main", "model_for_checkpoint", "normalize", "saliency_map"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean the released weights were trained with (official ``ToTensorLab``)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation, likewise."""

_FACTORIES = {"U²-Net (u2net.pth)": u2net_full, "U²-Net† (u2netp.pth)": u2net_lite}
_CONFIG_FIELDS = ("encoder", "decoder", "out_ch")
_SIZE_RANGE = (32, 2048)


# --- the computation -----------------------------------------------------------------------------


def normalize(image: Tensor, size: int) -> Tensor:
    """An ``(H, W, 3)`` uint8 image as the model's input: ``(1, 3, size, size)`` float32.

    Resized (bilinear, antialiased), divided by its largest value (the official quirk; an
    all-black image stays 0), then standardised with the ImageNet mean and std per channel.
    """
    x = image.permute(2, 0, 1)[None].float() / 255  # (H, W, 3) -> (1, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)  # (1, 3, size, size)
    x = x / x.max().clamp_min(1e-12)  # official: image / np.max(image)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def saliency_map(model: U2Net, image: Tensor, size: int = 320) -> Tensor:
    """The saliency of every pixel of ``image``: ``(H, W)`` float in ``[0, 1]``, at the image's size.

    Args:
        model: U²-Net in eval mode.
        image: ``(H, W, 3)`` uint8 RGB.
        size: the side the image is resized to for the model.

    Returns:
        The fused map, stretched to ``[0, 1]`` by its minimum and maximum (official ``normPRED``),
        resized to ``(H, W)``.
    """
    H, W = image.shape[:2]
    device = next(model.parameters()).device
    fused = model(normalize(image, size).to(device)).fused[:, :1]  # (1, 1, size, size)
    lo, hi = fused.min(), fused.max()
    if hi > lo:  # a constant map has no contrast to stretch
        fused = (fused - lo) / (hi - lo)
    full = F.interpolate(fused, size=(H, W), mode="bilinear", align_corners=False, antialias=(H < size or W < size))
    return full[0, 0].clamp(0, 1).cpu()  # (H, W)


def model_for_checkpoint(state: dict[str, Tensor], config: dict | None = None) -> U2Net:
    """The model a state dict fits: U²-Net or U²-Net† by their tensors' shapes, or ``U2Net(**config)``.

    Raises:
        UsageError: if no ``config`` is given and the state dict is neither released size.
        TypeError, ValueError: from [`U2Net`][refimpl.u2net.model.U2Net], for a wrong ``config``.
    """
    if config is not None:
        return U2Net(**config)
    for name, factory in _FACTORIES.items():
        with torch.device("meta"):  # shapes only, no memory, no initialisation
            shapes = {k: tuple(v.shape) for k, v in factory().state_dict().items()}
        if all(k in shapes and tuple(v.shape) == shapes[k] for k, v in state.items()):
            return factory()
    raise UsageError("the checkpoint is neither U²-Net (u2net.pth) nor U²-Net† (u2netp.pth): its tensors' names or "
                     "shapes differ; pass --config FILE.json with its U2Net arguments (encoder, decoder)")


# --- reading the image ---------------------------------------------------------------------------


# --- arguments -----------------------------------------------------------------------------------


def _size(text: str) -> int:
    lo, hi = _SIZE_RANGE
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected an int from {lo} to {hi}, e.g. 320 (the size the "
                                         f"released weights were trained at)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="u2net-cutout", description="Saliency map (and cut-out) of an image with U²-Net weights.",
                     epilog="exit codes: 0 done, 2 bad usage, unreadable input, a file in the way or a failed write "
                            "(one line on stderr; a failed write leaves none of this run's files behind)")
    parser.add_argument("image", type=Path, help="the image (any format Pillow reads; EXIF orientation applied)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="u2net.pth or u2netp.pth (official), or ours")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the PNGs, created if needed (default: here)")
    parser.add_argument("--cutout", action="store_true", help="also write <stem>_cutout.png: RGBA, alpha = saliency")
    parser.add_argument("--size", type=_size, default=320, help="side the image is resized to for the model (default 320)")
    parser.add_argument("--config", type=Path, help="JSON object of U2Net arguments, for a model that is not a released size")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda if there is one, else cpu)")
    return parser


# --- writing -------------------------------------------------------------------------------------


# --- the command ---------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    device = parse_device(args.device)
    problem = checks.path_problem(args.checkpoint)
    if problem:
        raise UsageError(f"checkpoint {str(args.checkpoint)!r} {problem}")
    problem = out_problem(args.out)
    if problem:
        raise UsageError(f"--out {str(args.out)!r} {problem}")
    targets = {"saliency": args.out / f"{args.image.stem}_saliency.png"}
    if args.cutout:
        targets["cutout"] = args.out / f"{args.image.stem}_cutout.png"
    existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
    if existing:
        raise UsageError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was written "
                         f"(choose another --out)")
    config = read_json_config(args.config, _CONFIG_FIELDS, "U2Net arguments") if args.config is not None else None
    try:
        image = read_image(args.image)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        state = read_state_dict(args.checkpoint)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(one_line(exc)) from None
    try:
        model = model_for_checkpoint(state, config)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--config {str(args.config)!r}: {one_line(exc)}") from None
    if model.in_ch != 3 or model.out_ch != 1:
        raise UsageError(f"--config {str(args.config)!r} builds a model with {model.in_ch} input and {model.out_ch} output "
                         f"channels; expected 3 (RGB) and 1 (one saliency map)")
    try:
        report = load_state(model, state, str(args.checkpoint))
    except (ValueError, TypeError) as exc:
        raise UsageError(one_line(exc)) from None
    lacking = [k for k in report.missing if not k.endswith("num_batches_tracked")]  # a counter, unused in eval
    if lacking:
        raise UsageError(f"checkpoint {str(args.checkpoint)!r} lacks {len(lacking)} tensors of the model, e.g. {lacking[0]!r}")

    H, W = image.shape[:2]
    try:
        model = model.to(device).eval()
        with torch.inference_mode():
            alpha = saliency_map(model, image, args.size)
    except torch.OutOfMemoryError:
        raise UsageError(f"out of memory on {device} at --size {args.size}; try --device cpu or a smaller --size") from None
    alpha8 = (alpha * 255).round().to(torch.uint8).numpy()  # (H, W)
    files = {targets["saliency"]: encode_png(alpha8)}
    if args.cutout:
        files[targets["cutout"]] = encode_png(np.concatenate([image.numpy(), alpha8[..., None]], axis=2))  # (H, W, 4)
    try:
        write_all_or_none(args.out, files)
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename2 or exc.filename} appeared while writing; nothing was written (choose another --out)") from None
    except OSError as exc:
        raise UsageError(f"cannot write to {str(args.out)!r}: {exc.strerror or one_line(exc)}; nothing was written") from None
    for path in files:
        print(f"{path}\t{W}x{H}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``u2net-cutout``; returns the exit code (0 done, 2 refused or failed, with one line on stderr)."""
    return run_command(_parser(), sys.argv[1:] if argv is None else argv, _run)


if __name__ == "__main__":
    sys.exit(main())
