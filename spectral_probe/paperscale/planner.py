"""Time model and planner of ``reproduce paper``: what a part costs on this device, and what runs next.

Time model (per device, kept in the manifest under ``profiles`` and updated after every part)::

    estimate(unit) = sum over its training runs of [compile(run) + epochs_left x rate(shape, K)]
                     + overhead(kind)

* ``rate(shape, K)``: seconds per epoch of a training shape (family, samples, input dims, depth x
  width; SIREN^2 counts as SIREN), K models trained together (:func:`~spectral_probe.training.batched.fit_batched`);
  the mean of the last observations on this device (sustained rates of finished runs and short
  measurements).  Unmeasured shapes: an affine fit ``a + b x units`` (``units = n x width^2 x depth``)
  over the device's measured shapes (a single measured shape scales in proportion), K x the
  one-model rate for unmeasured batches; on a device with no measurement at all, the CPU model of
  :mod:`spectral_probe.training.presets` (CPU) or a short measurement made by the runner (GPU).
* ``compile(run)`` (compiled presets only; ``torch.compile``): ``warmup`` for the first compiled
  run of a process, ``switch`` for the first run of a second shape (dynamo recompiles with dynamic
  shapes), ``recompile`` for every later new shape, 0 for a shape already compiled in the process.
  Measured as the first epoch's wall time of each run.
* ``overhead(kind)``: the rest of a part of that kind (probes, NTK snapshots, plotting, files):
  the mean of the last observed residuals (wall time minus the training terms); unobserved kinds
  fall back to the recipe's CPU estimate beyond its training, scaled to the device.

Planner (:func:`next_unit`): continue partial work first, then in priority order take the first
unit whose estimate (x :data:`MARGIN`; x :data:`UNSEEN_MARGIN` for a part that cannot stop at the
deadline and whose kind this device has not run yet) fits the time left; when none fits, take the first unit that
can stop at the deadline and continue later (training parts with checkpoints), provided the time
left buys real progress (its compile and overhead plus :data:`MIN_PROGRESS_S`).  So a run ends with
budget left only when nothing left can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .specs import JobSpec, PartSpec, Work

__all__ = ["Unit", "TimeModel", "ProcessState", "next_unit", "MARGIN", "UNSEEN_MARGIN", "MIN_PROGRESS_S", "KEEP",
           "h200_profile"]

#: estimates are multiplied by this before they are compared with the time left
MARGIN = 1.1
#: ... and by this for a part that cannot stop at the deadline, of a kind never run on this device
UNSEEN_MARGIN = 1.5
#: a unit cut at the deadline is started only if it gets at least this much training time
MIN_PROGRESS_S = 10.0
#: observations kept per quantity (the estimate is their mean)
KEEP = 8


@dataclass
class Unit:
    """What the runner executes at once: one part, or K seeds of a Table 1 cell trained together."""

    job: JobSpec
    parts: list[PartSpec]
    progress: float = 0.0
    batch_file: str | None = None

    @property
    def k(self) -> int:
        return len(self.parts)

    @property
    def kind(self) -> str:
        return self.parts[0].kind

    @property
    def name(self) -> str:
        if self.k == 1:
            return self.parts[0].id
        return f"{self.job.name}/{self.parts[0].name}-{self.parts[-1].name} (x{self.k} together)"

    @property
    def work(self) -> tuple[Work, ...]:
        return self.parts[0].work

    @property
    def resumable(self) -> bool:
        return all(p.resumable for p in self.parts)


@dataclass
class ProcessState:
    """Compiled shapes seen in this process (the compile terms of the time model)."""

    compiled: bool
    shapes: set = field(default_factory=set)
    switched: bool = False

    def compile_term(self, shape: str) -> str | None:
        """Which compile cost the next run of ``shape`` pays: warmup, switch, recompile or None."""
        if not self.compiled or shape in self.shapes:
            return None
        if not self.shapes:
            return "warmup"
        return "recompile" if self.switched else "switch"

    def saw(self, shape: str) -> None:
        term = self.compile_term(shape)
        if term == "switch":
            self.switched = True
        self.shapes.add(shape)


def _mean(values) -> float | None:
    values = [float(v) for v in values or () if v is not None and math.isfinite(float(v))]
    return sum(values) / len(values) if values else None


def _push(store: dict, key: str, value: float) -> None:
    obs = list(store.get(key, []))
    obs.append(round(float(value), 6))
    store[key] = obs[-KEEP:]


class TimeModel:
    """Estimates from one device's profile (a dict kept in the manifest; observations update it in place).

    Parameters
    ----------
    profile
        ``{"rates": {shape: [s/epoch, ...]}, "overheads": {kind: [s, ...]}, "compile": {term: [s, ...]}}``.
    device_type
        ``"cuda"`` or ``"cpu"`` (the fallback for a device with no measurement).
    compiled
        Whether the preset's training runs through ``torch.compile`` (the compile terms).
    fallback_overhead
        ``kind -> seconds`` on the CPU for kinds this device has not run (recipe estimates).
    """

    def __init__(self, profile: dict, device_type: str = "cpu", compiled: bool = False,
                 fallback_overhead: dict | None = None) -> None:
        self.profile = profile
        for key in ("rates", "overheads", "compile"):
            profile.setdefault(key, {})
        self.device_type = device_type
        self.compiled = compiled
        self.fallback_overhead = dict(fallback_overhead or {})

    # ------------------------------------------------------------------ rates
    @property
    def measured(self) -> bool:
        return any(_mean(v) for k, v in self.profile["rates"].items() if " x" not in k)

    def rate(self, work: Work, k: int = 1) -> float:
        """Seconds per epoch of ``work``'s shape, ``k`` models together."""
        rates = self.profile["rates"]
        if k > 1:
            batched = _mean(rates.get(f"{work.shape} x{k}"))
            if batched is not None:
                return batched
            return k * self.rate(work)
        own = _mean(rates.get(work.shape))
        if own is not None:
            return own
        known = [(_units(s), _mean(v)) for s, v in rates.items() if " x" not in s and _mean(v) and _units(s)]
        if not known:
            from ..training.presets import CPU_SECONDS_PER_UNIT

            return work.units * CPU_SECONDS_PER_UNIT
        if len({u for u, _ in known}) == 1:
            u, r = known[0]
            return r * work.units / u
        a, b = _affine(known)
        return max(a + b * work.units, min(r for _, r in known) * 0.25)

    def device_ratio(self) -> float:
        """Device seconds per CPU-model second at the device's largest measured shape (1 without a measurement)."""
        from ..training.presets import CPU_SECONDS_PER_UNIT

        known = [(_units(s), _mean(v)) for s, v in self.profile["rates"].items() if " x" not in s and _mean(v)]
        known = [(u, r) for u, r in known if u]
        if not known:
            return 1.0
        u, r = max(known)
        return r / (u * CPU_SECONDS_PER_UNIT)

    # ------------------------------------------------------------------ other terms
    def compile_cost(self, term: str | None) -> float:
        if term is None:
            return 0.0
        value = _mean(self.profile["compile"].get(term))
        if value is not None:
            return value
        if self.device_type == "cuda":
            return {"warmup": 11.0, "switch": 55.0, "recompile": 3.0}[term]     # H200, 2026-12-04 (see README)
        return {"warmup": 15.0, "switch": 40.0, "recompile": 5.0}[term]

    def overhead(self, kind: str) -> float:
        value = _mean(self.profile["overheads"].get(kind))
        if value is not None:
            return value
        cpu = self.fallback_overhead.get(kind, 1.0)
        return cpu * (1.0 if self.device_type == "cpu" else max(self.device_ratio(), 0.02)) + 1.0

    def training_seconds(self, unit: Unit, progress: float | None = None) -> float:
        left = 1.0 - (unit.progress if progress is None else progress)
        return sum(left * w.epochs * self.rate(w, unit.k) for w in unit.work)

    def estimate(self, unit: Unit, process: ProcessState | None = None) -> float:
        """Seconds to finish ``unit`` from its progress, in a process that has compiled ``process.shapes``."""
        compile_s = 0.0
        if process is not None:
            sim = ProcessState(process.compiled, set(process.shapes), process.switched)
            for w in unit.work:
                compile_s += self.compile_cost(sim.compile_term(w.shape))
                sim.saw(w.shape)
        return max(0.0, self.training_seconds(unit) + compile_s + self.overhead(unit.kind))

    def margin(self, unit: Unit) -> float:
        """:data:`MARGIN`; :data:`UNSEEN_MARGIN` for a part that cannot stop early, of a kind not run here yet."""
        if unit.resumable or _mean(self.profile["overheads"].get(unit.kind)) is not None:
            return MARGIN
        return UNSEEN_MARGIN

    # ------------------------------------------------------------------ learning
    def observe_rate(self, shape: str, k: int, seconds_per_epoch: float) -> None:
        if seconds_per_epoch > 0 and math.isfinite(seconds_per_epoch):
            _push(self.profile["rates"], shape if k == 1 else f"{shape} x{k}", seconds_per_epoch)

    def observe_compile(self, term: str, seconds: float) -> None:
        if term and seconds >= 0:
            _push(self.profile["compile"], term, seconds)

    def observe_overhead(self, kind: str, seconds: float) -> None:
        if math.isfinite(seconds):
            _push(self.profile["overheads"], kind, seconds)


def _units(shape: str) -> float:
    """Units of a shape key ``"family n=N d=D LxW"``."""
    try:
        parts = dict(p.split("=") for p in shape.split() if "=" in p)
        depth, width = shape.split()[-1].split("x")
        return float(parts["n"]) * float(width) ** 2 * float(depth)
    except (KeyError, ValueError):
        return 0.0


def _affine(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``rate = a + b x units`` with ``a, b >= 0``."""
    n = len(points)
    mu = sum(u for u, _ in points) / n
    mr = sum(r for _, r in points) / n
    var = sum((u - mu) ** 2 for u, _ in points)
    b = max(0.0, sum((u - mu) * (r - mr) for u, r in points) / var) if var else 0.0
    a = mr - b * mu
    if a < 0:
        a, b = 0.0, sum(u * r for u, r in points) / sum(u * u for u, _ in points)
    return a, b


def next_unit(units: list[Unit], time_left: float, model: TimeModel, process: ProcessState,
              min_progress: float = MIN_PROGRESS_S) -> tuple[Unit | None, float, bool]:
    """The unit to run now: ``(unit, estimate, cut)``; ``cut`` says it will stop at the deadline.

    Partial units come first, then the priority order of ``units``; the first that fits whole wins;
    else the first resumable unit that gets at least ``min_progress`` seconds of training.
    """
    ordered = [u for u in units if u.progress > 0] + [u for u in units if u.progress <= 0]
    for unit in ordered:
        est = model.estimate(unit, process)
        if est * model.margin(unit) <= time_left:
            return unit, est, False
    for unit in ordered:
        if not unit.resumable:
            continue
        est = model.estimate(unit, process)
        fixed = est - model.training_seconds(unit)
        if time_left - fixed >= min_progress:
            return unit, est, True
    return None, 0.0, False


def h200_profile(paper_scale_jsons: list[dict]) -> dict:
    """A device profile from the JSON reports of ``benchmarks/paper_scale.py`` (the 2026-12-04 H200 run).

    Rates: every calibration measurement and every Table 1 run's sustained rate (training seconds
    over epochs); compile: the calibrations' first calls (the first of a process: ``warmup``; the
    second shape: ``switch``; later shapes: ``recompile``); overheads: each figure's and Table 1
    run's wall time minus its training at those rates (the shapes were compiled beforehand).
    """
    from .jobs import figure_job

    model = TimeModel({}, "cuda", compiled=True)
    for report in paper_scale_jsons:
        for i, (label, cal) in enumerate(report.get("calibration", {}).items()):
            shape = _shape_of_label(label)
            model.observe_rate(shape, 1, cal["seconds_per_epoch"])
            model.observe_compile("warmup" if i == 0 else "switch" if i == 1 else "recompile", cal["first_call_s"])
        for job in report["jobs"]:
            if job.get("kind") == "table1" and job.get("status") == "ok":
                model.observe_rate(_table1_shape(job), 1, job["train_s"] / job["epochs"])
    for report in paper_scale_jsons:
        for job in report["jobs"]:
            if job.get("status") != "ok":
                continue
            if job["kind"] == "table1":
                model.observe_overhead("table1", job["seconds"] - job["train_s"])
                continue
            number = job["name"].removeprefix("fig")
            spec = figure_job(number, report["args"]["preset"], report["args"].get("target"))
            train = sum(w.epochs * model.rate(w) for p in spec.parts for w in p.work)
            model.observe_overhead(f"fig{number}", job["seconds"] - train)
    return model.profile


def _shape_of_label(label: str) -> str:
    """``"siren N=150000 (1-D) 4x222 compiled"`` -> the shape key of :class:`Work`."""
    words = label.split()
    family, n = words[0], int(words[1].split("=")[1])
    dims = int(words[2].strip("()").split("-")[0])
    depth, width = (int(v) for v in words[3].split("x"))
    return Work(family, n, dims, width, depth, 0).shape


def _table1_shape(job: dict) -> str:
    kw = job["config"]["model_kwargs"]
    n = job["config"]["target_kwargs"]["num_samples"]
    return Work(job["config"]["model"], n, kw["in_features"], kw["width"], kw["depth"], 0).shape
