"""References to a paper's sections, figures and tables: parsed, resolved against the outline, rendered,
and refused (naming page, paper and item) when the outline lacks the item."""

from __future__ import annotations

from pathlib import Path

import pytest

from paper_notes.references import (
    UnresolvedReference,
    item_results,
    named_locators,
    named_references,
    parse_locator,
    render,
    resolve,
)
from paper_notes.registry import load_papers

from conftest import ROOT, run_build, run_notes

PAPERS = load_papers(ROOT / "papers")
PAGE = "concepts/hiera.md"


@pytest.mark.parametrize("text, kind, n, panel", [
    ("图 4", "figure", "4", ""), ("图 4e", "figure", "4", "e"), ("图4", "figure", "4", ""),
    ("Fig. 4", "figure", "4", ""), ("Figure 2.3", "figure", "2.3", ""), ("图 B.1", "figure", "B.1", ""),
    ("表 1c", "table", "1c", ""), ("Table 1c", "table", "1c", ""), ("Tab. 3b", "table", "3b", ""),
    ("§2.4", "section", "2.4", ""), ("§A.1", "section", "A.1", ""), ("Sec. 4.1", "section", "4.1", ""),
    ("Section 6.1.3", "section", "6.1.3", ""), ("附录 A.1", "section", "A.1", ""), ("App. B", "section", "B", ""),
])
def test_locators_in_chinese_and_english(text: str, kind: str, n: str, panel: str) -> None:
    locator = parse_locator(text)
    assert (locator.kind, locator.n, locator.panel) == (kind, n, panel)


@pytest.mark.parametrize("text", ["图", "figure four", "第 3 节", "Eq. 2", "表 1 c d", ""])
def test_what_is_not_a_locator(text: str) -> None:
    assert parse_locator(text) is None


@pytest.mark.parametrize("paper, locator, anchor", [
    ("hiera", "图 4", "fig-4"), ("hiera", "图 4e", "fig-4"), ("mae", "表 1c", "tab-1c"), ("kan", "§2.4", "sec-2-4"),
    ("mae", "§A.1", "sec-a-1"), ("kan", "Fig. 2.3", "fig-2-3"), ("hiera", "Table 2", "tab-2"),
    ("sam2", "§8.2.3", "sec-8-2-3"), ("vit", "附录 D.4", "sec-d-4"),
])
def test_a_reference_resolves_to_the_outline_item(paper: str, locator: str, anchor: str) -> None:
    assert resolve(paper, locator, PAPERS, PAGE).item.anchor == anchor


@pytest.mark.parametrize("paper, locator, item, reason", [
    ("hiera", "图 9", "Figure 9", "has no such figure; it has: 1, 2, 3, 4, 5, 6, 7, 8"),
    ("hiera", "图 4f", "Figure 4f", "Figure 4 has no panel (f) in the outline; its panels: a, b, c, d, e"),
    ("hiera", "图 2a", "Figure 2a", "its panels: none"),
    ("kan", "§2.6", "Section 2.6", "has no such section"),
    ("mae", "表 1g", "Table 1g", "has no such table"),
    ("bert", "图 1", "Figure 1", "no such paper id"),
    ("ptq4ris", "图 1", "Figure 1", "papers/ptq4ris.yaml has no outline"),
    ("mae", "Eq. 1", "'Eq. 1'", "not a section, figure or table"),
])
def test_a_reference_the_outline_lacks_names_page_paper_and_item(paper: str, locator: str, item: str,
                                                                 reason: str) -> None:
    with pytest.raises(UnresolvedReference) as error:
        resolve(paper, locator, PAPERS, PAGE)
    message = str(error.value)
    assert message.startswith(f"{PAGE}: reference to {item} of paper '{paper}': ")
    assert reason in message


def test_a_reference_renders_as_a_link_to_the_anchor_with_title_and_gist_as_tooltip() -> None:
    text, cited = render("卡在[@hiera, 图 4e]。", PAPERS, PAGE)
    text = text.split("<h2")[0]  # the page's text, before its reference list
    figure = PAPERS["hiera"].outline.find("figure", "4")
    assert text.startswith('<p>卡在<a class="paper-ref" href="../reading-list/hiera.md#fig-4" '
                           'title="Hiera 图 4，小图 (e)：MAE for Hierarchical Models.')
    assert text.endswith('">图 4e</a>。</p>\n')
    assert figure.gist[:20] in text
    assert cited.ids == ["hiera"] and [r.item for r in cited.resolved] == [figure]


def test_several_references_in_one_bracket_and_across_papers() -> None:
    text, cited = render("[@mae, §4.1; 表 1f; 图 6; @hiera, 表 3b]", PAPERS, "concepts/masking.md")
    assert [(r.paper.id, r.item.anchor) for r in cited.resolved] == [
        ("mae", "sec-4-1"), ("mae", "tab-1f"), ("mae", "fig-6"), ("hiera", "tab-3b")]
    assert text.count('class="paper-ref"') == 4 and text.count('</a>、<a class="paper-ref"') == 3
    assert cited.ids == ["mae", "hiera"]


def test_plain_citations_stay_citations_and_code_is_left_alone() -> None:
    markdown = "见 [@mae] 与 [@mae; @vit]。`[@hiera, 图 9]` 是代码。\n\n```\n[@kan, §9]\n```\n再看 [@hiera, 图 5b]。\n"
    out, _ = render(markdown, PAPERS, PAGE, "fenced_code")
    assert '<a href="../reading-list/mae.md">He et al., 2022</a>' in out
    assert "<code>[@hiera, 图 9]</code>" in out and "[@kan, §9]" in out  # untouched inside code
    assert 'href="../reading-list/hiera.md#fig-5' in out
    assert '<h2 id="references">参考文献</h2>' in out
    assert "Hiera: A Hierarchical Vision Transformer" in out.split('<h2 id="references">参考文献</h2>')[1]


def test_cite_refuses_an_unknown_item() -> None:
    with pytest.raises(UnresolvedReference, match=r"concepts/hiera.md: reference to Table 99 of paper 'hiera'"):
        render("[@hiera, 表 99]", PAPERS, PAGE)


def test_a_results_marker_renders_the_items_numbers_with_a_reference_to_it() -> None:
    table = item_results(PAPERS, "mae", "表 1c", "concepts/mae.md")
    assert "| 编码器 | 微调 (%) | 线性探测 (%) | 训练 FLOPs |" in table
    assert "| 带掩码 token | 84.2 | 59.6 | 3.3× |" in table
    assert "[@mae, 表 1c]" in table
    with pytest.raises(UnresolvedReference, match="has no 'results'"):
        item_results(PAPERS, "mae", "表 3", "concepts/mae.md")


def test_the_named_form_of_titles_and_docstrings() -> None:
    found = [(m.group(0), pid, named_locators(m)) for m, pid in named_references(
        "(Hiera §3.2, Fig. 5b) and (MAE Table 1c and Table 2); Hiera 图 4；KAN §2.4.", PAPERS)]
    assert found == [
        ("Hiera §3.2, Fig. 5b", "hiera", ["§3.2", "Fig. 5b"]),
        ("MAE Table 1c and Table 2", "mae", ["Table 1c", "Table 2"]),
        ("Hiera 图 4", "hiera", ["图 4"]),
        ("KAN §2.4", "kan", ["§2.4"]),
    ]


@pytest.mark.subprocess
def test_notes_check_fails_on_an_unknown_item_naming_page_paper_and_item(project_copy: Path) -> None:
    root = project_copy
    page = root / "docs/concepts/kan.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n网格扩展见 [@kan, §2.6]，还有 [@hiera, 图 4f]。\n",
                    encoding="utf-8")
    result = run_notes("--root", str(root), "check", timeout=120)
    assert result.returncode == 1
    assert "docs/concepts/kan.md: reference to Section 2.6 of paper 'kan': the outline" in result.stderr
    assert "docs/concepts/kan.md: reference to Figure 4f of paper 'hiera'" in result.stderr


@pytest.mark.slow
def test_the_strict_build_fails_on_an_unknown_item(project_copy: Path, tmp_path: Path) -> None:
    page = project_copy / "docs/concepts/mae.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n见 [@mae, 表 1z]。\n", encoding="utf-8")
    result = run_build(project_copy, tmp_path / "out")
    assert result.returncode != 0
    assert "concepts/mae.md: reference to Table 1z of paper 'mae'" in result.stderr
