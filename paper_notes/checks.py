"""The prose checks of ``notes check``: references, bare mentions, terms; over every source.

- Every ``[@paper, 图 4]`` reference resolves against the paper's outline
  ([`references`][paper_notes.references]).
- No bare mention of a paper's figure, table or section ([`mentions`][paper_notes.mentions]).
- Docstrings and comments of ``refimpl/`` (what mkdocstrings renders) name their paper and resolve.
- No variant the glossary avoids ([`terms`][paper_notes.terms]).

Sources: ``docs/**/*.md``, the Markdown cells of ``docs/notebooks/*.py``, the reading list's notes
and results in ``papers/*.yaml``, the outlines' gists (terms only: the outline defines its numbers),
the glossary's definitions, and ``refimpl/**/*.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .glossary import Term
from .mentions import check_markdown, check_python_source, notebook_markdown, strip_code
from .registry import FREE_TEXT_FIELDS, Paper
from .terms import find_variants_by_line
from .yamlio import SchemaError, read_text


@dataclass
class ProseReport:
    """Problems (one message each) and the checked references by ``(paper id, kind)``."""

    problems: list[str] = field(default_factory=list)
    references: Counter[tuple[str, str]] = field(default_factory=Counter)
    named: Counter[tuple[str, str]] = field(default_factory=Counter)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _paper_texts(paper: Paper) -> list[tuple[str, str]]:
    """``(field, text)`` of a paper's prose that its page shows (notes, headline results)."""
    texts = [(name, getattr(paper, name)) for name in FREE_TEXT_FIELDS if getattr(paper, name)]
    texts += [(f"headline_results[{i}].where", r.where) for i, r in enumerate(paper.headline_results)]
    return texts


def check_prose(root: Path, papers: dict[str, Paper], terms: list[Term]) -> ProseReport:
    """Run every prose check over the project at ``root``."""
    out = ProseReport()
    docs = root / "docs"
    sources: list[tuple[str, str]] = []
    posts = docs / "journal" / "posts"

    def read(path: Path) -> str | None:  # a folder, a FIFO (a read would wait forever), not UTF-8: said once
        try:
            return read_text(path)
        except SchemaError as exc:
            if path.parent != posts:  # the entries' own check has said it
                out.problems.append(str(exc))
            return None

    for path in sorted(docs.rglob("*.md")):
        text = read(path)
        if text is not None:
            sources.append((_rel(path, root), text))
    for path in sorted((docs / "notebooks").glob("*.py")):
        text = read(path)
        if text is not None:
            sources.append((_rel(path, root), notebook_markdown(text)))
    for paper in papers.values():
        where = _rel(paper.path, root)
        for name, text in _paper_texts(paper):
            sources.append((f"{where}: field '{name}'", text))

    def scan(where: str, text: str) -> None:  # references, bare mentions and term variants of one text
        problems, checked = check_markdown(text, where, papers)
        out.problems += problems
        out.references.update(checked)
        out.problems += [str(v) for v in find_variants_by_line(strip_code(text), where, terms)]

    for where, text in sources:
        scan(where, text)
    for paper in papers.values():
        if paper.outline is None:
            continue
        for item in paper.outline.items():
            where = f"{_rel(paper.path, root)}: outline {item.label_en}"
            out.problems += [str(v) for v in find_variants_by_line(item.gist, where, terms)]
    for term in terms:
        for name in ("short", "detail"):
            scan(f"glossary.yaml: term '{term.id}'.{name}", getattr(term, name))
    for path in sorted((root / "refimpl").rglob("*.py")):
        problems, named = check_python_source(path, _rel(path, root), papers)
        out.problems += problems
        out.named.update(named)
    return out
