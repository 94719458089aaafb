"""Training checkpoints that survive a kill: atomic writes, the last ``K`` kept, safe loading.

A checkpoint is one ``torch.save`` file, ``checkpoint-<step>.pth``, holding plain containers
only, so it loads with ``torch.load(weights_only=True)`` and no pickled code ever runs:

| key | what |
| --- | --- |
| ``format`` | ``"refimpl.train/1"`` |
| ``model`` | the MAE's state dict (official key names; also readable by [`read_state_dict`][refimpl.checkpoints.read_state_dict]) |
| ``optimizer`` | AdamW's state dict keyed by parameter name ([`full_state_dicts`][refimpl.train.distributed.full_state_dicts]), the same under DDP and FSDP |
| ``scheduler`` | its ``state_dict()`` |
| ``scaler`` | the fp16 ``GradScaler``'s ``state_dict()`` (loss scale, growth tracker); ``None`` in fp32 and bf16, which need no loss scaling |
| ``step``, ``epoch`` | optimizer steps done, and the epoch the next step belongs to |
| ``sampler`` | the data sampler's ``{"epoch", "start"}`` at the next step |
| ``rng`` | torch CPU and CUDA, numpy and Python generator states |
| ``config``, ``dataset_size`` | the run's [`PretrainConfig`][refimpl.train.config.PretrainConfig] as a dict, and the number of images |

The write goes to a temporary file in the same folder, is flushed and ``fsync``-ed, then
``os.replace``-d onto its name and the folder is ``fsync``-ed: a reader (or a resume after a
kill at any instant) sees either the complete new file or none, and the previous checkpoint is
only deleted after the new one is in place.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..checkpoints import check_checkpoint_path, unreadable_reason
from ..checks import path_problem
from ..mae import encoder_state
from .config import RESUME_KEYS, ConfigError
from .data import unreadable_limit

__all__ = [
    "CHECKPOINT_FORMAT",
    "UnreadableCheckpoint",
    "atomic_save",
    "atomic_write",
    "atomic_write_text",
    "capture_rng",
    "check_compatible",
    "check_shapes",
    "checkpoint_name",
    "export_encoder",
    "first_non_finite",
    "list_checkpoints",
    "load_training_checkpoint",
    "prune_checkpoints",
    "restore_rng",
]

CHECKPOINT_FORMAT = "refimpl.train/1"


class UnreadableCheckpoint(ConfigError):
    """A checkpoint file that cannot be read at all (empty, truncated, not ours): resume skips it."""

_NAME = re.compile(r"^checkpoint-(\d{8})\.pth$")


def checkpoint_name(step: int) -> str:
    """``checkpoint-00000120.pth`` for step 120: names sort by step."""
    return f"checkpoint-{step:08d}.pth"


def atomic_save(obj: object, path: str | PathLike[str]) -> None:
    """``torch.save(obj)`` to ``path`` so that ``path`` is either the old file or the complete new one.

    Args:
        obj: what to save.
        path: the destination; its folder must exist.
    """
    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(path: str | PathLike[str], text: str) -> None:
    """``text`` (UTF-8) to ``path``, atomically as [`atomic_save`][refimpl.train.checkpoint.atomic_save]."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write(path: str | PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then put it in place: ``path`` is either the
    old file or the complete new one, also after a crash (file and folder are synced).

    Args:
        path: the destination; its folder must exist.
        write: writes the contents to the binary file it is given.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a checkpoint is shared like any output
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_checkpoints(folder: str | PathLike[str]) -> list[Path]:
    """The ``checkpoint-<step>.pth`` files in ``folder``, oldest first (temporary files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def prune_checkpoints(folder: str | PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints, and temporary files left by a killed write.

    Returns:
        The files deleted.
    """
    folder = Path(folder)
    old = list_checkpoints(folder)[:-keep_last]
    stale = [p for p in folder.glob(".checkpoint-*.tmp")]
    for path in old + stale:
        path.unlink(missing_ok=True)
    return old + stale


def load_training_checkpoint(path: str | PathLike[str]) -> dict[str, Any]:
    """Read one of our checkpoints with ``weights_only=True``.

    Args:
        path: a ``checkpoint-<step>.pth`` file.

    Returns:
        The dict described in the module docstring.

    Raises:
        ConfigError: if the path is not a readable regular file (missing, a folder, a FIFO, a link
            loop, ...), the file is not one of our training checkpoints, lacks one of its entries,
            or holds a NaN or infinite value (a broken checkpoint; the message names the tensor).
            [`UnreadableCheckpoint`][refimpl.train.checkpoint.UnreadableCheckpoint] if it cannot
            be read at all (empty, truncated, a pickle that would run code).
    """
    path = Path(path)
    problem = path_problem(path, "file")
    if problem:
        hint = " (e.g. one of its checkpoint-<step>.pth files)" if problem.startswith("is a folder") else ""
        raise ConfigError(f"checkpoint {str(path)!r} {problem}{hint}")
    try:
        check_checkpoint_path(path)
    except ValueError as exc:  # empty
        raise UnreadableCheckpoint(f"{exc}; move it away or choose another output_dir") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, a foreign pickle, ...
        raise UnreadableCheckpoint(f"checkpoint {str(path)!r} cannot be read: {unreadable_reason(exc, path)}; "
                                   f"move it away or choose another output_dir") from None
    if not isinstance(state, Mapping) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{str(path)!r} is not a refimpl.train checkpoint (no format {CHECKPOINT_FORMAT!r}); "
            f"choose another output_dir"
        )
    for key, kind, what in _ENTRIES:
        value = state.get(key)
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 0)):
            found = (f"lacks the entry {key!r}" if key not in state else
                     f"holds {type(value).__name__} {value!r:.40} as {key!r}, not {what}")
            raise ConfigError(f"checkpoint {str(path)!r} {found}; it is not a complete refimpl.train checkpoint "
                              f"(edited, or of another version): move it away or resume another")
    bad = first_non_finite({"model": state["model"], "optimizer": state["optimizer"]})
    if bad is not None:
        raise ConfigError(f"checkpoint {str(path)!r} is broken: tensor {bad!r} holds NaN or infinite values (saved by a "
                          f"version that did not check its weights, or damaged); resume an earlier checkpoint "
                          f"with --resume, or move it away")
    return dict(state)


_ENTRIES = (
    ("model", Mapping, "a state dict"), ("optimizer", Mapping, "a state dict"), ("scheduler", Mapping, "a state dict"),
    ("rng", Mapping, "generator states"), ("config", Mapping, "a config"), ("step", int, "a number of steps"),
    ("dataset_size", int, "a number of images"),
)
"""The entries a resume reads: name, type, and what it should hold (for the message)."""


def first_non_finite(tree: object) -> str | None:
    """The name of the first floating tensor in ``tree`` (a state dict, or nested dicts and lists of
    tensors) that holds NaN or infinity, e.g. ``"model.blocks.0.norm1.weight"``; ``None`` if all are finite.

    One check for all the tensors (a single host sync, on any device); the names only when it fails.

    Examples:
        >>> first_non_finite({"model": {"w": torch.ones(2), "b": torch.tensor([0.0, float("nan")])}})
        'model.b'
    """
    floats: list[tuple[str, torch.Tensor]] = []

    def collect(node: object, name: str) -> None:
        if isinstance(node, torch.Tensor):
            if node.is_floating_point() and node.numel():
                floats.append((name, node))
            return
        items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, (list, tuple)) else ()
        for key, value in items:
            collect(value, f"{name}.{key}" if name else str(key))

    collect(tree, "")
    if not floats or bool(torch.stack([torch.isfinite(t).all() for _, t in floats]).all()):
        return None
    return next(name for name, t in floats if not bool(torch.isfinite(t).all()))


def check_shapes(saved: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse a checkpoint whose model tensors do not fit the model built from the config.

    Raises:
        ConfigError: naming the first key missing on one side, or the first one whose shapes differ,
            with both shapes.
    """
    for key, value in expected.items():
        if key not in saved:
            raise ConfigError(f"checkpoint {str(path)!r} has no tensor {key!r}, which the model of this config "
                              f"needs; it is not a checkpoint of this model")
        there, here = tuple(saved[key].shape), tuple(value.shape)
        if there != here:
            raise ConfigError(f"checkpoint {str(path)!r}: tensor {key!r} has shape {there} there, {here} in the "
                              f"model of this config; it is not a checkpoint of this model")
    extra = next((key for key in saved if key not in expected), None)
    if extra is not None:
        raise ConfigError(f"checkpoint {str(path)!r} has a tensor {extra!r} that the model of this config lacks; "
                          f"it is not a checkpoint of this model")


def check_compatible(state: Mapping[str, Any], config: Mapping[str, Any], dataset_size: int,
                     path: Path) -> str | None:
    """Refuse to resume a checkpoint of another run; accept a data folder changed by a few images.

    A folder that gained or lost at most [`unreadable_limit`][refimpl.train.data.unreadable_limit]
    images (1 %, at least one: e.g. the unreadable ones the run reported, now removed) still holds
    this run: the resume goes on from the checkpoint's step, with each epoch's order and the
    schedule's length worked out for the new count. Any other difference means another run.

    Args:
        state: a loaded checkpoint.
        config: the new run's config as a dict.
        dataset_size: the number of images the new run found.
        path: the checkpoint, for the message.

    Returns:
        ``None``, or a one-line warning when the number of images changed.

    Raises:
        ConfigError: naming the first field (of ``RESUME_KEYS``) that differs, or a dataset size
            that changed by more than the limit.
    """
    saved = state["config"]
    for key in RESUME_KEYS:
        if saved.get(key) != config.get(key):
            raise ConfigError(
                f"{str(path)!r} belongs to another run: {key}={saved.get(key)!r} there, {config.get(key)!r} now; "
                f"nothing was written; use another output_dir, or the same {key} to resume"
            )
    before = state["dataset_size"]
    if before == dataset_size:
        return None
    if abs(before - dataset_size) > unreadable_limit(before):
        raise ConfigError(
            f"{str(path)!r} was trained on {before} images, the data now has {dataset_size} (a resume accepts a "
            f"change of at most {unreadable_limit(before)}); nothing was written; use another output_dir to start "
            f"a new run on the changed data"
        )
    return (f"the data folder now has {dataset_size} images, {path.name} was trained on {before}: resuming at step "
            f"{state['step']} with each epoch's order drawn for {dataset_size} images (not bit-identical to a run "
            f"on unchanged data)")


def capture_rng() -> dict[str, Any]:
    """The state of every global generator, as tensors and plain Python values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }


def restore_rng(rng: Mapping[str, Any]) -> None:
    """Undo [`capture_rng`][refimpl.train.checkpoint.capture_rng]."""
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))


def export_encoder(
    state: Mapping[str, torch.Tensor],
    path: str | PathLike[str],
    select: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] = encoder_state,
) -> None:
    """Save the encoder part of an MAE state dict as ``{"model": state}``, loadable into the classifier.

    ViT (the default ``select``, [`encoder_state`][refimpl.mae.encoder_state]): the keys are
    timm's / the official encoder's (no decoder, no mask token), as in the official
    ``mae_pretrain_vit_*.pth`` release files, so
    [`load_checkpoint`][refimpl.checkpoints.load_checkpoint]`(VisionTransformer(...), path)`
    fills everything but the new head. Hiera
    (``select=``[`hiera_encoder_state`][refimpl.hiera.hiera_encoder_state]): the patch embedding,
    position embedding and blocks, which a [`Hiera`][refimpl.hiera.Hiera] of the same size loads
    with ``strict=False``, missing only its ``norm`` and ``head``.

    Args:
        state: a full MAE state dict (under FSDP: the gathered one, as saved in the checkpoint).
        path: the destination file.
        select: picks the encoder's entries from ``state``.
    """
    encoder = {k: v.detach().cpu().clone() for k, v in select(state).items()}
    atomic_save({"model": encoder}, path)
