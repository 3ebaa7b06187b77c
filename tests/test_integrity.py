"""Damaged run files are refused (truncation, corrupted chunks, inconsistent commits), reads never hang,
and one process writes a file at a time (lock naming the holder, stale locks, leftover temporaries)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main as cli
from spectral_probe.store import (DamagedFileError, RunLock, RunLockedError, TrajectoryWriter, Var, lock_holder,
                                  needs_recovery, open_run, recover, verify_run)
from spectral_probe.store.filelock import lock_path
from spectral_probe.store.integrity import clear_write_flags, lookup3, read_superblock

REPO = Path(__file__).resolve().parents[1]
STORE_CHILD = Path(__file__).parent / "_store_child.py"


def _write(path: Path, rows: int = 40, close: bool = True) -> TrajectoryWriter:
    w = TrajectoryWriter(path, config={"rows": rows})
    w.declare("scalars", variables={"loss": Var((), "f8")})
    w.declare("activations", coords={"freq": np.arange(257)}, variables={"psd": ("freq",)})
    w.declare("prediction", coords={"sample": np.arange(4096)},
              variables={"output": Var(("sample",), "f4", trajectory=False)})
    w.put("prediction", "output", np.linspace(-1, 1, 4096, dtype="f4"))
    for i in range(rows):
        w.append("scalars", i, loss=1.0 / (i + 1))
        w.append("activations", i, psd=np.full(257, float(i), dtype="f4"))
    if close:
        w.close()
    return w


def _killed_copy(tmp_path: Path, name: str = "killed.h5") -> Path:
    """A file left by a SIGKILLed writer (SWMR flags still set)."""
    path = tmp_path / name
    proc = subprocess.Popen([sys.executable, str(STORE_CHILD), "sync", str(path), "100"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    for i in range(5):
        assert proc.stdout.readline().strip() == str(i)
        proc.stdin.write("next\n")
        proc.stdin.flush()
    proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return path


@pytest.fixture(scope="module")
def killed_file(tmp_path_factory) -> Path:
    """One file left by a SIGKILLed writer; tests work on copies."""
    return _killed_copy(tmp_path_factory.mktemp("killed"))


def _copy(source: Path, tmp_path: Path, name: str = "killed.h5") -> Path:
    path = tmp_path / name
    shutil.copyfile(source, path)
    return path


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    return lines[0]


# --------------------------------------------------------------------------- superblock
def test_superblock_checksum_and_end_of_file(tmp_path):
    path = tmp_path / "run.h5"
    _write(path)
    sb = read_superblock(path)
    assert sb.version >= 2 and sb.flags == 0 and sb.eof == path.stat().st_size
    raw = path.read_bytes()[:48]
    assert lookup3(raw[:44]) == int.from_bytes(raw[44:48], "little")         # HDF5's own checksum
    assert lookup3(b"") == 0xDEADBEEF and lookup3(b"Four score and seven years ago") == 0x17770551   # lookup3.c


def test_cleared_flags_open_without_swmr(tmp_path, killed_file):
    killed = _copy(killed_file, tmp_path)
    assert read_superblock(killed).flags != 0 and needs_recovery(killed)
    copy = tmp_path / "copy.h5"
    shutil.copyfile(killed, copy)
    assert clear_write_flags(copy)
    with h5py.File(copy, "r") as f:             # HDF5 verifies the superblock checksum we wrote
        n = int(f["scalars/n_committed"][()])
        np.testing.assert_array_equal(f["scalars/loss"][:n], 0.5 * np.arange(n))


# --------------------------------------------------------------------------- truncation
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "killed"])
def test_truncation_at_ten_points_is_refused_everywhere(tmp_path, closed, killed_file):
    source = tmp_path / "source.h5"
    if closed:
        _write(source)
    else:
        source = _copy(killed_file, tmp_path)
    data = source.read_bytes()
    size = len(data)
    points = sorted({0, 20, 47, 1000, 5000, size // 10, size // 3, size // 2, 9 * size // 10, size - 1})
    assert len(points) == 10
    for cut in points:
        path = tmp_path / f"cut{cut}.h5"
        path.write_bytes(data[:cut])
        with pytest.raises(DamagedFileError) as info:
            open_run(path)
        message = str(info.value)
        assert "\n" not in message and f"'{path}' is damaged" in message
        assert ("truncated" in message) or (cut == 0 and "empty" in message) or "superblock" in message
        for action in (recover, verify_run, lambda p: TrajectoryWriter(p, resume=True)):
            with pytest.raises(DamagedFileError):
                action(path)
        assert path.read_bytes() == data[:cut]            # refused, not rewritten
        line = _one_line_error(CliRunner().invoke(cli, ["watch", "--run", str(path), "--once"]))
        assert "is damaged" in line
    assert not list(tmp_path.glob(".*.tmp"))


def test_watch_on_a_5kb_cut_returns_at_once(tmp_path, killed_file):
    """The 5 kB cut that hung ``watch --once`` (SWMR readers retried zeroed metadata for hours).

    A separate process with a time limit, so that a regression fails instead of hanging the suite.
    """
    path = tmp_path / "cut.h5"
    path.write_bytes(killed_file.read_bytes()[:5000])
    out = subprocess.run([sys.executable, "-m", "spectral_probe", "watch", "--run", str(path), "--once"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert f"truncated (5,000 bytes on disk; its HDF5 superblock says {killed_file.stat().st_size:,})" in out.stderr
    whole = CliRunner().invoke(cli, ["watch", "--run", str(_copy(killed_file, tmp_path)), "--once"])
    assert whole.exit_code == 0 and "the writer is gone" in whole.output


def test_corrupted_metadata_of_a_killed_file_fails_fast(tmp_path, killed_file):
    """One flipped byte in an object header: the SWMR reader must not retry for minutes."""
    path = _copy(killed_file, tmp_path)
    sb = read_superblock(path)
    raw = bytearray(path.read_bytes())
    root = int.from_bytes(raw[12 + 3 * sb.offset_size:12 + 4 * sb.offset_size], "little")
    raw[root + 12] ^= 0xFF
    path.write_bytes(bytes(raw))
    script = ("import sys\nfrom spectral_probe.store import open_run\n"
              "try:\n    open_run(sys.argv[1])\nexcept OSError as e:\n    print('refused', e)\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.startswith("refused") and "is damaged" in out.stdout, out.stderr


# --------------------------------------------------------------------------- corruption
def _chunk_offset(path: Path, dataset: str) -> int:
    with h5py.File(path, "r") as f:
        return f[dataset].id.get_chunk_info(0).byte_offset


@pytest.mark.parametrize("dataset", ["scalars/loss", "activations/psd", "prediction/output"])
def test_corrupted_chunk_is_refused(tmp_path, dataset):
    path = tmp_path / "run.h5"
    _write(path)
    raw = bytearray(path.read_bytes())
    raw[_chunk_offset(path, dataset) + 5] ^= 0x10
    path.write_bytes(bytes(raw))
    group = dataset.split("/")[0]
    # the structure walk reads every small chunked variable before any read in this process: each reader
    # names the damaged variable, whatever group it asks for
    for read in (open_run, verify_run, recover,
                 lambda p: open_run(p, "scalars" if group != "scalars" else "activations")):
        with pytest.raises(DamagedFileError, match=f"'{dataset}' fails to read"):
            read(path)


def test_commit_count_beyond_the_rows_is_refused(tmp_path):
    path = tmp_path / "run.h5"
    _write(path)
    with h5py.File(path, "r+") as f:
        f["scalars/n_committed"][()] = 99
    with pytest.raises(DamagedFileError, match="'scalars/n_committed' fails its digest"):
        open_run(path)
    with h5py.File(path, "r+") as f:          # a file without digests (a writer stopped by an I/O error)
        del f.attrs["_digests"]
        f["run_status"][()] = 0
    with pytest.raises(DamagedFileError, match="group 'scalars' commits 99 rows but 'loss' holds 40"):
        open_run(path)
    with h5py.File(path, "r+") as f:
        f["scalars/n_committed"][()] = 40
        f["scalars/step"][3] = 1
    with pytest.raises(DamagedFileError, match="committed steps do not increase"):
        open_run(path, "activations")


def test_not_a_run_file(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"just some text\n" * 10)
    with pytest.raises(DamagedFileError, match=r"not an HDF5 file \(it holds 150 bytes"):
        open_run(junk)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="is not a spectral-probe run file"):
        open_run(tmp_path / "other.h5")


def test_recover_rewrites_a_killed_file_with_its_rows(tmp_path, killed_file):
    path = _copy(killed_file, tmp_path)
    n = open_run(path, "scalars").sizes["step"]
    assert n >= 6 and recover(path) and not needs_recovery(path) and not recover(path)
    with h5py.File(path, "r") as f:
        assert f["scalars/loss"].shape == (n,) and int(f["run_status"][()]) == 3     # interrupted


# --------------------------------------------------------------------------- one writer per file
def _hold(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(STORE_CHILD), "hold", str(path)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read()
    return proc


def test_second_writer_is_refused_naming_the_first(tmp_path):
    path = tmp_path / "two.h5"
    _write(path)
    proc = _hold(path)                                  # like a first `train --out two.h5 --overwrite`
    try:
        holder = lock_holder(path)
        assert holder["pid"] == proc.pid and "_store_child.py hold" in holder["command"]
        for kwargs in ({"overwrite": True}, {"resume": True}, {}):
            with pytest.raises(RunLockedError, match=f"is being written by process {proc.pid} "):
                TrajectoryWriter(path, config={"rows": 40}, **kwargs)
        for extra in (["--overwrite"], ["--resume"]):
            line = _one_line_error(CliRunner().invoke(cli, ["train", "--epochs", "2", "--width", "8", "--depth", "1",
                                                            "--no-progress", "--out", str(path), *extra]))
            assert f"is being written by process {proc.pid}" in line
        with pytest.raises(OSError, match=f"being written by process {proc.pid}"):
            recover(path)
        assert open_run(path, "scalars").sizes["step"] == 40          # readers are not blocked
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert lock_holder(path) is None and not lock_path(path).exists()
    with TrajectoryWriter(path, resume=True) as w:      # released: the next writer goes on (the child's file)
        assert w.config == {"mode": "hold"}
        w.append("scalars", 0, loss=0.5)


def test_stale_lock_and_leftover_temporary_are_cleaned(tmp_path):
    path = tmp_path / "k1.h5"
    proc = _hold(path)
    tmp = tmp_path / f".k1.h5.{proc.pid}.tmp"
    assert tmp.exists() and not path.exists()
    proc.send_signal(signal.SIGKILL)                    # killed before its first write
    proc.wait()
    assert tmp.exists() and lock_path(path).exists() and lock_holder(path) is None     # the lock is stale
    lock = RunLock(path)
    try:
        assert lock.stale["pid"] == proc.pid and f"process {proc.pid}" in lock.stale_note()
    finally:
        lock.release()
    with TrajectoryWriter(path, config={}) as w:        # the next writer removes the dead writer's file
        w.declare("scalars", variables={"loss": Var((), "f8")})
        w.append("scalars", 0, loss=1.0)
    assert not tmp.exists() and not list(tmp_path.glob(".k1.h5.*"))


def test_pid_decides_where_flock_is_missing(tmp_path, monkeypatch):
    import spectral_probe.store.filelock as fl

    path = tmp_path / "nfs.h5"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = {"pid": sleeper.pid, "host": __import__("socket").gethostname(), "command": "elsewhere"}
        lock_path(path).write_text(json.dumps(info))
        monkeypatch.setattr(fl, "fcntl", None)
        with pytest.raises(RunLockedError, match=f"process {sleeper.pid} \\(elsewhere\\)"):
            RunLock(path)
    finally:
        sleeper.kill()
        sleeper.wait()
    lock = RunLock(path)                                # its process is gone: stale
    assert lock.stale["pid"] == sleeper.pid
    lock.release()
    assert not os.path.exists(lock_path(path))
