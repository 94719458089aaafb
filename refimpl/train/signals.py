"""Stop cleanly on SIGTERM: finish the optimizer step, write a checkpoint, then exit.

A cluster ends a job (preemption, ``scancel``, the time limit, a Kubernetes pod deletion) by
sending SIGTERM to every process of the job and, after a grace period, SIGKILL. ``torchrun``
forwards the SIGTERM it receives to its workers and waits for them. The default action of
SIGTERM is to die on the spot, which loses every step since the last periodic checkpoint; with
[`StopOnSignal`][refimpl.train.signals.StopOnSignal] the training loop notices the signal after
the current optimizer step, all ranks agree on that step, and rank 0 writes a checkpoint there,
so the next start resumes exactly where the job stopped.

Data-loader workers get the signal too (it goes to the whole process group). They ignore it
([`ignore_stop_signals`][refimpl.train.signals.ignore_stop_signals]) so that the batch in flight
arrives; they still exit when the main process does.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

__all__ = ["STOP_SIGNALS", "StopOnSignal", "ignore_stop_signals"]

STOP_SIGNALS = (signal.SIGTERM,)
"""Signals that ask for a clean stop. SIGINT (Ctrl-C) is left alone: it interrupts at once."""


class StopOnSignal:
    """Context manager that turns SIGTERM into a flag the training loop polls.

    Inside the ``with`` block a SIGTERM only records its name in ``received``; repeated signals
    (a process group signalled by both the cluster and ``torchrun``) change nothing. The previous
    handlers come back on exit. Outside the main thread Python cannot install handlers, and the
    context does nothing.

    Examples:
        >>> import os
        >>> with StopOnSignal() as stop:
        ...     os.kill(os.getpid(), signal.SIGTERM)
        ...     stop.received
        'SIGTERM'
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: str | None = None
        """Name of the first stop signal received, ``None`` until then."""
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn`` for data-loader workers: let the main process decide when to stop.

    PyTorch watches its workers: one killed by SIGTERM makes the main process raise at once,
    before it can write its checkpoint. Ignoring the signal is safe: a worker notices when its
    parent is gone and exits.

    Args:
        worker_id: the worker's index (unused; the ``worker_init_fn`` signature).
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
