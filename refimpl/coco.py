r"""COCO's run-length encoding of masks and its mask AP, as the COCO API defines them.

The COCO data set stores each mask as a run-length encoding (RLE) and scores instance masks by
mask AP. The COCO API (``pycocotools``) defines both: the RLE and its text form in
``maskApi.c``, AP in ``cocoeval.py`` (``COCOeval`` with ``iouType="segm"``). This module writes
them from those definitions; ``tests/test_coco.py`` compares every string and number with
pycocotools, the anchor.

**The RLE.** An ``(h, w)`` mask is read in column-major order (down the first column, then the
next) as alternating runs of 0s and 1s; ``counts`` are the run lengths, beginning with a run of
0s (of length 0 when the first pixel is inside). Uncompressed, ``counts`` is a list of ints (what
[`encode_rle`][refimpl.sam2.automatic_mask_generator.encode_rle] writes); compressed
([`compress`][refimpl.coco.compress]), it is a string of characters ``'0'`` to ``'o'``.
Area and IoU are computed from the runs, no mask decoded ([`area`][refimpl.coco.area],
[`iou`][refimpl.coco.iou]).

**Mask AP** ([`evaluate`][refimpl.coco.evaluate]). Per category and image, the detections are
sorted by score (ties keep their order), the best 100 kept, and matched greedily, best first, to
the ground-truth objects at each IoU threshold 0.50, 0.55, ..., 0.95: a detection takes the
free object it overlaps most (IoU at least the threshold), a regular object before an ignored
one; a crowd region is never used up. Objects outside an area range, and crowd regions, are
*ignored*: a detection matched to one, or unmatched and itself outside the area range, counts
neither as a hit nor as a false positive. Over all images of a category, the detections sorted
by score give a precision-recall curve; precision is made monotone (at each recall, the best
precision at that recall or beyond) and read at 101 recall points 0, 0.01, ..., 1, whose mean is
the AP. Categories are averaged; ``-1`` marks what is undefined (no object to find).
[`MaskEvaluation.summary`][refimpl.coco.MaskEvaluation.summary] gives the 12 numbers of
``COCOeval.summarize``.

Shape letters: ``D`` detections and ``G`` ground-truth objects of an image and category,
``T`` IoU thresholds (10), ``R`` recall points (101), ``K`` categories, ``A`` area ranges (4),
``M`` detection limits (3), ``N`` detections of a category over all images.

```python
evaluation = evaluate(ground_truth, detections)  # COCO dataset dict, COCO results list
evaluation.summary()["AP"], evaluation.average_precision(iou=0.5)
```
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import checks

__all__ = [
    "AREA_RANGES",
    "IOU_THRESHOLDS",
    "MAX_DETS",
    "RECALL_POINTS",
    "SUMMARY",
    "MaskEvaluation",
    "area",
    "compress",
    "decompress",
    "evaluate",
    "iou",
]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""``(T,)`` the IoU thresholds 0.50:0.05:0.95, the same floats as ``COCOeval``'s ``Params.iouThrs``."""

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""``(R,)`` the recall points at which precision is read, ``Params.recThrs``."""

MAX_DETS = (1, 10, 100)
"""The detection limits per image and category, ``Params.maxDets``; AP uses the last."""

AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
"""Object areas in pixels, both ends included, ``Params.areaRng`` with its labels."""

SUMMARY = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
"""The names of ``COCOeval.summarize``'s 12 numbers, in its order."""


# --- the RLE and its text form (maskApi.c) -------------------------------------------------------


class _Rle(NamedTuple):
    """A mask as ``h, w`` and its run lengths (int64), checked."""

    h: int
    w: int
    counts: np.ndarray


def _to_string(counts: np.ndarray) -> str:
    """Run lengths -> COCO's text (``rleToString``): LEB128-like, 5 bits per character.

    From the fourth run on, a run is written as its difference from the run two before (the
    run of the same kind, 0s or 1s, in the column before, roughly). Each number is written
    least-significant 5 bits first, one character ``48 + bits`` per group, with ``0x20`` set
    while more groups follow; the last group's ``0x10`` is the sign.
    """
    if len(counts) == 0:
        return ""
    x = counts.astype(np.int64)
    x[3:] -= counts[1:-2]  # x[i] = counts[i] - counts[i - 2] for i > 2
    groups, written = [], []
    writing = np.ones(len(x), dtype=bool)  # numbers with characters still to write
    while writing.any():
        c = x & 0x1F  # the next 5 bits
        x = x >> 5  # arithmetic shift: a negative number ends in ...111
        more = np.where(c & 0x10, x != -1, x != 0)  # what is left is not just the sign that c's top bit gives
        groups.append(c | np.where(more, 0x20, 0))
        written.append(writing)
        writing = writing & more  # a new array: the one in `written` stays
    characters = np.stack(groups, 1)[np.stack(written, 1)] + 48  # (n, groups) -> each number's characters, in order
    return characters.astype(np.uint8).tobytes().decode("ascii")


def _from_strings(texts: list[bytes]) -> list[np.ndarray]:
    """COCO's texts -> their run lengths (``rleFrString``), the inverse of ``_to_string``; checked by the caller.

    All texts are read in one pass: every text ends with a number's last character, so the
    numbers can be cut from the texts one after another.
    """
    raw = np.frombuffer(b"".join(texts), dtype=np.uint8)  # (characters,) each 48 + 6 bits
    ends = np.flatnonzero(raw < 48 + 0x20)  # (numbers,) a character without the continuation bit ends its number
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    length = ends - starts + 1
    x = np.zeros(len(ends), dtype=np.int64)
    for k in range(int(length.max()) if len(ends) else 0):  # group k holds bits 5k to 5k + 4 (most numbers have one)
        long = np.flatnonzero(length > k)
        x[long] |= ((raw[starts[long] + k].astype(np.int64) - 48) & 0x1F) << (5 * k)
    x -= ((raw[ends] - 48) & 0x10 != 0) << (5 * length)  # the last group's sign bit set: negative
    # Undo the differences: run j > 2 of a text is x[j] + run j - 2, so runs 1, 3, 5, ... and 2, 4, 6, ...
    # are running sums of x; run 0 stands alone. C sums every second number over all texts; a
    # text's run is C minus C where its chain starts, plus that start's own x.
    per_text = np.diff(np.searchsorted(ends, np.cumsum([0] + [len(t) for t in texts])))  # numbers in each text
    first = np.repeat(np.cumsum(per_text) - per_text, per_text)  # (numbers,) the index of the text's run 0
    j = np.arange(len(x)) - first  # the run's index in its text
    C = np.empty_like(x)
    C[0::2], C[1::2] = np.cumsum(x[0::2]), np.cumsum(x[1::2])
    chain = np.where(j == 0, first, first + 2 - j % 2)  # where run j's chain starts: run 0, 1 or 2
    counts = C - C[chain] + x[chain]
    return np.split(counts, np.cumsum(per_text)[:-1])


def _rles(values: Sequence[object], names: Sequence[str]) -> list[_Rle]:
    """The door for RLEs: each ``{"size": [h, w], "counts": text or list}`` -> ``_Rle``, or a one-line error naming it."""
    sizes, texts, lists = [], {}, {}
    for i, (value, name) in enumerate(zip(values, names, strict=True)):
        if isinstance(value, list):
            raise ValueError(f"{name} is a polygon; expected an RLE {{'size': [h, w], 'counts': ...}} (polygons are not supported)")
        size, counts = (value.get("size"), value.get("counts")) if isinstance(value, dict) else (None, None)
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in size)):
            raise ValueError(f"{name}={str(value)[:80]!r} is not an RLE; expected {{'size': [h, w], 'counts': ...}} "
                             f"with non-negative int h, w")
        sizes.append((int(size[0]), int(size[1])))
        if isinstance(counts, (str, bytes)):
            text = counts.encode("ascii", errors="replace") if isinstance(counts, str) else counts
            codes = np.frombuffer(text, dtype=np.uint8)
            if ((codes < 48) | (codes > 111)).any() or len(codes) and (codes[-1] - 48) & 0x20:
                raise ValueError(f"{name}['counts']={counts[:40]!r} is not COCO's RLE text; expected characters '0' to 'o', "
                                 f"the last one without the continuation bit")
            texts[i] = text
        elif isinstance(counts, (list, tuple, np.ndarray)) and (len(counts) == 0 or np.asarray(counts).dtype.kind in "iu"):
            lists[i] = np.asarray(counts, dtype=np.int64).reshape(-1)
        else:
            raise ValueError(f"{name}['counts'] is {type(counts).__name__}; expected COCO's RLE text or a list of ints")
    runs = lists | dict(zip(texts, _from_strings(list(texts.values())))) if texts else lists
    out = []
    for i, ((h, w), name) in enumerate(zip(sizes, names)):
        if (runs[i] < 0).any() or runs[i].sum() != h * w:
            raise ValueError(f"{name} has runs {runs[i][:8].tolist()}... summing to {int(runs[i].sum())}; "
                             f"expected non-negative runs summing to h * w = {h * w}")
        out.append(_Rle(h, w, runs[i]))
    return out


def _rle(value: object, name: str) -> _Rle:
    """One RLE through the door of ``_rles``."""
    return _rles([value], [name])[0]


def compress(rle: dict[str, Any]) -> dict[str, Any]:
    """An RLE -> the compressed RLE, ``counts`` as COCO's text (``pycocotools.mask.frPyObjects``).

    Args:
        rle: ``{"size": [h, w], "counts": [...]}`` (or already compressed).

    Returns:
        ``{"size": [h, w], "counts": str}``, as pycocotools writes it (there ``bytes``); JSON-able.

    Raises:
        ValueError: if ``rle`` is not an RLE whose runs sum to ``h * w``.

    Examples:
        >>> compress({"size": [2, 3], "counts": [1, 2, 3]})
        {'size': [2, 3], 'counts': '123'}
        >>> compress({"size": [100, 100], "counts": [4000, 2000, 4000]})
        {'size': [100, 100], 'counts': 'Pm3`n1Pm3'}
    """
    h, w, counts = _rle(rle, "rle")
    return {"size": [h, w], "counts": _to_string(counts)}


def decompress(rle: dict[str, Any]) -> dict[str, Any]:
    """A compressed RLE -> the uncompressed one, ``counts`` as a list of ints (the inverse of ``compress``).

    [`decode_rle`][refimpl.sam2.automatic_mask_generator.decode_rle] turns it into the mask.

    Raises:
        ValueError: if ``rle`` is not an RLE.

    Examples:
        >>> decompress({"size": [100, 100], "counts": "Pm3`n1Pm3"})
        {'size': [100, 100], 'counts': [4000, 2000, 4000]}
    """
    h, w, counts = _rle(rle, "rle")
    return {"size": [h, w], "counts": counts.tolist()}


# --- area and IoU, from the runs -----------------------------------------------------------------


def _inside(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of 1s as pixel intervals ``[start, end)`` of the column-major line (every second run)."""
    ends = np.cumsum(counts)
    return (ends - counts)[1::2], ends[1::2]


def _area(counts: np.ndarray) -> int:
    return int(counts[1::2].sum())


def _iou(dt: Sequence[np.ndarray], gt: Sequence[np.ndarray], crowd: np.ndarray, pixels: int) -> np.ndarray:
    """``(D, G)`` IoUs of masks of one size (``pixels`` = ``h * w``), as ``rleIou``.

    The intersection comes from the runs: put the ground truths one after another on one line
    (object ``g``'s pixel ``i`` at ``g * pixels + i``) and let ``covered(x)`` count their pixels
    before ``x``; a detection's run ``[a, b)`` shares ``covered(b + g * pixels) - covered(a + g * pixels)``
    pixels with object ``g``. A crowd region divides by the detection's area instead of the
    union (COCO's ``iscrowd`` rule: a detection inside a crowd is not penalised for the rest of it).
    """
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    G = len(gt)
    shift = np.arange(G) * pixels
    objects = [_inside(c) for c in gt]
    starts = np.concatenate([s + g * pixels for g, (s, _) in enumerate(objects)])  # sorted and disjoint on the line
    ends = np.concatenate([e + g * pixels for g, (_, e) in enumerate(objects)])
    before = np.concatenate([[0], np.cumsum(ends - starts)])  # before[j]: pixels inside the first j intervals
    end_of = np.concatenate([[0], ends])  # end_of[j]: where the j-th interval (j - 1 from 0) ends

    def covered(x: np.ndarray) -> np.ndarray:  # (G, n) positions -> pixels inside before each
        j = np.searchsorted(starts, x, side="right")  # the intervals that start at or before x
        return before[j] - np.maximum(end_of[j] - x, 0)  # the last of them may reach past x

    runs = [_inside(c) for c in dt]
    a = np.concatenate([s for s, _ in runs])  # (n,) every run of 1s of every detection
    b = np.concatenate([e for _, e in runs])
    shared = covered(b + shift[:, None]) - covered(a + shift[:, None])  # (G, n)
    edges = np.concatenate([[0], np.cumsum([len(s) for s, _ in runs])]).astype(np.int64)  # d's runs: edges[d] to edges[d + 1]
    total = np.concatenate([np.zeros((G, 1), np.int64), np.cumsum(shared, axis=1)], axis=1)
    inter = (total[:, edges[1:]] - total[:, edges[:-1]]).T  # (D, G)
    dt_area = np.array([_area(c) for c in dt])[:, None]  # (D, 1)
    gt_area = np.array([_area(c) for c in gt])[None, :]  # (1, G)
    union = np.where(crowd[None, :], dt_area, dt_area + gt_area - inter)
    return np.where(inter > 0, inter / np.maximum(union, 1), 0.0)


def area(rle: dict[str, Any]) -> int:
    """The pixels inside a mask, from its RLE (``pycocotools.mask.area``).

    Raises:
        ValueError: if ``rle`` is not an RLE.

    Examples:
        >>> area({"size": [100, 100], "counts": "Pm3`n1Pm3"})
        2000
    """
    return _area(_rle(rle, "rle").counts)


def iou(detections: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]],
        iscrowd: Sequence[bool | int]) -> np.ndarray:
    """IoU of every detection with every ground-truth mask (``pycocotools.mask.iou``), from the RLEs.

    Against a crowd region (``iscrowd``), the "IoU" is the share of the detection inside it:
    the intersection over the detection's area.

    Args:
        detections: ``D`` RLEs.
        ground_truth: ``G`` RLEs, all of the detections' size.
        iscrowd: ``G`` flags.

    Returns:
        ``(D, G)`` float64 in ``[0, 1]``.

    Raises:
        ValueError: if an entry is not an RLE, the sizes differ, or ``iscrowd`` is not ``G`` flags.

    Examples:
        >>> half = {"size": [2, 2], "counts": [0, 2, 2]}  # the first column
        >>> iou([half], [{"size": [2, 2], "counts": [0, 4]}, {"size": [2, 2], "counts": [0, 4]}], [0, 1]).tolist()
        [[0.5, 1.0]]
    """
    dt = _rles(detections, [f"detections[{i}]" for i in range(len(detections))])
    gt = _rles(ground_truth, [f"ground_truth[{i}]" for i in range(len(ground_truth))])
    sizes = {(r.h, r.w) for r in dt + gt}
    if len(sizes) > 1:
        raise ValueError(f"the masks have sizes {sorted(sizes)}; expected one size for all of them")
    crowd = np.asarray(iscrowd)
    if crowd.shape != (len(gt),) or not np.isin(crowd, (0, 1)).all():
        raise ValueError(f"iscrowd={list(iscrowd)[:8]!r} is not {len(gt)} flags; expected one 0/1 per ground-truth mask")
    h, w = sizes.pop() if sizes else (0, 0)
    return _iou([r.counts for r in dt], [r.counts for r in gt], crowd.astype(bool), h * w)


# --- matching, per image and category (COCOeval.evaluateImg) -------------------------------------


class _Objects(NamedTuple):
    """The ground truth or the detections of one image and category, in the input's order."""

    counts: list[np.ndarray]
    area: np.ndarray  # (n,) float: an annotation's "area" field; a detection's mask area
    crowd: np.ndarray  # (n,) bool; never for detections
    score: np.ndarray  # (n,) float; zeros for the ground truth


class _Matches(NamedTuple):
    """One image and category: its detections, best first, and how each was matched."""

    score: np.ndarray  # (D,) at most MAX_DETS[-1]
    matched: np.ndarray  # (T, A, D) bool: took an object
    ignored: np.ndarray  # (T, A, D) bool: counts neither way
    gt_ignored: np.ndarray  # (A, G) bool


_AREA = np.array(list(AREA_RANGES.values()))  # (A, 2)


def _outside(areas: np.ndarray) -> np.ndarray:
    """``(n,)`` areas -> ``(A, n)``: outside each area range (its ends belong to it)."""
    return (areas[None] < _AREA[:, :1]) | (areas[None] > _AREA[:, 1:])


def _match(gt: _Objects, dt: _Objects, pixels: int) -> _Matches:
    """Greedy matching at every IoU threshold and area range at once, detections best first (``evaluateImg``)."""
    order = np.argsort(-dt.score, kind="stable")[:MAX_DETS[-1]]  # ties keep the results' order (COCO: mergesort)
    ious = _iou([dt.counts[i] for i in order], gt.counts, gt.crowd, pixels)  # (D, G)
    gt_ignored = gt.crowd[None] | _outside(gt.area)  # (A, G): crowd regions are always ignored
    D, G = ious.shape
    T, A = len(IOU_THRESHOLDS), len(AREA_RANGES)
    matched, on_ignored = np.zeros((T, A, D), bool), np.zeros((T, A, D), bool)
    taken = np.zeros((T, A, G), bool)  # objects matched so far; a crowd region is never used up
    areas = np.arange(A)
    for d in np.flatnonzero((ious >= IOU_THRESHOLDS[0]).any(1)):  # the others match nothing at any threshold
        good = (~taken | gt.crowd) & (ious[d] >= IOU_THRESHOLDS[:, None, None])  # (T, A, G) free and close enough
        regular = good & ~gt_ignored
        candidates = np.where(regular.any(-1, keepdims=True), regular, good)  # an ignored object only if no regular one
        found = candidates.any(-1)  # (T, A)
        m = G - 1 - np.where(candidates, ious[d], -1.0)[..., ::-1].argmax(-1)  # (T, A) COCO's loop keeps the last of equal IoUs
        t, a = np.nonzero(found)
        taken[t, a, m[t, a]] = True
        matched[:, :, d] = found
        on_ignored[:, :, d] = found & gt_ignored[areas, m]
    # an unmatched detection outside the area range is not a false positive there
    ignored = on_ignored | (~matched & _outside(dt.area[order])[None])
    return _Matches(dt.score[order], matched, ignored, gt_ignored)


# --- the precision-recall table (COCOeval.accumulate) --------------------------------------------


def _accumulate(per_image: list[_Matches], precision: np.ndarray, recall: np.ndarray) -> None:
    """One category's images -> its cells of ``precision`` ``(T, R, A, M)`` and ``recall`` ``(T, A, M)``, in place."""
    for a in range(len(AREA_RANGES)):
        objects = sum(int((~e.gt_ignored[a]).sum()) for e in per_image)  # what there is to find
        if objects == 0:
            continue  # undefined: stays -1
        for m, limit in enumerate(MAX_DETS):
            score = np.concatenate([e.score[:limit] for e in per_image])  # images in id order
            order = np.argsort(-score, kind="stable")
            matched = np.concatenate([e.matched[:, a, :limit] for e in per_image], axis=1)[:, order]  # (T, N)
            ignored = np.concatenate([e.ignored[:, a, :limit] for e in per_image], axis=1)[:, order]
            tp = np.cumsum(matched & ~ignored, axis=1).astype(float)  # (T, N)
            fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
            N = tp.shape[1]
            rc = tp / objects
            pr = tp / (fp + tp + np.spacing(1))
            recall[:, a, m] = rc[:, -1] if N else 0.0
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # the envelope: best precision at this recall or beyond
            for t in range(len(IOU_THRESHOLDS)):
                i = np.searchsorted(rc[t], RECALL_POINTS, side="left")  # the first detection reaching each recall point
                precision[t, :, a, m] = np.where(i < N, pr[t, np.minimum(i, N - 1)] if N else 0.0, 0.0)  # never reached: 0


# --- the evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MaskEvaluation:
    """COCO mask AP's tables (``COCOeval.eval``), ``-1`` where undefined.

    Attributes:
        precision: ``(T, R, K, A, M)`` interpolated precision at each IoU threshold, recall
            point, category, area range (``AREA_RANGES`` order) and detection limit.
        recall: ``(T, K, A, M)`` the recall reached.
        category_ids: the ``K`` categories, in id order.
    """

    precision: np.ndarray
    recall: np.ndarray
    category_ids: tuple[int, ...]

    def _mean(self, table: np.ndarray, iou: float | None, area: str, max_dets: int) -> float:
        """``COCOeval.summarize``'s mean of the defined cells."""
        checks.choice(area, "area", tuple(AREA_RANGES))
        if max_dets not in MAX_DETS:
            raise ValueError(f"max_dets={max_dets!r} is not one of COCO's limits; expected one of {MAX_DETS}")
        if iou is not None:
            at = np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))  # 0.5 and 0.75 are the thresholds' own floats; 0.7 is close
            if len(at) == 0:
                raise ValueError(f"iou={iou!r} is not one of the thresholds; expected one of 0.5, 0.55, ..., 0.95")
            table = table[at]
        cells = table[..., list(AREA_RANGES).index(area), MAX_DETS.index(max_dets)]
        return float(np.mean(cells[cells > -1])) if (cells > -1).any() else -1.0

    def average_precision(self, iou: float | None = None, area: str = "all", max_dets: int = 100) -> float:
        """AP: the mean precision over recall points, categories and (without ``iou``) the thresholds.

        Args:
            iou: one IoU threshold (``0.5``, ``0.7``, ``0.75``, ...), or ``None`` for all ten.
            area: ``"all"``, ``"small"``, ``"medium"`` or ``"large"``.
            max_dets: 1, 10 or 100.

        Returns:
            AP in ``[0, 1]``, ``-1`` if no cell is defined.

        Raises:
            ValueError: for a threshold, area or limit that COCO does not have.
        """
        return self._mean(self.precision, iou, area, max_dets)

    def average_recall(self, iou: float | None = None, area: str = "all", max_dets: int = 100) -> float:
        """AR: the mean recall over categories and (without ``iou``) the thresholds; arguments as ``average_precision``."""
        return self._mean(self.recall, iou, area, max_dets)

    def summary(self) -> dict[str, float]:
        """``COCOeval.summarize``'s 12 numbers for masks, by the names of ``SUMMARY``.

        Examples:
            >>> gt = {"images": [{"id": 1, "height": 2, "width": 2}], "categories": [{"id": 1}],
            ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 2, "iscrowd": 0,
            ...                        "segmentation": {"size": [2, 2], "counts": [0, 2, 2]}}]}
            >>> found = [{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": {"size": [2, 2], "counts": "022"}}]
            >>> summary = evaluate(gt, found).summary()
            >>> round(summary["AP"], 12), summary["APm"]  # precision tp / (tp + fp + eps), as COCO
            (1.0, -1.0)
        """
        ap, ar = self.average_precision, self.average_recall
        return dict(zip(SUMMARY, (
            ap(), ap(iou=0.5), ap(iou=0.75), ap(area="small"), ap(area="medium"), ap(area="large"),
            ar(max_dets=1), ar(max_dets=10), ar(), ar(area="small"), ar(area="medium"), ar(area="large"),
        ), strict=True))


def _dataset(ground_truth: object, detections: object) -> tuple[dict[Any, tuple[int, int]], list[Any], dict[tuple, _Objects]]:
    """The door of ``evaluate``: everything checked once -> image sizes, category ids, and the objects
    per ``(kind, image id, category id)``, in the inputs' order."""
    if not isinstance(ground_truth, dict) or not all(isinstance(ground_truth.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError("ground_truth is not a COCO dataset; expected a dict with lists 'images', 'annotations' and 'categories'")
    if not isinstance(detections, (list, tuple)):
        raise TypeError(f"detections must be a list of COCO results, got {type(detections).__name__}")
    size = {im.get("id"): (im.get("height"), im.get("width")) for im in ground_truth["images"] if isinstance(im, dict)}
    categories = {c.get("id") for c in ground_truth["categories"] if isinstance(c, dict)}
    entries = []  # (kind, image id, category id, segmentation, name, area or score, crowd)

    def add(kind: str, entry: object, name: str) -> None:
        if not isinstance(entry, dict) or entry.get("image_id") not in size:
            raise ValueError(f"{kind} hold {str(entry)[:60]!r}, whose image_id is not in ground_truth['images']; "
                             f"expected {'COCO results' if kind == 'detections' else 'annotations'} of its images")
        if entry.get("category_id") not in categories:
            return  # COCOeval evaluates the dataset's categories only
        if kind == "detections":
            number, crowd = checks.real(entry.get("score"), f"{name}['score']", example="0.9"), 0
        else:
            number, crowd = checks.real(entry.get("area"), f"{name}['area']", 0, example="100"), entry.get("iscrowd", 0)
            if crowd not in (0, 1):
                raise ValueError(f"{name}['iscrowd']={crowd!r}; expected 0 or 1")
        entries.append((kind, entry["image_id"], entry["category_id"], entry.get("segmentation"), name, number, bool(crowd)))

    ids = [a.get("id") if isinstance(a, dict) else None for a in ground_truth["annotations"]]
    if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 1 for i in ids) or len(set(ids)) < len(ids):
        raise ValueError("ground_truth['annotations'] need distinct int ids >= 1; COCOeval finds annotations by id "
                         "and reads id 0 as 'no match'")
    for i, a in enumerate(ground_truth["annotations"]):
        add("annotations", a, f"ground_truth['annotations'][{i}]")
    for i, d in enumerate(detections):
        add("detections", d, f"detections[{i}]")
    rows: dict[tuple, list] = {}
    for (kind, image, category, _, name, number, crowd), (h, w, counts) in zip(
            entries, _rles([e[3] for e in entries], [f"{e[4]}['segmentation']" for e in entries]), strict=True):
        if (h, w) != size[image]:
            raise ValueError(f"{name}'s mask is {h} x {w}; expected the size of image {image!r}, {size[image][0]} x {size[image][1]}")
        # a ground-truth object's area is its "area" field; a detection's, its mask's (as loadRes sets it)
        rows.setdefault((kind, image, category), []).append(
            (counts, _area(counts), False, number) if kind == "detections" else (counts, number, crowd, 0.0))
    objects = {key: _Objects([r[0] for r in v], np.array([r[1] for r in v], float), np.array([r[2] for r in v], bool),
                             np.array([r[3] for r in v], float)) for key, v in rows.items()}
    return size, sorted(categories), objects


_NONE = _Objects([], np.zeros(0), np.zeros(0, bool), np.zeros(0))


def evaluate(ground_truth: dict[str, Any], detections: Sequence[dict[str, Any]]) -> MaskEvaluation:
    """COCO mask AP of the detections: ``COCOeval(gt, dt, "segm")``'s ``evaluate`` and ``accumulate``.

    The default parameters of ``COCOeval`` (``IOU_THRESHOLDS``, ``RECALL_POINTS``, ``MAX_DETS``,
    ``AREA_RANGES``, categories used). A ground-truth object's area is its annotation's
    ``area`` field, a detection's the pixels of its mask; where pycocotools' ``loadRes`` reads
    results that carry a ``bbox``, it takes the box's area instead (it looks at the first
    result only), which changes the small, medium and large numbers; here the mask's area always
    counts. Annotations and detections of a category the dataset does not list are left out,
    as by COCOeval.

    Args:
        ground_truth: a COCO dataset: ``images`` (``id``, ``height``, ``width``), ``categories``
            (``id``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``segmentation``
            as an RLE, ``area``, ``iscrowd``).
        detections: COCO results: ``image_id``, ``category_id``, ``segmentation`` (an RLE),
            ``score``. May be empty.

    Returns:
        The [`MaskEvaluation`][refimpl.coco.MaskEvaluation]; its ``summary()`` holds AP, AP50, ...

    Raises:
        ValueError: if ``ground_truth`` is not a COCO dataset, an annotation id is missing or
            repeated, an ``image_id`` is not in it, a segmentation is not an RLE of its image's
            size, ``iscrowd`` is not 0 or 1, or a score or area is NaN or out of range.
        TypeError: if ``detections`` is not a list, or a score or area is not a number.
    """
    size, category_ids, objects = _dataset(ground_truth, detections)
    T, R, K, A, M = len(IOU_THRESHOLDS), len(RECALL_POINTS), len(category_ids), len(AREA_RANGES), len(MAX_DETS)
    precision, recall = -np.ones((T, R, K, A, M)), -np.ones((T, K, A, M))
    for k, category in enumerate(category_ids):
        per_image = []
        for image in sorted(size):  # an image with neither objects nor detections of the category has no say
            gt, dt = (objects.get((kind, image, category), _NONE) for kind in ("annotations", "detections"))
            if gt.counts or dt.counts:
                per_image.append(_match(gt, dt, size[image][0] * size[image][1]))
        _accumulate(per_image, precision[:, :, k], recall[:, k])
    return MaskEvaluation(precision, recall, tuple(category_ids))
