"""The anchor: the official SAM 2 video predictor for a configuration, built from its classes.

Needs the official ``sam2`` package (PyPI ``sam2`` 1.1.0, the SAM 2.1 code; a test extra). It is
built as ``configs/sam2.1/sam2.1_hiera_*.yaml`` would build it (``tests/test_sam2.py`` checks
``FLAGS_21`` against the packaged file), with the switches the
official builders add (``apply_postprocessing``), but without Hydra and with any size, so that the
tests can use a small model. Hole filling is off: it needs the package's CUDA extension, which
is not built here, and the official code skips it without that extension anyway.

Used by the SAM 2 tests and ``benchmarks/sam2.py`` (never by ``refimpl``); the arguments are the fields of
``refimpl.sam2.SAM2Config``, so the two models have the same state-dict keys
and shapes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from refimpl.sam2.build import SAM2Config

__all__ = ["FLAGS_21", "POSTPROCESSING", "official_video_predictor", "randomize_", "write_synthetic_clip"]

FLAGS_21: dict[str, Any] = dict(
    num_maskmem=7, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0, use_mask_input_as_output_without_sam=True,
    directly_add_no_mem_embed=True, no_obj_embed_spatial=True, use_high_res_features_in_sam=True, multimask_output_in_sam=True,
    iou_prediction_use_sigmoid=True, use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=True, proj_tpos_enc_in_obj_ptrs=True,
    use_signed_tpos_enc_to_obj_ptrs=True, only_obj_ptrs_in_the_past_for_eval=True, pred_obj_scores=True, pred_obj_scores_mlp=True,
    fixed_no_obj_ptr=True, multimask_output_for_tracking=True, use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0,
    multimask_max_pt_num=1, use_mlp_for_obj_ptr_proj=True, compile_image_encoder=False,
)
"""``SAM2Base`` arguments of the released SAM 2.1 configs."""

POSTPROCESSING: dict[str, Any] = dict(
    sam_mask_decoder_extra_args=dict(dynamic_multimask_via_stability=True, dynamic_multimask_stability_delta=0.05,
                                     dynamic_multimask_stability_thresh=0.98),
    binarize_mask_from_pts_for_mem_enc=True, fill_hole_area=0,
)
"""What ``build_sam2_video_predictor(apply_postprocessing=True)`` adds, hole filling off."""


def official_video_predictor(**config: Any) -> torch.nn.Module:
    """The official ``SAM2VideoPredictor`` (a ``SAM2Base``) for a SAM 2.1 configuration.

    Args:
        **config: the fields of ``refimpl.sam2.SAM2Config`` (its defaults
            fill the rest; ``version`` must be ``"2.1"``). ``global_att_blocks`` must not name a
            pooling block: the official code cannot pool with global attention.

    Returns:
        The predictor, randomly initialised, in training mode.

    Raises:
        ValueError: for another ``version``.
    """
    c = dataclasses.asdict(SAM2Config(**config))  # validated, with the defaults filled in
    if c["version"] != "2.1":
        raise ValueError("official_video_predictor builds SAM 2.1 configurations only")
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    d, mem = c["d_model"], c["mem_dim"]
    trunk = Hiera(embed_dim=c["embed_dim"], num_heads=c["num_heads"], stages=c["stages"], global_att_blocks=c["global_att_blocks"],
                  window_spec=c["window_spec"], window_pos_embed_bkg_spatial_size=c["window_pos_embed_bkg_spatial_size"])
    neck = FpnNeck(position_encoding=PositionEmbeddingSine(d), d_model=d, backbone_channel_list=trunk.channel_list,
                   fpn_top_down_levels=[2, 3], fpn_interp_model="nearest")

    def rope(**kwargs: Any) -> RoPEAttention:
        return RoPEAttention(rope_theta=10000.0, feat_sizes=[64, 64], embedding_dim=d, num_heads=1, downsample_rate=1, dropout=0.1, **kwargs)

    layer = MemoryAttentionLayer(
        activation="relu", cross_attention=rope(rope_k_repeat=True, kv_in_dim=mem), d_model=d, dim_feedforward=c["memory_ffn_dim"],
        dropout=0.1, pos_enc_at_attn=False, pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
        self_attention=rope())
    memory_encoder = MemoryEncoder(
        out_dim=mem, mask_downsampler=MaskDownSampler(embed_dim=d, kernel_size=3, stride=2, padding=1),
        fuser=Fuser(CXBlock(dim=d, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True), num_layers=2),
        position_encoding=PositionEmbeddingSine(mem), in_dim=d)
    return SAM2VideoPredictor(
        image_encoder=ImageEncoder(trunk, neck, scalp=1),
        memory_attention=MemoryAttention(d_model=d, pos_enc_at_input=True, layer=layer, num_layers=c["memory_attention_layers"]),
        memory_encoder=memory_encoder, image_size=c["image_size"], **FLAGS_21, **POSTPROCESSING)


def randomize_(model: torch.nn.Module, seed: int, scale: float = 0.2, constant_only: bool = False) -> dict[str, Tensor]:
    """Draw the parameters and buffers at random, in place, and return the state dict to copy into the other model.

    Initial values (zeros, ones, a layer scale of 1e-6) would hide mistakes that random weights
    reveal. ``constant_only`` keeps the constructor's random initialisation and only adds noise
    to the tensors it left constant: at the released sizes, weights drawn with one small scale
    everywhere make the activations of deep layers subnormal, which slows CPUs down many times
    and would make a speed comparison meaningless.

    Args:
        model: the model to fill.
        seed: the generator's seed.
        scale: standard deviation of the noise.
        constant_only: add ``scale`` noise to constant tensors only, instead of replacing every tensor.

    Returns:
        ``model.state_dict()``.
    """
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for value in state.values():
            noise = torch.randn(value.shape, generator=generator) * scale
            if not constant_only:
                value.copy_(noise)
            elif value.numel() and bool((value == value.flatten()[0]).all()):
                value.add_(noise)
    return state


def write_synthetic_clip(folder: Path, frames: int, height: int, width: int) -> None:
    """A bright rectangle moving right over a noisy background, as numbered JPEGs (the official video loader's format).

    Args:
        folder: where to write ``00000.jpg``, ``00001.jpg``, ...
        frames: how many.
        height: frame height.
        width: frame width; the rectangle moves ``width / 10`` pixels per frame.
    """
    from PIL import Image

    top, bottom, side, step = height * 5 // 16, height * 5 // 8, width // 4, max(width // 10, 1)
    for t in range(frames):
        img = (np.random.default_rng(t).integers(0, 40, (height, width, 3)) + 30).astype(np.uint8)
        img[top:bottom, width // 8 + step * t : width // 8 + step * t + side] = (220, 180, 60)
        Image.fromarray(img).save(Path(folder) / f"{t:05d}.jpg")
