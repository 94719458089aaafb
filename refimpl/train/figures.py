"""The reconstruction figure saved during pretraining: what the model sees, predicts and is scored against.

Rows, one column per image: **input** (the augmented crop), **masked** (the visible 25 %, removed
patches grey), **prediction** (removed patches only; visible ones grey) and **target** in the
loss's space (with ``norm_pix_loss`` each patch standardised by its own mean and standard
deviation, shown as ``0.5 + z / 4``, i.e. grey = the patch mean, ±2σ = black/white), and
**reconstruction**: visible patches from the input, removed ones the prediction mapped back to
pixels. With ``norm_pix_loss`` that mapping borrows each removed patch's true mean and standard
deviation (the model never predicts them), as Hugging Face's ViTMAE visualisation does: the
average colour of a removed patch in this row is the answer, not the model's guess; its texture
is the model's.

MAE-Hiera draws the same rows. Its "patches" are those of the prediction, ``pred_stride`` pixels
on a side (16 at any input size), so a removed 32 x 32 mask unit shows as 2 x 2 grey or predicted
patches; it flattens a patch channels first ``(C, p, p)``, and the rows are built from MAE's
channels-last layout once the prediction is reordered.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..masking import normalize_patches, patchify, unpatchify
from .data import denormalize_images

__all__ = ["ROWS", "reconstruction_figure", "reconstruction_rows"]

ROWS = ("input", "masked", "prediction", "target", "reconstruction")
"""Row names, top to bottom."""


@torch.no_grad()
def reconstruction_rows(model: Any, imgs: Tensor, noise: Tensor, mask_ratio: float) -> dict[str, Tensor]:
    """Run the MAE on a fixed batch and return every row of the figure as displayable images.

    Args:
        model: the MAE, ViT ([`MaskedAutoencoderViT`][refimpl.mae.MaskedAutoencoderViT]) or Hiera
            ([`MaskedAutoencoderHiera`][refimpl.hiera.MaskedAutoencoderHiera]): the interface both
            share (``pred_patch_size``, ``pred_channels_last``, ``norm_pix_loss``) is all it uses.
            Its mode is left unchanged; neither uses dropout here.
        imgs: normalised images ``(B, 3, S, S)``.
        noise: ``(B, L)`` masking noise (Hiera: ``(B, U)``, one value per mask unit), fixed so
            figures of different steps are comparable.
        mask_ratio: fraction of patches (Hiera: mask units) removed.

    Returns:
        ``{row: (B, 3, S, S) float in [0, 1]}`` for each of ``ROWS``.
    """
    out = model(imgs, mask_ratio, noise=noise)
    pred = model.pred_channels_last(out.pred.float())  # (B, L, p*p*3), patchify's layout
    mask = out.mask.float()  # (B, L), 1 = removed
    p = model.pred_patch_size
    pixels = denormalize_images(imgs)  # (B, 3, S, S)
    target = patchify(imgs.float(), p)  # (B, L, p*p*3)
    if model.norm_pix_loss:
        loss_target, mu, sigma = normalize_patches(target)
        pred_pixels = pred * sigma + mu
    else:
        loss_target, pred_pixels = target, pred
    keep = 1 - mask.unsqueeze(-1)  # (B, L, 1), 1 = visible

    def show(tokens: Tensor) -> Tensor:  # normalised tokens -> displayable pixels
        return denormalize_images(unpatchify(tokens, p))

    def show_standardised(tokens: Tensor) -> Tensor:  # per-patch z-scores -> [0, 1], 0 at grey
        return (unpatchify(tokens, p) / 4 + 0.5).clamp(0, 1)

    grey = torch.full_like(pixels, 0.5)
    masked = unpatchify(patchify(pixels, p) * keep + patchify(grey, p) * (1 - keep), p)
    return {
        "input": pixels,
        "masked": masked,
        "prediction": show_standardised(pred * (1 - keep)) if model.norm_pix_loss else show(pred * (1 - keep)),
        "target": show_standardised(loss_target) if model.norm_pix_loss else show(loss_target),
        "reconstruction": show(pred_pixels * (1 - keep) + target * keep),
    }


def reconstruction_figure(rows: dict[str, Tensor], title: str = "") -> Any:
    """Draw [`reconstruction_rows`][refimpl.train.figures.reconstruction_rows] as a grid (matplotlib ``Figure``).

    Args:
        rows: ``{row: (B, 3, S, S)}`` in ``[0, 1]``.
        title: figure title, e.g. ``"step 200"``.

    Returns:
        The figure; the caller saves and closes it.
    """
    from matplotlib.figure import Figure

    names = [r for r in ROWS if r in rows]
    n = rows[names[0]].shape[0]
    fig = Figure(figsize=(1.3 * n + 1.2, 1.3 * len(names) + 0.3))
    axes = fig.subplots(len(names), n, squeeze=False)
    for i, name in enumerate(names):
        for j in range(n):
            ax = axes[i][j]
            ax.imshow(rows[name][j].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")  # (S, S, 3)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
