"""Run by the DDP test under ``torchrun``: train from a JSON config, save this rank's parameters.

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/_pretrain_ddp.py CONFIG OUT [STEP]``.
With ``STEP``, rank 1 alone sends itself SIGTERM during that step; every rank must stop after it.
Each rank writes ``rank<R>.json`` (its last step and stop signal, whether FSDP sharded the model;
under FSDP also the dtypes that the first block's weights and the masking noise had inside the
forward pass) and ``rank<R>.pt`` (the returned model's weights, full on every rank).

It exits with an error if the default process group is still alive after ``train`` returned:
then its gloo threads would outlive the run, and one freeing a finished collective while the
interpreter shuts down aborts the process (it did, about once in twenty runs).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import weakref
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from refimpl.train import pretrain
from refimpl.train.config import PretrainConfig
from refimpl.train.pretrain import train

seen: dict[str, str] = {}


def shard_and_watch(model: torch.nn.Module, blocks: list[torch.nn.Module], **kwargs: object) -> None:
    """``shard_model``, then hooks that run after FSDP's own: what the forward pass really gets."""
    shard_model(model, blocks, **kwargs)
    seen["sharded"] = isinstance(next(model.parameters()), DTensor)
    linear = next(m for m in blocks[0].modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, output: seen.update(param_dtype=str(module.weight.dtype)))

    def watch_noise(module: torch.nn.Module, args: tuple, kw: dict) -> None:
        if "noise" in kw:  # the trainer passes it by name
            seen["noise_dtype"] = str(kw["noise"].dtype)

    model.register_forward_pre_hook(watch_noise, with_kwargs=True)


shard_model = pretrain.shard_model
setup_distributed = pretrain.setup_distributed
groups: list[weakref.ref] = []


def setup_and_watch(device_type: str) -> object:
    """``setup_distributed``, then a weak reference to the default process group."""
    info = setup_distributed(device_type)
    groups.append(weakref.ref(torch.distributed.group.WORLD))
    return info


if __name__ == "__main__":  # (pytest imports this file for doctests: patch only when run)
    pretrain.shard_model, pretrain.setup_distributed = shard_and_watch, setup_and_watch
    torch.set_num_threads(1)
    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    term_at = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rank = int(os.environ["RANK"])

    def on_step(step: int) -> None:
        if rank == 1 and step == term_at:
            os.kill(os.getpid(), signal.SIGTERM)

    config = PretrainConfig.from_dict(json.loads(config_path.read_text()))
    result = train(config, on_step=on_step)
    if any(group() is not None for group in groups):
        sys.exit(f"rank {rank}: the default process group outlives train()")
    torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, out / f"rank{rank}.pt")
    (out / f"rank{rank}.json").write_text(json.dumps({"step": result.step, "stopped_by": result.stopped_by,
                                                      "sharded": seen.pop("sharded", False), **seen}))
