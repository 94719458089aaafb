"""The reading list: one YAML file per paper under ``papers/``, validated against a schema.

``papers/`` is the single source for citations, reading status and the links between papers,
diary entries and concept pages. Every consumer (the site build, ``notes check``, the BibTeX
export) goes through [`load_papers`][paper_notes.registry.load_papers], so a file the schema rejects fails everywhere with the
same message: the file, the field, the value and what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .yamlio import SchemaError, load_yaml, one_line_problem, read_text

from .outline import Outline, outline_field

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


RESULT_FIELDS = ("task", "model", "metric", "value", "where")


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


# name -> (accepted Python types, required non-empty)
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), True),
    "title": ((str,), True),
    "authors": ((list,), True),
    "affiliations": ((list,), False),
    "venue": ((str,), True),
    "year": ((int,), True),
    "published": ((dt.date, type(None)), False),
    "arxiv": ((str, type(None)), False),
    "doi": ((str, type(None)), False),
    "url": ((str, type(None)), False),
    "code": ((str, type(None)), False),
    "status": ((str,), True),
    "added": ((dt.date,), True),
    "short_title": ((str,), False),
    "tags": ((list,), False),
    "related": ((list,), False),
    "unconfirmed": ((list,), False),
    **{name: ((str,), False) for name in FREE_TEXT_FIELDS},
    "headline_results": ((list,), False),
    "outline": ((dict, type(None)), False),  # paper_notes.outline validates its inside
}

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "a mapping",
    dt.date: "a date (YYYY-MM-DD)",
    type(None): "null",
}

_ARXIV_ID = re.compile(r"^\d{4}\.\d{4,5}$")
_DOI = re.compile(r"^10\.\d{4,9}/[^\s]+$")
"""A DOI as Crossref prints it: the ``10.`` prefix, a registrant code, ``/``, a suffix without spaces."""



def _expect(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES[t] for t in types)


def _parse_result(path: Path, index: int, item: Any) -> Result:
    where = f"headline_results[{index}]"
    if not isinstance(item, dict) or set(item) != set(RESULT_FIELDS):
        raise SchemaError(path, where, f"got {item!r}; expected a mapping with exactly {', '.join(RESULT_FIELDS)}")
    for key in RESULT_FIELDS:
        if isinstance(item[key], bool) or not isinstance(item[key], (str, int, float)) or str(item[key]).strip() == "":
            raise SchemaError(path, f"{where}.{key}", f"got {item[key]!r}; expected a non-empty string or number")
    return Result(**{key: str(item[key]).strip() for key in RESULT_FIELDS})


def parse_paper(data: Any, path: Path) -> Paper:
    """Validate one paper's YAML mapping and return it as a [`Paper`][paper_notes.registry.Paper].

    Raises:
        SchemaError: naming ``path`` and the field, for a missing or unknown field, a value of the
            wrong type, an unknown ``status``, an id that does not match the file name, a
            malformed arXiv id or URL, or an ``unconfirmed`` entry that is not a field name.
    """
    if not isinstance(data, dict):
        raise SchemaError(path, None, f"expected a YAML mapping of fields, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise SchemaError(
            path, unknown[0], f"unknown field; expected only: {', '.join(_FIELDS)}"
        )
    values: dict[str, Any] = {}
    for name, (types, required) in _FIELDS.items():
        if name not in data:
            if required:
                raise SchemaError(path, name, "missing (required)")
            value = [] if list in types else ("" if str in types else None)
        else:
            value = data[name]
        if dt.date in types and isinstance(value, str):  # quoted "YYYY-MM-DD" is fine too
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise SchemaError(path, name, f"got {value!r}; expected a date YYYY-MM-DD") from None
        if isinstance(value, bool) or not isinstance(value, types):
            raise SchemaError(
                path, name, f"got {value!r} ({type(value).__name__}); expected {_expect(types)}"
            )
        if required and value in ("", []):
            raise SchemaError(path, name, "must not be empty")
        if name == "headline_results":
            value = tuple(_parse_result(path, i, item) for i, item in enumerate(value))
        elif name == "outline":
            value = outline_field(value, path)
        elif isinstance(value, list) and not all(isinstance(v, str) and v for v in value):
            raise SchemaError(path, name, f"got {value!r}; expected a list of non-empty strings")
        values[name] = value

    if values["id"] != path.stem:
        raise SchemaError(
            path, "id", f"got {values['id']!r}; expected the file name stem {path.stem!r}"
        )
    if not PAPER_ID.match(values["id"]):
        raise SchemaError(
            path, "id", f"got {values['id']!r}; expected lowercase ASCII words joined by '-'"
        )
    if values["status"] not in STATUSES:
        raise SchemaError(
            path, "status", f"got {values['status']!r}; expected one of {', '.join(STATUSES)}"
        )
    if not 1900 <= values["year"] <= 2100:
        raise SchemaError(path, "year", f"got {values['year']}; expected a four-digit year")
    for name in ("title", "short_title", "venue", "arxiv", "doi", "url", "code", "authors", "affiliations", "tags"):
        for text in (values[name] if isinstance(values[name], list) else [values[name]]):
            if text is None or (text == "" and not _FIELDS[name][1]):  # an optional field left empty
                continue
            problem = one_line_problem(text)
            if problem is not None:
                raise SchemaError(path, name, f"got {text!r}, which {problem}")
    if values["doi"] is not None and not _DOI.match(values["doi"]):
        raise SchemaError(path, "doi", f"got {values['doi']!r}; expected a DOI like '10.1109/CVPR52688.2022.01553' "
                                       f"(no https://doi.org/ prefix)")
    if values["arxiv"] is not None and not _ARXIV_ID.match(values["arxiv"]):
        raise SchemaError(
            path, "arxiv", f"got {values['arxiv']!r}; expected an arXiv id like '2111.06377'"
        )
    for name in ("url", "code"):
        if values[name] is not None and not values[name].startswith(("https://", "http://")):
            raise SchemaError(path, name, f"got {values[name]!r}; expected an http(s) URL")
    for name in values["unconfirmed"]:
        if name not in _FIELDS or name in ("id", "unconfirmed"):
            raise SchemaError(
                path, "unconfirmed", f"lists {name!r}, which is not a paper field"
            )
    for name in ("authors", "affiliations", "related", "unconfirmed", "tags"):
        values[name] = tuple(values[name])
    return Paper(**values, path=path)


def read_paper(path: Path) -> Paper:
    """Read and validate one ``papers/<id>.yaml``.

    Raises:
        SchemaError: naming the file (and the field) for anything the schema rejects, a file
            that is not UTF-8 or cannot be read, invalid YAML, a repeated key, an impossible date
            or a non-finite number.
    """
    try:
        text = read_text(path)
    except OSError as exc:
        raise SchemaError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    return parse_paper(load_yaml(text, path), path)


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


def _scalar(value: str | None) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, ensure_ascii=False)  # a JSON string is valid YAML
    # JSON escapes only U+0000-U+001F; YAML refuses DEL and C1 characters written raw. Escaped, the
    # schema reads them and says what is wrong with the field, not that the new file is not YAML.
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def new_paper_text(path: Path, *, title: str, authors: list[str], venue: str, year: int,
                   arxiv: str | None = None, doi: str | None = None, url: str | None = None,
                   code: str | None = None, status: str = "to-read", added: dt.date | None = None,
                   related: list[str] | None = None, short_title: str = "", tags: list[str] | None = None) -> str:
    """The text of a new ``papers/<id>.yaml`` with every field present, checked against the schema.

    The id is ``path``'s stem. Fields the command line does not set (affiliations, the publication
    date, the free-text columns) are left empty, to be filled in by hand; nothing is invented.

    Raises:
        SchemaError: naming ``path`` and the field, for any value the schema rejects.
    """
    lines = [
        f"id: {path.stem}",
        f"title: {_scalar(title)}",
        f"short_title: {_scalar(short_title)}",
        f"authors: [{', '.join(_scalar(a) for a in authors)}]",
        "affiliations: []",
        f"venue: {_scalar(venue)}",
        f"year: {year}",
        "published: null",
        f"arxiv: {_scalar(arxiv)}",
        f"doi: {_scalar(doi)}",
        f"url: {_scalar(url)}",
        f"code: {_scalar(code)}",
        f"status: {status}",
        f"added: {(added or dt.date.today()).isoformat()}",
        f"related: [{', '.join(related or [])}]",
        f"tags: [{', '.join(_scalar(t) for t in tags or [])}]",
        "unconfirmed: []",
        *(f'{name}: ""' for name in FREE_TEXT_FIELDS),
    ]
    text = "\n".join(lines) + "\n"
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
