"""Figures for the masking-strategies page (docs/concepts/masking.md).

Each figure masks the same photograph (scikit-image's ``astronaut``, resized to 224 x 224
and cut into a 14 x 14 grid of 16 px patches) with one strategy from ``refimpl.masking``,
with fixed seeds, so the page shows exactly what the reference code does. Removed patches
are painted grey; mask convention as everywhere in the package: 1 = removed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from refimpl.masking import block_masking, mask_unit_masking, patchify, random_masking, unpatchify

IMAGE_SIZE = 224
PATCH = 16
GRID = IMAGE_SIZE // PATCH  # 14 patches per side
UNIT = 2  # patches per mask-unit side: 32 px, Hiera's mask unit at 224 px
GREY = 0.55
SEED = 0


def _astronaut() -> Tensor:
    """The test photograph as a ``(1, 3, 224, 224)`` float tensor in ``[0, 1]``."""
    from skimage import data
    from skimage.transform import resize

    image = resize(data.astronaut(), (IMAGE_SIZE, IMAGE_SIZE), anti_aliasing=True)  # (H, W, 3)
    return torch.from_numpy(image).float().permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)


def _grey_out(image: Tensor, mask: Tensor) -> Tensor:
    """Paint the removed patches grey: ``(1, 3, H, W)``, ``(1, L)`` -> ``(H, W, 3)`` array."""
    tokens = patchify(image, PATCH)  # (1, L, D)
    tokens = torch.where(mask.bool().unsqueeze(-1), torch.full_like(tokens, GREY), tokens)
    masked = unpatchify(tokens, PATCH, grid_size=(GRID, GRID))  # (1, 3, H, W)
    return masked[0].permute(1, 2, 0).clamp(0, 1).numpy()  # (H, W, 3) for imshow


def _figure(mask: Tensor, title: str, subtitle: str, unit_lines: bool = False):
    """Original and masked photograph side by side, with the patch grid drawn on both."""
    import matplotlib.pyplot as plt

    image = _astronaut()
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9), layout="constrained")
    panels = (
        (image[0].permute(1, 2, 0).numpy(), f"输入：{GRID} × {GRID} 个 {PATCH} px 的图像块 (patch)"),
        (_grey_out(image, mask), subtitle),
    )
    for ax, (pixels, label) in zip(axes, panels):
        ax.imshow(pixels, interpolation="nearest")
        for k in range(1, GRID):
            ax.axhline(k * PATCH - 0.5, color="white", linewidth=0.4, alpha=0.6)
            ax.axvline(k * PATCH - 0.5, color="white", linewidth=0.4, alpha=0.6)
        if unit_lines:
            for k in range(UNIT, GRID, UNIT):
                ax.axhline(k * PATCH - 0.5, color="black", linewidth=1.1)
                ax.axvline(k * PATCH - 0.5, color="black", linewidth=1.1)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    kept = int((mask == 0).sum())
    fig.suptitle(f"{title}（可见 {kept} / {mask.numel()} 个图像块）", fontsize=11)
    return fig


def random_figure():
    """MAE: 75% of the patches removed uniformly at random (seed 0)."""
    noise = torch.rand(1, GRID * GRID, generator=torch.Generator().manual_seed(SEED))
    tokens = torch.zeros(1, GRID * GRID, 1)  # only the mask is used
    mask = random_masking(tokens, 0.75, noise=noise).mask  # (1, L)
    return _figure(mask, "随机掩码 (random masking, MAE)", "去掉 75%：随机挑选的单个图像块")


def block_figure():
    """BEiT: 40% of the patches removed as random rectangles (seed 0)."""
    generator = torch.Generator().manual_seed(SEED)
    mask = block_masking(1, (GRID, GRID), 0.4, generator=generator)  # (1, L)
    return _figure(mask, "分块掩码 (block-wise masking, BEiT)", "去掉 40%：成片的矩形，每片至少 4 个图像块")


def mask_unit_figure():
    """Hiera: 75% of the 7 x 7 mask units (2 x 2 patches, 32 px) removed whole (seed 0)."""
    units = (GRID // UNIT) ** 2
    noise = torch.rand(1, units, generator=torch.Generator().manual_seed(SEED))
    mask = mask_unit_masking(1, (GRID, GRID), UNIT, 0.75, noise=noise).mask  # (1, L)
    return _figure(
        mask,
        "掩码单元掩码 (mask-unit masking, Hiera)",
        "7 × 7 个掩码单元（各 2 × 2 个图像块）去掉 75%",
        unit_lines=True,
    )


FIGURES: dict[str, Callable[[], object]] = {
    "masking/random.svg": random_figure,
    "masking/block.svg": block_figure,
    "masking/mask-unit.svg": mask_unit_figure,
}
