"""``reproduce paper`` at the test preset: manifest, resuming across runs, settings hashes, bad input."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from _paperscale_fixtures import data, one_thread  # noqa: F401 - fixtures
from spectral_probe.paperscale import jobs as jobs_mod
from spectral_probe.paperscale import paper_status, reproduce_paper
from spectral_probe.paperscale.jobs import catalogue, parse_budget, select, settings_hash
from spectral_probe.paperscale.manifest import Manifest, writer_lock
from spectral_probe.paperscale.table1 import run_path
from spectral_probe.signals import load_target
from spectral_probe.store.filelock import RunLockedError
from spectral_probe.training import Deadline

T1 = "table1/tetris/siren2"


def run(out, data, budget="120s", **kw):
    kw.setdefault("log", lambda line: None)
    return reproduce_paper(out, preset="test", device="cpu", budget=budget, data=data, **kw)


# --------------------------------------------------------------------------- budget, hashes, selection
@pytest.mark.parametrize("text, seconds", [("9m", 540), ("540", 540), ("90s", 90), ("1h", 3600), ("2m30s", 150),
                                           (12.5, 12.5), ("0.5m", 30)])
def test_budget_parses_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "nine minutes", "", "5x", "2m30", float("nan"), "0s"])
def test_budget_refuses_zero_negative_and_garbage(text):
    with pytest.raises(ValueError, match="--budget"):
        parse_budget(text)


def test_settings_hash_ignores_speed_settings_and_order():
    assert settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": (1, 2), "a": 1})
    assert settings_hash({"a": 1}) != settings_hash({"a": 2})
    spec, _ = jobs_mod.table1_run("synthetic:broadband", "siren2", "paper", 0)
    fast = jobs_mod.result_settings(type(spec)(**{**vars(spec), "train": type(spec.train)(
        **{**spec.train.to_dict(), "compile": False, "cuda_graphs": True, "device": "cuda", "log_every": 7})}))
    assert settings_hash(fast) == settings_hash(jobs_mod.result_settings(spec))
    slow = type(spec.train)(**{**spec.train.to_dict(), "lr": 2e-4})
    assert settings_hash(jobs_mod.result_settings(type(spec)(**{**vars(spec), "train": slow}))) != \
        settings_hash(jobs_mod.result_settings(spec))


def test_select_names_jobs_and_parts(data, monkeypatch):
    monkeypatch.setenv("SPECTRAL_PROBE_DATA", str(data))
    every = catalogue("test", "tetris.wav", 5)
    assert [j.name for j in every[:3]] == ["fig1", "fig2", "fig3"] and every[10].name == T1
    assert [p.name for p in every[10].parts] == [f"seed{k}" for k in range(5)]
    picked = select(every, ["fig5,table1/tetris/siren2/seed3", "3"])
    assert [j.name for j in picked] == ["fig3", "fig5", T1] and [p.name for p in picked[2].parts] == ["seed3"]
    assert len(select(every, ["table1/gt_bach"])) == 3
    with pytest.raises(ValueError, match=r"--jobs 'fig99' names no job; choose from: .*fig14.*table1/tetris/siren2"):
        select(every, ["fig3,fig99"])


# --------------------------------------------------------------------------- Deadline and resuming
def test_deadline_stops_a_fit_after_the_epoch_it_passed():
    from spectral_probe.models import build_model
    from spectral_probe.training import fit

    target = load_target("synthetic:broadband", n=256)
    result = fit(build_model("siren", width=16, depth=2), target, epochs=50, callbacks=[Deadline(0.0)])
    assert result.epochs_run == 1 and result.stop_reason == "deadline"
    later = fit(build_model("siren", width=16, depth=2), target, epochs=5, callbacks=[Deadline(4e9)])
    assert later.epochs_run == 5 and later.stop_reason == ""
    with pytest.raises(ValueError, match="NaN"):
        Deadline(float("nan"))


# --------------------------------------------------------------------------- the runner
def test_two_runs_complete_everything_and_the_second_redoes_nothing(data, tmp_path, monkeypatch):
    out = tmp_path / "paper"
    first = run(out, data, jobs=["fig5", T1])
    assert first.ended_by == "done" and first.exit_code == 0 and not first.left
    assert sorted(first.advanced) == ["fig5/all"] + [f"{T1}/seed{k}" for k in range(5)]
    manifest = json.loads((out / "manifest.json").read_text())
    fig5 = manifest["jobs"]["fig5"]
    assert fig5["state"] == "done" and fig5["drawn"]["device"] == "cpu" and set(fig5["files"]) == {"fig5.png", "fig5.h5"}
    cell = manifest["jobs"][T1]
    assert cell["state"] == "done" and cell["paper"] == [62.7, 0.4]
    seeds = [cell["parts"][f"seed{k}"]["numbers"]["best_psnr"] for k in range(5)]
    assert len(set(seeds)) == 5                                   # five trials, five results
    with h5py.File(out / next(iter(cell["parts"]["seed0"]["files"])), "r") as h5:
        assert float(h5["scalars/best_psnr"][()]) == pytest.approx(seeds[0])
    readme = (out / "README.md").read_text()
    assert "generated by `spectral-probe reproduce paper`" in readme
    mean, std = np.mean(seeds), np.std(seeds)
    assert f"| tetris.wav | SIREN^2 | {mean:.2f} +- {std:.2f} (5/5) | 62.7 +- 0.4 |" in readme
    assert "!/fig5.h5" in (out / ".gitignore").read_text() and "runs/" in (out / ".gitignore").read_text()
    second = run(out, data, jobs=["fig5", T1])
    assert second.advanced == [] and second.ended_by == "done" and not second.left
    again = json.loads((out / "manifest.json").read_text())
    assert again["jobs"]["fig5"]["parts"] == manifest["jobs"]["fig5"]["parts"]
    assert [r["advanced"] for r in again["runs"]] == [first.advanced, []]
    monkeypatch.delenv("SPECTRAL_PROBE_DATA", raising=False)        # --status needs no data: the manifest says it
    status = paper_status(out, target="tetris.wav")
    assert "table1/tetris/siren2       done       5/5" in status and "fig1                       todo" in status


def test_a_run_cut_by_its_budget_mid_job_continues_to_the_uninterrupted_result(data, tmp_path, monkeypatch):
    """Two-run simulation: the deadline passes in epoch 37 of 60 of a Table 1 seed; the next run completes it."""
    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 60)
    monkeypatch.setenv("SPECTRAL_PROBE_DATA", str(data))
    part = ["table1/tetris/siren2/seed1"]
    whole = run(tmp_path / "whole", data, jobs=part)
    assert whole.advanced == part
    original = Deadline.on_epoch_end

    def deadline_in_epoch_37(self, state):           # the budget's deadline passes during epoch 37
        if state.epoch == 36:
            self.at = 0.0
        original(self, state)

    monkeypatch.setattr(Deadline, "on_epoch_end", deadline_in_epoch_37)
    out = tmp_path / "cut"
    first = run(out, data, jobs=part)
    assert first.ended_by == "budget" and first.left == part and first.exit_code == 0
    rec = json.loads((out / "manifest.json").read_text())["jobs"][T1]["parts"]["seed1"]
    assert rec["state"] == "partial" and rec["progress"] == pytest.approx(37 / 60)
    monkeypatch.setattr(Deadline, "on_epoch_end", original)
    second = run(out, data, jobs=part)
    assert second.advanced == part and not second.left
    cell = catalogue("test", "tetris.wav", 5, figures=[])[0]
    p = next(q for q in cell.parts if q.name == "seed1")
    with h5py.File(run_path(tmp_path / "whole", cell, p), "r") as a, h5py.File(run_path(out, cell, p), "r") as b:
        for name in ("loss", "psnr", "lr"):
            np.testing.assert_array_equal(a[f"scalars/{name}"][()], b[f"scalars/{name}"][()])
        assert float(a["scalars/best_psnr"][()]) == float(b["scalars/best_psnr"][()])
    m_whole = json.loads((tmp_path / "whole" / "manifest.json").read_text())["jobs"][T1]["parts"]["seed1"]["numbers"]
    m_cut = json.loads((out / "manifest.json").read_text())["jobs"][T1]["parts"]["seed1"]["numbers"]
    assert {k: v for k, v in m_whole.items() if k != "train_s"} == {k: v for k, v in m_cut.items() if k != "train_s"}


def test_seeds_trained_together_match_seeds_trained_alone(data, tmp_path, monkeypatch):
    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 40)
    alone = run(tmp_path / "alone", data, jobs=["table1/tetris/siren2/seed0", "table1/tetris/siren2/seed1"])
    assert alone.advanced == ["table1/tetris/siren2/seed0", "table1/tetris/siren2/seed1"]
    original = Deadline.on_epoch_end

    def cut(self, state):
        if state.epoch == 24:
            self.at = 0.0
        original(self, state)

    monkeypatch.setattr(Deadline, "on_epoch_end", cut)
    out = tmp_path / "together"
    first = run(out, data, jobs=["table1/tetris/siren2/seed0", "table1/tetris/siren2/seed1"], seeds_together=2)
    assert first.ended_by == "budget"
    parts = json.loads((out / "manifest.json").read_text())["jobs"][T1]["parts"]
    assert parts["seed0"]["state"] == parts["seed1"]["state"] == "partial"
    assert parts["seed0"]["batch"].endswith(".batch.h5") and parts["seed0"]["progress"] == pytest.approx(25 / 40)
    monkeypatch.setattr(Deadline, "on_epoch_end", original)
    second = run(out, data, jobs=[T1 + "/seed0", T1 + "/seed1"], seeds_together=1)   # a partial batch stays one
    assert sorted(second.advanced) == [T1 + "/seed0", T1 + "/seed1"]
    a = json.loads((tmp_path / "alone" / "manifest.json").read_text())["jobs"][T1]["parts"]
    b = json.loads((out / "manifest.json").read_text())["jobs"][T1]["parts"]
    for seed in ("seed0", "seed1"):
        assert b[seed]["numbers"]["batch"] == 2 and b[seed]["numbers"]["epochs"] == 40
        assert b[seed]["numbers"]["best_psnr"] == pytest.approx(a[seed]["numbers"]["best_psnr"], abs=1e-4)


def test_changed_settings_are_redone_and_said(data, tmp_path, monkeypatch):
    out = tmp_path / "paper"
    run(out, data, jobs=["fig5", "table1/tetris/siren2/seed0"])
    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 31)
    lines = []
    again = run(out, data, jobs=["fig5", "table1/tetris/siren2/seed0"], log=lines.append)
    assert again.advanced == ["table1/tetris/siren2/seed0"]
    assert any(line.startswith("note: table1/tetris/siren2: settings changed since its recorded run (hash")
               for line in lines)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["superseded"][0]["job"] == T1
    assert manifest["jobs"][T1]["parts"]["seed0"]["numbers"]["epochs"] == 31


# --------------------------------------------------------------------------- bad input
def test_damaged_manifest_is_refused_and_left_as_it_is(data, tmp_path):
    out = tmp_path / "paper"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "spectral_probe.paper_manifest/1", "jobs": {')
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match=r"manifest '.*manifest.json' is damaged"):
        run(out, data, jobs=["fig5"])
    (out / "manifest.json").write_text('{"format": "something else", "jobs": {}}')
    with pytest.raises(ValueError, match="is not a reproduce-paper manifest"):
        run(out, data, jobs=["fig5"])
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert before != (out / "manifest.json").read_bytes()        # (the second file is the one left now)


def test_damaged_run_file_fails_its_part_only_and_is_not_overwritten(data, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAL_PROBE_DATA", str(data))
    out = tmp_path / "paper"
    cell = catalogue("test", "tetris.wav", 5, figures=[])[0]
    path = run_path(out, cell, cell.parts[0])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an HDF5 file" * 100)
    report = run(out, data, jobs=[T1 + "/seed0", "fig5"])
    assert list(report.failed) == [T1 + "/seed0"] and str(path.name) in report.failed[T1 + "/seed0"]
    assert report.exit_code == 1 and "fig5/all" in report.advanced
    assert path.read_bytes() == b"not an HDF5 file" * 100


def test_missing_data_names_the_file_and_the_option(tmp_path, monkeypatch):
    monkeypatch.delenv("SPECTRAL_PROBE_DATA", raising=False)
    empty = tmp_path / "empty"
    (empty / "audio").mkdir(parents=True)
    with pytest.raises((ValueError, FileNotFoundError), match="gt_bach.wav"):
        run(tmp_path / "out", empty, jobs=["table1/gt_bach/siren"])
    assert not (tmp_path / "out").exists()


def test_a_second_writer_is_refused(data, tmp_path):
    out = tmp_path / "paper"
    with writer_lock(out):
        with pytest.raises(RunLockedError, match="is being updated by another reproduce paper"):
            run(out, data, jobs=["fig5"])
    assert run(out, data, jobs=["fig5"]).advanced == ["fig5/all"]


def test_plan_only_runs_and_writes_nothing(data, tmp_path):
    lines = []
    report = run(tmp_path / "plan", data, jobs=["fig5", T1], plan_only=True, log=lines.append)
    assert [name for name, _, _ in report.plan][:2] == ["fig5/all", T1 + "/seed0"]
    assert lines[0].startswith("reproduce paper on cpu") and any(line.startswith("estimate:") for line in lines)
    assert not (tmp_path / "plan").exists()


def test_the_test_preset_refuses_a_paper_folder(data, tmp_path):
    out = tmp_path / "paper"
    out.mkdir()
    Manifest(out, {"format": "spectral_probe.paper_manifest/1", "preset": "paper", "jobs": {}}).save()
    with pytest.raises(ValueError, match="holds a reproduction at the 'paper' preset"):
        run(out, data, jobs=["fig5"])


def test_data_option_does_not_leak(data, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAL_PROBE_DATA", "/elsewhere")
    run(tmp_path / "p", data, jobs=["fig5"], plan_only=True)
    assert os.environ["SPECTRAL_PROBE_DATA"] == "/elsewhere"


def test_a_selected_part_leaves_its_job_partial_and_the_rest_follows(data, tmp_path):
    out = tmp_path / "paper"
    run(out, data, jobs=[T1 + "/seed3"])
    cell = json.loads((out / "manifest.json").read_text())["jobs"][T1]
    assert cell["state"] == "partial" and cell["parts"]["seed3"]["state"] == "done"
    rest = run(out, data, jobs=[T1])
    assert rest.advanced == [f"{T1}/seed{k}" for k in (0, 1, 2, 4)]
    assert json.loads((out / "manifest.json").read_text())["jobs"][T1]["state"] == "done"


def test_sigterm_stops_the_training_with_a_checkpoint_and_exit_124(data, tmp_path, monkeypatch):
    import signal

    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 60)
    original = Deadline.on_epoch_end

    def terminated_in_epoch_21(self, state):          # as if `timeout` sent SIGTERM during epoch 21
        if state.epoch == 20:
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, state)

    monkeypatch.setattr(Deadline, "on_epoch_end", terminated_in_epoch_21)
    out = tmp_path / "paper"
    report = run(out, data, jobs=[T1 + "/seed0", T1 + "/seed1"])
    assert report.ended_by == "SIGTERM" and report.exit_code == 124 and report.advanced == [T1 + "/seed0"]
    rec = json.loads((out / "manifest.json").read_text())["jobs"][T1]["parts"]
    assert rec["seed0"]["state"] == "partial" and rec["seed0"]["progress"] == pytest.approx(21 / 60)
    assert rec["seed1"]["state"] == "todo"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL            # the handler is restored
