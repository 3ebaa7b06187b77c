"""One tiny run with every producer (scalars, probe, NTK snapshots, bottleneck watch, checkpoints),
shared by the fault-injection tests and their child process.

Usage as a child: ``python tests/_fault_run.py PATH EPOCHS [resume] [fsize=BYTES]``; prints
``epoch E`` after each epoch's end, ``done`` at the end, and on SIGINT/SIGTERM the
``RunInterrupted`` line (exit code 130/143).  ``fsize`` sets RLIMIT_FSIZE (a full disk).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the checkout, not an installed copy

EPOCHS = 40
CHECKPOINT_EVERY = 8
RECORD_EVERY = 50               # scalars buffered longer than the probes: the commit hook must flush them


def spec(epochs: int = EPOCHS, batch_size: int | None = None):
    from spectral_probe.training.presets import make_run

    train = {"device": "cpu", "progress": False, "lr": 1e-3}
    if batch_size:
        train["batch_size"] = batch_size
    return make_run("siren", "synthetic:broadband", "quick", width=8, depth=2, num_samples=128, epochs=epochs,
                    train_overrides=train)


def probes():
    from spectral_probe.bottleneck import BottleneckWatch
    from spectral_probe.ntk import NTKSnapshot
    from spectral_probe.probes import Probe

    ntk = NTKSnapshot(every=8, stride=8)
    return [Probe(every=4, bins=8), ntk, BottleneckWatch(every=4, ntk=ntk, warn=False)]


def run(path, epochs: int = EPOCHS, *, resume: bool = False, overwrite: bool = False, callbacks=(),
        batch_size: int | None = None, handle_signals: bool = True):
    from spectral_probe.training.runs import train_to_file

    s, target = spec(epochs, batch_size)
    return train_to_file(s, target, path, resume=resume, overwrite=overwrite, probes=probes(), callbacks=callbacks,
                         record_every=RECORD_EVERY, checkpoint_every=CHECKPOINT_EVERY, handle_signals=handle_signals)


#: variables that measure time, not the trajectory
_TIMING = {"wall_time", "seconds"}


def assert_same_run(a, b, *, watch_from: int = 0) -> None:
    """Two run files hold the same trajectory: every group, variable and value (NaN-aware), timings aside.

    ``watch_from``: compare the watch's ``state``/``onset`` only from this step (an extended run
    recorded its earlier checks with the shorter run's horizon).
    """
    from spectral_probe import open_run
    from spectral_probe.training.checkpoint import read_checkpoint

    ta, tb = open_run(a), open_run(b)
    assert set(ta.children) == set(tb.children)
    for name in ta.children:
        da, db = ta[name].to_dataset(), tb[name].to_dataset()
        if name == "checkpoints":           # an interrupt adds a checkpoint; the common ones must agree
            common = np.intersect1d(da.step.values, db.step.values)
            assert common.size and common[-1] == da.step.values[-1] == db.step.values[-1]
            continue
        assert set(da.data_vars) == set(db.data_vars), name
        if "step" in da.dims:
            np.testing.assert_array_equal(da.step.values, db.step.values, err_msg=name)
        for var in da.data_vars:
            if var in _TIMING:
                continue
            x, y = da[var].values, db[var].values
            if name == "bottleneck" and var in ("state", "onset") and watch_from:
                keep = da.step.values >= watch_from
                x, y = x[keep], y[keep]
            assert x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{name}/{var}"
    last_a, last_b = read_checkpoint(a), read_checkpoint(b)
    for key, value in last_a.arrays.items():
        if key.startswith("rng/") and key != "rng/loader":
            continue                # the global generators are the process's (the fit does not draw from them)
        np.testing.assert_array_equal(value, last_b.arrays[key], err_msg=key)


def _main() -> None:
    import resource
    import signal

    import torch

    from spectral_probe.training.interrupts import RunInterrupted
    from spectral_probe.training import Callback

    torch.set_num_threads(1)
    path, epochs = sys.argv[1], int(sys.argv[2])
    flags = sys.argv[3:]
    for flag in flags:
        if flag.startswith("fsize="):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limit = int(flag.split("=")[1])
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    class Report(Callback):
        def on_fit_start(self, state):
            print(f"start {state.start_epoch}", flush=True)

        def on_epoch_end(self, state):
            print(f"epoch {state.epoch}", flush=True)

    try:
        run(path, epochs, resume="resume" in flags, overwrite="overwrite" in flags, callbacks=[Report()])
    except RunInterrupted as exc:
        print(f"INTERRUPTED {exc}", flush=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        print(f"ERROR {exc}", flush=True)
        sys.exit(3)
    print("done", flush=True)


if __name__ == "__main__":
    _main()
