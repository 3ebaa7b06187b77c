"""K models of one shape: one-by-one ``fit`` vs ``fit_batched`` (bmm and vmap), side by side.

Shapes (read from the presets, so they follow their changes):

* ``quick``   -- the quick training preset: SIREN^2 on the first 2^14 samples, depth x width of
  ``presets.PRESETS["quick"]`` (4 x 128);
* ``fig6-audio`` / ``fig6-image`` -- the Fig 6 grid cells of ``figures.sizes`` at the ``quick``
  figure preset (1-D crop and the resized camera image);
* ``small`` -- the Fig 6 audio cell of the ``test`` figure preset (a small model on a short signal).

The K models differ in seed and WINNER noise scales (a Fig 6 grid / a seed set).  Every
repeat runs the three routes one after the other (interleaved), and the table reports the
median over repeats of epochs/s and of the per-repeat ratio to one-by-one.  Loop time only
(``FitResult.wall_time``): model building and the first-call warm-up are excluded.

    python benchmarks/bench_batched.py [--device auto] [--ks 4 16] [--epochs 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from spectral_probe.training.batched import fit_batched
from spectral_probe.devices import resolve_device
from spectral_probe.figures.common import image_target
from spectral_probe.figures.sizes import figure_sizes
from spectral_probe.training.presets import PRESETS, make_run
from spectral_probe.signals import load_target
from spectral_probe.torch_settings import torch_threads
from spectral_probe.training import fit

ROUTES = ("one-by-one", "bmm", "vmap")


def shapes() -> dict:
    """name -> (target, width, depth); sizes from presets.PRESETS and figures.sizes."""
    quick = PRESETS["quick"]
    fig6 = figure_sizes("6", "quick")
    small = figure_sizes("6", "test")
    return {
        "quick": (load_target("synthetic:broadband", n=quick.audio_samples, seed=0), quick.audio_width,
                  quick.audio_depth),
        "fig6-audio": (load_target("synthetic:broadband", n=fig6["n"], seed=0), fig6["width"], fig6["depth"]),
        "fig6-image": (image_target(None, fig6["image_size"]), fig6["width"], fig6["depth"]),
        "small": (load_target("synthetic:broadband", n=small["n"], seed=0), small["width"], small["depth"]),
    }


def build(target, width, depth, k, device):
    """K SIREN^2 models with Eqn 11 scales times factors in [0, 2] and different seeds."""
    spec, _ = make_run("siren2", target, "quick", width=width, depth=depth)
    s0, s1 = spec.model_kwargs["s0"], spec.model_kwargs["s1"]
    kwargs = {k_: v for k_, v in spec.model_kwargs.items() if k_ not in ("s0", "s1")}
    from spectral_probe.models import build_model

    return [build_model("siren2", seed=i, device=device, s0=s0 * (i % 5) / 2, s1=s1 * ((i // 5) % 5) / 2,
                        **kwargs) for i in range(k)]


def run_route(route, target, width, depth, k, epochs, device) -> float:
    """Seconds of training loop for K models."""
    models = build(target, width, depth, k, device)
    kw = dict(epochs=epochs, device=str(device), log_every=epochs)
    if route == "one-by-one":
        return sum(fit(m, target, **kw).wall_time for m in models)
    return fit_batched(models, target, implementation=route, **kw)[0].wall_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--shapes", nargs="+", default=["quick", "fig6-audio", "fig6-image"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    with torch_threads(args.threads):
        run(args)


def run(args) -> None:
    device = resolve_device(args.device)
    table = shapes()
    unknown = sorted(set(args.shapes) - set(table))
    if unknown:
        raise SystemExit(f"error: unknown shape(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    print(f"device {device}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"{args.epochs} epochs; {args.repeats} interleaved repeats; load {os.getloadavg()[0]:.2f}")
    rows = []
    for name in args.shapes:
        target, width, depth = table[name]
        for k in args.ks:
            for route in ROUTES:        # warm-up: allocator, first-call imports, kernels
                run_route(route, target, width, depth, min(k, 2), 2, device)
            seconds = {r: [] for r in ROUTES}
            for _ in range(args.repeats):
                for route in ROUTES:
                    seconds[route].append(run_route(route, target, width, depth, k, args.epochs, device))
            ratios = {r: statistics.median(a / b for a, b in zip(seconds["one-by-one"], seconds[r]))
                      for r in ROUTES}
            rate = {r: args.epochs * k / statistics.median(seconds[r]) for r in ROUTES}
            rows.append((name, target.n, f"{depth}x{width}", k, rate, ratios))
            print(f"  {name} K={k}: " + ", ".join(f"{r} {rate[r]:.1f} model-epochs/s ({ratios[r]:.2f}x)"
                                                 for r in ROUTES), flush=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f}\n")
    print("| shape | N | depth x width | K | one-by-one model-epochs/s | bmm | vmap | bmm speed-up | vmap speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, n, size, k, rate, ratios in rows:
        print(f"| {name} | {n} | {size} | {k} | {rate['one-by-one']:.1f} | {rate['bmm']:.1f} | {rate['vmap']:.1f} | "
              f"{ratios['bmm']:.2f}x | {ratios['vmap']:.2f}x |")


if __name__ == "__main__":
    main()
