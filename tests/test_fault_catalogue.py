"""The fault catalogue of issue 22: damaged copies of a run file, each read by every reader.

Every (case, reader) must end in a one-line refusal or a result identical to the undamaged
file's: never a hang, a traceback or damaged data read as valid.  The readers run in one
child process (``tests/_fault_catalogue.py``) that ``faulthandler`` stops if a reader hangs,
so a regression fails here instead of hanging the suite.

* default suite: a small run, three cases (the zeroed global heap that made h5py loop,
  a flipped bit in the 0-d ``scalars/best_psnr``, one in a checkpoint's bytes);
* ``-m slow``: the issue's fixture, a zeroed 4 kB block at 50 offsets spread over the file,
  a flipped bit at 200 random offsets and the issue's own 12 cases (the zeroed block at
  4096, a bit in each 0-d value it named, in the step data, ``s0`` edited in the config)
  and a 4 kB block of random bytes at 30 offsets, each read by all six readers (README's Reliability section gives the counts).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main as cli

REPO = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).parent / "_fault_catalogue.py"
FIXTURE = ("train --model siren2 --target synthetic:broadband --num-samples 1024 --width 64 --depth 3 --epochs 100 "
           "--checkpoint-every 20 --probe-every 20 --ntk-every 50 --watch --no-progress").split()
SMALL = ("train --model siren2 --target synthetic:broadband --num-samples 256 --width 64 --depth 2 --epochs 40 "
         "--checkpoint-every 20 --probe-every 20 --ntk-every 20 --watch --no-progress").split()
FAILURES = ("wrong", "traceback", "untidy")


def _train(path: Path, args: list[str]) -> Path:
    result = CliRunner().invoke(cli, [*args, "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _catalogue(tmp_path: Path, good: Path, args: list[str], cases: list[dict], timeout: float) -> list[dict]:
    """Run the cases in a child; fail naming the reader that hung (the child's last ``start`` line)."""
    cases_file, train_file = tmp_path / "cases.json", tmp_path / "train.json"
    cases_file.write_text(json.dumps(cases))
    train_file.write_text(json.dumps(args))
    proc = subprocess.run([sys.executable, str(RUNNER), str(good), str(tmp_path / "work"), str(cases_file),
                           str(train_file)], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    results = [r for r in lines if "outcome" in r]
    if proc.returncode != 0:
        started = [r for r in lines if "start" in r]
        last = started[-1] if started else None
        pytest.fail(f"the catalogue stopped (exit {proc.returncode}) at {last}: a reader hung or crashed\n"
                    f"{proc.stderr[-3000:]}")
    done = {(r["case"], r["reader"]) for r in results}
    expected = {(c["id"], name) for c in cases for name in c.get("readers", _READERS)}
    assert done == expected, sorted(expected - done)
    return results


_READERS = ("open_run", "watch", "ntk_run", "probe_run", "export", "resume")


def _chunk_of_checkpoint(path: Path, index: int) -> int:
    with h5py.File(path, "r") as h5:
        ds = h5["checkpoints/state"]
        for i in range(ds.id.get_num_chunks()):
            info = ds.id.get_chunk_info(i)
            if info.chunk_offset[0] == index:
                return info.byte_offset
    raise AssertionError(f"no chunk for checkpoint row {index}")


def _summary(results: list[dict], sets: dict[str, range] | None = None) -> dict:
    """Outcome counts and slowest read per reader; with ``sets`` (name -> case ids), also per set (README's rows)."""
    by = collections.defaultdict(collections.Counter)
    for r in results:
        by[r["reader"]][r["outcome"]] += 1
    slowest = {name: max(r["seconds"] for r in results if r["reader"] == name) for name in by}
    out = {"outcomes": {k: dict(v) for k, v in by.items()}, "slowest_s": slowest}
    for name, ids in (sets or {}).items():
        part = [r for r in results if r["case"] in ids]
        out[name] = {**_summary(part), "cases": len({r["case"] for r in part})}
    return out


def test_small_catalogue(tmp_path):
    good = _train(tmp_path / "good.h5", SMALL)
    data = good.read_bytes()
    heap_at = data.find(b"GCOL") + 16                    # the objects of the global heap (the config JSON)
    assert 16 < heap_at < data.find(b'"model_kwargs"')
    with h5py.File(good, "r") as h5:
        best_at = h5["scalars/best_psnr"].id.get_offset()
        best = float(h5["scalars/best_psnr"][()])
    cases = [
        {"id": 0, "kind": "zero", "offset": heap_at, "bit": 0, "readers": ["watch"]},     # h5py loops there
        {"id": 1, "kind": "flip", "offset": best_at + 7, "bit": 6},     # best_psnr 15.7 -> ~1e21 dB
        {"id": 2, "kind": "flip", "offset": _chunk_of_checkpoint(good, 1) + 200, "bit": 3},   # checkpoint 20
    ]
    assert 0 < best < 60
    results = {(r["case"], r["reader"]): r for r in _catalogue(tmp_path, good, SMALL, cases, timeout=600)}
    assert [r for r in results.values() if r["outcome"] in FAILURES] == []
    assert results[0, "watch"]["outcome"] == "refused"
    assert "reading its HDF5 structure did not finish within" in results[0, "watch"]["detail"]
    assert all(results[1, name]["outcome"] == "refused" and "'scalars/best_psnr' fails its digest"
               in results[1, name]["detail"] for name in _READERS)
    # a damaged older checkpoint: readers of the run and of the last checkpoint are unaffected; --resume,
    # which would keep checkpoint 20, refuses naming it
    assert all(results[2, name]["outcome"] == "identical" for name in ("open_run", "watch", "ntk_run", "probe_run",
                                                                        "export"))
    assert results[2, "resume"]["outcome"] == "refused"
    assert "checkpoint(s) at step 20 fail their checksum" in results[2, "resume"]["detail"]


#: the values the issue found read as valid after one flipped bit (0-d variables, commit counts)
NAMED_VALUES = ("scalars/best_psnr", "scalars/final_psnr", "scalars/zero_psnr", "scalars/best_epoch",
                "scalars/wall_time", "run_status", "prediction/state_step", "scalars/n_committed",
                "checkpoints/n_committed")


def named_cases(good: Path, first_id: int) -> list[dict]:
    """The issue's own cases: the zeroed block at 4096, a bit of each named value, the step data, ``s0`` edited."""
    data = good.read_bytes()
    cases = [{"kind": "zero", "offset": 4096, "bit": 0}]
    with h5py.File(good, "r") as h5:
        for name in NAMED_VALUES:
            ds = h5[name]
            cases.append({"kind": "flip", "offset": int(ds.id.get_offset()) + ds.dtype.itemsize - 1, "bit": 2})
        step = h5["scalars/step"].id.get_chunk_info(0).byte_offset
        cases.append({"kind": "flip", "offset": int(step) + 8 * 99, "bit": 2})         # step 99 -> 95
    s0 = data.find(b'"s0": ')
    assert s0 > 0
    cases.append({"kind": "xor", "offset": s0 + 6, "bit": data[s0 + 6] ^ ord("9")})   # "s0": 23.4.. -> 93.4..
    return [{"id": first_id + i, **case} for i, case in enumerate(cases)]


@pytest.mark.slow
def test_full_catalogue(tmp_path):
    good = _train(tmp_path / "good.h5", FIXTURE)
    size = good.stat().st_size
    rng = np.random.default_rng(22)
    zeros = np.linspace(0, size - 4096, 50).astype(int)
    flips = rng.integers(0, size, 200)
    bits = rng.integers(0, 8, 200)
    cases = [{"id": i, "kind": "zero", "offset": int(o), "bit": 0} for i, o in enumerate(zeros)]
    cases += [{"id": 50 + i, "kind": "flip", "offset": int(o), "bit": int(b)} for i, (o, b) in enumerate(zip(flips, bits))]
    cases += named_cases(good, 250)
    randoms = np.linspace(1000, size - 4096, 30).astype(int)
    cases += [{"id": 300 + i, "kind": "random", "offset": int(o), "bit": 0} for i, o in enumerate(randoms)]
    results = _catalogue(tmp_path, good, FIXTURE, cases, timeout=7200)
    summary = _summary(results, {"zeroed blocks": range(50), "flipped bits": range(50, 250),
                                 "named cases": range(250, 262), "random blocks": range(300, 330)})
    print(json.dumps({"file_bytes": size, **summary}, indent=1))
    bad = [r for r in results if r["outcome"] in FAILURES]
    assert bad == [], bad[:5]
