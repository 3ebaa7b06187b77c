"""A full disk at any moment ends with one ``error:`` line, exit 2, nothing lost, nothing left behind
(issue 22 item 3).

The disk is simulated with a file-size limit (``RLIMIT_FSIZE``) on the child process: Python ignores
SIGXFSZ, so a write past the limit fails with ``EFBIG`` as a full disk fails with ``ENOSPC``.  The slow
test mounts a real 1 MiB tmpfs when it runs as root (the case of issue 22: exit 139 before).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--model", "siren2", "--target", "synthetic:broadband", "--num-samples", "256", "--width", "32",
         "--depth", "2", "--checkpoint-every", "5", "--no-progress"]


def _train(out: Path, limit: int | None, *extra: str) -> subprocess.CompletedProcess:
    def limited():
        import resource

        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "spectral_probe", *TRAIN, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600, preexec_fn=limited, env=env, cwd=out.parent)


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and "Can't decrement" not in out.stderr, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert "the disk is full" in errors[0]
    return errors[0]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("limit, where", [pytest.param(16, "cannot lock run file", marks=pytest.mark.slow),
                                          pytest.param(200_000, "cannot create run file", marks=pytest.mark.slow),
                                          (1_400_000, "cannot append to run file")])
def test_full_disk_while_training_a_new_run(tmp_path, limit, where):
    out = tmp_path / "run.h5"
    line = _one_error_line(_train(out, limit, "--epochs", "40"))
    assert where in line and str(out) in line
    assert _leftovers(tmp_path) == []                    # no lock file, no temporary
    assert out.exists() == (limit > 1_000_000)
    if out.exists():                                     # what was committed reads back and resumes
        from spectral_probe.store import open_run

        scalars = open_run(out)["scalars"].to_dataset()
        assert f"scalars {scalars.sizes['step']}" in line
        done = _train(out, None, "--epochs", "40", "--resume")
        assert done.returncode == 0, done.stderr[-2000:]
        assert open_run(out)["scalars"].to_dataset().sizes["step"] == 40


def test_full_disk_while_resuming_keeps_the_previous_file(tmp_path):
    out = tmp_path / "run.h5"
    first = _train(out, None, "--epochs", "10")
    assert first.returncode == 0, first.stderr[-2000:]
    before = _md5(out)
    limit = out.stat().st_size + 1000       # too small for the working copy and its reserve
    line = _one_error_line(_train(out, limit, "--epochs", "30", "--resume"))
    assert "cannot open for resuming" in line
    assert _md5(out) == before and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_real_full_tmpfs_at_many_fill_levels(tmp_path):
    """Root only: a 4 MiB tmpfs filled to leave 0 B .. 3 MiB free; every run ends cleanly."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        for free_kib in (0, 8, 16, 24, 600, 1500, 2200, 2600, 3000):
            for item in mount.iterdir():
                shutil.rmtree(item) if item.is_dir() else item.unlink()
            folder = mount / "m"
            folder.mkdir()
            avail = shutil.disk_usage(mount).free - free_kib * 1024
            if avail > 0:
                with open(mount / "fill", "wb") as fh:
                    try:
                        fh.write(bytes(avail))
                    except OSError:
                        pass
            result = _train(folder / "run.h5", None, "--epochs", "200")
            assert result.returncode in (0, 2), (free_kib, result.returncode, result.stderr[-2000:])
            if result.returncode == 2:
                _one_error_line(result)
            assert _leftovers(folder) == [], free_kib
    finally:
        subprocess.run(["umount", str(mount)], check=False)
