"""The numbers the benchmarks print are computed right (the timings themselves are not tested)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from refimpl import mae as mae_lib

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
