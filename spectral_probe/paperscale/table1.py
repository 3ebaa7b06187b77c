"""Table 1 parts of ``reproduce paper``: one seed of a file x architecture cell, or K seeds trained together.

One seed trains through :func:`~spectral_probe.training.runs.train_to_file` into its own run file
(``runs/table1/<file>-<model>-seed<k>-<hash>.h5``: scalars every :data:`RECORD_EVERY` epochs, the
prediction, checkpoints every :data:`CHECKPOINT_EVERY` epochs and at a stop) and continues from
it when called again, to the same trajectory as an uninterrupted run.  With ``seeds_together=K``
(:data:`SEEDS_TOGETHER`) fresh seeds of one cell train as one batched model
(:func:`~spectral_probe.training.batched.fit_batched`, each seed's trajectory as alone to round-off), saving
the batch's state in ``runs/table1/<file>-<model>-seed<a>-seed<b>-<hash>.batch.h5``
(:class:`~spectral_probe.training.batched_state.BatchedCheckpoint`).  Which is faster is a property of the
device: ``benchmarks/bench_batched.py --shapes table1 --ks 1 5`` measures it at the paper size.

:func:`table1_rows` gives the mean and standard deviation of the peak PSNR over the finished seeds
beside Table 1's (Sec 5.1: "mean +- std over five random trials").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..training import Callback

__all__ = ["SEEDS_TOGETHER", "CHECKPOINT_EVERY", "RECORD_EVERY", "RunTiming", "EpochTimer", "run_path",
           "batch_path", "compute_unit", "table1_rows", "part_progress"]

#: fresh seeds of one Table 1 cell trained together (1: one at a time).  Set from
#: ``bench_batched.py --shapes table1 --ks 5`` on the device: a batch of 5 pays when its epoch takes
#: less than 5 single epochs.  On one H200 (2026-12-04, benchmarks/README.md) the eager batch of 5 took
#: 8.31 ms per model-epoch against 4.72 ms for one compiled model, so 1.  ``reproduce paper
#: --seeds-together K`` overrides it for one run.
SEEDS_TOGETHER = 1
#: epochs between checkpoints of a Table 1 run (paper: ~48 s of H200 time, 2.4 MB each); None: only at stops
CHECKPOINT_EVERY = {"paper": 10_000, "test": None}
#: epochs between recorded rows of the scalars (loss, PSNR, lr)
RECORD_EVERY = {"paper": 50, "test": 5}


@dataclass
class RunTiming:
    """One training run's timing: shape key, models together, first epoch (compile), epochs and seconds."""

    shape: str | None
    k: int
    first_epoch_s: float
    epochs: int
    seconds: float


class EpochTimer(Callback):
    """Time a fit: its first epoch (where ``torch.compile`` compiles) and the rest (the sustained rate).

    Host clock at epoch ends (no device sync); the fit's own end syncs the device.
    """

    def __init__(self, k: int = 1) -> None:
        self.k = k
        self.runs: list[RunTiming] = []
        self._t0 = self._first = self._last = None
        self._start = 0
        self._shape = None

    def on_fit_start(self, state) -> None:
        from .jobs import Work

        config = getattr(state.model, "config", None) or {}
        self._shape = None
        if {"model", "width", "depth"} <= set(config):
            self._shape = Work(config["model"], int(state.coords.shape[0]), int(state.coords.shape[1]),
                               int(config["width"]), int(config["depth"]), 0).shape
        self._start = state.start_epoch
        self._t0, self._first, self._last = time.perf_counter(), None, None

    def on_epoch_end(self, state) -> None:
        t = time.perf_counter()
        if self._first is None:
            self._first = t - self._t0
        self._last = t
        self._epochs = state.epoch + 1 - self._start

    def on_fit_end(self, state, result) -> None:
        if self._first is None:
            return
        self.runs.append(RunTiming(self._shape, self.k, self._first, self._epochs, time.perf_counter() - self._t0))


def run_path(out: Path, job, part) -> Path:
    stem = Path(job.file).stem
    return Path(out) / "runs" / "table1" / f"{stem}-{job.model}-{part.name}-{part.hash[:8]}.h5"


def batch_path(out: Path, job, parts) -> Path:
    from .jobs import settings_hash

    stem = Path(job.file).stem
    key = settings_hash([p.hash for p in parts])[:8]
    return Path(out) / "runs" / "table1" / f"{stem}-{job.model}-{parts[0].name}-{parts[-1].name}-{key}.batch.h5"


def part_progress(out: Path, job, part, epochs: int) -> float:
    """Fraction of a single-seed part's epochs saved in its run file's last checkpoint (0 without one)."""
    path = run_path(out, job, part)
    if not path.exists():
        return 0.0
    from ..training.checkpoint import checkpoint_steps

    try:
        steps = checkpoint_steps(path)
    except (OSError, ValueError, KeyError):      # damaged: the part fails when it runs, naming the file
        return 0.0
    return float(steps[-1]) / epochs if steps.size else 0.0


def _numbers(result, paper) -> dict:
    return {"best_psnr": result.best_psnr, "best_epoch": result.best_epoch, "final_psnr": result.final_psnr,
            "zero_psnr": result.zero_psnr, "epochs": result.epochs_run, "train_s": round(result.wall_time, 3),
            "paper_psnr": paper}


def compute_unit(unit, preset: str, out: Path, *, device: str, callbacks=(), notes: list | None = None
                 ) -> tuple[list[tuple], EpochTimer, list[Path]]:
    """Train the seeds of ``unit``; returns ``([(part, complete, progress, numbers)], timer, files)``."""
    from ..paper_data import table1_psnr
    from .jobs import table1_run

    job = unit.job
    paper = (table1_psnr(job.file) or {}).get(job.model)
    paper = paper[0] if paper else None
    runs = [table1_run(job.file, job.model, preset, int(p.name.removeprefix("seed"))) for p in unit.parts]
    timer = EpochTimer(k=unit.k)
    notes = notes if notes is not None else []
    if unit.k == 1 and unit.batch_file is None:
        from ..training.runs import train_to_file

        (spec, loaded), part = runs[0], unit.parts[0]
        spec = replace(spec, train=replace(spec.train, device=device))
        path = run_path(out, job, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        _, result = train_to_file(spec, loaded, path, resume=True, record_every=RECORD_EVERY[preset],
                                  checkpoint_every=CHECKPOINT_EVERY[preset], callbacks=[*callbacks, timer],
                                  handle_signals=False, notes=notes)
        epochs = spec.train.epochs
        return [(part, result.epochs_run >= epochs, result.epochs_run / epochs, _numbers(result, paper))], timer, [path]
    from ..training.batched import fit_batched
    from ..training.batched_state import BatchedCheckpoint

    spec, loaded = runs[0]
    path = Path(out) / unit.batch_file if unit.batch_file else batch_path(out, job, unit.parts)
    check = BatchedCheckpoint(path, key=[p.hash for p in unit.parts], every=CHECKPOINT_EVERY[preset])
    models = [s.build_model() for s, _ in runs]
    per_model = [[*callbacks] + ([timer] if i == 0 else []) for i in range(unit.k)]
    results = fit_batched(models, loaded, replace(spec.train, device=device), callbacks=per_model,
                          checkpoint=check, max_models=unit.k)
    epochs = spec.train.epochs
    out_rows = [(part, r.epochs_run >= epochs, r.epochs_run / epochs, {**_numbers(r, paper), "batch": unit.k})
                for part, r in zip(unit.parts, results)]
    return out_rows, timer, [path]


def table1_rows(manifest, jobs) -> list:
    """One :class:`~spectral_probe.reproduce.Table1Row` per Table 1 job: the done seeds' peak PSNRs."""
    from ..paper_data import table1_psnr
    from ..reproduce import Table1Row

    rows = []
    for job in jobs:
        if job.kind != "table1":
            continue
        rec = manifest.jobs.get(job.name, {})
        parts = rec.get("parts", {})
        psnr = [parts[p.name]["numbers"]["best_psnr"] for p in job.parts
                if parts.get(p.name, {}).get("state") == "done" and "numbers" in parts[p.name]]
        failed = sum(1 for p in job.parts if parts.get(p.name, {}).get("state") == "failed")
        rows.append(Table1Row(job.file, job.model, psnr, failed, (table1_psnr(job.file) or {}).get(job.model)))
    return rows
