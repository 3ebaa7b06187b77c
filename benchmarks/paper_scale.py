"""Paper scale on one device: Figures 3-8, 13, 14 and a Table 1 subset, sized to a time budget.

What it runs (all settings are read from the package, never set here):

* the figure recipes (``spectral_probe.figures``: ``make_figure(n, preset)``, sizes in
  ``figures/sizes.py``), writing ``figN.png`` and ``figN.h5``;
* a Table 1 subset (arXiv 2509.09719, Table 1): tetris.wav and gt_bach.wav (the paper's
  bach.wav: psi 0.0737, Table 6) x SIREN, FINER, SIREN^2, one seed, through
  ``presets.make_run(model, target, preset)`` (paper: first 150,000 samples, 4 x 222, the
  preset's epochs, Sec. 5.1) and ``runs.train_to_file`` (one run file each).

First it measures the device: seconds per epoch of every distinct training shape in the plan
(a warm-up call that also pays ``torch.compile``, then a timed call).  Figure and run times are
predicted from those rates (figures without long training: the recipe's CPU estimate scaled by the
measured device/CPU ratio), printed, and the plan is cut to ``--budget-s``: figures keep their
settings; Table 1 runs are dropped from the end of their priority order (tetris SIREN^2, tetris
SIREN, bach FINER, bach SIREN^2, bach SIREN, tetris FINER), and the reduction is printed and
recorded.  During the run, a job whose estimate no longer fits the time left is skipped too.

``paper_scale.json`` in ``--out`` is rewritten after every job (atomically), so a timeout or kill
leaves what finished; ``summary.md`` holds the tables.  Exit code: 0 all planned jobs ran, 1 a job
failed, 2 bad input (missing data), 124 interrupted (SIGTERM/SIGINT).

    python benchmarks/paper_scale.py --preset paper --out paper_out --device cuda --data ../shared/data
    python benchmarks/paper_scale.py --preset test --out /tmp/ps --device cpu        # dry run, seconds
    python benchmarks/paper_scale.py --preset paper --device cpu --plan-only --calibration-epochs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path

#: Table 1 of arXiv 2509.09719 (peak PSNR in dB, mean of five trials; 4 x 222, 150,000 samples, 30,000 epochs)
PAPER_TABLE1 = {("tetris.wav", "siren"): 13.4, ("tetris.wav", "finer"): 13.6, ("tetris.wav", "siren2"): 62.7,
                ("gt_bach.wav", "siren"): 59.4, ("gt_bach.wav", "finer"): 64.5, ("gt_bach.wav", "siren2"): 60.5}
#: the order in which Table 1 runs are kept when the budget is short (the bottleneck pair first)
TABLE1_PRIORITY = [("tetris.wav", "siren2"), ("tetris.wav", "siren"), ("gt_bach.wav", "finer"),
                   ("gt_bach.wav", "siren2"), ("gt_bach.wav", "siren"), ("tetris.wav", "finer")]
#: the dry run's Table 1 sizes (``--preset test`` only; the training preset behind it is ``quick``)
TEST_TABLE1 = dict(num_samples=512, width=32, depth=3, epochs=30)
#: per-figure time for plotting and saving, added to every estimate (seconds)
FIGURE_OVERHEAD_S = 5.0
#: estimates are multiplied by this before they are compared with the budget
SAFETY = 1.15
JOB_FILE = "paper_scale.json"


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived (e.g. the command's timeout)."""


def _on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


# --------------------------------------------------------------------------- workloads

def table1_jobs(preset: str, runs, cuda_graphs: bool = False) -> list[dict]:
    from spectral_probe.training.presets import make_run

    jobs = []
    for target, model in runs:
        extra = {}
        if preset == "test":
            extra = dict(TEST_TABLE1, offset=_middle(target, TEST_TABLE1["num_samples"]))
        spec, loaded = make_run(model, target, "quick" if preset == "test" else "paper", seed=0,
                                train_overrides={"cuda_graphs": cuda_graphs}, **extra)
        jobs.append({"name": f"table1/{Path(target).stem}/{model}", "kind": "table1", "model": model,
                     "target": target, "spec": spec, "loaded": loaded,
                     "train": [(_shape(spec, loaded), spec.train.epochs, spec, loaded)]})
    return jobs


def _shape(spec, loaded) -> tuple:
    """Cost key of a run: activation family, samples, input dims, width, depth, compiled."""
    family = {"siren2": "siren"}.get(spec.model, spec.model)
    return (family, loaded.n, loaded.spatial_dims, spec.model_kwargs["width"], spec.model_kwargs["depth"],
            bool(spec.train.compile))


def figure_overrides(number: str, preset: str, target: str) -> dict:
    """Size overrides of a figure: none at the paper preset; at ``test``, a crop from the middle of an audio file.

    The test preset's crops are short (2^10 samples) and the paper's files start silent (tetris.wav's first
    2^10 samples are zero), so the dry run crops from the middle of the file; the paper preset crops the
    first 150,000 samples as the paper does (Sec. 5.1) and is never overridden.
    """
    from spectral_probe.figures.sizes import figure_sizes

    if preset != "test" or "offset" not in figure_sizes(number, preset) or target.startswith("synthetic:"):
        return {}
    return {"offset": _middle(target, figure_sizes(number, preset).get("num_samples") or
                              figure_sizes(number, preset).get("n") or 0)}


def _middle(target: str, length: int) -> int:
    from spectral_probe.signals import load_target

    return max(0, load_target(target).n // 2 - int(length) // 2)


def figure_training(number: str, preset: str, target: str) -> list[tuple]:
    """The training runs of a figure, as the recipes call make_run: [(shape, epochs, spec, loaded)].

    Mirrors ``figures.common.probed_run`` (Figs 3, 14), ``figures.fig4`` (one run per Eqn 5
    target) and ``figures.fig6`` (grid + SIREN per target).  Other figures train nothing.
    """
    from spectral_probe.figures.common import audio_offset, audio_target_spec, image_target, training_preset
    from spectral_probe.figures.sizes import figure_sizes
    from spectral_probe.training.presets import make_run

    tp = training_preset(preset)
    over = figure_overrides(number, preset, target)
    if number in ("3", "14"):
        sz = figure_sizes(number, preset, **over)
        spec_name = audio_target_spec(target)
        out = []
        for model in (("siren",) if number == "3" else ("siren", "siren2")):
            if number == "14" and model == "siren" and figure_sizes("3", preset, **figure_overrides(
                    "3", preset, target)) == sz:
                continue         # the SIREN run is cached from Fig 3 in the same process
            spec, loaded = make_run(model, spec_name, tp, num_samples=sz["num_samples"],
                                    **audio_offset(spec_name, sz.get("offset", 0)), width=sz["width"],
                                    depth=sz["depth"], epochs=sz["epochs"])
            out.append((_shape(spec, loaded), spec.train.epochs, spec, loaded))
        return out
    if number == "4":
        sz = figure_sizes("4", preset)
        out = []
        for band in ("low", "high"):            # fig4.BANDS: the Eqn 5 targets
            spec, loaded = make_run("siren", f"synthetic:{band}", tp, num_samples=sz["n"], width=sz["width"],
                                    depth=sz["depth"], epochs=sz["epochs"])
            out.append((_shape(spec, loaded), spec.train.epochs, spec, loaded))
        return out
    if number == "6":
        sz = figure_sizes("6", preset, **over)
        runs = len(sz["factors"]) ** 2
        spec_name = audio_target_spec(target)
        out = []
        for loaded_target, epochs, crop in (
                (spec_name, sz["audio_epochs"], {"num_samples": sz["n"], **audio_offset(spec_name, sz["offset"])}),
                (image_target(target, sz["image_size"]), sz["image_epochs"], {})):
            for model, count in (("siren2", runs), ("siren", 1)):
                spec, loaded = make_run(model, loaded_target, tp, width=sz["width"], depth=sz["depth"],
                                        epochs=epochs, **crop)
                out += [(_shape(spec, loaded), spec.train.epochs, spec, loaded)] * count
        return out
    return []


def figure_jobs(numbers, preset: str, target: str) -> list[dict]:
    jobs = []
    for number in numbers:
        try:
            train, note = figure_training(number, preset, target), ""
        except (KeyError, TypeError) as exc:     # the recipe's sizes changed shape: fall back to its estimate
            train, note = [], f"workload not derived ({type(exc).__name__}: {exc}); scaled CPU estimate"
        jobs.append({"name": f"fig{number}", "kind": "figure", "number": number, "train": train, "note": note})
    return jobs


# --------------------------------------------------------------------------- throughput model

def calibrate(jobs, device, epochs: int, log) -> dict:
    """Seconds per epoch of every distinct training shape, measured on ``device``."""
    from spectral_probe.training import fit

    rates = {}
    for job in jobs:
        for shape, _, spec, loaded in job["train"]:
            if shape in rates:
                continue
            t0 = time.perf_counter()
            fit(spec.build_model(), loaded, spec.train, epochs=2, device=str(device), progress=False)
            first = time.perf_counter() - t0
            result = fit(spec.build_model(), loaded, spec.train, epochs=epochs, device=str(device), progress=False)
            rates[shape] = {"seconds_per_epoch": result.wall_time / result.epochs_run, "first_call_s": first,
                            "epochs_timed": result.epochs_run}
            log(f"  {_shape_label(shape)}: {1e3 * rates[shape]['seconds_per_epoch']:.2f} ms/epoch "
                f"(warm-up incl. compile {first:.1f} s)")
    return rates


def _shape_label(shape) -> str:
    family, n, dims, width, depth, compiled = shape
    return f"{family} N={n} ({dims}-D) {depth}x{width}{' compiled' if compiled else ''}"


def _cpu_model(shape) -> float:
    """CPU seconds per epoch of ``shape`` in the package's model (``presets.CPU_SECONDS_PER_UNIT``)."""
    from spectral_probe.training.presets import CPU_SECONDS_PER_UNIT

    _, n, _, width, depth, _ = shape
    return n * width * width * depth * CPU_SECONDS_PER_UNIT


def device_ratio(rates: dict) -> float:
    """Measured seconds over the CPU model for the largest measured shape (the least launch-bound one)."""
    if not rates:
        return 1.0
    shape = max(rates, key=_cpu_model)
    return rates[shape]["seconds_per_epoch"] / _cpu_model(shape)


def estimate(job, rates, ratio, preset) -> float:
    """Measured training time, plus the rest of a figure's CPU estimate scaled by ``ratio``, plus overhead."""
    seconds = sum(epochs * rates[shape]["seconds_per_epoch"] for shape, epochs, _, _ in job["train"])
    if job["kind"] == "table1":
        return seconds + 1.0
    from spectral_probe.figures import get_recipe

    cpu_train = sum(epochs * _cpu_model(shape) for shape, epochs, _, _ in job["train"])
    rest = max(0.0, get_recipe(job["number"]).estimate(preset) - cpu_train)
    return seconds + rest * ratio + FIGURE_OVERHEAD_S


def plan(jobs, budget_left: float) -> tuple[list[dict], list[str]]:
    """Keep figures in paper order while they fit, then Table 1 runs in priority order."""
    reduced, used = [], 0.0
    for job in jobs:
        need = job["estimate_s"] * SAFETY
        if used + need <= budget_left:
            job["status"], used = "planned", used + need
        else:
            job["status"] = "skipped"
            job["reason"] = (f"estimated {job['estimate_s']:.0f} s (x{SAFETY} margin) does not fit the "
                             f"{max(budget_left - used, 0):.0f} s left of the budget")
            what = "Table 1 run" if job["kind"] == "table1" else "figure"
            reduced.append(f"{what} {job['name']} not run: {job['reason']}")
    return jobs, reduced


# --------------------------------------------------------------------------- running

def run_figure(job, args, out: Path) -> dict:
    from spectral_probe.figures import make_figure

    res = make_figure(job["number"], args.preset, target=args.target, out=out, formats=("png",), dpi=args.dpi,
                      device=args.device, seed=args.seed, **figure_overrides(job["number"], args.preset, args.target))
    return {"compute_s": res.compute_seconds, "plot_s": res.plot_seconds,
            "outputs": [str(p.relative_to(out)) for p in [*res.figure_paths, res.data_path]]}


def run_table1(job, args, out: Path) -> dict:
    from spectral_probe.training.runs import train_to_file

    spec, loaded = job["spec"], job["loaded"]
    spec.train = type(spec.train)(**{**spec.train.to_dict(), "device": args.device})
    path = out / "table1" / f"{Path(job['target']).stem}_{job['model']}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    _, result = train_to_file(spec, loaded, path, overwrite=True, record_every=500)
    return {"outputs": [str(path.relative_to(out))], "best_psnr": result.best_psnr, "best_epoch": result.best_epoch,
            "final_psnr": result.final_psnr, "zero_psnr": result.zero_psnr, "epochs": result.epochs_run,
            "train_s": result.wall_time, "epochs_per_second": result.epochs_per_second,
            "paper_psnr": PAPER_TABLE1.get((job["target"], job["model"])), "notes": result.notes,
            "config": spec.to_dict()}


def _public(job) -> dict:
    keep = ("name", "kind", "status", "estimate_s", "reason", "seconds", "error", "traceback", "note")
    out = {k: job[k] for k in keep if k in job}
    out.update(job.get("result", {}))
    return out


def write_report(report: dict, out: Path) -> None:
    report["jobs"] = [_public(j) for j in report.pop("_jobs", [])] or report.get("jobs", [])
    tmp = out / f".{JOB_FILE}.tmp"
    tmp.write_text(json.dumps(report, indent=1, default=str))
    os.replace(tmp, out / JOB_FILE)
    (out / "summary.md").write_text(summary_markdown(report))


def summary_markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"# paper_scale ({report['args']['preset']} preset)", "",
             f"Device: {env['device_name']}; torch {env['torch']}; {env['precision']}; "
             f"started {report['started']}; total {report.get('total_s', 0):.0f} s"
             f" of a {report['args']['budget_s']:.0f} s budget; ran to its end: {report.get('finished', False)}; "
             f"every job ran: {report.get('all_jobs_ok', False)}.", ""]
    if report.get("reduced"):
        lines += ["Reduced to fit the budget:", ""] + [f"* {r}" for r in report["reduced"]] + [""]
    lines += ["| job | status | estimate s | wall s | outputs |", "| --- | --- | --- | --- | --- |"]
    for j in report["jobs"]:
        lines.append(f"| {j['name']} | {j['status']} | {j.get('estimate_s', 0):.0f} | {j.get('seconds', 0):.1f} | "
                     f"{', '.join(j.get('outputs', [])) or j.get('reason', j.get('error', ''))} |")
    rows = [j for j in report["jobs"] if j["kind"] == "table1" and "best_psnr" in j]
    if rows:
        lines += ["", "| Table 1 run | epochs | peak PSNR (ours) | paper (Table 1) | final PSNR | zero-output floor |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for j in rows:
            paper = f"{j['paper_psnr']:.1f}" if j.get("paper_psnr") is not None else "-"
            lines.append(f"| {j['name']} | {j['epochs']} | {j['best_psnr']:.2f} | {paper} | {j['final_psnr']:.2f} | "
                         f"{j['zero_psnr']:.2f} |")
    return "\n".join(lines) + "\n"


def environment(device) -> dict:
    import torch

    from spectral_probe.torch_settings import precision_settings

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device), "device_name": name,
            "precision": precision_settings(), "python": platform.python_version(), "host": platform.node()}


# --------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=("paper", "test"), default="paper")
    p.add_argument("--out", default="paper_scale_out")
    p.add_argument("--device", default="auto")
    p.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget of the whole run (9 min)")
    p.add_argument("--data", default=None, help="data folder (audio/, images/); default $SPECTRAL_PROBE_DATA")
    p.add_argument("--only", choices=("figs", "table1"), default=None)
    p.add_argument("--figures", default="all", help="comma-separated figure numbers or 'all'")
    p.add_argument("--runs", default=None, help="Table 1 runs TARGET:MODEL,... (default: the six, by priority)")
    p.add_argument("--target", default="tetris.wav", help="audio file of Figs 3, 6, 14 (the paper: tetris.wav)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dpi", type=int, default=80)
    p.add_argument("--calibration-epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--plan-only", action="store_true", help="measure, print the plan and estimate, run nothing")
    p.add_argument("--force", action="store_true", help="run every job whatever the budget says")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="Table 1 runs with TrainConfig(cuda_graphs=True) (figures use their recipes' settings)")
    return p.parse_args(argv)


def _check_inputs(args) -> tuple[list[str], list[tuple[str, str]]]:
    """Figures and runs to do; ValueError (one line) for missing data or bad options, before any work."""
    from spectral_probe.figures import expand_figures
    from spectral_probe.signals.io import DATA_ENV, resolve_data_path
    from spectral_probe.validation import nonnegative_int

    nonnegative_int(args.threads, "--threads")
    if args.data is not None:
        if not Path(args.data).is_dir():
            raise ValueError(f"--data {args.data!r} is not a folder")
        os.environ[DATA_ENV] = str(Path(args.data).resolve())
    numbers = [] if args.only == "table1" else expand_figures(args.figures.split(","))
    runs = [] if args.only == "figs" else TABLE1_PRIORITY
    if args.runs and args.only != "figs":
        runs = []
        for item in args.runs.split(","):
            target, _, model = item.partition(":")
            if (target, model) not in PAPER_TABLE1:
                raise ValueError(f"unknown Table 1 run {item!r}; choose from "
                                 f"{', '.join(f'{t}:{m}' for t, m in TABLE1_PRIORITY)}")
            runs.append((target, model))
    needed = sorted({t for t, _ in runs} | ({args.target} if set(numbers) & {"3", "6", "14"} else set()))
    for name in needed:
        if not name.startswith("synthetic:"):
            try:
                resolve_data_path(name)
            except FileNotFoundError:
                raise ValueError(f"data file {name} not found; put it in DIR/audio and pass --data DIR or set "
                                 f"{DATA_ENV} (now {os.environ.get(DATA_ENV, 'unset')!r})") from None
    if "6" in numbers:
        try:
            import skimage.data  # noqa: F401 - Fig 6's image is scikit-image's camera
        except ImportError:
            raise ValueError("figure 6 needs scikit-image (its camera image): pip install scikit-image") from None
    return numbers, runs


def main(argv=None) -> int:
    """Run the script; ``$SPECTRAL_PROBE_DATA`` (set from ``--data``) is restored on return."""
    saved = os.environ.get("SPECTRAL_PROBE_DATA")
    try:
        return _main(argv)
    finally:
        if saved is None:
            os.environ.pop("SPECTRAL_PROBE_DATA", None)
        else:
            os.environ["SPECTRAL_PROBE_DATA"] = saved


def _main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        numbers, runs = _check_inputs(args)
        from spectral_probe.devices import resolve_device

        device = resolve_device(args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch

    from spectral_probe.figures import clear_run_cache
    from spectral_probe.torch_settings import torch_settings

    args.device = str(device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    # full float32: the paper's 60 dB PSNRs need ~1e-3 relative accuracy; both settings restored at the end
    with torch_settings(threads=args.threads, precision="highest"):
        report = {"script": "benchmarks/paper_scale.py", "args": vars(args), "environment": environment(device),
                  "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "finished": False}
        log(f"paper_scale: preset {args.preset} on {report['environment']['device_name']}, torch {torch.__version__}, "
            f"budget {args.budget_s:.0f} s; figures {', '.join(numbers) or '-'}; Table 1 runs {len(runs)}")
        jobs: list[dict] = []
        try:
            jobs = figure_jobs(numbers, args.preset, args.target) + table1_jobs(args.preset, runs, args.cuda_graphs)
            log("throughput model (measured on this device):")
            rates = calibrate(jobs, device, args.calibration_epochs, log)
            ratio = device_ratio(rates)
            report["calibration"] = {_shape_label(k): v for k, v in rates.items()}
            report["device_over_cpu_model"] = ratio
            for job in jobs:
                job["estimate_s"] = estimate(job, rates, ratio, args.preset)
            spent = time.perf_counter() - start
            jobs, reduced = plan(jobs, float("inf") if args.force else args.budget_s - spent)
            report["reduced"], report["calibration_s"] = reduced, spent
            total = sum(j["estimate_s"] for j in jobs)
            kept = sum(j["estimate_s"] for j in jobs if j["status"] == "planned")
            log(f"estimate: {total:.0f} s for everything, {kept:.0f} s for the plan (+{spent:.0f} s measuring); "
                f"device/CPU-model time ratio {ratio:.3g}")
            for job in jobs:
                log(f"  {job['name']:<24} {job['estimate_s']:8.0f} s  {job['status']}"
                    + (f" ({job['note']})" if job.get("note") else ""))
            for line in reduced:
                log(f"reduced: {line}")
            write_report(dict(report, _jobs=jobs), out)
            if not args.plan_only:
                status = _execute(jobs, report, args, out, start, log)
        except Interrupted as exc:
            log(f"interrupted ({exc}); results so far are in {out / JOB_FILE}")
            status = 124
        except Exception as exc:  # noqa: BLE001 - set-up failed (a recipe, a target): say so, keep the record
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            report["error"] = f"{type(exc).__name__}: {exc}"
            report["traceback"] = "\n".join(traceback.format_exc().splitlines()[-15:])
            status = 1
        finally:
            clear_run_cache()
            for s, h in old.items():
                signal.signal(s, h)
            report["total_s"] = time.perf_counter() - start
            report["finished"] = status in (0, 1) and not args.plan_only      # ran to its end
            report["all_jobs_ok"] = bool(jobs) and all(j.get("status") == "ok" for j in jobs)
            write_report(dict(report, _jobs=jobs), out)
    log(f"wrote {out / JOB_FILE} and {out / 'summary.md'} ({report['total_s']:.0f} s)")
    return status


def _execute(jobs, report, args, out: Path, start: float, log) -> int:
    status = 0
    for job in jobs:
        if job["status"] != "planned":
            continue
        left = args.budget_s - (time.perf_counter() - start)
        if not args.force and job["estimate_s"] > left:
            job["status"], job["reason"] = "skipped", f"only {left:.0f} s of the budget left at its turn"
            report["reduced"].append(f"{job['name']} not run: {job['reason']}")
            log(f"skip {job['name']}: {job['reason']}")
            continue
        log(f"{job['name']} (estimate {job['estimate_s']:.0f} s) ...")
        job["status"] = "running"
        t0 = time.perf_counter()
        try:
            job["result"] = (run_figure if job["kind"] == "figure" else run_table1)(job, args, out)
            job["status"] = "ok"
        except Interrupted:
            job["status"], job["seconds"] = "interrupted", time.perf_counter() - t0
            raise
        except Exception as exc:  # noqa: BLE001 - one failed job must not lose the others
            job["status"], job["error"] = "failed", f"{type(exc).__name__}: {exc}"
            job["traceback"] = "\n".join(traceback.format_exc().splitlines()[-15:])
            status = 1
        job["seconds"] = time.perf_counter() - t0
        extra = ""
        if "best_psnr" in job.get("result", {}):
            r = job["result"]
            extra = f"; peak {r['best_psnr']:.2f} dB (paper {r['paper_psnr']}), final {r['final_psnr']:.2f} dB"
        log(f"  {job['status']} in {job['seconds']:.1f} s{extra}" + (f": {job['error']}" if "error" in job else ""))
        write_report(dict(report, _jobs=jobs), out)
    return status


if __name__ == "__main__":
    sys.exit(main())
