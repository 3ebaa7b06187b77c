"""Linearised-dynamics forecast (paper Eqns 3-4) against actual training, quick preset.

For every (model, target) pair: build the quick-preset run exactly as ``spectral-probe train`` does,
forecast the PSNR curve from the NTK at initialisation (``spectral_probe.ntk.forecast.forecast_fit``:
dense eigh up to 4096 samples, Lanczos from the residual above), train the run, and compare.

Forecasts shown: ``adam`` (Adam as a scalar-preconditioned flow, no fitting), ``gd`` (plain
gradient descent with the optimiser's learning rate) and ``fit`` (the ``adam`` map with a learning-rate
scale fitted on the first ``--fit-epochs`` epochs of the actual run).  ``drift`` is how far the NTK moved
during training: the L1 change of the normalised S(k) between initialisation and the trained model
(0 = same spectral shape, 2 = disjoint), and the ratio of the traces.

Usage::

    python benchmarks/bench_forecast.py                                   # tetris, broadband, Eqn 5 pair
    python benchmarks/bench_forecast.py --targets synthetic:eqn5-paper-low synthetic:eqn5-paper-high
    python benchmarks/bench_forecast.py --models siren --targets synthetic:high --epochs 200

Prints a markdown table.  tetris.wav is read from ``SPECTRAL_PROBE_DATA`` (skipped when absent).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_TARGETS = ["tetris.wav", "synthetic:broadband", "synthetic:low", "synthetic:high"]
MARKS = (10, 50, 100, 200)


def _spectrum_shape(model, target):
    import torch

    from spectral_probe.ntk import spectrum_without_kernel

    s = spectrum_without_kernel(model, target.coords(), rtol=1e-6).values
    w = torch.full_like(s, 2.0)
    w[0] = 1.0
    if target.n % 2 == 0:
        w[-1] = 1.0
    s = s * w
    return s / s.sum(), float(s.sum())


def run_one(model_name: str, target_name: str, epochs: int | None, fit_epochs: int, steps: int,
            snapshots: int = 0) -> dict:
    import torch

    from spectral_probe.ntk.forecast import fit_lr_scale, forecast_fit, linearised_forecast, lr_schedule
    from spectral_probe.ntk.empirical import count_parameters
    from spectral_probe.training.presets import make_run
    from spectral_probe.training import fit

    spec, target = make_run(model_name, target_name, "quick", epochs=epochs,
                            train_overrides={"device": "cpu", "progress": False})
    model = spec.build_model()
    t0 = time.perf_counter()
    fc = forecast_fit(model, target, spec.train, optimizer="adam", steps=steps)
    t_forecast = time.perf_counter() - t0
    lrs = lr_schedule(spec.train.lr, spec.train.epochs, spec.train.lr_step, spec.train.lr_gamma)
    p = count_parameters(model)
    gd = linearised_forecast(fc.measure, lrs, n_params=p, optimizer="gd", grid_shape=target.grid_shape, bands=8)
    s0, tr0 = _spectrum_shape(model, target)
    t0 = time.perf_counter()
    trained = spec.build_model()
    probes = []
    if snapshots:
        from spectral_probe.ntk import NTKSnapshot

        probes.append(NTKSnapshot(every=snapshots, forecast=snapshots, lanczos_steps=128, rtol=1e-6))
    run = fit(trained, target, spec.train, probes=probes)
    t_train = time.perf_counter() - t0
    actual = run.history["psnr"]
    scale = fit_lr_scale(fc.measure, lrs, actual, n_params=p, fit_epochs=fit_epochs)
    fitted = linearised_forecast(fc.measure, lrs, n_params=p, optimizer="adam", lr_scale=scale,
                                 grid_shape=target.grid_shape, bands=8)
    s1, tr1 = _spectrum_shape(trained, target)
    pick = lambda a: {int(e): float(a[e]) for e in (*MARKS, len(actual) - 1) if e < len(actual)}  # noqa: E731
    return {"model": model_name, "target": target.name, "n": target.n, "epochs": len(actual),
            "method": fc.measure.method, "steps": fc.measure.steps, "lanczos_gap_db": fc.lanczos_gap_db,
            "zero_psnr": run.zero_psnr, "best_psnr": run.best_psnr,
            "actual": pick(actual), "adam": pick(fc.psnr), "gd": pick(gd.psnr), "fit": pick(fitted.psnr),
            "scale": scale, "drift_l1": float((s1 - s0).abs().sum()), "trace_ratio": tr1 / tr0,
            "band_t90": [int(t) for t in fc.band_t90], "forecast_s": t_forecast, "train_s": t_train,
            "threads": torch.get_num_threads(), "snapshots": _snapshot_rows(probes, actual)}


def _snapshot_rows(probes, actual) -> list:
    """Per snapshot epoch e: actual and forecast PSNR at e + H - 1 (H = the snapshot interval)."""
    if not probes:
        return []
    snap = probes[0]
    rows = []
    for epoch, fc in zip(snap.epochs, snap.forecasts):
        end = epoch + len(fc) - 1
        if end < len(actual):
            rows.append({"epoch": int(epoch), "end": int(end), "start_psnr": float(actual[epoch]),
                         "actual": float(actual[end]), "forecast": float(fc[-1]),
                         "mid_actual": float(actual[epoch + len(fc) // 2]), "mid_forecast": float(fc[len(fc) // 2])})
    return rows


def _int_keys(r: dict) -> dict:
    """JSON turns the epoch keys into strings; turn them back."""
    for key in ("actual", "adam", "gd", "fit"):
        r[key] = {int(k): v for k, v in r[key].items()}
    return r


def _row(r: dict, at: int = 100) -> str:
    r = _int_keys(r)
    e = at if at in r["actual"] else max(r["actual"])
    a = r["actual"][e]
    err = lambda k: r[k][e] - a  # noqa: E731
    marks = " / ".join(f"{r['actual'][m]:.1f}" for m in sorted(r["actual"]))
    fmarks = " / ".join(f"{r['adam'][m]:.1f}" for m in sorted(r["adam"]))
    how = "eigh" if r["method"] == "eigenpairs" else f"Lanczos {r['steps']} (gap {r['lanczos_gap_db']:.2g} dB)"
    return (f"| {r['model']} | {r['target']} | {r['n']} | {how} | {marks} | {fmarks} | "
            f"{err('adam'):+.1f} | {err('gd'):+.1f} | {err('fit'):+.1f} (x{r['scale']:.3g}) | "
            f"{r['drift_l1']:.2f} / {r['trace_ratio']:.2f} | {r['forecast_s']:.0f} / {r['train_s']:.0f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["siren", "siren2"])
    ap.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    ap.add_argument("--epochs", type=int, default=None, help="Override the preset's 500 epochs.")
    ap.add_argument("--fit-epochs", type=int, default=20, help="Epochs the 'fit' calibration sees.")
    ap.add_argument("--steps", type=int, default=256, help="Lanczos steps above 4096 samples.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="Also write the raw results here.")
    ap.add_argument("--from-json", default=None, help="Print the tables of an earlier --json run (no compute).")
    ap.add_argument("--snapshots", type=int, default=0,
                    help="Also re-forecast from the NTK every this many epochs of the actual run (NTKSnapshot).")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args.child[0], args.child[1], args.epochs, args.fit_epochs, args.steps,
                                 args.snapshots)))
        return
    if args.from_json:
        with open(args.from_json) as fh:
            _tables(json.load(fh))
        return
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    results = []
    for target in args.targets:
        for model in args.models:
            cmd = [sys.executable, __file__, "--child", model, target, "--fit-epochs", str(args.fit_epochs),
                   "--steps", str(args.steps), "--threads", str(args.threads), "--snapshots", str(args.snapshots)]
            if args.epochs:
                cmd += ["--epochs", str(args.epochs)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"skipped {model} on {target}: {tail}", flush=True)
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"done {model} on {target}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}\n")
    _tables(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


def _tables(results: list) -> None:
    marks = "/".join(str(m) for m in (*MARKS, "last"))
    print(f"| model | target | N | forecast measure | actual PSNR at {marks} | forecast (adam) | "
          "error at 100: adam | gd | fit (scale) | S(k) drift L1 / trace ratio | forecast / train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(_row(r))
    snaps = [r for r in results if r.get("snapshots")]
    if snaps:
        print("\nRe-forecast from the NTK of the actual run at epoch e (Adam map, Adam's own second moment), "
              "H epochs ahead:")
        print("| model | target | e | PSNR at e | actual / forecast at e + H/2 | actual / forecast at e + H - 1 |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in snaps:
            for row in r["snapshots"]:
                print(f"| {r['model']} | {r['target']} | {row['epoch']} | {row['start_psnr']:.1f} | "
                      f"{row['mid_actual']:.1f} / {row['mid_forecast']:.1f} | {row['actual']:.1f} / {row['forecast']:.1f} |")


if __name__ == "__main__":
    main()
