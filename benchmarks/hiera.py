"""Inference speed of refimpl's Hiera vs the official ``hiera`` package vs timm's Hiera, side by side.

Same size (Hiera-T at 224 px by default), same input, warm-up first, then the median of several
timed runs; images/s and the ratio ours / official and ours / timm. CPU in float32 always; on a
CUDA machine also float16 and bfloat16 (autocast). Not a test: run it by hand and quote the table::

    .venv/bin/python benchmarks/hiera.py --batch 8 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch

from refimpl import hiera as ours

# This file is itself named hiera.py: take its folder off the path so "import hiera" finds the package.
sys.path = [p for p in sys.path if p != sys.path[0] or not p.endswith("benchmarks")]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import hiera as official
import timm


def images_per_second(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None, warmup: int, runs: int) -> float:
    """Median images/s of ``model(x)`` over ``runs`` timed calls after ``warmup`` untimed ones."""
    def call() -> None:
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return x.shape[0] / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "base", "base_plus", "large", "huge"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--cuda-batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    name = f"hiera_{args.size}_224"
    torch.manual_seed(0)
    theirs = getattr(official, name)().eval()
    mine = getattr(ours, name)().eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    models: dict[str, Callable[[], torch.nn.Module]] = {
        "refimpl": lambda: mine,
        "official hiera": lambda: theirs,
        "timm": lambda: timm.create_model(name, pretrained=False).eval(),
    }

    settings = [("cpu", None, args.batch)]
    if torch.cuda.is_available():
        settings += [("cuda", torch.float16, args.cuda_batch), ("cuda", torch.bfloat16, args.cuda_batch)]
    print(f"{name}, torch {torch.__version__}, timm {timm.__version__}, threads {torch.get_num_threads()}")
    print(f"{'device':<6} {'dtype':<9} {'batch':>5} " + " ".join(f"{k:>15}" for k in models) +
          f" {'ours/official':>14} {'ours/timm':>10}")
    for device, dtype, batch in settings:
        x = torch.randn(batch, 3, 224, 224, device=device)
        rates = {}
        for key, make in models.items():
            model = make().to(device)
            rates[key] = images_per_second(model, x, dtype, args.warmup, args.runs)
            model.to("cpu")
        dtype_name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
        print(f"{device:<6} {dtype_name:<9} {batch:>5} " + " ".join(f"{r:>11.1f} i/s" for r in rates.values()) +
              f" {rates['refimpl'] / rates['official hiera']:>13.2f}x {rates['refimpl'] / rates['timm']:>9.2f}x")


if __name__ == "__main__":
    main()
