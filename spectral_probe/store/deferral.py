"""Hold SIGINT/SIGTERM while a run file is being closed, then deliver them.

Closing a run file is three writes that belong together: ``run_status``, the end of SWMR,
and the seal (the digests readers verify).  A Ctrl-C between them (it lands there when it
arrives just after a fit's last epoch, once the training's own handlers are gone) would
leave a file marked closed without its digests, which readers refuse until
:func:`~spectral_probe.store.recover` seals it.  :func:`deferred_signals` records such a
signal and delivers it, to whatever handler was installed before, once the block ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["deferred_signals"]

#: the signals held back (those a researcher or a batch scheduler sends to stop a run)
HELD = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


@contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Record SIGINT/SIGTERM inside the block; re-send them, in order, after the old handlers are back.

    Yields the list of signals received so far.  Outside the main thread nothing is
    installed (Python delivers signals to the main thread only, and only it may set handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in HELD}
    try:
        for s in HELD:
            signal.signal(s, lambda signum, frame: received.append(signum))
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in received:
            signal.raise_signal(signum)
