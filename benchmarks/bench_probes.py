"""Probe overhead on the quick preset: fit alone vs fit + probe vs fit + probe + trajectory file.

Runs the three configurations alternately (same model init, data and device)
and prints each one's wall time and its overhead relative to the plain fit,
plus the cost of a single probe step measured in training epochs.  Quick
preset: tetris (first 2^14 samples) when ../shared/data is present, else
``synthetic:broadband``; SIREN^2 4 x 128; 500 epochs; probe every 100 epochs.

    python benchmarks/bench_probes.py [--device auto] [--epochs 500] [--every 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from spectral_probe.devices import resolve_device
from spectral_probe.training.presets import make_run
from spectral_probe.probes import Probe
from spectral_probe.training.recorder import TrainingRecorder
from spectral_probe.store import TrajectoryWriter
from spectral_probe.training import fit, train_step

TETRIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "tetris.wav"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(spec, target, device, mode: str, every: int, folder: Path) -> float:
    """Wall time of one fit, including writer creation and close for ``mode == "store"``."""
    model = spec.build_model(device)
    _sync(device)
    start = time.perf_counter()
    if mode == "plain":
        fit(model, target, spec.train)
    elif mode == "probe":
        fit(model, target, spec.train, probes=[Probe(every=every)])
    else:
        path = folder / f"run-{time.monotonic_ns()}.h5"
        with TrajectoryWriter(path, config=spec.to_dict()) as writer:
            fit(model, target, spec.train, probes=[Probe(every=every, writer=writer)],
                callbacks=[TrainingRecorder(writer, every=every)])
    _sync(device)
    return time.perf_counter() - start


def _probe_step_cost(spec, target, device, every: int, rounds: int = 10, epochs: int = 20) -> tuple[float, float]:
    """Median seconds of one probe step and of one training epoch, measured interleaved.

    Each round times ``epochs`` full-batch training steps, then one probe step,
    so that load on a shared machine hits both alike.
    """
    model = spec.build_model(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    coords, values = target.coords(device=device), target.values.to(device)
    probe = Probe(every=every)
    probe.step(0, model, coords)                                    # fixes the bin edges, warms up
    epoch_times, step_times = [], []
    for r in range(1, rounds + 1):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(epochs):
            train_step(model, optimizer, coords, values)
        _sync(device)
        t1 = time.perf_counter()
        probe.step(r * every, model, coords)
        _sync(device)
        t2 = time.perf_counter()
        epoch_times.append((t1 - t0) / epochs)
        step_times.append(t2 - t1)
    return statistics.median(step_times), statistics.median(epoch_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--target", default=str(TETRIS) if TETRIS.exists() else "synthetic:broadband")
    args = parser.parse_args()
    device = resolve_device(args.device)
    spec, target = make_run("siren2", args.target, "quick", epochs=args.epochs,
                            train_overrides={"device": str(device), "log_every": args.epochs})
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else os.cpu_count()} "
          f"{'' if device.type == 'cuda' else 'cores'}); target {target.name} N={target.n}; siren2 "
          f"{spec.model_kwargs['depth']}x{spec.model_kwargs['width']}; {args.epochs} epochs; "
          f"probe every {args.every}; {args.repeats} repeat(s), alternating")
    fit(spec.build_model(device), target, spec.train, epochs=5, probes=[Probe(every=1)])   # warm-up
    times = {"plain": [], "probe": [], "store": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for mode in times:
                times[mode].append(_run(spec, target, device, mode, args.every, Path(tmp)))
    base = min(times["plain"])
    print("whole runs (best of the repeats; a shared machine makes single runs noisy):")
    for mode, label in (("plain", "fit"), ("probe", "fit + probe"), ("store", "fit + probe + run file")):
        best = min(times[mode])
        print(f"  {label:24s}: best {best:7.2f} s  ({', '.join(f'{t:.2f}' for t in times[mode])})  "
              f"ratio to fit {best / base:.3f}")
    step, epoch = _probe_step_cost(spec, target, device, args.every)
    print(f"interleaved: one probe step {1e3 * step:.2f} ms = {step / epoch:.2f} training epochs "
          f"({1e3 * epoch:.2f} ms/epoch) -> overhead at every={args.every}: "
          f"{100 * step / (epoch * args.every):.2f} %")


if __name__ == "__main__":
    main()
