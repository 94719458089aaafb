"""U²-Net and U²-Net† on the CPU: refimpl against the official architecture (carvekit 4.1.2), side by side.

First the parity: the largest difference of every output (fused map and the six side maps) on
the same random weights (BatchNorm statistics randomised too) and the same input, in eval and
train mode, at 320 x 320 and at an odd size (301 x 257). Then the speed: a float32 forward at
320 x 320 under ``inference_mode``, warm-up first, then the median of rounds that call both
models once each, alternating the order, so a load spike on a shared machine favours neither.
Parameter counts and float32 sizes are printed beside the paper's 176.3 MB and 4.7 MB. Wall
and CPU time are both printed; on a machine shared with other jobs use ``--threads 1``: with
several threads, a descheduled thread makes the others spin-wait, which inflates the CPU time
as much as the wall time (ratios from 0.5x to 3x were seen on a loaded 2-core machine). Not a
test: run it by hand and quote the table::

    .venv/bin/python benchmarks/u2net.py --threads 1
    .venv/bin/python benchmarks/u2net.py --models lite --batch 4 --runs 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the anchors' builders
from anchors.u2net import load_official, official_config, randomize_batchnorm_  # noqa: E402

from refimpl.u2net import U2NET_FULL, U2NET_LITE, u2net_full, u2net_lite

MODELS = {"full": (u2net_full, U2NET_FULL, 176.3), "lite": (u2net_lite, U2NET_LITE, 4.7)}
"""name: (our factory, its stage table, the paper's size in MB)."""


def build(official: object, name: str, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Ours and the anchor with the same random weights, BatchNorm affines and statistics randomised."""
    factory, config, _ = MODELS[name]
    torch.manual_seed(seed)
    anchor = official.U2NETArchitecture(official_config(config))
    g = torch.Generator().manual_seed(seed)
    state = anchor.state_dict()
    randomize_batchnorm_(state, g)
    ours = factory()
    ours.load_state_dict(state)
    return ours, anchor


def parity(ours: torch.nn.Module, anchor: torch.nn.Module, mode: str, hw: tuple[int, int]) -> list[float]:
    """Max |ours - official| of the fused map and the six side maps."""
    state = {k: v.clone() for k, v in anchor.state_dict().items()}
    ours.load_state_dict(state)
    getattr(ours, mode)()
    getattr(anchor, mode)()
    x = torch.randn(1, 3, *hw, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = ours(x)
        expected = anchor(x)
    anchor.load_state_dict(state)  # train mode moved the running statistics
    ours.load_state_dict(state)
    return [(a - b).abs().max().item() for a, b in zip((maps.fused, *maps.sides), expected)]


def milliseconds(models: dict[str, torch.nn.Module], x: torch.Tensor, warmup: int,
                 runs: int) -> dict[str, tuple[float, float]]:
    """Median wall ms and CPU ms (all threads) per forward of each model, timed in alternating rounds.

    Each round calls every model once, in forward order on even rounds and backward on odd ones.
    The CPU time (``time.process_time``) moves much less than the wall time when other jobs share
    the machine, so both are printed.
    """
    def call(model: torch.nn.Module) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            model(x)
        return time.perf_counter() - wall, time.process_time() - cpu

    for model in models.values():
        model.eval()
        for _ in range(warmup):
            call(model)
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in models}
    for round_ in range(runs):
        for key in (list(models) if round_ % 2 == 0 else list(reversed(models))):
            times[key].append(call(models[key]))
    return {key: (1000 * statistics.median(w for w, _ in t), 1000 * statistics.median(c for _, c in t))
            for key, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--odd-size", type=int, nargs=2, default=(301, 257), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's choice)")
    parser.add_argument("--no-parity", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        official = load_official()
    except ModuleNotFoundError as exc:
        raise SystemExit(str(exc)) from None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 CPU")

    pairs = {name: build(official, name) for name in args.models}
    print("\n| model | parameters (ours = official) | float32 state dict | paper |")
    print("| --- | ---: | ---: | ---: |")
    for name, (ours, anchor) in pairs.items():
        n_ours = sum(p.numel() for p in ours.parameters())
        n_official = sum(p.numel() for p in anchor.parameters())
        nbytes = sum(t.numel() * t.element_size() for t in ours.state_dict().values())
        same = "=" if n_ours == n_official else f"!= {n_official:,}"
        print(f"| {name} | {n_ours:,} {same} | {nbytes / 1e6:.1f} MB | {MODELS[name][2]} MB |")

    if not args.no_parity:
        sizes = [(args.image_size, args.image_size), tuple(args.odd_size)]
        print("\n| model | mode | input | fused | side 1 | side 2 | side 3 | side 4 | side 5 | side 6 |")
        print("| --- | --- | --- |" + " ---: |" * 7)
        for name, (ours, anchor) in pairs.items():
            for mode in ("eval", "train"):
                for hw in sizes:
                    diffs = parity(ours, anchor, mode, hw)
                    print(f"| {name} | {mode} | {hw[0]}x{hw[1]} | " + " | ".join(f"{d:.1e}" for d in diffs) + " |")

    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    print(f"\nforward, batch {args.batch}, {args.image_size}x{args.image_size}, median of {args.runs} alternating rounds:")
    print("| model | ours ms | official ms | ours/official | ours CPU ms | official CPU ms | CPU ours/official |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (ours, anchor) in pairs.items():
        ms = milliseconds({"ours": ours, "official": anchor}, x, args.warmup, args.runs)
        (wall, cpu), (wall_o, cpu_o) = ms["ours"], ms["official"]
        print(f"| {name} | {wall:.0f} | {wall_o:.0f} | {wall / wall_o:.2f}x | {cpu:.0f} | {cpu_o:.0f} | {cpu / cpu_o:.2f}x |")


if __name__ == "__main__":
    main()
