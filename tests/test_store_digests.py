"""Schema 3: every value a reader trusts is sealed by a digest; structure walks cannot hang; foreign files named;
``--resume`` verifies the checkpoints it keeps."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main as cli
from spectral_probe.store import DamagedFileError, TrajectoryWriter, Var, open_run, read_config, recover
from spectral_probe.store import guard
from spectral_probe.store.digests import SEAL_ATTR, object_digests, read_seal

SMALL_RUN = ("train --model siren2 --target synthetic:broadband --num-samples 256 --width 64 --depth 2 --epochs 60 "
             "--checkpoint-every 20 --no-progress").split()


def _write(path: Path, **config) -> Path:
    with TrajectoryWriter(path, config={"model": "siren", "s0": 23.46, **config}) as w:
        w.declare("scalars", variables={"loss": Var((), "f8"), "best_psnr": Var((), "f8", trajectory=False),
                                        "label": Var((), "str", trajectory=False)})
        w.put("scalars", "best_psnr", 15.7)
        w.put("scalars", "label", "first run")
        for i in range(10):
            w.append("scalars", i, loss=1.0 / (i + 1))
    return path


def _flip_value(path: Path, name: str, byte: int, bit: int) -> None:
    with h5py.File(path, "r") as h5:
        offset = h5[name].id.get_offset()
    raw = bytearray(path.read_bytes())
    raw[offset + byte] ^= 1 << bit
    path.write_bytes(bytes(raw))


def _zero_chunk(path: Path, name: str, index: int) -> None:
    """Zero one chunk together with its Fletcher32 checksum, as one lost page would."""
    with h5py.File(path, "r") as h5:
        info = h5[name].id.get_chunk_info(index)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        f.write(bytes(info.size))


def test_a_chunk_zeroed_with_its_checksum_is_refused(tmp_path):
    """Fletcher32 of zeros is zero: a small chunk zeroed whole (the catalogue's zeroed 4 kB blocks, with chunks of
    at most one page) passed HDF5's check and read as zeros; the seal's digest covers the values."""
    path = _write(tmp_path / "run.h5")
    with h5py.File(path, "r") as h5:
        assert h5["scalars/loss"].fletcher32 and h5["scalars/loss"].id.get_chunk_info(0).size <= 4096
    _zero_chunk(path, "scalars/loss", 0)
    with h5py.File(path, "r") as h5:                        # HDF5 alone reads the zeros as valid
        np.testing.assert_array_equal(h5["scalars/loss"][()], np.zeros(10))
    with pytest.raises(DamagedFileError, match="'scalars/loss' fails its digest"):
        open_run(path)


def test_seals_written_before_the_value_rule_verify_by_their_own_rule(tmp_path):
    from spectral_probe.store import digests

    path = _write(tmp_path / "run.h5")
    with h5py.File(path, "r+") as h5:                       # a seal as written before: chunked values left out
        del h5.attrs[SEAL_ATTR]
        h5.attrs.create(SEAL_ATTR, np.frombuffer(digests._encode(object_digests(h5, None), None), dtype=np.uint8))
    guard.forget(path)
    np.testing.assert_allclose(open_run(path, "scalars").loss, 1.0 / np.arange(1, 11))


def test_seal_covers_every_object_and_checks_itself(tmp_path):
    path = _write(tmp_path / "run.h5")
    with h5py.File(path, "r") as h5:
        assert int(h5.attrs["schema_version"]) == 3
        seal = read_seal(h5)
        assert seal == object_digests(h5)
        assert {"/", "run_status", "scalars", "scalars/best_psnr", "scalars/n_committed", "scalars/step",
                "scalars/label"} <= set(seal)
    raw = bytearray(path.read_bytes())
    at = raw.find(b'"scalars/best_psnr":"') + 25            # a hex digit of the stored digest
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))                             # the seal sits in a checksummed object header
    with pytest.raises(DamagedFileError, match="its root attributes cannot be read .*incorrect metadata checksum"):
        open_run(path)
    path = _write(tmp_path / "other.h5")
    with h5py.File(path, "r+") as h5:                       # the same seal with one digit changed
        seal = bytearray(np.asarray(h5.attrs[SEAL_ATTR]).tobytes())
        at = seal.find(b'"scalars/best_psnr":"') + 25
        seal[at] ^= 0x01
        h5.attrs[SEAL_ATTR] = np.frombuffer(bytes(seal), dtype=np.uint8)
    with pytest.raises(DamagedFileError, match="its digests .* fail their own check"):
        open_run(path)


@pytest.mark.parametrize("name, byte, bit, value", [("scalars/best_psnr", 7, 6, None),   # 15.7 dB -> 1e21 dB
                                                    ("scalars/n_committed", 0, 2, None),  # 10 rows -> 14
                                                    ("run_status", 0, 1, None)])          # closed -> 3
def test_flipped_bit_in_a_0d_value_is_named(tmp_path, name, byte, bit, value):
    path = _write(tmp_path / "run.h5")
    _flip_value(path, name, byte, bit)
    with pytest.raises(DamagedFileError, match=f"'{name}' fails its digest"):
        open_run(path)
    line = [x for x in CliRunner().invoke(cli, ["watch", "--run", str(path), "--once"]).output.splitlines() if x]
    assert len(line) == 1 and f"'{name}' fails its digest" in line[0]


def test_edited_config_is_refused(tmp_path):
    path = _write(tmp_path / "run.h5")
    raw = path.read_bytes()
    assert raw.count(b'"s0": 23.46') == 1
    path.write_bytes(raw.replace(b'"s0": 23.46', b'"s0": 93.46'))
    with pytest.raises(DamagedFileError, match=r"the root attributes \(configuration, schema\) fail their digest"):
        read_config(path)


def test_older_schema_is_read_then_sealed_by_recover(tmp_path):
    path = _write(tmp_path / "run.h5")
    with h5py.File(path, "r+") as h5:           # what a schema-2 writer left: no digests
        del h5.attrs[SEAL_ATTR]
        h5.attrs["schema_version"] = np.int32(2)
    before = open_run(path)
    assert float(before["scalars"]["best_psnr"]) == 15.7
    assert recover(path) and not recover(path)
    with h5py.File(path, "r") as h5:
        assert int(h5.attrs["schema_version"]) == 3 and read_seal(h5) == object_digests(h5)
    after = open_run(path)
    assert after["scalars"].to_dataset().identical(before["scalars"].to_dataset())
    assert int(after["run_status"]) == 1


def test_closed_schema3_file_without_its_seal_is_refused(tmp_path):
    path = _write(tmp_path / "run.h5")
    with h5py.File(path, "r+") as h5:
        del h5.attrs[SEAL_ATTR]
    with pytest.raises(DamagedFileError, match="marked closed but its digests .* are missing"):
        open_run(path)
    assert recover(path)                        # what the message suggests: the rest checked, then sealed
    assert int(open_run(path)["run_status"]) == 1 and float(open_run(path)["scalars"]["best_psnr"]) == 15.7


def test_resuming_writer_drops_the_seal_and_close_writes_a_new_one(tmp_path):
    path = _write(tmp_path / "run.h5")
    w = TrajectoryWriter(path, resume=True)
    w.append("scalars", 10, loss=0.01)
    w.flush()
    with h5py.File(path, "r", swmr=True) as h5:     # live: no seal while the file changes
        assert SEAL_ATTR not in h5.attrs
    assert open_run(path)["scalars"].sizes["step"] == 11
    w.close()
    with h5py.File(path, "r") as h5:
        assert read_seal(h5) == object_digests(h5)


def test_zeroed_global_heap_is_refused_within_the_limit(tmp_path, monkeypatch):
    """The block whose zeros made h5py loop forever reading the ``config`` attribute."""
    path = _write(tmp_path / "run.h5")
    raw = bytearray(path.read_bytes())
    at = raw.find(b"GCOL")                          # the global heap collection holding the config JSON
    assert 0 < at < raw.find(b'"model": "siren"')
    raw[at + 16:at + 16 + 4096] = bytes(4096)           # its objects, after the collection header
    path.write_bytes(bytes(raw))
    forked = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    t0 = time.monotonic()
    with pytest.raises(DamagedFileError, match="did not finish within 2 s") as info:
        guard.validate(path, timeout=2)
    assert time.monotonic() - t0 < 60              # a hang would be stopped by the limit, not by this bound
    assert "\n" not in str(info.value)
    assert len(forked) == 1
    with pytest.raises(ProcessLookupError):        # the looping child was killed and reaped (no zombie)
        os.kill(forked[0], 0)


def test_ctrl_c_while_waiting_for_the_walk(tmp_path, monkeypatch):
    """SIGINT during the wait raises KeyboardInterrupt at once; the child is killed and reaped."""
    path = _write(tmp_path / "run.h5")
    monkeypatch.setattr(guard, "inspect_file", lambda *args: time.sleep(30))
    guard.forget(path)
    previous = signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
    # Python's own Ctrl-C handler, also where this process started with SIGINT ignored (a background job)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            guard.validate(path, timeout=20)
        assert time.monotonic() - t0 < 15
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGINT, previous_int)
    monkeypatch.undo()
    guard.forget(path)
    guard.validate(path)                          # the real walk again


# --------------------------------------------------------------------------- run files (item 6, 7)
@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "run.h5"
    result = CliRunner().invoke(cli, [*SMALL_RUN, "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _damage_checkpoint(path: Path, row: int) -> None:
    with h5py.File(path, "r") as h5:
        ds = h5["checkpoints/state"]
        offset = next(ds.id.get_chunk_info(i).byte_offset for i in range(ds.id.get_num_chunks())
                      if ds.id.get_chunk_info(i).chunk_offset[0] == row)
    raw = bytearray(path.read_bytes())
    raw[offset + 100] ^= 0x08
    path.write_bytes(bytes(raw))


def test_resume_refuses_a_damaged_checkpoint_it_would_keep(tmp_path, small_run):
    from spectral_probe.training.resume import plan_resume

    path = tmp_path / "run.h5"
    path.write_bytes(small_run.read_bytes())
    _damage_checkpoint(path, 2)                                   # checkpoints at 0, 20, 40, 60: step 40
    with pytest.raises(DamagedFileError, match="checkpoint.s. at step 40 fail their checksum; the newest intact "
                                               "checkpoint before it is at step 20"):
        plan_resume(path)
    result = CliRunner().invoke(cli, [*SMALL_RUN, "--epochs", "80", "--out", str(path), "--resume"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "step 40 fail their checksum" in errors[0]
    point = plan_resume(path, salvage=True)
    assert point.step == 20 and point.checkpoint.step == 20
    assert "resuming from step 20 instead" in point.notes[0]
    assert sorted(point.previous["scalars"]["step"].values) == list(range(20))


def test_run_readers_name_an_ntk_out_file(tmp_path, small_run):
    ntk = tmp_path / "ntk.h5"
    result = CliRunner().invoke(cli, ["ntk", "--model", "siren", "--num-samples", "64", "--out", str(ntk)])
    assert result.exit_code == 0, result.output
    for args in (["watch", "--run", str(ntk), "--once"], ["export", "--run", str(ntk), "--tensorboard", str(tmp_path / "tb")],
                 ["ntk", "--run", str(ntk)], ["probe", "--run", str(ntk)],
                 [*SMALL_RUN, "--out", str(ntk), "--resume"]):
        result = CliRunner().invoke(cli, args)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 2 and len(errors) == 1, (args, result.output)
        assert "is an `ntk --out` file" in errors[0], errors[0]
    assert not (tmp_path / "tb").exists()
    assert open_run(ntk, "ntk").sizes                            # its groups stay readable by name


def test_figure_and_plain_hdf5_files_are_named(tmp_path):
    figure, plain = tmp_path / "figure.h5", tmp_path / "plain.h5"
    with h5py.File(figure, "w") as h5:
        h5.attrs["settings_hash"] = "abc"
        h5["psnr"] = np.zeros(3)
    with h5py.File(plain, "w") as h5:
        h5.create_group("data")
    with pytest.raises(ValueError, match="is not a spectral-probe run file: it is a figure data file"):
        open_run(figure)
    with pytest.raises(ValueError, match=r"without the spectral-probe schema attribute \(groups: data\)"):
        open_run(plain)


def test_probe_out_file_is_named(tmp_path, small_run):
    out = tmp_path / "probe.h5"
    result = CliRunner().invoke(cli, ["probe", "--run", str(small_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["watch", "--run", str(out), "--once"])
    assert result.exit_code == 2 and f"is a `probe --out` file (activation statistics of {small_run} at step 60)" \
        in result.output


def test_walk_runs_in_process_when_fork_fails(tmp_path, monkeypatch):
    path = _write(tmp_path / "run.h5")
    _flip_value(path, "scalars/best_psnr", 7, 6)

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(DamagedFileError, match="'scalars/best_psnr' fails its digest"):
        open_run(path)


def test_train_resume_salvage_continues_from_the_newest_intact_checkpoint(tmp_path, small_run):
    """``train --resume --salvage``: the damaged checkpoint is dropped, the run continues from step 20 and
    ends on the trajectory of an uninterrupted 80-epoch run (the recomputed epochs are bit for bit the same)."""
    path = tmp_path / "run.h5"
    path.write_bytes(small_run.read_bytes())
    _damage_checkpoint(path, 2)
    alone = CliRunner().invoke(cli, [*SMALL_RUN, "--epochs", "80", "--out", str(path), "--salvage"])
    assert alone.exit_code == 2 and alone.output.strip().endswith("add --resume")
    result = CliRunner().invoke(cli, [*SMALL_RUN, "--epochs", "80", "--out", str(path), "--resume", "--salvage"])
    assert result.exit_code == 0, result.output
    assert "resuming from step 20 instead" in result.output
    whole = tmp_path / "whole.h5"
    assert CliRunner().invoke(cli, [*SMALL_RUN, "--epochs", "80", "--out", str(whole)]).exit_code == 0
    salvaged, fresh = (open_run(p)["scalars"].to_dataset() for p in (path, whole))
    np.testing.assert_array_equal(salvaged.step.values, np.arange(80))
    np.testing.assert_array_equal(salvaged.loss.values, fresh.loss.values)


def test_a_sweep_does_not_count_a_damaged_run_as_finished(tmp_path, small_run):
    """sweep's ``is_complete`` opens run files through the store's checks: a flipped bit in a finished run's
    best PSNR makes it unfinished (the sweep reruns it; its resume names the damage) instead of trusted."""
    from spectral_probe.sweep.unit import is_complete

    path = tmp_path / "run.h5"
    path.write_bytes(small_run.read_bytes())
    assert is_complete(path)
    _flip_value(path, "scalars/best_psnr", 7, 6)
    guard.forget()
    assert not is_complete(path) and not is_complete(tmp_path / "missing.h5")
