"""Overhead of TensorBoard output on the quick preset with a probe every 100 epochs.

What ``spectral-probe train --preset quick --probe-every 100`` runs, with and without
``--tensorboard DIR``: SIREN^2 4 x 128 on tetris (first 2^14 samples) when ../shared/data is
present, else ``synthetic:broadband``; 500 epochs; ``Probe(every=100)``.  The two configurations
alternate (same model init, data, device); each pair gives one ratio and the table reports their
median.  A second, load-robust measure times the logger's own callbacks inside the TensorBoard runs
(host copies of the losses, histograms, spectral distances, images, event writes) against the
run's wall time.  Section ``step`` times one probe step's logging (with and without the image)
interleaved with training epochs.  The one-time import of ``torch.utils.tensorboard`` and
matplotlib is measured separately (it happens once per process, before training).

    python benchmarks/bench_tensorboard.py [--repeats 3] [--epochs 500] [--every 100] [--device auto]
                                           [--sections runs step]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from spectral_probe.devices import resolve_device
from spectral_probe.monitor import TensorBoardLogger
from spectral_probe.training.presets import make_run
from spectral_probe.probes import Probe
from spectral_probe.training.runs import train_to_file

TETRIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "tetris.wav"


class TimedLogger(TensorBoardLogger):
    """The logger, with the seconds spent in its callbacks summed."""

    def __init__(self, *args, **kwargs) -> None:
        self.seconds = 0.0
        start = time.perf_counter()
        super().__init__(*args, **kwargs)
        self.seconds += time.perf_counter() - start

    def _timed(name):
        def method(self, *args):
            start = time.perf_counter()
            try:
                return getattr(TensorBoardLogger, name)(self, *args)
            finally:
                self.seconds += time.perf_counter() - start
        return method

    on_fit_start = _timed("on_fit_start")
    on_epoch_start = _timed("on_epoch_start")
    on_epoch_end = _timed("on_epoch_end")
    on_fit_end = _timed("on_fit_end")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(spec, target, device, every: int, logdir: Path | None) -> tuple[float, float]:
    """``(wall seconds, seconds inside the logger)`` of one run, logger creation and closing included."""
    probe = Probe(every=every)
    _sync(device)
    start = time.perf_counter()
    callbacks = [TimedLogger(logdir, [probe])] if logdir is not None else []
    train_to_file(spec, target, None, probes=[probe], callbacks=callbacks, device=device)
    _sync(device)
    return time.perf_counter() - start, callbacks[0].seconds if callbacks else 0.0


def _step_costs(spec, target, device, every: int, folder: Path, rounds: int = 5) -> tuple[float, float, float]:
    """Median seconds of what one probe step adds, with and without the image, and of one training epoch.

    Interleaved: each round times one epoch, then the logger's work for one probe step with the
    image, then without it (the probe's statistics are computed once, as in training).
    """
    from spectral_probe.monitor import EventSink
    from spectral_probe.monitor.spectra import TargetSpectrum
    from spectral_probe.training import train_step

    model = spec.build_model(device)
    x, y = target.coords(device=device), target.values.to(device)
    probe = Probe(every=every)
    probe.step(0, model, x)
    ds = probe.to_dataset()
    reference = TargetSpectrum(target.values.numpy(), target.grid_shape)
    sinks = {images: EventSink(folder / f"step-{images}", images=images) for images in (True, False)}
    for sink in sinks.values():
        sink.set_target(reference)
        sink.activations(ds)                                    # first figure, fonts
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times: dict[str, list[float]] = {"epoch": [], "with image": [], "without image": []}
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        train_step(model, optimizer, x, y)
        _sync(device)
        times["epoch"].append(time.perf_counter() - start)
        for images, key in ((True, "with image"), (False, "without image")):
            start = time.perf_counter()
            sinks[images].activations(ds)
            times[key].append(time.perf_counter() - start)
    for sink in sinks.values():
        sink.close()
    return tuple(statistics.median(times[k]) for k in ("with image", "without image", "epoch"))


def _import_seconds() -> float:
    """Seconds to import torch.utils.tensorboard and matplotlib's Agg canvas in a fresh process (after torch)."""
    code = ("import time, torch; t = time.perf_counter(); import torch.utils.tensorboard; "
            "from matplotlib.backends.backend_agg import FigureCanvasAgg; print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sections", nargs="+", default=["runs", "step"], choices=["runs", "step"],
                        help="runs: whole runs with and without the logger; step: one probe step's logging cost")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = str(TETRIS) if TETRIS.exists() else "synthetic:broadband"
    spec, target = make_run("siren2", name, "quick", epochs=args.epochs,
                            train_overrides={"device": str(device), "progress": False})
    print(f"target {target.name}, {spec.model} {spec.model_kwargs['depth']}x{spec.model_kwargs['width']}, "
          f"{args.epochs} epochs, probe every {args.every}, device {device}, torch {torch.__version__}")
    if "step" in args.sections:
        with tempfile.TemporaryDirectory() as tmp:
            load = os.getloadavg()[0]
            with_image, without, epoch = _step_costs(spec, target, device, args.every, Path(tmp))
        print(f"\none probe step's logging (median of 5, load average {load:.1f}): {1e3 * with_image:.1f} ms with the "
              f"image, {1e3 * without:.1f} ms without; one epoch {1e3 * epoch:.1f} ms; at every={args.every}: "
              f"{100 * with_image / (args.every * epoch):.2f} % / {100 * without / (args.every * epoch):.2f} % "
              "of the epochs between probe steps")
    if "runs" in args.sections:
        _runs(args, spec, target, device, name)
    print(f"\none-time import of torch.utils.tensorboard + matplotlib Agg (fresh process): {_import_seconds():.2f} s")


def _runs(args, spec, target, device, name: str) -> None:
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm, _ = make_run("siren2", name, "quick", epochs=min(args.epochs, 2 * args.every),
                           train_overrides={"device": str(device), "progress": False})
        _run(warm, target, device, args.every, Path(tmp) / "warm")        # imports, font cache, allocator
        for r in range(args.repeats):
            first_tb = r % 2 == 1                                      # alternate the order inside each pair
            order = (True, False) if first_tb else (False, True)
            times = {}
            for tb in order:
                times[tb] = _run(spec, target, device, args.every, Path(tmp) / f"tb{r}" if tb else None)
            rows.append((times[False][0], times[True][0], times[True][1]))
    load_after = os.getloadavg()
    print(f"\nwhole runs; load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
          f"({os.cpu_count()} CPUs)\n")
    print("| repeat | probe only [s] | probe + TensorBoard [s] | ratio | inside the logger [s] | logger / run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for i, (base, tb, inside) in enumerate(rows):
        print(f"| {i} | {base:.2f} | {tb:.2f} | {tb / base:.4f} | {inside:.3f} | {100 * inside / tb:.2f} % |")
    ratio = statistics.median(tb / base for base, tb, _ in rows)
    share = statistics.median(inside / tb for _, tb, inside in rows)
    print(f"| median | | | {ratio:.4f} ({100 * (ratio - 1):+.2f} %) | | {100 * share:.2f} % |")


if __name__ == "__main__":
    main()
