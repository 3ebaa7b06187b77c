"""Eqn 5 read literally vs our default low signal, for the SIREN of the paper's Fig 4.

The paper (arXiv 2509.09719, Sec 2.2) fits the Eqn 5 pair with a SIREN of 128 hidden units,
omega0 = 30 and inputs scaled by 10 ("a first-layer frequency of 300"), N = 2^16.  For each
target this prints its spectral centroid psi (Eqn 10), where the network's power sits at
initialisation (the band edge under which 99.9 % of the NTK-weighted spectrum S(k), Eqn 6, and
of the last hidden pre-activations' power lie, and the share of the target's power below that
edge: what ``spectral-probe diagnose`` reports), and the PSNR gain over the zero-output floor
reached by training that SIREN (Adam 1e-4, decay 1 % every 20 epochs).

    python benchmarks/bench_eqn5.py                          # N = 2^12, 300 epochs (about 1 min)
    python benchmarks/bench_eqn5.py --n 65536 --epochs 200   # the paper's N (about 10 min on 2 cores)

Prints a markdown table and the machine's load.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from spectral_probe.bottleneck import diagnose_target
from spectral_probe.training.presets import make_run
from spectral_probe.signals import EQN5_FIRST_LAYER_FREQUENCY, eqn5
from spectral_probe.training import fit

TARGETS = ("low", "eqn5-paper-low", "high")


def measure(name: str, n: int, epochs: int, width: int, depth: int, seed: int) -> dict:
    target = eqn5(n, name)
    d = diagnose_target(target, first_omega=EQN5_FIRST_LAYER_FREQUENCY, width=width, depth=depth, seed=seed,
                        window=min(n, 4096))
    spec, loaded = make_run("siren", target, "quick", width=width, depth=depth, epochs=epochs, seed=seed,
                            first_omega=EQN5_FIRST_LAYER_FREQUENCY, train_overrides={"device": "cpu"})
    start = time.perf_counter()
    result = fit(spec.build_model(), loaded, spec.train)
    cycles = [round(f * n / 2, 1) for f in target.meta["freqs_nyquist"]]
    return {"target": name, "n": n, "cycles": cycles, "psi": target.psi(), "ntk_edge": d.ntk_band_edge,
            "ntk_cov": d.ntk_coverage, "hidden_edge": d.hidden_band_edge, "hidden_cov": d.hidden_coverage,
            "forecast": d.forecast, "floor": result.zero_psnr, "gain": result.best_psnr - result.zero_psnr,
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2 ** 12])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    args = parser.parse_args()
    edge = EQN5_FIRST_LAYER_FREQUENCY / math.pi
    print(f"SIREN {args.depth}x{args.width}, first-layer frequency {EQN5_FIRST_LAYER_FREQUENCY:g} "
          f"(band edge {edge:.1f} cycles per record), {args.epochs} epochs, seed {args.seed}")
    print("\n| target | N | tones (cycles per record) | psi | NTK edge (x Nyquist) | target power below it "
          "| hidden edge | below it | forecast | floor dB | best gain dB | s |")
    print("|" + " --- |" * 12)
    for n in args.n:
        for name in args.targets:
            r = measure(name, n, args.epochs, args.width, args.depth, args.seed)
            print(f"| {r['target']} | {n} | {', '.join(f'{c:g}' for c in r['cycles'])} | {r['psi']:.4f} | "
                  f"{r['ntk_edge']:.3g} | {100 * r['ntk_cov']:.3g} % | {r['hidden_edge']:.3g} | "
                  f"{100 * r['hidden_cov']:.3g} % | {r['forecast']} | {r['floor']:.2f} | {r['gain']:.2f} | "
                  f"{r['seconds']:.0f} |", flush=True)
    print(f"\nload average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
