"""Figures for the concept pages, drawn by code at build time (never screenshots of papers).

Each module in this package exposes ``FIGURES``: a dict from an output name (``"masking/random.svg"``)
to a function that takes no arguments and returns a ``matplotlib.figure.Figure``. The build
(``scripts/gen_pages.py``) writes every figure to ``docs/figures/<name>`` in the built site, so a
page shows it with ``![caption](../figures/masking/random.svg)``. Labels inside figures are in
English (the build machine may have no CJK font); captions on the pages are Chinese.

A module's figures are drawn again only when its key changes (:func:`cached_figures`): its source,
the project modules it imports, the files they name in ``INPUTS`` and the versions of the packages
that draw them; otherwise the SVG files come from ``.cache/site/figures``.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import pkgutil
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.paper_notes.figures")


def iter_figures() -> Iterator[tuple[str, Callable[[], object]]]:
    """``(name, make_figure)`` for every figure of every module in this package, sorted by name."""
    found: dict[str, Callable[[], object]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, make in getattr(module, "FIGURES", {}).items():
            if name in found:
                raise ValueError(f"figure name {name!r} is defined twice (second time in {module.__name__})")
            found[name] = make
    yield from sorted(found.items())


def figure_modules() -> list[tuple[str, Path]]:
    """``(module name, source file)`` of every module in this package, sorted by name, without importing them."""
    return sorted((f"{__name__}.{info.name}", Path(__path__[0]) / f"{info.name}.py")
                  for info in pkgutil.iter_modules(__path__) if not info.ispkg)


def _forget_project_modules() -> None:
    """Drop ``refimpl`` and this package's modules from ``sys.modules``, so the next import reads
    the files as they are now (``mkdocs serve`` keeps one process across rebuilds)."""
    for name in [n for n in sys.modules if n.partition(".")[0] == "refimpl" or n.startswith(f"{__name__}.")]:
        del sys.modules[name]


def _read_entry(manifest: Path) -> dict[str, bytes] | None:
    """The figures of a complete cache entry, or ``None`` (no entry, or a file of it is gone)."""
    try:
        names = json.loads(manifest.read_text(encoding="utf-8"))
        return {name: (manifest.parent / name).read_bytes() for name in names}
    except FileNotFoundError:
        return None


def cached_figures(root: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, svg)`` for every figure, sorted by name, drawn only where the cache has no current copy.

    Each figure module is keyed by :func:`paper_notes.buildcache.fingerprint` (its source, the
    project modules it imports, its ``INPUTS`` and the versions of the packages that draw it); a
    module whose key is in ``root/.cache/site/figures`` is not even imported.

    Raises:
        ValueError: if two modules define the same figure name.
    """
    from paper_notes.buildcache import FIGURE_RENDERERS, cache_dir, fingerprint
    from paper_notes.files import write_file

    cache = cache_dir(root, "figures")
    found: dict[str, bytes] = {}
    forgotten = False
    for module_name, path in figure_modules():
        key = fingerprint(path, root, renderers=FIGURE_RENDERERS)
        short = module_name.rpartition(".")[2]
        entry = cache / f"{short}-{key}"
        manifest = entry / "manifest.json"
        drawn = _read_entry(manifest)
        if drawn is None:
            if not forgotten:
                _forget_project_modules()
                forgotten = True
            module = importlib.import_module(module_name)
            drawn = {name: render_svg(make) for name, make in sorted(getattr(module, "FIGURES", {}).items())}
            for old in cache.glob(f"{short}-*"):
                shutil.rmtree(old, ignore_errors=True)
            for name, svg in drawn.items():
                write_file(entry / name, svg)
            write_file(manifest, json.dumps(sorted(drawn)))  # last: marks the entry complete
            if drawn:
                log.info("paper-notes: drew %d figure(s) of %s (changed since the cached copy)", len(drawn), module_name)
        for name, svg in drawn.items():
            if name in found:
                raise ValueError(f"figure name {name!r} is defined twice (second time in {module_name})")
            found[name] = svg
    for name in sorted(found):
        yield name, found[name]


def render_svg(make_figure: Callable[[], object]) -> bytes:
    """Draw one figure and return it as SVG with text as paths (no font needed to view it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"svg.fonttype": "path", "svg.hashsalt": "paper-notes"}):
        fig = make_figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
    return buffer.getvalue()
