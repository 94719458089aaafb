r"""SAM 2: the whole model, promptable segmentation of images, and one tracking step of a video (SAM 2 §4, Fig. 3).

Per frame (SAM 2 Fig. 3): the [image encoder][refimpl.sam2.image_encoder.ImageEncoder] runs once; the
[memory attention][refimpl.sam2.memory_attention.MemoryAttention] conditions its stride-16
embedding on the [memory bank][refimpl.sam2.memory_bank.MemoryBank]; the
[prompt encoder][refimpl.sam2.prompt_encoder.PromptEncoder] and
[mask decoder][refimpl.sam2.mask_decoder.MaskDecoder] predict the mask, its IoU and whether the
object is there; the [memory encoder][refimpl.sam2.memory_encoder.MemoryEncoder] turns the
prediction into a memory that goes into the bank. Frames are processed one at a time, in a
stream. In the code an image is a frame with an empty bank: the learned ``no_mem_embed`` is
added instead of the memory attention (released configs).

What [`SAM2`][refimpl.sam2.model.SAM2] offers:

- [`encode_image`][refimpl.sam2.model.SAM2.encode_image]: the image encoder, with the stride-4
  and stride-8 maps already projected for the mask decoder (done once per frame).
- [`predict`][refimpl.sam2.model.SAM2.predict]: masks of one image from clicks, a box and/or
  a mask prompt (the official ``SAM2ImagePredictor``).
- [`track_step`][refimpl.sam2.model.SAM2.track_step]: one frame of a video: from a prompt
  (a conditioning frame) or from the bank alone (tracking), then a new memory into the bank
  (the official ``SAM2VideoPredictor``, one object, forward in time).

The released configs fix many switches of the official ``SAM2Base``; this class implements
the values they use (high-resolution features, the occlusion head with an MLP, object pointers
through an MLP, multi-mask output for one click and for tracking, the pointer token chosen with
the best mask, ...) rather than every switch. SAM 2.0 and SAM 2.1 checkpoints differ in two of
them, which are arguments: ``no_obj_embed_spatial`` and ``obj_ptr_tpos_enc`` (both on for 2.1).

Shape letters: ``B`` batch (objects), ``S`` the image side, ``h, w = S / 16``, ``D = 256``,
``D_mem = 64``, ``P`` points, ``M`` masks (1 or 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from .image_encoder import FpnNeck, Hiera, ImageEncoder, ImageFeatures
from .layers import MLP
from .mask_decoder import MaskDecoder, TwoWayTransformer
from .memory_attention import MemoryAttention
from .memory_bank import MemoryBank, MemoryEntry, MemorySelection
from .memory_encoder import MemoryEncoder, mask_for_memory
from .position import sine_encoding_1d
from .prompt_encoder import PromptEncoder, points_with_box

__all__ = [
    "NO_OBJ_SCORE",
    "Prediction",
    "TrackOutput",
    "SAM2",
    "to_model_coords",
    "build_sam2",
    "SIZES",
    "sam2_hiera_tiny",
    "sam2_hiera_small",
    "sam2_hiera_base_plus",
    "sam2_hiera_large",
]

NO_OBJ_SCORE = -1024.0
"""Mask logit written everywhere on a frame where the occlusion head says the object is absent."""


class Prediction(NamedTuple):
    """What [`SAM2.predict`][refimpl.sam2.model.SAM2.predict] returns for an image."""

    masks: Tensor
    """Mask logits at stride 4, ``(B, M, S/4, S/4)``; > 0 is inside."""
    iou: Tensor
    """Predicted IoU per mask, ``(B, M)``."""
    object_score_logits: Tensor
    """Occlusion head, ``(B, 1)``: > 0 means the object is present."""


class TrackOutput(NamedTuple):
    """What [`SAM2.track_step`][refimpl.sam2.model.SAM2.track_step] returns for a frame."""

    masks: Tensor
    """The chosen mask's logits at stride 4, ``(B, 1, S/4, S/4)`` (``NO_OBJ_SCORE`` where the object is absent)."""
    high_res_masks: Tensor
    """The same at the input size, ``(B, 1, S, S)``."""
    iou: Tensor
    """Predicted IoU of every mask the decoder returned, ``(B, M)``."""
    obj_ptr: Tensor
    """The frame's object pointer, ``(B, D)``."""
    object_score_logits: Tensor
    """Occlusion head, ``(B, 1)``."""
    memory: MemoryEntry | None
    """What went into the bank, in its storage dtype (``None`` with ``run_memory_encoder=False``)."""


class _Heads(NamedTuple):
    low_res: Tensor  # (B, 1, S/4, S/4), chosen
    high_res: Tensor  # (B, 1, S, S), chosen
    iou: Tensor  # (B, M)
    obj_ptr: Tensor  # (B, D)
    object_score_logits: Tensor  # (B, 1)


def to_model_coords(coords: Tensor, orig_hw: tuple[int, int], image_size: int) -> Tensor:
    """Pixel coordinates ``(..., 2)`` (``x, y``) of an ``orig_hw = (H, W)`` image -> those of the model's ``S x S`` input.

    The official predictors divide by ``(W, H)`` and multiply by ``S``, in that order.

    Examples:
        >>> to_model_coords(torch.tensor([[50.0, 25.0]]), (100, 200), 1024).tolist()
        [[256.0, 256.0]]
    """
    scale = torch.tensor([orig_hw[1], orig_hw[0]], dtype=coords.dtype, device=coords.device)
    return coords / scale * image_size


def _require(ok: Tensor, message: Callable[[], str]) -> None:
    """Raise ``ValueError(message())`` unless the boolean tensor ``ok`` is true.

    As [`checks.finite`][refimpl.checks.finite]: on a GPU an asynchronous device assert (the
    host does not wait), skipped while ``torch.compile`` traces.
    """
    if torch.compiler.is_compiling():
        return
    if ok.device.type != "cpu":
        torch._assert_async(ok, "a SAM 2 prompt is out of range (run on the CPU for the values)")
    elif not bool(ok):
        raise ValueError(message())


def _check_features(features: object) -> None:
    """The frame's features must be those of ``encode_image``, finite (the levels the decoder reads)."""
    if not isinstance(features, ImageFeatures):
        raise TypeError(f"features must be the ImageFeatures that SAM2.encode_image returns, got {type(features).__name__}")
    checks.finite(features.vision_features, "features.vision_features")
    for i, level in enumerate(features.backbone_fpn[:2]):
        checks.finite(level, f"features.backbone_fpn[{i}]")


class SAM2(nn.Module):
    """SAM 2 with the official state-dict names (SAM 2 §4, Fig. 3).

    Build it with [`build_sam2`][refimpl.sam2.model.build_sam2] or a named factory
    ([`sam2_hiera_tiny`][refimpl.sam2.model.sam2_hiera_tiny], ...). An official checkpoint
    (``{"model": state_dict}``) loads with
    [`load_checkpoint`][refimpl.checkpoints.load_checkpoint].

    Args:
        image_encoder: the [`ImageEncoder`][refimpl.sam2.image_encoder.ImageEncoder].
        memory_attention: the [`MemoryAttention`][refimpl.sam2.memory_attention.MemoryAttention].
        memory_encoder: the [`MemoryEncoder`][refimpl.sam2.memory_encoder.MemoryEncoder].
        image_size: ``S`` (1024 in every release).
        num_maskmem: memory slots, 1 prompted + 6 recent in the temporal embedding (7).
        max_obj_ptrs: object pointers attended to (16).
        no_obj_embed_spatial: SAM 2.1: add a learned vector to the memory of a frame where the
            object is judged absent.
        obj_ptr_tpos_enc: SAM 2.1: give each object pointer a temporal encoding of its signed
            distance to the current frame (sine, then a linear map to ``D_mem``).
        dynamic_multimask_via_stability: see [`MaskDecoder`][refimpl.sam2.mask_decoder.MaskDecoder]
            (on in the official predictors).
        binarize_mask_from_pts_for_mem_enc: memories of prompted frames from the thresholded
            mask (on in the official video predictor).
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        memory_attention: MemoryAttention,
        memory_encoder: MemoryEncoder,
        image_size: int = 1024,
        num_maskmem: int = 7,
        max_obj_ptrs: int = 16,
        no_obj_embed_spatial: bool = True,
        obj_ptr_tpos_enc: bool = True,
        dynamic_multimask_via_stability: bool = True,
        binarize_mask_from_pts_for_mem_enc: bool = True,
    ) -> None:
        super().__init__()
        image_size = checks.integer(image_size, "image_size", example="1024")
        num_maskmem = checks.integer(num_maskmem, "num_maskmem", example="7")
        max_obj_ptrs = checks.integer(max_obj_ptrs, "max_obj_ptrs", example="16")
        for flag, value in dict(no_obj_embed_spatial=no_obj_embed_spatial, obj_ptr_tpos_enc=obj_ptr_tpos_enc,
                                dynamic_multimask_via_stability=dynamic_multimask_via_stability,
                                binarize_mask_from_pts_for_mem_enc=binarize_mask_from_pts_for_mem_enc).items():
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, got {type(value).__name__} {value!r}; expected true or false")
        d, d_mem = image_encoder.neck.d_model, memory_encoder.out_dim
        self.image_size, self.hidden_dim, self.mem_dim = image_size, d, d_mem
        self.num_maskmem, self.max_obj_ptrs = num_maskmem, max_obj_ptrs
        self.binarize_mask_from_pts_for_mem_enc = binarize_mask_from_pts_for_mem_enc
        self.image_encoder = image_encoder
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)  # a mask prompt to stride 4, for its pointer
        self.memory_attention = memory_attention
        self.memory_encoder = memory_encoder
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(num_maskmem, 1, 1, d_mem))  # temporal position of memories
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d))  # added to a frame with no memory (images, prompted frames)
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, d))  # unused by the released configs; kept for their keys
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, d))  # the pointer of a frame without the object
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, d_mem)) if no_obj_embed_spatial else None
        grid = image_size // 16
        self.sam_prompt_encoder = PromptEncoder(d, (grid, grid), (image_size, image_size), mask_in_chans=16)
        self.sam_mask_decoder = MaskDecoder(
            d, TwoWayTransformer(2, d, 8, 2048), dynamic_multimask_via_stability=dynamic_multimask_via_stability
        )
        self.obj_ptr_proj = MLP(d, d, d, 3)
        self.obj_ptr_tpos_proj = nn.Linear(d, d_mem) if obj_ptr_tpos_enc else nn.Identity()
        self.obj_ptr_tpos_enc = obj_ptr_tpos_enc
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr, self.no_obj_embed_spatial):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    # --- images ----------------------------------------------------------------------------

    def encode_image(self, images: Tensor) -> ImageFeatures:
        """Run the image encoder once per frame; the stride-4 and stride-8 maps come out projected for the decoder.

        Args:
            images: normalised ``(B, 3, S, S)`` (see [`preprocess`][refimpl.sam2.model.SAM2.preprocess]).

        Returns:
            [`ImageFeatures`][refimpl.sam2.image_encoder.ImageFeatures]; ``backbone_fpn[0]`` is
            ``(B, D/8, S/4, S/4)``, ``backbone_fpn[1]`` ``(B, D/4, S/8, S/8)``, the stride-16
            map ``(B, D, h, w)``.

        Raises:
            TypeError: if ``images`` is not a tensor.
            ValueError: if it is not ``(B, 3, S, S)`` or holds NaN or infinity.
        """
        checks.tensor(images, "images", f"(B, 3, {self.image_size}, {self.image_size})", 4)
        if tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(
                f"images has shape {tuple(images.shape)}; expected (B, 3, {self.image_size}, {self.image_size}) "
                f"(resize with SAM2.preprocess)"
            )
        checks.finite(images, "images")
        features = self.image_encoder(images)
        fpn = list(features.backbone_fpn)
        fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])  # once per frame, not once per click
        fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        return features._replace(backbone_fpn=fpn)

    def preprocess(self, image: Tensor) -> Tensor:
        """An ``(H, W, 3)`` uint8 RGB image -> the normalised ``(1, 3, S, S)`` model input.

        As the official ``SAM2Transforms``: scale to ``[0, 1]``, resize to ``S x S`` (bilinear,
        antialiased, aspect ratio not kept), subtract the ImageNet mean and divide by its std.

        Raises:
            TypeError: if ``image`` is not a uint8 tensor.
            ValueError: if it is not ``(H, W, 3)``.
        """
        if not isinstance(image, Tensor) or image.dtype != torch.uint8:
            raise TypeError(f"image must be a uint8 torch.Tensor (H, W, 3), got {getattr(image, 'dtype', type(image).__name__)}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image has shape {tuple(image.shape)}; expected (H, W, 3) RGB")
        x = image.permute(2, 0, 1).contiguous().float().div(255)  # (3, H, W) in [0, 1]
        x = F.interpolate(x[None], size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def _prompt(
        self, points: Tensor | None, labels: Tensor | None, box: Tensor | None, mask: Tensor | None, name: str = "mask_input"
    ) -> tuple[Tensor | None, Tensor | None]:
        """Check a prompt at the public boundary and merge the box into the points.

        Points and box corners are model-input pixels and must lie in the ``S x S`` input:
        ``0 <= x, y <= S`` (NaN and infinity are refused first). A box must have ``x0 < x1`` and
        ``y0 < y1`` and lie wholly inside, like the points: a box partly outside is refused, not
        clipped (clipping would move its corners, which the model reads as the object's extent).
        An empty set of clicks (``P = 0``) is no prompt. Returns ``(None, None)`` without clicks
        or box.
        """
        S = self.image_size
        if (points is None) != (labels is None):
            raise ValueError("points and labels go together: pass both or neither")
        if points is not None:
            checks.tensor(points, "points", "(B, P, 2)", 3)
            checks.tensor(labels, "labels", "(B, P)", 2)
            if points.shape[-1] != 2 or tuple(labels.shape) != tuple(points.shape[:2]):
                raise ValueError(f"points {tuple(points.shape)} and labels {tuple(labels.shape)}; expected (B, P, 2) and (B, P)")
            if points.shape[0] == 0:
                raise ValueError(f"points has shape {tuple(points.shape)}, a batch of 0 prompts; expected B >= 1")
            checks.finite(points, "points")
            _require(((points >= 0) & (points <= S)).all(),
                     lambda: f"points {points.tolist()} reach outside the {S}x{S} model input; expected 0 <= x, y <= {S} "
                             f"(model-input pixels: see to_model_coords)")
            bad = set(labels.unique().tolist()) - {0, 1}
            if bad:
                raise ValueError(f"labels contain {sorted(bad)}; expected 1 (positive click) or 0 (negative click)")
            if points.shape[1] == 0:  # no click is no prompt, as no points at all
                points = labels = None
        if box is not None:
            checks.tensor(box, "box", "(B, 4)", 2)
            if box.shape[1] != 4:
                raise ValueError(f"box has shape {tuple(box.shape)}; expected (B, 4) as x0, y0, x1, y1")
            if box.shape[0] == 0:
                raise ValueError(f"box has shape {tuple(box.shape)}, a batch of 0 boxes; expected B >= 1")
            if points is not None and box.shape[0] != points.shape[0]:
                raise ValueError(f"box has batch {box.shape[0]} but points have {points.shape[0]}")
            checks.finite(box, "box")
            x0, y0, x1, y1 = box.unbind(-1)
            _require(((x0 < x1) & (y0 < y1)).all(),
                     lambda: f"box {box.tolist()} is inverted or empty; expected x0 < x1 and y0 < y1 (x0, y0, x1, y1)")
            _require(((x0 >= 0) & (y0 >= 0) & (x1 <= S) & (y1 <= S)).all(),
                     lambda: f"box {box.tolist()} reaches outside the {S}x{S} model input; expected 0 <= x0 < x1 <= {S} and "
                             f"0 <= y0 < y1 <= {S} (a box partly outside is not clipped)")
        if mask is not None:
            checks.tensor(mask, name, "(B, 1, H, W)", 4)
            if mask.shape[1] != 1 or mask.shape[0] == 0 or 0 in mask.shape[-2:]:
                raise ValueError(f"{name} has shape {tuple(mask.shape)}; expected one channel (B, 1, H, W) with B, H, W >= 1")
            checks.finite(mask, name)
        if points is not None:
            labels = labels.to(torch.int32)
        return points_with_box(points, labels, box)

    def predict(
        self,
        features: ImageFeatures,
        points: Tensor | None = None,
        labels: Tensor | None = None,
        box: Tensor | None = None,
        mask_input: Tensor | None = None,
        multimask_output: bool = True,
    ) -> Prediction:
        """Segment an image from a prompt (SAM 2 §3, Fig. 8: the single-image case of the task).

        As the official ``SAM2ImagePredictor.predict``: the image embedding gets ``no_mem_embed``
        added (no memory), a box becomes two corner points in front of the clicks, and the
        occlusion head does not change the masks.

        Args:
            features: [`encode_image`][refimpl.sam2.model.SAM2.encode_image] of one image (or of
                as many images as prompts).
            points: clicks ``(B, P, 2)`` in model-input pixels, ``0 <= x, y <= S`` (see
                [`to_model_coords`][refimpl.sam2.model.to_model_coords]); ``P = 0`` is no click.
            labels: ``(B, P)``: 1 positive, 0 negative.
            box: ``(B, 4)``, ``x0, y0, x1, y1`` in model-input pixels, with ``0 <= x0 < x1 <= S``
                and ``0 <= y0 < y1 <= S``: a box partly outside the image is refused, as a click
                outside is, rather than clipped.
            mask_input: mask logits ``(B, 1, S/4, S/4)``, e.g. a previous prediction.
            multimask_output: three candidate masks (good for one ambiguous click) or one.

        Returns:
            [`Prediction`][refimpl.sam2.model.Prediction].

        Raises:
            TypeError: if a prompt is not a tensor, or ``features`` are not ``ImageFeatures``.
            ValueError: for no prompt at all (zero clicks and no box or mask), wrong shapes or
                labels, NaN or infinity in a prompt or in ``features``, a click or box outside the
                image, an inverted or empty box, or batches that do not match.
        """
        _check_features(features)
        points, labels = self._prompt(points, labels, box, mask_input)
        if points is None and mask_input is None:  # zero clicks count as none
            raise ValueError("predict needs a prompt: points with labels (at least one click), a box, or a mask_input")
        side = self.sam_prompt_encoder.mask_input_size
        if mask_input is not None and tuple(mask_input.shape[-2:]) != side:
            raise ValueError(f"mask_input has shape {tuple(mask_input.shape)}; expected (B, 1, {side[0]}, {side[1]})")
        image = features.vision_features + self.no_mem_embed.view(1, -1, 1, 1)  # (B_img, D, h, w): no memory
        prompts = self.sam_prompt_encoder(points, labels, mask_input)
        batch = prompts.sparse.shape[0]
        if image.shape[0] not in (1, batch):
            raise ValueError(f"features hold {image.shape[0]} images but the prompts {batch}; expected 1 image or one per prompt")
        repeat = image.shape[0] == 1 and batch > 1
        high_res = features.backbone_fpn[:2]  # one image's maps broadcast over the repeated prompts
        out = self.sam_mask_decoder(
            image, self.sam_prompt_encoder.dense_pe(), prompts.sparse, prompts.dense, high_res, multimask_output, repeat
        )
        return Prediction(out.masks, out.iou, out.object_score_logits)

    # --- video -----------------------------------------------------------------------------

    def _sam_heads(
        self,
        image: Tensor,
        high_res: list[Tensor],
        points: Tensor | None,
        labels: Tensor | None,
        mask_inputs: Tensor | None,
        multimask_output: bool,
    ) -> _Heads:
        """Decode a video frame: masks with the occlusion gate, the best one, and the object pointer."""
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

    def _mask_as_output(self, frame: Tensor, high_res: list[Tensor], mask: Tensor) -> _Heads:
        """A mask prompt is taken as the frame's answer; only its pointer comes from the decoder (released configs)."""
        mask = mask.float()
        high = mask * 20.0 + -10.0  # logits of +-10: probabilities 1 - 4.5e-5 and 4.5e-5
        low_res = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True)
        iou = mask.new_ones(mask.shape[0], 1)
        obj_ptr = self._sam_heads(frame, high_res, None, None, self.mask_downsample(mask), False).obj_ptr
        present = torch.any(mask.flatten(1) > 0.0, dim=1)[..., None].float()  # (B, 1)
        return _Heads(low_res, high, iou, self._gate_pointer(obj_ptr, present), 20.0 * present + -10.0)

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
            memory.append(entry.features.to(dtype).flatten(2).transpose(1, 2))  # (B, h*w, D_mem)
            slot = self.maskmem_tpos_enc[self.num_maskmem - t_pos - 1]  # (1, 1, D_mem): 0 = previous frame
            pos.append(entry.pos.flatten(2).transpose(1, 2) + slot)
        num_ptr_tokens = 0
        if selection.pointers:
            distances = [d for d, _ in selection.pointers]
            ptrs = torch.stack([p for _, p in selection.pointers], dim=1)  # (B, P_frames, D)
            if self.obj_ptr_tpos_enc:
                t = torch.tensor(distances, device=ptrs.device) / selection.max_distance
                ptr_pos = self.obj_ptr_tpos_proj(sine_encoding_1d(t, self.hidden_dim))  # (P_frames, D_mem)
            else:
                ptr_pos = ptrs.new_zeros(len(distances), self.mem_dim)
            split = self.hidden_dim // self.mem_dim
            if split > 1:  # one D-pointer -> `split` tokens of D_mem
                ptrs = ptrs.reshape(batch, -1, split, self.mem_dim).flatten(1, 2)  # (B, P_frames * split, D_mem)
                ptr_pos = ptr_pos.repeat_interleave(split, dim=0)
            memory.append(ptrs)
            pos.append(ptr_pos.unsqueeze(0).expand(batch, -1, -1))
            num_ptr_tokens = ptrs.shape[1]
        return torch.cat(memory, dim=1), torch.cat(pos, dim=1), num_ptr_tokens

    def condition_on_memory(self, features: ImageFeatures, bank: MemoryBank, frame_idx: int, num_frames: int | None = None) -> Tensor:
        """The current frame's stride-16 embedding after attending to the bank (SAM 2 §4 "Memory attention").

        Args:
            features: the frame's [`ImageFeatures`][refimpl.sam2.image_encoder.ImageFeatures].
            bank: memories of earlier frames (at least one prompted frame).
            frame_idx: the current frame.
            num_frames: the video's length, if known.

        Returns:
            ``(B, D, h, w)``.
        """
        x = features.vision_features
        B, C, h, w = x.shape
        memory, memory_pos, num_ptr = self.memory_tokens(bank.select(frame_idx, num_frames), B)
        current = x.flatten(2).transpose(1, 2)  # (B, h*w, D)
        current_pos = features.vision_pos_enc[-1].flatten(2).transpose(1, 2)
        out = self.memory_attention(current, current_pos, memory, memory_pos, num_ptr)  # (B, h*w, D)
        return out.transpose(1, 2).reshape(B, C, h, w)

    def encode_memory(self, features: ImageFeatures, high_res_masks: Tensor, object_score_logits: Tensor, binarize: bool) -> tuple[Tensor, Tensor]:
        """A frame's memory from its unconditioned embedding and its mask (SAM 2 §4 "Memory encoder").

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

    def track_step(
        self,
        frame_idx: int,
        features: ImageFeatures,
        bank: MemoryBank,
        points: Tensor | None = None,
        labels: Tensor | None = None,
        box: Tensor | None = None,
        mask: Tensor | None = None,
        num_frames: int | None = None,
        run_memory_encoder: bool = True,
    ) -> TrackOutput:
        """One frame of a video: segment it, from its prompt or from the bank, and remember it (SAM 2 §4, Fig. 3).

        - **With a prompt** (clicks, a box or a mask) on a frame the bank does not hold yet, the
          frame is a *conditioning* frame: as in the official predictor it is segmented without
          memory, like an image, and its memory joins the prompted queue. A mask prompt is taken
          as the answer itself; the decoder only gives its object pointer.
        - **Without a prompt**, the frame attends to the bank (memory attention), the decoder
          answers with three candidate masks and the best by predicted IoU is kept, and its
          memory joins the recent queue.

        Only forward tracking is implemented: a frame without a prompt must come after the first
        prompted frame and not before the newest tracked one (tracking that newest frame again
        computes it again). Corrections (a prompt on a frame already in the bank) are not
        implemented either. Both are refused with a ``ValueError``.

        Args:
            frame_idx: the frame's index in the video, below ``num_frames`` when that is given.
            features: its [`encode_image`][refimpl.sam2.model.SAM2.encode_image].
            bank: the video's [`MemoryBank`][refimpl.sam2.memory_bank.MemoryBank], updated in place.
            points: clicks ``(B, P, 2)`` in model-input pixels, as in
                [`predict`][refimpl.sam2.model.SAM2.predict] (``P = 0`` is no click).
            labels: ``(B, P)``: 1 positive, 0 negative.
            box: ``(B, 4)``, inside the image, as in [`predict`][refimpl.sam2.model.SAM2.predict].
            mask: ``(B, 1, H, W)`` mask prompt, nonzero inside. Of any size, as the official
                ``add_new_mask``: one of another size than ``S x S`` is resized to it (bilinear,
                antialiased, then ``>= 0.5``), so ``high_res_masks`` are always ``S x S``.
            num_frames: the video's length, if known (the official predictor's pointer encoding
                depends on it).
            run_memory_encoder: compute the memory and add it to the bank.

        Returns:
            [`TrackOutput`][refimpl.sam2.model.TrackOutput].

        Raises:
            TypeError: if a prompt is not a tensor, ``features`` are not ``ImageFeatures`` or
                ``bank`` is not a ``MemoryBank``.
            ValueError: for a bad prompt (as [`predict`][refimpl.sam2.model.SAM2.predict]), a mask
                together with clicks, ``frame_idx`` not below ``num_frames``, a prompt on a frame
                the bank already holds, tracking with an empty bank, or tracking backwards.
        """
        if not isinstance(frame_idx, int) or isinstance(frame_idx, bool) or frame_idx < 0:
            raise ValueError(f"frame_idx={frame_idx!r}; expected an int >= 0")
        if num_frames is not None:
            checks.integer(num_frames, "num_frames", 1, example="the video's length, e.g. 8")
            if frame_idx >= num_frames:
                raise ValueError(f"frame_idx={frame_idx} is not below num_frames={num_frames}; frames are numbered 0 .. num_frames - 1")
        if not isinstance(bank, MemoryBank):
            raise TypeError(f"bank must be a MemoryBank (the video's memories), got {type(bank).__name__}")
        _check_features(features)
        if mask is not None and (points is not None or box is not None):
            raise ValueError("a mask prompt goes alone: pass either mask, or points/box")
        points, labels = self._prompt(points, labels, box, mask, name="mask")
        prompted = points is not None or mask is not None  # zero clicks and no box: no prompt
        if prompted and (frame_idx in bank.prompted or frame_idx in bank.recent):
            raise ValueError(f"frame {frame_idx} is already in the bank; correction clicks on a tracked frame are not implemented")
        if not prompted:
            if not bank.prompted:
                raise ValueError(f"frame {frame_idx} has no prompt and the bank holds no prompted frame; prompt a frame first")
            if frame_idx in bank.prompted:
                raise ValueError(f"frame {frame_idx} is a prompted frame: its answer came with its prompt; track the frames after it")
            first, newest = min(bank.prompted), max(bank.recent, default=-1)
            if frame_idx < first or frame_idx < newest:
                before = f"the first prompted frame {first}" if frame_idx < first else f"frame {newest}, already tracked"
                raise ValueError(f"frame {frame_idx} comes before {before}; only forward tracking is implemented "
                                 f"(frames in increasing order after a prompted frame)")
        if mask is not None and tuple(mask.shape[-2:]) != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)  # as the official add_new_mask
            mask = (F.interpolate(mask.float(), size=size, mode="bilinear", align_corners=False, antialias=True) >= 0.5).float()
        high_res = features.backbone_fpn[:2]
        if mask is not None:
            heads = self._mask_as_output(features.vision_features, high_res, mask)
        else:
            if prompted:
                frame = features.vision_features + self.no_mem_embed.view(1, -1, 1, 1)
            else:
                frame = self.condition_on_memory(features, bank, frame_idx, num_frames)
            num_points = 0 if points is None else points.shape[1]
            heads = self._sam_heads(frame, high_res, points, labels, None, multimask_output=num_points <= 1)
        entry = None
        if run_memory_encoder:
            if mask is not None:  # the official predictor encodes the prompted mask from its stride-4 version
                mask_logits = F.interpolate(heads.low_res, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
            else:
                mask_logits = heads.high_res
            binarize = prompted and self.binarize_mask_from_pts_for_mem_enc
            mem, mem_pos = self.encode_memory(features, mask_logits, heads.object_score_logits, binarize)
            entry = bank.add(frame_idx, MemoryEntry(mem, mem_pos, heads.obj_ptr), prompted)
        return TrackOutput(heads.low_res, heads.high_res, heads.iou, heads.obj_ptr, heads.object_score_logits, entry)


# --- named configurations ------------------------------------------------------------------


def build_sam2(
    *,
    embed_dim: int,
    num_heads: int,
    stages: tuple[int, ...],
    global_att_blocks: tuple[int, ...],
    window_spec: tuple[int, ...] = (8, 4, 14, 7),
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14),
    image_size: int = 1024,
    d_model: int = 256,
    mem_dim: int = 64,
    memory_attention_layers: int = 4,
    memory_ffn_dim: int = 2048,
    version: str = "2.1",
    **kwargs: Any,
) -> SAM2:
    """A [`SAM2`][refimpl.sam2.model.SAM2] from the numbers that tell the released configs apart.

    Everything not listed is the same in the four released sizes (``configs/sam2.1/*.yaml`` of
    the official package): the neck (256 channels, top-down into strides 16 and 32, nearest),
    4 memory-attention layers, 64-channel memories, 7 memory slots, image size 1024.

    Args:
        embed_dim: Hiera's stage-1 width.
        num_heads: Hiera's stage-1 heads.
        stages: Hiera's blocks per stage.
        global_att_blocks: Hiera blocks with global attention (SAM 2 Tab. 13).
        window_spec: window side per stage.
        window_pos_embed_bkg_spatial_size: the background position table.
        image_size: ``S``, a multiple of ``4 * window_spec[0]`` and of 32.
        d_model: ``D`` (neck, decoder, memory attention).
        mem_dim: ``D_mem``; ``D`` must be a multiple of it.
        memory_attention_layers: ``L``.
        memory_ffn_dim: the memory attention's MLP width.
        version: ``"2.1"`` (the SAM 2.1 checkpoints) or ``"2"`` (the first release): 2.1 adds
            the no-object memory embedding and the pointers' temporal encoding.
        **kwargs: passed to [`SAM2`][refimpl.sam2.model.SAM2].

    Returns:
        The model, in training mode, randomly initialised.

    Raises:
        TypeError: for a size that is not an int (or a tuple of ints).
        ValueError: for an unknown ``version`` or sizes that are not positive or do not fit together.
    """
    if version not in ("2", "2.1"):
        raise ValueError(f"version={version!r}; expected '2.1' (SAM 2.1 checkpoints) or '2' (the first SAM 2 release)")
    embed_dim, num_heads = checks.integer(embed_dim, "embed_dim", example="96"), checks.integer(num_heads, "num_heads", example="1")
    image_size = checks.integer(image_size, "image_size", example="1024")
    d_model, mem_dim = checks.integer(d_model, "d_model", example="256"), checks.integer(mem_dim, "mem_dim", example="64")
    memory_attention_layers = checks.integer(memory_attention_layers, "memory_attention_layers", example="4")
    memory_ffn_dim = checks.integer(memory_ffn_dim, "memory_ffn_dim", example="2048")
    stages = _ints(stages, "stages", "(1, 2, 7, 2)")
    if len(stages) != 4:
        raise ValueError(f"stages={stages} has {len(stages)} entries; expected 4 (the neck reads four stages), e.g. (1, 2, 7, 2)")
    window_spec = _ints(window_spec, "window_spec", "(8, 4, 14, 7)")
    if len(window_spec) != len(stages):
        raise ValueError(f"window_spec={window_spec} has {len(window_spec)} entries; expected one per stage ({len(stages)})")
    global_att_blocks = _ints(global_att_blocks, "global_att_blocks", "(5, 7, 9)", minimum=0)
    if any(b >= sum(stages) for b in global_att_blocks):
        raise ValueError(f"global_att_blocks={global_att_blocks} names a block past the last of {sum(stages)} (numbered from 0)")
    window_pos_embed_bkg_spatial_size = checks.pair(window_pos_embed_bkg_spatial_size, "window_pos_embed_bkg_spatial_size", "(7, 7)")
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim={embed_dim} is not a multiple of num_heads={num_heads}; each head gets embed_dim / num_heads channels")
    if d_model % 16:
        raise ValueError(f"d_model={d_model} is not a multiple of 16; the mask decoder's 8 heads work at half the width")
    stride = 4 * window_spec[0]
    if image_size % stride or image_size % 32:
        raise ValueError(f"image_size={image_size}; expected a multiple of 32 and of 4 * window_spec[0] = {stride}")
    if d_model % mem_dim:
        raise ValueError(f"d_model={d_model} is not a multiple of mem_dim={mem_dim}; pointers are split into d_model / mem_dim tokens")
    if mem_dim % 4:
        raise ValueError(f"mem_dim={mem_dim} is not a multiple of 4; the memories' 2-D sine table needs it")
    trunk = Hiera(embed_dim, num_heads, tuple(stages), tuple(global_att_blocks), tuple(window_spec), tuple(window_pos_embed_bkg_spatial_size))
    neck = FpnNeck(trunk.channel_list, d_model)
    flags = dict(no_obj_embed_spatial=version == "2.1", obj_ptr_tpos_enc=version == "2.1")
    return SAM2(
        ImageEncoder(trunk, neck, scalp=1),
        MemoryAttention(d_model, mem_dim, memory_attention_layers, memory_ffn_dim),
        MemoryEncoder(mem_dim, d_model),
        image_size=image_size,
        **{**flags, **kwargs},
    )


def _ints(value: object, name: str, example: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as a tuple of ints ``>= minimum`` (a list or tuple of any length)."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of ints, got {type(value).__name__} {value!r}; expected e.g. {example}")
    return tuple(checks.integer(v, f"{name}[{i}]", minimum, example) for i, v in enumerate(value))


SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9), window_pos_embed_bkg_spatial_size=(7, 7)),
    "small": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13), window_pos_embed_bkg_spatial_size=(7, 7)),
    "base_plus": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3), global_att_blocks=(12, 16, 20),
                      window_pos_embed_bkg_spatial_size=(14, 14)),
    "large": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43), window_spec=(8, 4, 16, 8),
                  window_pos_embed_bkg_spatial_size=(7, 7)),
}
"""The [`build_sam2`][refimpl.sam2.model.build_sam2] arguments of the four released sizes (the official
``configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml``; global-attention blocks as in SAM 2 Tab. 13)."""


def sam2_hiera_tiny(**kwargs: Any) -> SAM2:
    """SAM 2 Hiera-T: width 96, 1 head, stages 1-2-7-2, global attention in blocks 5, 7, 9 (SAM 2 Tab. 13); ``kwargs`` override."""
    return build_sam2(**{**SIZES["tiny"], **kwargs})


def sam2_hiera_small(**kwargs: Any) -> SAM2:
    """SAM 2 Hiera-S: width 96, 1 head, stages 1-2-11-2, global attention in blocks 7, 10, 13 (SAM 2 Tab. 13); ``kwargs`` override."""
    return build_sam2(**{**SIZES["small"], **kwargs})


def sam2_hiera_base_plus(**kwargs: Any) -> SAM2:
    """SAM 2 Hiera-B+: width 112, 2 heads, stages 2-3-16-3, global attention in blocks 12, 16, 20 (SAM 2 Tab. 13); ``kwargs`` override."""
    return build_sam2(**{**SIZES["base_plus"], **kwargs})


def sam2_hiera_large(**kwargs: Any) -> SAM2:
    """SAM 2 Hiera-L: width 144, 2 heads, stages 2-6-36-4, global attention in blocks 23, 33, 43 (SAM 2 Tab. 13), windows 8-4-16-8; ``kwargs`` override."""
    return build_sam2(**{**SIZES["large"], **kwargs})
