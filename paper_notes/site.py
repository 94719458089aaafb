"""Pages generated at build time from ``papers/``, ``glossary.yaml``, the diary and ``refimpl/``.

Nothing here touches MkDocs: each function returns Markdown (or BibTeX, or Atom XML) as a string,
so the generated pages are easy to test. [`PaperNotesPlugin`][paper_notes.plugin.PaperNotesPlugin]
adds them to the build; the ``<!-- results: ... -->`` and ``<!-- related-entries: ... -->`` markers
are Markdown syntax ([`MarkersExtension`][paper_notes.site.MarkersExtension]).
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from pathlib import Path
from xml.sax.saxutils import escape

from typing import TYPE_CHECKING, Any, Callable

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

from .formats import format_markdown
from .journal import Entry
from .outline import outline_markdown
from .references import UnresolvedReference, item_results, page_of
from .registry import READING_LIST, STATUS_LABELS, Paper
from .text import markdown_link_title, markdown_text

if TYPE_CHECKING:
    from .project import Project

DIARY_ANCHOR = "diary"
"""Id of the paper page's list of diary entries; the reading list's 日记 column links there."""

_FIELD_LABELS = {
    "problem": "要解决的问题",
    "key_idea": "核心想法",
    "results": "主要结果",
    "limitations": "局限",
    "group_direction": "团队的研究方向",
}


def _entry_doc(entry: Entry, root: Path) -> str:
    return entry.path.resolve().relative_to((root / "docs").resolve()).as_posix()


def _authors(paper: Paper, limit: int = 3) -> str:
    if len(paper.authors) <= limit:
        return ", ".join(paper.authors)
    return ", ".join(paper.authors[:limit]) + " 等"


def _mark(paper: Paper, name: str) -> str:
    """A visible marker on fields the metadata says are not yet confirmed."""
    return " <sup title=\"未经原文核对\">（待核实）</sup>" if name in paper.unconfirmed else ""


def reading_list_index(project: Project) -> str:
    """The reading list: one short row per paper (ordered by date added), filtered in the page.

    A row gives the short title (the full title is its tooltip and the paper page's heading),
    venue, status, tags, code and how many diary entries discuss the paper (linked to their list
    on its page). ``docs/javascripts/reading-list.js`` adds
    buttons that show only the papers of one status or tag; without JavaScript the table is whole.
    """
    lines = [
        "# 阅读清单 (reading list)",
        "",
        "由 `papers/*.yaml` 在构建时生成（每篇论文一个文件，是引用、阅读状态和相互链接的唯一来源）。"
        "点简称看全称、笔记、讨论它的日记和 BibTeX；按状态或标签筛选用表格上方的按钮。"
        "整个清单的 BibTeX：[papers.bib](../papers.bib)。",
        "",
        '<div class="reading-list" markdown>',
        "",
        "| 论文 | 发表 | 状态 | 标签 | 代码 | 日记 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for paper in project.papers.values():
        code = f"[代码]({paper.code})" if paper.code else "—"
        entries = project.entries_for(paper.id)
        diary = f"[{len(entries)} 篇]({paper.id}.md#{DIARY_ANCHOR})" if entries else "—"
        title = markdown_link_title(paper.title)
        tags = " · ".join(markdown_text(t) for t in paper.tags) or "—"
        lines.append(
            f'| [{markdown_text(paper.display_title)}]({paper.id}.md "{title}") | {markdown_text(paper.venue_year)} '
            f"| {STATUS_LABELS[paper.status]} | {tags} | {code} | {diary} |"
        )
    counts = {s: sum(p.status == s for p in project.papers.values()) for s in STATUS_LABELS}
    lines += [
        "",
        "</div>",
        "",
        "共 {} 篇：".format(len(project.papers)) + "，".join(f"{STATUS_LABELS[s]} {n}" for s, n in counts.items()) + "。",
        "",
        "加一篇论文：`.venv/bin/notes add-paper sam2 --title \"...\" --short-title \"SAM 2\" --author \"...\" "
        "--venue ICLR --year 2025 --arxiv 2408.00714 --tag 分割`（写出含全部字段的 `papers/sam2.yaml`，空着的字段再手工补）；"
        "改阅读状态：`.venv/bin/notes status hiera read`（只改文件里 `status:` 这一行）。",
        "",
    ]
    return "\n".join(lines)


def spreadsheet_notes(paper: Paper) -> list[str]:
    """Markdown lines: the five spreadsheet columns of ``paper``, each one marked when not yet written."""
    lines = []
    for name, label in _FIELD_LABELS.items():
        text = getattr(paper, name).strip()
        lines += [f"**{label}**：{text}" if text else f'**{label}**：<span class="not-written">还没有写</span>', ""]
    return lines


def paper_page(project: Project, paper: Paper) -> str:
    """One paper's page: metadata, the spreadsheet's notes, related papers, diary entries, BibTeX."""
    from .registry import to_bibtex

    rows = [
        ("作者", markdown_text(", ".join(paper.authors)) + _mark(paper, "authors")),
        ("单位", markdown_text("; ".join(paper.affiliations)) + _mark(paper, "affiliations") if paper.affiliations else "—"),
        ("发表", markdown_text(paper.venue_year) + _mark(paper, "venue")),
        ("发表日期", (paper.published.isoformat() if paper.published else "—") + _mark(paper, "published")),
        ("arXiv", f"[{paper.arxiv}](https://arxiv.org/abs/{paper.arxiv})" if paper.arxiv else "—"),
        ("DOI", f"[{paper.doi}](https://doi.org/{paper.doi})" + _mark(paper, "doi") if paper.doi else "—"),
        ("链接", f"<{paper.url}>" if paper.url else "—"),
        ("代码", f"<{paper.code}>" if paper.code else "未开源或未找到"),
        ("状态", STATUS_LABELS[paper.status]),
        ("标签", " · ".join(markdown_text(t) for t in paper.tags) or "—"),
        ("加入清单", paper.added.isoformat()),
    ]
    lines = [f"# {markdown_text(paper.title)} {{ #{paper.id} }}", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines.append("")
    if paper.unconfirmed:
        lines += [
            '!!! warning "待核实"',
            "",
            f"    以下字段还没有对照论文首页或 arXiv 记录核实：{', '.join(paper.unconfirmed)}。",
            "",
        ]
    lines += ["## 笔记", "", *spreadsheet_notes(paper)]
    if paper.headline_results:
        lines += ["## 主要结果", "", results_table(paper, cite_key=False)]
    if paper.outline is not None:
        lines.append(outline_markdown(paper.outline, paper.id))
    related = [project.papers[r] for r in paper.related]
    if related:
        lines += ["## 相关论文", ""]
        lines += [f"- [{markdown_text(r.title)}]({r.id}.md)（{markdown_text(r.venue_year)}）" for r in related]
        lines.append("")
    entries = project.entries_for(paper.id)
    lines += [f"## 讨论这篇论文的日记 {{ #{DIARY_ANCHOR} }}", ""]
    if entries:
        lines += [
            f"- {e.date.isoformat()} [{markdown_text(e.title)}]({posixpath.relpath(_entry_doc(e, project.root), READING_LIST)})"
            for e in entries
        ]
    else:
        lines.append("还没有。")
    lines += ["", "## BibTeX", "", "```bibtex", to_bibtex(paper).rstrip(), "```", ""]
    return "\n".join(lines)


RESULTS_MARKER = re.compile(r"^<!-- results: ([a-z0-9-]+)(?: ([^>]+?))? -->$", re.M)
"""A line ``<!-- results: mae -->`` on any page becomes that paper's headline-results table;
``<!-- results: mae 表 1c -->`` the numbers of one table (or figure) of the paper, from its outline."""


def results_table(paper: Paper, cite_key: bool = True) -> str:
    """Markdown table of ``paper.headline_results`` (empty string if it has none)."""
    if not paper.headline_results:
        return ""
    lines = ["| 任务 | 模型 | 指标 | 结果 | 出处 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.task} | {r.model} | {r.metric} | {r.value} | {r.where} |" for r in paper.headline_results]
    if cite_key:
        lines += ["", f"数字取自 `papers/{paper.id}.yaml`，原始出处见最后一列 [@{paper.id}]。"]
    return "\n".join(lines) + "\n"


def expand_results(markdown: str, papers: dict[str, Paper], page_src: str = "") -> str:
    """Replace each results marker with the table; an unknown id or a paper without results is a KeyError,
    an outline item that does not resolve or has no ``results`` an ``UnresolvedReference``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            return item_results(papers, match.group(1), match.group(2), page_src)
        paper = papers[match.group(1)]
        if not paper.headline_results:
            raise KeyError(match.group(1))
        return results_table(paper)

    return RESULTS_MARKER.sub(replace, markdown)


RELATED_MARKER = re.compile(r"^<!-- related-entries: ([a-z0-9-]+(?: [a-z0-9-]+)*) -->$", re.M)
"""A line ``<!-- related-entries: hiera mae -->`` on a page becomes the list of diary entries that
discuss one of those papers (their ``categories``) or link to the page."""

_MD_LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>#]+)")


def links_to(entry: Entry, page_src: str, root: Path) -> bool:
    """Whether ``entry`` has a Markdown link to the page at docs path ``page_src`` (any anchor of it)."""
    base = posixpath.dirname(_entry_doc(entry, root))
    for target in _MD_LINK_TARGET.findall(entry.body):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        if posixpath.normpath(posixpath.join(base, target)) == page_src:
            return True
    return False


def related_entries(project: Project, paper_ids: list[str], page_src: str) -> str:
    """Markdown list of the entries that discuss one of ``paper_ids`` or link to ``page_src``, newest first.

    Each line gives the date, the linked title and why it is listed (the papers it discusses,
    and 链接到本页 when it links here); "还没有日记。" when none is.

    Raises:
        KeyError: naming the first id in ``paper_ids`` that is not a paper.
    """
    for pid in paper_ids:
        if pid not in project.papers:
            raise KeyError(pid)
    base = posixpath.dirname(page_src) or "."
    lines = []
    for entry in project.entries:  # newest first
        papers = [markdown_text(project.papers[p].display_title) for p in entry.papers if p in paper_ids]
        linked = links_to(entry, page_src, project.root)
        if not papers and not linked:
            continue
        why = "、".join(papers) + ("；链接到本页" if papers and linked else "链接到本页" if linked else "")
        target = posixpath.relpath(_entry_doc(entry, project.root), base)
        lines.append(f"- {entry.date.isoformat()} [{markdown_text(entry.title)}]({target})（{why}）")
    return "\n".join(lines) + "\n" if lines else "还没有日记。\n"


def expand_related_entries(markdown: str, project: Project, page_src: str) -> str:
    """Replace each related-entries marker with its list; an unknown paper id is a KeyError."""
    return RELATED_MARKER.sub(lambda m: related_entries(project, m.group(1).split(), page_src).rstrip("\n"), markdown)


FIELDS_MARKER = re.compile(r"^<!-- fields: ([a-z]+) -->$", re.M)
"""A line ``<!-- fields: paper -->`` becomes the table of that file kind's fields, rendered from the
declaration the parser uses ([`format_markdown`][paper_notes.formats.format_markdown])."""


def expand_fields(markdown: str) -> str:
    """Replace each fields marker with its tables; an unknown kind is a KeyError naming the kinds."""
    return FIELDS_MARKER.sub(lambda m: format_markdown(m.group(1)).rstrip("\n"), markdown)


class _MarkersPreprocessor(Preprocessor):
    def __init__(self, md: Markdown, extension: MarkersExtension) -> None:
        super().__init__(md)
        self.extension = extension

    def run(self, lines: list[str]) -> list[str]:
        text = "\n".join(lines)
        if "<!-- " not in text:
            return lines
        project, page = self.extension.project, page_of(self.md, "")
        try:
            text = expand_results(text, project.papers, page)
        except UnresolvedReference as exc:
            raise self.extension.fail(exc) from None
        except KeyError as exc:
            raise self.extension.fail(ValueError(
                f"{page} asks for the results table of {exc.args[0]!r}, which is not a paper with "
                f"headline_results in papers/")) from None
        try:
            text = expand_related_entries(text, project, page)
        except KeyError as exc:
            raise self.extension.fail(ValueError(
                f"{page} asks for the diary entries of {exc.args[0]!r}, which is not a paper id; "
                f"expected one of: {', '.join(project.papers)}")) from None
        try:
            text = expand_fields(text)
        except KeyError as exc:
            raise self.extension.fail(ValueError(f"{page} asks for the fields of an unknown file kind: {exc.args[0]}")) from None
        return text.split("\n")


class MarkersExtension(Extension):
    """Python-Markdown extension: a line ``<!-- results: mae -->`` (or ``<!-- results: mae 表 1c -->``)
    becomes the numbers, a line ``<!-- related-entries: hiera mae -->`` the diary entries, a line
    ``<!-- fields: paper -->`` the table of a file kind's fields (see
    [`expand_results`][paper_notes.site.expand_results] and
    [`expand_related_entries`][paper_notes.site.expand_related_entries], [`expand_fields`][paper_notes.site.expand_fields]).

    Args:
        project: the papers and diary entries the markers draw on.
        fail: turns a problem into the exception raised (the plugin makes it a ``PluginError``).
    """

    def __init__(self, project: Project, fail: Callable[[Exception], Exception] = lambda exc: exc) -> None:
        super().__init__()
        self.project, self.fail = project, fail

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        # Before raw HTML blocks (20) are stashed: the markers are HTML comments.
        md.preprocessors.register(_MarkersPreprocessor(md, self), "paper_notes_markers", 28)


def reading_list_nav(project: Project) -> list[dict[str, str]]:
    """The reading-list section of the navigation: the overview, then one page per paper."""
    return [{"总览": f"{READING_LIST}/index.md"},
            *({p.display_title: f"{READING_LIST}/{p.id}.md"} for p in project.papers.values())]


def api_reference_pages(package_dir: Path) -> dict[str, str]:
    """One mkdocstrings page per module of ``package_dir``: ``{doc path: markdown}``, a package's at its
    ``index.md``.

    Module pages are found by listing the package, so a new module gets its page without
    editing any list.
    """
    pages: dict[str, str] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if any(part.startswith("_") and part != "__init__" for part in parts):
            continue
        doc = "/".join(parts[:-1]) + "/index.md" if parts[-1] == "__init__" else "/".join(parts) + ".md"
        identifier = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        pages[doc] = f"# `{identifier}`\n\n::: {identifier}\n"
    if f"{package_dir.name}/index.md" not in pages:
        raise FileNotFoundError(f"{package_dir} has no __init__.py")
    return pages


def api_reference_nav(pages: dict[str, str], prefix: str) -> list[Any]:
    """The API section of the navigation: a package is a section that opens on its ``index.md`` page,
    titled by the dotted name, its modules and subpackages inside."""

    def section(folder: str) -> list[Any]:
        items: list[Any] = [f"{prefix}{folder}/index.md"]
        for doc in pages:
            head, _, name = doc.rpartition("/")
            if head == folder and name != "index.md":
                items.append({doc.removesuffix(".md").replace("/", "."): f"{prefix}{doc}"})
            elif head.rpartition("/")[0] == folder and name == "index.md":
                items.append({head.replace("/", "."): section(head)})
        return items

    root = next(iter(pages)).split("/")[0]
    return [{root: section(root)}]


def atom_feed(entries: list[tuple[str, str, dt.date, str, list[str]]], title: str, feed_url: str, home_url: str) -> str:
    """An Atom 1.0 feed of diary entries.

    Args:
        entries: ``(title, url, date, summary, categories)`` per entry, newest first, URLs
            relative to the feed's own location.
        title: the feed title.
        feed_url: the feed's own URL, relative to itself (its file name).
        home_url: the journal's URL, relative to the feed.

    Returns:
        XML text. Links are relative (RFC 4287 allows IRI references), so the feed works wherever
        the site is served; no host name is baked in.
    """
    updated = max((e[2] for e in entries), default=dt.date(2024, 1, 1))
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh">',
        f"  <title>{escape(title)}</title>",
        f'  <link rel="self" href="{escape(feed_url)}"/>',
        f'  <link rel="alternate" href="{escape(home_url)}"/>',
        "  <id>urn:paper-notes:journal</id>",
        f"  <updated>{updated.isoformat()}T00:00:00Z</updated>",
        "  <author><name>paper-notes</name></author>",
    ]
    for name, url, date, summary, categories in entries:
        out += [
            "  <entry>",
            f"    <title>{escape(name)}</title>",
            f'    <link rel="alternate" href="{escape(url)}"/>',
            f"    <id>urn:paper-notes:journal:{escape(url.strip('/'))}</id>",
            f"    <published>{date.isoformat()}T00:00:00Z</published>",
            f"    <updated>{date.isoformat()}T00:00:00Z</updated>",
            *[f'    <category term="{escape(c)}"/>' for c in categories],
            f"    <summary>{escape(summary)}</summary>",
            "  </entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"
