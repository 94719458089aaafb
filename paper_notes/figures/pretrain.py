"""Figures for the MAE pretraining guide (docs/guides/mae-pretraining.md), drawn from a committed run.

The run is a short ``mae-pretrain`` on the embedded photographs (CPU); its metrics log and a few
reconstruction grids live in ``docs/guides/runs/``. The grids were written by
``refimpl.train.figures.reconstruction_rows`` from the run's checkpoints and saved as one PNG each
(rows: input, masked, prediction, target, reconstruction; one column per image).
"""

from __future__ import annotations

import json
from pathlib import Path

RUNS = Path(__file__).resolve().parents[2] / "docs" / "guides" / "runs"
LOG = RUNS / "mae-tiny-cpu.jsonl"
ROWS = ("input", "masked", "prediction", "target", "reconstruction")


def _records() -> list[dict]:
    return [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines() if line.strip()]


def loss_curve() -> object:
    """Training loss (per-patch normalised pixels, removed patches only) and learning rate per step."""
    from matplotlib.figure import Figure

    records = _records()
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    ax.plot(steps, [r["loss"] for r in records], color="tab:blue", label="loss")
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.annotate("predict the patch mean: loss = 1", (steps[-1], 1.0), xytext=(0, 4), textcoords="offset points",
                ha="right", fontsize=8, color="grey")
    ax.set_xlabel("optimizer step (batch 64)")
    ax.set_ylabel("MSE on removed patches (norm_pix_loss)")
    twin = ax.twinx()
    twin.plot(steps, [r["lr"] for r in records], color="tab:orange", linewidth=1, label="learning rate")
    twin.set_ylabel("learning rate")
    twin.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    lines = ax.get_lines()[:1] + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    ax.set_title("mae_vit_tiny_patch16, 64 px, patch 8, CPU", fontsize=10)
    fig.tight_layout()
    return fig


def reconstructions() -> object:
    """The same fixed images at three steps of the run: what the model predicts for the removed 75 %."""
    from matplotlib.figure import Figure
    from PIL import Image
    import numpy as np

    grids = sorted(RUNS.glob("mae-tiny-cpu-recon-*.png"))
    fig = Figure(figsize=(3.3 * len(grids), 4.6))
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    for ax, path in zip(axes, grids):
        grid = np.asarray(Image.open(path).convert("RGB"))
        ax.imshow(grid, interpolation="nearest")
        step = int(path.stem.rsplit("-", 1)[1])
        ax.set_title(f"step {step}", fontsize=10)
        ax.set_xticks([])
        rows = len(ROWS)
        ax.set_yticks([(i + 0.5) * grid.shape[0] / rows for i in range(rows)])
        ax.set_yticklabels(ROWS if ax is axes[0] else [""] * rows, fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = {"pretrain/loss.svg": loss_curve, "pretrain/reconstructions.svg": reconstructions}
