"""One term per concept: the glossary names the variants to avoid, and prose that uses one is flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from paper_notes.checks import check_prose
from paper_notes.glossary import load_glossary
from paper_notes.registry import SchemaError, load_papers
from paper_notes.terms import find_variants

from conftest import ROOT, run_notes

PAPERS = load_papers(ROOT / "papers")
TERMS = load_glossary(ROOT / "glossary.yaml", PAPERS)


def test_the_glossary_names_the_preferred_terms_and_the_variants_to_avoid() -> None:
    avoid = {form: term.term for term in TERMS for form in term.avoid}
    assert avoid["词元"] == "token"
    assert avoid["图块"] == "图像块"
    assert avoid["位置编码"] == "位置嵌入"
    assert avoid["掩码词元"] == "掩码 token"


def test_a_variant_in_prose_is_flagged_with_the_preferred_term() -> None:
    found = find_variants("每个图块是一个词元，加上位置编码；掩码词元补在后面。图像块与 token 没问题。", "x.md", TERMS)
    assert [(v.text, v.term.term) for v in found] == [
        ("图块", "图像块"), ("词元", "token"), ("位置编码", "位置嵌入"), ("掩码词元", "掩码 token")]
    assert str(found[0]) == "x.md: '图块' is a variant of the glossary term '图像块' (patch); write '图像块'"


def test_the_sites_prose_uses_one_term_per_concept() -> None:
    report = check_prose(ROOT, PAPERS, TERMS)
    assert [p for p in report.problems if "is a variant of" in p] == []


@pytest.mark.parametrize("entry, message", [
    ('  avoid: ["tokens"]\n', "'tokens' is to be avoided but is a spelling of term 'token'"),
    ('  avoid: ["位置编码"]\n', "'位置编码' is already avoided by term 'position-embedding'"),
])
def test_a_bad_avoid_list_fails_naming_the_file_and_the_term(tmp_path: Path, entry: str, message: str) -> None:
    text = (ROOT / "glossary.yaml").read_text(encoding="utf-8")
    extra = ('\n- id: extra\n  term: "附加"\n  en: "extra"\n' + entry +
             '  short: "s"\n  detail: |\n    d\n')
    path = tmp_path / "glossary.yaml"
    path.write_text(text + extra, encoding="utf-8")
    with pytest.raises(SchemaError) as error:
        load_glossary(path, PAPERS)
    assert str(error.value).startswith(f"{path}: field 'term '")
    assert message in str(error.value)


@pytest.mark.subprocess
def test_notes_check_flags_a_variant(project_copy: Path) -> None:
    page = project_copy / "docs/concepts/vit.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n每个图块加上位置编码。\n", encoding="utf-8")
    result = run_notes("--root", str(project_copy), "check", timeout=120)
    assert result.returncode == 1
    assert "docs/concepts/vit.md:" in result.stderr
    assert "'图块' is a variant of the glossary term '图像块' (patch)" in result.stderr
    assert "'位置编码' is a variant of the glossary term '位置嵌入'" in result.stderr
