"""Reading the project's YAML strictly: every mistake is a [`SchemaError`][paper_notes.yamlio.SchemaError]
naming the file and the field.

PyYAML alone lets three mistakes through or turns them into tracebacks:

- a key written twice (``status: read`` then ``status: reading``): the last one silently wins;
- a date that is not a date (``added: 2024-13-45``): ``ValueError: month must be in 1..12``,
  with no file or field;
- ``.nan`` or ``.inf`` where a number belongs: accepted.

[`load_yaml`][paper_notes.yamlio.load_yaml] first composes the document (PyYAML's node tree,
with line numbers and no values built yet), walks it for those three, and only then builds the
Python values from that same tree. It parses with libyaml when PyYAML has it (about 15 times
faster: ``mkdocs serve`` reads every paper on each rebuild); a document that is not valid YAML is
parsed again in pure Python, whose message shows the offending line. [`read_text`][paper_notes.yamlio.read_text] turns a file that is not UTF-8 into
the same kind of error.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["LINE_BREAK", "SchemaError", "load_yaml", "read_text"]

LINE_BREAK = re.compile(r"[\r\n\v\f\x85\u2028\u2029]")
"""Anything YAML or Markdown would take for the end of a line: refused in one-line fields (a title)."""


class SchemaError(ValueError):
    """A file under ``papers/`` or ``docs/journal/``, or the glossary, does not match its schema.

    The message always starts with the file path and names the offending field.
    """

    def __init__(self, path: Path | str, field_name: str | None, message: str) -> None:
        self.path = Path(path)
        self.field = field_name
        where = f"{path}: field '{field_name}'" if field_name else f"{path}"
        super().__init__(f"{where}: {message}")


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_FLOAT = "tag:yaml.org,2002:float"


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8.

    Raises:
        SchemaError: if the file is not UTF-8, naming the file and the first bad byte.
        OSError: if it cannot be read.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(path, None, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                      f"expected a file saved as UTF-8") from None


def load_yaml(text: str, path: Path, line_offset: int = 0) -> Any:
    """Parse ``text`` (the contents of ``path``) as YAML, refusing repeated keys, impossible dates and NaN.

    Args:
        text: the YAML document.
        path: where it comes from, for messages.
        line_offset: lines before ``text`` in the file (front matter starts on line 2).

    Returns:
        The document as plain Python values (``None`` for an empty one).

    Raises:
        SchemaError: naming ``path`` and the field, for invalid YAML, a repeated key, a date that
            does not exist, or a non-finite number.
    """
    try:
        return _load(text, path, line_offset, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:  # again in pure Python: its message quotes the line; libyaml's does not
        try:
            return _load(text, path, line_offset, yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise SchemaError(path, None, f"is not valid YAML: {exc}") from None


def _load(text: str, path: Path, line_offset: int, loader_class: type) -> Any:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_node(root, path, "", line_offset, loader)
        return loader.construct_document(root)  # checked: building the values cannot fail
    finally:
        loader.dispose()


def _check_node(node: yaml.Node, path: Path, field: str, line_offset: int, loader: Any) -> None:
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
            seen[name] = key_line
            _check_node(value, path, child, line_offset, loader)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_node(item, path, f"{field}[{index}]", line_offset, loader)
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

