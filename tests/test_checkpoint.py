"""Checkpoints: layout and size, every random state, best >= final, load_model, and the post-hoc commands."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import spectral_probe as sp
from spectral_probe.training.checkpoint import StateLayout, capture_state, read_checkpoint, restore_state
from spectral_probe.cli.main import main as cli
from spectral_probe.training.posthoc import run_target
from spectral_probe.training.presets import make_run
from spectral_probe.training.runs import train_to_file
from spectral_probe.training import TrainConfig, TrainState

REPO = Path(__file__).resolve().parents[1]


def _tiny(epochs=30, lr=1e-3, **train):
    return make_run("siren", "synthetic:broadband", "quick", width=8, depth=2, num_samples=128, epochs=epochs,
                    train_overrides={"device": "cpu", "progress": False, "lr": lr, **train})


def _state(model, target, batch=None) -> TrainState:
    config = TrainConfig(epochs=10, device="cpu", batch_size=batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 20, 0.99)
    from spectral_probe.training.loop import _BestTracker

    return TrainState(model, opt, sched, target, target.coords(), target.values, config,
                      losses=torch.zeros(10), lrs=np.zeros(10), tracker=_BestTracker(model),
                      generator=torch.Generator().manual_seed(3))


def test_checkpoint_size_of_the_quick_preset_siren():
    """4 x 128 SIREN: parameters, two Adam moments and the best copy in float32, plus the generators."""
    spec, target = make_run("siren", "synthetic:broadband", "quick", train_overrides={"device": "cpu"})
    model = spec.build_model()
    state = _state(model, target)
    tensors, meta = capture_state(state, 0)
    layout = StateLayout.build(tensors, meta)
    params = sum(p.numel() for p in model.parameters())
    assert params == 49_921                     # 1x128 + 3 x 128x128 + 128x1 weights and their biases
    n_tensors = len(list(model.parameters()))
    rng = 5056 + 5056 + 624 * 4 + 625 * 4       # torch CPU, loader, numpy MT19937, Python MT19937
    expected = 4 * params * 4 + 4 * n_tensors + 4 + rng + layout.meta_bytes
    assert layout.nbytes == expected == 817_984                # the size quoted in README.md


def test_every_random_state_round_trips():
    spec, target = _tiny()
    model = spec.build_model()
    state = _state(model, target)
    torch.manual_seed(11)
    np.random.seed(12)
    random.seed(13)
    np.random.standard_normal()                 # a cached Gaussian in numpy's state
    tensors, meta = capture_state(state, 0)
    layout = StateLayout.build(tensors, meta)
    row = layout.pack(tensors, meta)
    expected = (torch.rand(3), np.random.standard_normal(3), random.random(), torch.randperm(50, generator=state.generator))
    torch.manual_seed(0), np.random.seed(0), random.seed(0), state.generator.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    arrays, meta2 = layout.unpack(row)
    restore_state(state, arrays, meta2, layout)
    again = (torch.rand(3), np.random.standard_normal(3), random.random(), torch.randperm(50, generator=state.generator))
    torch.testing.assert_close(again[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(again[1], expected[1])
    assert again[2] == expected[2]
    torch.testing.assert_close(again[3], expected[3], rtol=0, atol=0)
    fresh = spec.build_model()
    for a, b in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_checkpoint_layout_must_stay_fixed():
    spec, target = _tiny()
    state = _state(spec.build_model(), target)
    tensors, meta = capture_state(state, 0)
    layout = StateLayout.build(tensors, meta)
    with pytest.raises(ValueError, match="no longer matches the checkpoint layout"):
        layout.pack({k: v for k, v in tensors.items() if k != "rng/torch"}, meta)


# --------------------------------------------------------------------------- best and final
def test_final_state_is_a_best_candidate_and_the_prediction_says_which(tmp_path):
    spec, target = _tiny(epochs=40, lr=1e-3)
    model, result = train_to_file(spec, target, tmp_path / "up.h5", checkpoint_every=10)
    # a steadily improving fit: the final state (after the last update) beats every epoch's loss
    assert result.best_epoch == result.epochs_run == result.state_step == 40
    assert result.best_psnr == result.final_psnr >= np.nanmax(result.history["psnr"])
    pred = sp.open_run(tmp_path / "up.h5", "prediction")
    assert pred.attrs["state"] == "best" and int(pred["state_step"]) == 40
    with torch.no_grad():
        out = model(target.coords()).numpy()
    np.testing.assert_array_equal(pred["output"].values, out.astype("f4"))
    best = sp.load_model(tmp_path / "up.h5", "best")
    last = sp.load_model(tmp_path / "up.h5", "last")
    assert best.loaded_step == last.loaded_step == 40
    for a, b in zip(best.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_an_earlier_best_state_is_restored_saved_and_loaded(tmp_path):
    spec, target = _tiny(epochs=30, lr=5e-2)        # a huge rate: the loss oscillates, the best is earlier
    model, result = train_to_file(spec, target, tmp_path / "osc.h5", checkpoint_every=10)
    assert result.best_epoch < result.epochs_run and result.best_psnr >= result.final_psnr
    assert result.state_step == result.best_epoch
    with torch.no_grad():
        psnr_now = 10 * math.log10(1 / float(torch.mean((model(target.coords()) - target.values) ** 2)))
    assert psnr_now == pytest.approx(result.best_psnr, abs=1e-3)
    best = sp.load_model(tmp_path / "osc.h5", "best")
    assert best.loaded_step == result.best_epoch
    for a, b in zip(best.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    steps = list(read_checkpoint(tmp_path / "osc.h5").arrays)
    assert "best/0" in steps and "optimizer/0/exp_avg" in steps
    with pytest.raises(ValueError, match="no checkpoint at step 15; checkpoints at steps 0, 10, 20, 30"):
        sp.load_model(tmp_path / "osc.h5", 15)
    mid = sp.load_model(tmp_path / "osc.h5", "20")
    assert mid.loaded_step == 20


def test_best_is_never_below_final_across_settings():
    for lr, epochs in ((1e-4, 20), (1e-2, 25), (5e-2, 25)):
        spec, target = _tiny(epochs=epochs, lr=lr)
        _model, result = train_to_file(spec, target, None)
        assert result.best_psnr >= result.final_psnr, (lr, result.summary())


# --------------------------------------------------------------------------- post-hoc commands
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("posthoc") / "run.h5"
    spec, target = _tiny(epochs=20)
    train_to_file(spec, target, path, checkpoint_every=10)
    return path


def test_probe_command_prints_and_writes_statistics(finished_run, tmp_path):
    out = tmp_path / "stats.h5"
    res = CliRunner().invoke(cli, ["probe", "--run", str(finished_run), "--step", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "state at step 10" in res.output and "layers.0     pre" in res.output
    ds = sp.open_run(out, "activations")
    model = sp.load_model(finished_run, 10)
    x = run_target(finished_run).coords()
    with torch.no_grad():
        first = model.layers[0].act.pre(model.layers[0].linear(x))      # omega (W x + b)
    assert ds.step.values.tolist() == [10]
    assert float(ds.act_std.sel(layer="layers.0", kind="pre", step=10)) == pytest.approx(float(first.std(unbiased=False)),
                                                                              rel=1e-5)
    bad = CliRunner().invoke(cli, ["probe", "--run", str(finished_run), "--step", "7"])
    assert bad.exit_code == 2 and "no checkpoint at step 7; checkpoints at steps 0, 10, 20" in bad.output


def test_ntk_command_on_a_saved_state(finished_run, tmp_path):
    res = CliRunner().invoke(cli, ["ntk", "--run", str(finished_run), "--step", "best", "--dtype", "float64",
                                   "--out", str(tmp_path / "ntk.h5")])
    assert res.exit_code == 0, res.output
    assert "N = 128" in res.output
    from spectral_probe.ntk import empirical_ntk

    model = sp.load_model(finished_run, "best", dtype=torch.float64)
    theta = empirical_ntk(model, run_target(finished_run).coords(dtype=torch.float64), implementation="jacrev")
    ds = sp.open_run(tmp_path / "ntk.h5", "ntk")
    top = np.sort(np.linalg.eigvalsh(theta.numpy()))[::-1][:4]
    np.testing.assert_allclose(ds["eigenvalues"].values[:4], top, rtol=1e-6)
    assert ds.attrs["config"] and "state at step" in res.output
    mixed = CliRunner().invoke(cli, ["ntk", "--run", str(finished_run), "--s0", "3", "--num-samples", "64"])
    assert mixed.exit_code == 2 and "drop --s0" in mixed.output


# --------------------------------------------------------------------------- the CLI on Ctrl-C
def test_ctrl_c_saves_and_prints_the_resume_command(tmp_path):
    out = tmp_path / "i.h5"
    args = ["train", "--model", "siren", "--width", "8", "--depth", "1", "--num-samples", "256", "--epochs", "4000",
            "--device", "cpu", "--probe-every", "10", "--no-progress", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spectral_probe", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not out.exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _stdout, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("interrupted by SIGINT after finishing its epoch; ") and "(resumable)" in lines[-2]
    command = lines[-1]
    assert command.startswith("continue with: spectral-probe train ") and command.endswith(" --resume")
    run = sp.open_run(out)
    assert int(run["run_status"]) == 3
    n = run["scalars"].to_dataset().sizes["step"]
    assert f"scalars {n} row(s) to step {n - 1}" in lines[-2] and f"checkpoint at step {n} " in lines[-2]
    assert int(run["checkpoints"].to_dataset().step[-1]) == n
    resume = command.split("spectral-probe ", 1)[1].split()
    assert resume[resume.index("--out") + 1] == str(out) and "--epochs" in resume


# --------------------------------------------------------------------------- the initial state (step 0)
def test_step_zero_is_the_initial_state_and_ntk_matches_a_fresh_model(finished_run, tmp_path):
    """Every new run file holds step 0; `ntk --run R --step 0` equals `ntk` on the same configuration and seed."""
    from spectral_probe.training.checkpoint import checkpoint_steps

    assert checkpoint_steps(finished_run).tolist() == [0, 10, 20]
    first = read_checkpoint(finished_run, 0)
    assert first.meta["optimizer_fresh"] and first.meta["step"] == 0
    spec, _target = _tiny(epochs=20)
    model = sp.load_model(finished_run, 0)
    assert model.loaded_step == 0
    for a, b in zip(model.parameters(), spec.build_model().parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    args = ["--dtype", "float64", "--implementation", "jacrev"]
    saved = CliRunner().invoke(cli, ["ntk", "--run", str(finished_run), "--step", "0", *args,
                                     "--out", str(tmp_path / "saved.h5")])
    fresh = CliRunner().invoke(cli, ["ntk", "--model", "siren", "--target", "synthetic:broadband", "--width", "8",
                                     "--depth", "2", "--num-samples", "128", *args, "--out", str(tmp_path / "fresh.h5")])
    assert saved.exit_code == 0 and fresh.exit_code == 0, saved.output + fresh.output
    np.testing.assert_allclose(sp.open_run(tmp_path / "saved.h5", "ntk")["eigenvalues"].values,
                               sp.open_run(tmp_path / "fresh.h5", "ntk")["eigenvalues"].values, rtol=1e-12, atol=1e-9)
    res = CliRunner().invoke(cli, ["probe", "--run", str(finished_run), "--step", "0"])
    assert res.exit_code == 0 and "state at step 0" in res.output, res.output


def test_a_fresh_optimizer_state_restores_as_fresh():
    """The step-0 checkpoint carries placeholder Adam moments (fixed layout); restoring it leaves Adam empty."""
    spec, target = _tiny()
    state = _state(spec.build_model(), target)
    tensors, meta = capture_state(state, 0)
    layout = StateLayout.build(tensors, meta)
    assert meta["optimizer_fresh"] and "optimizer/0/exp_avg" in tensors
    other = _state(spec.build_model(), target)
    restore_state(other, *layout.unpack(layout.pack(tensors, meta)), layout)
    assert not other.optimizer.state


def test_resume_from_only_the_initial_state_equals_an_uninterrupted_run(tmp_path):
    """A run killed before its first regular checkpoint restarts from scratch and keeps its step-0 row."""
    from spectral_probe.training import Callback

    class Crash(Callback):
        def on_epoch_end(self, state):
            if state.epoch == 3:
                raise RuntimeError("crash")

    spec, target = _tiny(epochs=12)
    _m, ref = train_to_file(spec, target, tmp_path / "ref.h5", checkpoint_every=100)
    with pytest.raises(RuntimeError, match="crash"):
        train_to_file(spec, target, tmp_path / "cut.h5", checkpoint_every=100, callbacks=[Crash()])
    from spectral_probe.training.checkpoint import checkpoint_steps

    assert checkpoint_steps(tmp_path / "cut.h5").tolist() == [0]
    notes = []
    _m, again = train_to_file(spec, target, tmp_path / "cut.h5", resume=True, checkpoint_every=100, notes=notes)
    assert any("from the start" in n for n in notes), notes
    np.testing.assert_array_equal(again.history["loss"], ref.history["loss"])
    assert checkpoint_steps(tmp_path / "cut.h5").tolist() == [0, 12]


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """A run file as written before step 0 was checkpointed (with a bottleneck watch)."""
    from spectral_probe.bottleneck import BottleneckWatch
    from spectral_probe.training.checkpoint import Checkpointer

    path = tmp_path_factory.mktemp("old") / "old.h5"
    spec, target = _tiny(epochs=20)
    mp = pytest.MonkeyPatch()
    mp.setattr(Checkpointer, "on_epoch_start", lambda self, state: None)
    try:
        train_to_file(spec, target, path, checkpoint_every=10, probes=[BottleneckWatch(every=5, warn=False)])
    finally:
        mp.undo()
    return path


def test_an_older_file_gets_its_initial_state_rebuilt_and_verified(old_run):
    from spectral_probe.training.checkpoint import checkpoint_steps
    from spectral_probe.training.posthoc import initial_checkpoint

    assert checkpoint_steps(old_run).tolist() == [10, 20]
    rebuilt = initial_checkpoint(old_run)
    assert "scalars/loss at step 0" in rebuilt.meta["rebuilt"] and "bottleneck/energy_ratio" in rebuilt.meta["rebuilt"]
    spec, _target = _tiny(epochs=20)
    model = sp.load_model(old_run, 0)
    assert model.loaded_step == 0
    for a, b in zip(model.parameters(), spec.build_model().parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    res = CliRunner().invoke(cli, ["ntk", "--run", str(old_run), "--step", "0", "--num-samples", "32"])
    assert res.exit_code == 0 and "state at step 0" in res.output, res.output


def test_an_older_file_whose_rebuild_disagrees_is_refused_in_one_line(old_run, monkeypatch):
    import spectral_probe.models as models

    real = models.build_model
    monkeypatch.setattr(models, "build_model", lambda name, seed=None, **kw: real(name, seed=seed + 1, **kw))
    res = CliRunner().invoke(cli, ["ntk", "--run", str(old_run), "--step", "0"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "does not reproduce its step-0 records (scalars/loss at step 0:" in res.output
    assert "checkpoints at steps 10, 20" in res.output


def test_ntk_of_a_saved_state_on_a_subset_of_its_grid(finished_run):
    from spectral_probe.ntk import empirical_ntk
    from spectral_probe.training.posthoc import run_points

    target = run_target(finished_run)
    model = sp.load_model(finished_run, 10, dtype=torch.float64)
    x = target.coords(dtype=torch.float64)
    for extra, index in ((["--num-samples", "32"], np.arange(32) * 4), (["--num-samples", "40", "--offset", "7"], np.arange(7, 47))):
        res = CliRunner().invoke(cli, ["ntk", "--run", str(finished_run), "--step", "10", "--dtype", "float64", *extra])
        assert res.exit_code == 0, res.output
        theta = empirical_ntk(model, x[index], implementation="jacrev").numpy()
        top = np.sort(np.linalg.eigvalsh(theta))[::-1][0]
        assert f"top eigenvalues (eigh): {top:.4g}" in res.output
        assert ("every 4-th from sample 0" if len(extra) == 2 else "samples 7..46 of the run's 128") in res.output
    coords, sub, _text = run_points(target, 32)
    np.testing.assert_array_equal(sub.values.numpy(), target.values.numpy()[::4])
    for extra, message in ((["--num-samples", "1"], "--num-samples must be an integer from 2 to the run's 128 samples, got 1"),
                           (["--num-samples", "129"], "--num-samples must be an integer from 2 to the run's 128 samples, got 129"),
                           (["--num-samples", "64", "--offset", "65"], "--offset must be an integer from 0 to 64"),
                           (["--offset", "3"], "add --num-samples"),
                           (["--step", "-1"], "step must be >= 0"),
                           (["--step", "25"], "step 25 is beyond the run (it ran 20 epochs); run file"),
                           (["--step", "5"], "no checkpoint at step 5; checkpoints at steps 0, 10, 20")):
        res = CliRunner().invoke(cli, ["ntk", "--run", str(finished_run), *extra])
        assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
