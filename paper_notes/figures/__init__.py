"""Figures for the concept pages, drawn by code at build time (never screenshots of papers).

Each module in this package exposes ``FIGURES``: a dict from an output name (``"masking/random.svg"``)
to a function that takes no arguments and returns a ``matplotlib.figure.Figure``. The build
(the ``paper-notes`` plugin, [`paper_notes.plugin`][paper_notes.plugin]) writes every figure to ``docs/figures/<name>`` in the built site, so a
page shows it with ``![caption](../figures/masking/random.svg)``. Titles, axis labels and legends are
Chinese, with the English term in brackets where the page uses it (``掩码率 (masking ratio)``).

Fonts (:func:`style`): Latin letters, digits and symbols in DejaVu Sans (matplotlib's own font), Chinese
in Noto Sans CJK SC, a font file the ``noto-cjk-sans-otc`` package of the docs extra ships (SIL OFL
1.1), so a fresh ``pip install -e '.[docs]'`` draws the same glyphs on any machine. The SVG holds the
glyphs as paths: a reader needs no font. A character that neither font has fails the figure
(:func:`render_svg` raises) instead of drawing an empty box.

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
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import cache
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


LATIN_FAMILY = "DejaVu Sans"
"""The font of Latin text, digits and symbols: matplotlib's own, first in the fallback list."""

CJK_FAMILY = "Noto Sans CJK SC"
"""The font of Chinese text: the Simplified Chinese face of the collection ``noto-cjk-sans-otc`` ships."""

_MISSING_GLYPH = r"Glyph (\d+) \(.*\) missing from"
"""The start of matplotlib's warning for a character no font in the list has."""


@cache
def cjk_family() -> str | None:
    """Register the Noto Sans CJK collection with matplotlib and name the family Chinese is drawn in.

    The collection is the file of the ``noto-cjk-sans-otc`` package (docs extra). matplotlib 3.11
    registers each of its ten faces; a version that reads only a collection's first face gets Noto
    Sans CJK JP (the same characters, Japanese forms of a few), which is then used.

    Returns:
        ``"Noto Sans CJK SC"``, another face's family, or ``None`` if the package is not installed.
    """
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return None
    from matplotlib import font_manager

    path = str(FONT_PATH)
    font_manager.fontManager.addfont(path)
    names = {entry.name for entry in font_manager.fontManager.ttflist if entry.fname == path}
    return CJK_FAMILY if CJK_FAMILY in names else min(names, default=None)


def style() -> dict[str, object]:
    """The matplotlib settings every figure is drawn with (``matplotlib.rc_context(style())``).

    ``font.family`` is a fallback list: DejaVu Sans draws what it has (Latin, digits, the minus sign,
    math), Noto Sans CJK SC the rest. SVG text is written as paths, with a fixed hash salt so that an
    unchanged figure gives the same bytes.
    """
    cjk = cjk_family()
    return {"font.family": [LATIN_FAMILY, *([cjk] if cjk else [])], "svg.fonttype": "path",
            "svg.hashsalt": "paper-notes"}


def render_svg(make_figure: Callable[[], object]) -> bytes:
    """Draw one figure with :func:`style` and return it as SVG with text as paths (no font needed to view it).

    Raises:
        ValueError: naming the figure and the character, if it draws a character that no font of
            :func:`style` has, in text or in a ``$...$`` formula (matplotlib would only warn, or log,
            and draw an empty box).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = None
    formulas = _FormulaGlyphs()  # mathtext logs its missing glyphs instead of warning
    mathtext = logging.getLogger("matplotlib.mathtext")
    level = mathtext.level
    mathtext.setLevel(min(mathtext.getEffectiveLevel(), logging.WARNING))
    mathtext.addHandler(formulas)
    try:
        with warnings.catch_warnings(), plt.rc_context(style()):
            warnings.filterwarnings("error", message=_MISSING_GLYPH, category=UserWarning)
            try:
                fig = make_figure()
                buffer = io.BytesIO()
                fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
            except UserWarning as exc:
                match = re.match(_MISSING_GLYPH, str(exc))
                if match is None:
                    raise
                raise ValueError(_missing_glyph_message(make_figure, chr(int(match.group(1))))) from None
    finally:
        mathtext.removeHandler(formulas)
        mathtext.setLevel(level)
        if fig is not None:
            plt.close(fig)
    if formulas.missing:
        raise ValueError(_missing_glyph_message(make_figure, formulas.missing[0], formula=True))
    return buffer.getvalue()


class _FormulaGlyphs(logging.Handler):
    """Collects the characters mathtext replaced by a dummy symbol (a label with ``$...$`` is all mathtext)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.missing: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.search(r"does not have a glyph for .*\[U\+([0-9a-fA-F]+)\]", record.getMessage())
        if match:
            self.missing.append(chr(int(match.group(1), 16)))


def _missing_glyph_message(make_figure: Callable[[], object], char: str, formula: bool = False) -> str:
    where = f"{getattr(make_figure, '__module__', '?')}.{getattr(make_figure, '__qualname__', make_figure)!s}"
    if formula:
        return (f"figure {where} draws {char!r} (U+{ord(char):04X}) in a label with a $...$ formula, which "
                "matplotlib draws wholly in its math font; put that text in a label of its own")
    fonts = ", ".join(style()["font.family"])  # type: ignore[arg-type]
    if cjk_family() is None:
        fix = ("Chinese is drawn in Noto Sans CJK SC from the noto-cjk-sans-otc package: "
               "install the docs extra (pip install -e '.[docs]')")
    else:
        fix = "write it with characters these fonts have"
    return f"figure {where} draws {char!r} (U+{ord(char):04X}), which none of the fonts {fonts} has; {fix}"
