"""One term per concept: flag the variants ``glossary.yaml`` says not to write.

Each glossary term may list ``avoid``: spellings of the same concept that the site does not use
(``词元`` for token, ``图块`` for 图像块, ``位置编码`` for 位置嵌入). A reader takes a new word for a
new idea, so prose uses the preferred term only. ``notes check`` and ``tests/test_terms.py`` run
[`find_variants`][paper_notes.terms.find_variants] over the prose: Markdown pages (code left out), notebooks' Markdown cells,
the reading list's notes and the outlines' gists, the glossary's own definitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .glossary import Term, term_pattern


@dataclass(frozen=True)
class Variant:
    """An avoided spelling found in prose."""

    where: str
    text: str
    term: Term

    def __str__(self) -> str:
        return (f"{self.where}: '{self.text}' is a variant of the glossary term '{self.term.term}' "
                f"({self.term.en}); write '{self.term.term}'")


def variant_pattern(terms: list[Term]) -> re.Pattern[str] | None:
    """One regex for every avoided spelling (longest first), or ``None`` if the glossary avoids none."""
    forms = [form for term in terms for form in term.avoid]
    return term_pattern(forms) if forms else None


def find_variants(text: str, where: str, terms: list[Term]) -> list[Variant]:
    """Every avoided spelling in ``text`` (prose with code already removed)."""
    pattern = variant_pattern(terms)
    if pattern is None:
        return []
    owner = {form: term for term in terms for form in term.avoid}
    return [Variant(where, m.group(0), owner[m.group(0)]) for m in pattern.finditer(text)]


def find_variants_by_line(text: str, where: str, terms: list[Term]) -> list[Variant]:
    """[`find_variants`][paper_notes.terms.find_variants] with ``where:line`` in each message."""
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        found += find_variants(line, f"{where}:{number}", terms)
    return found
