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

Cadence and cost: the logger does work only when its sources have new rows (the probes' own
``every``), plus one host copy of the losses every ``every`` epochs inside :func:`fit` (the
loop keeps them on the device, as :class:`~spectral_probe.training.recorder.TrainingRecorder` does).
Histograms use the probe's bin counts; no activation is copied.  The events are those of
:func:`~spectral_probe.monitor.export.export_tensorboard` on the same run's file.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

import numpy as np

from ..training.loop import Callback, FitResult, TrainState, psnr_from_mse
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
        Sources to follow: :class:`~spectral_probe.probes.Probe`,
        :class:`~spectral_probe.ntk.NTKSnapshot`, :class:`~spectral_probe.bottleneck.BottleneckWatch`
        (pass the same objects to ``fit``).
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

    def __init__(self, logdir: str | os.PathLike, probes: Sequence = (), *, target=None, peak: float = 1.0,
                 every: int = 50, config: Mapping | None = None, images: bool = True,
                 overwrite: bool = False, append: bool = False) -> None:
        self.every = positive_int(every, "every")
        self.peak = positive_float(peak, "peak")
        self.sources = list(probes)
        for source in self.sources:
            _kind(source)
        self.sink = EventSink(logdir, images=images, overwrite=overwrite, append=append)
        self._logged: dict[int, int] = {}
        self._first_epoch: int | None = None
        self._last_epoch: int | None = None
        self._done = 0
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
        if self._first_epoch is None:
            self._first_epoch = epoch
            self.sink.floor(epoch)
        self.sink.epochs([epoch], [loss], [psnr], None if lr is None else [float(lr)])
        self._last_epoch = epoch

    def log_probe(self, source) -> int:
        """Log the rows ``source`` recorded since the last call; returns how many."""
        kind = _kind(source)
        key = id(source)
        done = self._logged.get(key, 0)
        if kind == "probe":
            total = len(source.cache)
            if total > done:
                self.sink.activations(source.to_dataset().isel(step=slice(done, total)))
        elif kind == "ntk":
            total = len(source.epochs)
            if total > done:
                ds = source.to_dataset().rename(epoch="step").isel(step=slice(done, total))
                self.sink.ntk(ds, source.n or 2 * (ds.sizes["k"] - 1), source.stride)
        else:
            total = len(source.rows)
            if total > done:
                self.sink.watch(_rows_dataset(source.rows[done:total]), _watch_settings(source))
        self._logged[key] = max(total, done)
        return max(total - done, 0)

    def close(self) -> None:
        """Finish: the floor at the last epoch, the watch summaries; flush and close the event file."""
        for source in self.sources:
            self.log_probe(source)
        if self._last_epoch is not None and self._last_epoch != self._first_epoch:
            self.sink.floor(self._last_epoch)
        for source in self.sources:
            if _kind(source) == "watch" and source.rows:
                self.sink.watch_summary(_rows_dataset(source.rows), _watch_settings(source))
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
        # a resumed fit starts at state.start_epoch; the epochs before it were logged by the first run
        self._done = int(getattr(state, "start_epoch", 0) or 0)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch + 1 - self._done >= self.every:
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
        start = self._done
        if end <= start:
            return
        loss = state.losses[start:end].detach().double().cpu().numpy()
        if self._first_epoch is None:
            self._first_epoch = start
            self.sink.floor(start)
        self.sink.epochs(np.arange(start, end), loss, psnr_from_mse(loss, self.peak), state.lrs[start:end])
        self._last_epoch = end - 1
        self._done = end


# --------------------------------------------------------------------------- sources
def _kind(source) -> str:
    from ..bottleneck import BottleneckWatch
    from ..ntk import NTKSnapshot
    from ..probes import Probe

    for cls, kind in ((Probe, "probe"), (NTKSnapshot, "ntk"), (BottleneckWatch, "watch")):
        if isinstance(source, cls):
            return kind
    raise TypeError(f"TensorBoardLogger follows Probe, NTKSnapshot and BottleneckWatch objects, "
                    f"got {type(source).__name__}")


def _rows_dataset(rows: Sequence[Mapping]):
    """BottleneckWatch rows -> the run file's ``bottleneck`` layout (``step`` dimension)."""
    import xarray as xr

    keys = [k for k in rows[0] if k != "step"]
    return xr.Dataset({k: ("step", np.asarray([r[k] for r in rows])) for k in keys},
                      coords={"step": np.asarray([r["step"] for r in rows], dtype=np.int64)})


def _watch_settings(watch) -> dict:
    d = watch.detector
    return {"thresholds": watch.thresholds, "undecidable": d.undecidable, "suggestion": d.suggestion,
            "band": list(d.band) if d.band is not None else None, "horizon": d.horizon}
