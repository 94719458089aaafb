"""Run by the DDP test under ``torchrun``: train from a JSON config, save this rank's parameters.

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/_pretrain_ddp.py CONFIG OUT [STEP]``.
With ``STEP``, rank 1 alone sends itself SIGTERM during that step; every rank must stop after it.
Each rank writes ``rank<R>.json`` (its last step and stop signal) and, without FSDP, ``rank<R>.pt``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from refimpl.train.config import PretrainConfig
from refimpl.train.pretrain import train

if __name__ == "__main__":
    torch.set_num_threads(1)
    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    term_at = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rank = int(os.environ["RANK"])

    def on_step(step: int) -> None:
        if rank == 1 and step == term_at:
            os.kill(os.getpid(), signal.SIGTERM)

    config = PretrainConfig.from_dict(json.loads(config_path.read_text()))
    result = train(config, on_step=on_step)
    if not config.fsdp:  # FSDP leaves shards (DTensors) behind; the test reads its checkpoint instead
        torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, out / f"rank{rank}.pt")
    sharded = isinstance(next(result.model.parameters()), DTensor)
    (out / f"rank{rank}.json").write_text(json.dumps({"step": result.step, "stopped_by": result.stopped_by,
                                                      "sharded": sharded}))
