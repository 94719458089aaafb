r"""References to a paper's sections, figures and tables, checked against its outline.

Syntax, in Markdown outside code (concept pages, diary entries, notebooks' Markdown cells, the
reading list's notes)::

    [@hiera, 图 4]      a figure              [@hiera, 图 4e]    panel (e) of it
    [@mae, 表 1c]       a table (sub-table)   [@kan, §2.4]       a section
    [@mae, §A.1]        an appendix section   [@mae, 附录 A.1]   the same
    [@mae, §4.1; 表 1f; 图 6]                 several, one paper
    [@mae, 表 1c; @hiera, 表 3b]              several papers

English forms are accepted as well: ``Fig. 4``, ``Figure 4``, ``Table 1c``, ``Tab. 1c``,
``Sec. 2.4``, ``Section 2.4``, ``App. A.1``. A plain ``[@mae]`` is a citation. Both are Markdown
syntax ([`ReferenceExtension`][paper_notes.references.ReferenceExtension]): the site renders with
it and ``notes check`` parses with it, so the two agree on what is prose and what is code.

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
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from markdown import Extension, Markdown
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

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
"""Any ``[@...]`` bracket: references when it holds a locator, else a citation if it is one
([`ReferenceExtension`][paper_notes.references.ReferenceExtension])."""

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


# --- the Markdown syntax ---------------------------------------------------------------------

CITATION = re.compile(r"\[(@[a-z0-9-]+(?:\s*;\s*@[a-z0-9-]+)*)\]")
"""``[@mae]`` or ``[@mae; @vit]``: a citation of papers from ``papers/`` (a bracket without locator)."""

_WRAPPER = "paper-notes-cite"
"""Tag of the element an inline match returns; unwrapped once inline processing is done."""


class UnknownPaper(ValueError):
    """A citation ``[@id]`` of an id that is not a paper; the message names the page and the id."""

    def __init__(self, page: str, paper: str, papers: dict[str, Paper]) -> None:
        self.page, self.paper = page, paper
        super().__init__(f"{page} cites unknown paper id {paper!r}; expected one of: {', '.join(papers)}")


@dataclass
class Cited:
    """What one converted document cited: paper ids in order of first use, the resolved references,
    and (in collect mode) the problems that rendering would have raised."""

    ids: list[str] = field(default_factory=list)
    resolved: list[Resolved] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def cite(self, paper_id: str) -> None:
        if paper_id not in self.ids:
            self.ids.append(paper_id)


def page_of(md: Markdown, default: str) -> str:
    """Docs path of the page ``md`` is converting.

    MkDocs renders a page, and Material's blog a post's excerpt on a listing, with a
    ``relpath`` treeprocessor that holds the page's file: links are written relative to that file,
    and MkDocs makes them relative to where the HTML lands. Outside MkDocs (``notes check``,
    mkdocstrings' docstrings) it is ``default``.
    """
    relpath = md.treeprocessors["relpath"] if "relpath" in md.treeprocessors else None
    file = getattr(relpath, "file", None)
    return getattr(file, "src_uri", None) or default


def _link(text: str, href: str, **attrs: str) -> etree.Element:
    element = etree.Element("a", {**attrs, "href": href})
    element.text = AtomicString(text)
    return element


class _CitationProcessor(InlineProcessor):
    """``[@id]``, ``[@id; @id2]`` and ``[@id, 图 4; 表 1c; @id2, §3]`` outside code (code spans and blocks
    are taken out before inline patterns run)."""

    def __init__(self, md: Markdown, extension: ReferenceExtension, cited: Cited) -> None:
        super().__init__(BRACKET.pattern, md)
        self.extension, self.cited = extension, cited

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[Any, int | None, int | None]:  # noqa: N802
        body = m.group(1)
        page = page_of(self.md, self.extension.page)
        try:
            if has_locator(body):
                nodes = self._references(body, page)
            elif CITATION.fullmatch(m.group(0)):
                nodes = self._citation([k.strip()[1:] for k in body.split(";")], page)
            else:
                return None, None, None  # some other bracket: left as written
        except (UnresolvedReference, UnknownPaper) as exc:
            if not self.extension.collect:
                raise self.extension.fail(exc) from None
            self.cited.problems.append(str(exc))
            nodes = [m.group(0)]
        wrapper = etree.Element(_WRAPPER)
        last: etree.Element | None = None
        for node in nodes:
            if isinstance(node, str):
                if last is None:
                    wrapper.text = AtomicString((wrapper.text or "") + node)
                else:
                    last.tail = AtomicString((last.tail or "") + node)
            else:
                wrapper.append(node)
                last = node
        return wrapper, m.start(0), m.end(0)

    def _citation(self, keys: list[str], page: str) -> list[Any]:
        """``（He et al., 2022；Dosovitskiy et al., 2021）``, each linked to its paper's page."""
        papers = self.extension.papers
        nodes: list[Any] = ["（"]
        for i, key in enumerate(keys):
            if key not in papers:
                raise UnknownPaper(page, key, papers)
            nodes += ["；"] if i else []
            nodes.append(_link(papers[key].short_citation, reading_list_link(page, key)))
        for key in keys:
            self.cited.cite(key)
        return nodes + ["）"]

    def _references(self, body: str, page: str) -> list[Any]:
        """Each reference a link to the item's anchor with its title and gist as the tooltip, joined with
        ``、``; a plain ``@id`` part is its author-year citation."""
        papers = self.extension.papers
        try:
            parts = split_bracket(body)
        except ValueError as exc:
            raise UnresolvedReference(page, body.split(",")[0].lstrip("@"), f"[{body}]", str(exc)) from None
        nodes: list[Any] = []
        for i, (paper_id, loc) in enumerate(parts):
            nodes += ["、"] if i else []
            if loc is None:
                if paper_id not in papers:
                    raise UnresolvedReference(page, paper_id, f"[@{paper_id}]", "no such paper id")
                nodes.append(_link(papers[paper_id].short_citation, reading_list_link(page, paper_id)))
            else:
                ref = resolve(paper_id, loc, papers, page)
                self.cited.resolved.append(ref)
                href = reading_list_link(page, paper_id, ref.item.anchor)
                nodes.append(_link(ref.locator.text, href, **{"class": "paper-ref", "title": ref.tooltip}))
        for paper_id, _ in parts:
            self.cited.cite(paper_id)
        return nodes


def _unwrap(parent: etree.Element) -> None:
    """Replace every wrapper element under ``parent`` by its content, in place."""
    for child in list(parent):
        _unwrap(child)
    while (wrapper := next((c for c in parent if c.tag == _WRAPPER), None)) is not None:
        index = list(parent).index(wrapper)
        before = parent[index - 1] if index else None
        lead = wrapper.text or ""
        if before is None:
            parent.text = (parent.text or "") + lead
        else:
            before.tail = (before.tail or "") + lead
        children = list(wrapper)
        parent.remove(wrapper)
        for j, child in enumerate(children):
            parent.insert(index + j, child)
        tail = wrapper.tail or ""
        if children:
            children[-1].tail = (children[-1].tail or "") + tail
        elif before is None:
            parent.text += tail
        else:
            before.tail = (before.tail or "") + tail


class _ReferenceListProcessor(Treeprocessor):
    """Unwrap the citations, and end a page that cites papers with its 参考文献 list."""

    def __init__(self, md: Markdown, extension: ReferenceExtension, cited: Cited) -> None:
        super().__init__(md)
        self.extension, self.cited = extension, cited

    def run(self, root: etree.Element) -> None:
        _unwrap(root)
        if not self.cited.ids or self.extension.collect:
            return
        page = page_of(self.md, self.extension.page)
        heading = etree.SubElement(root, "h2", {"id": "references"})
        heading.text = "参考文献"
        items = etree.SubElement(root, "ol")
        for key in self.cited.ids:
            p = self.extension.papers[key]
            item = etree.SubElement(items, "li")
            item.text = AtomicString(f"{', '.join(p.authors)}. ")
            item.append(_link(p.title, reading_list_link(page, key)))
            item[-1].tail = ". "
            venue = etree.SubElement(item, "em")
            venue.text = AtomicString(p.venue)
            venue.tail = f", {p.year}." + (" " if p.link else "")
            if p.link:
                item.append(_link(p.link, p.link))


class _Reset(Preprocessor):
    """A Markdown instance converts page after page (Material's excerpts, ``notes check``): start afresh."""

    def __init__(self, md: Markdown, cited: Cited) -> None:
        super().__init__(md)
        self.cited = cited

    def run(self, lines: list[str]) -> list[str]:
        self.cited.ids.clear()
        self.cited.resolved.clear()
        self.cited.problems.clear()
        return lines


def _raise(exc: Exception) -> Exception:
    return exc


class ReferenceExtension(Extension):
    """Python-Markdown extension: citations ``[@mae]`` and references ``[@hiera, 图 4]`` as inline syntax.

    A citation becomes ``（He et al., 2022）`` linked to the paper's page; a reference a link to the
    item's anchor on it (``a.paper-ref``, its title and gist as the tooltip); a page that cites gets
    a 参考文献 list at its end. Inside code spans and blocks nothing is touched: Markdown has taken
    them out before inline patterns run, so what is code is what the site shows as code.

    Args:
        papers: the papers that citations and references resolve against.
        page: docs path of the page, where MkDocs does not say it (see [`page_of`][paper_notes.references.page_of]).
        collect: ``notes check``'s mode: problems are collected in [`cited`][paper_notes.references.ReferenceExtension.cited]
            rather than raised, and no reference list is added.
        fail: turns a problem into the exception raised (the plugin makes it a ``PluginError``).
    """

    def __init__(self, papers: dict[str, Paper], page: str = "", *, collect: bool = False,
                 fail: Callable[[Exception], Exception] = _raise) -> None:
        super().__init__()
        self.papers, self.page, self.collect, self.fail = papers, page, collect, fail
        self.cited = Cited()
        """What the last converted document cited (of the Markdown instance extended last)."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        self.cited = cited = Cited()  # one per Markdown instance: MkDocs makes one per page
        md.preprocessors.register(_Reset(md, cited), "paper_notes_refs_reset", 1000)
        # Before links (160) and reference links (170), after code spans (190) and escapes (180).
        md.inlinePatterns.register(_CitationProcessor(md, self, cited), "paper_notes_refs", 175)
        # After inline processing (20), before the glossary (15), the table of contents (5) and
        # MkDocs' link rewriting (relpath, 0).
        md.treeprocessors.register(_ReferenceListProcessor(md, self, cited), "paper_notes_refs", 17)


def render(markdown_text: str, papers: dict[str, Paper], page: str, *extensions: Any) -> tuple[str, Cited]:
    """HTML of ``markdown_text`` on the page at docs path ``page``, and what it cited.

    Raises:
        UnresolvedReference: for a reference the outline cannot resolve.
        UnknownPaper: for a citation of an unknown id.
    """
    extension = ReferenceExtension(papers, page)
    html = Markdown(extensions=[*extensions, extension]).convert(markdown_text)
    return html, extension.cited
