"""Find mentions of a paper's figures, tables and sections that are not checked references.

Every mention of a paper's figure, table or section must be checkable. Where it may stand:

- **Prose** (concept pages, diary entries, notebooks' Markdown cells, the reading list's notes):
  only as a reference, ``[@hiera, 图 4]``, which the build resolves against the paper's outline
  and renders as ``<a class="paper-ref">`` ([`references`][paper_notes.references]).
- **Titles and headings** (a diary entry's title also shows in the navigation and the blog's
  listings, where a link cannot go) and **docstrings** (rendered by mkdocstrings): in the named
  form, ``Hiera 图 4``, ``Hiera Fig. 4``, ``(KAN §2.4)``, which names the paper and is resolved
  against the outline in the same way.
- **Code** (code spans and blocks, the source mkdocstrings shows) is not prose and is not scanned.

Exceptions, explicit: the outline on a paper's page (``<div class="paper-outline">``) defines the
numbers rather than mentioning them, and an element of class ``pn-own`` holds a table or figure
numbered by this site itself (``<span class="pn-own">表 1</span>``). Our own figures and tables are
otherwise unnumbered ("下图", "上表"), so they never look like the paper's.

Anything else that looks like ``图 4``, ``Fig. 4``, ``表 1``, ``Table 2``, ``§3``, ``Section 3``,
``第 3 节`` or ``附录 A`` is a *bare mention*. ``notes check`` scans the sources, a test scans the
built site, and ``python -m paper_notes.mentions SITE`` counts the site's references and bare
mentions.
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
import sys
import xml.etree.ElementTree as etree
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import yaml
from markdown import Markdown
from markdown.blockprocessors import BlockProcessor

from .journal import FRONT_MATTER
from .references import Cited, ReferenceExtension, UnresolvedReference, named_locators, named_references, resolve

if TYPE_CHECKING:
    from .registry import Paper

EXEMPT_CLASSES = frozenset({"paper-outline", "pn-own"})
"""Elements whose text is not scanned: the outline that defines the numbers, and our own numbered things."""

NAMED_CLASSES = frozenset({"doc"})
"""mkdocstrings' blocks: docstrings, where the named form (``Hiera Fig. 4``) stands for a reference."""

_NUM = r"(?:[0-9]+|[A-Z])(?:\.[0-9]+)*[a-z]?"
_CJK_BARE = re.compile(r"(图|表)\s*[0-9]+(?:\.[0-9]+)?[a-z]?")
_OTHER_BARE = re.compile(
    r"第\s*[0-9]+(?:\.[0-9]+)*\s*节"
    r"|附录\s*[A-Z](?:\.[0-9]+)*(?![A-Za-z])"
    rf"|§\s*{_NUM}"
    r"|(?<![A-Za-z])(?i:fig(?:ure)?s?|tab(?:le)?s?|sec(?:tion)?s?|app(?:endix)?)\.?\s*"
    r"(?:[0-9]+(?:\.[0-9]+)*[a-z]?|[A-Z](?:\.[0-9]+)+|[A-Z](?![A-Za-z]))"
)
COMPOUNDS = (
    "代表", "列表", "发表", "时间表", "课表", "阶段表", "术语表", "对照表", "统计表", "图表", "附表",
    "意图", "试图", "地图", "企图", "视图", "草图", "截图", "热图", "子图", "小图", "插图", "原图", "构图", "配图",
    "示意图", "流程图", "架构图", "曲线图", "柱状图", "散点图", "框图", "大图", "上图", "下图", "左图", "右图",
    "张图", "幅图", "张表", "份表",
)
"""Words ending in 图/表 followed by a number that are not a paper's figure or table ("64 张小图 1 行")."""


@dataclass(frozen=True)
class Mention:
    """A bare mention (or an unresolvable named reference): where, what, and the text around it."""

    where: str
    text: str
    context: str
    reason: str = "bare mention; write it as a reference such as [@paper, 图 4] (in titles and docstrings: 'Hiera 图 4')"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.text!r} in “{self.context}”"


def bare_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every bare-looking mention in ``text``, in order."""
    spans = []
    for match in _CJK_BARE.finditer(text):
        before = text[: match.start() + 1]
        if any(before.endswith(word) for word in COMPOUNDS):
            continue
        spans.append(match.span())
    spans += [m.span() for m in _OTHER_BARE.finditer(text)]
    return sorted(spans)


def _context(text: str, start: int, end: int) -> str:
    return " ".join(text[max(0, start - 20): end + 20].split())


def scan_text(text: str, where: str, papers: dict[str, Paper], *, named_ok: bool) -> tuple[list[Mention], list[tuple[str, str]]]:
    """Bare mentions in one piece of prose.

    Args:
        text: the text, with code, links' targets and references already taken out.
        where: file or page, for messages.
        papers: the papers (with outlines) that named references resolve against.
        named_ok: whether the named form (``Hiera 图 4``) is allowed here (titles, docstrings).

    Returns:
        ``(problems, checked)``: bare mentions and named references that do not resolve; and
        ``(paper id, kind)`` for each named reference that resolved.
    """
    problems: list[Mention] = []
    checked: list[tuple[str, str]] = []
    covered: list[tuple[int, int]] = []
    if named_ok:
        for match, pid in named_references(text, papers):
            covered.append(match.span())
            for locator in named_locators(match):
                try:
                    ref = resolve(pid, locator, papers, where)
                except UnresolvedReference as exc:
                    problems.append(Mention(where, f"{match.group('name')} {locator}", _context(text, *match.span()), exc.reason))
                else:
                    checked.append((pid, ref.item.kind))
    for start, end in bare_spans(text):
        if any(a <= start < b for a, b in covered):
            continue
        problems.append(Mention(where, text[start:end], _context(text, start, end)))
    return problems, checked


# --- Markdown sources ------------------------------------------------------------------------


class _SkipAutodoc(BlockProcessor):
    """A ``::: identifier`` block (mkdocstrings) is code: its docstrings are checked in their module."""

    def test(self, parent: etree.Element, block: str) -> bool:
        return _AUTODOC.match(block) is not None

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        blocks.pop(0)


_AUTODOC = re.compile(r"^(?:#{1,6} *)?::: ")


class _Loader(yaml.SafeLoader):
    """Reads ``mkdocs.yml`` without building its Python objects (a slugify function)."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def site_extensions(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """The Markdown extensions ``mkdocs.yml`` at ``root`` gives the site, with their plain options.

    What they make of a page decides what is prose and what is code, so the checks parse with
    them. The project's own extensions are left out (the glossary's tooltips change no text), and
    so is one that is not installed (``notes check`` without the docs extra).
    """
    config = yaml.load((root / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader) or {}
    out = []
    for entry in config.get("markdown_extensions") or []:
        name, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        if name.startswith("paper_notes") or importlib.util.find_spec(name.split(".")[0]) is None:
            continue
        out.append((name, {k: v for k, v in (options or {}).items() if v is not None}))
    return out


class ProseParser:
    """Markdown with the site's extensions and the references in collect mode: what ``notes check`` reads.

    Args:
        papers: the papers that references resolve against.
        root: the checkout whose ``mkdocs.yml`` names the extensions.
    """

    def __init__(self, papers: dict[str, Paper], root: Path) -> None:
        extensions = site_extensions(root)
        self.references = ReferenceExtension(papers, collect=True)
        self.md = Markdown(extensions=[name for name, _ in extensions] + [self.references],
                           extension_configs=dict(extensions))
        self.md.parser.blockprocessors.register(_SkipAutodoc(self.md.parser), "paper_notes_autodoc", 200)

    def convert(self, markdown: str, where: str) -> tuple[str, Cited]:
        """``markdown`` as HTML, and what it cited (problems included)."""
        self.md.reset()
        self.references.page = where
        return self.md.convert(markdown), self.references.cited


_PARSERS: dict[tuple[int, Path], ProseParser] = {}


def prose_parser(papers: dict[str, Paper], root: Path | None = None) -> ProseParser:
    """The [`ProseParser`][paper_notes.mentions.ProseParser] for ``papers`` (made once per set of papers)."""
    root = (root or Path(__file__).resolve().parents[1]).resolve()
    key = (id(papers), root)
    if key not in _PARSERS:
        _PARSERS.clear()
        _PARSERS[key] = ProseParser(papers, root)
    return _PARSERS[key]


def check_markdown(markdown: str, where: str, papers: dict[str, Paper]) -> tuple[list[str], Counter[tuple[str, str]]]:
    """References that do not resolve and bare mentions in one Markdown source: ``(problems, checked)``
    of [`scan_markdown`][paper_notes.mentions.scan_markdown]."""
    problems, checked, _ = scan_markdown(markdown, where, papers)
    return problems, checked


def scan_markdown(markdown: str, where: str, papers: dict[str, Paper], parser: ProseParser | None = None,
                  ) -> tuple[list[str], Counter[tuple[str, str]], list[str]]:
    """References that do not resolve and bare mentions in one Markdown source, and its prose.

    The source is parsed as the site renders it ([`ProseParser`][paper_notes.mentions.ProseParser]), and
    its text is scanned as the built site is ([`scan_html`][paper_notes.mentions.scan_html]): code,
    references and the exempt elements left out, titles, headings and link texts in the named form.

    Returns:
        ``(problems, checked, prose)``: messages naming ``where``; the count of checked references by
        ``(paper id, kind)``; and the prose that was scanned, a string per block (for the terms check).
    """
    problems: list[str] = []
    checked: Counter[tuple[str, str]] = Counter()
    front = FRONT_MATTER.match(markdown)
    if front:
        found = re.search(r"^title:\s*(.+)$", front.group(1), re.M)
        title = found.group(1).strip().strip("\"'") if found else ""
        markdown = markdown[front.end():]
        if title:
            mentions, named = scan_text(title, where, papers, named_ok=True)
            problems += [str(m) for m in mentions]
            checked.update(named)
    html, cited = (parser or prose_parser(papers)).convert(markdown, where)
    problems[:0] = cited.problems
    checked.update((r.paper.id, r.item.kind) for r in cited.resolved)
    scan = scan_html(html, where, papers, content=True)
    problems += [str(m) for m in scan.problems]
    checked.update(scan.named)
    return problems, checked, scan.prose


def notebook_markdown(source: str) -> str:
    """The Markdown cells of a jupytext percent-format notebook, joined (code cells left out)."""
    cells, current, in_markdown = [], [], False
    for line in source.splitlines():
        if line.startswith("# %%"):
            if in_markdown:
                cells.append("\n".join(current).strip())
            current, in_markdown = [], "[markdown]" in line
            continue
        if in_markdown:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if in_markdown:
        cells.append("\n".join(current).strip())
    return "\n\n".join(cells)


# --- docstrings ------------------------------------------------------------------------------


def check_python_source(path: Path, where: str, papers: dict[str, Paper]) -> tuple[list[str], Counter[tuple[str, str]]]:
    """Named references and bare mentions in a module's docstrings and comments.

    The whole file is read: docstrings are what mkdocstrings renders, and comments show with the
    source. Every mention must name its paper (``Hiera Fig. 4``, ``(MAE §A.1)``), and resolve.
    """
    problems: list[str] = []
    checked: Counter[tuple[str, str]] = Counter()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found, named = scan_text(line, f"{where}:{number}", papers, named_ok=True)
        problems += [str(m) for m in found]
        checked.update(named)
    return problems, checked


# --- the built site --------------------------------------------------------------------------

_BLOCK = frozenset({
    "p", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "tr", "table", "div", "dd", "dt",
    "dl", "blockquote", "figcaption", "caption", "section", "article", "header", "footer", "nav", "br", "hr",
    "details", "summary", "figure", "aside",
})
_SKIP = frozenset({"code", "pre", "script", "style", "kbd", "svg", "math", "samp"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "col", "embed", "param", "track"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


@dataclass
class PageScan:
    """What one built page holds: references by ``(paper, kind)``, and problems."""

    references: Counter[tuple[str, str]] = field(default_factory=Counter)
    named: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[Mention] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)
    """The text scanned, a string per block."""


class _PageParser(HTMLParser):
    def __init__(self, where: str, papers: dict[str, Paper], result: PageScan, content: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.where, self.papers, self.result = where, papers, result
        # (tag, role): role in {"", "skip", "named", "content"}
        self.stack: list[tuple[str, str]] = [("", "content")] if content else []
        self.buffer: list[str] = []

    def _role(self) -> set[str]:
        return {role for _, role in self.stack}

    def _flush(self) -> None:
        text = "".join(self.buffer)
        self.buffer = []
        roles = self._role()
        if "content" not in roles or not text.strip():
            return
        named_ok = bool(roles & {"named", "heading"})
        self.result.prose.append(text)
        found, named = scan_text(text, self.where, self.papers, named_ok=named_ok)
        self.result.problems += found
        self.result.named.update(named)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = set((values.get("class") or "").split())
        if tag in _BLOCK:
            self._flush()
        if tag == "a" and "paper-ref" in classes:
            parts = urlsplit(values.get("href") or "")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(self.where), unquote(parts.path)))
            paper = target.rstrip("/").split("/")[-1].removesuffix(".html")
            kind = {"sec": "section", "fig": "figure", "tab": "table"}.get(parts.fragment.split("-")[0], "?")
            self.result.references[(paper, kind)] += 1
            self.buffer.append(" ")
            role = "skip"
        elif tag in _SKIP or classes & EXEMPT_CLASSES:
            self.buffer.append(" ")
            role = "skip"
        elif tag == "div" and "md-content" in classes:
            role = "content"
        elif classes & NAMED_CLASSES:
            role = "named"
        elif tag in _HEADINGS or tag == "a":  # a title, or a link naming a page by its title
            role = "heading"
        else:
            role = ""
        if role in ("heading", "named") and tag not in _BLOCK:
            self._flush()  # text before an inline title-like element is not part of it
        if tag not in _VOID:
            self.stack.append((tag, role))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        for i in range(len(self.stack) - 1, -1, -1):  # tolerate unclosed inline tags
            if self.stack[i][0] == tag:
                if tag in _BLOCK or tag in _HEADINGS or self.stack[i][1] in ("heading", "named"):
                    self._flush()
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if "skip" not in self._role():
            self.buffer.append(data)


def scan_html(html: str, where: str, papers: dict[str, Paper], *, content: bool = False) -> PageScan:
    """References and bare mentions in the main content (``div.md-content``) of one built page, or in
    all of ``html`` if it is ``content`` (a page's HTML before the theme wraps it)."""
    result = PageScan()
    parser = _PageParser(where, papers, result, content)
    parser.feed(html)
    parser.close()
    parser._flush()
    return result


@dataclass
class SiteScan:
    """The whole built site: references by ``(paper, kind)``, named references, problems."""

    references: Counter[tuple[str, str]] = field(default_factory=Counter)
    named: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[Mention] = field(default_factory=list)
    pages: int = 0


def scan_site(site: Path, papers: dict[str, Paper]) -> SiteScan:
    """Scan every HTML page of a built site (``mkdocs build``'s output)."""
    total = SiteScan()
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html":
            continue
        result = scan_html(page.read_text(encoding="utf-8"), page.relative_to(site).as_posix(), papers)
        total.references.update(result.references)
        total.named.update(result.named)
        total.problems += result.problems
        total.pages += 1
    return total


def report(scan: SiteScan) -> str:
    """A table of the checked references per paper and kind, then the problem count."""
    kinds = ("section", "figure", "table")
    papers = sorted({p for p, _ in scan.references} | {p for p, _ in scan.named})
    lines = [f"{'paper':<8} {'kind':<8} {'links':>6} {'named':>6}"]
    for pid in papers:
        for kind in kinds:
            a, b = scan.references[(pid, kind)], scan.named[(pid, kind)]
            if a or b:
                lines.append(f"{pid:<8} {kind:<8} {a:>6} {b:>6}")
    lines.append(f"total    {'':<8} {sum(scan.references.values()):>6} {sum(scan.named.values()):>6}")
    lines.append(f"{scan.pages} pages; {len(scan.problems)} bare or unresolved mention(s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_notes.mentions SITE_DIR``: count references, list bare mentions; exit 1 if any."""
    from .project import find_root
    from .registry import load_papers

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m paper_notes.mentions SITE_DIR (a built site, e.g. site/ after `make build`)", file=sys.stderr)
        return 2
    papers = load_papers(find_root() / "papers")
    scan = scan_site(Path(args[0]), papers)
    print(report(scan))
    for problem in scan.problems:
        print(problem, file=sys.stderr)
    return 1 if scan.problems else 0


if __name__ == "__main__":
    sys.exit(main())
