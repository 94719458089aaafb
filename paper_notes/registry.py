"""The reading list: one YAML file per paper under ``papers/``, validated against its declaration
[`PAPER`][paper_notes.registry.PAPER].

``papers/`` is the single source for citations, reading status and the links between papers,
diary entries and concept pages. Every consumer (the site build, ``notes check``, the BibTeX
export) goes through [`load_papers`][paper_notes.registry.load_papers], so a file the schema rejects fails everywhere with the
same message: the file, the field, the value, what was expected and the field's line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outline import OUTLINE_RECORD, Outline
from .schema import INTEGER, Choice, Date, Field, ListOf, Record, Schema, Text, matches
from .yamlio import SchemaError, load_yaml, read_text

READING_LIST = "reading-list"
"""The reading list's folder on the site (``reading-list/<id>.md`` per paper)."""

STATUSES = ("to-read", "reading", "read")
"""Reading status, in the order a paper moves through them."""

STATUS_LABELS = {"to-read": "待读", "reading": "在读", "read": "已读"}

PAPER_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""Paper ids are lowercase ASCII words joined by ``-``: they become URLs and BibTeX keys."""

FREE_TEXT_FIELDS = ("problem", "key_idea", "results", "limitations", "group_direction")
"""The reading spreadsheet's free-text columns; empty until written, never invented."""


@dataclass(frozen=True)
class Result:
    """One headline number from a paper, with where in the paper it is reported."""

    task: str
    model: str
    metric: str
    value: str
    where: str


@dataclass(frozen=True)
class Paper:
    """One paper of the reading list, as stored in ``papers/<id>.yaml``."""

    id: str
    title: str
    authors: tuple[str, ...]
    affiliations: tuple[str, ...]
    venue: str
    year: int
    published: dt.date | None
    arxiv: str | None
    doi: str | None
    url: str | None
    code: str | None
    status: str
    added: dt.date
    related: tuple[str, ...]
    unconfirmed: tuple[str, ...]
    short_title: str = ""
    """A few words for the reading list (``MAE``); empty: the title up to its colon, if that is short."""
    tags: tuple[str, ...] = ()
    """Topics to filter the reading list by (``ViT``, ``分割`` ...)."""
    problem: str = ""
    key_idea: str = ""
    results: str = ""
    limitations: str = ""
    group_direction: str = ""
    headline_results: tuple[Result, ...] = ()
    outline: Outline | None = None
    path: Path = field(default=Path(), compare=False)

    @property
    def short_citation(self) -> str:
        """``He et al., 2022`` style label used for in-text citations."""
        first = self.authors[0].split()[-1] if self.authors else self.id
        if len(self.authors) == 1:
            return f"{first}, {self.year}"
        if len(self.authors) == 2:
            second = self.authors[1].split()[-1]
            return f"{first} & {second}, {self.year}"
        return f"{first} et al., {self.year}"

    @property
    def display_title(self) -> str:
        """``short_title``, else the part of the title before its colon when that is at most 30
        characters (``Hiera``, ``KAN``), else the whole title."""
        if self.short_title:
            return self.short_title
        head, colon, _ = self.title.partition(":")
        return head.strip() if colon and len(head.strip()) <= 30 else self.title

    @property
    def venue_year(self) -> str:
        return f"{self.venue} {self.year}"

    @property
    def link(self) -> str | None:
        """Best landing page: DOI, then the stored URL, then the arXiv abstract page."""
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.url:
            return self.url
        if self.arxiv:
            return f"https://arxiv.org/abs/{self.arxiv}"
        return None


# --- the declaration -------------------------------------------------------------------------

_ONE_LINE = Text()
_ANY_TEXT = Text(one_line=False)
_IS_URL = matches(r"^https?://", "an http(s) URL")
_ARXIV_ID = r"^\d{4}\.\d{4,5}$"
_DOI = r"^10\.\d{4,9}/[^\s]+$"
"""A DOI as Crossref prints it: the ``10.`` prefix, a registrant code, ``/``, a suffix without spaces."""

RESULT = Schema("one headline number", tuple(
    Field(name, Text(one_line=False, numbers=True), doc, required=True) for name, doc in (
        ("task", "the task and its data set"),
        ("model", "the model it was measured on, e.g. `ViT-B/16`"),
        ("metric", "what is measured, with its unit, e.g. `top-1 (%)`"),
        ("value", "the number as the paper prints it"),
        ("where", "where the paper reports it: a reference to its table or section, checked like any other"),
    )), exact=True)


def _confirmable(names: tuple[str, ...]) -> str | None:
    for name in names:
        if name not in PAPER.names or name in ("id", "unconfirmed"):
            return f"lists {name!r}, which is not a paper field; expected names of fields such as title, outline"
    return None


PAPER = Schema("a paper of the reading list", (
    Field("id", _ONE_LINE, "the file name's stem: lowercase ASCII words joined by `-` (it becomes a URL and a BibTeX key)",
          required=True, rule=matches(PAPER_ID.pattern, "lowercase ASCII words joined by '-'")),
    Field("title", _ONE_LINE, "the title as printed", required=True),
    Field("short_title", _ONE_LINE, "a few words for the reading list, e.g. `MAE`; empty: the title up to its colon, if short"),
    Field("authors", ListOf(_ONE_LINE, "authors"), "the authors, in the paper's order", required=True),
    Field("affiliations", ListOf(_ONE_LINE, "affiliations"), "the authors' institutions"),
    Field("venue", _ONE_LINE, "where it appeared: `CVPR`, `ICLR`, `TPAMI`, `arXiv` ...", required=True),
    Field("year", INTEGER, "the year of that venue", required=True,
          rule=lambda year: None if 1900 <= year <= 2100 else f"got {year!r}; expected a four-digit year"),
    Field("published", Date(quoted=True), "the day it was published, where known", null=True),
    Field("arxiv", _ONE_LINE, "the arXiv id, e.g. `2111.06377`", null=True,
          rule=matches(_ARXIV_ID, "an arXiv id like '2111.06377'")),
    Field("doi", _ONE_LINE, "the DOI, without `https://doi.org/`", null=True,
          rule=matches(_DOI, "a DOI like '10.1109/CVPR52688.2022.01553' (no https://doi.org/ prefix)")),
    Field("url", _ONE_LINE, "the landing page", null=True, rule=_IS_URL),
    Field("code", _ONE_LINE, "the official code", null=True, rule=_IS_URL),
    Field("status", Choice(STATUSES), "how far we have read it", required=True),
    Field("tags", ListOf(_ONE_LINE, "tags"), "topics to filter the reading list by"),
    Field("added", Date(quoted=True), "the day it joined the reading list", required=True),
    Field("related", ListOf(_ONE_LINE, "paper ids"), "ids of related papers in `papers/`"),
    Field("unconfirmed", ListOf(_ONE_LINE, "field names"), "fields not yet checked against the paper",
          rule=_confirmable),
    *(Field(name, _ANY_TEXT, doc) for name, doc in zip(FREE_TEXT_FIELDS, (
        "the problem it solves, in our words", "its key idea", "its results, with references",
        "its limitations", "what it means for our group's direction"))),
    Field("headline_results", ListOf(Record(RESULT, lambda values, *_: Result(**values)), "results"),
          "the numbers worth remembering, each with where the paper reports it"),
    Field("outline", OUTLINE_RECORD, "the paper's sections, figures and tables, numbered as printed (its own table)", null=True),
))
"""``papers/<id>.yaml``."""


def parse_paper(data: Any, path: Path) -> Paper:
    """Validate one paper's YAML mapping and return it as a [`Paper`][paper_notes.registry.Paper].

    Raises:
        SchemaError: naming ``path`` and the field, for anything [`PAPER`][paper_notes.registry.PAPER]
            refuses, or an id that does not match the file name.
    """
    values = PAPER.parse(data, path)
    if values["id"] != path.stem:
        raise SchemaError(path, "id", f"got {values['id']!r}; expected the file name stem {path.stem!r}")
    return Paper(**values, path=path)


def read_paper(path: Path) -> Paper:
    """Read and validate one ``papers/<id>.yaml``.

    Raises:
        SchemaError: naming the file (and the field) for anything the schema rejects, a file
            that is not UTF-8 or cannot be read, invalid YAML, a repeated key, an impossible date
            or a non-finite number.
    """
    lines: dict[str, int] = {}
    data = load_yaml(read_text(path), path, lines=lines)
    try:
        return parse_paper(data, path)
    except SchemaError as error:
        raise error.at_line(lines) from None


def load_papers(papers_dir: Path | str, problems: list[str] | None = None) -> dict[str, Paper]:
    """Load and validate every ``*.yaml`` / ``*.yml`` file in ``papers_dir``.

    Args:
        papers_dir: the reading list's folder.
        problems: if given, each invalid file's message is appended to it and the valid papers
            are returned (what ``notes check`` reports); otherwise the first one is raised.

    Returns:
        Papers by id, ordered by (date added, id).

    Raises:
        SchemaError: for the first invalid file, two files with one id (``x.yaml`` and ``x.yml``),
            or a ``related`` id that names no paper (unless ``problems`` collects them).
        FileNotFoundError: if ``papers_dir`` does not exist.
    """
    papers_dir = Path(papers_dir)
    if not papers_dir.is_dir():
        raise FileNotFoundError(f"papers directory {papers_dir} does not exist")

    def problem(error: SchemaError) -> None:
        if problems is None:
            raise error
        problems.append(str(error))

    papers: dict[str, Paper] = {}
    unreadable: set[str] = set()  # ids whose file is there but broken: reported once, not again by each link to it
    for path in sorted(papers_dir.glob("*.y*ml")):
        if path.suffix not in (".yaml", ".yml"):
            continue
        try:
            paper = read_paper(path)
        except SchemaError as exc:
            problem(exc)
            unreadable.add(path.stem)
            continue
        if paper.id in papers:
            problem(SchemaError(path, "id", f"{paper.id!r} is also the id of {papers[paper.id].path.name}; "
                                            f"expected one file per paper"))
            continue
        papers[paper.id] = paper
    for paper in papers.values():
        for rid in paper.related:
            if rid not in papers and rid not in unreadable:
                problem(SchemaError(paper.path, "related", f"names unknown paper id {rid!r}; known: {', '.join(papers)}"))
    return dict(sorted(papers.items(), key=lambda kv: (kv[1].added, kv[0])))


CONFERENCES = frozenset({
    "AAAI", "ACL", "BMVC", "CVPR", "ECCV", "EMNLP", "ICCV", "ICLR", "ICML", "ICRA", "IJCAI", "IROS",
    "KDD", "NAACL", "NeurIPS", "WACV",
})
"""Venues whose papers are ``@inproceedings``; any other venue but arXiv is a journal (``@article``)."""


def _bibtex_escape(text: str) -> str:
    return text.replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")


def to_bibtex(paper: Paper) -> str:
    """One BibTeX entry keyed by the paper id."""
    if paper.venue.lower() == "arxiv":
        kind, venue_field = "misc", ("howpublished", "arXiv preprint")
    elif paper.venue in CONFERENCES:
        kind, venue_field = "inproceedings", ("booktitle", paper.venue)
    else:
        kind, venue_field = "article", ("journal", paper.venue)
    fields = [
        ("title", "{" + _bibtex_escape(paper.title) + "}"),
        ("author", " and ".join(paper.authors)),
        venue_field,
        ("year", str(paper.year)),
    ]
    if paper.arxiv:
        fields += [("eprint", paper.arxiv), ("archiveprefix", "arXiv")]
    if paper.doi:
        fields.append(("doi", paper.doi))
    if paper.url:
        fields.append(("url", paper.url))
    body = ",\n".join(f"  {key} = {{{value}}}" for key, value in fields)
    return f"@{kind}{{{paper.id},\n{body}\n}}\n"


def bibliography(papers: dict[str, Paper]) -> str:
    """The whole reading list as a BibTeX file."""
    header = "% Generated from papers/*.yaml by paper-notes; edit those files, not this one.\n\n"
    return header + "\n".join(to_bibtex(p) for p in papers.values())


# --- writing papers/<id>.yaml (``notes add-paper`` and ``notes status``) --------------------

_STATUS_LINE = re.compile(r"^(status:[ \t]*)([^#\s][^#\r\n]*?)?([ \t]*(?:#[^\r\n]*)?\r?)$", re.M)
"""The top-level ``status:`` line: the key, the value, and spaces plus a comment (and a CR), kept as they are."""


def _yaml(value: Any) -> str:
    """``value`` (text, a list of texts, a number, a date or ``None``) as YAML on one line."""
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_yaml(v) for v in value)}]"
    if value is None:
        return "null"
    if not isinstance(value, str):
        return str(value)  # an int; a date prints as YYYY-MM-DD
    text = json.dumps(value, ensure_ascii=False)  # a JSON string is valid YAML
    # JSON escapes only U+0000-U+001F; YAML refuses DEL and C1 characters written raw. Escaped, the
    # schema reads them and says what is wrong with the field, not that the new file is not YAML.
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def new_paper_text(path: Path, *, title: str, authors: list[str], venue: str, year: int,
                   arxiv: str | None = None, doi: str | None = None, url: str | None = None,
                   code: str | None = None, status: str = "to-read", added: dt.date | None = None,
                   related: list[str] | None = None, short_title: str = "", tags: list[str] | None = None) -> str:
    """The text of a new ``papers/<id>.yaml`` with every field of [`PAPER`][paper_notes.registry.PAPER]
    present (but the headline results and the outline), checked against it.

    The id is ``path``'s stem. Fields the command line does not set (affiliations, the publication
    date, the free-text columns) are left empty, to be filled in by hand; nothing is invented.

    Raises:
        SchemaError: naming ``path`` and the field, for any value the schema rejects.
    """
    given = {"id": path.stem, "title": title, "short_title": short_title, "authors": authors, "venue": venue,
             "year": year, "arxiv": arxiv, "doi": doi, "url": url, "code": code, "status": status,
             "added": added or dt.date.today(), "related": related or [], "tags": tags or []}
    text = "".join(f"{f.name}: {_yaml(given.get(f.name, f.kind.empty))}\n" for f in PAPER.fields
                   if f.name not in ("headline_results", "outline"))
    parse_paper(load_yaml(text, path), path)
    return text


def with_status(text: str, status: str, path: Path) -> str:
    """``text`` of ``papers/<id>.yaml`` with the ``status:`` line set to ``status``; nothing else changes.

    Raises:
        SchemaError: for a status not in [`STATUSES`][paper_notes.registry.STATUSES], or a file
            without exactly one top-level ``status:`` line.
    """
    if status not in STATUSES:
        raise SchemaError(path, "status", f"got {status!r}; expected one of {', '.join(STATUSES)}")
    found = _STATUS_LINE.findall(text)
    if len(found) != 1:
        raise SchemaError(path, "status", f"found {len(found)} top-level 'status:' lines; expected exactly one")
    new = _STATUS_LINE.sub(lambda m: f"{m.group(1).rstrip()} {status}{m.group(3)}", text)
    parse_paper(load_yaml(new, path), path)
    return new
