"""The numbers of a paper's table, as stored in ``papers/<id>.yaml`` (``outline`` item ``results``).

Figures that draw a paper's measurements read them here, so a curve on the site and the table
beside it come from the same file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..outline import Results
from ..registry import Paper, load_papers

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ("papers",)
"""What the figures that import this module read: part of their build-cache key."""


@lru_cache(maxsize=1)
def papers() -> dict[str, Paper]:
    return load_papers(ROOT / "papers")


def results(paper_id: str, kind: str, n: str) -> Results:
    """``results`` of item ``n`` of ``kind`` in the paper's outline.

    Raises:
        KeyError: naming the paper and item, if it is missing or carries no results.
    """
    paper = papers()[paper_id]
    item = paper.outline.find(kind, n) if paper.outline else None
    if item is None or item.results is None:
        raise KeyError(f"papers/{paper_id}.yaml has no results for {kind} {n}")
    return item.results


def number(cell: str) -> float:
    """``"99.9†"`` -> 99.9, ``"8（默认）"`` -> 8.0: the leading number of a cell."""
    match = re.match(r"\s*(-?[0-9]+(?:\.[0-9]+)?)", cell)
    if match is None:
        raise ValueError(f"cell {cell!r} does not start with a number")
    return float(match.group(1))
