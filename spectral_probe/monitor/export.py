"""TensorBoard events from a run file: finished, crashed (killed writer) or still being written.

>>> export_tensorboard("run.h5", "runs/run")                 # what the file holds now
>>> export_tensorboard("run.h5", "runs/run", follow=True)    # and then follow it until the run ends

The file is read through :func:`spectral_probe.store.open_run`, which refuses damaged and foreign
files; only committed rows are exported.  Groups written by spectral-probe's producers are exported
(``scalars``, ``activations``, ``ntk``, ``bottleneck``; the ``prediction`` group gives the target);
a group of that name in another layout is skipped and named in the report.  The events equal those :class:`TensorBoardLogger`
writes during the same run (both feed :class:`~spectral_probe.monitor.tensorboard.EventSink`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..validation import positive_float
from .spectra import target_from_run
from .tensorboard import EventSink

__all__ = ["RunExporter", "ExportReport", "export_tensorboard"]

@dataclass
class ExportReport:
    """What an export wrote."""

    logdir: Path
    status: str
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(f"{n} {g}" for g, n in self.rows.items() if n) or "nothing yet"
        skipped = "".join(f"; skipped group {g!r} ({why})" for g, why in self.skipped.items())
        return f"wrote {parts} ({self.status} run) to {self.logdir}{skipped}"


#: what each exported group must hold (the producers' layouts); other groups are left out
_LAYOUTS = {"scalars": ((), ("loss",)), "activations": (("layer", "kind"), ("hist", "hist_edges")),
            "ntk": (("k",), ("spectrum",)), "bottleneck": ((), ("psnr_gain", "energy_ratio"))}


def _layout_problem(name: str, ds) -> str | None:
    dims, variables = _LAYOUTS[name]
    missing = [d for d in dims if d not in ds.dims] + [v for v in variables if v not in ds]
    return f"not the spectral-probe layout: no {', '.join(missing)}" if missing else None


class RunExporter:
    """Incremental export of one run file into one TensorBoard run folder.

    Each :meth:`update` reads the file (live or not) and writes the rows not exported yet;
    :meth:`finish` adds the end-of-run text (summary, the watch's verdict) and closes the events.

    Parameters
    ----------
    path
        The run file.
    logdir
        The TensorBoard run folder (see :func:`~spectral_probe.monitor.tensorboard.check_logdir`).
    images, overwrite
        As for :class:`~spectral_probe.monitor.tensorboard.EventSink`.
    """

    def __init__(self, path: str | os.PathLike, logdir: str | os.PathLike, *, images: bool = True,
                 overwrite: bool = False) -> None:
        from ..store import open_run
        from ..store.filelock import writer_alive

        self.path = Path(path)
        self._alive = writer_alive(self.path)  # checked before each read: rows committed before it died are read
        self.tree = open_run(self.path)        # refuses missing, damaged and foreign files before any output
        self.sink = EventSink(logdir, images=images, overwrite=overwrite)
        self.last: dict[str, int] = {}
        self.rows: dict[str, int] = {"epochs": 0, "probe steps": 0, "NTK snapshots": 0, "watch checks": 0}
        self.skipped: dict[str, str] = {}
        self._first_epoch: int | None = None
        self._started = False

    @property
    def status(self) -> str:
        """State of the file as last read: a name of :data:`spectral_probe.store.schema.STATUS_NAMES`
        (``"closed"``, ``"failed"``, ``"interrupted"``, ``"writing"``: its writer was alive) or ``"crashed"``
        (left open by a writer that is gone)."""
        root = self.tree.dataset
        from ..store.schema import STATUS_NAMES

        code = int(root["run_status"]) if "run_status" in root else 1
        status = STATUS_NAMES.get(code, f"status {code}")
        return "crashed" if status == "writing" and not self._alive else status

    def _new(self, name: str):
        """Rows of group ``name`` after the last exported step (None when there are none)."""
        groups = self.tree.children
        if name not in groups:
            return None
        ds = groups[name].to_dataset()
        if "step" not in ds.dims or not ds.sizes["step"] or name in self.skipped:
            return None
        problem = _layout_problem(name, ds)
        if problem is not None:
            self.skipped[name] = problem
            return None
        last = self.last.get(name)
        if last is not None:
            ds = ds.isel(step=np.flatnonzero(ds["step"].values > last))
            if not ds.sizes["step"]:
                return None
        self.last[name] = int(ds["step"].values[-1])
        return ds

    def update(self, reread: bool = True) -> int:
        """Export the rows committed since the last update; returns how many rows were new."""
        from ..store import open_run
        from ..store.filelock import writer_alive

        if reread and self._started:
            self._alive = writer_alive(self.path)
            self.tree = open_run(self.path)
        groups = self.tree.children
        if not self._started:
            self._started = True
            config = self.tree.dataset.attrs.get("config")
            if config:
                self.sink.config(config)
            self.sink.set_target(target_from_run(self.tree))
        new = 0
        scalars = self._new("scalars")
        if scalars is not None:
            steps = scalars["step"].values
            if self._first_epoch is None:
                self._first_epoch = int(steps[0])
                self.sink.floor(self._first_epoch)
            self.sink.epochs(steps, scalars["loss"].values, scalars["psnr"].values if "psnr" in scalars else None,
                             scalars["lr"].values if "lr" in scalars else None)
            self.rows["epochs"] += len(steps)
            new += len(steps)
        acts = self._new("activations")
        if acts is not None:
            self.sink.activations(acts)
            self.rows["probe steps"] += acts.sizes["step"]
            new += acts.sizes["step"]
        ntk = self._new("ntk")
        if ntk is not None:
            attrs = groups["ntk"].dataset.attrs
            self.sink.ntk(ntk, int(attrs.get("n", 2 * (ntk.sizes["k"] - 1))), int(attrs.get("stride", 1)))
            self.rows["NTK snapshots"] += ntk.sizes["step"]
            new += ntk.sizes["step"]
        checks = self._new("bottleneck")
        if checks is not None:
            from ..bottleneck.watch import detector_settings

            self.sink.watch(checks, detector_settings(groups["bottleneck"].dataset.attrs))
            self.rows["watch checks"] += checks.sizes["step"]
            new += checks.sizes["step"]
        self.sink.flush()
        return new

    def finish(self) -> ExportReport:
        """End-of-run text (summary, the watch's verdict over all checks); closes the event file."""
        groups = self.tree.children
        if "scalars" in groups and "scalars" not in self.skipped:
            ds = groups["scalars"].to_dataset()
            if ds.sizes.get("step", 0):
                last = int(ds["step"].values[-1])
                if last != self._first_epoch:
                    self.sink.floor(last)
                if "best_psnr" in ds and "epochs_run" in ds and self.sink.target is not None:
                    self.sink.summary(int(ds["epochs_run"]) - 1, float(ds["best_psnr"]), int(ds["best_epoch"]),
                                      float(ds["final_psnr"]), self.sink.target.zero_psnr, int(ds["epochs_run"]))
        if "bottleneck" in groups and "bottleneck" not in self.skipped:
            from ..bottleneck.watch import detector_settings

            ds = groups["bottleneck"].to_dataset()
            self.sink.watch_summary(ds, detector_settings(ds.attrs))
        self.sink.close()
        return ExportReport(self.sink.logdir, self.status, dict(self.rows), dict(self.skipped))


def export_tensorboard(path: str | os.PathLike, logdir: str | os.PathLike, *, follow: bool = False,
                       interval: float = 2.0, timeout: float | None = None, images: bool = True,
                       overwrite: bool = False, on_update: Callable[[int], None] | None = None) -> ExportReport:
    """Write the TensorBoard events of run file ``path`` into ``logdir``.

    Parameters
    ----------
    path
        A run file: finished, crashed (only committed rows exist) or live.
    logdir
        The TensorBoard run folder; refused when it is a file, not writable, or holds event files
        (unless ``overwrite``).
    follow
        Keep polling every ``interval`` seconds while the run is being written (until it closes,
        its writer is gone, or ``timeout`` seconds have passed).
    on_update
        Called with the number of new rows after each poll.

    Returns
    -------
    ExportReport
    """
    interval = positive_float(interval, "interval")
    if timeout is not None:
        timeout = positive_float(timeout, "timeout")
    exporter = RunExporter(path, logdir, images=images, overwrite=overwrite)
    start = time.monotonic()
    try:
        while True:
            new = exporter.update()
            if on_update is not None:
                on_update(new)
            if not follow or exporter.status != "writing":
                break
            if timeout is not None and time.monotonic() - start > timeout:
                break
            time.sleep(interval)
    finally:
        report = exporter.finish()
    return report
