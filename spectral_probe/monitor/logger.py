"""Live TensorBoard output: a :func:`~spectral_probe.training.fit` callback that also works in your own loop.

With :func:`fit`::

    from spectral_probe.monitor import TensorBoardLogger
    probe, watch = Probe(every=100), BottleneckWatch(every=10)
    fit(model, target, probes=[probe, watch],
        callbacks=[TensorBoardLogger("runs/siren-tetris", probes=[probe, watch])])

In your own loop::

    tb = TensorBoardLogger("runs/mine", target=target)
    for epoch in range(epochs):
        probe.step(epoch, model, x)                 # before the update, as usual
        loss = train_step(model, optimizer, x, y)
        tb.log_epoch(epoch, loss=float(loss), lr=optimizer.param_groups[0]["lr"])
        tb.log_probe(probe)                         # the probe's new steps (none off probe epochs)
    tb.close()

Sources are run recorders (:class:`~spectral_probe.training.recording.RunRecorder`) with a
TensorBoard view: the logger asks each for its rows since the last step it logged
(``rows_since``) and hands them to :meth:`EventSink.rows <spectral_probe.monitor.tensorboard.EventSink.rows>`
under the source's ``tensorboard`` view; it knows nothing else of them.

Cadence and cost: the logger does work only when its sources have new rows (the probes' own
``every``), plus one host copy of the losses every ``every`` epochs inside :func:`fit` (the
loop keeps them on the device; :class:`~spectral_probe.training.recording.EpochBlocks`, as for the
:class:`~spectral_probe.training.recorder.TrainingRecorder`).  Inside :func:`fit` its ``order`` is
``observe``: it runs after the recorders it follows, so an epoch's rows are logged in that epoch.
Histograms use the probe's bin counts; no activation is copied.  The events are those of
:func:`~spectral_probe.monitor.export.export_tensorboard` on the same run's file.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

import numpy as np

from ..training.loop import ORDERS, Callback, FitResult, TrainState, psnr_from_mse
from ..training.recording import EpochBlocks, RunRecorder
from ..validation import positive_float, positive_int
from .spectra import TargetSpectrum
from .tensorboard import EventSink

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(Callback):
    """Write a run's training scalars, probe histograms and spectra, NTK S(k) and watch verdicts to TensorBoard.

    Parameters
    ----------
    logdir
        The run's folder (``tensorboard --logdir`` its parent); refused when it is a file, not
        writable, or already holds event files (unless ``overwrite``).
    probes
        Sources to follow: run recorders with a TensorBoard view -- :class:`~spectral_probe.probes.Probe`,
        :class:`~spectral_probe.ntk.NTKSnapshot`, :class:`~spectral_probe.bottleneck.BottleneckWatch`
        (pass the same objects to ``fit``); any
        :class:`~spectral_probe.training.recording.RunRecorder` whose ``tensorboard`` is set.
    target
        The target (a :class:`~spectral_probe.signals.Target`), for the reference spectrum and the
        zero-output floor; :func:`fit` supplies it.
    peak
        PSNR peak for :meth:`log_epoch` (:func:`fit` uses its config's).
    every
        Epochs per host copy of the losses inside :func:`fit`.
    config
        The run's configuration (a dict), shown as text.
    images
        Render the spectrum images.
    overwrite
        Replace event files already in ``logdir``.
    append
        Keep event files already in ``logdir`` (a resumed fit continues its curves; inside :func:`fit`
        the epochs before ``state.start_epoch`` are not logged again).
    """

    order = ORDERS["observe"]

    def __init__(self, logdir: str | os.PathLike, probes: Sequence = (), *, target=None, peak: float = 1.0,
                 every: int = 50, config: Mapping | None = None, images: bool = True,
                 overwrite: bool = False, append: bool = False) -> None:
        self.every = positive_int(every, "every")
        self.peak = positive_float(peak, "peak")
        self.sources = list(probes)
        for source in self.sources:
            _view(source)
        self.sink = EventSink(logdir, images=images, overwrite=overwrite, append=append)
        self._next: dict[int, int] = {}
        self._first_epoch: int | None = None
        self._last_epoch: int | None = None
        self._blocks = EpochBlocks(self.every)
        if config is not None:
            self.sink.config(json.loads(json.dumps(dict(config), sort_keys=True, default=str)))
        if target is not None:
            self.log_target(target, peak)

    @property
    def logdir(self):
        return self.sink.logdir

    # ------------------------------------------------------------------ own loop
    def log_target(self, target, peak: float | None = None) -> None:
        """Set the reference: a :class:`~spectral_probe.signals.Target`, or ``(values (N, C), grid_shape)``."""
        if peak is not None:
            self.peak = positive_float(peak, "peak")
        if isinstance(target, tuple) and len(target) == 2:
            values, grid = target
        elif hasattr(target, "values") and hasattr(target, "grid_shape"):
            values, grid = target.values, target.grid_shape
        else:
            raise TypeError(f"target must be a Target or (values, grid_shape), got {type(target).__name__}")
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        self.sink.set_target(TargetSpectrum(np.asarray(values), grid, self.peak))

    def log_epoch(self, epoch: int, *, loss: float, psnr: float | None = None, lr: float | None = None) -> None:
        """Scalars of one epoch (``psnr`` defaults to ``10 log10(peak^2 / loss)``)."""
        epoch = int(epoch)
        loss = float(loss)
        psnr = float(psnr_from_mse(loss, self.peak)) if psnr is None else float(psnr)
        self._epochs([epoch], [loss], [psnr], None if lr is None else [float(lr)])

    def log_probe(self, source) -> int:
        """Log the rows ``source`` (a run recorder with a TensorBoard view) recorded since the last call;
        returns how many."""
        view = _view(source)
        ds = source.rows_since(self._next.get(id(source), 0))
        if ds is None or not ds.sizes.get("step", 0):
            return 0
        self.sink.rows(view, ds)
        self._next[id(source)] = int(ds["step"].values[-1]) + 1
        return int(ds.sizes["step"])

    def close(self) -> None:
        """Finish: the floor at the last epoch, the sources' summaries; flush and close the event file."""
        for source in self.sources:
            self.log_probe(source)
        if self._last_epoch is not None and self._last_epoch != self._first_epoch:
            self.sink.floor(self._last_epoch)
        for source in self.sources:
            self.sink.rows_summary(_view(source), source.rows_since(0))
        self.sink.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ fit callback
    def on_fit_start(self, state: TrainState) -> None:
        self.peak = float(state.config.peak)
        if self.sink.target is None:
            self.log_target((state.values, state.target.grid_shape))
        # a resumed fit starts at state.start_epoch; the steps before it were logged by the first run
        self._blocks.start(state)
        for source in self.sources:
            self._next[id(source)] = max(self._next.get(id(source), 0), self._blocks.done)

    def on_epoch_end(self, state: TrainState) -> None:
        if self._blocks.due(state):
            self._write_until(state, state.epoch + 1)
        for source in self.sources:
            self.log_probe(source)

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        self._write_until(state, result.epochs_run)
        if result.epochs_run:
            self.sink.summary(result.epochs_run - 1, result.best_psnr, result.best_epoch, result.final_psnr,
                              self.sink.target.zero_psnr, result.epochs_run)
        self.close()

    def _write_until(self, state: TrainState, end: int) -> None:
        block = self._blocks.take(state, end)
        if block is not None:
            self._epochs(*block)

    def _epochs(self, steps, loss, psnr, lr) -> None:
        if self._first_epoch is None:
            self._first_epoch = int(steps[0])
            self.sink.floor(self._first_epoch)
        self.sink.epochs(steps, loss, psnr, lr)
        self._last_epoch = int(steps[-1])


def _view(source) -> str:
    """The TensorBoard view of a source (a :class:`RunRecorder` with one), else TypeError."""
    view = getattr(source, "tensorboard", None) if isinstance(source, RunRecorder) else None
    if view is None:
        raise TypeError(f"TensorBoardLogger follows run recorders with a TensorBoard view (Probe, NTKSnapshot and "
                        f"BottleneckWatch, or a RunRecorder with `tensorboard` set), got {type(source).__name__}")
    if view not in EventSink.VIEWS:
        raise ValueError(f"{type(source).__name__}.tensorboard is {view!r}; TensorBoard views: "
                         f"{', '.join(EventSink.VIEWS)}")
    return view
