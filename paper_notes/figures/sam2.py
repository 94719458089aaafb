"""Figures for the SAM 2 concept page (docs/concepts/sam2.md), computed by ``refimpl.sam2``.

- ``sam2/windows_and_units.svg``: where attention is cut in MAE-Hiera (mask units, some removed)
  and in SAM 2's trunk (square windows over the full grid, zero-padded, shrinking with the queries
  at a stage transition), on toy grids; the windows come from
  [`window_partition`][refimpl.sam2.image_encoder.window_partition].
- ``sam2/block_layout.svg``: every block of the four released trunks, built on the meta device
  from [`SIZES`][refimpl.sam2.build.SIZES]: its stage, its window (or global attention), where
  the queries are pooled, and how many pixels a window spans.
- ``sam2/memory_selection.svg``: which frames a tracking step attends to, frame by frame over a
  clip with two prompted frames, from [`MemoryBank.select`][refimpl.sam2.memory_bank.MemoryBank.select]
  itself; and how many memory tokens that makes at 1024 pixels.
- ``sam2/memory_one_prompt.svg``: the same with one prompt on frame 0, as a table: for every frame
  ``t``, the memory maps, object pointers and keys that ``select`` gives, and the frames where
  each count stops growing ([`saturation`][paper_notes.figures.sam2.saturation]).
- ``sam2/rope_offsets.svg``: the attention score between a query and keys rotated by
  [`axial_rope`][refimpl.sam2.position.axial_rope] depends only on the offset: the map for a
  query at another place is the same map, shifted.

- ``sam2/auto_grid.svg``: where automatic mode clicks: the crops of
  [`crop_boxes`][refimpl.sam2.automatic_mask_generator.crop_boxes] and the grid of
  [`point_grid`][refimpl.sam2.automatic_mask_generator.point_grid] in each, placed as the
  generator places them ([`auto_clicks`][paper_notes.figures.sam2.auto_clicks]).
- ``sam2/stability.svg``: the stability score of
  [`stability_score`][refimpl.sam2.automatic_mask_generator.stability_score] as the cut moves,
  on two synthetic round logit maps, one with a steep and one with a gentle edge
  ([`stability_curve`][paper_notes.figures.sam2.stability_curve]).

The pure helpers (``block_layout``, ``memory_schedule``, ``memory_token_count``, ``saturation``,
``rope_scores``, ``auto_clicks``, ``stability_curve``) return the data the figures draw; ``tests/test_figures_sam2.py`` checks them and renders every figure.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from refimpl.sam2.automatic_mask_generator import Crop, crop_boxes, point_grid, stability_score
from refimpl.sam2.build import SIZES, SAM2Config
from refimpl.sam2.image_encoder import Hiera, window_partition
from refimpl.sam2.memory_bank import MemoryBank, MemoryEntry
from refimpl.sam2.position import apply_rope, axial_rope

from ._grid import board_axes

HUES = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
SIZE_NAMES = {"tiny": "T", "small": "S", "base_plus": "B+", "large": "L"}
PATCH_STRIDE = 4  # the patch embedding's stride: a stage-1 token is 4 x 4 pixels


def _build_defaults() -> dict[str, object]:
    """The defaults of [`SAM2Config`][refimpl.sam2.build.SAM2Config] (window_spec, image size, widths)."""
    return {f.name: f.default for f in dataclasses.fields(SAM2Config) if f.default is not dataclasses.MISSING}


# --- windows and mask units -------------------------------------------------------------------


def window_ids(h: int, w: int, window: int) -> np.ndarray:
    """For every cell of the zero-padded ``h x w`` grid, the window it falls in (``-1``: padding).

    Computed by [`window_partition`][refimpl.sam2.image_encoder.window_partition] on a grid of
    token ids, so the picture is what the trunk does.

    Returns:
        ``(h_pad, w_pad)`` window indices in raster order of the windows.
    """
    ids = torch.arange(1, h * w + 1, dtype=torch.float32).reshape(1, h, w, 1)  # 0 is left for padding
    windows, (hp, wp) = window_partition(ids, window)  # (nW, ws, ws, 1)
    out = np.full((hp, wp), -1, dtype=int)
    for k, win in enumerate(windows[..., 0].numpy()):
        for token in win.flatten():
            if token > 0:  # zeros are the padding window_partition added
                r, c = divmod(int(token) - 1, w)
                out[r, c] = k
    return out


def _grid(ax, labels: np.ndarray, title: str, hatch_negative: bool = True, removed: set[int] = frozenset(),
          fontsize: float = 6) -> None:
    rows, cols = labels.shape
    for r in range(rows):
        for c in range(cols):
            k = int(labels[r, c])
            pad = k < 0
            gone = k in removed
            face = (0.97, 0.97, 0.97) if pad else (0.88, 0.88, 0.88) if gone else HUES[k % len(HUES)]
            ax.add_patch(Rectangle((c, rows - 1 - r), 1, 1, facecolor=face, edgecolor="white", linewidth=0.6,
                                   hatch="///" if pad and hatch_negative else None))
            if not pad:
                ax.text(c + 0.5, rows - 0.5 - r, str(k), ha="center", va="center", fontsize=fontsize,
                        color="0.55" if gone else "white")
    board_axes(ax, rows, cols, title, margin=0.2, fontsize=8)


def windows_and_units() -> Figure:
    """MAE-Hiera's mask units (sparse) next to SAM 2's windows (dense, padded, shrinking after pooling)."""
    fig = Figure(figsize=(12, 3.9))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [8, 12, 6]})
    side, unit = 8, 4
    units = np.array([[(r // unit) * (side // unit) + c // unit for c in range(side)] for r in range(side)])
    _grid(axes[0], units, "MAE-Hiera 第 1 阶段：8 × 8 个 token，4 个掩码单元\n"
                          "单元 1、2 被掩码去掉（灰色）；注意力只在\n"
                          "每个保留的单元之内（展开重排后的顺序）", removed={1, 2})
    _grid(axes[1], window_ids(10, 10, 4), "SAM 2 主干：10 × 10 个 token，窗口边长 4\n"
                                          "什么也不去掉；网格补零到 12 × 12（斜线），\n"
                                          "window_partition 切出 9 个窗口")
    _grid(axes[2], window_ids(5, 5, 2), "查询池化 (2 × 2) 之后：\n5 × 5 个 token，窗口边长 4 / 2 = 2，\n"
                                        "补零到 6 × 6")
    return fig


# --- the trunk, block by block ----------------------------------------------------------------


@dataclass(frozen=True)
class BlockInfo:
    """One block of a SAM 2 trunk as built by [`Hiera`][refimpl.sam2.image_encoder.Hiera]."""

    index: int
    stage: int
    """0-3: the stage of the block's output."""
    window: int
    """Window side in tokens of the block's input grid; 0 = global attention."""
    pooled: bool
    """Queries max-pooled here (first block of stages 2-4)."""
    input_stride: int
    """Pixels per token of the block's input grid (4, 8, 16, 32)."""

    @property
    def window_pixels(self) -> int:
        """The window's side in pixels of the input image (0 for global attention)."""
        return self.window * self.input_stride


def block_layout(size: str) -> list[BlockInfo]:
    """Every block of a released trunk (``"tiny"``, ``"small"``, ``"base_plus"``, ``"large"``), built on the meta device."""
    args = {**_build_defaults(), **SIZES[size]}
    params = inspect.signature(Hiera).parameters
    with torch.device("meta"):
        trunk = Hiera(**{k: v for k, v in args.items() if k in params})
    blocks, stage = [], 0
    for i, block in enumerate(trunk.blocks):
        input_stage = stage
        if i - 1 in trunk.stage_ends:
            stage += 1
        blocks.append(BlockInfo(i, stage, block.window, block.q_stride is not None, PATCH_STRIDE * 2**input_stage))
    return blocks


def block_layout_figure() -> Figure:
    """Four rows, one per released size: block, stage (colour), window in tokens and pixels, global blocks."""
    stage_colors = ["#c6dbef", "#9ecae1", "#6baed6", "#3182bd"]
    fig = Figure(figsize=(13, 5.2))
    axes = fig.subplots(4, 1)
    for ax, size in zip(axes, SIZE_NAMES):
        layout = block_layout(size)
        for b in layout:
            face = "#d62728" if b.window == 0 else stage_colors[b.stage]
            ax.add_patch(Rectangle((b.index, 0), 0.92, 1, facecolor=face, edgecolor="black", linewidth=0.4))
            label = "G" if b.window == 0 else str(b.window)
            ax.text(b.index + 0.46, 0.5, label, ha="center", va="center", fontsize=6,
                    color="white" if b.window == 0 or b.stage == 3 else "black")
            if b.pooled:
                ax.plot(b.index + 0.46, -0.28, marker="v", color="black", markersize=4)
        pixels = []
        for s in range(4):
            sizes = sorted({b.window_pixels for b in layout if b.stage == s and b.window and not b.pooled})
            pixels.append("/".join(str(p) for p in sizes) or "-")
        glob = ", ".join(str(b.index) for b in layout if b.window == 0)
        ax.set_xlim(-0.5, 49)
        ax.set_ylim(-0.6, 1.2)
        ax.axis("off")
        ax.set_title(f"Hiera-{SIZE_NAMES[size]}：{len(layout)} 个块；全局注意力（红色 G）在块 {glob}（从 0 数）；"
                     f"各阶段窗口边长（像素）：{', '.join(pixels)}", fontsize=8, loc="left")
    fig.text(0.01, 0.01, "块里的数字 = 窗口边长（以该块输入网格的 token 计）；三角 = 查询在此做 2 × 2 最大池化"
                         "（第 2–4 阶段的第一个块，它仍用上一阶段的窗口）；蓝色由浅到深 = 第 1–4 阶段", fontsize=7)
    return fig


# --- the memory bank over a clip --------------------------------------------------------------


@dataclass(frozen=True)
class StepMemories:
    """What one tracking step attends to, as [`MemoryBank.select`][refimpl.sam2.memory_bank.MemoryBank.select] chose it."""

    frame: int
    spatial: tuple[tuple[int, int], ...]
    """``(frame, t_pos)`` of each spatial memory, in attention order (t_pos 0: prompted)."""
    pointers: tuple[tuple[int, int], ...]
    """``(frame, signed distance)`` of each object pointer."""


def _entry(frame: int) -> MemoryEntry:
    """A one-number memory whose values say which frame it came from (exact in bfloat16 below 256)."""
    value = torch.full((1, 1, 1, 1), float(frame))
    return MemoryEntry(value, value, torch.full((1, 1), float(frame)))


def memory_schedule(num_frames: int = 20, prompted: tuple[int, ...] = (0, 12)) -> list[StepMemories]:
    """Track a clip forward as the official video predictor does, and record every step's selection.

    The prompted frames enter the bank first (the predictor runs them when the user clicks); then
    every other frame, in order, selects its memories and adds its own to the recent queue.

    Args:
        num_frames: frames in the clip (fewer than 256).
        prompted: the prompted frames.

    Returns:
        One [`StepMemories`][paper_notes.figures.sam2.StepMemories] per tracked frame.
    """
    bank = MemoryBank()
    for t in prompted:
        bank.add(t, _entry(t), prompted=True)
    steps = []
    for t in range(num_frames):
        if t in prompted:
            continue
        chosen = bank.select(t, num_frames)
        spatial = tuple((int(e.features.float().item()), t_pos) for t_pos, e in chosen.spatial)
        pointers = tuple((int(p.item()), d) for d, p in chosen.pointers)
        steps.append(StepMemories(t, spatial, pointers))
        bank.add(t, _entry(t), prompted=False)
    return steps


def memory_token_count(step: StepMemories, image_size: int | None = None, d_model: int | None = None,
                       mem_dim: int | None = None) -> int:
    """Keys the memory attention of this step reads: ``h * w`` per spatial memory, ``D / D_mem`` per pointer.

    With the released sizes (the defaults of [`SAM2Config`][refimpl.sam2.build.SAM2Config]:
    ``S = 1024``, stride 16, ``D = 256``, ``D_mem = 64``): 4096 tokens per frame and 4 per pointer.
    """
    defaults = _build_defaults()
    side = int(image_size or defaults["image_size"]) // 16
    split = int(d_model or defaults["d_model"]) // int(mem_dim or defaults["mem_dim"])
    return len(step.spatial) * side * side + len(step.pointers) * split


SELECTION_CLIP = (20, (0, 12))
"""``(frames, prompted frames)`` of the clip ``memory_selection`` draws (the page's text names them)."""


def memory_selection() -> Figure:
    """Rows: the frame being tracked; columns: frames of the clip; squares: spatial memories; dots: pointers."""
    num_frames, prompted = SELECTION_CLIP
    steps = memory_schedule(num_frames, prompted)
    fig = Figure(figsize=(11, 6.6))
    ax = fig.subplots()
    rows = len(steps)
    shade = mcolors.LinearSegmentedColormap.from_list("recent", ["#c6dbef", "#08519c"])
    for r, step in enumerate(steps):
        y = rows - 1 - r
        ax.add_patch(Rectangle((step.frame, y), 1, 1, facecolor="none", edgecolor="black", linewidth=1.4))
        for frame, t_pos in step.spatial:
            face = "#d62728" if t_pos == 0 else shade((t_pos - 1) / 5)
            ax.add_patch(Rectangle((frame + 0.08, y + 0.08), 0.84, 0.84, facecolor=face, edgecolor="none"))
            ax.text(frame + 0.5, y + 0.5, "P" if t_pos == 0 else str(t_pos), ha="center", va="center",
                    fontsize=6, color="white")
        for frame, _ in step.pointers:
            ax.plot(frame + 0.5, y + 0.16, marker="o", markersize=2.6, color="black")
        ax.text(num_frames + 0.3, y + 0.5, f"{len(step.spatial)} 张图 + {len(step.pointers)} 个指针 = "
                                             f"{memory_token_count(step):,} 个键", va="center", fontsize=6.5)
    ax.set_xlim(0, num_frames + 6.5)
    ax.set_ylim(0, rows)
    ax.set_xticks([f + 0.5 for f in range(num_frames)], [str(f) for f in range(num_frames)], fontsize=7)
    ax.set_yticks([rows - 0.5 - r for r in range(rows)], [str(s.frame) for s in steps], fontsize=7)
    ax.set_xlabel(f"视频里的帧（提示帧：{' 和 '.join(map(str, prompted))}）", fontsize=8)
    ax.set_ylabel("正在跟踪的帧（方框）", fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title("MemoryBank.select 的结果：红色 P = 提示帧 (t_pos 0)，蓝色 1–6 = 最近帧（t_pos；6 = 上一帧），"
                 "黑点 = 对象指针 (object pointer)；键数按 1024 px 计", fontsize=8, loc="left")
    return fig


def saturation(steps: list[StepMemories]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((frame, maps), (frame, pointers))``: the largest number of memory maps and of object pointers
    any step reads, each with the first frame that reads that many (the frame a count stops growing)."""
    maps = max(len(s.spatial) for s in steps)
    pointers = max(len(s.pointers) for s in steps)
    return ((next(s.frame for s in steps if len(s.spatial) == maps), maps),
            (next(s.frame for s in steps if len(s.pointers) == pointers), pointers))


ONE_PROMPT_FRAMES = 19
"""Frames of the clip in ``memory_one_prompt``: the counts stop growing at frame 16, whatever the length."""


def memory_one_prompt() -> Figure:
    """One prompt on frame 0: a table of the maps, pointers and keys each frame ``t`` reads, from ``select``."""
    steps = memory_schedule(ONE_PROMPT_FRAMES, prompted=(0,))
    (map_frame, max_maps), (pointer_frame, max_pointers) = saturation(steps)
    per_map = memory_token_count(StepMemories(0, ((0, 0),), ()))  # 4096 at the released sizes
    per_pointer = memory_token_count(StepMemories(0, (), ((0, 0),)))  # 4
    rows = [("空间记忆图", [len(s.spatial) for s in steps], max_maps, "#08519c", "#c6dbef"),
            ("对象指针\n(object pointer)", [len(s.pointers) for s in steps], max_pointers, "#006d2c", "#c7e9c0"),
            ("键数 (key)", [memory_token_count(s) for s in steps], None, None, None)]
    label_width = 2.6
    fig = Figure(figsize=(9, 2.3))
    ax = fig.subplots()
    height = len(rows) + 1
    ax.text(label_width - 0.15, height - 0.5, "当前帧 t", ha="right", va="center", fontsize=8)
    for c, step in enumerate(steps):
        ax.text(label_width + c + 0.5, height - 0.5, str(step.frame), ha="center", va="center", fontsize=8)
    for r, (label, values, full, dark, light) in enumerate(rows):
        y = height - 2 - r
        ax.text(label_width - 0.15, y + 0.5, label, ha="right", va="center", fontsize=8)
        for c, value in enumerate(values):
            if full is None:
                face, ink = "#f0f0f0", "black"
            else:  # light -> dark as the count grows; full = the most any step reads
                face = dark if value == full else mcolors.to_hex(
                    np.add(np.multiply(mcolors.to_rgb(light), 1 - 0.6 * value / full),
                           np.multiply(mcolors.to_rgb(dark), 0.6 * value / full)))
                ink = "white" if value == full else "black"
            ax.add_patch(Rectangle((label_width + c, y), 1, 1, facecolor=face, edgecolor="white", linewidth=1))
            ax.text(label_width + c + 0.5, y + 0.5, str(value), ha="center", va="center",
                    fontsize=6.8 if full is None else 8, color=ink)
    ax.set_xlim(0, label_width + len(steps))
    ax.set_ylim(0, height)
    ax.axis("off")
    ax.set_title(f"只在第 0 帧有提示：第 {map_frame} 帧起读满 {max_maps} 张空间记忆图，第 {pointer_frame} 帧起读满 "
                 f"{max_pointers} 个对象指针（深色 = 读满）\n每个数都由 MemoryBank.select 逐帧算出；"
                 f"键数 = 图数 × {per_map} + 指针数 × {per_pointer}（{_build_defaults()['image_size']} px）",
                 fontsize=8.5, loc="left")
    return fig


# --- RoPE -------------------------------------------------------------------------------------


def rope_scores(side: int, head_dim: int, query: tuple[int, int], theta: float = 10000.0) -> np.ndarray:
    """Score ``<R(query) q, R(key) q>`` of one vector ``q`` (all ones) against itself at every key position.

    Query and keys are rotated by [`apply_rope`][refimpl.sam2.position.apply_rope] with the
    rotations of [`axial_rope`][refimpl.sam2.position.axial_rope] on a ``side x side`` grid.

    Returns:
        ``(side, side)`` scores over the key positions.
    """
    n = side * side
    rotations = axial_rope(head_dim, side, side, theta)  # (N, d_h/2) complex
    x = torch.ones(1, 1, n, head_dim, dtype=torch.float64)
    rotated = apply_rope(x, rotations.to(torch.complex128))[0, 0]  # (N, d_h): the vector at every position
    qi = query[0] * side + query[1]
    return (rotated @ rotated[qi]).reshape(side, side).numpy()


def rope_offsets() -> Figure:
    """Two query positions: the score maps are the same picture, shifted by the offset between them."""
    side, dim = 24, 256  # a head of the released memory attention is 256 wide (1 head)
    queries = [(8, 8), (14, 11)]
    maps = [rope_scores(side, dim, q) for q in queries]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    vmin, vmax = min(m.min() for m in maps), max(m.max() for m in maps)
    for ax, q, m in zip(axes, queries, maps):
        image = ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax)
        ax.plot(q[1], q[0], marker="+", color="red", markersize=9)
        ax.set_title(f"查询在第 {q[0]} 行、第 {q[1]} 列", fontsize=8)
        ax.tick_params(labelsize=6)
    dy, dx = queries[1][0] - queries[0][0], queries[1][1] - queries[0][1]
    diff = np.abs(maps[1][dy:, dx:] - maps[0][: side - dy, : side - dx])
    axes[2].imshow(diff, cmap="gray_r", vmin=0, vmax=max(float(diff.max()), 1e-12))
    axes[2].set_title(f"|中图平移回去 − 左图|：最大 {diff.max():.0e}\n"
                      f"（打分最大 {vmax:.0f}；旋转角是 float32）", fontsize=8)
    axes[2].tick_params(labelsize=6)
    fig.colorbar(image, ax=axes[:2], shrink=0.8).ax.tick_params(labelsize=6)
    return fig


# --- automatic mode ------------------------------------------------------------------------------


def auto_clicks(height: int, width: int, points_per_side: int, n_layers: int, overlap_ratio: float = 512 / 1500,
                downscale: int = 1) -> list[tuple[Crop, np.ndarray]]:
    """Every crop of automatic mode and its clicks ``(P, 2)`` (``x, y``) in image pixels, as the generator places them.

    The crops are [`crop_boxes`][refimpl.sam2.automatic_mask_generator.crop_boxes]; layer ``i``
    has a [`point_grid`][refimpl.sam2.automatic_mask_generator.point_grid] of
    ``int(points_per_side / downscale^i)`` per side, scaled to the crop's width and height and
    moved to its corner (float64, then float32, as the generator's clicks).
    """
    out = []
    for crop in crop_boxes(height, width, n_layers, overlap_ratio):
        x0, y0, x1, y1 = crop.box
        grid = point_grid(int(points_per_side / downscale**crop.layer)) * torch.tensor([x1 - x0, y1 - y0], dtype=torch.float64)
        out.append((crop, grid.to(torch.float32).numpy() + np.array([x0, y0], dtype=np.float32)))
    return out


def auto_grid() -> Figure:
    """Layer 0 (the whole image) and layer 1 (four overlapping crops), each with its own grid of clicks."""
    H, W, side = 96, 160, 8
    clicks = auto_clicks(H, W, side, n_layers=1, overlap_ratio=0.25, downscale=2)
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, layer in zip(axes, (0, 1)):
        ax.add_patch(Rectangle((0, 0), W, H, fill=False, edgecolor="black", linewidth=1.2))
        shown = [(c, p) for c, p in clicks if c.layer == layer]
        for k, (crop, points) in enumerate(shown):
            x0, y0, x1, y1 = crop.box
            hue = HUES[k % len(HUES)] if layer else "black"
            if layer:
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=True, alpha=0.08, facecolor=hue, edgecolor=hue,
                                       linewidth=1.2, linestyle="--"))
            ax.scatter(points[:, 0], points[:, 1], s=10, color=hue, zorder=3)
        n = int(side / 2**layer)
        title = (f"第 0 层：整张图，{n}×{n} = {n * n} 个点" if layer == 0 else
                 f"第 1 层：2×2 个互相重叠的裁剪，每个 {n}×{n} 个点（共 {4 * n * n} 个）")
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-3, W + 3)
        ax.set_ylim(H + 3, -3)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.set_xlabel("x（像素）", fontsize=7)
    axes[0].set_ylabel("y（像素）", fontsize=7)
    fig.suptitle(f"{W}×{H} 像素的图，points_per_side={side}，crop_n_layers=1，"
                 f"crop_overlap_ratio=0.25，crop_n_points_downscale_factor=2", fontsize=8)
    return fig


STABILITY_SLOPES = (10.0, 0.5)
"""Logits per pixel at the edge of the two synthetic masks of ``stability.svg``: a steep edge and a gentle one."""


def stability_curve(slope: float, thresholds: np.ndarray, offset: float = 1.0, side: int = 64, radius: float = 20.0) -> np.ndarray:
    """Stability score of a round mask at each threshold, by [`stability_score`][refimpl.sam2.automatic_mask_generator.stability_score].

    The logit map is ``slope * (radius - r)``, ``r`` the distance to the centre of a ``side x side``
    map: the mask at threshold ``t`` is the disc of radius ``radius - t / slope``, and its edge is
    steeper the larger ``slope`` is.

    Returns:
        ``(T,)`` float64, one score per threshold (NaN where nothing is above ``t - offset``).
    """
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij")
    r = torch.hypot(yy - (side - 1) / 2, xx - (side - 1) / 2)
    logits = (slope * (radius - r))[None]  # (1, side, side)
    return np.array([float(stability_score(logits, float(t), offset)[0]) for t in thresholds])


def stability() -> Figure:
    """Left: the two logit profiles through the centre; right: their stability score as the threshold moves."""
    thresholds = np.linspace(-6.0, 6.0, 121)
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    r = np.linspace(0, 32, 200)
    for slope, hue in zip(STABILITY_SLOPES, HUES):
        label = f"边缘陡（每像素 {slope:g}）" if slope == max(STABILITY_SLOPES) else f"边缘缓（每像素 {slope:g}）"
        left.plot(r, slope * (20.0 - r), color=hue, label=label)
        right.plot(thresholds, stability_curve(slope, thresholds), color=hue, label=label)
    left.axhspan(-1, 1, color="#cccccc", alpha=0.5, label="阈值 0 ± 偏移 1")
    left.axhline(0, color="black", linewidth=0.6)
    left.set_ylim(-12, 12)
    left.set_xlabel("到中心的距离（像素）", fontsize=8)
    left.set_ylabel("掩码 logit", fontsize=8)
    left.set_title("两张合成 logit 图的剖面（掩码是 logit > 阈值的圆盘）", fontsize=9)
    right.axhline(0.95, color="black", linestyle="--", linewidth=0.8, label="默认保留线 0.95")
    right.set_xlabel("阈值 t（默认 0）", fontsize=8)
    right.set_ylabel("稳定性分数", fontsize=8)
    right.set_title("稳定性分数 = |logit > t+1| / |logit > t−1|", fontsize=9)
    for ax in (left, right):
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=6)
    return fig


FIGURES = {
    "sam2/auto_grid.svg": auto_grid,
    "sam2/stability.svg": stability,
    "sam2/windows_and_units.svg": windows_and_units,
    "sam2/block_layout.svg": block_layout_figure,
    "sam2/memory_selection.svg": memory_selection,
    "sam2/memory_one_prompt.svg": memory_one_prompt,
    "sam2/rope_offsets.svg": rope_offsets,
}
