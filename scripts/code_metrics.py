"""The shape of the code, measured: what issue 24's note reports before and after a redesign.

Run from the repository root (or pass one): ``python scripts/code_metrics.py [ROOT]``. Prints
Markdown tables:

- the largest functions of ``refimpl`` and ``paper_notes`` (lines from ``def`` to the last line,
  and without the docstring; parameters without ``self``/``cls``);
- import arrows between the two packages and towards the anchors, and the import cycles inside
  each package (strongly connected components of the module graph, imports inside functions
  included, imports under ``if TYPE_CHECKING:`` left out: they exist for annotations and never run);
- the site tooling's mechanisms as ``mkdocs.yml`` wires them (hooks, plugins, Markdown
  extensions, gen-files scripts of our own) and the places that replace another package's
  private attribute.

Static only: nothing under ``ROOT`` is imported, so an old checkout can be measured from a new
one. How often each input is checked per public call is measured at run time by
``tests/test_checked_once.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

PACKAGES = ("refimpl", "paper_notes")
ANCHORS = ("transformers", "timm", "hiera", "kan", "sam2", "carvekit", "py_sod_metrics", "pycocotools")


def modules(root: Path) -> dict[str, Path]:
    """Every module of the two packages by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def functions(tree: ast.AST, prefix: str) -> list[tuple[str, int, int, int]]:
    """``(qualified name, lines, lines without the docstring, parameters)`` of every function and method in ``tree``."""
    out = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{scope}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = child.args
                params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                params = [p for p in params if p not in ("self", "cls")]
                first = child.body[0]
                doc = (first.end_lineno - first.lineno + 1 if isinstance(first, ast.Expr)
                       and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str) else 0)
                lines = child.end_lineno - child.lineno + 1
                out.append((f"{scope}{child.name}", lines, lines - doc, len(params)))
                visit(child, f"{scope}{child.name}.")

    visit(tree, prefix)
    return out


def imports(name: str, path: Path, tree: ast.AST, known: set[str]) -> set[str]:
    """The modules ``name`` imports (absolute dotted names, submodules resolved where they exist)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known]
            out.update(subs or [target])
            if len(subs) < len(node.names) and subs:
                out.add(target)
    out.discard(name)
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks (imports for annotations only never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_patches(tree: ast.AST) -> list[str]:
    """Assignments that replace a private attribute of something else: ``Other._method = ...``."""
    out = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr.startswith("_") and not target.attr.startswith("__"):
                if not (isinstance(target.value, ast.Name) and target.value.id == "self"):
                    out.append(f"{ast.unparse(target)} (line {node.lineno})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and str(node.args[1].value).startswith("_"):
                out.append(f"setattr(..., {node.args[1].value!r}) (line {node.lineno})")
    return out


def site_mechanisms(root: Path) -> list[tuple[str, str]]:
    """What ``mkdocs.yml`` wires in from this repository, one row per mechanism."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((root / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    rows = []
    for hook in config.get("hooks", []):
        tree = ast.parse((root / hook).read_text(encoding="utf-8"))
        events = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("on_")]
        rows.append(("hooks module", f"`{hook}`: {len(events)} events ({', '.join(events)})"))
    for plugin in config.get("plugins", []):
        name, options = (next(iter(plugin.items())) if isinstance(plugin, dict) else (plugin, None))
        if name == "gen-files":
            for script in options["scripts"]:
                rows.append(("gen-files script", f"`{script}`"))
        elif name.startswith("paper-notes") or name.startswith("paper_notes"):
            keys = ", ".join(options or {}) if isinstance(options, dict) else ""
            rows.append(("MkDocs plugin", f"`{name}` (options: {keys or 'none'})"))
    for extension in config.get("markdown_extensions", []):
        name = next(iter(extension)) if isinstance(extension, dict) else extension
        if name.startswith("paper_notes"):
            rows.append(("Markdown extension", f"`{name}`"))
    return rows


def main(argv: list[str]) -> None:
    root = Path(argv[1]) if len(argv) > 1 else Path(".")
    found = modules(root)
    known = set(found)
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in found.items()}

    for package in PACKAGES:
        rows = []
        for name, tree in trees.items():
            if name.split(".")[0] == package:
                rows += [(f"{name}.{q}", *sizes) for q, *sizes in functions(tree, "")]
        rows.sort(key=lambda r: (-r[2], r[0]))
        print(f"\n### Largest functions in `{package}` ({len(rows)} functions), by lines without the docstring\n")
        print("| function | lines | without docstring | parameters |\n| --- | ---: | ---: | ---: |")
        for row in rows[:10]:
            print(f"| `{row[0]}` | {row[1]} | {row[2]} | {row[3]} |")
        over = sum(1 for r in rows if r[1] > 60)
        code_over = sum(1 for r in rows if r[2] > 60)
        print(f"\nFunctions over 60 lines: {over} ({code_over} without their docstrings); most parameters: "
              f"{max(r[3] for r in rows)} (`{max(rows, key=lambda r: r[3])[0]}`)")

    graph = {name: imports(name, found[name], tree, known) for name, tree in trees.items()}
    print("\n### Import arrows\n")
    print("| arrow | count | where |\n| --- | ---: | --- |")
    up = sorted(f"{a} → {b}" for a, bs in graph.items() if a.startswith("refimpl") for b in bs if b.split(".")[0] == "paper_notes")
    anchor = sorted(f"{a} → {b}" for a, bs in graph.items() if a.startswith("refimpl") for b in bs if b.split(".")[0] in ANCHORS)
    print(f"| refimpl → paper_notes (upward) | {len(up)} | {'; '.join(up) or '—'} |")
    print(f"| refimpl → an anchor | {len(anchor)} | {'; '.join(anchor) or '—'} |")
    for package in PACKAGES:
        sub = {a: {b for b in bs if b.split(".")[0] == package} for a, bs in graph.items() if a.split(".")[0] == package}
        found_cycles = cycles(sub)
        text = "; ".join(" ↔ ".join(c) for c in found_cycles) or "—"
        print(f"| cycles inside `{package}` | {len(found_cycles)} | {text} |")

    print("\n### Site tooling mechanisms (as `mkdocs.yml` wires them)\n")
    print("| mechanism | what |\n| --- | --- |")
    for kind, what in site_mechanisms(root):
        print(f"| {kind} | {what} |")
    patches = [(name, p) for name, tree in trees.items() if name.startswith("paper_notes") for p in private_patches(tree)]
    for name, patch in patches:
        print(f"| private attribute replaced | `{name}`: `{patch}` |")
    print(f"\nModules in `paper_notes`: {sum(1 for n in found if n.startswith('paper_notes'))}; "
          f"private attributes replaced: {len(patches)}")


if __name__ == "__main__":
    main(sys.argv)
