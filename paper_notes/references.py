r"""References to a paper's sections, figures and tables, checked against its outline.

Syntax, in Markdown outside code (concept pages, diary entries, notebooks' Markdown cells, the
reading list's notes)::

    [@hiera, 图 4]      a figure              [@hiera, 图 4e]    panel (e) of it
    [@mae, 表 1c]       a table (sub-table)   [@kan, §2.4]       a section
    [@mae, §A.1]        an appendix section   [@mae, 附录 A.1]   the same
    [@mae, §4.1; 表 1f; 图 6]                 several, one paper
    [@mae, 表 1c; @hiera, 表 3b]              several papers

English forms are accepted as well: ``Fig. 4``, ``Figure 4``, ``Table 1c``, ``Tab. 1c``,
``Sec. 2.4``, ``Section 2.4``, ``App. A.1``. A plain ``[@mae]`` stays a citation
([`cite`][paper_notes.site.cite]).

A reference renders as a link to the item's anchor on the paper's reading-list page
(``reading-list/<id>.md#fig-4``, see [`outline_markdown`][paper_notes.outline.outline_markdown]), with the
item's title and gist as its hover text, and puts the paper in the page's reference list. A
reference to an item the outline lacks is an [`UnresolvedReference`][paper_notes.references.UnresolvedReference], which fails the strict
build and ``notes check`` with the page, the paper and the item.

Docstrings and titles (where a link cannot go) use the *named form*: the paper's name then the
item, ``Hiera Fig. 4``, ``MAE §A.1``, ``KAN §2.4``, ``Hiera 图 4``. [`named_references`][paper_notes.references.named_references] finds
them, and the same resolution checks them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from .registry import READING_LIST

if TYPE_CHECKING:
    from .outline import OutlineItem
    from .registry import Paper

_N_FIG = r"(?:[0-9]+|[A-Z])(?:\.[0-9]+)?"
_N_SEC = r"(?:[0-9]+|[A-Z])(?:\.[0-9]+)*"
LOCATOR_PATTERNS: tuple[tuple[str, str], ...] = (
    ("figure", rf"(?:图|Figs?\.|Figures?)\s*(?P<n>{_N_FIG})(?P<panel>[a-z])?"),
    ("table", r"(?:表|Tabs?\.|Tables?)\s*(?P<n>[0-9]+[a-z]?)"),
    ("section", rf"(?:§|Secs?\.|Sections?)\s*(?P<n>{_N_SEC})"),
    ("section", r"(?:附录|Apps?\.|Appendix)\s*(?P<n>[A-Z](?:\.[0-9]+)*)"),
)
"""``(kind, regex)`` for one locator; the figure's ``panel`` group is its optional panel letter."""

_LOCATORS = [(kind, re.compile(rf"^{pattern}$")) for kind, pattern in LOCATOR_PATTERNS]

BRACKET = re.compile(r"\[(@[a-z0-9-]+(?:[^\[\]\n])*)\]")
"""Any ``[@...]`` bracket; [`expand_references`][paper_notes.references.expand_references] handles those with at least one locator."""

_PART = re.compile(r"^(?:@(?P<id>[a-z0-9-]+)\s*(?:,\s*(?P<loc1>.+))?|(?P<loc2>[^@].*))$")


class UnresolvedReference(ValueError):
    """A reference the outlines cannot resolve; the message names the page, the paper and the item."""

    def __init__(self, page: str, paper: str, item: str, reason: str) -> None:
        self.page, self.paper, self.item, self.reason = page, paper, item, reason
        super().__init__(f"{page}: reference to {item} of paper '{paper}': {reason}")


@dataclass(frozen=True)
class Locator:
    """A parsed ``图 4e``: kind, number, optional panel, and the text as written."""

    kind: str
    n: str
    panel: str
    text: str

    @property
    def name(self) -> str:
        """``Figure 4e``, ``Table 1c``, ``Section 2.4`` (for messages)."""
        label = {"figure": "Figure", "table": "Table", "section": "Section"}[self.kind]
        return f"{label} {self.n}{self.panel}"


def parse_locator(text: str) -> Locator | None:
    """``图 4e`` -> ``Locator("figure", "4", "e", "图 4e")``; ``None`` if ``text`` is not a locator."""
    text = " ".join(text.split())
    for kind, pattern in _LOCATORS:
        match = pattern.match(text)
        if match:
            panel = match.groupdict().get("panel") or ""
            return Locator(kind, match.group("n"), panel, text)
    return None


@dataclass(frozen=True)
class Resolved:
    """A reference that resolved: the paper, the outline item, the locator as written."""

    paper: Paper
    item: OutlineItem
    locator: Locator

    @property
    def tooltip(self) -> str:
        """Hover text: where, the paper's title of the item, our gist."""
        panel = f"，小图 ({self.locator.panel})" if self.locator.panel else ""
        name = paper_name(self.paper)
        text = f"{name} {self.item.label}{panel}：{self.item.title} —— {self.item.gist}"
        return text.replace('"', "”").replace("\n", " ")


def paper_name(paper: Paper) -> str:
    """The short name a page uses for the paper: the title before its colon (``Hiera``, ``SAM 2``), else
    its ``short_title`` (``ViT``), else the id upper-cased."""
    head = paper.title.split(":", 1)[0].strip()
    if ":" in paper.title and re.sub(r"\s", "", head).lower() == paper.id:
        return head
    return paper.short_title or paper.id.upper()


def resolve(paper_id: str, locator_text: str, papers: dict[str, Paper], page: str) -> Resolved:
    """Check one reference against the outline of ``paper_id``.

    Raises:
        UnresolvedReference: for an unknown paper, a paper without outline, a locator that is not
            a section, figure or table, an item the outline lacks, or a panel the figure does not list.
    """
    locator = parse_locator(locator_text)
    if locator is None:
        raise UnresolvedReference(
            page, paper_id, repr(locator_text),
            "not a section, figure or table; expected e.g. '图 4', '图 4e', '表 1c', '§2.4', '§A.1', 'Fig. 4', 'Table 1c'",
        )
    paper = papers.get(paper_id)
    if paper is None:
        raise UnresolvedReference(page, paper_id, locator.name, f"no such paper id; expected one of: {', '.join(papers)}")
    outline = getattr(paper, "outline", None)
    if outline is None:
        raise UnresolvedReference(page, paper_id, locator.name,
                                  f"papers/{paper_id}.yaml has no outline to check it against")
    item = outline.find(locator.kind, locator.n)
    if item is None:
        have = ", ".join(i.n for i in outline.items(locator.kind)) or "none"
        raise UnresolvedReference(
            page, paper_id, locator.name,
            f"the outline ({outline.version}) has no such {locator.kind}; it has: {have}",
        )
    if locator.panel and locator.panel not in item.panels:
        listed = ", ".join(item.panels) or "none"
        raise UnresolvedReference(
            page, paper_id, locator.name,
            f"{item.label_en} has no panel ({locator.panel}) in the outline; its panels: {listed}",
        )
    return Resolved(paper, item, locator)


def split_bracket(body: str) -> list[tuple[str, str | None]]:
    """``@mae, §4.1; 表 1f; @vit`` -> ``[("mae", "§4.1"), ("mae", "表 1f"), ("vit", None)]``.

    A part without ``@id`` belongs to the paper named before it.

    Raises:
        ValueError: for an empty part or a part before any ``@id``.
    """
    out: list[tuple[str, str | None]] = []
    current: str | None = None
    for raw in body.split(";"):
        part = raw.strip()
        match = _PART.match(part)
        if not part or not match:
            raise ValueError(f"empty or malformed part {raw!r} in [{body}]")
        if match.group("id"):
            current = match.group("id")
            out.append((current, match.group("loc1").strip() if match.group("loc1") else None))
        else:
            if current is None:
                raise ValueError(f"part {part!r} in [{body}] names no paper; start with '@id, '")
            out.append((current, match.group("loc2").strip()))
    return out


def has_locator(body: str) -> bool:
    """Whether the bracket body ``@mae, 表 1c`` holds at least one locator (else it is a plain citation)."""
    try:
        return any(loc is not None for _, loc in split_bracket(body))
    except ValueError:
        return "," in body


def reading_list_link(page_src: str, paper_id: str, anchor: str = "") -> str:
    """Relative Markdown link from ``page_src`` to the paper page (``../reading-list/mae.md#tab-1c``)."""

    target = posixpath.relpath(f"{READING_LIST}/{paper_id}.md", posixpath.dirname(page_src) or ".")
    return target + (f"#{anchor}" if anchor else "")


def render_bracket(body: str, papers: dict[str, Paper], page_src: str) -> tuple[str, list[str], list[Resolved]]:
    """Markdown for one ``[@...]`` bracket that holds references.

    Returns:
        ``(markdown, cited paper ids, resolved references)``. Each reference becomes
        ``[图 4e](../reading-list/hiera.md#fig-4 "tooltip"){: .paper-ref }``; parts are joined
        with ``、``; a plain ``@id`` part becomes its author-year citation.

    Raises:
        UnresolvedReference: for the first part that does not resolve.
    """
    try:
        parts = split_bracket(body)
    except ValueError as exc:
        raise UnresolvedReference(page_src, body.split(",")[0].lstrip("@"), f"[{body}]", str(exc)) from None
    out, cited, resolved = [], [], []
    for paper_id, loc in parts:
        if loc is None:
            if paper_id not in papers:
                raise UnresolvedReference(page_src, paper_id, f"[@{paper_id}]", "no such paper id")
            out.append(f"[{papers[paper_id].short_citation}]({reading_list_link(page_src, paper_id)})")
        else:
            ref = resolve(paper_id, loc, papers, page_src)
            resolved.append(ref)
            href = reading_list_link(page_src, paper_id, ref.item.anchor)
            out.append(f'[{ref.locator.text}]({href} "{ref.tooltip}"){{: .paper-ref }}')
        if paper_id not in cited:
            cited.append(paper_id)
    return "、".join(out), cited, resolved


def expand_references(markdown: str, papers: dict[str, Paper], page_src: str) -> tuple[str, list[str], list[Resolved]]:
    """Replace every reference bracket in ``markdown`` (which holds no code) with its links.

    Brackets without a locator (``[@mae]``, ``[@mae; @vit]``) are left for the citation step.

    Returns:
        ``(markdown, cited paper ids in order of first use, resolved references)``.

    Raises:
        UnresolvedReference: for the first reference that does not resolve.
    """
    cited: list[str] = []
    resolved: list[Resolved] = []

    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        if not has_locator(body):
            return match.group(0)
        text, ids, refs = render_bracket(body, papers, page_src)
        cited.extend(i for i in ids if i not in cited)
        resolved.extend(refs)
        return text

    return BRACKET.sub(replace, markdown), cited, resolved


def paper_names(papers: dict[str, Paper]) -> dict[str, str]:
    """``{"Hiera": "hiera", "SAM 2": "sam2", ...}`` for the papers that have an outline."""
    return {paper_name(p): pid for pid, p in papers.items() if getattr(p, "outline", None) is not None}


_LOCATOR_ANY = re.compile("|".join(f"(?:{p})" for _, p in LOCATOR_PATTERNS).replace("?P<n>", "?:").replace("?P<panel>", "?:"))
"""Any one locator, without groups."""


def named_pattern(names: dict[str, str]) -> re.Pattern[str]:
    """Regex for the named form ``Hiera Fig. 4``, ``MAE 的图 1``, ``(MAE §4.1, Tab. 1c)``, ``(SAM 2 §4 "Memory attention", App. C.1)``.

    Groups: ``name``, ``loc`` (the first locator) and ``more`` (further locators of the same paper,
    after ``,``, ``;``, ``and``, ``、`` or ``和``).
    """
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "(?!)"
    locator = f"(?:{_LOCATOR_ANY.pattern})(?![0-9])"
    titled = rf'{locator}(?:\s*"[^"\n]*")?'  # a locator may name its paragraph: §4 "Memory attention"
    return re.compile(
        rf"(?<![A-Za-z0-9])(?P<name>{alternatives})(?:'s)?\s*(?:的)?\s*(?P<loc>{locator})(?:\s*\"[^\"\n]*\")?"
        rf"(?P<more>(?:\s*(?:,|;|、|和|\band\b)\s*{titled})*)"
    )


def named_locators(match: re.Match[str]) -> list[str]:
    """Every locator of a [`named_pattern`][paper_notes.references.named_pattern] match: the first, then those in ``more``."""
    return [match.group("loc")] + [m.group(0) for m in _LOCATOR_ANY.finditer(match.group("more") or "")]


def named_references(text: str, papers: dict[str, Paper]) -> Iterator[tuple[re.Match[str], str]]:
    """Every named-form reference in ``text``: ``(match, paper id)``."""
    names = paper_names(papers)
    for match in named_pattern(names).finditer(text):
        yield match, names[match.group("name")]


def item_results(papers: dict[str, Paper], paper_id: str, locator_text: str, page_src: str) -> str:
    """Markdown table of the ``results`` an outline item carries (``<!-- results: mae 表 1c -->``).

    The caption is a reference to the item, so the numbers point to where they stand.

    Raises:
        UnresolvedReference: if the item does not resolve or carries no ``results``.
    """
    ref = resolve(paper_id, locator_text, papers, page_src)
    results = ref.item.results
    if results is None:
        raise UnresolvedReference(page_src, paper_id, ref.locator.name,
                                  f"the outline item has no 'results' to show (add them in papers/{paper_id}.yaml)")
    cells = [[c.replace("|", "\\|") for c in row] for row in (results.columns, *results.rows)]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + " --- |" * len(results.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    note = f"{results.note}；" if results.note else ""
    lines += ["", f"{note}数字见 [@{paper_id}, {ref.locator.text}]（数据存于 `papers/{paper_id}.yaml`）。"]
    return "\n".join(lines) + "\n"
