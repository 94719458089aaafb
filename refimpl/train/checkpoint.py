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
from ..mae import encoder_state
from .config import RESUME_KEYS, ConfigError

__all__ = [
    "CHECKPOINT_FORMAT",
    "UnreadableCheckpoint",
    "atomic_save",
    "atomic_write",
    "atomic_write_text",
    "capture_rng",
    "check_compatible",
    "checkpoint_name",
    "export_encoder",
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
        ConfigError: if the file is missing, unreadable, or not one of our training checkpoints.
    """
    path = Path(path)
    try:
        check_checkpoint_path(path)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint {str(path)!r} does not exist") from None
    except IsADirectoryError as exc:
        raise ConfigError(str(exc)) from None
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
    return dict(state)


def check_compatible(state: Mapping[str, Any], config: Mapping[str, Any], dataset_size: int, path: Path) -> None:
    """Refuse to resume a checkpoint of another run.

    Args:
        state: a loaded checkpoint.
        config: the new run's config as a dict.
        dataset_size: the number of images the new run found.
        path: the checkpoint, for the message.

    Raises:
        ConfigError: naming the first field (of ``RESUME_KEYS``) that differs, or a different
            dataset size.
    """
    saved = state["config"]
    for key in RESUME_KEYS:
        if saved.get(key) != config.get(key):
            raise ConfigError(
                f"{str(path)!r} belongs to another run: {key}={saved.get(key)!r} there, {config.get(key)!r} now; "
                f"nothing was written; use another output_dir, or the same {key} to resume"
            )
    if state["dataset_size"] != dataset_size:
        raise ConfigError(
            f"{str(path)!r} was trained on {state['dataset_size']} images, the data now has {dataset_size}; "
            f"nothing was written; use another output_dir to start a new run on the changed data"
        )


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
