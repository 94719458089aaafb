"""The run folder (``output_dir``): which checkpoint a start resumes, whether the folder may take the run, who writes.

The policy, in the order a start applies it; everything that can refuse comes before anything
is written, so a refused start leaves the folder as it found it:

1. **Resume the same run, refuse another.** ``resume`` names a checkpoint; otherwise the newest
   readable ``checkpoint-<step>.pth`` in the folder is resumed. A checkpoint of another run
   (a field of [`RESUME_KEYS`][refimpl.train.config.RESUME_KEYS] differs, or the data folder
   changed by more than a few images) is refused
   ([`check_compatible`][refimpl.train.checkpoint.check_compatible]). A folder with a
   ``config.json`` and no checkpoint (a run killed before its first one) restarts if that file is
   of the same run and is refused otherwise.
2. **Never delete what cannot be read.** Checkpoints newer than the resumed one that cannot be
   read (empty, cut short, not a checkpoint) are renamed aside by rank 0 (``<name>.unreadable``),
   with a warning, when there is a readable one to resume or ``config.json`` says the folder holds
   this run; otherwise the first of them is the error and nothing is renamed.
3. **One writer at a time.** Rank 0 holds the kernel's lock (``flock``) on ``.lock`` for the
   session; a second start in the same folder is refused. The lock ends with its process whatever
   the way: a run killed by SIGKILL leaves the file but no lock, and the next start takes the file
   over with a warning naming the process written in it. A session that ends any other way, a
   refused start included, removes the file, and the folder too if it created it and left it empty.
4. **The log follows the checkpoint.** The steps after the resumed checkpoint are run again, so
   their lines of ``metrics.jsonl`` (and a line torn by a kill) are dropped when the session
   starts; ``config.json`` then holds this session's config and plan.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..checks import path_problem
from .checkpoint import (
    UnreadableCheckpoint,
    atomic_write_text,
    check_compatible,
    list_checkpoints,
    load_training_checkpoint,
    prune_checkpoints,
)
from .config import RESUME_KEYS, ConfigError, PretrainConfig

__all__ = ["CONFIG_FILE", "LOCK_FILE", "METRICS_FILE", "Resume", "find_resume", "lock_run_dir", "start_log"]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".lock"


class Resume(NamedTuple):
    """What a start found in the run folder (rules 1 and 2)."""

    path: Path | None
    """The checkpoint to resume, ``None`` for a new run (or a restart before the first checkpoint)."""
    state: dict[str, Any] | None
    """Its contents."""
    changed_data: str | None
    """A warning to log when the data folder gained or lost a few images since the checkpoint, else ``None``."""


def find_resume(config: PretrainConfig, dataset_size: int, is_main: bool) -> Resume:
    """Rules 1 and 2: the checkpoint this start resumes, once the folder is known to hold this run or none.

    Args:
        config: the run's config.
        dataset_size: images the data holds now.
        is_main: rank 0, which renames unreadable checkpoints aside.

    Returns:
        The [`Resume`][refimpl.train.run_dir.Resume].

    Raises:
        ConfigError: if ``output_dir`` is not a folder, holds another run, or its newest checkpoint
            cannot be read and nothing says the folder holds this run.
    """
    out = Path(config.output_dir)
    problem = path_problem(out, "folder")
    if problem not in (None, "does not exist"):
        raise ConfigError(f"output_dir {str(out)!r} {problem} (new, or holding this run)")
    path, state = _newest_readable(config, out, is_main)
    if state is not None:
        return Resume(path, state, check_compatible(state, config.to_dict(), dataset_size, path))
    _check_saved_config(config, out)
    return Resume(None, None, None)


def _newest_readable(config: PretrainConfig, out: Path, is_main: bool) -> tuple[Path | None, dict | None]:
    """``config.resume`` and its contents, else the newest readable checkpoint in ``out`` (rule 2)."""
    if config.resume is not None:
        return Path(config.resume), load_training_checkpoint(config.resume)
    skipped: list[tuple[Path, UnreadableCheckpoint]] = []
    found: tuple[Path | None, dict | None] = (None, None)
    for path in reversed(list_checkpoints(out)):
        try:
            found = (path, load_training_checkpoint(path))
            break
        except UnreadableCheckpoint as exc:
            skipped.append((path, exc))
        except ConfigError:
            if path.exists():
                raise
            # rank 0 has just renamed it aside: skip it as rank 0 does
    if skipped and found[1] is None and not (out / CONFIG_FILE).is_file():
        raise skipped[0][1]
    for path, exc in skipped if is_main else ():
        aside = path.with_name(f"{path.name}.unreadable")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.unreadable-{n}")
        os.replace(path, aside)
        log.warning("skipped %s: %s; renamed it to %s", path.name, str(exc).split("; move it away")[0], aside.name)
    return found


def _check_saved_config(config: PretrainConfig, out: Path) -> None:
    """Rule 1 without a checkpoint: a run killed before its first one may restart, another run may not."""
    saved = out / CONFIG_FILE
    if not saved.is_file():
        return
    try:
        previous = json.loads(saved.read_text(encoding="utf-8"))["config"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{str(saved)!r} is not a config written by mae-pretrain; use another output_dir") from None
    now = config.to_dict()
    for key in RESUME_KEYS:
        if previous.get(key) != now.get(key):
            raise ConfigError(
                f"{str(out)!r} holds another run ({key}={previous.get(key)!r} there, {now.get(key)!r} now); "
                f"nothing was written; use another output_dir"
            )


def lock_run_dir(out: Path, stack: contextlib.ExitStack) -> None:
    """Rule 3, on rank 0: create ``out`` if needed and hold its lock until ``stack`` closes.

    Raises:
        ConfigError: if another run holds the lock, or the folder cannot be written.
    """
    try:
        if not out.exists():  # a refused start leaves no empty folder behind
            out.mkdir(parents=True)
            stack.callback(_remove_if_empty, out)
        stack.enter_context(_exclusive(out))
    except OSError as exc:  # a read-only file system, no permission, ...
        raise ConfigError(f"cannot write in output_dir {str(out)!r} ({exc.strerror or exc}); "
                          f"nothing was written; choose another output_dir") from None


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``out/.lock`` (POSIX): two runs writing one folder would interleave."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, carry on unguarded
        yield
        return
    path = out / LOCK_FILE
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole session
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(f"another mae-pretrain is running in {str(out)!r}; wait for it or use another output_dir") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break  # else its holder removed the file between our open and our lock: take the new one
        handle.close()
    try:
        handle.seek(0)
        owner = " ".join(handle.read(40).split())
        if owner:
            log.warning("took over %s of process %s, which ended without releasing it (killed?)", path, owner)
        with contextlib.suppress(OSError):  # the pid only names the owner in that warning: a full disk may refuse it
            os.ftruncate(handle.fileno(), 0)
            os.write(handle.fileno(), f"{os.getpid()}\n".encode())  # unbuffered: nothing left to fail at close
        yield
    finally:
        with contextlib.suppress(OSError):  # before unlocking: a start that opened this file then sees it is gone
            path.unlink()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def start_log(out: Path, keep_last: int, step: int, resolved: dict[str, Any]) -> None:
    """Rule 4, on rank 0 once the lock is held: tidy the checkpoints, write ``config.json``, trim the metrics.

    Args:
        out: the run folder.
        keep_last: checkpoints to keep (pruning also removes temporary files of a killed write).
        step: the step the session starts from.
        resolved: what ``config.json`` holds: the config, the plan, the device, ...
    """
    prune_checkpoints(out, keep_last)
    atomic_write_text(out / CONFIG_FILE, json.dumps(resolved, indent=2) + "\n")
    _trim_metrics(out / METRICS_FILE, step)


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (those steps are about to be run again) and a torn last line."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if _metric_step(line) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def _metric_step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line; infinity (never kept) for a line cut short by a kill."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf
