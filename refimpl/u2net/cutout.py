"""``u2net-cutout``: the saliency map of an image with released U²-Net weights, and the cut-out object.

```text
u2net-cutout photo.jpg --checkpoint u2net.pth                 # photo_saliency.png
u2net-cutout photo.jpg --checkpoint u2netp.pth --cutout --out results/
                                                              # + photo_cutout.png (RGBA)
```

What it does, step by step, as the official ``u2net_test.py`` does unless said otherwise:

1. **Read** the image as a photo viewer shows it ([`read_image`][refimpl.u2net.cutout.read_image]):
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
import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import checks
from ..checkpoints import load_state, read_state_dict
from .model import U2Net, u2net_full, u2net_lite

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "main", "model_for_checkpoint", "normalize", "read_image", "saliency_map"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean the released weights were trained with (official ``ToTensorLab``)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation, likewise."""

_FACTORIES = {"U²-Net (u2net.pth)": u2net_full, "U²-Net† (u2netp.pth)": u2net_lite}
_CONFIG_FIELDS = ("encoder", "decoder", "out_ch")
_SIZE_RANGE = (32, 2048)


class UsageError(Exception):
    """A problem with what the user gave: reported in one line, exit code 2."""


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


class ImageError(ValueError):
    """An image that is read but cannot be turned into 8-bit RGB faithfully."""


def read_image(path: Path) -> Tensor:
    """The image at ``path`` as a photo viewer shows it: ``(H, W, 3)`` uint8 RGB.

    EXIF orientation applied (``PIL.ImageOps.exif_transpose``); bit depths converted, not
    clipped: 16-bit greyscale by ``round(v / 257)``, 32-bit integer images as 16-bit when every
    value lies in ``0..65535``, floating-point images from ``[0, 1]`` by ``round(v * 255)``;
    palette, grey, 1-bit, CMYK (no colour profile), YCbCr and HSV converted by Pillow; alpha
    dropped; the first frame of an animation.

    Raises:
        ValueError: one line naming the file: not a readable regular file, not an image,
            truncated, over Pillow's decompression-bomb limit, or a mode or value range without a
            faithful 8-bit RGB (e.g. LAB, a float image outside ``[0, 1]``).
    """
    from PIL import Image, ImageOps

    problem = checks.path_problem(path)
    if problem:
        raise ValueError(f"image {str(path)!r} {problem}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's advice (palette transparency, odd EXIF)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                upright = ImageOps.exif_transpose(img)
                rgb = _to_rgb(upright if upright is not None else img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image {str(path)!r} is refused as a possible decompression bomb: {_line(exc)}") from None
    except ImageError as exc:
        raise ValueError(f"image {str(path)!r} {exc}") from None
    except Exception as exc:  # UnidentifiedImageError, OSError (truncated), SyntaxError (bad header), ...
        raise ValueError(f"image {str(path)!r} cannot be read ({type(exc).__name__}: {_line(exc)})") from None
    return torch.from_numpy(np.array(rgb, dtype=np.uint8))


def _to_rgb(img) -> np.ndarray:
    """8-bit RGB pixels ``(H, W, 3)`` of a Pillow image, converting bit depths rather than clipping them."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img).astype(np.int64)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageError(f"is a 32-bit integer image with values {values.min()}..{values.max()}; expected 0..65535 "
                             f"(16-bit): convert it to 8 bits first")
        grey = ((values + 128) // 257).astype(np.uint8)  # round(v / 257): 65535 -> 255
    elif mode == "F":
        values = np.asarray(img).astype(np.float64)
        if not np.isfinite(values).all():
            raise ImageError("is a floating-point image holding NaN or infinite values; expected values in [0, 1]")
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ImageError(f"is a floating-point image with values {values.min():g}..{values.max():g}; expected [0, 1]: "
                             f"convert it to 8 bits first")
        grey = np.rint(values * 255).astype(np.uint8)
    elif mode == "LAB":
        raise ImageError("is a LAB image, which Pillow does not convert to RGB faithfully; convert it to RGB first")
    else:
        try:
            return np.asarray(img.convert("RGB"))
        except ValueError as exc:
            raise ImageError(f"has Pillow mode {mode!r}, which cannot be converted to RGB ({exc})") from None
    return np.repeat(grey[..., None], 3, axis=2)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --- arguments -----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"u2net-cutout: error: {message}\n")


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
    parser = _Parser(prog="u2net-cutout", description="Saliency map (and cut-out) of an image with U²-Net weights.",
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


def _device(text: str | None) -> torch.device:
    """The ``--device``: one this machine has, or a one-line refusal."""
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {text!r} is not supported; expected cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {text!r}: " + ("CUDA is not available here" if not torch.cuda.is_available()
                                                   else f"there are {torch.cuda.device_count()} CUDA devices"))
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {text!r}: MPS is not available here")
    return device


def _read_config(path: Path) -> dict:
    """``--config``: a UTF-8 JSON object of U2Net arguments, without repeated keys or NaN."""
    def pairs(items: list[tuple[str, object]]) -> dict:
        keys = [k for k, _ in items]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise UsageError(f"--config {str(path)!r} repeats the field {repeated[0]!r}; give each field once")
        return dict(items)

    def constant(name: str) -> object:
        raise UsageError(f"--config {str(path)!r} holds {name}; expected finite numbers")

    problem = checks.path_problem(path)
    if problem:
        raise UsageError(f"--config {str(path)!r} {problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason}); expected a JSON object") from None
    except OSError as exc:
        raise UsageError(f"--config {str(path)!r} cannot be read ({exc.strerror or exc})") from None
    try:
        config = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--config {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"--config {str(path)!r} holds {type(config).__name__}; expected a JSON object")
    unknown = sorted(set(config) - set(_CONFIG_FIELDS))
    if unknown:
        raise UsageError(f"--config {str(path)!r} has the unknown field {unknown[0]!r}; expected U2Net arguments: "
                         f"{', '.join(_CONFIG_FIELDS)}")
    return config


def _out_problem(out: Path) -> str | None:
    """What keeps ``--out`` from being (or becoming) a folder, in words that follow the path; ``None`` if nothing."""
    if out.exists() or out.is_symlink():
        return checks.path_problem(out, "folder")
    ancestor = out.parent
    while not (ancestor.exists() or ancestor.is_symlink()) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    problem = checks.path_problem(ancestor, "folder")
    return f"cannot be created: {str(ancestor)!r} {problem}" if problem else None


# --- writing -------------------------------------------------------------------------------------


def _png(pixels: np.ndarray) -> bytes:
    """``(H, W)`` uint8 as 8-bit grey, ``(H, W, 4)`` as RGBA."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _link_new(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``: a synced temporary file beside it, hard-linked into place (never replaces a file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; an output should look like any file the user makes
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.link(tmp, path)  # FileExistsError if the name appeared meanwhile
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_all_or_none(folder: Path, files: dict[Path, bytes]) -> None:
    """Create the folder (and its missing parents) and every file, or, on any failure, none of them."""
    missing = []
    parent = folder
    while not parent.is_dir():
        missing.append(parent)
        parent = parent.parent
    created: list[Path] = []
    try:
        for new in reversed(missing):
            new.mkdir()
            created.append(new)
        for path, data in files.items():
            _link_new(path, data)
            created.append(path)
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir() if path in missing else path.unlink()
        raise


# --- the command ---------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    device = _device(args.device)
    problem = checks.path_problem(args.checkpoint)
    if problem:
        raise UsageError(f"checkpoint {str(args.checkpoint)!r} {problem}")
    problem = _out_problem(args.out)
    if problem:
        raise UsageError(f"--out {str(args.out)!r} {problem}")
    targets = {"saliency": args.out / f"{args.image.stem}_saliency.png"}
    if args.cutout:
        targets["cutout"] = args.out / f"{args.image.stem}_cutout.png"
    existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
    if existing:
        raise UsageError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was written "
                         f"(choose another --out)")
    config = _read_config(args.config) if args.config is not None else None
    try:
        image = read_image(args.image)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        state = read_state_dict(args.checkpoint)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(_line(exc)) from None
    try:
        model = model_for_checkpoint(state, config)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--config {str(args.config)!r}: {_line(exc)}") from None
    if model.in_ch != 3 or model.out_ch != 1:
        raise UsageError(f"--config {str(args.config)!r} builds a model with {model.in_ch} input and {model.out_ch} output "
                         f"channels; expected 3 (RGB) and 1 (one saliency map)")
    try:
        report = load_state(model, state, str(args.checkpoint))
    except (ValueError, TypeError) as exc:
        raise UsageError(_line(exc)) from None
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
    files = {targets["saliency"]: _png(alpha8)}
    if args.cutout:
        files[targets["cutout"]] = _png(np.concatenate([image.numpy(), alpha8[..., None]], axis=2))  # (H, W, 4)
    try:
        _write_all_or_none(args.out, files)
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename2 or exc.filename} appeared while writing; nothing was written (choose another --out)") from None
    except OSError as exc:
        raise UsageError(f"cannot write to {str(args.out)!r}: {exc.strerror or _line(exc)}; nothing was written") from None
    for path in files:
        print(f"{path}\t{W}x{H}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``u2net-cutout``; returns the exit code (0 done, 2 refused or failed, with one line on stderr)."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help (0) or a usage error, already reported in one line (2)
        return int(exc.code or 0)
    try:
        return _run(args)
    except UsageError as exc:
        print(f"u2net-cutout: error: {_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
