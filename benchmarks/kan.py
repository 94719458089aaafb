"""Time and memory of one KAN layer, forward + backward: ours, pykan, and the bare matmul.

Every exact B-spline KAN layer reduces to one matrix product, ``[silu(x), B(x)] (N, in*F) @ W
(in*F, out)`` with ``F = 1 + G + k`` (see ``refimpl/kan.py``); that product, with its own
backward, is the floor we compare against ("bare"). For each size this prints the median
time of forward + backward, the peak memory above what was live before the step, and the
ratios to the bare matmul and to pykan; pykan is skipped above a size limit (its layer
forms several ``(N, in, out)`` tensors). "ours (updated grid)" is the same layer after
``update_grid``, whose knots are no longer equally spaced (the general, searchsorted path).

    .venv/bin/python benchmarks/kan.py                 # CPU, one thread (+ CUDA if present)
    .venv/bin/python benchmarks/kan.py --device cpu --threads 4

CPU peak memory is the rise of the process's resident set (``VmHWM`` after resetting it
through ``/proc/self/clear_refs``), measured in a fresh subprocess with glibc's mmap threshold
pinned low so that freed buffers leave the resident set; CUDA peak memory is
``torch.cuda.max_memory_allocated``. "saved" is the bare matmul's saved activation, the
feature matrix itself; the goal for ours is a peak of at most 2x that.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

# This file is named kan.py: take its folder off the path so ``import kan`` finds pykan.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from refimpl.kan import KANLinear  # noqa: E402

SIZES = [  # (N, in, out, G, k)
    (4096, 256, 256, 5, 3),
    (1024, 64, 64, 20, 3),
    (1024, 64, 64, 5, 3),
]
PYKAN_LIMIT = 2**25  # N * in * out above which pykan is skipped (~128 MB per (N, in, out) float32 tensor)
K_VARIANTS = ("bare", "ours", "ours (updated grid)", "pykan")


def make(variant: str, size: tuple[int, int, int, int, int], device: str):
    """Build ``step()`` (one forward + backward) for a variant, on fixed seeded data."""
    N, n_in, n_out, G, k = size
    torch.manual_seed(0)
    x = (torch.rand(N, n_in, device=device) * 2 - 1).requires_grad_()
    grad_y = torch.randn(N, n_out, device=device)
    if variant == "bare":
        feats = torch.randn(N, n_in * (1 + G + k), device=device, requires_grad=True)
        weight = torch.randn(n_in * (1 + G + k), n_out, device=device, requires_grad=True)
        return lambda: (feats @ weight).backward(grad_y)
    if variant == "pykan":
        from kan.KANLayer import KANLayer

        layer = KANLayer(n_in, n_out, num=G, k=k, device=device).to(device)
        return lambda: layer(x)[0].backward(grad_y)
    layer = KANLinear(n_in, n_out, grid_size=G, spline_order=k).to(device)
    if variant == "ours (updated grid)":
        layer.update_grid(torch.randn(N, n_in, device=device) * 0.6)
    return lambda: layer(x).backward(grad_y)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_step(step, device: str, repeats: int) -> float:
    step()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_cpu_in_this_process(variant: str, size: tuple[int, int, int, int, int]) -> int:
    """Bytes the step adds to the resident set at its peak (run in a fresh subprocess)."""
    step = make(variant, size, "cpu")
    step()  # warm-up: kernels, lazy buffers, .grad tensors exist from now on
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    step()
    return (_status_kib("VmHWM") - before) * 1024


def peak_cpu(variant: str, size: tuple[int, int, int, int, int]) -> int:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--_peak", json.dumps([variant, size])],
        env=env, capture_output=True, text=True, check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def peak_cuda(variant: str, size: tuple[int, int, int, int, int]) -> int:
    step = make(variant, size, "cuda")
    step()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def run(device: str, repeats: int) -> None:
    print(f"\n## {device}" + (f" ({torch.get_num_threads()} thread)" if device == "cpu" else
                              f" ({torch.cuda.get_device_name()})"))
    print("| N, in -> out, G | variant | time (ms) | x bare | x pykan | peak (MB) | peak / saved |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for size in SIZES:
        N, n_in, n_out, G, k = size
        saved = N * n_in * (1 + G + k) * 4  # the bare matmul's feature matrix, float32
        label = f"{N}, {n_in} -> {n_out}, G={G}"
        results = {}
        for variant in K_VARIANTS:
            if variant == "pykan" and N * n_in * n_out > PYKAN_LIMIT:
                continue
            t = time_step(make(variant, size, device), device, repeats)
            peak = peak_cpu(variant, size) if device == "cpu" else peak_cuda(variant, size)
            results[variant] = (t, peak)
        for variant, (t, peak) in results.items():
            vs_bare = t / results["bare"][0]
            vs_pykan = f"{t / results['pykan'][0]:.2f}" if "pykan" in results else "-"
            print(f"| {label} | {variant} | {t * 1e3:.2f} | {vs_bare:.2f} | {vs_pykan} | "
                  f"{peak / 2**20:.1f} | {peak / saved:.2f} |")
        if "pykan" not in results:
            print(f"| {label} | pykan | skipped: N*in*out = {N * n_in * n_out:,} > {PYKAN_LIMIT:,} "
                  f"(it forms several (N, in, out) tensors) | | | | |")
    print(f"\nsaved = the bare matmul's feature matrix, N * in * (1 + G + k) * 4 bytes; median of {repeats} runs.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--_peak", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args._peak:
        variant, size = json.loads(args._peak)
        print(peak_cpu_in_this_process(variant, tuple(size)))
        return
    if args.device in ("cpu", "all"):
        run("cpu", args.repeats)
    if args.device == "cuda" or (args.device == "all" and torch.cuda.is_available()):
        run("cuda", args.repeats)


if __name__ == "__main__":
    main()
