"""The released configurations: [`SAM2Config`][refimpl.sam2.build.SAM2Config], validated once, and the four named sizes.

The official code builds a model from a Hydra YAML file (``sam2/build_sam.py`` with
``configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml``); here the YAML is a frozen dataclass whose
fields are the numbers that tell the released configs apart (and the few switches that
differ between SAM 2 and SAM 2.1), checked once when it is built. Everything else is fixed by
[`SAM2`][refimpl.sam2.model.SAM2]'s constructor, which reads as the architecture.

```python
from refimpl.sam2 import SAM2, SIZES, SAM2Config, build_sam2, sam2_hiera_large
model = sam2_hiera_large()  # the SAM 2.1 Hiera-L
same = build_sam2(**SIZES["large"])  # the same, from its arguments
also = SAM2(SAM2Config(**SIZES["large"]))
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import checks
from .model import SAM2

__all__ = [
    "SAM2Config",
    "build_sam2",
    "SIZES",
    "sam2_hiera_tiny",
    "sam2_hiera_small",
    "sam2_hiera_base_plus",
    "sam2_hiera_large",
]


@dataclass(frozen=True)
class SAM2Config:
    """The numbers and switches of a SAM 2 model, checked once, when built (what ``build_sam2`` takes).

    Everything not listed is the same in the four released sizes (``configs/sam2.1/*.yaml`` of
    the official package): the neck (``D`` channels, top-down into strides 16 and 32, nearest),
    the mask decoder (a two-way transformer of 2 layers, 8 heads), 2 fuser blocks in the memory
    encoder. Sequences may be given as lists (a JSON file); they are kept as tuples.

    Attributes:
        embed_dim: Hiera's stage-1 width.
        num_heads: Hiera's stage-1 heads.
        stages: Hiera's blocks per stage (4 stages: the neck reads four).
        global_att_blocks: Hiera blocks with global attention (SAM 2 Tab. 13), numbered from 0.
        window_spec: window side per stage.
        window_pos_embed_bkg_spatial_size: the background position table.
        image_size: ``S``, a multiple of ``4 * window_spec[0]`` and of 32.
        d_model: ``D`` (neck, decoder, memory attention), a multiple of 16 and of ``mem_dim``.
        mem_dim: ``D_mem``, a multiple of 4.
        memory_attention_layers: ``L``.
        memory_ffn_dim: the memory attention's MLP width.
        version: ``"2.1"`` (the SAM 2.1 checkpoints) or ``"2"`` (the first release): it sets
            the two switches below when they are left ``None``.
        num_maskmem: memory slots, 1 prompted + 6 recent in the temporal embedding (7).
        max_obj_ptrs: object pointers attended to (16).
        no_obj_embed_spatial: SAM 2.1: add a learned vector to the memory of a frame where the
            object is judged absent (``None``: on for ``version="2.1"``).
        obj_ptr_tpos_enc: SAM 2.1: give each object pointer a temporal encoding of its signed
            distance to the current frame (sine, then a linear map to ``D_mem``; ``None``: on
            for ``version="2.1"``).
        dynamic_multimask_via_stability: see [`MaskDecoder`][refimpl.sam2.mask_decoder.MaskDecoder]
            (on in the official predictors).
        binarize_mask_from_pts_for_mem_enc: memories of prompted frames from the thresholded
            mask (on in the official video predictor).

    Raises:
        TypeError: for a size that is not an int (or a tuple of ints), or a switch that is not a bool.
        ValueError: for an unknown ``version`` or sizes that are not positive or do not fit together.

    Examples:
        >>> SAM2Config(embed_dim=96, num_heads=1, stages=[1, 2, 7, 2], global_att_blocks=[5, 7, 9]).stages
        (1, 2, 7, 2)
    """

    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]
    global_att_blocks: tuple[int, ...]
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)
    image_size: int = 1024
    d_model: int = 256
    mem_dim: int = 64
    memory_attention_layers: int = 4
    memory_ffn_dim: int = 2048
    version: str = "2.1"
    num_maskmem: int = 7
    max_obj_ptrs: int = 16
    no_obj_embed_spatial: bool | None = None
    obj_ptr_tpos_enc: bool | None = None
    dynamic_multimask_via_stability: bool = True
    binarize_mask_from_pts_for_mem_enc: bool = True

    def __post_init__(self) -> None:
        def keep(name: str, value: object) -> None:  # the normalised value (an int for a NumPy int, a tuple for a list)
            object.__setattr__(self, name, value)

        if self.version not in ("2", "2.1"):
            raise ValueError(f"version={self.version!r}; expected '2.1' (SAM 2.1 checkpoints) or '2' (the first SAM 2 release)")
        for name, example in (("embed_dim", "96"), ("num_heads", "1"), ("image_size", "1024"), ("d_model", "256"), ("mem_dim", "64"),
                              ("memory_attention_layers", "4"), ("memory_ffn_dim", "2048")):
            keep(name, checks.integer(getattr(self, name), name, example=example))
        keep("stages", _ints(self.stages, "stages", "(1, 2, 7, 2)"))
        if len(self.stages) != 4:
            raise ValueError(f"stages={self.stages} has {len(self.stages)} entries; expected 4 (the neck reads four stages), e.g. (1, 2, 7, 2)")
        keep("window_spec", _ints(self.window_spec, "window_spec", "(8, 4, 14, 7)"))
        if len(self.window_spec) != len(self.stages):
            raise ValueError(f"window_spec={self.window_spec} has {len(self.window_spec)} entries; expected one per stage ({len(self.stages)})")
        keep("global_att_blocks", _ints(self.global_att_blocks, "global_att_blocks", "(5, 7, 9)", minimum=0))
        if any(b >= sum(self.stages) for b in self.global_att_blocks):
            raise ValueError(f"global_att_blocks={self.global_att_blocks} names a block past the last of {sum(self.stages)} (numbered from 0)")
        keep("window_pos_embed_bkg_spatial_size", checks.pair(self.window_pos_embed_bkg_spatial_size, "window_pos_embed_bkg_spatial_size", "(7, 7)"))
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}; "
                             f"each head gets embed_dim / num_heads channels")
        if self.d_model % 16:
            raise ValueError(f"d_model={self.d_model} is not a multiple of 16; the mask decoder's 8 heads work at half the width")
        stride = 4 * self.window_spec[0]
        if self.image_size % stride or self.image_size % 32:
            raise ValueError(f"image_size={self.image_size}; expected a multiple of 32 and of 4 * window_spec[0] = {stride}")
        if self.d_model % self.mem_dim:
            raise ValueError(f"d_model={self.d_model} is not a multiple of mem_dim={self.mem_dim}; "
                             f"pointers are split into d_model / mem_dim tokens")
        if self.mem_dim % 4:
            raise ValueError(f"mem_dim={self.mem_dim} is not a multiple of 4; the memories' 2-D sine table needs it")
        keep("num_maskmem", checks.integer(self.num_maskmem, "num_maskmem", example="7"))
        keep("max_obj_ptrs", checks.integer(self.max_obj_ptrs, "max_obj_ptrs", example="16"))
        for name in ("no_obj_embed_spatial", "obj_ptr_tpos_enc"):  # the two switches SAM 2.1 turned on
            if getattr(self, name) is None:
                keep(name, self.version == "2.1")
        for name in ("no_obj_embed_spatial", "obj_ptr_tpos_enc", "dynamic_multimask_via_stability", "binarize_mask_from_pts_for_mem_enc"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}; expected true or false")


def _ints(value: object, name: str, example: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as a tuple of ints ``>= minimum`` (a list or tuple of any length)."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of ints, got {type(value).__name__} {value!r}; expected e.g. {example}")
    return tuple(checks.integer(v, f"{name}[{i}]", minimum, example) for i, v in enumerate(value))


def build_sam2(**config: Any) -> SAM2:
    """A [`SAM2`][refimpl.sam2.model.SAM2] from the fields of [`SAM2Config`][refimpl.sam2.build.SAM2Config] (the official ``build_sam2``).

    Args:
        **config: the fields; ``embed_dim``, ``num_heads``, ``stages`` and ``global_att_blocks``
            are required, the others default to the released models' values.

    Returns:
        The model, in training mode, randomly initialised.

    Raises:
        TypeError: for a missing or unknown field, or a value of the wrong type.
        ValueError: for values that do not fit together (see ``SAM2Config``).
    """
    return SAM2(SAM2Config(**config))


SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9), window_pos_embed_bkg_spatial_size=(7, 7)),
    "small": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13), window_pos_embed_bkg_spatial_size=(7, 7)),
    "base_plus": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3), global_att_blocks=(12, 16, 20),
                      window_pos_embed_bkg_spatial_size=(14, 14)),
    "large": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43), window_spec=(8, 4, 16, 8),
                  window_pos_embed_bkg_spatial_size=(7, 7)),
}
"""The [`build_sam2`][refimpl.sam2.build.build_sam2] arguments of the four released sizes (the official
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
