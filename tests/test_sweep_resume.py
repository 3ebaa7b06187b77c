"""Sweeps resume mid-run (issue 22 item 8): an interrupted sweep continues each unfinished run from its
last checkpoint to the trajectory of an uninterrupted sweep; finished runs are not redone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spectral_probe.store import open_run
from spectral_probe.sweep import SweepSpec, plan_sweep, run_one
from spectral_probe.sweep.unit import checkpoint_cadence

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"model": "siren", "target": "synthetic:broadband", "num_samples": 256, "width": 16, "depth": 2,
         "epochs": 120, "lr": 1e-3}
SPEC = SweepSpec(fixed=FIXED, grid={"seed": [0, 1]})
EVERY = 25
STOP_AT = 70            # the child sends itself SIGINT after this epoch of seed 0's run

_CHILD = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
from spectral_probe.sweep import SweepSpec, plan_sweep, run_one
from spectral_probe.sweep import unit

def interrupt(self, state):
    if self.task.params["seed"] == 0 and state.epoch == {stop}:
        os.kill(os.getpid(), signal.SIGINT)          # a real signal, as Ctrl-C delivers it

unit._SweepTag.on_epoch_end = interrupt
spec = SweepSpec(fixed=json.loads(sys.argv[2]), grid={{"seed": [0, 1]}})
for task in plan_sweep(spec, sys.argv[1], device="cpu", checkpoint_every={every}).todo:
    run_one(task)
"""


def _scalars(path):
    ds = open_run(path)["scalars"].to_dataset()
    return ds["loss"].values, float(ds["best_psnr"].values)


def test_cadence_default_and_setting():
    assert checkpoint_cadence(500) == 50 and checkpoint_cadence(7) == 1 and checkpoint_cadence(30_000, 100) == 100
    plan = plan_sweep(SweepSpec(fixed=FIXED, grid={"seed": [0]}, settings={"checkpoint_every": 30}), "unused",
                      validate=False)
    assert plan.tasks[0].checkpoint_every == 30
    with pytest.raises(ValueError, match="checkpoint_every"):
        plan_sweep(SPEC, "unused", validate=False, checkpoint_every=0)


def test_an_interrupted_sweep_continues_each_run_to_the_same_trajectory(tmp_path):
    reference = plan_sweep(SPEC, tmp_path / "ref", device="cpu", checkpoint_every=EVERY)
    for task in reference.tasks:
        assert run_one(task)["status"] == "ok"

    out = tmp_path / "sweep"
    child = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT), stop=STOP_AT, every=EVERY),
                            str(out), json.dumps(FIXED)], capture_output=True, text=True, timeout=600)
    assert child.returncode != 0 and ("KeyboardInterrupt" in child.stderr or "Interrupted" in child.stderr), \
        child.stderr[-2000:]
    plan = plan_sweep(SPEC, out, device="cpu", checkpoint_every=EVERY)
    first, second = plan.tasks
    assert plan.todo == plan.tasks and not Path(second.path).exists()     # seed 1 never started
    with h5py.File(first.path, "r") as h5:
        steps = h5["checkpoints"]["step"][: int(h5["checkpoints"]["n_committed"][()])]
    assert {0, 25, 50} <= set(steps.tolist()) and steps.max() <= STOP_AT + 1

    summaries = [run_one(task) for task in plan.todo]
    assert [s["status"] for s in summaries] == ["ok", "ok"]
    resumed_at = int(summaries[0]["notes"][0].split("at epoch ")[1].split()[0])
    print("resumed at", resumed_at, "checkpoints before", steps.tolist())
    assert 50 <= resumed_at <= STOP_AT + 1                  # continued, not restarted
    for ref, run in zip(reference.tasks, plan.tasks):
        ref_loss, ref_best = _scalars(ref.path)
        loss, best = _scalars(run.path)
        assert loss.shape == (FIXED["epochs"],)
        np.testing.assert_array_equal(loss, ref_loss)       # bit for bit
        assert best == ref_best

    again = plan_sweep(SPEC, out, device="cpu", checkpoint_every=EVERY)
    assert again.todo == []                                 # finished runs are not redone
    mtime = Path(first.path).stat().st_mtime_ns
    assert run_one(first)["status"] == "done" and Path(first.path).stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_ctrl_c_on_the_sweep_command_and_its_workers(tmp_path):
    """The CLI with two local workers, SIGINT to its whole process group (as a terminal's Ctrl-C) once both
    runs have a checkpoint after step 0; the same command again finishes them as an uninterrupted sweep."""
    import os
    import signal
    import time

    from spectral_probe.training.checkpoint import checkpoint_steps

    fixed = {**FIXED, "epochs": 5000, "width": 32}
    config = tmp_path / "s.toml"
    config.write_text('[sweep]\nname = "r"\ncheckpoint_every = 100\n[fixed]\n'
                      + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fixed.items()) + "[grid]\nseed = [0, 1]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "spectral_probe", "sweep", str(config), "--out", str(tmp_path / "out"),
               "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    runs = tmp_path / "out" / "runs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        files = sorted(runs.glob("*.h5")) if runs.is_dir() else []
        try:
            if len(files) == 2 and all(checkpoint_steps(f).max(initial=0) >= 100 for f in files):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    log = proc.communicate(timeout=300)[0]
    assert "rerun the same command" in log or "rerun the sweep to continue it" in log, log
    stopped = {f.name: int(checkpoint_steps(f)[-1]) for f in files}
    assert all(0 < s < fixed["epochs"] for s in stopped.values()), stopped

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "2 of 2 runs finished" in again.stdout, again.stdout + again.stderr
    reference = plan_sweep(SweepSpec(fixed=fixed, grid={"seed": [0, 1]}), tmp_path / "ref", device="cpu",
                           checkpoint_every=100)
    for task in reference.tasks:
        run_one(task)
        loss, best = _scalars(task.path)
        resumed, resumed_best = _scalars(runs / Path(task.path).name)
        np.testing.assert_array_equal(resumed, loss)
        assert resumed_best == best
