"""Patches and masks: the pure tensor steps of MAE-style masked image modelling.

An image is cut into non-overlapping square patches, each patch is flattened into one
vector (a token), and the model sees the sequence of tokens. The functions here are the
parameter-free tensor steps around that idea; each is a plain function on tensors, so it
can be tested on its own and shown in a notebook next to the paper.

Shape letters, used in every docstring of this module:

- ``B``: batch size.
- ``C``: image channels (3 for RGB).
- ``H``, ``W``: image height and width in pixels.
- ``p``: patch size; patches are ``p x p`` pixels.
- ``h = H / p``, ``w = W / p``: the patch grid is ``h`` rows by ``w`` columns.
- ``L = h * w``: number of tokens (patches) per image.
- ``D = p * p * C``: length of one flattened patch.

Token order follows the official MAE code (``models_mae.py``, ``patchify``): tokens run
over the grid in raster order (row by row, token ``i`` is grid cell ``(i // w, i % w)``),
and inside a token the pixels run row by row with the channels last, i.e. the vector is a
``(p, p, C)`` block flattened. Keeping this order lets a per-token loss or a saved
checkpoint line up with the official one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["patchify", "unpatchify"]


def _check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is a positive ``int``; raise a clear error otherwise.

    Args:
        value: the argument to check.
        name: the argument's name, used in the error message.

    Returns:
        ``value`` unchanged.

    Raises:
        TypeError: if ``value`` is not an ``int`` (``bool`` is rejected too).
        ValueError: if ``value`` is not positive.
    """
    # bool is a subclass of int; patch_size=True is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be an int, got {type(value).__name__} {value!r}; "
            f"expected a positive integer such as 16"
        )
    if value <= 0:
        raise ValueError(f"{name}={value} is not positive; expected an integer >= 1")
    return value


def _check_tensor(value: object, name: str, ndim: int, layout: str) -> Tensor:
    """Return ``value`` if it is a tensor with ``ndim`` dimensions; raise otherwise.

    Args:
        value: the argument to check.
        name: the argument's name, used in the error message.
        ndim: the expected number of dimensions.
        layout: the expected shape in words, e.g. ``"(B, C, H, W)"``.

    Returns:
        ``value`` unchanged.

    Raises:
        TypeError: if ``value`` is not a ``torch.Tensor``.
        ValueError: if ``value`` does not have ``ndim`` dimensions.
    """
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape {layout}, got {type(value).__name__}"
        )
    if value.ndim != ndim:
        raise ValueError(
            f"{name} has shape {tuple(value.shape)} ({value.ndim}-D); "
            f"expected a {ndim}-D tensor of shape {layout}"
        )
    return value


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """Cut images into non-overlapping patches and flatten each into a token (ViT §3.1).

    Token ``i = r * w + c`` is the patch ``imgs[:, :, r*p:(r+1)*p, c*p:(c+1)*p]``
    rearranged to ``(p, p, C)`` and flattened, exactly as in the official MAE
    ``patchify``. Unlike that code, any channel count and non-square images are allowed.

    Args:
        imgs: images, shape ``(B, C, H, W)``; ``H`` and ``W`` must be multiples of
            ``patch_size``.
        patch_size: side ``p`` of a square patch, in pixels.

    Returns:
        Tokens, shape ``(B, L, D)`` with ``L = (H / p) * (W / p)`` and ``D = p * p * C``.
        Same dtype and device as ``imgs``; like ``reshape``, it may share memory with
        ``imgs`` when no copy is needed.

    Raises:
        TypeError: if ``imgs`` is not a tensor or ``patch_size`` is not an ``int``.
        ValueError: if ``imgs`` is not 4-D, ``patch_size`` is not positive, or ``H`` or
            ``W`` is not divisible by ``patch_size``.

    Examples:
        >>> import torch
        >>> patchify(torch.zeros(2, 3, 224, 224), 16).shape
        torch.Size([2, 196, 768])
        >>> img = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> patchify(img, 2)  # 4 tokens in raster order, each a 2x2 block
        tensor([[[ 0.,  1.,  4.,  5.],
                 [ 2.,  3.,  6.,  7.],
                 [ 8.,  9., 12., 13.],
                 [10., 11., 14., 15.]]])
    """
    imgs = _check_tensor(imgs, "imgs", 4, "(B, C, H, W)")
    p = _check_positive_int(patch_size, "patch_size")
    B, C, H, W = imgs.shape
    for side, size in (("height", H), ("width", W)):
        if size % p != 0:
            raise ValueError(
                f"imgs has {side} {size}, which is not divisible by patch_size={p}; "
                f"expected H and W to be multiples of {p}"
            )
    h, w = H // p, W // p

    x = imgs.reshape(B, C, h, p, w, p)  # (B, C, h, p, w, q): split each side into grid x pixel
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, q, C): grid first, channels last
    return x.reshape(B, h * w, p * p * C)  # (B, L, D): raster order over the grid


def unpatchify(
    x: Tensor,
    patch_size: int,
    grid_size: tuple[int, int] | None = None,
    channels: int = 3,
) -> Tensor:
    """Put tokens back into images; the exact inverse of :func:`patchify`.

    Args:
        x: tokens, shape ``(B, L, D)`` in the order :func:`patchify` produces.
        patch_size: side ``p`` of a square patch, in pixels.
        grid_size: ``(h, w)``, the patch grid in rows and columns, with ``h * w == L``.
            Defaults to a square grid ``h = w = sqrt(L)``, as in the official MAE code;
            pass it for non-square images.
        channels: number of image channels ``C``; ``D`` must equal ``p * p * C``.

    Returns:
        Images, shape ``(B, C, h * p, w * p)``, with the dtype and device of ``x``.

    Raises:
        TypeError: if ``x`` is not a tensor, or ``patch_size``, ``channels`` or an entry
            of ``grid_size`` is not an ``int``.
        ValueError: if ``x`` is not 3-D; if ``patch_size`` or ``channels`` is not
            positive; if ``grid_size`` is not two positive ints with ``h * w == L``; if
            ``grid_size`` is omitted and ``L`` is not a perfect square; or if
            ``D != p * p * channels``.

    Examples:
        >>> import torch
        >>> imgs = torch.randn(2, 3, 32, 48)
        >>> tokens = patchify(imgs, 16)
        >>> tokens.shape
        torch.Size([2, 6, 768])
        >>> torch.equal(unpatchify(tokens, 16, grid_size=(2, 3)), imgs)
        True
        >>> unpatchify(torch.zeros(1, 196, 768), 16).shape
        torch.Size([1, 3, 224, 224])
    """
    x = _check_tensor(x, "x", 3, "(B, L, D)")
    p = _check_positive_int(patch_size, "patch_size")
    C = _check_positive_int(channels, "channels")
    B, L, D = x.shape

    if grid_size is None:
        h = math.isqrt(L)
        if h * h != L:
            raise ValueError(
                f"x has L={L} tokens, which is not a perfect square; "
                f"pass grid_size=(h, w) with h * w == {L} for a non-square grid"
            )
        w = h
    else:
        if not isinstance(grid_size, (tuple, list, torch.Size)) or len(grid_size) != 2:
            raise ValueError(
                f"grid_size={grid_size!r} is not a pair; expected (h, w) with h * w == {L}"
            )
        h = _check_positive_int(grid_size[0], "grid_size[0]")
        w = _check_positive_int(grid_size[1], "grid_size[1]")
        if h * w != L:
            raise ValueError(
                f"grid_size={tuple(grid_size)} has {h * w} cells but x has L={L} tokens; "
                f"expected h * w == {L}"
            )

    if D != p * p * C:
        raise ValueError(
            f"x has token dimension D={D}, but patch_size={p} and channels={C} "
            f"give p * p * C = {p * p * C}; expected D == p * p * channels"
        )

    imgs = x.reshape(B, h, w, p, p, C)  # (B, h, w, p, q, C): undo the flattening
    imgs = imgs.permute(0, 5, 1, 3, 2, 4)  # (B, C, h, p, w, q): pixel rows next to grid rows
    return imgs.reshape(B, C, h * p, w * p)  # (B, C, H, W)
