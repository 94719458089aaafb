"""Process groups for ``torchrun``: who am I, how many are we, which device is mine.

``torchrun`` (``python -m torch.distributed.run``) starts one process per device and tells each
its place through the environment variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; that
is the launcher's interface, so it is the one place this package reads the environment. A plain
``python``/``mae-pretrain`` start has none of them and runs as a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_reduce_mean", "any_rank", "cleanup_distributed", "setup_distributed"]


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
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=torch.device("cuda", local_rank) if backend == "nccl" else None)
    cpu_group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, cpu_group=cpu_group)


def cleanup_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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
