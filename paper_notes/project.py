"""Where things are in a paper-notes checkout, and everything loaded and validated at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .checks import check_prose
from .glossary import Term, load_glossary
from .journal import POSTS_DIR, Entry, load_entries, parse_entry
from .registry import Paper, SchemaError, load_papers


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding ``mkdocs.yml`` and ``papers/``.

    Raises:
        FileNotFoundError: if there is none.
    """
    start = (start or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / "mkdocs.yml").is_file() and (candidate / "papers").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no paper-notes project (a directory with mkdocs.yml and papers/) at or above {start}"
    )


SITE_SOURCES = ("mkdocs.yml", "glossary.yaml", "papers", "docs", "scripts", "refimpl", "paper_notes")
"""What a copy of a checkout needs in order to build the site."""


def copy_site_sources(root: Path, dest: Path) -> None:
    """Copy :data:`SITE_SOURCES` of the checkout at ``root`` into ``dest`` (without ``__pycache__``)."""
    import shutil

    for part in SITE_SOURCES:
        source = root / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / part)


@dataclass(frozen=True)
class Project:
    """A checkout's reading list, glossary and diary, all validated."""

    root: Path
    papers: dict[str, Paper]
    glossary: list[Term]
    entries: list[Entry]

    @property
    def posts_dir(self) -> Path:
        return self.root / POSTS_DIR

    def entries_for(self, paper_id: str) -> list[Entry]:
        """Diary entries that name ``paper_id`` in their ``categories``, newest first."""
        return [e for e in self.entries if paper_id in e.papers]


def load_project(root: Path) -> Project:
    """Load ``papers/``, ``glossary.yaml`` and the diary; raise on the first invalid file."""
    papers = load_papers(root / "papers")
    glossary = load_glossary(root / "glossary.yaml", papers)
    entries = load_entries(root / POSTS_DIR, papers)
    return Project(root=root, papers=papers, glossary=glossary, entries=entries)


def check_project(root: Path) -> list[str]:
    """Every problem the site build would reject, one message per invalid file (empty if none),
    then the prose checks of [`check_prose`][paper_notes.checks.check_prose]."""
    problems: list[str] = []
    try:
        papers = load_papers(root / "papers", problems)  # every bad file, not only the first
    except FileNotFoundError as exc:
        return [str(exc)]
    terms: list[Term] = []
    try:
        terms = load_glossary(root / "glossary.yaml", papers)
    except (SchemaError, FileNotFoundError) as exc:
        problems.append(str(exc))
    for path in sorted((root / POSTS_DIR).glob("*.md")):  # one at a time: report every bad entry
        try:
            parse_entry(path, papers)
        except SchemaError as exc:
            problems.append(str(exc))
    problems += check_prose(root, papers, terms).problems  # references, bare mentions, terms
    return problems
