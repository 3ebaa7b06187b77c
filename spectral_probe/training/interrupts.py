"""SIGINT / SIGTERM during a run: finish the epoch, checkpoint, commit, and say how to continue.

:class:`InterruptGuard` is a training callback that, while :meth:`~InterruptGuard.installed`,
turns the first SIGINT (Ctrl-C) or SIGTERM (``kill``, a batch scheduler's time limit)
into a stop request: the epoch under way completes, the checkpointer saves the state
(it runs after the guard), the recorders commit what they buffered, and the run file
is closed with ``run_status`` 3 (interrupted).  :func:`~spectral_probe.training.runs.train_to_file`
then raises :class:`RunInterrupted`, which names what was saved.  A second signal stops
at once (``KeyboardInterrupt``): the writer still commits the rows it holds and the
epochs since the last checkpoint are recomputed by ``--resume``.  A signal that arrives after
the last epoch, while the writer closes and seals the file, is held until the file is sealed as
complete (:func:`~spectral_probe.store.deferral.deferred_signals`); :class:`RunInterrupted`
then says so (``complete``).
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from ..store.deferral import HELD
from .loop import ORDERS, Callback, TrainState

__all__ = ["InterruptGuard", "RunInterrupted", "SIGNALS"]

#: signals turned into a graceful stop (those the writer holds back while it closes a file)
SIGNALS = HELD


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after saving; ``str()`` says what the file holds.

    Attributes
    ----------
    path
        The run file.
    signal_name
        ``"SIGINT"`` or ``"SIGTERM"`` (``"KeyboardInterrupt"`` when raised without a signal).
    saved
        ``group -> (committed rows, last step)``.
    checkpoint
        Step of the last checkpoint (None: none; ``--resume`` then starts over).
    exit_code
        ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), as shells report it.
    complete
        True when the signal came after the last epoch, while the file was being closed: the run
        finished and its file is closed as complete (``run_status`` 1); nothing is left to resume.
    """

    def __init__(self, path, signal_name: str, saved: dict, checkpoint: int | None, graceful: bool,
                 complete: bool = False) -> None:
        self.path, self.signal_name, self.saved, self.checkpoint = path, signal_name, saved, checkpoint
        self.graceful, self.complete = graceful, complete
        number = getattr(signal, signal_name, signal.SIGINT) if signal_name.startswith("SIG") else signal.SIGINT
        self.exit_code = 128 + int(number)
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = []
        for group, (rows, last) in self.saved.items():
            if group == "checkpoints":
                continue
            parts.append(f"{group} {rows} row(s)" + (f" to step {last}" if rows else ""))
        where = (f"checkpoint at step {self.checkpoint} (resumable)" if self.checkpoint is not None
                 else "no checkpoint yet (--resume starts over)")
        how = "after finishing its epoch" if self.graceful else "at once"
        if self.complete:
            how, where = "after its last epoch", "the run is complete and its file closed (nothing to resume)"
        return (f"interrupted by {self.signal_name} {how}; '{self.path}' holds "
                + (", ".join(parts) or "no rows") + f"; {where}")


class InterruptGuard(Callback):
    """Training callback: the first SIGINT/SIGTERM requests a stop at the end of the epoch; the second raises.

    Use inside :meth:`installed` (the handlers are restored on exit).  Outside the
    main thread nothing is installed (Python delivers signals to the main thread only).
    Its ``order`` is ``stop``: the checkpointer of the same fit saves the epoch it stops.
    """

    order = ORDERS["stop"]

    def __init__(self, announce: bool = True) -> None:
        self.signum: int | None = None
        self.announce = announce

    @property
    def signal_name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
        self.signum = signum
        if self.announce:
            sys.stderr.write(f"\n{signal.Signals(signum).name}: stopping after this epoch and saving "
                             "(send it again to stop at once)\n")
            sys.stderr.flush()

    @contextmanager
    def installed(self) -> Iterator["InterruptGuard"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in SIGNALS}
        try:
            for s in SIGNALS:
                signal.signal(s, self._handle)
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.signum is not None and not state.stop:
            state.request_stop(f"interrupted by {self.signal_name}")
