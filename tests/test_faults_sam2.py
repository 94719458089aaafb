"""Fault suite for SAM 2 (issue 22): non-finite input, tracking and prompt rules, real photos, and sam2-segment's path errors.

A tiny random SAM 2 (128 px, Hiera width 16, D = 64, D_mem = 16, as ``tests/test_sam2.py``
builds it) is enough: these tests check what is refused and what reaches the model, not the
numbers, which ``tests/test_sam2.py`` compares with the official package.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from refimpl.sam2 import MemoryBank, build_sam2
from refimpl import command_io
from refimpl.sam2.segment import main as segment_main
from refimpl.sam2.segment import read_image

from faults import fill, one_line, remount_read_only, snapshot, tmpfs

SMALL = dict(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), global_att_blocks=(4,), window_pos_embed_bkg_spatial_size=(4, 4),
             image_size=128, d_model=64, mem_dim=16, memory_ffn_dim=128)
S = 128
NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_sam2(**SMALL).eval()


@pytest.fixture(scope="module")
def features(model):
    with torch.no_grad():
        return model.encode_image(torch.randn(1, 3, S, S, generator=torch.Generator().manual_seed(1)))


def click(x: float = 60.0, y: float = 40.0) -> dict:
    return dict(points=torch.tensor([[[x, y]]]), labels=torch.ones(1, 1))


def box(*corners: float) -> torch.Tensor:
    return torch.tensor([list(corners)])


def prompted_bank(model, features, frame: int = 0, num_frames: int | None = None) -> MemoryBank:
    bank = MemoryBank()
    model.track_step(frame, features, bank, num_frames=num_frames, **click())
    return bank


# --- 1. non-finite input is refused at the door ----------------------------------------------------


def _spoiled(features, field: str, value: float):
    if field == "vision_features":
        x = features.vision_features.clone()
        x[0, 0, 0, 0] = value
        return features._replace(vision_features=x)
    fpn = [t.clone() for t in features.backbone_fpn]
    fpn[int(field[-1])][0, 0, 0, 0] = value
    return features._replace(backbone_fpn=fpn)


NON_FINITE: dict[str, tuple[Callable, str]] = {
    "NaN click (predict)": (lambda m, f: m.predict(f, torch.tensor([[[NAN, 3.0]]]), torch.ones(1, 1)), "points"),
    "Inf click (predict)": (lambda m, f: m.predict(f, torch.tensor([[[3.0, INF]]]), torch.ones(1, 1)), "points"),
    "NaN box (predict)": (lambda m, f: m.predict(f, box=box(NAN, 0, 50, 50)), "box"),
    "-Inf box (predict)": (lambda m, f: m.predict(f, box=box(-INF, 0, 50, 50)), "box"),
    "NaN mask_input (predict)": (lambda m, f: m.predict(f, mask_input=torch.full((1, 1, 32, 32), NAN)), "mask_input"),
    "Inf mask_input with a click (predict)": (
        lambda m, f: m.predict(f, **click(), mask_input=torch.zeros(1, 1, 32, 32).index_fill_(2, torch.tensor([3]), INF)), "mask_input"),
    "NaN vision_features (predict)": (lambda m, f: m.predict(_spoiled(f, "vision_features", NAN), **click()), "features.vision_features"),
    "Inf stride-4 features (predict)": (lambda m, f: m.predict(_spoiled(f, "fpn0", INF), **click()), "features.backbone_fpn[0]"),
    "NaN stride-8 features (predict)": (lambda m, f: m.predict(_spoiled(f, "fpn1", NAN), **click()), "features.backbone_fpn[1]"),
    "NaN image (encode_image)": (lambda m, f: m.encode_image(torch.full((1, 3, S, S), NAN)), "images"),
    "Inf pixel (encode_image)": (lambda m, f: m.encode_image(torch.zeros(1, 3, S, S).index_fill_(3, torch.tensor([5]), INF)), "images"),
    "NaN click (track_step)": (lambda m, f: m.track_step(0, f, MemoryBank(), points=torch.tensor([[[NAN, 1.0]]]),
                                                         labels=torch.ones(1, 1)), "points"),
    "NaN box (track_step)": (lambda m, f: m.track_step(0, f, MemoryBank(), box=box(0, 0, NAN, 9)), "box"),
    "Inf mask (track_step)": (lambda m, f: m.track_step(0, f, MemoryBank(), mask=torch.full((1, 1, S, S), INF)), "mask"),
    "NaN features of a tracked frame (track_step)": (
        lambda m, f: m.track_step(1, _spoiled(f, "vision_features", NAN), prompted_bank(m, f)), "features.vision_features"),
}


@pytest.mark.parametrize("case", NON_FINITE)
def test_nan_and_inf_in_prompts_features_and_images_are_refused_in_one_line_naming_the_argument(model, features, case):
    call, name = NON_FINITE[case]
    with torch.no_grad(), pytest.raises(ValueError) as info:
        call(model, features)
    message = one_line(str(info.value))
    assert message.startswith(f"{name} holds NaN or infinite values")


# --- 2. tracking and prompts: one rule each --------------------------------------------------------


def _track_twice(model, features, first: int, second: int, num_frames: int | None = None, between: tuple[int, ...] = ()):
    bank = prompted_bank(model, features, first, num_frames)
    for t in between:
        model.track_step(t, features, bank, num_frames=num_frames)
    return model.track_step(second, features, bank, num_frames=num_frames)


def _correction(model, features):
    bank = prompted_bank(model, features)
    model.track_step(1, features, bank)
    return model.track_step(1, features, bank, **click())


REFUSED: dict[str, tuple[Callable, str]] = {
    "frame 1 of a one-frame video": (lambda m, f: _track_twice(m, f, 0, 1, num_frames=1), r"frame_idx=1 is not below num_frames=1"),
    "frame 4 of a four-frame video": (lambda m, f: _track_twice(m, f, 0, 4, num_frames=4), r"frame_idx=4 is not below num_frames=4"),
    "num_frames=0": (lambda m, f: m.track_step(0, f, MemoryBank(), num_frames=0, **click()), r"num_frames=0 is not positive"),
    "num_frames=-2": (lambda m, f: m.track_step(0, f, MemoryBank(), num_frames=-2, **click()), r"num_frames=-2 is not positive"),
    "num_frames=2.0": (lambda m, f: m.track_step(0, f, MemoryBank(), num_frames=2.0, **click()), r"num_frames must be an int"),
    "backwards: prompt frame 5, track frame 3": (lambda m, f: _track_twice(m, f, 5, 3),
                                                 r"frame 3 comes before the first prompted frame 5; only forward tracking"),
    "backwards: track 1, 2, 3, then 2 again": (lambda m, f: _track_twice(m, f, 0, 2, between=(1, 2, 3)),
                                               r"frame 2 comes before frame 3, already tracked; only forward tracking"),
    "a prompted frame tracked without its prompt": (lambda m, f: _track_twice(m, f, 0, 0), r"frame 0 is a prompted frame"),
    "a click on a tracked frame": (lambda m, f: _correction(m, f), r"frame 1 is already in the bank"),
    "zero clicks (predict)": (lambda m, f: m.predict(f, torch.zeros(1, 0, 2), torch.zeros(1, 0)), r"predict needs a prompt"),
    "zero clicks on a video's first frame (track_step)": (lambda m, f: m.track_step(0, f, MemoryBank(), points=torch.zeros(1, 0, 2),
                                                                                    labels=torch.zeros(1, 0)),
                                                          r"no prompt and the bank holds no prompted frame"),
    "a batch of 0 clicks": (lambda m, f: m.predict(f, torch.zeros(0, 1, 2), torch.zeros(0, 1)), r"a batch of 0 prompts"),
    "click left of the image": (lambda m, f: m.predict(f, **click(-5.0, 3.0)), r"reach outside the 128x128 model input"),
    "click below the image": (lambda m, f: m.predict(f, **click(3.0, 500.0)), r"reach outside the 128x128 model input"),
    "inverted box (x1 < x0)": (lambda m, f: m.predict(f, box=box(90, 10, 20, 70)), r"is inverted or empty"),
    "inverted box (y1 < y0)": (lambda m, f: m.predict(f, box=box(20, 70, 90, 10)), r"is inverted or empty"),
    "empty box (x0 == x1)": (lambda m, f: m.predict(f, box=box(20, 10, 20, 70)), r"is inverted or empty"),
    "box far outside": (lambda m, f: m.predict(f, box=box(1000, 1000, 2000, 2000)), r"reaches outside the 128x128 model input"),
    "box partly outside (negative corner)": (lambda m, f: m.predict(f, box=box(-10, 5, 60, 60)), r"reaches outside"),
    "box partly outside (past the far edge)": (lambda m, f: m.predict(f, box=box(10, 5, 129, 60)), r"reaches outside"),
    "inverted box (track_step)": (lambda m, f: m.track_step(0, f, MemoryBank(), box=box(90, 10, 20, 70)), r"is inverted or empty"),
    "mask of 0 x 0 (track_step)": (lambda m, f: m.track_step(0, f, MemoryBank(), mask=torch.zeros(1, 1, 0, 0)), r"H, W >= 1"),
    "a bank with num_maskmem=0": (lambda m, f: MemoryBank(num_maskmem=0), r"num_maskmem=0 is not positive"),
    "a config with embed_dim='eight'": (lambda m, f: build_sam2(**{**SMALL, "embed_dim": "eight"}), r"embed_dim must be an int, got str"),
    "a config with mem_dim=6": (lambda m, f: build_sam2(**{**SMALL, "d_model": 48, "mem_dim": 6}), r"mem_dim=6 is not a multiple of 4"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_tracking_that_is_not_implemented_and_prompts_that_are_not_in_the_image_are_refused_in_one_line(model, features, case):
    call, match = REFUSED[case]
    with torch.no_grad(), pytest.raises((ValueError, TypeError), match=match) as info:
        call(model, features)
    one_line(str(info.value))


def test_the_pointer_encoding_of_a_one_frame_video_is_finite_and_tracking_stores_no_nan(model, features):
    with torch.no_grad():
        bank = prompted_bank(model, features, 0, num_frames=1)
        selection = bank.select(1, num_frames=1)  # what track_step(1, ..., num_frames=1) used to attend to
        assert selection.max_distance == 1
        _, pos, _ = model.memory_tokens(selection, 1)
        assert torch.isfinite(pos).all()
        for num_frames in (2, 3, None):
            bank = prompted_bank(model, features, 0, num_frames)
            outs = [model.track_step(t, features, bank, num_frames=num_frames) for t in (1, 2) if num_frames is None or t < num_frames]
            for out in outs:
                assert all(torch.isfinite(x).all() for x in (out.obj_ptr, out.iou, out.masks, out.memory.features.float()))


@pytest.mark.parametrize("size", [(64, 64), (96, 160), (200, 200), (128, 128)])
def test_a_mask_prompt_of_any_size_gives_masks_of_the_documented_sizes(model, features, size):
    mask = torch.zeros(1, 1, *size)
    mask[..., size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = 1
    with torch.no_grad():
        out = model.track_step(0, features, MemoryBank(), mask=mask, num_frames=3)
    assert out.high_res_masks.shape == (1, 1, S, S) and out.masks.shape == (1, 1, S // 4, S // 4)


def test_zero_clicks_with_a_box_are_the_box_alone(model, features):
    with torch.no_grad():
        alone = model.predict(features, box=box(20, 10, 90, 70))
        with_none = model.predict(features, torch.zeros(1, 0, 2), torch.zeros(1, 0), box=box(20, 10, 90, 70))
    assert torch.equal(alone.masks, with_none.masks) and torch.equal(alone.iou, with_none.iou)


def test_a_box_on_the_image_edges_and_a_click_in_a_corner_are_accepted(model, features):
    with torch.no_grad():
        model.predict(features, box=box(0, 0, S, S))
        model.predict(features, **click(0.0, S))


# --- 3. real photos: orientation and bit depth -----------------------------------------------------

H, W = 24, 40
_RNG = np.random.default_rng(7)
GREY = _RNG.integers(0, 256, (H, W), dtype=np.uint8)
RGB = _RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _grey3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2)


def _palette() -> tuple[Image.Image, np.ndarray]:
    img = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return img, np.asarray(img.convert("RGB"))


def _cmyk() -> tuple[Image.Image, np.ndarray]:
    img = Image.fromarray(RGB).convert("CMYK")
    return img, np.asarray(img.convert("RGB"))


IMAGES: dict[str, tuple[Callable[[], tuple[Image.Image, np.ndarray]], str]] = {
    "16-bit grey PNG (I;16)": (lambda: (Image.fromarray(GREY.astype(np.uint16) * 257), _grey3(GREY)), "png"),
    "16-bit grey PNG with values between steps": (
        lambda: (Image.fromarray((GREY.astype(np.uint16) * 257 + (GREY > 0) * 100 - (GREY > 0) * 200 * (GREY % 2)).astype(np.uint16)),
                 _grey3(GREY)), "png"),
    "16-bit big-endian grey TIFF (I;16B)": (lambda: (Image.fromarray((GREY.astype(np.uint16) * 257).astype(">u2")), _grey3(GREY)), "tif"),
    "32-bit integer TIFF with 16-bit values (I)": (lambda: (Image.fromarray(GREY.astype(np.int32) * 257), _grey3(GREY)), "tif"),
    "float TIFF in [0, 1] (F)": (lambda: (Image.fromarray(GREY.astype(np.float32) / 255), _grey3(GREY)), "tif"),
    "8-bit grey PNG (L)": (lambda: (Image.fromarray(GREY), _grey3(GREY)), "png"),
    "grey with alpha (LA), alpha dropped": (lambda: (Image.fromarray(np.stack([GREY, 255 - GREY], -1), "LA"), _grey3(GREY)), "png"),
    "RGBA PNG, alpha dropped": (lambda: (Image.fromarray(np.concatenate([RGB, GREY[..., None]], -1), "RGBA"), RGB), "png"),
    "palette PNG (P)": (_palette, "png"),
    "CMYK TIFF": (_cmyk, "tif"),
    "1-bit PNG": (lambda: (Image.fromarray(GREY > 127).convert("1"), _grey3(np.where(GREY > 127, 255, 0).astype(np.uint8))), "png"),
}


@pytest.mark.parametrize("case", IMAGES)
def test_every_bit_depth_and_mode_is_converted_to_8_bit_rgb_faithfully(tmp_path, case):
    make, suffix = IMAGES[case]
    img, expected = make()
    path = tmp_path / f"image.{suffix}"
    img.save(path)
    assert np.array_equal(read_image(path).numpy(), expected)


NOT_CONVERTIBLE: dict[str, tuple[Callable[[], Image.Image], str, str]] = {
    "32-bit integers above 65535": (lambda: Image.fromarray(np.full((H, W), 70000, np.int32)), "tif", r"values 70000..70000; expected 0..65535"),
    "negative 32-bit integers": (lambda: Image.fromarray(np.full((H, W), -1, np.int32)), "tif", r"expected 0..65535"),
    "floats above 1": (lambda: Image.fromarray(np.full((H, W), 3.5, np.float32)), "tif", r"values 3.5..3.5; expected \[0, 1\]"),
    "NaN floats": (lambda: Image.fromarray(np.full((H, W), np.nan, np.float32)), "tif", r"NaN or infinite"),
    "LAB": (lambda: Image.fromarray(RGB).convert("LAB"), "tif", r"LAB image"),
}


@pytest.mark.parametrize("case", NOT_CONVERTIBLE)
def test_an_image_without_a_faithful_8_bit_rgb_is_refused_in_one_line(tmp_path, case):
    make, suffix, match = NOT_CONVERTIBLE[case]
    path = tmp_path / f"image.{suffix}"
    make().save(path)
    with pytest.raises(ValueError, match=match) as info:
        read_image(path)
    assert one_line(str(info.value)).startswith(f"image {str(path)!r}")


ORIENTATIONS = {  # EXIF orientation -> the displayed image from the stored one
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_the_image_is_read_upright_as_a_photo_viewer_shows_it(tmp_path, orientation):
    path = tmp_path / "photo.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(RGB).save(path, exif=exif)
    assert np.array_equal(read_image(path).numpy(), ORIENTATIONS[orientation](RGB))


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(model, tmp_path_factory) -> dict[str, Path]:
    """A checkpoint of the tiny model, its config, a photo; each test writes its own --out."""
    folder = tmp_path_factory.mktemp("sam2_command")
    paths = {"checkpoint": folder / "small.pt", "config": folder / "small.json", "image": folder / "photo.png"}
    torch.save({"model": model.state_dict()}, paths["checkpoint"])
    paths["config"].write_text(json.dumps(SMALL), encoding="utf-8")
    Image.fromarray(RGB).save(paths["image"])
    return paths


def command(files: dict[str, Path], out: Path, *extra: str, **replace: Path | str) -> list[str]:
    f = {**files, **replace}
    return [str(f["image"]), "--checkpoint", str(f["checkpoint"]), "--config", str(f["config"]), "--out", str(out),
            "--device", "cpu", *extra]


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = segment_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_exif_rotated_photo_takes_viewer_coordinates_and_gives_upright_masks(files, tmp_path, capsys):
    photo = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40 wide x 24 high; shown 24 wide x 40 high
    Image.fromarray(RGB).save(photo, exif=exif, quality=95)
    code, _, err = run(capsys, command(files, tmp_path / "out", "--point", "10,35", image=photo))  # y = 35: outside the stored image
    assert code == 0, err
    masks = sorted((tmp_path / "out").iterdir())
    assert len(masks) == 3 and all(Image.open(m).size == (H, W) for m in masks)  # PIL's size is (width, height)


def test_a_16_bit_photo_gives_the_masks_of_its_8_bit_version(files, tmp_path, capsys):
    grey16, grey8 = tmp_path / "deep.png", tmp_path / "flat.png"
    Image.fromarray(GREY.astype(np.uint16) * 257).save(grey16)
    Image.fromarray(_grey3(GREY)).save(grey8)
    assert run(capsys, command(files, tmp_path / "a", "--point", "20,12", image=grey16))[0] == 0
    assert run(capsys, command(files, tmp_path / "b", "--point", "20,12", image=grey8))[0] == 0
    for name in ("mask0", "mask1", "mask2"):
        assert (tmp_path / "a" / f"deep_{name}.png").read_bytes() == (tmp_path / "b" / f"flat_{name}.png").read_bytes()


def test_help_says_which_coordinates_the_prompts_use_and_how_images_are_read(capsys):
    code, out, _ = run(capsys, ["--help"])
    assert code == 0
    text = " ".join(out.split())
    for words in ("x to the right, y down, origin at the top-left corner", "EXIF orientation", "16-bit greyscale",
                  "alpha channel is dropped", "partly outside is refused"):
        assert words in text


# --- 4. one line, exit 2, for every path and environment error ------------------------------------


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` pixels and holds none: what a decompression bomb looks like to Pillow's check."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def _loop(path: Path) -> Path:
    os.symlink(path.name, path)
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _truncated(files, tmp: Path, keep: Callable[[int], int]) -> Path:
    data = files["checkpoint"].read_bytes()
    path = tmp / "cut.pt"
    path.write_bytes(data[: keep(len(data))])
    return path


def _text(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _config(tmp: Path, **change) -> Path:
    return _text(tmp, "config.json", json.dumps({**SMALL, **change}))


TRUNCATED = ("truncated", "ends too early", "not a complete")
"""load_checkpoint's reason for a cut file (its wording is refimpl.checkpoints'; any of these)."""

# case -> (argv from (files, tmp, out), words the one line must hold, or a tuple of alternatives)
COMMAND_ERRORS: dict[str, tuple[Callable[[dict, Path, Path], list[str]], str | tuple[str, ...]]] = {
    "--checkpoint a folder": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint=t), "is a folder; expected a file"),
    "--checkpoint a symlink loop": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint=_loop(t / "loop.pt")), "loop of symbolic links"),
    "--checkpoint a FIFO": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint=_fifo(t / "pipe.pt")), "FIFO"),
    "--checkpoint /dev/null": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint="/dev/null"), "character device"),
    "--checkpoint missing": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint=t / "none.pt"), "does not exist"),
    "--checkpoint cut in half": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint=_truncated(f, t, lambda n: n // 2)), TRUNCATED),
    "--checkpoint cut after 100 bytes": (lambda f, t, o: command(f, o, "--point", "5,5", checkpoint=_truncated(f, t, lambda n: 100)),
                                         TRUNCATED),
    "image a folder": (lambda f, t, o: command(f, o, "--point", "5,5", image=t), "is a folder; expected a file"),
    "image a symlink loop": (lambda f, t, o: command(f, o, "--point", "5,5", image=_loop(t / "loop.png")), "loop of symbolic links"),
    "image a FIFO": (lambda f, t, o: command(f, o, "--point", "5,5", image=_fifo(t / "pipe.png")), "FIFO"),
    "image not an image": (lambda f, t, o: command(f, o, "--point", "5,5", image=_text(t, "notes.png", "hello")), "cannot be read"),
    "image a truncated PNG": (lambda f, t, o: command(f, o, "--point", "5,5",
                                                      image=_text(t, "cut.png", f["image"].read_bytes()[:200])), "cannot be read"),
    "image a 40000x40000 decompression bomb": (lambda f, t, o: command(f, o, "--point", "5,5", image=_png_header(t / "bomb.png", 40000, 40000)),
                                               "decompression bomb"),
    "image over Pillow's warning limit": (lambda f, t, o: command(f, o, "--point", "5,5", image=_png_header(t / "big.png", 10000, 10000)),
                                          "decompression bomb"),
    "--config a folder": (lambda f, t, o: command(f, o, "--point", "5,5", config=t), "is a folder; expected a file"),
    "--config not UTF-8": (lambda f, t, o: command(f, o, "--point", "5,5", config=_text(t, "latin.json", '{"embed_dim": "\xe9"}'.encode("latin-1"))),
                           "is not UTF-8 text"),
    "--config embed_dim 'eight'": (lambda f, t, o: command(f, o, "--point", "5,5", config=_config(t, embed_dim="eight")),
                                   "embed_dim must be an int, got str 'eight'"),
    "--config stages 'abc'": (lambda f, t, o: command(f, o, "--point", "5,5", config=_config(t, stages="abc")), "stages must be a tuple of ints"),
    "--config image_size 128.0": (lambda f, t, o: command(f, o, "--point", "5,5", config=_config(t, image_size=128.0)),
                                  "image_size must be an int, got float"),
    "--config a switch 'yes'": (lambda f, t, o: command(f, o, "--point", "5,5", config=_config(t, obj_ptr_tpos_enc="yes")),
                                "obj_ptr_tpos_enc must be a bool"),
    "--config an unknown field": (lambda f, t, o: command(f, o, "--point", "5,5", config=_config(t, embed_dims=16)),
                                  "unknown field 'embed_dims'"),
    "--config a repeated field": (lambda f, t, o: command(f, o, "--point", "5,5", config=_text(t, "twice.json", '{"embed_dim": 16, "embed_dim": 8}')),
                                  "repeats the field 'embed_dim'"),
    "--config NaN": (lambda f, t, o: command(f, o, "--point", "5,5", config=_text(t, "nan.json", '{"embed_dim": NaN}')), "holds NaN"),
    "--config a list": (lambda f, t, o: command(f, o, "--point", "5,5", config=_text(t, "list.json", "[1, 2]")), "expected a JSON object"),
    "--out under a file": (lambda f, t, o: command(f, _text(t, "file", "x") / "masks", "--point", "5,5"), "is a file; expected a folder"),
    "--out a file": (lambda f, t, o: command(f, _text(t, "file", "x"), "--point", "5,5"), "is a file; expected a folder"),
    "--out a symlink loop": (lambda f, t, o: command(f, _loop(t / "loop"), "--point", "5,5"), "loop of symbolic links"),
    "--device tpu": (lambda f, t, o: command(f, o, "--point", "5,5", "--device", "tpu"), "--device 'tpu' is not supported; expected cpu, cuda"),
    "--device cuda:99": (lambda f, t, o: command(f, o, "--point", "5,5", "--device", "cuda:99"), "available here: cpu"),
    "--box -100,... read as a value": (lambda f, t, o: command(f, o, "--box", "-100,0,20,20"), "box -100,0,20,20 reaches outside the 40x24"),
    "--point -5,3 read as a value": (lambda f, t, o: command(f, o, "--point", "-5,3"), "point -5,3 is outside the 40x24"),
    "--box inverted": (lambda f, t, o: command(f, o, "--box", "30,2,10,20"), "is inverted or empty"),
    "--box partly outside": (lambda f, t, o: command(f, o, "--box", "10,2,41,20"), "reaches outside"),
    "--box NaN": (lambda f, t, o: command(f, o, "--box", "nan,2,10,20"), "finite"),
    "--point inf": (lambda f, t, o: command(f, o, "--point", "inf,2"), "finite"),
}


@pytest.mark.parametrize("case", COMMAND_ERRORS)
def test_every_path_and_environment_error_of_sam2_segment_is_one_line_and_exit_2(files, tmp_path, capsys, case):
    make, words = COMMAND_ERRORS[case]
    argv = make(files, tmp_path, tmp_path / "masks")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, argv)
    assert code == 2
    line = one_line(err)
    assert any(w in line for w in ((words,) if isinstance(words, str) else words)), err
    assert not (tmp_path / "masks").exists() and snapshot(tmp_path) == before and out == ""


def test_device_cuda_without_cuda_is_one_line_naming_what_is_available(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(capsys, command(files, tmp_path / "masks", "--point", "5,5", "--device", "cuda"))
    assert code == 2 and "CUDA is not available here; available here: cpu" in one_line(err)


def test_a_write_that_fails_halfway_leaves_none_of_the_runs_masks_and_the_rerun_works(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "masks"
    out.mkdir()
    (out / "mine.txt").write_text("the user's own file")
    real, calls = command_io._link_new, []

    def second_fails(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(command_io, "_link_new", second_fails)
    code, _, err = run(capsys, command(files, out, "--point", "5,5"))
    assert code == 2 and "No space left on device; nothing was written" in one_line(err)
    assert snapshot(out) == {"mine.txt": b"the user's own file"}
    monkeypatch.setattr(command_io, "_link_new", real)
    assert run(capsys, command(files, out, "--point", "5,5"))[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "photo_mask0.png", "photo_mask1.png", "photo_mask2.png"]


def test_a_failed_run_removes_the_out_folders_it_created(files, tmp_path, capsys, monkeypatch):
    def fails(path: Path, data: bytes) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(command_io, "_link_new", fails)
    code, _, err = run(capsys, command(files, tmp_path / "new" / "masks", "--point", "5,5"))
    assert code == 2 and "Input/output error" in one_line(err)
    assert not (tmp_path / "new").exists()


def test_out_on_a_read_only_disk_is_one_line_and_exit_2(files, capsys):
    with tmpfs("1m") as disk:
        remount_read_only(disk)
        code, _, err = run(capsys, command(files, disk / "masks", "--point", "5,5"))
        assert code == 2 and "Read-only file system; nothing was written" in one_line(err)
        assert list(disk.iterdir()) == []


def test_out_on_a_full_disk_leaves_no_mask_behind_and_the_rerun_after_freeing_space_works(files, capsys):
    with tmpfs("256k") as disk:
        spare = disk / "spare"
        spare.write_bytes(b"\0" * 4096)  # one page, freed after the fill: room for the first mask only
        with contextlib.suppress(OSError):  # the filler's last, partial buffer fails again when it is closed
            fill(disk)
        spare.unlink()
        code, _, err = run(capsys, command(files, disk / "masks", "--point", "5,5"))
        assert code == 2 and "No space left on device; nothing was written" in one_line(err)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
        (disk / "filler").unlink()
        code, _, err = run(capsys, command(files, disk / "masks", "--point", "5,5"))
        assert code == 0, err
        assert sorted(p.name for p in (disk / "masks").iterdir()) == ["photo_mask0.png", "photo_mask1.png", "photo_mask2.png"]
