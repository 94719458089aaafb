"""Figures for the measures page (docs/concepts/sod-measures.md), scored by ``refimpl.sodmetrics``.

- ``sod-measures/same-mae.svg``: one ground truth and six predictions that all have the same MAE
  (each is wrong on exactly :data:`WRONG` pixels' worth), scored by the other measures, which
  disagree on which is best.
- ``sod-measures/curves.svg``: a sharp map (the object shifted) and a blurred one: the $F_\\beta$
  and $E_\\phi$ curves over the 256 thresholds, with their mean, maximum and adaptive values.

The pure helpers (:func:`ground_truth`, :func:`same_mae_maps`, :func:`curve_maps`,
:func:`scores`, :func:`oddities`) return what the figures draw and the page states;
``tests/test_figures_sod_measures.py`` checks the page's numbers against them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from refimpl.sodmetrics import Measures, Scores, e_measure, f_measure, s_measure, weighted_f_measure

SIZE = 64
"""Maps are ``SIZE x SIZE`` pixels."""

WRONG = 240
"""Pixels' worth of error in every map of the same-MAE figure: MAE = 240 / 4096 = 0.0586."""

BLUR_SIGMA = 2.0
"""Standard deviation (pixels) of the Gaussian that blurs the ground truth in the curves figure."""

SHIFT = 2
"""Pixels the sharp map of the curves figure is moved to the right."""


def ground_truth() -> np.ndarray:
    """A ``(64, 64)`` bool ellipse, 727 pixels, a little left of the centre."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return ((yy - 32) ** 2 / 18**2 + (xx - 30) ** 2 / 13**2) <= 1


def _nearest(region: np.ndarray, row: int, col: int, k: int) -> np.ndarray:
    """Flat indices of the ``k`` pixels of ``region`` nearest to ``(row, col)`` (ties in raster order)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    distance = np.where(region, (yy - row) ** 2 + (xx - col) ** 2, np.inf).ravel()
    return np.argsort(distance, kind="stable")[:k]


class Example(NamedTuple):
    """One prediction of a figure: its label and its ``(64, 64)`` float map in ``[0, 1]``."""

    label: str
    pred: np.ndarray


def same_mae_maps() -> dict[str, Example]:
    """Six predictions of [`ground_truth`][paper_notes.figures.sod_measures.ground_truth], each with MAE ``WRONG / 4096``.

    Binary maps wrong on exactly ``WRONG`` pixels, and a map right in shape but only
    ``1 - WRONG / 727`` bright on the object; so the MAE is the same by construction.
    """
    gt = ground_truth()
    n_object = int(gt.sum())

    def flip(indices: np.ndarray) -> np.ndarray:
        pred = gt.copy().ravel()
        pred[indices] = ~pred[indices]
        return pred.reshape(gt.shape).astype(float)

    rng = np.random.default_rng(0)
    return {
        "dim": Example("形状对，但不够亮", gt * (1 - WRONG / n_object)),
        "hole": Example("中间缺一块", flip(_nearest(gt, 32, 30, WRONG))),
        "bottom": Example("缺了下部", flip(np.flatnonzero(gt.ravel())[-WRONG:])),
        "noise": Example("散落的噪点", flip(rng.choice(gt.size, WRONG, replace=False))),
        "near": Example("紧贴目标多出一块", flip(_nearest(~gt, 32, 46, WRONG))),
        "far": Example("远处多出一块", flip(_nearest(~gt, 8, 56, WRONG))),
    }


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(image, sigma, mode="constant")


def curve_maps() -> dict[str, Example]:
    """The curves figure's two predictions: the object moved ``SHIFT`` pixels right, and blurred by ``BLUR_SIGMA``."""
    gt = ground_truth()
    return {
        "shifted": Example(f"清晰，但右移 {SHIFT} 像素", np.roll(gt, SHIFT, axis=1).astype(float)),
        "blurred": Example(f"模糊（高斯 σ = {BLUR_SIGMA:g} 像素）", np.clip(_gaussian_blur(gt.astype(float), BLUR_SIGMA), 0, 1)),
    }


def scores(pred: np.ndarray, gt: np.ndarray | None = None) -> Scores:
    """All the measures of one map against ``gt`` (default: [`ground_truth`][paper_notes.figures.sod_measures.ground_truth])."""
    return Measures().step(pred, ground_truth() if gt is None else gt)


class Oddity(NamedTuple):
    """A value the measures give on an edge case, as the page states it."""

    what: str
    value: float


def oddities() -> dict[str, Oddity]:
    """The edge cases of the page's oddities section, each computed by ``refimpl.sodmetrics``."""
    square = np.zeros((4, 4), bool)
    square[:2, :2] = True
    five = np.zeros((5, 5), bool)
    five[1:4, 1:4] = True
    ten = np.zeros((10, 10), bool)
    ten[4:6, 4:6] = True
    six = np.zeros((6, 6), bool)
    six[2:4, 2:4] = True
    corner = np.zeros((5, 5), bool)
    corner[4, 4] = True
    return {
        "e_perfect_16": Oddity("完全正确的 4 × 4 图的最大 E", e_measure(square.astype(float), square).max),
        "wf_black_5x5": Oddity("5 × 5 图、3 × 3 目标、全黑预测的加权 F", weighted_f_measure(np.zeros((5, 5)), five)),
        "wf_black_10x10": Oddity("10 × 10 图、2 × 2 目标居中、全黑预测的加权 F", weighted_f_measure(np.zeros((10, 10)), ten)),
        "s_grey_6x6": Oddity("6 × 6 图、全 0.5 灰图的 S", s_measure(np.full((6, 6), 0.5), six)),
        "s_black_6x6": Oddity("6 × 6 图、全黑图的 S", s_measure(np.zeros((6, 6)), six)),
        "s_corner_perfect": Oddity("目标是右下角一个像素、预测完全正确时的 S", s_measure(corner.astype(float), corner)),
        "f_black_max": Oddity("全黑预测的最大 F（t = 0 时整张图都算目标）", f_measure(np.zeros((6, 6)), six).max),
    }


# --- drawing -----------------------------------------------------------------------------------

OBJECT_EDGE = "#ff7f0e"
HUES = {"shifted": "#1f77b4", "blurred": "#d62728"}


def _show(ax, pred: np.ndarray, title: str, gt: np.ndarray | None) -> None:
    ax.imshow(pred, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if gt is not None:
        ax.contour(gt.astype(float), levels=[0.5], colors=OBJECT_EDGE, linewidths=0.8)
    ax.set_title(title, fontsize=8.5)
    ax.set_xticks([])
    ax.set_yticks([])


def same_mae_figure() -> Figure:
    """Ground truth and the six same-MAE maps, each captioned with its S-measure and weighted F."""
    gt = ground_truth()
    maps = same_mae_maps()
    fig = Figure(figsize=(9.6, 2.9), layout="constrained")
    axes = fig.subplots(1, 1 + len(maps))
    _show(axes[0], gt.astype(float), "真值 (ground truth)", None)
    axes[0].set_xlabel(f"{int(gt.sum())} 个目标像素", fontsize=8)
    for ax, example in zip(axes[1:], maps.values()):
        s = scores(example.pred, gt)
        _show(ax, example.pred, example.label, gt)
        ax.set_xlabel(f"MAE {s.mae:.4f}\nS {s.s_measure:.4f}\n加权 F {s.weighted_f:.4f}\n最大 F {s.max_f:.4f}\n"
                      f"平均 E {s.mean_e:.4f}", fontsize=8)
    fig.suptitle(f"六张平均绝对误差相同的预测（每张都错了 {WRONG} 个像素的量；橙线是真值的边界）", fontsize=10)
    return fig


def curves_figure() -> Figure:
    """A sharp, shifted map and a blurred one, and their F and E curves over the 256 thresholds."""
    gt = ground_truth()
    maps = curve_maps()
    fig = Figure(figsize=(9.6, 3.6), layout="constrained")
    grid = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1.7, 1.7])
    for k, (key, example) in enumerate(maps.items()):
        ax = fig.add_subplot(grid[0, k])
        _show(ax, example.pred, example.label, gt)
        ax.set_xlabel(f"MAE {scores(example.pred, gt).mae:.4f}", fontsize=8)
    thresholds = np.arange(256) / 255
    for k, (name, measure) in enumerate((("F", f_measure), ("E", e_measure))):
        ax = fig.add_subplot(grid[0, 2 + k])
        for key, example in maps.items():
            curves = measure(example.pred, gt)
            ax.plot(thresholds, curves.curve, color=HUES[key], linewidth=1.3,
                    label=f"{example.label.split('（')[0].split('，')[0]}：最大 {curves.max:.4f}，平均 {curves.mean:.4f}")
            cut = min(2 * example.pred.mean(), 1)
            ax.plot([cut], [curves.adaptive], marker="o", color=HUES[key], markersize=4)
        ax.set_xlabel("阈值 t / 255（圆点：自适应阈值）", fontsize=8)
        ax.set_title(f"每个阈值下的 {name} 值", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="lower center")
        ax.tick_params(labelsize=7)
    fig.suptitle("清晰而错位的图与模糊的图：曲线的最大值、平均值和自适应值讲的不是一回事", fontsize=10)
    return fig


FIGURES: dict[str, Callable[[], object]] = {
    "sod-measures/same-mae.svg": same_mae_figure,
    "sod-measures/curves.svg": curves_figure,
}
