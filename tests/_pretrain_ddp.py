"""Run by the DDP test under ``torchrun``: train from a JSON config, save this rank's parameters.

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/_pretrain_ddp.py CONFIG OUT``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from refimpl.train.config import PretrainConfig
from refimpl.train.pretrain import train

if __name__ == "__main__":
    torch.set_num_threads(1)
    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    config = PretrainConfig.from_dict(json.loads(config_path.read_text()))
    result = train(config)
    rank = int(os.environ["RANK"])
    torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, out / f"rank{rank}.pt")
