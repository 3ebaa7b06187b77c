"""TensorBoard output: one run folder of event files per training run, live or from a run file.

Needs the optional ``tensorboard`` package (``pip install -e ".[tensorboard]"``); events are
written with :class:`torch.utils.tensorboard.SummaryWriter`, imported when a writer is made.

What a run folder holds (tags; ``step`` is the epoch, as in the run file)
------------------------------------------------------------------------
====================================  ==========  ====================================================
tag                                   kind        when
====================================  ==========  ====================================================
``train/loss|psnr|lr``                scalar      every epoch (MSE before the update, its PSNR, lr)
``train/zero_output_psnr``            scalar      first and last epoch: the spectral-bottleneck floor
``activations/<hook>``                histogram   each probe step, from the probe's bin counts
``activation_std/<hook>``             scalar      each probe step
``spectral_distance/<hook>``          scalar      each probe step: Wasserstein-1 distance [Nyquist
                                                  fraction] of the layer's cumulative spectrum to
                                                  the target's
``spectra/cumulative``                image       each probe step: target, last hidden, output
``ntk/trace|high_frequency_share``    scalar      each NTK snapshot
``ntk/spectrum``                      image       each NTK snapshot: S(k) beside the target's PSD
``bottleneck/<indicator>``            scalar      each watch check (finite values), ``state`` code
                                                  (-1 undecided, 0 fitting, 1 at risk, 2 bottleneck),
                                                  ``onset`` (-1 none)
``bottleneck/verdict``                text        each change of state (onset, evidence, suggestion)
``bottleneck/suggestion``             text        on entering "at risk" or "bottleneck"
``bottleneck/summary``                text        end: the verdict over all checks
``run/config``, ``run/summary``       text        start / end
====================================  ==========  ====================================================

A custom-scalars layout groups PSNR with its floor, the spectral distances, the watch's gain
and state, and the activation std in one dashboard tab.

Histograms come from the probe's precomputed bins (no activation is copied): bucket ``i``
spans ``[edges[i], edges[i+1]]`` and holds the *fraction* of all values in it (``density x
width``); values outside the probe's range (``hist_outside``) are in no bucket; ``num`` is 1 and
``sum``/``sum_squares`` are the mean and second moment of all values.

:class:`EventSink` turns run-file-layout rows into events; :class:`TensorBoardLogger` feeds it
from a live fit (a callback, or ``log_epoch``/``log_probe`` in your own loop) and
:func:`~spectral_probe.monitor.export.export_tensorboard` from a run file, so both routes write
the same events.
"""

from __future__ import annotations

import json
import math
import os
import time
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..validation import check_output_path
from .spectra import (TargetSpectrum, alias, hidden_layer, layer_cumulatives, ntk_frequencies,
                      spectral_distances, summary_line)

__all__ = ["INSTALL_HINT", "require_tensorboard", "check_logdir", "event_files", "view_hint", "EventSink", "LAYOUT"]

#: how to get the optional dependency
INSTALL_HINT = 'pip install -e ".[tensorboard]"'

#: the custom-scalars tab (TensorBoard's "Custom Scalars" dashboard)
LAYOUT = {"spectral-probe": {
    "PSNR and the zero-output floor": ["Multiline", ["train/psnr", "train/zero_output_psnr"]],
    "spectral distance to the target [Nyquist fraction]": ["Multiline", [r"spectral_distance/.*"]],
    "bottleneck watch: PSNR gain over the floor [dB]": ["Multiline", ["bottleneck/psnr_gain"]],
    "bottleneck watch: state (0 fitting, 1 at risk, 2 bottleneck)": ["Multiline", ["bottleneck/state"]],
    "activation std": ["Multiline", [r"activation_std/.*"]],
}}


def require_tensorboard():
    """:class:`torch.utils.tensorboard.SummaryWriter`, or ``ImportError`` naming the install command."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError("TensorBoard output needs the optional 'tensorboard' package; install it with "
                          f"{INSTALL_HINT} (or pip install tensorboard)") from None
    return SummaryWriter


def event_files(logdir: str | os.PathLike) -> list[Path]:
    """TensorBoard event files directly in ``logdir`` (not in sub-folders)."""
    path = Path(logdir)
    return sorted(path.glob("events.out.tfevents.*")) if path.is_dir() else []


def _wait_to_sort_last(logdir: Path) -> None:
    """Wait (at most a second) until a new event file sorts after those in ``logdir``.

    TensorBoard reads a folder's event files in name order, and a name is ``events.out.tfevents.<whole
    seconds>.<host>.<pid>.<counter>``: a resumed run started within the same second as the file it
    continues (same process, counter 10 vs 9) would sort first, and TensorBoard would read its curve
    before the earlier epochs and drop them as orphaned."""
    seconds = []
    for path in event_files(logdir):
        try:
            seconds.append(int(path.name.split(".")[3]))
        except (IndexError, ValueError):
            continue
    if seconds:
        wait = max(seconds) + 1 - time.time()
        if 0 < wait <= 1:
            time.sleep(wait)


def check_logdir(logdir: str | os.PathLike, what: str = "--tensorboard", *, overwrite: bool = False,
                 append: bool = False) -> Path:
    """Check that ``logdir`` can take a new run's events, before any work.

    Refuses a path that is a file, an unwritable location, and a folder that already holds event
    files (TensorBoard would merge two runs into one curve) unless ``overwrite`` (they will be
    replaced) or ``append`` (a resumed run continues its own curves there).  Deletes nothing.

    Raises
    ------
    ValueError
        The path is a file or not writable (:func:`~spectral_probe.validation.check_output_path`).
    FileExistsError
        The folder holds event files and ``overwrite`` is false.
    """
    path = check_output_path(logdir, what, directory=True)
    old = event_files(path)
    if old and not (overwrite or append):
        raise FileExistsError(f"{what} {str(path)!r} already holds TensorBoard event files ({len(old)}) of another "
                              "run; choose a new folder for this run, or remove them (export: --overwrite; a resumed "
                              "train run appends to its own folder)")
    return path


def view_hint(logdir: str | os.PathLike) -> str:
    """``"view: tensorboard --logdir PARENT"`` for a run folder."""
    parent = os.path.dirname(os.path.normpath(str(logdir))) or "."
    return f"view: tensorboard --logdir {parent}"


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


class EventSink:
    """Writes one run's monitored content (run-file layout rows) into one TensorBoard run folder.

    Parameters
    ----------
    logdir
        The run folder (created; see :func:`check_logdir`).
    images
        Render the cumulative-spectrum and ``S(k)`` images (matplotlib; see benchmarks/README.md for the cost).
    overwrite
        Delete event files already in ``logdir`` (otherwise they are refused).
    append
        Keep them and add a new event file (a resumed run continuing its curves).
    flush_secs
        Seconds between flushes of the event file (also flushed at :meth:`flush` and :meth:`close`).
    """

    def __init__(self, logdir: str | os.PathLike, *, images: bool = True, overwrite: bool = False,
                 append: bool = False, flush_secs: float = 10.0) -> None:
        writer_cls = require_tensorboard()
        self.logdir = check_logdir(logdir, overwrite=overwrite, append=append)
        for old in event_files(self.logdir) if overwrite else ():
            old.unlink()
        _wait_to_sort_last(self.logdir)
        self._writer = writer_cls(log_dir=str(self.logdir), flush_secs=flush_secs)
        self._finalizer = weakref.finalize(self, self._writer.close)     # flushed at exit (Ctrl-C, errors)
        self.images = bool(images)
        self.target: TargetSpectrum | None = None
        self._figures: dict[str, Any] = {}
        self._cumulative = None                            # CumulativeImage, made at the first image
        self._detector = None
        self._closed = False
        self._writer.add_custom_scalars(LAYOUT)

    # ------------------------------------------------------------------ basics
    def set_target(self, target: TargetSpectrum | None) -> None:
        """The reference for spectra, distances and the zero-output floor."""
        self.target = target

    def text(self, tag: str, text: str, step: int) -> None:
        self._writer.add_text(tag, text, int(step))

    def scalar(self, tag: str, value, step: int) -> None:
        """One scalar (float32 in the event file); None and non-finite values are left out."""
        if _finite(value):
            self._writer.add_scalar(tag, float(value), int(step))

    def config(self, config: Mapping | str, step: int = 0) -> None:
        """The run configuration as text (indented JSON)."""
        data = json.loads(config) if isinstance(config, str) else dict(config)
        body = json.dumps(data, sort_keys=True, indent=1, default=str)
        self.text("run/config", "\n".join("    " + line for line in body.splitlines()), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (idempotent)."""
        if not self._closed:
            self._finalizer()
            self._closed = True

    # ------------------------------------------------------------------ run-file rows by view
    #: the views of run-file rows (:attr:`RunRecorder.tensorboard <spectral_probe.training.recording.RunRecorder>`)
    VIEWS = ("scalars", "activations", "ntk", "watch")

    def rows(self, view: str, ds) -> None:
        """The rows of ``ds`` (a group's rows in the run file's layout, the group's attributes in ``ds.attrs``)
        as the events of ``view`` (one of :data:`VIEWS`)."""
        if view == "scalars":
            self.epochs(ds["step"].values, ds["loss"].values, ds["psnr"].values if "psnr" in ds else None,
                        ds["lr"].values if "lr" in ds else None)
        elif view == "activations":
            self.activations(ds)
        elif view == "ntk":
            self.ntk(ds, int(ds.attrs.get("n", 2 * (ds.sizes["k"] - 1))), int(ds.attrs.get("stride", 1)))
        elif view == "watch":
            from ..bottleneck.watch import detector_settings

            self.watch(ds, detector_settings(ds.attrs))
        else:
            raise ValueError(f"unknown TensorBoard view {view!r}; views: {', '.join(self.VIEWS)}")

    def rows_summary(self, view: str, ds) -> None:
        """End-of-run text over all the rows of a view (the watch's verdict; nothing for the others)."""
        if view == "watch" and ds is not None:
            from ..bottleneck.watch import detector_settings

            self.watch_summary(ds, detector_settings(ds.attrs))

    # ------------------------------------------------------------------ training scalars
    def epochs(self, steps: Sequence[int], loss: Sequence[float], psnr: Sequence[float] | None = None,
               lr: Sequence[float] | None = None) -> None:
        """``train/loss`` (and ``train/psnr``, ``train/lr`` when given) for each epoch in ``steps``."""
        psnr = [None] * len(steps) if psnr is None else psnr
        lr = [None] * len(steps) if lr is None else lr
        for step, l_, p, r in zip(np.asarray(steps).tolist(), loss, psnr, lr):
            self.scalar("train/loss", l_, step)
            self.scalar("train/psnr", p, step)
            self.scalar("train/lr", r, step)

    def floor(self, step: int) -> None:
        """``train/zero_output_psnr`` at ``step`` (needs the target)."""
        if self.target is not None:
            self.scalar("train/zero_output_psnr", self.target.zero_psnr, step)

    def summary(self, step: int, best_psnr: float, best_epoch: int, final_psnr: float, zero_psnr: float,
                epochs_run: int) -> None:
        self.text("run/summary", summary_line(best_psnr, best_epoch, final_psnr, zero_psnr, epochs_run), step)

    # ------------------------------------------------------------------ probes
    def activations(self, ds) -> None:
        """Histograms, std, spectral distances and the cumulative-spectrum image of each step of ``ds``.

        ``ds``: rows of an ``activations`` group (run-file layout: ``hist``, ``hist_edges``,
        ``act_mean``, ``act_std``, optional ``psd`` over ``(step, layer, kind, ...)``).
        """
        names = ("hist", "hist_edges", "act_mean", "act_std")
        arrays = {k: np.asarray(ds[k].transpose("step", "layer", "kind", ...).values, dtype=np.float64)
                  for k in names if k in ds}                     # numpy once: .sel per cell dominated the cost
        layers, kinds = ds["layer"].values, ds["kind"].values
        for i in range(ds.sizes.get("step", 0)):
            step = int(ds["step"].values[i])
            for a, layer in enumerate(layers):
                for b, kind in enumerate(kinds):
                    cell = {k: v[i, a, b] for k, v in arrays.items()}
                    name = alias(layer, kind)
                    self._histogram(f"activations/{name}", cell, step)
                    if "act_std" in cell:
                        self.scalar(f"activation_std/{name}", cell["act_std"], step)
            if "psd" in ds:
                self._spectra(ds.isel(step=i), step)

    def _histogram(self, tag: str, cell: Mapping[str, np.ndarray], step: int) -> None:
        """One histogram event from a cell's arrays (``hist`` densities, ``hist_edges``, optional moments)."""
        if "hist" not in cell or "hist_edges" not in cell:
            return
        density, edges = cell["hist"].reshape(-1), cell["hist_edges"].reshape(-1)
        if not (np.all(np.isfinite(density)) and np.all(np.isfinite(edges))):
            return
        counts = density * np.diff(edges)
        mean = float(cell["act_mean"]) if "act_mean" in cell else 0.0
        std = float(cell["act_std"]) if "act_std" in cell else 0.0
        self._writer.add_histogram_raw(tag, min=float(edges[0]), max=float(edges[-1]), num=1.0, sum=mean,
                                       sum_squares=std * std + mean * mean, bucket_limits=edges[1:].tolist(),
                                       bucket_counts=counts.tolist(), global_step=step)

    def _spectra(self, row, step: int) -> None:
        freqs, curves = layer_cumulatives(row)
        if not curves:
            return
        target_cdf = self.target.on(freqs) if self.target is not None else None
        if target_cdf is not None:
            for name, dist in spectral_distances(curves, target_cdf, freqs).items():
                self.scalar(f"spectral_distance/{name}", dist, step)
        if self.images:
            if self._cumulative is None:
                from .plot import CumulativeImage

                self._cumulative = CumulativeImage()
            rgb = self._cumulative.render(freqs, curves, target_cdf, hidden_layer(list(curves)), step)
            self._writer.add_image("spectra/cumulative", rgb, step, dataformats="HWC")

    def ntk(self, ds, n: int, stride: int = 1) -> None:
        """Scalars and the ``S(k)`` image of each step of ``ds`` (rows of an ``ntk`` group)."""
        freqs = ntk_frequencies(n, stride)
        for i in range(ds.sizes.get("step", 0)):
            row = ds.isel(step=i)
            step = int(row["step"])
            for name in ("trace", "high_frequency_share"):
                if name in row:
                    self.scalar(f"ntk/{name}", row[name], step)
            if self.images and "spectrum" in row:
                from .plot import draw_ntk

                ax = self._axes("ntk/spectrum")
                band = self.target.band if self.target is not None else None
                draw_ntk(ax, [(step, freqs, row["spectrum"].values)], self.target, band)
                self._image("ntk/spectrum", step)

    # ------------------------------------------------------------------ bottleneck watch
    def watch(self, ds, settings: Mapping) -> None:
        """Scalars of each check in ``ds`` (rows of a ``bottleneck`` group); text at each change of state.

        ``settings``: keyword arguments of :class:`~spectral_probe.bottleneck.BottleneckDetector`
        (:func:`~spectral_probe.bottleneck.watch.detector_settings`); the detector is replayed over
        the rows, so the verdicts are the watch's own.
        """
        from ..bottleneck import AT_RISK, BOTTLENECK, BottleneckDetector

        if self._detector is None:
            self._detector = BottleneckDetector(**settings)
        names = [k for k in ds.data_vars if k not in ("state", "onset")]
        for i in range(ds.sizes.get("step", 0)):
            row = ds.isel(step=i)
            step = int(row["step"])
            values = {k: float(row[k]) for k in names}
            for k, v in values.items():
                self.scalar(f"bottleneck/{k}", v, step)
            for k in ("state", "onset"):
                if k in row:
                    self.scalar(f"bottleneck/{k}", row[k], step)
            previous = self._detector.verdict.state
            verdict = self._detector.update(step, values)
            if verdict.state != previous:
                self.text("bottleneck/verdict", verdict.line(), step)
                if verdict.state in (AT_RISK, BOTTLENECK) and verdict.suggestion:
                    self.text("bottleneck/suggestion", verdict.suggestion, step)

    def watch_summary(self, ds, settings: Mapping) -> None:
        """``bottleneck/summary``: :func:`~spectral_probe.bottleneck.detect` over every check of ``ds``."""
        from ..bottleneck import detect

        if not ds.sizes.get("step", 0):
            return
        indicators = {k: ds[k].values for k in ds.data_vars if k not in ("state", "onset")}
        verdict = detect(ds["step"].values, indicators, **settings)
        self.text("bottleneck/summary", verdict.line(), int(ds["step"].values[-1]))

    # ------------------------------------------------------------------ images
    def _axes(self, tag: str):
        """The one axes of the figure kept for ``tag`` (cleared), so each image costs a redraw only."""
        if tag not in self._figures:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(5.5, 4.0), dpi=80)         # fixed margins: a layout engine triples the cost
            fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.92)
            fig.add_subplot()
            self._figures[tag] = fig
        fig = self._figures[tag]
        ax = fig.axes[0]
        ax.clear()
        return ax

    def _image(self, tag: str, step: int) -> None:
        from .plot import render_rgb

        self._writer.add_image(tag, render_rgb(self._figures[tag]), step, dataformats="HWC")
