"""``notes check``: every file the site build would reject, then the prose checks (references, bare
mentions, terms) over every source.

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

from refimpl.paths import path_problem

from .glossary import Term, load_glossary
from .journal import POSTS_DIR, parse_entry
from .mentions import check_python_source, notebook_markdown, prose_parser, scan_markdown
from .project import paper_files
from .registry import FREE_TEXT_FIELDS, Paper, load_papers
from .terms import Variant, find_variants, find_variants_by_line
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

    parser = prose_parser(papers, root)

    def scan(where: str, text: str) -> None:  # references, bare mentions and term variants of one text
        problems, checked, prose = scan_markdown(text, where, papers, parser)
        out.problems += problems
        out.references.update(checked)
        out.problems += [str(v) for v in _variants(prose, text, where, terms)]

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


def _variants(prose: list[str], source: str, where: str, terms: list[Term]) -> list[Variant]:
    """Term variants in the ``prose`` of ``source``, each with ``where:line``, the line of the source
    it stands on (the first at or after the previous one's that holds it)."""
    lines = source.split("\n")
    found, line = [], 0
    for text in prose:
        for variant in find_variants(text, where, terms):
            line = next((i for i in [*range(line, len(lines)), *range(line)] if variant.text in lines[i]), line)
            found.append(Variant(f"{where}:{line + 1}", variant.text, variant.term))
    return found


def check_project(root: Path, skipped: list[str] | None = None) -> list[str]:
    """Every problem the site build would reject, one message per invalid file (empty if none),
    then the prose checks of [`check_prose`][paper_notes.checks.check_prose].

    A paper file that does not read is reported once, at its root cause: the glossary and entries
    that name its id are not reported again, and the prose checks (which resolve every reference
    and named mention against the papers' outlines) wait until every paper file reads, rather than
    report each mention of the broken paper; ``skipped`` (if given) then gets one line saying so.
    """
    problems: list[str] = []
    for folder in (root / "papers", root / POSTS_DIR):
        problem = path_problem(folder, kind="folder")
        if problem is not None and not (folder.name == "posts" and problem == "does not exist"):
            return [f"{folder} {problem}"]
    papers = load_papers(root / "papers", problems)  # every bad file, not only the first
    known = set(papers) | {path.stem for path in paper_files(root / "papers")}  # broken files still name ids
    terms: list[Term] = []
    try:
        terms = load_glossary(root / "glossary.yaml", known)
    except (SchemaError, FileNotFoundError) as exc:
        problems.append(str(exc))
    for path in sorted((root / POSTS_DIR).glob("*.md")):  # one at a time: report every bad entry
        try:
            parse_entry(path, known)
        except SchemaError as exc:
            problems.append(str(exc))
    if known - set(papers):
        if skipped is not None:
            skipped.append("references, mentions and terms are checked once every paper file reads")
        return problems
    problems += check_prose(root, papers, terms).problems  # references, bare mentions, terms
    return problems
