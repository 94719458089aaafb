r"""Position encodings in SAM 2: sine tables, random Fourier features, 2-D rotary encodings.

SAM 2 uses four, each in its place:

- **2-D sine table** ([`sine_table_2d`][refimpl.sam2.position.sine_table_2d]), fixed: the
  position of every pixel of the image features (the FPN neck) and of the memories (the memory
  encoder); the DETR form, ``D / 2`` channels for ``y`` then ``D / 2`` for ``x``, sine and cosine
  interleaved.
- **1-D sine encoding** ([`sine_encoding_1d`][refimpl.sam2.position.sine_encoding_1d]): how far
  in time an object pointer is from the current frame (SAM 2.1 code; the v1 paper gives temporal
  position to the recent frames' memories only, SAM 2 §4, App. C.1).
- **Random Fourier features**
  ([`RandomFourierEncoding`][refimpl.sam2.position.RandomFourierEncoding]), SAM's prompt
  encoding: a point's ``(x, y)`` in ``[0, 1]`` is multiplied by a fixed random ``2 x D/2`` matrix
  and goes through sine and cosine; the same map gives the dense encoding of the image grid
  that the mask decoder adds to the image features.
- **2-D rotary encoding** (RoPE, [`axial_rope`][refimpl.sam2.position.axial_rope] and
  [`apply_rope`][refimpl.sam2.position.apply_rope]) in the memory attention
  (SAM 2 App. C.1, §8.2.2, Tab. 11): query and key vectors are rotated by angles that depend on their row and
  column, so the attention score depends on the relative offset. Object pointers are not
  rotated.

Shapes: ``h, w`` a grid, ``D`` a width, ``N = h * w``, ``d_h`` a head's width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable

import torch
from torch import Tensor, nn

__all__ = ["sine_table_2d", "sine_encoding_1d", "RandomFourierEncoding", "axial_rope", "apply_rope", "cached_table"]


def cached_table(cache: dict[Hashable, Tensor], key: Hashable, build: Callable[[], Tensor]) -> Tensor:
    """``cache[key]``, built by ``build()`` the first time: a module's fixed table, once per size and device.

    It is built outside ``inference_mode`` (and without autograd), so the same plain tensor also
    serves a later call that trains.
    """
    if key not in cache:
        with torch.inference_mode(False), torch.no_grad():
            cache[key] = build()
    return cache[key]


def _frequencies(count: int, temperature: float, device: torch.device | None = None) -> Tensor:
    """``temperature ** (2 * floor(i / 2) / count)`` for ``i < count``: each frequency used twice."""
    i = torch.arange(count, dtype=torch.float32, device=device)
    return temperature ** (2 * (i // 2) / count)


def sine_table_2d(h: int, w: int, dim: int, temperature: float = 10000.0, device: torch.device | None = None) -> Tensor:
    """The fixed 2-D sine position table of a ``h x w`` grid (DETR's, used by SAM 2's neck and memories).

    Rows and columns are numbered from 1 and divided by their count (plus 1e-6), then scaled by
    ``2 pi``; channel pair ``(2j, 2j + 1)`` of each half holds ``sin, cos`` of that coordinate
    over ``temperature ** (2j / (D / 2))``. The ``y`` half comes first.

    Args:
        h: rows.
        w: columns.
        dim: ``D``, even.
        temperature: base of the frequency ladder.
        device: where to build it.

    Returns:
        ``(D, h, w)``.

    Raises:
        ValueError: if ``dim`` is odd.

    Examples:
        >>> t = sine_table_2d(2, 3, 4)
        >>> t.shape
        torch.Size([4, 2, 3])
        >>> t[1].tolist()  # cos(2 pi y / h) for the two rows
        [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
    """
    if dim % 2:
        raise ValueError(f"dim={dim}; expected an even width (half for y, half for x)")
    half = dim // 2
    scale = 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(-1, 1).expand(h, w)  # (h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, -1).expand(h, w)  # (h, w)
    y = y / (y[-1:, :] + 1e-6) * scale  # normalised to (0, 2 pi]
    x = x / (x[:, -1:] + 1e-6) * scale
    freq = _frequencies(half, temperature, device)  # (D/2,)
    pos_y, pos_x = y[..., None] / freq, x[..., None] / freq  # (h, w, D/2) each
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=3).flatten(2)  # interleave sin, cos
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=3).flatten(2)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)  # (h, w, D) -> (D, h, w)


def sine_encoding_1d(positions: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """Sine and cosine of ``positions`` at ``dim / 2`` frequencies: sines first, then cosines.

    Args:
        positions: ``(P,)`` real positions (SAM 2.1: a pointer's frame distance divided by the
            largest one possible).
        dim: ``D``, even.
        temperature: base of the frequency ladder.

    Returns:
        ``(P, D)``.

    Examples:
        >>> sine_encoding_1d(torch.tensor([0.0]), 4).tolist()
        [[0.0, 0.0, 1.0, 1.0]]
    """
    freq = _frequencies(dim // 2, temperature, positions.device)  # (D/2,)
    angles = positions.unsqueeze(-1) / freq  # (P, D/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class RandomFourierEncoding(nn.Module):
    """SAM's prompt position encoding: random Fourier features of ``(x, y)`` (``pe_layer`` officially).

    The official class is ``PositionEmbeddingRandom`` (``sam2/modeling/position_encoding.py``);
    the name here says what it computes.

    ``[sin(2 pi (2p - 1) G), cos(2 pi (2p - 1) G)]`` for a point ``p`` in ``[0, 1]^2`` and a fixed
    Gaussian ``G`` of shape ``(2, D/2)``, a buffer saved in the state dict
    (``positional_encoding_gaussian_matrix``).

    Args:
        num_pos_feats: ``D / 2``.
        scale: standard deviation of ``G`` (1).
    """

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def encode(self, coords: Tensor) -> Tensor:
        """``(..., 2)`` coordinates in ``[0, 1]`` -> ``(..., D)`` features."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix  # (..., D/2), in [-1, 1] first
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def grid(self, h: int, w: int) -> Tensor:
        """The encoding of every cell centre of a ``h x w`` grid: ``(D, h, w)``."""
        device = self.positional_encoding_gaussian_matrix.device
        ones = torch.ones((h, w), device=device, dtype=torch.float32)
        y = (ones.cumsum(dim=0) - 0.5) / h  # (h, w): cell centres in (0, 1)
        x = (ones.cumsum(dim=1) - 0.5) / w
        return self.encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)  # (h, w, D) -> (D, h, w)

    def points(self, coords: Tensor, image_size: tuple[int, int]) -> Tensor:
        """Encode pixel coordinates ``(B, N, 2)`` (``x, y``) of an ``image_size = (H, W)`` image: ``(B, N, D)``."""
        coords = coords.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self.encode(coords.to(torch.float))


def axial_rope(dim: int, end_x: int, end_y: int, theta: float = 10000.0) -> Tensor:
    """Unit complex rotations for 2-D RoPE on a ``end_y x end_x`` grid (SAM 2 App. C.1).

    A head of width ``d_h`` is read as ``d_h / 2`` complex numbers; the first ``d_h / 4`` are
    rotated by the column ``x`` times ``theta ** (-4k / d_h)``, the last ``d_h / 4`` by the row
    ``y`` at the same frequencies. Token ``n`` of the raster order sits at ``x = n % end_x``,
    ``y = n // end_x``.

    Args:
        dim: ``d_h``, a multiple of 4.
        end_x: columns.
        end_y: rows.
        theta: base of the frequency ladder.

    Returns:
        Complex ``(end_x * end_y, d_h / 2)``.

    Raises:
        ValueError: if ``dim`` is not a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"dim={dim}; expected a head width divisible by 4 (half for x, half for y, complex pairs)")
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))  # (d_h/4,)
    t = torch.arange(end_x * end_y, dtype=torch.float32)
    t_x, t_y = t % end_x, torch.div(t, end_x, rounding_mode="floor")  # column and row of each token
    angle_x, angle_y = torch.outer(t_x, freqs), torch.outer(t_y, freqs)  # (N, d_h/4) each
    rot_x = torch.polar(torch.ones_like(angle_x), angle_x)
    rot_y = torch.polar(torch.ones_like(angle_y), angle_y)
    return torch.cat([rot_x, rot_y], dim=-1)  # (N, d_h/2)


def apply_rope(x: Tensor, rotations: Tensor, repeat: int = 1) -> Tensor:
    """Rotate every head vector of ``x`` by its token's rotation (RoPE).

    Args:
        x: ``(B, heads, N, d_h)`` queries or keys, ``N = repeat * N_grid``.
        rotations: complex ``(N_grid, d_h / 2)`` from [`axial_rope`][refimpl.sam2.position.axial_rope].
        repeat: how many grids ``x`` holds one after the other (memories of several frames: each
            frame's memory gets the same rotations).

    Returns:
        ``(B, heads, N, d_h)`` in the dtype of ``x``.
    """
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (B, heads, N, d_h/2)
    if repeat > 1:  # (N_grid, d_h/2) -> (repeat * N_grid, d_h/2): the grid once per frame
        rotations = rotations.unsqueeze(0).expand(repeat, -1, -1).flatten(0, 1)
    return torch.view_as_real(pairs * rotations).flatten(3).type_as(x)
