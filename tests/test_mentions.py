"""Bare mentions of a paper's figures, tables and sections: found in prose, allowed only as checked
references, in titles and docstrings in the named form, in code, and in the explicit exceptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from paper_notes.checks import check_prose
from paper_notes.glossary import load_glossary
from paper_notes.mentions import bare_spans, check_markdown, check_python_source, notebook_markdown, scan_html, scan_site
from paper_notes.registry import load_papers

from conftest import ROOT, Build

PAPERS = load_papers(ROOT / "papers")


def bare(text: str) -> list[str]:
    return [text[a:b] for a, b in bare_spans(text)]


def test_bare_mentions_in_chinese_and_english_are_found() -> None:
    text = "卡在图 4，见表 1c 和图4e；§3.1、第 3 节、附录 A；Fig. 4, Table 2, Section 3, Sec. 2.4, App. B, figure 5"
    assert bare(text) == ["图 4", "表 1c", "图4e", "§3.1", "第 3 节", "附录 A", "Fig. 4", "Table 2", "Section 3",
                          "Sec. 2.4", "App. B", "figure 5"]


def test_words_that_only_look_like_mentions_are_not() -> None:
    text = ("这代表 1 个值，列表 2 项，每张图 64 个块，示意图 3 张，下图 2 行；`figures` 与 tables 都是英文词，"
            "sections of code, Appendix, Figures, Eq. 2, 第 3 阶段, 第 2 步")
    assert bare(text) == []


def test_markdown_prose_must_use_references_and_titles_the_named_form() -> None:
    md = ("---\ntitle: \"Hiera 图 4：卡住了\"\n---\n\n# Hiera 图 4：卡住了\n\n卡在 [@hiera, 图 4]。又见图 5。\n\n"
          "[Hiera 图 4：卡住了](x.md) 是一篇日记。\n\n```python\n# Fig. 9 in code is fine\n```\n"
          "<span class=\"pn-own\">表 1</span> 是本站自己的表。\n\n## MAE 图 12 不存在\n")
    problems, checked = check_markdown(md, "docs/x.md", PAPERS)
    assert checked[("hiera", "figure")] == 4  # front-matter title, heading, reference, link text
    assert len(problems) == 2
    assert "docs/x.md: bare mention" in problems[0] and "'图 5'" in problems[0]
    assert "docs/x.md: the outline" in problems[1] and "MAE 图 12" in problems[1]


def test_a_mention_broken_over_two_lines_is_still_found() -> None:
    problems, _ = check_markdown("论文的图\n4 讲的是这个。\n", "docs/x.md", PAPERS)
    assert len(problems) == 1


def test_notebook_markdown_cells_are_scanned_and_code_cells_are_not() -> None:
    source = "# %% [markdown]\n# 见图 4。\n\n# %%\nx = 1  # Fig. 4\n\n# %% [markdown]\n# 还有 [@kan, §2.4]。\n"
    assert notebook_markdown(source) == "见图 4。\n\n还有 [@kan, §2.4]。"


def test_built_html_exceptions_are_explicit() -> None:
    html = """<html><title>Hiera 图 4</title><nav>图 7</nav><div class="md-content">
    <h1>Hiera 图 4：卡住了</h1>
    <p>卡在<a class="paper-ref" href="../../reading-list/hiera/#fig-4" title="Hiera 图 4">图 4</a>，又见图 5。</p>
    <p><a href="../x/">Hiera 图 4：终于弄懂了</a> 与 <a href="../y/">概念页的图 4 一节</a></p>
    <div class="paper-outline"><span id="fig-4">图 4</span></div>
    <table class="pn-own"><caption>表 1</caption></table>
    <pre><code># Table 9</code></pre>
    <div class="doc doc-contents"><p>Pool queries (Hiera Fig. 5b), see Fig. 3.</p></div>
    </div><footer>表 3</footer></html>"""
    scan = scan_html(html, "journal/x/index.html", PAPERS)
    assert scan.references == {("hiera", "figure"): 1}
    assert scan.named[("hiera", "figure")] == 3  # h1, the entry's title in a link, the docstring
    assert sorted(m.text for m in scan.problems) == ["Fig. 3", "图 4", "图 5"]


def test_docstrings_name_their_paper_and_the_item_exists(tmp_path: Path) -> None:
    """Every mention in refimpl/ (docstrings and comments, what mkdocstrings renders) resolves."""
    for path in sorted((ROOT / "refimpl").rglob("*.py")):
        problems, _ = check_python_source(path, path.relative_to(ROOT).as_posix(), PAPERS)
        assert problems == []
    module = tmp_path / "m.py"
    module.write_text('"""Pool (Hiera §3.2, Fig. 5b); units (Hiera Fig. 9); see §3 and (MAE Table 1c)."""\n',
                      encoding="utf-8")
    problems, checked = check_python_source(module, "m.py", PAPERS)
    assert checked == {("hiera", "section"): 1, ("hiera", "figure"): 1, ("mae", "table"): 1}
    assert len(problems) == 2
    assert "m.py:1: the outline" in problems[0] and "Hiera Fig. 9" in problems[0]
    assert "m.py:1: bare mention" in problems[1] and "'§3'" in problems[1]


def test_the_docstrings_cite_the_corrected_items() -> None:
    text = (ROOT / "refimpl/hiera.py").read_text(encoding="utf-8")
    assert "max-pooled queries (Hiera §3.2, Fig. 5b)" in text
    assert "# --- named configs (Hiera Table 2)" in text
    assert "Hiera Table 1" not in text.split("# --- named configs")[1]
    masking = (ROOT / "refimpl/masking.py").read_text(encoding="utf-8")
    assert "(Hiera Fig. 4a)" in masking and "Fig. 3-4" not in masking
    kan = (ROOT / "refimpl/kan.py").read_text(encoding="utf-8")
    assert "Grid extension (KAN §2.4)" in kan and "Grid update: move the knots" in kan and "paper §2.5)" not in kan


def test_the_sources_hold_no_bare_mention_or_unresolved_reference() -> None:
    report = check_prose(ROOT, PAPERS, load_glossary(ROOT / "glossary.yaml", PAPERS))
    assert report.problems == []
    for pid in ("mae", "vit", "hiera", "kan"):
        assert sum(n for (p, _), n in report.references.items() if p == pid) > 0, pid


@pytest.mark.slow
def test_the_built_site_has_no_bare_mention_and_references_every_explained_paper(built_site: Build) -> None:
    scan = scan_site(built_site.site, PAPERS)
    assert [str(m) for m in scan.problems] == []
    for pid, kinds in {"mae": ("section", "figure", "table"), "hiera": ("section", "figure", "table"),
                       "kan": ("section", "figure"), "vit": ("section", "table")}.items():
        for kind in kinds:
            assert scan.references[(pid, kind)] > 0, (pid, kind)
    assert scan.named[("hiera", "figure")] > 0  # docstrings rendered by mkdocstrings
