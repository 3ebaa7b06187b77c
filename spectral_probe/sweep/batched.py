"""``spectral-probe sweep --batch-models``: runs of one shape train together, in this process.

Runs whose models have the same layers (:func:`~spectral_probe.training.batched.batch_key`), the same
target grid and the same training settings (seeds aside) form a group; each group trains as one
batched model with :func:`~spectral_probe.training.batched.fit_batched` (a Fig 6 grid of noise scales, a
seed set), and every run still gets its own, normal run file (``scalars``, ``prediction``, the
sweep tag), so resuming, ``sweep.h5`` and :func:`~spectral_probe.sweep.load_sweep` are unchanged.
Runs that cannot be batched (mini-batch training, a full batch that does not fit in memory) run
one by one as usual.  ``wall_time`` in a batched run file is its group's.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import Callable

from .combine import combine
from .runner import SweepPlan, SweepReport, _write_manifest
from .unit import (RunTask, _summary, _SweepTag, failure_path, make_run_kwargs,
                   record_failure, run_one)

__all__ = ["group_tasks", "run_sweep_batched"]


def group_tasks(tasks: list[RunTask]) -> tuple[list[list[tuple]], list[RunTask], dict[str, str]]:
    """Split ``tasks`` into batchable groups ``[(task, spec, target, model), ...]`` and the rest.

    Returns
    -------
    groups, single, failed
        Groups of two or more runs; runs to train alone; run_id -> error for runs whose
        configuration could not be resolved (``make_run`` raised).
    """
    from ..training.batched import batch_key
    from ..training.presets import make_run

    by_key: dict[tuple, list[tuple]] = {}
    single, failed = [], {}
    for task in tasks:
        try:
            spec, target = make_run(**make_run_kwargs(task.params, task.device))
        except Exception as exc:  # noqa: BLE001 - recorded like run_one records it
            failed[task.run_id] = f"{type(exc).__name__}: {exc}"
            continue
        if spec.train.batch_size is not None and spec.train.batch_size < target.n:
            single.append(task)
            continue
        train = {k: v for k, v in spec.train.to_dict().items() if k != "seed"}
        model = spec.build_model()
        key = (batch_key(model), target.grid_shape, target.channels, tuple(sorted(train.items())), task.record_every)
        by_key.setdefault(key, []).append((task, spec, target, model))
    groups = []
    for members in by_key.values():
        if len(members) > 1:
            groups.append(members)
        else:
            single.append(members[0][0])
    return groups, single, failed


def _train_group(members: list[tuple], max_models: int | None) -> list[dict]:
    """Fit one group with fit_batched, writing one run file per member; one summary per member."""
    from ..training.batched import fit_batched
    from ..training.runs import PredictionRecorder, run_config
    from ..training.recorder import TrainingRecorder
    from ..store import TrajectoryWriter

    for task, *_ in members:
        Path(task.path).parent.mkdir(parents=True, exist_ok=True)   # the writer removes dead writers' temporaries
    try:
        with contextlib.ExitStack() as stack:
            callbacks = []
            for task, spec, target, _ in members:
                writer = stack.enter_context(TrajectoryWriter(task.path, run_config(spec, target), overwrite=True))
                tag = _SweepTag(task)
                tag.writer = writer
                callbacks.append([TrainingRecorder(writer, every=task.record_every), PredictionRecorder(writer), tag])
            results = fit_batched([m[3] for m in members], [m[2] for m in members], members[0][1].train,
                                  callbacks=callbacks, max_models=max_models)
    except Exception as exc:  # noqa: BLE001 - every member of a failed group is recorded, none propagates
        tb = traceback.format_exc()
        return [{**_summary(m[0], "failed"), **record_failure(m[0], exc, tb)} for m in members]
    out = []
    for (task, *_), result in zip(members, results):
        failure_path(task.path).unlink(missing_ok=True)
        out.append(_summary(task, "ok", result))
    return out


def run_sweep_batched(plan: SweepPlan, *, max_models: int | None = None,
                      on_result: Callable[[dict], None] | None = None, threads: int | None = None) -> SweepReport:
    """Like :func:`~spectral_probe.sweep.run_sweep`, in this process, batching runs of one shape.

    Parameters
    ----------
    plan
        From :func:`~spectral_probe.sweep.plan_sweep`.
    max_models
        Models per batch (default: what fits in memory; see ``fit_batched``).
    on_result
        Called with each run's summary.
    threads
        torch threads for the whole sweep (default: the plan's per-run threads), restored at its end.
    """
    from ..torch_settings import torch_threads

    (plan.outdir / "runs").mkdir(parents=True, exist_ok=True)
    _write_manifest(plan)
    threads = threads or (plan.todo[0].threads if plan.todo else None)
    with torch_threads(threads):            # restored for the caller when the sweep ends
        return _run_groups(plan, max_models, on_result)


def _run_groups(plan: SweepPlan, max_models: int | None, on_result: Callable[[dict], None] | None) -> SweepReport:
    from ..store.filelock import writer_alive

    failed: dict[str, str] = {}

    def report(summary: dict) -> None:
        if summary["status"] == "failed":
            failed[summary["run_id"]] = summary.get("error", "unknown error")
        if on_result is not None:
            on_result(summary)

    busy = [t for t in plan.todo if writer_alive(Path(t.path))]
    for task in busy:       # run_one refuses these with a failure record
        report(run_one(task))
    groups, single, unresolved = group_tasks([t for t in plan.todo if t not in busy])
    tasks = {t.run_id: t for t in plan.todo}
    for rid, error in unresolved.items():
        report({**_summary(tasks[rid], "failed"), **record_failure(tasks[rid], error)})
    for members in groups:
        for summary in _train_group(members, max_models):
            report(summary)
    for task in single:
        report(run_one(task))
    grid = combine(plan.spec, plan.plans, plan.index, plan.outdir)
    return SweepReport(plan.outdir / "sweep.h5", len(plan.tasks), plan.done, len(plan.todo), failed, grid)
