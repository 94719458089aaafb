"""Pages generated at build time from ``papers/``, ``glossary.yaml``, the diary and ``refimpl/``.

Nothing here touches MkDocs: each function returns Markdown (or BibTeX, or Atom XML) as a string,
so the generated pages are easy to test. ``scripts/gen_pages.py`` writes them into the build
through mkdocs-gen-files; ``paper_notes/mkdocs_hooks.py`` does the citations and the feed.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from pathlib import Path
from xml.sax.saxutils import escape

from .journal import Entry
from .outline import outline_markdown
from .project import Project
from .references import expand_references, item_results, reading_list_link
from .registry import READING_LIST, STATUS_LABELS, Paper
from .text import markdown_link_title, markdown_text

CITATION = re.compile(r"\[(@[a-z0-9-]+(?:\s*;\s*@[a-z0-9-]+)*)\]")
"""``[@mae]`` or ``[@mae; @vit]``: a citation of papers from ``papers/``."""

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


def reading_list_nav(project: Project) -> str:
    """literate-nav ``SUMMARY.md`` for the reading-list section."""
    lines = ["* [总览](index.md)"]
    lines += [f"* [{markdown_text(p.display_title)}]({p.id}.md)" for p in project.papers.values()]
    return "\n".join(lines) + "\n"


def api_reference_pages(package_dir: Path) -> dict[str, str]:
    """One mkdocstrings page per module of ``package_dir``: ``{doc path: markdown}``, plus ``SUMMARY.md``.

    Module pages are found by listing the package, so a new module gets its page without
    editing any list.
    """
    package = package_dir.name
    pages: dict[str, str] = {}
    nav = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if any(part.startswith("_") and part != "__init__" for part in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
            doc = "/".join(parts) + "/index.md"
        else:
            doc = "/".join(parts) + ".md"
        identifier = ".".join(parts)
        pages[doc] = f"# `{identifier}`\n\n::: {identifier}\n"
        depth = len(parts) - 1
        nav.append(("    " * depth) + f"* [{identifier}]({doc})")
    pages["SUMMARY.md"] = "\n".join(nav) + "\n"
    if f"{package}/index.md" not in pages:
        raise FileNotFoundError(f"{package_dir} has no __init__.py")
    return pages


def format_citation(keys: list[str], papers: dict[str, Paper], page_src: str) -> str:
    """Markdown for an in-text citation of ``keys`` on the page at docs path ``page_src``.

    Raises:
        KeyError: naming the first key that is not a paper id.
    """
    parts = []
    for key in keys:
        if key not in papers:
            raise KeyError(key)
        parts.append(f"[{markdown_text(papers[key].short_citation)}]({reading_list_link(page_src, key)})")
    return "（" + "；".join(parts) + "）"


def reference_list(keys: list[str], papers: dict[str, Paper], page_src: str) -> str:
    """The 参考文献 section appended to a page that cites papers."""
    lines = ["", "## 参考文献 {: #references }", ""]
    for key in keys:
        p = papers[key]
        link = f" <{p.link}>" if p.link else ""
        lines.append(f"1. {markdown_text(', '.join(p.authors))}. [{markdown_text(p.title)}]({reading_list_link(page_src, key)}). "
                     f"*{markdown_text(p.venue)}*, {p.year}.{link}")
    return "\n".join(lines) + "\n"


def cite(markdown: str, papers: dict[str, Paper], page_src: str) -> str:
    """Replace every ``[@key]`` outside code with a linked citation, every reference
    ``[@key, 图 4]`` with a link to the item ([`references`][paper_notes.references]), and append the
    reference list.

    Raises:
        KeyError: naming the first unknown key.
        UnresolvedReference: for a reference the paper's outline cannot resolve.
    """
    cited: list[str] = []

    def replace(match: re.Match[str]) -> str:
        keys = [k.strip()[1:] for k in match.group(1).split(";")]
        text = format_citation(keys, papers, page_src)
        cited.extend(k for k in keys if k not in cited)
        return text

    def expand(chunk: str) -> str:
        chunk, ids, _ = expand_references(chunk, papers, page_src)  # [@hiera, 图 4]: checked, linked
        cited.extend(k for k in ids if k not in cited)
        return CITATION.sub(replace, chunk)

    # Leave fenced code blocks and inline code alone.
    chunks = re.split(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", markdown, flags=re.S)
    out = [chunk if i % 2 else expand(chunk) for i, chunk in enumerate(chunks)]
    result = "".join(out)
    if cited:
        result = result.rstrip() + "\n" + reference_list(cited, papers, page_src)
    return result


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
