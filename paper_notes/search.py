"""Chinese search: the query typed in the browser is cut into words exactly as jieba cut the index.

Material's search plugin segments every run of Han characters in the pages with jieba at build
time. In the browser its search worker cuts a query's Han runs differently: greedily, by the
words it finds in the index, with no word frequencies. The two disagree (掩码单元 became
``掩码* 单*``), so results claimed that words were missing from pages that contain them.

This module ships jieba's own algorithm to the browser, restricted to the site's text:

- :func:`segmenter_data` collects, from the built search index, every dictionary word that occurs
  in the site's Han runs with jieba's log probability for it, and the hidden-Markov tables jieba
  uses for unknown words, restricted to the characters the site uses. For any query made of text
  that appears on the site, jieba's word graph over the query uses only these words, so the cut is
  the same as jieba's (the log probabilities are computed here, in Python, so the browser adds the
  very same floating-point numbers).
- ``segment.js`` (beside this file) is that algorithm in JavaScript; the build writes it, with
  the data, to ``assets/javascripts/paper-notes-segment.js``.
- :func:`patch_search_worker` makes Material's worker load that script and call it where it
  segmented Han runs itself. If a Material release changes that spot, the build fails with a
  message rather than fall back silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SEGMENTER_JS = "assets/javascripts/paper-notes-segment.js"
"""Site path of the generated segmenter (script + data)."""

_HAN_RUN = r"\p{script: Han}+"  # Material's definition of a run (backrefs syntax), see its search plugin

_WORKER_SEGMENT = re.compile(
    r'new RegExp\("\\\\p\{sc=Han\}\+","gu"\),(\w+)=>\[\.\.\.\w+\(\1,this\.index\.invertedIndex\)\]\.join\("\* "\)'
)
"""The minified call in Material's search worker that cut a query's Han runs (mkdocs-material 9.x)."""

_ADDED_WORDS: set[str] = set()


def add_words(words: Iterable[str]) -> None:
    """Add words with Han characters to jieba's dictionary, each once per process.

    ``jieba.add_word`` raises the dictionary's total count every time it is called, so calling it
    again on every ``mkdocs serve`` rebuild would shift every word's probability and the index's
    segmentation with it.
    """
    import jieba

    for word in sorted(set(words)):
        if word not in _ADDED_WORDS and re.search(r"[\u4e00-\u9fff]", word):
            jieba.add_word(word)
            _ADDED_WORDS.add(word)


def han_runs(index: dict[str, Any]) -> set[str]:
    """Every run of Han characters in a Material search index, as it was before segmentation."""
    from backrefs import bre

    pattern = bre.compile(_HAN_RUN, bre.UNICODE)
    runs: set[str] = set()
    for doc in index["docs"]:
        for field in ("title", "text"):
            runs.update(pattern.findall(doc.get(field, "").replace("\u200b", "")))
    return runs


def segmenter_data(runs: Iterable[str]) -> dict[str, Any]:
    """jieba's dictionary and HMM tables, restricted to what cutting ``runs`` (or parts of them) needs.

    Returns:
        ``words`` (word -> ``log(freq) - log(total)``, as jieba's route computes it), ``single``
        (the same for a character the dictionary does not know), ``max_length``, and the HMM's
        ``start``, ``trans`` and ``emit`` log probabilities (``emit`` only for characters in ``runs``).
    """
    import jieba
    from jieba import finalseg

    jieba.dt.check_initialized()
    freq, logtotal = jieba.dt.FREQ, math.log(jieba.dt.total)
    words: dict[str, float] = {}
    chars: set[str] = set()
    for run in runs:
        chars.update(run)
        for k in range(len(run)):  # jieba's get_DAG: extend while the fragment is a word or a prefix of one
            i, frag = k, run[k]
            while i < len(run) and frag in freq:
                if freq[frag]:
                    words[frag] = math.log(freq[frag]) - logtotal
                i += 1
                frag = run[k:i + 1]
    return {
        "words": dict(sorted(words.items())),
        "single": math.log(1) - logtotal,
        "max_length": max(map(len, words), default=1),
        "start": finalseg.start_P,
        "trans": finalseg.trans_P,
        "emit": {state: {c: p for c, p in sorted(table.items()) if c in chars} for state, table in finalseg.emit_P.items()},
    }


def segmenter_script(data: dict[str, Any]) -> str:
    """``segment.js`` with ``data`` filled in: defines ``self.paperNotesSegment(run) -> string[]``."""
    source = (Path(__file__).with_name("segment.js")).read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if "__SEGMENTER_DATA__" not in source:
        raise ValueError("segment.js has no __SEGMENTER_DATA__ placeholder")
    return source.replace("__SEGMENTER_DATA__", payload)


def patch_search_worker(worker_js: str, script_url: str) -> str:
    """Material's search worker, made to cut Han runs with ``paperNotesSegment`` from ``script_url``.

    Each run becomes its words set apart by spaces; Material then makes every term a prefix search
    (``掩码单元`` -> ``掩码单元*``, ``网格扩展`` -> ``网格* 扩展*``). Material's own code joined the pieces
    with ``"* "``, so every piece but the last got two stars and was reported missing on every
    result. The spaces also part a run from Latin letters beside it (``Hiera的unroll``), as the
    index's ``\\u200b`` does.

    Raises:
        ValueError: if the worker does not contain the call this replaces exactly once.
    """
    if "paperNotesSegment" in worker_js:
        return worker_js
    patched, count = _WORKER_SEGMENT.subn(
        lambda m: f'new RegExp("\\\\p{{sc=Han}}+","gu"),{m.group(1)}=>" "+paperNotesSegment({m.group(1)}).join(" ")+" "',
        worker_js)
    if count != 1:
        raise ValueError(f"Material's search worker has {count} places that segment Han runs, expected 1; "
                         "update paper_notes/search.py for this mkdocs-material version")
    return f"importScripts({json.dumps(script_url)});\n" + patched
