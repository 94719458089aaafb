"""File formats declared once: the table of fields the site shows is the list of keys the parser accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from paper_notes.formats import FORMATS, format_markdown
from paper_notes.journal import FRONT_MATTER
from paper_notes.schema import Schema
from paper_notes.yamlio import SchemaError

from conftest import ROOT


def tables(markdown: str) -> dict[str, set[str]]:
    """The field names of each table, by its label: ``""`` for the first, ``"headline_results[]"`` ..."""
    found: dict[str, set[str]] = {"": set()}
    labels = [""]
    for line in markdown.splitlines():
        if line.startswith("**`"):
            labels = re.findall(r"`([^`]+)`", line.split("**: ")[0])
            found.update({label: set() for label in labels})
        elif match := re.match(r"^\| `([^`]+)` \|", line):
            for label in labels:
                found[label].add(match.group(1))
    return found


def keys_used_by_the_project() -> dict[str, dict[str, set[str]]]:
    """Every key the project's own files write, by format and place (the labels of ``tables``)."""
    used: dict[str, dict[str, set[str]]] = {kind: {} for kind in FORMATS}

    def add(kind: str, label: str, mapping: dict) -> None:
        used[kind].setdefault(label, set()).update(mapping)

    for path in sorted(ROOT.glob("papers/*.yaml")):
        paper = yaml.safe_load(path.read_text(encoding="utf-8"))
        add("paper", "", paper)
        for result in paper.get("headline_results") or []:
            add("paper", "headline_results[]", result)
        outline = paper.get("outline") or {}
        add("outline", "", outline)
        for key in ("sections", "figures", "tables"):
            for item in outline.get(key, []):
                add("outline", f"{key}[]", item)
                if "results" in item:
                    add("outline", f"{key}[].results", item["results"])
    for path in sorted(ROOT.glob("docs/journal/posts/*.md")):
        meta = yaml.safe_load(FRONT_MATTER.match(path.read_text(encoding="utf-8")).group(1))
        add("entry", "", meta)
        if isinstance(meta["date"], dict):
            add("entry", "date", meta["date"])
    for term in yaml.safe_load((ROOT / "glossary.yaml").read_text(encoding="utf-8")):
        add("term", "", term)
    return used


USED = keys_used_by_the_project()


@pytest.mark.parametrize("kind", FORMATS)
def test_every_key_the_projects_files_write_is_in_the_table_of_its_format(kind: str) -> None:
    shown = tables(format_markdown(kind))
    for label, keys in USED[kind].items():
        assert keys <= shown[label], (kind, label, keys - shown[label])


def nested(schema: Schema) -> dict[str, Schema]:
    """``schema`` and the mappings inside it that are not formats of their own, by table label."""
    found = {"": schema}
    for field in schema.fields:
        for inner in field.kind.nested():
            if inner not in FORMATS.values():
                label = field.name + ("[]" if hasattr(field.kind, "item") else "")
                found.update({f"{label}.{k}" if k else label: v for k, v in nested(inner).items()})
    return found


@pytest.mark.parametrize("kind", FORMATS)
def test_the_parser_accepts_every_field_of_the_table_and_refuses_any_other(kind: str, tmp_path: Path) -> None:
    shown = tables(format_markdown(kind))
    for label, schema in nested(FORMATS[kind]).items():
        assert shown[label], (kind, label)
        for name in shown[label]:  # a key in the table is never "unknown" ...
            with pytest.raises(SchemaError) as error:
                schema.parse({name: object()}, tmp_path / "f.yaml")
            assert "unknown" not in str(error.value), (kind, label, name, str(error.value))
        with pytest.raises(SchemaError, match=r"field 'colour': unknown"):  # ... and one outside it is
            schema.parse({"colour": "red"}, tmp_path / "f.yaml")


def test_an_unknown_format_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="expected one of paper, outline, entry, term"):
        format_markdown("bibliography")
