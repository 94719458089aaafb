"""The site tooling as one MkDocs plugin, ``paper-notes`` in ``mkdocs.yml``.

What it does, by build step:

- **config**: load ``papers/``, ``glossary.yaml`` and every diary entry through the same validators
  as ``notes check`` (a bad file fails the build with its path and field); the blog's allowed
  categories become the paper ids; glossary terms and tags join jieba's dictionary so Chinese search
  segments them as words; citations, references and the results/related-entries markers become
  Markdown syntax ([`ReferenceExtension`][paper_notes.references.ReferenceExtension],
  [`MarkersExtension`][paper_notes.site.MarkersExtension]); the navigation's ``reading-list/`` and
  ``reference/`` entries are filled with the generated pages. Notebook kernels import this
  checkout's ``refimpl``.
- **files**: the generated pages ([`GENERATED`][paper_notes.plugin.GENERATED]: reading list,
  BibTeX, glossary, API reference, figures, the diary's Atom feed); MathJax 3 (from the
  ``sphinx-mathjax-offline`` wheel) under ``mathjax``, so math renders with no request to another
  host; each ``docs/notebooks/*.py`` (jupytext) as a Markdown page at ``notebooks/<name>/``,
  executed (or taken from ``.cache/site/notebooks``) by [`paper_notes.notebooks`][paper_notes.notebooks],
  its source published beside it.
- **page**: a diary title is escaped once for the templates; concept pages keep API members out of
  their table of contents.
- **post-build**: the search worker cuts a query's Chinese into words as jieba cut the index
  ([`paper_notes.search`][paper_notes.search]).
- **serve**: rebuilds reuse unchanged API blocks and search entries ([`paper_notes.rebuild_memo`][paper_notes.rebuild_memo]).
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
from typing import Any, Callable

from markupsafe import Markup
from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from paper_notes import rebuild_memo, search
from paper_notes.figures import cached_figures
from paper_notes.glossary import render_glossary_page
from paper_notes.journal import EXCERPT_SEPARATOR, Entry
from paper_notes.notebooks import NOTEBOOKS, TIMEOUT_S, NotebookError, execute, to_markdown
from paper_notes.project import Project, load_project
from paper_notes.references import CITATION, ReferenceExtension
from paper_notes.registry import READING_LIST, SchemaError, bibliography
from paper_notes.site import (
    MarkersExtension, api_reference_nav, api_reference_pages, atom_feed, paper_page, reading_list_index,
    reading_list_nav,
)

log = logging.getLogger("mkdocs.plugins.paper_notes")

JOURNAL = "journal"


def post_url(entry: Entry) -> str:
    """Site-relative URL of a diary entry; ``post_url_format: "{file}"`` in mkdocs.yml."""
    return f"{JOURNAL}/{entry.path.stem}/"


def feed_xml(project: Project, feed: str) -> str:
    """The Atom feed of all entries, links relative to the feed at site path ``feed``."""
    home = posixpath.dirname(feed)
    items = []
    for entry in project.entries:  # newest first
        excerpt = entry.body.split(EXCERPT_SEPARATOR, 1)[0]
        excerpt = re.sub(r"^#.*$", "", excerpt, flags=re.M)  # the title heading
        excerpt = CITATION.sub("", excerpt)
        excerpt = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", excerpt)  # links -> their text
        url = posixpath.relpath(post_url(entry), home) + "/"
        items.append((entry.title, url, entry.date, " ".join(excerpt.split()), list(entry.papers)))
    return atom_feed(items, "paper-notes 读论文日记", posixpath.basename(feed), posixpath.relpath(JOURNAL, home) + "/")


GENERATED: dict[str, Callable[[Project, PaperNotesConfig], dict[str, str | bytes]]] = {
    "reading-list": lambda project, _: {f"{READING_LIST}/index.md": reading_list_index(project),
                                        **{f"{READING_LIST}/{p.id}.md": paper_page(project, p) for p in project.papers.values()}},
    "bibliography": lambda project, _: {"papers.bib": bibliography(project.papers)},
    "glossary": lambda project, _: {"glossary.md": render_glossary_page(
        project.glossary, {pid: p.title for pid, p in project.papers.items()})},
    "api": lambda project, options: {f"reference/{doc}": text
                                     for doc, text in api_reference_pages(project.root / options.api).items()},
    # Drawn from refimpl; redrawn only when their code, the refimpl modules it imports or their
    # package versions change (cache in .cache/site/figures).
    "figures": lambda project, _: {f"figures/{name}": svg for name, svg in cached_figures(project.root)},
    "feed": lambda project, options: {options.feed: feed_xml(project, options.feed)},
}
"""The pages built from the project by name, one line each: ``(project, options) -> {docs path: content}``;
``generate:`` in the plugin's options picks them (default: all)."""


class NotebooksConfig(base.Config):
    """``notebooks:`` in the plugin's options."""

    execute = c.Type(bool, default=True)
    """Run the notebooks (``false``: take outputs from the cache or show none; quick builds of a copy)."""
    timeout_s = c.Type((int, float), default=TIMEOUT_S)
    """Longest a cell may run, in seconds."""


class PaperNotesConfig(base.Config):
    """The plugin's options in ``mkdocs.yml``."""

    notebooks = c.SubConfig(NotebooksConfig)
    generate = c.ListOfItems(c.Choice(tuple(GENERATED)), default=list(GENERATED))
    """The generated pages to build (the names of [`GENERATED`][paper_notes.plugin.GENERATED]); a small
    site that needs none of the figures, say, leaves them out."""
    api = c.Type(str, default="refimpl")
    """The package whose modules get one API page each, under ``reference/``."""
    feed = c.Type(str, default=f"{JOURNAL}/feed.xml")
    """Where the diary's Atom feed is published."""
    mathjax = c.Type(str, default="assets/mathjax")
    """Where MathJax 3 is published (``extra_javascript`` loads ``tex-svg.js`` from there)."""


def _fail(exc: Exception) -> PluginError:
    return PluginError(f"paper-notes: {exc}")


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


class NotebookFile(File):
    """A jupytext notebook of ``docs/notebooks/``, built as a Markdown page (``on_page_read_source``)."""

    def is_documentation_page(self) -> bool:
        return True


CODE_EMBEDDING_DIRS = ("concepts/", "guides/")
"""Prose pages that embed code with ``:::``; the API reference pages keep their full member lists."""


def _drop_api_entries(items: Any) -> None:
    """Remove mkdocstrings' member headings (ids ``refimpl.…``) from a page's table of contents, in place."""
    items[:] = [item for item in items if not item.id.startswith("refimpl.")]
    for item in items:
        _drop_api_entries(item.children)


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


class PaperNotesPlugin(BasePlugin[PaperNotesConfig]):
    """The ``paper-notes`` MkDocs plugin (see the module docstring for what each step does)."""

    def __init__(self) -> None:
        self.project: Project | None = None
        self.jieba = False

    def on_startup(self, *, command: str, dirty: bool) -> None:
        if command == "serve":
            try:
                rebuild_memo.enable()
            except RuntimeError as exc:
                raise PluginError(f"paper-notes: {exc}") from None

    @event_priority(100)  # before the blog and search plugins read their configuration
    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        root = Path(config.config_file_path).resolve().parent
        try:
            project = self.project = load_project(root)
        except (SchemaError, FileNotFoundError) as exc:
            raise PluginError(f"paper-notes: {exc}") from None
        timeout = self.config.notebooks.timeout_s
        if isinstance(timeout, bool) or not 0 < timeout < float("inf"):
            raise PluginError(f"paper-notes: mkdocs.yml plugins.paper-notes.notebooks.timeout_s is {timeout!r}; "
                              f"expected a positive number of seconds (default {TIMEOUT_S})")
        _use_this_checkout(root)
        rebuild_memo.new_build(root)
        config.markdown_extensions += [ReferenceExtension(project.papers, fail=_fail), MarkersExtension(project, _fail)]
        sections = {f"{READING_LIST}/": lambda: reading_list_nav(project),
                    "reference/": lambda: api_reference_nav(api_reference_pages(root / self.config.api), "reference/")}
        config.nav = _fill_nav(config.nav, sections)

        blog = config.plugins.get("material/blog")
        if blog is not None:
            blog.config.categories_allowed = list(project.papers)
        self.jieba = _load_jieba(config, project)
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        for file in [f for f in files if posixpath.dirname(f.src_uri) == NOTEBOOKS and f.src_uri.endswith(".py")]:
            files.remove(file)
            stem = posixpath.splitext(posixpath.basename(file.src_uri))[0]
            files.append(NotebookFile(file.src_uri, file.src_dir, config.site_dir, config.use_directory_urls,
                                      dest_uri=f"{NOTEBOOKS}/{stem}/index.html"))
            files.append(File.generated(config, f"{NOTEBOOKS}/{stem}/{stem}.py", abs_src_path=file.abs_src_path))
        for name in self.config.generate:
            for path, content in GENERATED[name](self.project, self.config).items():
                files.append(File.generated(config, path, content=content))
        source = _mathjax_dir()
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix in (".js", ".json"):
                rel = path.relative_to(source).as_posix()
                files.append(File(rel, src_dir=str(source), dest_dir=config.site_dir, use_directory_urls=False,
                                  dest_uri=f"{self.config.mathjax}/{rel}"))
        return files

    def on_page_read_source(self, *, page: Page, config: MkDocsConfig) -> str | None:
        """A notebook page's Markdown: the notebook executed (or from the cache), written as Markdown."""
        if not isinstance(page.file, NotebookFile):
            return None
        path = Path(page.file.abs_src_path)
        options = self.config.notebooks
        try:
            executed = execute(path, self.project.root, run=options.execute, timeout_s=options.timeout_s)
        except NotebookError as exc:
            raise PluginError(f"paper-notes: {exc}") from None
        return to_markdown(executed.notebook, path.name)

    def on_page_markdown(self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
        escape_meta_title(page)
        return markdown

    def on_page_content(self, html: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
        """Concept pages: a table of contents without API members."""
        if page.file.src_uri.startswith(CODE_EMBEDDING_DIRS):
            _drop_api_entries(page.toc.items)
        return html

    @event_priority(-100)  # after the search plugin has written search/search_index.json
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        """Ship jieba's segmentation of the site's text to the browser and make the search worker use it."""
        site = Path(config.site_dir)
        index_path = site / "search" / "search_index.json"
        if not self.jieba or not index_path.is_file():
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


def _fill_nav(nav: Any, sections: dict[str, Callable[[], list[Any]]]) -> Any:
    """``nav`` with each entry whose target is a key of ``sections`` (``阅读清单: reading-list/``)
    replaced by that section's generated pages."""
    if isinstance(nav, list):
        return [_fill_nav(item, sections) for item in nav]
    if isinstance(nav, dict):
        return {title: sections[target]() if isinstance(target, str) and target in sections
                else _fill_nav(target, sections) for title, target in nav.items()}
    return nav


def _load_jieba(config: MkDocsConfig, project: Project) -> bool:
    """Add the glossary's terms and the diary's tags to jieba's dictionary; whether search segments with it."""
    if not any(name in config.plugins for name in ("search", "material/search")):
        return False  # nothing to segment for (a small test site): skip loading jieba's dictionary
    try:
        import jieba
    except ImportError:  # search then indexes Chinese runs as whole words; still builds
        return False
    jieba.setLogLevel(logging.WARNING)
    words = {form for term in project.glossary for form in term.surface_forms}
    words |= {tag for entry in project.entries for tag in entry.tags}
    search.add_words(words)
    return True
