"""Running a sweep: plan the runs, skip finished ones, dispatch the rest, record failures, combine."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .combine import combine
from .config import SweepSpec
from .executors import LocalExecutor, SweepExecutor
from .grid import RunPlan, expand
from .unit import RunTask, is_complete, read_failure, record_failure, run_one
from .validate import SweepValidationError, check_device, validate_runs
from ..validation import positive_int

__all__ = ["SweepPlan", "SweepReport", "plan_sweep", "run_sweep"]


@dataclass
class SweepPlan:
    """The runs of a sweep in ``outdir`` and which of them still have to run."""

    spec: SweepSpec
    outdir: Path
    plans: list[RunPlan]
    index: object
    tasks: list[RunTask]
    todo: list[RunTask]

    @property
    def done(self) -> int:
        return len(self.tasks) - len(self.todo)


@dataclass
class SweepReport:
    """Outcome of :func:`run_sweep`."""

    path: Path
    total: int
    skipped: int
    ran: int
    failed: dict[str, str] = field(default_factory=dict)
    dataset: object = None


def plan_sweep(spec: SweepSpec, outdir: str | Path, *, device: str = "auto", threads: int | None = 1,
               record_every: int = 50, retry_failed: bool = True, validate: bool = True,
               device_here: bool = True, checkpoint_every: int | None = None) -> SweepPlan:
    """Validate ``spec``, list its runs, and find those whose run file is not complete yet.

    ``checkpoint_every`` (default: the ``[sweep]`` setting, else ten checkpoints per run,
    :func:`~spectral_probe.sweep.unit.checkpoint_cadence`) sets the runs' resume points: an
    unfinished run continues from its last checkpoint.

    ``retry_failed=False`` also skips runs with a failure record.  With ``validate`` (default)
    every run still to do is checked before anything starts
    (:func:`~spectral_probe.sweep.validate.validate_runs`: ranges, model arguments, targets) and,
    with ``device_here`` (the runs execute on this machine), the device.

    Raises
    ------
    ValueError
        A bad sweep spec, or ``device`` unavailable here.
    SweepValidationError
        Invalid runs (a ``ValueError``; ``.problems`` lists one per run).
    """
    spec = spec.validated()
    outdir = Path(outdir)
    plans, index = expand(spec)
    runs = outdir / "runs"
    every = positive_int(checkpoint_every if checkpoint_every is not None else spec.settings.get("checkpoint_every"),
                         "checkpoint_every", allow_none=True)
    tasks = [RunTask(p.run_id, p.params, str(runs / f"{p.run_id}.h5"), device, threads, record_every, every)
             for p in plans]
    todo = [t for t in tasks if not is_complete(t.path) and (retry_failed or read_failure(t.path) is None)]
    if validate and todo:
        if device_here:
            try:
                check_device(device)
            except ValueError as exc:
                raise ValueError(f"sweep device: {exc}") from None
        problems = validate_runs(todo, labels=list(spec.grid))
        if problems:
            raise SweepValidationError(problems, len(todo))
    return SweepPlan(spec, outdir, plans, index, tasks, todo)


def _write_manifest(plan: SweepPlan) -> None:
    manifest = {"name": plan.spec.name, "settings": plan.spec.settings, "fixed": plan.spec.fixed,
                "grid": plan.spec.grid, "runs": {p.run_id: p.params for p in plan.plans}}
    (plan.outdir / "sweep.json").write_text(json.dumps(manifest, indent=1, default=str))


def run_sweep(plan: SweepPlan, executor: SweepExecutor | None = None, *,
              on_result: Callable[[dict], None] | None = None, unit: Callable[[RunTask], dict] = run_one
              ) -> SweepReport:
    """Run the unfinished runs of ``plan`` on ``executor`` and combine every run file into ``sweep.h5``.

    A run that raises is recorded (``runs/<run_id>.error.json``, ``status``/``error``
    in the Dataset) and the others go on; so does a worker that dies (its
    executor's error is recorded).  Interrupting (Ctrl-C) cancels the work not
    started and checkpoints the runs in progress; run the sweep again to resume: finished runs
    are skipped, unfinished ones continue from their last checkpoint.

    Parameters
    ----------
    plan
        From :func:`plan_sweep`.
    executor
        Default: :class:`~spectral_probe.sweep.executors.LocalExecutor`.  Shut down at the end.
    on_result
        Called with each run's summary as it arrives (progress bars).
    unit
        The function run per task (default :func:`~spectral_probe.sweep.unit.run_one`).

    Returns
    -------
    SweepReport
        With ``dataset``, the combined grid Dataset.
    """
    (plan.outdir / "runs").mkdir(parents=True, exist_ok=True)
    _write_manifest(plan)
    failed: dict[str, str] = {}
    if plan.todo:
        executor = executor or LocalExecutor(threads=plan.todo[0].threads or 1)
        with executor:
            handles = executor.submit_all(unit, plan.todo)
            tasks = dict(zip(handles, plan.todo))
            for handle in executor.as_completed(handles):
                summary = _collect(handle, tasks[handle])
                if summary["status"] == "failed":
                    failed[summary["run_id"]] = summary.get("error", "unknown error")
                if on_result is not None:
                    on_result(summary)
    grid = combine(plan.spec, plan.plans, plan.index, plan.outdir)
    return SweepReport(plan.outdir / "sweep.h5", len(plan.tasks), plan.done, len(plan.todo), failed, grid)


def _collect(handle, task: RunTask) -> dict:
    """The run's summary, or a failure record when the worker itself failed (killed, lost, timed out)."""
    try:
        return handle.result()
    except Exception as exc:  # noqa: BLE001 - any executor error becomes this run's failure record
        record = record_failure(task, f"worker failed: {type(exc).__name__}: {exc}{_resume_point(task)}",
                                "".join(traceback.format_exception(exc)))
        return {"run_id": task.run_id, "status": "failed", "path": task.path, **record}


def _resume_point(task: RunTask) -> str:
    """``; its run file holds a checkpoint at epoch N: ...`` when the run can continue from one."""
    from ..training.checkpoint import checkpoint_steps

    try:
        steps = checkpoint_steps(task.path) if Path(task.path).exists() else []
    except (OSError, ValueError, KeyError):
        return ""
    if len(steps) == 0 or int(steps[-1]) == 0:
        return ""
    return (f"; its run file holds a checkpoint at epoch {int(steps[-1])}: rerun the sweep to continue it "
            "from there")
