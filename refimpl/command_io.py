"""What the commands share (``sam2-segment``, ``u2net-cutout``): a photo read as a viewer shows it,
one-line errors, devices, ``--config`` files, and outputs written all or none.

Not reference code: the doors of the two commands, kept in one place so that both read an image,
refuse a device or write a file the same way.
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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import checks

__all__ = ["OneLineParser", "UsageError", "available_devices", "encode_png", "run_command", "one_line", "out_problem", "parse_device",
           "read_image", "read_json_config", "write_all_or_none"]


class UsageError(Exception):
    """A problem with what the user gave: reported in one line, exit code 2."""


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str], run: Callable[[argparse.Namespace], int]) -> int:
    """Parse ``argv`` and ``run`` it: the exit code, with a refusal printed as one line and code 2."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already reported in one line (2)
        return int(exc.code or 0)
    try:
        return run(args)
    except UsageError as exc:
        print(f"{parser.prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line, with exit code 2 (argparse's own convention)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


class ImageError(ValueError):
    """An image that is read but cannot be turned into 8-bit RGB faithfully."""


def read_image(path: Path) -> Tensor:
    """The image at ``path`` as a photo viewer shows it: ``(H, W, 3)`` uint8 RGB.

    The EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so ``H, W`` and the pixel
    coordinates are those of the upright image. Bit depths are converted, not clipped: 16-bit
    greyscale to 8 bits by ``round(v / 257)``; 32-bit integer images as 16-bit when every value
    lies in ``0..65535``; floating-point images from ``[0, 1]`` by ``round(v * 255)``. Palette,
    greyscale, 1-bit, CMYK (no colour profile), YCbCr and HSV images are converted by Pillow; an
    alpha channel is dropped. Only the first frame of an animation is read.

    Args:
        path: the image file, any format Pillow reads.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: one line, naming the file: not a readable file, not an image, truncated, over
            Pillow's decompression-bomb limit, or a mode or value range that has no faithful 8-bit
            RGB (e.g. LAB, a float image outside ``[0, 1]``).
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
                upright = ImageOps.exif_transpose(img)  # a new image, decoded
                rgb = _to_rgb(upright if upright is not None else img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image {str(path)!r} is refused as a possible decompression bomb: {one_line(exc)}") from None
    except ImageError as exc:
        raise ValueError(f"image {str(path)!r} {exc}") from None
    except Exception as exc:  # UnidentifiedImageError, OSError for a truncated file, SyntaxError in a bad header, ...
        raise ValueError(f"image {str(path)!r} cannot be read ({type(exc).__name__}: {one_line(exc)})") from None
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
            return np.asarray(img.convert("RGB"))  # drops alpha; palette, grey, 1-bit, CMYK, YCbCr, HSV
        except ValueError as exc:
            raise ImageError(f"has Pillow mode {mode!r}, which cannot be converted to RGB ({exc})") from None
    return np.repeat(grey[..., None], 3, axis=2)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (its type name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def available_devices() -> list[str]:
    """The devices PyTorch can use here: ``cpu``, each CUDA device, ``mps``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def parse_device(text: str | None) -> torch.device:
    """The ``--device``: one this machine has, or a one-line refusal naming those it has."""
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = ", ".join(available_devices())
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {text!r} is not supported; expected cpu, cuda, cuda:N or mps (available here: {available})")
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        why = "CUDA is not available here" if not torch.cuda.is_available() else f"there are {torch.cuda.device_count()} CUDA devices"
        raise UsageError(f"--device {text!r}: {why}; available here: {available}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {text!r}: MPS is not available here; available here: {available}")
    return device


def read_json_config(path: Path, fields: Sequence[str], what: str) -> dict:
    """``--config``: a UTF-8 JSON object of ``fields`` (``what`` names them in the message), without repeated keys or NaN."""
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
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise UsageError(f"--config {str(path)!r} has the unknown field {unknown[0]!r}; expected {what}: "
                         f"{', '.join(fields)}")
    return config


def out_problem(out: Path) -> str | None:
    """What keeps ``--out`` from being (or becoming) a folder, in words that follow the path; ``None`` if nothing."""
    if out.exists() or out.is_symlink():
        return checks.path_problem(out, "folder")
    ancestor = out.parent
    while not (ancestor.exists() or ancestor.is_symlink()) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    problem = checks.path_problem(ancestor, "folder")
    return f"cannot be created: {str(ancestor)!r} {problem}" if problem else None


# --- writing -------------------------------------------------------------------------------------


def encode_png(pixels: np.ndarray) -> bytes:
    """``(H, W)`` uint8 as an 8-bit grey PNG, ``(H, W, 4)`` as RGBA."""
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
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; an output should look like any other file the user makes
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.link(tmp, path)  # FileExistsError if the name appeared meanwhile
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_all_or_none(folder: Path, files: dict[Path, bytes]) -> None:
    """Create the folder (and its missing parents) and every file, or, on any failure, none of them.

    What this call created (files and folders) is removed again before the error goes on; a
    file that was there before is never touched.
    """
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
