"""Hiera and MAE-Hiera: exact against the official ``hiera`` package, unroll/reroll properties, loading, errors."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from refimpl import hiera as ours
from refimpl.checkpoints import load_checkpoint
from refimpl.hiera import Hiera, MaskedAutoencoderHiera, MaskUnitAttention
from refimpl.unroll import pool_tokens, reroll, reroll_units, unroll

from checks_counter import checked_twice
from conftest import max_abs_diff

with warnings.catch_warnings():  # the official package imports timm.models.layers (deprecated path)
    warnings.simplefilter("ignore", FutureWarning)
    official = pytest.importorskip("hiera")

TOL = 1e-5
FACTORIES = ["hiera_tiny_224", "hiera_small_224", "hiera_base_224", "hiera_base_plus_224", "hiera_large_224",
             "hiera_huge_224"]
# A small config that keeps every mechanism: 4 stages, mask units of 8 x 8 tokens, 2 x 2 unit grid.
SMALL = dict(input_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 1, 1))
SMALL_MAE = dict(**SMALL, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)


@pytest.fixture(scope="module")
def images() -> Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))  # (B, C, H, W)


@pytest.fixture(scope="module")
def tiny_pair() -> tuple[Hiera, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = official.hiera_tiny_224().eval()
    mine = ours.hiera_tiny_224().eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    return mine, theirs


# --- exactness against the official code ---------------------------------------------------


def test_official_tiny_weights_load_strictly_and_give_the_same_logits_and_stage_features(tiny_pair, images):
    mine, theirs = tiny_pair
    with torch.no_grad():
        features = mine.forward_features(images)
        logits = mine.head(mine.norm(features.tokens.mean(dim=1)))
        probs, intermediates = theirs(images, return_intermediates=True)  # eval: the official head softmaxes
        theirs.train()  # no dropout or drop-path here, so train mode is the same net without the softmax
        their_logits = theirs(images)
        theirs.eval()
    assert logits.shape == (2, 1000)
    assert max_abs_diff(logits, their_logits) <= TOL
    assert max_abs_diff(logits.softmax(-1), probs) <= TOL
    shapes = [(2, 56, 56, 96), (2, 28, 28, 192), (2, 14, 14, 384), (2, 7, 7, 768)]
    assert [tuple(s.shape) for s in features.stages] == shapes
    for mine_stage, their_stage in zip(features.stages, intermediates, strict=True):
        assert max_abs_diff(mine_stage, their_stage) <= TOL


def test_masked_encoder_keeps_the_same_units_and_features_as_official(tiny_pair, images):
    mine, theirs = tiny_pair
    torch.manual_seed(1)
    keep = theirs.get_random_mask(images, 0.6)  # official: (B, 49) bool, True = KEEP
    with torch.no_grad():
        _, intermediates = theirs(images, mask=keep, return_intermediates=True)
        stages = mine.forward_features(images, mask=(~keep).float()).stages  # ours: 1 = removed
    assert [tuple(s.shape) for s in stages] == [(2, 19, 8, 8, 96), (2, 19, 4, 4, 192), (2, 19, 2, 2, 384),
                                                (2, 19, 1, 1, 768)]
    for mine_stage, their_stage in zip(stages, intermediates, strict=True):
        assert max_abs_diff(mine_stage, their_stage) <= TOL


def test_mae_hiera_tiny_gives_the_official_loss_predictions_and_labels_for_the_same_mask(images):
    torch.manual_seed(0)
    theirs = official.mae_hiera_tiny_224().eval()
    mine = ours.mae_hiera_tiny_224().eval()
    assert list(mine.state_dict()) == list(theirs.state_dict())
    mine.load_state_dict(theirs.state_dict(), strict=True)
    keep = theirs.get_random_mask(images, 0.6)  # True = KEEP
    with torch.no_grad():
        loss, pred, label, _ = theirs(images, mask=keep)
        out = mine(images, mask=(~keep).float())  # the one conversion: ours is 1 = removed
    removed = out.mask.bool()
    assert out.pred.shape == out.target.shape == (2, 196, 768)
    assert int(removed.sum()) == 2 * 30 * 4  # 30 of 49 units removed, 2 x 2 prediction patches each
    assert abs(out.loss.item() - loss.item()) <= TOL
    assert max_abs_diff(out.pred[removed], pred) <= TOL
    assert max_abs_diff(out.target[removed], label) <= TOL


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_on_cuda_mae_hiera_gives_the_official_loss_and_predictions(dtype, images):
    torch.manual_seed(0)
    theirs = official.mae_hiera_tiny_224().cuda().eval()
    mine = ours.mae_hiera_tiny_224().cuda().eval()
    mine.load_state_dict(theirs.state_dict(), strict=True)
    x = images.cuda()
    keep = theirs.get_random_mask(x, 0.6)  # True = KEEP
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        loss, pred, label, _ = theirs(x, mask=keep)
        out = mine(x, mask=(~keep).float())
    removed = out.mask.bool()
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(out.loss.float(), loss.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(out.pred[removed].float(), pred.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(out.target[removed].float(), label.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", FACTORIES)
def test_every_published_size_has_the_official_keys_and_shapes(name, official_on_meta):
    with torch.device("meta"):
        mine = getattr(ours, name)()
        theirs = getattr(official, name)()
    assert {k: tuple(v.shape) for k, v in mine.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    for a, b in zip(mine.blocks, theirs.blocks, strict=True):
        assert (a.attn.heads, a.attn.q_stride, a.attn.window_size, a.attn.use_mask_unit_attn) == (
            b.attn.heads, b.attn.q_stride, b.attn.window_size, b.attn.use_mask_unit_attn)


@pytest.mark.parametrize("name", [f"mae_{n}" for n in FACTORIES])
def test_every_mae_size_has_the_official_keys_and_shapes(name, official_on_meta):
    with torch.device("meta"):
        mine = getattr(ours, name)()
        theirs = getattr(official, name)()
    assert {k: tuple(v.shape) for k, v in mine.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }


def test_explicit_softmax_attention_matches_the_fused_one():
    torch.manual_seed(0)
    fused = MaskUnitAttention(16, 32, heads=2, q_stride=4, window_size=4, use_mask_unit_attn=True)
    plain = MaskUnitAttention(16, 32, heads=2, q_stride=4, window_size=4, use_mask_unit_attn=True, fused_attn=False)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 64, 16)  # 4 units of 16 tokens
    assert max_abs_diff(fused(x), plain(x)) <= TOL
    assert fused(x).shape == (2, 16, 32)


# --- unroll and reroll (Figure 4) -----------------------------------------------------------

grids = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3))  # units down, across, steps


@settings(max_examples=30, deadline=None)
@given(grid=grids, B=st.integers(1, 2), C=st.integers(1, 3))
def test_reroll_undoes_unroll_exactly(grid, B, C):
    uh, uw, steps = grid
    size = (uh * 2**steps, uw * 2**steps)
    x = torch.randn(B, size[0] * size[1], C)
    strides = [(2, 2)] * steps
    assert torch.equal(reroll(unroll(x, size, strides), size, strides), x)
    assert torch.equal(unroll(reroll(x, size, strides), size, strides), x)


@settings(max_examples=30, deadline=None)
@given(grid=grids)
def test_after_unroll_each_mask_unit_is_one_column_of_the_tokens_by_units_view(grid):
    uh, uw, steps = grid
    k = 2**steps  # the unit side in tokens
    h, w = uh * k, uw * k
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    unit_of_token = ((rows // k) * uw + cols // k).reshape(1, h * w, 1)  # raster id of each token's unit
    order = unroll(unit_of_token, (h, w), [(2, 2)] * steps).reshape(k * k, uh * uw)  # (T, U)
    assert torch.equal(order, torch.arange(uh * uw).expand(k * k, -1))  # column u holds unit u only


def test_the_diary_question_where_does_the_i_th_token_come_from():
    # 224 px: 56 x 56 tokens, three 2 x 2 steps. Digits of n in radix (2,2,2,2,2,2,7,7) give the place.
    raster = torch.arange(56 * 56).reshape(1, -1, 1)
    order = unroll(raster, (56, 56), [(2, 2)] * 3).flatten()
    for n in (0, 1, 48, 49, 50, 1000, 3135):
        sy1, sx1, sy2, sx2, sy3, sx3 = (n // 49 >> s & 1 for s in (5, 4, 3, 2, 1, 0))
        uy, ux = divmod(n % 49, 7)
        row, col = uy * 8 + sy3 * 4 + sy2 * 2 + sy1, ux * 8 + sx3 * 4 + sx2 * 2 + sx1
        assert order[n].item() == row * 56 + col


@settings(max_examples=30, deadline=None)
@given(grid=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), seed=st.integers(0, 2**16))
def test_pooling_an_unrolled_sequence_is_reshape_and_max_even_with_units_removed(grid, seed):
    uh, uw, steps = grid
    k, C = 2**steps, 3
    h, w, U = uh * k, uw * k, uh * uw
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, h * w, C, generator=g)
    strides = [(2, 2)] * steps
    pooled = pool_tokens(unroll(x, (h, w), strides), 4)  # reshape (1, 4, N/4, C) + max
    image = x.reshape(1, h, w, C).permute(0, 3, 1, 2)  # (1, C, h, w)
    expected = F.max_pool2d(image, 2).permute(0, 2, 3, 1).reshape(1, -1, C)  # (1, L/4, C) raster
    assert torch.equal(reroll(pooled, (h // 2, w // 2), strides[1:]), expected)
    # Remove some units: drop their columns, pool the rest the same way, get the same pooled units.
    keep = torch.randperm(U, generator=g)[: max(1, U // 2)].sort().values
    sparse = unroll(x, (h, w), strides).reshape(1, k * k, U, C)[:, :, keep].reshape(1, -1, C)
    expected_units = reroll_units(pooled, strides[1:])[:, keep]  # (1, U_keep, k/2, k/2, C)
    assert torch.equal(reroll_units(pool_tokens(sparse, 4), strides[1:]), expected_units)


def test_unroll_names_a_grid_that_its_strides_do_not_divide():
    with pytest.raises(ValueError, match=r"grid_size=\(6, 6\) is not divisible by the strides"):
        unroll(torch.zeros(1, 36, 2), (6, 6), [(2, 2)] * 2)
    with pytest.raises(ValueError, match=r"x has L=35 tokens but grid_size=\(6, 6\) has 36"):
        unroll(torch.zeros(1, 35, 2), (6, 6), [(2, 2)])


# --- training contract, loading, bad input ------------------------------------------------


def test_forward_backward_reaches_every_parameter_of_hiera_and_mae_hiera():
    torch.manual_seed(0)
    for model in (Hiera(**SMALL, num_classes=5), MaskedAutoencoderHiera(**SMALL_MAE)):
        model.train()
        out = model(torch.randn(2, 3, 64, 64))
        loss = out.square().mean() if isinstance(out, Tensor) else out.loss
        loss.backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_mae_hiera_draws_60_percent_of_units_by_default_and_reports_them():
    torch.manual_seed(0)
    model = MaskedAutoencoderHiera(**{**SMALL_MAE, "input_size": (160, 160)}).eval()  # 5 x 5 units
    with torch.no_grad():
        out = model(torch.randn(3, 3, 160, 160))
    assert out.units.shape == (3, 25) and out.units.sum(1).tolist() == [15.0] * 3  # int(25 * 0.4) = 10 kept
    assert out.mask.shape == (3, 100) and out.mask.sum(1).tolist() == [60.0] * 3  # 2 x 2 patches per unit


def test_official_checkpoint_layout_loads_with_load_checkpoint(tmp_path: Path):
    torch.manual_seed(0)
    source = MaskedAutoencoderHiera(**SMALL_MAE)
    path = tmp_path / "mae_hiera_small_test.pth"
    torch.save({"model_state": source.state_dict(), "epoch": 1599}, path)  # the official release layout
    target = MaskedAutoencoderHiera(**SMALL_MAE)
    assert load_checkpoint(target, path, strict=True).missing == []
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(input_size=(200, 200)), r"input_size=\(200, 200\) is not a multiple of patch_stride \* mask_unit_size"),
        (dict(mask_unit_size=(4, 4)), r"expected mask_unit_size == q_stride \*\* 3 = \(8, 8\)"),
        (dict(q_pool=4), r"q_pool=4; expected 0 <= q_pool < len\(stages\) = 4"),
        (dict(input_size=(16, 224, 224)), r"images only"),
    ],
)
def test_sizes_that_do_not_fit_the_schedule_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Hiera(**{**SMALL, **kwargs})


@pytest.mark.parametrize(
    ("imgs", "kwargs", "message"),
    [
        (torch.zeros(1, 1, 64, 64), {}, r"imgs has shape \(1, 1, 64, 64\); expected \(B, 3, 64, 64\)"),
        (torch.zeros(1, 3, 96, 96), {}, r"imgs has shape \(1, 3, 96, 96\)"),
        (torch.zeros(3, 64, 64), {}, r"imgs has shape \(3, 64, 64\)"),
        (torch.zeros(1, 3, 64, 64), {"mask_ratio": 1.0}, r"mask_ratio=1.0 is outside \[0, 1\)"),
        (torch.zeros(1, 3, 64, 64), {"mask_ratio": 0.9}, r"keeps int\(4 \* \(1 - 0.9\)\) = 0 of 4 mask units"),
        (torch.zeros(1, 3, 64, 64), {"mask": torch.zeros(1, 5)}, r"mask has shape \(1, 5\); expected \(B, U\) = \(1, 4\)"),
        (torch.zeros(2, 3, 64, 64), {"mask": torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0]])}, r"removes \[1, 2\] units"),
        (torch.zeros(1, 3, 64, 64), {"mask": torch.tensor([[0.5, 0, 0, 0]])}, r"values other than 0 and 1"),
        (torch.zeros(1, 3, 64, 64), {"mask": torch.ones(1, 4)}, r"removes all 4 mask units"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(imgs, kwargs, message):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=message):
        MaskedAutoencoderHiera(**SMALL_MAE)(imgs, **kwargs)


def test_published_sizes_follow_the_stage_schedule():
    model = Hiera(**SMALL)
    widths = [blk.dim_out for blk in model.blocks]
    assert widths == [16, 32, 32, 64, 128]  # doubles at each stage's first block
    assert [blk.attn.heads for blk in model.blocks] == [1, 2, 2, 4, 8]
    assert math.prod(model.mask_spatial_shape) == model.num_mask_units == 4


# --- video (3-D): exactness against the official video models, token order, bad input -------

VIDEO_FACTORIES = ["hiera_base_16x224", "hiera_base_plus_16x224", "hiera_large_16x224", "hiera_huge_16x224"]
# The official video settings at a tiny size: 4 frames -> 2 token frames of 16 x 24 tokens, a 2 x 2 x 3 grid of
# 1 x 8 x 8 mask units (height != width != frames, so a swapped axis shows), 4 stages, 2 blocks in stage 2.
SMALL_VIDEO = dict(input_size=(4, 64, 96), embed_dim=8, num_heads=1, stages=(1, 2, 1, 1), q_stride=(1, 2, 2),
                   mask_unit_size=(1, 8, 8), patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4), patch_padding=(1, 3, 3),
                   sep_pos_embed=True)
SMALL_VIDEO_MAE = dict(**SMALL_VIDEO, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)


@pytest.fixture(scope="module")
def clips() -> Tensor:
    return torch.randn(2, 3, 4, 64, 96, generator=torch.Generator().manual_seed(0))  # (B, C, F, H, W)


@pytest.fixture(scope="module")
def video_pair() -> tuple[Hiera, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = official.Hiera(**SMALL_VIDEO, num_classes=5).eval()
    mine = Hiera(**SMALL_VIDEO, num_classes=5).eval()
    assert list(mine.state_dict()) == list(theirs.state_dict())  # same names, same order
    mine.load_state_dict(theirs.state_dict(), strict=True)
    return mine, theirs


def test_video_hiera_loads_official_weights_strictly_and_gives_the_same_logits_and_stage_features(video_pair, clips):
    mine, theirs = video_pair
    assert tuple(mine.pos_embed_spatial.shape) == (1, 16 * 24, 8) and tuple(mine.pos_embed_temporal.shape) == (1, 2, 8)
    with torch.no_grad():
        features = mine.forward_features(clips)
        logits = mine(clips)
        theirs.train()  # no dropout or drop-path: train mode is the same net without the eval-mode softmax
        their_logits, intermediates = theirs(clips, return_intermediates=True)
        theirs.eval()
    assert logits.shape == (2, 5)
    assert max_abs_diff(logits, their_logits) <= TOL
    shapes = [(2, 2, 16, 24, 8), (2, 2, 8, 12, 16), (2, 2, 4, 6, 32), (2, 2, 2, 3, 64)]  # t = 2 at every stage
    assert [tuple(s.shape) for s in features.stages] == shapes
    for mine_stage, their_stage in zip(features.stages, intermediates, strict=True):
        assert max_abs_diff(mine_stage, their_stage) <= TOL


def test_masked_video_encoder_keeps_the_same_units_and_features_as_official(video_pair, clips):
    mine, theirs = video_pair
    torch.manual_seed(1)
    keep = theirs.get_random_mask(clips, 0.6)  # official: (B, 12) bool, True = KEEP; int(12 * 0.4) = 4 kept
    with torch.no_grad():
        _, intermediates = theirs(clips, mask=keep, return_intermediates=True)
        stages = mine.forward_features(clips, mask=(~keep).float()).stages  # ours: 1 = removed
    assert [tuple(s.shape) for s in stages] == [(2, 4, 1, 8, 8, 8), (2, 4, 1, 4, 4, 16), (2, 4, 1, 2, 2, 32),
                                                (2, 4, 1, 1, 1, 64)]  # units one token frame deep
    for mine_stage, their_stage in zip(stages, intermediates, strict=True):
        assert max_abs_diff(mine_stage, their_stage) <= TOL


@pytest.fixture(scope="module")
def video_mae_pair() -> tuple[MaskedAutoencoderHiera, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = official.MaskedAutoencoderHiera(**SMALL_VIDEO_MAE, q_pool=2).eval()
    mine = MaskedAutoencoderHiera(**SMALL_VIDEO_MAE).eval()
    assert list(mine.state_dict()) == list(theirs.state_dict())
    mine.load_state_dict(theirs.state_dict(), strict=True)
    return mine, theirs


def test_video_mae_hiera_gives_the_official_loss_predictions_and_time_strided_labels(video_mae_pair, clips):
    mine, theirs = video_mae_pair
    torch.manual_seed(2)
    keep = theirs.get_random_mask(clips, 0.6)  # True = KEEP
    with torch.no_grad():
        loss, pred, label, _ = theirs(clips, mask=keep)
        out = mine(clips, mask=(~keep).float())  # the one conversion: ours is 1 = removed
    removed = out.mask.bool()
    assert out.pred.shape == out.target.shape == (2, 2 * 4 * 6, 16 * 16 * 3)  # t x 4 x 6 patches of one frame
    assert int(removed.sum()) == 2 * 8 * 4  # 8 of 12 units removed, 1 x 2 x 2 prediction patches each
    assert abs(out.loss.item() - loss.item()) <= TOL
    assert max_abs_diff(out.pred[removed], pred) <= TOL
    assert max_abs_diff(out.target[removed], label) <= TOL


def test_video_mae_hiera_draws_the_official_mask_for_the_same_seed_and_ratio(video_mae_pair, clips):
    mine, theirs = video_mae_pair
    torch.manual_seed(3)
    keep = theirs.get_random_mask(clips, 0.6)  # the official forward's default draw, True = KEEP
    torch.manual_seed(3)
    with torch.no_grad():
        out = mine(clips, 0.6)  # drawn inside
    assert torch.equal(out.units.bool(), ~keep)
    assert out.units.sum(1).tolist() == [8.0, 8.0]


def test_the_default_mask_ratio_follows_the_model_video_0_9_images_0_6(video_mae_pair, clips):
    """Hiera Table 3b: 0.9 is best for video, 0.6 for images; the official forward uses 0.6 for both."""
    mine, theirs = video_mae_pair
    assert mine.default_mask_ratio == 0.9
    torch.manual_seed(4)
    keep = theirs.get_random_mask(clips, 0.9)
    torch.manual_seed(4)
    with torch.no_grad():
        out = mine(clips)  # no ratio given: the video default
    assert torch.equal(out.units.bool(), ~keep)
    assert out.units.sum(1).tolist() == [11.0, 11.0]  # 12 units, int(12 * 0.1) = 1 kept
    image_model = ours.mae_hiera_tiny_224(input_size=(64, 64), embed_dim=8, stages=(1, 1, 1, 1), decoder_depth=1)
    assert image_model.default_mask_ratio == 0.6
    with torch.no_grad():
        assert image_model(torch.zeros(1, 3, 64, 64)).units.sum().item() == 4 - int(4 * 0.4)


@pytest.mark.parametrize("name", VIDEO_FACTORIES + [f"mae_{n}" for n in VIDEO_FACTORIES])
def test_every_video_size_has_the_official_keys_shapes_and_schedule(name, official_on_meta):
    with torch.device("meta"):
        mine = getattr(ours, name)()
        theirs = getattr(official, name)()
    assert {k: tuple(v.shape) for k, v in mine.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    assert mine.tokens_spatial_shape == tuple(theirs.tokens_spatial_shape) == (8, 56, 56)
    assert mine.mask_spatial_shape == tuple(theirs.mask_spatial_shape) == (8, 7, 7)
    for a, b in zip(mine.blocks, theirs.blocks, strict=True):
        assert (a.attn.heads, a.attn.q_stride, a.attn.window_size, a.attn.use_mask_unit_attn) == (
            b.attn.heads, b.attn.q_stride, b.attn.window_size, b.attn.use_mask_unit_attn)


@settings(max_examples=20, deadline=None)
@given(grid=st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3), st.integers(0, 3)), C=st.integers(1, 2))
def test_reroll_undoes_unroll_exactly_on_a_video_grid(grid, C):
    t, uh, uw, steps = grid
    size = (t, uh * 2**steps, uw * 2**steps)
    strides = [(1, 2, 2)] * steps
    x = torch.randn(2, math.prod(size), C)
    assert torch.equal(reroll(unroll(x, size, strides), size, strides), x)
    assert torch.equal(unroll(reroll(x, size, strides), size, strides), x)


@settings(max_examples=20, deadline=None)
@given(grid=st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3)))
def test_a_video_mask_unit_is_one_token_frame_deep_and_one_column_and_pooling_is_a_1x2x2_max_pool(grid):
    t, uh, uw, steps = grid
    k = 2**steps
    h, w, U = uh * k, uw * k, t * uh * uw
    frames, rows, cols = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    unit_of_token = (frames * uh * uw + (rows // k) * uw + cols // k).reshape(1, -1, 1)  # raster id of the unit
    strides = [(1, 2, 2)] * steps
    order = unroll(unit_of_token, (t, h, w), strides).reshape(k * k, U)  # (T, U)
    assert torch.equal(order, torch.arange(U).expand(k * k, -1))  # column u holds unit u only
    x = torch.randn(1, t * h * w, 3)
    pooled = pool_tokens(unroll(x, (t, h, w), strides), 4)  # reshape (1, 4, N/4, C) + max
    clip = x.reshape(1, t, h, w, 3).permute(0, 4, 1, 2, 3)  # (1, C, t, h, w)
    expected = F.max_pool3d(clip, (1, 2, 2)).permute(0, 2, 3, 4, 1).reshape(1, -1, 3)  # raster, frames untouched
    assert torch.equal(reroll(pooled, (t, h // 2, w // 2), strides[1:]), expected)


def test_forward_backward_reaches_every_parameter_of_video_hiera_and_mae_hiera(clips):
    torch.manual_seed(0)
    for model in (Hiera(**SMALL_VIDEO, num_classes=5), MaskedAutoencoderHiera(**SMALL_VIDEO_MAE)):
        model.train()
        out = model(clips)
        loss = out.square().mean() if isinstance(out, Tensor) else out.loss
        loss.backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("config", "kwargs", "message"),
    [
        (SMALL_VIDEO, dict(input_size=(5, 64, 96)),
         r"input_size=\(5, 64, 96\) is not a multiple of patch_stride \* mask_unit_size = \(2, 32, 32\) \(frames, "),
        (SMALL_VIDEO, dict(q_stride=(2, 2)), r"q_stride=\(2, 2\) has 2 entries but input_size=\(4, 64, 96\) has 3"),
        (SMALL_VIDEO, dict(patch_padding=(0, 3, 3)), r"patch_padding=\(0, 3, 3\) .* makes a \(1, 16, 24\) token grid"),
        (SMALL_VIDEO, dict(input_size=(2, 4, 64, 96)), r"input_size=\(2, 4, 64, 96\); expected \(H, W\) for images"),
        (SMALL, dict(sep_pos_embed=True), r"sep_pos_embed=True with input_size=\(64, 64\); expected a video input_size"),
    ],
)
def test_video_sizes_that_do_not_fit_are_refused(config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Hiera(**{**config, **kwargs})


@pytest.mark.parametrize(
    ("config", "imgs", "kwargs", "message"),
    [
        (SMALL_VIDEO_MAE, torch.zeros(1, 3, 64, 96), {},
         r"imgs has shape \(1, 3, 64, 96\); expected \(B, 3, 4, 64, 96\) .*this is a video model"),
        (SMALL_VIDEO_MAE, torch.zeros(1, 3, 6, 64, 96), {},
         r"imgs has shape \(1, 3, 6, 64, 96\).* the clip has F=6 frames but the model was built for F=4"),
        (SMALL_VIDEO_MAE, torch.zeros(1, 3, 4, 64, 96), {"mask": torch.zeros(1, 8)},
         r"mask has shape \(1, 8\); expected \(B, U\) = \(1, 12\): one value per mask unit of the 2 x 2 x 3 unit grid"),
        (SMALL_MAE, torch.zeros(1, 3, 4, 64, 64), {}, r"imgs has shape \(1, 3, 4, 64, 64\).* this is an image model"),
    ],
)
def test_a_clip_given_to_an_image_model_or_the_wrong_clip_is_a_value_error(config, imgs, kwargs, message):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=message):
        MaskedAutoencoderHiera(**config)(imgs, **kwargs)


def test_video_token_functions_name_a_stride_that_does_not_fit_the_grid():
    with pytest.raises(ValueError, match=r"strides\[0\]=\(2, 2\) has 2 entries but grid_size=\(2, 8, 8\) has 3 axes"):
        unroll(torch.zeros(1, 128, 2), (2, 8, 8), [(2, 2)])
    with pytest.raises(ValueError, match=r"ndim=2 but the strides \[\(1, 2, 2\)\] have 3 entries each"):
        reroll_units(torch.zeros(1, 8, 2), [(1, 2, 2)], ndim=2)
    with pytest.raises(TypeError, match=r"imgs must be a torch.Tensor of shape \(B, C, F, H, W\), got list"):
        Hiera(**SMALL_VIDEO)([0.0])


def test_given_noise_fixes_the_mae_hiera_mask_and_equals_the_default_draw_of_the_same_seed():
    torch.manual_seed(0)
    model = MaskedAutoencoderHiera(**{**SMALL_MAE, "input_size": (128, 128)})  # 4 x 4 = 16 mask units
    imgs = torch.randn(2, 3, 128, 128)
    U = model.num_mask_units
    noise = torch.rand(2, U)
    a, b = model(imgs, 0.75, noise=noise), model(imgs, 0.75, noise=noise.clone())
    assert torch.equal(a.units, b.units) and torch.equal(a.loss, b.loss)  # same noise, same mask, same loss
    kept = a.units == 0
    assert kept.sum(1).tolist() == [4, 4]  # int(16 * 0.25) kept per sample: those of the smallest noise
    assert torch.equal(noise.argsort(1)[:, :4].sort(1).values, kept.nonzero()[:, 1].reshape(2, 4))
    torch.manual_seed(5)
    drawn = model(imgs, 0.75)  # the default path draws torch.rand(B, U) itself
    torch.manual_seed(5)
    given = model(imgs, 0.75, noise=torch.rand(2, U))
    assert torch.equal(drawn.units, given.units) and torch.equal(drawn.loss, given.loss)
    with pytest.raises(ValueError, match=r"noise has shape \(2, 15\) .*expected a floating \(B, U\) = \(2, 16\)"):
        model(imgs, 0.75, noise=torch.rand(2, 15))
    with pytest.raises(ValueError, match="noise and mask are both given"):
        model(imgs, mask=a.units, noise=noise)


def test_the_mae_hiera_training_step_compiles_to_one_graph_with_the_same_loss_and_gradients():
    """``torch.compile`` (``mae-pretrain`` on CUDA) must trace MAE-Hiera without a graph break.

    The mask's checks read its values and its kept count would be data, so in the drawn-mask path
    the count comes from ``mask_ratio``, the value checks run in eager only and the loss is a
    weighted mean rather than a boolean index. ``torch._dynamo.explain`` counts the breaks (here
    ``fullgraph=True`` lets a data-dependent shape through); ``aot_eager`` then traces forward and
    backward like Inductor, with eager kernels. (Video takes the same code with 3-entry sizes.)
    """
    eager, compiled_copy, imgs, noise = twin_mae_hieras("cpu", batch=2)
    report = torch._dynamo.explain(compiled_copy)(imgs, 0.6, noise=noise)
    assert report.graph_break_count == 0, [b.reason.splitlines()[0] for b in report.break_reasons]
    torch._dynamo.reset()
    compiled = torch.compile(compiled_copy, backend="aot_eager", fullgraph=True)
    assert_same_step(eager, compiled, compiled_copy, imgs, noise, loss_tol=(0, TOL), grad_tol=(1e-4, TOL))


def twin_mae_hieras(device: str, batch: int) -> tuple[MaskedAutoencoderHiera, MaskedAutoencoderHiera, Tensor, Tensor]:
    """Two ``SMALL_MAE`` models with the same weights on ``device``, a batch of images and its noise."""
    torch.manual_seed(0)
    eager = MaskedAutoencoderHiera(**SMALL_MAE).to(device).train()
    copy = MaskedAutoencoderHiera(**SMALL_MAE).to(device).train()
    copy.load_state_dict(eager.state_dict())
    imgs = torch.randn(batch, 3, *SMALL_MAE["input_size"], device=device)
    return eager, copy, imgs, torch.rand(batch, eager.num_mask_units, device=device)


def assert_same_step(eager: torch.nn.Module, compiled: torch.nn.Module, compiled_copy: torch.nn.Module,
                     imgs: Tensor, noise: Tensor, loss_tol: tuple[float, float], grad_tol: tuple[float, float]) -> None:
    """One forward and backward of each: the same loss and every parameter's gradient, ``(rtol, atol)``."""
    loss = eager(imgs, 0.6, noise=noise).loss
    loss.backward()
    compiled_loss = compiled(imgs, 0.6, noise=noise).loss
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, loss, rtol=loss_tol[0], atol=loss_tol[1])
    for (name, p), q in zip(eager.named_parameters(), compiled_copy.parameters(), strict=True):
        assert q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, rtol=grad_tol[0], atol=grad_tol[1], msg=name)


@pytest.mark.gpu
def test_on_cuda_inductor_compiles_the_mae_hiera_step_to_the_eager_loss_and_gradients():
    """What ``mae-pretrain`` runs by default on CUDA: the whole step compiled by Inductor, in one graph."""
    eager, compiled_copy, imgs, noise = twin_mae_hieras("cuda", batch=4)
    compiled = torch.compile(compiled_copy, fullgraph=True)
    assert_same_step(eager, compiled, compiled_copy, imgs, noise, loss_tol=(1e-4, 1e-5), grad_tol=(1e-3, 1e-4))


@contextlib.contextmanager
def value_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the tensor methods that read a value (on a GPU: wait for it) called inside."""
    reads: list[str] = []
    with monkeypatch.context() as patch:
        for name in ("__bool__", "__int__", "__float__", "__index__", "item", "tolist"):
            def counted(self, *args, _original=getattr(torch.Tensor, name), _name=name, **kwargs):
                reads.append(_name)
                return _original(self, *args, **kwargs)

            patch.setattr(torch.Tensor, name, counted)
        yield reads


def test_the_training_forward_reads_no_tensor_value_and_a_given_mask_is_checked_once(monkeypatch):
    """Reading a value (``bool(t)``, ``int(t)``, ``t.item()``) makes the host wait for the GPU.

    With a drawn mask (what the trainer runs, eager or compiled) the forward pass reads none; a
    given mask is checked once, by ``forward``, not again by ``forward_features`` or ``ids_from_mask``.
    """
    torch.manual_seed(0)
    model = MaskedAutoencoderHiera(**SMALL_MAE)
    imgs, noise = torch.randn(2, 3, *SMALL_MAE["input_size"]), torch.rand(2, model.num_mask_units)
    mask = model(imgs, 0.6, noise=noise).units
    with value_reads(monkeypatch) as drawn:
        model(imgs, 0.6, noise=noise)
    with value_reads(monkeypatch) as one_check:
        model._check_mask(mask, 2)
    with value_reads(monkeypatch) as given:
        model(imgs, mask=mask)
    assert drawn == []
    assert len(one_check) > 0 and len(given) == len(one_check) + 1  # the check, then the count


# --- checks at the door: each input once per call -------------------------------------------

IMAGE_FACTORIES = FACTORIES + [f"mae_{n}" for n in FACTORIES]
TINY = dict(input_size=(64, 64), embed_dim=8, stages=(1, 1, 1, 1))
TINY_VIDEO = dict(TINY, input_size=(4, 64, 64))


def _entry_points() -> dict[str, object]:
    """Every public call of Hiera, MAE-Hiera, the named configs and the token order, on valid input."""
    torch.manual_seed(0)
    model, mae = Hiera(**SMALL, num_classes=3), MaskedAutoencoderHiera(**SMALL_MAE)
    imgs, noise, mask = torch.randn(2, 3, 64, 64), torch.rand(2, 4), torch.tensor([[1.0, 1, 0, 0], [0, 1, 1, 0]])
    tokens = torch.randn(2, 64, 3)
    calls = {
        "Hiera.forward": lambda: model(imgs),
        "Hiera.forward_features": lambda: model.forward_features(imgs),
        "Hiera.forward_features with a mask": lambda: model.forward_features(imgs, mask),
        "MaskedAutoencoderHiera.forward": lambda: mae(imgs),
        "MaskedAutoencoderHiera.forward with noise": lambda: mae(imgs, 0.5, noise=noise),
        "MaskedAutoencoderHiera.forward with a mask": lambda: mae(imgs, mask=mask),
        "MaskedAutoencoderHiera.forward_encoder": lambda: mae.forward_encoder(imgs, mask),
        "HieraConfig": lambda: ours.HieraConfig(**TINY_VIDEO, q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8),
                                                patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4),
                                                patch_padding=(1, 3, 3)),
        "Hiera()": lambda: Hiera(**SMALL, num_classes=3),
        "hiera_encoder_state": lambda: ours.hiera_encoder_state(mae.state_dict()),
        "unroll": lambda: unroll(tokens, (8, 8), [(2, 2)] * 2),
        "reroll": lambda: reroll(tokens, (8, 8), [(2, 2)] * 2),
        "reroll_units": lambda: reroll_units(tokens, [(2, 2)] * 2),
        "pool_tokens": lambda: pool_tokens(tokens, 4),
    }
    for name in IMAGE_FACTORIES:
        calls[name] = lambda name=name: getattr(ours, name)(**TINY)
    for name in VIDEO_FACTORIES + [f"mae_{n}" for n in VIDEO_FACTORIES]:
        calls[name] = lambda name=name: getattr(ours, name)(**TINY_VIDEO)
    return calls


@pytest.mark.parametrize("entry", list(_entry_points()))
def test_each_argument_of_a_public_hiera_call_is_checked_at_most_once(entry):
    assert checked_twice(_entry_points()[entry]) == {}


def test_a_model_keeps_its_validated_config_and_builds_the_same_from_it():
    model = MaskedAutoencoderHiera(**SMALL_MAE)
    assert model.config == ours.HieraConfig(**SMALL, q_pool=2)
    assert model.config.mask_spatial_shape == model.mask_spatial_shape == (2, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.embed_dim = 32  # frozen: a config that was checked stays as checked
