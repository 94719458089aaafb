"""Tests for refimpl.vit and refimpl.pos_embed: parity with timm and transformers, contracts, errors."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer
from torch import Tensor
from transformers.models.vit_mae.modeling_vit_mae import (
    ViTMAEConfig,
    ViTMAEEmbeddings,
    build_2d_sinusoidal_position_embedding,
)

from refimpl import vit
from refimpl.pos_embed import get_1d_sincos_pos_embed, get_2d_sincos_pos_embed
from refimpl.vit import Attention, Block, PatchEmbed, VisionTransformer, vit_tiny_patch16_224

from conftest import max_abs_diff

FACTORIES = [
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_large_patch16_224",
    "vit_huge_patch14_224",
]
TOL = 1e-5


@pytest.fixture(scope="module")
def images() -> Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))  # (B, C, H, W)


# --- parity with timm ------------------------------------------------------------------


@pytest.mark.parametrize("global_pool", ["token", "avg"])
def test_timm_weights_load_strictly_and_give_the_same_logits(global_pool, images):
    torch.manual_seed(0)
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False, global_pool=global_pool).eval()
    ours = vit_tiny_patch16_224(global_pool=global_pool).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        ours_features, theirs_features = ours.forward_features(images), theirs.forward_features(images)
        assert ours_features.shape == (2, 197, 192)
        assert max_abs_diff(ours_features, theirs_features) <= TOL
        logits = ours.forward_head(ours_features)
        assert logits.shape == (2, 1000)
        assert max_abs_diff(logits, theirs.forward_head(theirs_features)) <= TOL


def test_sincos_model_loads_into_timm_and_gives_the_same_logits(images):
    # timm has no fixed sin-cos option; its learnable pos_embed takes ours under the same key.
    torch.manual_seed(0)
    ours = vit_tiny_patch16_224(pos_embed="sincos").eval()
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    with torch.no_grad():
        ours_features, theirs_features = ours.forward_features(images), theirs.forward_features(images)
        assert max_abs_diff(ours_features, theirs_features) <= TOL
        assert max_abs_diff(ours.forward_head(ours_features), theirs.forward_head(theirs_features)) <= TOL


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_on_cuda_features_and_logits_match_timm(dtype, images):
    """On a GPU the fused attention is a flash / memory-efficient kernel: still timm's numbers."""
    torch.manual_seed(0)
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False).cuda().eval()
    ours = vit_tiny_patch16_224().cuda().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = images.cuda()
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        ours_features, theirs_features = ours.forward_features(x), theirs.forward_features(x)
        logits, their_logits = ours.forward_head(ours_features), theirs.forward_head(theirs_features)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(ours_features.float(), theirs_features.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(logits.float(), their_logits.float(), rtol=tol, atol=tol)


def test_explicit_softmax_attention_equals_the_fused_kernel(images):
    torch.manual_seed(0)
    fused = vit_tiny_patch16_224(fused_attn=True).eval()
    explicit = vit_tiny_patch16_224(fused_attn=False).eval()
    explicit.load_state_dict(fused.state_dict(), strict=True)
    with torch.no_grad():
        assert max_abs_diff(fused(images), explicit(images)) <= TOL


def test_attention_module_alone_matches_timm_attention():
    from timm.layers import Attention as TimmAttention

    torch.manual_seed(0)
    theirs = TimmAttention(64, num_heads=4, qkv_bias=True).eval()
    ours = Attention(64, num_heads=4, fused_attn=False)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(3, 7, 64)  # (B, N, D)
    with torch.no_grad():
        assert max_abs_diff(ours(x), theirs(x)) <= TOL


# --- contracts over every named config ---------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
def test_factory_state_dict_has_timms_keys_and_shapes(name):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        ours = getattr(vit, name)().state_dict()
        # timm's vit_huge_patch14_224 defaults to num_classes=0 (its pretrained tag is in21k
        # features); ask for the 1000-class head our factories build.
        theirs = timm.create_model(name, pretrained=False, num_classes=1000).state_dict()
    assert list(ours) == list(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


@pytest.mark.parametrize("name", FACTORIES)
def test_factory_kwargs_override_the_named_config(name):
    with torch.device("meta"):
        model = getattr(vit, name)(num_classes=0, global_pool="avg", pos_embed="sincos")
    assert isinstance(model.head, torch.nn.Identity)
    assert isinstance(model.norm, torch.nn.Identity)
    assert isinstance(model.fc_norm, torch.nn.LayerNorm)
    assert not model.pos_embed.requires_grad


def test_tiny_forward_backward_reaches_every_trainable_parameter(images):
    torch.manual_seed(0)
    model = vit_tiny_patch16_224(num_classes=10, drop_path_rate=0.1).train()
    out = model(images)
    assert out.shape == (2, 10)
    out.square().mean().backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_sincos_pos_embed_is_fixed_kept_in_the_state_dict_and_zero_for_the_class_token():
    model = VisionTransformer(
        img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, pos_embed="sincos"
    )
    assert not model.pos_embed.requires_grad
    assert "pos_embed" in model.state_dict()
    assert torch.equal(model.pos_embed[0], get_2d_sincos_pos_embed(32, 4, cls_token=True))
    assert torch.equal(model.pos_embed[0, 0], torch.zeros(32))


def test_encoder_keys_are_the_official_mae_encoder_names():
    # MAE's encoder (models_mae.py) = cls_token, pos_embed, timm's PatchEmbed and Blocks, norm.
    depth = 2
    model = VisionTransformer(
        img_size=32, embed_dim=64, depth=depth, num_heads=4, num_classes=0, pos_embed="sincos"
    )
    block = [
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
        "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
        "mlp.fc2.weight", "mlp.fc2.bias",
    ]
    expected = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    expected += [f"blocks.{i}.{key}" for i in range(depth) for key in block]
    expected += ["norm.weight", "norm.bias"]
    assert list(model.state_dict()) == expected


def test_drop_path_is_the_identity_in_eval_mode_and_random_per_sample_in_training():
    torch.manual_seed(0)
    block = Block(16, num_heads=2, drop_path=0.5)
    x = torch.randn(64, 5, 16)  # (B, N, D)
    plain = Block(16, num_heads=2)
    plain.load_state_dict(block.state_dict())
    assert torch.equal(block.eval()(x), plain.eval()(x))
    branch = block.drop_path.train()(torch.ones(64, 5, 16))
    per_sample = branch[:, 0, 0]
    assert set(per_sample.tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
    assert torch.equal(branch, per_sample[:, None, None].expand_as(branch))


def test_patch_embed_is_a_linear_map_of_each_flattened_patch():
    from refimpl.masking import patchify

    torch.manual_seed(0)
    embed = PatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=20)
    x = torch.randn(2, 3, 32, 32)  # (B, C, H, W)
    E = embed.proj.weight.permute(0, 2, 3, 1).reshape(20, -1)  # (D, p*p*C), MAE patch order
    expected = patchify(x, 8) @ E.T + embed.proj.bias  # (B, L, D)
    assert torch.allclose(embed(x), expected, atol=1e-5)


# --- 2-D sin-cos position embedding --------------------------------------------------------


def sincos_by_loop(embed_dim: int, h: int, w: int) -> list[list[float]]:
    """Obviously-correct MAE embedding: one position and one channel at a time.

    Channel ``j`` of cell ``(r, c)``: the first half of the channels uses the column ``c``,
    the second half the row ``r``; inside a half, the first quarter-width is
    ``sin(pos * omega_k)`` and the next ``cos(pos * omega_k)``, ``omega_k = 1 / 10000^(k / (D/4))``.
    """
    quarter = embed_dim // 4
    rows = []
    for i in range(h * w):
        r, c = divmod(i, w)
        row = []
        for j in range(embed_dim):
            pos = c if j < 2 * quarter else r
            jj = j % (2 * quarter)
            k = jj % quarter
            fn = math.sin if jj < quarter else math.cos
            row.append(fn(pos / 10000 ** (k / quarter)))
        rows.append(row)
    return rows


@pytest.mark.parametrize("grid", [14, (3, 5)])
def test_2d_sincos_matches_the_loop_reference(grid):
    h, w = (grid, grid) if isinstance(grid, int) else grid
    expected = torch.tensor(sincos_by_loop(64, h, w), dtype=torch.float64)  # (h*w, D)
    pe = get_2d_sincos_pos_embed(64, grid, cls_token=True)
    assert pe.dtype == torch.float32 and pe.shape == (1 + h * w, 64)
    assert torch.equal(pe[0], torch.zeros(64))
    assert max_abs_diff(pe[1:].double(), expected) <= 1e-6


@pytest.mark.parametrize("grid", [14, (3, 5)])
def test_2d_sincos_matches_transformers_vit_mae_with_its_halves_swapped(grid):
    # transformers >= 5 builds [sin_h|cos_h|sin_w|cos_w] and rotates the halves to MAE's order
    # in ViTMAEEmbeddings.initialize_weights; do the same rotation here.
    h, w = (grid, grid) if isinstance(grid, int) else grid
    theirs = build_2d_sinusoidal_position_embedding(h, w, embed_dim=64, cls_token=True)
    theirs = torch.cat([theirs[:, 32:], theirs[:, :32]], dim=1)  # (1 + h*w, D)
    assert max_abs_diff(get_2d_sincos_pos_embed(64, grid, cls_token=True), theirs) <= 1e-6


def test_2d_sincos_equals_transformers_vit_mae_initialised_position_embeddings():
    config = ViTMAEConfig(hidden_size=64, image_size=56, patch_size=4)  # 14 x 14 grid
    embeddings = ViTMAEEmbeddings(config)
    embeddings.initialize_weights()
    theirs = embeddings.position_embeddings.detach()[0]  # (1 + L, D)
    assert max_abs_diff(get_2d_sincos_pos_embed(64, 14, cls_token=True), theirs) <= 1e-6


def test_first_half_encodes_the_column_and_second_half_the_row():
    pe = get_2d_sincos_pos_embed(64, (3, 5)).reshape(3, 5, 64)  # (h, w, D)
    channel0, channel32 = pe[..., 0], pe[..., 32]  # sin(column), sin(row)
    assert torch.equal(channel0, channel0[:1].expand(3, 5))  # same in every row
    assert len(set(channel0[0].tolist())) == 5  # changes along the row
    assert torch.equal(channel32, channel32[:, :1].expand(3, 5))  # same in every column
    assert len(set(channel32[:, 0].tolist())) == 3


def test_1d_sincos_is_sin_then_cos_of_the_scaled_positions():
    positions = torch.tensor([[0.0, 3.0], [7.0, 100.0]])  # any shape, flattened
    pe = get_1d_sincos_pos_embed(8, positions)
    omega = 1.0 / 10000 ** (torch.arange(4, dtype=torch.float64) / 4)
    angles = torch.tensor([0.0, 3.0, 7.0, 100.0], dtype=torch.float64)[:, None] * omega  # (M, D/2)
    assert pe.shape == (4, 8) and pe.dtype == torch.float32
    assert max_abs_diff(pe.double(), torch.cat([angles.sin(), angles.cos()], dim=1)) <= 1e-6


# --- bad inputs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model() -> VisionTransformer:
    return VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=1, num_heads=2, num_classes=3)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(3, 32, 32), r"x has shape \(3, 32, 32\) \(3-D\); expected a 4-D"),
        (torch.zeros(1, 1, 32, 32), r"x has 1 channels .*expected in_chans=3"),
        (torch.zeros(1, 3, 48, 48), r"x has image size \(48, 48\); expected img_size=32"),
        (torch.zeros(1, 3, 32, 40), r"x has image size \(32, 40\); expected img_size=32"),
    ],
)
def test_bad_images_raise_value_error_naming_x(small_model, x, match):
    with pytest.raises(ValueError, match=match):
        small_model(x)


def test_non_tensor_image_raises_type_error(small_model):
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        small_model([[0.0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(pos_embed="cos"), r"pos_embed='cos' is not supported"),
        (dict(global_pool="max"), r"global_pool='max' is not supported"),
        (dict(img_size=40), r"img_size=40 is not divisible by patch_size=16"),
        (dict(embed_dim=30, num_heads=4), r"embed_dim=30 is not divisible by num_heads=4"),
        (
            dict(embed_dim=6, num_heads=3, pos_embed="sincos"),
            r"embed_dim=6 is not a positive multiple of 4",
        ),
    ],
)
def test_bad_model_arguments_raise_value_error_naming_them(kwargs, match):
    config = dict(img_size=32, patch_size=16, embed_dim=32, depth=1, num_heads=2) | kwargs
    with pytest.raises(ValueError, match=match):
        VisionTransformer(**config)


def test_attention_rejects_a_width_that_does_not_split_into_heads():
    with pytest.raises(ValueError, match=r"dim=10 is not divisible by num_heads=3"):
        Attention(10, num_heads=3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: get_2d_sincos_pos_embed(30, 14), ValueError, r"embed_dim=30 is not a positive multiple"),
        (lambda: get_2d_sincos_pos_embed(64.0, 14), TypeError, r"embed_dim must be an int, got float"),
        (lambda: get_2d_sincos_pos_embed(64, 0), ValueError, r"grid_size\[0\]=0 is not positive"),
        (lambda: get_2d_sincos_pos_embed(64, (14,)), ValueError, r"grid_size=\(14,\) is neither"),
        (lambda: get_2d_sincos_pos_embed(64, (14, 2.5)), TypeError, r"grid_size\[1\] must be an int"),
        (
            lambda: get_1d_sincos_pos_embed(7, torch.arange(3.0)),
            ValueError,
            r"embed_dim=7 is not a positive multiple of 2",
        ),
        (lambda: get_1d_sincos_pos_embed(8, [0, 1]), TypeError, r"positions must be a torch.Tensor"),
    ],
)
def test_bad_pos_embed_arguments_raise_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the config: checked once when built, read by the model ---------------------------------


def test_a_config_is_frozen_checked_when_built_and_the_same_model_as_its_keywords():
    import dataclasses

    import numpy as np

    from refimpl.vit import ViTConfig

    config = ViTConfig(img_size=np.int64(32), patch_size=16, embed_dim=32, depth=1, num_heads=2, num_classes=3)
    assert type(config.img_size) is int  # a NumPy number is stored as a Python one
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.depth = 2
    torch.manual_seed(0)
    from_config = VisionTransformer(config)
    torch.manual_seed(0)
    from_keywords = VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=1, num_heads=2, num_classes=3)
    assert from_config.config == from_keywords.config == config
    assert all(torch.equal(a, b) for a, b in zip(from_config.state_dict().values(), from_keywords.state_dict().values()))
    assert VisionTransformer(config, depth=2).config.depth == 2  # keywords replace the config's fields
    with pytest.raises(ValueError, match=r"num_heads=0"):
        VisionTransformer(config, num_heads=0)  # and are checked too


def test_the_blocks_of_a_model_trust_its_config_and_a_block_alone_fails_in_its_first_forward():
    from einops import EinopsError

    block = Block(10, num_heads=3)  # built by a model, a block checks nothing again
    with pytest.raises(EinopsError, match=r"can't divide axis of length 30 in chunks of 9"):  # q, k, v of 3 heads
        block(torch.zeros(1, 2, 10))
