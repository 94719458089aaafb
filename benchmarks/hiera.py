"""Inference speed of refimpl's Hiera vs the official ``hiera`` package vs timm's Hiera, side by side.

Same size (Hiera-T at 224 px by default), same weights, same input, warm-up first, then the
median of several rounds that call every model once, alternating the order; images/s and the
ratios ours / official and ours / timm. The CPU in float32 and, on a CUDA machine, the GPU in
float16 and bfloat16 (autocast); ``--device`` picks one. ``--video`` times the 16-frame video
models (Hiera-B by default) against the official package only: timm has no video Hiera. Not a
test: run it by hand and quote the table::

    .venv/bin/python benchmarks/hiera.py --batch 8 --runs 5
    .venv/bin/python benchmarks/hiera.py --video --batch 1 --runs 3
    .venv/bin/python benchmarks/hiera.py --device cuda              # GPU only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import torch

from refimpl import hiera as ours

# This file is itself named hiera.py: take its folder off the path so "import hiera" finds the package.
sys.path = [p for p in sys.path if p != sys.path[0] or not p.endswith("benchmarks")]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import hiera as official
import timm


def samples_per_second(models: dict[str, torch.nn.Module], x: torch.Tensor, dtype: torch.dtype | None,
                       warmup: int, runs: int) -> dict[str, float]:
    """Median samples (images or clips) per second of each ``model(x)``, timed in alternating rounds.

    Each round calls every model once, in forward order on even rounds and backward on odd ones,
    so a load spike on a shared machine, or caches warmed by the model before, favours none of
    them (timing one model after the other made the last one look up to 20 % faster on CPU).
    """
    def call(model: torch.nn.Module) -> float:
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for model in models.values():
        for _ in range(warmup):
            call(model)
    times: dict[str, list[float]] = {key: [] for key in models}
    for round_ in range(runs):
        order = list(models) if round_ % 2 == 0 else list(reversed(models))
        for key in order:
            times[key].append(call(models[key]))
    return {key: x.shape[0] / statistics.median(t) for key, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "small", "base", "base_plus", "large", "huge"],
                        help="model size (default: tiny; base with --video)")
    parser.add_argument("--video", action="store_true", help="16-frame 224-px clips, official video models")
    parser.add_argument("--batch", type=int, default=None, help="CPU batch (default: 8 images or 1 clip)")
    parser.add_argument("--cuda-batch", type=int, default=None, help="CUDA batch (default: 64 images or 8 clips)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="cpu, cuda, or all: the CPU and, when there is one, the GPU (default)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.size or ("base" if args.video else "tiny")
    if args.video and size in ("tiny", "small"):
        parser.error(f"--size {size} has no video model; expected base, base_plus, large or huge with --video")
    batch = args.batch or (1 if args.video else 8)
    cuda_batch = args.cuda_batch or (8 if args.video else 64)

    name = f"hiera_{size}_16x224" if args.video else f"hiera_{size}_224"
    torch.manual_seed(0)
    theirs = getattr(official, name)().eval()
    mine = getattr(ours, name)().eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    models = {"refimpl": mine, "official hiera": theirs}
    if not args.video:
        models["timm"] = timm.create_model(name, pretrained=False).eval()
    others = [k for k in models if k != "refimpl"]

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    settings = [("cpu", None, batch)] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        settings += [("cuda", torch.float16, cuda_batch), ("cuda", torch.bfloat16, cuda_batch)]
    unit = "clips" if args.video else "images"
    print(f"{name}, {unit}/s, torch {torch.__version__}, timm {timm.__version__}, threads {torch.get_num_threads()}")
    print(f"{'device':<6} {'dtype':<9} {'batch':>5} " + " ".join(f"{k:>15}" for k in models) +
          " ".join(f" {'ours/' + k.split()[0]:>14}" for k in others))
    for device, dtype, n in settings:
        x = torch.randn(n, 3, *mine.input_size, device=device)
        for model in models.values():
            model.to(device)
        rates = samples_per_second(models, x, dtype, args.warmup, args.runs)
        dtype_name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
        print(f"{device:<6} {dtype_name:<9} {n:>5} " + " ".join(f"{r:>13.1f}/s" for r in rates.values()) +
              "".join(f" {rates['refimpl'] / rates[k]:>13.2f}x" for k in others))

if __name__ == "__main__":
    main()
