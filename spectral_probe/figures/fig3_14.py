"""Figs 3 and 14: activation statistics while SIREN / SIREN^2 fit a high-frequency-dominant target.

The target is ``--target`` (tetris.wav in the paper) or the bundled stand-in
``synthetic:broadband`` (flat spectrum above 0.15 x Nyquist, psi ~ 0.575 vs
tetris 0.573).  Runs use :func:`spectral_probe.training.presets.make_run`: SIREN's first
omega is 3000 x N/150,000, SIREN^2 uses first omega 30 with WINNER scales from
Eqn 11 (s0 scaled by N/150,000).  A :class:`~spectral_probe.probes.Probe` on
every hook point records histograms (their own range at each step), moments
and the layer-averaged PSD every ``probe_every`` epochs and after the last one.

* Fig 3 -- SIREN only: distributions and cumulative PSDs of the hidden
  pre-activations and of the output at epoch 0 and after the last epoch,
  with the target's for reference (the spectral bottleneck: the output stays
  near zero and its power sits far below the target's band).
* Fig 14 -- SIREN vs SIREN^2: pre-activation histograms at the start and the
  end, and their standard deviations over training.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..probes import stats
from ..training.presets import RunSpec, estimated_seconds, PRESETS
from ..training.loop import TrainConfig
from .common import ProbedRun, audio_target_spec, json_attr, maybe_save, probed_run, training_preset
from .plotting import MODEL_COLORS, MODEL_LABELS, hook_label, label_axes, new_figure, step_hist
from .sizes import figure_sizes

__all__ = ["compute_fig3", "plot_fig3", "compute_fig14", "plot_fig14", "estimate_fig3", "estimate_fig14"]


def _pre_points(run: ProbedRun, with_output: bool) -> xr.Dataset:
    """The probe's ``kind="pre"`` slice: hidden pre-activations (and the output), dims (step, layer, ...)."""
    ds = run.probe.sel(kind="pre", drop=True)
    keep = [str(v) for v in ds.layer.values if str(v).startswith("layers.") or (with_output and v == "output")]
    return ds.sel(layer=keep)


def _ends(ds: xr.Dataset) -> xr.Dataset:
    """First and last probe steps, relabelled ``epoch``."""
    steps = ds.step.values
    return ds.sel(step=[steps[0], steps[-1]]).rename(step="epoch")


def _history(run: ProbedRun) -> xr.DataArray:
    h = run.result.history
    return xr.DataArray(h["psnr"], dims="train_epoch", coords={"train_epoch": h["epoch"] + 1})


def _run_attrs(figure: str, preset: str, sz: dict, target: str, runs: dict[str, ProbedRun], seed: int) -> dict:
    first = next(iter(runs.values()))
    attrs = {"figure": figure, "preset": preset, "target": target, "target_name": first.target.name,
             "n": first.target.n, "psi": float(first.target.psi()), "zero_psnr": float(first.target.zero_psnr()),
             "epochs": int(first.result.epochs_run), "seed": seed, "sizes": json_attr(sz),
             "probe": "histograms with per-step ranges; layer-averaged PSD (mean of per-neuron periodograms)"}
    for name, run in runs.items():
        attrs[f"{name}_config"] = json_attr(run.spec.to_dict())
        attrs[f"{name}_best_psnr"] = float(run.result.best_psnr)
        attrs[f"{name}_final_psnr"] = float(run.result.final_psnr)
    return attrs


def compute_fig3(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """SIREN on a high-frequency target: pre-activation/output statistics at epoch 0 and at the end.

    Returns
    -------
    xr.Dataset
        ``hist (epoch, layer, bin)``, ``hist_edges (epoch, layer, edge)``, ``cum_psd (epoch, layer, freq)``
        (normalised cumulative layer-averaged PSD), ``act_std (epoch, layer)``; the target's
        ``target_hist (bin)``, ``target_edges (edge)``, ``target_cum_psd (freq)``; ``psnr (train_epoch)``,
        ``target`` and ``output (sample)`` (after the last epoch).  ``layer`` = layers.0..3, output.
    """
    sz = figure_sizes("3", preset, **overrides)
    spec = audio_target_spec(target)
    run = probed_run("siren", spec, preset, sz, device=device, seed=seed)
    ends = _ends(_pre_points(run, with_output=True))
    values = run.target.values[:, 0].double()
    t_hist = stats.histogram(values, stats.range_edges(values, sz["bins"]))
    t_psd = stats.layer_psd(values)
    ds = xr.Dataset(
        {"hist": ends.hist, "hist_edges": ends.hist_edges, "act_std": ends.act_std,
         "cum_psd": (("epoch", "layer", "freq"), stats.cumulative_psd(ends.psd.values.astype(np.float64)).numpy()),
         "target_hist": ("bin", t_hist.density.numpy()), "target_edges": ("edge", t_hist.edges.numpy()),
         "target_cum_psd": ("freq", stats.cumulative_psd(t_psd.psd).numpy()),
         "psnr": _history(run), "target": ("sample", values.float().numpy()), "output": ("sample", run.output)},
        coords={"freq": ends.freq.values},
        attrs=_run_attrs("3", preset, sz, spec, {"siren": run}, seed))
    return maybe_save(ds, out, "fig3")


def plot_fig3(ds: xr.Dataset):
    """Row 0: PSNR and target vs output; then per hook point its histograms and cumulative PSDs."""
    layers = [str(v) for v in ds.layer.values]
    fig, axes = new_figure(len(layers) + 1, 2, 11, 2.3 * (len(layers) + 1))
    epochs = ds.epoch.values
    colors = ("0.45", "tab:blue")
    ax = axes[0, 0]
    ax.plot(ds.train_epoch, ds.psnr, color="tab:blue", label="SIREN")
    ax.axhline(ds.attrs["zero_psnr"], color="k", ls=":", label="zero-output floor")
    label_axes(ax, "epoch", "PSNR (dB)", "training PSNR", legend=True)
    ax = axes[0, 1]
    window = slice(0, min(200, ds.sizes["sample"]))
    ax.plot(ds.target[window], color="0.6", lw=1, label="target")
    ax.plot(ds.output[window], color="tab:blue", lw=1.2, label=f"SIREN output, epoch {epochs[-1]}")
    label_axes(ax, "sample", "value", f"first {window.stop} samples", legend=True)
    for r, layer in enumerate(layers, start=1):
        ax = axes[r, 0]
        for e, color in zip(range(len(epochs)), colors):
            row = ds.sel(layer=layer).isel(epoch=e)
            step_hist(ax, row.hist_edges, row.hist, color=color, lw=1.3,
                      label=f"epoch {epochs[e]} (std {float(row.act_std):.3g})")
        if layer == "output":
            step_hist(ax, ds.target_edges, ds.target_hist, color="k", ls="--", lw=1, label="target")
            ax.set_yscale("log")
        label_axes(ax, None, "density", f"{hook_label(layer, 'pre')}: distribution", legend=True, fontsize=7)
        ax = axes[r, 1]
        for e, color in zip(range(len(epochs)), colors):
            ax.semilogx(2 * ds.freq[1:], ds.cum_psd.sel(layer=layer).isel(epoch=e)[1:], color=color, lw=1.3,
                        label=f"epoch {epochs[e]}")
        ax.semilogx(2 * ds.freq[1:], ds.target_cum_psd[1:], color="k", ls="--", lw=1, label="target")
        ax.set_ylim(0, 1.02)
        label_axes(ax, None, "cumulative PSD", f"{hook_label(layer, 'pre')}: cumulative PSD", legend=True,
                   fontsize=7)
    label_axes(axes[-1, 0], "value")
    label_axes(axes[-1, 1], "frequency / Nyquist")
    a = ds.attrs
    fig.suptitle(f"Fig 3: SIREN on {a['target_name']} (N = {a['n']}, $\\psi$ = {a['psi']:.3f}), epoch 0 vs "
                 f"{epochs[-1]}; best PSNR {a['siren_best_psnr']:.1f} dB, zero-output floor {a['zero_psnr']:.1f} dB",
                 fontsize=10)
    return fig


def compute_fig14(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                  seed: int = 0, **overrides) -> xr.Dataset:
    """Pre-activation statistics of SIREN and SIREN^2 at the start and end of training.

    Returns
    -------
    xr.Dataset
        ``hist (model, epoch, layer, bin)``, ``hist_edges (model, epoch, layer, edge)`` (start and end),
        ``act_std``/``act_kurtosis (model, step, layer)`` at every probe step, ``psnr (model, train_epoch)``.
    """
    sz = figure_sizes("14", preset, **overrides)
    spec = audio_target_spec(target)
    runs = {m: probed_run(m, spec, preset, sz, device=device, seed=seed) for m in ("siren", "siren2")}
    parts = {m: _pre_points(r, with_output=False) for m, r in runs.items()}
    ends = xr.concat([_ends(parts[m])[["hist", "hist_edges"]] for m in runs], dim="model", coords="minimal",
                     compat="override")
    traj = xr.concat([parts[m][["act_std", "act_kurtosis"]] for m in runs], dim="model", coords="minimal",
                     compat="override")
    psnr = xr.concat([_history(r) for r in runs.values()], dim="model")
    ds = xr.merge([ends, traj, psnr.rename("psnr")], compat="override", join="outer")
    ds = ds.assign_coords(model=list(runs))
    ds.attrs = _run_attrs("14", preset, sz, spec, runs, seed)
    return maybe_save(ds, out, "fig14")


def plot_fig14(ds: xr.Dataset):
    """Rows: hidden layers (histograms at start and end, one column per model); last row: std and PSNR."""
    layers = [str(v) for v in ds.layer.values]
    fig, axes = new_figure(len(layers) + 1, 2, 11, 2.3 * (len(layers) + 1))
    epochs = ds.epoch.values
    for r, layer in enumerate(layers):
        for c, model in enumerate(ds.model.values):
            ax = axes[r, c]
            for e, style in zip(range(len(epochs)), ({"color": "0.45"}, {"color": MODEL_COLORS[str(model)]})):
                row = ds.sel(model=model, layer=layer).isel(epoch=e)
                std = float(ds.act_std.sel(model=model, layer=layer, step=epochs[e]))
                step_hist(ax, row.hist_edges, row.hist, lw=1.3, label=f"epoch {epochs[e]} (std {std:.3g})", **style)
            label_axes(ax, None, "density", f"{MODEL_LABELS[str(model)]}: {hook_label(layer, 'pre')}",
                       legend=True, fontsize=7)
    ax = axes[-1, 0]
    styles = ("-", "--", ":", "-.")
    for model in ds.model.values:
        for i, layer in enumerate(layers):
            std = ds.act_std.sel(model=model, layer=layer)
            ax.plot(ds.step, std / std.isel(step=0), color=MODEL_COLORS[str(model)],
                    ls=styles[i % len(styles)], label=f"{MODEL_LABELS[str(model)]} layer {i + 1}")
    label_axes(ax, "epoch", "std / std at epoch 0", "pre-activation std over training")
    ratio = ds.act_std / ds.act_std.isel(step=0)
    ax.set_ylim(top=1 + 1.7 * max(float(ratio.max()) - 1, 0.05))       # headroom for the legend
    ax.legend(fontsize=6.5, ncol=2, frameon=False, loc="upper left")
    ax = axes[-1, 1]
    for model in ds.model.values:
        ax.plot(ds.train_epoch, ds.psnr.sel(model=model), color=MODEL_COLORS[str(model)],
                label=f"{MODEL_LABELS[str(model)]} (best {ds.attrs[f'{model}_best_psnr']:.1f} dB)")
    ax.axhline(ds.attrs["zero_psnr"], color="k", ls=":", label="zero-output floor")
    label_axes(ax, "epoch", "PSNR (dB)", "training PSNR", legend=True, fontsize=7)
    a = ds.attrs
    fig.suptitle(f"Fig 14: pre-activations at epoch 0 and {epochs[-1]}, SIREN vs SIREN$^2$ on {a['target_name']} "
                 f"(N = {a['n']}, $\\psi$ = {a['psi']:.3f})", fontsize=10)
    return fig


def _train_seconds(sz: dict, preset: str, models: int) -> float:
    p = PRESETS[training_preset(preset)]
    spec = RunSpec(model="siren", model_kwargs={"width": sz["width"] or p.audio_width, "depth": sz["depth"]},
                   train=TrainConfig(epochs=sz["epochs"] or p.audio_epochs), target="", target_kwargs={},
                   preset=preset, seed=0)
    return models * 1.15 * estimated_seconds(spec, sz["num_samples"] or p.audio_samples)   # +15 % probes


def estimate_fig3(preset: str) -> float:
    """CPU seconds of the SIREN run (:func:`spectral_probe.training.presets.estimated_seconds`, +15 % for probes)."""
    return _train_seconds(figure_sizes("3", preset), preset, 1)


def estimate_fig14(preset: str) -> float:
    """CPU seconds of the SIREN and SIREN^2 runs (the SIREN run is shared with Fig 3 within one process)."""
    return _train_seconds(figure_sizes("14", preset), preset, 2)
