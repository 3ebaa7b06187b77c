"""Sweeps refuse invalid runs before the first one starts: one line per run naming the key, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import numpy as np
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.sweep import SweepSpec, SweepValidationError, expand, plan_sweep, validate_runs

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "analyses" / "sweep_tiny.toml"
BASE = {"target": "synthetic:high", "num_samples": 512, "width": 16, "depth": 2, "epochs": 20}


def problems(fixed=None, **grid):
    merged = {k: v for k, v in {**BASE, **(fixed or {})}.items() if v is not None}     # None: leave the key out
    spec = SweepSpec(fixed=merged, grid=grid).validated()
    plans, _ = expand(spec)
    return plans, validate_runs(plans, labels=list(spec.grid))


def test_valid_sweep_has_no_problems():
    plans, found = problems(model=["siren", "siren2"], s0=[1.0, 5.0])
    assert len(plans) == 3 and found == []


def test_each_bad_run_is_named_with_its_key():
    plans, found = problems({"model": "siren2"}, s0=[float("nan"), 1.0], epochs=[-3, 20])
    by_run = {p.run_id: p for p in found}
    assert len(plans) == 4 and len(found) == 3
    for plan in plans:
        s0, epochs = plan.params["s0"], plan.params["epochs"]
        if epochs == -3:
            assert by_run[plan.run_id].key == "epochs" and "positive integer, got -3" in by_run[plan.run_id].message
        elif s0 != s0:
            assert by_run[plan.run_id].key == "s0" and "finite" in by_run[plan.run_id].message
        else:
            assert plan.run_id not in by_run
    line = by_run[next(p.run_id for p in plans if p.params["epochs"] == -3 and p.params["s0"] == 1.0)].line()
    assert line.startswith("run siren2-") and "(s0=1.0, epochs=-3)" in line and "key 'epochs'" in line


def test_model_arguments_checked_by_the_constructor():
    _, found = problems({"model": "siren"}, first_omega=[-5.0, 30.0])
    assert [p.key for p in found] == ["first_omega"] and "positive" in found[0].message


def test_targets_are_read_once_and_crops_blamed(tmp_path, monkeypatch):
    from spectral_probe.sweep import validate

    loads = []
    load = validate._load_target
    monkeypatch.setattr(validate, "_load_target", lambda params: loads.append(dict(params)) or load(params))
    wav = tmp_path / "short.wav"
    sf.write(wav, np.sin(np.arange(1000) * 0.3), 8000)
    _, found = problems({"model": "siren", "target": str(wav)}, num_samples=[512, 5000], seed=[0, 1, 2])
    assert [p.key for p in found] == ["num_samples"] * 3 and "5000" in found[0].message
    # once per crop (the seed does not change a file target), plus once uncropped to blame the crop
    assert [p.get("num_samples") for p in loads] == [512, 5000, None]
    _, found = problems({"model": "siren", "num_samples": None}, target=["nowhere.wav", str(wav)])
    assert [p.key for p in found] == ["target"] and "nowhere.wav" in found[0].message
    _, found = problems({"model": "siren", "target": str(wav), "num_samples": None}, offset=[0, 2000])
    assert [p.key for p in found] == ["offset"]


def test_plan_sweep_raises_before_anything_is_written(tmp_path):
    spec = SweepSpec(fixed={**BASE, "model": "siren"}, grid={"epochs": [-3, 20], "seed": [0, 1]})
    with pytest.raises(SweepValidationError) as info:
        plan_sweep(spec, tmp_path / "out")
    assert len(info.value.problems) == 2 and info.value.total == 4
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="sweep device: device 'cuda:7'"):
        plan_sweep(SweepSpec(fixed={**BASE, "model": "siren"}, grid={"seed": [0]}), tmp_path / "out", device="cuda:7")
    plan = plan_sweep(spec, tmp_path / "out", validate=False)          # --no-validate: the runs would fail one by one
    assert len(plan.todo) == 4


def test_cli_prints_one_line_per_invalid_run_and_starts_nothing(tmp_path):
    out = tmp_path / "sw"
    res = CliRunner().invoke(main, ["sweep", str(TINY), "--no-progress", "--out", str(out),
                                    "--grid", "s0=nan,1", "--grid", "target=synthetic:high,nowhere.wav"])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    # 2 seeds x (siren: 2 targets, siren2: 2 s0 x 2 targets) = 12 runs; invalid: every nowhere.wav run (6) and
    # siren2 with s0=nan (4); each line names the first key found wrong (ranges before targets)
    assert len(errors) == 9 and errors[-1].startswith("error: 8 of 12 runs are invalid; nothing was started")
    assert sum("key 'target'" in e for e in errors) == 4 and sum("key 's0'" in e for e in errors) == 4
    assert "Traceback" not in res.output and not out.exists()
    res = CliRunner().invoke(main, ["sweep", str(TINY), "--no-progress", "--out", str(out), "--device", "cuda"])
    assert res.exit_code == 2 and "error: sweep device: device 'cuda' requested but CUDA is not available" in res.output
