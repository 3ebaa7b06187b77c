"""K models of one shape: one-by-one ``fit`` vs ``fit_batched`` (bmm and vmap), side by side.

Shapes (read from the presets, so they follow their changes):

* ``quick``   -- the quick training preset: SIREN^2 on the first 2^14 samples, depth x width of
  ``presets.PRESETS["quick"]`` (4 x 128);
* ``fig6-audio`` / ``fig6-image`` -- the Fig 6 grid cells of ``figures.sizes`` at the ``quick``
  figure preset (1-D crop and the resized camera image);
* ``small`` -- the Fig 6 audio cell of the ``test`` figure preset (a small model on a short signal);
* ``table1`` -- a Table 1 run at the paper size (Sec 5.1: SIREN^2 4 x 222 on 150,000 samples, the
  ``paper`` training preset, so ``torch.compile`` as there); the K models are seeds 0..K-1 with the same
  Eqn 11 scales, as ``reproduce paper`` trains a cell's seeds together.  ``--ks 1 5`` compares one seed
  at a time with five together: it sets ``spectral_probe.paperscale.table1.SEEDS_TOGETHER``.

The K models differ in seed and WINNER noise scales (a Fig 6 grid / a seed set; ``table1``: seed
only).  Every repeat runs the routes one after the other (interleaved), and the table reports the
median over repeats of model-epochs/s and of the per-repeat ratio to one-by-one.  Steady loop time:
from the end of the third epoch to the end of the fit (so model building and the first epochs,
where ``torch.compile`` compiles, are excluded).

    python benchmarks/bench_batched.py [--device auto] [--ks 4 16] [--epochs 20] [--repeats 3]
    python benchmarks/bench_batched.py --device cuda --shapes table1 --ks 5 --epochs 100 --repeats 2 \
        --routes one-by-one bmm
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from spectral_probe.training.batched import fit_batched
from spectral_probe.devices import resolve_device
from spectral_probe.figures.common import image_target
from spectral_probe.figures.sizes import figure_sizes
from spectral_probe.training.presets import PRESETS, make_run
from spectral_probe.signals import load_target
from spectral_probe.torch_settings import torch_threads
from spectral_probe.training import Callback, fit

ROUTES = ("one-by-one", "bmm", "vmap")


def shapes() -> dict:
    """name -> (target, width, depth, preset); sizes from presets.PRESETS and figures.sizes."""
    quick = PRESETS["quick"]
    fig6 = figure_sizes("6", "quick")
    small = figure_sizes("6", "test")
    paper = PRESETS["paper"]
    return {
        "quick": (load_target("synthetic:broadband", n=quick.audio_samples, seed=0), quick.audio_width,
                  quick.audio_depth, "quick"),
        "fig6-audio": (load_target("synthetic:broadband", n=fig6["n"], seed=0), fig6["width"], fig6["depth"],
                       "quick"),
        "fig6-image": (image_target(None, fig6["image_size"]), fig6["width"], fig6["depth"], "quick"),
        "small": (load_target("synthetic:broadband", n=small["n"], seed=0), small["width"], small["depth"], "quick"),
        "table1": (load_target("synthetic:broadband", n=paper.audio_samples, seed=0),
                   paper.audio_widths["siren2"], paper.audio_depth, "paper"),
    }


def build(target, width, depth, k, device, preset="quick"):
    """K SIREN^2 models: a Fig 6-like grid (Eqn 11 scales x factors in [0, 2], different seeds) or, at the
    paper preset, K seeds with the Eqn 11 scales (a Table 1 cell)."""
    spec, _ = make_run("siren2", target, preset, width=width, depth=depth)
    s0, s1 = spec.model_kwargs["s0"], spec.model_kwargs["s1"]
    kwargs = {k_: v for k_, v in spec.model_kwargs.items() if k_ not in ("s0", "s1")}
    from spectral_probe.models import build_model

    if preset == "paper":
        return [build_model("siren2", seed=i, device=device, s0=s0, s1=s1, **kwargs) for i in range(k)], spec.train
    return [build_model("siren2", seed=i, device=device, s0=s0 * (i % 5) / 2, s1=s1 * ((i // 5) % 5) / 2,
                        **kwargs) for i in range(k)], spec.train


class _Steady(Callback):
    """Host time at the end of the third epoch (the fit's end synchronises the device)."""

    def __init__(self) -> None:
        self.t = None

    def on_epoch_end(self, state) -> None:
        if state.epoch == 2:
            self.t = time.perf_counter()


def run_route(route, target, width, depth, k, epochs, device, preset="quick") -> float:
    """Steady seconds of training loop for K models (epochs 4..end)."""
    models, train = build(target, width, depth, k, device, preset)
    kw = dict(epochs=epochs, device=str(device), log_every=epochs, compile=train.compile)
    if route == "one-by-one":
        total = 0.0
        for m in models:
            steady = _Steady()
            fit(m, target, callbacks=[steady], **kw)
            total += time.perf_counter() - steady.t
        return total
    steady = _Steady()
    fit_batched(models, target, implementation=route, callbacks=[[steady]] + [[] for _ in models[1:]], **kw)
    return time.perf_counter() - steady.t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--shapes", nargs="+", default=["quick", "fig6-audio", "fig6-image"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES)
    args = parser.parse_args()
    if args.epochs < 5:
        raise SystemExit("error: --epochs must be at least 5 (the first three are not timed)")
    with torch_threads(args.threads):
        run(args)


def run(args) -> None:
    routes = ["one-by-one"] + [r for r in args.routes if r != "one-by-one"]
    device = resolve_device(args.device)
    table = shapes()
    unknown = sorted(set(args.shapes) - set(table))
    if unknown:
        raise SystemExit(f"error: unknown shape(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    print(f"device {device}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"{args.epochs} epochs; {args.repeats} interleaved repeats; load {os.getloadavg()[0]:.2f}")
    rows = []
    for name in args.shapes:
        target, width, depth, preset = table[name]
        for k in args.ks:
            for route in routes:        # warm-up at the timed K: allocator, first-call imports, kernels, compile
                run_route(route, target, width, depth, k, 5, device, preset)
            seconds = {r: [] for r in routes}
            for _ in range(args.repeats):
                for route in routes:
                    seconds[route].append(run_route(route, target, width, depth, k, args.epochs, device, preset))
            ratios = {r: statistics.median(a / b for a, b in zip(seconds["one-by-one"], seconds[r]))
                      for r in routes}
            steady = args.epochs - 3
            rate = {r: steady * k / statistics.median(seconds[r]) for r in routes}
            rows.append((name, target.n, f"{depth}x{width}", k, rate, ratios))
            print(f"  {name} K={k}: " + ", ".join(f"{r} {rate[r]:.1f} model-epochs/s ({ratios[r]:.2f}x)"
                                                 for r in routes), flush=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f}\n")
    batched = routes[1:]
    print("| shape | N | depth x width | K | one-by-one model-epochs/s | "
          + " | ".join(batched) + " | " + " | ".join(f"{r} speed-up" for r in batched) + " |")
    print("| --- " * (4 + 1 + 2 * len(batched)) + "|")
    for name, n, size, k, rate, ratios in rows:
        print(f"| {name} | {n} | {size} | {k} | {rate['one-by-one']:.1f} | "
              + " | ".join(f"{rate[r]:.1f}" for r in batched) + " | "
              + " | ".join(f"{ratios[r]:.2f}x" for r in batched) + " |")
    if any(name == "table1" for name, *_ in rows):
        print("\nTable 1 seeds: set spectral_probe.paperscale.table1.SEEDS_TOGETHER = K where the bmm speed-up "
              "at K is above 1 (one model-epoch of a batch is cheaper than one alone).")


if __name__ == "__main__":
    main()
