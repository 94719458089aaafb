"""Atomic file writes for the commands (``notes``, ``sam2-segment``): a reader never sees half a file, and nothing is lost."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["write_new_file", "replace_file"]


def _temporary_copy(path: Path, text: str | bytes, mode: int) -> str:
    """Write ``text`` (or bytes) to a new temporary file beside ``path`` (same file system), synced, with ``mode``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600; the file should look like any other the user has
        with os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_new_file(path: Path, text: str | bytes) -> None:
    """Create ``path`` with ``text`` (UTF-8) or bytes atomically, refusing to replace anything.

    The text goes to a temporary file in the same directory, which is then hard-linked to its
    final name: the link fails if the name exists (even if it appeared a moment ago), so an
    existing file is never touched, and readers never see a half-written file.

    Raises:
        FileExistsError: if ``path`` exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_copy(path, text, _default_mode())
    try:
        os.link(tmp, path)
    except FileExistsError:  # os.link's error names the temporary file first: name the one that exists
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    finally:
        os.unlink(tmp)


def replace_file(path: Path, text: str) -> None:
    """Replace the contents of the existing file ``path`` with ``text`` atomically.

    A crash leaves either the old file or the new one, never a mix; the permissions stay.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """
    mode = os.stat(path).st_mode & 0o7777
    tmp = _temporary_copy(path, text, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
