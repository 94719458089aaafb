"""Training-step speed of our MAE against Hugging Face ``ViTMAEForPreTraining``, side by side.

``--model hiera`` compares our MAE-Hiera with the official ``hiera`` package's instead (same
weights, loaded from ours; the same mask, given to the official model as its ``mask``).

One training step = forward + backward + AdamW step, on a fixed batch with fixed masking noise,
timed after warm-up. Both models have the same configuration and the same weights (our state
dict converted by ``to_hf_vitmae``), the same optimiser settings, and on CUDA the
same bf16 autocast, fused AdamW and (with ``--compile``) ``torch.compile``. With ``--compile`` the
anchor is also timed uncompiled ("eager"), as its users get it out of the box, so the table shows
both ratios: ours against the anchor compiled the same way, and against the anchor as shipped.

Speed is timed in one process holding all the models, one step of each per round, taking turns
at going first; the table gives each one's median step and the ratios. A shared machine's load
spikes then fall on all of them alike instead of on whichever happened to be running.

Peak memory is one model's alone. On CUDA it comes from the same process: ``max_memory_allocated``
during one step of a model, less what the other models hold between steps (weights, AdamW
state and batch, measured when each was built and warmed up), so each model is compiled once. On
the CPU a separate process per model gives its peak resident set (``ru_maxrss``, with the same
libraries imported).

MFU (CUDA only) divides the model FLOPs of a training step (forward + backward: the encoder on
the ``1 + L_keep`` visible tokens, the decoder on all ``1 + L`` tokens, the patch embedding on
all ``L`` patches; matrix multiplies only, counted as 2 FLOPs per multiply-add; see
``train_flops_per_image``) by the time and by ``--peak-tflops`` (default 989.4: an H100 SXM's
dense bf16 tensor-core peak). MAE-Hiera's FLOPs are PyTorch's ``FlopCounterMode`` count of one
image's step on the meta device (``counted_train_flops_per_image``), which for the ViT equals the
written-out count.

    .venv/bin/python benchmarks/mae_pretrain.py                      # CPU: tiny, 1 thread and all threads
    .venv/bin/python benchmarks/mae_pretrain.py --device cuda        # CUDA: ViT-B/16, batch 256, bf16
    .venv/bin/python benchmarks/mae_pretrain.py --model hiera --device cuda   # MAE-Hiera-B vs official
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refimpl import mae as mae_lib  # noqa: E402
sys.path.insert(0, str(ROOT / "tests"))  # the anchors' builders
from anchors.hf_vitmae import to_hf_vitmae  # noqa: E402

CONFIGS = {  # name -> (factory, img_size)
    "tiny": ("mae_vit_tiny_patch16", 224),
    "base": ("mae_vit_base_patch16", 224),
}
HIERA_CONFIGS = {"tiny": "mae_hiera_tiny_224", "base": "mae_hiera_base_224"}  # 224 px, mask ratio 0.6
ANCHOR = {"vit": "HF", "hiera": "official"}
EAGER_ANCHOR = "hf_eager"  # the anchor uncompiled, as its users run it out of the box


def implementations(compile_: bool) -> tuple[str, ...]:
    """What is timed: ours and the anchor with the same settings, and with ``--compile`` also the
    anchor uncompiled, so the table says what compiling buys each side."""
    return ("ours", "hf", EAGER_ANCHOR) if compile_ else ("ours", "hf")


def train_flops_per_image(model: mae_lib.MaskedAutoencoderViT, mask_ratio: float) -> float:
    """Matmul FLOPs of one training step per image (2 per multiply-add).

    Forward + backward = 3 x forward for every layer whose input needs a gradient: the encoder
    blocks on the ``1 + L_keep`` visible tokens and the decoder (embedding, blocks, prediction)
    on all ``1 + L`` tokens, attention's two matmuls included. The patch embedding counts 2 x:
    the images need no gradient, so its backward computes the weight gradient only.
    ``tests/test_benchmarks.py`` checks this against PyTorch's ``FlopCounterMode``.
    """
    L = model.num_patches
    keep = 1 + int(L * (1 - mask_ratio))  # cls + visible
    d, dd = model.cls_token.shape[-1], model.mask_token.shape[-1]
    pix = model.patch_size**2 * model.in_chans
    mlp = model.blocks[0].mlp.fc1.out_features / d

    def block(width: float, tokens: int) -> float:  # qkv + proj + MLP, and the two attention matmuls
        return tokens * (2 * (4 + 2 * mlp) * width**2) + 4 * tokens**2 * width

    patch_embed = 2 * L * pix * d
    rest = (len(model.blocks) * block(d, keep) + 2 * keep * d * dd
            + len(model.decoder_blocks) * block(dd, 1 + L) + 2 * (1 + L) * dd * pix)
    return 2 * patch_embed + 3 * rest


def counted_train_flops_per_image(model: torch.nn.Module,
                                  loss_of: Callable[[torch.nn.Module, torch.device], torch.Tensor]) -> float:
    """FLOPs of one image's training step (forward + backward) as PyTorch's ``FlopCounterMode`` counts
    them, on a copy of ``model`` on the meta device: shapes only, nothing computed or allocated.

    Attention runs on the math backend, spelled out as the matmuls the counter sees.
    ``loss_of(model, device)`` runs the forward pass on one image on ``device`` (meta here).
    """
    import copy

    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta").train()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss_of(meta, torch.device("meta")).backward()
    return float(counter.get_total_flops())


def training_step(model: torch.nn.Module, loss_of: Callable[[torch.nn.Module], torch.Tensor], device: str,
                  compile_: bool) -> Callable[[], None]:
    """Forward + backward + AdamW step of ``model`` (on ``device``, compiled if asked): the loop body both
    implementations share. ``loss_of(model)`` runs the forward pass on the fixed batch."""
    cuda = device == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05,
                                  fused=True if cuda else None)
    step_model = torch.compile(model) if compile_ else model

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext():
            loss = loss_of(step_model)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def build_hiera_step(impl: str, config: str, device: str, compile_: bool, batch: int,
                     mask_ratio: float = 0.6) -> tuple[Callable[[], None], float]:
    """A MAE-Hiera training step, ours or the official one, on a fixed batch and mask, and its FLOPs per image."""
    import warnings

    from refimpl import hiera as hiera_lib

    sys.path[:] = [p for p in sys.path if not p.endswith("benchmarks")]  # "import hiera": the package, not ./hiera.py
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import hiera as official

    name = HIERA_CONFIGS[config]
    torch.manual_seed(0)
    ours = getattr(hiera_lib, name)()
    flops = counted_train_flops_per_image(  # the same for the official model: same layers, same kept units
        ours, lambda m, d: m(torch.zeros(1, 3, 224, 224, device=d), mask_ratio,
                             noise=torch.zeros(1, m.num_mask_units, device=d)).loss)
    model = ours if impl == "ours" else getattr(official, name)()
    if impl != "ours":
        model.load_state_dict(ours.state_dict(), strict=True)
    model = model.to(device).train()
    generator = torch.Generator().manual_seed(1)
    imgs = torch.randn(batch, 3, 224, 224, generator=generator).to(device)
    noise = torch.rand(batch, ours.num_mask_units, generator=generator).to(device)
    keep = torch.zeros_like(noise, dtype=torch.bool)  # the official mask convention: True = keep
    keep.scatter_(1, noise.argsort(dim=1)[:, : int(ours.num_mask_units * (1 - mask_ratio))], True)
    if impl == "ours":
        step = training_step(model, lambda m: m(imgs, mask_ratio, noise=noise).loss, device, compile_)
    else:
        step = training_step(model, lambda m: m(imgs, mask_ratio, mask=keep)[0], device, compile_)
    return step, flops


def build_step(impl: str, config: str, device: str, compile_: bool, batch: int,
               mask_ratio: float = 0.75) -> tuple[Callable[[], None], float]:
    """One implementation's training step on a fixed batch and noise, and its FLOPs per image."""
    factory, img_size = CONFIGS[config]
    torch.manual_seed(0)
    ours = getattr(mae_lib, factory)(img_size=img_size, norm_pix_loss=True)
    model = (ours if impl == "ours" else to_hf_vitmae(ours, mask_ratio)).to(device).train()
    generator = torch.Generator().manual_seed(1)
    imgs = torch.randn(batch, 3, img_size, img_size, generator=generator).to(device)
    noise = torch.rand(batch, ours.num_patches, generator=generator).to(device)
    if impl == "ours":
        step = training_step(model, lambda m: m(imgs, mask_ratio, noise).loss, device, compile_)
    else:
        step = training_step(model, lambda m: m(pixel_values=imgs, noise=noise).loss, device, compile_)
    return step, train_flops_per_image(ours, mask_ratio)


def timed(step: Callable[[], None], cuda: bool) -> float:
    """Seconds of one call of ``step``, waiting for the GPU."""
    start = time.perf_counter()
    step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(mode: str, config: str, batch: int, device: str, threads: int, steps: int, warmup: int,
            compile_: bool, model: str = "vit") -> dict:
    """Run in a child process: ``mode`` ``"pair"`` times the models' steps in turns (one of each per
    round; see ``implementations``), and on CUDA also gives each one's peak memory; ``"ours"``,
    ``"hf"`` (the anchor, HF or official Hiera) or ``"hf_eager"`` gives one model's peak resident set
    on the CPU."""
    import transformers  # noqa: F401 - in every child, so the CPU peak memory counts the same libraries

    if threads:
        torch.set_num_threads(threads)
    cuda = device == "cuda"
    impls = implementations(compile_) if mode == "pair" else (mode,)
    build = build_hiera_step if model == "hiera" else build_step
    steps_of, held = {}, {}
    for impl in impls:
        before = torch.cuda.memory_allocated() if cuda else 0
        eager = impl == EAGER_ANCHOR
        steps_of[impl] = build("hf" if eager else impl, config, device, compile_ and not eager, batch)
        for _ in range(warmup):
            timed(steps_of[impl][0], cuda)
        held[impl] = torch.cuda.memory_allocated() - before if cuda else 0  # kept between steps
    if mode != "pair":  # the process's peak resident set: warm-up steps included, nothing else ran here
        return {"impl": mode, "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for round_ in range(steps):
        first = round_ % len(impls)  # take turns at going first
        for impl in impls[first:] + impls[:first]:
            times[impl].append(timed(steps_of[impl][0], cuda))
    result = {"threads": torch.get_num_threads()}
    for impl in impls:
        seconds = statistics.median(times[impl])
        result[impl] = {"images_per_s": batch / seconds, "step_ms": 1000 * seconds,
                        "tflops": steps_of[impl][1] * batch / seconds / 1e12}
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            timed(steps_of[impl][0], cuda)
            others = sum(held[other] for other in impls if other != impl)
            result[impl]["peak_bytes"] = torch.cuda.max_memory_allocated() - others
    return result


def run_child(args: argparse.Namespace, mode: str, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--model", args.model, "--config", args.config,
               "--batch", str(args.batch),
               "--device", args.device, "--threads", str(threads), "--steps", str(args.steps),
               "--warmup", str(args.warmup)] + (["--compile"] if args.compile else ["--no-compile"])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="vit", choices=sorted(ANCHOR),
                        help="vit: ours vs Hugging Face ViTMAE; hiera: our MAE-Hiera vs the official one")
    parser.add_argument("--config", default=None, choices=sorted(CONFIGS), help="tiny on CPU, base on CUDA")
    parser.add_argument("--batch", type=int, default=None, help="8 on CPU, 256 on CUDA")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed rounds, one step of each model per round (20 on CPU, 30 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps of each model first (2 on CPU, 10 on CUDA)")
    parser.add_argument("--threads", type=int, nargs="*", default=None,
                        help="CPU threads to try (default: 1 and all); 0 = leave torch's default")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile both models, and time the anchor eager too (default: on for CUDA)")
    parser.add_argument("--peak-tflops", type=float, default=989.4, help="GPU peak for MFU (H100 SXM dense bf16)")
    parser.add_argument("--child", choices=["ours", "hf", EAGER_ANCHOR, "pair"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.config = args.config or ("base" if cuda else "tiny")
    args.batch = args.batch or (256 if cuda else 8)
    args.steps = args.steps or (30 if cuda else 20)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    args.compile = cuda if args.compile is None else args.compile
    if args.child:
        threads = args.threads[0] if args.threads else 0
        print(json.dumps(measure(args.child, args.config, args.batch, args.device, threads, args.steps,
                                 args.warmup, args.compile, args.model)))
        return
    thread_options = args.threads if args.threads is not None else ([0] if cuda else [1, os.cpu_count() or 1])
    device_name = torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores)"
    anchor = ANCHOR[args.model]
    mfu = cuda  # a GPU's peak to divide by
    print(f"# MAE ({args.model}) training step, config={args.config}, batch={args.batch}, device={device_name}, "
          f"torch {torch.__version__}, compile={args.compile}, median of {args.steps} alternating rounds "
          f"after {args.warmup} warm-up steps")
    header = "| impl | threads | images/s | ms/step | peak memory (MiB) |" + (" MFU |" if mfu else "")
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for threads in thread_options:
        pair = run_child(args, "pair", threads)
        impls = implementations(args.compile)
        peaks = {impl: pair[impl]["peak_bytes"] if cuda else run_child(args, impl, threads)["peak_bytes"]
                 for impl in impls}
        for impl in impls:
            row = pair[impl]
            label = {"ours": "ours", "hf": anchor.lower() + (", compiled" if args.compile else ""),
                     EAGER_ANCHOR: f"{anchor.lower()}, eager"}[impl]
            line = (f"| {label} | {pair['threads']} | {row['images_per_s']:.1f} | {row['step_ms']:.0f} | "
                    f"{peaks[impl] / 2**20:.0f} |")
            if mfu:
                line += f" {100 * row['tflops'] / args.peak_tflops:.1f} % |"
            print(line)
        for impl in impls[1:]:
            ratio = pair["ours"]["images_per_s"] / pair[impl]["images_per_s"]
            name = anchor + {"hf": ", compiled" if args.compile else "", EAGER_ANCHOR: ", eager"}[impl]
            print(f"| ours/{name} | {pair['threads']} | {ratio:.2f}x | | {peaks['ours'] / peaks[impl]:.2f}x |"
                  + (" |" if mfu else ""))


if __name__ == "__main__":
    main()
