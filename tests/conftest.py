"""Shared fixtures: the repository, a strict build of the site (once per session), a scratch copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paper_notes.project import copy_site_sources

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = [sys.executable, "-m", "mkdocs"]
ENV = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}



@dataclass
class Build:
    site: Path
    log: str


def build_command(root: Path, site_dir: Path) -> list[str]:
    return [*MKDOCS, "build", "--strict", "--config-file", str(root / "mkdocs.yml"), "--site-dir", str(site_dir)]


def run_build(root: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(build_command(root, site_dir), cwd=root, env=ENV, capture_output=True, text=True, timeout=600)


NOTES = Path(sys.executable).parent / "notes"
"""The installed ``notes`` console script."""


def run_notes(*args: str, cwd: Path | None = None, timeout: float = 60,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``notes ARGS`` in another process, its output captured as text."""
    return subprocess.run([str(NOTES), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference of two tensors (``b`` may be a NumPy array)."""
    import torch

    return (a - torch.as_tensor(b)).abs().max().item()


@pytest.fixture
def official_on_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    """The official Hiera constructors call ``.item()`` on ``torch.linspace``; keep that one tensor on the CPU."""
    import torch

    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *args, **kwargs: linspace(*args, **{**kwargs, "device": "cpu"}))


def uses_built_site(item: pytest.Item) -> bool:
    return "built_site" in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session", autouse=True)
def _site_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[subprocess.Popen[bytes], Path, Path] | None]:
    """Start the strict build of the real site at the first test, if any test needs it.

    The build (about a minute and a half on two cores with an empty cache, most of it one
    process; under 20 s when ``.cache/site`` holds the notebooks and figures) then runs beside the
    other tests, which ``pytest_collection_modifyitems`` puts before the site tests. Its time is
    measured by ``benchmarks/site_build.py``, not asserted here.
    """
    if not any(uses_built_site(item) for item in request.session.items):
        yield None
        return
    site, log = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("site-log") / "mkdocs.log"
    with log.open("wb") as sink:  # a file, not a pipe: nobody reads a pipe until the build is done
        process = subprocess.Popen(build_command(ROOT, site), cwd=ROOT, env=ENV, stdout=sink, stderr=subprocess.STDOUT)
    yield process, site, log
    if process.poll() is None:  # the session ended (or was interrupted) before a site test waited
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def built_site(_site_build: tuple[subprocess.Popen[bytes], Path, Path] | None) -> Build:
    """The real site, built once with ``mkdocs build --strict``; fails the session's site tests if it fails."""
    assert _site_build is not None
    process, site, log = _site_build
    process.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    if process.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed ({process.returncode}):\n{text[-4000:]}")
    return Build(site=site, log=text)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch copy of the project (papers, glossary, docs, code) that a test may break."""
    copy_site_sources(ROOT, tmp_path)
    # Figures drawn by an earlier build of the checkout (keyed on their code, so a test that edits
    # the copy's code gets them redrawn): saves ~10 s per build of a copy.
    # Temporary files are skipped: the session's build may be writing (then renaming) one right now.
    figures = ROOT / ".cache/site/figures"
    try:
        shutil.copytree(figures, tmp_path / ".cache/site/figures", ignore=shutil.ignore_patterns(".*.tmp"))
    except (FileNotFoundError, shutil.Error):  # none yet, or an entry replaced while copying: a miss there
        pass
    # Tests on a copy are about validation and links, not notebooks: skip executing them (saves
    # ~20 s per build). The real site is built with execution by `built_site`.
    config = tmp_path / "mkdocs.yml"
    text = config.read_text(encoding="utf-8")
    if "\n        execute: true\n" not in text:
        pytest.fail("mkdocs.yml no longer has 'paper-notes: notebooks: execute: true'; update this fixture")
    config.write_text(text.replace("\n        execute: true\n", "\n        execute: false\n"), encoding="utf-8")
    return tmp_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests of the built site last, other slow ones just before them; skip ``gpu``-marked
    tests without CUDA (CI runs on CPUs)."""
    import torch

    # Stable sort: the order within each part stays. Other slow tests (builds of small sites) go
    # after the quick ones, so they do not compete with the background build of the real site.
    items.sort(key=lambda item: (uses_built_site(item), item.get_closest_marker("slow") is not None))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
