"""The fault suite of ``mae-pretrain``: bad images, configs, data folders, paths and checkpoints.

Every try ends one of two ways: the command prints one line and exits with its documented status
(2: refused, nothing written; 1: the run failed after it started), or the fault is recovered from
and reported (an unreadable image is replaced by the next readable one, counted, and named once an
epoch). Never a traceback, never a hang, never a silently wrong count or config.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from refimpl.train import pretrain
from refimpl.train.checkpoint import checkpoint_name, list_checkpoints, load_training_checkpoint
from refimpl.train.config import ConfigError, load_config_file
from refimpl.train.data import DataError, scan_image_folder

from conftest import ROOT
from faults import one_line, snapshot

MODEL = {"embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_embed_dim": 8, "decoder_depth": 1, "decoder_num_heads": 2}


def flags(data: Path, out: Path, *extra: str) -> list[str]:
    """Two epochs of two steps of a one-block MAE on 32 px crops of 8 images, a checkpoint at the end: a second on a CPU."""
    return ["--data", str(data), "--output-dir", str(out), "--img-size", "32", "--patch-size", "8",
            "--model-kwargs", json.dumps(MODEL), "--batch-size", "4", "--epochs", "2", "--warmup-steps", "0",
            "--save-every", "100", "--log-every", "1", "--figure-every", "0", "--figure-images", "1", "--no-progress",
            "--no-tensorboard", "--device", "cpu", "--num-workers", "0", *extra]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 random 96 px JPEGs, ``0.jpg`` ... ``7.jpg``: large enough that a third of one holds its whole header."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(root / f"{i}.jpg", quality=90)
    return root


def copy_of(photos: Path, folder: Path) -> Path:
    shutil.copytree(photos, folder)
    return folder


def cut_to_a_third(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def cut_after_the_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 40])  # the start of scan, then 40 bytes of the body


def png_cut_in_half(path: Path) -> None:
    image = Image.open(path).convert("RGB")
    path.unlink()
    png = path.with_suffix(".png")  # sorts where the JPEG was: same index
    image.save(png)
    data = png.read_bytes()
    png.write_bytes(data[: len(data) // 2])
    assert len(scan_image_folder(path.parent).files) == 8  # the header is fine: the scan cannot tell


def not_an_image_unchecked(path: Path) -> list[str]:
    path.write_text("not an image at all")
    return ["--no-check-images"]  # the scan opens no header, so only the loader can tell


def removed_after_the_scan(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = pretrain.scan_image_folder

    def scan_then_remove(*args: object, **kwargs: object) -> object:
        found = scan(*args, **kwargs)
        path.unlink()
        return found

    monkeypatch.setattr(pretrain, "scan_image_folder", scan_then_remove)


DAMAGE: dict[str, Callable[..., list[str] | None]] = {
    "a JPEG cut to a third": lambda path, mp: cut_to_a_third(path),
    "a JPEG cut just after its header": lambda path, mp: cut_after_the_header(path),
    "a PNG cut in half": lambda path, mp: png_cut_in_half(path),
    "not an image, with --no-check-images": lambda path, mp: not_an_image_unchecked(path),
    "a file removed after the scan": removed_after_the_scan,
}


def run_command(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m refimpl.train.pretrain ARGS`` in its own process group; a hang fails the test, never blocks it."""
    process = subprocess.Popen([sys.executable, "-m", "refimpl.train.pretrain", *args], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"mae-pretrain hung ({timeout} s); its stderr:\n{err[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def errors(err: str) -> list[str]:
    """The lines of stderr a user reads as problems (not the start-up lines about the data and the plan)."""
    return [line for line in err.strip().splitlines() if not re.match(r"mae-pretrain: (data|plan|done):", line)]


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_training_checkpoint(list_checkpoints(out)[-1])["model"]


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- 1. an unreadable image found mid-run: replaced, counted, named once an epoch; never a hang ----------


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_image_that_passes_the_scan_but_cannot_be_decoded_is_replaced_counted_and_named_once_an_epoch(
    photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    data = copy_of(photos, tmp_path / "data")
    extra = DAMAGE[damage](data / "3.jpg", monkeypatch) or []
    out = tmp_path / "run"
    with caplog.at_level("WARNING", logger="refimpl.train.pretrain"):
        assert pretrain.main(flags(data, out, *extra)) == 0
    named = [r.message for r in caplog.records if "could not be decoded" in r.message]
    assert len(named) == 2 and all("3." in m and "the next readable image stood in" in m for m in named), named
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert all(row.get("unreadable", 0) in (0, 1) for row in rows) and rows[-1]["unreadable"] == 1


def test_a_run_with_an_unreadable_image_killed_and_resumed_ends_bit_identical(photos: Path, tmp_path: Path) -> None:
    data = copy_of(photos, tmp_path / "data")
    cut_to_a_third(data / "3.jpg")
    assert pretrain.main(flags(data, tmp_path / "whole")) == 0
    assert pretrain.main(flags(data, tmp_path / "resumed", "--max-steps", "3")) == 0
    assert pretrain.main(flags(data, tmp_path / "resumed")) == 0
    assert_same(final_weights(tmp_path / "whole"), final_weights(tmp_path / "resumed"))


def test_removing_the_unreadable_image_then_resuming_continues_with_one_line_of_warning(
    photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_of(photos, tmp_path / "data")
    cut_to_a_third(data / "3.jpg")
    out = tmp_path / "run"
    assert pretrain.main(flags(data, out, "--max-steps", "1")) == 0
    (data / "3.jpg").unlink()  # the fix the epoch's line asked for
    with caplog.at_level("WARNING", logger="refimpl.train.pretrain"):
        assert pretrain.main(flags(data, out)) == 0
    changed = [r.message for r in caplog.records if "now has 7 images" in r.message]
    assert len(changed) == 1 and "trained on 8: resuming at step 1" in changed[0], caplog.text
    assert [p.name for p in list_checkpoints(out)][-1] == checkpoint_name(2)  # 7 images: one step an epoch
    (data / "4.jpg").unlink()
    (data / "5.jpg").unlink()  # 2 of 8 fewer: another data set, not a fix
    capsys.readouterr()
    assert pretrain.main(flags(data, out)) == 2
    line = one_line(capsys.readouterr().err)
    assert "was trained on 7 images, the data now has 5 (a resume accepts a change of at most 1)" in line


@pytest.mark.parametrize("where", ["in a row", "apart"])
def test_more_unreadable_images_than_the_limit_stop_the_run_in_one_line_naming_the_first(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    data = copy_of(photos, tmp_path / "data")
    for name in ("3.jpg", "4.jpg" if where == "in a row" else "6.jpg"):
        cut_to_a_third(data / name)
    assert pretrain.main(flags(data, tmp_path / "run")) == 2
    line = one_line(capsys.readouterr().err)
    assert re.search(r"image '.*3\.jpg' and 1 more cannot be decoded \(.*\); a run reads on past at most 1 "
                     r"unreadable of its 8 images", line), line


def test_a_data_error_in_a_loader_worker_leaves_no_worker_behind(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import multiprocessing

    data = copy_of(photos, tmp_path / "data")
    cut_to_a_third(data / "3.jpg")
    cut_to_a_third(data / "4.jpg")
    assert pretrain.main(flags(data, tmp_path / "run", "--num-workers", "1")) == 2
    assert "and 1 more cannot be decoded" in one_line(capsys.readouterr().err)
    assert multiprocessing.active_children() == []  # left alive, they made the command's exit wait forever


def test_loader_workers_choose_the_same_stand_in_images_as_the_main_process(photos: Path, tmp_path: Path) -> None:
    data = copy_of(photos, tmp_path / "data")
    cut_to_a_third(data / "3.jpg")
    assert pretrain.main(flags(data, tmp_path / "workers", "--num-workers", "1")) == 0
    assert pretrain.main(flags(data, tmp_path / "main")) == 0
    assert_same(final_weights(tmp_path / "workers"), final_weights(tmp_path / "main"))


@pytest.mark.subprocess
def test_the_command_with_a_loader_worker_stops_on_bad_images_in_one_line_and_never_hangs(
    photos: Path, tmp_path: Path
) -> None:
    data = copy_of(photos, tmp_path / "data")
    cut_to_a_third(data / "3.jpg")
    cut_to_a_third(data / "4.jpg")  # two in a row: the worker itself gives up
    result = run_command(flags(data, tmp_path / "run", "--num-workers", "1"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "and 1 more cannot be decoded" in one_line("\n".join(errors(result.stderr)))


# --- 2. configs are read strictly ----------------------------------------------------------------------

CONFIGS = {
    "a repeated key": ("run.yaml", b"epochs: 1\nbatch_size: 4\nepochs: 50\n", r"line 3: key 'epochs' is repeated \(first on line 1\)"),
    "a repeated nested key": ("run.yaml", b"model_kwargs:\n  depth: 1\n  depth: 2\n", r"line 3: key 'depth' is repeated"),
    "an alias": ("run.yaml", b"blr: &b 0.001\nmin_lr: *b\n", r"line 1: anchor &b; anchors and aliases are not allowed"),
    "an alias bomb": ("run.yaml", b"a0: &a0 [lol, lol, lol]\n" + b"".join(
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]\n".encode() for i in range(1, 9)), r"line 1: anchor &a0"),
    "a self-referencing alias": ("run.yaml", b"epochs: 1\ntitle: &t [*t]\n", r"line 2: anchor &t"),
    "a merge key": ("run.yaml", b"<<: {epochs: 3}\n", r"line 1: merge key '<<' is not allowed"),
    "not UTF-8 (YAML)": ("run.yaml", b"epochs: 1\nmodel: caf\xe9\n", r"is not UTF-8 text \(byte 0xe9 on line 2\)"),
    "not UTF-8 (JSON)": ("run.json", b'{"epochs": "\xff"}', r"is not UTF-8 text \(byte 0xff on line 1\)"),
    "a repeated JSON key": ("run.json", b'{"epochs": 1, "epochs": 50}', r"key 'epochs' is repeated"),
    "broken YAML": ("run.yaml", b"epochs: [1,\n", r"line 2: .*\(not valid YAML\)"),
    "broken JSON": ("run.json", b'{"epochs": 1,\n}', r"line 2: .*\(not valid JSON\)"),
    "two YAML documents": ("run.yaml", b"epochs: 1\n---\nepochs: 2\n", r"line 2: expected a single document in the stream, but found another document \(not valid YAML\)"),
    "a Python tag": ("run.yaml", b"epochs: !!python/object/apply:os.system [ls]\n", r"line 1: could not determine a constructor"),
    "a list": ("run.yaml", b"- epochs\n", r"holds a list; expected a mapping"),
    "a string for a bool": ("run.yaml", b"progress: 'no'\n", r"progress='no'; expected true or false"),
    "a string for an int": ("run.yaml", b"epochs: fifty\n", r"epochs='fifty'; expected a positive integer"),
    "a seed too large for torch": ("run.yaml", b"seed: 18446744073709551616\n", r"seed=18446744073709551616; expected an integer in \[0, 2\*\*63\)"),
    "nested 100000 deep (YAML)": ("run.yaml", b"epochs: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", r"nests lists or mappings too deeply"),
    "nested 100000 deep (JSON)": ("run.json", b'{"epochs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"nests lists or mappings too deeply"),
    "a number key": ("run.yaml", b"1: 2\nfoo: 3\n", r"unknown key 'foo'|unknown key 1"),
}


@pytest.mark.parametrize("case", CONFIGS)
def test_a_config_file_is_read_strictly_and_every_problem_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    name, text, expected = CONFIGS[case]
    (tmp_path / name).write_bytes(text)
    no_data = str(tmp_path / "no-data")  # a config let through would fail on the data at once, not train the demo
    assert pretrain.main(["--config", str(tmp_path / name), "--output-dir", str(tmp_path / "run"), "--data", no_data]) == 2
    line = one_line(capsys.readouterr().err)
    assert re.search(expected, line), line
    assert name in line or re.match(r"mae-pretrain: error: (\w+=|config: unknown key)", line), line
    assert not (tmp_path / "run").exists()


def test_a_yaml_byte_order_mark_is_read_as_utf_8(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_bytes(b"\xef\xbb\xbfepochs: 3\n")
    assert load_config_file(tmp_path / "run.yaml") == {"epochs": 3}


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"embed_dim": "eight"}, r"embed_dim must be an int, got str 'eight'"),
    ({"depth": 1.5}, r"depth must be an int, got float 1.5"),
    ({"num_heads": None}, r"num_heads"),
])
def test_a_model_kwarg_of_the_wrong_type_is_one_line_naming_it_and_nothing_is_written(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kwargs: dict, expected: str
) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"model_kwargs": {**MODEL, **kwargs}}))
    args = [a for a in flags(photos, tmp_path / "run") if a != json.dumps(MODEL) and a != "--model-kwargs"]
    assert pretrain.main(["--config", str(tmp_path / "run.json"), *args]) == 2
    line = one_line(capsys.readouterr().err)
    assert re.search(expected, line) and "Error" not in line, line
    assert not (tmp_path / "run").exists()  # refused before the folder (and its lock) is made


# --- 3. the data folder: links are followed once, never back into the folder ------------------------------


def _png(path: Path) -> None:
    Image.new("RGB", (40, 40), (1, 2, 3)).save(path)


LINKS: dict[str, tuple[Callable[[Path, Path], None], int, int]] = {
    # name: (make it in data D / outside folder E, images found, links not followed)
    "ln -s . D/again": (lambda d, e: (d / "again").symlink_to("."), 8, 1),
    "ln -s .. D/up": (lambda d, e: (d / "up").symlink_to(".."), 8, 1),
    "a link to a subfolder": (lambda d, e: (d / "alias").symlink_to("cats"), 8, 1),
    "a link to the folder by its absolute path": (lambda d, e: (d / "cats" / "root").symlink_to(d.resolve()), 8, 1),
    "two names for one file": (lambda d, e: (d / "dup.png").symlink_to("cats/0.png"), 8, 1),
    "a hard link": (lambda d, e: os.link(d / "cats" / "0.png", d / "hard.png"), 8, 1),
    "an outside folder is followed": (lambda d, e: (d / "ext").symlink_to(e), 9, 0),
    "an outside folder linking back": (lambda d, e: ((d / "ext").symlink_to(e), (e / "back").symlink_to(d)), 9, 1),
    "an outside folder linking to itself": (lambda d, e: ((d / "ext").symlink_to(e), (e / "loop").symlink_to(".")), 9, 1),
    "the outside folder twice": (lambda d, e: ((d / "ext").symlink_to(e), (d / "ext2").symlink_to(e)), 9, 1),
}


@pytest.mark.parametrize("case", LINKS)
def test_links_in_the_data_folder_count_each_real_image_once(tmp_path: Path, case: str) -> None:
    data, outside = tmp_path / "D", tmp_path / "E"
    for sub in ("cats", "dogs"):
        (data / sub).mkdir(parents=True)
        for i in range(4):
            _png(data / sub / f"{i}.png")
    outside.mkdir()
    _png(outside / "x.png")
    make, found, links = LINKS[case]
    make(data, outside)
    with warnings_caught() as caught:
        scan = scan_image_folder(data)
    assert (len(scan.files), scan.links) == (found, links)
    assert len({p.resolve() for p in scan.files}) == found  # no real file twice
    assert (links > 0) == any("links back into the folder" in m for m in caught)


@contextlib.contextmanager
def warnings_caught() -> Iterator[list[str]]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    messages.extend(str(w.message) for w in caught)


# --- 4. paths and the environment: one line, exit 2, nothing written -------------------------------------


class Hung(Exception):
    """A read that would block for ever (a FIFO opened for reading)."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def hung(signum: int, frame: object) -> None:
        raise Hung(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


PATHS = {  # what the path is: (make it at p, the words expected)
    "a loop of links": (lambda p: p.symlink_to(p.name), "is a loop of symbolic links"),
    "a FIFO": (lambda p: os.mkfifo(p), "is a FIFO (named pipe)"),
    "/dev/null": (None, "is a character device"),
    "a dangling link": (lambda p: p.symlink_to("missing"), "is a link to a missing target"),
}
FILE_FLAGS = ("--config", "--resume")
FOLDER_FLAGS = ("--data", "--output-dir")


@pytest.mark.parametrize("flag", FILE_FLAGS + FOLDER_FLAGS)
@pytest.mark.parametrize("kind", [*PATHS, "the other kind"])
def test_a_path_flag_that_names_no_usable_path_is_one_line_saying_what_it_is(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, kind: str
) -> None:
    if kind == "the other kind":  # a folder where a file is wanted, or a file where a folder is
        path = tmp_path / "given"
        path.mkdir() if flag in FILE_FLAGS else path.write_text("x")
        expected = "is a folder; expected a file" if flag in FILE_FLAGS else "is a file; expected a folder"
    else:
        make, expected = PATHS[kind]
        path = Path("/dev/null") if make is None else tmp_path / ("given.yaml" if flag == "--config" else "given")
        if make is not None:
            make(path)
    out = tmp_path / "run"
    args = flags(photos, out)
    if flag in args:
        args[args.index(flag) + 1] = str(path)
    else:
        args += [flag, str(path)]
    with deadline(30):
        assert pretrain.main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert str(path) in line and expected in line, line
    if flag != "--output-dir":
        assert not out.exists()


@pytest.fixture(scope="module")
def finished(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-step run: checkpoints to damage."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert pretrain.main(flags(photos, out, "--max-steps", "2")) == 0
    return out


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)

    return edit


def _first_weight(state: dict) -> str:
    return next(k for k, v in state["model"].items() if v.is_floating_point() and v.numel() > 1)


CHECKPOINTS = {  # a damaged checkpoint: (the damage, the words expected)
    "no dataset_size": (_edit(lambda s: s.pop("dataset_size")), "lacks the entry 'dataset_size'"),
    "no step": (_edit(lambda s: s.pop("step")), "lacks the entry 'step'"),
    "a string for the step": (_edit(lambda s: s.update(step="2")), "holds str '2' as 'step', not a number of steps"),
    "a wider layer": (_edit(lambda s: s["model"].update({"norm.weight": torch.ones(32)})),
                      "tensor 'norm.weight' has shape (32,) there, (16,) in the model of this config"),
    "a missing tensor": (_edit(lambda s: s["model"].pop("norm.bias")), "has no tensor 'norm.bias'"),
    "an extra tensor": (_edit(lambda s: s["model"].update({"head.weight": torch.ones(2)})), "has a tensor 'head.weight'"),
    "NaN weights": (_edit(lambda s: s["model"][_first_weight(s)].fill_(float("nan"))), "is broken: tensor 'model."),
    "an infinite weight": (_edit(lambda s: s["model"]["norm.weight"].__setitem__(3, float("inf"))),
                           "is broken: tensor 'model.norm.weight' holds NaN or infinite values"),
    "NaN in AdamW's state": (_edit(lambda s: next(iter(s["optimizer"]["state"].values()))["exp_avg"].fill_(float("nan"))),
                             "is broken: tensor 'optimizer.state."),
}


@pytest.mark.parametrize("explicit", [True, False], ids=["--resume", "found in output_dir"])
@pytest.mark.parametrize("case", CHECKPOINTS)
def test_a_damaged_or_foreign_checkpoint_is_one_line_naming_the_file_and_the_entry(
    photos: Path, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, explicit: bool
) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    damage, expected = CHECKPOINTS[case]
    newest = list_checkpoints(out)[-1]
    damage(newest)
    before = snapshot(out)
    capsys.readouterr()
    assert pretrain.main(flags(photos, out, *(["--resume", str(newest)] if explicit else []))) == 2
    line = one_line(capsys.readouterr().err)
    assert newest.name in line and expected in line and "diverged" not in line, line
    assert snapshot(out) == before  # refused before anything was written, no lock left behind


def test_a_run_whose_weights_break_saves_no_checkpoint_and_says_it_diverged(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    step = pretrain.train_step

    def breaking_step(setup: pretrain.Setup, state: pretrain.LoopState, batches: Iterator) -> float:
        lr = step(setup, state, batches)
        if state.step == 3:
            with torch.no_grad():
                next(setup.model.parameters()).fill_(float("nan"))
        return lr

    monkeypatch.setattr(pretrain, "train_step", breaking_step)
    out = tmp_path / "run"
    assert pretrain.main(flags(photos, out, "--log-every", "100", "--save-every", "1")) == 1  # no loss line to notice it first
    line = one_line(capsys.readouterr().err)
    assert "training diverged: the weights hold NaN or infinite values after step 3" in line, line
    assert "then resume from checkpoint-00000002.pth" in line
    assert [p.name for p in list_checkpoints(out)][-1] == checkpoint_name(2)


ALLOCATIONS = {
    "the CPU allocator": RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                                      "allocate memory: you tried to allocate 147456000000000 bytes. Error code 12"),
    "CUDA": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of "
                                   "79.1 GiB of which 2.3 GiB is free."),
    "Python": MemoryError(),
}


@pytest.mark.parametrize("case", ALLOCATIONS)
def test_an_allocation_that_fails_is_one_line_saying_what_to_lower(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    def out_of_memory(setup: pretrain.Setup, state: pretrain.LoopState, batches: Iterator) -> float:
        raise ALLOCATIONS[case]

    monkeypatch.setattr(pretrain, "train_step", out_of_memory)
    assert pretrain.main(flags(photos, tmp_path / "run")) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("mae-pretrain: error: out of memory") and "lower --batch-size" in line, line
    assert {"the CPU allocator": "137,329 GiB", "CUDA": "20.00 GiB", "Python": "memory:"}[case] in line


def test_a_model_too_large_for_memory_is_one_line_and_nothing_is_written(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = flags(photos, tmp_path / "run")
    args[args.index("--model-kwargs") + 1] = json.dumps({**MODEL, "mlp_ratio": 1e9})
    assert pretrain.main(args) == 2
    assert "out of memory (tried to allocate" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning_and_a_finished_run_leaves_none(
    photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("4194304\n")  # a SIGKILL-ed run's: the file stays, its flock died with it
    with caplog.at_level("WARNING", logger="refimpl.train.pretrain"):
        assert pretrain.main(flags(photos, out, "--max-steps", "1")) == 0
    assert re.search(r"took over .*\.lock of process 4194304, which ended without releasing it", caplog.text)
    assert not (out / ".lock").exists()


def test_a_refused_start_leaves_neither_a_lock_nor_a_folder(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "run"
    refused = flags(photos, out)
    refused[refused.index("--model-kwargs") + 1] = json.dumps({**MODEL, "depth": "one"})  # refused by the model
    assert pretrain.main(refused) == 2
    assert "depth must be an int" in one_line(capsys.readouterr().err)
    assert not out.exists()
    out.mkdir()
    assert pretrain.main(refused) == 2
    assert "depth must be an int" in one_line(capsys.readouterr().err)
    assert list(out.iterdir()) == []  # no .lock left to puzzle the next start
    with open(out / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds it
        assert pretrain.main(flags(photos, out)) == 2
        assert "another mae-pretrain is running" in one_line(capsys.readouterr().err)
    assert [p.name for p in out.iterdir()] == [".lock"]  # the other run's, untouched


def test_loading_a_config_refuses_nothing_a_valid_file_holds(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("epochs: 5\nbetas: [0.9, 0.999]\nmodel_kwargs: {depth: 1}\ncompile: null\n")
    assert load_config_file(tmp_path / "run.yaml") == {"epochs": 5, "betas": [0.9, 0.999], "model_kwargs": {"depth": 1},
                                                       "compile": None}
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    with pytest.raises(DataError, match="is a loop of symbolic links"):
        (tmp_path / "loop").symlink_to("loop")
        scan_image_folder(tmp_path / "loop")
