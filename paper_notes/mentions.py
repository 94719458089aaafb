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

import posixpath
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .journal import FRONT_MATTER
from .references import (
    BRACKET, UnresolvedReference, expand_references, has_locator, named_locators, named_references, resolve,
)

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

_FENCE = re.compile(r"^(\s*)(```|~~~).*?^\1\2[^\n]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_OWN = re.compile(r'<(span|div)\s+class="pn-own"[^>]*>.*?</\1>', re.S)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_LINK = re.compile(r"\[([^\[\]\n]*)\]\([^)\n]*\)")
_ATTRS = re.compile(r"\{\s*[:#.][^}\n]*\}")
_AUTODOC = re.compile(r"^:::.*(?:\n[ \t]+.*)*", re.M)
_HEADING = re.compile(r"^#{1,6}\s")


def strip_code(markdown: str) -> str:
    """``markdown`` without fenced blocks, code spans, HTML comments, ``:::`` embeds and ``pn-own`` elements."""
    for pattern in (_FENCE, _COMMENT, _AUTODOC, _OWN, _INLINE_CODE):
        markdown = pattern.sub(lambda m: "\n" * m.group(0).count("\n"), markdown)
    return markdown


def check_markdown(markdown: str, where: str, papers: dict[str, Paper]) -> tuple[list[str], Counter[tuple[str, str]]]:
    """References that do not resolve and bare mentions in one Markdown source.

    Returns:
        ``(problems, checked)``: messages naming ``where``; and the count of checked references
        by ``(paper id, kind)``.
    """
    problems: list[str] = []
    checked: Counter[tuple[str, str]] = Counter()
    title = ""
    front = FRONT_MATTER.match(markdown)
    if front:
        found = re.search(r"^title:\s*(.+)$", front.group(1), re.M)
        title = found.group(1).strip().strip("\"'") if found else ""
        markdown = markdown[front.end():]
    text = strip_code(markdown)
    for match in BRACKET.finditer(text):
        if has_locator(match.group(1)):
            try:
                _, _, refs = expand_references(match.group(0), papers, where)
            except UnresolvedReference as exc:
                problems.append(str(exc))
            else:
                checked.update((r.paper.id, r.item.kind) for r in refs)
    text = BRACKET.sub(" ", text)
    # A link's text names a page (a diary entry by its title): the named form is allowed there.
    for match in _LINK.finditer(text):
        found, named = scan_text(match.group(1), where, papers, named_ok=True)
        problems += [str(m) for m in found]
        checked.update(named)
    text = _LINK.sub(" ", text)
    text = _ATTRS.sub(" ", _LINK_TARGET.sub("]", text))
    pieces = [(title, True)] if title else []
    pieces += [(line, bool(_HEADING.match(line))) for line in text.split("\n")]
    # Join the lines of a paragraph so that a mention broken over two lines is still found.
    paragraph: list[str] = []
    for line, heading in pieces + [("", False)]:
        if heading or not line.strip():
            if paragraph:
                found, _ = scan_text(" ".join(paragraph), where, papers, named_ok=False)
                problems += [str(m) for m in found]
                paragraph = []
            if heading:
                found, named = scan_text(line, where, papers, named_ok=True)
                problems += [str(m) for m in found]
                checked.update(named)
        else:
            paragraph.append(line.strip())
    return problems, checked


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


class _PageParser(HTMLParser):
    def __init__(self, where: str, papers: dict[str, Paper], result: PageScan) -> None:
        super().__init__(convert_charrefs=True)
        self.where, self.papers, self.result = where, papers, result
        self.stack: list[tuple[str, str]] = []  # (tag, role): role in {"", "skip", "named", "content"}
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


def scan_html(html: str, where: str, papers: dict[str, Paper]) -> PageScan:
    """References and bare mentions in the main content (``div.md-content``) of one built page."""
    result = PageScan()
    parser = _PageParser(where, papers, result)
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
