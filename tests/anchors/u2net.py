"""The official U²-Net architecture, as carvekit 4.1.2 packages it, for the tests and benchmarks.

The anchor is ``carvekit.ml.arch.u2net.u2net``, the official ``model/u2net.py`` refactored (same
keys, a config dict so that the small model can be built too). It is loaded as a file, not
imported as ``carvekit.ml.arch.u2net.u2net``: importing it by name runs ``carvekit/ml/__init__.py``,
which imports ``carvekit.utils`` and calls ``fix_seed()`` on import, reseeding Python's and
PyTorch's global random generators (and setting cuDNN flags), a side effect on everything that
runs after it. The file itself needs only torch. ``make`` installs carvekit with ``--no-deps``
(see ``pyproject.toml``, ``[tool.paper-notes]``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch


def load_official() -> ModuleType:
    """carvekit's U²-Net file, loaded alone.

    Raises:
        ModuleNotFoundError: if carvekit is not installed, saying how ``make`` installs it.
    """
    spec = importlib.util.find_spec("carvekit")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("carvekit (the U²-Net anchor) is not installed; `make test` installs it "
                                  "(pip install --no-deps carvekit==4.1.2)")
    path = Path(spec.origin).parent / "ml" / "arch" / "u2net" / "u2net.py"
    file_spec = importlib.util.spec_from_file_location("_carvekit_u2net", path)
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def official_config(config: dict) -> dict:
    """Our stage tables as carvekit's config: ``{stage: [name, (L, I, M, O[, dilated]), side input or -1]}``."""
    enc, dec = config["encoder"], config["decoder"]
    n = len(enc)
    cfg = {}
    for i, s in enumerate(enc, start=1):
        cfg[f"stage{i}"] = [f"En_{i}", tuple(s), s.out_ch if i == n else -1]
    for j, s in enumerate(dec):
        level = n - 1 - j
        cfg[f"stage{level}d"] = [f"De_{level}", tuple(s), s.out_ch]
    return cfg


def randomize_batchnorm_(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Give every BatchNorm random statistics and affines in place, so eval mode is not the identity."""
    for key, value in state.items():
        if key.endswith(("running_var", "bn_s1.weight")):
            value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
        elif key.endswith(("running_mean", "bn_s1.bias")):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
