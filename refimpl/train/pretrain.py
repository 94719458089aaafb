"""``mae-pretrain``: MAE pretraining on a CPU, one GPU, or many through ``torchrun``.

[`train`][refimpl.train.pretrain.train] runs one [`PretrainConfig`][refimpl.train.config.PretrainConfig]
and [`main`][refimpl.train.pretrain.main] is the command line around it. Steps 2-4 build the
session's [`Setup`][refimpl.train.pretrain.Setup] (frozen: what does not change during a run) and
the [`LoopState`][refimpl.train.pretrain.LoopState] it starts from (the step and this session's
counters); each step of the loop is a function of its own that takes the two. A run, in order:

1. find the device, join the ``torchrun`` group if there is one
   ([`train`][refimpl.train.pretrain.train]; the config checked itself when it was built);
2. scan the data (a bad folder is a one-line error before any model is built) and work out the
   per-process micro-batch, steps per epoch and the schedule
   ([`plan_run`][refimpl.train.pretrain.plan_run]);
3. look in ``output_dir``: the latest readable checkpoint of the *same* run is resumed, one of
   another run is refused before anything is written, and rank 0 locks the folder
   ([`refimpl.train.run_dir`][refimpl.train.run_dir] says the policy);
4. build the MAE ([`MaskedAutoencoderViT`][refimpl.mae.MaskedAutoencoderViT], or
   [`MaskedAutoencoderHiera`][refimpl.hiera.MaskedAutoencoderHiera] for a ``mae_hiera_*`` model;
   [`build_model`][refimpl.train.pretrain.build_model]), AdamW and the cosine schedule
   ([`refimpl.train.schedule`][refimpl.train.schedule]); with several processes, wrap the model in
   ``DistributedDataParallel`` or, with ``--fsdp``, shard it with FSDP2
   ([`refimpl.train.distributed`][refimpl.train.distributed]). Steps 2-4 are
   [`prepare_run`][refimpl.train.pretrain.prepare_run];
5. loop: [`train_step`][refimpl.train.pretrain.train_step] runs ``accum_steps`` forward/backward
   passes (the loss scaled there; gradients synchronised on the last one only) and one optimizer
   step; then [`log_interval`][refimpl.train.pretrain.log_interval] writes metrics and
   [`checkpoint_and_figure`][refimpl.train.pretrain.checkpoint_and_figure] the figures and
   checkpoints ([`save_figure`][refimpl.train.pretrain.save_figure],
   [`save_checkpoint`][refimpl.train.pretrain.save_checkpoint]);
6. on SIGTERM (a cluster ending the job) or Ctrl-C, finish the step, write a checkpoint and
   return ([`should_stop`][refimpl.train.pretrain.should_stop],
   [`refimpl.train.signals`][refimpl.train.signals]); the command then exits with 143 or 130. A
   second Ctrl-C quits at once. [`finish`][refimpl.train.pretrain.finish] hands back the model.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import hiera, mae
from ..hiera import MaskedAutoencoderHiera
from ..mae import MaskedAutoencoderViT
from .checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    atomic_write,
    capture_rng,
    check_shapes,
    checkpoint_name,
    export_encoder,
    first_non_finite,
    list_checkpoints,
    prune_checkpoints,
    restore_rng,
)
from .config import HIERA_MODELS, MODELS, ConfigError, PretrainConfig, load_config_file, resolve_config
from .data import (
    DataError,
    EmbeddedPhotos,
    FolderImages,
    MAEPretrainDataset,
    ResumableSampler,
    Sample,
    UnreadableImage,
    normalize_images,
    scan_image_folder,
    too_many_unreadable,
    unreadable_limit,
)
from .distributed import (
    DistInfo,
    all_reduce_mean,
    any_rank,
    cleanup_distributed,
    full_state_dicts,
    load_state_dicts,
    reduce_ints,
    setup_distributed,
    shard_model,
    unshard_model,
)
from .reconstruction import labelled_grid, reconstruction_grid, reconstruction_rows
from .run_dir import METRICS_FILE, Resume, find_resume, lock_run_dir, start_log
from .schedule import make_optimizer, make_scheduler
from .signals import STOP_SIGNALS, StopOnSignal, ignore_stop_signals

__all__ = [
    "FACTORIES", "LoopState", "MAEModel", "RunPlan", "Setup", "TrainResult", "build_model", "build_parser",
    "check_weights", "checkpoint_and_figure", "default_workers", "epoch_batches", "figure_batch", "finish",
    "log_interval", "main", "noise_length", "open_data", "plan_run", "prepare_run", "resolve_precision",
    "save_checkpoint", "save_figure", "should_stop", "train", "train_step", "unreadable_images",
]

log = logging.getLogger(__name__)

MAEModel = MaskedAutoencoderViT | MaskedAutoencoderHiera
"""The models ``mae-pretrain`` trains. Both take ``(imgs, mask_ratio, noise=...)`` and return ``loss``, ``pred``,
``mask``, and share the small interface the trainer and its figures use: ``noise_length``,
``pred_patch_size``, ``pred_channels_last``, ``encoder_state`` and ``norm_pix_loss``."""

FACTORIES: dict[str, Callable[..., MAEModel]] = {
    "mae_vit_tiny_patch16": mae.mae_vit_tiny_patch16,
    "mae_vit_base_patch16": mae.mae_vit_base_patch16,
    "mae_vit_large_patch16": mae.mae_vit_large_patch16,
    "mae_vit_huge_patch14": mae.mae_vit_huge_patch14,
    "mae_hiera_tiny_224": hiera.mae_hiera_tiny_224,
    "mae_hiera_small_224": hiera.mae_hiera_small_224,
    "mae_hiera_base_224": hiera.mae_hiera_base_224,
    "mae_hiera_base_plus_224": hiera.mae_hiera_base_plus_224,
    "mae_hiera_large_224": hiera.mae_hiera_large_224,
    "mae_hiera_huge_224": hiera.mae_hiera_huge_224,
}
"""The named configs ``model`` may take (``config.MODELS``, in the same order), by factory."""

FIGURE_EPOCH = 2**31 - 1
"""The epoch key of the fixed figure batch: its crops and masks never change during a run."""

ENCODER_FILE = "encoder.pth"


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
    factory = FACTORIES[config.model]
    if config.model in HIERA_MODELS:
        kwargs["input_size"] = (config.img_size, config.img_size)
    else:
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


def _stop_workers(loader: torch.utils.data.DataLoader) -> None:
    """End the data-loader workers now, whatever ends the session (the end, an error, a signal).

    Left to the interpreter's exit, they would never end: ``multiprocessing`` stops its children
    with SIGTERM, which the workers ignore
    ([`ignore_stop_signals`][refimpl.train.signals.ignore_stop_signals]), then waits for them.
    PyTorch has no public call for this; its iterator's own shutdown is what ``del`` would run.
    """
    iterator = getattr(loader, "_iterator", None)
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    loader._iterator = None


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
    return model.noise_length


# --- one session: the setup, the loop state, and the loop's named steps ------------------------


@dataclass(frozen=True)
class Setup:
    """What a session builds before its first step (steps 1-4 of the module docstring) and keeps to its end.

    Frozen: the loop never replaces any of it. The objects change inside as they train (the
    weights, AdamW's moments, the schedule's position, the sampler's epoch) and are saved in each
    checkpoint; what the loop itself changes is the [`LoopState`][refimpl.train.pretrain.LoopState].
    """

    config: PretrainConfig
    plan: RunPlan
    info: DistInfo
    device: torch.device
    out: Path
    """The run's folder ([`refimpl.train.run_dir`][refimpl.train.run_dir])."""
    model: MAEModel
    """The MAE itself, for state dicts and figures (under FSDP: sharded in place)."""
    net: nn.Module
    """What a step calls: ``model``, wrapped in DDP and compiled as the config says."""
    ddp: nn.parallel.DistributedDataParallel | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    """fp16 only: gradients underflow without loss scaling; bf16 has float32's range and needs none."""
    sampler: ResumableSampler
    loader: torch.utils.data.DataLoader
    amp_dtype: torch.dtype | None
    """The autocast dtype, ``None`` for float32."""
    resumed_from: Path | None = None
    """The checkpoint this session started from, if any."""
    figure_images: tuple[Tensor, Tensor] | None = None
    """The fixed batch of the reconstruction figures (ranks that draw or, under FSDP, help)."""
    writer: Any = None
    """TensorBoard's ``SummaryWriter``, if any (rank 0)."""
    bar: Any = None
    """The tqdm progress bar, if any (rank 0)."""

    @property
    def sharded(self) -> bool:
        """FSDP: every rank takes part in checkpoints and figures."""
        return self.config.fsdp and self.info.distributed

    @property
    def gathers(self) -> bool:
        """Whether this rank takes part in checkpoints and figures: rank 0, and every rank under FSDP."""
        return self.info.is_main or self.sharded

    @property
    def stop(self) -> int:
        """The last step of this session: the schedule's end or ``max_steps``."""
        return min(self.plan.total_steps, self.config.max_steps or self.plan.total_steps)

    def autocast(self) -> Any:
        """The forward pass's autocast context (a no-op in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def sampler_position(self, step: int) -> dict[str, int]:
        """Where the data of ``step`` starts: ``{"epoch", "start"}``, as saved in checkpoints."""
        epoch, done = divmod(step, self.plan.steps_per_epoch)
        return {"epoch": epoch, "start": done * self.config.accum_steps * self.plan.micro_batch}


@dataclass
class LoopState:
    """What the loop changes: the step, and this session's counters.

    A checkpoint saves the step, with the epoch and the sampler position that follow from it
    ([`Setup.sampler_position`][refimpl.train.pretrain.Setup.sampler_position]); the counters
    start afresh with each session.
    """

    step: int
    """Optimizer steps done."""
    loss_sum: Tensor
    """Summed (detached) losses of the current logging interval, on the device: no host sync per step."""
    interval_steps: int = 0
    """Steps in the current logging interval."""
    interval_start: float = field(default_factory=time.perf_counter)
    unreadable: set[int] = field(default_factory=set)
    """Indices of this epoch's images (on this rank) that could not be decoded and were replaced."""
    metrics: list[dict[str, float]] = field(default_factory=list)
    """Metric lines logged in this session (rank 0)."""
    stopped_by: str | None = None
    """The stop signal's name once one has ended the session."""


def prepare_run(config: PretrainConfig, device: torch.device, info: DistInfo,
                stack: contextlib.ExitStack) -> tuple[Setup, LoopState]:
    """Steps 2-4: scan the data, plan, check the output folder, build or resume the model and optimizer.

    Everything that can refuse the run (bad data, a folder holding another run, an unwritable
    folder) is checked before anything is written ([`refimpl.train.run_dir`][refimpl.train.run_dir]).
    Rank 0 holds the folder's lock, the progress bar and TensorBoard in ``stack``.

    Returns:
        The session's [`Setup`][refimpl.train.pretrain.Setup] and the [`LoopState`][refimpl.train.pretrain.LoopState]
        it starts from.

    Raises:
        ConfigError: for a batch larger than the data, a folder of another run, or an unwritable folder.
        DataError: for a missing, empty or unreadable data folder.
    """
    source, data_text = open_data(config)
    plan = plan_run(config, len(source), info.world_size)
    resume = find_resume(config, plan.dataset_size, info.is_main)
    model = build_model(config)  # before anything is written: model_kwargs may refuse
    if resume.state is not None:
        check_shapes(resume.state["model"], model.state_dict(), resume.path)
    out = Path(config.output_dir)
    if info.is_main:
        lock_run_dir(out, stack)
    precision = resolve_precision(config.precision, device)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    sharded = config.fsdp and info.distributed
    model = _place_model(model, device, sharded, precision, amp_dtype)
    dataset = MAEPretrainDataset(source, config.img_size, model.noise_length, config.seed)
    optimizer, scheduler, scaler = _optimization(config, plan, model, device, precision)
    step = _restore(resume, model, optimizer, scheduler, scaler, sharded) if resume.state is not None else 0
    if info.is_main:
        _start_log(config, plan, resume, device, precision, step, data_text)
    net, ddp = _wrap(model, config, device, info, sharded)
    sampler, loader = _data_loader(dataset, config, plan, device, info, stack)
    figure_images = figure_batch(dataset, config.figure_images) if info.is_main or sharded else None
    setup = Setup(config=config, plan=plan, info=info, device=device, out=out, model=model, net=net, ddp=ddp,
                  optimizer=optimizer, scheduler=scheduler, scaler=scaler, sampler=sampler, loader=loader,
                  amp_dtype=amp_dtype, resumed_from=resume.path, figure_images=figure_images)
    if info.is_main:
        setup = _with_progress(setup, step, stack)
    return setup, LoopState(step=step, loss_sum=torch.zeros((), device=device))


def _place_model(model: MAEModel, device: torch.device, sharded: bool, precision: str,
                 amp_dtype: torch.dtype | None) -> MAEModel:
    """Move the model to ``device``; under FSDP shard it, before the optimizer sees its parameters."""
    model = model.to(device)
    if sharded:
        if precision == "fp16":  # the config refuses an explicit fp16; this is "auto" on an old GPU
            raise ConfigError(f"fsdp=True on {torch.cuda.get_device_name(device)} (no bf16): "
                              f"expected --precision fp32 with FSDP, or DDP (--no-fsdp) with fp16")
        # Weights are gathered in the autocast dtype.
        shard_model(model, [*model.blocks, *model.decoder_blocks], param_dtype=amp_dtype)
    return model


def _optimization(config: PretrainConfig, plan: RunPlan, model: MAEModel, device: torch.device,
                  precision: str) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler,
                                           torch.amp.GradScaler]:
    """AdamW (fused on CUDA), warmup + cosine, and fp16's gradient scaler (disabled otherwise)."""
    optimizer = make_optimizer(model, plan.peak_lr, config.weight_decay, config.betas, fused=device.type == "cuda")
    scheduler = make_scheduler(optimizer, plan.warmup_steps, plan.total_steps,
                               config.min_lr / plan.peak_lr if plan.peak_lr else 0.0)
    return optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def _restore(resume: Resume, model: MAEModel, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, sharded: bool) -> int:
    """Load the resumed checkpoint into the model, AdamW, the schedule, the scaler and the generators; its step."""
    state = resume.state
    try:
        load_state_dicts(model, optimizer, state["model"], state["optimizer"], sharded)
    except (RuntimeError, KeyError, ValueError) as exc:  # the model's tensors fit (check_shapes): the optimizer's do not
        raise ConfigError(f"checkpoint {str(resume.path)!r}: its optimizer state does not fit this model "
                          f"({' '.join(str(exc).split())[:200]}); resume another checkpoint") from None
    scheduler.load_state_dict(state["scheduler"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    restore_rng(state["rng"])
    return int(state["step"])


def _start_log(config: PretrainConfig, plan: RunPlan, resume: Resume, device: torch.device, precision: str,
               step: int, data_text: str) -> None:
    """Rank 0, once the folder is locked: ``config.json``, the trimmed metrics, and the run's first log lines."""
    resolved = {"config": config.to_dict(), "plan": dataclasses.asdict(plan), "device": str(device),
                "precision": precision, "torch": torch.__version__}
    start_log(Path(config.output_dir), config.keep_last, step, resolved)
    log.info("data: %s; %s", data_text, "resuming " + str(resume.path) if resume.state else "new run")
    if resume.changed_data:
        before = plan_run(config, resume.state["dataset_size"], plan.world_size).total_steps
        schedule = f"; the schedule now ends at step {plan.total_steps}, not {before}" if before != plan.total_steps else ""
        log.warning("%s%s", resume.changed_data, schedule)
    log.info("plan: %s", plan)


def _wrap(model: MAEModel, config: PretrainConfig, device: torch.device, info: DistInfo,
          sharded: bool) -> tuple[nn.Module, nn.parallel.DistributedDataParallel | None]:
    """What a step calls: ``model`` in DDP with several processes (not under FSDP), compiled as the config says.

    ``model`` itself stays for state dicts and figures.
    """
    net: nn.Module = model
    ddp = None
    if info.distributed and not sharded:
        from torch.nn.parallel import DistributedDataParallel

        ddp = net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile if config.compile is not None else device.type == "cuda":
        net = torch.compile(net)
    return net, ddp


def _data_loader(dataset: MAEPretrainDataset, config: PretrainConfig, plan: RunPlan, device: torch.device,
                 info: DistInfo, stack: contextlib.ExitStack) -> tuple[ResumableSampler, torch.utils.data.DataLoader]:
    """This rank's sampler and the loader of its micro-batches; ``stack`` ends the workers with the session."""
    workers = config.num_workers if config.num_workers is not None else default_workers(device)
    sampler = ResumableSampler(len(dataset), info.world_size, info.rank, config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=plan.micro_batch, sampler=sampler, num_workers=workers, pin_memory=device.type == "cuda",
        drop_last=True, persistent_workers=workers > 0, worker_init_fn=ignore_stop_signals if workers > 0 else None,
    )
    if workers:
        stack.callback(_stop_workers, loader)
    return sampler, loader


def _with_progress(setup: Setup, step: int, stack: contextlib.ExitStack) -> Setup:
    """Rank 0: ``setup`` with TensorBoard's writer and the progress bar the config asks for, closed by ``stack``."""
    writer = bar = None
    if setup.config.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = stack.enter_context(contextlib.closing(SummaryWriter(str(setup.out / "tensorboard"))))
        except ImportError:  # TensorBoard is optional
            pass
    if setup.config.progress:
        from tqdm.auto import tqdm

        bar = stack.enter_context(tqdm(total=setup.stop, initial=step, desc="mae-pretrain", unit="step",
                                       dynamic_ncols=True))
    return dataclasses.replace(setup, writer=writer, bar=bar)


def epoch_batches(setup: Setup, state: LoopState) -> Iterator[Sample]:
    """The micro-batches from ``state.step`` to the end of its epoch: [`Sample`][refimpl.train.data.Sample]s of
    ``uint8 (B, 3, S, S)`` images, ``(B, L)`` noise and ``(B,)`` unreadable-image markers."""
    position = setup.sampler_position(state.step)
    setup.sampler.set_position(position["epoch"], position["start"])
    state.unreadable.clear()
    return iter(setup.loader)


def train_step(setup: Setup, state: LoopState, batches: Iterator[Sample]) -> float:
    """Step 5: ``accum_steps`` forward/backward passes, then one optimizer step.

    The loss of each micro-batch is scaled by ``1 / accum_steps`` (and, in fp16, by the gradient
    scaler) before its backward pass; gradients are synchronised across processes on the last
    micro-batch only.

    Returns:
        The learning rate the step used.
    """
    config = setup.config
    for micro in range(config.accum_steps):
        imgs, noise, unreadable = next(batches)  # uint8 (B, 3, S, S), (B, L), (B,)
        state.unreadable.update(i for i in unreadable.tolist() if i >= 0)
        imgs = normalize_images(imgs.to(setup.device, non_blocking=True))
        noise = noise.to(setup.device, non_blocking=True)
        sync = micro == config.accum_steps - 1
        if setup.sharded:
            setup.model.set_requires_gradient_sync(sync)
        with setup.ddp.no_sync() if setup.ddp is not None and not sync else contextlib.nullcontext():
            with setup.autocast():
                loss = setup.net(imgs, config.mask_ratio, noise=noise).loss
            setup.scaler.scale(loss / config.accum_steps).backward()
        state.loss_sum += loss.detach().float() / config.accum_steps
    lr = setup.optimizer.param_groups[0]["lr"]
    setup.scaler.step(setup.optimizer)  # = optimizer.step(), but skipped if fp16 gradients overflowed
    setup.scaler.update()
    setup.optimizer.zero_grad(set_to_none=True)
    setup.scheduler.step()
    state.step += 1
    state.interval_steps += 1
    return lr


def log_interval(setup: Setup, state: LoopState, lr: float) -> None:
    """Every ``log_every`` steps and at the end: the interval's mean loss over all ranks, one line
    of ``metrics.jsonl`` (and TensorBoard, the progress bar) on rank 0.

    Raises:
        FloatingPointError: if the loss is not finite: the run diverged.
        DataError: if more of this epoch's images could not be decoded than
            [`unreadable_limit`][refimpl.train.data.unreadable_limit] allows.
    """
    if state.step % setup.config.log_every and state.step != setup.stop:
        return
    mean_loss = all_reduce_mean(state.loss_sum / state.interval_steps, setup.info).item()
    elapsed = time.perf_counter() - state.interval_start
    line = {"step": state.step, "epoch": round(state.step / setup.plan.steps_per_epoch, 4),
            "loss": round(mean_loss, 6), "lr": lr,
            "images_per_s": round(state.interval_steps * setup.config.batch_size / elapsed, 2)}
    if setup.scaler.is_enabled():
        line["loss_scale"] = setup.scaler.get_scale()
    if not math.isfinite(mean_loss):
        raise FloatingPointError(f"training diverged: the loss is {mean_loss} at step {state.step} (lr {lr:.3g}); "
                                 f"{_lower_the_lr(setup)}")
    unreadable = unreadable_images(setup, state)
    if unreadable:
        line["unreadable"] = unreadable
    if setup.info.is_main:
        state.metrics.append(line)
        with open(setup.out / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        if setup.writer is not None:
            for key in ("loss", "lr", "images_per_s"):
                setup.writer.add_scalar(f"train/{key}", line[key], state.step)
        if setup.bar is not None:
            setup.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{line['images_per_s']:.1f}")
    state.loss_sum.zero_()
    state.interval_steps, state.interval_start = 0, time.perf_counter()


def _lower_the_lr(setup: Setup) -> str:
    kept = list_checkpoints(setup.out) if setup.info.is_main else []
    return f"lower the learning rate (--blr or --lr){f', then resume from {kept[-1].name}' if kept else ''}"


def unreadable_images(setup: Setup, state: LoopState, report: bool = False) -> int:
    """The images of this epoch so far that could not be decoded and were replaced, over all ranks.

    Every rank calls it (at each log line and each epoch's end) and gets the same count. With
    ``report``, rank 0 logs one line naming the first file when there are any.

    Raises:
        DataError: on every rank, if there are more than
            [`unreadable_limit`][refimpl.train.data.unreadable_limit] of them.
    """
    count = reduce_ints([len(state.unreadable)], "sum", setup.info)[0]
    if not count:
        return 0
    n = setup.plan.dataset_size
    first = reduce_ints([min(state.unreadable, default=n)], "min", setup.info)[0]
    source = setup.loader.dataset.source
    path = source.files[first]
    if count > unreadable_limit(n) or (report and setup.info.is_main):
        try:
            source[first]
            reason = "it could not be decoded earlier in this epoch"
        except UnreadableImage as exc:
            reason = exc.reason
        if count > unreadable_limit(n):
            raise DataError(too_many_unreadable(path, reason, count, n))
        epoch = (state.step - 1) // setup.plan.steps_per_epoch
        limit = unreadable_limit(n)
        them = f" and {count - 1} more" if count > 1 else ""
        log.warning("epoch %d: image %r%s could not be decoded (%s); the next readable image stood in for %s; fix "
                    "or remove %s (a resume accepts up to %d image%s fewer)", epoch, str(path), them, reason,
                    "each" if count > 1 else "it", "them" if count > 1 else "it", limit, "s" if limit > 1 else "")
    return count


def check_weights(setup: Setup, step: int) -> None:
    """Before a checkpoint, on every rank: refuse to save weights that hold NaN or infinity.

    A resume from such a checkpoint could only diverge again; the loss, checked at each log line
    only, can miss the step where the weights broke.

    Raises:
        FloatingPointError: on every rank, naming the first bad tensor (this rank's, under FSDP its shard).
    """
    local = {name: (param.to_local() if hasattr(param, "to_local") else param).detach()  # FSDP: this rank's shard
             for name, param in setup.model.named_parameters()}
    bad = first_non_finite(local)
    if any_rank(bad is not None, setup.info):
        where = f" (tensor {bad!r})" if bad else ""
        raise FloatingPointError(f"training diverged: the weights hold NaN or infinite values after step "
                                 f"{step}{where}, so no checkpoint was written; {_lower_the_lr(setup)}")


def save_checkpoint(setup: Setup, step: int) -> dict[str, Tensor]:
    """Write the checkpoint of ``step`` (rank 0; a collective under FSDP) and keep the last ``keep_last``.

    Returns:
        The full model state (empty on ranks other than 0).
    """
    model_state, optimizer_state = full_state_dicts(setup.model, setup.optimizer, setup.sharded)
    if not setup.info.is_main:
        return model_state
    scaler = setup.scaler.state_dict() if setup.scaler.is_enabled() else None
    atomic_save({
        "format": CHECKPOINT_FORMAT, "model": model_state, "optimizer": optimizer_state,
        "scheduler": setup.scheduler.state_dict(), "scaler": scaler,
        "step": step, "epoch": step // setup.plan.steps_per_epoch, "sampler": setup.sampler_position(step),
        "rng": capture_rng(), "config": setup.config.to_dict(), "dataset_size": setup.plan.dataset_size,
    }, setup.out / checkpoint_name(step))
    prune_checkpoints(setup.out, setup.config.keep_last)
    return model_state


def save_figure(setup: Setup, step: int) -> None:
    """Run the model on the fixed figure batch and save ``recon-<step>.png`` (FSDP: every rank runs it, rank 0 saves).

    The picture is the [`labelled_grid`][refimpl.train.reconstruction.labelled_grid] of the
    [`reconstruction_rows`][refimpl.train.reconstruction.reconstruction_rows], titled with the step.
    """
    imgs, noise = setup.figure_images
    imgs, noise = normalize_images(imgs.to(setup.device)), noise.to(setup.device)
    with setup.autocast():
        rows = reconstruction_rows(setup.model, imgs, noise, setup.config.mask_ratio)
    if setup.info.is_main:
        picture = labelled_grid(reconstruction_grid(rows), f"step {step}")
        atomic_write(setup.out / f"recon-{step:08d}.png", lambda handle: picture.save(handle, format="PNG"))


def checkpoint_and_figure(setup: Setup, state: LoopState) -> None:
    """A figure every ``figure_every`` steps, a checkpoint every ``save_every``; at the end both, and the encoder."""
    step, config = state.step, setup.config
    end = step == setup.stop
    saves = step % config.save_every == 0 or end
    if saves:
        check_weights(setup, step)
    if not setup.gathers:
        return
    if (config.figure_every and step % config.figure_every == 0) or end:
        save_figure(setup, step)
    if saves:
        model_state = save_checkpoint(setup, step)
        if end and setup.info.is_main:
            export_encoder(model_state, setup.out / ENCODER_FILE, setup.model.encoder_state)


def should_stop(setup: Setup, state: LoopState, signals: StopOnSignal) -> bool:
    """Step 6: after a SIGTERM or Ctrl-C on any rank, every rank stops after this same step, with a checkpoint.

    A signal during the last step changes nothing: that step ends the run anyway.
    """
    if state.step < setup.stop and any_rank(signals.received is not None, setup.info):
        state.stopped_by = signals.received or STOP_SIGNALS[0].name
        if state.step % setup.config.save_every:
            check_weights(setup, state.step)
            if setup.gathers:
                save_checkpoint(setup, state.step)
        if setup.info.is_main:
            log.warning("%s: stopped after step %d and saved %s; run the same command to resume",
                        state.stopped_by, state.step, checkpoint_name(state.step))
    return state.step >= setup.stop or state.stopped_by is not None


def finish(setup: Setup, state: LoopState) -> TrainResult:
    """Hand back the trained model (under FSDP a plain copy with the gathered weights) once every rank is done."""
    model = setup.model
    if setup.sharded:  # nothing that outlives the run may hold the process group
        with torch.random.fork_rng(devices=[]):
            model = unshard_model(model, build_model(setup.config).to(setup.device))
    if setup.info.distributed:
        torch.distributed.barrier()
    return TrainResult(model=model, step=state.step, plan=setup.plan, output_dir=setup.out,
                       resumed_from=setup.resumed_from, metrics=state.metrics, stopped_by=state.stopped_by)


def train(config: PretrainConfig, *, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Pretrain an MAE as ``config`` says; resume the run found in ``config.output_dir``.

    Args:
        config: the run's config (checked when it was built).
        on_step: called with the step number after every optimizer step, once its checkpoint
            (if any) is written; the tests raise from it to simulate a kill.

    Returns:
        A [`TrainResult`][refimpl.train.pretrain.TrainResult].

    Raises:
        ConfigError: for a batch larger than the data, CUDA asked for and absent, or an
            ``output_dir`` holding another run (nothing is written then).
        DataError: for a missing, empty or unreadable data folder (before any model is built).
        FloatingPointError: if the loss diverges.
    """
    device = _device(config, int(os.environ.get("LOCAL_RANK", "0")))
    info = setup_distributed(device.type)
    try:
        return _session(config, device, info, on_step)
    finally:  # after _session's frame is gone: nothing of the run may hold the process group now
        cleanup_distributed()


def _session(config: PretrainConfig, device: torch.device, info: DistInfo,
             on_step: Callable[[int], None] | None) -> TrainResult:
    """Prepare the run, loop over the steps until the end or a stop signal, hand back the model."""
    notice = "mae-pretrain: Ctrl-C received: finishing this step and saving a checkpoint (Ctrl-C again quits at once)"
    with StopOnSignal(notice=notice if info.is_main else None) as signals, contextlib.ExitStack() as stack:
        setup, state = prepare_run(config, device, info, stack)
        while state.step < setup.stop and state.stopped_by is None:
            batches = epoch_batches(setup, state)
            for _ in range(setup.plan.steps_per_epoch - state.step % setup.plan.steps_per_epoch):
                lr = train_step(setup, state, batches)
                log_interval(setup, state, lr)
                checkpoint_and_figure(setup, state)
                if setup.bar is not None:
                    setup.bar.update(1)
                if on_step is not None:
                    on_step(state.step)
                if should_stop(setup, state, signals):
                    break
            unreadable_images(setup, state, report=True)  # the epoch's end, or the session's
        return finish(setup, state)


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
        The exit status: 0 on success; 2 for a bad config, data, path or checkpoint (one line on
        stderr, nothing written), and also when more images turn out unreadable during the run than
        a run reads on past, or memory runs out (one line saying what to lower; the checkpoints
        written before are kept); 1 when the run failed after it started (the loss or the weights
        diverged, a write failed, a data-loader worker died; one line; the checkpoints written
        before are kept); 143 when SIGTERM and 130 when Ctrl-C stopped it after writing a
        checkpoint, also 130 when a second Ctrl-C interrupted it at once (the last checkpoint
        written stays); in every case rerun the same command to resume.
    """
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    config_path = args.pop("config", None)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING,
                        format="mae-pretrain: %(message)s", stream=sys.stderr)
    try:
        config = resolve_config(load_config_file(config_path) if config_path else {}, args)
        result = train(config)
    except (ConfigError, DataError) as exc:
        print(f"mae-pretrain: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:
        print(f"mae-pretrain: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:
        text = _one_line(exc)
        if isinstance(exc, MemoryError) or _OUT_OF_MEMORY.search(text):
            print(f"mae-pretrain: error: out of memory{_allocation(text)}: lower --batch-size (or raise "
                  f"--accum-steps to split it), --img-size or the model's size; the checkpoints written before "
                  f"are kept", file=sys.stderr)
            return 2
        if text.startswith("DataLoader worker"):
            print(f"mae-pretrain: error: {text} (out of memory?): lower --num-workers or --batch-size, then run the "
                  f"same command to resume", file=sys.stderr)
            return 1
        raise
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


_OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory", re.IGNORECASE)


def _one_line(exc: BaseException) -> str:
    """An error's message on one line; for one raised in a data-loader worker, the original message
    (PyTorch wraps it in the worker's traceback)."""
    text = str(exc).strip()
    if "\nOriginal Traceback" in text:
        text = text.splitlines()[-1].partition(": ")[2] or text
    return " ".join(text.split()) or type(exc).__name__


def _allocation(text: str) -> str:
    """`` (tried to allocate 137 GiB)`` from an allocator's message, or nothing."""
    found = re.search(r"tried to allocate (\d+) bytes", text, re.IGNORECASE)
    if found:
        gib = int(found.group(1)) / 2**30
        return f" (tried to allocate {gib:,.0f} GiB)" if gib >= 10 else f" (tried to allocate {gib:.2g} GiB)"
    found = re.search(r"tried to allocate ([\d.]+ [KMGT]i?B)", text, re.IGNORECASE)
    return f" (tried to allocate {found.group(1)})" if found else ""


if __name__ == "__main__":
    sys.exit(main())
