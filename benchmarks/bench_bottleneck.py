"""Quick-preset PSNR table: SIREN vs SIREN^2 on high- and low-frequency targets.

Checks the package's headline claims on a CPU in minutes: on the
quick preset SIREN stays within 1 dB of the zero-output PSNR on tetris (and on
the synthetic tetris-like broadband target) while SIREN^2 exceeds 50 dB within
500 epochs; on gt_bach (offset 65536) both improve on the floor.

    SPECTRAL_PROBE_DATA=../shared/data python benchmarks/bench_bottleneck.py [--epochs 500]
"""

from __future__ import annotations

import argparse

from spectral_probe.training.presets import make_run
from spectral_probe.signals.io import resolve_data_path
from spectral_probe.training import fit

CASES = [("tetris.wav", 0), ("gt_bach.wav", 65536), ("synthetic:broadband", 0), ("synthetic:low", 0)]


def _available(target: str) -> bool:
    if target.startswith("synthetic:"):
        return True
    try:
        resolve_data_path(target)
        return True
    except FileNotFoundError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'target':<22}{'model':<8}{'floor dB':>9}{'best dB':>9}{'final dB':>9}{'gain':>8}{'epochs/s':>10}")
    for target, offset in CASES:
        if not _available(target):
            print(f"{target:<22}(skipped: file not found; set SPECTRAL_PROBE_DATA)")
            continue
        for model in ("siren", "siren2"):
            spec, loaded = make_run(model, target, "quick", epochs=args.epochs, offset=offset, seed=args.seed,
                                    train_overrides={"device": args.device})
            r = fit(spec.build_model(), loaded, spec.train)
            print(f"{target + (f'@{offset}' if offset else ''):<22}{model:<8}{r.zero_psnr:9.2f}{r.best_psnr:9.2f}"
                  f"{r.final_psnr:9.2f}{r.best_psnr - r.zero_psnr:8.2f}{r.epochs_per_second:10.1f}")


if __name__ == "__main__":
    main()
