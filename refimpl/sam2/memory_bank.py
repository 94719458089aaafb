"""SAM 2's memory bank: what is remembered of past frames, and which of it a frame attends to (SAM 2 §4 "Memory bank").

The bank keeps, per frame the model has seen, a [`MemoryEntry`][refimpl.sam2.memory_bank.MemoryEntry]:
the spatial memory from the [memory encoder][refimpl.sam2.memory_encoder.MemoryEncoder] and the
frame's **object pointer** (a 256-d vector from the mask decoder's output token). Frames fall
into two queues (SAM 2 §4):

- **prompted frames** (the paper's M prompted frames; "conditioning" frames in the code): every
  frame that received a click, a box or a mask. All of them are attended to in the released
  configs.
- **recent frames** (the paper's N recent frames): the last ``num_maskmem - 1 = 6`` tracked
  frames give spatial memories (their number is ablated in SAM 2 §8.2.1, Tab. 10); object pointers are
  taken from up to ``max_obj_ptrs - 1 = 15`` of them.

What [`select`][refimpl.sam2.memory_bank.MemoryBank.select] returns, in the order the official
code concatenates it (the order of the keys matters for float rounding, not for the math):
the prompted frames' memories, then the recent ones from oldest to newest, each with its
**temporal position** ``t_pos`` (0 for prompted frames, ``1..6`` for recent ones, ``6`` the
previous frame), which picks one of the learned ``maskmem_tpos_enc`` vectors; then the pointers
of the prompted frames in the past and of the recent frames, each with its signed frame
distance (SAM 2.1 code: pointers get a temporal encoding of that distance; the paper adds
temporal position to the recent frames' memories only, SAM 2 §4, App. C.1).

A limit from the official code kept for parity: the pointer distances are divided by
``min(num_frames, max_obj_ptrs) - 1``, so they depend on the video's length when it is known
(we divide by at least 1, where the official code divides by zero for a one-frame video).

Shape letters: ``B`` batch (objects), ``D_mem`` 64, ``h, w`` the stride-16 grid, ``D`` 256.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from .. import checks

__all__ = ["MemoryEntry", "MemorySelection", "MemoryBank"]


class MemoryEntry(NamedTuple):
    """What the bank keeps of one frame."""

    features: Tensor
    """Spatial memory ``(B, D_mem, h, w)``, in the bank's storage dtype."""
    pos: Tensor
    """Its sine position table ``(B, D_mem, h, w)``."""
    obj_ptr: Tensor
    """The object pointer ``(B, D)``."""


class MemorySelection(NamedTuple):
    """The memories one frame attends to, from [`MemoryBank.select`][refimpl.sam2.memory_bank.MemoryBank.select]."""

    spatial: list[tuple[int, MemoryEntry]]
    """``(t_pos, entry)``: prompted frames (``t_pos = 0``) first, then recent frames oldest first."""
    pointers: list[tuple[int, Tensor]]
    """``(signed frame distance, object pointer (B, D))``: prompted frames first, then recent ones, newest first."""
    max_distance: int
    """The largest pointer distance possible, ``min(num_frames, max_obj_ptrs) - 1`` but at least 1, the temporal encoding's scale."""


@dataclass
class MemoryBank:
    """The memories of one video (one object, or a batch tracked together), in frame order.

    Args:
        num_maskmem: spatial memories per frame, counting the current frame's slot (7: up to 6
            recent frames; the temporal embedding has 7 entries).
        max_obj_ptrs: object pointers per frame (16).
        storage_dtype: dtype of the stored spatial memories. The official video predictor
            keeps them in bfloat16 (half the memory); the comparison with it needs the same.
    """

    num_maskmem: int = 7
    max_obj_ptrs: int = 16
    storage_dtype: torch.dtype = torch.bfloat16
    prompted: dict[int, MemoryEntry] = field(default_factory=dict)
    """Prompted ("conditioning") frames by index, in the order they were prompted."""
    recent: dict[int, MemoryEntry] = field(default_factory=dict)
    """Tracked frames by index (only the last ``max(num_maskmem, max_obj_ptrs) - 1`` are kept)."""

    def __post_init__(self) -> None:
        checks.integer(self.num_maskmem, "num_maskmem", 1, example="7")
        checks.integer(self.max_obj_ptrs, "max_obj_ptrs", 1, example="16")

    def __len__(self) -> int:
        return len(self.prompted) + len(self.recent)

    def add(self, frame_idx: int, entry: MemoryEntry, prompted: bool) -> MemoryEntry:
        """Store a frame's memory; older tracked frames that no selection can reach are dropped (a FIFO).

        Args:
            frame_idx: the frame.
            entry: its memory; ``features`` are cast to ``storage_dtype``.
            prompted: a prompted frame (kept for the whole video) or a tracked one.

        Returns:
            The entry as stored.
        """
        entry = entry._replace(features=entry.features.to(self.storage_dtype))
        if prompted:
            self.recent.pop(frame_idx, None)
            self.prompted[frame_idx] = entry
            return entry
        self.recent[frame_idx] = entry
        horizon = max(self.num_maskmem, self.max_obj_ptrs) - 1
        for old in [t for t in self.recent if t < frame_idx - horizon]:
            del self.recent[old]
        return entry

    def select(self, frame_idx: int, num_frames: int | None = None) -> MemorySelection:
        """The memories frame ``frame_idx`` attends to, when tracking forward in time.

        Args:
            frame_idx: the current frame.
            num_frames: the video's length if known (the official predictor knows it; a stream
                does not: ``None`` means no limit).

        Returns:
            A [`MemorySelection`][refimpl.sam2.memory_bank.MemorySelection].
        """
        spatial = [(0, entry) for entry in self.prompted.values()]
        for t_pos in range(1, self.num_maskmem):  # t_pos 1 is the oldest (6 frames back), 6 the previous frame
            entry = self.recent.get(frame_idx - (self.num_maskmem - t_pos))
            if entry is not None:
                spatial.append((t_pos, entry))
        max_ptrs = self.max_obj_ptrs if num_frames is None else min(num_frames, self.max_obj_ptrs)
        pointers = [(frame_idx - t, entry.obj_ptr) for t, entry in self.prompted.items() if t <= frame_idx]
        for distance in range(1, max_ptrs):
            t = frame_idx - distance
            if t < 0:
                break
            entry = self.recent.get(t)
            if entry is not None:
                pointers.append((distance, entry.obj_ptr))
        # At least 1: the official code divides by ``max_ptrs - 1`` = 0 for a one-frame video (NaN pointers;
        # there only a correction on that frame reaches it). The only distance then is 0, and 0 / 1 = 0 is what
        # every longer video gives it; from 1 on the scale is the official one.
        return MemorySelection(spatial, pointers, max(max_ptrs - 1, 1))
