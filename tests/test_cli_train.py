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
    (["--param", "bogus=1"], "takes no argument"),
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
