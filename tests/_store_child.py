"""Child process for the store tests: writes a run file and reports committed steps on stdout.

Usage: ``python tests/_store_child.py MODE PATH [N] [DELAY]``.  Modes:

* ``steps``: deterministic rows (``expected_row``) as fast as possible (or with
  DELAY seconds between steps); prints ``i`` after step ``i`` is committed.
* ``sync``: like ``steps``, but after printing ``i`` waits for a line on stdin
  before writing step ``i + 1`` (the parent reads the file in between).
* ``fit``: a tiny SIREN fit with a probe and a training recorder, one row per
  epoch; prints ``e`` once epoch ``e``'s scalars are committed.
* ``full``: like ``steps`` under a file-size limit (RLIMIT_FSIZE) that makes
  writes fail as on a full disk; prints ``ERROR <message>`` and exits 0.
* ``seal``: writes N steps, then closes and stops inside the close, holding the lock,
  where DELAY picks the window: ``0`` after SWMR ended, before the digests (the file is
  closed, unsealed); ``1`` with the file reopened without SWMR to seal it.  Prints
  ``window`` there and goes on once a line arrives on stdin.
* ``hold``: starts overwriting PATH (declaring, not started: it holds the lock) and prints
  ``holding``, then waits until stdin closes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the checkout, not an installed copy

LAYERS = ["a", "b", "c"]
FREQS = 513


def expected_row(i: int) -> dict[str, np.ndarray]:
    """The values written at step ``i`` (the tests recompute them)."""
    psd = (i + 0.001 * np.arange(FREQS)[None, :] + np.arange(len(LAYERS))[:, None]).astype("f4")
    return {"loss": np.float64(0.5 * i), "psd": psd}


def _declare(writer) -> None:
    from spectral_probe.store import Var

    writer.declare("scalars", variables={"loss": Var((), "f8")})
    writer.declare("activations", coords={"layer": LAYERS, "freq": np.arange(FREQS) / (2.0 * FREQS)},
                   variables={"psd": ("layer", "freq")})


def run_steps(path: str, n: int, delay: float, sync: bool = False) -> None:
    from spectral_probe.store import TrajectoryWriter

    with TrajectoryWriter(path, config={"mode": "steps"}) as writer:
        _declare(writer)
        writer.start()
        print("started", flush=True)
        for i in range(n):
            row = expected_row(i)
            writer.append("scalars", i, loss=row["loss"])
            writer.append("activations", i, psd=row["psd"])
            print(i, flush=True)
            if sync and not sys.stdin.readline():
                return
            if delay:
                time.sleep(delay)


def run_fit(path: str, n: int) -> None:
    import torch

    from spectral_probe import build_model, fit, load_target
    from spectral_probe.probes import Probe
    from spectral_probe.training.recorder import TrainingRecorder
    from spectral_probe.store import TrajectoryWriter
    from spectral_probe.training import Callback

    torch.set_num_threads(1)

    class Report(Callback):
        def on_epoch_end(self, state):          # after the recorder: epoch `state.epoch` is committed
            print(state.epoch, flush=True)

    target = load_target("synthetic:broadband", n=256)
    model = build_model("siren", width=8, depth=2, seed=0)
    with TrajectoryWriter(path, config={"mode": "fit"}) as writer:
        print("started", flush=True)
        fit(model, target, epochs=n, device="cpu", probes=[Probe(every=1, writer=writer)],
            callbacks=[TrainingRecorder(writer, every=1), Report()])


def run_full(path: str, limit: int) -> None:
    import resource
    import signal

    from spectral_probe.store import TrajectoryWriter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # get EFBIG from write() instead of a signal
    writer = TrajectoryWriter(path, config={"mode": "full"}, reserve_bytes=64 * 1024)
    _declare(writer)
    writer.start()
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        for i in range(10 ** 6):
            row = expected_row(i)
            writer.append("scalars", i, loss=row["loss"])
            writer.append("activations", i, psd=row["psd"])
            print(i, flush=True)
    except OSError as exc:
        print(f"ERROR {exc}", flush=True)
        writer.close()
        print("closed", flush=True)


def run_seal(path: str, n: int, window: int) -> None:
    import h5py

    from spectral_probe.store import TrajectoryWriter
    from spectral_probe.store.digests import write_seal

    def staged_seal() -> None:
        if window == 0:
            print("window", flush=True)
            sys.stdin.readline()
        with h5py.File(path, "r+", libver="latest", locking=False) as h5:
            if window == 1:
                h5.flush()
                print("window", flush=True)
                sys.stdin.readline()
            write_seal(h5)

    writer = TrajectoryWriter(path, config={"mode": "seal"})
    _declare(writer)
    writer.start()
    for i in range(n):
        row = expected_row(i)
        writer.append("scalars", i, loss=row["loss"])
        writer.append("activations", i, psd=row["psd"])
    writer._seal = staged_seal
    writer.close()


def run_hold(path: str) -> None:
    from spectral_probe.store import TrajectoryWriter

    writer = TrajectoryWriter(path, config={"mode": "hold"}, overwrite=True)
    _declare(writer)
    print("holding", flush=True)
    sys.stdin.read()
    writer.close()


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 10 ** 6
    pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    {"steps": lambda: run_steps(path, count, pause), "sync": lambda: run_steps(path, count, 0.0, sync=True),
     "fit": lambda: run_fit(path, count), "full": lambda: run_full(path, count),
     "seal": lambda: run_seal(path, count, int(pause)), "hold": lambda: run_hold(path)}[mode]()
