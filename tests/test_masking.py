"""Tests for refimpl.masking: patch order against a slow loop reference, round trips, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from refimpl.masking import patchify, unpatchify

FAST = settings(max_examples=60, deadline=None)


def patchify_by_loop(imgs: Tensor, p: int) -> Tensor:
    """Obviously-correct patchify: one patch at a time, in raster order over the grid.

    Token ``i = r * w + c`` is the ``(C, p, p)`` block at grid cell ``(r, c)``, permuted
    to ``(p, p, C)`` (pixel rows, pixel columns, channels last) and flattened.
    """
    B, C, H, W = imgs.shape
    h, w = H // p, W // p
    tokens = []
    for r in range(h):
        for c in range(w):
            block = imgs[:, :, r * p : (r + 1) * p, c * p : (c + 1) * p]  # (B, C, p, p)
            tokens.append(block.permute(0, 2, 3, 1).reshape(B, p * p * C))  # (B, D)
    return torch.stack(tokens, dim=1)  # (B, L, D)


def mae_official_patchify(imgs: Tensor, p: int) -> Tensor:
    """The official MAE steps (reshape, einsum 'nchpwq->nhwpqc', reshape), any C."""
    B, C, H, W = imgs.shape
    h, w = H // p, W // p
    x = imgs.reshape(B, C, h, p, w, p)  # (B, C, h, p, w, q)
    x = torch.einsum("nchpwq->nhwpqc", x)  # (B, h, w, p, q, C)
    return x.reshape(B, h * w, p * p * C)  # (B, L, D)


image_shapes = st.tuples(
    st.integers(1, 3),  # B
    st.integers(1, 4),  # C
    st.integers(1, 5),  # h
    st.integers(1, 5),  # w
    st.integers(1, 4),  # p
)


# --- order -------------------------------------------------------------------------


@FAST
@given(shape=image_shapes, seed=st.integers(0, 2**16))
def test_patchify_matches_the_loop_reference_token_by_token(shape, seed):
    B, C, h, w, p = shape
    imgs = torch.randn(B, C, h * p, w * p, generator=torch.Generator().manual_seed(seed))
    out = patchify(imgs, p)
    assert out.shape == (B, h * w, p * p * C)
    assert torch.equal(out, patchify_by_loop(imgs, p))


@FAST
@given(shape=image_shapes)
def test_patchify_matches_the_official_mae_einsum(shape):
    B, C, h, w, p = shape
    imgs = torch.randn(B, C, h * p, w * p)
    assert torch.equal(patchify(imgs, p), mae_official_patchify(imgs, p))


def test_token_index_is_raster_order_and_pixels_are_channels_last():
    # Each pixel stores its own (channel, row, col) so every position is recognisable.
    C, H, W, p = 2, 4, 6, 2
    ch, row, col = torch.meshgrid(
        torch.arange(C), torch.arange(H), torch.arange(W), indexing="ij"
    )  # each (C, H, W)
    imgs = (100 * ch + 10 * row + col).unsqueeze(0)  # (1, C, H, W)
    tokens = patchify(imgs, p)  # (1, 6, 8): grid is 2 rows x 3 columns
    # Token 4 is grid cell (1, 1): rows 2-3, columns 2-3.
    # Pixel rows, then pixel columns, then channels (channels vary fastest).
    expected = [100 * k + 10 * r + c for r in (2, 3) for c in (2, 3) for k in range(C)]
    assert tokens[0, 4].tolist() == expected


def test_patchify_keeps_the_dtype():
    imgs = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    assert patchify(imgs, 4).dtype == torch.float64
    ints = torch.arange(64, dtype=torch.uint8).reshape(1, 1, 8, 8)
    assert patchify(ints, 4).dtype == torch.uint8


def test_patchify_of_a_standard_vit_image_gives_196_tokens_of_768():
    assert patchify(torch.zeros(2, 3, 224, 224), 16).shape == (2, 196, 768)


# --- inverse ------------------------------------------------------------------------


@FAST
@given(shape=image_shapes)
def test_unpatchify_inverts_patchify_on_any_grid(shape):
    B, C, h, w, p = shape
    imgs = torch.randn(B, C, h * p, w * p)
    restored = unpatchify(patchify(imgs, p), p, grid_size=(h, w), channels=C)
    assert torch.equal(restored, imgs)


@FAST
@given(
    B=st.integers(1, 3), C=st.integers(1, 4), n=st.integers(1, 5), p=st.integers(1, 4)
)
def test_unpatchify_defaults_to_a_square_grid(B, C, n, p):
    imgs = torch.randn(B, C, n * p, n * p)
    assert torch.equal(unpatchify(patchify(imgs, p), p, channels=C), imgs)


@FAST
@given(shape=image_shapes)
def test_patchify_inverts_unpatchify(shape):
    B, C, h, w, p = shape
    tokens = torch.randn(B, h * w, p * p * C)
    imgs = unpatchify(tokens, p, grid_size=(h, w), channels=C)
    assert imgs.shape == (B, C, h * p, w * p)
    assert torch.equal(patchify(imgs, p), tokens)


def test_unpatchify_handles_a_non_square_grid():
    imgs = torch.randn(2, 3, 32, 80)  # grid 2 x 5
    tokens = patchify(imgs, 16)
    assert tokens.shape == (2, 10, 768)
    assert torch.equal(unpatchify(tokens, 16, grid_size=(2, 5)), imgs)
    # A list works as well as a tuple.
    assert torch.equal(unpatchify(tokens, 16, grid_size=[2, 5]), imgs)


def test_unpatchify_default_channels_is_three():
    assert unpatchify(torch.zeros(1, 4, 12), 2).shape == (1, 3, 4, 4)


# --- bad inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[[1.0]], None, 3.0])
def test_patchify_rejects_a_non_tensor(bad):
    with pytest.raises(TypeError, match="imgs must be a torch.Tensor"):
        patchify(bad, 16)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 1, 3, 32, 32), (32,)])
def test_patchify_rejects_a_tensor_that_is_not_4d(shape):
    with pytest.raises(ValueError, match=r"imgs has shape .* expected a 4-D tensor"):
        patchify(torch.zeros(shape), 16)


def test_patchify_names_the_height_that_does_not_divide():
    with pytest.raises(
        ValueError,
        match=r"imgs has height 225, which is not divisible by patch_size=16; "
        r"expected H and W to be multiples of 16",
    ):
        patchify(torch.zeros(1, 3, 225, 224), 16)


def test_patchify_names_the_width_that_does_not_divide():
    with pytest.raises(ValueError, match=r"imgs has width 30, .*patch_size=16"):
        patchify(torch.zeros(1, 3, 32, 30), 16)


@pytest.mark.parametrize("bad", [0, -16])
def test_patchify_rejects_a_non_positive_patch_size(bad):
    with pytest.raises(ValueError, match=rf"patch_size={bad} is not positive"):
        patchify(torch.zeros(1, 3, 32, 32), bad)


@pytest.mark.parametrize("bad", [16.0, "16", True, None])
def test_patchify_rejects_a_patch_size_that_is_not_an_int(bad):
    with pytest.raises(TypeError, match="patch_size must be an int"):
        patchify(torch.zeros(1, 3, 32, 32), bad)


def test_unpatchify_rejects_a_non_tensor():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        unpatchify([[0.0]], 16)


def test_unpatchify_rejects_a_tensor_that_is_not_3d():
    with pytest.raises(ValueError, match=r"x has shape \(1, 3, 32, 32\) .*3-D"):
        unpatchify(torch.zeros(1, 3, 32, 32), 16)


def test_unpatchify_needs_grid_size_when_tokens_are_not_a_square():
    with pytest.raises(ValueError, match=r"L=10 tokens, which is not a perfect square.*grid_size"):
        unpatchify(torch.zeros(1, 10, 768), 16)


def test_unpatchify_rejects_a_grid_size_that_does_not_match_the_tokens():
    with pytest.raises(ValueError, match=r"grid_size=\(3, 3\) has 9 cells but x has L=10"):
        unpatchify(torch.zeros(1, 10, 768), 16, grid_size=(3, 3))


@pytest.mark.parametrize("bad", [(10,), (1, 2, 5), 10, "2x5"])
def test_unpatchify_rejects_a_grid_size_that_is_not_a_pair(bad):
    with pytest.raises(ValueError, match="grid_size=.* is not a pair"):
        unpatchify(torch.zeros(1, 10, 768), 16, grid_size=bad)


def test_unpatchify_rejects_grid_size_entries_that_are_not_positive_ints():
    with pytest.raises(TypeError, match=r"grid_size\[0\] must be an int"):
        unpatchify(torch.zeros(1, 10, 768), 16, grid_size=(2.0, 5))
    with pytest.raises(ValueError, match=r"grid_size\[1\]=-5 is not positive"):
        unpatchify(torch.zeros(1, 10, 768), 16, grid_size=(2, -5))


def test_unpatchify_rejects_a_token_dimension_that_does_not_fit_the_patch():
    with pytest.raises(ValueError, match=r"D=768, but patch_size=16 and channels=1 .*= 256"):
        unpatchify(torch.zeros(1, 196, 768), 16, channels=1)


@pytest.mark.parametrize("bad", [0, -3])
def test_unpatchify_rejects_a_non_positive_channel_count(bad):
    with pytest.raises(ValueError, match=rf"channels={bad} is not positive"):
        unpatchify(torch.zeros(1, 196, 768), 16, channels=bad)


def test_unpatchify_rejects_a_channel_count_that_is_not_an_int():
    with pytest.raises(TypeError, match="channels must be an int"):
        unpatchify(torch.zeros(1, 196, 768), 16, channels=3.0)


def test_unpatchify_rejects_a_patch_size_that_is_not_a_positive_int():
    with pytest.raises(TypeError, match="patch_size must be an int"):
        unpatchify(torch.zeros(1, 196, 768), "16")
    with pytest.raises(ValueError, match="patch_size=0 is not positive"):
        unpatchify(torch.zeros(1, 196, 768), 0)
