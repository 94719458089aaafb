"""Time refimpl.sodmetrics against py_sod_metrics: the five measures over a data set of maps.

Both score the same generated data set (default 500 uint8 maps of 320 x 320 with their 0/255
masks, as the evaluation toolkits read PNG files) through their accumulators, ``step`` per map;
each measure is timed on its own, then the whole set (ours: ``Measures``, which checks and
quantises each map once; theirs: the five classes one after another). Each timing is the best of
``--repeats`` runs. The dataset means are compared too (largest absolute difference):

    .venv/bin/python benchmarks/sodmetrics.py
    .venv/bin/python benchmarks/sodmetrics.py --maps 100 --size 480 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
from scipy import ndimage

from refimpl import sodmetrics as ours


def make_maps(count: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (pred, gt) pairs: an ellipse (sometimes two, sometimes none) and a blurred, noisy guess of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    maps = []
    for i in range(count):
        gt = np.zeros((size, size), bool)
        for _ in range(0 if i % 50 == 0 else 1 + (i % 5 == 0)):
            cy, cx = rng.uniform(0.2, 0.8, 2)
            ry, rx = rng.uniform(0.05, 0.35, 2)
            gt |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        guess = ndimage.gaussian_filter(gt.astype(float), sigma=rng.uniform(1, 8)) * rng.uniform(0.6, 1.0)
        guess += rng.normal(0, rng.uniform(0.02, 0.2), gt.shape)
        pred = (np.clip(guess, 0, 1) * 255).astype(np.uint8)
        maps.append((pred, (gt * 255).astype(np.uint8)))
    return maps


def theirs_factories() -> dict[str, Callable[[], object]]:
    import py_sod_metrics as theirs

    return {"MAE": theirs.MAE, "F-measure": theirs.Fmeasure, "weighted F": theirs.WeightedFmeasure,
            "S-measure": theirs.Smeasure, "E-measure": theirs.Emeasure}


OURS = {"MAE": ours.MeanAbsoluteError, "F-measure": ours.Fmeasure, "weighted F": ours.WeightedFmeasure,
        "S-measure": ours.Smeasure, "E-measure": ours.Emeasure}


def run(accumulators: list[object], maps: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, list[object]]:
    """Seconds to step every accumulator over every map, and the accumulators."""
    start = time.perf_counter()
    for pred, gt in maps:
        for accumulator in accumulators:
            accumulator.step(pred, gt)
    return time.perf_counter() - start, accumulators


def theirs_scores(results: dict[str, dict]) -> ours.Scores:
    """The paper's numbers from py_sod_metrics' results (its curves run from threshold 255 down to 0)."""
    f, e = results["F-measure"]["fm"], results["E-measure"]["em"]
    return ours.Scores(results["S-measure"]["sm"], results["weighted F"]["wfm"], results["MAE"]["mae"],
                       e["adp"], e["curve"].mean(), e["curve"].max(), f["adp"], f["curve"].mean(), f["curve"].max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=500)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="This class will be removed")  # py_sod_metrics' Fmeasure

    theirs = theirs_factories()
    maps = make_maps(args.maps, args.size)
    print(f"{args.maps} maps of {args.size} x {args.size} (uint8 maps, 0/255 masks), best of {args.repeats}; "
          f"numpy {np.__version__}, py_sod_metrics {version('pysodmetrics')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    best: dict[tuple[str, str], float] = {}
    results: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name in OURS:
            t_theirs, (acc,) = run([theirs[name]()], maps)
            t_ours, _ = run([OURS[name]()], maps)
            results[name] = acc.get_results()
            for who, t in (("theirs", t_theirs), ("ours", t_ours)):
                best[name, who] = min(best.get((name, who), float("inf")), t)
        t_theirs, _ = run([make() for make in theirs.values()], maps)
        t_ours, (measures,) = run([ours.Measures()], maps)
        for who, t in (("theirs", t_theirs), ("ours", t_ours)):
            best["all five", who] = min(best.get(("all five", who), float("inf")), t)

    print(f"\n| measure | py_sod_metrics ms/map | ours ms/map | ours / py_sod_metrics |\n| --- | ---: | ---: | ---: |")
    for name in [*OURS, "all five"]:
        a, b = best[name, "theirs"] * 1e3 / args.maps, best[name, "ours"] * 1e3 / args.maps
        print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f} |")

    mine, reference = measures.get_results(), theirs_scores(results)
    print("\nlargest |ours - py_sod_metrics| of the data set's scores:")
    for field in ours.Scores._fields:
        print(f"  {field}: {abs(getattr(mine, field) - getattr(reference, field)):.2e}")


if __name__ == "__main__":
    main()
