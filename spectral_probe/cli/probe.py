"""``spectral-probe probe --run run.h5 --step S``: activation statistics of a saved state of a run."""

from __future__ import annotations

from contextlib import nullcontext

import click

from .options import command, device_option, overwrite_option, run_option, threads_option

__all__ = ["probe", "statistics_lines"]


def statistics_lines(ds) -> list[str]:
    """One line per hook point: mean, std, excess kurtosis, share outside the bins, PSD centroid."""
    import numpy as np

    lines = [f"{'layer':<12} {'kind':<5} {'mean':>10} {'std':>10} {'kurtosis':>9} {'outside':>8} {'psd centroid':>13}"]
    row = ds.isel(step=-1)
    for layer in ds.layer.values:
        for kind in ds.kind.values:
            cell = row.sel(layer=layer, kind=kind)
            std = float(cell.act_std)
            if not np.isfinite(std):
                continue
            centroid = float("nan")
            if "psd" in ds:
                psd = np.asarray(cell.psd.values, dtype=np.float64)
                freq = np.asarray(ds.freq.values, dtype=np.float64)
                if np.nansum(psd[1:]) > 0:
                    centroid = float(np.nansum(freq[1:] * psd[1:]) / np.nansum(psd[1:]))
            lines.append(f"{str(layer):<12} {str(kind):<5} {float(cell.act_mean):>10.4g} {std:>10.4g} "
                         f"{float(cell.act_kurtosis):>9.3g} {float(cell.hist_outside):>8.3g} {centroid:>13.4g}")
    return lines


@command("probe")
@run_option("Run file written by `spectral-probe train --out` (with checkpoints; required).", required=True)
@click.option("--step", default="last", show_default=True,
              help="A checkpoint step, 'best' (the best state) or 'last' (the last checkpoint).")
@click.option("--layers", default="*", show_default=True, help="Hook points (fnmatch patterns, comma-separated).")
@click.option("--bins", type=click.IntRange(min=1), default=64, show_default=True, help="Histogram bins.")
@device_option()
@threads_option("the forward pass")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the statistics (group 'activations', one step) to this HDF5 file.")
@overwrite_option()
def probe(run_path, step, layers, bins, device, threads, out, overwrite):
    """Activation statistics (moments, histograms, PSDs) of a saved state of a run, at any checkpoint."""
    from ..devices import resolve_device
    from ..validation import check_output_path

    if out is not None:
        check_output_path(out, "--out", overwrite=overwrite)
    dev = resolve_device(device)

    from ..torch_settings import torch_threads

    with torch_threads(threads):
        _probe(run_path, step, layers, bins, dev, out, overwrite)


def _probe(run_path, step, layers, bins, dev, out, overwrite) -> None:
    from ..probes import Probe
    from ..store import TrajectoryWriter
    from ..training.posthoc import load_model, run_target

    model = load_model(run_path, step, device=dev)
    target = run_target(run_path)
    coords = target.coords(device=dev)
    patterns = [p.strip() for p in layers.split(",") if p.strip()] or ["*"]
    p = Probe(patterns, every=1, bins=bins, grid_shape=target.grid_shape)
    p.attach(model)
    click.echo(f"{run_path}: state at step {model.loaded_step} ('{step}'); {target.n} samples of {target.name}")
    with (TrajectoryWriter(out, config={"source": str(run_path), "step": str(step),
                                        "state_step": int(model.loaded_step)}, overwrite=overwrite)
          if out is not None else nullcontext()) as writer:
        if writer is not None:
            p.declare(writer)
        p.step(int(model.loaded_step), model, coords, force=True)
    for line in statistics_lines(p.to_dataset()):
        click.echo(line)
    if out is not None:
        click.echo(f"wrote {out} (group 'activations')")
