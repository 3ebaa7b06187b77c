"""Record quick-preset runs with their full bottleneck-watch history, one JSON file per run.

The detector is a pure function of the recorded indicators, so every detector variant can be
evaluated later from these files without training again (``bench_watch_verdicts.py``).  The watch
checks every 5 epochs (any multiple of 5 is then a sub-sample of the record); the per-epoch PSNR
gives the epoch at which each run left the zero-output floor.

    SPECTRAL_PROBE_DATA=../shared/data python benchmarks/watch_runs.py --cache runs/ --set calibration
    python benchmarks/watch_runs.py --cache runs/ --targets chopin.wav@65536 synthetic:broadband:0.05 \
        --models siren finer --seeds 0 1

A run whose file exists is skipped, so an interrupted recording continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

#: the calibration set: (target spec with @offset, models, seeds), run in this order
CLIPS = ["chopin.wav", "vivaldi_gt.wav", "dilse_gt.wav", "turkish_gt.wav", "tetris.wav", "gt_bach.wav"]
SYNTHETIC = ["synthetic:broadband", "synthetic:broadband:0.05", "synthetic:broadband:0.08", "synthetic:high",
             "synthetic:S1", "synthetic:S2", "synthetic:lowpass:0.5", "synthetic:lowpass:0.7"]
SETS = {
    "calibration": (
        [(f"{c}@0", ("siren", "finer", "siren2"), (0,)) for c in CLIPS]
        + [(f"{c}@65536", ("siren", "finer"), (0,)) for c in CLIPS]
        + [(s, ("siren", "finer"), (0,)) for s in SYNTHETIC]
        + [(f"{c}@131072", ("siren", "finer"), (0,)) for c in CLIPS]
        + [(f"{c}@0", ("siren", "finer"), (1,)) for c in CLIPS]
        + [(s, ("siren2",), (0,)) for s in SYNTHETIC[:4]]
    ),
}
EVERY = 5


def run_name(spec: str, model: str, seed: int) -> str:
    """File stem of one run: ``chopin.wav@65536`` + ``finer`` + seed -> ``chopin@65536_finer_s0``."""
    stem = spec.replace(".wav", "").replace("synthetic:", "syn-").replace(":", "-")
    return f"{stem}_{model}_s{seed}"


def record(spec: str, model: str, seed: int, epochs: int) -> dict:
    """Train one quick-preset run (full schedule, no early stop) with a watch every 5 epochs."""
    from spectral_probe.bottleneck import BottleneckWatch
    from spectral_probe.training.presets import make_run
    from spectral_probe.training import fit

    name, _, offset = spec.partition("@")
    run, target = make_run(model, name, "quick", epochs=epochs, offset=int(offset or 0), seed=seed,
                           train_overrides={"device": "cpu", "progress": False})
    watch = BottleneckWatch(every=EVERY, warn=False)
    start = time.perf_counter()
    result = fit(run.build_model(), target, run.train, probes=[watch])
    return {"spec": spec, "target": target.name, "offset": int(offset or 0), "model": model, "seed": seed,
            "epochs": result.epochs_run, "every": EVERY, "psi": float(target.psi()),
            "model_kwargs": {k: v for k, v in run.model_kwargs.items() if isinstance(v, (int, float, str))},
            "zero_psnr": result.zero_psnr, "best_gain": result.best_psnr - result.zero_psnr,
            "final_gain": result.final_psnr - result.zero_psnr,
            "psnr": np.asarray(result.history["psnr"]).tolist(),
            "band": list(watch.detector.band or ()), "suggestion": watch.detector.suggestion,
            "undecidable": watch.detector.undecidable,
            "history": {k: np.asarray(v).tolist() for k, v in watch.history().items()},
            "wall_time": time.perf_counter() - start, "load": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="Folder of the run files (JSON, one per run).")
    parser.add_argument("--set", choices=sorted(SETS), default=None, help="A named set of runs.")
    parser.add_argument("--targets", nargs="+", default=[], help="Target specs, file@offset for crops.")
    parser.add_argument("--models", nargs="+", default=["siren", "finer"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared).")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    plan = list(SETS[args.set]) if args.set else []
    plan += [(t, tuple(args.models), tuple(args.seeds)) for t in args.targets]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for spec, models, seeds in plan:
        for seed in seeds:
            for model in models:
                path = cache / f"{run_name(spec, model, seed)}.json"
                if path.exists():
                    continue
                try:
                    row = record(spec, model, seed, args.epochs)
                except FileNotFoundError as exc:
                    print(f"{spec}: skipped ({exc})", flush=True)
                    break
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(row))
                tmp.replace(path)
                print(f"{path.stem}: best gain {row['best_gain']:.2f} dB, {row['wall_time']:.0f} s, "
                      f"load {row['load'][0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
