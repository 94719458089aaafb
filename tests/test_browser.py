"""End to end in a real browser: Playwright drives Debian's Chromium against the built site.

Skipped (with the reason) when /usr/bin/chromium is missing, except under CI, where .ci/run
installs it and a missing browser is a failure. Playwright never downloads a browser here.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import ROOT, Build

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser tests: .ci/run installs Debian's chromium", pytrace=False)
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed: apt-get install chromium",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

ENTRY = "journal/2024-10-26-mae-figure1/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


@pytest.fixture(scope="module")
def base_url(built_site: Build) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(built_site.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


class Visit:
    """A browser page that records console errors and refuses every request to another host."""

    def __init__(self, browser: object, base_url: str, **context: object) -> None:
        self.host = urlsplit(base_url).netloc
        self.base_url = base_url
        self.context = browser.new_context(locale="zh-CN", **context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))
        self.context.route("**/*", self._route)

    def _route(self, route: object) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == self.host:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def open(self, path: str) -> object:
        self.page.goto(self.base_url + path, wait_until="networkidle")
        return self.page


@pytest.fixture
def visit(browser: object, base_url: str) -> Iterator[Visit]:
    v = Visit(browser, base_url)
    yield v
    v.context.close()
    assert v.errors == [], f"console errors: {v.errors}"
    assert v.foreign == [], f"requests to other hosts: {v.foreign}"


def test_home_journal_and_an_entry_open(visit: Visit) -> None:
    page = visit.open("")
    assert "paper-notes" in page.title()
    page = visit.open("journal/")
    assert page.locator("article.md-post").count() >= 4
    page = visit.open("journal/archive/2024/10/")
    assert page.locator("article.md-post").count() >= 4
    page.locator("article.md-post a[href*='2024-10-26-mae-figure1']").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(ENTRY)
    assert page.locator("h1").first.inner_text().startswith("MAE 图 1")


def search(page: object, query: str) -> list[str]:
    """Type ``query`` into Material's search box like a person would; return the result links."""
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    box.press_sequentially(query, delay=20)
    box.press("End")  # Material reacts to key events; a final keyup makes sure it queries
    page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
    return [a.get_attribute("href") or "" for a in page.locator(".md-search-result__link").all()]


def test_searching_a_chinese_word_finds_the_entry(visit: Visit) -> None:
    page = visit.open("")
    assert any(ENTRY in href for href in search(page, "掩码"))
    assert any("journal/" in href for href in search(page, "编码"))
    assert any("journal/" in href for href in search(page, "解码"))
    assert any("glossary/" in href for href in search(page, "decoder"))


# Query -> pages (site paths; one ending in "refimpl/" stands for every API page under it) any of
# which may come first; lunr ranks them, these are the pages that explain the word. Two- to four-character Chinese words, English terms, code identifiers
# (split at "_" and at camel case like the index) and mixed queries.
QUERIES = {
    "掩码": ("journal/2026-11-25-hiera-figure4-understood/", "journal/2024-10-24-hiera-figure4/",
             "journal/2024-10-26-mae-figure1/", "concepts/masking/"),
    "解码器": ("journal/2024-10-26-mae-figure1/", "concepts/mae/", "glossary/"),
    "编码器": ("journal/2024-10-26-mae-figure1/", "concepts/mae/", "journal/2024-10-27-mae-implementation/"),
    "掩码单元": ("journal/2026-11-25-hiera-figure4-understood/", "concepts/masking/", "journal/2024-10-24-hiera-figure4/",
                 "concepts/hiera/"),
    "网格扩展": ("concepts/kan/",),
    "线性探测": ("journal/2024-10-27-mae-implementation/", "glossary/", "concepts/mae/"),
    "样条": ("concepts/kan/", "glossary/"),
    "打乱": ("notebooks/mae_shuffle_unshuffle/", "concepts/masking/", "concepts/mae/",
             "journal/2024-10-27-mae-implementation/"),  # 打乱 is in this entry's title
    "unroll": ("notebooks/hiera_unroll/", "concepts/hiera/", "journal/2024-10-24-hiera-figure4/"),
    "decoder": ("reference/refimpl/", "concepts/mae/", "glossary/"),  # an API page that has a decoder
    "linear probing": ("glossary/", "concepts/mae/"),
    "patchify": ("reference/refimpl/masking/", "notebooks/vit_background/", "concepts/vit/"),
    "ids_restore": ("reference/refimpl/mae/", "reference/refimpl/masking/", "concepts/masking/"),
    "random_masking": ("reference/refimpl/masking/", "concepts/masking/", "notebooks/mae_shuffle_unshuffle/"),
    "mask_unit_masking": ("reference/refimpl/masking/", "concepts/masking/"),
    "KANLinear": ("reference/refimpl/kan/", "concepts/kan/"),
    "bspline_basis": ("reference/refimpl/bspline/", "reference/refimpl/kan/", "concepts/kan/"),
    "MAE 掩码": ("journal/2024-10-24-hiera-figure4/", "journal/2024-10-26-mae-figure1/", "concepts/mae/",
                 "concepts/masking/", "journal/2026-11-25-hiera-figure4-understood/"),
    "Hiera 掩码单元": ("journal/2026-11-25-hiera-figure4-understood/", "journal/2024-10-24-hiera-figure4/",
                     "concepts/hiera/", "concepts/masking/"),
    "Hiera的unroll": ("notebooks/hiera_unroll/", "concepts/hiera/", "journal/2024-10-24-hiera-figure4/"),
    "pykan 网格": ("notebooks/kan_fit/", "concepts/kan/"),
    "token 打乱": ("notebooks/mae_shuffle_unshuffle/", "concepts/masking/", "journal/2024-10-27-mae-implementation/"),
}


def _index_tokens(site: Path) -> dict[str, set[str]]:
    """Search-index location -> its lower-case tokens, split as the index splits them (tags removed)."""
    index = json.loads((site / "search/search_index.json").read_text(encoding="utf-8"))
    separator = re.compile(index["config"]["separator"])
    tokens = {}
    for doc in index["docs"]:
        text = re.sub(r"<[^>]+>", " ", doc["title"] + " " + doc["text"])
        tokens[doc["location"]] = {t.lower() for t in separator.split(text) if t}
    return tokens


def test_search_queries_find_their_page_and_claim_no_word_missing_that_is_there(visit: Visit, built_site: Build) -> None:
    tokens = _index_tokens(built_site.site)
    page = visit.open("")
    box = page.locator("input.md-search__input")
    box.click()
    problems = []
    for query, expected in QUERIES.items():
        box.fill("")
        page.locator(".md-search-result__item").first.wait_for(state="detached", timeout=5_000)
        box.fill(query)
        box.press("End")  # Material queries on key events
        page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
        results = page.evaluate("""() => [...document.querySelectorAll('.md-search-result__link')].map(a => ({
            href: a.getAttribute('href'),
            missing: [...a.querySelectorAll('.md-search-result__terms del')].map(d => d.textContent)}))""")
        first = urlsplit(results[0]["href"]).path.removeprefix(urlsplit(visit.base_url).path)
        if not any(first == page or (page.endswith("refimpl/") and first.startswith(page)) for page in expected):
            problems.append(f"{query!r}: first result {first!r}, expected one of {expected}")
        for result in results:
            parts = urlsplit(result["href"])
            location = unquote(parts.path.removeprefix(urlsplit(visit.base_url).path)
                               + (f"#{parts.fragment}" if parts.fragment else ""))
            words = tokens[location]
            for missing in result["missing"]:
                if any(token.startswith(missing.lower()) for token in words):
                    problems.append(f"{query!r}: {location} is said to miss {missing!r}, which it contains")
    assert not problems, "\n".join(problems)


def test_the_browser_cuts_chinese_exactly_as_the_index_was_cut(visit: Visit, built_site: Build) -> None:
    """Every run of Han characters in the index, cut in the browser, gives the index's own words."""
    index = json.loads((built_site.site / "search/search_index.json").read_text(encoding="utf-8"))
    # Material wrote each run as its jieba words joined by U+200B (and U+200B on both ends).
    cut = {}
    for doc in index["docs"]:
        for field in (doc["title"], doc["text"]):
            for run in re.findall(r"[\u200b\u3400-\u4dbf\u4e00-\u9fff]+", field):
                words = [w for w in run.split("\u200b") if w]
                if words:
                    cut["".join(words)] = words
    assert len(cut) > 1000 and "掩码单元" in [w for words in cut.values() for w in words]
    page = visit.open("")
    page.add_script_tag(url=visit.base_url + "assets/javascripts/paper-notes-segment.js")
    runs = sorted(cut)
    got = page.evaluate("runs => runs.map(run => self.paperNotesSegment(run))", runs)
    differ = [(run, cut[run], words) for run, words in zip(runs, got) if words != cut[run]]
    assert not differ, f"{len(differ)} of {len(runs)} runs cut differently, e.g. {differ[:5]}"


def test_reading_list_fits_a_screen_and_filters_by_status_and_tag(browser: object, base_url: str) -> None:
    from paper_notes.registry import STATUS_LABELS, load_papers

    papers = load_papers(ROOT / "papers")
    visit = Visit(browser, base_url, viewport={"width": 1400, "height": 1000})
    try:
        page = visit.open("reading-list/")
        table = page.locator(".reading-list table")
        rows = table.locator("tbody tr")
        assert rows.count() == len(papers)
        box = table.bounding_box()
        assert box["y"] + box["height"] <= 1000, f"the table ends at {box['y'] + box['height']} px"
        column = page.locator("article.md-content__inner").bounding_box()
        assert box["x"] + box["width"] <= column["x"] + column["width"] + 1, "the table is wider than the page"

        def shown() -> list[str]:
            return [row.locator("td").first.inner_text() for row in rows.all() if row.is_visible()]

        filters = page.locator(".reading-list__filters")
        for status, label in STATUS_LABELS.items():
            filters.locator("button", has_text=label).click()
            assert shown() == [p.display_title for p in papers.values() if p.status == status], label
        filters.locator("button[data-kind=status]", has_text="全部").click()
        filters.locator("button", has_text="分割").click()
        assert shown() == [p.display_title for p in papers.values() if "分割" in p.tags]
        filters.locator("button", has_text="待读").click()  # both filters at once
        assert shown() == [p.display_title for p in papers.values() if "分割" in p.tags and p.status == "to-read"]
        assert f"/ {len(papers)} 篇" in filters.inner_text()
    finally:
        visit.context.close()
    assert visit.errors == [] and visit.foreign == []


def test_math_is_rendered_by_the_local_mathjax(visit: Visit) -> None:
    page = visit.open(ENTRY)
    page.wait_for_selector("mjx-container svg", timeout=20_000)
    assert page.locator("mjx-container[display='true']").count() >= 1
    assert page.locator("mjx-container:not([display='true'])").count() >= 1
    body = page.locator("article").inner_text()
    assert "$$" not in body and "\\[" not in body and "\\(" not in body


def test_notebook_math_and_figures_render(visit: Visit) -> None:
    page = visit.open("notebooks/vit_background/")
    page.wait_for_selector("article mjx-container svg", timeout=20_000)
    assert _wait_for_math(page) == []  # every formula typeset, no $$ or \\( left in the text
    assert page.locator("article .nb-output img").count() >= 2


def test_glossary_term_shows_its_definition_on_hover(visit: Visit) -> None:
    page = visit.open(ENTRY)
    term = page.locator("article abbr[title]", has_text="掩码").first
    title = term.get_attribute("title")
    assert title.startswith("掩码 (mask)")
    term.hover()
    tooltip = page.locator(".md-tooltip2, .md-tooltip").filter(has_text="掩码 (mask)")
    tooltip.first.wait_for(state="visible", timeout=5_000)


def test_concept_page_shows_the_code_collapsed_and_one_click_opens_it(visit: Visit) -> None:
    page = visit.open("concepts/mae/")
    sources = page.locator("article .concept-embed details.mkdocstrings-source")
    assert sources.count() >= 3
    assert all(sources.nth(i).get_attribute("open") is None for i in range(sources.count()))
    # The embed whose signature is forward_encoder's (other embeds' docstrings name it too).
    encoder = page.locator("article .concept-embed").filter(has=page.locator(".doc-signature", has_text="forward_encoder("))
    assert encoder.locator(".doc-signature").is_visible()  # the signature shows, the code does not
    code = encoder.locator("details .highlight").first
    assert not code.is_visible()
    encoder.locator("summary", has_text="查看源码").click()
    code.wait_for(state="visible", timeout=5_000)
    assert "def forward_encoder" in code.inner_text()
    page.wait_for_selector("mjx-container svg", timeout=20_000)


SCREENSHOT_DIR = ROOT / "test-artifacts" / "screenshots"
"""Where the screenshot test leaves its pictures (ignored by git; emptied at each run)."""

SCREENSHOT_PAGES = {
    "home": "",
    "journal-entry": ENTRY,
    "concepts": "concepts/",
    **{f"concept-{p.stem}": f"concepts/{p.stem}/" for p in sorted((ROOT / "docs/concepts").glob("*.md")) if p.stem != "index"},
    **{f"notebook-{p.stem}": f"notebooks/{p.stem}/" for p in sorted((ROOT / "docs/notebooks").glob("*.py"))},
    "reading-list": "reading-list/",
}

_LAYOUT_PROBLEMS = """() => {
    const column = document.querySelector("article.md-content__inner").getBoundingClientRect()
    const problems = []
    const describe = (el) => el.tagName.toLowerCase() + (el.getAttribute("src") || "").slice(0, 60)
    for (const img of document.querySelectorAll("article img, article figure")) {
        const box = img.getBoundingClientRect()
        if (box.width > column.width + 1 || box.left < column.left - 1 || box.right > column.right + 1)
            problems.push(`figure wider than the column (${Math.round(box.width)} > ${Math.round(column.width)} px): ${describe(img)}`)
    }
    for (const cell of document.querySelectorAll("article td, article th")) {
        if (cell.scrollWidth > cell.clientWidth + 1)
            problems.push(`text overflows a table cell (${cell.scrollWidth} > ${cell.clientWidth} px): ${cell.textContent.trim().slice(0, 60)}`)
    }
    return problems
}"""


FIGURES = "article img[src*='figures/'], article .nb-output--image img"
"""A concept page's build-time figures and a notebook's plots: each is also shot on its own, at full size."""

_FIGURE_PROBLEMS = f"""() => [...document.querySelectorAll("{FIGURES}")]
    .filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => `figure did not load: ${{(img.getAttribute("src") || "").slice(0, 80)}}`)"""


def _shoot_figures(page: object, folder: Path, name: str) -> list[Path]:
    """Screenshot every figure of the page on its own (``<folder>/<name>-figure-<k>.jpg``), where its
    labels are legible; returns the files."""
    shots = []
    figures = page.locator(FIGURES)
    for k in range(figures.count()):
        shot = folder / f"{name}-figure-{k + 1}.jpg"
        figures.nth(k).screenshot(path=str(shot), type="jpeg", quality=85)
        shots.append(shot)
    return shots


def _wait_for_math(page: object) -> list[str]:
    """Wait until MathJax has typeset every formula of the page; return what did not render."""
    formulas = page.locator("article .arithmatex").count()
    if not formulas:
        return []
    page.wait_for_function("n => document.querySelectorAll('article .arithmatex mjx-container svg').length >= n",
                           arg=formulas, timeout=30_000)
    problems = [f"MathJax error: {t}" for t in page.locator("article mjx-merror").all_inner_texts()]
    text = page.evaluate("""() => { const a = document.querySelector("article").cloneNode(true)
        a.querySelectorAll("pre, code, script").forEach((e) => e.remove()); return a.textContent }""")
    problems += [f"raw TeX left in the text: {m!r}" for m in re.findall(r"\\\(.{0,30}|\\\[.{0,30}|\$\$.{0,30}", text)]
    return problems


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_light_and_dark_with_figures_inside_the_column_math_rendered_and_no_table_overflow(
        browser: object, base_url: str, scheme: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = SCREENSHOT_DIR / scheme
    if folder.exists():
        for old in folder.glob("*.jpg"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    visit = Visit(browser, base_url, viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
    problems: list[str] = []
    heights: dict[str, int] = {}
    figure_shots: list[Path] = []
    try:
        for name, path in SCREENSHOT_PAGES.items():
            page = visit.open(path)
            expected = "slate" if scheme == "dark" else "default"
            assert page.locator("body").get_attribute("data-md-color-scheme") == expected
            problems += [f"{path or '/'}: {p}" for p in
                         _wait_for_math(page) + page.evaluate(_LAYOUT_PROBLEMS) + page.evaluate(_FIGURE_PROBLEMS)]
            heights[name] = page.evaluate("() => document.documentElement.scrollHeight")
            page.screenshot(path=str(folder / f"{name}.jpg"), full_page=True, type="jpeg", quality=80)
            figure_shots += _shoot_figures(page, folder, name)
        page = visit.open("")
        box = page.locator("input.md-search__input")
        box.click()
        box.fill("掩码单元")
        box.press("End")
        page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
        page.screenshot(path=str(folder / "search.jpg"), full_page=True, type="jpeg", quality=80)
    finally:
        visit.context.close()
    with capsys.disabled():
        print(f"\nscreenshots ({scheme}): {folder}\npage heights at 1400 px: "
              + ", ".join(f"{name} {h}" for name, h in heights.items())
              + f"\n{len(figure_shots)} figures on their own, labels legible: {folder}/<page>-figure-<k>.jpg")
    pages_with_figures = {p.name.partition("-figure-")[0] for p in figure_shots}
    assert {"concept-hiera", "concept-kan", "concept-sam2", "notebook-kan_fit"} <= pages_with_figures, \
        f"expected close-ups of the figures of hiera, kan, sam2 and a notebook; got {sorted(pages_with_figures)}"
    assert visit.errors == [] and visit.foreign == []
    assert not problems, "\n".join(problems)
