"""Where things are in a paper-notes checkout, and everything loaded and validated at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .glossary import Term, load_glossary
from .journal import POSTS_DIR, Entry, load_entries
from .registry import Paper, load_papers


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


SITE_SOURCES = ("mkdocs.yml", "glossary.yaml", "papers", "docs", "refimpl", "paper_notes")
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


def paper_files(papers_dir: Path) -> list[Path]:
    """The reading list's files, ``*.yaml`` and ``*.yml``, valid or not."""
    return sorted(p for p in papers_dir.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
