"""``spectral-probe reproduce``: the paper's tables as data, Table 6 recomputed, Table 1 through sweeps."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.paper_data import (TABLE1_ARCHITECTURES, TABLE1_FILES, TABLE1_MODELS, TABLE1_PSNR, TABLE6,
                                       table1_psnr, table6_row)
from spectral_probe.reproduce import Table1Row, reproduce_table6, table1_sweep
from spectral_probe.winner import winner_scales


def run(*args):
    return CliRunner().invoke(main, ["reproduce", *args])


def _one_error_line(res, message):
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], res.output
    assert "Traceback" not in res.output


# ----------------------------------------------------------------------------- the paper's tables as data
def test_tables_hold_the_papers_numbers():
    assert TABLE1_PSNR["tetris.wav"]["siren"] == (13.4, 0.0) and TABLE1_PSNR["tetris.wav"]["siren2"] == (62.7, 0.4)
    assert TABLE1_PSNR["arch.wav"]["siren2"] == (95.2, 2.9) and TABLE1_PSNR["Average"]["finer"] == (46.2, 0.3)
    assert len(TABLE1_FILES) == 11 and list(TABLE1_ARCHITECTURES) == list(TABLE1_MODELS)
    assert (TABLE1_ARCHITECTURES["wire"].width, TABLE1_ARCHITECTURES["siren_rff"].parameters) == (157, 150155)
    # Table 1's mean rows are the averages of its eleven rows (to the printed precision)
    for model in TABLE1_MODELS:
        mean = np.mean([TABLE1_PSNR[f][model][0] for f in TABLE1_FILES])
        assert mean == pytest.approx(TABLE1_PSNR["Average"][model][0], abs=0.06)
    assert len(TABLE6) == 16 and table6_row("gt_bach.wav").psi == 0.0737
    assert table1_psnr("/data/audio/gt_bach.wav")["finer"] == (64.5, 0.2) and table1_psnr("chopin.wav") is None


def test_table6_s0_s1_follow_eqn11_with_a7():
    """Every audio/image row: Eqn 11 (audio a = 7, images a = 5) from the printed psi gives the printed s0, s1."""
    for row in TABLE6:
        if row.kind == "shape":
            continue
        s0, s1 = winner_scales(row.psi, "audio" if row.kind == "audio" else "image")
        assert 0 <= s0 - row.s0 < 1.0 + 0.5, row.file        # printed s0 is truncated (psi itself is rounded)
        assert abs(s1 - row.s1) <= 0.0051, row.file


# ----------------------------------------------------------------------------- Table 6
def test_reproduce_table6_on_the_shared_data(shared_data):
    results, missing = reproduce_table6(shared_data)
    by_name = {r.row.file: r for r in results}
    for name, psi in (("tetris.wav", 0.5732), ("bach.wav", 0.0737)):
        if name in by_name:
            assert by_name[name].ok and round(by_name[name].psi, 4) == psi
    assert all(r.ok for r in results) and results
    assert {r.file for r in missing}.isdisjoint(by_name)


def test_cli_table6_marks_unreadable_files_and_exits_1(tmp_path, tetris):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "tap.wav").write_bytes(b"not audio")
    shutil.copy(tetris, tmp_path / "tetris.wav")
    res = run("table6", "--data", str(tmp_path))
    assert res.exit_code == 1, res.output
    rows = [line for line in res.output.splitlines() if line.startswith("| tap.wav") or line.startswith("| tetris")]
    assert "unreadable" in rows[1] and rows[0].endswith("| ok |")
    assert "1 of 2 file(s) reproduce Table 6" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args,message", [
    (["table7"], "unknown table 'table7'; choose one of: paper, table1, table6"),
    (["table6", "--data", "EMPTY"], "no file of Table 6 in"),
    (["table6", "--data", "MISSING"], "is not a folder"),
    (["table1", "--files", "nowhere.wav", "--models", "siren"], "not found"),
    (["table1", "--files", "synthetic:high", "--models", "gauss"], "unknown Table 1 model"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else str(tmp_path / "missing") if a == "MISSING" else a
            for a in args]
    res = run(*args)
    assert res.exit_code == 2, res.output
    _one_error_line(res, message)


def test_cli_table1_paper_on_cpu_needs_yes():
    res = run("table1", "--preset", "paper", "--files", "synthetic:high", "--models", "siren", "--seeds", "1",
              "--device", "cpu")
    assert res.exit_code == 2
    _one_error_line(res, "pass --yes")


# ----------------------------------------------------------------------------- Table 1
def test_table1_sweep_spec():
    spec = table1_sweep("paper", ["tetris.wav", "gt_bach.wav"], ["siren", "siren2"], 5, omega_rule="all")
    assert spec.grid == {"model": ["siren", "siren2"], "target": ["tetris.wav", "gt_bach.wav"], "seed": [0, 1, 2, 3, 4]}
    assert spec.fixed["preset"] == "paper" and spec.fixed["omega_rule"] == "all" and spec.name == "table1-paper-all"
    with pytest.raises(ValueError, match="--seeds"):
        table1_sweep("quick", ["a.wav"], ["siren"], 0)
    row = Table1Row("tetris.wav", "siren", [13.0, 14.0], paper=(13.4, 0.0))
    assert (row.mean, row.std) == (13.5, 0.5)


def test_cli_table1_runs_through_the_sweep(tmp_path):
    out = tmp_path / "t1"
    args = ["table1", "--files", "synthetic:high", "--models", "siren,siren2", "--seeds", "2",
            "--epochs", "3", "--out", str(out), "--device", "cpu", "--workers", "1"]
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert (out / "sweep.h5").exists() and len(list((out / "runs").glob("*.h5"))) == 4
    line = next(line for line in res.output.splitlines() if line.startswith("| synthetic:high | SIREN^2"))
    assert "(2)" in line and "not in Table 1" in line
    again = run(*args)                                   # finished runs are reused (resume)
    assert again.exit_code == 0 and "| synthetic:high | SIREN |" in again.output
