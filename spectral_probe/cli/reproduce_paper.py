"""``spectral-probe reproduce paper``: the paper's figures and Table 1 at its own scale, continued run by run.

Exit codes: 0 the run ended normally (budget used or nothing left), 1 a part failed, 2 bad input
(a budget that is not a positive duration, an unknown job, missing data, a damaged manifest, the
folder busy with another run), 124 interrupted by SIGTERM/SIGINT (what finished or was
checkpointed is kept).
"""

from __future__ import annotations

import click

__all__ = ["paper"]


@click.command("paper")
@click.option("--out", default="figures/paper", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: manifest.json, figures, Table 1 runs, the generated README.")
@click.option("--preset", type=click.Choice(["paper", "test"]), default="paper", show_default=True,
              help="paper: the paper's sizes (GPU); test: a seconds-long rehearsal of the same code path (CPU).")
@click.option("--device", default="auto", show_default=True)
@click.option("--budget", default="9m", show_default=True,
              help="Wall-clock budget of this run, e.g. 9m, 540s, 1h, 2m30s.")
@click.option("--data", type=click.Path(), default=None,
              help="Data folder (audio/tetris.wav, audio/gt_bach.wav); default: $SPECTRAL_PROBE_DATA.")
@click.option("--jobs", "jobs", multiple=True,
              help="Jobs to run, comma-separated: all, figures, table1, fig3, table1/tetris/siren2, a part "
                   "(table1/tetris/siren2/seed3) [default: all].")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Table 1 trials per file x model (Sec 5.1: five).")
@click.option("--seeds-together", type=click.IntRange(min=1), default=None,
              help="Fresh seeds of one Table 1 cell trained as one batch (fit_batched) [default: "
                   "spectral_probe.paperscale.table1.SEEDS_TOGETHER].")
@click.option("--target", default="tetris.wav", show_default=True,
              help="Audio target of Figs 2, 3, 6, 14 (the paper: tetris.wav).")
@click.option("--plan-only", is_flag=True, help="Print the plan and estimates; run and write nothing.")
@click.option("--status", "show_status", is_flag=True, help="Print the folder's state (reads files only).")
@click.option("--import", "import_from", type=click.Path(exists=True), default=None,
              help="Merge the results a GPU run exported (a folder with paper-results.tar.gz[.NNN]) into --out.")
@click.option("--export", "export_to", type=click.Path(file_okay=False), default=None,
              help="Pack the files written by runs since --since into this folder (for the trip back).")
@click.option("--since", type=float, default=0.0, help="With --export: Unix time of the first run to pack.")
@click.option("--carry", "carry_to", type=click.Path(file_okay=False), default=None,
              help="Copy the files the next run needs and git lacks (partial checkpoints) into this folder.")
def paper(out, preset, device, budget, data, jobs, seeds, seeds_together, target, plan_only, show_status,
          import_from, export_to, since, carry_to):
    """Continue the paper's reproduction in --out within --budget, resuming where the last run stopped.

    Parts already done with the same settings are skipped; partial ones continue from their
    checkpoints; the planner fills the budget using the device's measured time model; the
    manifest and the README of --out say what is done and what is left.
    """
    import time

    started = time.time()          # the budget counts from here: torch and the data load inside it
    from ..paperscale import transfer

    if import_from:
        taken = transfer.import_results(import_from, out)
        click.echo(f"imported {len(taken)} part record(s) into {out}: {', '.join(taken) or 'none newer'}")
        return
    if export_to:
        pieces = transfer.export_results(out, export_to, since=since)
        click.echo(f"packed into {export_to}: {', '.join(p.name for p in pieces)}")
        return
    if carry_to:
        files = transfer.carry_files(out, carry_to)
        click.echo(f"copied {len(files)} file(s) to {carry_to}" + (f": {', '.join(files)}" if files else ""))
        return
    if show_status:
        from ..paperscale import paper_status

        click.echo(paper_status(out, preset=None, target=target, seeds=seeds), nl=False)
        return
    from ..paperscale import reproduce_paper

    report = reproduce_paper(out, preset=preset, device=device, budget=budget, data=data, jobs=list(jobs) or None,
                             seeds=seeds, seeds_together=seeds_together, target=target, plan_only=plan_only,
                             log=lambda line: click.echo(line), started=started)
    if report.failed:
        for part, error in report.failed.items():
            click.echo(f"failed: {part}: {error}", err=True)
    raise SystemExit(report.exit_code)
