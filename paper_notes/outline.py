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
from functools import partial
from typing import Any

from .schema import Field, ListOf, Record, Schema, Text, Where
from .text import markdown_text
from .yamlio import SchemaError

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
_PANEL = re.compile(r"^[a-z]$")


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


# --- the declaration -------------------------------------------------------------------------


def _results(values: dict[str, Any], path: Where, where: str) -> Results:
    for i, row in enumerate(values["rows"]):
        if len(row) != len(values["columns"]):
            raise SchemaError(path, f"{where}.rows[{i}]", f"got {list(row)!r}; expected a list of "
                                                          f"{len(values['columns'])} cells, one per column")
    return Results(**values)


_CELL = Text(one_line=False, numbers=True)
RESULTS = Schema("the numbers a figure or table reports", (
    Field("columns", ListOf(_CELL, "column names"), "the table's header", required=True),
    Field("rows", ListOf(ListOf(_CELL, "cells"), "rows"), "one list of cells per row, as many as columns",
          required=True),
    Field("note", _CELL, "what a reader needs to read the numbers (units, the setting)"),
), key="key")


def _panel_letters(panels: tuple[str, ...]) -> str | None:
    if all(_PANEL.match(p) for p in panels):
        return None
    return f"got {list(panels)!r}; expected a list of panel letters such as [a, b, c]"


ITEM = Schema("one section, figure or table", (
    Field("n", Text(numbers=True), "its number as printed: `2.4`, `A.1` for a section; `4`, `2.3` for a figure; "
                                   "`1`, `1c` for a table", required=True),
    Field("title", Text(numbers=True), "its title as in the paper", required=True),
    Field("gist", Text(numbers=True, one_line=False), "what it says, in our own Chinese", required=True),
    Field("panels", ListOf(Text(), "panel letters", unique="a panel letter"), "figures only: its panels' letters",
          rule=_panel_letters),
    Field("results", Record(RESULTS, _results), "figures and tables only: the numbers it reports"),
), key="key")


def _item(kind: str, values: dict[str, Any], path: Where, where: str) -> OutlineItem:
    if not NUMBER[kind].match(values["n"]):
        raise SchemaError(path, f"{where}.n", f"got {values['n']!r}; expected a {kind} number such as {_EXAMPLES[kind]}")
    if values["panels"] and kind != "figure":
        raise SchemaError(path, f"{where}.panels", "only figures have panels")
    if values["results"] is not None and kind == "section":
        raise SchemaError(path, f"{where}.results", "only figures and tables carry results")
    return OutlineItem(kind, **values)


def _outline(values: dict[str, Any], path: Where, where: str) -> Outline:
    for key in _KEYS.values():
        seen: set[str] = set()
        for i, item in enumerate(values[key]):
            if item.n.lower() in seen:
                raise SchemaError(path, f"{where}.{key}[{i}].n", f"{item.label_en} is listed twice")
            seen.add(item.n.lower())
    if not (values["sections"] or values["figures"] or values["tables"]):
        raise SchemaError(path, where, "has no sections, figures or tables")
    return Outline(**values)


def _items(kind: str) -> ListOf:
    return ListOf(Record(ITEM, partial(_item, kind)), f"{kind}s")


OUTLINE = Schema("a paper's outline", (
    Field("version", Text(numbers=True), "which version of the paper the numbers follow, e.g. 'arXiv v1'",
          required=True),
    Field("sections", _items("section"), "the sections, in the paper's order"),
    Field("figures", _items("figure"), "the figures, in the paper's order"),
    Field("tables", _items("table"), "the tables, in the paper's order (a sub-table such as 1c is an item of its own)"),
), key="key")
"""``outline:`` in ``papers/<id>.yaml``."""

OUTLINE_RECORD = Record(OUTLINE, _outline)
"""The outline as the value of a field (``registry.PAPER``'s ``outline``)."""


def parse_outline(data: Any, path: Where = "outline") -> Outline:
    """Validate the ``outline`` mapping of a paper file (``path`` names the file in messages).

    Raises:
        SchemaError: with ``field`` the dotted path of the offending value
            (``outline.figures[3].panels``), for a missing ``version``, an unknown key, an item
            without number, title or gist, a malformed or repeated number, panels on a section
            or table, or a ``results`` table whose rows do not match its columns.
    """
    return OUTLINE_RECORD.read(data, path, "outline", True)


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
