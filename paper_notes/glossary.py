"""The glossary (术语表): ``glossary.yaml`` at the project root, one source for two things.

1. The glossary page, generated at build time ([`render_glossary_page`][paper_notes.glossary.render_glossary_page]).
2. Hover definitions on every page: [`GlossaryExtension`][paper_notes.glossary.GlossaryExtension] is a Python-Markdown extension
   that wraps the first occurrence of each term on a page in ``<abbr title="...">``, which
   Material shows as a tooltip (``content.tooltips``). Later occurrences stay plain text, as a
   first mention carries the link in an encyclopedia: a paragraph where every third word is
   underlined is hard to read. Any spelling of a term (掩码, mask) counts as an occurrence.

Python-Markdown's own ``abbr`` extension matches on ``\\b`` word boundaries, and there is no
boundary between two Chinese characters, so "掩码" inside a Chinese sentence would never match.
Here Chinese terms match anywhere, and ASCII terms match only where no ASCII letter or digit
touches them (so "mask" does not fire inside "masked", but does inside "每个mask").
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from markdown import Extension
from markdown.treeprocessors import Treeprocessor

from .registry import PAPER_ID
from .schema import Field, ListOf, Schema, Text, matches
from .text import markdown_text
from .yamlio import SchemaError, load_yaml, read_text

_SKIP_TAGS = {"code", "pre", "a", "abbr", "h1", "h2", "h3", "h4", "h5", "h6", "script", "style", "kbd"}


@dataclass(frozen=True)
class Term:
    """One glossary term: its Chinese and English names, a one-line and a long definition."""

    id: str
    term: str
    en: str
    aliases: tuple[str, ...]
    short: str
    detail: str
    papers: tuple[str, ...]
    avoid: tuple[str, ...] = ()
    """Variants not to write in prose (``词元`` for token); ``notes check`` flags them ([`terms`][paper_notes.terms])."""

    @property
    def surface_forms(self) -> tuple[str, ...]:
        """Every spelling that gets the tooltip, without repeats."""
        return tuple(dict.fromkeys(f for f in (self.term, self.en, *self.aliases) if f))


def _plain(short: str) -> str | None:
    return f"got {short!r}; expected plain text without the characters \" < >" if any(c in short for c in '"<>') else None


TERM = Schema("a glossary term", (
    Field("id", Text(), "its anchor on the glossary page: lowercase ASCII words joined by `-`", required=True,
          rule=matches(PAPER_ID.pattern, "a lowercase ASCII id (a-z, 0-9, '-')")),
    Field("term", Text(), "the Chinese term the site writes", required=True),
    Field("en", Text(), "the English term", required=True),
    Field("aliases", ListOf(Text(), "spellings"), "other spellings that also get the hover definition"),
    Field("avoid", ListOf(Text(), "spellings"), "variants the site does not write; `notes check` flags them"),
    Field("short", Text(), "the one-line definition shown on hover", required=True, rule=_plain),
    Field("detail", Text(one_line=False), "the full explanation on the glossary page (Markdown)", required=True),
    Field("papers", ListOf(Text(), "paper ids"), "ids of the papers that introduce or use it"),
))
"""One item of ``glossary.yaml`` (a YAML list of terms)."""


def load_glossary(path: Path | str, known_papers: Iterable[str] | None = None) -> list[Term]:
    """Load and validate ``glossary.yaml``.

    Raises:
        SchemaError: naming the file, the term and field, for anything [`TERM`][paper_notes.glossary.TERM]
            refuses, a repeated id or spelling, an avoided spelling that is also a term's spelling,
            or a paper id that is not in ``known_papers``.
    """
    path = Path(path)
    data = load_yaml(read_text(path), path)
    if not isinstance(data, list):
        raise SchemaError(path, None, "expected a YAML list of terms")
    known = set(known_papers) if known_papers is not None else None
    terms = [_term(item, i, path, known) for i, item in enumerate(data)]
    _check_spellings(terms, path)
    return terms


def _term(item: Any, index: int, path: Path, known: set[str] | None) -> Term:
    where = f"term '{item.get('id', index + 1)}'" if isinstance(item, dict) else f"term #{index + 1}"
    term = Term(**TERM.parse(item, path, where))
    for pid in term.papers if known is not None else ():
        if pid not in known:
            raise SchemaError(path, f"{where}.papers", f"names unknown paper id {pid!r}")
    return term


def _check_spellings(terms: list[Term], path: Path) -> None:
    """Each id, spelling and avoided variant belongs to one term; no variant is also a spelling."""
    ids: set[str] = set()
    spelled: dict[str, str] = {}
    avoided: dict[str, str] = {}
    for term in terms:
        where = f"term '{term.id}'"
        if term.id in ids:
            raise SchemaError(path, f"{where}.id", f"got {term.id!r}, which is already a term's id; expected a unique id")
        ids.add(term.id)
        for form in term.surface_forms:
            if form in spelled:
                raise SchemaError(path, where, f"spelling {form!r} is already used by term '{spelled[form]}'")
            spelled[form] = term.id
        for form in term.avoid:
            if form in avoided:
                raise SchemaError(path, f"{where}.avoid", f"{form!r} is already avoided by term '{avoided[form]}'")
            avoided[form] = term.id
    for form, term_id in avoided.items():
        if form in spelled:
            raise SchemaError(path, f"term '{term_id}'.avoid",
                              f"{form!r} is to be avoided but is a spelling of term '{spelled[form]}'")


def term_pattern(forms: Iterable[str]) -> re.Pattern[str]:
    """One regex for all spellings, longest first so "end-to-end fine-tuning" beats "end-to-end"."""
    parts = []
    for form in sorted(set(forms), key=len, reverse=True):
        escaped = re.escape(form)
        if form[:1].isascii() and form[:1].isalnum():
            escaped = r"(?<![A-Za-z0-9])" + escaped
        if form[-1:].isascii() and form[-1:].isalnum():
            escaped += r"(?![A-Za-z0-9])"
        parts.append(escaped)
    return re.compile("|".join(parts))


class _GlossaryTreeprocessor(Treeprocessor):
    def __init__(self, md: Any, definitions: dict[str, tuple[str, str]]) -> None:
        super().__init__(md)
        self.definitions = definitions  # spelling -> (term id, tooltip)
        self.pattern = term_pattern(definitions) if definitions else None
        self.seen: set[str] = set()  # term ids already explained on this page

    def _wrap(self, text: str) -> tuple[str, list[etree.Element]]:
        """Split ``text`` into leading text and ``<abbr>`` elements (each carrying its tail)."""
        pieces: list[etree.Element] = []
        head, last = None, 0
        for match in self.pattern.finditer(text):  # type: ignore[union-attr]
            term_id, title = self.definitions[match.group(0)]
            if term_id in self.seen:
                continue
            self.seen.add(term_id)
            before = text[last:match.start()]
            if pieces:
                pieces[-1].tail = (pieces[-1].tail or "") + before
            else:
                head = before
            abbr = etree.Element("abbr", {"title": title})
            abbr.text = match.group(0)
            pieces.append(abbr)
            last = match.end()
        if not pieces:
            return text, []
        pieces[-1].tail = text[last:]
        return head or "", pieces

    def _walk(self, element: etree.Element) -> None:
        if element.tag in _SKIP_TAGS or "arithmatex" in element.get("class", ""):
            return
        if element.text:
            element.text, new = self._wrap(element.text)
            for j, child in enumerate(new):
                element.insert(j, child)
        for child in list(element):
            self._walk(child)
            if child.tail:
                child.tail, new = self._wrap(child.tail)
                index = list(element).index(child)
                for j, sibling in enumerate(new):
                    element.insert(index + 1 + j, sibling)

    def run(self, root: etree.Element) -> None:
        self.seen = set()  # one Markdown instance converts every page in turn
        if self.pattern is not None:
            self._walk(root)


class GlossaryExtension(Extension):
    """Python-Markdown extension: a hover definition on the first occurrence of each glossary term.

    Config ``path``: the glossary YAML file (relative to the working directory, which is the
    project root when MkDocs runs).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.config = {"path": ["glossary.yaml", "glossary YAML file"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Any) -> None:  # noqa: N802 (Python-Markdown's name)
        # After inline processing (20), before prettify (10): text nodes are final here.
        md.treeprocessors.register(_GlossaryTreeprocessor(md, _definitions(self.getConfig("path"))),
                                   "paper_notes_glossary", 15)


_DEFINITIONS: dict[tuple[str, int, int], dict[str, tuple[str, str]]] = {}


def _definitions(path: str | Path) -> dict[str, tuple[str, str]]:
    """Spelling -> (term id, tooltip), read once per version of the file.

    mkdocstrings makes a Markdown instance for every object it renders (about 80 per build), and
    each one loads this extension: keyed on the file's modification time and size, the YAML is
    parsed once per build and not at all in a ``mkdocs serve`` rebuild that did not touch it.
    """
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _DEFINITIONS:
        definitions: dict[str, tuple[str, str]] = {}
        for term in load_glossary(path):
            label = term.term if term.term == term.en else f"{term.term} ({term.en})"
            for form in term.surface_forms:
                definitions[form] = (term.id, f"{label}：{term.short}")
        _DEFINITIONS.clear()
        _DEFINITIONS[key] = definitions
    return _DEFINITIONS[key]


def makeExtension(**kwargs: Any) -> GlossaryExtension:  # noqa: N802 (Python-Markdown's name)
    return GlossaryExtension(**kwargs)


def render_glossary_page(terms: list[Term], paper_titles: dict[str, str]) -> str:
    """Markdown of the glossary page: one section per term, anchored by its id."""
    lines = [
        "# 术语表 (glossary)",
        "",
        "本站用到的术语，按主题排列。任何页面上出现这些词时，把鼠标停在上面就会显示一句话定义；"
        "这里给出完整的解释。定义由 `glossary.yaml` 生成，改那里即可。",
        "",
    ]
    for term in terms:
        heading = term.term if term.term == term.en else f"{term.term} ({term.en})"
        lines += [f"## {markdown_text(heading)} {{ #{term.id} }}", "", f"**{markdown_text(term.short)}**", "", term.detail, ""]
        if term.avoid:
            lines += ["本站统一写作“" + term.term + "”，不写作 " + "、".join(f"`{v}`" for v in term.avoid) + "。", ""]
        if term.papers:
            links = "、".join(f"[{markdown_text(paper_titles.get(p, p))}](reading-list/{p}.md)" for p in term.papers)
            lines += [f"相关论文：{links}", ""]
    return "\n".join(lines)
