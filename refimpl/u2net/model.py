r"""U²-Net (Qin et al., Pattern Recognition 2020): a U-Net whose every stage is itself a small U-Net.

Salient object detection (SOD) asks for one map per image: the probability, per pixel, that
it belongs to the object a viewer looks at first. Most SOD networks are built on a backbone
made for image classification, whose features serve semantics (U²-Net §1); U²-Net answers the
task without one, trained from scratch, with one block, one architecture built from it, and
one loss:

- **The residual U-block, RSU-L** ([`RSU`][refimpl.u2net.model.RSU]). A residual block
  ``x + F(x)`` whose ``F`` is not two convolutions but a U-Net of height ``L``: an input
  convolution, ``L - 1`` encoder levels with a 2x2 max-pool between them, a dilated
  convolution at the bottom, and a decoder that upsamples and concatenates back to the input
  resolution. One block therefore mixes receptive fields from a few pixels to a large part of
  the image while its output keeps the input's resolution, and most of its convolutions run
  on pooled, small maps, so depth is cheap. **RSU-4F** replaces pooling and upsampling by
  dilations 1, 2, 4, 8: it is used where the maps are already small (the two deepest stages).
- **The nested U** ([`U2Net`][refimpl.u2net.model.U2Net]). Six encoder stages
  ``En_1 ... En_6`` (RSU-7, 6, 5, 4, 4F, 4F) separated by max-pools, five decoder stages
  ``De_5 ... De_1`` that upsample and concatenate, a side output (a 3x3 convolution to one
  channel, upsampled to the input size) on ``De_1 ... De_5`` and ``En_6``, and a 1x1
  convolution that fuses the six side maps into the final one. Every map is a sigmoid
  probability.
- **Deep supervision** ([`deep_supervision_loss`][refimpl.u2net.model.deep_supervision_loss]):
  binary cross-entropy on the fused map and on each of the six side maps, summed with
  weight 1 each.

Two sizes, by the channel widths of the stages: [`u2net_full`][refimpl.u2net.model.u2net_full]
(U²-Net, 44.0 M parameters, the release file ``u2net.pth``; 176.3 MB in the paper's abstract) and
[`u2net_lite`][refimpl.u2net.model.u2net_lite] (U²-Net†, 1.13 M parameters, the release file
``u2netp.pth``; 4.7 MB in the abstract): the same eleven stages, the small one with 16 middle
and 64 output channels everywhere.

Shape letters: ``B`` batch; ``C_in``, ``M``, ``C_out`` a block's input, middle and output
channels (I, M, O for short); ``H, W`` the input size of a block or the image size; ``h_i,
w_i`` the size at level ``i`` of a U (``h_1 = H``, ``h_{i+1} = ceil(h_i / 2)``).

**Any size.** Pooling uses ``ceil_mode=True`` and every upsampling goes to the exact size of
the map it is concatenated with (bilinear, ``align_corners=False``), as the official code
does in its current form (``_upsample_like``; an early revision upsampled by fixed factors of
2 to 32, which works only at multiples of 32). So a 301 x 257 image works: a 301-pixel side
pools to 151, 76, 38, 19, 10 and comes back to exactly 301.

State-dict keys are the official ones (``xuebinqin/U-2-Net``, ``model/u2net.py``):
``stage1 ... stage6``, ``stage5d ... stage1d``, ``side1 ... side6``, ``outconv``; inside a
block ``rebnconvin``, ``rebnconv1 ... rebnconvL``, ``rebnconv{L-1}d ... rebnconv1d``, each
with ``conv_s1`` and ``bn_s1``. The released files (plain state dicts) load with
[`load_checkpoint`][refimpl.checkpoints.load_checkpoint]. ``tests/test_u2net.py`` compares
every output with the official architecture as packaged in ``carvekit`` 4.1.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks

__all__ = [
    "ConvBNReLU",
    "DeepSupervisionLoss",
    "RSU",
    "SaliencyMaps",
    "Stage",
    "U2Net",
    "U2NET_FULL",
    "U2NET_LITE",
    "deep_supervision_loss",
    "u2net_full",
    "u2net_lite",
]


class ConvBNReLU(nn.Module):
    """3x3 convolution, BatchNorm, ReLU: every convolution inside an RSU (the official ``REBNCONV``).

    ``padding = dilation`` keeps the size: a 3x3 kernel with dilation ``d`` spans ``2d + 1``
    pixels.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        dilation: the convolution's dilation rate.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)
        self.bn_s1 = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_ch, H, W) -> (B, out_ch, H, W)``."""
        return F.relu(self.bn_s1(self.conv_s1(x)), inplace=True)


def _upsample_to(x: Tensor, size: torch.Size) -> Tensor:
    """Bilinear upsampling to an exact size (not a factor of 2: ceil-mode pooling of odd sizes rounds up)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RSU(nn.Module):
    r"""The residual U-block RSU-L: ``x_in + U_L(x_in)`` with ``x_in`` the input convolution's output.

    With ``dilated=False`` (RSU-7, 6, 5, 4), level ``i`` of the U runs at ``ceil(H / 2^(i-1))``:

    ```text
    x (C_in) -> rebnconvin -> x_in (C_out)
      rebnconv1 (C_out -> M) ............................ rebnconv1d (2M -> C_out)  level 1
        pool, rebnconv2 (M -> M) ........... rebnconv2d (2M -> M), upsample          level 2
          ...                                                                         ...
            pool, rebnconv{L-1} ... rebnconv{L-1}d (2M -> M), upsample                level L-1
                  rebnconvL (M -> M, dilation 2)                                      bottom
    ```

    The bottom convolution is dilated (rate 2) instead of pooled once more. With
    ``dilated=True`` (RSU-4F) there is no pooling and no upsampling: level ``i`` is a
    convolution with dilation ``2^(i-1)`` (1, 2, 4 and 8 at the bottom for ``L = 4``), the
    decoder at level ``i`` uses the same rate, and every map keeps the size ``H x W``.

    Args:
        height: ``L``, the levels of the U (at least 2).
        in_ch: ``C_in``.
        mid_ch: ``M``, the channels inside the U.
        out_ch: ``C_out``, the channels of ``x_in`` and of the output.
        dilated: RSU-LF (dilations instead of pooling) rather than RSU-L.
    """

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, dilated: bool = False) -> None:
        super().__init__()
        self.height, self.dilated = height, dilated
        L = height

        def rate(level: int) -> int:  # the dilation of encoder and decoder convolutions at a level
            return 2 ** (level - 1) if dilated else (2 if level == L else 1)

        self.rebnconvin = ConvBNReLU(in_ch, out_ch)
        for i in range(1, L + 1):  # encoder, then the bottom
            setattr(self, f"rebnconv{i}", ConvBNReLU(out_ch if i == 1 else mid_ch, mid_ch, rate(i)))
        for i in range(L - 1, 0, -1):  # decoder: each takes the level below (upsampled) and the skip
            setattr(self, f"rebnconv{i}d", ConvBNReLU(2 * mid_ch, out_ch if i == 1 else mid_ch, rate(i)))
        # The same modules, in the order the data flows (plain lists: the keys are the official ones above).
        self.encoder: list[ConvBNReLU] = [getattr(self, f"rebnconv{i}") for i in range(1, L)]
        self.decoder: list[ConvBNReLU] = [getattr(self, f"rebnconv{i}d") for i in range(L - 1, 0, -1)]

    @property
    def bottom(self) -> ConvBNReLU:
        """``rebnconvL``, the dilated convolution at the bottom of the U."""
        return getattr(self, f"rebnconv{self.height}")

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H, W)``."""
        x_in = self.rebnconvin(x)  # (B, C_out, H, W)
        skips = []
        h = x_in
        for i, conv in enumerate(self.encoder, start=1):
            h = conv(h)  # (B, M, h_i, w_i)
            skips.append(h)
            if not self.dilated and i < self.height - 1:  # no pooling before the dilated bottom
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)  # (B, M, ceil(h_i / 2), ceil(w_i / 2))
        h = self.bottom(h)  # (B, M, h_{L-1}, w_{L-1}): same size as the deepest skip
        for i, conv, skip in zip(range(self.height - 1, 0, -1), self.decoder, reversed(skips)):
            if not self.dilated and i < self.height - 1:  # come back up one level (the bottom was not pooled)
                h = _upsample_to(h, skip.shape[-2:])  # (B, M, h_i, w_i)
            h = conv(torch.cat((h, skip), 1))  # (B, 2M, h_i, w_i) -> (B, M or C_out, h_i, w_i)
        return h + x_in  # the residual: local features plus the U's multi-scale ones


class Stage(NamedTuple):
    """One RSU of the big U: its height and its I, M, O channels (the official code's values)."""

    height: int
    """``L``: RSU-L."""
    in_ch: int
    """I: input channels."""
    mid_ch: int
    """M: middle channels."""
    out_ch: int
    """O: output channels."""
    dilated: bool = False
    """RSU-LF (the "F" blocks: dilation instead of pooling)."""


U2NET_FULL: dict[str, tuple[Stage, ...]] = {
    "encoder": (Stage(7, 3, 32, 64), Stage(6, 64, 32, 128), Stage(5, 128, 64, 256), Stage(4, 256, 128, 512),
                Stage(4, 512, 256, 512, True), Stage(4, 512, 256, 512, True)),
    "decoder": (Stage(4, 1024, 256, 512, True), Stage(4, 1024, 128, 256), Stage(5, 512, 64, 128),
                Stage(6, 256, 32, 64), Stage(7, 128, 16, 64)),
}
"""U²-Net: ``En_1 ... En_6`` and ``De_5 ... De_1`` (official ``U2NET``)."""

U2NET_LITE: dict[str, tuple[Stage, ...]] = {
    "encoder": (Stage(7, 3, 16, 64), Stage(6, 64, 16, 64), Stage(5, 64, 16, 64), Stage(4, 64, 16, 64),
                Stage(4, 64, 16, 64, True), Stage(4, 64, 16, 64, True)),
    "decoder": (Stage(4, 128, 16, 64, True), Stage(4, 128, 16, 64), Stage(5, 128, 16, 64),
                Stage(6, 128, 16, 64), Stage(7, 128, 16, 64)),
}
"""U²-Net†: the same blocks with ``M = 16`` and ``O = 64`` everywhere (official ``U2NETP``)."""


class SaliencyMaps(NamedTuple):
    """What [`U2Net.forward`][refimpl.u2net.model.U2Net.forward] returns: probabilities in ``[0, 1]``, each ``(B, out_ch, H, W)``."""

    fused: Tensor
    """The final map: the 1x1 fusion of the six side maps, through a sigmoid (the official ``d0``)."""
    sides: tuple[Tensor, ...]
    """The side maps of ``De_1 ... De_5`` and ``En_6``, upsampled to ``H x W`` (the official ``d1 ... d6``)."""


class U2Net(nn.Module):
    """The two-level nested U: RSU stages in a U-Net, six side outputs and their fusion.

    Level ``i`` of the big U (``i = 1 ... n``, ``n = 6`` for both released sizes) runs at
    ``ceil(H / 2^(i-1))``: encoder stage ``stage{i}``, then a max-pool; the deepest encoder
    stage ``stage{n}`` is the bottom; decoder stage ``stage{i}d`` (``i = n-1 ... 1``) takes the
    level below, upsampled, concatenated with ``stage{i}``'s output. Side ``i`` is a 3x3
    convolution to ``out_ch`` channels on ``stage{i}d`` (on ``stage{n}`` for ``i = n``),
    upsampled to ``H x W``; ``outconv`` (1x1) fuses the ``n`` side maps.

    Args:
        encoder: ``n`` [`Stage`][refimpl.u2net.model.Stage]s, ``En_1 ... En_n``.
        decoder: ``n - 1`` stages, ``De_{n-1} ... De_1`` (the order the data reaches them).
        out_ch: channels of every map (1 for saliency).

    Raises:
        TypeError: if a stage is not 4 ints and an optional bool.
        ValueError: for fewer than 2 encoder stages, a decoder of another length, a height
            below 2, a channel count below 1, or channels that do not chain (a decoder stage's
            input must be the level below's output plus the skip's).
    """

    def __init__(self, encoder: Sequence[Sequence], decoder: Sequence[Sequence], out_ch: int = 1) -> None:
        super().__init__()
        enc, dec = _stages(encoder, "encoder"), _stages(decoder, "decoder")
        out_ch = checks.integer(out_ch, "out_ch", 1, "1")
        n = len(enc)
        if n < 2:
            raise ValueError(f"encoder has {n} stage(s); expected at least 2 (6 for U²-Net)")
        if len(dec) != n - 1:
            raise ValueError(f"decoder has {len(dec)} stages for {n} encoder stages; expected {n - 1}")
        for i in range(1, n):
            if enc[i].in_ch != enc[i - 1].out_ch:
                raise ValueError(f"encoder[{i}] takes {enc[i].in_ch} channels but encoder[{i - 1}] gives "
                                 f"{enc[i - 1].out_ch}; expected equal")
        below = enc[-1].out_ch
        for j, stage in enumerate(dec):
            level = n - 1 - j  # decoder[j] is De_level
            expected = below + enc[level - 1].out_ch
            if stage.in_ch != expected:
                raise ValueError(f"decoder[{j}] (De_{level}) takes {stage.in_ch} channels; expected {expected} "
                                 f"(the level below gives {below}, the skip from En_{level} {enc[level - 1].out_ch})")
            below = stage.out_ch
        self.in_ch, self.out_ch, self.levels = enc[0].in_ch, out_ch, n

        for i, s in enumerate(enc, start=1):
            setattr(self, f"stage{i}", RSU(*s))
        for j, s in enumerate(dec):
            setattr(self, f"stage{n - 1 - j}d", RSU(*s))
        side_in = [s.out_ch for s in reversed(dec)] + [enc[-1].out_ch]  # De_1 ... De_{n-1}, En_n
        for i, ch in enumerate(side_in, start=1):
            setattr(self, f"side{i}", nn.Conv2d(ch, out_ch, 3, padding=1))
        self.outconv = nn.Conv2d(n * out_ch, out_ch, 1)
        # The same modules in data-flow order (plain lists; the keys are the official names above).
        self.encoder: list[RSU] = [getattr(self, f"stage{i}") for i in range(1, n)]
        self.decoder: list[RSU] = [getattr(self, f"stage{i}d") for i in range(n - 1, 0, -1)]
        self.sides: list[nn.Conv2d] = [getattr(self, f"side{i}") for i in range(1, n + 1)]

    @property
    def bottom(self) -> RSU:
        """``stage{n}``, the deepest encoder stage (``En_6``)."""
        return getattr(self, f"stage{self.levels}")

    def forward(self, x: Tensor) -> SaliencyMaps:
        """Saliency probabilities for a batch of images.

        The official forward returns the same seven maps as a tuple ``(d0, d1, ..., d6)``,
        each through a sigmoid; here they are named: ``fused`` is ``d0``, ``sides[i]`` is
        ``d{i+1}``.

        Args:
            x: ``(B, C, H, W)`` floating images, finite, ``C`` the first stage's input
                channels (3), in the parameters' dtype; any ``H, W``. The released weights
                expect 320 x 320 inputs normalised as [`normalize`][refimpl.u2net.cutout.normalize] does.

        Returns:
            [`SaliencyMaps`][refimpl.u2net.model.SaliencyMaps], every map ``(B, out_ch, H, W)``.

        Raises:
            TypeError: if ``x`` is not a floating tensor in the parameters' dtype.
            ValueError: if ``x`` is not 4-D with ``C`` channels, is an empty batch, or holds NaN
                or infinity.
        """
        layout = f"(B, {self.in_ch}, H, W)"
        x = checks.images(x, "x", layout, 4, self.outconv.weight.dtype, nonempty=True)
        if x.shape[1] != self.in_ch:
            raise ValueError(f"x has shape {tuple(x.shape)}: {x.shape[1]} channels; expected {layout}")
        size = x.shape[-2:]
        skips = []
        h = x
        for stage in self.encoder:
            h = stage(h)  # (B, O_i, h_i, w_i)
            skips.append(h)
            h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)  # (B, O_i, ceil(h_i / 2), ceil(w_i / 2))
        h = self.bottom(h)  # (B, O_n, h_n, w_n)
        side_features = [h]  # En_n, then De_{n-1} ... De_1
        for stage, skip in zip(self.decoder, reversed(skips)):
            h = _upsample_to(h, skip.shape[-2:])  # (B, O, h_i, w_i)
            h = stage(torch.cat((h, skip), 1))  # (B, O + O_i, h_i, w_i) -> (B, O_i^d, h_i, w_i)
            side_features.append(h)
        side_features.reverse()  # De_1 ... De_{n-1}, En_n: side1 ... side_n
        side_logits = [_upsample_to(conv(f), size) for conv, f in zip(self.sides, side_features)]  # n x (B, out_ch, H, W)
        fused = self.outconv(torch.cat(side_logits, 1))  # (B, n * out_ch, H, W) -> (B, out_ch, H, W)
        return SaliencyMaps(torch.sigmoid(fused), tuple(torch.sigmoid(s) for s in side_logits))


def _stages(value: object, name: str) -> tuple[Stage, ...]:
    """``value`` as Stages: each a [`Stage`][refimpl.u2net.model.Stage] or ``(L, I, M, O)`` / ``(L, I, M, O, dilated)``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of stages (height, in_ch, mid_ch, out_ch[, dilated]), "
                        f"got {type(value).__name__}")
    stages = []
    for i, row in enumerate(value):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) not in (4, 5):
            raise TypeError(f"{name}[{i}]={row!r}; expected (height, in_ch, mid_ch, out_ch[, dilated]) "
                            f"such as (7, 3, 32, 64) or (4, 512, 256, 512, True)")
        height = checks.integer(row[0], f"{name}[{i}].height", 2, "7")
        channels = [checks.integer(v, f"{name}[{i}].{field}", 1, "64")
                    for v, field in zip(row[1:4], ("in_ch", "mid_ch", "out_ch"))]
        dilated = row[4] if len(row) == 5 else False
        if not isinstance(dilated, bool):
            raise TypeError(f"{name}[{i}].dilated must be a bool, got {type(dilated).__name__} {dilated!r}")
        stages.append(Stage(height, *channels, dilated))
    return tuple(stages)


def u2net_full(out_ch: int = 1) -> U2Net:
    """U²-Net, 44.0 M parameters (the release ``u2net.pth``; the abstract gives 176.3 MB)."""
    return U2Net(**U2NET_FULL, out_ch=out_ch)


def u2net_lite(out_ch: int = 1) -> U2Net:
    """U²-Net†, the small one, 1.13 M parameters (the release ``u2netp.pth``; the abstract gives 4.7 MB)."""
    return U2Net(**U2NET_LITE, out_ch=out_ch)


class DeepSupervisionLoss(NamedTuple):
    """What [`deep_supervision_loss`][refimpl.u2net.model.deep_supervision_loss] returns."""

    total: Tensor
    """Scalar: the fused map's loss plus the six side maps' (what is minimised)."""
    fused: Tensor
    """Scalar: the fused map's loss alone (what the official training script logs as ``loss0``)."""


def deep_supervision_loss(maps: SaliencyMaps, target: Tensor) -> DeepSupervisionLoss:
    r"""Binary cross-entropy on the fused map and on every side map, summed with weight 1.

    $$\mathcal{L} = \ell(\hat S_{\mathrm{fuse}}, G) + \sum_{m=1}^{6} \ell(\hat S^{(m)}_{\mathrm{side}}, G),
    \qquad \ell(\hat S, G) = -\frac{1}{N}\sum_{p} \big[G_p \log \hat S_p + (1 - G_p) \log(1 - \hat S_p)\big]$$

    over the ``N = B * out_ch * H * W`` pixels ``p``: the official training script's
    ``muti_bce_loss_fusion`` (``nn.BCELoss`` with mean reduction on each map, the seven
    summed). It works on probabilities, as the official one does: PyTorch clamps each log at
    -100, so a map that is exactly 0 or 1 gives a large finite loss, not infinity.

    Args:
        maps: the model's output.
        target: ground truth of the fused map's shape ``(B, out_ch, H, W)``, floating, in
            ``[0, 1]`` (1 = salient; a soft mask is allowed).

    Returns:
        [`DeepSupervisionLoss`][refimpl.u2net.model.DeepSupervisionLoss].

    Raises:
        TypeError: if ``target`` is not a floating tensor.
        ValueError: if its shape differs from the maps' or a value lies outside ``[0, 1]``.
    """
    fused = maps.fused
    target = checks.floating(target, "target", "(B, out_ch, H, W)", 4)
    if target.shape != fused.shape:
        raise ValueError(f"target has shape {tuple(target.shape)}; expected the maps' shape {tuple(fused.shape)}")
    checks.holds((target >= 0) & (target <= 1), "target holds values outside [0, 1]; expected a mask in [0, 1]")
    target = target.to(fused.dtype)
    loss_fused = F.binary_cross_entropy(fused, target)
    total = loss_fused + sum(F.binary_cross_entropy(side, target) for side in maps.sides)
    return DeepSupervisionLoss(total, loss_fused)
