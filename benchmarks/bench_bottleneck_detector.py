"""Validate the bottleneck watch on the quick preset: confusion table, onsets, overhead, sensitivity.

Every run trains the full schedule (no early stop) with ``BottleneckWatch(every=10)``; the
ground truth is the run's own outcome: *bottleneck* when its best PSNR stays within 1 dB of the
zero-output floor over the whole run.  The detector must flag those within the first 20 % of
the run and never flag the others.  Targets: the two the watch was designed on (tetris, the tetris-like
``synthetic:broadband``) plus held-out ones no setting was chosen on (the Eqn 5 high tones,
gt_bach at offset 65536, the Eqn 5 low tones, a low-pass broadband signal 0-0.05 x Nyquist).

    SPECTRAL_PROBE_DATA=../shared/data python benchmarks/bench_bottleneck_detector.py --seeds 0 1

Printed: one row per run, the confusion table, the watch's share of the training time (measured
in the same runs) and the verdicts under other detector settings (re-run on the recorded rows).
``--json out.json`` also stores every row; ``--from-json a.json b.json`` prints the tables of
stored rows again (e.g. seeds run in separate processes) with the current detector.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import replace

import numpy as np

from spectral_probe.bottleneck import AT_RISK, BOTTLENECK, INDICATORS, BottleneckDetector, BottleneckWatch, Thresholds
from spectral_probe.bottleneck import diagnose_target
from spectral_probe.training.presets import make_run
from spectral_probe.signals import broadband
from spectral_probe.signals.io import resolve_data_path
from spectral_probe.training import fit

#: (label, target spec, offset); "lowpass" is built here (no synthetic: name for it yet)
TARGETS = [("tetris", "tetris.wav", 0), ("broadband", "synthetic:broadband", 0), ("high", "synthetic:high", 0),
           ("gt_bach", "gt_bach.wav", 65536), ("low", "synthetic:low", 0), ("lowpass", "lowpass:0.05", 0),
           ("chopin", "chopin.wav", 0), ("vivaldi_gt", "vivaldi_gt.wav", 0), ("dilse_gt", "dilse_gt.wav", 0),
           ("turkish_gt", "turkish_gt.wav", 0)]
#: the targets run by default (the other real clips: --targets chopin vivaldi_gt dilse_gt turkish_gt)
REQUIRED = ["tetris", "broadband", "high", "gt_bach", "low", "lowpass"]
#: detector settings re-applied to the recorded rows
VARIANTS = {"default": {}, "warmup 0": {"warmup": 0}, "warmup 50": {"warmup": 50},
            "patience 2": {"patience": 2}, "patience 5": {"patience": 5}, "gain 0.5 dB": {"gain_db": 0.5},
            "gain 3 dB": {"gain_db": 3.0}, "no climb test": {"horizon": 0}}


class TimedWatch(BottleneckWatch):
    """The watch, with the wall time of its checks."""

    seconds = 0.0

    def check(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().check(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _target(spec: str, seed: int):
    if spec.startswith("lowpass:"):
        t = broadband(2 ** 14, 0.0, float(spec.split(":")[1]), seed=seed)
        t.name = f"lowpass-{spec.split(':')[1]}"
        return t
    if not spec.startswith("synthetic:"):
        resolve_data_path(spec)          # FileNotFoundError when the data are absent
    return spec


def _spec(label: str) -> tuple[str, int]:
    known = {t[0]: (t[1], t[2]) for t in TARGETS}
    return known.get(label, (label, 0))


def forecast(label: str) -> str:
    """``spectral-probe diagnose`` for a plain SIREN on the seed-0 target (quick preset)."""
    spec, offset = _spec(label)
    d = diagnose_target(_target(spec, 0), offset=offset)
    bound = -10 * math.log10(max(1 - d.ntk_coverage, 1e-12))
    return f"{d.forecast} ({100 * d.ntk_coverage:.2g} % covered, <= {bound:.2f} dB)".replace("1e+02 %", "100 %")


def run_case(model: str, label: str, spec: str, offset: int, seed: int, epochs: int) -> dict:
    run, loaded = make_run(model, _target(spec, seed), "quick", epochs=epochs, offset=offset, seed=seed,
                           train_overrides={"device": "cpu"})
    watch = TimedWatch(every=10, warn=False)
    wide = BottleneckWatch(every=10, warn=False, thresholds=Thresholds(band_level=0.99))
    result = fit(run.build_model(), loaded, run.train, probes=[watch, wide])
    return {"target": label, "model": model, "seed": seed, "epochs": result.epochs_run,
            "zero_psnr": result.zero_psnr, "best_gain": result.best_psnr - result.zero_psnr,
            "final_line": watch.verdict.line(), "watch_seconds": watch.seconds, "wall_time": result.wall_time,
            "history": {k: np.asarray(v).tolist() for k, v in watch.history().items()},
            "history_099": {k: np.asarray(v).tolist() for k, v in wide.history().items()}}


def analyse(row: dict, thresholds: Thresholds | None = None, key: str = "history", horizon: int | None = None) -> dict:
    """Re-run the detector on a recorded history: flag, onset, first flag/at-risk epochs, final state.

    ``horizon`` defaults to the run's length; 0 switches the climb test off (the detector's first version).
    """
    h = row[key]
    detector = BottleneckDetector(thresholds, horizon=row["epochs"] if horizon is None else horizon)
    verdicts = [detector.update(s, {k: h[k][i] for k in INDICATORS}) for i, s in enumerate(h["step"])]
    states, reasons = [v.state for v in verdicts], [v.reason for v in verdicts]
    steps = [int(s) for s in h["step"]]
    v = detector.verdict
    gains = h["psnr_gain"]
    return {"truth": bool(row["best_gain"] < 1.0), "flagged": v.flagged, "onset": v.first_onset,
            "one_db_at": next((s for s, g in zip(steps, gains) if g >= 1.0), None),
            "escaping_at": next((s for s, st, r in zip(steps, states, reasons) if r.startswith("escaping")), None),
            "flagged_at": next((s for s, st in zip(steps, states) if st == BOTTLENECK), None),
            "first_at_risk": next((s for s, st in zip(steps, states) if st == AT_RISK), None),
            "final_state": v.state}


def _fmt(x) -> str:
    return "-" if x is None else str(x)


def _confusion(results: list[dict]) -> tuple[int, int, int, int]:
    tp = sum(r["truth"] and r["flagged"] for r in results)
    fn = sum(r["truth"] and not r["flagged"] for r in results)
    fp = sum(not r["truth"] and r["flagged"] for r in results)
    return tp, fn, fp, len(results) - tp - fn - fp


def print_tables(rows: list[dict], diagnoses: dict) -> None:
    print("\n| target | model | seed | floor dB | best gain dB | truth | flagged | onset | flagged at "
          "| first at-risk | escaping at | gain 1 dB at | final state | pre-training forecast (plain SIREN) |")
    print("|" + " --- |" * 14)
    results = [analyse(r) for r in rows]
    for r, a in zip(rows, results):
        forecast = diagnoses.get(r["target"], "-") if r["model"] == "siren" else "-"
        print(f"| {r['target']} | {r['model']} | {r['seed']} | {r['zero_psnr']:.2f} | {r['best_gain']:.2f} | "
              f"{'bottleneck' if a['truth'] else 'fits'} | {'yes' if a['flagged'] else 'no'} | {_fmt(a['onset'])} | "
              f"{_fmt(a['flagged_at'])} | {_fmt(a['first_at_risk'])} | {_fmt(a['escaping_at'])} | "
              f"{_fmt(a['one_db_at'])} | {a['final_state']} | {forecast} |")
    tp, fn, fp, tn = _confusion(results)
    early = sum(a["truth"] and a["flagged_at"] is not None and a["flagged_at"] <= 0.2 * r["epochs"]
                for r, a in zip(rows, results))
    print(f"\nconfusion over {len(rows)} runs (truth = best gain < 1 dB over the whole run):")
    print("| | flagged | not flagged |\n| --- | --- | --- |")
    print(f"| bottleneck | {tp} | {fn} |\n| fits | {fp} | {tn} |")
    print(f"bottlenecks flagged within the first 20 % of the run: {early} / {tp + fn}")
    share = sum(r["watch_seconds"] for r in rows) / sum(r["wall_time"] for r in rows)
    print(f"watch checks (every 10 epochs): {100 * share:.2f} % of the training wall time "
          f"(the benchmark's second watch, band level 0.99, is not counted)")
    print("\nother detector settings, re-run on the recorded rows (true bottlenecks flagged / false flags):")
    for name, kw in VARIANTS.items():
        kw = dict(kw)
        horizon = kw.pop("horizon", None)
        tp, fn, fp, tn = _confusion([analyse(r, replace(Thresholds(), **kw), horizon=horizon) for r in rows])
        print(f"  {name:<14} {tp:>3} of {tp + fn} / {fp:>3} of {fp + tn}")
    wide = [analyse(r, Thresholds(band_level=0.99), "history_099") if "history_099" in r
            else {"truth": r["best_gain"] < 1.0, "flagged": r["flagged_099"]} for r in rows]    # older --json files
    tp, fn, fp, tn = _confusion(wide)
    print(f"  {'band 0.99':<14} {tp:>3} of {tp + fn} / {fp:>3} of {fp + tn}")
    _forecast_table(rows, results, diagnoses)


def _forecast_table(rows: list[dict], results: list[dict], diagnoses: dict) -> None:
    """Forecast (``spectral-probe diagnose``, plain SIREN) vs the SIREN runs' outcomes."""
    groups: dict[str, list[tuple[dict, dict]]] = {}
    for r, a in zip(rows, results):
        if r["model"] == "siren" and r["target"] in diagnoses:
            groups.setdefault(diagnoses[r["target"]].split(" (")[0], []).append((r, a))
    print("\nforecast (plain SIREN, at initialisation) vs outcome of the SIREN runs:")
    print("| forecast | runs | stayed at the floor | left it (target: epoch of 1 dB) |\n| --- | --- | --- | --- |")
    for label in ("likely", "at risk", "unlikely", "undecided"):
        pairs = groups.get(label, [])
        if pairs:
            stuck = sorted({r["target"] for r, a in pairs if a["truth"]})
            left = [f"{r['target']}: {a['one_db_at']}" for r, a in pairs if not a["truth"]]
            print(f"| {label} | {len(pairs)} | {len([1 for _, a in pairs if a['truth']])} ({', '.join(stuck) or '-'}) "
                  f"| {len(left)} ({', '.join(left) or '-'}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--targets", nargs="+", default=REQUIRED,
                        help="Labels of TARGETS, synthetic:<spec>, or lowpass:<cut> (broadband on [0, cut] x Nyquist).")
    parser.add_argument("--models", nargs="+", default=["siren", "siren2"])
    parser.add_argument("--json", default=None, help="Also write every row (with histories) here.")
    parser.add_argument("--from-json", nargs="+", default=None,
                        help="Print the tables from rows stored by --json (no training).")
    args = parser.parse_args()
    if args.from_json:
        rows = [r for path in args.from_json for r in json.load(open(path))["rows"]]
        print_tables(rows, {label: forecast(label) for label in dict.fromkeys(r["target"] for r in rows)})
        return
    rows, diagnoses = [], {}
    extra = [(t, t, 0) for t in args.targets if t.startswith(("lowpass:", "synthetic:"))
             and t not in [x[0] for x in TARGETS]]
    for label, spec, offset in TARGETS + extra:
        if label not in args.targets:
            continue
        try:
            diagnoses[label] = forecast(label)
        except FileNotFoundError:
            print(f"{label}: skipped (file not found; set SPECTRAL_PROBE_DATA)")
            continue
        for seed in args.seeds:
            for model in args.models:
                row = run_case(model, label, spec, offset, seed, args.epochs)
                print(f"{label} {model} seed {seed}: {row['final_line']}", flush=True)
                rows.append(row)
                if args.json:
                    with open(args.json, "w") as fh:
                        json.dump({"rows": rows, "diagnoses": diagnoses}, fh)
    print_tables(rows, diagnoses)
    print(f"\nload average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
