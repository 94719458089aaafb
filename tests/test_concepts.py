"""Concept pages read as explanations: each section embeds the one tested function or method it
explains, the page opens with its key points and ends with the diary entries that asked."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import inspect
import re
from pathlib import Path

import pytest

from paper_notes.journal import Entry
from paper_notes.project import Project, load_project
from paper_notes.site import expand_related_entries, related_entries

from conftest import ROOT

CONCEPTS = sorted(p for p in (ROOT / "docs/concepts").glob("*.md") if p.name != "index.md")
EMBED = re.compile(r"^::: (\S+)\n((?:[ \t]+.*\n?)*)", re.M)
# The other test modules: this one names functions in its own docstrings, which tests nothing.
TEST_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py")
                      if p.name != "test_concepts.py")


def embeds(page: Path) -> list[tuple[str, str]]:
    """``(identifier, options block)`` of every ``:::`` embed on ``page``."""
    return EMBED.findall(page.read_text(encoding="utf-8"))


def resolve(identifier: str) -> tuple[object, object | None]:
    """``(object, owning class or None)`` for a dotted path such as ``refimpl.mae.MaskedAutoencoderViT.forward``."""
    parts = identifier.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        owner = None
        for name in parts[split:]:
            owner, obj = obj, inspect.getattr_static(obj, name)
        return obj, owner if inspect.isclass(owner) else None
    raise ImportError(identifier)


def named_by_a_test(name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", TEST_TEXT) is not None


@functools.cache
def _refimpl_functions() -> list[tuple[object, str]]:
    """``(function, source)`` of every function and method written in ``refimpl``."""
    import pkgutil

    import refimpl

    found = []
    for info in pkgutil.walk_packages(refimpl.__path__, "refimpl."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module):
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                found.append(obj)
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                found += [f for f in vars(obj).values() if inspect.isfunction(f)]
    sources = []
    for function in found:
        try:
            sources.append((function, inspect.getsource(function)))
        except OSError:  # generated (a dataclass's __init__): nothing written to call from
            pass
    return sources


def _called_name(function: object) -> str:
    """The name a caller writes: a function's or method's own, a class's for ``forward`` (``module(x)``)."""
    return function.__qualname__.split(".")[-2] if function.__name__ == "forward" else function.__name__


def reached_by_a_test(function: object, depth: int = 3) -> bool:
    """A test names it, or (up to ``depth`` steps) a ``refimpl`` function that calls or builds it is reached."""
    name = _called_name(function)
    if named_by_a_test(name):
        return True
    if depth == 0:
        return False
    calls = re.compile(rf"\b{re.escape(name)}\(")
    return any(reached_by_a_test(f, depth - 1) for f, source in _refimpl_functions()
               if f is not function and calls.search(source))


def test_every_concept_page_embeds_functions_and_methods_never_whole_classes_or_modules() -> None:
    found = 0
    for page in CONCEPTS:
        for identifier, options in embeds(page):
            found += 1
            obj, _ = resolve(identifier)
            assert inspect.isfunction(obj), f"{page.name}: ::: {identifier} is a {type(obj).__name__}; embed one " \
                                            f"function or method and link the class's API page"
            # Without its heading the API page stays the object's one primary anchor (strict build),
            # and the template renders the short form (signature, summary, 查看源码).
            assert "show_root_heading: false" in options and "show_root_toc_entry: false" in options, identifier
    assert found >= 5 * 3


def test_every_embedded_function_is_reached_by_a_named_test() -> None:
    """An embed is named by a test (a ``forward`` by its class: a module is called), or is called or
    built by refimpl code that is (``forward_loss`` from ``forward``, a layer from the model that holds it)."""
    missing = [f"{page.name}: {identifier}" for page in CONCEPTS for identifier, _ in embeds(page)
               if not reached_by_a_test(resolve(identifier)[0])]
    assert not missing, f"embedded but no test names or reaches it: {missing}"


@pytest.mark.parametrize("page", CONCEPTS, ids=lambda p: p.stem)
def test_a_concept_page_opens_with_its_key_points_and_ends_with_its_diary_entries(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    top = re.match(r"# [^\n]+\n\n!!! abstract \"本页要点\"\n\n((?:    .*\n|\n)+)", text)
    assert top, f"{page.name}: expected '!!! abstract \"本页要点\"' right under the title"
    bullets = re.findall(r"^    - ", top.group(1), re.M)
    assert 3 <= len(bullets) <= 6, f"{page.name}: {len(bullets)} key points; expected 3 to 6"
    last = text.rsplit("\n## ", 1)[1]
    assert re.match(r"相关日记 \{ #related-entries \}\n\n<!-- related-entries: [a-z0-9 -]+ -->\n*$", last), \
        f"{page.name}: expected a last section '## 相关日记' holding only the related-entries marker"


def _entry(root: Path, name: str, papers: tuple[str, ...], body: str = "") -> Entry:
    date = dt.date.fromisoformat(name[:10])
    return Entry(path=root / "docs/journal/posts" / f"{name}.md", title=f"title {name[11:]}", date=date,
                 papers=papers, tags=(), body=body)


def test_related_entries_are_those_of_the_pages_papers_or_linking_the_page_newest_first(tmp_path: Path) -> None:
    real = load_project(ROOT)
    entries = [  # newest first, as load_entries gives them
        _entry(tmp_path, "2024-11-03-links", ("vit",), "see [the page](../../concepts/hiera.md#unroll)"),
        _entry(tmp_path, "2024-11-02-both", ("hiera",), "[again](../../concepts/hiera.md)"),
        _entry(tmp_path, "2024-11-01-kan", ("kan",), "[other page](../../concepts/kan.md) [site](https://x.org/concepts/hiera.md)"),
        _entry(tmp_path, "2024-10-31-hiera", ("hiera", "mae")),
    ]
    project = Project(root=tmp_path, papers=real.papers, glossary=[], entries=entries)
    text = related_entries(project, ["hiera"], "concepts/hiera.md")
    assert text.splitlines() == [
        "- 2024-11-03 [title links](../journal/posts/2024-11-03-links.md)（链接到本页）",
        "- 2024-11-02 [title both](../journal/posts/2024-11-02-both.md)（Hiera；链接到本页）",
        "- 2024-10-31 [title hiera](../journal/posts/2024-10-31-hiera.md)（Hiera）",
    ]
    assert related_entries(project, ["sam2"], "concepts/sam2.md") == "还没有日记。\n"
    page = "# Hiera\n\n## 相关日记\n\n<!-- related-entries: hiera mae -->\n"
    assert expand_related_entries(page, project, "concepts/hiera.md").endswith(
        "- 2024-10-31 [title hiera](../journal/posts/2024-10-31-hiera.md)（Hiera、MAE）\n")


def test_related_entries_refuse_an_unknown_paper_id() -> None:
    with pytest.raises(KeyError, match="bert"):
        expand_related_entries("<!-- related-entries: mae bert -->\n", load_project(ROOT), "concepts/mae.md")


def test_the_real_diary_is_listed_on_the_pages_its_entries_link_to() -> None:
    project = load_project(ROOT)
    hiera = related_entries(project, ["hiera"], "concepts/hiera.md")
    assert "[Hiera 图 4：终于弄懂了](../journal/posts/2026-11-25-hiera-figure4-understood.md)（Hiera；链接到本页）" in hiera
    vit = related_entries(project, ["vit"], "concepts/vit.md")
    assert vit.splitlines() == ["- 2024-10-26 [MAE 图 1：架构一览](../journal/posts/2024-10-26-mae-figure1.md)（ViT）"]
