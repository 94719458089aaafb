"""U²-Net (Qin et al. 2020): salient object detection with a U-Net of residual U-blocks.

| module | what |
| --- | --- |
| [`model`][refimpl.u2net.model] | RSU-L and RSU-4F, the nested U with six side outputs and the fused map, the deep-supervision loss, the two sizes |
| [`cutout`][refimpl.u2net.cutout] | the ``u2net-cutout`` command: saliency map and cut-out of an image with the released weights |

The anchor is the official architecture as packaged in ``carvekit`` 4.1.2; state-dict keys are
the official ones, so ``u2net.pth`` and ``u2netp.pth`` load with
[`load_checkpoint`][refimpl.checkpoints.load_checkpoint].

```python
from refimpl.u2net import u2net_lite
maps = u2net_lite().eval()(images)  # maps.fused: (B, 1, H, W) probabilities
```
"""

from .model import (
    RSU,
    U2NET_FULL,
    U2NET_LITE,
    ConvBNReLU,
    DeepSupervisionLoss,
    SaliencyMaps,
    Stage,
    U2Net,
    deep_supervision_loss,
    u2net_full,
    u2net_lite,
)

__all__ = [
    "RSU",
    "U2NET_FULL",
    "U2NET_LITE",
    "ConvBNReLU",
    "DeepSupervisionLoss",
    "SaliencyMaps",
    "Stage",
    "U2Net",
    "deep_supervision_loss",
    "u2net_full",
    "u2net_lite",
]
