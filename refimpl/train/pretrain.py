"""``mae-pretrain``: MAE pretraining on a CPU, one GPU, or many through ``torchrun``.

[`train`][refimpl.train.pretrain.train] runs one [`PretrainConfig`][refimpl.train.config.PretrainConfig]
and [`main`][refimpl.train.pretrain.main] is the command line around it. A run, in order:

1. check the config, find the device, join the ``torchrun`` group if there is one;
2. scan the data (a bad folder is a one-line error before any model is built) and work out the
   per-process micro-batch, steps per epoch and the schedule
   ([`plan_run`][refimpl.train.pretrain.plan_run]);
3. look in ``output_dir``: the latest checkpoint of the *same* run is resumed, one of another
   run is refused before anything is written;
4. build the MAE ([`MaskedAutoencoderViT`][refimpl.mae.MaskedAutoencoderViT], or
   [`MaskedAutoencoderHiera`][refimpl.hiera.MaskedAutoencoderHiera] for a ``mae_hiera_*`` model),
   AdamW and the cosine schedule ([`refimpl.train.schedule`][refimpl.train.schedule]); with
   several processes, wrap the model in ``DistributedDataParallel`` or, with ``--fsdp``, shard it with FSDP2
   ([`refimpl.train.distributed`][refimpl.train.distributed]);
5. loop: ``accum_steps`` forward/backward passes (gradients synchronised on the last one only),
   one optimizer step, then metrics, figures and checkpoints on rank 0;
6. on SIGTERM (a cluster ending the job) or Ctrl-C, finish the step, write a checkpoint and
   return ([`refimpl.train.signals`][refimpl.train.signals]); the command then exits with 143
   or 130. A second Ctrl-C quits at once.

On CUDA the forward pass runs under bf16 autocast (fp16 with a gradient scaler on GPUs without
bf16), AdamW is fused, the model is compiled with ``torch.compile`` (``--no-compile`` to skip),
batches come from pinned memory with non-blocking copies (as ``uint8``, normalised on the GPU:
a quarter of the bytes), and attention uses
``F.scaled_dot_product_attention`` (FlashAttention where available). On CPU everything is
float32 unless ``--precision`` says otherwise. The tests run the CPU path in every precision;
the CUDA-only parts (fused AdamW, NCCL, compiling by default) are covered by GPU-marked tests
that only run where there is a GPU.

Exactness: every random choice about a sample is seeded by ``(seed, epoch, index)``
([`MAEPretrainDataset`][refimpl.train.data.MAEPretrainDataset]), so a resumed run sees the
same images, crops and masks as an uninterrupted one, and on CPU ends with bit-identical
parameters; a run on ``N`` processes sees the same images per step as one process.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import hiera as hiera_lib
from .. import mae as mae_lib
from ..hiera import MaskedAutoencoderHiera, hiera_encoder_state
from ..mae import MaskedAutoencoderViT, encoder_state
from .checkpoint import (
    CHECKPOINT_FORMAT,
    UnreadableCheckpoint,
    atomic_save,
    capture_rng,
    check_compatible,
    checkpoint_name,
    export_encoder,
    list_checkpoints,
    load_training_checkpoint,
    prune_checkpoints,
    restore_rng,
)
from .config import HIERA_MODELS, MODELS, RESUME_KEYS, ConfigError, PretrainConfig, load_config_file, resolve_config
from .data import (
    DataError,
    EmbeddedPhotos,
    FolderImages,
    MAEPretrainDataset,
    ResumableSampler,
    normalize_images,
    scan_image_folder,
)
from .distributed import (
    DistInfo,
    all_reduce_mean,
    any_rank,
    cleanup_distributed,
    full_state_dicts,
    load_state_dicts,
    setup_distributed,
    shard_model,
    unshard_model,
)
from .schedule import make_optimizer, make_scheduler
from .signals import STOP_SIGNALS, StopOnSignal, ignore_stop_signals

__all__ = [
    "MAEModel", "RunPlan", "TrainResult", "build_model", "build_parser", "default_workers", "figure_batch", "main",
    "noise_length", "open_data", "plan_run", "resolve_precision", "train",
]

log = logging.getLogger(__name__)

MAEModel = MaskedAutoencoderViT | MaskedAutoencoderHiera
"""The models ``mae-pretrain`` trains; both take ``(imgs, mask_ratio, noise=...)`` and return ``loss``, ``pred``,
``mask``."""

FIGURE_EPOCH = 2**31 - 1
"""The epoch key of the fixed figure batch: its crops and masks never change during a run."""

ENCODER_FILE = "encoder.pth"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class RunPlan:
    """Numbers derived from the config, the data and the world size (saved in ``config.json``)."""

    dataset_size: int
    """Images (or embedded crops) per epoch."""
    world_size: int
    """Processes."""
    micro_batch: int
    """Images per forward pass per process: ``batch_size / (world_size * accum_steps)``."""
    steps_per_epoch: int
    """Optimizer steps per epoch; the tail of an epoch that does not fill a step is dropped."""
    total_steps: int
    """Steps of the whole schedule: ``epochs * steps_per_epoch``."""
    warmup_steps: int
    """Steps of linear warmup."""
    peak_lr: float
    """Learning rate after warmup."""


def plan_run(config: PretrainConfig, dataset_size: int, world_size: int) -> RunPlan:
    """Split the effective batch over processes and accumulation steps; size the schedule.

    The effective batch, hence the learning rate, does not depend on ``world_size``: more
    processes mean smaller micro-batches, not a larger batch.

    Args:
        config: a validated config.
        dataset_size: images per epoch.
        world_size: processes.

    Returns:
        The [`RunPlan`][refimpl.train.pretrain.RunPlan].

    Raises:
        ConfigError: if the batch is larger than the dataset, does not split evenly, or the
            warmup is longer than the schedule.

    Examples:
        >>> plan = plan_run(PretrainConfig(batch_size=64, accum_steps=2, epochs=10), 1000, world_size=4)
        >>> plan.micro_batch, plan.steps_per_epoch, plan.total_steps, plan.warmup_steps
        (8, 15, 150, 30)
    """
    if config.batch_size > dataset_size:
        raise ConfigError(
            f"batch_size={config.batch_size} is larger than the dataset ({dataset_size} images); "
            f"expected at most {dataset_size}: lower --batch-size or add images"
        )
    parts = world_size * config.accum_steps
    if config.batch_size % parts:
        raise ConfigError(
            f"batch_size={config.batch_size} does not split into {world_size} processes x "
            f"{config.accum_steps} accumulation steps; expected a multiple of {parts}"
        )
    micro = config.batch_size // parts
    steps_per_epoch = (dataset_size // world_size) // (micro * config.accum_steps)
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_steps if config.warmup_steps is not None else round(config.warmup_epochs * steps_per_epoch)
    if warmup > total:
        raise ConfigError(f"warmup ({warmup} steps) is longer than the schedule ({total} steps); lower the warmup")
    return RunPlan(dataset_size, world_size, micro, steps_per_epoch, total, warmup, config.peak_lr())


def build_model(config: PretrainConfig) -> MAEModel:
    """The MAE that ``config`` names, seeded by ``config.seed`` (same initial weights on every rank).

    A ``mae_vit_*`` name is a factory of [`refimpl.mae`][refimpl.mae] (given ``img_size`` and
    ``patch_size``), a ``mae_hiera_*`` name one of [`refimpl.hiera`][refimpl.hiera] (given
    ``input_size=(img_size, img_size)``).

    Args:
        config: a validated config.

    Returns:
        The model, on the CPU, in training mode.

    Raises:
        ConfigError: if ``model_kwargs`` is not accepted by the factory.
    """
    kwargs: dict[str, Any] = {"norm_pix_loss": config.norm_pix_loss, **config.model_kwargs}
    if config.model in HIERA_MODELS:
        factory = getattr(hiera_lib, config.model)
        kwargs["input_size"] = (config.img_size, config.img_size)
    else:
        factory = getattr(mae_lib, config.model)
        kwargs["img_size"] = config.img_size
        if config.patch_size is not None:
            kwargs["patch_size"] = config.patch_size
    torch.manual_seed(config.seed)
    try:
        return factory(**kwargs).train()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model={config.model!r} with {kwargs}: {exc}") from None


@dataclass
class TrainResult:
    """What [`train`][refimpl.train.pretrain.train] returns (on every rank)."""

    model: MAEModel
    """The trained model (not wrapped, not compiled), with all its weights on every rank; under
    FSDP a plain copy gathered from the shards after the last step."""
    step: int
    """Optimizer steps done."""
    plan: RunPlan
    """Derived numbers of the run."""
    output_dir: Path
    """Where checkpoints and logs are."""
    resumed_from: Path | None = None
    """The checkpoint this session started from, if any."""
    metrics: list[dict[str, float]] = field(default_factory=list)
    """Metric lines logged in this session (rank 0; empty on the others)."""
    stopped_by: str | None = None
    """``"SIGTERM"`` or ``"SIGINT"`` if a stop signal ended the session early (a checkpoint was written at ``step``)."""


def _device(config: PretrainConfig, info_local_rank: int = 0) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' but torch.cuda.is_available() is False; use --device cpu")
        return torch.device("cuda", info_local_rank)
    return torch.device("cpu")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The autocast precision ``"auto"`` means on ``device``; other values are returned as they are.

    Args:
        precision: one of [`PRECISIONS`][refimpl.train.config.PRECISIONS].
        device: the training device.

    Returns:
        ``"fp32"``, ``"bf16"`` or ``"fp16"``: bf16 on a CUDA GPU with native bf16 (Ampere and
        later), fp16 on an older one, fp32 on CPU.

    Examples:
        >>> resolve_precision("auto", torch.device("cpu")), resolve_precision("bf16", torch.device("cpu"))
        ('fp32', 'bf16')
    """
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def open_data(config: PretrainConfig) -> tuple[EmbeddedPhotos | FolderImages, str]:
    """The images a run reads: its ``data`` folder, or the embedded photographs without one.

    Args:
        config: the run's config.

    Returns:
        The source (``len`` and ``[i] -> RGB PIL image``) and a one-line description for the log.

    Raises:
        DataError: for a missing, empty or unreadable data folder.
    """
    if config.data is None:
        source = EmbeddedPhotos(config.crops_per_photo)
        return source, f"{len(source.photos)} scikit-image photographs x {config.crops_per_photo} random crops"
    scan = scan_image_folder(config.data, check_images=config.check_images)
    return FolderImages(scan.files), f"{len(scan.files)} images in {config.data} ({scan.skipped} files skipped)"


def _find_resume(config: PretrainConfig, out: Path, is_main: bool) -> tuple[Path | None, dict | None]:
    """The checkpoint to resume and its contents: ``config.resume``, else the newest readable one in ``out``.

    Unreadable checkpoints (empty, cut short, not a checkpoint) newer than that one are skipped
    and renamed aside by rank 0 (``<name>.unreadable``; never deleted), with a warning, when there
    is a readable one to resume or ``config.json`` says that ``out`` holds this run (then it
    restarts); otherwise the first one is the error, and nothing is renamed.
    """
    if config.resume is not None:
        return Path(config.resume), load_training_checkpoint(config.resume)
    skipped: list[tuple[Path, UnreadableCheckpoint]] = []
    found: tuple[Path | None, dict | None] = (None, None)
    for path in reversed(list_checkpoints(out)):
        try:
            found = (path, load_training_checkpoint(path))
            break
        except UnreadableCheckpoint as exc:
            skipped.append((path, exc))
        except ConfigError:
            if path.exists():
                raise
            # rank 0 has just renamed it aside: skip it as rank 0 does
    if skipped and found[1] is None and not (out / CONFIG_FILE).is_file():
        raise skipped[0][1]
    for path, exc in skipped if is_main else ():
        aside = path.with_name(f"{path.name}.unreadable")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.unreadable-{n}")
        os.replace(path, aside)
        log.warning("skipped %s: %s; renamed it to %s", path.name, str(exc).split("; move it away")[0], aside.name)
    return found


def _check_output_dir(config: PretrainConfig, out: Path, resume: Path | None, state: dict | None,
                      dataset_size: int) -> None:
    """Make sure ``out`` can take this run: its checkpoint is of the same run, or it holds no other run; raise before writing."""
    if state is not None:
        check_compatible(state, config.to_dict(), dataset_size, resume)
        return
    saved = out / CONFIG_FILE
    if saved.is_file():  # a run killed before its first checkpoint: same run may restart, another may not
        try:
            previous = json.loads(saved.read_text(encoding="utf-8"))["config"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{str(saved)!r} is not a config written by mae-pretrain; use another output_dir") from None
        now = config.to_dict()
        for key in RESUME_KEYS:
            if previous.get(key) != now.get(key):
                raise ConfigError(
                    f"{str(out)!r} holds another run ({key}={previous.get(key)!r} there, {now.get(key)!r} now); "
                    f"nothing was written; use another output_dir"
                )


@contextlib.contextmanager
def _exclusive(out: Path) -> Any:
    """Hold an exclusive lock on ``out/.lock`` (POSIX): two runs writing one folder would interleave."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, carry on unguarded
        yield
        return
    with open(out / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another mae-pretrain is running in {str(out)!r}; wait for it or use another output_dir") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (those steps are about to be run again) and a torn last line."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if _metric_step(line) <= step]
    if len(kept) != len(lines):
        _write_text_atomic(path, "".join(line + "\n" for line in kept))


def _metric_step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line; infinity (never kept) for a line cut short by a kill."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def default_workers(device: torch.device) -> int:
    """Data-loader workers per process when the config leaves ``num_workers`` unset.

    On the CPU none: the model's step is far slower than loading. On CUDA the cores this process
    may run on (its affinity, which ``taskset`` and Slurm's ``--cpus-per-task`` set, not the
    machine's count), shared among the node's ``LOCAL_WORLD_SIZE`` ranks, less one for the
    training loop, at least 1 and at most 16. One worker decodes and crops about 300 ImageNet-sized
    JPEGs a second (``benchmarks/pretrain_data.py``), and ViT-B/16 MAE on a fast GPU wants thousands.
    """
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return min(16, max(1, cores // local - 1))


def figure_batch(dataset: MAEPretrainDataset, n: int) -> tuple[Tensor, Tensor]:
    """The fixed images of a run's reconstruction figures: ``n`` samples spread over the dataset.

    Their crops and masks use the epoch key ``FIGURE_EPOCH``, so every figure of a run (and any
    figure drawn later from its checkpoints) shows the same crops with the same patches removed.

    Returns:
        ``uint8`` images ``(n, 3, S, S)`` (see [`normalize_images`][refimpl.train.data.normalize_images])
        and their masking noise ``(n, L)``.
    """
    count = min(n, len(dataset))
    indices = [round(i * (len(dataset) - 1) / max(1, count - 1)) for i in range(count)]
    pairs = [dataset[(FIGURE_EPOCH, i)] for i in indices]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def noise_length(model: MAEModel) -> int:
    """Values of masking noise per sample: one per patch (ViT) or per mask unit (Hiera)."""
    return model.num_mask_units if isinstance(model, MaskedAutoencoderHiera) else model.num_patches


def _save_figure(model: MAEModel, batch: tuple[Tensor, Tensor], config: PretrainConfig,
                 device: torch.device, autocast: Callable[[], Any], path: Path, step: int, draw: bool = True) -> None:
    """Run the model on the figure batch and, if ``draw``, save the figure (FSDP: every rank runs it)."""
    import matplotlib

    matplotlib.use("Agg")
    from .figures import reconstruction_figure, reconstruction_rows

    imgs, noise = normalize_images(batch[0].to(device)), batch[1].to(device)
    with autocast():
        rows = reconstruction_rows(model, imgs, noise, config.mask_ratio)
    if not draw:
        return
    fig = reconstruction_figure(rows, title=f"step {step}")
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def train(config: PretrainConfig, *, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Pretrain an MAE as ``config`` says; resume the run found in ``config.output_dir``.

    Args:
        config: the run's config (validated here).
        on_step: called with the step number after every optimizer step, once its checkpoint
            (if any) is written; the tests raise from it to simulate a kill.

    Returns:
        A [`TrainResult`][refimpl.train.pretrain.TrainResult].

    Raises:
        ConfigError: for an invalid config, a batch larger than the data, or an ``output_dir``
            holding another run (nothing is written then).
        DataError: for a missing, empty or unreadable data folder (before any model is built).
    """
    config.validate()
    device = _device(config, int(os.environ.get("LOCAL_RANK", "0")))
    info = setup_distributed(device.type)
    try:
        notice = ("mae-pretrain: Ctrl-C received: finishing this step and saving a checkpoint "
                  "(Ctrl-C again quits at once)")
        with StopOnSignal(notice=notice if info.is_main else None) as signals:
            return _train(config, device, info, on_step, signals)
    finally:
        cleanup_distributed()


def _train(config: PretrainConfig, device: torch.device, info: DistInfo,
           on_step: Callable[[int], None] | None, signals: StopOnSignal) -> TrainResult:
    source, data_text = open_data(config)
    plan = plan_run(config, len(source), info.world_size)
    out = Path(config.output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {str(out)!r} is a file; expected a folder (new, or holding this run)")
    resume_path, state = _find_resume(config, out, info.is_main)
    _check_output_dir(config, out, resume_path, state, plan.dataset_size)

    with contextlib.ExitStack() as stack:
        if info.is_main:
            try:
                out.mkdir(parents=True, exist_ok=True)
                stack.enter_context(_exclusive(out))
            except OSError as exc:  # a read-only file system, no permission, ...
                raise ConfigError(f"cannot write in output_dir {str(out)!r} ({exc.strerror or exc}); "
                                  f"nothing was written; choose another output_dir") from None
        return _run(config, device, info, on_step, signals, source, data_text, plan, out, resume_path, state)


def _run(config: PretrainConfig, device: torch.device, info: DistInfo, on_step: Callable[[int], None] | None,
         signals: StopOnSignal, source: object, data_text: str, plan: RunPlan, out: Path,
         resume_path: Path | None, state: dict | None) -> TrainResult:
    cuda = device.type == "cuda"
    precision = resolve_precision(config.precision, device)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model = build_model(config).to(device)
    sharded = config.fsdp and info.distributed
    if sharded:
        if precision == "fp16":  # validate() refuses an explicit fp16; this is "auto" on an old GPU
            raise ConfigError(f"fsdp=True on {torch.cuda.get_device_name(device)} (no bf16): "
                              f"expected --precision fp32 with FSDP, or DDP (--no-fsdp) with fp16")
        # Before the optimizer: it sees the shards. Weights are gathered in the autocast dtype.
        shard_model(model, [*model.blocks, *model.decoder_blocks], param_dtype=amp_dtype)
    dataset = MAEPretrainDataset(source, config.img_size, noise_length(model), config.seed)
    optimizer = make_optimizer(model, plan.peak_lr, config.weight_decay, config.betas, fused=cuda)
    scheduler = make_scheduler(optimizer, plan.warmup_steps, plan.total_steps,
                               config.min_lr / plan.peak_lr if plan.peak_lr else 0.0)
    # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    step = 0
    if state is not None:
        load_state_dicts(model, optimizer, state["model"], state["optimizer"], sharded)
        scheduler.load_state_dict(state["scheduler"])
        if scaler.is_enabled() and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        step = int(state["step"])

    if info.is_main:
        prune_checkpoints(out, config.keep_last)  # also removes temporary files of a killed write
        resolved = {"config": config.to_dict(), "plan": dataclasses.asdict(plan), "device": str(device),
                    "precision": precision, "torch": torch.__version__}
        _write_text_atomic(out / CONFIG_FILE, json.dumps(resolved, indent=2) + "\n")
        _trim_metrics(out / METRICS_FILE, step)
        log.info("data: %s; %s", data_text, "resuming " + str(resume_path) if state else "new run")
        log.info("plan: %s", plan)

    # Wrap for speed and for several processes; keep `model` for state dicts and figures.
    net: torch.nn.Module = model
    ddp = None
    if info.distributed and not sharded:
        from torch.nn.parallel import DistributedDataParallel

        ddp = net = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    use_compile = config.compile if config.compile is not None else cuda
    if use_compile:
        net = torch.compile(net)

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()

    workers = config.num_workers if config.num_workers is not None else default_workers(device)
    sampler = ResumableSampler(len(dataset), info.world_size, info.rank, config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=plan.micro_batch, sampler=sampler, num_workers=workers, pin_memory=cuda,
        drop_last=True, persistent_workers=workers > 0, worker_init_fn=ignore_stop_signals if workers > 0 else None,
    )

    stop = min(plan.total_steps, config.max_steps or plan.total_steps)
    writer = None
    if info.is_main and config.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tensorboard"))
        except ImportError:  # TensorBoard is optional
            writer = None
    bar = None
    if info.is_main and config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=stop, initial=step, desc="mae-pretrain", unit="step", dynamic_ncols=True)
    gathers = info.is_main or sharded  # ranks that take part in checkpoints and figures (FSDP: all)
    figure_images = figure_batch(dataset, config.figure_images) if gathers else None
    encoder_keys = hiera_encoder_state if isinstance(model, MaskedAutoencoderHiera) else encoder_state
    metrics: list[dict[str, float]] = []

    def save(step: int) -> dict[str, Tensor]:
        """Write the checkpoint of ``step`` (rank 0) and return the full model state (empty on other ranks)."""
        model_state, optimizer_state = full_state_dicts(model, optimizer, sharded)
        if not info.is_main:
            return model_state
        path = out / checkpoint_name(step)
        atomic_save({
            "format": CHECKPOINT_FORMAT, "model": model_state, "optimizer": optimizer_state,
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "step": step,
            "epoch": step // plan.steps_per_epoch, "sampler": sampler_state(step), "rng": capture_rng(),
            "config": config.to_dict(), "dataset_size": plan.dataset_size,
        }, path)
        prune_checkpoints(out, config.keep_last)
        return model_state

    def sampler_state(step: int) -> dict[str, int]:
        epoch, done = divmod(step, plan.steps_per_epoch)
        return {"epoch": epoch, "start": done * config.accum_steps * plan.micro_batch}

    loss_sum = torch.zeros((), device=device)
    interval_steps, interval_start = 0, time.perf_counter()
    stopped_by = None
    while step < stop and stopped_by is None:
        position = sampler_state(step)
        sampler.set_position(position["epoch"], position["start"])
        batches = iter(loader)
        for _ in range(plan.steps_per_epoch - step % plan.steps_per_epoch):
            for micro in range(config.accum_steps):
                imgs, noise = next(batches)  # uint8 (B, 3, S, S), (B, L)
                imgs = normalize_images(imgs.to(device, non_blocking=True))
                noise = noise.to(device, non_blocking=True)
                # Synchronise gradients across processes only on the last micro-batch.
                sync = micro == config.accum_steps - 1
                if sharded:
                    model.set_requires_gradient_sync(sync)
                with (ddp.no_sync() if ddp is not None and not sync else contextlib.nullcontext()):
                    with autocast():
                        loss = net(imgs, config.mask_ratio, noise=noise).loss
                    scaler.scale(loss / config.accum_steps).backward()
                loss_sum += loss.detach().float() / config.accum_steps
            lr = optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)  # = optimizer.step(), but skipped if fp16 gradients overflowed
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            interval_steps += 1

            if step % config.log_every == 0 or step == stop:
                mean_loss = all_reduce_mean(loss_sum / interval_steps, info).item()
                elapsed = time.perf_counter() - interval_start
                line = {"step": step, "epoch": round(step / plan.steps_per_epoch, 4), "loss": round(mean_loss, 6),
                        "lr": lr, "images_per_s": round(interval_steps * config.batch_size / elapsed, 2)}
                if scaler.is_enabled():
                    line["loss_scale"] = scaler.get_scale()
                if not math.isfinite(mean_loss):
                    kept = list_checkpoints(out) if info.is_main else []
                    raise FloatingPointError(
                        f"training diverged: the loss is {mean_loss} at step {step} (lr {lr:.3g}); lower the "
                        f"learning rate (--blr or --lr){f', then resume from {kept[-1].name}' if kept else ''}")
                if info.is_main:
                    metrics.append(line)
                    with open(out / METRICS_FILE, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(line) + "\n")
                    if writer is not None:
                        for key in ("loss", "lr", "images_per_s"):
                            writer.add_scalar(f"train/{key}", line[key], step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{line['images_per_s']:.1f}")
                loss_sum.zero_()
                interval_steps, interval_start = 0, time.perf_counter()
            if gathers:
                if (config.figure_every and step % config.figure_every == 0) or step == stop:
                    _save_figure(model, figure_images, config, device, autocast, out / f"recon-{step:08d}.png", step,
                                 draw=info.is_main)
                if step % config.save_every == 0 or step == stop:
                    model_state = save(step)
                    if step == stop and info.is_main:
                        export_encoder(model_state, out / ENCODER_FILE, encoder_keys)
            if bar is not None:
                bar.update(1)
            if on_step is not None:
                on_step(step)
            # Every rank stops after the same step; a signal during the last step changes nothing.
            if step < stop and any_rank(signals.received is not None, info):
                stopped_by = signals.received or STOP_SIGNALS[0].name
                if gathers and step % config.save_every:
                    save(step)
                if info.is_main:
                    log.warning("%s: stopped after step %d and saved %s; run the same command to resume",
                                stopped_by, step, checkpoint_name(step))
            if step >= stop or stopped_by is not None:
                break

    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    if sharded:  # hand back a plain model: nothing that outlives the run may hold the process group
        with torch.random.fork_rng(devices=[]):
            model = unshard_model(model, build_model(config).to(device))
    if info.distributed:
        torch.distributed.barrier()
    return TrainResult(model=model, step=step, plan=plan, output_dir=out,
                       resumed_from=resume_path if state is not None else None, metrics=metrics,
                       stopped_by=stopped_by)


# --- command line -------------------------------------------------------------------------------


def _field_docs() -> dict[str, str]:
    """Each config field's docstring (the string under it in the class body), for ``--help``."""
    try:
        tree = ast.parse(inspect.getsource(PretrainConfig))
    except (OSError, TypeError):  # no source (e.g. a frozen build): flags without help
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            text = re.sub(r"\[`([^`]+)`\]\[[^\]]+\]", r"\1", " ".join(nxt.value.value.split()))  # drop doc links
            docs[node.target.id] = text.replace("``", "").replace("%", "%%")
    return docs


def build_parser() -> argparse.ArgumentParser:
    """The ``mae-pretrain`` argument parser: one flag per config field, plus ``--config``.

    Flags the user does not pass are absent from the parsed namespace, so they do not override a
    config file.
    """
    parser = argparse.ArgumentParser(
        prog="mae-pretrain",
        description="Pretrain a Masked Autoencoder (MAE) with a ViT or (--model mae_hiera_*) a Hiera encoder. "
                    "Without --data it learns from crops of the photographs "
                    "bundled with scikit-image, on a CPU in minutes. Several processes: "
                    "torchrun --nproc_per_node=N -m refimpl.train.pretrain [flags].",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", metavar="FILE", help="JSON or YAML file of field: value; flags override it")
    docs = _field_docs()
    defaults = PretrainConfig()
    for f in dataclasses.fields(PretrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        text = f"{docs.get(f.name, '')} (default: {default!r})".strip()
        annotation = str(f.type)
        if annotation.startswith("bool"):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=text)
        elif f.name == "betas":
            parser.add_argument(flag, dest=f.name, type=float, nargs=2, metavar=("B1", "B2"), help=text)
        elif f.name == "model":
            parser.add_argument(flag, dest=f.name, choices=MODELS, help=text)
        elif f.name == "model_kwargs":
            parser.add_argument(flag, dest=f.name, type=json.loads, metavar="JSON", help=text)
        else:
            kind = int if annotation.startswith("int") else float if annotation.startswith("float") else str
            parser.add_argument(flag, dest=f.name, type=kind, help=text)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mae-pretrain`` and ``python -m refimpl.train.pretrain``.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 on success, 2 for a bad config or data (one line on stderr, nothing
        written), 1 when the run failed after it started (the loss diverged, a write failed; one
        line; the checkpoints written before are kept), 143 when
        SIGTERM and 130 when Ctrl-C stopped it after writing a checkpoint, also 130 when a second
        Ctrl-C interrupted it at once (the last checkpoint written stays); in every case rerun the
        same command to resume.
    """
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    config_path = args.pop("config", None)
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    main_rank = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING,
                        format="mae-pretrain: %(message)s", stream=sys.stderr)
    try:
        config = resolve_config(load_config_file(config_path) if config_path else {}, args)
        result = train(config)
    except (ConfigError, DataError) as exc:
        print(f"mae-pretrain: error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:
        print(f"mae-pretrain: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the disk filled up, the folder was removed, ... during the run
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mae-pretrain: error: {where}{exc.strerror or exc}; the checkpoints written before are kept; "
              f"fix the cause and run the same command to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mae-pretrain: interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130
    if result.stopped_by is not None:
        return 128 + signal.Signals[result.stopped_by].value
    if main_rank:
        log.info("done: checkpoints, %s, %s and figures in %s", METRICS_FILE, ENCODER_FILE, config.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
