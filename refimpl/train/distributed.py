"""Process groups for ``torchrun``: who am I, how many are we, which device is mine.

``torchrun`` (``python -m torch.distributed.run``) starts one process per device and tells each
its place through the environment variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; that
is the launcher's interface, so it is the one place this package reads the environment. A plain
``python``/``mae-pretrain`` start has none of them and runs as a world of one.

With several processes the model is either replicated (``DistributedDataParallel``: each rank
holds all weights and AdamW state, gradients are all-reduced) or sharded
([`shard_model`][refimpl.train.distributed.shard_model], FSDP2: each rank holds ``1/N`` of them,
weights are all-gathered block by block for the forward and backward passes and gradients are
reduce-scattered). Checkpoints hold full, unsharded state dicts either way
([`full_state_dicts`][refimpl.train.distributed.full_state_dicts]), so a run can be resumed with
the other strategy or on another number of processes.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "any_rank",
    "cleanup_distributed",
    "full_state_dicts",
    "load_state_dicts",
    "reduce_ints",
    "setup_distributed",
    "shard_model",
    "unshard_model",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    """Global rank, ``0 <= rank < world_size``; rank 0 logs and writes checkpoints."""
    world_size: int = 1
    """Number of processes."""
    local_rank: int = 0
    """Rank on this machine: the index of this process's GPU."""
    cpu_group: Any = None
    """A gloo group for small host-side agreements ([`any_rank`][refimpl.train.distributed.any_rank]) that
    must not wait for the GPU; ``None`` = the default group (already gloo on CPU)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_type: str) -> DistInfo:
    """Join the ``torchrun`` process group if launched by it (NCCL on CUDA, gloo on CPU).

    Args:
        device_type: ``"cuda"`` or ``"cpu"``.

    Returns:
        A [`DistInfo`][refimpl.train.distributed.DistInfo]; ``DistInfo()`` for a single process.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    # Imported after init_process_group (DDP does), this module's functions would capture the
    # default group in their default arguments and keep it alive for good (see cleanup_distributed).
    import torch.distributed.nn  # noqa: F401

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=torch.device("cuda", local_rank) if backend == "nccl" else None)
    cpu_group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, cpu_group=cpu_group)


def cleanup_distributed() -> None:
    """Leave the process group, if any, and wait until its threads have stopped.

    ``destroy_process_group`` joins a group's worker threads only when nothing else holds the
    group. A gloo worker thread that outlives it may free a finished collective, whose tensors
    Python has already dropped, while the interpreter shuts down; asking for the GIL then, the
    thread aborts the process ("terminate called without an active exception", about one
    two-process FSDP run in twenty). So nothing may hold the group by now: a model still
    sharded by FSDP does, through its device mesh (hence
    [`unshard_model`][refimpl.train.distributed.unshard_model] before this), and so do DTensor's
    caches of sharding specs (emptied here). Collecting garbage frees the wrappers (DDP, FSDP,
    optimizer) that sit in reference cycles; the group then dies here, its threads joined while
    the interpreter is alive.
    """
    if dist.is_available() and dist.is_initialized():
        _release_dtensor_caches()
        gc.collect()
        dist.destroy_process_group()


def _release_dtensor_caches() -> None:
    """Empty DTensor's sharding and redistribution caches: their specs hold FSDP's device mesh,
    hence the process group. Private PyTorch caches, cleared only if present; the two-process
    tests fail (deterministically) if a PyTorch release adds another that pins the group."""
    if "torch.distributed.tensor" not in sys.modules:  # no DTensor was ever made: nothing cached
        return
    from torch.distributed.tensor import _collective_utils, _redistribute, debug

    for clear in (
        getattr(debug, "_clear_sharding_prop_cache", None),
        getattr(_redistribute, "clear_redistribute_planner_cache", None),
        getattr(getattr(_redistribute, "_gen_transform_infos", None), "cache_clear", None),
        getattr(getattr(getattr(_collective_utils, "MeshTopoInfo", None), "build_from_mesh", None), "cache_clear", None),
    ):
        if clear is not None:
            clear()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``value`` over all ranks (``value`` itself for one process)."""
    if not info.distributed:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def any_rank(flag: bool, info: DistInfo) -> bool:
    """Whether ``flag`` is true on at least one rank; every rank gets the same answer.

    Runs on the host (gloo), so calling it every step does not wait for queued GPU work.
    """
    if not info.distributed:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=info.cpu_group)
    return bool(value.item())


def reduce_ints(values: list[int], op: str, info: DistInfo) -> list[int]:
    """Element-wise ``"sum"``, ``"min"`` or ``"max"`` of small integers over all ranks, on the host (gloo).

    Every rank gets the same answer, so every rank takes the same decision from it (e.g. to stop).
    """
    if not info.distributed:
        return list(values)
    value = torch.tensor(values, dtype=torch.int64)
    dist.all_reduce(value, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op],
                    group=info.cpu_group)
    return value.tolist()


def shard_model(model: nn.Module, blocks: list[nn.Module], param_dtype: torch.dtype | None = None) -> None:
    """Shard ``model`` in place with FSDP2: one unit per block in ``blocks``, the rest in the root unit.

    Each block's weights are all-gathered just before it runs and freed after, so a rank holds
    its shard of everything plus one block at a time. Parameters become ``DTensor`` shards; build
    the optimizer after this call.

    Args:
        model: the model (on its device).
        blocks: the submodules to shard separately, in execution order (MAE: encoder then decoder blocks).
        param_dtype: the dtype weights are gathered and used in (``torch.bfloat16`` under bf16
            autocast: half the traffic, and autocast finds its matmul weights already cast). The
            shards, the optimizer and the reduce-scatter of gradients stay float32. ``None``: as stored.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    # Inputs are left as they are: the masking noise must keep its float32 values (bf16 would
    # round them into ties and change the mask), and autocast picks each op's dtype as without FSDP.
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32, cast_forward_inputs=False)
    for block in blocks:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool) -> tuple[dict, dict]:
    """The model's and the optimizer's full state dicts, the optimizer's keyed by parameter name.

    Parameter names, not positions, key the optimizer state, so a checkpoint does not depend on
    how the parameters were grouped or sharded. Under FSDP (``sharded``) this is a collective:
    every rank must call it; rank 0 gets the gathered tensors on the CPU, the others empty dicts.

    Args:
        model: the unwrapped model (sharded in place under FSDP).
        optimizer: its optimizer.
        sharded: whether [`shard_model`][refimpl.train.distributed.shard_model] was applied.

    Returns:
        ``(model_state, optimizer_state)``.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True) if sharded else None
    return get_state_dict(model, optimizer, options=options)


def load_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                     optimizer_state: dict, sharded: bool) -> None:
    """Undo [`full_state_dicts`][refimpl.train.distributed.full_state_dicts]; under FSDP each rank keeps its shard.

    Every rank passes the full dicts (each one has read the checkpoint). Raises on a missing or
    unexpected key.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    options = StateDictOptions(full_state_dict=True, strict=True) if sharded else StateDictOptions(strict=True)
    set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optimizer_state, options=options)


def unshard_model(model: nn.Module, twin: nn.Module) -> nn.Module:
    """Copy the full weights of ``model``, sharded by [`shard_model`][refimpl.train.distributed.shard_model], into ``twin``.

    A collective: every rank calls it and every rank's ``twin`` gets all the weights (gathered
    on the model's device). ``twin`` is a plain module of the same architecture, holding no
    process group, so once ``model`` is dropped the group can be destroyed cleanly
    ([`cleanup_distributed`][refimpl.train.distributed.cleanup_distributed]).

    Returns:
        ``twin``, with ``model``'s weights.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    twin.load_state_dict(get_model_state_dict(model, options=StateDictOptions(full_state_dict=True)))
    return twin
