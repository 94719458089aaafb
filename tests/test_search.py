"""Chinese search: the data and the worker patch that let the browser cut a query as jieba cut the index.

The browser side (every run of the index cut the same way, 22 queries typed into the search box)
is tested in tests/test_browser.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import jieba
import material
import pytest

from paper_notes import search

WORKERS = Path(material.__file__).parent / "templates/assets/javascripts/workers"


def test_the_installed_material_worker_is_patched_once_and_only_once() -> None:
    (worker,) = WORKERS.glob("search.*.min.js")
    patched = search.patch_search_worker(worker.read_text(encoding="utf-8"), "../paper-notes-segment.js")
    assert patched.startswith('importScripts("../paper-notes-segment.js");\n')
    assert patched.count("paperNotesSegment(") == 1 and "invertedIndex)].join" not in patched
    assert search.patch_search_worker(patched, "../paper-notes-segment.js") == patched  # already done
    with pytest.raises(ValueError, match="0 places that segment Han runs, expected 1"):
        search.patch_search_worker("self.onmessage = () => {}", "x.js")


def test_segmenter_data_holds_the_words_of_the_text_with_jiebas_log_probabilities() -> None:
    search.add_words(["掩码单元"])
    data = search.segmenter_data({"删掉掩码单元"})
    total = jieba.dt.total
    assert data["words"]["掩码单元"] == math.log(jieba.dt.FREQ["掩码单元"]) - math.log(total)
    assert "删掉" in data["words"] and all(len(w) <= data["max_length"] for w in data["words"])
    assert set(data["emit"]["B"]) <= set("删掉掩码单元")  # HMM tables only for the text's characters
    assert data["single"] == -math.log(total)
    assert "__SEGMENTER_DATA__" not in search.segmenter_script(data)


def test_adding_words_twice_leaves_jiebas_dictionary_as_it_was() -> None:
    search.add_words(["网格扩展"])
    total = jieba.dt.total
    search.add_words(["网格扩展", "English only"])  # a rebuild under mkdocs serve adds the glossary again
    assert jieba.dt.total == total
