"""The planner of ``reproduce paper``: its time model, and that a run leaves <= 10 % of its budget idle."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from spectral_probe.paperscale.planner import (MARGIN, ProcessState, TimeModel, Unit, h200_profile, next_unit)
from spectral_probe.paperscale.specs import JobSpec, PartSpec, Work

#: the 2026-12-04 H200 run: ../shared beside the repository (CI), or beside $SPECTRAL_PROBE_DATA
H200 = next((p for p in (Path(__file__).resolve().parents[2] / "shared" / "gpu-runs" / "2026-12-04-h200",
                         Path(os.environ.get("SPECTRAL_PROBE_DATA") or "/nonexistent").parent / "gpu-runs"
                         / "2026-12-04-h200") if p.is_dir()), Path("/nonexistent"))
PAPER = Work("siren2", 150_000, 1, 222, 4, 30_000)


def _unit(kind, work=(), resumable=False, name=None, progress=0.0):
    name = name or f"{kind}-{random.random():.6f}"
    part = PartSpec(kind, name, kind, {"n": name}, tuple(work), resumable=resumable)
    return Unit(JobSpec(kind, "figure" if kind.startswith("fig") else "table1", {}, [part]), [part], progress)


def _profile():
    """An H200-like profile: the 2026-12-04 rates and overheads (rounded)."""
    return {"rates": {PAPER.shape: [0.00513], Work("siren", 65536, 1, 128, 4, 0).shape: [0.00288]},
            "overheads": {"fig4": [33.3], "fig5": [1.5], "fig7": [3.0], "fig13": [5.7], "table1": [0.2]},
            "compile": {"warmup": [10.8], "switch": [55.5], "recompile": [2.6]}}


def test_estimate_adds_training_compile_and_overhead():
    model = TimeModel(_profile(), "cuda", compiled=True)
    unit = _unit("table1", [PAPER], resumable=True)
    assert model.estimate(unit) == pytest.approx(30_000 * 0.00513 + 0.2)
    fresh = ProcessState(compiled=True)
    assert model.estimate(unit, fresh) == pytest.approx(30_000 * 0.00513 + 0.2 + 10.8)           # first compile
    fresh.saw(PAPER.shape)
    assert model.estimate(unit, fresh) == pytest.approx(30_000 * 0.00513 + 0.2)                  # compiled already
    other = _unit("fig4", [Work("siren", 65536, 1, 128, 4, 1000)] * 3)
    assert model.estimate(other, fresh) == pytest.approx(3000 * 0.00288 + 33.3 + 55.5)           # dynamic recompile
    fresh.saw(Work("siren", 65536, 1, 128, 4, 0).shape)
    third = _unit("fig14", [Work("siren", 150_000, 1, 256, 4, 100)])
    assert model.compile_cost(fresh.compile_term(third.work[0].shape)) == 2.6
    half = _unit("table1", [PAPER], resumable=True, progress=0.5)
    assert model.training_seconds(half) == pytest.approx(15_000 * 0.00513)
    assert model.estimate(_unit("table1", [PAPER], resumable=True), None) < \
        model.estimate(Unit(unit.job, unit.parts * 5))                        # 5 together: 5 x until measured


def test_unmeasured_shapes_follow_an_affine_fit_of_the_measured_ones():
    model = TimeModel(_profile(), "cuda")
    big = Work("siren", 150_000, 1, 512, 4, 1)
    u_small, u_big = 65536 * 128 ** 2 * 4, 150_000 * 222 ** 2 * 4
    slope = (0.00513 - 0.00288) / (u_big - u_small)
    assert model.rate(big) == pytest.approx(0.00288 + slope * (big.units - u_small))
    model.observe_rate(big.shape, 1, 0.011)
    assert model.rate(big) == 0.011
    assert TimeModel({}, "cpu").rate(PAPER) == pytest.approx(PAPER.units * 1.2e-10)             # the CPU model
    assert model.overhead("never-seen") > 0


def test_observations_keep_the_last_eight():
    model = TimeModel({}, "cpu")
    for v in range(12):
        model.observe_overhead("fig5", float(v))
    assert model.profile["overheads"]["fig5"] == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    assert model.overhead("fig5") == 7.5


def test_next_unit_prefers_partial_work_then_what_fits_then_a_cut():
    model = TimeModel(_profile(), "cuda")
    fig5, fig4 = _unit("fig5"), _unit("fig4", [Work("siren", 65536, 1, 128, 4, 1000)] * 3)
    cell = _unit("table1", [PAPER], resumable=True)
    partial = _unit("table1", [PAPER], resumable=True, progress=0.9)
    process = ProcessState(False)
    assert next_unit([fig5, cell, partial], 500, model, process)[0] is partial
    assert next_unit([fig4, cell, fig5], 40, model, process)[0] is fig5            # fig4 needs 42 s x margin
    unit, est, cut = next_unit([fig4, cell], 40, model, process)
    assert unit is cell and cut and est > 40                                       # cut at the deadline
    assert next_unit([fig4, cell], 5, model, process)[0] is None                  # < 10 s of progress: nothing
    assert next_unit([fig4, cell], 5, model, process, min_progress=2)[0] is cell


def _simulate(units, budget, model, rng, reserve=10.0):
    """Run the planner against 'actual' times within +-20 % of its estimates; returns (idle, overrun)."""
    left, clock, end = list(units), 0.0, budget - reserve
    process = ProcessState(compiled=False)
    while True:
        unit, est, cut = next_unit(left, end - clock, model, process, min(10.0, 0.05 * budget))
        if unit is None:
            break
        left.remove(unit)
        actual = est * rng.uniform(0.8, 1.2)
        if unit.resumable and clock + actual > end:         # training stops at the deadline (one epoch late)
            done = (end - clock) / actual
            clock = end + 0.01
            if done < 1:
                left.insert(0, Unit(unit.job, unit.parts, unit.progress + (1 - unit.progress) * done))
            break
        clock += actual
    idle = max(0.0, budget - clock) if left else 0.0
    return idle, max(0.0, clock - budget)


@pytest.mark.parametrize("budget", [120, 300, 540, 900])
@pytest.mark.parametrize("seed", range(5))
def test_a_run_leaves_at_most_ten_percent_of_its_budget_idle(budget, seed):
    rng = random.Random(seed)
    random.seed(seed)
    model = TimeModel(_profile(), "cuda")
    units = [_unit(k) for k in rng.sample(["fig5", "fig7", "fig13"], 3)]
    units += [_unit("fig4", [Work("siren", 65536, 1, 128, 4, 1000)] * 3)]
    units += [_unit("table1", [PAPER], resumable=True) for _ in range(rng.randint(3, 8))]
    rng.shuffle(units)
    idle, overrun = _simulate(units, budget, model, rng)
    assert idle <= 0.10 * budget, (idle, budget)
    assert overrun <= 0.2 * MARGIN * 45          # only a non-resumable part can overrun, by its estimate's error


def test_table1_estimates_within_25_percent_of_the_h200_run():
    if not H200.is_dir():
        pytest.skip("../shared/gpu-runs/2026-12-04-h200 not present")
    reports = [json.loads((H200 / name).read_text()) for name in ("paper_scale.json", "table1_tetris.json")]
    model = TimeModel(h200_profile(reports), "cuda", compiled=True)
    assert model.compile_cost("warmup") == pytest.approx((10.662 + 10.989) / 2, abs=0.01)
    checked = 0
    for report in reports:
        for job in report["jobs"]:
            if job["status"] != "ok":
                continue
            if job["kind"] == "table1":
                unit = _unit("table1", [Work(job["config"]["model"], 150_000, 1, 222, 4, 30_000)], True)
            else:
                from spectral_probe.paperscale.jobs import figure_job

                spec = figure_job(job["name"][3:], "paper", "tetris.wav")
                unit = Unit(spec, spec.parts)
            estimate = model.estimate(unit)       # the shapes were compiled before (the run's calibration)
            assert 0.75 <= job["seconds"] / estimate <= 1.25, (job["name"], estimate, job["seconds"])
            checked += 1
    assert checked == 9
