"""Sweeps that train: local pool, dask, submitit, resume after a kill, recorded failures.

Runs are tiny (width 16, depth 2, 20 epochs, 512 samples); each executor spawns
fresh processes, so this module takes tens of seconds on 2 cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.store import open_run, read_config
from spectral_probe.sweep import (FuturesExecutor, LocalExecutor, SweepSpec, is_complete, load_config,
                                  load_sweep, plan_sweep, run_one, run_sweep)

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "analyses" / "sweep_tiny.toml"
#: the tiny grid plus a target that does not exist: those runs raise and must be recorded (--no-validate
#: skips the up-front check that would refuse them, as for targets that exist only on the workers)
GRID = ["--grid", "target=synthetic:high,nowhere.wav", "--no-validate"]


def tiny(**grid):
    """The tiny sweep's fixed values with model siren and this grid."""
    base = load_config(TINY)
    return SweepSpec(fixed={**base.fixed, "model": "siren"}, grid=grid, settings=base.settings)


def sweep(*args):
    return CliRunner().invoke(main, ["sweep", str(TINY), "--no-progress", *args])


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    res = sweep(*GRID, "--out", str(out), "--workers", "2")
    assert res.exit_code == 1, res.output                    # some runs failed, the sweep went on
    assert "12 runs, 0 done, 12 to run on local process pool (2 worker(s) x 1 thread(s))" in res.output
    assert "6 of 12 runs finished" in res.output and "6 run(s) failed" in res.output
    return out


def _no_wall_time(ds):
    return ds.drop_vars("wall_time")


def test_combined_dataset_matches_run_files(local):
    ds = load_sweep(local)
    assert dict(ds.sizes) == {"model": 2, "s0": 2, "seed": 2, "target": 2, "epoch": 20}
    assert list(ds.psnr.dims) == ["model", "s0", "seed", "target", "epoch"]
    assert ds.width.item() == 16 and ds.epochs.item() == 20
    ok = ds.sel(target="synthetic:high")
    assert (ok.status == "ok").all()
    for cell in ok.run_id.values.ravel():
        row = ok.where(ok.run_id == cell, drop=True)
        path = local / "runs" / f"{cell}.h5"
        scalars = open_run(path, "scalars")
        np.testing.assert_array_equal(row.psnr.values.reshape(-1, 20)[0], scalars.psnr.values)
        # the final state is a best-state candidate too: best = max(history, final)
        assert row.best_psnr.values.ravel()[0] == scalars.best_psnr.item() == max(
            np.nanmax(scalars.psnr.values), scalars.final_psnr.item())
        assert read_config(path)["model"] == str(row.model.values.ravel()[0])
    # s0 applies to siren2 only: siren's run repeats along s0, siren2 has one run per s0
    siren, siren2 = ok.sel(model="siren"), ok.sel(model="siren2")
    assert (siren.run_id.sel(s0=1.0) == siren.run_id.sel(s0=5.0)).all()
    np.testing.assert_array_equal(siren.psnr.sel(s0=1.0), siren.psnr.sel(s0=5.0))
    assert (siren2.run_id.sel(s0=1.0) != siren2.run_id.sel(s0=5.0)).all()
    assert not np.array_equal(siren2.psnr.sel(s0=1.0), siren2.psnr.sel(s0=5.0))
    assert json.loads(ds.attrs["model_specific"]) == {"s0": ["siren2"]}
    table = load_sweep(local, table=True)
    assert table.sizes["run"] == 12 and np.isnan(table.s0.where(table.model == "siren", drop=True)).all()


def test_a_run_that_raises_is_recorded(local):
    bad = load_sweep(local).sel(target="nowhere.wav")
    assert (bad.status == "failed").all() and np.isnan(bad.best_psnr).all() and (bad.epochs_run == -1).all()
    assert all("nowhere.wav" in e and "FileNotFoundError" in e for e in bad.error.values.ravel())
    record = json.loads((local / "runs" / f"{bad.run_id.values.ravel()[0]}.error.json").read_text())
    assert record["params"]["target"] == "nowhere.wav" and "Traceback" in record["traceback"]
    assert record["traceback"].count("\n") < 20


def test_dask_scheduler_gives_the_same_dataset(local, tmp_path):
    from spectral_probe.torch_settings import kept_environment

    distributed = pytest.importorskip("distributed")
    with kept_environment(), distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                                      host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        res = sweep(*GRID, "--out", str(tmp_path), "--scheduler", address)
    assert res.exit_code == 1 and f"on dask scheduler {address} (2 worker(s))" in res.output, res.output
    xr.testing.assert_identical(_no_wall_time(load_sweep(tmp_path)), _no_wall_time(load_sweep(local)))
    xr.testing.assert_identical(_no_wall_time(load_sweep(tmp_path, table=True)),
                                _no_wall_time(load_sweep(local, table=True)))


def test_submitit_local_executor_gives_the_same_runs(local, tmp_path):
    pytest.importorskip("submitit")
    res = sweep("--out", str(tmp_path), "--executor", "submitit", "--cluster", "local",
                "--set", "model=siren2", "--set", "seed=0")
    assert res.exit_code == 0 and "on submitit (local" in res.output, res.output
    ours, theirs = load_sweep(tmp_path, table=True), load_sweep(local, table=True)
    assert ours.sizes["run"] == 2
    xr.testing.assert_equal(_no_wall_time(ours), _no_wall_time(theirs.sel(run=ours.run.values)))


def _complete(out: Path) -> list[Path]:
    return [p for p in (out / "runs").glob("*.h5") if is_complete(p)]


def _wait_until_gone(pgid: int, limit: float = 30.0) -> None:
    """Wait until no process of group ``pgid`` is left (a loaded machine takes a while to tear a killed
    worker down; until then the OS has not released its ``flock``). Zombies have released theirs."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_resume_after_kill_skips_finished_runs(tmp_path):
    args = ["--out", str(tmp_path), "--set", "epochs=600", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "spectral_probe", "sweep", str(TINY), *args, "--workers", "1"],
                            cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(_complete(tmp_path)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)        # the sweep and its workers, as a scheduler would
    proc.wait()
    _wait_until_gone(proc.pid)                 # a killed worker holds its run lock until it has exited
    finished = {p: p.stat().st_mtime_ns for p in _complete(tmp_path)}
    assert 2 <= len(finished) < 6, f"sweep was killed with {len(finished)} of 6 runs done"
    res = CliRunner().invoke(main, ["sweep", str(TINY), *args, "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert f"6 runs, {len(finished)} done, {6 - len(finished)} to run" in res.output
    assert {p: p.stat().st_mtime_ns for p in finished} == finished      # not rewritten
    ds = load_sweep(tmp_path)
    assert (ds.status == "ok").all() and (ds.epochs_run == 600).all() and len(_complete(tmp_path)) == 6


def test_a_dying_worker_fails_only_its_run(tmp_path):
    from _sweep_units import crash_on_siren_seed1

    plan = plan_sweep(tiny(seed=[0, 1, 2]), tmp_path)
    report = run_sweep(plan, LocalExecutor(workers=2), unit=crash_on_siren_seed1)
    status = report.dataset.status
    assert list(status.values) == ["ok", "failed", "ok"], status
    assert list(report.failed) == [plan.tasks[1].run_id] and "WorkerDied" in report.failed[plan.tasks[1].run_id]


def test_executor_errors_are_recorded_and_resumed(tmp_path):
    from _sweep_units import raise_for_everything

    plan = plan_sweep(tiny(seed=[0, 1]), tmp_path, device="cpu")
    report = run_sweep(plan, FuturesExecutor(cf.ThreadPoolExecutor(1)), unit=raise_for_everything)
    assert len(report.failed) == 2
    assert all(e.startswith("worker failed: ConnectionError: lost the worker") for e in report.failed.values())
    assert (report.dataset.status == "failed").all()
    # --skip-failed leaves them; the default retries them (here in this process: the runs are tiny)
    assert plan_sweep(plan.spec, tmp_path, retry_failed=False).todo == []
    again = plan_sweep(plan.spec, tmp_path)
    report = run_sweep(again, FuturesExecutor(cf.ThreadPoolExecutor(1)))
    assert not report.failed and (report.dataset.status == "ok").all()
    assert not list((tmp_path / "runs").glob("*.error.json"))


def test_run_one_skips_a_complete_file(tmp_path):
    plan = plan_sweep(tiny(seed=[0]), tmp_path)
    (task,) = plan.tasks
    first = run_one(task)
    assert first["status"] == "ok" and first["epochs_run"] == 20
    stamp = Path(task.path).stat().st_mtime_ns
    assert run_one(task) == {"run_id": task.run_id, "status": "done", "path": task.path}
    assert Path(task.path).stat().st_mtime_ns == stamp
    cfg = read_config(task.path)
    assert cfg["model_kwargs"]["width"] == 16 and cfg["train"]["lr"] == 1e-3
    attrs = open_run(task.path).attrs
    assert attrs["sweep_run_id"] == task.run_id and json.loads(attrs["sweep_params"]) == task.params


def test_a_deep_traceback_keeps_its_first_line_and_its_tail():
    from spectral_probe.sweep.unit import TRACEBACK_LINES, trim_traceback
    tb = "Traceback (most recent call last):\n" + "".join(f"  frame {i}\n" for i in range(60)) + "OSError: boom\n"
    kept = trim_traceback(tb).splitlines()
    assert len(kept) == TRACEBACK_LINES and kept[0].startswith("Traceback") and kept[-1] == "OSError: boom"
    assert kept[1] == f"  ... ({62 - (TRACEBACK_LINES - 2) - 1} lines left out)" and kept[-2] == "  frame 59"
    assert trim_traceback("Traceback\n  a\nE: x") == "Traceback\n  a\nE: x"
