"""What an MAE reconstructs from a fixed batch during pretraining: what the model sees, predicts and is scored against.

[`reconstruction_rows`][refimpl.train.reconstruction.reconstruction_rows] returns the rows as images,
[`reconstruction_grid`][refimpl.train.reconstruction.reconstruction_grid] lays them out as one picture,
and [`labelled_grid`][refimpl.train.reconstruction.labelled_grid] names its rows: the trainer's
``recon-<step>.png`` (the pretraining guide draws its figure from the same grids). Rows, top to bottom, one
column per image: **input** (the augmented crop), **masked** (the visible 25 %, removed
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
import torch.nn.functional as F
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from ..masking import normalize_patches, patchify, unpatchify
from .data import denormalize_images

__all__ = ["GAP", "MARGIN", "ROWS", "labelled_grid", "reconstruction_grid", "reconstruction_rows"]

ROWS = ("input", "masked", "prediction", "target", "reconstruction")
"""Row names, top to bottom."""


@torch.no_grad()
def reconstruction_rows(model: Any, imgs: Tensor, noise: Tensor, mask_ratio: float) -> dict[str, Tensor]:
    """Run the MAE on a fixed batch and return every row as displayable images.

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


GAP = 2
"""White pixels between the images of a grid."""

MARGIN = 4
"""White pixels around the labels of a labelled grid."""


def reconstruction_grid(rows: dict[str, Tensor]) -> Tensor:
    """The rows as one picture: ``uint8 (R S + (R - 1) GAP, B S + (B - 1) GAP, 3)``, one row of ``ROWS`` per
    image row, one column per image, white between; what ``recon-<step>.png`` and the guide's grids show.

    Args:
        rows: ``{row: (B, 3, S, S)}`` in ``[0, 1]``, as [`reconstruction_rows`][refimpl.train.reconstruction.reconstruction_rows]
            returns them.

    Returns:
        The grid, on the CPU, height x width x RGB.
    """
    pixels = torch.stack([rows[name] for name in ROWS if name in rows])  # (R, B, 3, S, S)
    pixels = (pixels.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    framed = F.pad(pixels, (0, GAP, 0, GAP), value=255)  # (R, B, 3, S + GAP, S + GAP), white right and below
    return rearrange(framed, "r b c h w -> (r h) (b w) c")[:-GAP, :-GAP]  # the last row's and column's gap cut


def labelled_grid(grid: Tensor, title: str) -> Image.Image:
    """The grid on white with each row's name at its left and ``title`` above, in PIL's default font.

    Args:
        grid: a [`reconstruction_grid`][refimpl.train.reconstruction.reconstruction_grid] of all ``ROWS``.
        title: the line above it, e.g. ``"step 200"``.

    Returns:
        The RGB picture ``recon-<step>.png`` holds.
    """
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = {text: measure.textbbox((0, 0), text, font=font) for text in (*ROWS, title)}  # (x0, y0, x1, y1)
    left = MARGIN + max(boxes[name][2] for name in ROWS) + MARGIN
    top = MARGIN + boxes[title][3] + MARGIN
    height, width, _ = grid.shape
    picture = Image.new("RGB", (left + width, top + height), "white")
    picture.paste(Image.fromarray(grid.numpy()), (left, top))
    draw = ImageDraw.Draw(picture)
    draw.text((left, MARGIN), title, fill="black", font=font)
    pitch = (height + GAP) / len(ROWS)  # one image and one gap per row
    for i, name in enumerate(ROWS):  # right-aligned, centred on its row
        x0, y0, x1, y1 = boxes[name]
        draw.text((left - MARGIN - x1, top + (i + 0.5) * pitch - GAP / 2 - (y0 + y1) / 2), name, fill="black", font=font)
    return picture
