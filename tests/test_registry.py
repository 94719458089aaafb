"""The reading list: every paper file validates, and each kind of mistake is named precisely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from paper_notes.registry import SchemaError, bibliography, load_papers

from conftest import ROOT

EXPECTED_IDS = {"mae", "hiera", "kan", "u2net", "anomalyseg", "sam2-cod", "ptq4ris", "sam2-instance", "vit"}


def test_reading_list_holds_the_eight_papers_vit_and_sam2() -> None:
    papers = load_papers(ROOT / "papers")
    assert set(papers) == EXPECTED_IDS | {"sam2"}


def test_reading_status_follows_the_diary() -> None:
    papers = load_papers(ROOT / "papers")
    assert papers["mae"].status == "read"
    assert papers["hiera"].status == "reading"
    assert papers["kan"].status == "to-read"


def test_mae_metadata_matches_the_paper() -> None:
    mae = load_papers(ROOT / "papers")["mae"]
    assert mae.title == "Masked Autoencoders Are Scalable Vision Learners"
    assert mae.authors[0] == "Kaiming He" and len(mae.authors) == 6
    assert (mae.venue, mae.year, mae.arxiv) == ("CVPR", 2022, "2111.06377")
    assert mae.code == "https://github.com/facebookresearch/mae"
    assert mae.short_citation == "He et al., 2022"


def test_bibtex_has_one_entry_per_paper_keyed_by_id() -> None:
    papers = load_papers(ROOT / "papers")
    bib = bibliography(papers)
    keys = re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M)
    assert sorted(keys) == sorted(papers)
    assert "author = {Kaiming He and Xinlei Chen" in bib
    kinds = dict((key, kind) for kind, key in re.findall(r"^@(\w+)\{([^,]+),", bib, flags=re.M))
    assert (kinds["mae"], kinds["u2net"], kinds["sam2-cod"]) == ("inproceedings", "article", "misc")


def _write_paper(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "papers" / "mae.yaml").read_text(encoding="utf-8"))
    data["related"] = []
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / "papers" / f"{data.get('id', 'mae')}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"status": "done"}, "status", "expected one of to-read, reading, read"),
        ({"year": "2022"}, "year", "expected an integer"),
        ({"authors": []}, "authors", "must not be empty"),
        ({"title": ...}, "title", "missing"),
        ({"venu": "CVPR"}, "venu", "unknown field"),
        ({"arxiv": "arXiv:2111.06377"}, "arxiv", "expected an arXiv id"),
        ({"code": "github.com/x"}, "code", "expected an http(s) URL"),
        ({"added": "yesterday"}, "added", "expected a date"),
        ({"unconfirmed": ["colour"]}, "unconfirmed", "not a paper field"),
        ({"related": ["bert"]}, "related", "unknown paper id 'bert'"),
        ({"headline_results": [{"task": "x"}]}, "headline_results[0]", "expected a mapping with exactly task"),
        ({"headline_results": [{"task": "x", "model": "m", "metric": "", "value": 1, "where": "t"}]},
         "headline_results[0].metric", "expected a non-empty string or number"),
    ],
)
def test_schema_errors_name_file_field_and_expectation(tmp_path: Path, changes: dict, field: str, expected: str) -> None:
    path = _write_paper(tmp_path, **changes)
    with pytest.raises(SchemaError, match=re.escape(expected)) as info:
        load_papers(path.parent)
    assert str(info.value).startswith(str(path))
    assert f"field '{field}'" in str(info.value)
    assert info.value.field == field


def test_id_must_match_file_name(tmp_path: Path) -> None:
    path = _write_paper(tmp_path)
    path.rename(path.with_name("masked-ae.yaml"))
    with pytest.raises(SchemaError, match="expected the file name stem 'masked-ae'"):
        load_papers(path.parent)


def test_invalid_yaml_names_the_file_and_quotes_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: mae\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad\.yaml: is not valid YAML") as info:
        load_papers(tmp_path)
    assert "title: [unclosed" in str(info.value)  # pure Python's message, also where libyaml parsed first


@pytest.mark.parametrize("path", sorted([*ROOT.glob("papers/*.yaml"), ROOT / "glossary.yaml"]), ids=lambda p: p.name)
def test_libyaml_and_pure_python_read_the_projects_files_alike(path: Path) -> None:
    from paper_notes.yamlio import load_yaml

    text = path.read_text(encoding="utf-8")
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("this PyYAML has no libyaml: load_yaml reads in pure Python only")
    assert repr(load_yaml(text, path)) == repr(yaml.safe_load(text))


def test_results_marker_becomes_the_papers_table_with_a_citation() -> None:
    from paper_notes.site import expand_results

    papers = load_papers(ROOT / "papers")
    text = expand_results("before\n<!-- results: mae -->\nafter\n", papers)
    assert "| ImageNet-1K 微调 | ViT-H/14，448² 输入 | top-1 (%) | 87.8 |" in text
    assert "[@mae]" in text
    import dataclasses

    papers["bare"] = dataclasses.replace(papers["mae"], id="bare", headline_results=())
    for missing in ("bare", "bert"):  # no results to show, or no such paper
        with pytest.raises(KeyError):
            expand_results(f"<!-- results: {missing} -->\n", papers)


def test_display_title_is_the_short_title_else_a_short_head_before_the_colon() -> None:
    import dataclasses

    paper = load_papers(ROOT / "papers")["kan"]
    assert paper.display_title == "KAN"  # "KAN: Kolmogorov-Arnold Networks"
    assert dataclasses.replace(paper, short_title="Kolmogorov-Arnold").display_title == "Kolmogorov-Arnold"
    long_head = dataclasses.replace(paper, title="Evaluating SAM2's Role in Camouflaged Object Detection: From SAM to SAM2")
    assert long_head.display_title == long_head.title
    assert dataclasses.replace(paper, title="Masked Autoencoders").display_title == "Masked Autoencoders"


def test_metadata_corrected_by_the_review() -> None:
    papers = load_papers(ROOT / "papers")
    assert papers["ptq4ris"].venue_year == "ICRA 2025"
    instance = papers["sam2-instance"]
    assert instance.authors == ("Jialun Pei", "Zhangjun Zhou", "Tiantian Zhang")  # arXiv v2's order
    assert set(instance.unconfirmed) == {"outline", "headline_results"}  # its metadata is confirmed; its tables unread
    assert papers["mae"].unconfirmed == ()  # headline results checked against the paper
    assert all(r.where.startswith(("[@mae, 表", "摘要；[@mae, 表")) for r in papers["mae"].headline_results)
    kan = papers["kan"]
    assert "[@kan, §6]" in kan.limitations and "摘要" not in kan.limitations  # not in the abstract


def test_a_schema_error_ends_with_the_line_of_its_field_or_of_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    path = _write_paper(tmp_path, status="done")
    lines = path.read_text(encoding="utf-8").splitlines()
    status_line = next(n for n, line in enumerate(lines, 1) if line.startswith("status:"))
    with pytest.raises(SchemaError) as info:
        load_papers(path.parent)
    assert str(info.value).endswith(f"(line {status_line})") and info.value.line == status_line
    results = [{"task": "t", "model": "m", "metric": "x", "value": 1, "where": "w"}, {"task": "t"}]
    path = _write_paper(tmp_path, headline_results=results)
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("headline_results:")
    second = [n for n, line in enumerate(lines, 1) if n > start and line.startswith("- ")][1]
    with pytest.raises(SchemaError, match="expected a mapping with exactly") as info:
        load_papers(path.parent)
    assert info.value.field == "headline_results[1]" and info.value.line == second
