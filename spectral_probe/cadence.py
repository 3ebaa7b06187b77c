"""When periodic training callbacks act: one step convention for probes, NTK snapshots and the watch.

Convention
----------
A callback's *step* is the number of completed parameter updates (epochs):
``completed_epochs(state) == state.epoch + 1`` in both callback hooks of
:func:`~spectral_probe.training.fit`:

* in ``on_epoch_start`` it is the index of the epoch about to run, and the
  model is the one evaluated in that epoch's loss (step 0 = the initial
  model).  :class:`~spectral_probe.probes.Probe` and
  :class:`~spectral_probe.bottleneck.BottleneckWatch` act here;
* in ``on_epoch_end`` it counts the epoch just finished (step ``M`` = after
  ``M`` updates).  :class:`~spectral_probe.ntk.NTKSnapshot` acts here (and at
  ``on_fit_start`` for step 0).

A callback with ``every = M`` acts on the steps ``0, M, 2M, ...``
(:func:`is_due`).  The run-file recorder flushes its buffered epochs in blocks
of ``every`` rows, which under :func:`fit` lands on the same steps.
"""

from __future__ import annotations

from typing import Any

from .validation import positive_int

__all__ = ["completed_epochs", "is_due", "check_every"]


def completed_epochs(state: Any) -> int:
    """Parameter updates completed when a callback runs (``state.epoch + 1``; 0 before the first epoch)."""
    return state.epoch + 1


def is_due(step: int, every: int) -> bool:
    """True when a callback with cadence ``every`` acts at ``step`` (``0, every, 2 every, ...``)."""
    return step % every == 0


def check_every(every: Any, name: str = "every") -> int:
    """``every`` as a positive ``int`` (``ValueError`` otherwise), checked when a callback is created."""
    return positive_int(every, name)
