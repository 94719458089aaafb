"""MkDocs hooks (``hooks:`` in ``mkdocs.yml``): validation, citations, offline math, the feed.

- ``on_config``: load ``papers/``, ``glossary.yaml`` and every diary entry through the same
  validators as ``notes check`` (a bad file fails the build with its path and field); the blog's
  allowed categories become the paper ids; glossary terms join jieba's dictionary so Chinese
  search segments them as words. Notebook kernels import this checkout's ``refimpl``.
- ``on_files``: MathJax 3 (from the ``sphinx-mathjax-offline`` wheel) is added to the site under
  ``assets/mathjax/``, so math renders with no request to another host.
- ``on_page_markdown``: ``[@id]`` citations become links to the reading list plus a reference list;
  ``<!-- results: ... -->`` and ``<!-- related-entries: ... -->`` markers become a paper's numbers and
  the diary entries that discuss a paper or link to the page.
- ``on_files``: also the diary's Atom feed, ``journal/feed.xml``, built from the validated entries.
- ``on_startup``: under ``mkdocs serve``, rebuilds reuse unchanged API blocks and search entries
  (``paper_notes.rebuild_memo``).
- ``on_post_build``: the search worker cuts a query's Chinese into words as jieba cut the index
  (``paper_notes.search``).
- ``on_files`` / ``on_page_read_source``: each ``docs/notebooks/*.py`` (jupytext) is a Markdown page
  at ``notebooks/<name>/``, executed (or taken from ``.cache/site/notebooks``) and written as
  Markdown by [`paper_notes.notebooks`][paper_notes.notebooks], so it goes through the same
  Markdown path as every page: citations, references, math, glossary tooltips, links. Its source
  is published beside it for download. ``extra.notebooks.execute`` in ``mkdocs.yml`` turns
  execution off (quick builds of a copy in tests).
- References to a paper's items (``[@hiera, 图 4]``) are resolved against ``outline`` in
  ``papers/<id>.yaml`` with the citations ([`references`][paper_notes.references]); one that does not
  resolve fails the build, naming the page, the paper and the item.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import logging
import os
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

from markupsafe import Markup
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

from paper_notes import rebuild_memo, search
from paper_notes.journal import EXCERPT_SEPARATOR, Entry
from paper_notes.notebooks import NOTEBOOKS, TIMEOUT_S, NotebookError, execute, to_markdown
from paper_notes.project import Project, load_project
from paper_notes.references import UnresolvedReference
from paper_notes.registry import SchemaError
from paper_notes.site import CITATION, atom_feed, cite, expand_related_entries, expand_results

log = logging.getLogger("mkdocs.hooks.paper_notes")

MATHJAX_DEST = "assets/mathjax"
JOURNAL = "journal"
FEED = f"{JOURNAL}/feed.xml"

_state: dict[str, Any] = {}


def _project() -> Project:
    return _state["project"]


def on_startup(command: str, dirty: bool) -> None:
    """``mkdocs serve``: rebuilds reuse what did not change (``paper_notes.rebuild_memo``)."""
    if command == "serve":
        rebuild_memo.enable()


@event_priority(100)  # before the blog and search plugins read their configuration
def on_config(config: Any) -> Any:
    root = Path(config.config_file_path).resolve().parent
    try:
        project = load_project(root)
    except (SchemaError, FileNotFoundError) as exc:
        raise PluginError(f"paper-notes: {exc}") from None
    _state.clear()
    _state.update(project=project, root=root)
    _use_this_checkout(root)
    rebuild_memo.new_build(root)
    notebooks = config.extra.get("notebooks") or {}
    _state["execute"] = bool(notebooks.get("execute", True))
    timeout = notebooks.get("timeout_s", TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise PluginError(f"paper-notes: mkdocs.yml extra.notebooks.timeout_s is {timeout!r}; "
                          f"expected a positive number of seconds (default {TIMEOUT_S})")
    _state["timeout_s"] = timeout

    blog = config.plugins.get("material/blog")
    if blog is not None:
        blog.config.categories_allowed = list(project.papers)

    try:
        import jieba
    except ImportError:  # search then indexes Chinese runs as whole words; still builds
        jieba = None
    if not any(name in config.plugins for name in ("search", "material/search")):
        jieba = None  # nothing to segment for (a small test site): skip loading jieba's dictionary
    if jieba is not None:
        jieba.setLogLevel(logging.WARNING)
        words = {form for term in project.glossary for form in term.surface_forms}
        words |= {tag for entry in project.entries for tag in entry.tags}
        search.add_words(words)
    _state["jieba"] = jieba is not None
    return config


def _use_this_checkout(root: Path) -> None:
    """Make this checkout's ``refimpl``/``paper_notes`` the ones imported by the figures (this
    process) and by notebook kernels (child processes), whichever checkout the venv was installed from."""
    if sys.path[:1] != [str(root)]:
        sys.path.insert(0, str(root))
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if paths[:1] != [str(root)]:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *[p for p in paths if p and p != str(root)]])


def _mathjax_dir() -> Path:
    dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    path = Path(str(dist.locate_file("sphinx-mathjax-offline/static/mathjax")))
    if not (path / "tex-svg.js").is_file():
        raise PluginError(f"paper-notes: MathJax files not found at {path}; reinstall the docs extra")
    return path


def post_url(entry: Entry) -> str:
    """Site-relative URL of a diary entry; ``post_url_format: "{file}"`` in mkdocs.yml."""
    return f"{JOURNAL}/{entry.path.stem}/"


def feed_xml(project: Project) -> str:
    """The Atom feed of all entries, links relative to ``journal/feed.xml``."""
    items = []
    for entry in project.entries:  # newest first
        excerpt = entry.body.split(EXCERPT_SEPARATOR, 1)[0]
        excerpt = re.sub(r"^#.*$", "", excerpt, flags=re.M)  # the title heading
        excerpt = CITATION.sub("", excerpt)
        excerpt = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", excerpt)  # links -> their text
        url = posixpath.relpath(post_url(entry), JOURNAL) + "/"
        items.append((entry.title, url, entry.date, " ".join(excerpt.split()), list(entry.papers)))
    return atom_feed(items, "paper-notes 读论文日记", "feed.xml", "./")


@event_priority(-110)  # after literate-nav (-100) has read the generated SUMMARY.md files
def on_files(files: Files, config: Any) -> Files:
    for file in [f for f in files if posixpath.basename(f.src_uri) == "SUMMARY.md"]:
        files.remove(file)  # nav sources, not pages
    for file in [f for f in files if _is_notebook(f.src_uri)]:
        files.remove(file)
        stem = posixpath.splitext(posixpath.basename(file.src_uri))[0]
        files.append(NotebookFile(file.src_uri, file.src_dir, config.site_dir, config.use_directory_urls,
                                  dest_uri=f"{NOTEBOOKS}/{stem}/index.html"))
        files.append(File.generated(config, f"{NOTEBOOKS}/{stem}/{stem}.py", abs_src_path=file.abs_src_path))
    files.append(File.generated(config, FEED, content=feed_xml(_project())))
    source = _mathjax_dir()
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in (".js", ".json"):
            rel = path.relative_to(source).as_posix()
            files.append(
                File(rel, src_dir=str(source), dest_dir=config.site_dir, use_directory_urls=False,
                     dest_uri=f"{MATHJAX_DEST}/{rel}")
            )
    return files


def _is_notebook(src_uri: str) -> bool:
    return posixpath.dirname(src_uri) == NOTEBOOKS and src_uri.endswith(".py")


class NotebookFile(File):
    """A jupytext notebook of ``docs/notebooks/``, built as a Markdown page (``on_page_read_source``)."""

    def is_documentation_page(self) -> bool:
        return True


def on_page_read_source(page: Any, config: Any) -> str | None:
    """A notebook page's Markdown: the notebook executed (or from the cache), written as Markdown."""
    if not isinstance(page.file, NotebookFile):
        return None
    path = Path(page.file.abs_src_path)
    try:
        executed = execute(path, _state["root"], run=_state["execute"], timeout_s=_state["timeout_s"])
    except NotebookError as exc:
        raise PluginError(f"paper-notes: {exc}") from None
    return to_markdown(executed.notebook, path.name)


def escape_meta_title(page: Any) -> None:
    """A title from front matter (a diary entry's) is plain text: give the templates it HTML-escaped.

    Material's templates print ``page.meta.title`` and ``page.title`` as they are (the ``<title>``,
    the header, the neighbours' footer links, tag listings), so ``<b>x</b>`` or ``A<B`` in a title
    would be HTML there. As ``Markup``, templates that do escape (``| e`` in ``aria-label``) leave it
    as it is rather than escape it twice.
    """
    title = page.meta.get("title") if isinstance(page.meta, dict) else None
    if isinstance(title, str) and not isinstance(title, Markup):
        page.meta["title"] = Markup(html.escape(title))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    escape_meta_title(page)
    src = page.file.src_uri
    try:
        markdown = expand_results(markdown, _project().papers, src)
    except KeyError as exc:
        raise PluginError(
            f"paper-notes: {src} asks for the results table of {exc.args[0]!r}, which is not a paper "
            f"with headline_results in papers/"
        ) from None
    except UnresolvedReference as exc:
        raise PluginError(f"paper-notes: {exc}") from None
    try:
        markdown = expand_related_entries(markdown, _project(), src)
    except KeyError as exc:
        raise PluginError(
            f"paper-notes: {src} asks for the diary entries of {exc.args[0]!r}, which is not a paper id; "
            f"expected one of: {', '.join(_project().papers)}"
        ) from None
    try:
        markdown = cite(markdown, _project().papers, src)
    except UnresolvedReference as exc:  # before KeyError: it is a ValueError, never a KeyError
        raise PluginError(f"paper-notes: {exc}") from None
    except KeyError as exc:
        raise PluginError(
            f"paper-notes: {src} cites unknown paper id {exc.args[0]!r}; "
            f"expected one of: {', '.join(_project().papers)}"
        ) from None
    return markdown


CODE_EMBEDDING_DIRS = ("concepts/", "guides/")
"""Prose pages that embed code with ``:::``; the API reference pages keep their full member lists."""


def _drop_api_entries(items: Any) -> None:
    """Remove mkdocstrings' member headings (ids ``refimpl.…``) from a page's table of contents, in place."""
    items[:] = [item for item in items if not item.id.startswith("refimpl.")]
    for item in items:
        _drop_api_entries(item.children)


def on_page_content(content: str, page: Any, config: Any, files: Files) -> str:
    """Concept pages: a table of contents without API members."""
    if page.file.src_uri.startswith(CODE_EMBEDDING_DIRS):
        _drop_api_entries(page.toc.items)
    return content


@event_priority(-100)  # after the search plugin has written search/search_index.json
def on_post_build(config: Any) -> None:
    """Ship jieba's segmentation of the site's text to the browser and make the search worker use it."""
    site = Path(config.site_dir)
    index_path = site / "search" / "search_index.json"
    if not _state.get("jieba") or not index_path.is_file():
        return
    runs = search.han_runs(json.loads(index_path.read_text(encoding="utf-8")))
    (site / search.SEGMENTER_JS).write_text(search.segmenter_script(search.segmenter_data(runs)), encoding="utf-8")
    workers = sorted((site / "assets/javascripts/workers").glob("search.*.min.js"))
    if len(workers) != 1:
        raise PluginError(f"paper-notes: expected one Material search worker in {site}/assets/javascripts/workers, "
                          f"found {[w.name for w in workers]}")
    script_url = posixpath.relpath(search.SEGMENTER_JS, "assets/javascripts/workers")
    try:
        patched = search.patch_search_worker(workers[0].read_text(encoding="utf-8"), script_url)
    except ValueError as exc:
        raise PluginError(f"paper-notes: {exc}") from None
    workers[0].write_text(patched, encoding="utf-8")
