"""Trajectory store: round trips through h5py and xarray, SWMR live reads, SIGKILL, bad input."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from spectral_probe import build_model, fit, load_target, open_run
from spectral_probe.cli.main import main as cli
from spectral_probe.probes import Probe
from spectral_probe.training.recorder import TrainingRecorder
from spectral_probe.store import SCHEMA_VERSION, TrajectoryWriter, Var, needs_recovery, read_config, recover

sys.path.insert(0, str(Path(__file__).parent))
from _store_child import FREQS, LAYERS, expected_row  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).parent / "_store_child.py"
SWMR = {"driver_kwds": {"swmr": True}}


def _spawn(mode: str, path: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), mode, str(path), *map(str, args)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_started(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "started", proc.stderr.read()


def _committed_lines(out: str) -> int:
    """Number of steps the child reported as committed (it prints i after step i)."""
    steps = [int(t) for t in out.split() if t.isdigit()]
    return steps[-1] + 1 if steps else 0


def _assert_prefix(path: Path, at_least: int) -> int:
    """The file holds steps 0..n-1 with the child's values, n >= at_least; returns n."""
    scalars, acts = open_run(path, "scalars"), open_run(path, "activations")
    n = scalars.sizes["step"]
    assert n >= at_least
    np.testing.assert_array_equal(scalars.step.values, np.arange(n))
    np.testing.assert_array_equal(scalars.loss.values, [expected_row(i)["loss"] for i in range(n)])
    m = acts.sizes["step"]
    assert m >= at_least and abs(m - n) <= 1
    np.testing.assert_array_equal(acts.psd.values, [expected_row(i)["psd"] for i in range(m)])
    assert list(acts.layer.values) == LAYERS and acts.sizes["freq"] == FREQS
    return n


# --------------------------------------------------------------------------- round trips
def _fit_run(path: Path, epochs: int = 12) -> tuple:
    target = load_target("synthetic:broadband", n=512)
    model = build_model("siren2", width=16, depth=2, s0=5.0, s1=0.5, seed=0)
    probe = Probe(every=5, bins=16)
    with TrajectoryWriter(path, config={"model": "siren2", "epochs": epochs}) as writer:
        probe.writer = writer
        writer.declare("ntk", coords={"mode": np.arange(4), "k": np.linspace(-np.pi, np.pi, 8),
                                      "sample": np.arange(2), "sample2": np.arange(2)},
                       variables={"eigenvalues": ("mode",), "s_k": ("k",),
                                  "kernel": Var(("sample", "sample2"), "f8", trajectory=False)})
        writer.write_dataset("ntk_static", xr.Dataset(
            {"kernel": (("sample", "sample2"), np.arange(9.0).reshape(3, 3))},
            coords={"sample": [0, 1, 2], "sample2": [0, 1, 2]}, attrs={"normalisation": "1/N^2"}))
        result = fit(model, target, epochs=epochs, device="cpu", probes=[probe],
                     callbacks=[TrainingRecorder(writer, every=4)])
        for step in (0, 10):
            writer.append("ntk", step, eigenvalues=np.arange(4.0) + step, s_k=np.full(8, float(step)))
        writer.put("ntk", "kernel", np.eye(2))                       # a static result after start
    return result, probe


def test_round_trip_every_group_through_h5py_and_xarray(tmp_path):
    path = tmp_path / "run.h5"
    result, probe = _fit_run(path)
    with h5py.File(path, "r") as f:                                    # plain h5py, no SWMR flag
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert json.loads(f.attrs["config"]) == {"model": "siren2", "epochs": 12}
        np.testing.assert_array_equal(f["scalars/loss"][:], result.history["loss"])
        assert f["scalars/loss"].maxshape == (None,) and f["scalars/loss"].chunks is not None
        assert f["activations/psd"].dims[0][0].name == "/activations/step"
        np.testing.assert_array_equal(f["ntk/step"][:], [0, 10])
    for group in ("scalars", "activations", "ntk", "ntk_static"):
        raw = xr.open_dataset(path, engine="h5netcdf", group=group)
        mine = open_run(path, group)
        xr.testing.assert_identical(raw.drop_vars("n_committed").load(), mine)
        raw.close()
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert set(tree.children) == {"scalars", "activations", "ntk", "ntk_static"}
    tree.close()
    run = open_run(path)
    assert run.attrs["schema"] == "spectral-probe-trajectory" and int(run["run_status"]) == 1
    acts = run["activations"].to_dataset()
    assert acts["psd"].dims == ("step", "layer", "kind", "freq")
    np.testing.assert_array_equal(acts.step, [0, 5, 10])
    xr.testing.assert_allclose(acts.drop_vars(["hist_edges"]).astype("f8"),
                               probe.to_dataset().drop_vars(["hist_edges"]).astype("f8"), rtol=1e-6)
    scalars = run["scalars"].to_dataset()
    np.testing.assert_allclose(scalars.psnr, result.history["psnr"])
    np.testing.assert_allclose(scalars.lr, result.history["lr"])
    assert int(scalars.best_epoch) == result.best_epoch and float(scalars.final_psnr) == pytest.approx(result.final_psnr)
    assert run["ntk_static"].attrs["normalisation"] == "1/N^2"
    np.testing.assert_array_equal(run["ntk"]["eigenvalues"].values, [np.arange(4.0), np.arange(4.0) + 10])
    np.testing.assert_array_equal(run["ntk"]["kernel"].values, np.eye(2))
    assert run["ntk"]["kernel"].dims == ("sample", "sample2")
    assert read_config(path)["epochs"] == 12


def test_chunks_rewritten_in_place_never_cross_a_page(tmp_path):
    """A SIGKILL stops a write only between pages: a chunk holding committed rows must lie in one page.

    With 64 KiB chunks a kill once tore ``bottleneck/ntk_band_share`` (CI, 2026-12-05).  Every
    chunk that holds more than one row (rewritten at each commit) must fit one aligned page.
    """
    from spectral_probe.store.schema import PAGE_BYTES

    path = tmp_path / "run.h5"
    _fit_run(path, epochs=40)
    shared, single = [], 0
    with h5py.File(path, "r") as f:
        def look(name, obj):
            nonlocal single
            if not isinstance(obj, h5py.Dataset) or obj.chunks is None or obj.maxshape[0] is not None:
                return
            if obj.chunks[0] == 1:
                single += 1                 # one row per chunk: written once, never rewritten
                return
            for k in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(k)
                shared.append((name, info.byte_offset // PAGE_BYTES, (info.byte_offset + info.size - 1) // PAGE_BYTES))
        f.visititems(look)
    assert len(shared) >= 10 and single >= 1
    crossing = [name for name, first, last in shared if first != last]
    assert crossing == [], crossing


def test_existing_file_is_refused_replaced_or_resumed(tmp_path):
    path = tmp_path / "run.h5"
    with TrajectoryWriter(path, config={"a": 1}) as w:
        w.declare("scalars", variables={"loss": Var((), "f8")})
        w.append("scalars", [0, 1], loss=[1.0, 2.0])
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        TrajectoryWriter(path, config={"a": 1})
    with pytest.raises(ValueError, match="configuration differs in a;"):
        TrajectoryWriter(path, config={"a": 2}, resume=True)
    with TrajectoryWriter(path, config={"a": 1}, resume=True) as w:
        w.declare("scalars", variables={"loss": Var((), "f8")})         # same layout: accepted
        with pytest.raises(ValueError, match="do not increase strictly after the last written step 1"):
            w.append("scalars", 1, loss=3.0)
        w.append("scalars", 2, loss=3.0)
    np.testing.assert_array_equal(open_run(path, "scalars").loss, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="already holds a different layout"):
        with TrajectoryWriter(path, resume=True) as w:
            w.declare("scalars", variables={"loss": Var(("x",), "f8")}, coords={"x": [0, 1]})
    # a failed overwrite leaves the old file; a finished one replaces it
    with pytest.raises(KeyError):
        with TrajectoryWriter(path, config={"b": 1}, overwrite=True) as w:
            w.declare("other", variables={"v": Var((), "f8")})
            raise KeyError("user code failed before writing")
    assert read_config(path) == {"a": 1} and not list(tmp_path.glob(".*tmp"))
    with TrajectoryWriter(path, config={"b": 1}, overwrite=True) as w:
        w.declare("other", variables={"v": Var((), "f8")})
        w.append("other", 0, v=1.0)
    assert read_config(path) == {"b": 1}


def test_bad_appends_and_declarations(tmp_path):
    with TrajectoryWriter(tmp_path / "run.h5") as w:
        w.declare("g", coords={"x": [0, 1, 2]}, variables={"v": ("x",)})
        with pytest.raises(ValueError, match="need coordinates"):
            w.declare("h", variables={"v": ("y",)})
        with pytest.raises(ValueError, match="invalid group name"):
            w.declare("a/b", variables={"v": ()})
        w.append("g", 0, v=[1, 2, 3])
        with pytest.raises(ValueError, match=r"g/v expects shape \(1, 3\)"):
            w.append("g", 1, v=[1, 2])
        with pytest.raises(ValueError, match="unknown trajectory variable 'w'"):
            w.append("g", 1, w=1.0)
        with pytest.raises(ValueError, match="group 'nope' was not declared; declared groups: g"):
            w.append("nope", 1, v=[1, 2, 3])
        with pytest.raises(RuntimeError, match="before the writer starts"):
            w.declare("late", variables={"v": ()})


def test_read_only_location_gives_a_clear_error_and_keeps_data(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    with TrajectoryWriter(path, config={"a": 1}) as w:
        w.declare("scalars", variables={"loss": Var((), "f8")})
        w.append("scalars", 0, loss=1.0)
    real_file = h5py.File

    def denied(name, mode="r", *args, **kwargs):
        if mode != "r":
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", denied)
    for kwargs in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(OSError, match="permission denied .*choose a writable path"):
            TrajectoryWriter(path, config={"a": 1}, **kwargs)
    with pytest.raises(OSError, match=f"cannot create run file '{tmp_path / 'new.h5'}'"):
        TrajectoryWriter(tmp_path / "new.h5")
    monkeypatch.undo()
    np.testing.assert_array_equal(open_run(path, "scalars").loss, [1.0])


@pytest.mark.skipif(os.geteuid() == 0, reason="chmod does not stop root")
def test_read_only_directory_with_chmod(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OSError, match="permission denied"):
            TrajectoryWriter(ro / "run.h5")
    finally:
        ro.chmod(0o700)


def test_full_disk_error_keeps_committed_rows(tmp_path):
    path = tmp_path / "run.h5"
    proc = _spawn("full", path, 400_000)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    error = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert error and "file-size limit" in error[0] and "keeps the rows committed before: scalars" in error[0]
    assert out.rstrip().endswith("closed")
    n = _assert_prefix(path, _committed_lines(out.replace(error[0], "")))
    with h5py.File(path, "r") as f:              # closed cleanly: plain readers open it
        assert f["scalars/loss"].shape == (n,) and int(f["run_status"][()]) == 1


def test_write_error_inside_hdf5_reports_errno_and_keeps_data(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    w = TrajectoryWriter(path)
    w.declare("scalars", variables={"loss": Var((), "f8")})
    w.append("scalars", 0, loss=1.0)

    def failing_flush(self):
        raise RuntimeError("Can't flush cache (file write failed: errno = 28, error message = 'No space left')")

    monkeypatch.setattr(h5py.File, "flush", failing_flush)
    with pytest.raises(OSError, match="disk is full.*keeps the rows committed before: scalars 1") as info:
        w.append("scalars", 1, loss=2.0)
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(ValueError, match="failed state"):
        w.append("scalars", 2, loss=3.0)
    monkeypatch.undo()
    w.close()
    np.testing.assert_array_equal(open_run(path, "scalars").loss, [1.0])


def test_space_check_refuses_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    path = tmp_path / "run.h5"
    w = TrajectoryWriter(path)
    w.declare("scalars", variables={"loss": Var((), "f8")})
    w.append("scalars", 0, loss=1.0)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    with pytest.raises(OSError, match="only 1000 bytes are free"):
        w.append("scalars", 1, loss=2.0)
    monkeypatch.undo()
    w.append("scalars", 1, loss=2.0)                 # space is back: the writer goes on
    w.close()
    np.testing.assert_array_equal(open_run(path, "scalars").loss, [1.0, 2.0])


# --------------------------------------------------------------------------- live and crashed writers
def test_live_reader_sees_growing_steps(tmp_path):
    """The writer waits for the reader after each step: the reader sees exactly the committed steps."""
    path = tmp_path / "run.h5"
    proc = _spawn("sync", path, 6)
    try:
        _wait_started(proc)
        for i in range(6):
            assert proc.stdout.readline().strip() == str(i), proc.stderr.read()
            assert _assert_prefix(path, i + 1) == i + 1                 # both groups: exactly steps 0..i
            assert open_run(path, "activations").sizes["step"] == i + 1
            with h5py.File(path, "r", swmr=True) as f:
                assert f["scalars/n_committed"][()] == i + 1
            with xr.open_dataset(path, engine="h5netcdf", group="scalars", **SWMR) as ds:
                assert ds.sizes["step"] == i + 1
            proc.stdin.write("next\n")
            proc.stdin.flush()
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("window", [0, 1], ids=["closed-unsealed", "reopened-to-seal"])
def test_reader_during_the_writers_close_waits_for_the_seal(tmp_path, window):
    """While the writer closes (SWMR over, digests not yet written), a reader is not told 'damaged'.

    CI once failed `export --follow` on a finished run: its SWMR open met the file reopened
    without SWMR for the digests.  The reader looks again while the writer lives.
    """
    import threading

    from spectral_probe.store.filelock import writer_alive

    path = tmp_path / "run.h5"
    proc = _spawn("seal", path, 5, window)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "window", proc.stderr.read()
        assert writer_alive(path)
        release = threading.Timer(0.5, lambda: (proc.stdin.write("go\n"), proc.stdin.flush()))
        release.start()
        try:
            ds = open_run(path, "activations")
        finally:
            release.join()
        assert ds.sizes["step"] == 5
        np.testing.assert_array_equal(ds.psd.values[4], expected_row(4)["psd"])
        assert proc.wait(timeout=60) == 0
        assert not writer_alive(path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _kill_at_random(tmp_path: Path, rounds: int, mode: str = "steps") -> list[int]:
    """Kill a writer after a random number of committed steps (plus a random pause); returns rows kept."""
    rng = random.Random(0)
    counts = []
    for r in range(rounds):
        path = tmp_path / f"killed{r}.h5"
        proc = _spawn(mode, path)
        _wait_started(proc)
        reported = -1
        for _ in range(rng.randint(1, 12)):         # wait for that many committed steps
            reported = int(proc.stdout.readline())
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        committed = max(reported + 1, _committed_lines(out))
        if mode == "steps":
            counts.append(_assert_prefix(path, committed))
        else:
            counts.append(open_run(path, "scalars").sizes["step"])
            assert counts[-1] >= committed >= 1
        with h5py.File(path, "r", swmr=True) as f:
            assert f.attrs["schema"] == "spectral-probe-trajectory"
        with xr.open_dataset(path, engine="h5netcdf", group="scalars", **SWMR) as ds:
            assert ds.sizes["step"] >= int(ds["n_committed"])
    return counts


def test_sigkill_leaves_a_readable_consistent_prefix(tmp_path):
    counts = _kill_at_random(tmp_path, 4)
    assert max(counts) > 0
    # a killed file is repaired for non-SWMR tools, with the same rows
    path = tmp_path / "killed0.h5"
    assert needs_recovery(path)
    n = open_run(path, "scalars").sizes["step"]
    assert recover(path) and not needs_recovery(path)
    with h5py.File(path, "r") as f:
        assert f["scalars/loss"].shape == (n,)
    with xr.open_dataset(path, engine="h5netcdf", group="activations") as ds:
        np.testing.assert_array_equal(ds.psd.values[:n], [expected_row(i)["psd"] for i in range(ds.sizes["step"])])
    # and resumed
    m = open_run(path, "activations").sizes["step"]
    with TrajectoryWriter(path, resume=True) as w:
        w.append("scalars", n, loss=expected_row(n)["loss"])
        w.append("activations", m, psd=expected_row(m)["psd"])
    assert _assert_prefix(path, m + 1) == n + 1


def test_sigkill_during_fit_leaves_a_readable_file(tmp_path):
    count, = _kill_at_random(tmp_path, 1, mode="fit")
    run = open_run(tmp_path / "killed0.h5")
    steps = run["scalars"].to_dataset().step.values
    np.testing.assert_array_equal(steps, np.arange(count))           # every epoch reported before the kill
    assert run["activations"].to_dataset().sizes["step"] >= count


@pytest.mark.slow
def test_sigkill_many_times(tmp_path):
    counts = _kill_at_random(tmp_path, 20)
    assert len(set(counts)) > 5


# --------------------------------------------------------------------------- watch
def test_watch_prints_the_trajectory_and_plots(tmp_path):
    path = tmp_path / "run.h5"
    _fit_run(path, epochs=6)
    png = tmp_path / "run.png"
    out = CliRunner().invoke(cli, ["watch", "--run", str(path), "--once", "--plot", str(png)])
    assert out.exit_code == 0, out.output
    assert "step 5  loss" in out.output and "probe step 5: std" in out.output and "run closed" in out.output
    assert png.stat().st_size > 1000
    missing = CliRunner().invoke(cli, ["watch", "--run", str(tmp_path / "nope.h5"), "--once"])
    assert missing.exit_code == 2 and "error: " in missing.output and "no run file" in missing.output
