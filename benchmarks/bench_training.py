"""Training-loop throughput: ``spectral_probe.fit`` vs plain reference loops, side by side.

Routes (``--routes``):

* ``authors``    -- a loop in the style of the WINNER authors' ``train_utils.py``: full batch,
  ``loss.item()`` every epoch (a host sync), PSNR on the host, and
  ``copy.deepcopy(model.state_dict())`` whenever the PSNR improved;
* ``reference``  -- ``randperm`` + indexing + ``loss.item()`` every step (typical research code);
* ``fit``, ``fit-compile`` -- the project's loop, eager / ``compile=True``;
* ``fit-graphs``, ``fit-compile-graphs`` -- with ``cuda_graphs=True`` (CUDA only; skipped elsewhere);
* ``fit-tf32``   -- ``fit`` with TF32 matrix products (for the PSNR it costs; CUDA only).

Sizes (``--size``, read from ``presets.PRESETS`` so they follow the presets): ``quick`` (first 2^14
samples, 4 x 128) or ``paper`` (150,000 samples, 4 x 222).  Model: SIREN^2 with Eqn 11 scales from
the target.  Every route trains the same initialisation on the same data and device; repeats are
interleaved (route order within a repeat), and the table gives medians of epochs/s and of the
per-repeat ratio to ``authors``.  Matrix products run in full float32 (TF32 off for cuBLAS and
cuDNN, set explicitly) except in ``fit-tf32``.  The last column is the largest PSNR difference to
the ``authors`` loop over the epochs (the routes compute the same trajectory).

    python benchmarks/bench_training.py --size quick --epochs 200 --repeats 5
    python benchmarks/bench_training.py --size paper --epochs 3 --repeats 3          # CPU
    python benchmarks/bench_training.py --size paper --epochs 300 --repeats 3 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time

import numpy as np
import torch

from spectral_probe.devices import resolve_device
from spectral_probe.training.presets import make_run
from spectral_probe.torch_settings import float32_matmul, torch_threads
from spectral_probe.training import fit

ROUTES = ("authors", "reference", "fit", "fit-compile", "fit-graphs", "fit-compile-graphs", "fit-tf32")
CUDA_ONLY = ("fit-graphs", "fit-compile-graphs", "fit-tf32")
FIT_OPTIONS = {"fit": {}, "fit-compile": {"compile": True}, "fit-graphs": {"cuda_graphs": True},
               "fit-compile-graphs": {"compile": True, "cuda_graphs": True}, "fit-tf32": {}}


def authors_loop(model, coords, values, epochs, lr=1e-4, lr_step=20, lr_gamma=0.99) -> list[float]:
    """Full batch, ``loss.item()`` and a PSNR on the host every epoch, a deep copy of the best state."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma)
    best_psnr, best_state, psnrs = -math.inf, None, []
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.mean((model(coords) - values) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        psnr = 10 * math.log10(1.0 / loss.item())
        psnrs.append(psnr)
        if psnr > best_psnr:
            best_psnr, best_state = psnr, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return psnrs


def reference_loop(model, coords, values, epochs, lr=1e-4, lr_step=20, lr_gamma=0.99) -> list[float]:
    """``randperm`` + indexing + ``loss.item()`` every step (the PSNR is of the permuted batch: the same MSE)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma)
    n, psnrs = coords.shape[0], []
    for _ in range(epochs):
        idx = torch.randperm(n, device=coords.device)
        x, y = coords[idx], values[idx]
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        psnrs.append(10 * math.log10(1.0 / loss.item()))
    return psnrs


#: datasheet float32 (non-tensor-core) rates, TFLOP/s, by device-name substring (leads, not measurements)
DATASHEET_FP32_TFLOPS = {"H200": 67.0, "H100": 67.0, "A100": 19.5}


def epoch_work(n: int, in_features: int, width: int, depth: int, out_features: int = 1) -> tuple[float, float]:
    """(matrix-product FLOP, fewest bytes moved) of one full-batch epoch of a ``depth x width`` sine MLP.

    FLOP: every product ``(n, a) @ (a, b)`` costs ``2 n a b`` forward and twice that backward (the input
    gradient and the weight gradient).  Bytes (float32): the coordinates and values read once, and per hidden
    layer its output written once in the forward pass and read once by the backward pass, its gradient
    written once and read once -- a lower bound that assumes every elementwise pass is fused into a product.
    """
    dims = [in_features] + [width] * depth + [out_features]
    macs = sum(n * a * b for a, b in zip(dims[:-1], dims[1:]))
    flop = 3 * 2 * macs
    nbytes = 4 * n * (in_features + out_features) + 4 * 4 * n * width * depth
    return float(flop), float(nbytes)


def measured_rates(n: int, width: int, device) -> tuple[float, float]:
    """(float32 GEMM TFLOP/s at the epoch's main product ``(n, w) @ (w, w)``, copy TB/s) on ``device``."""
    a = torch.randn(n, width, device=device)
    w = torch.randn(width, width, device=device)
    src = torch.randn(max(n * width, 2 ** 26), device=device)
    dst = torch.empty_like(src)

    def best(fn, reps):
        times = []
        for _ in range(reps):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    best(lambda: a @ w, 3)
    t_mm = best(lambda: [a @ w for _ in range(10)], 5) / 10
    best(lambda: dst.copy_(src), 2)
    t_cp = best(lambda: [dst.copy_(src) for _ in range(5)], 5) / 5
    return 2.0 * n * width * width / t_mm / 1e12, 2.0 * 4 * src.numel() / t_cp / 1e12


def roofline_line(flop: float, nbytes: float, gemm_tflops: float, copy_tbps: float, device_name: str,
                  best_route: str, best_s: float) -> str:
    """One line: work per epoch, the float32 floors it implies, and the best route's share of them."""
    floor_measured = flop / (gemm_tflops * 1e12)
    floor_bytes = nbytes / (copy_tbps * 1e12)
    sheet = next((v for k, v in DATASHEET_FP32_TFLOPS.items() if k in device_name), None)
    parts = [f"roofline: {flop:.3g} FLOP (matrix products) and >= {nbytes / 1e9:.2f} GB moved per epoch",
             f"float32 floor {1e3 * floor_measured:.2f} ms at the measured GEMM rate {gemm_tflops:.3g} TFLOP/s"]
    if sheet:
        parts.append(f"{1e3 * flop / (sheet * 1e12):.2f} ms at the datasheet {sheet:.0f} TFLOP/s")
    parts.append(f"memory floor {1e3 * floor_bytes:.2f} ms at {copy_tbps:.3g} TB/s")
    parts.append(f"best route {best_route} {1e3 * best_s:.2f} ms/epoch = {100 * floor_measured / best_s:.0f} % "
                 f"of the measured-rate floor" + (f", {100 * flop / (sheet * 1e12) / best_s:.0f} % of the "
                                                   f"datasheet floor" if sheet else ""))
    return "; ".join(parts)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_route(route, spec, target, coords, values, epochs, device) -> tuple[float, np.ndarray, list[str]]:
    """(loop seconds, PSNR per epoch, notes) of one route."""
    model = spec.build_model(device)
    lr_gamma = spec.train.lr_gamma
    if route in ("authors", "reference"):
        loop = authors_loop if route == "authors" else reference_loop
        _sync(device)
        t0 = time.perf_counter()
        psnrs = loop(model, coords, values, epochs, lr=spec.train.lr, lr_step=spec.train.lr_step, lr_gamma=lr_gamma)
        _sync(device)
        return time.perf_counter() - t0, np.asarray(psnrs), []
    with float32_matmul("high" if route == "fit-tf32" else "highest"):
        result = fit(model, target, spec.train, epochs=epochs, **FIT_OPTIONS[route])
    return result.wall_time, result.history["psnr"], result.notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", choices=("quick", "paper"), default="quick")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", default="synthetic:broadband")
    parser.add_argument("--routes", nargs="+", default=None, choices=ROUTES,
                        help="default: authors reference fit fit-compile, plus the graph routes on CUDA")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    with torch_threads(args.threads):
        run(args)


def run(args) -> None:
    device = resolve_device(args.device)
    routes = args.routes or ["authors", "reference", "fit", "fit-compile"] + (
        ["fit-graphs", "fit-compile-graphs"] if device.type == "cuda" else [])
    skipped = [r for r in routes if r in CUDA_ONLY and device.type != "cuda"]
    routes = [r for r in routes if r not in skipped]
    if "authors" not in routes:
        routes.insert(0, "authors")
    spec, target = make_run("siren2", args.target, args.size,
                            train_overrides={"device": str(device), "log_every": args.epochs, "compile": False})
    coords, values = target.coords(device=device), target.values.to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    with float32_matmul("highest") as precision:
        print(f"device {name}; torch {torch.__version__}; {precision}")
        print(f"target {target.name} N={target.n}; siren2 {spec.model_kwargs['depth']}x{spec.model_kwargs['width']} "
              f"(s0={spec.model_kwargs['s0']:.4g}, s1={spec.model_kwargs['s1']:.4g}); {args.epochs} epochs x "
              f"{args.repeats} interleaved repeats; load {os.getloadavg()[0]:.2f}"
              + (f"; skipped (no CUDA): {', '.join(skipped)}" if skipped else ""))
        first = {}
        for route in routes:           # warm-up: allocator, kernels, the first torch.compile of the process
            t0 = time.perf_counter()
            run_route(route, spec, target, coords, values, 5, device)
            first[route] = time.perf_counter() - t0
        seconds = {r: [] for r in routes}
        psnr, notes = {}, {}
        for _ in range(args.repeats):
            for route in routes:
                s, p, n = run_route(route, spec, target, coords, values, args.epochs, device)
                seconds[route].append(s)
                psnr[route], notes[route] = p, n
    ratio = {r: statistics.median(a / b for a, b in zip(seconds["authors"], seconds[r])) for r in routes}
    print(f"load after: {os.getloadavg()[0]:.2f}; first 5-epoch call per route (warm-up, incl. compile): "
          + ", ".join(f"{r} {first[r]:.1f} s" for r in routes))
    for route in routes:
        if notes[route]:
            print(f"note {route}: {'; '.join(notes[route])}")
    print(f"\n| route | epochs/s | median s per {args.epochs} epochs | ratio to authors (median) | "
          "max abs PSNR diff to authors (dB) | best PSNR (dB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for route in routes:
        med = statistics.median(seconds[route])
        diff = float(np.max(np.abs(psnr[route] - psnr["authors"])))
        print(f"| {route} | {args.epochs / med:.2f} | {med:.3f} | {ratio[route]:.2f}x | {diff:.2e} | "
              f"{np.max(psnr[route]):.2f} |")
    kw = spec.model_kwargs
    flop, nbytes = epoch_work(target.n, target.spatial_dims, kw["width"], kw["depth"], target.channels)
    with float32_matmul("highest"):
        gemm, copy_rate = measured_rates(target.n, kw["width"], device)
    fastest = min((r for r in routes if r != "fit-tf32"), key=lambda r: statistics.median(seconds[r]))
    print("\n" + roofline_line(flop, nbytes, gemm, copy_rate, name, fastest,
                               statistics.median(seconds[fastest]) / args.epochs))


if __name__ == "__main__":
    main()
