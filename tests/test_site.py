"""The built site: strict build, Chinese search, reading list, links, offline assets, feed, API pages."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from paper_notes.journal import load_entries
from paper_notes.registry import STATUS_LABELS, load_papers

from conftest import ROOT, Build, run_build, run_notes

pytestmark = pytest.mark.slow
PAPERS = load_papers(ROOT / "papers")
ENTRIES = load_entries(ROOT / "docs/journal/posts", PAPERS)


class _Refs(HTMLParser):
    """Collects (tag, attribute, value) for every URL-bearing attribute, and element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.refs.append((tag, name, value))
            if name in ("id", "name") and value:
                self.ids.add(value)


def parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def resolve(site: Path, page: Path, url: str) -> Path:
    """The file a relative URL on ``page`` points to (``dir/`` means ``dir/index.html``)."""
    target = (page.parent / unquote(urlsplit(url).path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target


def test_strict_build_succeeds(built_site: Build) -> None:
    assert (built_site.site / "index.html").is_file()


def test_search_index_finds_chinese_words_and_english_terms(built_site: Build) -> None:
    index = json.loads((built_site.site / "search/search_index.json").read_text(encoding="utf-8"))
    # lunr's trimmer would strip CJK characters from token ends and empty Chinese words.
    assert "trimmer" not in index["config"]["pipeline"]
    separator = re.compile(index["config"]["separator"])
    tokens: dict[str, set[str]] = {}
    for doc in index["docs"]:
        text = re.sub(r"<[^>]+>", " ", doc["title"] + " " + doc["text"])
        for token in separator.split(text):
            tokens.setdefault(token.lower(), set()).add(doc["location"].split("#")[0])
    for word in ("掩码", "编码", "解码", "编码器", "解码器", "token", "patch", "encoder"):
        assert word in tokens, f"{word!r} is not a search token"
    entry = "journal/2024-10-26-mae-figure1/"
    assert entry in tokens["掩码"]
    # jieba's segments reach the index joined by U+200B; the separator must split them.
    assert "\u200b" in "".join(d["text"] for d in index["docs"])
    assert separator.split("掩码\u200b编码") == ["掩码", "编码"]


def test_reading_list_lists_every_paper_with_status_tags_and_code_and_links_its_diary(built_site: Build) -> None:
    page = built_site.site / "reading-list/index.html"
    text = page.read_text(encoding="utf-8")
    rows = re.findall(r"<tr>(.*?)</tr>", text.split('class="reading-list"', 1)[1], flags=re.S)[1:]
    assert len(rows) == len(PAPERS)
    for paper, row in zip(PAPERS.values(), rows):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, flags=re.S)]
        assert cells[0] == paper.display_title and len(cells[0]) <= 30, cells
        assert f'href="{paper.id}/"' in row and f'title="{paper.title}"' in html.unescape(row)  # full title: the tooltip
        assert cells[2] == STATUS_LABELS[paper.status] and cells[3] == (" · ".join(paper.tags) or "—")
        assert (paper.code or "—") in row
        entries = [e for e in ENTRIES if paper.id in e.papers]
        assert cells[5] == (f"{len(entries)} 篇" if entries else "—")
        paper_page = built_site.site / "reading-list" / paper.id / "index.html"
        if entries:
            assert f'href="{paper.id}/#diary"' in row and 'id="diary"' in paper_page.read_text(encoding="utf-8")
            hrefs = {resolve(built_site.site, paper_page, h) for _, a, h in parse(paper_page).refs if a == "href"}
            assert {built_site.site / "journal" / e.slug / "index.html" for e in entries} <= hrefs


def test_paper_page_lists_the_entries_that_discuss_it_and_every_spreadsheet_field(built_site: Build) -> None:
    text = (built_site.site / "reading-list/mae/index.html").read_text(encoding="utf-8")
    for entry in ENTRIES:
        if "mae" in entry.papers:
            assert entry.title in text
    plain = re.sub(r"<[^>]+>", "", text)
    assert "@inproceedings{mae," in plain
    assert PAPERS["mae"].title in plain  # the full title, where the reading list shows "MAE"
    # Written columns show their text; empty ones say so, each under its own label.
    for label, name in (("要解决的问题", "problem"), ("核心想法", "key_idea"), ("主要结果", "results"),
                        ("局限", "limitations"), ("团队的研究方向", "group_direction")):
        value = getattr(PAPERS["mae"], name).strip()
        shown = re.search(rf"<strong>{label}</strong>：(.*?)</p>", text, flags=re.S)
        assert shown, label
        if value:
            assert value[:20] in html.unescape(re.sub(r"<[^>]+>", "", shown.group(1))), label  # terms are <abbr>
        else:
            assert '<span class="not-written">还没有写</span>' in shown.group(1), label


def test_every_internal_link_and_anchor_resolves(built_site: Build) -> None:
    site = built_site.site
    ids_cache: dict[Path, set[str]] = {}
    broken = []
    for page in html_pages(site):
        if page.name == "404.html":  # served at any depth, so MkDocs writes root-absolute URLs
            continue
        for tag, _, url in parse(page).refs:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "data:", "javascript:")) or not (parts.path or parts.fragment):
                continue
            target = resolve(site, page, url) if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {url}")
            elif parts.fragment and target.suffix == ".html":
                if target not in ids_cache:
                    ids_cache[target] = parse(target).ids
                if unquote(parts.fragment) not in ids_cache[target]:
                    broken.append(f"{page.relative_to(site)}: {url} (no anchor)")
    assert not broken, "\n".join(broken[:20])


def test_entries_name_their_papers_link_the_reading_list_and_cite(built_site: Build) -> None:
    assert len(ENTRIES) >= 4
    for entry in ENTRIES:
        page = built_site.site / "journal" / entry.slug / "index.html"
        text = page.read_text(encoding="utf-8")
        for pid in entry.papers:
            assert f"../category/{pid}/" in text, (entry.slug, pid)
            assert (built_site.site / "journal/category" / pid / "index.html").is_file()
        assert "../../reading-list/" in text
        assert 'id="references"' in text and "[@" not in text


def test_journal_has_archive_categories_and_a_valid_atom_feed(built_site: Build) -> None:
    site = built_site.site
    assert (site / "journal/archive/2024/10/index.html").is_file()
    feed = ET.parse(site / "journal/feed.xml").getroot()
    ns = {"a": "http://www.w3.org/2005/Atom"}
    items = feed.findall("a:entry", ns)
    assert len(items) == len(ENTRIES)
    for item in items:
        href = item.find("a:link", ns).get("href")
        assert (site / "journal" / href / "index.html").is_file()
        assert item.find("a:summary", ns).text.strip()


def test_no_page_loads_anything_from_another_host(built_site: Build) -> None:
    offenders = []
    for page in html_pages(built_site.site):
        text = page.read_text(encoding="utf-8")
        for tag, attr, url in parse(page).refs:
            external = url.startswith(("http://", "https://", "//"))
            loads = (tag in ("script", "img", "iframe", "source", "video", "audio") and attr == "src") or (
                tag == "link" and attr == "href" and not re.search(r"<link[^>]*rel=\"(?:canonical|alternate)\"[^>]*" + re.escape(url), text))
            if external and loads:
                offenders.append(f"{page.relative_to(built_site.site)}: <{tag} {attr}={url}>")
        if re.search(r"""import\(\s*["']https?://|@import\s+url\(\s*["']?https?://|fonts\.googleapis""", text):
            offenders.append(f"{page.relative_to(built_site.site)}: dynamic import from another host")
    assert not offenders, "\n".join(offenders[:20])
    assert (built_site.site / "assets/mathjax/tex-svg.js").is_file()


def test_math_is_marked_up_for_the_local_mathjax(built_site: Build) -> None:
    text = (built_site.site / "journal/2024-10-26-mae-figure1/index.html").read_text(encoding="utf-8")
    assert '<div class="arithmatex">' in text and '<span class="arithmatex">' in text
    assert "assets/mathjax/tex-svg.js" in text


def test_notebook_is_executed_with_inline_figures_and_only_notebooks_are_notebooks(built_site: Build) -> None:
    text = (built_site.site / "notebooks/vit_background/index.html").read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') >= 2
    assert "(1, 196, 768)" in text  # printed by an executed cell
    assert re.search(r'<(span|div) class="arithmatex">\\\[', text)  # notebook math goes to the local MathJax
    assert 'src=""' not in text and "cdnjs" not in text
    py_pages = [p for p in (ROOT / "docs").rglob("*.py") if p.parent.name != "notebooks"]
    for py in py_pages:
        assert not (built_site.site / py.relative_to(ROOT / "docs").with_suffix("") / "index.html").exists()


def test_api_reference_has_a_generated_page_per_module(built_site: Build) -> None:
    modules = [p.stem for p in (ROOT / "refimpl").glob("*.py") if not p.stem.startswith("_")]
    assert modules
    for module in modules:
        page = built_site.site / "reference/refimpl" / module / "index.html"
        assert page.is_file(), module
    masking = (built_site.site / "reference/refimpl/masking/index.html").read_text(encoding="utf-8")
    assert 'id="refimpl.masking.patchify"' in masking


def test_glossary_page_and_tooltips(built_site: Build) -> None:
    glossary = (built_site.site / "glossary/index.html").read_text(encoding="utf-8")
    for anchor in ("mask", "end-to-end", "end-to-end-fine-tuning", "linear-probing"):
        assert f'id="{anchor}"' in glossary
    entry = (built_site.site / "journal/2024-10-26-mae-figure1/index.html").read_text(encoding="utf-8")
    assert re.search(r'<abbr title="掩码 \(mask\)：[^"]+">掩码</abbr>', entry)


def test_bibtex_file_is_published(built_site: Build) -> None:
    bib = (built_site.site / "papers.bib").read_text(encoding="utf-8")
    assert len(re.findall(r"^@\w+\{", bib, flags=re.M)) == len(PAPERS)


def test_an_entry_naming_an_unknown_paper_fails_the_build(project_copy: Path, tmp_path: Path) -> None:
    post = project_copy / "docs/journal/posts/2024-10-28-bad.md"
    post.write_text("---\ntitle: x\ndate:\n  created: 2024-10-28\ncategories:\n  - bert\n---\n\nx\n\n<!-- more -->\n",
                    encoding="utf-8")
    result = run_build(project_copy, tmp_path / "out")
    assert result.returncode != 0
    assert f"{post}: field 'categories': names unknown paper id 'bert'" in result.stderr


def test_a_paper_with_an_unknown_status_fails_the_build(project_copy: Path, tmp_path: Path) -> None:
    path = project_copy / "papers/kan.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("status: to-read", "status: skimmed"), encoding="utf-8")
    result = run_build(project_copy, tmp_path / "out")
    assert result.returncode != 0
    assert f"{path}: field 'status': got 'skimmed'" in result.stderr


@pytest.mark.subprocess
def test_a_new_entry_is_published_everywhere_and_stray_py_files_are_not_notebooks(project_copy: Path, tmp_path: Path) -> None:
    made = run_notes("new", "Hiera 的 unroll", "--paper", "hiera", "--tag", "掩码单元", "--date", "2024-11-01",
                     cwd=project_copy)
    assert made.returncode == 0, made.stderr
    post = project_copy / made.stdout.strip()
    (project_copy / "docs/javascripts/helper.py").write_text("print('not a notebook')\n", encoding="utf-8")
    result = run_build(project_copy, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "out"
    assert (site / "journal" / post.stem / "index.html").is_file()
    assert post.stem in (site / "journal/category/hiera/index.html").read_text(encoding="utf-8")
    assert f"../../journal/{post.stem}/" in (site / "reading-list/hiera/index.html").read_text(encoding="utf-8")
    assert f'href="{post.stem}/"' in (site / "journal/feed.xml").read_text(encoding="utf-8")
    assert not (site / "javascripts/helper/index.html").exists()


def test_a_broken_cross_reference_fails_the_strict_build(project_copy: Path, tmp_path: Path) -> None:
    page = project_copy / "docs/notebooks/index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n见 [shuffle][refimpl.masking.no_such_function]。\n", encoding="utf-8")
    result = run_build(project_copy, tmp_path / "out")
    assert result.returncode != 0
    assert "refimpl.masking.no_such_function" in result.stderr


def test_tags_page_lists_every_tag_and_the_journal_links_its_feed(built_site: Build) -> None:
    tags = (built_site.site / "tags/index.html").read_text(encoding="utf-8")
    for entry in ENTRIES:
        for tag in entry.tags:
            assert tag in tags
    # No <link rel="alternate"> in <head>: Material treats those as language versions and fetches
    # their sitemap.xml (a 404). The journal page links the feed instead.
    journal = (built_site.site / "journal/index.html").read_text(encoding="utf-8")
    assert 'href="feed.xml"' in journal


def test_concept_pages_embed_code_but_keep_api_members_out_of_their_table_of_contents(built_site: Build) -> None:
    concept = (built_site.site / "concepts/mae/index.html").read_text(encoding="utf-8")
    assert 'class="doc doc-object' in concept  # the tested code is embedded
    assert not re.search(r'<a href="#refimpl\.[^"]*" class="md-nav__link', concept)
    api = (built_site.site / "reference/refimpl/mae/index.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="#refimpl\.mae\.MaskedAutoencoderViT" class="md-nav__link', api)


class _Embeds(HTMLParser):
    """The concept-page embeds (``div.concept-embed``): for each, its signature, API link and source block."""

    def __init__(self) -> None:
        super().__init__()
        self.embeds: list[dict[str, object]] = []
        self.depth = 0  # <div> nesting inside the current embed (0: outside)
        self.classes: list[str] = []
        self.in_summary = self.in_api = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "div" and "concept-embed" in cls:
            self.embeds.append({"signature": False, "api": [], "details": [], "summary": ""})
            self.depth = 1
            return
        if not self.depth:
            if "doc-class" in cls:
                self.classes.append(a.get("id") or "?")
            return
        embed = self.embeds[-1]
        self.depth += tag == "div"
        embed["signature"] = embed["signature"] or "doc-signature" in cls
        self.in_api = (tag == "p" and "concept-embed__api" in cls) or self.in_api
        if tag == "a" and self.in_api:
            embed["api"].append(a.get("href") or "")
        if tag == "details":
            embed["details"].append("open" in a)
        self.in_summary = tag == "summary" or self.in_summary

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "div":
            self.depth -= 1
        self.in_summary = self.in_summary and tag != "summary"
        self.in_api = self.in_api and tag != "p"

    def handle_data(self, data: str) -> None:
        if self.depth and self.in_summary:
            self.embeds[-1]["summary"] += data


@pytest.mark.parametrize("name", [p.stem for p in sorted((ROOT / "docs/concepts").glob("*.md")) if p.stem != "index"])
def test_a_concept_page_shows_each_function_short_with_its_source_closed_and_lists_its_diary_entries(
        built_site: Build, name: str) -> None:
    text = (built_site.site / f"concepts/{name}/index.html").read_text(encoding="utf-8")
    parser = _Embeds()
    parser.feed(text)
    assert len(parser.embeds) >= 3 and not parser.classes, (len(parser.embeds), parser.classes)
    for embed in parser.embeds:
        assert embed["signature"], embed
        assert len(embed["api"]) == 1 and "/reference/refimpl/" in embed["api"][0] and "#refimpl." in embed["api"][0], embed
        assert embed["details"] == [False] and embed["summary"].strip().startswith("查看源码"), embed
    # Only the docstring's first paragraph: the Args/Returns tables stay on the API page.
    assert "doc-section-title" not in text.split('class="concept-embed"', 1)[1]
    assert 'class="admonition abstract"' in text.split("<h2", 1)[0]  # 本页要点, before the first section
    related = text.split('id="related-entries"', 1)[1].split("<h2", 1)[0]
    assert re.search(r'<li>\d{4}-\d{2}-\d{2} <a href="\.\./\.\./journal/[\w-]+/">', related) or "还没有日记" in related

