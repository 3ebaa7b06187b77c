"""Running one unit of ``reproduce paper`` and recording it: files, manifest, time model, drawing figures."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from .manifest import file_record, now
from .planner import MARGIN, ProcessState, TimeModel

__all__ = ["Interrupted", "run_unit", "draw_ready"]


def _secs(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


class Interrupted(Exception):
    """SIGTERM or SIGINT outside a training loop (or a second one)."""


def _record_files(out: Path, paths, work=()) -> dict:
    """``{relative path: {"bytes", "sha256", "kind"}}``: ``result`` files, and ``work`` files (run files with
    checkpoints: never in git, but carried to the next machine while their part is partial)."""
    files = {}
    for kind, group in (("result", paths), ("work", work)):
        for p in group:
            p = Path(p)
            key = str(p.resolve().relative_to(out.resolve()))
            if p.is_file() and key not in files:
                files[key] = {**file_record(p), "kind": kind}
    return files


def _snapshot(folder: Path) -> dict:
    """``{file: (mtime_ns, size)}`` of the files under ``folder``."""
    if not folder.is_dir():
        return {}
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def _touched(folder: Path, before: dict) -> list[Path]:
    """Files under ``folder`` that are new or changed since ``before`` (a part's run files, whatever their names)."""
    return sorted(p for p, state in _snapshot(folder).items() if before.get(p) != state)


def run_unit(unit, est, manifest, jobs, model, process, env, report, run, out, preset, target, device, dpi,
              deadline, sig, log) -> None:
    from . import figparts
    from .table1 import compute_unit

    t0 = time.time()
    job = unit.job
    timer = None
    sig.training = unit.resumable or unit.kind == "table1"
    results, files, work, drawn = [], [], [], False
    try:
        if unit.kind == "table1":
            rows, timer, work = compute_unit(unit, preset, out, device=device, callbacks=[deadline])
            results = [(part, done, progress, numbers) for part, done, progress, numbers in rows]
        else:
            before = _snapshot(out / f"fig{job.number}.parts")
            outcome = figparts.compute_part(job, unit.parts[0], preset, target, out, device=device,
                                            callbacks=[deadline], dpi=dpi)
            results = [(unit.parts[0], outcome.complete, outcome.progress, {})]
            files, drawn = outcome.files, outcome.drawn
            work = _touched(out / f"fig{job.number}.parts", before)
    except (Interrupted, KeyboardInterrupt) as exc:
        sig.name = sig.name or type(exc).__name__
        log(f"  interrupted in {unit.name}; its checkpoints are kept")
        for part in unit.parts:
            rec = manifest.part(job.name, part.name)
            rec["note"] = f"interrupted ({sig.name}) {now()}"
            if job.kind == "figure":
                rec["progress"] = figparts.progress(job, part, preset, target, out, rec.get("progress", 0.0))
                rec["state"] = "partial" if rec["progress"] > 0 else rec.get("state", "todo")
        raise Interrupted(sig.name) from None
    except Exception as exc:  # noqa: BLE001 - one failed part must not lose the others
        first = (str(exc).splitlines() or [""])[0]
        for part in unit.parts:
            rec = manifest.part(job.name, part.name)
            rec.update(state="failed", error=f"{type(exc).__name__}: {first}",
                       traceback="\n".join(traceback.format_exc().splitlines()[-12:]), **env)
            report.failed[part.id] = f"{type(exc).__name__}: {first}"
        manifest.update_job_state(job.name, job.part_names, job.kind == "figure")
        log(f"  failed: {type(exc).__name__}: {first}")
        return
    finally:
        sig.training = False
    wall = time.time() - t0
    _learn(unit, model, process, timer, wall)
    recorded = _record_files(out, files, [] if drawn else work)   # a drawn one-part figure: its figure files
    for part, done, progress, numbers in results:
        rec = manifest.part(job.name, part.name)
        rec.update(state="done" if done else "partial", progress=round(min(1.0, progress), 6), **env,
                   wall_s=round(rec.get("wall_s", 0.0) + wall, 2), estimate_s=round(est, 2))
        rec.setdefault("estimates", []).append([round(est, 2), round(wall, 2), round(unit.progress, 6)])
        rec["files"] = recorded
        if numbers:
            rec["numbers"] = numbers
        if unit.k > 1 and not done and work:
            rec["batch"] = str(Path(work[0]).resolve().relative_to(out.resolve()))
        elif done:
            rec.pop("batch", None)
        rec.pop("error", None)
        rec.pop("traceback", None)
        report.advanced.append(part.id)
        run["advanced"].append(part.id)
    run["wrote"] += sorted(recorded)
    if drawn:
        manifest.jobs[job.name]["drawn"] = {**env, "wall_s": round(wall, 2)}
        manifest.jobs[job.name]["files"] = recorded
    state = manifest.update_job_state(job.name, job.part_names, job.kind == "figure")
    extra = ""
    if unit.kind == "table1":
        extra = "; " + ", ".join(f"{p.name} peak {n['best_psnr']:.2f} dB" for p, _, _, n in results)
    log(f"  {'done' if all(r[1] for r in results) else 'partial'} in {wall:.1f} s (estimate {_secs(est)}, "
        f"progress {min(r[2] for r in results):.0%}){extra}; {job.name}: {state}")


def _learn(unit, model: TimeModel, process: ProcessState, timer, wall: float) -> None:
    """Update the device profile from one unit: rates and compile times of its runs, its overhead."""
    training = 0.0
    runs = timer.runs if timer is not None else []
    if runs:
        for r in runs:
            term = process.compile_term(r.shape) if r.shape else None
            if term:
                model.observe_compile(term, r.first_epoch_s)
            if r.shape and r.epochs > 1:
                model.observe_rate(r.shape, r.k, (r.seconds - r.first_epoch_s) / (r.epochs - 1))
            if r.shape:
                process.saw(r.shape)
            training += r.seconds
    else:
        training = model.training_seconds(unit)
        for w in unit.work:
            training += model.compile_cost(process.compile_term(w.shape))
            process.saw(w.shape)
    model.observe_overhead(unit.kind, wall - training)


def undrawn(manifest, jobs) -> list:
    """Figure jobs whose parts are all done but which are not drawn yet (their drawing is work left)."""
    out = []
    for job in jobs:
        rec = manifest.jobs.get(job.name, {})
        if job.kind != "figure" or rec.get("drawn") or rec.get("state") == "done":
            continue
        if all(rec.get("parts", {}).get(p, {}).get("state") == "done" for p in job.part_names):
            out.append(job)
    return out


def draw_ready(manifest, jobs, model, env, report, run, out, preset, target, dpi, end, log) -> None:
    """Draw every figure whose parts are all done and that is not drawn yet (time allowing)."""
    from . import figparts

    for job in undrawn(manifest, jobs):
        rec = manifest.jobs[job.name]
        need = model.overhead(f"fig{job.number}-draw")
        if time.time() + need * MARGIN > end:
            log(f"{job.name}: every part is done; drawing it needs ~{need:.0f} s, left for the next run")
            continue
        t0 = time.time()
        try:
            files = figparts.draw(job, preset, target, out, dpi)
        except Exception as exc:  # noqa: BLE001
            report.failed[f"{job.name}/draw"] = f"{type(exc).__name__}: {exc}"
            log(f"{job.name}: drawing failed: {type(exc).__name__}: {exc}")
            continue
        wall = time.time() - t0
        model.observe_overhead(f"fig{job.number}-draw", wall)
        rec["drawn"] = {**env, "wall_s": round(wall, 2)}
        rec["files"] = _record_files(out, files)
        run["wrote"] += sorted(rec["files"])
        manifest.update_job_state(job.name, job.part_names, True)
        log(f"{job.name}: drawn in {wall:.1f} s")
        manifest.save()
