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
from .text import markdown_text
from .yamlio import SchemaError, load_yaml, one_line_problem, read_text

_FIELDS = {"id", "term", "en", "aliases", "avoid", "short", "detail", "papers"}
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


def load_glossary(path: Path | str, known_papers: Iterable[str] | None = None) -> list[Term]:
    """Load and validate ``glossary.yaml``.

    Raises:
        SchemaError: naming the file, the term and field, for an unknown or missing field, a
            duplicate id or spelling, or a paper id that is not in ``known_papers``.
    """
    path = Path(path)
    data = load_yaml(read_text(path), path)
    if not isinstance(data, list):
        raise SchemaError(path, None, "expected a YAML list of terms")
    known = set(known_papers) if known_papers is not None else None
    terms: list[Term] = []
    seen_ids: set[str] = set()
    seen_forms: dict[str, str] = {}
    avoided: dict[str, str] = {}
    for i, item in enumerate(data):
        where = f"term #{i + 1}"
        if not isinstance(item, dict):
            raise SchemaError(path, where, "expected a mapping")
        where = f"term '{item.get('id', i + 1)}'"
        unknown = sorted(set(item) - _FIELDS)
        if unknown:
            raise SchemaError(path, f"{where}.{unknown[0]}", f"unknown field; expected only: {', '.join(sorted(_FIELDS))}")
        for name in ("id", "term", "en", "short", "detail"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise SchemaError(path, f"{where}.{name}", f"got {item.get(name)!r}; expected a non-empty string")
        for name in ("aliases", "papers", "avoid"):
            value = item.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise SchemaError(path, f"{where}.{name}", f"got {value!r}; expected a list of strings")
        for name in ("term", "en", "short", "aliases", "avoid"):  # one line each: a tooltip, a heading
            value = item.get(name, [])
            for text in value if isinstance(value, list) else [value]:
                problem = one_line_problem(text)
                if problem is not None:
                    raise SchemaError(path, f"{where}.{name}", f"got {text!r}, which {problem}")
        if not PAPER_ID.match(item["id"]) or item["id"] in seen_ids:
            raise SchemaError(path, f"{where}.id", "expected a unique lowercase ASCII id (a-z, 0-9, '-')")
        if any(c in item["short"] for c in '"<>'):
            raise SchemaError(path, f"{where}.short", 'must be plain text without the characters " < >')
        if known is not None:
            for pid in item.get("papers", []):
                if pid not in known:
                    raise SchemaError(path, f"{where}.papers", f"names unknown paper id {pid!r}")
        term = Term(
            id=item["id"], term=item["term"].strip(), en=item["en"].strip(),
            aliases=tuple(item.get("aliases", [])), short=item["short"].strip(),
            detail=item["detail"].strip(), papers=tuple(item.get("papers", [])),
            avoid=tuple(item.get("avoid", [])),
        )
        for form in term.surface_forms:
            if form in seen_forms:
                raise SchemaError(path, f"{where}", f"spelling {form!r} is already used by term '{seen_forms[form]}'")
            seen_forms[form] = term.id
        seen_ids.add(term.id)
        for form in term.avoid:
            if form in avoided:
                raise SchemaError(path, f"{where}.avoid", f"{form!r} is already avoided by term '{avoided[form]}'")
            avoided[form] = term.id
        terms.append(term)
    for form, term_id in avoided.items():
        if form in seen_forms:
            raise SchemaError(path, f"term '{term_id}'.avoid",
                              f"{form!r} is to be avoided but is a spelling of term '{seen_forms[form]}'")
    return terms


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
