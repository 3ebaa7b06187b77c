"""The unit of work of a sweep: train one configuration, write one run file.

:func:`run_one` runs on whatever worker an executor picks (a local process, a
Slurm job, a dask worker).  It never raises for a failed run: the error and the
tail of its traceback go to ``<run_id>.error.json`` beside the run file and into
the returned summary, so one bad configuration does not stop the others.

Every run checkpoints (every ``checkpoint_every`` epochs; by default
:data:`DEFAULT_CHECKPOINTS` times per run) and a run file left unfinished -- the sweep
interrupted (Ctrl-C, SIGTERM), its worker killed, the machine down -- is *continued* from
its last checkpoint when the sweep runs again (``train_to_file(..., resume=True)``), to the
trajectory an uninterrupted run writes; finished run files are skipped.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..training.recording import RunRecorder

__all__ = ["RunTask", "run_one", "is_complete", "failure_path", "record_failure", "read_failure",
           "TRACEBACK_LINES", "make_run_kwargs", "DEFAULT_CHECKPOINTS", "checkpoint_cadence"]

#: traceback lines kept in a failure record (the tail: where it failed)
TRACEBACK_LINES = 20
#: checkpoints per run when the sweep sets no ``checkpoint_every`` (an interrupted run loses at most
#: a tenth of its epochs; the quick preset's 500 epochs: every 50)
DEFAULT_CHECKPOINTS = 10


def checkpoint_cadence(epochs: int, every: int | None = None) -> int:
    """Epochs between a sweep run's checkpoints: ``every``, else ``ceil(epochs / DEFAULT_CHECKPOINTS)``."""
    return int(every) if every else max(1, -(-int(epochs) // DEFAULT_CHECKPOINTS))


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (picklable, JSON-friendly).

    Attributes
    ----------
    run_id, params
        From :class:`~spectral_probe.sweep.grid.RunPlan`.
    path
        The run file to write (``<outdir>/runs/<run_id>.h5``).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``...; resolved on the worker.
    threads
        ``torch.set_num_threads`` on the worker (None: leave as is).
    record_every
        Epochs per append to the run file.
    checkpoint_every
        Epochs between checkpoints (None: :func:`checkpoint_cadence`'s default); an interrupted
        run continues from its last one.
    """

    run_id: str
    params: dict
    path: str
    device: str = "auto"
    threads: int | None = 1
    record_every: int = 50
    checkpoint_every: int | None = None


def make_run_kwargs(params: dict, device: str = "auto") -> dict:
    """Keyword arguments of :func:`~spectral_probe.training.presets.make_run` for one run's parameters."""
    from .params import RUN_KEYS, TRAIN_KEYS

    kwargs = {k: v for k, v in params.items() if k in RUN_KEYS}
    train = {k: v for k, v in params.items() if k in TRAIN_KEYS}
    model_kwargs = {k: v for k, v in params.items() if k not in RUN_KEYS and k not in TRAIN_KEYS}
    return {**kwargs, **model_kwargs, "train_overrides": {**train, "device": device, "progress": False}}


class _SweepTag(RunRecorder):
    """Recorder of the run id and sweep parameters as root attributes (``sweep_run_id``, ``sweep_params``)."""

    def __init__(self, task: RunTask) -> None:
        self.task, self.writer = task, None   # train_to_file binds its writer

    def declare(self, writer=None) -> None:
        (writer or self.writer).set_attrs(None, sweep_run_id=self.task.run_id, sweep_params=self.task.params)


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a closed run file with its summary written (a finished run).

    The file is opened through the store's checks (:func:`~spectral_probe.store.reader.open_checked`:
    truncation, the structure walk in a child with a time limit, digests), so a damaged file is not
    complete (the sweep then reruns it and the resume refusal names the damage) and never hangs."""
    from ..store.filelock import writer_alive
    from ..store.reader import open_checked
    from ..store.schema import STATUS, STATUS_CLOSED

    if not os.path.exists(path) or writer_alive(path):
        return False
    try:
        with open_checked(path, run=True) as h5:
            return (int(h5[STATUS][()]) == STATUS_CLOSED and "scalars" in h5
                    and "best_psnr" in h5["scalars"])
    except (OSError, KeyError, ValueError):
        return False


def failure_path(path: str | os.PathLike) -> Path:
    """``runs/<run_id>.h5`` -> ``runs/<run_id>.error.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".error.json")


def trim_traceback(tb: str, lines: int = TRACEBACK_LINES) -> str:
    """At most ``lines`` lines of ``tb``: its first line (``Traceback ...``), a count of the lines left
    out, and the tail (where it failed). A deep stack (long data paths, nested calls) keeps both ends."""
    rows = tb.rstrip().splitlines()
    if len(rows) <= lines:
        return "\n".join(rows)
    tail = rows[-(lines - 2):]
    return "\n".join([rows[0], f"  ... ({len(rows) - len(tail) - 1} lines left out)", *tail])


def record_failure(task: RunTask, error: BaseException | str, tb: str = "") -> dict:
    """Write the failure record of ``task`` (atomically) and return it."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    record = {"run_id": task.run_id, "status": "failed", "error": " ".join(message.split()) or "unknown error",
              "traceback": trim_traceback(tb), "params": task.params,
              "host": socket.gethostname(), "pid": os.getpid(),
              "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    dest = failure_path(task.path)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record, indent=1, default=str))
        os.replace(tmp, dest)
    except OSError as exc:      # the summary still carries the error back to the sweep
        record["error"] += f" (and the failure record could not be written: {exc})"
    return record


def read_failure(path: str | os.PathLike) -> dict | None:
    """The failure record beside run file ``path``, or None."""
    try:
        return json.loads(failure_path(path).read_text())
    except (OSError, ValueError):
        return None


def _summary(task: RunTask, status: str, result=None, notes=()) -> dict:
    out = {"run_id": task.run_id, "status": status, "path": task.path}
    if notes:
        out["notes"] = list(notes)
    if result is not None:
        out.update(best_psnr=result.best_psnr, final_psnr=result.final_psnr, zero_psnr=result.zero_psnr,
                   epochs_run=result.epochs_run, wall_time=result.wall_time)
    return out


def run_one(task: RunTask) -> dict:
    """Train ``task``'s configuration into its run file, unless that file is already complete.

    An unfinished run file (an interrupted sweep) is continued from its last checkpoint.

    Returns
    -------
    dict
        ``run_id``, ``status`` (``"ok"``, ``"done"`` when the file was already
        complete, ``"failed"``), ``path``; best/final/zero PSNR, epochs_run and
        wall_time for ``"ok"``, and ``notes`` (where a run was resumed); ``error`` and
        ``traceback`` for ``"failed"``.
    """
    from ..torch_settings import torch_threads

    with torch_threads(task.threads):       # the caller's thread count is back afterwards (in-process sweeps)
        return _run_one(task)


def _run_one(task: RunTask) -> dict:
    from ..training.presets import make_run
    from ..training.runs import train_to_file
    from ..store.filelock import writer_alive

    path = Path(task.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_complete(path):
        return _summary(task, "done")
    if writer_alive(path):
        record = record_failure(task, f"run file '{path}' is being written by another process (an earlier "
                                      "sweep still running?); rerun the sweep once it has ended")
        return {**_summary(task, "failed"), **record}
    notes: list[str] = []
    try:
        spec, target = make_run(**make_run_kwargs(task.params, task.device))
        _model, result = train_to_file(spec, target, path, resume=True, probes=[_SweepTag(task)],
                                       record_every=task.record_every, notes=notes,
                                       checkpoint_every=checkpoint_cadence(spec.train.epochs, task.checkpoint_every))
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, never propagated
        record = record_failure(task, exc, traceback.format_exc())
        return {**_summary(task, "failed"), **record}
    failure_path(path).unlink(missing_ok=True)
    return _summary(task, "ok", result, [n for n in notes if n.startswith("resuming")])
