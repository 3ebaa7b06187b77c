"""``spectral-probe watch --run run.h5``: follow a trajectory file while (or after) a run writes it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .options import command, run_option

__all__ = ["watch", "describe_run"]


def _scalars_line(ds) -> str | None:
    import numpy as np

    if ds.sizes.get("step", 0) == 0:
        return None
    last = ds.isel(step=-1)
    parts = [f"step {int(last.step)}"]
    for name, fmt in (("loss", "{:.4g}"), ("psnr", "{:.2f} dB"), ("lr", "{:.3g}")):
        if name in ds:
            parts.append(f"{name} " + fmt.format(float(last[name])))
    if "psnr" in ds:
        parts.append(f"best {float(np.nanmax(ds.psnr.values)):.2f} dB")
    return "  ".join(parts)


def _activations_line(ds) -> str | None:
    import numpy as np

    if ds.sizes.get("step", 0) == 0 or "act_std" not in ds:
        return None
    last = ds.isel(step=-1)
    cells = []
    for layer in ds.layer.values:
        for kind in ds.kind.values:
            value = float(last.act_std.sel(layer=layer, kind=kind))
            if np.isfinite(value):
                cells.append(f"{layer}.{kind} {value:.3g}")
    return f"probe step {int(last.step)}: std " + ", ".join(cells)


def describe_run(tree, seen: dict[str, int]) -> list[str]:
    """Lines for the groups that gained steps since ``seen`` (updated in place)."""
    lines = []
    for name, node in tree.children.items():
        ds = node.to_dataset()
        n = int(ds.sizes.get("step", 0))
        if n == seen.get(name, -1):
            continue
        seen[name] = n
        if name == "scalars":
            line = _scalars_line(ds)
        elif name == "activations":
            line = _activations_line(ds)
        elif name == "bottleneck":
            from ..bottleneck import watch_line

            line = watch_line(ds)
        else:
            line = f"{name}: {n} step(s)" + (f", last {int(ds.step[-1])}" if n else "") if "step" in ds.dims else None
        if line:
            lines.append(line)
    return lines


@command("watch")
@run_option("Run file written by `spectral-probe train --out` (required).", positional=True,
            type=click.Path(dir_okay=False, path_type=Path))
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Print the current state and exit.")
@click.option("--wait", is_flag=True,
              help="Wait for a run file that does not exist yet (a run about to start); without it a missing "
                   "file is refused at once.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save a PNG: PSNR with the zero-output floor, the watch's verdict, cumulative spectra "
                   "(target, last hidden layer, output), NTK S(k) (rewritten at every poll).")
@click.option("--timeout", type=float, default=None,
              help="Stop after this many seconds (with --wait: an error if the file has not appeared by then).")
def watch(run_path: Path | None, interval: float, once: bool, wait: bool, plot_path: Path | None,
          timeout: float | None) -> None:
    """Print (and optionally plot) the trajectory in the --run file as the run writes it.

    The run file used to be the first argument (`watch run.h5`); that form still works for one
    release, with a warning.
    """
    from ..store import STATUS_NAMES, open_run
    from ..store.filelock import writer_alive
    from ..validation import check_output_path, positive_float

    if run_path is None:
        raise click.UsageError("missing option --run FILE (the run file to watch)")
    run = Path(run_path)
    positive_float(interval, "--interval")
    if timeout is not None:
        positive_float(timeout, "--timeout")
    if once and wait:
        raise ValueError("--once prints what the file holds now and --wait waits for it to appear; choose one")
    if plot_path is not None:
        check_output_path(plot_path, "--plot")
    if not run.exists() and not wait:
        raise FileNotFoundError(f"no run file at '{run}'" + ("" if once else
                                "; check the name, or pass --wait to wait for a run that is about to start"))
    start, seen, waited = time.monotonic(), {}, False
    while True:
        if not run.exists():
            if timeout is not None and time.monotonic() - start > timeout:
                raise FileNotFoundError(f"no run file at '{run}' after waiting {timeout:g} s (--wait --timeout)")
            if not waited:
                click.echo(f"waiting for {run} ...")
                waited = True
        else:
            try:
                tree = open_run(run)
            except OSError:
                # a damaged file fails at once (open_run never hangs); a live writer may be mid-flush
                if once or not writer_alive(run) or (timeout is not None and time.monotonic() - start > timeout):
                    raise
                time.sleep(interval)
                continue
            for line in describe_run(tree, seen):
                click.echo(line)
            if plot_path is not None:
                from ..monitor.plot import save_run_figure

                save_run_figure(tree, plot_path)
            status = int(tree.dataset["run_status"]) if "run_status" in tree.dataset else 1
            if status != 0:
                click.echo(f"run {STATUS_NAMES.get(status, f'status {status}')}")
                return
            if not writer_alive(run):
                click.echo("the writer is gone (killed?); the file holds every committed step")
                return
        if once or (timeout is not None and time.monotonic() - start > timeout):
            return
        time.sleep(interval)
