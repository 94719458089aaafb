"""SAM 2 (Ravi et al. 2024): promptable segmentation of images and videos with a streaming memory.

SAM 2 extends SAM from images to video (SAM 2 §1, §3): a prompt (clicks, a box, a mask) on any
frame defines an object, and the model segments it on every frame, one frame at a time, by
attending to a memory of what it predicted before (SAM 2 §4, Fig. 3). One module per part:

| module | what | paper |
| --- | --- | --- |
| [`image_encoder`][refimpl.sam2.image_encoder] | Hiera trunk with windows, windowed position embedding, FPN neck | SAM 2 §4, App. C.1, Tab. 13 |
| [`prompt_encoder`][refimpl.sam2.prompt_encoder] | clicks, box corners, mask prompts | SAM 2 §4 |
| [`mask_decoder`][refimpl.sam2.mask_decoder] | two-way transformer, multi-mask output, IoU, occlusion head | SAM 2 §4, Fig. 9 |
| [`memory_encoder`][refimpl.sam2.memory_encoder] | mask + frame embedding -> 64-channel memory | SAM 2 §4, App. C.1 |
| [`memory_bank`][refimpl.sam2.memory_bank] | prompted and recent frames, object pointers, which are attended | SAM 2 §4 |
| [`memory_attention`][refimpl.sam2.memory_attention] | self- and cross-attention with 2-D RoPE | SAM 2 §4, App. C.1, §8.2.2 |
| [`model`][refimpl.sam2.model] | the whole model: its parts, the heads, memory in and out | SAM 2 §4, Fig. 3 |
| [`image_predictor`][refimpl.sam2.image_predictor] | an image: preprocessing, prompts, masks | SAM 2 §3, Fig. 8 |
| [`tracking`][refimpl.sam2.tracking] | one frame of a video, from its prompt or from the bank | SAM 2 §4, Fig. 3 |
| [`build`][refimpl.sam2.build] | the validated config, ``build_sam2``, the four released sizes | SAM 2 Tab. 13 |
| [`position`][refimpl.sam2.position], [`layers`][refimpl.sam2.layers] | position encodings; MLP, LayerNorm2d, attention | |
| [`automatic_mask_generator`][refimpl.sam2.automatic_mask_generator] | every object of an image from a grid of clicks | SAM 2 §5.1 |
| [`segment`][refimpl.sam2.segment] | the ``sam2-segment`` command | |

The anchor is the official code as published on PyPI (``sam2`` 1.1.0, the SAM 2.1 code):
state-dict keys are the official ones, so a released checkpoint (``{"model": state_dict}``)
loads with [`load_checkpoint`][refimpl.checkpoints.load_checkpoint], and ``tests/test_sam2.py``
compares every part with it on the same random weights. Paper references follow the first
arXiv version (v1), whose model is SAM 2; the code is SAM 2.1, which the v1 paper does not
describe (its two differences are the arguments ``version="2.1"`` / ``"2"`` of the factories).

```python
from refimpl.sam2 import sam2_hiera_tiny
model = sam2_hiera_tiny().eval()
```
"""

from .automatic_mask_generator import AutomaticMaskGenerator
from .build import SIZES, SAM2Config, build_sam2, sam2_hiera_base_plus, sam2_hiera_large, sam2_hiera_small, sam2_hiera_tiny
from .image_predictor import Prediction, to_model_coords
from .memory_bank import MemoryBank, MemoryEntry
from .model import SAM2
from .tracking import TrackOutput

__all__ = [
    "SAM2",
    "SAM2Config",
    "AutomaticMaskGenerator",
    "SIZES",
    "MemoryBank",
    "MemoryEntry",
    "Prediction",
    "TrackOutput",
    "build_sam2",
    "sam2_hiera_tiny",
    "sam2_hiera_small",
    "sam2_hiera_base_plus",
    "sam2_hiera_large",
    "to_model_coords",
]
