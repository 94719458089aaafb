"""Atomic file writes for the commands (``notes``, ``sam2-segment``) and the build cache: a reader never sees half a file, and nothing is lost.

Every write goes to a temporary file beside its target (``.<name>.<random>.tmp``), is synced,
then linked or renamed into place. The writer holds an exclusive ``flock`` on its temporary file
until then, so [`remove_stale_temporaries`][paper_notes.files.remove_stale_temporaries] can tell
a file left by a killed write (no lock) from one being written right now by another command
(locked), and removes only the first kind.

A file that is a symbolic link is written *through* the link: the temporary file goes beside the
link's target and is renamed onto the target, so the link stays a link and the file it points to
gets the new text (renaming onto the link would replace the link with a copy and leave the real
file as it was). [`rewrite_file`][paper_notes.files.rewrite_file] also keeps the file's byte-order
mark and line endings, so an edit of one line changes only that line.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = ["link_target", "remove_stale_temporaries", "replace_file", "rewrite_file", "write_file", "write_new_file"]

TEMPORARY_GLOB = ".*.tmp"
"""The names of the temporary files, in the target's folder."""


@contextlib.contextmanager
def _temporary_copy(path: Path, text: str | bytes, mode: int) -> Iterator[str]:
    """A new temporary file beside ``path`` (same file system) holding ``text`` (or bytes), synced, with ``mode``.

    It stays locked while the caller moves it into place; it is removed if it is still there
    when the block ends (the caller linked it, or failed).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # "being written": remove_stale_temporaries leaves it alone
        os.fchmod(fd, mode)  # mkstemp makes 0600; the file should look like any other the user has
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.close(fd)  # releases the lock


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_new_file(path: Path, text: str | bytes) -> None:
    """Create ``path`` with ``text`` (or bytes) atomically, refusing to replace anything.

    The text goes to a temporary file in the same directory, which is then hard-linked to its
    final name: the link fails if the name exists (even if it appeared a moment ago), so an
    existing file is never touched, and readers never see a half-written file.

    Raises:
        FileExistsError: if ``path`` exists.
        OSError: if the folder cannot be written (read-only, full); nothing is left behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_copy(path, text, _default_mode()) as tmp:
        try:
            os.link(tmp, path)
        except FileExistsError:  # os.link's error names the temporary file first: name the one that exists
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None


def link_target(path: Path) -> Path:
    """The file that ``path`` names: itself, or the end of its chain of symbolic links.

    Raises:
        OSError: for a link loop (``ELOOP``), or a link whose target does not exist.
    """
    return Path(os.path.realpath(path, strict=True)) if os.path.islink(path) else path


def replace_file(path: Path, text: str | bytes) -> None:
    """Replace the contents of the existing file ``path`` with ``text`` (or bytes) atomically.

    A crash leaves either the old file or the new one, never a mix; the permissions stay. When
    ``path`` is a symbolic link, its target is replaced (the temporary file beside the target)
    and the link is kept.

    Raises:
        FileNotFoundError: if ``path`` (or a link's target) does not exist.
        OSError: if the folder cannot be written (read-only, full), or ``path`` is a link loop;
            the old file is untouched.
    """
    target = link_target(path)
    mode = os.stat(target).st_mode & 0o7777
    with _temporary_copy(target, text, mode) as tmp:
        os.replace(tmp, target)


def rewrite_file(path: Path, change: Callable[[str], str]) -> None:
    """Apply ``change`` to the text of the UTF-8 file ``path`` and write the result back atomically.

    ``change`` sees the text with ``\n`` line ends and without a byte-order mark; the file keeps
    its own: CRLF line ends stay CRLF (a file that mixes them is given to ``change`` as it is),
    a BOM stays. A symbolic link is written through, as [`replace_file`][paper_notes.files.replace_file] does.

    Raises:
        UnicodeDecodeError: if the file is not UTF-8 (nothing written).
        OSError: as for [`replace_file`][paper_notes.files.replace_file].
    """
    target = link_target(path)
    data = target.read_bytes()
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    text = data[len(bom):].decode("utf-8")
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    new = change(text.replace("\r\n", "\n") if crlf else text)
    replace_file(target, bom + (new.replace("\n", "\r\n") if crlf else new).encode("utf-8"))


def write_file(path: Path, data: str | bytes) -> None:
    """Create or replace ``path`` with ``data`` atomically (files the project owns, like the build cache).

    A symbolic link is written through, as [`replace_file`][paper_notes.files.replace_file] does.

    Raises:
        OSError: if the folder cannot be written (read-only, full); a file already there is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    target = link_target(path)
    with _temporary_copy(target, data, _default_mode()) as tmp:
        os.replace(tmp, target)


def remove_stale_temporaries(folder: Path, min_age_s: float = 10.0) -> list[Path]:
    """Remove the temporary files that killed writes left in ``folder``; return them.

    A temporary file is stale when no command holds it locked and it is older than
    ``min_age_s`` (a writer creates the file a moment before it locks it). Without ``fcntl``
    (Windows) the age alone decides, with an hour for ``min_age_s``.
    """
    removed = []
    now = time.time()
    for tmp in sorted(folder.glob(TEMPORARY_GLOB)) if folder.is_dir() else []:
        try:
            if now - tmp.stat().st_mtime < (min_age_s if fcntl is not None else max(min_age_s, 3600)):
                continue
            if fcntl is None:
                tmp.unlink()
            else:
                with open(tmp, "rb") as handle:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # another command is writing it right now
                    tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:  # its writer just finished with it
            continue
    return removed
