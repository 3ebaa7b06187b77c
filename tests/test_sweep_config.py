"""Sweep specs: TOML and --grid parsing, validation errors, grid expansion and run ids (no training)."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.sweep import SweepSpec, expand, load_config, parse_grid_args, parse_set_args, run_id
from spectral_probe.sweep.config import parse_value

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def spec(**grid) -> SweepSpec:
    return SweepSpec(fixed={"target": "synthetic:high"}, grid=grid)


def test_parse_grid_and_set_args():
    assert parse_grid_args(["model=siren,siren2", "seed=0,1 s0=1e3"]) == {
        "model": ["siren", "siren2"], "seed": [0, 1], "s0": [1000.0]}
    assert parse_set_args(["epochs=20", "target=synthetic:S1"]) == {"epochs": 20, "target": "synthetic:S1"}
    assert [parse_value(v) for v in ("3", "-2.5", "true", "tetris.wav")] == [3, -2.5, True, "tetris.wav"]
    with pytest.raises(ValueError, match="--grid expects KEY=VALUE, got 'seed'"):
        parse_grid_args(["seed"])


@pytest.mark.parametrize("name,runs", [("sweep_tiny.toml", 6), ("fig6_grid.toml", 56), ("table1.toml", 70)])
def test_example_configs_validate(name, runs):
    plans, index = expand(load_config(ANALYSES / name).validated())
    assert len(plans) == runs
    assert index.max() == runs - 1


def test_model_specific_keys_collapse_and_broadcast():
    plans, index = expand(spec(model=["siren", "siren2"], s0=[1, 5.0], seed=[0, 1]).validated())
    # siren ignores s0: 2 siren runs (one per seed) + 2 x 2 siren2 runs
    assert [p.params["model"] for p in plans].count("siren") == 2 and len(plans) == 6
    assert index.shape == (2, 2, 2)
    assert np.array_equal(index[0, 0], index[0, 1])            # siren repeats along s0
    assert len(set(index[1].ravel())) == 4                      # siren2 has one run per cell
    assert all("s0" not in p.params for p in plans if p.params["model"] == "siren")
    assert {p.params["s0"] for p in plans if p.params["model"] == "siren2"} == {1.0, 5.0}


def test_run_id_is_the_hash_of_the_canonical_params():
    params = {"model": "siren2", "target": "synthetic:high", "s0": 1.0, "preset": "quick", "seed": 0}
    text = json.dumps(dict(sorted(params.items())), separators=(",", ":"))
    assert run_id(params) == "siren2-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    assert run_id(dict(reversed(list(params.items())))) == run_id(params)
    assert run_id({**params, "s0": 2.0}) != run_id(params)
    # integer and float spellings of a float key name the same run
    a = expand(spec(model=["siren2"], s0=[1]).validated())[0][0]
    b = expand(spec(model=["siren2"], s0=[1.0]).validated())[0][0]
    assert a.run_id == b.run_id and a.params["s0"] == 1.0 and isinstance(a.params["s0"], float)


def test_overrides_move_keys_between_fixed_and_grid():
    base = SweepSpec(fixed={"model": "siren2", "target": "t.wav"}, grid={"seed": [0, 1], "s0": [1.0]})
    new = base.with_overrides(grid={"model": ["siren", "siren2"]}, fixed={"seed": 3})
    assert new.grid == {"s0": [1.0], "model": ["siren", "siren2"]}
    assert new.fixed == {"target": "t.wav", "seed": 3}


@pytest.mark.parametrize("bad,message", [
    (SweepSpec(fixed={"model": "siren", "target": "x"}), "empty grid: no [grid] table"),
    (spec(model=["siren"], seed=[]), "empty grid: key 'seed' has no values"),
    (spec(model=["siren"], sed=[1]), "unknown [grid] key 'sed'; valid keys: model, target"),
    (SweepSpec(fixed={"target": "x", "widht": 3}, grid={"model": ["siren"]}), "unknown [fixed] key 'widht'"),
    (SweepSpec(grid={"model": ["siren"]}, settings={"workerz": 2}), "unknown [sweep] key 'workerz'"),
    (SweepSpec(grid={"model": ["siren"]}, settings={"workers": 0}), "workers must be a positive integer"),
    (SweepSpec(grid={"seed": [0]}), "sweep has no 'model'"),
    (spec(model=["siren"], s0=[1.0]), "'s0' applies to siren2 only, and the sweep trains siren"),
    (spec(model=["siren"], width=[1.5]), "'width' must be an integer, got 1.5"),
    (spec(model=["sirn"]), "unknown model 'sirn'; choose one of"),
    (spec(model=["siren"], preset=["fast"]), "unknown preset 'fast'"),
    (spec(model=["siren"], seed=[1, 1]), "repeats the value 1"),
])
def test_bad_specs_raise_value_errors(bad, message):
    with pytest.raises(ValueError) as err:
        bad.validated()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_toml_files(tmp_path):
    cases = {"[grd]\nx = 1\n": "unknown table 'grd'", "[fixed]\nseed = [1, 2]\n": "move it to [grid]",
             "[grid]\nseed = [1\n": "cannot parse sweep config"}
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.toml"
        path.write_text(text)
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            load_config(path)


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["--set", "model=siren", "--set", "target=synthetic:high"], "empty grid"),
    (["--grid", "seed=", "--set", "model=siren", "--set", "target=x"], "empty grid: key 'seed'"),
    (["--grid", "model=siren", "--set", "target=x", "--set", "colour=red"], "unknown [fixed] key 'colour'"),
    (["nowhere.toml"], "no sweep config at 'nowhere.toml'"),
])
def test_cli_bad_input_is_one_line(args, message, tmp_path):
    res = CliRunner().invoke(main, ["sweep", *args, "--out", str(tmp_path / "s")])
    assert message in _one_error_line(res)
    assert not (tmp_path / "s").exists()


def test_cli_unknown_config_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[sweep]\nname = "x"\nexecuter = "dask"\n[grid]\nmodel = ["siren"]\n')
    res = CliRunner().invoke(main, ["sweep", str(path), "--set", "target=x", "--out", str(tmp_path / "s")])
    assert "unknown [sweep] key 'executer'; valid keys: name, description" in _one_error_line(res)


def test_cli_unreachable_scheduler(tmp_path):
    pytest.importorskip("distributed")
    with socket.socket() as sock:         # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = CliRunner().invoke(main, ["sweep", str(ANALYSES / "sweep_tiny.toml"), "--out", str(tmp_path / "s"),
                                    "--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "1"])
    line = _one_error_line(res)
    assert f"cannot reach the dask scheduler at 'tcp://127.0.0.1:{port}'" in line


def test_cli_dry_run_lists_runs(tmp_path):
    res = CliRunner().invoke(main, ["sweep", str(ANALYSES / "sweep_tiny.toml"), "--out", str(tmp_path / "s"),
                                    "--grid", "seed=0,1,2", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.count("todo  siren-") == 3 and res.output.count("todo  siren2-") == 6
    assert "9 runs: 0 done, 9 to run" in res.output
