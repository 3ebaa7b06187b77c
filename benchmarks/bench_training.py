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
    # warm-up both paths once (allocator, kernels)
    reference_loop(spec.build_model(device), coords, values, 5)
    fit(spec.build_model(device), target, spec.train, epochs=5)
    ref_times, fit_times = [], []
    for _ in range(args.repeats):
        model = spec.build_model(device)
        _sync(device)
        t0 = time.perf_counter()
        reference_loop(model, coords, values, args.epochs)
        _sync(device)
        ref_times.append(time.perf_counter() - t0)
        model = spec.build_model(device)
        result = fit(model, target, spec.train)
        fit_times.append(result.wall_time)
    ref, ours = min(ref_times), min(fit_times)
    print(f"reference loop : {args.epochs / ref:8.1f} epochs/s  (best of {args.repeats}: {ref:.2f} s)")
    print(f"spectral_probe : {args.epochs / ours:8.1f} epochs/s  (best of {args.repeats}: {ours:.2f} s)")
    print(f"throughput ratio (ours / reference): {ref / ours:.2f}x")


if __name__ == "__main__":
    main()
