"""Figures for the concept pages, drawn by code at build time (never screenshots of papers).

Each module in this package exposes ``FIGURES``: a dict from an output name (``"masking/random.svg"``)
to a function that takes no arguments and returns a ``matplotlib.figure.Figure``. The build
(``scripts/gen_pages.py``) writes every figure to ``docs/figures/<name>`` in the built site, so a
page shows it with ``![caption](../figures/masking/random.svg)``. Labels inside figures are in
English (the build machine may have no CJK font); captions on the pages are Chinese.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
from collections.abc import Callable, Iterator


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
