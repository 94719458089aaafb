"""The build cache: keys cover what notebooks and figures import, and a stale entry is never used."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

import refimpl
from paper_notes.buildcache import declared_inputs, dependencies, fingerprint, imported_names
from paper_notes.figures import figure_modules
from paper_notes.figures.pretrain import RUNS

from conftest import ROOT, run_build


def _rel(paths: list[Path]) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in paths}


# Every plotting notebook applies the figures' style (paper_notes.figures.style: the CJK font), so a
# change to the style or the font re-runs it.
STYLE = {"paper_notes/__init__.py", "paper_notes/buildcache.py", "paper_notes/figures/__init__.py", "paper_notes/files.py"}


def test_a_notebook_depends_on_the_project_modules_it_imports_transitively_and_no_others() -> None:
    files, external = dependencies(ROOT / "docs/notebooks/mae_shuffle_unshuffle.py", ROOT)
    # refimpl.mae imports .masking, .pos_embed and .vit; refimpl.vit imports refimpl.pos_embed;
    # refimpl.checks re-exports refimpl.paths.
    assert _rel(files[1:]) == {"refimpl/__init__.py", "refimpl/checks.py", "refimpl/mae.py", "refimpl/masking.py",
                                "refimpl/paths.py", "refimpl/pos_embed.py", "refimpl/vit.py"} | STYLE
    assert {"torch", "matplotlib", "skimage"} <= external
    files, _ = dependencies(ROOT / "docs/notebooks/kan_fit.py", ROOT)
    # The notebook draws the edge functions with the site's figure code (refimpl returns the curves).
    assert _rel(files[1:]) == {"refimpl/__init__.py", "refimpl/bspline.py", "refimpl/checks.py", "refimpl/kan.py",
                                "refimpl/paths.py", "paper_notes/figures/kan.py"} | STYLE


def test_relative_and_from_imports_resolve_to_module_names() -> None:
    source = "from .masking import patchify\nfrom . import vit\nimport torch.nn as nn\nfrom ..x import y\n"
    names = imported_names(source, "refimpl.sub.mod")
    assert {"refimpl.sub.masking", "refimpl.sub.masking.patchify", "refimpl.sub", "refimpl.sub.vit",
            "torch.nn", "refimpl.x", "refimpl.x.y"} <= names
    with pytest.raises(ValueError, match="cannot read the imports of refimpl.bad"):
        imported_names("def (:\n", "refimpl.bad")


@pytest.fixture
def code_copy(tmp_path: Path) -> Path:
    for part in ("refimpl", "paper_notes", "docs/notebooks", "docs/guides/runs"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_key_changes_with_an_imported_module_and_only_then(code_copy: Path) -> None:
    notebook, figures = code_copy / "docs/notebooks/kan_fit.py", code_copy / "paper_notes/figures/kan.py"
    before = fingerprint(notebook, code_copy), fingerprint(figures, code_copy)
    hiera = code_copy / "refimpl/hiera.py"
    hiera.write_text(hiera.read_text(encoding="utf-8") + "\n# an edit kan does not import\n", encoding="utf-8")
    assert (fingerprint(notebook, code_copy), fingerprint(figures, code_copy)) == before
    kan = code_copy / "refimpl/kan.py"
    kan.write_text(kan.read_text(encoding="utf-8") + "\n# an edit kan imports\n", encoding="utf-8")
    assert fingerprint(notebook, code_copy) != before[0]
    assert fingerprint(figures, code_copy) != before[1]
    # render_svg lives in the package's __init__, which importing paper_notes.figures.kan runs.
    figures_before = fingerprint(figures, code_copy)
    init = code_copy / "paper_notes/figures/__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + "\n# the renderer changed\n", encoding="utf-8")
    assert fingerprint(figures, code_copy) != figures_before


def test_a_key_covers_package_versions_and_the_inputs_its_modules_declare(code_copy: Path) -> None:
    pretrain = code_copy / "paper_notes/figures/pretrain.py"
    assert declared_inputs(pretrain) == ("docs/guides/runs",)
    assert ROOT / declared_inputs(pretrain)[0] == RUNS
    key = fingerprint(pretrain, code_copy)
    assert fingerprint(pretrain, code_copy, renderers=["nbconvert"]) != key  # a version joins
    log = code_copy / "docs/guides/runs/mae-tiny-cpu.jsonl"
    log.write_text(log.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert fingerprint(pretrain, code_copy) != key
    # The Hiera figures draw numbers from papers/hiera.yaml through figures/_results.py's INPUTS.
    shutil.copytree(ROOT / "papers", code_copy / "papers")
    hiera = code_copy / "paper_notes/figures/hiera.py"
    key = fingerprint(hiera, code_copy)
    paper = code_copy / "papers/hiera.yaml"
    paper.write_text(paper.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert fingerprint(hiera, code_copy) != key


def test_every_figure_module_can_be_keyed_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = figure_modules()
    assert {name for name, _ in modules} >= {"paper_notes.figures.kan", "paper_notes.figures.hiera"}
    monkeypatch.setattr(sys, "modules", {k: v for k, v in sys.modules.items() if k not in dict(modules)})
    for _, path in modules:
        assert len(fingerprint(path, ROOT)) == 64
    assert not set(dict(modules)) & set(sys.modules), "keying a figure module imported it"


# Two probe notebooks: one calls refimpl.kan; one imports only the refimpl package (not torch, to
# keep the test short) and draws a figure.
_HEADER = ("# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       extension: .py\n"
           "#       format_name: percent\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
           "#     name: python3\n# ---\n\n")
_PROBE_KAN = _HEADER + ("# %% [markdown]\n# # Probe of refimpl.kan\n#\n# Knots: $t_j$.\n\n# %%\n"
                        "from refimpl.kan import uniform_grid\n\nprint(uniform_grid(1, 4, 1))\n")
_PROBE_PLOT = _HEADER + ("# %% [markdown]\n# # Probe of the refimpl package\n\n# %%\nimport matplotlib.pyplot as plt\n"
                         "import numpy as np\n\nimport refimpl\n\nprint(refimpl.__version__)\n"
                         "plt.imshow(np.arange(64.0).reshape(8, 8))\nplt.show()\n")


def _probe_project(tmp_path: Path) -> Path:
    """A small site: the real plugin and its real notebook options, two probe notebooks."""
    project = tmp_path / "project"
    for part in ("refimpl", "paper_notes", "papers"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "glossary.yaml", project / "glossary.yaml")
    (project / "docs/journal/posts").mkdir(parents=True)
    (project / "docs/notebooks").mkdir()
    (project / "docs/index.md").write_text("# probe\n", encoding="utf-8")
    (project / "docs/notebooks/probe_kan.py").write_text(_PROBE_KAN, encoding="utf-8")
    (project / "docs/notebooks/probe_plot.py").write_text(_PROBE_PLOT, encoding="utf-8")
    real = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    notebooks = re.search(r"^      notebooks:\n(?:        .*\n)+", real, flags=re.M)
    assert notebooks and "execute: true" in notebooks.group(0), "mkdocs.yml: notebooks should be executed"
    (project / "mkdocs.yml").write_text(
        "site_name: probe\ndocs_dir: docs\ntheme:\n  name: material\n  font: false\n"
        "plugins:\n  - paper-notes:\n      generate: [feed]   # no figures or API pages: only the notebooks are probed\n"
        + notebooks.group(0), encoding="utf-8")
    return project


def _build(project: Path, site: Path) -> str:
    result = run_build(project, site)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.slow
def test_a_cache_hit_gives_the_same_page_and_a_refimpl_edit_reruns_exactly_its_notebook(tmp_path: Path) -> None:
    project = _probe_project(tmp_path)
    fresh_log = _build(project, tmp_path / "fresh")
    assert fresh_log.count("executing notebook:") == 2
    assert len(list((project / ".cache/site/notebooks").glob("*.ipynb"))) == 2

    module = project / "refimpl/bspline.py"  # where refimpl.kan's uniform_grid comes from
    source = module.read_text(encoding="utf-8")
    edited, count = re.subn(r"(def uniform_grid\(.*?\n    return _extend\(interior, k\))", r"\1 * 2", source,
                            count=1, flags=re.S)
    assert count == 1, "refimpl/bspline.py: uniform_grid no longer ends with 'return _extend(interior, k)'"
    module.write_text(edited, encoding="utf-8")
    log = _build(project, tmp_path / "after")

    # The plot probe does not import refimpl.kan: served from the cache, the same bytes as run fresh.
    assert re.search(r"notebook cache hit: probe_plot\.py", log)
    fresh = (tmp_path / "fresh/notebooks/probe_plot/index.html").read_text(encoding="utf-8")
    cached = (tmp_path / "after/notebooks/probe_plot/index.html").read_text(encoding="utf-8")
    assert refimpl.__version__ in fresh and 'src="data:image/png;base64,' in fresh
    assert cached == fresh
    # The kan probe calls the edited function: executed again, and its output shows the edit.
    assert re.search(r"executing notebook: probe_kan\.py", log) and "notebook cache hit: probe_kan" not in log
    before = (tmp_path / "fresh/notebooks/probe_kan/index.html").read_text(encoding="utf-8")
    after = (tmp_path / "after/notebooks/probe_kan/index.html").read_text(encoding="utf-8")
    assert "tensor([[-1.5000, -1.0000," in before
    assert "tensor([[-3., -2.," in after and "-1.5000" not in after
