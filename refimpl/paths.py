"""What is wrong with a path a user named: the one check of every command's input files and folders.

Kept apart from [`refimpl.checks`][refimpl.checks] so that the `notes` command, which never needs
PyTorch, can use it without importing torch (about 2.5 s of a 3.3 s `notes check`).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["path_problem"]


def path_problem(path: Path, kind: str = "file") -> str | None:
    """What is wrong with ``path`` as an input ``kind`` (``"file"`` or ``"folder"``), or ``None``.

    The words finish a sentence that starts with the path (``f"image {path!r} {problem}"``), so
    that every command says what the path *is* rather than a misleading "does not exist": a
    dangling link, a link loop, a folder given as a file, a FIFO or a device such as
    ``/dev/null`` (a read would block or return nothing), or a file without read permission.

    Examples:
        >>> path_problem(Path("/nonexistent/x.png"))
        'does not exist'
        >>> path_problem(Path("/"))
        'is a folder; expected a file'
        >>> path_problem(Path("/dev/null"))
        'is a character device, not a regular file'
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind={kind!r}; expected 'file' or 'folder'")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "is a link to a missing target" if path.is_symlink() else "does not exist"
    except NotADirectoryError:
        return "does not exist (a part of the path before it is a file, not a folder)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a loop of symbolic links"
        return f"cannot be examined ({exc.strerror or exc})"
    if kind == "folder":
        if stat.S_ISDIR(mode):
            return None if os.access(path, os.R_OK | os.X_OK) else "is a folder without read permission"
        return "is a file; expected a folder" if stat.S_ISREG(mode) else f"is {_FILE_TYPES.get(stat.S_IFMT(mode), 'not a folder')}; expected a folder"
    if stat.S_ISDIR(mode):
        return "is a folder; expected a file"
    if not stat.S_ISREG(mode):
        return f"is {_FILE_TYPES.get(stat.S_IFMT(mode), 'a special file')}, not a regular file"
    if not os.access(path, os.R_OK):
        return "is a file without read permission"
    return None


_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
