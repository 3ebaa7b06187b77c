"""Results of ``reproduce paper`` between machines (export, import, carry), the GPU script and the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from _paperscale_fixtures import data, one_thread  # noqa: F401 - fixtures
from spectral_probe.cli.main import main
from spectral_probe.paperscale import jobs as jobs_mod
from spectral_probe.paperscale import carry_files, export_results, import_results, reproduce_paper
from spectral_probe.paperscale.transfer import ARCHIVE
from spectral_probe.training import Deadline

REPO = Path(__file__).resolve().parents[1]
T1 = "table1/tetris/siren2"


def run(out, data, **kw):
    kw.setdefault("budget", "120s")
    return reproduce_paper(out, preset="test", device="cpu", data=data, log=lambda line: None, **kw)


def _started(folder, index):
    """Unix time at which run ``index`` of a folder's manifest started."""
    return json.loads((folder / "manifest.json").read_text())["runs"][index]["started_ts"]


def _cut_at(monkeypatch, epoch):
    original = Deadline.on_epoch_end

    def cut(self, state):
        if state.epoch == epoch:
            self.at = 0.0
        original(self, state)

    monkeypatch.setattr(Deadline, "on_epoch_end", cut)
    return original


def test_export_import_and_continue_elsewhere(data, tmp_path, monkeypatch):
    """A 'GPU' folder runs fig5 and cuts a Table 1 seed; its export, imported into a fresh folder, continues there."""
    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 50)
    gpu, here, back = tmp_path / "gpu", tmp_path / "here", tmp_path / "back"
    original = _cut_at(monkeypatch, 19)
    first = run(gpu, data, jobs=["fig5", T1 + "/seed0"])
    monkeypatch.setattr(Deadline, "on_epoch_end", original)
    assert first.ended_by == "budget" and first.advanced == ["fig5/all", T1 + "/seed0"]
    pieces = export_results(gpu, back, since=0)
    assert [p.name for p in pieces] == [ARCHIVE]
    taken = import_results(back, here)
    assert sorted(taken)[:2] == ["fig5/all", T1 + "/seed0"]
    mine, theirs = (json.loads((d / "manifest.json").read_text()) for d in (here, gpu))
    assert mine["jobs"]["fig5"] == theirs["jobs"]["fig5"] and mine["jobs"][T1] == theirs["jobs"][T1]
    assert mine["jobs"][T1]["parts"]["seed0"]["state"] == "partial"
    for name in ("fig5.png", "fig5.h5", *mine["jobs"][T1]["parts"]["seed0"]["files"]):
        assert (here / name).read_bytes() == (gpu / name).read_bytes()
    assert "fig5" in (here / "README.md").read_text()
    third = run(gpu, data, jobs=[T1 + "/seed1"])                    # the 'GPU' side works on; import it again
    assert third.advanced == [T1 + "/seed1"]
    before = (here / "README.md").stat().st_mtime_ns
    assert import_results(export_results(gpu, tmp_path / "back2", since=_started(gpu, -1))[0], here) == \
        [T1 + "/seed1"]
    assert (here / "README.md").stat().st_mtime_ns >= before
    second = run(here, data, jobs=["fig5", T1 + "/seed0"])          # continues the imported checkpoint
    assert second.advanced == [T1 + "/seed0"] and not second.left
    fourth = run(gpu, data, jobs=[T1 + "/seed0"])                   # the 'GPU' side finishes the same part
    import_results(export_results(gpu, tmp_path / "back3", since=_started(gpu, -1))[0], here)
    mine = json.loads((here / "manifest.json").read_text())["jobs"][T1]["parts"]["seed0"]
    theirs = json.loads((gpu / "manifest.json").read_text())["jobs"][T1]["parts"]["seed0"]
    assert fourth.advanced == [T1 + "/seed0"] and mine["state"] == theirs["state"] == "done"
    assert mine["numbers"]["best_psnr"] == theirs["numbers"]["best_psnr"]   # the same trajectory either way
    whole = run(tmp_path / "whole", data, jobs=[T1 + "/seed0"])
    assert whole.advanced == [T1 + "/seed0"]
    a = json.loads((here / "manifest.json").read_text())["jobs"][T1]["parts"]["seed0"]["numbers"]
    b = json.loads((tmp_path / "whole" / "manifest.json").read_text())["jobs"][T1]["parts"]["seed0"]["numbers"]
    assert a["best_psnr"] == b["best_psnr"] and a["final_psnr"] == b["final_psnr"] and a["epochs"] == 50
    assert [r["advanced"] for r in json.loads((here / "manifest.json").read_text())["runs"]] == \
        [["fig5/all", T1 + "/seed0"], [T1 + "/seed1"], [T1 + "/seed0"], [T1 + "/seed0"]]   # here and there


def test_export_leaves_finished_run_files_behind_first_and_says_so(data, tmp_path, monkeypatch):
    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 40)
    out = tmp_path / "gpu"
    original = _cut_at(monkeypatch, 9)
    run(out, data, jobs=[T1 + "/seed0"])
    monkeypatch.setattr(Deadline, "on_epoch_end", original)
    run(out, data, jobs=[T1 + "/seed1"])
    sizes = {p.name: p.stat().st_size for p in (out / "runs" / "table1").glob("*.h5")}
    fixed = sum((out / n).stat().st_size for n in ("manifest.json", "README.md", ".gitignore"))
    small = int((max(sizes.values()) * 1.5 + fixed + 2 ** 16) / 0.99)      # room for one run file, not two
    pieces = export_results(out, tmp_path / "back", since=0, piece_bytes=small, max_pieces=1)
    assert len(pieces) == 1
    left = (tmp_path / "back" / "left-behind.txt").read_text()
    assert "seed1" in left and "seed0" not in left                   # the partial part's checkpoint came back
    with tarfile.open(pieces[0]) as tar:
        packed = json.loads(tar.extractfile("manifest.json").read())
    assert packed["jobs"][T1]["parts"]["seed0"]["state"] == "partial"
    assert packed["jobs"][T1]["parts"]["seed1"]["files"] == {}
    pieces = export_results(out, tmp_path / "tiny", since=0, piece_bytes=int((fixed + 2 ** 16) / 0.99) + 100,
                            max_pieces=1)
    with tarfile.open(pieces[0]) as tar:
        packed = json.loads(tar.extractfile("manifest.json").read())
    assert packed["jobs"][T1]["parts"]["seed0"]["state"] == "todo"   # its checkpoint stayed behind: restarts
    assert "not returned" in packed["jobs"][T1]["parts"]["seed0"]["note"]


def test_import_refuses_bad_archives_and_imports_nothing(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / ARCHIVE).write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot be read"):
        import_results(bad, tmp_path / "out")
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / ARCHIVE, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../outside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="not a plain file under the folder"):
        import_results(evil, tmp_path / "out")
    (evil / ARCHIVE).unlink()
    (evil / f"{ARCHIVE}.001").write_bytes(b"x")
    with pytest.raises(ValueError, match="missing: have \\[1\\]"):
        import_results(evil, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "outside.txt").exists()


def test_carry_copies_what_the_next_run_needs(data, tmp_path, monkeypatch):
    monkeypatch.setitem(jobs_mod.TEST_TABLE1, "epochs", 40)
    out = tmp_path / "paper"
    original = _cut_at(monkeypatch, 9)
    run(out, data, jobs=["fig5", T1 + "/seed0"])
    monkeypatch.setattr(Deadline, "on_epoch_end", original)
    files = carry_files(out, tmp_path / "carry")
    assert len(files) == 1 and files[0].startswith("runs/table1/tetris-siren2-seed0-")
    assert (tmp_path / "carry" / files[0]).read_bytes() == (out / files[0]).read_bytes()
    with pytest.raises(ValueError, match="the files to carry take .* MiB, over 0 MiB: runs/table1/"):
        carry_files(out, tmp_path / "carry2", limit_bytes=10)


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("args, message", [
    (["--budget", "0"], "error: --budget must be a positive duration, got '0'"),
    (["--budget", "soon"], "error: --budget 'soon' is not a duration"),
    (["--jobs", "fig3,fig99"], "error: --jobs 'fig99' names no job; choose from: all, figures, table1, fig1"),
    (["--seeds-together", "0"], "Invalid value for '--seeds-together'"),
])
def test_cli_bad_input_is_one_line_exit_2(data, tmp_path, args, message):
    res = CliRunner().invoke(main, ["reproduce", "paper", "--preset", "test", "--device", "cpu", "--data", str(data),
                                    "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "o").exists()


def test_cli_damaged_manifest_and_status(data, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "manifest.json").write_text("{ not json")
    res = CliRunner().invoke(main, ["reproduce", "paper", "--preset", "test", "--device", "cpu", "--data", str(data),
                                    "--out", str(out), "--jobs", "fig5"])
    assert res.exit_code == 2 and f"error: manifest '{out / 'manifest.json'}' is damaged" in res.output
    assert (out / "manifest.json").read_text() == "{ not json"
    res = CliRunner().invoke(main, ["reproduce", "paper", "--out", str(out), "--status"])
    assert res.exit_code == 2 and "is damaged" in res.output


def test_cli_runs_and_reports(data, tmp_path):
    out = tmp_path / "o"
    args = ["reproduce", "paper", "--preset", "test", "--device", "cpu", "--data", str(data), "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--jobs", "fig5", "--budget", "1m"])
    assert res.exit_code == 0, res.output
    assert "fig5/all (estimate" in res.output and res.output.rstrip().splitlines()[-1].startswith("done: 1 part(s)")
    res = CliRunner().invoke(main, ["reproduce", "paper", "--out", str(out), "--status", "--data", str(data)])
    assert res.exit_code == 0 and "fig5                       done       1/1" in res.output


# --------------------------------------------------------------------------- the GPU script, rehearsed on the CPU
def _script(env_extra, tmp_path, mode="paper"):
    env = {**os.environ, "DEVICE": "cpu", "PRESET": "test", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           **env_extra}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "run_on_gpu.sh"), mode], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)


def test_gpu_script_continues_the_folder_and_its_export_imports_here(data, tmp_path):
    paper, out, here = tmp_path / "paper", tmp_path / "gpu_out", tmp_path / "here"
    res = _script({"PAPER_DIR": str(paper), "OUT": str(out), "DEADLINE_S": "90", "PACK_S": "20",
                   "JOBS": "fig5,table1/tetris/siren2/seed0", "SPECTRAL_PROBE_DATA": str(data)}, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", ARCHIVE]
    log = (out / "log.txt").read_text()
    assert "exit 0: reproduce paper" in log and "fig5                       done" in log
    import_results(out, here)
    manifest = json.loads((here / "manifest.json").read_text())
    assert manifest["jobs"]["fig5"]["state"] == "done"
    assert manifest["jobs"][T1]["parts"]["seed0"]["state"] == "done"
    with h5py.File(here / "fig5.h5", "r") as a, h5py.File(paper / "fig5.h5", "r") as b:
        assert sorted(a) == sorted(b)
        for name in a:
            if isinstance(a[name], h5py.Dataset):
                np.testing.assert_array_equal(a[name][()], b[name][()])


@pytest.mark.slow
def test_gpu_script_two_runs_equal_one_uninterrupted_run(data, tmp_path):
    """The whole test preset through the script: the first run cut by its budget, the second completing it."""
    whole = run(tmp_path / "whole", data, budget="15m")
    assert not whole.left
    paper, here = tmp_path / "paper", tmp_path / "here"
    env = {"PAPER_DIR": str(paper), "PACK_S": "10", "SPECTRAL_PROBE_DATA": str(data)}
    first = _script({**env, "OUT": str(tmp_path / "o1"), "DEADLINE_S": "40"}, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:]
    import_results(tmp_path / "o1", here)
    partial = json.loads((here / "manifest.json").read_text())
    assert {j["state"] for j in partial["jobs"].values()} - {"done"}              # cut: work was left
    shutil.rmtree(paper)                                                            # a bare machine again
    shutil.copytree(here, paper)
    second = _script({**env, "OUT": str(tmp_path / "o2"), "DEADLINE_S": "400"}, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:]
    import_results(tmp_path / "o2", here)
    final = json.loads((here / "manifest.json").read_text())
    reference = json.loads((tmp_path / "whole" / "manifest.json").read_text())
    assert {n: j["state"] for n, j in final["jobs"].items()} == {n: "done" for n in reference["jobs"]}
    for name, job in reference["jobs"].items():
        if job["kind"] == "table1":
            for seed, rec in job["parts"].items():
                got = final["jobs"][name]["parts"][seed]["numbers"]
                assert got["best_psnr"] == rec["numbers"]["best_psnr"], (name, seed)
