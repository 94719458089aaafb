"""Tests for refimpl.masking: patch order and masking against references, properties, errors."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from refimpl.masking import (
    Masked,
    UnitMask,
    block_masking,
    gather_tokens,
    ids_from_mask,
    mask_unit_masking,
    patchify,
    random_masking,
    shuffle_order,
    unpatchify,
    unshuffle,
)

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


# === masking ========================================================================
#
# Convention under test: mask 1 = removed (hidden from the encoder), 0 = kept.

DIARY_NOISE = [[0.62, 0.15, 0.88, 0.47, 0.05, 0.93, 0.71, 0.34]]

ratios = st.one_of(
    st.floats(0.0, 1.0, exclude_max=True, allow_nan=False),
    st.sampled_from([0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9]),  # 0.9: int(10 * 0.1) == 0
)
token_shapes = st.tuples(st.integers(1, 4), st.integers(1, 40), st.integers(1, 5))  # B, L, D


def tokens_and_noise(B: int, L: int, D: int, seed: int) -> tuple[Tensor, Tensor]:
    """Random tokens ``(B, L, D)`` and noise ``(B, L)`` from one seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, D, generator=g), torch.rand(B, L, generator=g)


@functools.cache
def hf_vit_mae_embeddings():
    """A tiny Hugging Face ``ViTMAEEmbeddings``; only its ``config.mask_ratio`` matters here."""
    from transformers import ViTMAEConfig
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEEmbeddings

    config = ViTMAEConfig(hidden_size=4, image_size=4, patch_size=2, num_channels=1)
    return ViTMAEEmbeddings(config)


def hf_random_masking(x: Tensor, mask_ratio: float, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hugging Face ``ViTMAEEmbeddings.random_masking(sequence, noise)`` at ``mask_ratio``."""
    embeddings = hf_vit_mae_embeddings()
    embeddings.config.mask_ratio = mask_ratio  # the method reads the ratio from its config
    return embeddings.random_masking(x, noise=noise)


def hiera_random_mask_keep(noise: Tensor, mask_ratio: float) -> Tensor:
    """Official Hiera's ``get_random_mask`` steps on given noise: ``(B, U)`` bool, True = KEEP."""
    B, U = noise.shape
    len_keep = int(U * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    keep = torch.zeros(B, U)
    keep[:, :len_keep] = 1
    return torch.gather(keep, dim=1, index=ids_restore).bool()  # (B, U)


# --- exactness ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(shape=token_shapes, mask_ratio=ratios, seed=st.integers(0, 2**16))
def test_random_masking_is_identical_to_hugging_face_vit_mae_given_the_same_noise(
    shape, mask_ratio, seed
):
    x, noise = tokens_and_noise(*shape, seed)
    ours = random_masking(x, mask_ratio, noise=noise)
    kept, mask, ids_restore = hf_random_masking(x, mask_ratio, noise)
    assert torch.equal(ours.kept, kept)
    assert torch.equal(ours.mask, mask)
    assert ours.mask.dtype == mask.dtype == torch.float32
    assert torch.equal(ours.ids_restore, ids_restore)


def test_random_masking_matches_hugging_face_at_the_mae_default_size():
    x, noise = tokens_and_noise(4, 196, 16, seed=0)
    ours = random_masking(x, 0.75, noise=noise)
    kept, mask, ids_restore = hf_random_masking(x, 0.75, noise)
    assert ours.kept.shape == (4, 49, 16)
    assert torch.equal(ours.kept, kept)
    assert torch.equal(ours.mask, mask)
    assert torch.equal(ours.ids_restore, ids_restore)


def test_random_masking_reproduces_the_diary_worked_example():
    x = torch.arange(8.0).reshape(1, 8, 1)  # token i holds the number i
    out = random_masking(x, 0.75, noise=torch.tensor(DIARY_NOISE))
    assert isinstance(out, Masked)
    assert out.ids_keep.tolist() == [[4, 1]]
    assert out.kept.flatten().tolist() == [4.0, 1.0]
    assert out.ids_restore.tolist() == [[4, 1, 6, 3, 0, 7, 5, 2]]
    assert out.mask.tolist() == [[1, 0, 1, 1, 0, 1, 1, 1]]
    restored = unshuffle(out.kept, out.ids_restore, torch.tensor([-1.0]))
    assert restored.flatten().tolist() == [-1, 1, -1, -1, 4, -1, -1, -1]


@FAST
@given(B=st.integers(1, 3), grid=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       unit=st.tuples(st.integers(1, 3), st.integers(1, 3)), mask_ratio=ratios,
       seed=st.integers(0, 2**16))
def test_mask_unit_masking_is_official_hiera_with_the_mask_inverted(
    B, grid, unit, mask_ratio, seed
):
    U = grid[0] * grid[1]
    noise = torch.rand(B, U, generator=torch.Generator().manual_seed(seed))
    tokens = (grid[0] * unit[0], grid[1] * unit[1])
    out = mask_unit_masking(B, tokens, unit, mask_ratio, noise=noise)
    keep = hiera_random_mask_keep(noise, mask_ratio)  # official: True = keep
    assert torch.equal(out.units, (~keep).float())  # ours: 1 = removed


# --- shuffle, gather, unshuffle ------------------------------------------------------


@FAST
@given(B=st.integers(1, 4), L=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_ids_restore_is_the_inverse_permutation_of_ids_shuffle(B, L, seed):
    noise = torch.rand(B, L, generator=torch.Generator().manual_seed(seed))
    ids_shuffle, ids_restore = shuffle_order(noise)
    arange = torch.arange(L).expand(B, L)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), arange)
    assert torch.equal(torch.gather(ids_restore, 1, ids_shuffle), arange)
    # Ascend: noise read in shuffled order never decreases.
    assert bool((torch.gather(noise, 1, ids_shuffle).diff(dim=1) >= 0).all())


@FAST
@given(shape=token_shapes, K=st.integers(0, 12), seed=st.integers(0, 2**16))
def test_gather_tokens_picks_x_at_the_given_indices_per_sample(shape, K, seed):
    B, L, D = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, L, D, generator=g)
    ids = torch.randint(L, (B, K), generator=g)
    out = gather_tokens(x, ids)
    assert out.shape == (B, K, D)
    for b in range(B):
        assert torch.equal(out[b], x[b, ids[b]])


@FAST
@given(shape=token_shapes, mask_ratio=ratios, seed=st.integers(0, 2**16))
def test_unshuffle_returns_every_kept_token_home_and_mask_tokens_exactly_where_removed(
    shape, mask_ratio, seed
):
    x, noise = tokens_and_noise(*shape, seed)
    B, L, D = x.shape
    out = random_masking(x, mask_ratio, noise=noise)
    mask_token = torch.full((1, 1, D), float("nan"))  # recognisable: never equal to a token
    full = unshuffle(out.kept, out.ids_restore, mask_token)
    assert full.shape == (B, L, D)
    removed = out.mask.bool()  # (B, L)
    assert torch.equal(full[~removed], x[~removed])  # kept tokens back at their own index
    assert bool(full[removed].isnan().all())  # mask tokens exactly at removed positions
    assert not bool(full[~removed].isnan().any())


@FAST
@given(shape=token_shapes, mask_ratio=ratios, seed=st.integers(0, 2**16))
def test_random_masking_keeps_exactly_int_L_times_1_minus_r_tokens_per_sample(
    shape, mask_ratio, seed
):
    x, noise = tokens_and_noise(*shape, seed)
    B, L, D = x.shape
    len_keep = int(L * (1 - mask_ratio))
    out = random_masking(x, mask_ratio, noise=noise)
    assert out.kept.shape == (B, len_keep, D)
    assert out.ids_keep.shape == (B, len_keep)
    assert torch.equal(out.mask.sum(dim=1), torch.full((B,), float(L - len_keep)))


@FAST
@given(shape=token_shapes, mask_ratio=ratios, seed=st.integers(0, 2**16))
def test_the_mask_is_zero_exactly_at_the_kept_indices(shape, mask_ratio, seed):
    x, noise = tokens_and_noise(*shape, seed)
    out = random_masking(x, mask_ratio, noise=noise)
    assert set(out.mask.unique().tolist()) <= {0.0, 1.0}
    for b in range(x.shape[0]):
        kept = set(out.ids_keep[b].tolist())
        assert len(kept) == out.ids_keep.shape[1]  # no index kept twice
        assert {i for i in range(x.shape[1]) if out.mask[b, i] == 0} == kept
        assert torch.equal(out.kept[b], x[b, out.ids_keep[b]])


def test_each_sample_in_a_batch_gets_its_own_random_mask():
    torch.manual_seed(0)
    out = random_masking(torch.zeros(8, 196, 4), 0.75)
    assert out.mask.shape == (8, 196)
    assert not bool((out.mask == out.mask[0]).all())
    assert len({tuple(row.tolist()) for row in out.mask}) == 8


def test_the_same_noise_gives_the_same_mask_and_other_noise_another():
    x, noise = tokens_and_noise(2, 196, 4, seed=1)
    a = random_masking(x, 0.75, noise=noise)
    b = random_masking(x, 0.75, noise=noise.clone())
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    other = torch.rand(2, 196, generator=torch.Generator().manual_seed(2))
    c = random_masking(x, 0.75, noise=other)
    assert not torch.equal(a.mask, c.mask)


def test_unshuffle_accepts_a_flat_mask_token_and_passes_gradients_to_it():
    kept = torch.randn(2, 3, 4)
    ids_restore = torch.stack([torch.randperm(7) for _ in range(2)])
    token = torch.randn(4, requires_grad=True)
    flat = unshuffle(kept, ids_restore, token)
    assert torch.equal(flat, unshuffle(kept, ids_restore, token.detach().reshape(1, 1, 4)))
    flat.sum().backward()
    assert torch.equal(token.grad, torch.full((4,), 2.0 * 4))  # 4 mask tokens in each of 2 samples


def test_unshuffle_with_nothing_removed_just_undoes_the_shuffle():
    x, noise = tokens_and_noise(2, 9, 3, seed=3)
    out = random_masking(x, 0.0, noise=noise)
    assert torch.equal(unshuffle(out.kept, out.ids_restore, torch.zeros(3)), x)


# --- ids_from_mask: any equal-count mask into the same pipeline ----------------------


@FAST
@given(shape=token_shapes, mask_ratio=ratios, seed=st.integers(0, 2**16))
def test_ids_from_mask_rebuilds_the_mask_and_feeds_gather_and_unshuffle(shape, mask_ratio, seed):
    x, noise = tokens_and_noise(*shape, seed)
    B, L, D = x.shape
    mask = random_masking(x, mask_ratio, noise=noise).mask
    ids_keep, ids_restore = ids_from_mask(mask)
    len_keep = ids_keep.shape[1]
    assert len_keep == L - int(mask[0].sum())
    # Kept tokens first, in their original (ascending) order.
    assert bool((ids_keep.diff(dim=1) > 0).all())
    assert bool((torch.gather(mask, 1, ids_keep) == 0).all())
    # The shuffle-then-gather recipe gives back the very same mask ...
    rebuilt = torch.ones(B, L)
    rebuilt[:, :len_keep] = 0
    assert torch.equal(torch.gather(rebuilt, 1, ids_restore), mask)
    # ... and unshuffle puts each kept token home.
    full = unshuffle(gather_tokens(x, ids_keep), ids_restore, torch.full((D,), float("nan")))
    assert torch.equal(full[~mask.bool()], x[~mask.bool()])
    assert bool(full[mask.bool()].isnan().all())


def test_ids_from_mask_takes_a_bool_mask_too():
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    ids_keep, ids_restore = ids_from_mask(mask)
    assert ids_keep.tolist() == [[1, 3], [0, 1]]
    assert ids_restore.tolist() == [[2, 0, 3, 1], [0, 1, 2, 3]]


# --- block masking (BEiT) -------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), grid=st.tuples(st.integers(1, 14), st.integers(1, 14)),
       mask_ratio=ratios, min_block=st.integers(1, 16), max_aspect=st.floats(1.0, 5.0),
       seed=st.integers(0, 2**16))
def test_block_masking_removes_exactly_int_L_times_r_tokens_in_every_sample(
    B, grid, mask_ratio, min_block, max_aspect, seed
):
    L = grid[0] * grid[1]
    mask = block_masking(B, grid, mask_ratio, min_block=min_block, max_aspect=max_aspect,
                         generator=torch.Generator().manual_seed(seed))
    assert mask.shape == (B, L)
    assert mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mask.sum(dim=1), torch.full((B,), float(L - int(L * (1 - mask_ratio)))))
    ids_keep, ids_restore = ids_from_mask(mask)  # equal counts: accepted
    assert ids_keep.shape == (B, int(L * (1 - mask_ratio)))


def test_block_masking_is_deterministic_given_a_seeded_generator():
    def draw(seed: int) -> Tensor:
        return block_masking(4, (14, 14), 0.4, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_block_masking_defaults_are_beits_blocks_of_16_and_aspect_ratios_in_0_3_to_1_over_0_3():
    """BEiT's Algorithm 1: blocks of at least 16 patches, aspect ratio drawn from (0.3, 1/0.3)."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(block_masking).parameters.items()}
    assert defaults["min_block"] == 16
    assert defaults["max_aspect"] == pytest.approx(1 / 0.3)
    # With those defaults a draw on 14 x 14 at 40 % still removes exactly the target count.
    mask = block_masking(8, (14, 14), 0.4, generator=torch.Generator().manual_seed(0))
    assert mask.sum(dim=1).tolist() == [196 - int(196 * 0.6)] * 8


def test_block_masking_masks_contiguous_blocks_not_scattered_tokens():
    def neighbour_share(mask: Tensor) -> float:
        """Share of removed tokens with at least two removed 4-neighbours."""
        grid = mask.reshape(-1, 14, 14)  # (B, h, w)
        padded = torch.nn.functional.pad(grid, (1, 1, 1, 1))  # (B, h + 2, w + 2)
        near = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2]
                + padded[:, 1:-1, 2:])  # (B, h, w): removed neighbours of each token
        return float(((near >= 2) & (grid > 0)).sum() / grid.sum())

    blocks = block_masking(16, (14, 14), 0.4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    scattered = random_masking(torch.zeros(16, 196, 1), 0.4).mask
    assert neighbour_share(blocks) > 0.8
    assert neighbour_share(blocks) > neighbour_share(scattered) + 0.25


# --- mask units (Hiera) ---------------------------------------------------------------


@FAST
@given(B=st.integers(1, 3), units=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       unit_size=st.tuples(st.integers(1, 4), st.integers(1, 4)), mask_ratio=ratios,
       seed=st.integers(0, 2**16))
def test_mask_units_are_removed_whole_and_agree_with_the_token_mask(
    B, units, unit_size, mask_ratio, seed
):
    (uh, uw), (ku, kv) = units, unit_size
    h, w, U = uh * ku, uw * kv, uh * uw
    torch.manual_seed(seed)
    out = mask_unit_masking(B, (h, w), (ku, kv), mask_ratio)
    assert isinstance(out, UnitMask)
    assert out.units.shape == (B, U) and out.mask.shape == (B, h * w)
    assert torch.equal(out.units.sum(dim=1), torch.full((B,), float(U - int(U * (1 - mask_ratio)))))
    cells = out.mask.reshape(B, uh, ku, uw, kv)  # (B, uh, ku, uw, kv): tokens of each unit
    per_unit = cells.permute(0, 1, 3, 2, 4).reshape(B, U, ku * kv)  # (B, U, ku * kv)
    # Every unit fully removed or fully kept, with the unit's own value.
    assert torch.equal(per_unit, out.units.unsqueeze(-1).expand(B, U, ku * kv))


def test_mask_unit_masking_takes_one_int_for_square_units_at_hiera_scale():
    torch.manual_seed(0)
    out = mask_unit_masking(2, (56, 56), 8, 0.6)  # Hiera 224 px: 7 x 7 units of 8 x 8 tokens
    assert out.units.shape == (2, 49) and out.mask.shape == (2, 3136)
    assert out.units.sum(dim=1).tolist() == [49 - int(49 * 0.4)] * 2
    assert out.mask.sum(dim=1).tolist() == [64.0 * (49 - int(49 * 0.4))] * 2


# --- bad inputs: masking --------------------------------------------------------------


def test_random_masking_rejects_tokens_that_are_not_3d():
    with pytest.raises(ValueError, match=r"x has shape \(4, 196\) .*3-D tensor of shape \(B, L, D"):
        random_masking(torch.zeros(4, 196), 0.75)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        random_masking([[[0.0]]], 0.75)


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")])
def test_random_masking_rejects_a_ratio_outside_0_1(bad):
    with pytest.raises(ValueError, match=r"mask_ratio=.* is outside \[0, 1\)"):
        random_masking(torch.zeros(1, 8, 2), bad)


@pytest.mark.parametrize("bad", ["0.75", None, True, torch.tensor(0.75)])
def test_random_masking_rejects_a_ratio_that_is_not_a_real_number(bad):
    with pytest.raises(TypeError, match="mask_ratio must be a real number"):
        random_masking(torch.zeros(1, 8, 2), bad)


def test_random_masking_rejects_noise_of_the_wrong_shape_or_dtype():
    x = torch.zeros(2, 8, 3)
    with pytest.raises(ValueError, match=r"noise has shape \(2, 7\); expected \(B, L\) = \(2, 8\)"):
        random_masking(x, 0.75, noise=torch.rand(2, 7))
    with pytest.raises(ValueError, match=r"noise has shape \(2, 8, 1\)"):
        random_masking(x, 0.75, noise=torch.rand(2, 8, 1))
    with pytest.raises(TypeError, match=r"noise has dtype torch.int64; expected a floating-point"):
        random_masking(x, 0.75, noise=torch.randint(10, (2, 8)))
    with pytest.raises(TypeError, match="noise must be a torch.Tensor"):
        random_masking(x, 0.75, noise=[[0.5] * 8] * 2)


def test_shuffle_order_rejects_noise_that_is_not_2d_or_not_floating():
    with pytest.raises(ValueError, match=r"noise has shape \(8,\) .*2-D"):
        shuffle_order(torch.rand(8))
    with pytest.raises(TypeError, match="noise has dtype torch.int64"):
        shuffle_order(torch.arange(8).reshape(1, 8))


def test_gather_tokens_rejects_bad_indices():
    x = torch.zeros(2, 5, 3)
    with pytest.raises(TypeError, match="ids has dtype torch.float32; expected integer"):
        gather_tokens(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"ids has shape \(3, 2\) but x has shape \(2, 5, 3\)"):
        gather_tokens(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids has shape \(6,\)"):
        gather_tokens(x, torch.zeros(6, dtype=torch.long))


def test_unshuffle_names_the_shapes_that_do_not_fit():
    kept, ids_restore = torch.zeros(2, 3, 4), torch.stack([torch.randperm(8)] * 2)
    with pytest.raises(ValueError, match=r"ids_restore has shape \(1, 8\) but x has shape \(2, 3"):
        unshuffle(kept, ids_restore[:1], torch.zeros(4))
    with pytest.raises(ValueError, match=r"ids_restore has shape \(2, 2\) .*L >= L_keep = 3"):
        unshuffle(kept, ids_restore[:, :2], torch.zeros(4))
    with pytest.raises(ValueError, match=r"mask_token has shape \(1, 1, 5\) but x has D=4"):
        unshuffle(kept, ids_restore, torch.zeros(1, 1, 5))
    with pytest.raises(ValueError, match=r"mask_token has shape \(2, 4\)"):
        unshuffle(kept, ids_restore, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="mask_token must be a torch.Tensor"):
        unshuffle(kept, ids_restore, 0.0)
    with pytest.raises(ValueError, match=r"x has shape \(3, 4\)"):
        unshuffle(torch.zeros(3, 4), ids_restore, torch.zeros(4))


def test_ids_from_mask_rejects_uneven_counts_and_non_binary_values():
    with pytest.raises(ValueError, match=r"mask removes \[2, 1\] tokens per sample"):
        ids_from_mask(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="mask holds values other than 0 and 1"):
        ids_from_mask(torch.tensor([[0.5, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"mask has shape \(3,\)"):
        ids_from_mask(torch.tensor([1.0, 0.0, 0.0]))


def test_block_masking_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"batch_size=0 is not positive"):
        block_masking(0, (14, 14), 0.4)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        block_masking(2.0, (14, 14), 0.4)
    with pytest.raises(ValueError, match=r"grid_size=14 is not a pair"):
        block_masking(2, 14, 0.4)
    with pytest.raises(ValueError, match=r"grid_size\[1\]=0 is not positive"):
        block_masking(2, (14, 0), 0.4)
    with pytest.raises(ValueError, match=r"mask_ratio=1 is outside \[0, 1\)"):
        block_masking(2, (14, 14), 1)
    with pytest.raises(ValueError, match=r"min_block=0 is not positive"):
        block_masking(2, (14, 14), 0.4, min_block=0)
    with pytest.raises(ValueError, match=r"max_aspect=0.5 is below 1"):
        block_masking(2, (14, 14), 0.4, max_aspect=0.5)
    with pytest.raises(TypeError, match="max_aspect must be a real number"):
        block_masking(2, (14, 14), 0.4, max_aspect="3")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        block_masking(2, (14, 14), 0.4, generator=0)


def test_mask_unit_masking_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"grid_size=\(14, 14\) is not divisible by unit_size=\(4,"):
        mask_unit_masking(2, (14, 14), 4, 0.6)
    with pytest.raises(ValueError, match=r"unit_size=\(2, 2, 2\) is not a pair"):
        mask_unit_masking(2, (14, 14), (2, 2, 2), 0.6)
    with pytest.raises(TypeError, match=r"unit_size must be an int"):
        mask_unit_masking(2, (14, 14), 2.0, 0.6)
    with pytest.raises(TypeError, match=r"unit_size\[0\] must be an int"):
        mask_unit_masking(2, (14, 14), (2.0, 2), 0.6)
    with pytest.raises(ValueError, match=r"mask_ratio=-0.5 is outside"):
        mask_unit_masking(2, (14, 14), 2, -0.5)
    with pytest.raises(ValueError, match=r"noise has shape \(2, 196\); expected \(B, U\) = \(2, 49"):
        mask_unit_masking(2, (14, 14), 2, 0.6, noise=torch.rand(2, 196))
    with pytest.raises(ValueError, match=r"batch_size=-1 is not positive"):
        mask_unit_masking(-1, (14, 14), 2, 0.6)


def test_ids_from_mask_takes_a_known_count_and_still_checks_it_in_eager():
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    ids = ids_from_mask(mask, num_removed=2)
    assert ids.ids_keep.tolist() == [[1, 3], [0, 3]] and torch.equal(ids.ids_restore, ids_from_mask(mask).ids_restore)
    with pytest.raises(ValueError, match=r"mask removes \[2, 2\] tokens per sample.*num_removed=1"):
        ids_from_mask(mask, num_removed=1)
    with pytest.raises(ValueError, match=r"num_removed=5; expected an int in \[0, L\] = \[0, 4\]"):
        ids_from_mask(mask, num_removed=5)


def test_the_unchecked_paths_give_the_same_results_and_the_patchify_pattern_still_names_a_bad_side():
    x, noise = torch.randn(2, 8, 3), torch.rand(2, 8)
    checked, trusted = random_masking(x, 0.5, noise), random_masking(x, 0.5, noise, check=False)
    assert all(torch.equal(a, b) for a, b in zip(checked, trusted))
    token = torch.zeros(3)
    assert torch.equal(unshuffle(checked.kept, checked.ids_restore, token),
                       unshuffle(checked.kept, checked.ids_restore, token, check=False))
    with pytest.raises(ValueError, match=r"imgs has width 30, which is not divisible by patch_size=16"):
        patchify(torch.zeros(1, 3, 32, 30), 16, check=False)
