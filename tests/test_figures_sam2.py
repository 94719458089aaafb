"""The SAM 2 page's figures (``paper_notes/figures/sam2.py``): they render, and the data they draw is
what ``refimpl.sam2`` does and what the paper's outline says.

The memory schedule is checked against the rule written out independently here (every prompted
frame, the six previous tracked frames, pointers of prompted frames in the past and of up to 15
earlier tracked frames), and its key count against [`SAM2.memory_tokens`][refimpl.sam2.model.SAM2.memory_tokens]
on a small model; the trunk layout against ``papers/sam2.yaml`` (SAM 2 Tab. 13).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from paper_notes.figures import render_svg
from paper_notes.figures import sam2 as figures
from paper_notes.figures._results import results
from refimpl.sam2 import MemoryBank, MemoryEntry, build_sam2

SIZES = ["tiny", "small", "base_plus", "large"]


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_every_sam2_figure_renders_as_an_svg_with_its_text_as_paths(name):
    svg = render_svg(figures.FIGURES[name])
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"<text" not in svg  # text drawn as paths: no font needed to view it


def test_the_trunks_global_attention_blocks_are_those_of_the_papers_table_13():
    table = results("sam2", "table", "13")
    paper = {row[0].removeprefix("Hiera-"): tuple(int(n) for n in row[1].split("-")) for row in table.rows}
    drawn = {figures.SIZE_NAMES[size]: tuple(b.index for b in figures.block_layout(size) if b.window == 0) for size in SIZES}
    assert drawn == paper


@pytest.mark.parametrize("size", SIZES)
def test_windows_of_stages_1_and_2_span_32_pixels_like_hiera_mask_units_and_stages_3_4_span_more(size):
    layout = figures.block_layout(size)
    assert [b.index for b in layout if b.pooled] == [i for i in range(1, len(layout)) if layout[i].stage != layout[i - 1].stage]
    spans = {s: {b.window_pixels for b in layout if b.stage == s and b.window and not b.pooled} for s in range(4)}
    assert spans[0] == spans[1] == {32}
    assert spans[2] == spans[3] == ({256} if size == "large" else {224})


def test_window_ids_put_every_token_in_one_window_and_mark_only_the_padding():
    ids = figures.window_ids(10, 10, 4)
    assert ids.shape == (12, 12)
    assert (ids[:10, :10] >= 0).all() and (ids[10:, :] == -1).all() and (ids[:, 10:] == -1).all()
    for k in range(9):  # window k is the k-th 4 x 4 square of the padded grid, in raster order
        r, c = divmod(k, 3)
        square = ids[4 * r: 4 * r + 4, 4 * c: 4 * c + 4]
        assert set(np.unique(square)) <= {k, -1} and (square == k).any()


def _expected(t: int, prompted: tuple[int, ...], num_frames: int) -> tuple[set[int], set[int]]:
    """The rule of the released configs, written out: spatial memories and pointer frames of step ``t``."""
    tracked = {f for f in range(t) if f not in prompted}
    spatial = set(prompted) | {f for f in tracked if t - 6 <= f}
    pointers = {f for f in prompted if f <= t} | {f for f in tracked if t - f < min(16, num_frames)}
    return spatial, pointers


@pytest.mark.parametrize("num_frames, prompted", [(20, (0, 12)), (30, (0,)), (12, (3, 5, 11))])
def test_each_tracking_step_attends_to_the_prompted_frames_the_six_previous_ones_and_past_pointers(num_frames, prompted):
    steps = figures.memory_schedule(num_frames, prompted)
    assert [s.frame for s in steps] == [t for t in range(num_frames) if t not in prompted]
    for step in steps:
        spatial, pointers = _expected(step.frame, prompted, num_frames)
        assert {f for f, _ in step.spatial} == spatial
        assert {f for f, _ in step.pointers} == pointers
        for f, t_pos in step.spatial:  # prompted frames have t_pos 0; the previous frame 6
            assert t_pos == (0 if f in prompted else 7 - (step.frame - f))
        for f, distance in step.pointers:
            assert distance == step.frame - f


def test_the_key_count_is_what_the_model_lays_out_for_its_memory_attention():
    torch.manual_seed(0)
    small = dict(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), global_att_blocks=(4,),
                 window_pos_embed_bkg_spatial_size=(4, 4), image_size=128, d_model=64, mem_dim=16, memory_ffn_dim=128)
    model = build_sam2(**small).eval()
    side = small["image_size"] // 16
    bank, prompted = MemoryBank(), (0, 4)

    def entry() -> MemoryEntry:
        return MemoryEntry(torch.randn(1, small["mem_dim"], side, side), torch.randn(1, small["mem_dim"], side, side),
                           torch.randn(1, small["d_model"]))

    for t in prompted:
        bank.add(t, entry(), prompted=True)
    steps = {s.frame: s for s in figures.memory_schedule(12, prompted)}
    for t in range(12):
        if t in prompted:
            continue
        memory, pos, num_ptr = model.memory_tokens(bank.select(t, 12), batch=1)
        count = figures.memory_token_count(steps[t], small["image_size"], small["d_model"], small["mem_dim"])
        assert memory.shape[1] == pos.shape[1] == count
        assert num_ptr == 4 * len(steps[t].pointers)
        bank.add(t, entry(), prompted=False)
    assert figures.memory_token_count(steps[11]) == len(steps[11].spatial) * 4096 + 4 * len(steps[11].pointers)


def test_a_rope_score_map_moves_with_the_query_and_peaks_at_it():
    side = 12
    a = figures.rope_scores(side, 64, (3, 4))
    b = figures.rope_scores(side, 64, (7, 6))
    assert np.allclose(b[4:, 2:], a[: side - 4, : side - 2], rtol=0, atol=1e-4)
    assert np.unravel_index(a.argmax(), a.shape) == (3, 4)
    assert a.max() == pytest.approx(64.0)  # all-ones vector: |q|^2 = 64 at zero offset


# --- the page's memory-bank numbers: drawn from select, and the text agrees with them ---------

SAM2_PAGE = (Path(__file__).resolve().parents[1] / "docs/concepts/sam2.md").read_text(encoding="utf-8")


def _reads_by_select(num_frames: int, prompted: tuple[int, ...]) -> dict[int, tuple[int, int, int]]:
    """``{t: (maps, pointers, keys)}`` straight from ``MemoryBank.select`` (1024 px: 4096 keys a map, 4 a pointer)."""
    bank = MemoryBank()

    def entry() -> MemoryEntry:
        return MemoryEntry(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.zeros(1, 1))

    for t in prompted:
        bank.add(t, entry(), prompted=True)
    reads = {}
    for t in range(num_frames):
        if t not in prompted:
            chosen = bank.select(t, num_frames)
            maps, pointers = len(chosen.spatial), len(chosen.pointers)
            reads[t] = (maps, pointers, 4096 * maps + 4 * pointers)
            bank.add(t, entry(), prompted=False)
    return reads


def test_every_sam2_figure_is_on_the_page():
    assert [name for name in figures.FIGURES if f"](../figures/{name})" not in SAM2_PAGE] == []


def test_the_one_prompt_table_draws_the_numbers_select_gives_frame_by_frame():
    reads = _reads_by_select(figures.ONE_PROMPT_FRAMES, (0,))
    ax = figures.memory_one_prompt().axes[0]
    drawn = [int(t.get_text()) for t in ax.texts if t.get_text().isdigit()]
    frames = sorted(reads)
    assert drawn == frames + [reads[t][k] for k in range(3) for t in frames]  # header row, then maps, pointers, keys
    assert min(frames) == 1 and max(frames) > 16  # the table reaches past the frame where pointers stop growing


def test_the_pages_sentences_on_one_prompt_name_the_frames_where_select_stops_growing():
    reads = _reads_by_select(40, (0,))
    maps, pointers = max(r[0] for r in reads.values()), max(r[1] for r in reads.values())
    map_frame = min(t for t, r in reads.items() if r[0] == maps)
    pointer_frame = min(t for t, r in reads.items() if r[1] == pointers)
    assert figures.saturation(figures.memory_schedule(40, (0,))) == ((map_frame, maps), (pointer_frame, pointers))
    assert f"第 {map_frame} 帧起读满 {maps} 张图" in SAM2_PAGE
    assert f"第 {pointer_frame} 帧才读满 {pointers} 个" in SAM2_PAGE
    assert all(reads[t] == _reads_by_select(pointer_frame + 1, (0,))[t] for t in range(1, pointer_frame + 1)), \
        "the page says the counts do not depend on the clip's length"


def test_the_pages_reading_of_the_two_prompt_figure_is_what_select_gives():
    num_frames, prompted = figures.SELECTION_CLIP
    assert f"一段 {num_frames} 帧、在第 {prompted[0]} 帧和第 {prompted[1]} 帧上有提示" in SAM2_PAGE
    later = prompted[1]
    steps = figures.memory_schedule(num_frames, prompted)
    first_map = min(s.frame for s in steps if later in {f for f, _ in s.spatial})
    first_pointer = min(s.frame for s in steps if later in {f for f, _ in s.pointers})
    after = next(s for s in steps if s.frame == later + 1)
    recent = sum(1 for _, t_pos in after.spatial if t_pos)
    assert f"第 {later} 帧的记忆从第 {first_map} 帧起就被读到" in SAM2_PAGE
    assert f"要等到第 {first_pointer} 帧才用" in SAM2_PAGE
    assert f"第 {later + 1} 帧的\"上一帧\"正是提示帧 {later}" in SAM2_PAGE and f"最近帧只剩 {recent} 张" in SAM2_PAGE


# --- automatic mode ------------------------------------------------------------------------------


def test_the_drawn_clicks_are_where_the_generator_clicks():
    """Every record of a generator with no filter comes from a drawn click of its crop; every crop has its drawn count."""
    from refimpl.sam2 import AutomaticMaskGenerator
    from refimpl.sam2.automatic_mask_generator import crop_boxes

    H, W, side = 96, 160, 4
    clicks = figures.auto_clicks(H, W, side, n_layers=1, overlap_ratio=0.25, downscale=2)
    assert [c for c, _ in clicks] == crop_boxes(H, W, 1, 0.25)
    assert [len(p) for _, p in clicks] == [16, 4, 4, 4, 4]
    torch.manual_seed(0)
    model = build_sam2(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), global_att_blocks=(4,),
                       window_pos_embed_bkg_spatial_size=(4, 4), image_size=128, d_model=64, mem_dim=16, memory_ffn_dim=128).eval()
    generator = AutomaticMaskGenerator(model, points_per_side=side, crop_n_layers=1, crop_overlap_ratio=0.25,
                                       crop_n_points_downscale_factor=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                       box_nms_thresh=1.0, crop_nms_thresh=1.0, output_mode="uncompressed_rle")
    image = (torch.arange(H * W * 3) % 251).to(torch.uint8).reshape(H, W, 3)
    records = generator.generate(image)
    drawn = {tuple(c.box): {tuple(map(float, xy)) for xy in p} for c, p in clicks}
    assert records
    for r in records:
        x, y, w, h = r["crop_box"]
        assert tuple(map(float, r["point_coords"][0])) in drawn[(int(x), int(y), int(x + w), int(y + h))]


def test_the_stability_curve_is_the_ratio_of_the_two_discs_and_separates_steep_from_gentle_edges():
    thresholds = np.array([-2.0, 0.0, 0.5, 3.0])
    side, radius = 64, 20.0
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    r = np.hypot(yy - (side - 1) / 2, xx - (side - 1) / 2)
    for slope in figures.STABILITY_SLOPES:
        logits = (slope * (radius - r)).astype(np.float32)
        expected = [(logits > t + 1).sum() / (logits > t - 1).sum() for t in thresholds]
        np.testing.assert_allclose(figures.stability_curve(slope, thresholds), expected, rtol=1e-6)
    steep, gentle = (figures.stability_curve(s, np.array([0.0]))[0] for s in figures.STABILITY_SLOPES)
    assert steep > 0.95 > gentle  # what the page says: the default 0.95 keeps the steep mask only
