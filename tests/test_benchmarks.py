"""The numbers the benchmarks print are computed right (the timings themselves are not tested)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from refimpl import mae as mae_lib
from refimpl.hiera import MaskedAutoencoderHiera

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> object:
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize(("factory", "img_size", "mask_ratio"),
                         [("mae_vit_tiny_patch16", 224, 0.75), ("mae_vit_base_patch16", 112, 0.5)])
def test_the_mfu_flop_count_equals_pytorchs_flop_counter(factory: str, img_size: int, mask_ratio: float) -> None:
    """MFU = counted FLOPs / time / peak: a wrong count is a wrong MFU, however good the timing."""
    bench = load_benchmark("mae_pretrain")
    model = getattr(mae_lib, factory)(img_size=img_size, norm_pix_loss=True)
    imgs, noise = torch.randn(1, 3, img_size, img_size), torch.rand(1, model.num_patches)
    # The math backend spells attention out as matmuls, which the counter sees (fused kernels it may not).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(imgs, mask_ratio, noise).loss.backward()
    assert counter.get_total_flops() == pytest.approx(bench.train_flops_per_image(model, mask_ratio), rel=1e-6)


def test_the_input_pipeline_benchmark_times_both_pipelines_and_ours_moves_a_quarter_of_the_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = load_benchmark("pretrain_data")
    bench.main(["--images", "4", "--img-size", "32", "--batch", "2", "--batches", "1", "--warmup", "1",
                "--workers", "0", "--repeats", "1"])
    table = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in table[3:]] == ["| ours", "| official", "| ours/official"]
    assert table[-1].endswith("| 0.25x |")  # uint8 images (and the noise) against float32 images


def test_the_sam2_benchmark_finds_no_difference_from_the_official_model_and_times_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = load_benchmark("sam2")
    bench.main(["--image-size", "128", "--frame-size", "96", "160", "--warmup", "0", "--runs", "1"])
    lines = capsys.readouterr().out.splitlines()
    parity = [line for line in lines if line.startswith("| ") and not line.startswith(("| output", "| ---", "| float32"))][:-2]
    assert len(parity) == 31 and all(line.endswith("| 0 |") for line in parity)  # every output, bit for bit
    assert [line.split(" | ")[0] for line in lines[-2:]] == ["| image encoder", "| tracking step (7 memories)"]


# --- scripts/gpu-check.sh --------------------------------------------------------------------

FAKE_PYTHON = """#!/usr/bin/env bash
if [[ $1 == - ]]; then cat >/dev/null; exit 0; fi  # the preflight: CUDA and the imports are there
echo "ran: $*"
[[ $* == *kan* ]] && exit 3
exit 0
"""


def gpu_check(python: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("OUT", "LOG_DIR", "STEPS", "BUDGET_S", "WHEELS")}
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), python], cwd=tmp_path,
                          env={**environ, **env}, capture_output=True, text=True, timeout=120)


def test_gpu_check_refuses_a_machine_without_cuda(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = gpu_check(sys.executable, tmp_path)
    assert result.returncode == 2
    assert "gpu-check needs a CUDA device; torch.cuda.is_available() is False" in result.stderr


def test_gpu_check_runs_each_step_logs_it_and_reports_failures_and_the_budget(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    logs = tmp_path / "logs"
    result = gpu_check(str(fake), tmp_path, LOG_DIR=str(logs), STEPS="mae-vit kan")
    assert result.returncode == 1  # kan's step failed
    assert "ran: benchmarks/mae_pretrain.py --device cuda" in result.stdout
    assert "| mae-vit | ok |" in result.stdout and "| kan | failed (3) |" in result.stdout
    assert "| tests |" not in result.stdout  # not in STEPS
    results = result.stdout.split("=== results")[1]  # each step's last lines again, before the table
    assert results.index("--- mae-vit\nran: benchmarks/mae_pretrain.py") < results.index("--- kan\nran:")
    assert sorted(p.name for p in logs.iterdir()) == ["kan.log", "mae-vit.log", "summary.md"]
    assert (logs / "mae-vit.log").read_text() == "ran: benchmarks/mae_pretrain.py --device cuda\n"
    assert "| kan | failed (3) |" in (logs / "summary.md").read_text()
    spent = gpu_check(str(fake), tmp_path, BUDGET_S="10", STEPS="mae-vit")
    assert spent.returncode == 1 and "| mae-vit | skipped: budget spent | 0 |" in spent.stdout
    assert "ran:" not in spent.stdout
    every = gpu_check(str(fake), tmp_path, LOG_DIR=str(tmp_path / "all"))
    assert "ran: benchmarks/pretrain_data.py --device cuda" in every.stdout
    assert len(list((tmp_path / "all").iterdir())) <= 8  # what a lent GPU machine sends back from $OUT


def test_the_meta_device_count_equals_the_written_out_vit_count_and_the_real_hiera_count() -> None:
    """MAE-Hiera's MFU uses PyTorch's count on the meta device (no formula is written out for it):
    that count must be the ViT formula's for the ViT, and the real tensors' count for MAE-Hiera."""
    bench = load_benchmark("mae_pretrain")
    vit = mae_lib.mae_vit_tiny_patch16(img_size=112, norm_pix_loss=True)
    on_meta = bench.counted_train_flops_per_image(
        vit, lambda m, d: m(torch.zeros(1, 3, 112, 112, device=d), 0.75, torch.zeros(1, m.num_patches, device=d)).loss)
    assert on_meta == pytest.approx(bench.train_flops_per_image(vit, 0.75), rel=1e-9)
    hiera = MaskedAutoencoderHiera(
        input_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 1, 1), decoder_embed_dim=32, decoder_depth=1,
        decoder_num_heads=2)

    def loss_of(m: torch.nn.Module, device: torch.device) -> torch.Tensor:
        return m(torch.zeros(1, 3, 64, 64, device=device), 0.6, noise=torch.zeros(1, 4, device=device)).loss

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss_of(hiera, torch.device("cpu")).backward()
    assert bench.counted_train_flops_per_image(hiera, loss_of) == counter.get_total_flops() > 0


def test_site_build_benchmark_reads_which_notebooks_and_figures_a_rebuild_ran() -> None:
    bench = load_benchmark("site_build")
    log = ("INFO    -  paper-notes: drew 2 figure(s) of paper_notes.figures.kan (changed since the cached copy)\n"
           "INFO    -  notebook cache hit: vit_background.py\n"
           "INFO    -  executing notebook: kan_fit.py\n")
    assert bench.reruns(log) == "notebooks: kan_fit; figures: kan (2)"
    assert bench.reruns("INFO    -  notebook cache hit: kan_fit.py\n") == "notebooks: none; figures: none"
    # A checkout from before paper_notes.notebooks (--root): mkdocs-jupyter's log lines.
    old = ("INFO    -  Cache hit: /p/docs/notebooks/vit_background.py\n"
           "INFO    -  Converting notebook (execute=True): /p/docs/notebooks/kan_fit.py\n")
    assert bench.reruns(old) == "notebooks: kan_fit; figures: none"
    # A build without the caches (before they existed) redraws every figure and says so.
    assert bench.reruns("INFO    -  Converting notebook (execute=True): /p/docs/notebooks/a.py\n") == \
        "notebooks: a; figures: all (no figure cache)"
