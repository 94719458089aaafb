"""U²-Net and U²-Net† against the official architecture (carvekit 4.1.2), the loss, and ``u2net-cutout``.

The anchor is carvekit's copy of the official ``model/u2net.py``, loaded by
``tests/anchors/u2net.py``, which says why it is loaded as a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from refimpl.checkpoints import load_checkpoint
from refimpl.u2net import U2NET_FULL, U2NET_LITE, U2Net, deep_supervision_loss, u2net_full, u2net_lite
from refimpl.u2net.cutout import main as cutout_main
from refimpl.u2net.cutout import read_image, saliency_map

from anchors.u2net import load_official, official_config, randomize_batchnorm_
from faults import one_line, remount_read_only, snapshot, tmpfs


SIZES = {"full": (u2net_full, U2NET_FULL), "lite": (u2net_lite, U2NET_LITE)}


@pytest.fixture(scope="module")
def official() -> object:
    try:
        return load_official()
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def pair(official: object) -> dict[str, tuple[nn.Module, nn.Module, dict]]:
    """Per size: (ours, anchor, the anchor's random state dict, BatchNorm statistics and affines randomised too)."""
    pairs = {}
    generator = torch.Generator().manual_seed(0)
    for name, (factory, config) in SIZES.items():
        torch.manual_seed(0)
        anchor = official.U2NETArchitecture(official_config(config))
        state = anchor.state_dict()
        randomize_batchnorm_(state, generator)
        ours = factory()
        ours.load_state_dict(state)
        pairs[name] = (ours, anchor, {k: v.clone() for k, v in state.items()})
    return pairs


@pytest.mark.parametrize("size", ["full", "lite"])
def test_state_dict_keys_and_shapes_are_the_official_ones(official: object, size: str) -> None:
    """The same names and shapes (carvekit registers them in another order, which loading ignores)."""
    factory, config = SIZES[size]
    ours = factory().state_dict()
    anchor = official.U2NETArchitecture("full" if size == "full" else official_config(config)).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in anchor.items()}


@pytest.mark.parametrize(("size", "count"), [("full", 44_009_869), ("lite", 1_131_181)])
def test_parameter_counts_equal_the_official_models(official: object, size: str, count: int) -> None:
    """44.0 M and 1.13 M parameters: 176.2 MB and 4.5 MB of float32 with the BatchNorm statistics
    (the release files u2net.pth, 176.3 MB, and u2netp.pth, 4.7 MB, add the pickle's own bytes)."""
    factory, config = SIZES[size]
    anchor = official.U2NETArchitecture(official_config(config))
    assert sum(p.numel() for p in factory().parameters()) == sum(p.numel() for p in anchor.parameters()) == count


@pytest.mark.parametrize("hw", [(320, 320), (301, 257)], ids=["320x320", "301x257"])
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("size", ["lite", "full"])
def test_every_output_equals_the_official_model_on_the_same_weights(
    pair: dict, size: str, mode: str, hw: tuple[int, int]
) -> None:
    """Fused map and all six side maps, within 1e-5 (measured: 0.0, the same operations in the same order).

    301 x 257 pools with ``ceil_mode`` to odd sizes (301 -> 151 -> 76 -> 38 -> 19 -> 10) and every
    upsampling must land on the skip's exact size; in train mode BatchNorm uses the batch's statistics.
    """
    ours, anchor, state = pair[size]
    ours.load_state_dict(state)
    anchor.load_state_dict(state)
    getattr(ours, mode)()
    getattr(anchor, mode)()
    x = torch.randn(1, 3, *hw, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = ours(x)
        expected = anchor(x)
    ours_all = (maps.fused, *maps.sides)
    assert len(ours_all) == len(expected) == 7
    for got, want in zip(ours_all, expected):
        assert got.shape == want.shape == (1, 1, *hw)
        assert (got - want).abs().max().item() <= 1e-5
    if mode == "train":  # the running statistics moved the same way
        theirs = anchor.state_dict()
        for key, value in ours.state_dict().items():
            assert torch.allclose(value.float(), theirs[key].float(), atol=1e-6), key


def test_the_loss_is_the_official_training_scripts_sum_of_seven_bce_terms(pair: dict) -> None:
    ours, anchor, state = pair["lite"]
    ours.load_state_dict(state)
    anchor.load_state_dict(state)
    ours.train()
    anchor.train()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 64, 48, generator=g)
    target = (torch.rand(2, 1, 64, 48, generator=g) > 0.6).float()
    loss = deep_supervision_loss(ours(x), target)
    d = anchor(x)
    bce = nn.BCELoss()  # official u2net_train.py: bce_loss = nn.BCELoss(size_average=True)
    official_total = sum(bce(m, target) for m in d)  # muti_bce_loss_fusion: loss0 + ... + loss6
    assert torch.allclose(loss.fused, bce(d[0], target), atol=1e-6)
    assert torch.allclose(loss.total, official_total, atol=1e-5)


def test_every_parameter_gets_a_gradient_from_the_deep_supervision_loss() -> None:
    model = u2net_lite().train()
    g = torch.Generator().manual_seed(3)
    x, target = torch.randn(2, 3, 40, 33, generator=g), torch.rand(2, 1, 40, 33, generator=g)
    deep_supervision_loss(model(x), target).total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_released_style_plain_state_dict_loads_through_load_checkpoint(pair: dict, tmp_path: Path) -> None:
    _, anchor, state = pair["lite"]
    path = tmp_path / "u2netp.pth"
    torch.save(state, path)
    model = u2net_lite()
    report = load_checkpoint(model, path, strict=True)
    assert report.missing == [] and len(report.loaded) == len(state)
    anchor.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x).fused, anchor.eval()(x)[0])


# --- checks at the door --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "error", "words"),
    [
        (torch.full((1, 3, 32, 32), float("nan")), ValueError, "NaN or infinite"),
        (torch.full((1, 3, 32, 32), float("inf")), ValueError, "NaN or infinite"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, "floating-point images"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.float64), TypeError, "model's parameters are torch.float32"),
        (torch.zeros(3, 32, 32), ValueError, "4-D"),
        (torch.zeros(1, 4, 32, 32), ValueError, "4 channels"),
        (torch.zeros(0, 3, 32, 32), ValueError, "batch of 0"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
    ids=["nan", "inf", "uint8", "float64", "3-D", "4-channels", "empty-batch", "list"],
)
def test_forward_refuses_what_is_not_a_finite_float_image_batch_in_one_line(x: object, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as info:
        u2net_lite()(x)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (torch.full((1, 1, 16, 16), 1.5), "outside \\[0, 1\\]"),
        (torch.full((1, 1, 16, 16), float("nan")), "outside \\[0, 1\\]"),
        (torch.zeros(1, 1, 16, 8), "expected the maps' shape"),
    ],
    ids=["above-1", "nan", "shape"],
)
def test_the_loss_refuses_a_target_that_is_not_a_mask_of_the_maps_shape(target: torch.Tensor, words: str) -> None:
    maps = u2net_lite().eval()(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=words):
        deep_supervision_loss(maps, target)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"encoder": U2NET_LITE["encoder"], "decoder": U2NET_LITE["decoder"][1:]}, ValueError, "decoder has 4 stages"),
        ({"encoder": U2NET_LITE["encoder"][:1], "decoder": ()}, ValueError, "at least 2"),
        ({"encoder": [[4, 3, 8, 16], [4, 8, 8, 16]], "decoder": [[4, 32, 8, 16]]}, ValueError, "encoder\\[1\\] takes 8"),
        ({"encoder": [[4, 3, 8, 16], [4, 16, 8, 16]], "decoder": [[4, 31, 8, 16]]}, ValueError, "expected 32"),
        ({"encoder": [[1, 3, 8, 16], [4, 16, 8, 16]], "decoder": [[4, 32, 8, 16]]}, ValueError, "height=1"),
        ({"encoder": [[4, 3, 8]], "decoder": []}, TypeError, "expected \\(height"),
        ({"encoder": [[4, 3, 8, 16, "yes"], [4, 16, 8, 16]], "decoder": [[4, 32, 8, 16]]}, TypeError, "dilated must be a bool"),
        ({"encoder": "RSU7", "decoder": []}, TypeError, "sequence of stages"),
    ],
    ids=["decoder-length", "one-stage", "encoder-chain", "decoder-chain", "height", "short-row", "dilated", "string"],
)
def test_a_configuration_that_does_not_chain_is_refused_when_built(kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        U2Net(**kwargs)


# --- the command ---------------------------------------------------------------------------------

TINY = {"encoder": [[3, 3, 4, 8], [3, 8, 4, 8], [2, 8, 4, 8, True]], "decoder": [[2, 16, 4, 8, True], [3, 16, 4, 8]]}
"""A small random U²-Net for the command's tests (no weights are in the repository)."""


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    torch.manual_seed(4)
    model = U2Net(**TINY)
    for m in model.modules():  # non-trivial BatchNorm statistics, so the map is not flat
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), tmp_path / "tiny.pth")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY), encoding="utf-8")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    return {"image": tmp_path / "photo.png", "checkpoint": tmp_path / "tiny.pth", "config": tmp_path / "tiny.json",
            "out": tmp_path / "out"}


def run(files: dict[str, Path], *extra: str, image: Path | None = None) -> int:
    return cutout_main([str(image or files["image"]), "--checkpoint", str(files["checkpoint"]),
                        "--config", str(files["config"]), "--out", str(files["out"]), "--size", "64", *extra])


def test_the_command_writes_the_saliency_map_and_the_cutout_at_the_images_size(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(files, "--cutout") == 0
    saliency = Image.open(files["out"] / "photo_saliency.png")
    cutout = Image.open(files["out"] / "photo_cutout.png")
    assert (saliency.mode, saliency.size, cutout.mode, cutout.size) == ("L", (70, 45), "RGBA", (70, 45))
    model = U2Net(**TINY)
    model.load_state_dict(torch.load(files["checkpoint"], weights_only=True))
    image = read_image(files["image"])
    with torch.inference_mode():
        expected = (saliency_map(model.eval(), image, 64) * 255).round().to(torch.uint8).numpy()
    alpha = np.asarray(saliency)
    assert np.array_equal(alpha, expected)
    rgba = np.asarray(cutout)
    assert np.array_equal(rgba[..., :3], image.numpy()) and np.array_equal(rgba[..., 3], alpha)
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_the_map_is_stretched_to_the_full_range_as_the_official_normpred_does(files: dict[str, Path]) -> None:
    """At the model's own size nothing is resized, so the darkest pixel is exactly 0 and the brightest 1."""
    model = U2Net(**TINY)
    model.load_state_dict(torch.load(files["checkpoint"], weights_only=True))
    image = torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        alpha = saliency_map(model.eval(), image, 64)
    assert alpha.shape == (64, 64) and alpha.min().item() == 0.0 and alpha.max().item() == 1.0


def test_the_command_recognises_a_released_size_from_its_tensors_and_accepts_a_file_without_batch_counters(
    files: dict[str, Path],
) -> None:
    """No --config: U²-Net† is recognised from the shapes (the full size is the same code, 176 MB to save)."""
    state = {k: v for k, v in u2net_lite().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, files["checkpoint"])
    code = cutout_main([str(files["image"]), "--checkpoint", str(files["checkpoint"]), "--out", str(files["out"]),
                        "--size", "32"])
    assert code == 0 and (files["out"] / "photo_saliency.png").is_file()


def _exif_rotated_jpeg(path: Path) -> None:
    """A 40 x 24 JPEG stored sideways, whose EXIF orientation 6 asks a viewer to turn it to 24 x 40."""
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, exif=exif)


def _grey16(path: Path) -> None:
    values = np.array([[0, 257, 65535, 32896]] * 8, dtype=np.uint16)
    Image.fromarray(values).save(path)


@pytest.mark.parametrize(
    ("make", "name", "size"),
    [(_exif_rotated_jpeg, "rotated.jpg", (24, 40)), (_grey16, "grey16.png", (4, 8))],
    ids=["exif-orientation", "16-bit-grey"],
)
def test_images_are_read_as_a_viewer_shows_them(files: dict[str, Path], make, name: str, size: tuple[int, int]) -> None:
    path = files["image"].parent / name
    make(path)
    assert run(files, "--cutout", image=path) == 0
    assert Image.open(files["out"] / f"{path.stem}_saliency.png").size == size  # (W, H) upright
    if name == "grey16.png":
        assert read_image(path)[0, :, 0].tolist() == [0, 1, 255, 128]  # round(v / 257), not clipped


def test_an_existing_output_is_never_overwritten_and_nothing_else_is_written(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files["out"].mkdir()
    (files["out"] / "photo_cutout.png").write_bytes(b"mine")
    before = snapshot(files["out"])
    assert run(files, "--cutout") == 2
    assert "photo_cutout.png already exists; nothing was written" in one_line(capsys.readouterr().err)
    assert snapshot(files["out"]) == before


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _bad_state(path: Path) -> Path:
    torch.save({"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, path)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _config(path: Path, config: dict) -> str:
    return str(_write(path, json.dumps(config).encode()))


BAD = {  # case: (the arguments it changes, given a scratch folder and the good files; words of the one line)
    "missing-image": (lambda d, f: {"image": "nowhere.png"}, "does not exist"),
    "image-is-a-folder": (lambda d, f: {"image": str(d)}, "is a folder"),
    "image-is-a-fifo": (lambda d, f: {"image": str(_fifo(d / "pipe.png"))}, "FIFO"),
    "image-not-an-image": (lambda d, f: {"image": str(_write(d / "x.png", b"not a png"))}, "cannot be read"),
    "image-truncated": (lambda d, f: {"image": str(_write(d / "t.png", f["image"].read_bytes()[:200]))}, "cannot be read"),
    "missing-checkpoint": (lambda d, f: {"--checkpoint": str(d / "none.pth")}, "does not exist"),
    "checkpoint-is-a-folder": (lambda d, f: {"--checkpoint": str(d)}, "is a folder"),
    "checkpoint-garbage": (lambda d, f: {"--checkpoint": str(_write(d / "g.pth", b"garbage"))}, "cannot be read"),
    "checkpoint-other-model": (lambda d, f: {"--checkpoint": str(_bad_state(d / "vit.pth")), "--config": None},
                               "neither U²-Net"),
    "checkpoint-other-size": (lambda d, f: {"--config": _config(d / "c.json", {**TINY, "encoder": [
        [3, 3, 4, 8], [3, 8, 4, 8], [2, 8, 5, 8, True]]})}, "has shape"),
    "size-zero": (lambda d, f: {"--size": "0"}, "--size '0'"),
    "size-word": (lambda d, f: {"--size": "big"}, "--size 'big'"),
    "size-huge": (lambda d, f: {"--size": "100000"}, "from 32 to 2048"),
    "config-unknown-field": (lambda d, f: {"--config": _config(d / "c.json", {"depth": 3})}, "unknown field 'depth'"),
    "config-does-not-chain": (lambda d, f: {"--config": _config(d / "c.json", {**TINY, "decoder": TINY["decoder"][:1]})},
                              "decoder has 1 stages"),
    "config-two-maps": (lambda d, f: {"--config": _config(d / "c.json", {**TINY, "out_ch": 2})}, "expected 3 (RGB) and 1"),
    "config-nan": (lambda d, f: {"--config": str(_write(d / "c.json", b'{"out_ch": NaN}'))}, "holds NaN"),
    "config-missing": (lambda d, f: {"--config": str(d / "none.json")}, "does not exist"),
    "device": (lambda d, f: {"--device": "tpu"}, "--device 'tpu' is not supported"),
    "out-is-a-file": (lambda d, f: {"--out": str(f["image"])}, "is a file; expected a folder"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_nothing_is_written(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, words = BAD[case]
    bad = tmp_path / "bad"
    bad.mkdir()
    argv: dict[str, str | None] = {"image": str(files["image"]), "--checkpoint": str(files["checkpoint"]),
                                   "--config": str(files["config"]), "--out": str(files["out"]), "--size": "64"}
    argv.update(make(bad, files))
    command = [argv.pop("image")] + [item for flag, value in argv.items() if value is not None for item in (flag, value)]
    before = snapshot(tmp_path)
    assert cutout_main(command) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("u2net-cutout: error:") and words in line
    assert snapshot(tmp_path) == before


def test_a_write_that_fails_on_a_read_only_disk_leaves_nothing(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with tmpfs("1m") as folder:
        remount_read_only(folder)
        files["out"] = folder / "masks"
        assert run(files, "--cutout") == 2
        assert "nothing was written" in one_line(capsys.readouterr().err)
        assert list(folder.iterdir()) == []


def test_a_write_that_fails_on_a_full_disk_leaves_none_of_the_files(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Room for the (smooth) saliency map but not the cut-out of a noisy 300 x 300 photo: the map is removed again."""
    big = files["image"].parent / "big.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(big)
    with tmpfs("256k") as folder:
        files["out"] = folder / "out"
        code = run(files, "--cutout", image=big)
        assert code == 2 and "nothing was written" in one_line(capsys.readouterr().err)
        assert list(folder.iterdir()) == []
