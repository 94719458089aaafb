"""`notes new / check / papers / add-paper / status`: files are created valid, never overwrite, and refuse bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from paper_notes.journal import load_entries, parse_entry
from paper_notes.checks import check_project
from paper_notes.registry import load_papers

from conftest import ROOT
from conftest import run_notes as notes

pytestmark = pytest.mark.subprocess  # every test runs the command


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal project: mkdocs.yml, papers/, glossary.yaml and an empty diary."""
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n", encoding="utf-8")
    (tmp_path / "papers").mkdir()
    for pid in ("mae", "hiera", "vit"):
        data = yaml.safe_load((ROOT / "papers" / f"{pid}.yaml").read_text(encoding="utf-8"))
        data["related"] = [r for r in data["related"] if r in ("mae", "hiera", "vit")]
        (tmp_path / "papers" / f"{pid}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (tmp_path / "glossary.yaml").write_text("[]\n", encoding="utf-8")
    (tmp_path / "docs/journal/posts").mkdir(parents=True)
    return tmp_path


def posts(project: Path) -> list[Path]:
    return sorted((project / "docs/journal/posts").iterdir())


def test_new_entry_has_valid_front_matter_and_prints_its_path(project: Path) -> None:
    result = notes("new", "MAE 的解码器", "--paper", "mae", "--paper", "vit", "--tag", "掩码",
                   "--date", "2024-10-28", cwd=project)
    assert result.returncode == 0, result.stderr
    path = project / result.stdout.strip()
    assert path.name.startswith("2024-10-28-") and path.suffix == ".md"
    entry = parse_entry(path, load_papers(project / "papers"))
    assert (entry.title, entry.date, entry.papers, entry.tags) == (
        "MAE 的解码器", dt.date(2024, 10, 28), ("mae", "vit"), ("掩码",))
    assert "../../reading-list/mae.md" in path.read_text(encoding="utf-8")
    assert check_project(project) == []


def test_date_defaults_to_today(project: Path) -> None:
    result = notes("new", "Hiera unroll", "--paper", "hiera", cwd=project)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).name == f"{dt.date.today().isoformat()}-hiera-unroll.md"


def test_two_entries_on_one_day_get_distinct_files(project: Path) -> None:
    first = notes("new", "读 MAE", "--paper", "mae", "--date", "2024-10-28", cwd=project)
    second = notes("new", "再读 MAE", "--paper", "mae", "--date", "2024-10-28", cwd=project)
    assert first.returncode == second.returncode == 0
    assert first.stdout != second.stdout
    assert [p.name for p in posts(project)] == ["2024-10-28-mae-2.md", "2024-10-28-mae.md"]
    assert len(load_entries(project / "docs/journal/posts", ["mae"])) == 2


def test_an_existing_file_is_never_overwritten(project: Path) -> None:
    target = project / "docs/journal/posts/2024-10-28-decoder.md"
    original = b"my own words \xe6\x8e\xa9\xe7\xa0\x81\n"
    target.write_bytes(original)
    result = notes("new", "另一个标题", "--paper", "mae", "--date", "2024-10-28", "--slug", "decoder", cwd=project)
    assert result.returncode == 2
    assert f"{target} already exists" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert target.read_bytes() == original
    assert posts(project) == [target]  # no temporary file left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["", "--paper", "mae"], "title is empty"),
        (["   ", "--paper", "mae"], "title is empty"),
        (["标题", "--paper", "bert"], "--paper 'bert' is not a known paper id"),
        (["标题"], "no --paper given"),
        (["标题", "--paper", "mae", "--date", "2024-02-30"], "--date '2024-02-30' is not a real calendar date"),
        (["标题", "--paper", "mae", "--date", "28/10/2024"], "--date '28/10/2024' is not a date"),
        (["标题", "--paper", "mae", "--slug", "MAE 解码"], "--slug 'MAE 解码' is not an ASCII slug"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_2_and_no_file(project: Path, args: list[str], message: str) -> None:
    result = notes("new", *args, cwd=project)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert posts(project) == []


def test_check_passes_on_the_repository() -> None:
    result = notes("check", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "10 papers" in result.stdout


def test_check_names_file_and_field_of_an_entry_with_an_unknown_paper(project: Path) -> None:
    path = project / "docs/journal/posts/2024-10-28-x.md"
    path.write_text("---\ntitle: x\ndate:\n  created: 2024-10-28\ncategories:\n  - bert\n---\n\nx\n\n<!-- more -->\n",
                    encoding="utf-8")
    result = notes("check", cwd=project)
    assert result.returncode == 1
    assert f"{path}: field 'categories': names unknown paper id 'bert'" in result.stderr


def test_check_reports_every_bad_entry(project: Path) -> None:
    posts_dir = project / "docs/journal/posts"
    (posts_dir / "2024-10-28-a.md").write_text("no front matter\n", encoding="utf-8")
    (posts_dir / "2024-10-29-b.md").write_text("---\ntitle: b\ndate:\n  created: 2024-10-30\ncategories: [mae]\n---\n<!-- more -->\n",
                                              encoding="utf-8")
    problems = check_project(project)
    assert len(problems) == 2
    assert "has no YAML front matter" in problems[0]
    assert "field 'date': created 2024-10-30 does not match the file name's date 2024-10-29" in problems[1]


def test_papers_lists_the_reading_list_with_status() -> None:
    result = notes("papers", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 10
    assert any(line.startswith("mae ") and "read (已读)" in line for line in lines)
    only_reading = notes("papers", "--status", "reading", cwd=ROOT).stdout
    assert "hiera" in only_reading and "mae " not in only_reading


def test_commands_find_the_project_from_a_subdirectory(project: Path) -> None:
    result = notes("new", "x", "--paper", "mae", "--date", "2024-10-28", cwd=project / "docs/journal")
    assert result.returncode == 0, result.stderr
    assert (project / "docs/journal" / result.stdout.strip()).is_file()


def test_edit_opens_the_new_entry_in_the_editor(project: Path) -> None:
    import os

    env = {**os.environ, "EDITOR": "sh -c 'echo edited-by-editor >> \"$0\"'"}
    env.pop("VISUAL", None)
    result = notes("new", "x", "--paper", "mae", "--date", "2024-10-28", "--edit", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert (project / result.stdout.strip()).read_text(encoding="utf-8").endswith("edited-by-editor\n")


def papers_files(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "papers").iterdir())  # temporary files included


def test_add_paper_writes_every_field_and_the_site_accepts_it(project: Path) -> None:
    result = notes("add-paper", "sam2", "--title", "SAM 2: Segment Anything in Images and Videos",
                   "--author", "Nikhila Ravi", "--author", "Valentin Gabeur", "--venue", "ICLR", "--year", "2025",
                   "--arxiv", "2408.00714", "--code", "https://github.com/facebookresearch/sam2",
                   "--related", "hiera", "--status", "reading", "--short-title", "SAM 2", "--tag", "分割",
                   "--tag", "SAM 2", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "papers/sam2.yaml"
    path = project / "papers/sam2.yaml"
    paper = load_papers(project / "papers")["sam2"]
    assert (paper.title, paper.authors, paper.venue, paper.year, paper.arxiv, paper.code, paper.related, paper.status,
            paper.added) == ("SAM 2: Segment Anything in Images and Videos", ("Nikhila Ravi", "Valentin Gabeur"),
                             "ICLR", 2025, "2408.00714", "https://github.com/facebookresearch/sam2", ("hiera",),
                             "reading", dt.date.today())
    assert (paper.short_title, paper.tags, paper.display_title) == ("SAM 2", ("分割", "SAM 2"), "SAM 2")
    # Every schema field is in the file, so the reader sees what is left to fill in.
    assert set(yaml.safe_load(path.read_text(encoding="utf-8"))) == set(yaml.safe_load(
        (ROOT / "papers/kan.yaml").read_text(encoding="utf-8"))) - {"headline_results", "outline"}
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600
    assert check_project(project) == []


def current_umask() -> int:
    import os

    umask = os.umask(0)
    os.umask(umask)
    return umask


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Id"], "paper id 'Bad_Id' is not valid"),
        (["x", "--year", "20"], "field 'year': got 20; expected a four-digit year"),
        (["x", "--title", " "], "field 'title'"),
        (["x", "--arxiv", "foo"], "field 'arxiv': got 'foo'; expected an arXiv id"),
        (["x", "--code", "github.com/x"], "field 'code': got 'github.com/x'; expected an http(s) URL"),
        (["x", "--related", "bert"], "--related 'bert' is not a known paper id"),
        (["mae"], "mae.yaml already exists; nothing was written"),
    ],
)
def test_add_paper_refuses_bad_input_and_existing_ids_and_writes_nothing(
    project: Path, args: list[str], message: str
) -> None:
    before = {p.name: p.read_bytes() for p in (project / "papers").iterdir()}
    defaults = {"--title": "T", "--author": "A. Author", "--venue": "CVPR", "--year": "2024"}
    for flag, value in defaults.items():
        if flag not in args:
            args = [*args, flag, value]
    result = notes("add-paper", *args, cwd=project)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (project / "papers").iterdir()} == before  # no file, no temporary


def test_status_shows_and_sets_one_line_and_keeps_the_rest_of_the_file(project: Path) -> None:
    path = project / "papers/hiera.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# my own comment, kept\n", encoding="utf-8")
    path.chmod(0o640)
    before = path.read_text(encoding="utf-8").splitlines()
    assert notes("status", "hiera", cwd=project).stdout.strip() == "hiera: reading (在读)"
    result = notes("status", "hiera", "read", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hiera: reading (在读) -> read (已读)"
    after = path.read_text(encoding="utf-8").splitlines()
    assert [(a, b) for a, b in zip(before, after) if a != b] == [("status: reading", "status: read")]
    assert len(after) == len(before) and path.stat().st_mode & 0o777 == 0o640
    assert load_papers(project / "papers")["hiera"].status == "read"
    assert papers_files(project) == ["hiera.yaml", "mae.yaml", "vit.yaml"]  # no temporary file left


@pytest.mark.parametrize(("args", "message"), [
    (["bert", "read"], "'bert' is not a known paper id"),
    (["mae", "done"], "invalid choice: 'done'"),
])
def test_status_refuses_unknown_papers_and_statuses(project: Path, args: list[str], message: str) -> None:
    before = (project / "papers/mae.yaml").read_bytes()
    result = notes("status", *args, cwd=project)
    assert result.returncode == 2 and message in result.stderr
    assert (project / "papers/mae.yaml").read_bytes() == before
