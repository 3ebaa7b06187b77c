"""Import the results of the former ``benchmarks/paper_scale.py`` into a ``reproduce paper`` folder.

The paper-scale run of 2026-12-04 on one NVIDIA H200 (commit b889b77) wrote ``paper_scale.json``
reports, figure PNGs, a few figure data files and a log (``../shared/gpu-runs/2026-12-04-h200/``).
:func:`import_paper_scale_run` records every job that ran there as done in the manifest, under the
settings hash the current code gives the same settings, after checking that the settings are the
same: the figure sizes (``figures/sizes.py`` at that commit, read with git) and each Table 1 run's
stored configuration.  A job whose settings differ now is not imported (a note says so).  The
device profile of the time model is seeded from the reports (:func:`~.planner.h200_profile`), and
the throughput table of ``bench_training.py`` in the log is kept as a measurement.

    python -m spectral_probe.paperscale.legacy ../shared/gpu-runs/2026-12-04-h200 --commit b889b77
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from .manifest import Manifest, file_record, writer_lock

__all__ = ["import_paper_scale_run", "sizes_at_commit", "throughput_table"]


def sizes_at_commit(commit: str) -> dict | None:
    """``FIGURE_SIZES`` of ``spectral_probe/figures/sizes.py`` at ``commit`` (None without git)."""
    root = Path(__file__).resolve().parents[2]
    try:
        text = subprocess.run(["git", "-C", str(root), "show", f"{commit}:spectral_probe/figures/sizes.py"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if text.returncode != 0:
        return None
    namespace: dict = {}
    exec(compile(text.stdout, f"sizes.py@{commit}", "exec"), namespace)      # a data module: dicts only
    return namespace["FIGURE_SIZES"]


def throughput_table(log: str) -> list[list[str]]:
    """The first markdown table after ``bench_training.py`` in a run_on_gpu log: header row, then rows."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if "bench_training.py" in line and "start" in line), None)
    if start is None:
        return []
    rows = []
    for line in lines[start:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", " "} for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows


def _env(report: dict, commit: str) -> dict:
    env = report["environment"]
    return {"device": env["device_name"], "torch": env["torch"], "commit": commit, "date": report["started"][:10]}


def import_paper_scale_run(src: str | Path, out: str | Path = "figures/paper", *, commit: str,
                           log=print) -> list[str]:
    """Record the jobs of a ``paper_scale.py`` run folder as done in ``out`` (see the module docstring)."""
    from .jobs import canonical, catalogue, result_settings, settings_hash, table1_run
    from .planner import h200_profile
    from . import readme

    src, out = Path(src), Path(out)
    reports = [json.loads(p.read_text()) for p in sorted(src.glob("*.json"))]
    reports = [r for r in reports if r.get("script") == "benchmarks/paper_scale.py"]
    if not reports:
        raise ValueError(f"no paper_scale.py report (*.json) in '{src}'")
    then = sizes_at_commit(commit)
    if then is None:
        log(f"note: git cannot show {commit}; the figure sizes were not compared")
    from ..figures.sizes import FIGURE_SIZES

    jobs = {j.name: j for j in catalogue("paper", "tetris.wav", 5)}
    imported = []
    with writer_lock(out):
        manifest = Manifest.load(out)
        manifest.data.update(preset="paper", target="tetris.wav")
        device = _env(reports[0], commit)["device"]
        manifest.data["profiles"][device] = h200_profile(reports)
        for report in sorted(reports, key=lambda r: r["started"]):
            env = _env(report, commit)
            advanced = []
            for rec in report["jobs"]:
                if rec.get("status") != "ok":
                    continue
                job = jobs.get(rec["name"])
                if job is None:
                    continue
                if job.kind == "figure":
                    if then is not None and then["paper"].get(job.number) != FIGURE_SIZES["paper"].get(job.number):
                        log(f"note: {job.name}: figures/sizes.py changed since {commit}; not imported")
                        continue
                    files = {}
                    for name in (f"fig{job.number}.png", f"fig{job.number}.h5"):
                        if (src / name).exists():
                            shutil.copyfile(src / name, out / name)      # not copy2: the source is read-only
                            files[name] = file_record(out / name)
                    jrec = manifest.job(job.name, "figure", job.hash)
                    jrec.update(hash=job.hash, settings=canonical(job.settings), number=job.number, state="done", drawn={**env, "wall_s": round(rec["seconds"], 2)},
                                files=files)
                    jrec["parts"]["all"] = {
                        "hash": job.hash, "state": "done", "progress": 1.0, **env, "wall_s": round(rec["seconds"], 2),
                        "estimate_s": round(rec["estimate_s"], 2), "files": files,
                        "numbers": {"compute_s": round(rec["compute_s"], 2), "plot_s": round(rec["plot_s"], 2)},
                        "note": f"imported from benchmarks/paper_scale.py at {commit}"
                                + ("" if (src / f"fig{job.number}.h5").exists() else "; figure data not kept")}
                    advanced.append(f"{job.name}/all")
                else:
                    seed = int(rec["config"]["seed"])
                    part = next(p for p in job.parts if p.name == f"seed{seed}")
                    spec, _ = table1_run(job.file, job.model, "paper", seed)
                    theirs = settings_hash({"table1": _stored_settings(rec["config"])})
                    if theirs != part.hash or settings_hash({"table1": result_settings(spec)}) != part.hash:
                        log(f"note: {part.id}: its stored configuration differs from today's; not imported")
                        continue
                    jrec = manifest.job(job.name, "table1", job.hash)
                    jrec.update(hash=job.hash, settings=canonical(job.settings), file=job.file, model=job.model,
                                paper=numbers_paper(job))
                    numbers = {k: rec[k] for k in ("best_psnr", "best_epoch", "final_psnr", "zero_psnr", "epochs")}
                    numbers.update(train_s=round(rec["train_s"], 3), paper_psnr=rec.get("paper_psnr"))
                    jrec["parts"][part.name] = {
                        "hash": part.hash, "state": "done", "progress": 1.0, **env, "wall_s": round(rec["seconds"], 2),
                        "estimate_s": round(rec["estimate_s"], 2), "files": {}, "numbers": numbers,
                        "note": f"imported from benchmarks/paper_scale.py at {commit}; run file not kept"}
                    manifest.update_job_state(job.name, job.part_names, False)
                    advanced.append(part.id)
            imported += advanced
            manifest.data["runs"].append({
                "id": len(manifest.data["runs"]) + 1, "started": report["started"], **{k: env[k] for k in
                ("device", "torch", "commit")}, "budget_s": report["args"]["budget_s"],
                "used_s": round(report["total_s"], 2), "ended_by": "done (benchmarks/paper_scale.py)",
                "advanced": advanced, "wrote": []})
        log_file = src / "run_on_gpu.log"
        if log_file.exists():
            table = throughput_table(log_file.read_text())
            if table:
                env = _env(reports[0], commit)
                manifest.data["measurements"]["Training throughput, SIREN^2 4 x 222 on 150,000 samples"] = {
                    **env, "table": table,
                    "note": "bench_training.py --device cuda --size paper --epochs 100 --repeats 3; full float32 "
                            "(TF32 off); ratio = authors'-style loop time / route time (medians)."}
        manifest.save()
        readme.write(out, manifest, list(jobs.values()))
    return imported


def numbers_paper(job) -> list | None:
    """Table 1's (mean, std) of a cell."""
    from ..paper_data import table1_psnr

    return list((table1_psnr(job.file) or {}).get(job.model) or []) or None


def _stored_settings(config: dict) -> dict:
    from .jobs import TRAIN_RESULT_KEYS

    d = {k: v for k, v in config.items() if k != "notes"}
    d["train"] = {k: config["train"][k] for k in TRAIN_RESULT_KEYS}
    return d


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="folder of the paper_scale.py run (JSON reports, PNGs, data, run_on_gpu.log)")
    p.add_argument("--out", default="figures/paper")
    p.add_argument("--commit", required=True, help="commit the run used (its figure sizes are compared)")
    args = p.parse_args(argv)
    try:
        done = import_paper_scale_run(args.src, args.out, commit=args.commit)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"imported {len(done)} part(s): {', '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
