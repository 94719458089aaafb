"""Cache keys for what the site build executes: notebooks and build-time figures.

A notebook or a figure module is re-run only when something it depends on changes. Its key is a
SHA-256 over:

- the file's own bytes;
- the source of every module of this project (``refimpl``, ``paper_notes``) it imports,
  transitively: import statements found by reading the code (``ast``), relative imports resolved,
  a package's ``__init__.py`` included with each of its submodules;
- the data files that it or any module it imports declares it reads (a module-level ``INPUTS``
  tuple of project-relative paths: a recorded run, ``papers/`` for figures of a paper's tables);
- the versions of Python and of every third-party distribution imported on the way (``torch``,
  ``matplotlib``, ``skimage`` ...), plus the packages that execute or draw (nbclient, matplotlib ...).

Imports are found statically, so an import built from a string at run time
(``importlib.import_module(name)``) is not seen; the project's notebooks and figures import by name.

The cache itself lives in ``.cache/site/`` under the project root (ignored by git):
``notebooks/<key>.ipynb`` is one executed notebook ([`paper_notes.notebooks`][paper_notes.notebooks]),
and ``figures/<key>/`` holds one figure module's SVG files.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import platform
import sys
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

PROJECT_PACKAGES = ("refimpl", "paper_notes")
"""Top-level packages of this repository: their source is part of a key; others count by version."""

CACHE_DIR = Path(".cache") / "site"
"""The cache folder, relative to the project root."""

NOTEBOOK_RENDERERS = ("nbclient", "nbformat", "jupytext", "ipykernel")
"""Distributions that read and execute a notebook (its Markdown is rendered anew at every build)."""

FIGURE_RENDERERS = ("matplotlib",)
"""Distributions that draw a figure and write its SVG."""


def module_path(name: str, root: Path) -> Path | None:
    """The source file of project module ``name`` under ``root`` (``None`` if it is not one)."""
    parts = name.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, root: Path) -> str | None:
    """``refimpl.kan`` for ``root/refimpl/kan.py``; ``None`` for a file outside the project packages."""
    try:
        parts = list(path.resolve().relative_to(root.resolve()).with_suffix("").parts)
    except ValueError:
        return None
    if not parts or parts[0] not in PROJECT_PACKAGES:
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_names(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """Absolute names of everything ``source`` imports, anywhere in it (functions included).

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule); relative
    imports are resolved against ``module`` (the importing module's name).

    Raises:
        ValueError: if ``source`` is not valid Python.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"cannot read the imports of {module or 'a file'}: {exc}") from None
    package = (module or "") if is_package else (module or "").rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*")
    return names


def declared_inputs(path: Path) -> tuple[str, ...]:
    """A module's ``INPUTS``: project-relative paths (string literals) of the data files it reads.

    Read from the source without importing it; a module that imports this one depends on them too.

    Raises:
        ValueError: if ``INPUTS`` is not a tuple of strings.
    """
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "INPUTS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                raise ValueError(f"{path}: INPUTS must be a tuple of path strings, got {value!r}")
            return value
    return ()


_PARSED: dict[tuple[str, int, int, str | None], tuple[set[str], tuple[str, ...]]] = {}


def _parse_file(path: Path, name: str | None) -> tuple[set[str], tuple[str, ...]]:
    """``(imported names, declared inputs)`` of a file, read once per version of it (``mkdocs serve``
    keys every notebook and figure module at every rebuild)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, name)
    if key not in _PARSED:
        imports = imported_names(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
        _PARSED[key] = (imports, declared_inputs(path))
    return _PARSED[key]


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: importing a submodule runs its packages' ``__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def dependencies(path: Path, root: Path) -> tuple[list[Path], set[str]]:
    """Project source files ``path`` depends on (itself first) and the top-level names of other imports.

    Returns:
        ``(files, external)``: every project module reached through imports, transitively, and the
        top-level names of the non-project modules imported along the way (stdlib included).
    """
    path = path.resolve()
    files: list[Path] = [path]
    seen = {path}
    external: set[str] = set()
    todo = [path]
    own = _module_name(path, root)
    for parent in _with_parents(own)[:-1] if own else []:  # importing a module runs its packages first
        found = module_path(parent, root)
        if found is not None and found.resolve() not in seen:
            seen.add(found.resolve())
            files.append(found.resolve())
            todo.append(found.resolve())
    while todo:
        current = todo.pop()
        name = _module_name(current, root)
        for imported in sorted(_parse_file(current, name)[0]):
            top = imported.partition(".")[0]
            if top not in PROJECT_PACKAGES:
                external.add(top)
                continue
            for candidate in _with_parents(imported):
                found = module_path(candidate, root)
                if found is not None and found.resolve() not in seen:
                    seen.add(found.resolve())
                    files.append(found.resolve())
                    todo.append(found.resolve())
    return files, external


@lru_cache(maxsize=1)
def _distributions_by_module() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in importlib.metadata.packages_distributions().items()}


def versions(top_level_names: Iterable[str], distributions: Iterable[str] = ()) -> dict[str, str]:
    """``{distribution: version}`` for the installed distributions that provide these module names.

    Standard-library modules and names no distribution provides are left out; ``distributions``
    are added by name (a missing one is recorded as ``"not installed"``).
    """
    by_module = _distributions_by_module()
    names = set(distributions)
    for top in top_level_names:
        if top in sys.stdlib_module_names:
            continue
        names.update(by_module.get(top, ()))
    return {dist: _version(dist) for dist in sorted(names)}


@lru_cache(maxsize=None)
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _hash_inputs(hasher: hashlib._Hash, inputs: Sequence[Path], root: Path) -> None:
    for item in inputs:
        paths = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for p in paths:
            hasher.update(f"\0input {p.resolve().relative_to(root.resolve()).as_posix()}\0".encode())
            hasher.update(p.read_bytes() if p.exists() else b"<missing>")


def fingerprint(path: Path, root: Path, *, renderers: Iterable[str] = (), inputs: Sequence[Path] = (),
                extra: str = "") -> str:
    """The cache key of ``path`` (a notebook or a module): see the module docstring for what it covers.

    Args:
        path: the notebook (jupytext ``.py``) or module whose output is cached.
        root: the project root (the folder holding ``refimpl/`` and ``paper_notes/``).
        renderers: distributions that turn the code into output, added to the versions.
        inputs: data files or folders the code reads, besides those its modules declare in ``INPUTS``.
        extra: anything else the output depends on (e.g. the renderer's options).

    Returns:
        A 64-character hex digest.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` or a module it imports is not valid Python.
    """
    root = root.resolve()
    files, external = dependencies(path, root)
    declared = [root / rel for f in files for rel in _parse_file(f, _module_name(f, root))[1]]
    inputs = list(dict.fromkeys([*inputs, *declared]))
    hasher = hashlib.sha256()
    hasher.update(f"python {platform.python_implementation()} {sys.version}\0".encode())
    for f in files:
        try:
            rel = f.relative_to(root).as_posix()
        except ValueError:
            rel = f.name
        hasher.update(f"\0source {rel}\0".encode())
        hasher.update(f.read_bytes())
    _hash_inputs(hasher, inputs, root)
    hasher.update(json.dumps(versions(external, renderers), sort_keys=True).encode())
    hasher.update(f"\0extra {extra}".encode())
    return hasher.hexdigest()


def cache_dir(root: Path, kind: str) -> Path:
    """``root/.cache/site/<kind>``, the cache of one kind of output (``notebooks``, ``figures``)."""
    return root / CACHE_DIR / kind
