"""Notebooks through the Markdown path: run a jupytext notebook (cached), then write it as Markdown.

``docs/notebooks/*.py`` are jupytext percent-format notebooks. At build time each one is executed
with nbclient in its own folder, the executed notebook is kept in ``.cache/site/notebooks/<key>.ipynb``
under [`fingerprint`][paper_notes.buildcache.fingerprint] (its own source, the project modules it
imports, the packages' versions), and [`to_markdown`][paper_notes.notebooks.to_markdown] turns it into
an ordinary Markdown page: the Markdown cells as written, each code cell as a fenced ``python`` block,
its printed text as a fenced ``text`` block and its figures inline (``data:`` URIs). MkDocs then
renders it like any other page, so citations, references to a paper's items, math, glossary tooltips,
links and the bare-mention checks apply to notebooks exactly as to the rest of the site.

A cell tagged ``hide-input`` shows its outputs only. A cell that raises, runs longer than
[`TIMEOUT_S`][paper_notes.notebooks.TIMEOUT_S] or kills its kernel fails the build in one line
naming the notebook and the cell (its number and first line); the traceback of a cell that
raised is logged at debug level (``mkdocs build --verbose``).
"""

from __future__ import annotations

import base64
import html
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .buildcache import NOTEBOOK_RENDERERS, cache_dir, fingerprint
from .files import write_file

log = logging.getLogger("mkdocs.plugins.paper_notes.notebooks")

NOTEBOOKS = "notebooks"
"""Docs folder whose ``*.py`` files are notebooks."""

KERNEL = "python3"
TIMEOUT_S = 120
"""Longest a cell may run, in seconds (``notebooks: timeout_s`` of the ``paper-notes`` plugin in ``mkdocs.yml`` overrides it).

The slowest cell of the site's notebooks today is ``kan_fit.py``'s training cell: 4.7 s on a
2-core CPU machine (the ``matplotlib`` imports are next, at 3-4 s with a cold cache). 120 s is
about 25 times that: room for a slower CI runner or a busier machine, while a cell that never
ends (a ``while True``, a read that waits for input) fails the build in two minutes, not ten.
A notebook that needs longer cells should train less, or load a result."""

_TIMED_OUT = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}
"""The error a cell that ran out of time is given (nbclient's ``error_on_timeout``)."""

_CLIENT_LOG = logging.getLogger("paper_notes.nbclient")
_CLIENT_LOG.addHandler(logging.NullHandler())  # nbclient logs each timeout as an error; our one line says it
_CLIENT_LOG.propagate = False

FORMAT = "paper-notes markdown 1"
"""Folded into the cache key: change it when what is cached (the executed notebook) changes meaning."""


class NotebookError(RuntimeError):
    """A notebook that cannot be read or whose cell raised; the message names the notebook and the cell."""


@dataclass(frozen=True)
class Executed:
    """An executed notebook and whether it came from the cache."""

    notebook: Any  # nbformat.NotebookNode
    cached: bool


def execute(path: Path, root: Path, *, run: bool = True, timeout_s: float = TIMEOUT_S) -> Executed:
    """The notebook at ``path``, executed, from the cache when its key is there.

    Args:
        path: a jupytext percent-format ``.py`` notebook.
        root: the project root (for the key and the cache folder).
        run: ``False`` reads the notebook without executing it (a quick build of a copy).
        timeout_s: longest a cell may run, in seconds.

    Raises:
        NotebookError: in one line naming the notebook (and the cell), if the file is not a
            notebook, or a cell raises, runs longer than ``timeout_s`` or kills the kernel.
    """
    import jupytext
    import nbformat

    try:
        notebook = jupytext.read(path, fmt="py:percent")
    except Exception as exc:  # jupytext raises several kinds for a file it cannot read
        raise NotebookError(f"{path}: not a jupytext percent-format notebook ({exc})") from None
    if not run:
        return Executed(notebook, cached=False)
    key = fingerprint(path, root, renderers=NOTEBOOK_RENDERERS, extra=FORMAT)
    cached = cache_dir(root, NOTEBOOKS) / f"{key}.ipynb"
    if cached.is_file():
        log.info("notebook cache hit: %s", path.name)
        return Executed(nbformat.reads(cached.read_text(encoding="utf-8"), as_version=4), cached=True)

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    log.info("executing notebook: %s", path.name)
    running: dict[str, Any] = {}

    def started(cell: Any, cell_index: int) -> None:
        running.update(cell=cell, index=cell_index)

    # On a timeout, interrupt the cell (so the kernel shuts down idle, without a ZMQ traceback of its
    # own on stderr) and take the reply as an error of our own name.
    client = NotebookClient(notebook, timeout=timeout_s, kernel_name=KERNEL, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}}, on_cell_start=started,
                            interrupt_on_timeout=True, error_on_timeout=_TIMED_OUT, log=_CLIENT_LOG)
    try:
        client.execute()
    except (CellTimeoutError, CellExecutionError) as exc:
        if isinstance(exc, CellTimeoutError) or exc.ename == _TIMED_OUT["ename"]:
            raise NotebookError(f"{path}: {_cell_name(running)} ran longer than {timeout_s:g} s, the limit for a "
                                f"cell; expected it to finish (make it faster, or raise the paper-notes plugin's notebooks.timeout_s in mkdocs.yml)") from None
        log.debug("%s: traceback of the cell that raised:\n%s", path, exc)
        raise NotebookError(f"{path}: {_cell_name(running)} raised {exc.ename}: {' '.join(str(exc.evalue).split())} "
                            f"(its traceback: mkdocs build --verbose)") from None
    except DeadKernelError as exc:
        raise NotebookError(f"{path}: the kernel died while running {_cell_name(running)} "
                            f"({' '.join(str(exc).split())})") from None
    write_file(cached, nbformat.writes(notebook))
    return Executed(notebook, cached=False)


def _cell_name(running: dict[str, Any]) -> str:
    """``cell 4 (`train(model, 200)`)``: the cell's number among all cells, from 1, and its first line."""
    if "cell" not in running:
        return "a cell"
    lines = [line for line in _joined(running["cell"].get("source", "")).splitlines() if line.strip()]
    first = lines[0].strip() if lines else ""
    return f"cell {running['index'] + 1} (`{first[:60] + ('...' if len(first) > 60 else '')}`)"


def _fence(text: str, lang: str, css: str = "") -> str:
    """A fenced block (``css`` a class for it) with more backticks than any run inside ``text``."""
    ticks = "`" * max(3, max(map(len, re.findall("`+", text)), default=0) + 1)
    head = f"{ticks} {{ .{lang} .{css} }}" if css else f"{ticks}{lang}"
    return f"{head}\n{text.rstrip(chr(10))}\n{ticks}"


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output(output: Any) -> list[str]:
    """Markdown blocks for one output of a code cell."""
    kind = output.get("output_type")
    if kind == "stream":
        return [_fence(_joined(output.get("text", "")), "text", "nb-output")]
    if kind in ("display_data", "execute_result"):
        data = output.get("data", {})
        if "image/png" in data:
            png = "".join(_joined(data["image/png"]).split())
            base64.b64decode(png, validate=True)  # a broken image fails here, not in the reader's browser
            return [f'<div class="nb-output nb-output--image"><img alt="" src="data:image/png;base64,{png}"></div>']
        if "image/svg+xml" in data:
            return [f'<div class="nb-output nb-output--image">{_joined(data["image/svg+xml"])}</div>']
        if "text/html" in data:
            return [f'<div class="nb-output nb-output--html" markdown="0">\n{_joined(data["text/html"])}\n</div>']
        if "text/plain" in data:
            return [_fence(_joined(data["text/plain"]), "text", "nb-output")]
        return []
    if kind == "error":  # only with allow_errors, which the build never sets
        return [_fence("\n".join(output.get("traceback", [])), "text", "nb-output")]
    return []


def to_markdown(notebook: Any, source_name: str) -> str:
    """The executed ``notebook`` as one Markdown page.

    Args:
        notebook: an ``nbformat`` notebook (executed or not).
        source_name: the notebook's file name, linked at the end of the page for download.

    Returns:
        Markdown: Markdown cells verbatim; code cells fenced as ``python`` (unless tagged
        ``hide-input``), then their outputs (text fenced, images inline, HTML as HTML).
    """
    blocks: list[str] = []
    for cell in notebook.cells:
        source = _joined(cell.get("source", "")).strip("\n")
        if cell.get("cell_type") == "markdown":
            blocks.append(source)
        elif cell.get("cell_type") == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            if source and "hide-input" not in tags:
                blocks.append(_fence(source, "python"))
            streams: list[str] = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stdout":
                    streams.append(_joined(output.get("text", "")))  # consecutive prints: one block
                    continue
                if streams:
                    blocks.append(_fence("".join(streams), "text", "nb-output"))
                    streams = []
                blocks += _output(output)
            if streams:
                blocks.append(_fence("".join(streams), "text", "nb-output"))
    blocks.append(f'<p class="nb-source">源文件：<a href="{html.escape(source_name)}" download>'
                  f"<code>{html.escape(source_name)}</code></a>（jupytext 格式，可用 Jupyter 打开）</p>")
    return "\n\n".join(blocks) + "\n"
