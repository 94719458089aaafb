r"""The five measures that salient and camouflaged object detection papers report.

A model for salient object detection (SOD) or camouflaged object detection (COD) outputs a
grey map: for every pixel, how sure it is that the pixel belongs to the object. A paper scores
such maps against binary ground-truth masks with the same small family of measures, each
rewarding something different:

| measure | function | rewards |
| --- | --- | --- |
| MAE | [`mean_absolute_error`][refimpl.sodmetrics.mean_absolute_error] | every pixel close to its truth, the object's size aside |
| $F_\beta$ | [`f_measure`][refimpl.sodmetrics.f_measure] | precision and recall of the map cut at a threshold |
| weighted $F_\beta^w$ | [`weighted_f_measure`][refimpl.sodmetrics.weighted_f_measure] | the same, with errors weighted by where they are |
| S-measure $S_\alpha$ | [`s_measure`][refimpl.sodmetrics.s_measure] | the object's structure: uniform inside, sharp borders, right place |
| E-measure $E_\phi$ | [`e_measure`][refimpl.sodmetrics.e_measure] | pixels and the image-level mean agreeing at once |

Each function scores one map. A paper reports the mean over a data set, and for $F_\beta$ and
$E_\phi$ over thresholds too: the accumulators [`MeanAbsoluteError`][refimpl.sodmetrics.MeanAbsoluteError],
[`Fmeasure`][refimpl.sodmetrics.Fmeasure], [`WeightedFmeasure`][refimpl.sodmetrics.WeightedFmeasure],
[`Smeasure`][refimpl.sodmetrics.Smeasure], [`Emeasure`][refimpl.sodmetrics.Emeasure] (and
[`Measures`][refimpl.sodmetrics.Measures], all five at once) take the maps one by one with
``step(pred, gt)`` and average them as the evaluation toolkits do: the curves are averaged per
threshold over the images, then the mean and the maximum are taken over the averaged curve.

Shape letters: ``H``, ``W``: the map's height and width in pixels; ``N = H W``.

**Inputs, as the toolkits read them.** ``pred`` is a 2-D map, either ``uint8`` grey levels
(a PNG as read from disk: divided by 255 and stretched to $[0, 1]$ by its minimum and maximum,
MATLAB's ``mapminmax(im2double(·))``; a constant map is only divided) or floating values in
$[0, 1]$, used as they are, or ``bool``. ``gt`` is a mask of the same shape: ``bool``, ``uint8``
grey levels (object where $> 128$), or floating 0/1. NumPy arrays and CPU or GPU tensors are
accepted; everything is computed in float64 with NumPy and SciPy.

**Anchor.** Every measure equals ``py_sod_metrics`` 1.6.2 (lartpang/PySODMetrics, the code the
SOD/COD evaluation toolkits use, written to match the authors' MATLAB code) within $10^{-10}$,
``tests/test_sodmetrics.py`` checks it; its constant ``eps`` is MATLAB's, $2^{-52}$. Two
departures, each where ``py_sod_metrics`` returns a value that is not a score: the S-measure
gives a region of zero area zero weight (``py_sod_metrics`` returns NaN when the object's
centroid lies in the last row or column, e.g. a one-pixel object at the border), and the
E-measure refuses a one-pixel map (the official code divides by $N - 1$ and returns
$1/\mathrm{eps} \approx 4.5 \times 10^{15}$). Curves are indexed by threshold, ``curve[t]`` at
$t / 255$; ``py_sod_metrics`` stores the same 256 values from $t = 255$ down to $0$.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from . import checks

__all__ = [
    "EPS",
    "Emeasure",
    "EmeasureCurves",
    "Fmeasure",
    "FmeasureCurves",
    "Maps",
    "MeanAbsoluteError",
    "Measures",
    "Scores",
    "Smeasure",
    "WeightedFmeasure",
    "e_measure",
    "f_measure",
    "mean_absolute_error",
    "prepare",
    "s_measure",
    "weighted_f_measure",
]

EPS = float(np.spacing(1))
"""MATLAB's ``eps``, $2^{-52}$: the official codes add it to denominators, and so do we."""

LEVELS = 256
"""Thresholds of the $F_\\beta$ and $E_\\phi$ curves: $t / 255$ for $t = 0, \\dots, 255$."""


# ----------------------------------------------------------------------------------------------
# The door: what a map and a mask may be
# ----------------------------------------------------------------------------------------------

class Maps(NamedTuple):
    """A prediction and its ground truth, as every measure reads them."""

    pred: np.ndarray
    """``(H, W)`` float64 in $[0, 1]$."""
    gt: np.ndarray
    """``(H, W)`` bool, True on the object."""


def _array(value: object, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.double() if value.dtype == torch.bfloat16 else value).numpy()  # NumPy has no bfloat16
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or a torch.Tensor of shape (H, W), got {type(value).__name__}")
    return value


def prepare(pred: object, gt: object, min_pixels: int = 1) -> Maps:
    """Check a prediction and its mask once and bring them to float64 ``[0, 1]`` and bool (the door of every measure).

    Args:
        pred: ``(H, W)`` map: ``uint8`` grey levels (divided by 255, then stretched to
            ``[0, 1]`` unless constant, as the toolkits read PNG files), floats in ``[0, 1]``
            (used as they are) or ``bool``.
        gt: ``(H, W)`` mask: ``bool``, ``uint8`` grey levels (object where ``> 128``; 0/1
            values are refused, they would read as no object) or floats that are all 0 or 1.
        min_pixels: the fewest pixels the measure can score: 1, or 2 for the E-measure.

    Returns:
        ``Maps(pred, gt)``.

    Raises:
        TypeError: if either is not an array or tensor, or has another dtype.
        ValueError: if either is not 2-D, the shapes differ, the map is smaller than
            ``min_pixels``, or a value is outside what its dtype allows.

    Examples:
        >>> import numpy as np
        >>> maps = prepare(np.array([[0, 51], [102, 255]], np.uint8), np.array([[0, 0], [255, 255]], np.uint8))
        >>> maps.pred.tolist(), maps.gt.tolist()
        ([[0.0, 0.2], [0.4, 1.0]], [[False, False], [True, True]])
        >>> prepare(np.zeros((2, 3)), np.zeros((3, 2), bool))
        Traceback (most recent call last):
        ...
        ValueError: pred has shape (2, 3) but gt has shape (3, 2); expected two (H, W) maps of one shape
    """
    p, g = _array(pred, "pred"), _array(gt, "gt")
    for name, x in (("pred", p), ("gt", g)):
        if x.ndim != 2:
            raise ValueError(f"{name} has shape {x.shape} ({x.ndim}-D); expected a 2-D (H, W) map")
    if p.shape != g.shape:
        raise ValueError(f"pred has shape {p.shape} but gt has shape {g.shape}; expected two (H, W) maps of one shape")
    if p.size < min_pixels:
        why = " (the E-measure divides by the pixel count minus one)" if min_pixels == 2 else ""
        raise ValueError(f"pred has shape {p.shape}, {p.size} pixel(s); expected at least {min_pixels}{why}")
    return Maps(_pred(p), _gt(g))


def _pred(p: np.ndarray) -> np.ndarray:
    if p.dtype == np.uint8:  # mapminmax(im2double(pred)); min and max read on the bytes, the same values
        lo, hi = p.min() / 255, p.max() / 255
        p = p / 255
        return (p - lo) / (hi - lo) if hi != lo else p
    if p.dtype == np.bool_:
        return p.astype(np.float64)
    if not np.issubdtype(p.dtype, np.floating):
        raise TypeError(f"pred has dtype {p.dtype}; expected uint8 grey levels, bool, or floats in [0, 1]")
    p = np.asarray(p, dtype=np.float64)  # no copy of float64
    if not np.isfinite(p).all():
        raise ValueError("pred holds NaN or infinite values; expected finite values in [0, 1]")
    if p.size and not (p.min() >= 0 and p.max() <= 1):
        raise ValueError(f"pred holds values in [{p.min():g}, {p.max():g}]; expected floats in [0, 1] "
                         f"(pass uint8 grey levels to have them divided by 255 and stretched)")
    return p


def _gt(g: np.ndarray) -> np.ndarray:
    if g.dtype == np.bool_:
        return g
    if g.dtype == np.uint8:
        if g.size and g.max() == 1:
            raise ValueError("gt is uint8 with values 0 and 1 only; expected a 0/255 mask (object where > 128) "
                             "or a bool mask, e.g. gt.astype(bool)")
        return g > 128
    if not np.issubdtype(g.dtype, np.floating):
        raise TypeError(f"gt has dtype {g.dtype}; expected a bool mask, uint8 grey levels or floats 0/1")
    if not np.isin(g, (0, 1)).all():
        raise ValueError("gt holds floating values other than 0 and 1; expected a binary mask")
    return g == 1


def _real(value: object, name: str, low: float, high: float, low_open: bool, example: str) -> float:
    return checks.real(value, name, low, high, low_open=low_open, example=example)


# ----------------------------------------------------------------------------------------------
# MAE
# ----------------------------------------------------------------------------------------------

def mean_absolute_error(pred: object, gt: object) -> float:
    r"""The mean absolute error between the map and the mask (Perazzi et al., CVPR 2012).

    $$
    \mathrm{MAE} = \frac{1}{N} \sum_{x} \lvert S(x) - G(x) \rvert ,
    $$

    $S$ the map in $[0, 1]$, $G$ the mask in $\{0, 1\}$. Lower is better; a small object on a dark
    map scores well whatever the map says about the object.

    Args:
        pred: ``(H, W)`` map (see [`prepare`][refimpl.sodmetrics.prepare]).
        gt: ``(H, W)`` mask.

    Returns:
        MAE in ``[0, 1]``.

    Examples:
        >>> import numpy as np
        >>> mean_absolute_error(np.array([[0.0, 0.5]]), np.array([[False, True]]))
        0.25
    """
    return _mae(*prepare(pred, gt))


def _mae(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - gt)))


# ----------------------------------------------------------------------------------------------
# F-measure
# ----------------------------------------------------------------------------------------------

class FmeasureCurves(NamedTuple):
    """$F_\\beta$ at the adaptive threshold and at the 256 thresholds $t / 255$, with precision and recall."""

    adaptive: float
    """$F_\\beta$ of the map cut at $\\min(2 \\bar S, 1)$."""
    curve: np.ndarray
    """``(256,)``: $F_\\beta$ at threshold $t / 255$."""
    precision: np.ndarray
    """``(256,)``: precision at threshold $t / 255$."""
    recall: np.ndarray
    """``(256,)``: recall at threshold $t / 255$."""

    @property
    def mean(self) -> float:
        """Mean $F_\\beta$ over the thresholds (a paper's "mean F")."""
        return float(self.curve.mean())

    @property
    def max(self) -> float:
        """Maximum $F_\\beta$ over the thresholds (a paper's "max F")."""
        return float(self.curve.max())


def f_measure(pred: object, gt: object, beta2: float = 0.3) -> FmeasureCurves:
    r"""$F_\beta$ of the map cut at every threshold and at the adaptive one (Achanta et al., CVPR 2009).

    The map is cut at a threshold $T$ into a binary map $M = [S \ge T]$, then

    $$
    P = \frac{\lvert M \cap G \rvert}{\lvert M \rvert}, \quad
    R = \frac{\lvert M \cap G \rvert}{\lvert G \rvert}, \quad
    F_\beta = \frac{(1 + \beta^2)\, P R}{\beta^2 P + R},
    $$

    with $F_\beta = 0$ when $M \cap G$ is empty. $\beta^2 = 0.3$ weighs precision above recall, as
    SOD papers do. The adaptive threshold is $T = \min(2 \bar S, 1)$, twice the map's mean; the
    curve cuts the map quantised to 256 grey levels, $\lfloor 255 S \rfloor \ge t$, for
    $t = 0, \dots, 255$, counting all thresholds at once from one histogram of (grey level, object
    or background).

    Args:
        pred: ``(H, W)`` map (see [`prepare`][refimpl.sodmetrics.prepare]).
        gt: ``(H, W)`` mask.
        beta2: $\beta^2 > 0$.

    Returns:
        ``FmeasureCurves(adaptive, curve (256,), precision (256,), recall (256,))``; ``.mean``
        and ``.max`` over the curve.

    Examples:
        >>> import numpy as np
        >>> f = f_measure(np.array([[0.9, 0.6], [0.2, 0.0]]), np.array([[True, False], [False, False]]))
        >>> f.adaptive, round(float(f.curve[0]), 4), f.max  # cut at 0.85; at t = 0 all is object
        (1.0, 0.3023, 1.0)
    """
    beta2 = _real(beta2, "beta2", 0, float("inf"), True, "0.3")
    maps = prepare(pred, gt)
    return _f_measure(maps.pred, maps.gt, beta2, _counts_at_levels(*maps))


def _counts_at_levels(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(tp, fp)``, each ``(256,)``: object and background pixels with $\\lfloor 255 S \\rfloor \\ge t$."""
    level = (pred * 255).astype(np.uint8)  # floor, as the toolkits quantise
    hist = np.bincount((level + LEVELS * gt).ravel(), minlength=2 * LEVELS).reshape(2, LEVELS)  # (bg | object, level)
    at_or_above = hist[:, ::-1].cumsum(axis=1)[:, ::-1]  # (2, 256): pixels at level >= t
    return at_or_above[1], at_or_above[0]


def _adaptive_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """``(tp, fp)`` of the map cut at $\\min(2 \\bar S, 1)$."""
    cut = pred >= min(2 * pred.mean(), 1)
    tp = np.count_nonzero(cut & gt)
    return tp, np.count_nonzero(cut) - tp


def _f_beta(tp: np.ndarray | int, fp: np.ndarray | int, n_object: int, beta2: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(F, P, R)`` from the counts; 0 where there is no true positive."""
    precision = np.divide(tp, np.maximum(np.add(tp, fp), 1))
    recall = np.divide(tp, max(n_object, 1))
    top = (1 + beta2) * precision * recall
    return np.divide(top, np.where(top == 0, 1, beta2 * precision + recall)), precision, recall


def _f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float, counts: tuple[np.ndarray, np.ndarray]
               ) -> FmeasureCurves:
    n_object = np.count_nonzero(gt)
    adaptive = _f_beta(*_adaptive_counts(pred, gt), n_object, beta2)[0]
    return FmeasureCurves(float(adaptive), *_f_beta(*counts, n_object, beta2))


# ----------------------------------------------------------------------------------------------
# Weighted F-measure
# ----------------------------------------------------------------------------------------------

def weighted_f_measure(pred: object, gt: object, beta2: float = 1.0) -> float:
    r"""The weighted $F^w_\beta$ of Margolin, Zelnik-Manor and Tal ("How to evaluate foreground maps?", CVPR 2014).

    $F_\beta$ cuts the map and counts pixels; $F^w_\beta$ keeps the map's grey values and weighs
    each error by where it is. With the error $E = \lvert S - G \rvert$ and $d(x)$ the distance
    from $x$ to the nearest object pixel:

    1. *Dependency*: a background pixel takes the error of its nearest object pixel, the map
       is smoothed with the $7 \times 7$ Gaussian of $\sigma = 5$ (MATLAB's ``fspecial``), and an
       object pixel keeps the smaller of its own and its smoothed error, $E'$; so a blurred but
       correct border costs less than a scattered error.
    2. *Importance*: a background error counts more the nearer it is to the object,
       $B(x) = 2 - 0.5^{\,d(x) / 5}$ (1 on the object, up to 2 far away); $E^w = E' \cdot B$.

    $$
    R^w = 1 - \operatorname{mean}_{G} E^w, \quad
    P^w = \frac{TP^w}{TP^w + FP^w}, \quad TP^w = \lvert G \rvert - \textstyle\sum_G E^w,\ FP^w = \sum_{\bar G} E^w,
    \quad F^w_\beta = \frac{(1 + \beta^2) P^w R^w}{\beta^2 P^w + R^w},
    $$

    with $\mathrm{eps}$ added to the denominators of $P^w$ and $F^w_\beta$; $F^w_\beta = 0$ without
    an object. The authors' code and the toolkits use $\beta^2 = 1$. Ties between equally near
    object pixels are broken by SciPy's ``distance_transform_edt``, as in ``py_sod_metrics``
    (MATLAB's ``bwdist`` may pick another).

    Args:
        pred: ``(H, W)`` map (see [`prepare`][refimpl.sodmetrics.prepare]).
        gt: ``(H, W)`` mask.
        beta2: $\beta^2 > 0$.

    Returns:
        $F^w_\beta$ in ``[0, 1]``.

    Examples:
        >>> import numpy as np
        >>> gt = np.zeros((40, 40), bool); gt[10:30, 10:30] = True
        >>> round(weighted_f_measure(gt.astype(float), gt), 4), weighted_f_measure(np.zeros((40, 40)), gt)
        (1.0, 0.0)
    """
    beta2 = _real(beta2, "beta2", 0, float("inf"), True, "1.0")
    return _weighted_f_measure(*prepare(pred, gt), beta2)


def _weighted_f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float) -> float:
    from scipy import ndimage  # only weighted F needs SciPy; the module imports without it

    if not gt.any():
        return 0.0
    error = np.abs(pred - gt)
    distance, (row, col) = ndimage.distance_transform_edt(~gt, return_indices=True)  # to the nearest object pixel
    error_at_nearest = error[row, col]  # an object pixel is its own nearest
    # fspecial('gaussian', 7, 5) and imfilter's zero padding: a 1-D Gaussian of radius 3 along each axis
    smoothed = ndimage.gaussian_filter(error_at_nearest, sigma=5, radius=3, mode="constant")
    dependent = np.where(gt & (smoothed < error), smoothed, error)
    weighted = dependent * (2 - np.exp(np.log(0.5) / 5 * distance))  # importance: 1 on the object
    on_object = weighted[gt]
    tp = on_object.size - on_object.sum()
    fp = weighted[~gt].sum()
    recall = 1 - on_object.mean()
    precision = tp / (tp + fp + EPS)
    return float((1 + beta2) * recall * precision / (recall + beta2 * precision + EPS))


# ----------------------------------------------------------------------------------------------
# S-measure
# ----------------------------------------------------------------------------------------------

def s_measure(pred: object, gt: object, alpha: float = 0.5) -> float:
    r"""The structure measure $S_\alpha$ of Fan, Cheng, Liu, Li and Borji (ICCV 2017).

    $$
    S_\alpha = \max\big(0,\ \alpha\, S_o + (1 - \alpha)\, S_r\big), \qquad \alpha = 0.5;
    $$

    without an object $S_\alpha = 1 - \bar S$, and on a mask that is all object $S_\alpha = \bar S$.

    *Object-aware* $S_o$: the object should be uniformly bright and the background uniformly
    dark. With $\mu = \lvert G \rvert / N$,

    $$
    S_o = \mu\, O(S_G) + (1 - \mu)\, O(1 - S_{\bar G}), \qquad
    O(x) = \frac{2 \bar x}{\bar x^2 + 1 + \sigma_x + \mathrm{eps}},
    $$

    $S_G$ the map's values on the object, $\bar x$ and $\sigma_x$ their mean and standard
    deviation ($N - 1$ in the denominator; 0 for one pixel).

    *Region-aware* $S_r$: the map should have the mask's structure everywhere. Both are cut into
    four quadrants at the object's centroid (rounded, half to even as NumPy rounds), and each
    quadrant $k$ is compared by the structural similarity (SSIM) without its constants,

    $$
    S_r = \sum_{k=1}^{4} w_k\, \mathrm{ssim}(S_k, G_k), \quad
    \mathrm{ssim}(x, y) = \frac{4\, \bar x\, \bar y\, \sigma_{xy}}
                              {(\bar x^2 + \bar y^2)(\sigma_x^2 + \sigma_y^2) + \mathrm{eps}},
    $$

    $w_k$ the quadrant's share of the pixels, the variances with $N_k - 1 + \mathrm{eps}$ in the
    denominator; $\mathrm{ssim} = 1$ when numerator and denominator are both 0 (both quadrants
    constant), 0 when only the numerator is. A quadrant of zero area has zero
    weight (``py_sod_metrics`` and the MATLAB code return NaN there).

    Args:
        pred: ``(H, W)`` map (see [`prepare`][refimpl.sodmetrics.prepare]).
        gt: ``(H, W)`` mask.
        alpha: weight of $S_o$, in ``[0, 1]``.

    Returns:
        $S_\alpha$ in ``[0, 1]``.

    Examples:
        >>> import numpy as np
        >>> gt = np.zeros((6, 6), bool); gt[2:4, 2:4] = True
        >>> [round(s_measure(pred, gt), 4) for pred in (gt.astype(float), np.full((6, 6), 0.5), np.zeros((6, 6)))]
        [1.0, 0.4, 0.4444]
    """
    alpha = _real(alpha, "alpha", 0, 1, False, "0.5")
    return _s_measure(*prepare(pred, gt), alpha)


def _s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float) -> float:
    mu = gt.mean()
    if mu == 0:
        return float(1 - pred.mean())
    if mu == 1:
        return float(pred.mean())
    return float(max(0.0, alpha * _object_similarity(pred, gt, mu) + (1 - alpha) * _region_similarity(pred, gt)))


def _object_similarity(pred: np.ndarray, gt: np.ndarray, mu: float) -> float:
    """$S_o = \\mu\\, O(S_G) + (1 - \\mu)\\, O(1 - S_{\\bar G})$."""
    def o(x: np.ndarray) -> float:
        mean = x.mean()
        std = x.std(ddof=1) if x.size > 1 else 0.0
        return 2 * mean / (mean**2 + 1 + std + EPS)

    return o(pred[gt]) * mu + o(1 - pred[~gt]) * (1 - mu)


def _region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """$S_r$: SSIM of the four quadrants around the object's centroid, weighted by their areas."""
    h, w = gt.shape
    n_object = np.count_nonzero(gt)
    cy = _round_half_even(np.arange(h) @ np.count_nonzero(gt, axis=1) / n_object) + 1  # rows 0..cy-1 are "top"
    cx = _round_half_even(np.arange(w) @ np.count_nonzero(gt, axis=0) / n_object) + 1
    score = 0.0
    for rows in (slice(0, cy), slice(cy, h)):
        for cols in (slice(0, cx), slice(cx, w)):
            s, g = pred[rows, cols], gt[rows, cols]
            if s.size:  # zero area, zero weight
                score += _ssim(s, g) * (s.size / (h * w))
    return score


def _round_half_even(x: float) -> int:
    """``x`` rounded to an int, a tie to the even neighbour (NumPy's rounding; MATLAB rounds ties away from 0)."""
    return int(np.round(x))


def _ssim(x: np.ndarray, y: np.ndarray) -> float:
    n, x_mean, y_mean = x.size, x.mean(), y.mean()
    dx, dy = x - x_mean, y - y_mean
    var_x = np.sum(dx**2) / (n - 1 + EPS)
    var_y = np.sum(dy**2) / (n - 1 + EPS)
    cov = np.sum(dx * dy) / (n - 1 + EPS)
    top = 4 * x_mean * y_mean * cov
    bottom = (x_mean**2 + y_mean**2) * (var_x + var_y)
    if top != 0:
        return top / (bottom + EPS)
    return 1.0 if bottom == 0 else 0.0


# ----------------------------------------------------------------------------------------------
# E-measure
# ----------------------------------------------------------------------------------------------

class EmeasureCurves(NamedTuple):
    """$E_\\phi$ at the adaptive threshold and at the 256 thresholds $t / 255$."""

    adaptive: float
    """$E_\\phi$ of the map cut at $\\min(2 \\bar S, 1)$."""
    curve: np.ndarray
    """``(256,)``: $E_\\phi$ at threshold $t / 255$."""

    @property
    def mean(self) -> float:
        """Mean $E_\\phi$ over the thresholds (a paper's "mean E")."""
        return float(self.curve.mean())

    @property
    def max(self) -> float:
        """Maximum $E_\\phi$ over the thresholds (a paper's "max E")."""
        return float(self.curve.max())


def e_measure(pred: object, gt: object) -> EmeasureCurves:
    r"""The enhanced-alignment measure $E_\phi$ of Fan, Gong, Cao, Ren, Cheng and Borji (IJCAI 2018).

    The map is cut at a threshold into a binary map $M$. Each of $M$ and $G$ has its mean
    subtracted, $\varphi_M = M - \bar M$, $\varphi_G = G - \bar G$, so that each pixel is read
    against its image's mean: the pixel level and the image level at once. Their alignment and its
    enhanced form are

    $$
    \xi = \frac{2\, \varphi_G \circ \varphi_M}{\varphi_G \circ \varphi_G + \varphi_M \circ \varphi_M + \mathrm{eps}},
    \qquad
    \phi = \frac{(1 + \xi)^2}{4} \in [0, 1], \qquad
    E_\phi = \frac{1}{N - 1 + \mathrm{eps}} \sum_x \phi(x) ,
    $$

    with $N - 1$ where the paper writes $N$, as the official MATLAB code has it: a perfect map
    scores $N / (N - 1)$, 1.0667 on the 16 pixels below, 1.00001 at $320 \times 320$. A binary
    pair takes only four values, (object, object), (object, background), (background, object),
    (background, background), so the sum is four counts times four values of $\phi$, and every
    threshold is counted at once from one histogram, as for
    [`f_measure`][refimpl.sodmetrics.f_measure]. Without an object $\phi = 1 - M$, and on a mask
    that is all object $\phi = M$ (the official code's special cases). Adaptive: the cut at
    $\min(2 \bar S, 1)$; the curve: $\lfloor 255 S \rfloor \ge t$ for $t = 0, \dots, 255$.

    Args:
        pred: ``(H, W)`` map of at least 2 pixels (see [`prepare`][refimpl.sodmetrics.prepare]).
        gt: ``(H, W)`` mask.

    Returns:
        ``EmeasureCurves(adaptive, curve (256,))``; ``.mean`` and ``.max`` over the curve.

    Examples:
        >>> import numpy as np
        >>> gt = np.zeros((4, 4), bool); gt[:2, :2] = True
        >>> e = e_measure(gt.astype(float), gt)
        >>> round(e.adaptive, 4), round(e.max, 4)
        (1.0667, 1.0667)
    """
    maps = prepare(pred, gt, min_pixels=2)
    return _e_measure(maps.pred, maps.gt, _counts_at_levels(*maps))


def _enhanced_alignment(tp: np.ndarray | int, fp: np.ndarray | int, n_object: int, n: int) -> np.ndarray:
    """$E_\\phi$ of binary maps given by their counts (one threshold or an array of them)."""
    predicted = tp + fp
    if n_object == 0:
        total = n - predicted  # phi = 1 - M
    elif n_object == n:
        total = predicted  # phi = M
    else:
        fn = n_object - tp
        tn = n - predicted - fn
        pred_mean, gt_mean = predicted / n, n_object / n
        total = 0
        for count, phi_m, phi_g in ((tp, 1 - pred_mean, 1 - gt_mean), (fp, 1 - pred_mean, -gt_mean),
                                    (fn, -pred_mean, 1 - gt_mean), (tn, -pred_mean, -gt_mean)):
            xi = 2 * (phi_m * phi_g) / (phi_m**2 + phi_g**2 + EPS)
            total = total + (xi + 1) ** 2 / 4 * count
    return total / (n - 1 + EPS)


def _e_measure(pred: np.ndarray, gt: np.ndarray, counts: tuple[np.ndarray, np.ndarray]) -> EmeasureCurves:
    n_object, n = np.count_nonzero(gt), gt.size
    adaptive = _enhanced_alignment(*_adaptive_counts(pred, gt), n_object, n)
    return EmeasureCurves(float(adaptive), _enhanced_alignment(*counts, n_object, n))


# ----------------------------------------------------------------------------------------------
# Averages over a data set
# ----------------------------------------------------------------------------------------------

class _Average:
    """Running sums of per-image results; ``get_results`` divides by the count."""

    def __init__(self) -> None:
        self._sums: list | None = None
        self.count = 0
        """Maps seen so far."""

    def _add(self, values: tuple) -> None:
        self._sums = list(values) if self._sums is None else [s + v for s, v in zip(self._sums, values)]
        self.count += 1

    def _means(self) -> list:
        if self._sums is None:
            raise ValueError(f"{type(self).__name__} has seen no maps; call step(pred, gt) at least once first")
        return [s / self.count for s in self._sums]


class MeanAbsoluteError(_Average):
    """MAE averaged over a data set (see [`mean_absolute_error`][refimpl.sodmetrics.mean_absolute_error]).

    Examples:
        >>> import numpy as np
        >>> m = MeanAbsoluteError()
        >>> m.step(np.array([[0.0, 1.0]]), np.array([[False, False]]))
        0.5
        >>> m.step(np.array([[0.0, 1.0]]), np.array([[False, True]]))
        0.0
        >>> m.get_results()
        0.25
    """

    def step(self, pred: object, gt: object) -> float:
        """Score one map; returns its MAE."""
        value = _mae(*prepare(pred, gt))
        self._add((value,))
        return value

    def get_results(self) -> float:
        """The mean MAE over the maps seen."""
        return float(self._means()[0])


class Fmeasure(_Average):
    """$F_\\beta$ averaged over a data set: adaptive, and the curves per threshold.

    See [`f_measure`][refimpl.sodmetrics.f_measure].
    """

    def __init__(self, beta2: float = 0.3) -> None:
        super().__init__()
        self.beta2 = _real(beta2, "beta2", 0, float("inf"), True, "0.3")

    def step(self, pred: object, gt: object) -> FmeasureCurves:
        """Score one map; returns its curves."""
        maps = prepare(pred, gt)
        result = _f_measure(maps.pred, maps.gt, self.beta2, _counts_at_levels(*maps))
        self._add(result)
        return result

    def get_results(self) -> FmeasureCurves:
        """Mean adaptive $F_\\beta$ and the mean curves; ``.mean`` and ``.max`` of the mean curve are the paper's."""
        return FmeasureCurves(*self._means())


class WeightedFmeasure(_Average):
    """$F^w_\\beta$ averaged over a data set (see [`weighted_f_measure`][refimpl.sodmetrics.weighted_f_measure])."""

    def __init__(self, beta2: float = 1.0) -> None:
        super().__init__()
        self.beta2 = _real(beta2, "beta2", 0, float("inf"), True, "1.0")

    def step(self, pred: object, gt: object) -> float:
        """Score one map; returns its $F^w_\\beta$."""
        value = _weighted_f_measure(*prepare(pred, gt), self.beta2)
        self._add((value,))
        return value

    def get_results(self) -> float:
        """The mean $F^w_\\beta$ over the maps seen."""
        return float(self._means()[0])


class Smeasure(_Average):
    """$S_\\alpha$ averaged over a data set (see [`s_measure`][refimpl.sodmetrics.s_measure])."""

    def __init__(self, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = _real(alpha, "alpha", 0, 1, False, "0.5")

    def step(self, pred: object, gt: object) -> float:
        """Score one map; returns its $S_\\alpha$."""
        value = _s_measure(*prepare(pred, gt), self.alpha)
        self._add((value,))
        return value

    def get_results(self) -> float:
        """The mean $S_\\alpha$ over the maps seen."""
        return float(self._means()[0])


class Emeasure(_Average):
    """$E_\\phi$ averaged over a data set: adaptive, and the curve per threshold.

    See [`e_measure`][refimpl.sodmetrics.e_measure].
    """

    def step(self, pred: object, gt: object) -> EmeasureCurves:
        """Score one map of at least 2 pixels; returns its curves."""
        maps = prepare(pred, gt, min_pixels=2)
        result = _e_measure(maps.pred, maps.gt, _counts_at_levels(*maps))
        self._add(result)
        return result

    def get_results(self) -> EmeasureCurves:
        """Mean adaptive $E_\\phi$ and the mean curve; ``.mean`` and ``.max`` of the mean curve are the paper's."""
        return EmeasureCurves(*self._means())


class Scores(NamedTuple):
    """The numbers a SOD or COD paper's table reports for one data set (or one map)."""

    s_measure: float
    """$S_\\alpha$."""
    weighted_f: float
    """$F^w_\\beta$."""
    mae: float
    """MAE."""
    adaptive_e: float
    """$E_\\phi$ at the adaptive threshold."""
    mean_e: float
    """$E_\\phi$, mean over the thresholds."""
    max_e: float
    """$E_\\phi$, maximum over the thresholds."""
    adaptive_f: float
    """$F_\\beta$ at the adaptive threshold."""
    mean_f: float
    """$F_\\beta$, mean over the thresholds."""
    max_f: float
    """$F_\\beta$, maximum over the thresholds."""


def _scores(s: float, wf: float, mae: float, e: EmeasureCurves, f: FmeasureCurves) -> Scores:
    return Scores(float(s), float(wf), float(mae), float(e.adaptive), e.mean, e.max, float(f.adaptive), f.mean, f.max)


class Measures:
    """All five measures over a data set, each map checked and quantised once.

    Args:
        alpha: $S_\\alpha$'s weight of the object part.
        beta2: $\\beta^2$ of $F_\\beta$.
        weighted_beta2: $\\beta^2$ of $F^w_\\beta$.

    Examples:
        >>> import numpy as np
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 3:7] = True
        >>> measures = Measures()
        >>> scores = measures.step(gt.astype(float), gt)
        >>> scores.mae, round(scores.s_measure, 4), scores.max_f
        (0.0, 1.0, 1.0)
        >>> measures.get_results() == scores
        True
    """

    def __init__(self, alpha: float = 0.5, beta2: float = 0.3, weighted_beta2: float = 1.0) -> None:
        self.mae = MeanAbsoluteError()
        self.f = Fmeasure(beta2)
        self.weighted_f = WeightedFmeasure(weighted_beta2)
        self.s = Smeasure(alpha)
        self.e = Emeasure()

    def step(self, pred: object, gt: object) -> Scores:
        """Score one map of at least 2 pixels with all five; returns its scores."""
        pred, gt = prepare(pred, gt, min_pixels=2)
        counts = _counts_at_levels(pred, gt)
        results = (_s_measure(pred, gt, self.s.alpha), _weighted_f_measure(pred, gt, self.weighted_f.beta2),
                   _mae(pred, gt), _e_measure(pred, gt, counts), _f_measure(pred, gt, self.f.beta2, counts))
        for accumulator, result in zip((self.s, self.weighted_f, self.mae, self.e, self.f), results):
            accumulator._add(result if isinstance(result, tuple) else (result,))
        return _scores(*results)

    def get_results(self) -> Scores:
        """The data set's scores: per-image means, and for the curves the mean and maximum of the mean curve."""
        return _scores(self.s.get_results(), self.weighted_f.get_results(), self.mae.get_results(),
                       self.e.get_results(), self.f.get_results())
