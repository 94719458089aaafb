"""MAE pretraining: resumes exactly after a kill, never corrupts a checkpoint, refuses bad inputs, DDP = one process."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from refimpl.checkpoints import load_checkpoint
from refimpl.mae import encoder_state, vit_from_mae
from refimpl.train import pretrain as pretrain_module
from refimpl.train.checkpoint import checkpoint_name, list_checkpoints, load_training_checkpoint
from refimpl.train.config import ConfigError, PretrainConfig, load_config_file, resolve_config
from refimpl.train.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataError,
    FolderImages,
    MAEPretrainDataset,
    ResumableSampler,
    normalize_images,
    sample_seed,
    scan_image_folder,
)
from refimpl.train.pretrain import build_model, default_workers, main, train
from refimpl.train.signals import FORCE_AFTER_S, StopOnSignal
from refimpl.vit import VisionTransformer

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = dict(embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)


class Killed(Exception):
    """Stands in for SIGKILL / a lost node inside the training loop."""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 small random photographs-to-be in an ImageFolder layout (two class folders)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(16):
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return root


def tiny(data: Path, out: Path, **overrides: object) -> PretrainConfig:
    """A run of 8 steps (2 epochs of 4) on 32 px images with a one-block MAE: a second or two on CPU."""
    values = dict(data=str(data), output_dir=str(out), img_size=32, patch_size=8, model_kwargs=TINY_MODEL,
                  batch_size=4, epochs=2, warmup_steps=2, blr=1e-2, save_every=2, keep_last=2, log_every=1,
                  figure_every=0, figure_images=2, progress=False, tensorboard=False, num_workers=0)
    return PretrainConfig(**{**values, **overrides})  # checked when built


def stop_at(step: int):  # noqa: ANN201 - a callback
    def on_step(done: int) -> None:
        if done == step:
            raise Killed(f"killed after step {step}")

    return on_step


def assert_same_parameters(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def losses(out: Path) -> list[tuple[int, float]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [(row["step"], row["loss"]) for row in map(json.loads, lines)]


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# --- resume and checkpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("accum_steps", [1, 2])
def test_a_run_killed_after_step_5_and_resumed_ends_bit_identical_to_an_uninterrupted_run(
    images: Path, tmp_path: Path, accum_steps: int
) -> None:
    whole = train(tiny(images, tmp_path / "whole", accum_steps=accum_steps))
    with pytest.raises(Killed):
        train(tiny(images, tmp_path / "killed", accum_steps=accum_steps), on_step=stop_at(5))
    assert [p.name for p in list_checkpoints(tmp_path / "killed")] == ["checkpoint-00000002.pth", "checkpoint-00000004.pth"]
    resumed = train(tiny(images, tmp_path / "killed", accum_steps=accum_steps))  # resumes automatically
    assert resumed.resumed_from == tmp_path / "killed" / "checkpoint-00000004.pth"
    assert whole.step == resumed.step == 8
    assert_same_parameters(whole.model.state_dict(), resumed.model.state_dict())
    assert losses(tmp_path / "killed") == losses(tmp_path / "whole")  # step 5's line was dropped and redone


def test_an_explicit_resume_path_and_changed_logging_options_continue_the_same_run(images: Path, tmp_path: Path) -> None:
    whole = train(tiny(images, tmp_path / "whole"))
    with pytest.raises(Killed):
        train(tiny(images, tmp_path / "a"), on_step=stop_at(3))
    resumed = train(tiny(images, tmp_path / "b", resume=str(tmp_path / "a" / "checkpoint-00000002.pth"), log_every=4))
    assert_same_parameters(whole.model.state_dict(), resumed.model.state_dict())


def test_a_kill_while_writing_a_checkpoint_leaves_the_last_good_one(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    real_save = torch.save

    def dies_half_way(obj: object, handle: object, *args: object, **kwargs: object) -> None:
        handle.write(b"PK\x03\x04 half a checkpoint")  # type: ignore[attr-defined]
        raise KeyboardInterrupt  # the process is stopped in the middle of the write

    def break_the_writer_after_step_2(step: int) -> None:
        if step == 2:
            monkeypatch.setattr(torch, "save", dies_half_way)

    with pytest.raises(KeyboardInterrupt):
        train(tiny(images, out), on_step=break_the_writer_after_step_2)
    monkeypatch.setattr(torch, "save", real_save)
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-00000002.pth"]
    assert load_training_checkpoint(out / "checkpoint-00000002.pth")["step"] == 2
    # A SIGKILL would also leave the temporary file behind: it must be ignored and cleaned up; and
    # it could cut the metrics log inside a line.
    (out / ".checkpoint-00000004.pth.x1y2.tmp").write_bytes(b"garbage")
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 4, "epoch": 1.0, "lo')
    resumed = train(tiny(images, out))
    whole = train(tiny(images, tmp_path / "whole"))
    assert_same_parameters(whole.model.state_dict(), resumed.model.state_dict())
    assert not list(out.glob(".*.tmp"))
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-00000006.pth", "checkpoint-00000008.pth"]
    assert losses(out) == losses(tmp_path / "whole")


def test_checkpoints_load_with_weights_only_and_the_encoder_loads_into_a_vision_transformer(
    images: Path, tmp_path: Path
) -> None:
    config = tiny(images, tmp_path)
    result = train(config)
    state = load_training_checkpoint(tmp_path / "checkpoint-00000008.pth")
    assert {"model", "optimizer", "scheduler", "step", "rng", "sampler", "config"} <= state.keys()
    assert state["sampler"] == {"epoch": 2, "start": 0}
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["config"] == config.to_dict() and saved["plan"]["total_steps"] == 8

    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=10)
    report = load_checkpoint(vit, tmp_path / "encoder.pth")
    assert report.missing == ["head.bias", "head.weight"]
    assert torch.equal(vit.blocks[0].attn.qkv.weight, result.model.blocks[0].attn.qkv.weight)

    mae = build_model(config)
    load_checkpoint(mae, tmp_path / "checkpoint-00000008.pth", strict=True)  # the full training checkpoint
    assert_same_parameters(mae.state_dict(), result.model.state_dict())
    assert isinstance(vit_from_mae(mae, num_classes=10), VisionTransformer)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_runs_resume_bit_identical_and_fp16_keeps_its_loss_scale(
    images: Path, tmp_path: Path, precision: str
) -> None:
    whole = train(tiny(images, tmp_path / "whole", precision=precision))
    with pytest.raises(Killed):
        train(tiny(images, tmp_path / "killed", precision=precision), on_step=stop_at(5))
    resumed = train(tiny(images, tmp_path / "killed", precision=precision))
    assert_same_parameters(whole.model.state_dict(), resumed.model.state_dict())
    assert all(p.dtype == torch.float32 for p in resumed.model.parameters())  # autocast keeps float32 masters
    scaler = load_training_checkpoint(tmp_path / "killed" / "checkpoint-00000008.pth")["scaler"]
    if precision == "fp16":
        assert scaler["scale"] > 0 and scaler["_growth_tracker"] == 8  # 8 clean steps since the start: restored
        assert all("loss_scale" in line for line in whole.metrics)
    else:
        assert scaler is None and not any("loss_scale" in line for line in whole.metrics)
    fp32 = train(tiny(images, tmp_path / "fp32"))
    assert not torch.equal(fp32.model.blocks[0].attn.qkv.weight, whole.model.blocks[0].attn.qkv.weight)


@contextlib.contextmanager
def raising_no_keyboard_interrupt() -> Iterator[None]:
    """Turn a stray ``KeyboardInterrupt`` into a test failure (pytest would end the whole session)."""
    try:
        yield
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C raised KeyboardInterrupt instead of asking for a clean stop")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_ctrl_c_stops_after_the_current_step_with_a_checkpoint_and_the_resume_is_exact(
    images: Path, tmp_path: Path, sig: signal.Signals, capfd: pytest.CaptureFixture[str]
) -> None:
    def stop_during_step_3(step: int) -> None:
        if step == 3:
            # Real signals, caught by the training loop's handler. The second one is what a worker
            # gets when torchrun forwards the terminal's Ctrl-C: it must not count as a second press.
            os.kill(os.getpid(), sig)
            os.kill(os.getpid(), sig)

    previous = signal.getsignal(sig)
    with raising_no_keyboard_interrupt():
        stopped = train(tiny(images, tmp_path / "run"), on_step=stop_during_step_3)
    assert signal.getsignal(sig) is previous  # the handler is only installed while training
    assert (stopped.stopped_by, stopped.step) == (sig.name, 3)
    assert ("Ctrl-C received: finishing this step and saving a checkpoint" in capfd.readouterr().err) == (sig == signal.SIGINT)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["checkpoint-00000002.pth", "checkpoint-00000003.pth"]
    resumed = train(tiny(images, tmp_path / "run"))
    assert resumed.stopped_by is None and resumed.resumed_from == tmp_path / "run" / "checkpoint-00000003.pth"
    whole = train(tiny(images, tmp_path / "whole"))
    assert_same_parameters(whole.model.state_dict(), resumed.model.state_dict())


def test_a_second_ctrl_c_a_moment_later_quits_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 100.0 + FORCE_AFTER_S / 2, 100.0 + FORCE_AFTER_S])
    monkeypatch.setattr("refimpl.train.signals.time.monotonic", lambda: next(clock))
    with StopOnSignal() as stop:
        with raising_no_keyboard_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # too soon: the same press, forwarded by torchrun
        assert stop.received == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def start_command(config: PretrainConfig, folder: Path) -> subprocess.Popen[str]:
    """``python -m refimpl.train.pretrain --config run.json`` in its own process group, like a cluster job."""
    path = folder / "run.json"
    path.write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # same thread count as this process: same float sums
    return subprocess.Popen([sys.executable, "-m", "refimpl.train.pretrain", "--config", str(path)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def checkpoint_step(path: Path) -> int:
    return int(path.stem.split("-")[1])


def wait_for_checkpoint(process: subprocess.Popen[str], folder: Path, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not any(checkpoint_step(p) >= step for p in list_checkpoints(folder)):
        if process.poll() is not None:
            pytest.fail(f"the run ended (code {process.returncode}) before checkpoint {step}:\n{process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"no checkpoint {step} after {timeout} s")
        time.sleep(0.01)


def long_tiny(images: Path, out: Path, **overrides: object) -> PretrainConfig:
    """100 steps of the tiny run (1-2 s): a signal sent when checkpoint 4 appears arrives mid-run."""
    return tiny(images, out, **{"epochs": 25, "warmup_steps": 10, "save_every": 4, **overrides})


@pytest.fixture(scope="module")
def long_run(images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], Path]:
    """The uninterrupted ``long_tiny`` run, once for the kill tests: its final parameters and folder."""
    out = tmp_path_factory.mktemp("long-run")
    return train(long_tiny(images, out)).model.state_dict(), out


@pytest.mark.subprocess
def test_a_real_sigkill_at_a_random_moment_loses_nothing_but_time(
    images: Path, tmp_path: Path, long_run: tuple[dict[str, torch.Tensor], Path]
) -> None:
    out = tmp_path / "killed"
    out.mkdir()
    process = start_command(long_tiny(images, out), tmp_path)
    wait_for_checkpoint(process, out, 4)
    os.killpg(process.pid, signal.SIGKILL)  # no handler runs: whatever was being written stays half-written
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert list_checkpoints(out)[-1].name != checkpoint_name(100)  # it really was stopped mid-run
    resumed = train(long_tiny(images, out))
    assert resumed.resumed_from is not None and resumed.step == 100
    whole, whole_out = long_run
    assert_same_parameters(whole, resumed.model.state_dict())
    assert losses(out) == losses(whole_out)


@pytest.mark.subprocess
def test_the_command_stops_on_a_sigterm_to_its_process_group_with_data_workers_and_exits_143(
    images: Path, tmp_path: Path, long_run: tuple[dict[str, torch.Tensor], Path]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    process = start_command(long_tiny(images, out, num_workers=1), tmp_path)
    wait_for_checkpoint(process, out, 4)
    os.killpg(process.pid, signal.SIGTERM)  # as SLURM and Kubernetes do: the workers get it too
    assert process.wait(timeout=60) == 128 + signal.SIGTERM, process.stderr.read()[-3000:]
    last = list_checkpoints(out)[-1]
    step = checkpoint_step(last)
    assert 4 <= step < 100 and f"SIGTERM: stopped after step {step} and saved {last.name}" in process.stderr.read()
    assert losses(out)[-1][0] == step  # log_every=1: the metrics end at the checkpoint
    resumed = train(long_tiny(images, out))  # the data workers do not change the numbers
    assert_same_parameters(long_run[0], resumed.model.state_dict())


def test_tensorboard_gets_the_same_scalars_as_the_metrics_log(images: Path, tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    train(tiny(images, tmp_path, tensorboard=True))
    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/images_per_s"} <= set(events.Tags()["scalars"])
    logged = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert [s for s, _ in logged] == [s for s, _ in losses(tmp_path)] == list(range(1, 9))
    assert [v for _, v in logged] == pytest.approx([v for _, v in losses(tmp_path)], rel=1e-6)


@pytest.mark.gpu
def test_on_cuda_the_default_run_compiles_trains_in_bf16_and_resumes(images: Path, tmp_path: Path) -> None:
    config = tiny(images, tmp_path / "killed", device="auto", num_workers=2, log_every=4)
    with pytest.raises(Killed):
        train(config, on_step=stop_at(5))
    resumed = train(config)
    saved = json.loads((tmp_path / "killed" / "config.json").read_text())
    assert saved["device"].startswith("cuda") and saved["precision"] in ("bf16", "fp16")
    assert resumed.step == 8 and all(np.isfinite(line["loss"]) for line in resumed.metrics)
    assert next(resumed.model.parameters()).is_cuda
    whole = train(dataclasses.replace(config, output_dir=str(tmp_path / "whole")))
    for key, value in whole.model.state_dict().items():  # GPU kernels may reorder sums: close, not equal
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-3, atol=1e-4, msg=key)


@pytest.mark.gpu
def test_on_cuda_fp16_scales_the_loss_and_saves_the_scaler(images: Path, tmp_path: Path) -> None:
    result = train(tiny(images, tmp_path, device="cuda", precision="fp16", compile=False))
    scaler = load_training_checkpoint(tmp_path / "checkpoint-00000008.pth")["scaler"]
    assert scaler["scale"] > 0 and all("loss_scale" in line for line in result.metrics)


@pytest.mark.gpu
def test_on_cuda_normalize_images_gives_the_cpus_bits_without_making_the_host_wait() -> None:
    imgs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    on_device = imgs.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host-device synchronisation raises
    try:
        out = normalize_images(on_device)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(out.cpu(), normalize_images(imgs))


# --- bad inputs ---------------------------------------------------------------------------------


def test_an_empty_or_missing_data_folder_is_an_error_before_any_model_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*args: object) -> None:
        raise AssertionError("a model was built")

    monkeypatch.setattr(pretrain_module, "build_model", no_model)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no readable image"):
        train(tiny(tmp_path / "empty", tmp_path / "out"))
    with pytest.raises(DataError, match="does not exist"):
        train(tiny(tmp_path / "missing", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_command_reports_a_bad_data_folder_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mae-pretrain: error: data folder") and "does not exist" in err[-1]
    assert not (tmp_path / "out").exists()


def test_non_image_files_are_skipped_with_a_warning_count(images: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "mixed"
    shutil.copytree(images, data)
    (data / "README.txt").write_text("not an image")
    (data / "cats" / ".DS_Store").write_bytes(b"\0\0")
    (data / "dogs" / "broken.jpg").write_bytes(b"not really a jpeg")
    with pytest.warns(UserWarning, match="skipped 3 non-image or unreadable files"):
        result = train(tiny(data, tmp_path / "out", epochs=1))
    assert result.plan.dataset_size == 16 and result.step == 4


def test_a_batch_larger_than_the_dataset_is_an_error_and_nothing_is_written(images: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"batch_size=32 is larger than the dataset \(16 images\)"):
        train(tiny(images, tmp_path / "out", batch_size=32))
    assert not (tmp_path / "out").exists()


def test_an_output_dir_holding_another_runs_checkpoint_is_refused_and_left_untouched(
    images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    train(tiny(images, out, epochs=1))
    before = snapshot(out)
    other_model = {**TINY_MODEL, "embed_dim": 64}
    with pytest.raises(ConfigError, match="belongs to another run: model_kwargs="):
        train(tiny(images, out, epochs=1, model_kwargs=other_model))
    with pytest.raises(ConfigError, match="belongs to another run: seed=0 there, 1 now"):
        train(tiny(images, out, epochs=1, seed=1))
    assert snapshot(out) == before


def test_a_foreign_or_truncated_checkpoint_file_is_a_clear_error(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint-00000004.pth").write_bytes(b"truncated")
    with pytest.raises(ConfigError, match="cannot be read"):
        train(tiny(images, out))
    torch.save({"model": {"w": torch.zeros(1)}}, out / "checkpoint-00000004.pth")
    with pytest.raises(ConfigError, match="is not a refimpl.train checkpoint"):
        train(tiny(images, out))


# --- config -------------------------------------------------------------------------------------


def test_flags_override_the_config_file_which_overrides_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("batch_size: 128\nepochs: 5\nbetas: [0.9, 0.999]\n")
    config = resolve_config(load_config_file(tmp_path / "run.yaml"), {"epochs": 7})
    assert (config.batch_size, config.epochs, config.betas, config.weight_decay) == (128, 7, (0.9, 0.999), 0.05)
    assert config.peak_lr() == pytest.approx(1.5e-4 * 128 / 256)
    with pytest.raises(ConfigError, match="precision='fp8'; expected one of 'auto', 'fp32', 'bf16', 'fp16'"):
        resolve_config({}, {"precision": "fp8"})
    with pytest.raises(ConfigError, match="fsdp=True with precision='fp16'; expected precision 'bf16' or 'fp32'"):
        resolve_config({"fsdp": True}, {"precision": "fp16"})
    (tmp_path / "bad.json").write_text('{"batchsize": 3}')
    with pytest.raises(ConfigError, match="unknown key 'batchsize'"):
        resolve_config(load_config_file(tmp_path / "bad.json"))


def test_the_recipe_defaults_are_the_papers() -> None:
    config = PretrainConfig()
    assert (config.blr, config.weight_decay, config.betas, config.mask_ratio, config.norm_pix_loss) == (
        1.5e-4, 0.05, (0.9, 0.95), 0.75, True)
    decay, no_decay = pretrain_module.make_optimizer(build_model(PretrainConfig(model_kwargs={"depth": 1})),
                                                     1e-3, 0.05, (0.9, 0.95)).param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 or p.ndim == 4 for p in decay["params"])


def test_the_help_lists_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(PretrainConfig):
        assert "--" + f.name.replace("_", "-") in text


def test_the_sampler_splits_one_permutation_across_ranks() -> None:
    whole = [i for _, i in ResumableSampler(12, 1, 0, seed=3)]
    ranks = [[i for _, i in ResumableSampler(12, 2, r, seed=3)] for r in range(2)]
    assert sorted(ranks[0][:2] + ranks[1][:2]) == sorted(whole[:4])  # one step of 4 = the same images


def official_augmentation(img_size: int) -> object:
    """Official ``main_pretrain.py``'s augmentation on PIL images, with torchvision's v1 transforms as it has them."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.RandomResizedCrop(img_size, scale=(0.2, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def test_the_first_step_trains_on_the_official_augmentation_bit_for_bit_normalised_after_the_copy(
    images: Path, tmp_path: Path
) -> None:
    config = tiny(images, tmp_path, max_steps=1)
    train(config)
    model = build_model(config)  # the run's initial weights
    dataset = MAEPretrainDataset(FolderImages(scan_image_folder(images).files), 32, model.num_patches, config.seed)
    keys = list(ResumableSampler(len(dataset), seed=config.seed))[: config.batch_size]
    augment = official_augmentation(32)
    expected_imgs = []
    for epoch, index in keys:
        torch.manual_seed(sample_seed(config.seed, epoch, index))  # the crop the dataset draws for this sample
        expected_imgs.append(augment(dataset.source[index]))
    loaded = [dataset[key] for key in keys]
    assert all(s.image.dtype == torch.uint8 and s.image.shape == (3, 32, 32) for s in loaded)  # a quarter of float's bytes
    assert all(s.unreadable == -1 for s in loaded)  # every image was read, none stood in for another
    imgs = normalize_images(torch.stack([s.image for s in loaded]))
    assert torch.equal(imgs, torch.stack(expected_imgs))  # the official crops and values, bit for bit
    noise = torch.stack([s.noise for s in loaded])
    with torch.no_grad():
        loss = model(imgs, config.mask_ratio, noise=noise).loss.item()
    assert losses(tmp_path)[0] == (1, pytest.approx(loss, abs=1e-6))  # the log rounds to 6 decimals


def test_normalize_images_refuses_float_images_and_a_wrong_channel_count() -> None:
    with pytest.raises(TypeError, match=r"imgs must be a uint8 tensor .* got a torch.float32 tensor"):
        normalize_images(torch.zeros(2, 3, 8, 8))
    with pytest.raises(TypeError, match="got ndarray"):
        normalize_images(np.zeros((3, 8, 8), np.uint8))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"3 channels; got \(2, 4, 8, 8\)"):
        normalize_images(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize(("cores", "local", "expected"), [(16, 1, 15), (16, 8, 1), (96, 8, 11), (64, 1, 16), (2, 4, 1)])
def test_default_workers_share_this_process_cores_among_the_nodes_ranks(
    monkeypatch: pytest.MonkeyPatch, cores: int, local: int, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4 * cores)  # the machine's count is not what this process may use
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local))
    assert default_workers(torch.device("cuda", 0)) == expected
    assert default_workers(torch.device("cpu")) == 0


def test_the_guides_run_is_recorded_from_a_run_folder_and_never_over_a_recorded_one(images: Path, tmp_path: Path) -> None:
    from paper_notes.figures.pretrain import record_run

    train(tiny(images, tmp_path / "run", figure_images=2))  # keeps checkpoints 6 and 8
    dest = tmp_path / "runs"
    dest.mkdir()
    written = record_run(tmp_path / "run", steps=(0, 8), dest=dest)
    assert [p.name for p in written] == ["mae-tiny-cpu-recon-000000.png", "mae-tiny-cpu-recon-000008.png",
                                         "mae-tiny-cpu.jsonl"]
    assert (dest / "mae-tiny-cpu.jsonl").read_text() == (tmp_path / "run" / "metrics.jsonl").read_text()
    first, last = (np.asarray(Image.open(p)) for p in written[:2])
    assert first.shape == last.shape == (5 * 32 + 4 * 2, 2 * 32 + 2, 3)  # 5 rows, 2 images, 2-px gaps
    assert np.array_equal(first[:32], last[:32]) and not np.array_equal(first[64:], last[64:])  # same input, new model
    with pytest.raises(FileExistsError, match="already holds a recorded run"):
        record_run(tmp_path / "run", steps=(0, 8), dest=dest)
    with pytest.raises(FileNotFoundError, match="checkpoint-00000004.pth"):
        record_run(tmp_path / "run", steps=(4,), dest=dest, force=True)
    assert snapshot(dest).keys() == {p.name for p in written}  # a refused call wrote nothing
    record_run(tmp_path / "run", steps=(0,), dest=dest, force=True)
    assert sorted(snapshot(dest)) == ["mae-tiny-cpu-recon-000000.png", "mae-tiny-cpu.jsonl"]  # step 8's grid is gone


# --- the default path and several processes ---------------------------------------------------------


def test_the_default_command_trains_on_the_embedded_photographs_and_writes_a_checkpoint_and_a_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--output-dir", str(tmp_path), "--max-steps", "2", "--batch-size", "16", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "checkpoint-00000002.pth").is_file()
    assert (tmp_path / "recon-00000002.png").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["config"]["model"] == "mae_vit_tiny_patch16" and config["config"]["data"] is None
    assert config["plan"]["dataset_size"] == 18 * 64
    vit = VisionTransformer(img_size=64, patch_size=8, embed_dim=192, depth=12, num_heads=3, num_classes=0)
    assert load_checkpoint(vit, tmp_path / "encoder.pth").missing == []


def torchrun_two(config: PretrainConfig, folder: Path, *args: str) -> str:
    """Run ``tests/_pretrain_ddp.py`` with ``config`` on two gloo processes; its files go to ``folder``.

    Returns:
        The processes' stderr.
    """
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "tests" / "_pretrain_ddp.py"), str(folder / "config.json"), str(folder), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.subprocess
def test_two_gloo_processes_end_identical_equal_to_one_process_and_stop_together_on_one_ranks_sigterm(
    images: Path, tmp_path: Path
) -> None:
    config = tiny(images, tmp_path / "ddp", batch_size=8, epochs=2, save_every=100)  # 4 steps of 8 images
    torchrun_two(config, tmp_path, "2")
    # Only rank 1 got SIGTERM, during step 2; both stopped after step 2 and rank 0 saved it.
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {
            "step": 2, "stopped_by": "SIGTERM", "sharded": False}
    assert [p.name for p in list_checkpoints(tmp_path / "ddp")] == ["checkpoint-00000002.pth"]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert_same_parameters(rank0, rank1)
    single = train(dataclasses.replace(config, output_dir=str(tmp_path / "single"), max_steps=2)).model.state_dict()
    for key, value in single.items():
        torch.testing.assert_close(rank0[key], value, rtol=1e-4, atol=1e-5, msg=key)
    ddp_losses, single_losses = losses(tmp_path / "ddp"), losses(tmp_path / "single")
    assert [s for s, _ in ddp_losses] == [s for s, _ in single_losses] == [1, 2]
    assert [v for _, v in ddp_losses] == pytest.approx([v for _, v in single_losses], rel=1e-5)


@pytest.mark.subprocess
def test_fsdp_on_two_gloo_processes_continues_a_one_process_run_and_one_process_continues_it(
    images: Path, tmp_path: Path
) -> None:
    """Steps 1-2 on one process, step 3 sharded over two (FSDP), step 4 on one process again.

    Checkpoints hold full state dicts, so each hand-over works; the end equals an uninterrupted
    one-process run up to float rounding (FSDP sums gradients in another order).
    """
    config = tiny(images, tmp_path / "run", batch_size=8, epochs=2, accum_steps=2, save_every=100, figure_every=1)
    train(dataclasses.replace(config, max_steps=2))
    stderr = torchrun_two(dataclasses.replace(config, max_steps=3, fsdp=True), tmp_path)
    assert "Warning" not in stderr, stderr[-3000:]  # e.g. FSDP2's about a view returned by the model
    assert json.loads((tmp_path / "rank1.json").read_text()) == {
        "step": 3, "stopped_by": None, "sharded": True, "param_dtype": "torch.float32", "noise_dtype": "torch.float32"}
    sharded = load_training_checkpoint(tmp_path / "run" / "checkpoint-00000003.pth")
    assert (tmp_path / "run" / "recon-00000003.png").is_file()  # the figure forward ran on both ranks
    encoder = torch.load(tmp_path / "run" / "encoder.pth", weights_only=True)["model"]
    assert_same_parameters(encoder, encoder_state(sharded["model"]))  # exported from the gathered weights
    last = train(config)
    assert last.resumed_from == tmp_path / "run" / "checkpoint-00000003.pth" and last.step == 4
    whole = train(dataclasses.replace(config, output_dir=str(tmp_path / "whole")))
    assert sharded["model"].keys() == whole.model.state_dict().keys()  # full weights, official names
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(last.model.state_dict()[key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.subprocess
def test_fsdp_in_bf16_gathers_bf16_weights_keeps_the_noise_float32_and_tracks_a_one_process_run(
    images: Path, tmp_path: Path
) -> None:
    """Under bf16, FSDP gathers the weights in bf16 (half the traffic) while shards, optimizer and
    noise stay float32, and the losses follow a one-process bf16 autocast run to bf16 precision."""
    config = tiny(images, tmp_path / "fsdp", batch_size=8, epochs=2, save_every=100, precision="bf16", fsdp=True)
    torchrun_two(config, tmp_path)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {
            "step": 4, "stopped_by": None, "sharded": True, "param_dtype": "torch.bfloat16",
            "noise_dtype": "torch.float32"}
    saved = load_training_checkpoint(tmp_path / "fsdp" / "checkpoint-00000004.pth")
    assert {value.dtype for value in saved["model"].values()} == {torch.float32}
    single = train(dataclasses.replace(config, fsdp=False, output_dir=str(tmp_path / "single")))
    sharded_losses, single_losses = losses(tmp_path / "fsdp"), losses(tmp_path / "single")
    assert [s for s, _ in sharded_losses] == [s for s, _ in single_losses] == [1, 2, 3, 4]
    assert [v for _, v in sharded_losses] == pytest.approx([v for _, v in single_losses], rel=2e-3)


def test_a_second_run_in_the_same_output_dir_at_the_same_time_is_refused(images: Path, tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the "other" run
        with pytest.raises(ConfigError, match="another mae-pretrain is running"):
            train(tiny(images, out))
    assert [p.name for p in out.iterdir()] == [".lock"]


# --- MAE-Hiera through the same trainer ------------------------------------------------------------

TINY_HIERA = dict(embed_dim=8, num_heads=1, stages=[1, 1, 1, 1], decoder_embed_dim=16, decoder_depth=1,
                  decoder_num_heads=1)


def tiny_hiera(data: Path, out: Path, **overrides: object) -> PretrainConfig:
    """The ``tiny`` run with a one-block-per-stage MAE-Hiera at 64 px: 2 x 2 mask units of 32 px, one kept."""
    return tiny(data, out, **{"model": "mae_hiera_tiny_224", "img_size": 64, "patch_size": None,
                               "model_kwargs": TINY_HIERA, **overrides})


@pytest.fixture(scope="module")
def hiera_run(
    images: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PretrainConfig, dict[str, torch.Tensor], Path]:
    """The uninterrupted tiny Hiera run: its config, final parameters and folder."""
    out = tmp_path_factory.mktemp("hiera-run")
    config = tiny_hiera(images, out)
    return config, train(config).model.state_dict(), out


def test_a_hiera_run_killed_after_step_5_and_resumed_ends_bit_identical_to_an_uninterrupted_run(
    images: Path, tmp_path: Path, hiera_run: tuple[PretrainConfig, dict[str, torch.Tensor], Path]
) -> None:
    _, whole, whole_out = hiera_run
    with pytest.raises(Killed):
        train(tiny_hiera(images, tmp_path), on_step=stop_at(5))
    resumed = train(tiny_hiera(images, tmp_path))
    assert resumed.resumed_from == tmp_path / "checkpoint-00000004.pth" and resumed.step == 8
    assert_same_parameters(whole, resumed.model.state_dict())
    assert losses(tmp_path) == losses(whole_out)


@pytest.mark.subprocess
def test_a_hiera_run_sharded_over_two_gloo_processes_warns_nothing_and_ends_as_the_one_process_run(
    images: Path, tmp_path: Path, hiera_run: tuple[PretrainConfig, dict[str, torch.Tensor], Path]
) -> None:
    config, whole, _ = hiera_run
    stderr = torchrun_two(dataclasses.replace(config, output_dir=str(tmp_path / "fsdp"), fsdp=True), tmp_path)
    assert "Warning" not in stderr, stderr[-3000:]  # FSDP2's about a returned view, for one
    assert json.loads((tmp_path / "rank1.json").read_text())["sharded"] is True
    sharded = load_training_checkpoint(tmp_path / "fsdp" / "checkpoint-00000008.pth")["model"]
    assert sharded.keys() == whole.keys()
    for key, value in whole.items():  # FSDP sums gradients in another order: equal up to rounding
        torch.testing.assert_close(sharded[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_a_hiera_run_draws_its_figure_from_16_px_prediction_patches_and_its_encoder_loads_into_hiera(
    hiera_run: tuple[PretrainConfig, dict[str, torch.Tensor], Path]
) -> None:
    from refimpl.hiera import Hiera
    from refimpl.train.data import IMAGENET_MEAN, IMAGENET_STD
    from refimpl.train.reconstruction import reconstruction_rows

    config, state, out = hiera_run
    assert (out / "recon-00000008.png").is_file()
    encoder = torch.load(out / "encoder.pth", weights_only=True)["model"]
    classifier = Hiera(input_size=(64, 64), num_classes=10,
                       **{k: v for k, v in TINY_HIERA.items() if not k.startswith("decoder")})
    report = classifier.load_state_dict(encoder, strict=False)
    assert sorted(report.missing_keys) == ["head.projection.bias", "head.projection.weight", "norm.bias", "norm.weight"]
    assert report.unexpected_keys == []
    assert_same_parameters({k: classifier.state_dict()[k] for k in encoder}, {k: state[k] for k in encoder})

    # The figure's rows: were the prediction the target itself, the reconstruction would be the input, which
    # holds only if the (C, p, p) patches are reordered right; removed 32 px units are grey in "masked".
    model = build_model(config)
    model.load_state_dict(state)
    forward = model.forward
    model.forward = lambda *args, **kwargs: (lambda o: o._replace(pred=o.target))(forward(*args, **kwargs))
    imgs = torch.randn(2, 3, 64, 64)
    noise = torch.tensor([[0.1, 0.9, 0.8, 0.7], [0.9, 0.8, 0.7, 0.1]])  # keep unit 0, then unit 3
    rows = reconstruction_rows(model, imgs, noise, config.mask_ratio)
    std, mean = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    pixels = (imgs * std + mean).clamp(0, 1)
    torch.testing.assert_close(rows["reconstruction"], pixels, rtol=0, atol=1e-5)
    assert torch.equal(rows["masked"][0, :, :32, :32], pixels[0, :, :32, :32])  # the kept unit
    assert bool((rows["masked"][0, :, 32:, :] == 0.5).all()) and bool((rows["masked"][1, :, :32, :] == 0.5).all())
    assert torch.equal(rows["masked"][1, :, 32:, 32:], pixels[1, :, 32:, 32:])


def test_the_command_trains_a_hiera_without_patch_size(images: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--model", "mae_hiera_tiny_224", "--img-size", "64", "--model-kwargs", json.dumps(TINY_HIERA),
                 "--data", str(images), "--output-dir", str(tmp_path), "--batch-size", "4", "--max-steps", "1",
                 "--no-progress", "--no-tensorboard"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "config.json").read_text())["config"]
    assert (saved["model"], saved["patch_size"]) == ("mae_hiera_tiny_224", None)
    assert (tmp_path / "checkpoint-00000001.pth").is_file() and (tmp_path / "encoder.pth").is_file()


def test_a_patch_size_or_an_img_size_hiera_cannot_use_is_a_one_line_config_error() -> None:
    for values, message in [
        ({"model": "mae_hiera_tiny_224", "patch_size": 8},
         r"patch_size=8 with model='mae_hiera_tiny_224'; Hiera's patch embedding is fixed .*use patch_size=None"),
        ({"model": "mae_hiera_tiny_224", "patch_size": None, "img_size": 48},
         r"img_size=48 with model='mae_hiera_tiny_224'; expected a multiple of 32"),
    ]:
        with pytest.raises(ConfigError, match=message) as error:
            PretrainConfig(**values)
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="patch_size=16 with model='mae_hiera_tiny_224'"):
        resolve_config({}, {"model": "mae_hiera_tiny_224", "patch_size": 16})  # given explicitly: not overridden
    assert resolve_config({"model": "mae_hiera_base_224", "img_size": 224}).patch_size is None


def test_a_vit_runs_output_dir_is_refused_to_a_hiera_config_and_the_reverse_and_left_untouched(
    images: Path, tmp_path: Path, hiera_run: tuple[PretrainConfig, dict[str, torch.Tensor], Path]
) -> None:
    import shutil

    vit_out, hiera_out = tmp_path / "vit", tmp_path / "hiera"
    train(tiny(images, vit_out, epochs=1))
    shutil.copytree(hiera_run[2], hiera_out)
    before = snapshot(vit_out), snapshot(hiera_out)
    with pytest.raises(ConfigError, match="belongs to another run: model='mae_vit_tiny_patch16' there, "
                                          "'mae_hiera_tiny_224' now; nothing was written"):
        train(tiny_hiera(images, vit_out, epochs=1))
    with pytest.raises(ConfigError, match="belongs to another run: model='mae_hiera_tiny_224' there, "
                                          "'mae_vit_tiny_patch16' now"):
        train(tiny(images, hiera_out))
    assert (snapshot(vit_out), snapshot(hiera_out)) == before
