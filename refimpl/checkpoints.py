"""Loading weights: official release files, Hugging Face / timm safetensors, our own checkpoints.

Our models use the official state-dict names (timm's for ViT, ``facebookresearch/mae``'s for
MAE), so official files load as they are. Other layouts go through an explicit key map kept here,
not in the models. Every file is read without executing pickled code: safetensors, or
``torch.load(..., weights_only=True)``. Every tensor's shape is checked against the model before
anything is copied, so a checkpoint of another architecture is a clear error, not a silent
partial load.

Release-file layouts handled by [`read_state_dict`][refimpl.checkpoints.read_state_dict]:

- official MAE (``mae_pretrain_vit_base.pth``, ``mae_visualize_vit_large.pth``, ...) and official
  SAM 2 / SAM 2.1 (``sam2.1_hiera_tiny.pt``, ...): a dict whose ``"model"`` entry is the state
  dict; SAM 2's keys are those of [`refimpl.sam2.SAM2`][refimpl.sam2.model.SAM2] as they are. The *pretrain* files hold the encoder only; the
  *visualize* files also hold the decoder. Full training checkpoints also store an
  ``argparse.Namespace`` of the run's arguments, which is allowed through ``weights_only``
  loading as plain data.
- official Hiera: ``"model_state"``; generic trainers: ``"state_dict"``; or a bare state dict.
- Hugging Face ``ViTMAEForPreTraining`` / ``ViTMAEModel`` (``model.safetensors``): converted by
  [`hf_vitmae_to_official`][refimpl.checkpoints.hf_vitmae_to_official].

What is refused, each in one line naming the file: a path that is not a regular file (saying
what it is: missing, a folder, a link loop, a FIFO, a device), an empty or truncated file ("the
file ends too early"), pickled code, and, at load, a state dict of another architecture, a
tensor of another dtype kind (integer weights for floating parameters, or the reverse; a
float16, bfloat16 or float64 file is cast, as ``load_state_dict`` casts), or a non-finite
floating tensor. Non-finite weights are refused rather than warned about: no released
checkpoint holds NaN or infinity, such a file is broken (typically saved after a run
diverged), and every output of a model loaded from it would be NaN, far from the cause.
"""

from __future__ import annotations

import argparse
import json
import os
import pickletools
import re
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path


import torch
from torch import Tensor, nn

from . import checks


_WRAPPER_KEYS = ("model", "model_state", "state_dict", "module")


class CheckpointNotFound(FileNotFoundError, ValueError):
    """A checkpoint path that does not exist: a ``FileNotFoundError``, and a ``ValueError`` like every other refusal."""


class CheckpointIsAFolder(IsADirectoryError, ValueError):
    """A checkpoint path that is a folder: an ``IsADirectoryError``, and a ``ValueError`` like every other refusal."""


def read_state_dict(path: str | PathLike[str]) -> dict[str, Tensor]:
    """Read a state dict from ``path`` without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(map_location="cpu", weights_only=True)``. A release wrapper (``"model"``,
    ``"model_state"``, ``"state_dict"``, ``"module"``) is unwrapped, and Hugging Face ViTMAE keys
    are mapped to the official names.

    Args:
        path: the checkpoint file.

    Returns:
        Tensors by official key.

    Raises:
        FileNotFoundError: if ``path`` does not exist (also a ``ValueError``).
        IsADirectoryError: if it is a folder (also a ``ValueError``).
        ValueError: if it is not a regular file, is empty or truncated, or holds no state dict
            (e.g. a whole pickled model, which is refused rather than executed). The tensors'
            values are not checked here: [`load_state`][refimpl.checkpoints.load_state] checks them.
    """
    path = Path(path)
    check_checkpoint_path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors' SafetensorError: a truncated file, or a pickle named .safetensors
            raise ValueError(f"checkpoint {str(path)!r} cannot be read: {unreadable_reason(exc, path)}; expected a "
                             f"safetensors file") from None
    else:
        try:
            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError and friends
            raise ValueError(
                f"checkpoint {str(path)!r} cannot be read with weights_only=True: {unreadable_reason(exc, path)}; "
                f"expected a state dict saved with torch.save or safetensors"
            ) from None
    state = _unwrap(obj, path)
    if any(k.startswith(("vit.", "decoder.decoder_")) for k in state):
        state = hf_vitmae_to_official(state)
    return state


def check_checkpoint_path(path: Path) -> None:
    """Refuse a path that is not a non-empty regular file, saying what it is instead.

    The words come from [`path_problem`][refimpl.paths.path_problem]: a link loop, a FIFO (which
    a read would wait on forever) or ``/dev/null`` is named as such, not called missing. Every
    exception raised is a ``ValueError``; the missing path and the folder are also the
    ``FileNotFoundError`` and ``IsADirectoryError`` callers may catch.

    Raises:
        FileNotFoundError: if ``path`` does not exist, or is a link to a missing target.
        IsADirectoryError: if it is a folder.
        ValueError: if it is a link loop, a FIFO, a device or socket, unreadable, or empty (0 bytes).
    """
    problem = checks.path_problem(path, "file")
    if problem is not None and problem.startswith(("does not exist", "is a link to a missing target")):
        raise CheckpointNotFound(f"checkpoint path {str(path)!r} {problem}")
    if problem == "is a folder; expected a file":
        raise CheckpointIsAFolder(f"checkpoint path {str(path)!r} is a folder; expected a checkpoint file in it "
                                  f"(e.g. {str(path / 'checkpoint.pth')!r})")
    if problem is not None:
        raise ValueError(f"checkpoint path {str(path)!r} {problem}; expected a checkpoint file")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {str(path)!r} is empty (0 bytes), e.g. a copy or write that was cut short")


def unreadable_reason(exc: BaseException, path: Path) -> str:
    """Why ``torch.load`` (``weights_only=True``) or safetensors refused ``path``, in one line.

    A file cut short is recognised from its structure, not from PyTorch's message (which, for a
    zip archive shorter than its last record, is "Invalid argument"): a torch.save archive
    without its end record, a pickle that stops before its ``STOP``, a safetensors file shorter
    than its header says. Refusing a pickle that would run code names what it wanted to run
    (``GLOBAL posix.system``), from the middle of PyTorch's long message, rather than cutting the
    message off mid-word.
    """
    truncated = _truncation(path)
    if truncated:
        return truncated
    text = " ".join(str(exc).split())
    if isinstance(exc, EOFError) or not text or re.search(r"(?i)unexpected EOF|ran out of input", text):
        return "the file ends too early (truncated)"
    blocked = re.search(r"(?i)unsupported global:?\s+(?:GLOBAL\s+)?([\w.]+)", text)
    if blocked:
        return f"it holds pickled code that calls {blocked.group(1)}, which is refused rather than run"
    if "central directory" in text or "zip archive" in text:
        return "it is not a complete torch.save archive (truncated or corrupted)"
    if "header" in text.lower() and path.suffix == ".safetensors":
        return f"it is not a valid safetensors file ({text[:160]})"
    if path.suffix != ".safetensors":
        head = _head(path, 16)
        if head is not None and not head.startswith((_ZIP_MAGIC, b"\x80")):
            return f"it is neither a torch.save archive nor a pickle (it starts with {head!r})"
    first = text.split(". ")[0]
    return f"{type(exc).__name__}: {first[:200]}"


_ZIP_MAGIC = b"PK\x03\x04"
_TRUNCATED = "the file ends too early (truncated)"


def _head(path: Path, size: int) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return None


def _truncation(path: Path) -> str | None:
    """Why ``path`` looks cut short, from its structure alone, or ``None``."""
    head = _head(path, 8)
    if head is None:
        return None
    try:
        size = path.stat().st_size
        if path.suffix == ".safetensors":
            return _safetensors_truncation(path, head, size)
        if len(head) < len(_ZIP_MAGIC) and _ZIP_MAGIC.startswith(head):
            return _TRUNCATED
        if head.startswith(_ZIP_MAGIC):  # torch.save's zip: its end record is the last thing written
            return None if zipfile.is_zipfile(path) else f"{_TRUNCATED}: it is not a complete torch.save archive"
        if head.startswith(b"\x80"):  # the legacy format: up to 5 pickles, then the raw tensor data
            with open(path, "rb") as handle:
                for _ in range(5):
                    if handle.tell() == size:
                        break
                    try:
                        for _op in pickletools.genops(handle):  # reads opcodes only: nothing is run
                            pass
                    except ValueError:  # "pickle exhausted before seeing STOP", a cut argument
                        return f"{_TRUNCATED}: a pickle stops before its end"
    except (OSError, struct.error):
        return None
    return None


def _safetensors_truncation(path: Path, head: bytes, size: int) -> str | None:
    """A safetensors file: 8 bytes of header length, the JSON header, then the data it indexes."""
    not_valid = "it is not a valid safetensors file: " + _TRUNCATED
    if len(head) < 8:
        return f"{not_valid}: {size} bytes, less than the 8 that give the header's length"
    (header_size,) = struct.unpack("<Q", head)
    with open(path, "rb") as handle:
        handle.seek(8)
        header = handle.read(min(header_size, 100_000_000))
    if len(header) < header_size:
        return f"{not_valid}: {size} of at least {8 + header_size} bytes, in its header" if header[:1] == b"{" else None
    try:
        entries = json.loads(header)
        end = max((int(v["data_offsets"][1]) for k, v in entries.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    expected = 8 + header_size + end
    return f"{not_valid}: {size} of {expected} bytes" if size < expected else None


def _unwrap(obj: object, path: Path) -> dict[str, Tensor]:
    for _ in range(3):  # e.g. {"model": {"module": {...}}}
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(
            f"checkpoint {str(path)!r} holds no state dict (top level: {keys}); "
            f"expected tensors by name, possibly under one of {', '.join(_WRAPPER_KEYS)}"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


# Per-layer Hugging Face names -> official MAE names: transformers 5.x, then 4.x spellings.
_HF5_LAYER = {
    "attention.o_proj": "attn.proj",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_HF_LAYER = {
    **_HF5_LAYER,
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_HF_TOP = {
    "vit.embeddings.cls_token": "cls_token",
    "vit.embeddings.position_embeddings": "pos_embed",
    "vit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "vit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "vit.layernorm.weight": "norm.weight",
    "vit.layernorm.bias": "norm.bias",
    "decoder.mask_token": "mask_token",
    "decoder.decoder_pos_embed": "decoder_pos_embed",
    "decoder.decoder_embed.weight": "decoder_embed.weight",
    "decoder.decoder_embed.bias": "decoder_embed.bias",
    "decoder.decoder_norm.weight": "decoder_norm.weight",
    "decoder.decoder_norm.bias": "decoder_norm.bias",
    "decoder.decoder_pred.weight": "decoder_pred.weight",
    "decoder.decoder_pred.bias": "decoder_pred.bias",
}
_HF_LAYER_KEY = re.compile(
    r"^(?:vit\.layers|vit\.encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)\.(weight|bias)$"
)
_QKV5 = ("attention.q_proj", "attention.k_proj", "attention.v_proj")
_QKV4 = ("attention.attention.query", "attention.attention.key", "attention.attention.value")


def hf_vitmae_to_official(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Map a Hugging Face ``ViTMAEForPreTraining`` / ``ViTMAEModel`` state dict to official MAE keys.

    Separate query/key/value projections are concatenated into the fused ``attn.qkv`` in the
    q, k, v order that the official attention splits them in. Both transformers 4.x
    (``vit.encoder.layer.N.attention.attention.query``) and 5.x (``vit.layers.N.attention.q_proj``)
    names are understood.

    Args:
        state: Hugging Face tensors by name.

    Returns:
        Tensors by official name.

    Raises:
        ValueError: naming the first key that has no official counterpart.
    """
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[int, Tensor]] = {}
    for key, value in state.items():
        if key in _HF_TOP:
            out[_HF_TOP[key]] = value
            continue
        match = _HF_LAYER_KEY.match(key)
        if not match:
            raise ValueError(f"Hugging Face key {key!r} has no official MAE counterpart")
        index, name, kind = match.groups()
        prefix = f"decoder_blocks.{index}" if key.startswith("decoder.") else f"blocks.{index}"
        for names in (_QKV5, _QKV4):
            if name in names:
                qkv.setdefault((prefix, kind), {})[names.index(name)] = value
                break
        else:
            if name not in _HF_LAYER:
                raise ValueError(f"Hugging Face key {key!r} has no official MAE counterpart")
            out[f"{prefix}.{_HF_LAYER[name]}.{kind}"] = value
    for (prefix, kind), parts in qkv.items():
        if sorted(parts) != [0, 1, 2]:
            raise ValueError(f"{prefix}: Hugging Face checkpoint lacks one of query/key/value {kind}")
        out[f"{prefix}.attn.qkv.{kind}"] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
    return out


def official_to_hf_vitmae(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of [`hf_vitmae_to_official`][refimpl.checkpoints.hf_vitmae_to_official], with transformers 5.x names.

    Args:
        state: tensors by official MAE name.

    Returns:
        Tensors by Hugging Face ``ViTMAEForPreTraining`` name.
    """
    top = {v: k for k, v in _HF_TOP.items()}
    layer = {v: k for k, v in _HF5_LAYER.items()}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        match = re.match(r"^(blocks|decoder_blocks)\.(\d+)\.(.+)\.(weight|bias)$", key)
        if not match:
            raise ValueError(f"official MAE key {key!r} has no Hugging Face counterpart")
        group, index, name, kind = match.groups()
        prefix = f"vit.layers.{index}" if group == "blocks" else f"decoder.decoder_layers.{index}"
        if name == "attn.qkv":
            for part, hf_name in zip(value.chunk(3, dim=0), _QKV5):
                out[f"{prefix}.{hf_name}.{kind}"] = part
        elif name in layer:
            out[f"{prefix}.{layer[name]}.{kind}"] = value
        else:
            raise ValueError(f"official MAE key {key!r} has no Hugging Face counterpart")
    return out


@dataclass
class LoadReport:
    """What [`load_checkpoint`][refimpl.checkpoints.load_checkpoint] did."""

    loaded: list[str] = field(default_factory=list)
    """Keys copied into the model."""
    missing: list[str] = field(default_factory=list)
    """Model keys the file did not have (left as initialised)."""

    def __str__(self) -> str:
        text = f"loaded {len(self.loaded)} tensors"
        if self.missing:
            groups = sorted({k.split(".")[0] for k in self.missing})
            text += f"; {len(self.missing)} not in the file, left as initialised: {', '.join(groups)}"
            if all(g.startswith(("decoder_", "mask_token")) for g in groups):
                text += " (an encoder-only checkpoint: the decoder starts from scratch)"
        return text


def load_checkpoint(model: nn.Module, path: str | PathLike[str], *, strict: bool = False) -> LoadReport:
    """Load a checkpoint file into ``model`` after checking every name and shape.

    Keys the file has but the model lacks, and shape mismatches, mean the file is for another
    architecture: nothing is loaded and a ``ValueError`` says which key differs. Keys the model
    has but the file lacks are allowed unless ``strict``: the typical case is an official
    encoder-only MAE pretrain file loaded into a full MAE, and the returned report lists them.

    Args:
        model: the model to fill.
        path: a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file (see
            [`read_state_dict`][refimpl.checkpoints.read_state_dict]).
        strict: also refuse a file that lacks some of the model's keys.

    Returns:
        A [`LoadReport`][refimpl.checkpoints.LoadReport]; ``str(report)`` is a one-line summary.

    Raises:
        FileNotFoundError, IsADirectoryError: as [`read_state_dict`][refimpl.checkpoints.read_state_dict]
            (both also ``ValueError``).
        ValueError: for a file that cannot be read (see ``read_state_dict``), unexpected keys,
            shape mismatches, a tensor of another dtype kind than the model's (integer for
            floating, or the reverse), a floating tensor holding NaN or infinity, no key in common,
            or (``strict``) missing keys; the model is unchanged. Each names the file and the
            first offending key.
    """
    return load_state(model, read_state_dict(path), str(path), strict=strict)


def load_state(model: nn.Module, state: Mapping[str, Tensor], source: str, *, strict: bool = False) -> LoadReport:
    """[`load_checkpoint`][refimpl.checkpoints.load_checkpoint] for a state dict already read (e.g. to pick the model from it).

    Args:
        model: the model to fill.
        state: tensors by official key, e.g. from [`read_state_dict`][refimpl.checkpoints.read_state_dict].
        source: what to call it in error messages (the file name).
        strict: also refuse a state that lacks some of the model's keys.

    Returns:
        A [`LoadReport`][refimpl.checkpoints.LoadReport].

    Raises:
        ValueError: as [`load_checkpoint`][refimpl.checkpoints.load_checkpoint] (wrong keys, shapes or
            dtype kinds, non-finite floating tensors); the model is unchanged.
    """
    path = source
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match {type(model).__name__}: {len(unexpected)} keys the model "
            f"does not have, e.g. {unexpected[:3]} (a checkpoint of another architecture?)"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(
                f"checkpoint {str(path)!r} does not match {type(model).__name__}: {key!r} has shape "
                f"{tuple(value.shape)} in the file, expected {tuple(own[key].shape)} (another model size?)"
            )
    order = [k for k in own if k in state]  # the model's order: the same first key from .pth and .safetensors
    for key in order:
        value, mine = state[key], own[key]
        if _kind(value.dtype) != _kind(mine.dtype):
            floating = mine.is_floating_point()
            cast = " (float16, bfloat16 and float64 files are cast; other kinds are not)" if floating else ""
            raise ValueError(
                f"checkpoint {str(path)!r} does not match {type(model).__name__}: {key!r} is {value.dtype} in the file "
                f"but {mine.dtype} in the model; expected {_kind(mine.dtype)} values{cast}"
            )
    for key in order:
        value = state[key]
        if (value.is_floating_point() or value.is_complex()) and not _finite(value):
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(
                f"checkpoint {str(path)!r}: {key!r} holds NaN or infinite values ({bad} of {value.numel()}); "
                f"expected finite weights: the file is broken (no released checkpoint holds NaN; a run that "
                f"diverged may save them)"
            )
    missing = sorted(set(own) - set(state))
    if not state or len(missing) == len(own):
        raise ValueError(f"checkpoint {str(path)!r} has no tensor in common with {type(model).__name__}")
    if strict and missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks {len(missing)} keys with strict=True, e.g. {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return LoadReport(loaded=sorted(state), missing=missing)


def _finite(value: Tensor) -> bool:
    """Whether a floating tensor holds no NaN or infinity: one pass of ``aminmax`` (NaN propagates), no bool copy."""
    if value.numel() == 0:
        return True
    if value.is_complex():
        return bool(torch.isfinite(value).all())
    low, high = torch.aminmax(value)
    return bool(torch.isfinite(low) & torch.isfinite(high))


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "boolean"
    if dtype.is_complex:
        return "complex"
    return "floating-point" if dtype.is_floating_point else "integer"


def save_checkpoint(model: nn.Module, path: str | PathLike[str]) -> None:
    """Save ``model``'s state dict as safetensors (``.safetensors``) or a plain ``torch.save`` dict.

    The file is written to a temporary name and renamed, so an interrupted save never leaves a
    half-written checkpoint under ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, tmp)
        else:
            torch.save({"model": state}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
