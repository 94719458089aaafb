"""Notebooks through the Markdown path (paper_notes.notebooks): what a page shows, execution, the cache."""

from __future__ import annotations

import base64
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
