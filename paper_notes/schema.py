"""File formats declared once: a list of fields per kind of file, from which parsing, the one-line
errors and the table of fields on the site all derive.

A [`Schema`][paper_notes.schema.Schema] is a tuple of [`Field`][paper_notes.schema.Field]s: a name,
a kind of value ([`Text`][paper_notes.schema.Text], [`INTEGER`][paper_notes.schema.INTEGER],
[`Date`][paper_notes.schema.Date], a [`ListOf`][paper_notes.schema.ListOf], a nested
[`Record`][paper_notes.schema.Record] ...), whether it is required, an optional rule and one line
of documentation. ``Schema.parse`` reads a mapping that [`load_yaml`][paper_notes.yamlio.load_yaml]
built and raises a [`SchemaError`][paper_notes.yamlio.SchemaError] naming the file, the field, the
value and what was expected; [`fields_markdown`][paper_notes.schema.fields_markdown] renders the
same declaration as a table. What a declaration cannot say (an id that must match the file name,
a date that must not precede another, ids that must exist in another file) stays in the few lines
that read the file, after ``parse``.

The four declarations: ``registry.PAPER``, ``outline.OUTLINE``, ``journal.ENTRY``,
``glossary.TERM`` ([`formats`][paper_notes.formats] names them for the site).

Why a layer of our own rather than pydantic v2, msgspec or attrs + cattrs (tried on the ten papers):
speed did not decide (each validates them in well under the 11 ms YAML takes to parse them, and
``notes check`` takes seconds); the messages did. Each library words its errors its own way
("Input should be a valid integer", "Expected int, got str - at $.year", "invalid value for type,
expected int @ $.year"), so keeping the wording the fault suite checks would take a translation per
error type and per rule; each quirk of these files (text that may be a number, a bare date standing
for ``{created: ...}``, a mapping with exactly its fields) needs a hook; cattrs reads
``year: "2022"`` as 2022 unless every primitive gets a strict hook; and the table of fields would
be a second walk over the library's metadata. This layer is about the size of those translations,
and adds no dependency.
"""

from __future__ import annotations

import datetime as dt
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .text import one_line_problem
from .yamlio import SchemaError

__all__ = ["BOOLEAN", "INTEGER", "Anything", "Choice", "Date", "Field", "Kind", "ListOf", "Record", "Scalar", "Schema",
           "Text", "fields_markdown", "matches"]

Where = Path | str
"""The file a value comes from (for messages)."""


def _at(where: str | None, name: str) -> str:
    return f"{where}.{name}" if where else name


def _shown(value: Any) -> str:
    """``repr`` of a value, shortened: a whole list or mapping can be long."""
    return reprlib.repr(value)


class Kind:
    """How one value is read: what it is called in the table, what a message expects, and ``read``.

    ``scalar`` kinds inside a list are reported at the list's field (``tags``), container kinds at
    their index (``headline_results[0]``).
    """

    name = "value"
    scalar = True
    empty: Any = None
    """What an absent optional field holds."""

    def expect(self, required: bool) -> str:
        return "a value"

    def read(self, value: Any, path: Where, at: str, required: bool) -> Any:
        """``value`` as the program keeps it, or a ``SchemaError`` on ``path`` naming ``at``."""
        return value

    def nested(self) -> tuple[Schema, ...]:
        """Declarations inside this kind (for the tables)."""
        return ()

    def wrong(self, value: Any, path: Where, at: str, required: bool) -> SchemaError:
        return SchemaError(path, at, f"got {value!r}; expected {self.expect(required)}")


@dataclass(frozen=True)
class Text(Kind):
    """A string, stripped; ``one_line`` refuses line breaks, control characters and invisible text.

    ``numbers``: a YAML number is read as its text (an outline's ``n: 4``, a cell ``83.6``).
    """

    one_line: bool = True
    numbers: bool = False
    empty = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        return ("text" + (" or number" if self.numbers else "")) + (", one line" if self.one_line else "")

    def expect(self, required: bool) -> str:
        what = "a non-empty string" if required else "a string"
        return what + (" or number" if self.numbers else "") + (" on one line" if self.one_line else "")

    def read(self, value: Any, path: Where, at: str, required: bool) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float) if self.numbers else str):
            raise self.wrong(value, path, at, required)
        text = str(value).strip()
        if not text:
            if required:
                raise SchemaError(path, at, f"must not be empty (got {value!r}); expected {self.expect(True)}")
            return text
        problem = one_line_problem(text) if self.one_line else None
        if problem is not None:
            raise SchemaError(path, at, f"got {value!r}, which {problem}")
        return text


@dataclass(frozen=True)
class Scalar(Kind):
    """A YAML value of one Python type as YAML built it: [`INTEGER`][paper_notes.schema.INTEGER],
    [`BOOLEAN`][paper_notes.schema.BOOLEAN] (``true`` is not an integer here, though ``bool`` is an ``int``)."""

    type: type
    words: str
    """How a message says what was expected: ``an integer``."""
    name: str  # type: ignore[misc]  # in the table

    def expect(self, required: bool) -> str:
        return self.words

    def read(self, value: Any, path: Where, at: str, required: bool) -> Any:
        if not isinstance(value, self.type) or (isinstance(value, bool) and self.type is not bool):
            raise self.wrong(value, path, at, required)
        return value


INTEGER = Scalar(int, "an integer", "integer")
BOOLEAN = Scalar(bool, "true or false", "true or false")


@dataclass(frozen=True)
class Date(Kind):
    """A calendar date, written ``YYYY-MM-DD``; ``quoted`` also reads ``"YYYY-MM-DD"`` as a string."""

    quoted: bool = False
    name = "date YYYY-MM-DD"

    def expect(self, required: bool) -> str:
        return "a date YYYY-MM-DD"

    def read(self, value: Any, path: Where, at: str, required: bool) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if self.quoted and isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise self.wrong(value, path, at, required)


@dataclass(frozen=True)
class Choice(Kind):
    """One of a few words."""

    options: tuple[str, ...]

    @property
    def name(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(f"`{option}`" for option in self.options)

    def expect(self, required: bool) -> str:
        return f"one of {', '.join(self.options)}"

    def read(self, value: Any, path: Where, at: str, required: bool) -> str:
        if value not in self.options:
            raise self.wrong(value, path, at, required)
        return value


class Anything(Kind):
    """Any value, not checked here (a key another tool reads and checks)."""

    name = "any"


@dataclass(frozen=True)
class ListOf(Kind):
    """A list of ``item``, read as a tuple; ``of`` names the items (``"paper ids"``).

    ``unique``: the words for an item (``"a paper"``) when an item may appear only once.
    """

    item: Kind
    of: str
    unique: str | None = None
    scalar = False
    empty = ()

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"list of {self.of}"

    def expect(self, required: bool) -> str:
        return f"a {'non-empty ' if required else ''}list of {self.of}"

    def nested(self) -> tuple[Schema, ...]:
        return self.item.nested()

    def read(self, value: Any, path: Where, at: str, required: bool) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise self.wrong(value, path, at, required)
        if required and not value:
            raise SchemaError(path, at, f"must not be empty (got []); expected {self.expect(True)}")
        read, scalar = self.item.read, self.item.scalar
        items = tuple([read(v, path, at if scalar else f"{at}[{i}]", True) for i, v in enumerate(value)])
        if self.unique is not None and len(set(items)) != len(items):
            twice = next(item for i, item in enumerate(items) if item in items[:i])
            raise SchemaError(path, at, f"got {value!r}, which names {self.unique} twice ({twice!r} is listed twice); "
                                        f"expected each once")
        return items


@dataclass(frozen=True)
class Record(Kind):
    """A nested mapping read by ``schema``; ``build(values, path, at)`` makes the object and checks
    the rules between its fields.

    ``shorthand``: the field that a value other than a mapping stands for (``date: 2024-10-26``
    means ``date: {created: 2024-10-26}``).
    """

    schema: Schema
    build: Callable[[dict[str, Any], Where, str], Any] | None = None
    shorthand: str | None = None
    scalar = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.schema.title} (mapping)"

    def expect(self, required: bool) -> str:
        return self.schema.shape

    def nested(self) -> tuple[Schema, ...]:
        return (self.schema,)

    def read(self, value: Any, path: Where, at: str, required: bool) -> Any:
        if self.shorthand is not None and not isinstance(value, dict):
            value = {self.shorthand: value}
        values = self.schema.parse(value, path, at)
        return self.build(values, path, at) if self.build is not None else values


@dataclass(frozen=True)
class Field:
    """One key of a file: its kind, whether it must be there, an optional rule, and what it means.

    ``rule(value)`` gets the value as read and returns the whole message when it is wrong, else
    ``None``; ``null`` allows ``null`` (read as ``None``).
    """

    name: str
    kind: Kind
    doc: str
    required: bool = False
    null: bool = False
    rule: Callable[[Any], str | None] | None = None

    def read(self, value: Any, path: Where, at: str) -> Any:
        if value is None and self.null:
            return None
        value = self.kind.read(value, path, at, self.required)
        problem = self.rule(value) if self.rule is not None else None
        if problem is not None:
            raise SchemaError(path, at, problem)
        return value


@dataclass(frozen=True)
class Schema:
    """The fields of one kind of mapping, in the order a file writes them.

    ``key`` is what the file calls a key in "unknown field"; ``exact``: every field, always, and
    nothing else (a headline result).
    """

    title: str
    fields: tuple[Field, ...]
    key: str = "field"
    exact: bool = False
    names: tuple[str, ...] = field(init=False)
    _known: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.fields))
        object.__setattr__(self, "_known", frozenset(self.names))

    @property
    def shape(self) -> str:
        """``a mapping with n, title, gist (optional: panels, results)``: for messages."""
        if self.exact:
            return f"a mapping with exactly {', '.join(self.names)}"
        required = [f.name for f in self.fields if f.required]
        optional = [f.name for f in self.fields if not f.required]
        extra = f" (optional: {', '.join(optional)})" if optional and len(optional) <= 4 else ""
        return f"a mapping with {', '.join(required)}{extra}"

    def parse(self, data: Any, path: Where, where: str | None = None) -> dict[str, Any]:
        """The values of ``data`` by field name, absent optional ones empty.

        Args:
            data: the mapping, as ``load_yaml`` built it.
            path: the file it comes from.
            where: the mapping's own place in the file (``outline.figures[3]``), ``None`` at the top.

        Raises:
            SchemaError: naming ``path`` and the field, for a value that is not a mapping, an
                unknown or missing key, or a value its field refuses.
        """
        if not isinstance(data, dict):
            raise SchemaError(path, where, f"got {_shown(data)}; expected {self.shape}")
        if not self._known.issuperset(data):
            unknown = [key for key in data if key not in self._known]
            raise SchemaError(path, _at(where, str(unknown[0])),
                              f"unknown {self.key}; expected only: {', '.join(self.names)}")
        if self.exact and len(data) != len(self.names):
            raise SchemaError(path, where, f"got {_shown(data)}; expected {self.shape}")
        values = {}
        for f in self.fields:
            if f.name in data:
                values[f.name] = f.read(data[f.name], path, f"{where}.{f.name}" if where else f.name)
            elif f.required:
                raise SchemaError(path, _at(where, f.name), f"missing (required): {f.doc}")
            else:
                values[f.name] = f.kind.empty
        return values


def matches(pattern: str, expected: str) -> Callable[[str], str | None]:
    """A rule: the text matches ``pattern`` (a regex), else ``got ...; expected <expected>``."""
    compiled = re.compile(pattern)
    return lambda text: None if compiled.match(text) else f"got {text!r}; expected {expected}"


def fields_markdown(schema: Schema, skip: tuple[Schema, ...] = ()) -> str:
    """The declaration as Markdown tables: field, type, required, meaning; then one table per
    nested mapping (``headline_results[]``), except those in ``skip`` (shown on their own).

    Examples:
        >>> demo = Schema("demo", (Field("id", Text(), "what names it", required=True),))
        >>> print(fields_markdown(demo))
        | field | type | required | meaning |
        | --- | --- | --- | --- |
        | `id` | text, one line | yes | what names it |
        <BLANKLINE>
    """
    lines = _table(schema)
    shown: dict[Schema, list[str]] = {}  # a mapping used in several places (an outline item) gets one table
    for label, nested in _nested(schema, "", skip):
        shown.setdefault(nested, []).append(f"`{label}`")
    for nested, labels in shown.items():
        lines += ["", f"**{', '.join(labels)}**: {nested.title}", "", *_table(nested)]
    return "\n".join(lines) + "\n"


def _table(schema: Schema) -> list[str]:
    rows = ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
    for f in schema.fields:
        kind = f.kind.name + (", or null" if f.null else "")
        rows.append(f"| `{f.name}` | {kind} | {'yes' if f.required else 'no'} | {f.doc} |")
    return rows


def _nested(schema: Schema, prefix: str, skip: tuple[Schema, ...]) -> list[tuple[str, Schema]]:
    """``(label, schema)`` of every mapping inside ``schema``, depth first: ``outline.figures[]``."""
    found = []
    for f in schema.fields:
        for inner in f.kind.nested():
            if inner in skip:
                continue
            label = prefix + f.name + ("[]" if isinstance(f.kind, ListOf) else "")
            found += [(label, inner), *_nested(inner, label + ".", skip)]
    return found
