"""``reproduce_paper``: continue the manifest of an output folder within a time budget.

One run: read the manifest (refusing a damaged one), take the folder's lock, list the parts left
(settings changed since the manifest's run: redone, and said so), plan with the device's time
model, then run parts until the budget's deadline -- training stops at the deadline with a
checkpoint (:class:`~spectral_probe.training.Deadline`) and continues next time.  The manifest is
rewritten after every part; SIGTERM/SIGINT stop the training at the next epoch with a checkpoint
(a second signal, or one outside training, stops at once), and what finished or was checkpointed
is kept.  At the end: the README and ``.gitignore`` of the folder are regenerated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .jobs import JobSpec, canonical, catalogue, known_jobs, parse_budget, select
from .manifest import Manifest, environment, now, writer_lock
from .execute import Interrupted, _secs, draw_ready, run_unit, undrawn
from .planner import MIN_PROGRESS_S, ProcessState, TimeModel, Unit, next_unit

__all__ = ["RunReport", "reproduce_paper", "paper_status", "Interrupted", "data_folder"]

#: exit codes of the CLI: every unit of the plan ran / a part failed / bad input / interrupted
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 124


@dataclass
class RunReport:
    """What one ``reproduce_paper`` call did."""

    out: Path
    budget_s: float
    used_s: float = 0.0
    idle_s: float = 0.0
    ended_by: str = "done"
    plan: list = field(default_factory=list)
    advanced: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    left: list = field(default_factory=list)
    left_estimate_s: float = 0.0
    listing_s: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.ended_by in ("SIGTERM", "SIGINT"):
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed else EXIT_OK


@contextlib.contextmanager
def data_folder(data):
    """Set ``$SPECTRAL_PROBE_DATA`` to ``data`` (a folder) for the block; restored afterwards."""
    from ..signals.io import DATA_ENV

    if data is None:
        yield
        return
    if not Path(data).is_dir():
        raise ValueError(f"--data {str(data)!r} is not a folder")
    saved = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(Path(data).resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = saved


def _reconcile(manifest: Manifest, jobs: list[JobSpec]) -> list[str]:
    """Settings changed since the manifest's run: the job (or part) starts afresh; one note each."""
    notes = []
    for job in jobs:
        rec = manifest.jobs.get(job.name)
        if rec is not None and rec.get("hash") not in (None, job.hash):
            notes.append(f"{job.name}: settings changed since its recorded run (hash {rec.get('hash')} -> "
                         f"{job.hash}); redone (the old record is kept under 'superseded')")
            manifest.supersede(job.name, f"settings hash {rec.get('hash')} -> {job.hash}")
        rec = manifest.job(job.name, job.kind, job.hash)
        rec["kind"], rec["hash"], rec["settings"] = job.kind, job.hash, canonical(job.settings)
        if job.kind == "table1":
            from ..paper_data import table1_psnr

            rec["paper"] = list((table1_psnr(job.file) or {}).get(job.model) or []) or None
            rec.update(file=job.file, model=job.model)
        else:
            rec["number"] = job.number
        for part in job.parts:
            prec = rec["parts"].get(part.name)
            if prec is not None and prec.get("hash") not in (None, part.hash):
                notes.append(f"{part.id}: settings changed (hash {prec.get('hash')} -> {part.hash}); redone")
                rec["parts"][part.name] = {"state": "todo", "progress": 0.0, "superseded": prec}
            manifest.part(job.name, part.name)["hash"] = part.hash
    return notes


def _units(manifest: Manifest, jobs: list[JobSpec], out: Path, seeds_together: int, preset: str = "paper",
           target: str | None = None) -> list[Unit]:
    """The work left, as units: a part, a partial batch of seeds, or K fresh seeds of a cell together.

    Progress comes from the files where they say it (a Table 1 run file's last checkpoint, a figure
    part's status), else from the manifest.
    """
    from . import figparts
    from ..signals import cached_targets
    from .table1 import part_progress

    with cached_targets():          # every part's settings read the same few target files
        return _units_of(manifest, jobs, out, seeds_together, preset, target, figparts, part_progress)


def _units_of(manifest, jobs, out, seeds_together, preset, target, figparts, part_progress) -> list[Unit]:
    units = []
    for job in jobs:
        if manifest.job_done(job.name, job.hash):
            continue
        rec = manifest.jobs[job.name]
        left = [p for p in job.parts if rec["parts"].get(p.name, {}).get("state") != "done"]
        if job.kind != "table1":
            units += [Unit(job, [p], figparts.progress(job, p, preset, target, out,
                                                       float(rec["parts"][p.name].get("progress", 0.0))))
                      for p in left]
            continue
        batches: dict[str, list] = {}
        fresh = []
        for p in left:
            prec = rec["parts"][p.name]
            if prec.get("batch"):
                batches.setdefault(prec["batch"], []).append(p)
                continue
            progress = part_progress(out, job, p, p.work[0].epochs)
            if progress > 0 or seeds_together <= 1:
                units.append(Unit(job, [p], progress))
            else:
                fresh.append(p)
        for file, parts in batches.items():
            units.append(Unit(job, parts, max(rec["parts"][p.name].get("progress", 0.0) for p in parts), file))
        for i in range(0, len(fresh), seeds_together):
            units.append(Unit(job, fresh[i:i + seeds_together]))
    return units


def _fallback_overheads(jobs: list[JobSpec], preset: str) -> dict:
    """CPU seconds of each figure kind beyond its training (recipe estimate minus the CPU training model)."""
    from ..figures import get_recipe
    from ..training.presets import CPU_SECONDS_PER_UNIT

    out = {"table1": 0.5}
    for job in jobs:
        if job.kind == "figure":
            train = sum(w.epochs * w.units * CPU_SECONDS_PER_UNIT for p in job.parts for w in p.work)
            rest = max(0.5, get_recipe(job.number).estimate(preset) - train)
            out[f"fig{job.number}"] = rest / max(1, len(job.parts))
    return out


class _Signals:
    """SIGTERM/SIGINT: move the deadline to now (training stops at the next epoch with a checkpoint);
    outside training, or at the second signal, raise :class:`Interrupted`."""

    def __init__(self, deadline) -> None:
        self.deadline, self.name, self.training = deadline, None, False
        self.old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self._on) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)

    def _on(self, signum, frame):
        first = self.name is None
        self.name = signal.Signals(signum).name
        self.deadline.at = 0.0
        if not (first and self.training):
            raise Interrupted(self.name)


def reproduce_paper(out: str | os.PathLike = "figures/paper", *, preset: str = "paper", device: str = "auto",
                    budget="9m", data: str | os.PathLike | None = None, jobs: Sequence[str] | None = None,
                    seeds: int = 5, seeds_together: int | None = None, target: str = "tetris.wav",
                    plan_only: bool = False, dpi: int = 80, log: Callable[[str], None] = print,
                    started: float | None = None) -> RunReport:
    """Continue the reproduction in ``out`` for at most ``budget`` (see the module docstring).

    Parameters
    ----------
    out
        Output folder (``manifest.json``, figures, Table 1 runs, README).
    preset
        ``"paper"`` (the paper's sizes; GPU) or ``"test"`` (seconds on a CPU).
    budget
        Wall-clock budget of the whole call: ``"9m"``, ``"540s"``, seconds.
    jobs
        Selectors (:func:`~spectral_probe.paperscale.jobs.select`); default: everything.
    seeds, seeds_together
        Table 1 trials per cell (the paper: 5) and how many fresh seeds train together
        (default :data:`~spectral_probe.paperscale.table1.SEEDS_TOGETHER`).
    plan_only
        Print the plan and estimates; run nothing and write nothing.
    started
        ``time.time()`` from which the budget counts (default: now; the CLI passes the moment its command
        started, so that ``--budget 9m`` bounds the whole command, torch's import included).
    """
    from ..torch_settings import float32_matmul
    from ..devices import resolve_device
    from ..validation import positive_int
    from .table1 import SEEDS_TOGETHER

    started = time.time() if started is None else float(started)
    budget_s = parse_budget(budget)
    k = positive_int(SEEDS_TOGETHER if seeds_together is None else seeds_together, "--seeds-together")
    out = Path(out)
    report = RunReport(out, budget_s)
    from ..signals import cached_targets

    with data_folder(data):
        with cached_targets():
            every = known_jobs(None, preset, target, seeds)         # None when a data file is missing
            selected = select(every, jobs) if every is not None else \
                catalogue(preset, target, seeds, selectors=jobs or None)
        manifest = Manifest.load(out)
        recorded = manifest.data.get("preset")
        if recorded not in (None, preset):
            raise ValueError(f"'{out}' holds a reproduction at the {recorded!r} preset; use another --out for "
                             f"--preset {preset} (nothing was changed)")
        dev = resolve_device(device)
        lock = contextlib.nullcontext() if plan_only else writer_lock(out)
        from ..ntk.parallel import cpu_guard

        with lock, float32_matmul("highest"), cpu_guard(dev):
            report.notes += _reconcile(manifest, selected)
            for note in report.notes:
                log(f"note: {note}")
            env = environment(dev)
            model = TimeModel(manifest.profile(env["device"]), dev.type, compiled=preset == "paper",
                              fallback_overhead=_fallback_overheads(selected, preset))
            t_list = time.time()
            units = _units(manifest, selected, out, k, preset, target)
            report.listing_s = time.time() - t_list       # the end of the run lists the units again
            process = ProcessState(compiled=preset == "paper")
            if dev.type == "cuda" and not model.measured and units and not plan_only:
                _measure_device(units, model, process, str(dev), log)
            report.plan = _simulate(units, budget_s - (time.time() - started) - 2 * report.listing_s, model, process)
            _print_plan(report.plan, env, budget_s, log)
            if plan_only:
                return report
            from . import readme

            when = dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds")
            run = {"id": len(manifest.data["runs"]) + 1, "started": when, "started_ts": round(started, 3),
                   **{k_: env[k_] for k_ in ("device", "torch", "commit")}, "budget_s": budget_s, "advanced": [],
                   "wrote": []}
            manifest.data["runs"].append(run)
            manifest.data.update(preset=preset, target=target)
            try:
                _execute(units, manifest, selected, model, process, env, report, run, started, out, preset,
                         target, str(dev), dpi, log)
            finally:
                left = _units(manifest, selected, out, k, preset, target)
                drawings = undrawn(manifest, selected)          # parts all done, the figure not drawn yet
                report.left = [u.name for u in left] + [f"{job.name}/draw" for job in drawings]
                report.left_estimate_s = (sum(model.estimate(u) for u in left)
                                          + sum(model.overhead(f"fig{job.number}-draw") for job in drawings))
                if report.left and report.ended_by == "done":
                    report.ended_by = "budget"            # what is left did not fit in the time left
                report.used_s = time.time() - started
                report.idle_s = max(0.0, budget_s - report.used_s) if report.left else 0.0
                run.update(ended=now(), used_s=round(report.used_s, 2), idle_s=round(report.idle_s, 2),
                           ended_by=report.ended_by, failed=report.failed)
                manifest.save()
                readme.write(out, manifest, every or known_jobs(manifest, preset, target, seeds))
                log(f"{report.ended_by}: {len(report.advanced)} part(s) advanced in {report.used_s:.0f} s of "
                    f"{budget_s:.0f} s; {len(report.left)} unit(s) left (~{report.left_estimate_s:.0f} s on "
                    f"{env['device']}); idle {report.idle_s:.0f} s")
    return report


def _simulate(units: list[Unit], time_left: float, model: TimeModel, process: ProcessState) -> list[tuple]:
    """The plan as the planner would run it if every estimate held: ``[(name, estimate, status)]``."""
    left, sim = list(units), ProcessState(process.compiled, set(process.shapes))
    plan = []
    min_progress = min(MIN_PROGRESS_S, 0.05 * time_left)
    time_left -= _reserve(time_left)
    while left:
        unit, est, cut = next_unit(left, time_left, model, sim, min_progress)
        if unit is None:
            break
        plan.append((unit.name, est, "cut at the deadline" if cut else "planned"))
        for w in unit.work:
            sim.saw(w.shape)
        left.remove(unit)
        time_left -= est
        if cut:
            break
    plan += [(u.name, model.estimate(u), "later") for u in left]
    return plan


def _print_plan(plan, env, budget_s, log) -> None:
    log(f"reproduce paper on {env['device']} (torch {env['torch']}, commit {env['commit']}), budget {budget_s:.0f} s")
    for name, est, status in plan:
        log(f"  {name:<44} {_secs(est):>8}  {status}")
    log(f"estimate: {sum(e for _, e, s in plan if s != 'later'):.0f} s planned, "
        f"{sum(e for _, e, _ in plan):.0f} s for everything left")


def _measure_device(units, model: TimeModel, process: ProcessState, device: str, log) -> None:
    """A device without a profile: time 2 + 10 epochs of the largest training shape of the first unit."""
    from ..models import build_model
    from ..signals import load_target
    from ..training import fit

    work = max((w for u in units for w in u.work), key=lambda w: w.units, default=None)
    if work is None:
        return
    target = load_target("synthetic:broadband", n=work.n)
    net = build_model(work.model if work.model in ("siren", "finer") else "siren", width=work.width,
                      depth=work.depth)
    t0 = time.perf_counter()
    fit(net, target, epochs=2, device=device, compile=process.compiled)
    first = time.perf_counter() - t0
    res = fit(net, target, epochs=10, device=device, compile=process.compiled)
    model.observe_rate(work.shape, 1, res.wall_time / res.epochs_run)
    if process.compiled:
        model.observe_compile("warmup", first)
    process.saw(work.shape)
    log(f"measured {work.shape}: {1e3 * res.wall_time / res.epochs_run:.2f} ms/epoch (first call {first:.1f} s)")


def _reserve(budget_s: float) -> float:
    """Seconds kept at the end for the last checkpoint, the manifest and the README."""
    return min(15.0, max(1.0, 0.02 * budget_s))


def _execute(units, manifest, jobs, model, process, env, report, run, started, out, preset, target, device, dpi,
             log) -> None:
    from ..training import Deadline

    # the end: the last checkpoint, listing the units left (as long as at the start, x 2 for a margin), the README
    deadline = Deadline(started + report.budget_s - _reserve(report.budget_s) - 2 * report.listing_s)
    min_progress = min(MIN_PROGRESS_S, 0.05 * report.budget_s)
    with _Signals(deadline) as sig:
        try:
            # figures whose parts were all done by an earlier run that had no time left to draw them
            draw_ready(manifest, jobs, model, env, report, run, out, preset, target, dpi, deadline.at, log)
            while True:
                unit, est, cut = next_unit(units, deadline.at - time.time(), model, process, min_progress)
                if unit is None or sig.name:
                    break
                units.remove(unit)
                log(f"{unit.name} (estimate {_secs(est)}{', cut at the deadline' if cut else ''}) ...")
                run_unit(unit, est, manifest, jobs, model, process, env, report, run, out, preset, target,
                          device, dpi, deadline, sig, log)
                manifest.save()
                if sig.name:
                    break
        except Interrupted as exc:
            log(f"interrupted ({exc}); finished and checkpointed work is kept")
        if sig.name:
            report.ended_by = sig.name
        elif time.time() >= deadline.at - 1:
            report.ended_by = "budget"
        draw_ready(manifest, jobs, model, env, report, run, out, preset, target, dpi, deadline.at, log)


def paper_status(out: str | os.PathLike = "figures/paper", *, preset: str | None = None, target: str = "tetris.wav",
                 seeds: int = 5) -> str:
    """The folder's state as text: per job its state, parts, wall time and numbers (reads files only)."""
    from .readme import status_text

    manifest = Manifest.load(out)
    preset = preset or manifest.data.get("preset") or "paper"
    return status_text(manifest, known_jobs(manifest, preset, target, seeds), preset)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(reproduce_paper().exit_code)
