"""What records into a run file: the :class:`RunRecorder` protocol, its registry, and the loss blocks.

Everything that writes a group of a run file during :func:`~spectral_probe.training.fit` is a
:class:`RunRecorder`:

=========================================================== =================== ==================
recorder                                                    group               TensorBoard view
=========================================================== =================== ==================
:class:`~spectral_probe.training.recorder.TrainingRecorder`   ``scalars``         ``scalars``
:class:`~spectral_probe.training.recorder.PredictionRecorder` ``prediction``      --
:class:`~spectral_probe.training.checkpoint.Checkpointer`     ``checkpoints``     --
:class:`~spectral_probe.probes.Probe`                         ``activations``     ``activations``
:class:`~spectral_probe.ntk.NTKSnapshot`                      ``ntk``             ``ntk``
:class:`~spectral_probe.bottleneck.BottleneckWatch`           ``bottleneck``      ``watch``
:class:`~spectral_probe.figures.recorders.RowRecorder`        ``outputs``, ...    --
=========================================================== =================== ==================

The code around them knows only this protocol, never a recorder's own attributes:

* :func:`~spectral_probe.training.runs.train_to_file` hands the run's writer to every recorder that has
  none (:meth:`RunRecorder.bind`) and stores :meth:`RunRecorder.settings` of each in the run's
  ``recording`` configuration (what a resumed run must repeat): :func:`describe`;
* at the start of a fit every recorder prepares itself from the fit's state, declares its group
  (:meth:`RunRecorder.declare`) and, when the fit continues a run file, takes the group's rows before
  the resume point as its own (:meth:`RunRecorder.restore`) -- one template,
  :meth:`RunRecorder.on_fit_start`;
* :class:`~spectral_probe.monitor.TensorBoardLogger` follows any recorder with a ``tensorboard`` view
  through :meth:`RunRecorder.rows_since`, the rows in the run file's layout.

A new recorder is one subclass of :class:`RunRecorder`: defining the class registers it
(:data:`RECORDERS`, by class name, the ``type`` of its entry in a run's configuration).

Order
-----
:func:`~spectral_probe.training.fit` calls its callbacks in increasing ``order``
(:data:`~spectral_probe.training.loop.ORDERS`; equal orders keep the order given), whichever
argument (``callbacks`` or ``probes``) they came in.  The positions that matter:

* ``first`` -- the :class:`TrainingRecorder` and :class:`PredictionRecorder`: their groups are the
  file's first, and an epoch's scalars are appended before any other row of that epoch;
* ``default`` -- probes, watches, NTK snapshots, your callbacks;
* ``observe`` -- callbacks that read other callbacks' rows of the same epoch (the TensorBoard logger);
* ``stop`` -- stop requests from outside the fit (:class:`~spectral_probe.training.Deadline`,
  :class:`~spectral_probe.training.interrupts.InterruptGuard`);
* ``last`` -- the :class:`~spectral_probe.training.checkpoint.Checkpointer`: it saves an epoch after every
  other callback acted on it (stop requests included), and its random-number states after every draw of
  that epoch, so a resumed fit repeats the trajectory bit for bit.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..cadence import check_every, completed_epochs, is_due
from .loop import Callback, TrainState, psnr_from_mse

__all__ = ["RunRecorder", "RECORDERS", "EpochBlocks", "describe", "bind_writer", "recorders", "public_settings"]

#: every recorder class defined so far, by class name (:meth:`RunRecorder.settings`'s ``type``)
RECORDERS: dict[str, type] = {}

_SIMPLE = (bool, int, float, str, type(None))


def public_settings(obj: Any, leave_out: Sequence[str] = ()) -> dict:
    """``obj``'s class name and its public instance attributes of simple types (JSON-friendly), sorted.

    Attributes whose names start with ``_`` or are in ``leave_out`` are left out, and so are values of other
    types (models, writers, detectors); tuples and lists of simple values become lists, devices strings.
    """
    import torch

    out: dict[str, Any] = {"type": type(obj).__name__}
    for key, value in sorted(vars(obj).items()):
        if key.startswith("_") or key in leave_out:
            continue
        if isinstance(value, _SIMPLE):
            out[key] = value
        elif isinstance(value, (tuple, list)) and all(isinstance(v, _SIMPLE) for v in value):
            out[key] = list(value)
        elif isinstance(value, torch.device):
            out[key] = str(value)
    return out


class RunRecorder(Callback):
    """A training callback that records into a group of a run file (see the module docstring).

    Class attributes
    ----------------
    group
        The run-file group it writes (instances may set their own); ``""``: the file's root attributes.
    every
        Its cadence: an ``int`` or a :class:`~spectral_probe.cadence.Steps` schedule
        (:mod:`spectral_probe.cadence`); None: it records at the start or the end of the fit only.
    order
        Where it runs among a fit's callbacks (:data:`~spectral_probe.training.loop.ORDERS`).
    tensorboard
        The view of its rows in :class:`~spectral_probe.monitor.tensorboard.EventSink`
        (``"scalars"``, ``"activations"``, ``"ntk"``, ``"watch"``), None: not shown there.
    data_attributes
        Its attributes that hold what it recorded (or the writer): left out of :meth:`settings`.
    """

    group: str = ""
    every: Any = None
    tensorboard: str | None = None
    data_attributes: tuple[str, ...] = ("writer",)
    writer = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        known = RECORDERS.get(cls.__name__)
        if known is not None and known.__module__ != cls.__module__:
            raise TypeError(f"recorder class name {cls.__name__!r} is taken by {known.__module__}.{known.__name__}; "
                            "a run's configuration names recorders by class name: choose another name")
        RECORDERS[cls.__name__] = cls

    # ------------------------------------------------------------------ the protocol
    def bind(self, writer) -> bool:
        """Record into ``writer`` (a :class:`~spectral_probe.store.TrajectoryWriter`) unless given one already.

        Returns True when ``writer`` was taken.
        """
        if self.writer is not None:
            return False
        self.writer = writer
        return True

    def due(self, step: int) -> bool:
        """True when the recorder records at ``step`` (:func:`~spectral_probe.cadence.is_due`; never without
        a cadence)."""
        return self.every is not None and is_due(int(step), self.every)

    def prepare(self, state: TrainState) -> None:
        """Set-up from the fit's state before the group is declared (hook points, grid, layout)."""

    def declare(self, writer=None) -> None:
        """Declare the group in ``writer`` (default: :attr:`writer`), in the writer's declare phase."""

    def restore(self, ds) -> None:
        """Continue a run file: ``ds`` holds the group's rows before the resume point (step dimension)."""

    def begin(self, state: TrainState) -> None:
        """Start recording this fit (after :meth:`declare` and :meth:`restore`)."""

    def rows_since(self, step: int):
        """The rows recorded at steps ``>= step`` as an ``xarray.Dataset`` in the run file's layout of the
        group (a ``step`` dimension, the group's attributes in ``attrs``); None when there are none."""
        return None

    def settings(self) -> dict:
        """What a resumed run must repeat: ``{"type": class name, public setting: value, ...}``."""
        return public_settings(self, self.data_attributes)

    # ------------------------------------------------------------------ the template
    def previous(self, state: TrainState):
        """The group's rows before the resume point of a fit that continues a run file (else None)."""
        return (getattr(state, "previous", None) or {}).get(self.group) if self.group else None

    def on_fit_start(self, state: TrainState) -> None:
        """:meth:`prepare`, :meth:`declare` (with a writer), :meth:`restore` (continuing a file), :meth:`begin`."""
        self.prepare(state)
        if self.writer is not None:
            self.declare()
        previous = self.previous(state)
        if previous is not None:
            self.restore(previous)
        self.begin(state)


def recorders(callbacks: Sequence[Callback]) -> list[RunRecorder]:
    """The :class:`RunRecorder`\\ s among ``callbacks``, in their order."""
    return [cb for cb in callbacks if isinstance(cb, RunRecorder)]


def bind_writer(callbacks: Sequence[Callback], writer) -> list:
    """Hand ``writer`` to every recorder among ``callbacks`` that has none; returns those that took it.

    A callback that is no :class:`RunRecorder` but has a ``writer`` attribute set to None (how recorders
    were recognised before this protocol) still gets it, with a :class:`DeprecationWarning`.
    """
    import warnings

    taken = [r for r in recorders(callbacks) if r.bind(writer)]
    for cb in callbacks:
        if not isinstance(cb, RunRecorder) and getattr(cb, "writer", False) is None:
            warnings.warn(f"{type(cb).__name__} gets the run's writer because it has a `writer` attribute set to "
                          "None; make it a spectral_probe.training.recording.RunRecorder (this fallback goes in "
                          "the next release)", DeprecationWarning, stacklevel=3)
            cb.writer = writer
            taken.append(cb)
    return taken


def describe(callback: Callback) -> dict:
    """A callback's entry in a run's ``recording`` configuration: a recorder's :meth:`~RunRecorder.settings`,
    another callback's class and public settings of simple types."""
    if isinstance(callback, RunRecorder):
        return callback.settings()
    return public_settings(callback, ("writer",))


class EpochBlocks:
    """Host copies of :func:`~spectral_probe.training.fit`'s per-epoch losses, in blocks of ``every`` epochs.

    The loop keeps the losses on the device; a block is copied (one synchronisation) when the
    completed epochs reach a multiple of ``every`` (:func:`~spectral_probe.cadence.is_due`) and, by
    :meth:`take`, whenever its owner needs the epochs run so far.  A fit that continues a run file
    starts after the epochs already recorded (``state.start_epoch``).

    Parameters
    ----------
    every
        Epochs per block (a positive integer).
    """

    def __init__(self, every: int) -> None:
        self.every = check_every(every)
        if not isinstance(self.every, int):
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.done = 0

    def start(self, state: TrainState) -> None:
        """Begin at the fit's first epoch."""
        self.done = int(getattr(state, "start_epoch", 0) or 0)

    def due(self, state: TrainState) -> bool:
        """True at an epoch end that closes a block."""
        return is_due(completed_epochs(state), self.every)

    def take(self, state: TrainState, end: int):
        """The epochs ``done .. end - 1`` not taken yet: ``(steps, loss, psnr, lr)`` host arrays, or None."""
        start = self.done
        if end <= start:
            return None
        loss = state.losses[start:end].detach().double().cpu().numpy()
        self.done = end             # before the caller writes: a writer's flush may ask for the rows again
        return (np.arange(start, end), loss, psnr_from_mse(loss, state.config.peak),
                np.asarray(state.lrs[start:end], dtype=np.float64))
