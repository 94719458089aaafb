"""The Hugging Face ViTMAE anchor, built from one of our MAEs: same configuration, same weights.

Hugging Face's ``ViTMAEForPreTraining`` gives the official MAE code's results (same weights,
same noise); ``tests/test_mae.py`` and ``benchmarks/mae_pretrain.py`` compare with it.
"""

from __future__ import annotations

import transformers
from torch import nn

from refimpl import checks
from refimpl.checkpoints import official_to_hf_vitmae
from refimpl.mae import MaskedAutoencoderViT


def to_hf_vitmae(model: MaskedAutoencoderViT, mask_ratio: float = 0.75) -> nn.Module:
    """A Hugging Face ``ViTMAEForPreTraining`` with ``model``'s configuration and weights.

    Where Hugging Face's defaults differ from the official MAE, the official choice is set:
    exact GELU, LayerNorm eps 1e-6, no dropout. With the same ``noise`` both models then give the
    same mask, predictions and loss (``tests/test_mae.py``). ``transformers`` is a test extra: this builds
    the anchor, so it lives with the tests, not in ``refimpl``.

    Args:
        model: a [`MaskedAutoencoderViT`][refimpl.mae.MaskedAutoencoderViT].
        mask_ratio: the Hugging Face model's mask ratio (ours takes it per call).

    Returns:
        The Hugging Face model, on the CPU, in training mode.

    Raises:
        ValueError: if ``mask_ratio`` is outside ``[0, 1)`` (NaN included).
    """
    mask_ratio = checks.fraction(mask_ratio, "mask_ratio")

    d, dd = model.cls_token.shape[-1], model.mask_token.shape[-1]
    config = transformers.ViTMAEConfig(
        image_size=model.patch_embed.img_size, patch_size=model.patch_size, num_channels=model.in_chans,
        hidden_size=d, num_hidden_layers=len(model.blocks), num_attention_heads=model.blocks[0].attn.num_heads,
        intermediate_size=model.blocks[0].mlp.fc1.out_features, decoder_hidden_size=dd,
        decoder_num_hidden_layers=len(model.decoder_blocks),
        decoder_num_attention_heads=model.decoder_blocks[0].attn.num_heads,
        decoder_intermediate_size=model.decoder_blocks[0].mlp.fc1.out_features,
        hidden_act="gelu", qkv_bias=True, layer_norm_eps=1e-6, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, norm_pix_loss=model.norm_pix_loss, mask_ratio=mask_ratio,
    )
    hf = transformers.ViTMAEForPreTraining(config)
    hf.load_state_dict(official_to_hf_vitmae({k: v.detach().cpu() for k, v in model.state_dict().items()}), strict=True)
    return hf
