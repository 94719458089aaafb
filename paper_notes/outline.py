"""A paper's outline as data: ``outline:`` in ``papers/<id>.yaml``, validated, with one anchor per item.

The outline lists a paper's sections, figures and tables with their numbers as printed in the
version named by ``outline.version``, their titles as in the paper, and a short gist in our own
Chinese. It is what a reference such as ``[@hiera, 图 4]`` is checked against
([`references`][paper_notes.references]), and the paper's reading-list page shows it, one anchor per item::

    outline:
      version: "arXiv v1"
      sections: [{n: "2.4", title: "...", gist: "..."}]
      figures:  [{n: "4", title: "...", gist: "...", panels: [a, b, c, d, e]}]
      tables:   [{n: "1c", title: "...", gist: "...", results: {columns: [...], rows: [[...]]}}]

A figure or table may carry ``results``: the numbers it reports, as a small table (``columns``,
``rows``, an optional ``note``). Pages show them with ``<!-- results: mae 表 1c -->``, so a number
on the site and its place in the paper live in one file. A sub-table (MAE Table 1c) is an item
of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .text import markdown_text

KINDS = ("section", "figure", "table")
"""The kinds of outline items, in the order the paper page shows them."""

_KEYS = {"section": "sections", "figure": "figures", "table": "tables"}
_LABEL_ZH = {"section": "§{n}", "figure": "图 {n}", "table": "表 {n}"}
_LABEL_EN = {"section": "Section {n}", "figure": "Figure {n}", "table": "Table {n}"}
_ANCHOR = {"section": "sec", "figure": "fig", "table": "tab"}

NUMBER = {
    "section": re.compile(r"^(?:[0-9]+|[A-Z])(?:\.[0-9]+)*$"),
    "figure": re.compile(r"^(?:[0-9]+|[A-Z])(?:\.[0-9]+)?$"),
    "table": re.compile(r"^[0-9]+[a-z]?$"),
}
"""Item numbers: sections ``4``, ``2.4``, ``A.1``, ``6.1.3``; figures ``4``, ``2.3`` (KAN numbers
figures per section), ``B.1``; tables ``1``, ``1c`` (a sub-table)."""

_EXAMPLES = {"section": "'2.4' or 'A.1'", "figure": "'4' or '2.3'", "table": "'1' or '1c'"}
_ITEM_KEYS = {"n", "title", "gist", "panels", "results"}
_PANEL = re.compile(r"^[a-z]$")


class OutlineError(ValueError):
    """Raised by [`parse_outline`][paper_notes.outline.parse_outline]; ``field`` is the dotted path inside the paper file."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Results:
    """Numbers a figure or table of the paper reports, as the page shows them."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class OutlineItem:
    """One section, figure or table of a paper."""

    kind: str
    n: str
    title: str
    gist: str
    panels: tuple[str, ...] = ()
    results: Results | None = None

    @property
    def anchor(self) -> str:
        """The item's id on the paper page: ``sec-2-4``, ``sec-a-1``, ``fig-4``, ``fig-2-3``, ``tab-1c``."""
        return f"{_ANCHOR[self.kind]}-" + self.n.lower().replace(".", "-")

    @property
    def label(self) -> str:
        """``§2.4``, ``图 4``, ``表 1c``: how the site names the item."""
        return _LABEL_ZH[self.kind].format(n=self.n)

    @property
    def label_en(self) -> str:
        """``Section 2.4``, ``Figure 4``, ``Table 1c``: how the paper names it."""
        return _LABEL_EN[self.kind].format(n=self.n)


@dataclass(frozen=True)
class Outline:
    """Sections, figures and tables of one paper, numbered as in ``version``."""

    version: str
    sections: tuple[OutlineItem, ...]
    figures: tuple[OutlineItem, ...]
    tables: tuple[OutlineItem, ...]

    def items(self, kind: str | None = None) -> tuple[OutlineItem, ...]:
        """All items of ``kind`` (every kind if ``None``), in the paper's order."""
        if kind is None:
            return self.sections + self.figures + self.tables
        return getattr(self, _KEYS[kind])

    def find(self, kind: str, n: str) -> OutlineItem | None:
        """The item numbered ``n`` of ``kind``, or ``None``; ``n`` is matched case-insensitively."""
        for item in self.items(kind):
            if item.n.lower() == n.lower():
                return item
        return None


def _text(value: Any, field: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (required and not str(value).strip()):
        raise OutlineError(field, f"got {value!r}; expected a non-empty string")
    return str(value).strip()


def _parse_results(data: Any, field: str) -> Results:
    if not isinstance(data, dict) or not {"columns", "rows"} <= set(data) or set(data) - {"columns", "rows", "note"}:
        raise OutlineError(field, f"got {data!r}; expected a mapping with 'columns', 'rows' and an optional 'note'")
    columns = data["columns"]
    if not isinstance(columns, list) or not columns:
        raise OutlineError(f"{field}.columns", f"got {columns!r}; expected a non-empty list of column names")
    cols = tuple(_text(c, f"{field}.columns[{i}]") for i, c in enumerate(columns))
    rows = data["rows"]
    if not isinstance(rows, list) or not rows:
        raise OutlineError(f"{field}.rows", f"got {rows!r}; expected a non-empty list of rows")
    parsed = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(cols):
            raise OutlineError(f"{field}.rows[{i}]", f"got {row!r}; expected a list of {len(cols)} cells, one per column")
        parsed.append(tuple(_text(cell, f"{field}.rows[{i}][{j}]") for j, cell in enumerate(row)))
    return Results(cols, tuple(parsed), _text(data.get("note"), f"{field}.note", required=False))


def _parse_item(kind: str, data: Any, field: str) -> OutlineItem:
    if not isinstance(data, dict):
        raise OutlineError(field, f"got {data!r}; expected a mapping with n, title and gist")
    unknown = sorted(set(data) - _ITEM_KEYS)
    if unknown:
        raise OutlineError(f"{field}.{unknown[0]}", f"unknown key; expected only: n, title, gist, panels, results")
    for key in ("n", "title", "gist"):
        if key not in data:
            raise OutlineError(f"{field}.{key}", "missing (required)")
    n = _text(data["n"], f"{field}.n")
    if not NUMBER[kind].match(n):
        raise OutlineError(f"{field}.n", f"got {n!r}; expected a {kind} number such as {_EXAMPLES[kind]}")
    panels: tuple[str, ...] = ()
    if "panels" in data:
        if kind != "figure":
            raise OutlineError(f"{field}.panels", "only figures have panels")
        value = data["panels"]
        if not isinstance(value, list) or not value or not all(isinstance(p, str) and _PANEL.match(p) for p in value):
            raise OutlineError(f"{field}.panels", f"got {value!r}; expected a list of panel letters such as [a, b, c]")
        if len(set(value)) != len(value):
            raise OutlineError(f"{field}.panels", f"got {value!r}; a panel letter is listed twice")
        panels = tuple(value)
    results = None
    if "results" in data:
        if kind == "section":
            raise OutlineError(f"{field}.results", "only figures and tables carry results")
        results = _parse_results(data["results"], f"{field}.results")
    return OutlineItem(kind, n, _text(data["title"], f"{field}.title"), _text(data["gist"], f"{field}.gist"),
                       panels, results)


def parse_outline(data: Any) -> Outline:
    """Validate the ``outline`` mapping of a paper file.

    Raises:
        OutlineError: with ``field`` the dotted path of the offending value
            (``outline.figures[3].panels``), for a missing ``version``, an unknown key, an item
            without number, title or gist, a malformed or repeated number, panels on a section
            or table, or a ``results`` table whose rows do not match its columns.
    """
    if not isinstance(data, dict):
        raise OutlineError("outline", f"got {type(data).__name__}; expected a mapping with version, sections, figures, tables")
    unknown = sorted(set(data) - {"version", *_KEYS.values()})
    if unknown:
        raise OutlineError(f"outline.{unknown[0]}", "unknown key; expected only: version, sections, figures, tables")
    if "version" not in data:
        raise OutlineError("outline.version", "missing (required): which version of the paper the numbers follow, e.g. 'arXiv v1'")
    version = _text(data["version"], "outline.version")
    parts: dict[str, tuple[OutlineItem, ...]] = {}
    for kind, key in _KEYS.items():
        value = data.get(key, [])
        if not isinstance(value, list):
            raise OutlineError(f"outline.{key}", f"got {value!r}; expected a list of items")
        items = tuple(_parse_item(kind, item, f"outline.{key}[{i}]") for i, item in enumerate(value))
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.n.lower() in seen:
                raise OutlineError(f"outline.{key}[{i}].n", f"{item.label_en} is listed twice")
            seen.add(item.n.lower())
        parts[key] = items
    if not any(parts.values()):
        raise OutlineError("outline", "has no sections, figures or tables")
    return Outline(version, parts["sections"], parts["figures"], parts["tables"])


def outline_field(data: Any, path: Path) -> Outline | None:
    """``parse_outline`` for the registry: ``None`` stays ``None``; errors become a ``SchemaError`` on ``path``."""
    from .registry import SchemaError  # the registry imports this module

    if data is None:
        return None
    try:
        return parse_outline(data)
    except OutlineError as exc:
        raise SchemaError(path, exc.field, str(exc)) from None


def outline_markdown(outline: Outline, paper_id: str) -> str:
    """The outline on the paper page: one anchored line per item, inside ``<div class="paper-outline">``.

    The block is where references point; it is the definition of each number, so the bare-mention
    scan leaves it alone ([`EXEMPT_CLASSES`][paper_notes.mentions.EXEMPT_CLASSES]).
    """
    lines = [
        "## 论文结构 { #outline }",
        "",
        f"编号按 {outline.version}。本站每一处指向这篇论文的图、表、节都链接到这里对应的一行，"
        "构建时逐一核对；标题照论文原文，说明是我们自己的话。",
        "",
        '<div class="paper-outline" markdown>',
        "",
    ]
    headings = {"section": "章节", "figure": "图", "table": "表"}
    for kind in KINDS:
        items = outline.items(kind)
        if not items:
            continue
        lines += [f"### {headings[kind]} {{ #outline-{_KEYS[kind]} }}", ""]
        for item in items:
            panels = f"（小图 {', '.join(f'({p})' for p in item.panels)}）" if item.panels else ""
            lines.append(f'- <span id="{item.anchor}">{item.label}</span> **{markdown_text(item.title)}** {item.gist}{panels}')
        lines.append("")
    lines += ["</div>", ""]
    return "\n".join(lines)
