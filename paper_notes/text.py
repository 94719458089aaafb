"""Plain text (a title, an author, a venue) placed into the Markdown the build renders, shown as written.

Titles come from ``papers/*.yaml``, the diary's front matter and the glossary, and are plain text:
``A<B`` is a title, not an HTML tag, and ``C*`` is not the start of emphasis. Every generated page
passes them through [`markdown_text`][paper_notes.text.markdown_text] (or, inside a link's hover
text, [`markdown_link_title`][paper_notes.text.markdown_link_title]); the theme's templates get the
diary titles already escaped from ``paper_notes.mkdocs_hooks``.
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_link_title", "markdown_text"]

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
