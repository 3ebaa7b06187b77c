"""Dry run of benchmarks/paper_scale.py (``--preset test``): the GPU run's code path on the CPU, in seconds."""

from __future__ import annotations

import importlib.util
import json

import h5py
import numpy as np
import pytest

from spectral_probe.signals import load_target, tones

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_scale():
    spec = importlib.util.spec_from_file_location("paper_scale", REPO / "benchmarks" / "paper_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Stand-ins named like the paper's files (the script must only find them through --data)."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("data")
    (root / "audio").mkdir()
    sf.write(root / "audio" / "tetris.wav", 0.9 * load_target("synthetic:broadband", n=4096).values.numpy()[:, 0],
             22050)
    sf.write(root / "audio" / "gt_bach.wav", 0.9 * tones(4096, (0.005, 0.02)).values.numpy()[:, 0], 22050)
    return root


def _run(paper_scale, *args):
    return paper_scale.main(["--preset", "test", "--device", "cpu", "--threads", "1", *map(str, args)])


def test_dry_run_writes_figures_runs_and_report(paper_scale, data, tmp_path, capsys):
    assert _run(paper_scale, "--data", data, "--out", tmp_path, "--figures", "3,5") == 0
    printed = capsys.readouterr().out
    assert printed.index("estimate:") < printed.index("fig3 (estimate")          # the estimate comes first
    report = json.loads((tmp_path / "paper_scale.json").read_text())
    assert report["finished"] and report["all_jobs_ok"] and report["reduced"] == []
    assert report["environment"]["precision"]["cuda_matmul_allow_tf32"] is False
    jobs = {j["name"]: j for j in report["jobs"]}
    assert list(jobs) == ["fig3", "fig5"] + [f"table1/{t.split('.')[0]}/{m}" for t, m in paper_scale.TABLE1_PRIORITY]
    assert all(j["status"] == "ok" and j["estimate_s"] > 0 and j["seconds"] > 0 for j in jobs.values())
    for number in ("3", "5"):
        assert (tmp_path / f"fig{number}.png").stat().st_size > 10_000
        assert (tmp_path / f"fig{number}.h5").exists()
    run = jobs["table1/tetris/siren2"]
    assert run["paper_psnr"] == 62.7 and run["epochs"] == paper_scale.TEST_TABLE1["epochs"]
    assert run["config"]["model_kwargs"]["width"] == paper_scale.TEST_TABLE1["width"]
    with h5py.File(tmp_path / run["outputs"][0], "r") as h5:       # a normal run file, with its PSNR history
        psnr, final = h5["scalars/psnr"][:], float(h5["scalars/final_psnr"][()])
    # best over the epochs and the final state (after the last update)
    assert psnr.shape == (30,) and max(np.max(psnr), final) == pytest.approx(run["best_psnr"])
    summary = (tmp_path / "summary.md").read_text()
    assert "| table1/gt_bach/finer | 30 |" in summary and "| 64.5 |" in summary


def test_budget_drops_table1_runs_from_the_end_and_says_so(paper_scale, data, tmp_path):
    # a budget below the calibration time: nothing fits; --plan-only measures and reports without running
    assert _run(paper_scale, "--data", data, "--out", tmp_path, "--only", "table1", "--budget-s", 0.01,
                "--plan-only") == 0
    report = json.loads((tmp_path / "paper_scale.json").read_text())
    assert not report["finished"] and not report["all_jobs_ok"] and len(report["reduced"]) == 6
    assert report["reduced"][0].startswith("Table 1 run table1/tetris/siren2 not run: estimated")
    assert {j["status"] for j in report["jobs"]} == {"skipped"}
    assert not (tmp_path / "table1").exists()


def test_missing_data_fails_early_in_one_line(paper_scale, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SPECTRAL_PROBE_DATA", raising=False)
    assert _run(paper_scale, "--data", tmp_path, "--out", tmp_path / "out", "--only", "table1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data file gt_bach.wav not found") and "\n" not in err
    assert not (tmp_path / "out").exists()
    assert _run(paper_scale, "--runs", "tetris.wav:wire", "--out", tmp_path / "out") == 2
    assert "unknown Table 1 run 'tetris.wav:wire'" in capsys.readouterr().err


@pytest.mark.slow
def test_dry_run_all_figures(paper_scale, data, tmp_path):
    assert _run(paper_scale, "--data", data, "--out", tmp_path) == 0
    report = json.loads((tmp_path / "paper_scale.json").read_text())
    from spectral_probe.figures import list_figures

    figures = list_figures()
    assert [j["name"] for j in report["jobs"]][: len(figures)] == [f"fig{n}" for n in figures]
    assert [j["status"] for j in report["jobs"]] == ["ok"] * (len(figures) + 6)  # + six Table 1 runs
    assert sorted(p.name for p in tmp_path.glob("fig*.png")) == sorted(f"fig{n}.png" for n in figures)


def test_data_option_does_not_leak_into_the_process(paper_scale, data, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAL_PROBE_DATA", "/elsewhere")
    _run(paper_scale, "--data", data, "--out", tmp_path, "--only", "table1", "--budget-s", 0.01, "--plan-only")
    import os

    assert os.environ["SPECTRAL_PROBE_DATA"] == "/elsewhere"
