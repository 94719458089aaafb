"""Reading the project's YAML strictly: every mistake is a [`SchemaError`][paper_notes.yamlio.SchemaError]
naming the file and the field.

PyYAML alone lets three mistakes through or turns them into tracebacks:

- a key written twice (``status: read`` then ``status: reading``): the last one silently wins;
- a date that is not a date (``added: 2024-13-45``): ``ValueError: month must be in 1..12``,
  with no file or field;
- ``.nan`` or ``.inf`` where a number belongs: accepted;
- anchors and aliases (``&a`` / ``*a``): a few hundred bytes of nested aliases expand to
  billions of values (an "alias bomb"), and ``title: &t [*t]`` is a value that contains itself.
  No file of ours needs them, so they are refused, from the parser's events, before anything
  is built or walked.

[`load_yaml`][paper_notes.yamlio.load_yaml] first composes the document (PyYAML's node tree,
with line numbers and no values built yet), walks it for those three, and only then builds the
Python values from that same tree. It parses with libyaml when PyYAML has it (about 15 times
faster: ``mkdocs serve`` reads every paper on each rebuild); a document that is not valid YAML is
parsed again in pure Python, whose message shows the offending line. [`read_text`][paper_notes.yamlio.read_text]
turns a file that is not UTF-8, or that cannot be read, into the same kind of error. What the values
must be is declared in [`schema`][paper_notes.schema].
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from refimpl.paths import path_problem

__all__ = ["SchemaError", "load_yaml", "read_text"]

class SchemaError(ValueError):
    """A file under ``papers/`` or ``docs/journal/``, or the glossary, does not match its schema.

    The message always starts with the file path and names the offending field; it ends with the
    field's line in the file where that is known (see [`at_line`][paper_notes.yamlio.SchemaError.at_line]).
    """

    def __init__(self, path: Path | str, field_name: str | None, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.field = field_name
        self.message = message
        self.line = line
        where = f"{path}: field '{field_name}'" if field_name else f"{path}"
        super().__init__(f"{where}: {message}" + (f" (line {line})" if line is not None else ""))

    def at_line(self, lines: dict[str, int]) -> SchemaError:
        """This error with the line of its field (or of the nearest mapping or item around it), from
        the ``lines`` that [`load_yaml`][paper_notes.yamlio.load_yaml] filled in."""
        field = self.field or ""
        while field and field not in lines:  # a missing key: the line of the mapping that lacks it
            parent = _LAST_STEP.sub("", field)
            field = parent if parent != field else ""
        if self.line is not None or not field:
            return self
        return SchemaError(self.path, self.field, self.message, lines[field])


_LAST_STEP = re.compile(r"(?:\.[^.\[\]]+|\[\d+\])$")
"""The last step of a field's place in a document: ``.gist`` in ``outline.figures[1].gist``, or ``[1]``."""


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_FLOAT = "tag:yaml.org,2002:float"


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8.

    Raises:
        SchemaError: if the file is not UTF-8, naming the file and the first bad byte; if the
            path is not a readable regular file (a folder, a FIFO whose read would wait forever,
            ``/dev/null``, a link loop), saying which; or if reading it fails (with the reason).
    """
    problem = path_problem(path, kind="file")
    if problem is not None:
        raise SchemaError(path, None, problem)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SchemaError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(path, None, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                      f"expected a file saved as UTF-8") from None


def load_yaml(text: str, path: Path, line_offset: int = 0, lines: dict[str, int] | None = None) -> Any:
    """Parse ``text`` (the contents of ``path``) as YAML, refusing repeated keys, impossible dates and NaN.

    Args:
        text: the YAML document.
        path: where it comes from, for messages.
        line_offset: lines before ``text`` in the file (front matter starts on line 2).
        lines: if given, filled with the line of every key and list item, by its place in the
            document (``status``, ``outline.figures[3]``): for [`SchemaError.at_line`][paper_notes.yamlio.SchemaError.at_line].

    Returns:
        The document as plain Python values (``None`` for an empty one).

    Raises:
        SchemaError: naming ``path`` and the field, for invalid YAML, a repeated key, a date that
            does not exist, a non-finite number, or an anchor or alias (naming its line).
    """
    try:
        return _load(text, path, line_offset, getattr(yaml, "CSafeLoader", yaml.SafeLoader), lines)
    except yaml.YAMLError:  # again in pure Python: its message quotes the line; libyaml's does not
        try:
            return _load(text, path, line_offset, yaml.SafeLoader, lines)
        except yaml.YAMLError as exc:
            raise SchemaError(path, None, f"is not valid YAML: {_yaml_error(exc, text, line_offset)}") from None


def _yaml_error(exc: yaml.YAMLError, text: str, line_offset: int) -> str:
    """PyYAML's message on one line: what, where in the file, and the line it started on, quoted."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    what = f"{context}, {exc.problem}" if context else str(exc.problem)  # type: ignore[attr-defined]
    where = f"line {mark.line + 1 + line_offset}, column {mark.column + 1}"
    start = getattr(exc, "context_mark", None) or mark  # an unclosed bracket: the line that opened it
    lines = text.splitlines()
    quoted = lines[start.line].strip() if start.line < len(lines) else ""
    return f"{what} ({where}{f': {quoted!r}' if quoted else ''})"


def _refuse_aliases(text: str, path: Path, line_offset: int, loader_class: type) -> None:
    """Refuse the first anchor or alias, from the parser's events: before a node is built or walked."""
    if "&" not in text and "*" not in text:  # neither can be written without one of these
        return
    loader = loader_class(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            name = event.anchor if isinstance(event, yaml.NodeEvent) else None
            if name is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                line = event.start_mark.line + 1 + line_offset
                raise SchemaError(path, None, f"uses the YAML {'alias' if sign == '*' else 'anchor'} "
                                              f"'{sign}{name}' (line {line}); expected plain values "
                                              f"(anchors and aliases are not used in these files)")
    finally:
        loader.dispose()


def _load(text: str, path: Path, line_offset: int, loader_class: type, lines: dict[str, int] | None) -> Any:
    _refuse_aliases(text, path, line_offset, loader_class)
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_node(root, path, "", line_offset, loader, {} if lines is None else lines)
        return loader.construct_document(root)  # checked: building the values cannot fail
    finally:
        loader.dispose()


def _check_node(node: yaml.Node, path: Path, field: str, line_offset: int, loader: Any, lines: dict[str, int]) -> None:
    line = node.start_mark.line + 1 + line_offset
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            key_line = key.start_mark.line + 1 + line_offset
            child = f"{field}.{name}" if field else name
            if name in seen:
                raise SchemaError(path, child, f"appears twice (lines {seen[name]} and {key_line}); "
                                               f"expected each key once (YAML would keep only the last)")
            seen[name] = lines[child] = key_line
            _check_node(value, path, child, line_offset, loader, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[f"{field}[{index}]"] = item.start_mark.line + 1 + line_offset
            _check_node(item, path, f"{field}[{index}]", line_offset, loader, lines)
    elif node.tag == _TIMESTAMP:
        try:
            loader.construct_yaml_timestamp(node)
        except ValueError as exc:
            raise SchemaError(path, field or None, f"got {node.value!r} (line {line}), which is not a real date "
                                                   f"({exc}); expected YYYY-MM-DD") from None
    elif node.tag == _FLOAT:
        number = loader.construct_yaml_float(node)
        if not math.isfinite(number):
            raise SchemaError(path, field or None, f"got {node.value!r} (line {line}); expected a finite number")

