"""One writer per *file*: the run lock follows symlinks and hard links (issue 22 item 4)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spectral_probe.store import RunLock, RunLockedError, TrajectoryWriter, Var, open_run, writer_alive
from spectral_probe.store.filelock import inode_lock_path, lock_path

ROOT = Path(__file__).resolve().parents[1]

_HOLD = """
import sys
sys.path.insert(0, {root!r})
from spectral_probe.store import RunLock
lock = RunLock(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
lock.release()
"""


def _write(path, rows=3, **kw):
    with TrajectoryWriter(path, config={"k": 1}, **kw) as w:
        w.declare("scalars", variables={"loss": Var((), "f8")})
        start = w.rows("scalars") if kw.get("resume") else 0
        for i in range(start, start + rows):
            w.append("scalars", step=i, loss=float(i))


@pytest.fixture
def holder():
    """Start a child process holding the lock of a path; yields a function(path) -> Popen."""
    procs = []

    def hold(path):
        proc = subprocess.Popen([sys.executable, "-c", _HOLD.format(root=str(ROOT)), str(path)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_symlink_reaches_the_lock_of_its_real_file(tmp_path, holder):
    real = tmp_path / "same.h5"
    _write(real)
    link = tmp_path / "link.h5"
    link.symlink_to("same.h5")
    assert lock_path(link) == lock_path(real) == tmp_path / ".same.h5.lock"
    holder(real)
    assert writer_alive(link)
    with pytest.raises(RunLockedError) as info:
        TrajectoryWriter(link, config={"k": 1}, resume=True)
    assert info.value.errno == errno.EBUSY
    assert "link to" in str(info.value) and str(real) in str(info.value)
    assert link.is_symlink()                    # the refused writer changed nothing
    assert open_run(real)["scalars"]["loss"].values.tolist() == [0.0, 1.0, 2.0]


def test_a_hard_link_in_another_folder_is_the_same_file(tmp_path, holder):
    real = tmp_path / "a" / "run.h5"
    real.parent.mkdir()
    _write(real)
    other = tmp_path / "b"
    other.mkdir()
    hard = other / "hard.h5"
    os.link(real, hard)
    assert inode_lock_path(hard) == inode_lock_path(real)
    holder(real)
    assert writer_alive(hard)
    with pytest.raises(RunLockedError) as info:
        RunLock(hard)
    assert "same file as" in str(info.value) and "hard link" in str(info.value)
    assert not (other / ".hard.h5.lock").exists()      # the refused lock left nothing behind


def test_a_hard_link_made_after_the_file_is_published_is_refused(tmp_path):
    path = tmp_path / "run.h5"
    with TrajectoryWriter(path, config={"k": 1}) as w:
        w.declare("scalars", variables={"loss": Var((), "f8")})
        w.append("scalars", step=0, loss=1.0)         # publishes: a new inode, locked by track()
        hard = tmp_path / "hard.h5"
        os.link(path, hard)
        with pytest.raises(RunLockedError):
            RunLock(hard)
    assert not writer_alive(hard)
    RunLock(hard).release()                           # free once the writer has closed
    assert not inode_lock_path(path).exists() and not lock_path(path).exists()


def test_writing_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "data" / "same.h5"
    real.parent.mkdir()
    link = tmp_path / "link.h5"
    link.symlink_to(real)                              # dangling: the writer creates the real file
    _write(link)
    assert link.is_symlink() and real.is_file()
    _write(link, rows=2, resume=True)
    assert link.is_symlink()
    assert open_run(real)["scalars"]["loss"].values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    _write(link, rows=1, overwrite=True)
    assert link.is_symlink()
    np.testing.assert_array_equal(open_run(link)["scalars"]["loss"].values, [0.0])
    assert sorted(p.name for p in real.parent.iterdir()) == ["same.h5"]   # no lock or temporary left


_FULL = """
import resource, sys
sys.path.insert(0, {root!r})
from spectral_probe.store import RunLock
resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.RLIM_INFINITY))
try:
    RunLock(sys.argv[1])
except OSError as exc:
    print("ERROR", exc.errno, exc)
"""


def test_a_lock_that_cannot_be_written_leaves_no_lock_file(tmp_path):
    path = tmp_path / "run.h5"
    out = subprocess.run([sys.executable, "-c", _FULL.format(root=str(ROOT)), str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    code, message = out.stdout.split(" ", 2)[1:]
    assert int(code) in (errno.EFBIG, errno.ENOSPC) and f"cannot lock run file '{path}'" in message, out.stdout
    assert "the disk is full" in message
    assert list(tmp_path.iterdir()) == []


def test_an_inode_lock_of_another_file_is_not_this_files_lock(tmp_path, holder):
    """Inode numbers are reused after a file is deleted: a lock held on the inode for a file that is now
    another inode does not refuse the new file (the holder's record names its file; identities differ)."""
    import json

    other = tmp_path / "other.h5"
    other.write_bytes(b"x")
    path = tmp_path / "run.h5"
    path.write_bytes(b"y")
    fake = inode_lock_path(path)
    fake.parent.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | "
                             "os.O_CREAT); os.write(fd, sys.argv[2].encode()); fcntl.flock(fd, fcntl.LOCK_EX); "
                             "print('held', flush=True); sys.stdin.read()", str(fake),
                             json.dumps({"pid": 1, "host": "elsewhere", "file": str(other)})],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert not writer_alive(path)
        RunLock(path).release()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        fake.unlink(missing_ok=True)
