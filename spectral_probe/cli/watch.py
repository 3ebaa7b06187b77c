"""``spectral-probe watch run.h5``: follow a trajectory file while (or after) a run writes it."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

__all__ = ["watch", "describe_run"]

_STATUS = {0: "writing", 1: "closed", 2: "failed", 3: "interrupted"}


def _scalars_line(ds) -> str | None:
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


@click.command("watch")
@click.argument("run", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Print the current state and exit.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save a PNG: PSNR with the zero-output floor, the watch's verdict, cumulative spectra "
                   "(target, last hidden layer, output), NTK S(k) (rewritten at every poll).")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
def watch(run: Path, interval: float, once: bool, plot_path: Path | None, timeout: float | None) -> None:
    """Print (and optionally plot) the trajectory in RUN as the run writes it."""
    from ..store import open_run
    from ..store.filelock import writer_alive
    from ..validation import check_output_path, positive_float

    positive_float(interval, "--interval")
    if plot_path is not None:
        check_output_path(plot_path, "--plot")
    start, seen, waited = time.monotonic(), {}, False
    while True:
        if not run.exists():
            if once:
                raise FileNotFoundError(f"no run file at '{run}'")
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
                click.echo(f"run {_STATUS.get(status, status)}")
                return
            if not writer_alive(run):
                click.echo("the writer is gone (killed?); the file holds every committed step")
                return
        if once or (timeout is not None and time.monotonic() - start > timeout):
            return
        time.sleep(interval)
