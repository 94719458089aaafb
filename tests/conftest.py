"""Shared fixtures: the repository, a strict build of the site (once per session), a scratch copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = [sys.executable, "-m", "mkdocs"]
ENV = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}

# What a scratch copy of the project needs in order to build.
PROJECT_PARTS = ("mkdocs.yml", "glossary.yaml", "papers", "docs", "scripts", "refimpl", "paper_notes")


@dataclass
class Build:
    site: Path
    seconds: float
    log: str


def run_build(root: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MKDOCS, "build", "--strict", "--config-file", str(root / "mkdocs.yml"), "--site-dir", str(site_dir)],
        cwd=root, env=ENV, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The real site, built once with ``mkdocs build --strict``; fails the session's site tests if it fails."""
    site = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    result = run_build(ROOT, site)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return Build(site=site, seconds=seconds, log=result.stderr)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch copy of the project (papers, glossary, docs, code) that a test may break."""
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / part)
    # Tests on a copy are about validation and links, not notebooks: skip executing them (saves
    # ~20 s per build). The real site is built with execution by `built_site`.
    config = tmp_path / "mkdocs.yml"
    text = config.read_text(encoding="utf-8")
    if "      execute: true" not in text:
        pytest.fail("mkdocs.yml no longer has 'execute: true' for mkdocs-jupyter; update this fixture")
    config.write_text(text.replace("      execute: true", "      execute: false"), encoding="utf-8")
    return tmp_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked tests where there is no CUDA device (CI runs on CPUs)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
