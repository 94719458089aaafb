"""One frame of a video: segment it from its prompt or from the memory bank, and remember it (SAM 2 §4, Fig. 3).

The official code splits this between ``SAM2Base.track_step`` (``sam2/modeling/sam2_base.py``:
condition the frame on its memories, decode, encode the new memory) and the frame loop of
``SAM2VideoPredictor`` (``sam2/sam2_video_predictor.py``: which frames are prompted, in which
order they are visited, where each output is stored). Here the loop's state is the
[`MemoryBank`][refimpl.sam2.memory_bank.MemoryBank] a caller keeps per video, and
[`track_step`][refimpl.sam2.tracking.track_step] is one step of the loop, for one object,
forward in time; it is also the method ``model.track_step(frame_idx, features, bank, ...)``.

Shape letters as in [`refimpl.sam2.model`][refimpl.sam2.model].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch.nn.functional as F
from torch import Tensor

from .. import checks
from .image_encoder import ImageFeatures
from .image_predictor import _check_features, _check_prompt
from .memory_bank import MemoryBank, MemoryEntry

if TYPE_CHECKING:
    from .model import SAM2

__all__ = ["TrackOutput", "track_step"]


class TrackOutput(NamedTuple):
    """What [`track_step`][refimpl.sam2.tracking.track_step] returns for a frame."""

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


def track_step(
    model: SAM2,
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
        model: the [`SAM2`][refimpl.sam2.model.SAM2].
        frame_idx: the frame's index in the video, below ``num_frames`` when that is given.
        features: its [`encode_image`][refimpl.sam2.model.SAM2.encode_image].
        bank: the video's [`MemoryBank`][refimpl.sam2.memory_bank.MemoryBank], updated in place.
        points: clicks ``(B, P, 2)`` in model-input pixels, as in
            [`predict`][refimpl.sam2.image_predictor.predict] (``P = 0`` is no click).
        labels: ``(B, P)``: 1 positive, 0 negative.
        box: ``(B, 4)``, inside the image, as in [`predict`][refimpl.sam2.image_predictor.predict].
        mask: ``(B, 1, H, W)`` mask prompt, nonzero inside. Of any size, as the official
            ``add_new_mask``: one of another size than ``S x S`` is resized to it (bilinear,
            antialiased, then ``>= 0.5``), so ``high_res_masks`` are always ``S x S``.
        num_frames: the video's length, if known (the official predictor's pointer encoding
            depends on it).
        run_memory_encoder: compute the memory and add it to the bank.

    Returns:
        [`TrackOutput`][refimpl.sam2.tracking.TrackOutput].

    Raises:
        TypeError: if a prompt is not a tensor, ``features`` are not ``ImageFeatures`` or
            ``bank`` is not a ``MemoryBank``.
        ValueError: for a bad prompt (as [`predict`][refimpl.sam2.image_predictor.predict]), a mask
            together with clicks, ``frame_idx`` not below ``num_frames``, a prompt on a frame
            the bank already holds, tracking with an empty bank, or tracking backwards.
    """
    _check_frame(frame_idx, num_frames, bank)
    _check_features(features)
    if mask is not None and (points is not None or box is not None):
        raise ValueError("a mask prompt goes alone: pass either mask, or points/box")
    points, labels = _check_prompt(model.image_size, points, labels, box, mask, "mask")
    prompted = points is not None or mask is not None  # zero clicks and no box: no prompt
    _check_order(frame_idx, bank, prompted)

    S = model.image_size
    if mask is not None and tuple(mask.shape[-2:]) != (S, S):  # as the official add_new_mask
        mask = (F.interpolate(mask.float(), size=(S, S), mode="bilinear", align_corners=False, antialias=True) >= 0.5).float()
    high_res = features.backbone_fpn[:2]
    if mask is not None:  # a conditioning frame whose answer is given
        heads = model._use_mask_as_output(features.vision_features, high_res, mask)
    else:
        if prompted:  # a conditioning frame: no memory, like an image
            frame = features.vision_features + model.no_mem_embed.view(1, -1, 1, 1)
        else:  # a tracked frame: attend to the bank (SAM 2 §4 "Memory attention")
            frame = model.condition_on_memory(features, bank, frame_idx, num_frames)
        num_points = 0 if points is None else points.shape[1]
        heads = model._forward_sam_heads(frame, high_res, points, labels, None, multimask_output=num_points <= 1)
    entry = None
    if run_memory_encoder:  # SAM 2 §4 "Memory encoder", then "Memory bank"
        if mask is not None:  # the official predictor encodes the prompted mask from its stride-4 version
            mask_logits = F.interpolate(heads.low_res, size=(S, S), mode="bilinear", align_corners=False)
        else:
            mask_logits = heads.high_res
        binarize = prompted and model.binarize_mask_from_pts_for_mem_enc
        mem, mem_pos = model.encode_memory(features, mask_logits, heads.object_score_logits, binarize)
        entry = bank.add(frame_idx, MemoryEntry(mem, mem_pos, heads.obj_ptr), prompted)
    return TrackOutput(heads.low_res, heads.high_res, heads.iou, heads.obj_ptr, heads.object_score_logits, entry)


def _check_frame(frame_idx: object, num_frames: object, bank: object) -> None:
    """``frame_idx`` an int >= 0, below ``num_frames`` when that is given; ``bank`` a ``MemoryBank``."""
    if not isinstance(frame_idx, int) or isinstance(frame_idx, bool) or frame_idx < 0:
        raise ValueError(f"frame_idx={frame_idx!r}; expected an int >= 0")
    if num_frames is not None:
        checks.integer(num_frames, "num_frames", 1, example="the video's length, e.g. 8")
        if frame_idx >= num_frames:
            raise ValueError(f"frame_idx={frame_idx} is not below num_frames={num_frames}; frames are numbered 0 .. num_frames - 1")
    if not isinstance(bank, MemoryBank):
        raise TypeError(f"bank must be a MemoryBank (the video's memories), got {type(bank).__name__}")


def _check_order(frame_idx: int, bank: MemoryBank, prompted: bool) -> None:
    """The frame loop's rules: forward in time from the first prompted frame, no corrections (not implemented)."""
    if prompted and (frame_idx in bank.prompted or frame_idx in bank.recent):
        raise ValueError(f"frame {frame_idx} is already in the bank; correction clicks on a tracked frame are not implemented")
    if prompted:
        return
    if not bank.prompted:
        raise ValueError(f"frame {frame_idx} has no prompt and the bank holds no prompted frame; prompt a frame first")
    if frame_idx in bank.prompted:
        raise ValueError(f"frame {frame_idx} is a prompted frame: its answer came with its prompt; track the frames after it")
    first, newest = min(bank.prompted), max(bank.recent, default=-1)
    if frame_idx < first or frame_idx < newest:
        before = f"the first prompted frame {first}" if frame_idx < first else f"frame {newest}, already tracked"
        raise ValueError(f"frame {frame_idx} comes before {before}; only forward tracking is implemented "
                         f"(frames in increasing order after a prompted frame)")
