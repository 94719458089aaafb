r"""SAM 2, the module: its parts, the heads that answer a frame, and the memory (SAM 2 §4, Fig. 3); the official ``sam2/modeling/sam2_base.py``.

Per frame (SAM 2 Fig. 3): the [image encoder][refimpl.sam2.image_encoder.ImageEncoder] runs once; the
[memory attention][refimpl.sam2.memory_attention.MemoryAttention] conditions its stride-16
embedding on the [memory bank][refimpl.sam2.memory_bank.MemoryBank]; the
[prompt encoder][refimpl.sam2.prompt_encoder.PromptEncoder] and
[mask decoder][refimpl.sam2.mask_decoder.MaskDecoder] predict the mask, its IoU and whether the
object is there; the [memory encoder][refimpl.sam2.memory_encoder.MemoryEncoder] turns the
prediction into a memory that goes into the bank. Frames are processed one at a time, in a
stream. In the code an image is a frame with an empty bank: the learned ``no_mem_embed`` is
added instead of the memory attention (released configs).

Where each step is, as in the official code:

| here | official | what |
| --- | --- | --- |
| [`SAM2`][refimpl.sam2.model.SAM2] (this module) | ``sam2/modeling/sam2_base.py``, ``SAM2Base`` | the parts, [`encode_image`][refimpl.sam2.model.SAM2.encode_image], the heads, memory in and out |
| [`image_predictor`][refimpl.sam2.image_predictor] | ``sam2/sam2_image_predictor.py`` | ``preprocess``, prompts, [`predict`][refimpl.sam2.image_predictor.predict] |
| [`tracking`][refimpl.sam2.tracking] | ``SAM2Base.track_step`` and the video predictor's frame loop | [`track_step`][refimpl.sam2.tracking.track_step]: one frame of a video |
| [`build`][refimpl.sam2.build] | ``sam2/build_sam.py`` and ``configs/`` | [`SAM2Config`][refimpl.sam2.build.SAM2Config], [`build_sam2`][refimpl.sam2.build.build_sam2], the four sizes |

``predict``, ``preprocess`` and ``track_step`` are methods of ``SAM2`` too: ``model.predict(features, ...)``
is ``image_predictor.predict(model, features, ...)``.

The released configs fix many switches of the official ``SAM2Base``; this class implements
the values they use (high-resolution features, the occlusion head with an MLP, object pointers
through an MLP, multi-mask output for one click and for tracking, the pointer token chosen with
the best mask, ...) rather than every switch. SAM 2.0 and SAM 2.1 checkpoints differ in two of
them, which are fields of the config: ``no_obj_embed_spatial`` and ``obj_ptr_tpos_enc`` (both on for 2.1).

Shape letters: ``B`` batch (objects), ``S`` the image side, ``h, w = S / 16``, ``D = 256``,
``D_mem = 64``, ``P`` points, ``M`` masks (1 or 3), ``K`` memory tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from .. import checks
from . import image_predictor, tracking
from .image_encoder import FpnNeck, Hiera, ImageEncoder, ImageFeatures
from .layers import MLP
from .mask_decoder import MaskDecoder, TwoWayTransformer
from .memory_attention import MemoryAttention
from .memory_bank import MemoryBank, MemorySelection
from .memory_encoder import MemoryEncoder, mask_for_memory
from .position import sine_encoding_1d
from .prompt_encoder import PromptEncoder

if TYPE_CHECKING:
    from .build import SAM2Config

__all__ = ["NO_OBJ_SCORE", "SAM2"]

NO_OBJ_SCORE = -1024.0
"""Mask logit written everywhere on a frame where the occlusion head says the object is absent."""


class _Heads(NamedTuple):
    low_res: Tensor  # (B, 1, S/4, S/4), chosen
    high_res: Tensor  # (B, 1, S, S), chosen
    iou: Tensor  # (B, M)
    obj_ptr: Tensor  # (B, D)
    object_score_logits: Tensor  # (B, 1)


class SAM2(nn.Module):
    """SAM 2 with the official state-dict names (SAM 2 §4, Fig. 3); the official ``SAM2Base``.

    Build it with [`build_sam2`][refimpl.sam2.build.build_sam2] or a named factory
    ([`sam2_hiera_tiny`][refimpl.sam2.build.sam2_hiera_tiny], ...). An official checkpoint
    (``{"model": state_dict}``) loads with
    [`load_checkpoint`][refimpl.checkpoints.load_checkpoint].

    Args:
        config: a [`SAM2Config`][refimpl.sam2.build.SAM2Config] (validated when it was built);
            kept as ``model.config``.
    """

    def __init__(self, config: SAM2Config) -> None:
        super().__init__()
        self.config = c = config
        d, d_mem, S = c.d_model, c.mem_dim, c.image_size
        self.image_size, self.hidden_dim, self.mem_dim = S, d, d_mem
        self.num_maskmem, self.max_obj_ptrs = c.num_maskmem, c.max_obj_ptrs
        self.obj_ptr_tpos_enc, self.binarize_mask_from_pts_for_mem_enc = c.obj_ptr_tpos_enc, c.binarize_mask_from_pts_for_mem_enc
        # SAM 2 Fig. 3's parts, made in the order of the official builder (which fixes the random initial weights)
        trunk = Hiera(c.embed_dim, c.num_heads, c.stages, c.global_att_blocks, c.window_spec, c.window_pos_embed_bkg_spatial_size)
        self.image_encoder = ImageEncoder(trunk, FpnNeck(trunk.channel_list, d), scalp=1)  # Hiera + FPN (SAM 2 App. C.1)
        self.memory_attention = MemoryAttention(d, d_mem, c.memory_attention_layers, c.memory_ffn_dim)  # "Memory attention"
        self.memory_encoder = MemoryEncoder(d_mem, d)  # "Memory encoder"
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)  # a mask prompt to stride 4, for its pointer
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(c.num_maskmem, 1, 1, d_mem))  # temporal position of memories
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d))  # added to a frame with no memory (images, prompted frames)
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, d))  # unused by the released configs; kept for their keys
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, d))  # the pointer of a frame without the object
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, d_mem)) if c.no_obj_embed_spatial else None
        self.sam_prompt_encoder = PromptEncoder(d, (S // 16, S // 16), (S, S), mask_in_chans=16)  # "Prompt encoder and mask decoder"
        self.sam_mask_decoder = MaskDecoder(d, TwoWayTransformer(2, d, 8, 2048),  # SAM 2 Fig. 9
                                            dynamic_multimask_via_stability=c.dynamic_multimask_via_stability)
        self.obj_ptr_proj = MLP(d, d, d, 3)  # the output token -> the object pointer (SAM 2 §4 "Memory bank")
        self.obj_ptr_tpos_proj = nn.Linear(d, d_mem) if c.obj_ptr_tpos_enc else nn.Identity()
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr, self.no_obj_embed_spatial):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    # --- the three entry points -----------------------------------------------------------------

    preprocess = image_predictor.preprocess
    """[`preprocess`][refimpl.sam2.image_predictor.preprocess] for this model: ``model.preprocess(image)``."""
    predict = image_predictor.predict
    """[`predict`][refimpl.sam2.image_predictor.predict] with this model: ``model.predict(features, points, labels, ...)``."""
    track_step = tracking.track_step
    """[`track_step`][refimpl.sam2.tracking.track_step] with this model: ``model.track_step(frame_idx, features, bank, ...)``."""

    def encode_image(self, images: Tensor) -> ImageFeatures:
        """Run the image encoder once per frame; the stride-4 and stride-8 maps come out projected for the decoder.

        Args:
            images: normalised ``(B, 3, S, S)`` in the parameters' dtype (see
                [`preprocess`][refimpl.sam2.image_predictor.preprocess]).

        Returns:
            [`ImageFeatures`][refimpl.sam2.image_encoder.ImageFeatures]; ``backbone_fpn[0]`` is
            ``(B, D/8, S/4, S/4)``, ``backbone_fpn[1]`` ``(B, D/4, S/8, S/8)``, the stride-16
            map ``(B, D, h, w)``.

        Raises:
            TypeError: if ``images`` is not a floating tensor in the parameters' dtype.
            ValueError: if it is not ``(B, 3, S, S)`` or holds NaN or infinity.
        """
        S = self.image_size
        checks.images(images, "images", f"(B, 3, {S}, {S})", 4, self.no_mem_embed.dtype,
                      prepare="SAM2.preprocess")
        if tuple(images.shape[1:]) != (3, S, S):
            raise ValueError(f"images has shape {tuple(images.shape)}; expected (B, 3, {S}, {S}) (resize with SAM2.preprocess)")
        return self.forward_image(images)

    def forward_image(self, images: Tensor) -> ImageFeatures:
        """[`encode_image`][refimpl.sam2.model.SAM2.encode_image] without its checks (official name): for callers that checked ``images``."""
        features = self.image_encoder(images)
        fpn = list(features.backbone_fpn)
        fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])  # once per frame, not once per click
        fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        return features._replace(backbone_fpn=fpn)

    # --- the heads: a frame's answer ------------------------------------------------------------

    def _forward_sam_heads(
        self, image: Tensor, high_res: list[Tensor], points: Tensor | None, labels: Tensor | None, mask_inputs: Tensor | None,
        multimask_output: bool,
    ) -> _Heads:
        """Decode a video frame: masks with the occlusion gate, the best one, and the object pointer (official name)."""
        B = image.shape[0]
        if points is None:  # no click: a padding point (the prompt encoder appends a second one)
            points = torch.zeros(B, 1, 2, device=image.device)
            labels = -torch.ones(B, 1, dtype=torch.int32, device=image.device)
        if mask_inputs is not None and tuple(mask_inputs.shape[-2:]) != self.sam_prompt_encoder.mask_input_size:
            mask_inputs = F.interpolate(
                mask_inputs.float(), size=self.sam_prompt_encoder.mask_input_size, mode="bilinear", align_corners=False, antialias=True
            )
        prompts = self.sam_prompt_encoder(points, labels, mask_inputs)
        out = self.sam_mask_decoder(image, self.sam_prompt_encoder.dense_pe(), prompts.sparse, prompts.dense, high_res, multimask_output)
        present = out.object_score_logits > 0  # (B, 1)
        low_res = torch.where(present[:, None, None], out.masks, NO_OBJ_SCORE).float()  # (B, M, S/4, S/4)
        high = F.interpolate(low_res, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        token = out.tokens[:, 0]
        if multimask_output:  # keep the mask (and its token) with the highest predicted IoU
            best = torch.argmax(out.iou, dim=-1)
            rows = torch.arange(B, device=image.device)
            low_res, high = low_res[rows, best].unsqueeze(1), high[rows, best].unsqueeze(1)
            if out.tokens.shape[1] > 1:
                token = out.tokens[rows, best]
        obj_ptr = self._gate_pointer(self.obj_ptr_proj(token), present.float())
        return _Heads(low_res, high, out.iou, obj_ptr, out.object_score_logits)

    def _gate_pointer(self, obj_ptr: Tensor, present: Tensor) -> Tensor:
        """Where the object is absent, the pointer is the learned ``no_obj_ptr`` (released configs' hard gate)."""
        obj_ptr = present * obj_ptr
        return obj_ptr + (1 - present) * self.no_obj_ptr

    def _use_mask_as_output(self, frame: Tensor, high_res: list[Tensor], mask: Tensor) -> _Heads:
        """A mask prompt is taken as the frame's answer; only its pointer comes from the decoder (released configs; official name)."""
        mask = mask.float()
        high = mask * 20.0 + -10.0  # logits of +-10: probabilities 1 - 4.5e-5 and 4.5e-5
        low_res = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True)
        iou = mask.new_ones(mask.shape[0], 1)
        obj_ptr = self._forward_sam_heads(frame, high_res, None, None, self.mask_downsample(mask), False).obj_ptr
        present = torch.any(mask.flatten(1) > 0.0, dim=1)[..., None].float()  # (B, 1)
        return _Heads(low_res, high, iou, self._gate_pointer(obj_ptr, present), 20.0 * present + -10.0)

    # --- memory: in from the bank, out to the bank -------------------------------------------------

    def memory_tokens(self, selection: MemorySelection, batch: int) -> tuple[Tensor, Tensor, int]:
        """Lay out a frame's memories as keys for the memory attention.

        Spatial memories of each selected frame (flattened to ``h * w`` tokens) with their sine
        table plus the learned temporal embedding of their slot, then the object pointers, each
        split into ``D / D_mem`` tokens of ``D_mem`` (4 x 64 for the released models) that share
        the pointer's temporal encoding (SAM 2 App. C.1 for the split; the encoding is SAM 2.1 code).

        Args:
            selection: from [`MemoryBank.select`][refimpl.sam2.memory_bank.MemoryBank.select].
            batch: ``B``.

        Returns:
            ``(memory (B, K, D_mem), memory_pos (B, K, D_mem), pointer tokens P)``.
        """
        dtype = self.maskmem_tpos_enc.dtype
        memory, pos = [], []
        for t_pos, entry in selection.spatial:
            memory.append(rearrange(entry.features.to(dtype), "b c h w -> b (h w) c"))
            slot = self.maskmem_tpos_enc[self.num_maskmem - t_pos - 1]  # (1, 1, D_mem): 0 = previous frame
            pos.append(rearrange(entry.pos, "b c h w -> b (h w) c") + slot)
        num_ptr_tokens = 0
        if selection.pointers:
            distances = [d for d, _ in selection.pointers]
            ptrs = torch.stack([p for _, p in selection.pointers], dim=1)  # (B, P_frames, D)
            if self.obj_ptr_tpos_enc:
                t = torch.tensor(distances, device=ptrs.device) / selection.max_distance
                ptr_pos = self.obj_ptr_tpos_proj(sine_encoding_1d(t, self.hidden_dim))  # (P_frames, D_mem)
            else:
                ptr_pos = ptrs.new_zeros(len(distances), self.mem_dim)
            # one D-pointer -> D / D_mem tokens of D_mem, each with the pointer's encoding
            ptrs = rearrange(ptrs, "b p (s c) -> b (p s) c", c=self.mem_dim)
            memory.append(ptrs)
            pos.append(repeat(ptr_pos, "p c -> b (p s) c", b=batch, s=self.hidden_dim // self.mem_dim))
            num_ptr_tokens = ptrs.shape[1]
        return torch.cat(memory, dim=1), torch.cat(pos, dim=1), num_ptr_tokens

    def condition_on_memory(self, features: ImageFeatures, bank: MemoryBank, frame_idx: int, num_frames: int | None = None) -> Tensor:
        """The current frame's stride-16 embedding after attending to the bank (SAM 2 §4 "Memory attention").

        The official ``_prepare_memory_conditioned_features``, for a frame with memories.

        Args:
            features: the frame's [`ImageFeatures`][refimpl.sam2.image_encoder.ImageFeatures].
            bank: memories of earlier frames (at least one prompted frame).
            frame_idx: the current frame.
            num_frames: the video's length, if known.

        Returns:
            ``(B, D, h, w)``.
        """
        x = features.vision_features
        memory, memory_pos, num_ptr = self.memory_tokens(bank.select(frame_idx, num_frames), x.shape[0])
        current = rearrange(x, "b c h w -> b (h w) c")
        current_pos = rearrange(features.vision_pos_enc[-1], "b c h w -> b (h w) c")
        out = self.memory_attention(current, current_pos, memory, memory_pos, num_ptr)  # (B, h*w, D)
        return rearrange(out, "b (h w) c -> b c h w", h=x.shape[2])

    def encode_memory(self, features: ImageFeatures, high_res_masks: Tensor, object_score_logits: Tensor, binarize: bool) -> tuple[Tensor, Tensor]:
        """A frame's memory from its unconditioned embedding and its mask (SAM 2 §4 "Memory encoder"); the official ``_encode_new_memory``.

        Args:
            features: the frame's features.
            high_res_masks: mask logits ``(B, 1, S, S)``.
            object_score_logits: ``(B, 1)``; a frame without the object gets ``no_obj_embed_spatial`` added (SAM 2.1).
            binarize: threshold the mask instead of the sigmoid (prompted frames in the official video predictor).

        Returns:
            ``(features (B, D_mem, h, w), pos (B, D_mem, h, w))``.
        """
        # Contiguous: the official code reaches this convolution through a (h*w, B, D) view, which PyTorch runs as
        # NCHW; the neck's output is channels-last, whose convolution rounds differently (and is slower here).
        frame = features.vision_features.contiguous()
        memory = self.memory_encoder(frame, mask_for_memory(high_res_masks, binarize))
        x = memory.features
        if self.no_obj_embed_spatial is not None:
            absent = 1 - (object_score_logits > 0).float()  # (B, 1)
            x = x + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None].expand(*x.shape)
        return x, memory.pos
