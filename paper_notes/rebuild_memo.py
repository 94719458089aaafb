"""In-process memos that make ``mkdocs serve`` rebuilds fast; ``mkdocs build`` never uses them.

``mkdocs serve`` rebuilds the whole site after every save, in the same process. Two steps cost
most of a rebuild once notebooks and figures come from ``.cache/site``, and neither changes for a
page whose input did not change:

- mkdocstrings rendering a ``::: identifier`` block (the API pages and the concept pages' embedded
  code): remembered per block, keyed on the identifier, its options, the source of every module
  under ``refimpl/`` and ``paper_notes/`` (with its mkdocstrings templates), ``glossary.yaml`` and
  ``mkdocs.yml``. A hit still
  collects the object (so aliases resolve), gives the same HTML and replays the headings the
  rendering produced, so the table of contents, cross-references and inventory are registered as
  after a real rendering.
- Material's search plugin turning a page into index entries (an HTML parse and jieba over every
  page): remembered per page, keyed on the page's HTML, title, table of contents and metadata and
  on jieba's dictionary.

Only :func:`enable` (called by the plugin's ``on_startup`` for ``serve``) switches them on. Both
wrap another package's methods, one of them private (``AutoDocProcessor._process_block``), so
:func:`enable` first checks that the installed versions are the ones this was written against
([`TESTED`][paper_notes.rebuild_memo.TESTED]) and that the methods are there, and fails with a
message otherwise, as [`search`][paper_notes.search] does for the search worker.

Why it stays (measured on the 2-core machine, ``mkdocs serve``, one line appended to
``docs/concepts/mae.md``; the time from the save to "Documentation built"): with the memo a rebuild
took 8-17 s, without it 58 s, far above the 3 s a live preview should take.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.paper_notes.rebuild_memo")

_inputs = {"key": ""}
_rendered: dict[tuple[str, str, int, str], tuple[str, list[Any]]] = {}
_indexed: dict[str, tuple[tuple[Any, ...], list[dict[str, Any]]]] = {}
_aliases: dict[tuple[str, str], tuple[str, ...]] = {}
_enabled: list[str] = []

TESTED = {"mkdocstrings": "1.0.", "mkdocstrings-python": "2.0.", "mkdocs-material": "9."}
"""Version prefixes of the packages whose methods are wrapped here, as checked by hand."""


def check_versions() -> None:
    """Raise ``RuntimeError`` unless every package of [`TESTED`][paper_notes.rebuild_memo.TESTED] is installed
    at a version it names."""
    for dist, prefix in TESTED.items():
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        if not version.startswith(prefix):
            raise RuntimeError(f"paper_notes/rebuild_memo.py wraps methods of {dist} {prefix}x; installed: {version}; "
                               f"check the wrapped methods against it and update TESTED")


def new_build(root: Path) -> None:
    """Hash what rendered API blocks depend on (called once per build, before the pages)."""
    hasher = hashlib.sha256()
    for path in sorted([*root.glob("refimpl/**/*.py"), *root.glob("paper_notes/**/*.py"),
                        *root.glob("paper_notes/templates/**/*.jinja"), root / "glossary.yaml", root / "mkdocs.yml"]):
        if path.is_file():
            hasher.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    key = hasher.hexdigest()
    if key != _inputs["key"]:
        _rendered.clear()
        _aliases.clear()
    _inputs["key"] = key


def _memoize_mkdocstrings() -> bool:
    try:
        from mkdocstrings._internal.extension import AutoDocProcessor
    except ImportError:
        return False
    original = getattr(AutoDocProcessor, "_process_block", None)
    if original is None or getattr(original, "paper_notes_memo", False):
        return original is not None

    def _process_block(self: Any, identifier: str, yaml_block: str, heading_level: int = 0) -> tuple[Any, Any, Any]:
        import yaml

        key = (identifier, yaml_block, heading_level, _inputs["key"])
        local = yaml.safe_load(yaml_block) or {}
        handler = self._handlers.get_handler(self._handlers.get_handler_name(local))
        if key in _rendered and handler.outer_layer:
            # Collect as a rendering would (griffe loads the package once per build): the headings'
            # aliases, registered for cross-references and the inventory, come from the collection.
            options = dict(local.get("options", {}))
            if heading_level:
                options["heading_level"] = heading_level
            data = handler.collect(identifier, handler.get_options(options))
            html, headings = _rendered[key]
            handler._headings.extend(copy.deepcopy(headings))
            return html, handler, data
        rendered, handler, data = original(self, identifier, yaml_block, heading_level)
        if handler.outer_layer and _inputs["key"]:
            _rendered[key] = (rendered, copy.deepcopy(list(handler._headings)))
        return rendered, handler, data

    _process_block.paper_notes_memo = True  # type: ignore[attr-defined]
    AutoDocProcessor._process_block = _process_block
    return _remember_aliases()


def _remember_aliases() -> bool:
    """Give an object the aliases a full rendering found for it.

    griffe learns an object's aliases as rendering resolves them (the checkpoints page renders
    ``refimpl.checkpoints.MaskedAutoencoderViT``, an alias of ``refimpl.mae.MaskedAutoencoderViT``);
    a block served from the memo renders nothing, so the aliases seen for an identifier under the
    same inputs are remembered and added back (cross-references and ``objects.inv`` stay the same).
    """
    try:
        from mkdocstrings_handlers.python import PythonHandler
    except ImportError:
        return False
    original = getattr(PythonHandler, "get_aliases", None)
    if original is None:
        return False
    if getattr(original, "paper_notes_memo", False):
        return True

    def get_aliases(self: Any, identifier: str) -> tuple[str, ...]:
        key = (_inputs["key"], identifier)
        merged = tuple(dict.fromkeys((*original(self, identifier), *_aliases.get(key, ()))))
        _aliases[key] = merged
        return merged

    get_aliases.paper_notes_memo = True  # type: ignore[attr-defined]
    PythonHandler.get_aliases = get_aliases
    return True


def _toc_key(items: Any) -> tuple[Any, ...]:
    return tuple((item.id, item.url, item.title, _toc_key(item.children)) for item in items)


def _memoize_search() -> bool:
    try:
        from material.plugins.search.plugin import SearchIndex
    except ImportError:
        return False
    original = getattr(SearchIndex, "add_entry_from_context", None)
    if original is None or getattr(original, "paper_notes_memo", False):
        return original is not None

    def add_entry_from_context(self: Any, page: Any) -> None:
        try:
            import jieba

            dictionary = jieba.dt.total
        except ImportError:
            dictionary = None
        meta = repr({k: page.meta.get(k) for k in ("search", "tags", "title")})
        key = (hashlib.sha256((page.content or "").encode()).hexdigest(), page.title, meta, _toc_key(page.toc),
               dictionary)
        known = _indexed.get(page.url)
        if known is not None and known[0] == key:
            self.entries.extend(copy.deepcopy(known[1]))
            return
        start = len(self.entries)
        original(self, page)
        _indexed[page.url] = (key, copy.deepcopy(self.entries[start:]))

    add_entry_from_context.paper_notes_memo = True  # type: ignore[attr-defined]
    SearchIndex.add_entry_from_context = add_entry_from_context
    return True


def enable() -> list[str]:
    """Switch the memos on for this process; returns their names.

    Raises:
        RuntimeError: if a wrapped package is not at a tested version or lacks a wrapped method.
    """
    if not _enabled:
        check_versions()
        for name, install in (("mkdocstrings", _memoize_mkdocstrings), ("search", _memoize_search)):
            if not install():
                raise RuntimeError(f"paper_notes/rebuild_memo.py: the {name} methods it wraps are missing; "
                                   f"update it for the installed version")
            _enabled.append(name)
        log.info("paper-notes: rebuilds reuse unchanged API blocks and search entries (%s)", ", ".join(_enabled))
    return list(_enabled)
