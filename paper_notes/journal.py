"""The study diary: dated Markdown entries under ``docs/journal/posts/`` (Material's blog plugin).

An entry is a Markdown file whose YAML front matter names its date, the papers it discusses
(``categories``, paper ids from ``papers/``) and its tags. File names are ASCII,
``YYYY-MM-DD-<slug>.md``; the blog plugin builds each post's URL from the file name, so URLs are
stable and unique even though titles are Chinese.

[`new_entry`][paper_notes.journal.new_entry] is what ``notes new`` runs; [`load_entries`][paper_notes.journal.load_entries] is what the site build and
``notes check`` run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .files import write_new_file
from .registry import READING_LIST
from .schema import BOOLEAN, INTEGER, Anything, Date, Field, ListOf, Record, Schema, Text, Where
from .text import markdown_text, one_line_problem
from .yamlio import SchemaError, load_yaml, read_text

POSTS_DIR = Path("docs/journal/posts")
"""Where entries live, relative to the project root."""

FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EXCERPT_SEPARATOR = "<!-- more -->"
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
"""Characters XML 1.0 cannot hold, even escaped: an entry's excerpt and title go into ``journal/feed.xml``."""

FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?\n)---[ \t]*(?:\r?\n|\Z)", re.S)
"""YAML front matter between two ``---`` lines at the top of a page (group 1): diary entries, and pages scanned for mentions.

A byte-order mark before the first ``---`` is allowed: MkDocs reads pages as ``utf-8-sig``, so
the site sees the front matter, and an editor that adds a BOM should not make it "missing"."""


@dataclass(frozen=True)
class Entry:
    """One diary entry: where it is and what its front matter says."""

    path: Path
    title: str
    date: dt.date
    papers: tuple[str, ...]
    tags: tuple[str, ...]
    body: str

    @property
    def slug(self) -> str:
        return self.path.stem


def parse_date(value: str, argument: str = "date") -> dt.date:
    """Parse a strict ``YYYY-MM-DD`` date.

    Full-width digits and hyphens (``２０２４－１０－２６``, as a Chinese input method types them)
    are read as their ASCII forms (Unicode NFKC); digits of other scripts are refused.

    Raises:
        ValueError: naming ``argument`` and the value when it is not a real calendar date.
    """
    ascii_form = unicodedata.normalize("NFKC", value or "")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", ascii_form):
        raise ValueError(f"{argument} {value!r} is not a date; expected YYYY-MM-DD in the digits 0-9, e.g. 2024-10-26")
    try:
        return dt.date.fromisoformat(ascii_form)
    except ValueError:
        raise ValueError(f"{argument} {value!r} is not a real calendar date; expected YYYY-MM-DD") from None


def split_front_matter(text: str, path: Path, lines: dict[str, int] | None = None) -> tuple[Any, str]:
    """Return ``(front matter as YAML values, body)``; a file without front matter is an error.

    ``lines``: filled with the line of each key, as [`load_yaml`][paper_notes.yamlio.load_yaml] does.
    """
    match = FRONT_MATTER.match(text)
    if not match:
        raise SchemaError(path, None, "has no YAML front matter (a block between '---' lines at the top)")
    return load_yaml(match.group(1), path, line_offset=1, lines=lines), text[match.end():]


# --- the declaration -------------------------------------------------------------------------


def _dates(values: dict[str, Any], path: Where, where: str) -> tuple[dt.date, dt.date | None]:
    created, updated = values["created"], values["updated"]
    if updated is not None and updated < created:
        raise SchemaError(path, f"{where}.updated", f"got {updated!r}; expected a date YYYY-MM-DD on or after "
                                                    f"created ({created})")
    return created, updated


DATES = Schema("when an entry was written", (
    Field("created", Date(), "the day it was written; the file name starts with it", required=True),
    Field("updated", Date(), "the day it was last changed, if it was"),
), key="date key")

ENTRY = Schema("a diary entry's front matter", (
    Field("title", Text(), "the entry's title", required=True),
    Field("date", Record(DATES, _dates, shorthand="created"), "`{created: YYYY-MM-DD}`, optionally with "
                                                               "`updated`; a bare date is the created date",
          required=True),
    Field("categories", ListOf(Text(), "paper ids", unique="a paper"), "ids of the papers it discusses, from "
                                                                        "`papers/`", required=True),
    Field("tags", ListOf(Text(), "tags", unique="a tag"), "topics"),
    Field("draft", BOOLEAN, "true: left out of the built site", null=True),
    Field("description", Text(one_line=False), "the page's description for search engines", null=True),
    Field("pin", BOOLEAN, "true: shown first in the diary", null=True),
    Field("readtime", INTEGER, "minutes to read, instead of the blog's estimate", null=True),
    Field("links", Anything(), "related pages, as the blog plugin reads them (it checks them)"),
), key="front-matter key")
"""The front matter of ``docs/journal/posts/YYYY-MM-DD-<slug>.md``, as Material's blog plugin reads it."""


def parse_entry(path: Path, known_papers: Iterable[str]) -> Entry:
    """Read and validate one entry.

    Raises:
        SchemaError: naming the file and field, for anything [`ENTRY`][paper_notes.journal.ENTRY]
            refuses, a file name that is not ``YYYY-MM-DD-<slug>.md`` or whose date is not the
            created date, a paper id in ``categories`` that is not known, a control character XML
            cannot hold, or a missing ``<!-- more -->`` excerpt marker.
    """
    text = read_text(path)
    control = _NOT_XML.search(text)
    if control:  # the excerpt goes into journal/feed.xml, and XML 1.0 cannot hold one
        raise SchemaError(path, None, f"has the control character U+{ord(control.group()):04X} on line "
                                      f"{text.count(chr(10), 0, control.start()) + 1}; expected printable text")
    lines: dict[str, int] = {}
    meta, body = split_front_matter(text, path, lines)
    try:
        return _entry(path, ENTRY.parse(meta, path), set(known_papers), body)
    except SchemaError as error:
        raise error.at_line(lines) from None


def _entry(path: Path, values: dict[str, Any], known: set[str], body: str) -> Entry:
    """The rules between an entry's fields, its file name and the papers."""
    created = values["date"][0]
    match = FILE_NAME.match(path.name)
    if not match:
        raise SchemaError(path, None, "file name must be 'YYYY-MM-DD-<ascii-slug>.md' (lowercase a-z, 0-9, '-')")
    if match.group(1) != created.isoformat():
        raise SchemaError(path, "date", f"created {created} does not match the file name's date {match.group(1)}")
    for pid in values["categories"]:
        if pid not in known:
            raise SchemaError(path, "categories", f"names unknown paper id {pid!r}; known ids: {', '.join(sorted(known))}")
    if EXCERPT_SEPARATOR not in body:
        raise SchemaError(path, None, f"has no excerpt marker {EXCERPT_SEPARATOR!r} after its first paragraph")
    return Entry(path=path, title=values["title"], date=created, papers=values["categories"], tags=values["tags"],
                 body=body)


def load_entries(posts_dir: Path | str, known_papers: Iterable[str]) -> list[Entry]:
    """Load and validate every ``*.md`` entry in ``posts_dir``, newest first."""
    known = list(known_papers)
    entries = [parse_entry(p, known) for p in sorted(Path(posts_dir).glob("*.md"))]
    return sorted(entries, key=lambda e: (e.date, e.path.name), reverse=True)


def slugify(text: str) -> str:
    """ASCII slug of ``text``: its ASCII words, lowercased, joined by ``-`` (may be empty)."""
    words = re.findall(r"[A-Za-z0-9]+", text)
    return "-".join(w.lower() for w in words)[:60].strip("-")


def render_entry(title: str, date: dt.date, papers: list[str], tags: list[str], paper_titles: dict[str, str]) -> str:
    """The text of a new entry: front matter plus a skeleton to fill in."""
    lines = ["---", f"title: {json.dumps(title, ensure_ascii=False)}", "date:", f"  created: {date.isoformat()}"]
    lines.append("categories:")
    lines += [f"  - {p}" for p in papers]
    if tags:
        lines.append("tags:")
        lines += [f"  - {json.dumps(t, ensure_ascii=False)}" for t in tags]
    lines += ["---", "", f"# {markdown_text(title)}", "", "（一两句话：今天读了什么、最重要的收获。这一段是日记列表里的摘要。）", "",
              EXCERPT_SEPARATOR, "", "## 读了什么", "", "## 哪里不懂", "", "## 弄懂了什么", "", "## 相关论文", ""]
    lines += [f"- [{markdown_text(paper_titles.get(p, p))}](../../{READING_LIST}/{p}.md)" for p in papers]  # from journal/posts/
    return "\n".join(lines) + "\n"


def new_entry(
    posts_dir: Path,
    title: str,
    papers: list[str],
    known_papers: dict[str, str],
    tags: list[str] | None = None,
    date: dt.date | None = None,
    slug: str | None = None,
) -> Path:
    """Create a diary entry and return its path (what ``notes new`` does).

    Args:
        posts_dir: the blog's posts directory.
        title: the entry's title (any language); must not be empty.
        papers: ids of the papers the entry discusses (at least one, each known).
        known_papers: titles by paper id, from ``papers/``.
        tags: optional tags.
        date: the entry's date; today when ``None``.
        slug: ASCII slug for the file name; derived from the title's ASCII words when ``None``.

    Returns:
        The new file's path, ``posts_dir / f"{date}-{slug}.md"``. With a derived slug, a second
        entry on the same day gets ``-2``, ``-3``, ... appended; an explicit slug that is taken
        is an error.

    Raises:
        ValueError: for an empty title, no or unknown paper ids, an empty tag, or a bad slug.
        FileExistsError: if an explicitly named file exists; it is left unchanged.
    """
    title = title.strip()
    if not title:
        raise ValueError("title is empty; expected a non-empty title, e.g. notes new \"MAE 的解码器\" --paper mae")
    problem = one_line_problem(title)
    if problem is not None:
        raise ValueError(f"title {title!r} {problem}")
    if not papers:
        raise ValueError("no --paper given; expected at least one paper id from papers/ (see `notes papers`)")
    for pid in papers:
        if pid not in known_papers:
            raise ValueError(f"--paper {pid!r} is not a known paper id; expected one of: {', '.join(sorted(known_papers))}")
    tags = _checked_tags(tags or [])
    date = date or dt.date.today()
    papers = list(dict.fromkeys(papers))  # keep order, drop repeats
    text = render_entry(title, date, papers, tags, known_papers)
    if slug is not None:
        if not SLUG.match(slug):
            raise ValueError(f"--slug {slug!r} is not an ASCII slug; expected lowercase a-z, 0-9 and '-', e.g. mae-decoder")
        path = posts_dir / f"{date.isoformat()}-{slug}.md"
        write_new_file(path, text)
        return path
    return _write_numbered(posts_dir, f"{date.isoformat()}-{slugify(title) or '-'.join(papers)}", text)


def _checked_tags(tags: list[str]) -> list[str]:
    """``--tag`` values stripped, each one line of visible text, repeats dropped (order kept)."""
    tags = [t.strip() for t in tags]
    if any(not t for t in tags):
        raise ValueError("--tag is empty; expected a non-empty tag")
    for tag in tags:
        problem = one_line_problem(tag)
        if problem is not None:
            raise ValueError(f"--tag {tag!r} {problem}")
    return list(dict.fromkeys(tags))


def _write_numbered(posts_dir: Path, stem: str, text: str) -> Path:
    """Write ``text`` to ``<stem>.md``, else ``<stem>-2.md``, ``-3`` ...: the first name not taken."""
    for n in range(1, 1000):
        path = posts_dir / f"{stem}{'' if n == 1 else f'-{n}'}.md"
        try:
            write_new_file(path, text)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{posts_dir}: 999 entries named {stem}*.md already exist")
