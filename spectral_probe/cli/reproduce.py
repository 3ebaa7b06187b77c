"""``spectral-probe reproduce table6|table1``: the paper's tables beside ours.

Exit codes: 0 when every row agrees (table6) or every run finished (table1); 1 when a row is a
mismatch or unreadable (table6) or a run failed (table1); 2 for bad input (no data folder, no
Table 6 file in it, an unknown table, model or file), with a one-line ``error: ...``.
"""

from __future__ import annotations

import click

from .options import device_option, overwrite_option

__all__ = ["reproduce"]


class _Tables(click.Group):
    """A group whose unknown subcommand is a one-line user error (exit 2)."""

    def resolve_command(self, ctx: click.Context, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from ..reproduce import TABLES

            raise ValueError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")
        return super().resolve_command(ctx, args)


@click.group(cls=_Tables)
def reproduce():
    """Reproduce the paper's Table 6 (psi, s0, s1), Table 1 (audio fitting PSNR), or the whole paper at scale."""


def _fmt(value: float, digits: int) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


@reproduce.command("table6")
@click.option("--data", type=click.Path(), default=None,
              help="Folder holding the files (and/or audio/, images/); default: $SPECTRAL_PROBE_DATA.")
def table6(data):
    """psi (Eqn 10), s0, s1 (Eqn 11) of every audio/image file of Table 6 found, beside the paper's.

    Audio: first 150,000 samples (whole file when shorter), channels averaged; images at their own
    resolution (Supplementary Sec C).  A row is a mismatch when psi differs in the 4th decimal, s0
    by 1 or more (the paper truncates it) or s1 in the 2nd decimal.  Exit 1 on any mismatch or
    unreadable file, 2 when no Table 6 file is found.
    """
    from ..paper_data import CITATION
    from ..reproduce import reproduce_table6

    results, missing = reproduce_table6(data)
    click.echo(f"Table 6 of {CITATION}")
    click.echo("| file (paper name) | path | psi ours / paper | s0 ours / paper | s1 ours / paper | status |")
    click.echo("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        click.echo(f"| {r.row.file} | {r.path} | {_fmt(r.psi, 4)} / {r.row.psi:.4f} | {_fmt(r.s0, 1)} / "
                   f"{r.row.s0:g} | {_fmt(r.s1, 3)} / {r.row.s1:g} | {r.status} |")
    if missing:
        click.echo(f"not found: {', '.join(r.file for r in missing)}")
    bad = [r for r in results if not r.ok]
    click.echo(f"{len(results) - len(bad)} of {len(results)} file(s) reproduce Table 6")
    if bad:
        raise SystemExit(1)


def _split(values) -> list[str]:
    """``("a,b", "c")`` -> ``["a", "b", "c"]``."""
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]


def _default_files(data) -> list[str]:
    from ..paper_data import TABLE1_FILES, find_table6_files
    from ..reproduce import data_folders

    found, _ = find_table6_files(data_folders(data))
    files = [str(path) for row, path in found if row.file in TABLE1_FILES]
    if not files:
        raise ValueError("no Table 1 clip found in the data folder; pass --files or --data")
    return files


def _check_paper_on_cpu(preset: str, files, models, seeds: int, epochs, device: str, yes: bool) -> None:
    from ..devices import resolve_device
    from ..training.presets import estimated_seconds, make_run
    from .figure import human_seconds

    if preset != "paper" or resolve_device(device).type != "cpu":
        return
    total = 0.0
    for f in files:
        for m in models:
            spec, target = make_run(m, f, preset, epochs=epochs)
            total += seeds * estimated_seconds(spec, target.n)
    message = f"--preset paper on a CPU would take about {human_seconds(total)} (rough estimate); it is meant for a GPU"
    if not yes:
        raise ValueError(f"{message}; pass --yes to run anyway, or use --preset quick")
    click.echo(f"warning: {message}; continuing (--yes)", err=True)


@reproduce.command("table1")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True,
              help="paper: Table 1's protocol (150,000 samples, 30,000 epochs, Table 1's widths; GPU); "
                   "quick: 2^14 samples, 4x128, 500 epochs (CPU minutes; not comparable number for number).")
@click.option("--files", multiple=True,
              help="Audio files, comma-separated or repeated; default: every Table 1 clip in --data.")
@click.option("--data", type=click.Path(), default=None, help="Folder searched for the default files.")
@click.option("--models", multiple=True,
              help="Architectures, comma-separated or repeated: siren, finer, wire, relu_pe, siren_rff, finerpp, "
                   "siren2 [default: all seven].")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Trials per (file, model): seeds 0..K-1 (the paper: five).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the preset's epochs.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="First sample of every crop (the paper: 0).")
@click.option("--omega-rule", type=click.Choice(["sec5", "all"]), default="sec5", show_default=True,
              help="First-layer omega x 100 for every model but SIREN^2 (Sec 5) or for all of them (Sec 5.1).")
@click.option("--out", "outdir", type=click.Path(file_okay=False), default=None,
              help="Sweep folder (resumable) [default: sweeps/table1-<preset>].")
@overwrite_option("the finished and failed runs already in --out (train them again)")
@device_option()
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local processes [default: CPUs].")
@click.option("--yes", is_flag=True, help="Run --preset paper on a CPU despite the estimated time.")
def table1(preset, files, data, models, seeds, epochs, offset, omega_rule, outdir, overwrite, device, workers, yes):
    """Train Table 1's grid (files x models x seeds) and print mean +- std of the peak PSNR beside the paper's.

    Runs go through the sweep machinery: one run file each in --out, finished runs are reused.
    Exit 1 if a run failed.
    """
    from ..paper_data import CITATION, TABLE1_ARCHITECTURES, TABLE1_MODELS
    from ..reproduce import reproduce_table1, table1_architecture_lines, table1_sweep
    from ..sweep import LocalExecutor

    models = _split(models) or list(TABLE1_MODELS)
    files = _split(files) or _default_files(data)
    spec = table1_sweep(preset, files, models, seeds, omega_rule=omega_rule, epochs=epochs, offset=offset)
    _check_paper_on_cpu(preset, files, models, seeds, epochs, device, yes)
    click.echo(f"Table 1 of {CITATION}: {len(files)} file(s) x {len(models)} model(s) x {seeds} seed(s), "
               f"preset {preset}, omega rule {omega_rule} -> {outdir or 'sweeps/' + spec.name}")
    if preset == "paper":
        for line in table1_architecture_lines():
            click.echo(f"  {line}")
    executor = LocalExecutor(workers=workers) if device == "cpu" or workers else None
    if overwrite:
        from ..sweep import plan_sweep
        from .sweep import start_over

        removed = start_over(plan_sweep(spec, outdir or f"sweeps/{spec.name}", device=device, validate=False))
        if removed:
            click.echo(f"--overwrite: removed {removed} finished run file(s)")

    def progress(summary: dict) -> None:
        best = f"best {summary['best_psnr']:.2f} dB" if summary["status"] == "ok" else summary["status"]
        click.echo(f"  {summary['run_id']}: {best}", err=True)

    rows = reproduce_table1(preset, files, models, seeds, outdir=outdir, omega_rule=omega_rule, epochs=epochs,
                            offset=offset, device=device, executor=executor, on_result=progress)
    click.echo("| file | model | ours: peak PSNR dB (mean +- std, n) | paper (Table 1) | ours - paper |")
    click.echo("| --- | --- | --- | --- | --- |")
    for r in rows:
        ours = f"{r.mean:.1f} +- {r.std:.1f} ({len(r.psnr)})" if r.psnr else "no finished run"
        paper = "not in Table 1" if r.paper is None else f"{r.paper[0]:.1f} +- {r.paper[1]:.1f}"
        diff = "-" if r.paper is None or not r.psnr else f"{r.mean - r.paper[0]:+.1f}"
        label = TABLE1_ARCHITECTURES[r.model].label
        click.echo(f"| {r.file} | {label} | {ours}{f', {r.failed} failed' if r.failed else ''} | {paper} | {diff} |")
    if preset != "paper":
        click.echo("note: the quick preset (2^14 samples, 4x128, 500 epochs) is not Table 1's protocol; compare "
                   "which architectures escape the zero-output floor, not the numbers")
    if any(r.failed for r in rows):
        raise SystemExit(1)


def _add_paper() -> None:
    from .reproduce_paper import paper

    reproduce.add_command(paper)


_add_paper()
