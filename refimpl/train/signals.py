"""Stop cleanly on SIGTERM or Ctrl-C: finish the optimizer step, write a checkpoint, then exit.

A cluster ends a job (preemption, ``scancel``, the time limit, a Kubernetes pod deletion) by
sending SIGTERM to every process of the job and, after a grace period, SIGKILL. ``torchrun``
forwards the SIGTERM it receives to its workers and waits for them. The default action of
SIGTERM is to die on the spot, which loses every step since the last periodic checkpoint; with
[`StopOnSignal`][refimpl.train.signals.StopOnSignal] the training loop notices the signal after
the current optimizer step, all ranks agree on that step, and rank 0 writes a checkpoint there,
so the next start resumes exactly where the job stopped.

Ctrl-C (SIGINT) asks for the same clean stop, so pressing it during a demo on a laptop keeps every
finished step. A second Ctrl-C quits at once, like Python's default. "Second" means at least
[`FORCE_AFTER_S`][refimpl.train.signals.FORCE_AFTER_S] later: under ``torchrun`` each worker gets
the terminal's SIGINT and, a moment later, the copy ``torchrun`` forwards, and that pair must
still count as one request.

Data-loader workers get the signal too (it goes to the whole process group). They ignore it
([`ignore_stop_signals`][refimpl.train.signals.ignore_stop_signals]) so that the batch in flight
arrives; they still exit when the main process does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType, TracebackType

__all__ = ["STOP_SIGNALS", "FORCE_AFTER_S", "StopOnSignal", "ignore_stop_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""Signals that ask for a clean stop: a cluster ending the job, and Ctrl-C."""

FORCE_AFTER_S = 1.0
"""A Ctrl-C this many seconds or more after the first stop signal raises ``KeyboardInterrupt``."""


class StopOnSignal:
    """Context manager that turns SIGTERM and Ctrl-C into a flag the training loop polls.

    Inside the ``with`` block the first stop signal only records its name in ``received`` (and,
    for Ctrl-C, writes ``notice`` to stderr, so the person at the terminal knows it was heard).
    Repeated SIGTERMs (a process group signalled by both the cluster and ``torchrun``) change
    nothing; a Ctrl-C at least ``FORCE_AFTER_S`` after the first signal raises
    ``KeyboardInterrupt`` at once. The previous handlers come back on exit. Outside the main
    thread Python cannot install handlers, and the context does nothing.

    Args:
        signals: the signals to catch.
        notice: line written to stderr on the first Ctrl-C; ``None`` writes nothing (e.g. on
            every rank but 0).

    Examples:
        >>> import os
        >>> with StopOnSignal() as stop:
        ...     os.kill(os.getpid(), signal.SIGTERM)
        ...     stop.received
        'SIGTERM'
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS, notice: str | None = None) -> None:
        self.signals = signals
        self.notice = notice
        self.received: str | None = None
        """Name of the first stop signal received, ``None`` until then."""
        self._received_at = 0.0
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.received is None:
            self.received, self._received_at = signal.Signals(signum).name, now
            if signum == signal.SIGINT and self.notice:
                # os.write, not print: a handler may run in the middle of another write to stderr.
                os.write(2, f"\n{self.notice}\n".encode())
        elif signum == signal.SIGINT and now - self._received_at >= FORCE_AFTER_S:
            raise KeyboardInterrupt

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

    PyTorch watches its workers: one killed by SIGTERM (or ended by Ctrl-C) makes the main process raise at once,
    before it can write its checkpoint. Ignoring the signal is safe: a worker notices when its
    parent is gone and exits.

    Args:
        worker_id: the worker's index (unused; the ``worker_init_fn`` signature).
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
