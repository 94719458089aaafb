"""Glossary tooltips: a term's first occurrence on a page gets its definition on hover, also inside Chinese sentences."""

from __future__ import annotations

from pathlib import Path

import markdown
import pytest
import yaml

from paper_notes.glossary import load_glossary
from paper_notes.registry import SchemaError, load_papers

from conftest import ROOT

TERMS = [
    {"id": "mask", "term": "掩码", "en": "mask", "aliases": [], "short": "被遮住的位置", "detail": "d", "papers": ["mae"]},
    {"id": "end-to-end", "term": "端到端", "en": "end-to-end", "short": "一个系统从输入到输出", "detail": "d"},
    {"id": "end-to-end-fine-tuning", "term": "端到端微调", "en": "end-to-end fine-tuning",
     "short": "预训练后更新全部参数", "detail": "d"},
]


def render(text: str, tmp_path: Path, terms: list[dict] = TERMS) -> str:
    path = tmp_path / "glossary.yaml"
    path.write_text(yaml.safe_dump(terms, allow_unicode=True), encoding="utf-8")
    return markdown.markdown(text, extensions=["paper_notes.glossary"],
                             extension_configs={"paper_notes.glossary": {"path": str(path)}})


def test_chinese_term_inside_a_chinese_sentence_gets_a_tooltip(tmp_path: Path) -> None:
    html = render("随机掩码百分之七十五的图像块。", tmp_path)
    assert '<abbr title="掩码 (mask)：被遮住的位置">掩码</abbr>' in html


def test_only_the_first_occurrence_of_a_term_on_a_page_gets_a_tooltip(tmp_path: Path) -> None:
    html = render("掩码 (mask) 是什么？\n\n- 随机掩码\n- 掩码单元和端到端\n\n再说一次 mask 和端到端。", tmp_path)
    assert html.count(">掩码</abbr>") == 1 and html.count("<abbr") == 2  # 掩码 once (mask is its spelling), 端到端 once
    assert html.index(">掩码</abbr>") < html.index("随机掩码")
    # MkDocs may convert every page with one Markdown instance: the next page starts afresh.
    path = tmp_path / "glossary.yaml"
    md = markdown.Markdown(extensions=["paper_notes.glossary"], extension_configs={"paper_notes.glossary": {"path": str(path)}})
    first, second = md.convert("掩码，掩码"), md.reset().convert("第二页也有掩码。")
    assert first.count("<abbr") == 1 and second.count("<abbr") == 1


def test_english_terms_match_whole_words_only(tmp_path: Path) -> None:
    html = render("a mask, masked tokens, unmask", tmp_path)
    assert html.count("<abbr") == 1


def test_longest_term_wins(tmp_path: Path) -> None:
    for text, longest in [("MAE 报告了端到端微调。", "端到端微调"), ("MAE reports end-to-end fine-tuning.", "end-to-end fine-tuning")]:
        html = render(text, tmp_path)
        assert f">{longest}</abbr>" in html and html.count("<abbr") == 1


def test_code_links_and_headings_are_left_alone(tmp_path: Path) -> None:
    html = render("# 掩码\n\n`mask` [掩码](x.md)\n\n```\nmask\n```\n", tmp_path)
    assert "<abbr" not in html


def test_repository_glossary_is_valid_and_covers_the_core_terms() -> None:
    terms = load_glossary(ROOT / "glossary.yaml", load_papers(ROOT / "papers"))
    ens = {t.en for t in terms}
    for needed in ("token", "patch", "mask", "encoder", "decoder", "end-to-end", "end-to-end fine-tuning", "linear probing"):
        assert needed in ens


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"papers": ["bert"]}, "names unknown paper id 'bert'"),
        ({"short": ""}, "expected a non-empty string"),
        ({"colour": "red"}, "unknown field"),
        ({"en": "end-to-end"}, "already used by term"),
    ],
)
def test_glossary_schema_errors_name_the_term_and_field(tmp_path: Path, change: dict, message: str) -> None:
    terms = [dict(t) for t in TERMS]
    terms[0].update(change)
    path = tmp_path / "glossary.yaml"
    path.write_text(yaml.safe_dump(terms, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SchemaError, match=message) as info:
        load_glossary(path, ["mae"])
    assert "term 'mask'" in str(info.value)
