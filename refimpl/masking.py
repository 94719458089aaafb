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

Masking, the second half of this module, chooses which tokens the encoder does not see.
One convention holds for every mask in this package: **1 (or True) = removed** (hidden
from the encoder, to be predicted), **0 = kept** (visible). This is MAE's convention;
official Hiera uses the opposite, and
[`mask_unit_masking`][refimpl.masking.mask_unit_masking] converts it. The masking steps
add these shape letters:

- ``L_keep``: number of kept (visible) tokens per sample, the same in every sample.
- ``ku``, ``kv``: a mask unit is ``ku x kv`` tokens (Hiera).
- ``U = (h / ku) * (w / kv)``: number of mask units per image.

Three strategies produce masks:

- [`random_masking`][refimpl.masking.random_masking] (MAE): single tokens at random;
- [`block_masking`][refimpl.masking.block_masking] (BEiT): rectangles of tokens;
- [`mask_unit_masking`][refimpl.masking.mask_unit_masking] (Hiera): whole units of tokens.

All feed the same two gathers: [`gather_tokens`][refimpl.masking.gather_tokens] picks
the visible tokens before the encoder, [`unshuffle`][refimpl.masking.unshuffle] puts mask
tokens back after it, and [`ids_from_mask`][refimpl.masking.ids_from_mask] supplies the
indices for a mask not made by shuffling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from einops import EinopsError, rearrange, repeat
from torch import Tensor

from . import checks

__all__ = [
    "Masked",
    "MaskIds",
    "NormalizedPatches",
    "ShuffleOrder",
    "UnitMask",
    "block_masking",
    "gather_tokens",
    "ids_from_mask",
    "mask_unit_masking",
    "normalize_patches",
    "patchify",
    "random_masking",
    "shuffle_order",
    "unpatchify",
    "unshuffle",
]


def patchify(imgs: Tensor, patch_size: int, *, check: bool = True) -> Tensor:
    """Cut images into non-overlapping patches and flatten each into a token (ViT §3.1).

    Token ``i = r * w + c`` is the patch ``imgs[:, :, r*p:(r+1)*p, c*p:(c+1)*p]``
    rearranged to ``(p, p, C)`` and flattened, exactly as in the official MAE
    ``patchify``. Unlike that code, any channel count and non-square images are allowed.

    Args:
        imgs: images, shape ``(B, C, H, W)``; ``H`` and ``W`` must be multiples of
            ``patch_size``.
        patch_size: side ``p`` of a square patch, in pixels.
        check: ``False`` for images and a patch size a model checked already; the pattern
            still refuses sides that ``p`` does not divide.

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
    if check:
        imgs = checks.tensor(imgs, "imgs", "(B, C, H, W)", ndim=4)
        patch_size = checks.integer(patch_size, "patch_size")
    try:  # (B, C, h*p, w*q) -> (B, h*w, p*q*C): grid cells in raster order, channels last in a token
        return rearrange(imgs, "b c (h p) (w q) -> b (h w) (p q c)", p=patch_size, q=patch_size)
    except EinopsError:  # the pattern is also the check that p divides H and W
        raise ValueError(_indivisible(imgs.shape, patch_size)) from None


def _indivisible(shape: Sequence[int], p: int) -> str:
    """What is wrong with images of ``shape`` for ``patchify``, in words (einops names no argument)."""
    if len(shape) != 4:
        return f"imgs has shape {tuple(shape)} ({len(shape)}-D); expected a 4-D tensor of shape (B, C, H, W)"
    side, size = ("height", shape[2]) if shape[2] % p else ("width", shape[3])
    return (f"imgs has {side} {size}, which is not divisible by patch_size={p}; "
            f"expected H and W to be multiples of {p}")


def unpatchify(
    x: Tensor,
    patch_size: int,
    grid_size: tuple[int, int] | None = None,
    channels: int = 3,
) -> Tensor:
    """Put tokens back into images; the exact inverse of [`patchify`][refimpl.masking.patchify].

    Args:
        x: tokens, shape ``(B, L, D)`` in the order [`patchify`][refimpl.masking.patchify] produces.
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
    x = checks.tensor(x, "x", "(B, L, D)", ndim=3)
    p, C = checks.integer(patch_size, "patch_size"), checks.integer(channels, "channels", example="3")
    h, w = _grid_of(x.shape[1], grid_size)
    try:  # (B, h*w, p*q*C) -> (B, C, h*p, w*q): patchify's pattern read backwards
        return rearrange(x, "b (h w) (p q c) -> b c (h p) (w q)", h=h, w=w, p=p, q=p, c=C)
    except EinopsError:  # the pattern is also the check that D == p * p * C
        raise ValueError(f"x has token dimension D={x.shape[2]}, but patch_size={p} and channels={C} give "
                         f"p * p * C = {p * p * C}; expected D == p * p * channels") from None


def _grid_of(L: int, grid_size: object) -> tuple[int, int]:
    """``(h, w)`` with ``h * w == L``: ``grid_size`` checked, or a square grid as in the official MAE code."""
    if grid_size is None:
        h = math.isqrt(L)
        if h * h != L:
            raise ValueError(f"x has L={L} tokens, which is not a perfect square; "
                             f"pass grid_size=(h, w) with h * w == {L} for a non-square grid")
        return h, h
    h, w = checks.pair(grid_size, "grid_size")
    if h * w != L:
        raise ValueError(f"grid_size={tuple(grid_size)} has {h * w} cells but x has L={L} tokens; "
                         f"expected h * w == {L}")
    return h, w


class NormalizedPatches(NamedTuple):
    """The result of ``normalize_patches``.

    Attributes:
        patches: ``(..., D)``, each patch standardised: zero mean, unit variance.
        mean: ``(..., 1)``, each patch's mean.
        std: ``(..., 1)``, ``sqrt(var + eps)`` with each patch's unbiased variance.
    """

    patches: Tensor
    mean: Tensor
    std: Tensor


def normalize_patches(patches: Tensor, eps: float = 1.0e-6) -> NormalizedPatches:
    """Standardise every patch by its own mean and variance: the ``norm_pix_loss`` target (MAE §3, "Reconstruction target").

    The variance is the unbiased one (``torch.var``'s default) and ``eps`` is added before the
    square root, as in the official MAE and Hiera code; ``patches * std + mean`` undoes it.

    Args:
        patches: ``(..., D)``, one flattened patch per row, e.g. ``(B, L, p*p*C)``.
        eps: added to the variance, a finite number ``>= 0``.

    Returns:
        ``NormalizedPatches(patches, mean, std)``.

    Raises:
        ValueError: if ``eps`` is negative, NaN or infinite.

    Examples:
        >>> import torch
        >>> out = normalize_patches(torch.tensor([[1.0, 2.0, 3.0]]), eps=0.0)
        >>> out.patches, out.mean, out.std
        (tensor([[-1.,  0.,  1.]]), tensor([[2.]]), tensor([[1.]]))
    """
    eps = checks.real(eps, "eps", 0.0, math.inf, high_open=True, example="1e-6")
    mean = patches.mean(dim=-1, keepdim=True)  # (..., 1)
    std = (patches.var(dim=-1, keepdim=True) + eps) ** 0.5  # (..., 1)
    return NormalizedPatches((patches - mean) / std, mean, std)


# --- masking (1 = removed, 0 = kept) ------------------------------------------------


class ShuffleOrder(NamedTuple):
    """A per-sample shuffle and its inverse, from ``shuffle_order``.

    Attributes:
        ids_shuffle: ``(B, L)`` long; ``ids_shuffle[b, k]`` is the original index of the
            token that lands at shuffled position ``k``.
        ids_restore: ``(B, L)`` long, the inverse permutation; ``ids_restore[b, j]`` is the
            shuffled position of original token ``j``.
    """

    ids_shuffle: Tensor
    ids_restore: Tensor


class Masked(NamedTuple):
    """The result of ``random_masking``.

    Attributes:
        kept: ``(B, L_keep, D)``, the visible tokens in shuffled order (what the encoder sees).
        mask: ``(B, L)`` float32 in original token order; 1 = removed, 0 = kept.
        ids_restore: ``(B, L)`` long; pass it to ``unshuffle`` to undo the shuffle.
        ids_keep: ``(B, L_keep)`` long, the original indices of the kept tokens.
    """

    kept: Tensor
    mask: Tensor
    ids_restore: Tensor
    ids_keep: Tensor


class MaskIds(NamedTuple):
    """Indices that turn a given mask into the gather/unshuffle steps, from ``ids_from_mask``.

    Attributes:
        ids_keep: ``(B, L_keep)`` long, the kept tokens' original indices, ascending.
        ids_restore: ``(B, L)`` long; kept tokens come first in the shuffled order.
    """

    ids_keep: Tensor
    ids_restore: Tensor


class UnitMask(NamedTuple):
    """The result of ``mask_unit_masking``.

    Attributes:
        units: ``(B, U)`` float32 over the ``(h / ku) x (w / kv)`` grid of mask units in
            raster order; 1 = removed, 0 = kept.
        mask: ``(B, L)`` float32 over the token grid in raster order (``L = h * w``);
            1 = removed. Every token of a unit has that unit's value.
    """

    units: Tensor
    mask: Tensor


def _removed_in_original_order(ids_restore: Tensor, len_keep: int) -> Tensor:
    """The 1 = removed mask, given a shuffle that keeps its first ``len_keep`` positions.

    Args:
        ids_restore: ``(B, L)`` inverse permutation.
        len_keep: number of kept tokens, the first ones in shuffled order.

    Returns:
        ``(B, L)`` float32 mask in original order, 1 = removed.
    """
    B, L = ids_restore.shape
    mask = torch.ones(B, L, device=ids_restore.device)  # (B, L) in shuffled order
    mask[:, :len_keep] = 0
    return torch.gather(mask, 1, ids_restore)  # (B, L) in original order


def _gather(x: Tensor, ids: Tensor) -> Tensor:
    """Unchecked ``gather_tokens``: ``(B, L, D)``, ``(B, K)`` -> ``(B, K, D)``."""
    index = ids.unsqueeze(-1).expand(-1, -1, x.shape[-1])  # (B, K, D): same row for every d
    return torch.gather(x, 1, index)  # (B, K, D)


def shuffle_order(noise: Tensor) -> ShuffleOrder:
    """Turn per-sample noise into a shuffle and its inverse (MAE §3, "Simple implementation").

    Ascend: the token with the smallest noise goes first, and
    [`random_masking`][refimpl.masking.random_masking] keeps the first ones, so small
    noise is kept and large noise is removed.
    ``ids_restore = argsort(ids_shuffle)`` is the inverse permutation: ``ids_shuffle``
    holds each of ``0 .. L-1`` once, so sorting it puts value ``j`` at position ``j``, and
    the index argsort reports there is where ``j`` sat, i.e. the shuffled position of
    original token ``j``. Hence ``ids_shuffle[b, ids_restore[b, j]] == j`` for every ``j``.
    The order itself carries no mask; the masks built from it use 1 = removed, 0 = kept.

    Args:
        noise: ``(B, L)`` floating-point values; only their order within a row matters.

    Returns:
        ``ShuffleOrder(ids_shuffle (B, L), ids_restore (B, L))``, both ``torch.long``.

    Raises:
        TypeError: if ``noise`` is not a floating-point tensor.
        ValueError: if ``noise`` is not 2-D.

    Examples:
        >>> import torch
        >>> noise = torch.tensor([[0.62, 0.15, 0.88, 0.47, 0.05, 0.93, 0.71, 0.34]])
        >>> order = shuffle_order(noise)
        >>> order.ids_shuffle
        tensor([[4, 1, 7, 3, 0, 6, 2, 5]])
        >>> order.ids_restore
        tensor([[4, 1, 6, 3, 0, 7, 5, 2]])
    """
    return _order(checks.noise(noise, "noise", "(B, L)"))


def _order(noise: Tensor) -> ShuffleOrder:
    """Unchecked [`shuffle_order`][refimpl.masking.shuffle_order]."""
    ids_shuffle = torch.argsort(noise, dim=1)  # (B, L) ascend: small is keep, large is remove
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, L) inverse permutation
    return ShuffleOrder(ids_shuffle, ids_restore)


def gather_tokens(x: Tensor, ids: Tensor) -> Tensor:
    """Pick tokens by index, per sample: ``out[b, k] = x[b, ids[b, k]]``.

    This one ``torch.gather`` (with the index repeated over ``D``) is the whole "shuffle
    and keep a subset" step of MAE, and, with ``ids_restore``, the "unshuffle" step too.

    Args:
        x: tokens, shape ``(B, L, D)``.
        ids: ``(B, K)`` integer indices into the ``L`` axis; ``K`` may be smaller than,
            equal to or (with repeats) larger than ``L``.

    Returns:
        ``(B, K, D)`` tokens, with the dtype and device of ``x``.

    Raises:
        TypeError: if ``x`` or ``ids`` is not a tensor, or ``ids`` is not integer.
        ValueError: if ``x`` is not 3-D, ``ids`` is not 2-D, or the batch sizes differ.

    Examples:
        >>> import torch
        >>> x = torch.arange(8.0).reshape(1, 4, 2)  # tokens [0,1], [2,3], [4,5], [6,7]
        >>> gather_tokens(x, torch.tensor([[3, 0]]))
        tensor([[[6., 7.],
                 [0., 1.]]])
    """
    x, ids = checks.tensor(x, "x", "(B, L, D)", ndim=3), checks.integer_tensor(ids, "ids", "(B, K)", ndim=2)
    if ids.shape[0] != x.shape[0]:
        raise ValueError(f"ids has shape {tuple(ids.shape)} but x has shape {tuple(x.shape)}; "
                         f"expected the same batch size B")
    return _gather(x, ids)


def random_masking(x: Tensor, mask_ratio: float, noise: Tensor | None = None, *, check: bool = True) -> Masked:
    """Keep a random subset of tokens per sample (MAE §3, "Simple implementation").

    Shuffle by sorting per-sample noise
    ([`shuffle_order`][refimpl.masking.shuffle_order]), keep the first
    ``L_keep = int(L * (1 - mask_ratio))``: a uniform sample without replacement. The
    mask is built in shuffled order (first ``L_keep`` are 0, the rest 1) and gathered
    back with ``ids_restore``. Given the same noise, ``kept``, ``mask`` and
    ``ids_restore`` are exactly those of the official MAE ``random_masking``, including
    its floating-point rounding of ``L_keep`` (``int(10 * (1 - 0.9))`` is 0, not 1).
    Mask convention: 1 = removed, 0 = kept.

    Args:
        x: tokens, shape ``(B, L, D)``, usually with position embeddings already added
            (and no class token).
        mask_ratio: fraction of tokens removed, in ``[0, 1)``; MAE uses 0.75.
        noise: optional ``(B, L)`` floating values whose argsort defines the shuffle;
            pass the same noise to reproduce a mask exactly. Defaults to
            ``torch.rand(B, L, device=x.device)``.
        check: ``False`` for arguments a model checked already at its door (the MAE does):
            then nothing is checked again.

    Returns:
        ``Masked(kept (B, L_keep, D), mask (B, L) float32 with 1 = removed,
        ids_restore (B, L), ids_keep (B, L_keep))``.

    Raises:
        TypeError: if ``x`` is not a tensor, ``mask_ratio`` is not a real number, or
            ``noise`` is not a floating-point tensor.
        ValueError: if ``x`` is not 3-D, ``mask_ratio`` is outside ``[0, 1)`` or
            ``noise`` is not ``(B, L)``.

    Examples:
        >>> import torch
        >>> x = torch.arange(8.0).reshape(1, 8, 1)  # token i holds the number i
        >>> noise = torch.tensor([[0.62, 0.15, 0.88, 0.47, 0.05, 0.93, 0.71, 0.34]])
        >>> out = random_masking(x, 0.75, noise=noise)
        >>> out.ids_keep
        tensor([[4, 1]])
        >>> out.kept.flatten()
        tensor([4., 1.])
        >>> out.mask
        tensor([[1., 0., 1., 1., 0., 1., 1., 1.]])
        >>> out.ids_restore
        tensor([[4, 1, 6, 3, 0, 7, 5, 2]])
    """
    if check:
        x, mask_ratio = checks.tensor(x, "x", "(B, L, D)", ndim=3), checks.fraction(mask_ratio, "mask_ratio")
        noise = None if noise is None else checks.noise(noise, "noise", "(B, L)", x.shape[:2])
    B, L, _ = x.shape
    len_keep = int(L * (1 - mask_ratio))  # the official rounding: int(10 * (1 - 0.9)) == 0
    if noise is None:
        noise = torch.rand(B, L, device=x.device)

    ids_shuffle, ids_restore = _order(noise)
    ids_shuffle, ids_restore = ids_shuffle.to(x.device), ids_restore.to(x.device)
    ids_keep = ids_shuffle[:, :len_keep]  # (B, L_keep)
    kept = _gather(x, ids_keep)  # (B, L_keep, D)
    mask = _removed_in_original_order(ids_restore, len_keep)  # (B, L)
    return Masked(kept, mask, ids_restore, ids_keep)


def unshuffle(x: Tensor, ids_restore: Tensor, mask_token: Tensor, *, check: bool = True) -> Tensor:
    """Fill removed positions with the mask token and restore the original order (MAE §3).

    Appends ``L - L_keep`` copies of ``mask_token`` after the encoded visible tokens
    (this is the shuffled order, where kept tokens come first), then gathers with
    ``ids_restore`` so position ``j`` again holds token ``j``: its encoding if it was
    kept, the mask token if it was removed. The decoder's position embeddings are
    added after this step. Works with any mask (1 = removed, 0 = kept) whose removed
    tokens come last in the shuffle: those of
    [`random_masking`][refimpl.masking.random_masking] and of
    [`ids_from_mask`][refimpl.masking.ids_from_mask].

    Args:
        x: encoded visible tokens, shape ``(B, L_keep, D)``, in shuffled order and
            without a class token.
        ids_restore: ``(B, L)`` long inverse permutation with ``L >= L_keep``.
        mask_token: the shared learnable vector, shape ``(1, 1, D)`` or ``(D,)``;
            gradients flow back to it. Cast to the dtype of ``x``.
        check: ``False`` for tensors a model made itself (its decoder): nothing is checked.

    Returns:
        ``(B, L, D)`` tokens in original order, with the dtype and device of ``x``.

    Raises:
        TypeError: if an argument is not a tensor or ``ids_restore`` is not integer.
        ValueError: if ``x`` is not 3-D, ``ids_restore`` is not 2-D, the batch sizes
            differ, ``L < L_keep``, or ``mask_token`` is not ``(1, 1, D)`` or ``(D,)``.

    Examples:
        >>> import torch
        >>> encoded = torch.tensor([[[4.0], [1.0]]])  # e_4, e_1 in shuffled order
        >>> ids_restore = torch.tensor([[4, 1, 6, 3, 0, 7, 5, 2]])
        >>> unshuffle(encoded, ids_restore, torch.tensor([-1.0])).flatten()
        tensor([-1.,  1., -1., -1.,  4., -1., -1., -1.])
    """
    if check:
        _check_unshuffle(x, ids_restore, mask_token)
    B, K, D = x.shape
    L = ids_restore.shape[1]
    fill = mask_token.to(x.dtype).reshape(1, 1, D).expand(B, L - K, D)  # (B, L - L_keep, D)
    shuffled = torch.cat([x, fill], dim=1)  # (B, L, D): kept first, as after the shuffle
    return _gather(shuffled, ids_restore)  # (B, L, D): original order


def _check_unshuffle(x: object, ids_restore: object, mask_token: object) -> None:
    """The door of [`unshuffle`][refimpl.masking.unshuffle]: tensors whose shapes fit together."""
    x = checks.tensor(x, "x", "(B, L_keep, D)", ndim=3)
    ids_restore = checks.integer_tensor(ids_restore, "ids_restore", "(B, L)", ndim=2)
    mask_token = checks.tensor(mask_token, "mask_token", "(1, 1, D) or (D,)")
    B, K, D = x.shape
    if ids_restore.shape[0] != B or ids_restore.shape[1] < K:
        raise ValueError(f"ids_restore has shape {tuple(ids_restore.shape)} but x has shape {tuple(x.shape)}; "
                         f"expected (B, L) = ({B}, L) with L >= L_keep = {K}")
    if tuple(mask_token.shape) not in ((1, 1, D), (D,)):
        raise ValueError(f"mask_token has shape {tuple(mask_token.shape)} but x has D={D}; "
                         f"expected (1, 1, {D}) or ({D},)")


def ids_from_mask(mask: Tensor, num_removed: int | None = None, check: bool = True) -> MaskIds:
    """Indices for a given mask, so block and unit masks feed the same gather/unshuffle.

    A stable sort of the mask puts the kept tokens (0) first, in their original order,
    and the removed ones (1) after them; that order plays the role of MAE's shuffle.
    ``gather_tokens(x, ids_keep)`` then selects the visible tokens and
    ``unshuffle(encoded, ids_restore, mask_token)`` puts everything back. This works only
    if every sample removes the same number of tokens, so that the visible tokens form a
    dense ``(B, L_keep, D)`` tensor. Mask convention: 1 = removed, 0 = kept.

    Args:
        mask: ``(B, L)`` with values 0/1 (any real dtype or bool); 1 = removed.
        num_removed: how many tokens every row removes, when the caller knows it (e.g. from
            the mask ratio it drew the mask with). Then ``L_keep`` comes from it, not from the
            mask's values, so ``torch.compile`` can trace the call without a graph break; under
            ``torch.compile`` the checks of the values are skipped too (they read the tensor).
        check: ``False`` for a mask the caller drew or checked itself, with ``num_removed``
            given: then nothing is checked and no value is read, so on a GPU nothing waits.

    Returns:
        ``MaskIds(ids_keep (B, L_keep), ids_restore (B, L))``, both ``torch.long``.

    Raises:
        TypeError: if ``mask`` is not a tensor.
        ValueError: if ``mask`` is not 2-D, holds values other than 0 and 1, or its rows
            remove different numbers of tokens (or not ``num_removed``).

    Examples:
        >>> import torch
        >>> mask = torch.tensor([[1., 0., 1., 1., 0., 1., 1., 1.]])
        >>> ids = ids_from_mask(mask)
        >>> ids.ids_keep
        tensor([[1, 4]])
        >>> ids.ids_restore
        tensor([[2, 0, 3, 4, 1, 5, 6, 7]])
    """
    if check or num_removed is None:
        num_removed = _removed_per_row(mask, num_removed)
    removed = mask.to(torch.int64)  # (B, L), 1 = removed
    ids_shuffle = torch.argsort(removed, dim=1, stable=True)  # (B, L): kept first, in order
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, L) inverse permutation
    return MaskIds(ids_shuffle[:, : mask.shape[1] - num_removed], ids_restore)


def _removed_per_row(mask: object, num_removed: object) -> int:
    """The door of [`ids_from_mask`][refimpl.masking.ids_from_mask]: a 0/1 ``(B, L)`` mask, the same count per row.

    Returns the count per row: ``num_removed`` when given, else read from the mask. The checks read
    the mask's values, so they run in eager mode only; under ``torch.compile`` a count not given
    is read from the first row (a graph break).
    """
    mask = checks.tensor(mask, "mask", "(B, L)", ndim=2)
    L = mask.shape[1]
    if num_removed is not None and (isinstance(num_removed, bool) or not isinstance(num_removed, int)
                                    or not 0 <= num_removed <= L):
        raise ValueError(f"num_removed={num_removed!r}; expected an int in [0, L] = [0, {L}]")
    removed = mask.to(torch.int64)  # (B, L), 1 = removed
    if torch.compiler.is_compiling():
        return int(removed[0].sum()) if num_removed is None else num_removed
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask holds values other than 0 and 1; expected 1 = removed, 0 = kept")
    counts = removed.sum(dim=1)  # (B,)
    expected = int(counts[0]) if num_removed is None and counts.numel() > 0 else num_removed
    if counts.numel() > 0 and bool((counts != expected).any()):
        raise ValueError(f"mask removes {counts.tolist()} tokens per sample; expected the same number in every row "
                         f"so the kept tokens form one (B, L_keep, D) tensor"
                         + (f", num_removed={num_removed}" if num_removed is not None else ""))
    return expected if expected is not None else 0


def block_masking(
    batch_size: int,
    grid_size: tuple[int, int],
    mask_ratio: float,
    *,
    min_block: int = 16,
    max_aspect: float = 1 / 0.3,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mask random rectangles of tokens until the target is reached (BEiT, Algorithm 1).

    BEiT (Bao et al., 2021) masks blocks rather than single tokens: repeatedly draw a
    rectangle of at least 16 patches, area ``s`` uniform in ``[min_block, remaining]``, with
    aspect ratio ``r`` drawn from ``(0.3, 1/0.3)`` (log-uniform here, as BEiT's code draws it;
    ``1 / max_aspect`` to ``max_aspect`` in general), height ``round(sqrt(s * r))``,
    width ``round(sqrt(s / r))``, clipped to the grid, place it at a random position and
    mask it, until at least the target count is masked. Departure from BEiT: the count is
    made exact, ``L - int(L * (1 - mask_ratio))`` in every sample (the count
    [`random_masking`][refimpl.masking.random_masking] removes at the same ratio), by
    cutting the last rectangle short when it overshoots (and, if no rectangle adds anything
    for many draws, masking random remaining tokens), so the same gather-based pipeline
    applies ([`ids_from_mask`][refimpl.masking.ids_from_mask]).
    Mask convention: 1 = removed, 0 = kept.

    Args:
        batch_size: number of masks ``B`` to draw.
        grid_size: ``(h, w)``, the token grid; ``L = h * w``.
        mask_ratio: fraction of tokens removed, in ``[0, 1)``; BEiT uses 0.4.
        min_block: smallest rectangle area, in tokens (default BEiT's 16).
        max_aspect: largest height/width (and width/height) ratio, at least 1 (default BEiT's
            ``1 / 0.3``, so the ratio is drawn from ``(0.3, 1/0.3)``).
        generator: optional CPU ``torch.Generator``; the same seed gives the same masks.

    Returns:
        ``(B, L)`` float32 mask in raster order over the grid, 1 = removed, with exactly
        ``L - int(L * (1 - mask_ratio))`` ones per row.

    Raises:
        TypeError: if ``batch_size``, ``min_block`` or an entry of ``grid_size`` is not an
            ``int``, ``mask_ratio`` or ``max_aspect`` is not a real number, or
            ``generator`` is not a ``torch.Generator``.
        ValueError: if ``batch_size``, ``min_block`` or an entry of ``grid_size`` is not
            positive, ``grid_size`` is not a pair, ``mask_ratio`` is outside ``[0, 1)``
            or ``max_aspect`` is below 1 or not finite.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> mask = block_masking(2, (8, 8), 0.5, generator=g)
        >>> mask.shape, mask.sum(dim=1)
        (torch.Size([2, 64]), tensor([32., 32.]))
        >>> mask[0].reshape(8, 8).int()  # rectangles of at least 16 tokens
        tensor([[0, 0, 0, 0, 0, 0, 0, 0],
                [1, 1, 1, 1, 1, 0, 0, 0],
                [1, 1, 1, 1, 1, 0, 0, 0],
                [1, 1, 1, 1, 1, 0, 0, 0],
                [1, 1, 1, 1, 1, 0, 0, 0],
                [1, 1, 1, 1, 0, 0, 0, 0],
                [1, 1, 1, 1, 0, 0, 0, 0],
                [1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.int32)
    """
    B, (h, w) = _batch_and_grid(batch_size, grid_size)
    ratio, min_area = checks.fraction(mask_ratio, "mask_ratio"), checks.integer(min_block, "min_block")
    max_aspect = checks.real(max_aspect, "max_aspect", 1.0, math.inf, high_open=True, example="1 / 0.3")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

    L = h * w
    target = L - int(L * (1 - ratio))  # as many as random_masking removes
    log_aspect = math.log(max_aspect)

    def uniform() -> float:
        return float(torch.rand((), generator=generator))

    def randint(high: int) -> int:  # uniform in [0, high)
        return int(torch.randint(high, (), generator=generator))

    masks = torch.zeros(B, h, w)
    for b in range(B):
        grid = masks[b]  # (h, w) view: writes land in masks
        count, idle = 0, 0
        while count < target and idle < 10 * L:
            remaining = target - count
            area = min_area + uniform() * max(remaining - min_area, 0)
            aspect = math.exp((2 * uniform() - 1) * log_aspect)
            bh = min(max(round(math.sqrt(area * aspect)), 1), h)
            bw = min(max(round(math.sqrt(area / aspect)), 1), w)
            top, left = randint(h - bh + 1), randint(w - bw + 1)
            block = grid[top : top + bh, left : left + bw]  # (bh, bw) view
            new = (block == 0).nonzero()  # (n, 2): cells this rectangle adds
            if len(new) == 0:
                idle += 1
                continue
            idle = 0
            overshoot = count + len(new) - target
            if overshoot > 0:  # cut the last rectangle short (raster order): exact count
                new = new[: len(new) - overshoot]  # (n - overshoot, 2)
            block[new[:, 0], new[:, 1]] = 1
            count += len(new)
        if count < target:  # rectangles stopped adding anything: top up at random
            free = (grid.reshape(L) == 0).nonzero().squeeze(1)  # (L - count,)
            pick = free[torch.randperm(len(free), generator=generator)[: target - count]]
            grid.view(L)[pick] = 1  # (L,) view of the (h, w) grid
    return masks.reshape(B, L)  # (B, L): raster order over the grid


def mask_unit_masking(
    batch_size: int,
    grid_size: tuple[int, int],
    unit_size: tuple[int, int] | int,
    mask_ratio: float,
    noise: Tensor | None = None,
) -> UnitMask:
    """Mask whole ``ku x kv`` units of tokens at random (Hiera Fig. 4a).

    The token grid ``(h, w)`` is cut into a ``(h / ku) x (w / kv)`` grid of ``U`` mask
    units; ``int(U * (1 - mask_ratio))`` units are kept, chosen by sorting ``noise`` as
    in official Hiera's ``get_random_mask``, and every token inherits its unit's value.
    Since whole units disappear, a hierarchical model can drop them and still pool
    inside each kept unit. Official Hiera returns 1 = keep; this returns our convention,
    1 = removed, 0 = kept (``units == 1 - hiera_mask``).

    Args:
        batch_size: number of masks ``B`` to draw.
        grid_size: ``(h, w)``, the token grid; ``L = h * w``.
        unit_size: ``(ku, kv)`` tokens per unit, or one int for square units; must
            divide ``grid_size``. Hiera at 224 px: ``(56, 56)`` tokens, units ``(8, 8)``.
        mask_ratio: fraction of units removed, in ``[0, 1)``; Hiera uses 0.6 for images and
            0.9 for video (Hiera Table 3b).
        noise: optional ``(B, U)`` floating values whose argsort picks the kept units
            (smallest first); defaults to ``torch.rand(B, U)``.

    Returns:
        ``UnitMask(units (B, U), mask (B, L))``, both float32, 1 = removed, on the device
        of ``noise``.

    Raises:
        TypeError: if ``batch_size`` or an entry of ``grid_size``/``unit_size`` is not
            an ``int``, ``mask_ratio`` is not a real number, or ``noise`` is not a
            floating-point tensor.
        ValueError: if those ints are not positive, ``grid_size``/``unit_size`` is not a
            pair, the grid is not divisible by ``unit_size``, ``mask_ratio`` is outside
            ``[0, 1)``, or ``noise`` is not ``(B, U)``.

    Examples:
        >>> import torch
        >>> noise = torch.tensor([[0.9, 0.1, 0.5, 0.7]])  # 4 units; keep unit 1
        >>> out = mask_unit_masking(1, (4, 4), 2, 0.75, noise=noise)
        >>> out.units
        tensor([[1., 0., 1., 1.]])
        >>> out.mask.reshape(4, 4)
        tensor([[1., 1., 0., 0.],
                [1., 1., 0., 0.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.]])
    """
    B, (h, w) = _batch_and_grid(batch_size, grid_size)
    ku, kv = _unit_size(unit_size, (h, w))
    ratio, U = checks.fraction(mask_ratio, "mask_ratio"), (h // ku) * (w // kv)
    noise = torch.rand(B, U) if noise is None else checks.noise(noise, "noise", "(B, U)", (B, U))

    len_keep = int(U * (1 - ratio))  # whole units kept, as official Hiera's get_random_mask counts them
    _, ids_restore = _order(noise)  # ascend: small noise is kept
    units = _removed_in_original_order(ids_restore, len_keep)  # (B, U)
    mask = repeat(units, "b (uh uw) -> b (uh ku uw kv)", uh=h // ku, ku=ku, kv=kv)  # (B, L): a unit's value
    return UnitMask(units, mask)  # in each of its tokens, raster order over the token grid


def _batch_and_grid(batch_size: object, grid_size: object) -> tuple[int, tuple[int, int]]:
    """``batch_size`` and ``grid_size`` of a mask generator, checked: a positive int and a pair of them."""
    return checks.integer(batch_size, "batch_size", example="8"), checks.pair(grid_size, "grid_size")


def _unit_size(unit_size: object, grid: tuple[int, int]) -> tuple[int, int]:
    """``(ku, kv)`` from one int (square units) or a pair, checked to divide the token ``grid``."""
    if not isinstance(unit_size, (tuple, list, torch.Size)):
        side = checks.integer(unit_size, "unit_size", example="8")
        unit_size = (side, side)
    ku, kv = checks.pair(unit_size, "unit_size", example="(8, 8)")
    if grid[0] % ku != 0 or grid[1] % kv != 0:
        raise ValueError(f"grid_size={grid} is not divisible by unit_size={(ku, kv)}; "
                         f"expected h and w to be multiples of the unit's sides")
    return ku, kv
