"""Helpers of the fault suite (``tests/test_faults*.py``): one-line output, folder snapshots, tmpfs mounts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def one_line(text: str) -> str:
    """The text, which must be exactly one line."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: a write, a loss or a leftover shows as a difference."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A small tmpfs mounted for the test: a full disk, or a folder even root cannot write.

    Skips the test (with the reason) where mounting is not allowed (no root, no CAP_SYS_ADMIN).
    """
    folder = Path(tempfile.mkdtemp(prefix="faults-tmpfs-"))
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip() or 'mount failed'}): needs root with CAP_SYS_ADMIN")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        folder.rmdir()


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte."""
    # Unbuffered, and the OSError caught outside the file: a buffered close would retry the write
    # that failed and raise ENOSPC again (unless the free space was a multiple of the chunk).
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * 65536)
            os.fsync(handle.fileno())
