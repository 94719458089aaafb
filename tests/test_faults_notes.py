"""The fault suite for the notes tooling (issue 22): bad files, bad paths and bad environments meet
``notes`` and the site's generators as a user would bring them.

One test per class of fault, parametrised over the instances the issue named and more of our own:

- **YAML anchors and aliases** (an alias bomb, a value that contains itself) are refused in one
  line, naming the file and the line, before anything is built or walked: quickly.
- **A notebook cell that never ends** (or kills its kernel) fails in one line naming the notebook
  and the cell.
- **Nothing lost**: ``notes status`` writes through a symbolic link and keeps CRLF line ends and a
  byte-order mark; only the status line changes.
- **Text fields**: control characters and invisible titles are refused; ``<``, ``&`` and Markdown
  characters in a title are shown as written on every generated page and in the feed.
- **Paths and the environment**: one line and exit 2 for a root, folder or file that is missing or
  not what it should be; exit 3 with one line for an editor that cannot run or fails; full-width
  digits in ``--date`` read as ASCII; a BOM before front matter accepted; one broken paper file is
  one problem, not one per page that cites it.
"""

from __future__ import annotations

import codecs
import os
import re
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from paper_notes import cli
from paper_notes.checks import check_project
from paper_notes.project import load_project
from paper_notes.site import atom_feed, paper_page, reading_list_index, related_entries
from paper_notes.journal import FRONT_MATTER, render_entry

from conftest import ROOT
from faults import one_line, snapshot


def make_project(root: Path) -> Path:
    """A minimal project at ``root``: mkdocs.yml, papers mae and vit, an empty glossary and diary."""
    (root / "papers").mkdir(parents=True)
    (root / "mkdocs.yml").write_text("site_name: t\n", encoding="utf-8")
    (root / "glossary.yaml").write_text("[]\n", encoding="utf-8")
    (root / "docs/journal/posts").mkdir(parents=True)
    for pid in ("mae", "vit"):
        data = yaml.safe_load((ROOT / "papers" / f"{pid}.yaml").read_text(encoding="utf-8"))
        data["related"] = []
        (root / "papers" / f"{pid}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return root


def entry(title: str = "好的一天", created: str = "2024-10-26", front: str = "", body: str = "读了 MAE。") -> str:
    return (f"---\ntitle: {title}\ndate:\n  created: {created}\n{front}categories:\n  - mae\n---\n\n"
            f"{body}\n\n<!-- more -->\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_project(tmp_path / "p")
    (tmp_path / "p/docs/journal/posts/2024-10-26-good.md").write_text(entry(), encoding="utf-8")
    return tmp_path / "p"


def vit_text(project: Path) -> str:
    return (project / "papers/vit.yaml").read_text(encoding="utf-8")


# --- 1. YAML anchors and aliases: refused at once, by file and line ---------------------------------

_BOMB = "a0: &a0 [" + ", ".join(['"lol"'] * 10) + "]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9))

ALIASES = {
    "paper: an alias bomb (478 bytes, 10**9 values)": ("papers/x.yaml", lambda p: _BOMB, "'&a0' (line 1)"),
    "paper: a title that contains itself": ("papers/vit.yaml",
                                            lambda p: vit_text(p).replace("title:", "title: &t [*t]\nold_title:", 1),
                                            "'&t' (line"),
    "paper: an alias to a field": ("papers/vit.yaml", lambda p: vit_text(p) + "short_title: *v\n", "alias '*v'"),
    "entry: an anchor in front matter": ("docs/journal/posts/2024-10-27-x.md",
                                         lambda p: entry(created="2024-10-27", front="tags: &t [a]\n"), "'&t' (line 5)"),
    "glossary: an alias bomb": ("glossary.yaml", lambda p: _BOMB, "'&a0' (line 1)"),
}


@pytest.mark.parametrize("case", ALIASES)
def test_yaml_anchors_and_aliases_are_refused_in_one_line_at_once(project: Path, case: str) -> None:
    relative, make, where = ALIASES[case]
    (project / relative).write_text(make(project), encoding="utf-8")
    start = time.perf_counter()
    problems = check_project(project)
    assert time.perf_counter() - start < 1.0, "the check walked the aliases"
    [problem] = [p for p in problems if relative in p]
    assert problem.startswith(str(project / relative)) and where in problem and "\n" not in problem, problem
    assert re.search(r"uses the YAML (anchor|alias)", problem)


# --- 2. A notebook cell that never ends ----------------------------------------------------------------

_HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"

NOTEBOOKS = {
    "a cell that never ends": ("import time\nwhile True:\n    time.sleep(0.05)", r"cell 3 \(`import time`\) ran longer than 1 s"),
    "a cell that waits on a lock forever": ("import threading\nlock = threading.Lock()\nlock.acquire()\nlock.acquire()",
                                            r"cell 3 \(`import threading`\) ran longer than 1 s"),
    "a cell that kills its kernel": ("import os\nos._exit(1)", r"the kernel died while running cell 3 \(`import os`\)"),
    "a cell that raises": ("x = 1\nraise ValueError('bad\\nvalue')", r"cell 3 \(`x = 1`\) raised ValueError: bad value"),
}


@pytest.mark.subprocess
@pytest.mark.parametrize("case", NOTEBOOKS)
def test_a_notebook_cell_that_fails_or_never_ends_is_one_line_naming_the_notebook_and_the_cell(
    tmp_path: Path, case: str
) -> None:
    from paper_notes.notebooks import NotebookError, execute

    source, match = NOTEBOOKS[case]
    path = tmp_path / "nb.py"
    path.write_text(_HEADER + f"# %% [markdown]\n# 标题\n\n# %%\nx = 1\n\n# %%\n{source}\n", encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(NotebookError) as error:
        execute(path, tmp_path, timeout_s=1)
    assert time.perf_counter() - start < 60
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)) and re.search(match, message), message
    assert not list(tmp_path.rglob("*.ipynb")), "a failed run is not cached"


def test_the_cell_time_limit_is_a_writers_choice_not_ten_minutes() -> None:
    from paper_notes.notebooks import TIMEOUT_S

    assert 30 <= TIMEOUT_S <= 300


# --- 3. Nothing lost: write through links, keep line ends and the BOM ----------------------------------


def _status_line_changed(before: bytes, after: bytes) -> None:
    old, new = before.split(b"\n"), after.split(b"\n")
    assert len(old) == len(new)
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith((b"status:", codecs.BOM_UTF8 + b"status:")), changed


REWRITES = {
    "a symlink into another folder": dict(link=True),
    "CRLF line ends": dict(crlf=True),
    "a byte-order mark": dict(bom=True),
    "CRLF and a BOM, through a symlink": dict(link=True, crlf=True, bom=True),
    "a symlink to a symlink": dict(link=True, chain=True),
    "a comment after the status, CRLF": dict(crlf=True, comment=True),
}


@pytest.mark.parametrize("case", REWRITES)
def test_notes_status_changes_only_the_status_line_of_the_real_file(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    how = REWRITES[case]
    text = vit_text(project)
    text = re.sub(r"^status: .*$", "status: to-read" + ("  # after MAE" if how.get("comment") else ""), text, flags=re.M)
    data = (codecs.BOM_UTF8 if how.get("bom") else b"") + text.replace("\n", "\r\n" if how.get("crlf") else "\n").encode()
    target = project / "papers/vit.yaml"
    if how.get("link"):
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        target = elsewhere / "vit.yaml"
        (project / "papers/vit.yaml").unlink()
        if how.get("chain"):
            (elsewhere / "hop.yaml").symlink_to(target)
            (project / "papers/vit.yaml").symlink_to(elsewhere / "hop.yaml")
        else:
            (project / "papers/vit.yaml").symlink_to(target)
    target.write_bytes(data)
    assert cli.main(["--root", str(project), "status", "vit", "reading"]) == 0, capsys.readouterr().err
    if how.get("link"):
        assert (project / "papers/vit.yaml").is_symlink(), "the link was replaced by a copy"
        assert not list(target.parent.glob(".*.tmp")) and not list((project / "papers").glob(".*.tmp"))
    after = target.read_bytes()
    _status_line_changed(data, after)
    assert b"status: reading" in after
    assert after.startswith(codecs.BOM_UTF8) == bool(how.get("bom"))
    assert after.count(b"\r\n") == (after.count(b"\n") if how.get("crlf") else 0)
    assert cli.main(["--root", str(project), "status", "vit"]) == 0
    assert "vit: reading" in capsys.readouterr().out


# --- 4. Text fields -------------------------------------------------------------------------------------

BAD_TITLES = {
    "a control character": ("A\x01B", r"control character U\+0001"),
    "an escape sequence": ("\x1b[31mred", r"control character U\+001B"),
    "DEL": ("title\x7f", r"control character U\+007F"),
    "a C1 control": ("x\x9b1m", r"control character U\+009B"),
    "only a zero-width space": ("\u200b", "shows nothing"),
    "only a word joiner and a BOM": ("\u2060\ufeff", "shows nothing"),
    "only ideographic spaces": ("\u3000\u3000", "shows nothing|is empty|must not be empty|expected a non-empty string"),
    "only a Hangul filler": ("\u3164", "shows nothing"),
}


@pytest.mark.parametrize("case", BAD_TITLES)
@pytest.mark.parametrize("where", ["paper", "entry", "notes new", "add-paper", "glossary"])
def test_a_title_with_a_control_character_or_nothing_visible_is_refused_everywhere(
    project: Path, capsys: pytest.CaptureFixture[str], case: str, where: str
) -> None:
    title, reason = BAD_TITLES[case]
    quoted = yaml.safe_dump(title, allow_unicode=False, default_style='"').strip()  # escaped: YAML allows it so
    if where in ("notes new", "add-paper"):
        before = snapshot(project)
        args = (["new", title, "--paper", "mae"] if where == "notes new" else
                ["add-paper", "x", "--title", title, "--author", "A. Author", "--venue", "CVPR", "--year", "2024"])
        assert cli.main(["--root", str(project), *args]) == 2
        assert re.search(reason, one_line(capsys.readouterr().err))
        assert snapshot(project) == before
        return
    if where == "paper":
        path = project / "papers/vit.yaml"
        path.write_text(re.sub(r"^title: .*$", lambda m: f"title: {quoted}", vit_text(project), flags=re.M), encoding="utf-8")
    elif where == "entry":
        path = project / "docs/journal/posts/2024-10-27-x.md"
        path.write_text(entry(quoted, "2024-10-27"), encoding="utf-8")
    else:
        path = project / "glossary.yaml"
        path.write_text(f"- {{id: mask, term: {quoted}, en: mask, short: 被遮住的块, detail: 细节}}\n", encoding="utf-8")
    [problem] = check_project(project)
    assert problem.startswith(str(path)) and re.search(reason, problem) and "\n" not in problem, problem


def test_a_control_character_in_an_entrys_text_is_refused_with_its_line(project: Path) -> None:
    path = project / "docs/journal/posts/2024-10-27-x.md"
    path.write_text(entry(created="2024-10-27", body="第一段\x0c分页"), encoding="utf-8")
    [problem] = check_project(project)
    assert problem.startswith(str(path)) and "U+000C on line 9" in problem


SHOWN_AS_WRITTEN = ["A<B", "<b>粗</b> & 细", 'x "q" </title><script>alert(1)</script>', "C* | 2 # [x](y) _z_ {#id}"]


@pytest.mark.parametrize("title", SHOWN_AS_WRITTEN)
def test_a_title_with_html_or_markdown_characters_is_shown_as_written_on_every_generated_page(
    project: Path, title: str
) -> None:
    import markdown

    quoted = yaml.safe_dump(title, allow_unicode=True, default_style='"').strip()
    (project / "papers/vit.yaml").write_text(
        re.sub(r"^title: .*$", lambda m: f"title: {quoted}", vit_text(project), flags=re.M), encoding="utf-8")
    (project / "docs/journal/posts/2024-10-27-x.md").write_text(
        entry(quoted, "2024-10-27").replace("  - mae\n", "  - vit\n"), encoding="utf-8")
    assert check_project(project) == []
    proj = load_project(project)
    vit = proj.papers["vit"]
    pages = {
        "paper page": paper_page(proj, vit),
        "reading list": reading_list_index(proj),
        "related entries": related_entries(proj, ["vit"], "concepts/vit.md"),
        "a new entry": FRONT_MATTER.sub("", render_entry(title, vit.added, ["vit"], [], {"vit": title})),  # its body
    }
    for name, page in pages.items():
        rendered = markdown.Markdown(extensions=["tables", "attr_list"]).convert(page)
        parsed = _Html()
        parsed.feed(rendered)
        assert title in "".join(parsed.text), (name, rendered)
        assert not {"script", "b"} & parsed.tags, (name, rendered)
    feed = atom_feed([(title, "x/", vit.added, f"摘要 {title}", ["vit"])], "t", "feed.xml", "./")
    assert ET.fromstring(feed).find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title").text == title


class _Html(HTMLParser):
    """The text of an HTML fragment, as a browser shows it, and the tags it holds."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_templates_get_a_diary_title_escaped_once() -> None:
    from jinja2 import Environment

    from paper_notes.plugin import escape_meta_title

    class Page:
        meta = {"title": 'A<B & <b>x</b> "q"'}

    escape_meta_title(Page)
    escape_meta_title(Page)  # a rebuild: not escaped twice
    rendered = Environment().from_string('<title>{{ t }}</title><a aria-label="{{ t | e }}">{{ t }}</a>').render(
        t=Page.meta["title"])
    assert rendered.count("A&lt;B &amp; &lt;b&gt;x&lt;/b&gt; &quot;q&quot;") == 3, rendered


# --- 5. Paths and the environment: one line, the documented exit code -----------------------------------

COMMANDS = [["check"], ["papers"], ["status", "mae"], ["new", "标题", "--paper", "mae"],
            ["add-paper", "x", "--title", "T", "--author", "A", "--venue", "CVPR", "--year", "2024"]]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _loop(path: Path) -> Path:
    path.symlink_to(path)
    return path


BAD_ROOTS = {
    "a missing folder": (lambda t: t / "missing", "does not exist"),
    "a file": (lambda t: (t / "f").write_text("x") and t / "f", "is a file; expected a folder"),
    "a FIFO": (lambda t: _fifo(t / "fifo"), "is a FIFO"),
    "a loop of links": (lambda t: _loop(t / "loop"), "is a loop of symbolic links"),
    "/dev/null": (lambda t: Path("/dev/null"), "is a character device"),
    "a folder without mkdocs.yml": (lambda t: (t / "empty").mkdir() or t / "empty", "mkdocs.yml does not exist"),
    "a folder without papers/": (lambda t: (t / "e").mkdir() or (t / "e/mkdocs.yml").write_text("x") and t / "e",
                                 "papers does not exist"),
}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("case", BAD_ROOTS)
def test_a_bad_root_is_one_line_and_exit_2_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: list[str]
) -> None:
    make, words = BAD_ROOTS[case]
    root = make(tmp_path)
    assert cli.main(["--root", str(root), *command]) == 2
    assert words in one_line(capsys.readouterr().err)


PROJECT_PATHS = {
    "posts is a file": ("docs/journal/posts", lambda p: p.write_text("x"), 2, "is a file; expected a folder"),
    "papers is a file": ("papers", lambda p: p.write_text("x"), 2, "is a file; expected a folder"),
    "mkdocs.yml is a folder": ("mkdocs.yml", lambda p: p.mkdir(), 2, "is a folder; expected a file"),
    "a paper that is a FIFO": ("papers/x.yaml", _fifo, 1, "is a FIFO (named pipe), not a regular file"),
    "a paper that is a folder": ("papers/x.yaml", lambda p: p.mkdir(), 1, "is a folder; expected a file"),
    "a paper that is a link loop": ("papers/x.yaml", _loop, 1, "is a loop of symbolic links"),
    "a paper that is a dangling link": ("papers/x.yaml", lambda p: p.symlink_to(p.parent / "gone.yaml"), 1,
                                        "is a link to a missing target"),
    "an entry that is a FIFO": ("docs/journal/posts/2024-10-27-x.md", _fifo, 1, "is a FIFO"),
    "glossary.yaml is a folder": ("glossary.yaml", lambda p: p.mkdir(), 1, "is a folder; expected a file"),
    "a concept page that is a FIFO": ("docs/concepts/x.md", lambda p: p.parent.mkdir() or _fifo(p), 1, "is a FIFO"),
}


@pytest.mark.parametrize("case", PROJECT_PATHS)
def test_notes_check_says_what_a_path_is_in_one_line(project: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    relative, make, code, words = PROJECT_PATHS[case]
    path = project / relative
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    elif path.exists():
        path.unlink()
    make(path)
    assert cli.main(["--root", str(project), "check"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and len(err) == (1 if code == 2 else 2), err
    assert str(path) in err[0] and words in err[0], err


def test_one_broken_paper_file_is_one_problem_not_one_per_page_that_cites_it(project: Path) -> None:
    posts = project / "docs/journal/posts"
    (posts / "2024-10-27-vit.md").write_text(entry(created="2024-10-27", body="读了 [@vit, §3]。").replace(
        "  - mae\n", "  - vit\n"), encoding="utf-8")
    (project / "glossary.yaml").write_text("- {id: patch, term: 块, en: patch, short: 一块, detail: 细节, papers: [vit]}\n",
                                           encoding="utf-8")
    (project / "docs/concepts").mkdir()
    (project / "docs/concepts/vit.md").write_text("# ViT\n\n见 [@vit, §3.1] 与 [@vit]。\n", encoding="utf-8")
    data = yaml.safe_load((project / "papers/mae.yaml").read_text(encoding="utf-8"))
    data["related"] = ["vit"]
    (project / "papers/mae.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert check_project(project) == []
    (project / "papers/vit.yaml").write_text(re.sub(r"^added: .*$", "added: 2024-13-45", vit_text(project), flags=re.M),
                                             encoding="utf-8")
    skipped: list[str] = []
    [problem] = check_project(project, skipped=skipped)
    assert problem.startswith(str(project / "papers/vit.yaml")) and "field 'added'" in problem
    assert skipped == ["references, mentions and terms are checked once every paper file reads"]


@pytest.mark.subprocess
@pytest.mark.parametrize(("editor", "words"), [
    ("vim 'unclosed", "$EDITOR \"vim 'unclosed\" is not a valid command line"),
    ("   ", "$EDITOR '   ' names no command"),
    ("false", "the editor 'false' exited with status 1"),
    ("sh -c 'exit 7' --", "the editor 'sh' exited with status 7"),
    ("sh -c 'kill -9 $$'", "the editor 'sh' was stopped by signal 9"),
])
def test_an_editor_that_cannot_run_or_fails_is_exit_3_with_one_line_and_the_entry_kept(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, editor: str, words: str
) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", editor)
    assert cli.main(["--root", str(project), "new", "标题", "--paper", "mae", "--slug", "s", "--date", "2024-10-28",
                     "--edit"]) == cli.EDITOR_FAILED
    line = one_line(capsys.readouterr().err)
    assert words in line and "the entry was written" in line, line
    assert (project / "docs/journal/posts/2024-10-28-s.md").is_file()


@pytest.mark.parametrize(("date", "result"), [
    ("２０２４-１０-２６", "2024-10-26"),     # full-width digits, as a Chinese input method types them
    ("２０２４－１０－２６", "2024-10-26"),   # and a full-width hyphen
    ("٢٠٢٤-١٠-٢٦", None),                    # Arabic-Indic digits: refused, not guessed
    ("2024-10-26\u200b", None),
    ("２０２４-１３-０１", None),
])
def test_full_width_digits_in_date_are_read_as_ascii_and_other_digits_refused(
    project: Path, capsys: pytest.CaptureFixture[str], date: str, result: str | None
) -> None:
    code = cli.main(["--root", str(project), "new", "标题", "--paper", "mae", "--slug", "d", "--date", date])
    if result is None:
        assert code == 2 and "--date" in one_line(capsys.readouterr().err)
        assert not list((project / "docs/journal/posts").glob("*-d.md"))
    else:
        assert code == 0 and (project / f"docs/journal/posts/{result}-d.md").is_file()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_byte_order_mark_before_front_matter_is_accepted(project: Path, newline: str) -> None:
    path = project / "docs/journal/posts/2024-10-27-bom.md"
    path.write_bytes(codecs.BOM_UTF8 + entry(created="2024-10-27").replace("\n", newline).encode())
    assert check_project(project) == []
    assert any(e.path == path for e in load_project(project).entries)
