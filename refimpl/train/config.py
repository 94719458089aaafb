"""The pretraining config: one dataclass that travels from the command line to the checkpoint.

[`PretrainConfig`][refimpl.train.config.PretrainConfig] holds every choice of a run. Its defaults
are the MAE recipe (MAE App. A.1 and Table 8, and the official ``PRETRAIN.md``) for
everything that does not depend on the scale of the run: AdamW with ``betas=(0.9, 0.95)``,
weight decay 0.05, base learning rate 1.5e-4 scaled by ``effective batch / 256``, a cosine
schedule after a linear warmup, ``norm_pix_loss``, mask ratio 0.75. The *scale* of the run
(model, image size, batch, epochs) defaults to a demo that learns on a laptop CPU in a few
minutes: ``mae_vit_tiny_patch16`` at 64 px with 8 px patches, batch 64, 20 epochs of random crops
from scikit-image's photographs. The paper's scale is a config file away (see the guide).

``model`` may also name an image MAE-Hiera of [`refimpl.hiera`][refimpl.hiera] (``HIERA_MODELS``):
the same recipe and trainer, with the mask drawn over 32 x 32-pixel mask units. Its patch
embedding is fixed, so ``patch_size`` must be ``None`` (the command line sets that for you) and
``img_size`` a multiple of 32.

Precedence, lowest first: the dataclass defaults, a config file (JSON or YAML, keys = field
names), command-line flags. [`resolve_config`][refimpl.train.config.resolve_config] does the
merge; the frozen dataclass checks every value once, when it is built.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from ..checks import path_problem

__all__ = [
    "HIERA_MODELS",
    "HIERA_UNIT_PX",
    "MODELS",
    "PRECISIONS",
    "RESUME_KEYS",
    "VIT_MODELS",
    "ConfigError",
    "PretrainConfig",
    "load_config_file",
    "resolve_config",
]

VIT_MODELS = ("mae_vit_tiny_patch16", "mae_vit_base_patch16", "mae_vit_large_patch16", "mae_vit_huge_patch14")
"""Factory names in [`refimpl.mae`][refimpl.mae]: MAE with a plain ViT encoder."""

HIERA_MODELS = ("mae_hiera_tiny_224", "mae_hiera_small_224", "mae_hiera_base_224", "mae_hiera_base_plus_224",
                "mae_hiera_large_224", "mae_hiera_huge_224")
"""Factory names in [`refimpl.hiera`][refimpl.hiera]: image MAE-Hiera (the video ``*_16x224`` ones are not
trained here)."""

MODELS = VIT_MODELS + HIERA_MODELS
"""Every name ``model`` may take."""

HIERA_UNIT_PX = 32
"""Side of a Hiera mask unit in pixels (patch stride 4 x 8 tokens): ``img_size`` must be a multiple of it."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Values of ``precision``: the dtype the forward pass autocasts to (parameters stay float32)."""


class ConfigError(ValueError):
    """A config value, file or combination that cannot run; the message names the field."""


@dataclass(frozen=True)
class PretrainConfig:
    """Every choice of a pretraining run (what ``mae-pretrain --help`` lists, flag for field).

    Frozen, and checked once when built: a config that exists is valid, so nothing after this
    checks it again. A changed copy is ``dataclasses.replace(config, epochs=5)``, checked in turn.

    Examples:
        >>> config = PretrainConfig(batch_size=512, accum_steps=2)
        >>> config.peak_lr()  # 1.5e-4 * 512 / 256
        0.0003
        >>> PretrainConfig(mask_ratio=1.0)
        Traceback (most recent call last):
        ...
        refimpl.train.config.ConfigError: mask_ratio=1.0; expected a number in (0, 1): the loss is a mean over the removed patches, so some must be removed
    """

    # Model.
    model: str = "mae_vit_tiny_patch16"
    """A factory of [`refimpl.mae`][refimpl.mae] (ViT) or an image MAE-Hiera of [`refimpl.hiera`][refimpl.hiera], one of ``MODELS``."""
    img_size: int = 64
    """Input side in pixels (the paper: 224). 64 px keeps the CPU demo fast. Hiera: a multiple of 32."""
    patch_size: int | None = 8
    """ViT only: patch side; ``None`` keeps the factory's (16, or 14 for huge). 8 px gives the 64 px demo 64 patches. Hiera: must be ``None`` (the command line sets it when not given)."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the factory, e.g. ``{"depth": 1, "embed_dim": 32}`` for tests."""
    norm_pix_loss: bool = True
    """Reconstruct per-patch normalised pixels (MAE §3, Table 1d; the official recipe turns it on)."""
    mask_ratio: float = 0.75
    """Fraction of patches (Hiera: mask units) removed; MAE uses 0.75, Hiera 0.6 for images (Hiera Table 3b)."""

    # Data.
    data: str | None = None
    """Image folder (``ImageFolder`` layout or flat); ``None`` = crops of scikit-image's photographs."""
    crops_per_photo: int = 64
    """Embedded data only: random crops per photograph in one epoch."""
    check_images: bool = True
    """Open every file's header when scanning ``data`` and skip the unreadable ones."""

    # Optimisation (the recipe).
    batch_size: int = 64
    """Effective batch: images per optimizer step, over all processes and accumulation steps (paper: 4096)."""
    accum_steps: int = 1
    """Gradient accumulation: forward/backward passes per optimizer step."""
    epochs: int = 20
    """Length of the schedule in epochs (paper: 800 or 1600)."""
    warmup_epochs: float = 2.0
    """Linear warmup, in epochs (paper: 40)."""
    warmup_steps: int | None = None
    """Linear warmup in optimizer steps; overrides ``warmup_epochs`` when set."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (the schedule still spans ``epochs``); a checkpoint is written."""
    blr: float = 1.5e-4
    """Base learning rate; the peak is ``blr * batch_size / 256`` (the linear scaling rule)."""
    lr: float | None = None
    """Absolute peak learning rate; overrides ``blr`` when set."""
    min_lr: float = 0.0
    """Learning rate at the end of the cosine."""
    weight_decay: float = 0.05
    """AdamW weight decay on weight matrices only (not on norms, biases, tokens)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (MAE uses 0.95, not 0.999, for the second moment)."""
    seed: int = 0
    """Seeds the model init, the data order, the augmentation and the masks."""

    # Output.
    output_dir: str = "runs/mae-pretrain"
    """Checkpoints, ``config.json``, ``metrics.jsonl`` and figures go here; an existing run here is resumed."""
    resume: str | None = None
    """A checkpoint file to resume from; ``None`` = the latest one in ``output_dir``, if any."""
    save_every: int = 100
    """Write a checkpoint every this many optimizer steps (and always at the end)."""
    keep_last: int = 3
    """Checkpoints kept in ``output_dir``; older ones are deleted."""
    log_every: int = 10
    """Write one line of metrics every this many optimizer steps."""
    figure_every: int = 100
    """Save a reconstruction figure every this many optimizer steps (0 = only at the end)."""
    figure_images: int = 6
    """Images shown in a reconstruction figure."""
    progress: bool = True
    """Show a tqdm progress bar (rank 0 only)."""
    tensorboard: bool = True
    """Also log to TensorBoard when ``torch.utils.tensorboard`` is importable."""

    # Devices.
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``."""
    precision: str = "auto"
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 adds a gradient scaler); ``"auto"`` = bf16 on a CUDA device that supports it, fp16 on an older one, fp32 on CPU."""
    compile: bool | None = None
    """``torch.compile`` the model; ``None`` = on for CUDA, off for CPU."""
    fsdp: bool = False
    """With several processes, shard parameters, gradients and AdamW state across them (FSDP2, one unit per block) instead of replicating them (DDP): for models too large for DDP. Not with fp16."""
    num_workers: int | None = None
    """Data-loading processes per rank; ``None`` = 0 on CPU, and on CUDA the cores this process may use divided among the node's ranks, less one for the training loop, at most 16."""

    def __post_init__(self) -> None:
        """Check every field, the one place they are checked; raise on the first bad one.

        ``betas`` given as a list (JSON, YAML) is kept as a tuple.

        Raises:
            ConfigError: for a value of the wrong type or out of range, or fields that do not go together.
        """
        self._check_model()
        self._check_counts()
        self._check_numbers()
        self._check_choices()
        object.__setattr__(self, "betas", tuple(self.betas))  # frozen: the one normalisation, after its check

    def _check_model(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"model={self.model!r}; expected one of {', '.join(MODELS)}")
        if self.model in HIERA_MODELS and self.patch_size is not None:
            raise ConfigError(f"patch_size={self.patch_size!r} with model={self.model!r}; Hiera's patch embedding is "
                              f"fixed (stride 4), use patch_size=None")

    def _check_counts(self) -> None:
        for name in ("img_size", "batch_size", "accum_steps", "epochs", "crops_per_photo", "save_every",
                     "keep_last", "log_every", "figure_images"):
            _positive_int(getattr(self, name), name)
        for name in ("patch_size", "max_steps"):
            if getattr(self, name) is not None:
                _positive_int(getattr(self, name), name)
        if self.num_workers is not None:
            _nonnegative_int(self.num_workers, "num_workers")
        if self.warmup_steps is not None:
            _nonnegative_int(self.warmup_steps, "warmup_steps")
        _nonnegative_int(self.figure_every, "figure_every")
        _nonnegative_int(self.seed, "seed")
        if self.seed >= 2**63:  # torch.manual_seed takes a signed 64-bit seed
            raise ConfigError(f"seed={self.seed}; expected an integer in [0, 2**63)")
        for name in ("norm_pix_loss", "check_images", "progress", "tensorboard", "fsdp", "compile"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (name == "compile" and value is None):
                also = ", or null for the default" if name == "compile" else ""
                raise ConfigError(f"{name}={value!r}; expected true or false{also}")

    def _check_numbers(self) -> None:
        if not _is_number(self.mask_ratio) or not 0 < self.mask_ratio < 1:
            # 0 removes nothing: the loss, a mean over the removed patches, would be 0/0.
            raise ConfigError(f"mask_ratio={self.mask_ratio!r}; expected a number in (0, 1): the loss is a mean "
                              f"over the removed patches, so some must be removed")
        for name in ("blr", "min_lr", "weight_decay", "warmup_epochs"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or not math.isfinite(value):
                raise ConfigError(f"{name}={value!r}; expected a finite number >= 0")
        if self.lr is not None and (not _is_number(self.lr) or not self.lr > 0 or not math.isfinite(self.lr)):
            raise ConfigError(f"lr={self.lr!r}; expected a finite number > 0, or None to use blr")
        if (not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2
                or not all(_is_number(b) and 0 <= b < 1 for b in self.betas)):
            raise ConfigError(f"betas={self.betas!r}; expected two numbers in [0, 1), e.g. (0.9, 0.95)")

    def _check_choices(self) -> None:
        if not isinstance(self.model_kwargs, dict) or not all(isinstance(k, str) for k in self.model_kwargs):
            raise ConfigError(f"model_kwargs={self.model_kwargs!r}; expected a dict of keyword arguments")
        reserved = {"img_size", "input_size", "patch_size", "norm_pix_loss"} & set(self.model_kwargs)
        if reserved:
            raise ConfigError(f"model_kwargs sets {sorted(reserved)}; use the config fields img_size, patch_size, "
                              f"norm_pix_loss instead")
        # A changed patch_stride or mask_unit_size changes the unit: the model's own check applies at build time.
        if (self.model in HIERA_MODELS and self.img_size % HIERA_UNIT_PX
                and not {"patch_stride", "mask_unit_size"} & set(self.model_kwargs)):
            raise ConfigError(f"img_size={self.img_size} with model={self.model!r}; expected a multiple of "
                              f"{HIERA_UNIT_PX} (patch stride 4 x mask unit 8 tokens), e.g. 224")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device={self.device!r}; expected 'auto', 'cpu' or 'cuda'")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r}; expected one of {', '.join(map(repr, PRECISIONS))}")
        if self.fsdp and self.precision == "fp16":
            raise ConfigError("fsdp=True with precision='fp16'; expected precision 'bf16' or 'fp32' with FSDP "
                              "(its sharded gradients would need a sharded gradient scaler)")
        if self.batch_size % self.accum_steps:
            raise ConfigError(
                f"batch_size={self.batch_size} is not divisible by accum_steps={self.accum_steps}; "
                f"expected the effective batch to split into equal micro-batches"
            )
        for name in ("data", "resume"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name}={value!r}; expected a path string or None")
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ConfigError(f"output_dir={self.output_dir!r}; expected a non-empty path string")

    def peak_lr(self) -> float:
        """The learning rate at the end of warmup: ``lr`` if set, else ``blr * batch_size / 256``."""
        return self.lr if self.lr is not None else self.blr * self.batch_size / 256

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists), as saved in ``config.json`` and checkpoints."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> PretrainConfig:
        """Build a config from field values, refusing unknown keys.

        Args:
            values: field name to value.
            source: where the values come from, for error messages.

        Returns:
            The config, checked.

        Raises:
            ConfigError: naming the first unknown key, or the first invalid value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names, key=str)
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r}; expected field names of PretrainConfig, e.g. batch_size")
        return cls(**values)


RESUME_KEYS = (
    "model", "img_size", "patch_size", "model_kwargs", "norm_pix_loss", "mask_ratio", "data", "crops_per_photo",
    "batch_size", "accum_steps", "epochs", "warmup_epochs", "warmup_steps", "blr", "lr", "min_lr",
    "weight_decay", "betas", "seed",
)
"""Fields that must equal the checkpoint's for a resume to continue the same run exactly.

The others (output, logging, devices, precision, DDP or FSDP, ``max_steps``, workers) may change between sessions: the
data each optimizer step sees does not depend on them, nor on the number of processes.
"""


def load_config_file(path: str | PathLike[str]) -> dict[str, Any]:
    """Read a JSON (``.json``) or YAML (``.yaml``/``.yml``) mapping of field values, strictly.

    A key written twice (``epochs: 1`` ... ``epochs: 50``) is refused rather than won by the last
    one, in both formats; so are YAML anchors, aliases and merge keys (``&a``, ``*a``, ``<<``),
    which a config needs none of and which can make a few hundred bytes expand to billions of
    values. The file must be UTF-8 (a leading byte-order mark is allowed).

    Args:
        path: the file.

    Returns:
        Field name to value, not yet checked against the dataclass.

    Raises:
        ConfigError: one line naming the file (and for YAML the line) if the file is not a
            readable regular file, not UTF-8, cannot be parsed, repeats a key, uses an alias,
            or is not a mapping.
    """
    path = Path(path)
    problem = path_problem(path, "file")
    if problem:
        raise ConfigError(f"config file {str(path)!r} {problem}")
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"config file {str(path)!r}: expected a .json, .yaml or .yml file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text (byte {data[exc.start]:#04x} on line {line}); "
                          f"save it as UTF-8") from None
    try:
        values = _parse_yaml(text) if path.suffix in (".yaml", ".yml") else _parse_json(text)
    except _ParseError as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {str(path)!r} nests lists or mappings too deeply; a config needs two levels") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {str(path)!r} holds a {type(values).__name__}; expected a mapping of field: value")
    return values


class _ParseError(ValueError):
    """A config file's syntax, repeated key or alias; the message starts with the line where known."""


def _parse_json(text: str) -> Any:
    def refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in pairs:
            if key in values:
                raise _ParseError(f"key {key!r} is repeated; expected each key once")
            values[key] = value
        return values

    try:
        return json.loads(text, object_pairs_hook=refuse_repeats)
    except json.JSONDecodeError as exc:
        raise _ParseError(f"line {exc.lineno}: {exc.msg} (not valid JSON)") from None


def _parse_yaml(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise _ParseError(f"{where}{', '.join(filter(None, (exc.context, exc.problem)))} (not valid YAML)") from None
    except yaml.YAMLError as exc:
        raise _ParseError(f"{' '.join(str(exc).split())} (not valid YAML)") from None
    finally:
        loader.dispose()


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's ``SafeLoader`` that refuses repeated keys, anchors, aliases and merge keys, naming the line.

    Aliases are refused while the document is composed, before any value is built, so an alias
    bomb costs nothing.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise _ParseError(f"line {event.start_mark.line + 1}: {kind}{event.anchor}; anchors and aliases "
                              f"are not allowed in a config, write each value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _ParseError(f"line {line}: merge key '<<' is not allowed in a config; write each key out")
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in first_line
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                break
            if repeated:
                raise _ParseError(f"line {line}: key {key!r} is repeated (first on line {first_line[key]}); "
                                  f"expected each key once")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def resolve_config(file_values: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """Merge defaults < config-file values < overrides (flags) and validate the result.

    Args:
        file_values: values read by [`load_config_file`][refimpl.train.config.load_config_file].
        overrides: values given on the command line (only the flags the user passed).

    Returns:
        The validated config.

    Raises:
        ConfigError: for an unknown key or an invalid value.

    Examples:
        >>> resolve_config({"batch_size": 128, "epochs": 5}, {"epochs": 7}).epochs
        7
        >>> resolve_config({}, {"model": "mae_hiera_tiny_224", "img_size": 224}).patch_size is None
        True
    """
    merged = {**(file_values or {}), **(overrides or {})}
    if merged.get("model") in HIERA_MODELS and "patch_size" not in merged:
        merged["patch_size"] = None  # the ViT demo's default 8 means nothing to Hiera
    return PretrainConfig.from_dict(merged)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # NumPy scalars too


def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r}; expected a positive integer")


def _nonnegative_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name}={value!r}; expected an integer >= 0")
