"""CLI: train/demo/models and one-line errors with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from spectral_probe.cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_train_prints_trajectory():
    res = run("train", "--model", "siren2", "--target", "synthetic:high", "--epochs", "5",
              "--width", "16", "--depth", "2", "--no-progress", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "model siren2 2x16" in res.output and "best" in res.output and "zero-output floor" in res.output


def test_models_lists_registry():
    res = run("models")
    assert res.exit_code == 0 and "siren2:" in res.output and "wire:" in res.output


@pytest.mark.parametrize("args,message", [
    (["--model", "foo"], "unknown model 'foo'"),
    (["--target", "nowhere.wav"], "not found"),
    (["--s0", "-2"], "s0 must be a finite number >= 0"),
    (["--s1", "nan"], "s1 must be a finite number >= 0"),
    (["--width", "0"], "width must be a positive integer"),
    (["--depth", "0"], "depth must be a positive integer"),
    (["--set", "bogus=1"], "takes no argument"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    res = run("train", "--no-progress", "--epochs", "1", *args)
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], res.output
    assert "Traceback" not in res.output


def test_bad_audio_files(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(100), 8000)
    sf.write(tmp_path / "empty.wav", np.zeros(0), 8000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....garbage")
    for name, message in [("zero.wav", "all zeros"), ("empty.wav", "no samples"), ("junk.wav", "cannot read")]:
        res = run("train", "--target", str(tmp_path / name), "--epochs", "1", "--no-progress")
        assert res.exit_code == 2 and message in res.output, res.output


def test_unknown_preset_is_a_usage_error():
    assert run("train", "--preset", "fast").exit_code == 2


def test_module_entry_point():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "spectral_probe", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout


@pytest.mark.parametrize("args,message", [
    (["--set", "s0=10", "--s0", "3"], "conflicting values for s0: --s0 3.0 and --set s0=10; give one"),
    (["--model", "siren", "--first-omega", "100", "--set", "first_omega=3000"],
     "conflicting values for first_omega: --first-omega 100.0 and --set first_omega=3000"),
    (["--model", "gauss", "--set", "sigma=abc"], "--set sigma=abc: sigma must be a number"),
    (["--set", "width=6.5"], "--set width=6.5: width must be an integer"),
    (["--set", "epochs=5"], "--set epochs=5: not a model argument; use --epochs"),
    (["--set", "in_features=2"], "--set in_features=2: set by the target's dimensions"),
    (["--model", "siren", "--num-samples", "0"], "--num-samples must be a positive integer"),
    (["--offset", "-3"], "--offset must be a non-negative integer"),
    (["--device", "cpu:7"], "device 'cpu:7' does not exist"),
    (["--resume"], "--resume needs --out"),
])
def test_more_bad_input_before_any_compute(args, message):
    res = run("train", "--no-progress", "--epochs", "1", *args)
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert res.exit_code == 2 and len(lines) == 1 and message in lines[0], res.output
    assert "target " not in res.output                  # refused before the target was loaded


def test_set_may_name_an_option():
    res = run("train", "--model", "siren2", "--target", "synthetic:high", "--epochs", "1", "--no-progress",
              "--device", "cpu", "--set", "s0=10", "--set", "width=16", "--depth", "2", "--s1", "0.5")
    assert res.exit_code == 0, res.output
    assert "model siren2 2x16 [" in res.output and "s0=10" in res.output


def test_output_paths_are_checked_first(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = run("train", "--epochs", "1", "--no-progress", "--out", str(afile / "x.h5"))
    assert res.exit_code == 2 and f"'{afile}' is a file, not a folder" in res.output and "target " not in res.output
    res = run("train", "--epochs", "1", "--no-progress", "--out", str(afile))
    assert res.exit_code == 2 and "exists; pass --overwrite to replace it or --resume to continue it" in res.output
    res = run("train", "--epochs", "1", "--no-progress", "--out", str(afile), "--resume", "--overwrite")
    assert res.exit_code == 2 and "choose one" in res.output
    res = run("figure", "3", "--preset", "test", "--out", str(afile / "sub"))
    assert res.exit_code == 2 and "is a file, not a folder" in res.output and "figure 3 (" not in res.output
    res = run("figure", "6", "--preset", "test", "--set", "offset=abc", "--out", str(tmp_path / "figs"))
    assert res.exit_code == 2 and "--set offset=abc: offset must be an integer" in res.output
    res = run("watch", "--run", str(afile), "--once", "--plot", str(afile / "p.png"))
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
