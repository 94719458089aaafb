"""MkDocs hooks (``hooks:`` in ``mkdocs.yml``): validation, citations, offline math, the feed.

- ``on_config``: load ``papers/``, ``glossary.yaml`` and every diary entry through the same
  validators as ``notes check`` (a bad file fails the build with its path and field); the blog's
  allowed categories become the paper ids; glossary terms join jieba's dictionary so Chinese
  search segments them as words. mkdocs-jupyter's cache is keyed on what each notebook imports
  (``paper_notes.buildcache``) and kept in ``.cache/site/notebooks``; notebook kernels import this
  checkout's ``refimpl``.
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
- ``on_page_content``: notebook pages lose nbconvert's MathJax 2 and mermaid loaders (they point
  at a CDN); their Markdown cells are typeset by the site's own MathJax instead.
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

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

from paper_notes import rebuild_memo, search
from paper_notes.buildcache import NOTEBOOK_RENDERERS, cache_dir, fingerprint
from paper_notes.journal import EXCERPT_SEPARATOR, Entry
from paper_notes.project import Project, load_project
from paper_notes.references import UnresolvedReference, references_in_html
from paper_notes.registry import SchemaError
from paper_notes.site import CITATION, atom_feed, cite, expand_related_entries, expand_results, format_citation

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
    jupyter = config.plugins.get("mkdocs-jupyter")
    if jupyter is not None and jupyter.config.get("cache"):
        jupyter.config["cache_dir"] = str(cache_dir(root, "notebooks"))
        _key_notebooks_on_their_imports()

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


def _key_notebooks_on_their_imports() -> None:
    """Fold :func:`paper_notes.buildcache.fingerprint` into mkdocs-jupyter's cache key.

    Its own key covers the notebook file and the plugin's options only, so a change in ``refimpl/``
    would serve stale output. mkdocs-jupyter has no option for extra key material; its key function
    is wrapped (once per process), and a version without it fails the build rather than go stale.
    """
    from mkdocs_jupyter import plugin as jupyter_plugin

    original = getattr(jupyter_plugin, "_compute_cache_key", None)
    if original is None:
        raise PluginError("paper-notes: this mkdocs-jupyter has no _compute_cache_key to extend; set "
                          "'cache: false' for mkdocs-jupyter in mkdocs.yml or install the version pyproject.toml names")
    if getattr(original, "paper_notes_key", False):
        return

    def key(nb_path: str, config: Any, exec_nb: bool) -> str:
        return fingerprint(Path(nb_path), _state["root"], renderers=NOTEBOOK_RENDERERS,
                           extra=original(nb_path, config, exec_nb))

    key.paper_notes_key = True  # type: ignore[attr-defined]
    jupyter_plugin._compute_cache_key = key


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


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
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


_NBCONVERT_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_NBCONVERT_MERMAID = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?mermaid.*?</script>", re.S)


_VERBATIM = re.compile(r"(<(pre|code|script|style)\b.*?</\2>)", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$([^$\n]+?)\$")


def _mark_notebook_math(content: str) -> str:
    """Turn ``$$..$$`` / ``$..$`` in notebook Markdown into arithmatex's markup for the site's MathJax."""
    chunks = _VERBATIM.split(content)
    out = []
    # split() with two groups yields: text, whole verbatim element, its tag name, text, ...
    for i in range(0, len(chunks), 3):
        text = _DISPLAY_MATH.sub(lambda m: f'<span class="arithmatex">\\[{m.group(1)}\\]</span>', chunks[i])
        text = _INLINE_MATH.sub(lambda m: f'<span class="arithmatex">\\({m.group(1)}\\)</span>', text)
        out.append(text)
        if i + 1 < len(chunks):
            out.append(chunks[i + 1])
    return "".join(out)


CODE_EMBEDDING_DIRS = ("concepts/", "guides/")
"""Prose pages that embed code with ``:::``; the API reference pages keep their full member lists."""


def _drop_api_entries(items: Any) -> None:
    """Remove mkdocstrings' member headings (ids ``refimpl.…``) from a page's table of contents, in place."""
    items[:] = [item for item in items if not item.id.startswith("refimpl.")]
    for item in items:
        _drop_api_entries(item.children)


_MD_HREF = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|/|#)([^"#]+\.md)(#[^"]*)?"')


def _resolve_notebook_links(content: str, page: Any, files: Files) -> str:
    """Point a notebook's Markdown links to ``*.md`` pages at those pages' URLs, as MkDocs does for Markdown.

    Raises:
        PluginError: for a link to a page that does not exist (what ``--strict`` would report).
    """

    def replace(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), html.unescape(match.group(1))))
        file = files.get_file_from_path(target)
        if file is None:
            raise PluginError(f"paper-notes: notebook {page.file.src_uri} links to {match.group(1)!r}, which is not a page")
        return f'href="{html.escape(file.url_relative_to(page.file))}{match.group(2) or ""}"'

    return _MD_HREF.sub(replace, content)


_HEADING = re.compile(r'<h([1-6]) id="([^"]*)"(.*?)</h\1>', re.S)


def _align_heading_ids(content: str, toc: Any) -> str:
    """Give nbconvert's headings the ids that mkdocs-jupyter's table of contents links to.

    nbconvert leaves an empty id on an all-Chinese heading while the TOC slugs it ``_1``, ``_2``,
    ...; both list the same headings in document order, so pair them up.
    """

    def flatten(items: Any) -> list[str]:
        return [a for item in items for a in (item.id, *flatten(item.children))]

    anchors = iter(flatten(toc))

    def replace(match: re.Match[str]) -> str:
        level, old, rest = match.groups()
        new = next(anchors, old) or old
        rest = rest.replace(f'href="#{old}"', f'href="#{html.escape(new)}"')
        return f'<h{level} id="{html.escape(new)}"{rest}</h{level}>'

    return _HEADING.sub(replace, content)


def on_page_content(content: str, page: Any, config: Any, files: Files) -> str:
    """Concept pages: a table of contents without API members. Notebook pages: offline math,
    links and citations (their Markdown never reaches on_page_markdown)."""
    if page.file.src_uri.startswith(CODE_EMBEDDING_DIRS):
        _drop_api_entries(page.toc.items)
    if not page.file.src_uri.endswith(".py"):
        return content
    content = _NBCONVERT_MATHJAX.sub("", content)
    content = _NBCONVERT_MERMAID.sub("", content)
    content = _align_heading_ids(content, page.toc)
    content = _mark_notebook_math(content)
    content = _resolve_notebook_links(content, page, files)
    papers = _project().papers
    try:
        content = references_in_html(content, papers, page.file, files)
    except UnresolvedReference as exc:
        raise PluginError(f"paper-notes: {exc}") from None

    def replace(match: re.Match[str]) -> str:
        keys = [k.strip()[1:] for k in match.group(1).split(";")]
        try:
            md = format_citation(keys, papers, page.file.src_uri)
        except KeyError as exc:
            raise PluginError(f"paper-notes: {page.file.src_uri} cites unknown paper id {exc.args[0]!r}") from None
        # Markdown links -> HTML anchors to the pages' built URLs.
        def to_anchor(m: re.Match[str]) -> str:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), m.group(2)))
            url = files.get_file_from_path(target).url_relative_to(page.file)
            return f'<a href="{html.escape(url)}">{html.escape(m.group(1))}</a>'

        return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", to_anchor, md)

    return CITATION.sub(replace, content)


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
