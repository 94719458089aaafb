"""MAE: exact against Hugging Face ViTMAE (which matches facebookresearch/mae), loads official files."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest
import torch

from anchors.hf_vitmae import to_hf_vitmae
from refimpl.checkpoints import (
    hf_vitmae_to_official,
    load_checkpoint,
    read_state_dict,
)
from refimpl.mae import (
    MaskedAutoencoderViT,
    mae_vit_base_patch16,
    mae_vit_huge_patch14,
    mae_vit_large_patch16,
    mae_vit_tiny_patch16,
    vit_from_mae,
)

transformers = pytest.importorskip("transformers")

SMALL = dict(img_size=64, patch_size=16, in_chans=3, embed_dim=64, depth=2, num_heads=4,
             decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0)
TOL = 1e-5


def small_mae(**kwargs: object) -> MaskedAutoencoderViT:
    torch.manual_seed(0)
    return MaskedAutoencoderViT(**{**SMALL, **kwargs}).eval()


def hf_twin(model: MaskedAutoencoderViT, mask_ratio: float = 0.75) -> object:
    return to_hf_vitmae(model, mask_ratio).eval()


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_matches_hugging_face_vitmae_with_the_same_weights_and_noise(norm_pix_loss: bool) -> None:
    ours = small_mae(norm_pix_loss=norm_pix_loss)
    hf = hf_twin(ours)
    torch.manual_seed(1)
    imgs = torch.randn(3, 3, 64, 64)
    noise = torch.rand(3, ours.num_patches)
    with torch.no_grad():
        out = ours(imgs, mask_ratio=0.75, noise=noise)
        _, _, ids_restore = ours.forward_encoder(imgs, 0.75, noise)
        ref = hf(pixel_values=imgs, noise=noise)
    assert torch.equal(out.mask, ref.mask)
    assert torch.equal(ids_restore, ref.ids_restore)
    assert (out.pred - ref.logits).abs().max().item() <= TOL
    assert abs(out.loss.item() - ref.loss.item()) <= TOL


def test_hugging_face_weights_map_back_to_official_names_exactly() -> None:
    ours = small_mae()
    hf = hf_twin(ours)
    back = hf_vitmae_to_official(hf.state_dict())
    assert set(back) == set(ours.state_dict())
    assert all(torch.equal(back[k], v) for k, v in ours.state_dict().items())


def test_same_noise_same_mask_and_per_sample_masks_differ() -> None:
    model = small_mae()
    imgs = torch.randn(4, 3, 64, 64)
    noise = torch.rand(4, model.num_patches)
    with torch.no_grad():
        a = model(imgs, noise=noise).mask
        b = model(imgs, noise=noise.clone()).mask
    assert torch.equal(a, b)
    assert a.sum(1).tolist() == [12.0] * 4  # 16 patches, int(16 * 0.25) = 4 kept
    assert len({tuple(row.tolist()) for row in a}) > 1


def test_forward_backward_reaches_every_trainable_parameter_and_position_embeddings_stay_fixed() -> None:
    model = mae_vit_tiny_patch16(img_size=64, depth=2, decoder_depth=1).train()
    loss = model(torch.randn(2, 3, 64, 64)).loss
    loss.backward()
    assert torch.isfinite(loss)
    for name, param in model.named_parameters():
        if name in ("pos_embed", "decoder_pos_embed"):
            assert not param.requires_grad and param.grad is None
        else:
            assert param.requires_grad and param.grad is not None and param.grad.abs().sum() > 0, name


def test_position_embeddings_are_the_fixed_sincos_ones() -> None:
    from refimpl.pos_embed import get_2d_sincos_pos_embed

    model = small_mae()
    assert torch.equal(model.pos_embed[0], get_2d_sincos_pos_embed(64, 4, cls_token=True))
    assert torch.equal(model.decoder_pos_embed[0], get_2d_sincos_pos_embed(32, 4, cls_token=True))
    assert torch.equal(model.pos_embed[0, 0], torch.zeros(64))


def test_the_pretrained_encoder_becomes_a_vision_transformer() -> None:
    mae = small_mae()
    vit = vit_from_mae(mae, num_classes=10, global_pool="token").eval()
    imgs = torch.randn(2, 3, 64, 64)
    identity_order = torch.arange(mae.num_patches, dtype=torch.float32).expand(2, -1)
    with torch.no_grad():
        latent = mae.forward_encoder(imgs, 0.0, identity_order).latent  # nothing removed, order kept
        features = vit.forward_features(imgs)
    assert (latent - features).abs().max().item() <= TOL
    assert vit(imgs).shape == (2, 10)
    assert vit.pos_embed.requires_grad  # fine-tuning trains it


@pytest.mark.parametrize(
    ("factory", "dims"),
    [(mae_vit_base_patch16, (768, 12, 16)), (mae_vit_large_patch16, (1024, 24, 16)), (mae_vit_huge_patch14, (1280, 32, 14))],
)
def test_published_configs_have_the_official_keys_and_shapes(factory, dims) -> None:
    width, depth, patch = dims
    with torch.device("meta"):
        ours = factory()
        hf = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(
            hidden_size=width, num_hidden_layers=depth, num_attention_heads=16 if width > 768 else 12,
            intermediate_size=4 * width, patch_size=patch, decoder_hidden_size=512, decoder_num_hidden_layers=8,
            decoder_num_attention_heads=16, decoder_intermediate_size=2048))
    expected = {k: tuple(v.shape) for k, v in hf_vitmae_to_official(hf.state_dict()).items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == expected
    assert ours.blocks[0].attn.num_heads == (16 if width > 768 else 12)
    assert (ours.mask_token.shape[-1], len(ours.decoder_blocks), ours.decoder_blocks[0].attn.num_heads) == (512, 8, 16)


# --- loading files -------------------------------------------------------------------------------

def test_official_full_checkpoint_with_run_arguments_loads_strictly(tmp_path: Path) -> None:
    source = small_mae()
    path = tmp_path / "mae_visualize_vit_small.pth"
    torch.save({"model": source.state_dict(), "args": argparse.Namespace(lr=1.5e-4, mask_ratio=0.75), "epoch": 799}, path)
    target = MaskedAutoencoderViT(**SMALL)
    report = load_checkpoint(target, path, strict=True)
    assert report.missing == []
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_encoder_only_pretrain_file_loads_into_a_full_mae_and_reports_the_decoder(tmp_path: Path) -> None:
    source = small_mae()
    path = tmp_path / "mae_pretrain_vit_small.pth"
    torch.save({"model": source.encoder_state_dict()}, path)
    target = MaskedAutoencoderViT(**SMALL)
    report = load_checkpoint(target, path)
    assert report.missing and all(k.startswith(("decoder_", "mask_token")) for k in report.missing)
    assert "encoder-only checkpoint" in str(report)
    assert torch.equal(target.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)
    with pytest.raises(ValueError, match="lacks"):
        load_checkpoint(MaskedAutoencoderViT(**SMALL), path, strict=True)


def test_hugging_face_safetensors_file_loads(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = small_mae()
    hf = hf_twin(source)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(path))
    target = MaskedAutoencoderViT(**SMALL)
    load_checkpoint(target, path, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_checkpoint_of_another_architecture_is_refused_and_model_left_unchanged(tmp_path: Path) -> None:
    other = MaskedAutoencoderViT(**{**SMALL, "embed_dim": 96, "num_heads": 4})
    path = tmp_path / "other.pth"
    torch.save({"model": other.state_dict()}, path)
    target = small_mae()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match=r"has shape \(1, 1, 96\) in the file, expected \(1, 1, 64\)"):
        load_checkpoint(target, path)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    torch.save({"model": {"head.weight": torch.zeros(10, 64)}}, path)
    with pytest.raises(ValueError, match="keys the model does not have"):
        load_checkpoint(target, path)


class _Exploit:
    def __reduce__(self):  # what a malicious pickle would run on load
        return (Path.touch, (Path(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # our test pickle's protocol
def test_pickled_code_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": exploit}))
    with pytest.raises(ValueError, match="weights_only=True"):
        read_state_dict(path)
    assert not marker.exists()


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("imgs", "kwargs", "message"),
    [
        (torch.zeros(3, 64, 64), {}, r"imgs has shape \(3, 64, 64\) \(3-D\); expected a 4-D tensor"),
        (torch.zeros(1, 1, 64, 64), {}, r"imgs has shape \(1, 1, 64, 64\); expected \(B, 3, 64, 64\)"),
        (torch.zeros(1, 3, 80, 64), {}, r"imgs has shape \(1, 3, 80, 64\)"),
        (torch.zeros(1, 3, 64, 64), {"mask_ratio": 1.0}, r"mask_ratio=1.0 is outside \[0, 1\)"),
        (torch.zeros(1, 3, 64, 64), {"mask_ratio": -0.1}, r"mask_ratio=-0.1"),
        (torch.zeros(1, 3, 64, 64), {"noise": torch.rand(1, 15)}, r"noise has shape \(1, 15\); expected \(B, L\) = \(1, 16\)"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(imgs: torch.Tensor, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_mae()(imgs, **kwargs)


def test_timm_safetensors_and_our_own_checkpoints_load(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    from refimpl.checkpoints import save_checkpoint
    from refimpl.vit import vit_tiny_patch16_224

    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = tmp_path / "timm_vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, str(path))
    ours = vit_tiny_patch16_224()
    assert load_checkpoint(ours, path, strict=True).missing == []
    assert torch.equal(ours.blocks[3].mlp.fc2.weight, theirs.blocks[3].mlp.fc2.weight)

    mae = small_mae()
    for name in ("ours.pth", "ours.safetensors"):
        save_checkpoint(mae, tmp_path / name)
        again = MaskedAutoencoderViT(**SMALL)
        load_checkpoint(again, tmp_path / name, strict=True)
        assert all(torch.equal(a, b) for a, b in zip(mae.state_dict().values(), again.state_dict().values()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.pth", "ours.safetensors", "timm_vit_tiny.safetensors"]


def test_the_training_step_compiles_to_one_graph_with_the_same_loss_and_gradients() -> None:
    """``torch.compile`` (what ``mae-pretrain`` uses on CUDA) must not split the model at a graph break.

    ``fullgraph=True`` raises on any break; the ``aot_eager`` backend traces forward and backward
    like Inductor does but runs eager kernels, so this stays fast on a CPU.
    """
    eager = small_mae(norm_pix_loss=True).train()
    compiled_copy = small_mae(norm_pix_loss=True).train()
    compiled = torch.compile(compiled_copy, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)
    imgs, noise = torch.randn(2, 3, 64, 64), torch.rand(2, eager.num_patches)
    loss = eager(imgs, 0.75, noise).loss
    loss.backward()
    compiled_loss = compiled(imgs, 0.75, noise).loss
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, loss, rtol=0, atol=TOL)
    for (name, p), q in zip(eager.named_parameters(), compiled_copy.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=TOL, msg=name)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_on_cuda_matches_hugging_face_vitmae(dtype: torch.dtype) -> None:
    """The same comparison on a GPU: exact up to float32 rounding, and close under bf16 autocast."""
    ours = small_mae(norm_pix_loss=True)
    hf = hf_twin(ours).cuda()
    ours = ours.cuda()
    torch.manual_seed(1)
    imgs, noise = torch.randn(4, 3, 64, 64, device="cuda"), torch.rand(4, ours.num_patches, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        out = ours(imgs, mask_ratio=0.75, noise=noise)
        ref = hf(pixel_values=imgs, noise=noise)
    assert torch.equal(out.mask, ref.mask)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(out.pred.float(), ref.logits.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(out.loss.float(), ref.loss.float(), rtol=tol, atol=tol)


def test_the_config_names_a_decoder_width_that_does_not_split_into_heads_or_quarters():
    from refimpl.mae import MAEConfig

    with pytest.raises(ValueError, match=r"decoder_embed_dim=36 is not divisible by decoder_num_heads=8"):
        MaskedAutoencoderViT(**{**SMALL, "decoder_embed_dim": 36, "decoder_num_heads": 8})
    with pytest.raises(ValueError, match=r"decoder_embed_dim=30 is not a positive multiple of 4"):
        MAEConfig(**{**SMALL, "decoder_embed_dim": 30, "decoder_num_heads": 3})
    config = MAEConfig(**SMALL)
    assert small_mae().config == config and MaskedAutoencoderViT(config).config is not None
