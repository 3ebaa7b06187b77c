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
(:func:`is_due`).  The run-file recorder and the TensorBoard logger copy the
loop's losses to the host when the completed epochs reach a multiple of their
``every`` (:class:`~spectral_probe.training.recording.EpochBlocks`), on the same
steps in a resumed fit as in a fresh one.

Explicit schedules
------------------
``every`` may also be a :class:`Steps` -- an explicit, sorted set of steps -- for
callbacks that accept one (:class:`~spectral_probe.probes.Probe`,
:class:`~spectral_probe.ntk.NTKSnapshot`): :func:`log_steps` probes densely
early and sparsely late, where training changes fast and then slowly::

    Probe("*", every=log_steps(10_000, 30))      # 0, 1, 2, 3, 4, 6, 8, 11, ... 10000
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .validation import positive_int

__all__ = ["completed_epochs", "is_due", "check_every", "Steps", "log_steps"]


class Steps(tuple):
    """An explicit schedule: the sorted, distinct steps at which a callback acts (a tuple of ints).

    ``step in schedule`` is a set lookup; as a tuple it is JSON- and HDF5-attribute friendly.
    """

    def __new__(cls, steps: Iterable[int]) -> "Steps":
        values = sorted({int(s) for s in steps})
        if not values or values[0] < 0:
            raise ValueError(f"a step schedule needs at least one step, all >= 0, got {list(steps)!r}")
        obj = super().__new__(cls, values)
        obj._set = frozenset(values)
        return obj

    def __contains__(self, step) -> bool:
        return step in self._set

    def __reduce__(self):
        return (Steps, (tuple(self),))

    def __repr__(self) -> str:
        shown = ", ".join(map(str, self[:6])) + (f", ... {self[-1]}" if len(self) > 6 else "")
        return f"Steps([{shown}])"


def log_steps(last: int, count: int, *, every: int | None = None) -> Steps:
    """About ``count`` steps from 0 to ``last``, log-spaced (dense early), plus multiples of ``every``.

    Step 0 and ``last`` are always included; rounding merges the first few
    points, so the schedule may hold fewer than ``count`` steps.
    """
    last = positive_int(last, "last step")
    count = positive_int(count, "count")
    steps = {0, last}
    if count > 2:
        steps |= {int(round(math.exp(math.log(last + 1) * i / (count - 1)))) - 1 for i in range(1, count - 1)}
    if every is not None:
        steps |= set(range(0, last + 1, positive_int(every, "every")))
    return Steps(steps)


def completed_epochs(state: Any) -> int:
    """Parameter updates completed when a callback runs (``state.epoch + 1``; 0 before the first epoch)."""
    return state.epoch + 1


def is_due(step: int, every: "int | Steps") -> bool:
    """True when a callback with cadence ``every`` acts at ``step`` (``0, every, 2 every, ...``, or a :class:`Steps`)."""
    if isinstance(every, Steps):
        return step in every
    return step % every == 0


def check_every(every: Any, name: str = "every") -> "int | Steps":
    """``every`` as a positive ``int`` or a :class:`Steps` schedule (``ValueError`` otherwise)."""
    if isinstance(every, Steps):
        return every
    return positive_int(every, name)
