"""The project's file formats by name, as the file-formats page shows them (``<!-- fields: paper -->``).

Each is declared once, beside the code that reads it: ``papers/<id>.yaml``
([`PAPER`][paper_notes.registry.PAPER]), its ``outline`` ([`OUTLINE`][paper_notes.outline.OUTLINE]),
a diary entry's front matter ([`ENTRY`][paper_notes.journal.ENTRY]) and a term of ``glossary.yaml``
([`TERM`][paper_notes.glossary.TERM]).
"""

from __future__ import annotations

from .glossary import TERM
from .journal import ENTRY
from .outline import OUTLINE
from .registry import PAPER
from .schema import Schema, fields_markdown

__all__ = ["FORMATS", "format_markdown"]

FORMATS: dict[str, Schema] = {"paper": PAPER, "outline": OUTLINE, "entry": ENTRY, "term": TERM}
"""The declarations by the name a page's marker uses."""


def format_markdown(kind: str) -> str:
    """The fields of ``kind`` (a key of [`FORMATS`][paper_notes.formats.FORMATS]) as Markdown tables:
    its own, then one per nested mapping that is not a format of its own (the paper's table
    names ``outline`` and leaves its fields to the outline's table).

    Raises:
        KeyError: if ``kind`` is not one of ``FORMATS``, naming them.
    """
    if kind not in FORMATS:
        raise KeyError(f"file format {kind!r} is not declared; expected one of {', '.join(FORMATS)}")
    return fields_markdown(FORMATS[kind], skip=tuple(s for name, s in FORMATS.items() if name != kind))
