"""Training-loop throughput: spectral_probe.fit vs a plain reference loop, side by side.

The reference loop is what research code typically does every step: a
``randperm`` over the samples, indexing the coordinates and targets with it,
and ``loss.item()`` (a host sync) to log the loss.  Both loops train the same
model (same init), on the same data and device, for the same number of full-
batch epochs; the runs alternate so that machine load hits both equally.

    python benchmarks/bench_training.py [--device auto] [--epochs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from spectral_probe.devices import resolve_device
from spectral_probe.presets import make_run
from spectral_probe.training import fit


def reference_loop(model, coords, values, epochs, lr=1e-4, lr_step=20, lr_gamma=0.99):
    """randperm + indexing + loss.item() every step (the baseline)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma)
    n = coords.shape[0]
    best = float("inf")
    for _ in range(epochs):
        idx = torch.randperm(n, device=coords.device)
        x, y = coords[idx], values[idx]
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        value = loss.item()
        best = min(best, value)
    return best


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", default="synthetic:broadband")
    parser.add_argument("--width", type=int, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    spec, target = make_run("siren2", args.target, "quick", epochs=args.epochs, width=args.width,
                            train_overrides={"device": str(device), "log_every": args.epochs})
    coords, values = target.coords(device=device), target.values.to(device)
    print(f"device {device}; target {target.name} N={target.n}; model siren2 "
          f"{spec.model_kwargs['depth']}x{spec.model_kwargs['width']}; {args.epochs} epochs x {args.repeats}")
    # warm-up every path once (allocator, kernels; compile=True compiles here, see the note printed below)
    reference_loop(spec.build_model(device), coords, values, 5)
    fit(spec.build_model(device), target, spec.train, epochs=5)
    t0 = time.perf_counter()
    fit(spec.build_model(device), target, spec.train, epochs=5, compile=True)
    first_compile = time.perf_counter() - t0
    times: dict[str, list[float]] = {"reference": [], "fit": [], "fit_compiled": []}
    for _ in range(args.repeats):  # interleaved, so machine load hits every path alike
        model = spec.build_model(device)
        _sync(device)
        t0 = time.perf_counter()
        reference_loop(model, coords, values, args.epochs)
        _sync(device)
        times["reference"].append(time.perf_counter() - t0)
        times["fit"].append(fit(spec.build_model(device), target, spec.train).wall_time)
        times["fit_compiled"].append(fit(spec.build_model(device), target, spec.train, compile=True).wall_time)
    ref = sorted(times["reference"])[len(times["reference"]) // 2]
    print(f"first compile (5-epoch warm-up run, once per process): {first_compile:.1f} s")
    for name, label in (("reference", "reference loop"), ("fit", "fit()"),
                        ("fit_compiled", "fit(compile=True)")):
        med = sorted(times[name])[len(times[name]) // 2]
        print(f"{label:<18}: {args.epochs / med:8.1f} epochs/s  (median of {args.repeats}: {med:.2f} s)  "
              f"ratio to reference {ref / med:.2f}x")


if __name__ == "__main__":
    main()
