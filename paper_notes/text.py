"""Plain text (a title, an author, a venue) placed into the Markdown the build renders, shown as written.

Titles come from ``papers/*.yaml``, the diary's front matter and the glossary, and are plain text:
``A<B`` is a title, not an HTML tag, and ``C*`` is not the start of emphasis. Every generated page
passes them through [`markdown_text`][paper_notes.text.markdown_text] (or, inside a link's hover
text, [`markdown_link_title`][paper_notes.text.markdown_link_title]); the theme's templates get the
diary titles already escaped from ``paper_notes.plugin``.

Such a text must also be one line of something visible: [`one_line_problem`][paper_notes.text.one_line_problem]
says what is wrong with it, for the schemas ([`schema.Text`][paper_notes.schema.Text]) and the commands.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["LINE_BREAK", "markdown_link_title", "markdown_text", "one_line_problem"]

LINE_BREAK = re.compile(r"[\r\n\v\f\x85\u2028\u2029]")
"""Anything YAML or Markdown would take for the end of a line: refused in one-line fields (a title)."""

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
"""C0 and C1 control characters other than tab and the line breaks: XML 1.0 cannot hold them at
all (``journal/feed.xml`` would not parse), and no title needs one."""

_BREAK_OR_CONTROL = re.compile(f"{LINE_BREAK.pattern}|{_CONTROL.pattern}")

_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u2800\u3164\uffa0")
"""Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern)."""


def _invisible(char: str) -> bool:
    # Z*: spaces and separators; C*: controls, format characters (U+200B, U+2060, U+FEFF ...), unassigned.
    return unicodedata.category(char)[0] in "ZC" or char in _INVISIBLE_EXTRA


def one_line_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a one-line field (a title, a tag, an author), or ``None``.

    The words finish ``f"got {text!r}, which ..."``: a line break, a control character (tab is
    fine), or nothing visible at all (empty, spaces, a zero-width space U+200B, ...).

    Examples:
        >>> one_line_problem("A<B: 掩码")
        >>> one_line_problem("\u200b")
        'shows nothing (only spaces or invisible characters); expected visible text'
    """
    bad = _BREAK_OR_CONTROL.search(text)
    if bad and LINE_BREAK.match(bad.group()):
        return "has a line break; expected one line"
    if bad:
        return f"has the control character U+{ord(bad.group()):04X}; expected printable text"
    if " " < text[:1] < "\x7f":  # starts with a visible ASCII character: the usual case, decided at once
        return None
    if all(_invisible(char) for char in text):
        return "shows nothing (only spaces or invisible characters); expected visible text"
    return None


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}#|])")


def markdown_text(text: str) -> str:
    r"""``text`` (a title, an author, a venue) as Markdown that renders as exactly that text.

    ``&``, ``<`` and ``>`` become entities (a title ``A<B`` or ``<b>x</b>`` shows as written, never
    as HTML); the characters Markdown would read as emphasis, code, links, a table's cell border,
    attributes or a heading's closing hashes get a backslash.

    Examples:
        >>> markdown_text("A<B & C*: x | y")
        'A&lt;B &amp; C\\*: x \\| y'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def markdown_link_title(text: str) -> str:
    """``text`` inside the quotes of a Markdown link's title (its hover text), shown as written."""
    return html.escape(text, quote=True).replace("\\", "&#92;")
