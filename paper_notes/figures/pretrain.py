"""Figures for the MAE pretraining guide (docs/guides/mae-pretraining.md), drawn from a committed run.

The run is a short ``mae-pretrain`` on the embedded photographs (CPU); its metrics log and a few
reconstruction grids live in ``docs/guides/runs/``. ``record_run`` writes them from a finished
run's folder: the grids are ``refimpl.train.reconstruction``'s (``reconstruction_grid`` of
``reconstruction_rows``, as in the trainer's ``recon-<step>.png``) on the run's own figure
images, with the weights of step 0 (rebuilt from ``config.json``) and of the run's checkpoints,
one PNG each (rows: input, masked, prediction, target, reconstruction; one column per image).
To record a new run::

    .venv/bin/mae-pretrain --output-dir /tmp/run
    .venv/bin/python -m paper_notes.figures.pretrain /tmp/run --force
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

RUNS = Path(__file__).resolve().parents[2] / "docs" / "guides" / "runs"
LOG = RUNS / "mae-tiny-cpu.jsonl"
INPUTS = ("docs/guides/runs",)
"""What the figures read, relative to the project root (``RUNS``): part of their build-cache key."""
ROW_LABELS = {"input": "输入", "masked": "遮挡后", "prediction": "预测", "target": "目标", "reconstruction": "重建"}
"""How the guide's figure names the rows of a grid, top to bottom (``refimpl.train.reconstruction.ROWS``)."""


def _records() -> list[dict]:
    return [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines() if line.strip()]


def loss_curve() -> object:
    """Training loss (per-patch normalised pixels, removed patches only) and learning rate per step."""
    from matplotlib.figure import Figure

    records = _records()
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    ax.plot(steps, [r["loss"] for r in records], color="tab:blue", label="损失 (loss)")
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.annotate("每块都预测成它的均值：损失 = 1", (steps[-1], 1.0), xytext=(0, 4), textcoords="offset points",
                ha="right", fontsize=8, color="grey")
    ax.set_xlabel("优化器步数（batch 64）")
    ax.set_ylabel("被遮图像块上的 MSE (norm_pix_loss)")
    twin = ax.twinx()
    twin.plot(steps, [r["lr"] for r in records], color="tab:orange", linewidth=1, label="学习率 (learning rate)")
    twin.set_ylabel("学习率")
    twin.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    lines = ax.get_lines()[:1] + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    ax.set_title("mae_vit_tiny_patch16，64 px 图像，8 px 图像块，CPU", fontsize=10)
    fig.tight_layout()
    return fig


def reconstructions() -> object:
    """The same fixed images at three steps of the run: what the model predicts for the removed 75 %."""
    from matplotlib.figure import Figure
    from PIL import Image
    import numpy as np

    paths = sorted(RUNS.glob("mae-tiny-cpu-recon-*.png"))
    grids = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    height, width = grids[0].shape[:2]
    fig = Figure(figsize=(3.3 * len(grids), 3.3 * height / width + 0.6))  # room for the titles
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    for ax, path, grid in zip(axes, paths, grids):
        ax.imshow(grid, interpolation="nearest")
        step = int(path.stem.rsplit("-", 1)[1])
        ax.set_title(f"第 {step} 步", fontsize=10)
        ax.set_xticks([])
        rows = len(ROW_LABELS)
        ax.set_yticks([(i + 0.5) * grid.shape[0] / rows for i in range(rows)])
        ax.set_yticklabels(list(ROW_LABELS.values()) if ax is axes[0] else [""] * rows, fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = {"pretrain/loss.svg": loss_curve, "pretrain/reconstructions.svg": reconstructions}

def record_run(run: str | os.PathLike[str], steps: Sequence[int] = (0, 200, 360), dest: Path = RUNS,
               force: bool = False) -> list[Path]:
    """Write the guide's committed run from a finished ``mae-pretrain`` folder: its log and a grid per step.

    Args:
        run: the run's ``output_dir`` (``config.json``, ``metrics.jsonl`` and ``checkpoint-<step>.pth``
            for every step in ``steps`` but 0, whose weights are rebuilt from the config's seed).
        steps: the steps to draw.
        dest: where the log and the grids go.
        force: replace a recorded run that is already there (its grids of other steps are removed).

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if the run lacks one of those files.
        FileExistsError: if ``dest`` already holds a run and ``force`` is not set.
    """
    from PIL import Image

    from refimpl.train.checkpoint import checkpoint_name, load_training_checkpoint
    from refimpl.train.config import PretrainConfig
    from refimpl.train.data import MAEPretrainDataset, normalize_images
    from refimpl.train.reconstruction import reconstruction_grid, reconstruction_rows
    from refimpl.train.pretrain import build_model, figure_batch, noise_length, open_data

    run = Path(run)
    needed = [run / "config.json", run / "metrics.jsonl"] + [run / checkpoint_name(s) for s in steps if s]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"run {str(run)!r} lacks {', '.join(missing)}; expected a finished mae-pretrain folder")
    recorded = sorted(p for p in (dest / LOG.name, *dest.glob(f"{LOG.stem}-recon-*.png")) if p.exists())
    if recorded and not force:
        raise FileExistsError(f"{str(dest)!r} already holds a recorded run ({recorded[0].name}); "
                              "pass --force (force=True) to replace it")

    config = PretrainConfig.from_dict(json.loads((run / "config.json").read_text(encoding="utf-8"))["config"])
    model = build_model(config).eval()
    dataset = MAEPretrainDataset(open_data(config)[0], config.img_size, noise_length(model), config.seed)
    imgs, noise = figure_batch(dataset, config.figure_images)
    imgs = normalize_images(imgs)
    written = []
    for step in steps:
        if step:
            model.load_state_dict(load_training_checkpoint(run / checkpoint_name(step))["model"])
        grid = reconstruction_grid(reconstruction_rows(model, imgs, noise, config.mask_ratio))
        path = dest / f"{LOG.stem}-recon-{step:06d}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        Image.fromarray(grid.numpy()).save(tmp, format="PNG")
        os.replace(tmp, path)
        written.append(path)
    tmp = dest / f".{LOG.name}.tmp"
    shutil.copyfile(run / "metrics.jsonl", tmp)
    os.replace(tmp, dest / LOG.name)
    written.append(dest / LOG.name)
    for stale in set(dest.glob(f"{LOG.stem}-recon-*.png")) - set(written):
        stale.unlink()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m paper_notes.figures.pretrain RUN [--steps ...] [--force]``: see ``record_run``."""
    parser = argparse.ArgumentParser(prog="python -m paper_notes.figures.pretrain",
                                     description="Record a finished mae-pretrain run for the pretraining guide.")
    parser.add_argument("run", help="the run's output folder")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 200, 360], help="steps to draw (default: 0 200 360)")
    parser.add_argument("--force", action="store_true", help="replace the run recorded in docs/guides/runs/")
    args = parser.parse_args(argv)
    try:
        written = record_run(args.run, args.steps, force=args.force)
    except (FileNotFoundError, FileExistsError) as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
