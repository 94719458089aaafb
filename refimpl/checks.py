"""Argument checks for the public entry points: one wording and one exception type per mistake.

The concept modules check user input once, where it enters (a public function, a model's
constructor or ``forward``), with these helpers; the functions they call trust them. Each check
returns the value, normalised (a NumPy integer becomes an ``int``), or raises:

- ``TypeError``: the wrong kind of value: a float where an int is expected, a list where a
  tensor is expected, integer images where floating ones are expected;
- ``ValueError``: the right kind with a wrong value: out of range, wrong shape, NaN.

Every message names the argument, the value it got and what is expected, e.g.
``patch_size=0 is below 1; expected an int >= 1 such as 16``.

Checks that read tensor *values* (NaN in the masking noise, say) would make a GPU wait for
the host; they run in eager mode and are skipped while ``torch.compile`` traces, where a
compiled training step must not synchronise.

**Non-finite values: one policy.** A NaN or an infinity is never passed along in silence:

- *User input is refused at the door.* What a user hands a public entry (images into a ViT,
  an MAE, a Hiera or an MAE-Hiera; the inputs of a KAN; masking noise; knots; positions) must
  be finite: a ``ValueError`` names the argument (``imgs holds NaN or infinite values; expected
  finite values``). It is checked once per call, where the value enters
  ([`images`][refimpl.checks.images] does it for every model), never again in inner layers,
  and with [`finite`][refimpl.checks.finite] or [`holds`][refimpl.checks.holds], which never
  make the host wait for a GPU. A NaN image would otherwise come out as a NaN loss or NaN
  features, far from its cause.
- *Hyper-parameters are real numbers in a range* ([`real`][refimpl.checks.real] refuses NaN, and
  infinity where the range is open), so a ratio, scale, threshold or epsilon of NaN is refused
  when the model or the call is built, not discovered in its output.
- *Weights are checked at load.* [`refimpl.checkpoints.load_checkpoint`][refimpl.checkpoints.load_checkpoint]
  refuses a state dict with a non-finite floating tensor (no released checkpoint holds one; such
  a file is broken, and every output of the model would be NaN), naming the file and the first
  such key; the model is left unchanged.
- *What the computation produces is not checked:* NaN that arises in training (a diverging run)
  is the trainer's to detect, from the loss.

Pure rearrangements (``patchify``, ``unshuffle``, ``unroll``) move values without reading them
and take any floats: NaN in, NaN out at the same place, which is not a wrong answer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .paths import path_problem  # re-exported: the commands' path check lives where torch is not imported

__all__ = [
    "choice",
    "interval",
    "finite",
    "floating",
    "fraction",
    "holds",
    "images",
    "integer",
    "integer_tensor",
    "noise",
    "pair",
    "path_problem",
    "real",
    "sizes",
    "tensor",
]


def _got(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def integer(value: object, name: str, minimum: int = 1, example: str = "16", multiple: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum`` and a multiple of ``multiple`` (``bool`` is refused).

    Examples:
        >>> integer(3, "depth")
        3
        >>> integer(0, "patch_size")
        Traceback (most recent call last):
        ...
        ValueError: patch_size=0 is not positive; expected an int >= 1 such as 16
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_got(value)}; expected an int >= {minimum} such as {example}")
    if multiple > 1 and (value < minimum or value % multiple):
        raise ValueError(f"{name}={value!r} is not a positive multiple of {multiple}; expected e.g. {example}")
    if value < minimum:
        problem = "is not positive" if minimum == 1 else f"is below {minimum}"
        raise ValueError(f"{name}={value!r} {problem}; expected an int >= {minimum} such as {example}")
    return int(value)


def real(value: object, name: str, low: float = -math.inf, high: float = math.inf, *,
         low_open: bool = False, high_open: bool = False, example: str = "0.5") -> float:
    """``value`` as a ``float`` if it is a real number in the interval (NaN never is; ``bool`` is refused).

    Args:
        value: the argument.
        name: its name, for the message.
        low: the interval's lower end.
        high: its upper end.
        low_open: whether ``low`` itself is excluded.
        high_open: whether ``high`` itself is excluded.
        example: a valid value, for the message.

    Examples:
        >>> real(0.5, "mlp_ratio", 0, low_open=True)
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_got(value)}; expected a number such as {example}")
    number = float(value)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (above and below):  # NaN fails both
        if math.isinf(high) and not math.isnan(number):
            problem = f"is {'not above' if low_open else 'below'} {low:g}"
        else:
            problem = f"is outside {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name}={value!r} {problem}; expected a number such as {example}")
    return number


def fraction(value: object, name: str, zero: bool = True, example: str = "0.75") -> float:
    """``value`` as a ``float`` in ``[0, 1)`` (``(0, 1)`` when ``zero`` is false): a mask ratio.

    Examples:
        >>> import numpy as np
        >>> fraction(np.float32(0.5), "mask_ratio")
        0.5
        >>> fraction(1.0, "mask_ratio")
        Traceback (most recent call last):
        ...
        ValueError: mask_ratio=1.0 is outside [0, 1); expected a number such as 0.75
    """
    return real(value, name, 0.0, 1.0, low_open=not zero, high_open=True, example=example)


def interval(value: object, name: str, example: str = "(-1, 1)") -> tuple[float, float]:
    """``value`` as ``(lo, hi)``: two finite real numbers with ``lo < hi``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi), got {value!r}; expected e.g. {example}")
    lo, hi = value
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (lo, hi)):
        raise TypeError(f"{name}={value!r} must hold two real numbers; expected e.g. {example}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name}={value!r} needs finite lo < hi; expected e.g. {example}")
    return float(lo), float(hi)


def choice(value: object, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; expected one of {', '.join(map(repr, choices))}")
    return value


def sizes(value: object, name: str, length: int | Sequence[int] = 2, minimum: int = 1,
          example: str = "(224, 224)") -> tuple[int, ...]:
    """``value`` as a tuple of ints ``>= minimum`` of the given length (or one of the given lengths).

    Examples:
        >>> sizes([14, 14], "grid_size")
        (14, 14)
        >>> sizes(64, "input_size", (2, 3))
        Traceback (most recent call last):
        ...
        ValueError: input_size=64 is not a tuple of 2 or 3 ints; expected e.g. (224, 224)
    """
    lengths = (length,) if isinstance(length, int) else tuple(length)
    if not isinstance(value, (tuple, list, torch.Size)) or len(value) not in lengths:
        shown = tuple(value) if isinstance(value, (list, torch.Size)) else value
        what = "a pair" if lengths == (2,) else f"a tuple of {' or '.join(map(str, lengths))} ints"
        raise ValueError(f"{name}={shown!r} is not {what}; expected e.g. {example}")
    return tuple(integer(v, f"{name}[{i}]", minimum, example) for i, v in enumerate(value))


def pair(value: object, name: str, example: str = "(14, 14)") -> tuple[int, int]:
    """``value`` as ``(h, w)``, two positive ints."""
    h, w = sizes(value, name, 2, 1, example)
    return h, w


def tensor(value: object, name: str, layout: str, ndim: int | None = None, *, finite_values: bool = False) -> Tensor:
    """``value`` if it is a tensor (with ``ndim`` dimensions, when given).

    Args:
        value: the argument.
        name: its name, for the message.
        layout: the expected shape in words, e.g. ``"(B, L, D)"``.
        ndim: the expected number of dimensions.
        finite_values: also refuse NaN and infinity (see [`finite`][refimpl.checks.finite]), in one check.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} has shape {tuple(value.shape)} ({value.ndim}-D); "
                         f"expected a {ndim}-D tensor of shape {layout}")
    return finite(value, name) if finite_values else value


def floating(value: object, name: str, layout: str, ndim: int | None = None, why: str = "", *,
             finite_values: bool = False) -> Tensor:
    """A tensor with a floating-point dtype (see [`tensor`][refimpl.checks.tensor]); with
    ``finite_values``, also free of NaN and infinity (see [`finite`][refimpl.checks.finite]), in one check."""
    x = tensor(value, name, layout, ndim)
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; expected a floating-point tensor{why}")
    return finite(x, name) if finite_values else x


def integer_tensor(value: object, name: str, layout: str, ndim: int | None = None) -> Tensor:
    """A tensor of integer indices (see [`tensor`][refimpl.checks.tensor])."""
    x = tensor(value, name, layout, ndim)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} has dtype {x.dtype}; expected integer indices (torch.long)")
    return x


def finite(x: Tensor, name: str) -> Tensor:
    """``x`` if it holds no NaN or infinity (a NaN has no place in a sort order, say).

    The check never makes the host wait for a GPU: it is ``torch._assert_async``, which on the
    CPU fails at once (raised as this ``ValueError``) and on a GPU fails the device later, as
    PyTorch's own index checks do. Skipped while ``torch.compile`` traces, and for tensors on
    the ``meta`` device, which have no values.
    """
    if torch.compiler.is_compiling() or x.numel() == 0 or x.is_meta:
        return x
    message = f"{name} holds NaN or infinite values; expected finite values"
    if x.device.type != "cpu":
        torch._assert_async(torch.isfinite(x).all(), message)
        return x
    try:
        torch._assert_async(torch.isfinite(x).all(), message)
    except RuntimeError:
        raise ValueError(message) from None
    return x


def noise(value: object, name: str, layout: str, shape: tuple[int, ...] | None = None) -> Tensor:
    """Masking noise: a finite floating 2-D tensor (of ``shape``, when given) whose argsort orders the tokens.

    One check of ``name``, however many properties it tests: a NaN has no place in a sort order,
    and (with [`finite`][refimpl.checks.finite]) the check never makes the host wait for a GPU.

    Args:
        value: the argument.
        name: its name, for the message.
        layout: the expected shape in words, e.g. ``"(B, L)"``.
        shape: the expected shape, e.g. ``(B, L)`` of the tokens it will shuffle.

    Examples:
        >>> noise(torch.rand(2, 3), "noise", "(B, L)", (2, 4))
        Traceback (most recent call last):
        ...
        ValueError: noise has shape (2, 3); expected (B, L) = (2, 4)
    """
    x = floating(value, name, layout, ndim=2, why=" (e.g. torch.rand) whose argsort defines the shuffle")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {layout} = {tuple(shape)}")
    return finite(x, name)


def holds(ok: Tensor, message: str, detail: Callable[[], str] | None = None) -> None:
    """Refuse unless every element of the boolean tensor ``ok`` is true, without making the host wait for a GPU.

    The general form of [`finite`][refimpl.checks.finite]: on the CPU it raises
    ``ValueError(message)`` at once, with ``detail()`` (called only then, to describe the
    offending values) in place of ``message`` when given; on a GPU it is ``torch._assert_async``,
    which fails the device later with ``message``. Skipped while ``torch.compile`` traces.

    Examples:
        >>> holds(torch.tensor([True, True]), "never shown")
        >>> holds(torch.tensor([1.0, 0.5]).diff() >= 0, "knots decrease", lambda: "knots [1.0, 0.5] decrease")
        Traceback (most recent call last):
        ...
        ValueError: knots [1.0, 0.5] decrease
    """
    if torch.compiler.is_compiling() or ok.numel() == 0 or ok.is_meta:
        return
    if ok.device.type != "cpu":
        torch._assert_async(ok.all(), message)
    elif not bool(ok.all()):
        raise ValueError(detail() if detail is not None else message)


def images(value: object, name: str, layout: str, ndim: int | None, dtype: torch.dtype, nonempty: bool = False,
           prepare: str = "refimpl.train.data.normalize_images") -> Tensor:
    """Images for a model: a finite floating tensor with ``ndim`` dimensions in the model's dtype.

    The caller checks the channels and size against its model; this checks what every model
    needs: a tensor, floating (not ``uint8`` pixels), in the parameters' dtype unless
    ``torch.autocast`` is on (it casts each op's 16- and 32-bit inputs itself), optionally
    not empty, and finite (with [`finite`][refimpl.checks.finite]: no NaN or infinity, which
    would come out as a NaN loss or NaN features; on a GPU the check does not wait). A model
    calls it once per call, at its public entry, and its inner layers trust the result.

    Args:
        value: the argument.
        name: its name, for the message.
        layout: the expected shape in words, e.g. ``"(B, 3, 224, 224)"``.
        ndim: 4 for images, 5 for video clips; ``None``: the caller checks it.
        dtype: the model's parameter dtype.
        nonempty: refuse a batch of zero images (a loss averaged over none is NaN).
        prepare: what turns integer pixels into the model's input, named in the message.
    """
    x = tensor(value, name, layout, ndim)
    if nonempty and x.shape[0] == 0:
        raise ValueError(f"{name} has shape {tuple(x.shape)}, a batch of 0 images; expected at least one")
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; expected floating-point images (normalise integer "
                        f"pixels first, e.g. with {prepare})")
    if x.dtype != dtype and not (_autocast_on(x.device.type) and x.dtype != torch.float64):  # it leaves float64 alone
        raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters are {dtype}; expected "
                        f"{name}.to({dtype}) (or a forward pass under torch.autocast)")
    return finite(x, name)


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device without autocast (e.g. "meta", for counting FLOPs)
        return False
