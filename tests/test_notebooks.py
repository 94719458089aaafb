"""Notebooks through the Markdown path (paper_notes.notebooks): what a page shows, execution, the cache."""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path

import nbformat
import pytest

from paper_notes.notebooks import NotebookError, execute, to_markdown

_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def _notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    shown = v4.new_code_cell("print('a')\nprint('b')", outputs=[
        v4.new_output("stream", name="stdout", text="a\n"),
        v4.new_output("stream", name="stdout", text="b\n"),
        v4.new_output("display_data", data={"image/png": _PNG, "text/plain": "<Figure>"}),
    ])
    hidden = v4.new_code_cell("secret_setup()", metadata={"tags": ["hide-input"]},
                              outputs=[v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1)])
    ticks = v4.new_code_cell("s = '```'", outputs=[])
    return v4.new_notebook(cells=[v4.new_markdown_cell("# 标题\n\n见 [@mae, §3]，$x^2$。"), shown, hidden, ticks])


def test_markdown_cells_verbatim_code_fenced_outputs_under_it_and_hide_input_hides_only_the_code() -> None:
    page = to_markdown(_notebook(), "probe.py")
    blocks = page.split("\n\n")
    # Markdown as written, so citations, references and math go through the page's own Markdown path.
    assert blocks[0] == "# 标题" and blocks[1] == "见 [@mae, §3]，$x^2$。"
    assert blocks[2] == "```python\nprint('a')\nprint('b')\n```"
    assert blocks[3] == "``` { .text .nb-output }\na\nb\n```"  # consecutive prints: one block
    assert blocks[4] == f'<div class="nb-output nb-output--image"><img alt="" src="data:image/png;base64,{_PNG}"></div>'
    assert "secret_setup" not in page and "``` { .text .nb-output }\n42\n```" in page
    assert "````python\ns = '```'\n````" in page  # a fence longer than any backtick run inside
    assert page.rstrip().endswith('（jupytext 格式，可用 Jupyter 打开）</p>') and 'href="probe.py" download' in page


def test_a_broken_image_fails_while_the_page_is_written() -> None:
    notebook = _notebook()
    notebook.cells[1].outputs[2]["data"]["image/png"] = "not base64!"
    with pytest.raises(ValueError):
        to_markdown(notebook, "probe.py")


_HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"


@pytest.mark.subprocess
def test_a_cell_that_raises_names_the_notebook_and_the_cell_and_a_run_is_cached(tmp_path: Path) -> None:
    (tmp_path / "refimpl").mkdir()
    (tmp_path / "paper_notes").mkdir()
    good = tmp_path / "good.py"
    good.write_text(_HEADER + "# %%\nprint(6 * 7)\n", encoding="utf-8")
    first = execute(good, tmp_path)
    assert not first.cached and first.notebook.cells[0].outputs[0]["text"] == "42\n"
    again = execute(good, tmp_path)
    assert again.cached and again.notebook.cells[0].outputs[0]["text"] == "42\n"

    bad = tmp_path / "bad.py"
    bad.write_text(_HEADER + "# %%\nx = 1\n\n# %%\nraise RuntimeError('cell two broke')\n", encoding="utf-8")
    with pytest.raises(NotebookError) as error:
        execute(bad, tmp_path)
    message = str(error.value)
    assert str(bad) in message and "raise RuntimeError('cell two broke')" in message and "RuntimeError" in message
    assert len(list((tmp_path / ".cache").rglob("*.ipynb"))) == 1, "only the good notebook is cached"


def test_a_file_that_is_not_a_notebook_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nb.py"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(NotebookError, match="nb.py"):
        execute(path, tmp_path, run=False)


# --- the notebooks' own figures: Chinese labels, drawn in the concept figures' fonts ----------

NOTEBOOK_SOURCES = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.py"))
LABEL_CALLS = {"title", "suptitle", "set_title", "xlabel", "ylabel", "set_xlabel", "set_ylabel", "text", "legend",
               "annotate", "set_label", "colorbar"}
"""Calls whose string arguments a reader sees in a plot (and ``label=`` of any call)."""
_CJK = re.compile(r"[\u3400-\u9fff]")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")


def _literal(node: ast.AST) -> str | None:
    """The text a string argument shows: a literal, or an f-string's literal parts (``{…}`` for the fields)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    return None


def _plot_labels(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every string a notebook's code hands to a plot title, axis label, text or legend."""
    import jupytext

    code = "\n".join(cell.source if cell.cell_type == "code" else "" for cell in jupytext.read(path).cells)
    labels = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        args = list(node.args) if name in LABEL_CALLS or name == "show" else []
        args += [k.value for k in node.keywords if k.arg in ("label", "title")]
        labels += [(node.lineno, text) for text in map(_literal, args) if text and text.strip()]
    return labels


@pytest.mark.parametrize("path", NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_a_notebooks_plot_labels_are_chinese_with_no_glossary_variant(path: Path) -> None:
    from paper_notes.glossary import load_glossary
    from paper_notes.terms import find_variants

    labels = _plot_labels(path)
    english = [f"{path.name}: {text!r}" for _, text in labels if _ENGLISH_WORD.search(text) and not _CJK.search(text)]
    assert english == [], "plot labels in English only; write them in Chinese (English term in brackets)"
    terms = load_glossary(Path(__file__).resolve().parents[1] / "glossary.yaml")
    assert [str(v) for line, text in labels for v in find_variants(text, f"{path.name}:{line}", terms)] == []


@pytest.mark.parametrize("path", [p for p in NOTEBOOK_SOURCES if "matplotlib" in p.read_text(encoding="utf-8")],
                         ids=lambda p: p.name)
def test_a_notebook_that_plots_draws_in_the_concept_figures_fonts_and_every_label_has_its_glyphs(path: Path) -> None:
    from matplotlib.figure import Figure

    from paper_notes.figures import render_svg

    source = path.read_text(encoding="utf-8")
    assert "from paper_notes.figures import style" in source and "plt.rcParams.update(style())" in source
    labels = [text for _, text in _plot_labels(path)]

    def all_labels() -> Figure:
        fig = Figure()
        for k, text in enumerate(labels):
            fig.text(0, k / max(len(labels), 1), text.replace("$", ""))
        return fig

    render_svg(all_labels)  # raises, naming the character, if no font of style() has it
