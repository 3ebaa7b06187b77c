"""``spectral-probe sweep --batch-models``: the same run files and sweep.h5 as one-by-one runs, to round-off."""

from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.store import open_run, read_config
from spectral_probe.sweep import (FuturesExecutor, is_complete, load_config, load_sweep, plan_sweep, run_one,
                                  run_sweep)
from spectral_probe.sweep.batched import group_tasks

TINY = Path(__file__).resolve().parents[1] / "analyses" / "sweep_tiny.toml"
#: lr 1e-4 (the paper's): round-off differences between batched and single products stay ~1e-7
ARGS = ["--set", "lr=1e-4"]


def test_batch_models_matches_one_by_one(tmp_path):
    res = CliRunner().invoke(main, ["sweep", str(TINY), "--no-progress", "--batch-models", "--out",
                                    str(tmp_path / "batched"), *ARGS])
    assert res.exit_code == 0, res.output
    assert "6 runs, 0 done, 6 to run batched in this process" in res.output and "6 of 6 runs finished" in res.output
    batched = load_sweep(tmp_path / "batched")
    plan = plan_sweep(load_config(TINY).with_overrides(fixed={"lr": 1e-4}), tmp_path / "single", device="cpu")
    assert all(is_complete(tmp_path / "batched" / "runs" / f"{t.run_id}.h5") for t in plan.tasks)   # resumable
    for task in plan.tasks[:2] + plan.tasks[-1:]:           # siren and siren2 runs, alone
        assert run_one(task)["status"] == "ok"
        alone = open_run(task.path, "scalars")
        path = tmp_path / "batched" / "runs" / f"{task.run_id}.h5"
        ours = open_run(path, "scalars")
        np.testing.assert_allclose(ours.psnr.values, alone.psnr.values, rtol=1e-6)
        assert ours.best_psnr.item() == pytest.approx(alone.best_psnr.item(), abs=1e-4)
        assert read_config(path)["model"] == task.params["model"]
        assert open_run(path, "prediction").output.shape == (512, 1)
        cell = batched.where(batched.run_id == task.run_id, drop=True)
        np.testing.assert_array_equal(cell.psnr.values.reshape(-1, 20)[0], ours.psnr.values)


@pytest.mark.slow
def test_batch_models_sweep_equals_one_by_one_sweep(tmp_path):
    res = CliRunner().invoke(main, ["sweep", str(TINY), "--no-progress", "--batch-models", "--out",
                                    str(tmp_path / "batched"), *ARGS])
    assert res.exit_code == 0, res.output
    plan = plan_sweep(load_config(TINY).with_overrides(fixed={"lr": 1e-4}), tmp_path / "single", device="cpu")
    run_sweep(plan, FuturesExecutor(cf.ThreadPoolExecutor(1)))
    batched, single = load_sweep(tmp_path / "batched"), load_sweep(tmp_path / "single")
    np.testing.assert_array_equal(batched.run_id.values, single.run_id.values)
    np.testing.assert_allclose(batched.psnr.values, single.psnr.values, rtol=1e-6)
    np.testing.assert_allclose(batched.final_psnr.values, single.final_psnr.values, rtol=1e-6)
    rerun = CliRunner().invoke(main, ["sweep", str(TINY), "--no-progress", "--batch-models",
                                      "--out", str(tmp_path / "batched"), *ARGS])
    assert rerun.exit_code == 0 and "6 runs, 6 done, 0 to run" in rerun.output, rerun.output


def test_groups_by_shape_and_training_settings(tmp_path):
    spec = load_config(TINY).with_overrides(grid={"width": [16, 24], "target": ["synthetic:high", "nowhere.wav"]},
                                            fixed={"seed": 0})
    plan = plan_sweep(spec, tmp_path, device="cpu", validate=False)   # nowhere.wav must fail at run time
    groups, single, failed = group_tasks(plan.todo)
    assert len(failed) == 6 and all("nowhere.wav" in e for e in failed.values()) and not single
    # width 16 and 24 cannot share a batch; siren and siren2 (s0 = 1, 5) of one width can
    assert sorted(len(g) for g in groups) == [3, 3]
    assert {g[0][1].model_kwargs["width"] for g in groups} == {16, 24}
