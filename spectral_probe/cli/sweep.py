"""``spectral-probe sweep``: many training runs (a grid), locally, on Slurm (submitit) or on dask."""

from __future__ import annotations

import click

from .options import command, device_option, overwrite_option, set_option, threads_option

__all__ = ["sweep", "start_over"]


def _setting(option, settings: dict, key: str, default=None):
    """A command-line option wins over the config's [sweep] table, which wins over the default."""
    if option is not None:
        return option
    return settings.get(key, default)


def _spec(config, grid_args, set_args):
    from ..sweep import SweepSpec, load_config, parse_grid_args, parse_set_args

    spec = load_config(config) if config else SweepSpec()
    return spec.with_overrides(grid=parse_grid_args(grid_args), fixed=parse_set_args(set_args))


def _resolve(settings: dict, kind, workers, scheduler, cluster, slurm_args, device, threads) -> dict:
    """Execution settings: command line, else [sweep], else defaults."""
    from ..sweep import parse_set_args

    scheduler = _setting(scheduler, settings, "scheduler")
    if scheduler is not None and kind is None:
        kind = "dask"                  # a scheduler address beats [sweep] executor
    kind = _setting(kind, settings, "executor", "local")
    device = _setting(device, settings, "device", "auto")
    slurm = {**settings.get("slurm", {}), **parse_set_args(slurm_args)}
    return {"kind": kind, "scheduler": scheduler, "device": device, "slurm": slurm,
            "cluster": _setting(cluster, settings, "cluster"),
            "threads": _setting(threads or None, settings, "threads", _default_threads(kind, slurm)),
            "workers": _setting(workers, settings, "workers", _default_workers(kind, device))}


def _default_threads(kind: str, slurm: dict) -> int:
    """``--threads 0`` (automatic): 1, or a Slurm job's ``cpus_per_task`` for the submitit executor."""
    cpus = slurm.get("cpus_per_task", 1) if kind == "submitit" else 1
    return cpus if isinstance(cpus, int) and cpus > 0 else 1


def _default_workers(kind: str, device: str) -> int | None:
    """Local runs that train on the GPU share it: one at a time unless --workers says otherwise."""
    if kind != "local" or device == "cpu":
        return None
    import torch

    return 1 if torch.cuda.is_available() else None


def _runs_here(opts: dict) -> bool:
    """True when the runs execute on this machine (so its device must be available)."""
    if opts["kind"] == "local":
        return True
    if opts["kind"] == "dask":
        return opts["scheduler"] is None                 # a local dask cluster
    import shutil

    return opts["cluster"] in ("local", "debug") or (opts["cluster"] in (None, "auto") and not shutil.which("srun"))


def start_over(plan, tasks=None) -> int:
    """``--overwrite``: remove the run files (and failure records) of ``tasks`` (default: the plan's finished
    and failed runs) so that they are trained again; returns how many were removed.

    Every such run is validated first, and a file another process is writing is refused, so nothing is
    removed for a command that cannot start.
    """
    from pathlib import Path

    from ..store.filelock import describe_holder
    from ..sweep import SweepValidationError, validate_runs
    from ..sweep.unit import failure_path

    todo = {t.run_id for t in plan.todo}
    tasks = [t for t in (plan.tasks if tasks is None else tasks) if t.run_id not in todo]
    problems = validate_runs(tasks, labels=list(plan.spec.grid)) if tasks else []
    if problems:
        raise SweepValidationError(problems, len(tasks))
    for task in tasks:
        holder = describe_holder(task.path) if Path(task.path).exists() else None
        if holder is not None:
            raise OSError(f"run file '{task.path}' is being written by {holder}; --overwrite cannot replace it")
    removed = 0
    for task in tasks:
        for path in (Path(task.path), failure_path(task.path)):
            if path.exists():
                path.unlink()
                removed += path.suffix == ".h5"
    return removed


def _describe(ds) -> str:
    return " ".join(f"{k}={v}" for k, v in ds.sizes.items())


def _dry_run(plan) -> None:
    todo = {t.run_id for t in plan.todo}
    for task in plan.tasks:
        params = " ".join(f"{k}={v}" for k, v in task.params.items())
        click.echo(f"{'todo' if task.run_id in todo else 'done'}  {task.run_id}  {params}")


@command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--grid", "grid_args", multiple=True, metavar="KEY=V1,V2",
              help="Sweep KEY over the comma-separated values (repeatable; replaces the config's list).")
@set_option("One value for every run (repeatable; replaces the config's [fixed]/[grid] value).", old=())
@click.option("--out", "outdir", type=click.Path(file_okay=False), default=None,
              help="Sweep folder (runs/, sweep.h5) [default: [sweep] outdir, else sweeps/<name>].")
@overwrite_option("the finished and failed runs already in --out (train them again)")
@click.option("--executor", "kind", type=click.Choice(["local", "submitit", "dask"]), default=None,
              help="local process pool (default), submitit (Slurm job array) or dask.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local processes (default: CPUs / threads) or local dask workers.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Address of a running dask scheduler (implies --executor dask).")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds to wait for the dask scheduler.")
@click.option("--cluster", type=click.Choice(["auto", "slurm", "local", "debug"]), default=None,
              help="submitit back end (auto: Slurm where srun exists, else local processes).")
@click.option("--slurm", "slurm_args", multiple=True, metavar="KEY=VALUE",
              help="submitit parameter, e.g. timeout_min=240 slurm_partition=gpu gpus_per_node=1 "
                   "slurm_array_parallelism=32 (repeatable).")
@device_option(default=None, help="auto, cpu, cuda or cuda:<i>, per worker [default: [sweep] device, else auto].")
@threads_option("each run", auto="0: automatic, the config's [sweep] threads, else 1 per run (a Slurm job's "
                                 "cpus_per_task with --executor submitit)")
@click.option("--record-every", type=click.IntRange(min=1), default=None,
              help="Epochs per append to each run file [default: 50].")
@click.option("--retry-failed/--skip-failed", default=None,
              help="Rerun runs that failed before (default) or leave them failed.")
@click.option("--batch-models", is_flag=True,
              help="Train runs of one shape together as one batched model, in this process (ignores "
                   "--executor/--workers; see spectral_probe.sweep.batched).")
@click.option("--dry-run", is_flag=True, help="List the runs (done/todo) and exit.")
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Check every run (arguments, ranges, targets readable, device) before starting any; "
                   "--no-validate when the targets exist only on the workers.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over runs.")
def sweep(config, grid_args, params, outdir, overwrite, kind, workers, scheduler, connect_timeout, cluster,
          slurm_args, device, threads, record_every, retry_failed, batch_models, dry_run, validate, progress):
    """Train every configuration of a grid, one run file each, and combine them into sweep.h5.

    CONFIG is a TOML file ([sweep], [fixed], [grid] tables; see analyses/*.toml);
    --grid/--set add to it or replace its keys.  Keys: model, target, preset,
    seed, epochs, width, depth, num_samples, offset, lr, lr_step, lr_gamma,
    batch_size, and model arguments (s0, s1, first_omega, sigma, ...: see
    `spectral-probe models`), which apply only to the models that take them.
    Finished runs are skipped, so rerunning an interrupted sweep resumes it;
    --overwrite trains them again.
    """
    from ..sweep import SweepValidationError, make_executor, plan_sweep

    spec = _spec(config, grid_args, params)
    settings = spec.settings
    opts = _resolve(settings, kind, workers, scheduler, cluster, slurm_args, device, threads)
    try:
        plan = plan_sweep(spec, _setting(outdir, settings, "outdir", f"sweeps/{spec.name}"), device=opts["device"],
                          threads=opts["threads"], record_every=_setting(record_every, settings, "record_every", 50),
                          retry_failed=_setting(retry_failed, settings, "retry_failed", True), validate=validate,
                          device_here=_runs_here(opts))
        if overwrite and not dry_run and plan.done:
            removed = start_over(plan)
            click.echo(f"--overwrite: removed {removed} finished run file(s) in {plan.outdir / 'runs'}")
            plan = plan_sweep(spec, plan.outdir, device=opts["device"], threads=opts["threads"],
                              record_every=plan.tasks[0].record_every, retry_failed=True, validate=False,
                              device_here=_runs_here(opts))
    except SweepValidationError as exc:
        for line in exc.lines():
            click.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None
    if dry_run:
        _dry_run(plan)
        click.echo(f"{len(plan.tasks)} runs: {plan.done} done, {len(plan.todo)} to run in {plan.outdir}")
        return
    executor = None
    if plan.todo and not batch_models:
        executor = make_executor(opts["kind"], workers=opts["workers"], threads=opts["threads"],
                                 scheduler=opts["scheduler"], connect_timeout=connect_timeout,
                                 cluster=opts["cluster"], folder=plan.outdir / "submitit", slurm=opts["slurm"])
    where = f" on {executor.description}" if executor else (" batched in this process" if batch_models else "")
    click.echo(f"sweep {plan.spec.name}: {len(plan.tasks)} runs, {plan.done} done, {len(plan.todo)} to run"
               f"{where} -> {plan.outdir}")
    report = _run(plan, executor, progress, batch_models)
    for rid, error in report.failed.items():
        click.echo(f"failed {rid}: {error}", err=True)
    click.echo(f"{report.total - len(report.failed)} of {report.total} runs finished; wrote {report.path} "
               f"({_describe(report.dataset)}); read it with spectral_probe.sweep.load_sweep")
    if report.failed:
        click.echo(f"error: {len(report.failed)} run(s) failed (recorded in sweep.h5 'status'/'error' and "
                   f"runs/<run_id>.error.json); rerun the same command to retry them", err=True)
        raise SystemExit(1)


def _run(plan, executor, progress: bool, batch_models: bool = False):
    from tqdm import tqdm

    from ..sweep import run_sweep

    bar = tqdm(total=len(plan.tasks), initial=plan.done, unit="run", disable=not (progress and plan.todo),
               dynamic_ncols=True)

    def on_result(summary: dict) -> None:
        bar.update(1)
        if summary["status"] == "ok":
            bar.set_postfix_str(f"{summary['run_id']} best {summary['best_psnr']:.2f} dB")
        else:
            bar.set_postfix_str(f"{summary['run_id']} {summary['status']}")

    try:
        if batch_models:
            from ..sweep.batched import run_sweep_batched

            return run_sweep_batched(plan, on_result=on_result)
        return run_sweep(plan, executor, on_result=on_result)
    except KeyboardInterrupt:
        bar.close()
        click.echo("interrupted; finished runs are kept: rerun the same command to resume", err=True)
        raise SystemExit(130) from None
    finally:
        bar.close()
