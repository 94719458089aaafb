"""Measure how far refimpl is from its anchors at the published sizes (random init, same weights).

The tests check the same thing on small configs within a tolerance; this script prints the
actual maximum absolute differences for the full-size models, for the record:

    .venv/bin/python benchmarks/parity.py            # CPU, float32
    .venv/bin/python benchmarks/parity.py --device cuda
"""

from __future__ import annotations

import argparse

import torch

from refimpl import mae as mae_lib
from refimpl import vit as vit_lib
from refimpl.checkpoints import official_to_hf_vitmae


def mae_vs_hf(factory, batch: int, device: str) -> dict[str, float]:
    import transformers

    torch.manual_seed(0)
    ours = factory().to(device).eval()
    d, dd = ours.cls_token.shape[-1], ours.mask_token.shape[-1]
    config = transformers.ViTMAEConfig(
        image_size=224, patch_size=ours.patch_size, hidden_size=d, num_hidden_layers=len(ours.blocks),
        num_attention_heads=ours.blocks[0].attn.num_heads, intermediate_size=4 * d,
        decoder_hidden_size=dd, decoder_num_hidden_layers=len(ours.decoder_blocks),
        decoder_num_attention_heads=ours.decoder_blocks[0].attn.num_heads, decoder_intermediate_size=4 * dd,
        hidden_act="gelu", qkv_bias=True, layer_norm_eps=1e-6, norm_pix_loss=True, mask_ratio=0.75)
    hf = transformers.ViTMAEForPreTraining(config).to(device).eval()
    hf.load_state_dict(official_to_hf_vitmae(ours.state_dict()), strict=True)
    imgs = torch.randn(batch, 3, 224, 224, device=device)
    noise = torch.rand(batch, ours.num_patches, device=device)
    out = {}
    for norm_pix in (False, True):
        ours.norm_pix_loss = norm_pix
        hf.config.norm_pix_loss = norm_pix
        with torch.no_grad():
            a = ours(imgs, 0.75, noise)
            b = hf(pixel_values=imgs, noise=noise)
        out[f"norm_pix_loss={norm_pix}"] = {
            "mask equal": bool(torch.equal(a.mask, b.mask)),
            "pred max|diff|": (a.pred - b.logits).abs().max().item(),
            "loss |diff|": abs(a.loss.item() - b.loss.item()),
        }
    return out


def vit_vs_timm(name: str, batch: int, device: str) -> float:
    import timm

    torch.manual_seed(0)
    theirs = timm.create_model(name, pretrained=False).to(device).eval()
    ours = getattr(vit_lib, name)().to(device).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(batch, 3, 224, 224, device=device)
    with torch.no_grad():
        return (ours(x) - theirs(x)).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {args.device}, float32, batch {args.batch}")
    for name in ("mae_vit_base_patch16", "mae_vit_large_patch16"):
        for setting, diffs in mae_vs_hf(getattr(mae_lib, name), args.batch, args.device).items():
            print(f"{name} vs transformers ViTMAEForPreTraining, {setting}: {diffs}")
    for name in ("vit_tiny_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224"):
        print(f"{name} vs timm: logits max|diff| = {vit_vs_timm(name, args.batch, args.device):.3e}")


if __name__ == "__main__":
    main()
