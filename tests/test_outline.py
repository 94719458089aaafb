"""Paper outlines as data: the schema names the file and the field; every explained paper has one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paper_notes.outline import outline_markdown, parse_outline
from paper_notes.registry import SchemaError, load_papers

from conftest import ROOT

PAPERS = load_papers(ROOT / "papers")


def good_outline() -> dict:
    return {
        "version": "arXiv v1",
        "sections": [{"n": "2.4", "title": "For accuracy: Grid Extension", "gist": "网格扩展。"},
                     {"n": "A.1", "title": "ImageNet Experiments", "gist": "设置。"}],
        "figures": [{"n": "4", "title": "MAE for Hierarchical Models.", "gist": "五个小图。",
                     "panels": ["a", "b", "c", "d", "e"]}, {"n": "2.3", "title": "t", "gist": "g"}],
        "tables": [{"n": "1c", "title": "Mask token.", "gist": "g",
                    "results": {"columns": ["a", "b"], "rows": [["x", 1.5], ["y", 2]], "note": "n"}}],
    }


def test_a_good_outline_parses_with_one_anchor_and_label_per_item() -> None:
    outline = parse_outline(good_outline())
    assert [i.anchor for i in outline.items()] == ["sec-2-4", "sec-a-1", "fig-4", "fig-2-3", "tab-1c"]
    assert [i.label for i in outline.items()] == ["§2.4", "§A.1", "图 4", "图 2.3", "表 1c"]
    assert outline.find("figure", "4").panels == ("a", "b", "c", "d", "e")
    assert outline.find("table", "1C").results.rows == (("x", "1.5"), ("y", "2"))
    assert outline.find("table", "1") is None


def write_paper(tmp_path: Path, outline: object) -> Path:
    data = yaml.safe_load((ROOT / "papers/kan.yaml").read_text(encoding="utf-8"))
    data["outline"] = outline
    path = tmp_path / "papers" / "kan.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def edited(key: str, index: int, **change: object) -> dict:
    outline = good_outline()
    item = outline[key][index]
    for name, value in change.items():
        if value is None:
            item.pop(name)
        else:
            item[name] = value
    return outline


@pytest.mark.parametrize("outline, field, message", [
    ({**good_outline(), "version": None}, "outline.version", "expected a non-empty string"),
    ({k: v for k, v in good_outline().items() if k != "version"}, "outline.version", "missing (required)"),
    ({**good_outline(), "figure": []}, "outline.figure", "unknown key"),
    (edited("figures", 0, panels=["a", "B"]), "outline.figures[0].panels", "expected a list of panel letters"),
    (edited("figures", 0, panels=["a", "a"]), "outline.figures[0].panels", "listed twice"),
    (edited("sections", 0, panels=["a"]), "outline.sections[0].panels", "only figures have panels"),
    (edited("tables", 0, n="Table 1"), "outline.tables[0].n", "expected a table number such as '1' or '1c'"),
    (edited("sections", 1, n="2.4"), "outline.sections[1].n", "Section 2.4 is listed twice"),
    (edited("figures", 1, gist=None), "outline.figures[1].gist", "missing (required)"),
    (edited("figures", 1, caption="x"), "outline.figures[1].caption", "unknown key"),
    (edited("tables", 0, results={"columns": ["a", "b"], "rows": [["x"]]}), "outline.tables[0].results.rows[0]",
     "expected a list of 2 cells"),
    (edited("sections", 0, results={"columns": ["a"], "rows": [["x"]]}), "outline.sections[0].results",
     "only figures and tables carry results"),
    ("arXiv v1", "outline", "expected a mapping"),
])
def test_a_bad_outline_fails_naming_the_file_and_the_field(tmp_path: Path, outline: object, field: str,
                                                           message: str) -> None:
    path = write_paper(tmp_path, outline)
    with pytest.raises(SchemaError) as error:
        load_papers(path.parent)
    assert str(error.value).startswith(f"{path}: field '{field}': ")
    assert message in str(error.value)
    assert error.value.field == field


def test_every_paper_a_concept_page_explains_has_an_outline() -> None:
    for pid in ("mae", "vit", "hiera", "kan", "sam2"):
        assert PAPERS[pid].outline is not None, pid
        assert PAPERS[pid].outline.version


def test_the_sam2_outline_is_complete_and_follows_arxiv_v1() -> None:
    """Every section, figure and table of SAM 2's first arXiv version (the references' numbering)."""
    outline = PAPERS["sam2"].outline
    assert outline.version.startswith("arXiv v1")
    assert (len(outline.sections), len(outline.figures), len(outline.tables)) == (50, 17, 18)
    assert outline.find("section", "8.2.3").title == "Memory architecture ablations"
    assert outline.find("table", "7").title == "VOS comparison to prior work."  # Table 6 in v2


def test_the_corrected_numbers_are_where_the_review_found_them() -> None:
    hiera, kan = PAPERS["hiera"].outline, PAPERS["kan"].outline
    assert hiera.find("figure", "4").title == "MAE for Hierarchical Models."
    assert hiera.find("figure", "4").panels == ("a", "b", "c", "d", "e")
    assert hiera.find("figure", "5").title == "Mask Unit Attention."
    assert hiera.find("table", "2").title == "Configuration for Hiera variants."
    assert kan.find("section", "2.4").title == "For accuracy: Grid Extension"
    assert kan.find("section", "2.2").title == "KAN architecture"


def test_the_paper_page_shows_the_outline_with_an_anchor_per_item() -> None:
    text = outline_markdown(PAPERS["hiera"].outline, "hiera")
    assert '<div class="paper-outline" markdown>' in text
    for item in PAPERS["hiera"].outline.items():
        assert f'<span id="{item.anchor}">{item.label}</span> **{item.title}**' in text
