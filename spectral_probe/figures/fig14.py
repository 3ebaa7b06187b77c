"""Fig 14: distributions and cumulative power spectra of the hidden pre-activations and the output of
SIREN and SIREN^2 at the start and the end of training on tetris.wav, and their course in between.

The paper (arXiv 2509.09719, Sec A and Fig 14 caption): "Distributions and cumulative power spectra
of hidden-layer pre-activations and outputs at epoch 0 and 10^4 when fitting tetris.wav with a
four-layer, 256-width network.  SIREN^2 maintains broader high-frequency support during training,
enabling recovery of the high-frequency target, whereas SIREN exhibits a rapid loss of
high-frequency components across layers"; Sec A: "For SIREN, the spectra of distributions remain
unaltered throughout the training ... The increase in the standard deviation of distribution
downstream of layer-3 can also be acknowledged."  The runs are :mod:`spectral_probe.figures.trainrun`'s
parts, probed densely early (log-spaced steps), so the panels over training show a trajectory.

"High-frequency share" here: the share of a layer's power in the target's band, above the frequency
below which the target holds 10 % of its power (:func:`target_band_edge`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .claims import Claim, Verdict, cumulative_share_below
from .common import json_attr
from .fig3 import target_summary
from .plotting import MODEL_COLORS, MODEL_LABELS, hook_label, label_axes, new_figure, outside_legend, step_hist, suptitle
from .trainrun import compute_run_part, ends, estimate_runs, hidden_layers, run_parts, target_values

__all__ = ["compute_fig14", "plot_fig14", "estimate_fig14", "parts_fig14", "compute_part_fig14", "assemble_fig14",
           "target_band_edge", "CLAIMS_FIG14"]

_MODELS = ("siren", "siren2")
#: the target's band starts where its cumulative PSD reaches this share
BAND_SHARE = 0.10


def parts_fig14(ctx):
    """Two parts, ``siren`` and ``siren2`` (the SIREN part is Fig 3's at equal sizes)."""
    return run_parts(ctx, _MODELS)


def compute_part_fig14(part, ctx):
    return compute_run_part(part, ctx)


def target_band_edge(fk: np.ndarray, target_cum: np.ndarray, share: float = BAND_SHARE) -> float:
    """Frequency (fraction of Nyquist) below which the target holds ``share`` of its power."""
    return float(np.interp(share, target_cum, fk))


def assemble_fig14(datasets: dict, ctx) -> xr.Dataset:
    """Per model: histograms and cumulative PSDs at the first and last step, std, kurtosis, cumulative
    PSDs and the high-frequency share at every probe step, PSNR; the target's histogram and PSD."""
    runs = {m: datasets[m] for m in _MODELS}
    first = runs["siren"]
    e = xr.concat([ends(r)[["hist", "hist_edges", "cum_psd", "act_std"]] for r in runs.values()], dim="model",
                  coords="minimal", compat="override", join="outer")
    traj = xr.concat([r[["act_std", "act_kurtosis", "cum_psd"]].rename(cum_psd="cum_psd_steps")
                      for r in runs.values()], dim="model", coords="minimal", compat="override", join="outer")
    values = target_values(ctx)
    target = target_summary(values, first.fk.values, first.sizes["bin"])
    edge = target_band_edge(first.fk.values, target["target_cum_psd"][1])
    share = 1.0 - cumulative_share_below(first.fk.values, traj.cum_psd_steps.values, edge)
    ds = xr.merge([e.rename(act_std="act_std_ends"), traj], compat="override", join="outer")
    ds["hf_share"] = (("model", "step", "layer"), share)
    ds["psnr"] = xr.concat([r.psnr for r in runs.values()], dim="model", join="outer")
    for name, value in target.items():
        ds[name] = value
    ds = ds.assign_coords(model=list(_MODELS))
    a = first.attrs
    ds.attrs = {"figure": "14", "preset": ctx.preset, "target": a["target_spec"], "target_name": a["target_name"],
                "target_caption": a["target_caption"], "n": a["n"], "psi": a["psi"], "zero_psnr": a["zero_psnr"],
                "epochs": a["epochs"], "seed": ctx.seed, "sizes": json_attr(ctx.sizes), "band_edge": edge,
                "band": f"high-frequency share = power above {edge:.4f} x Nyquist, where the target holds "
                        f"{100 * (1 - BAND_SHARE):.0f} % of its power",
                **{f"{m}_{k}": runs[m].attrs[k2] for m in _MODELS
                   for k, k2 in (("config", "config"), ("best_psnr", "best_psnr"), ("final_psnr", "final_psnr"))}}
    return ds


def compute_fig14(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                  seed: int = 0, **overrides) -> xr.Dataset:
    """SIREN and SIREN^2 (in memory); see :func:`assemble_fig14`."""
    from .registry import get_recipe

    return get_recipe("14").compute(preset, target, out, device=device, seed=seed, **overrides)


def plot_fig14(ds: xr.Dataset):
    """Rows: hidden layers and the output (SIREN, SIREN^2 histograms; cumulative PSDs of both with the
    target's); last row: std over training, high-frequency share over training, PSNR."""
    layers = [str(v) for v in ds.layer.values]
    fig, axes = new_figure(len(layers) + 1, 3, 16, 2.3 * (len(layers) + 1))
    epochs = ds.epoch.values
    f = ds.fk.values
    for r, layer in enumerate(layers):
        for c, model in enumerate(ds.model.values):
            ax = axes[r, c]
            for e, style in zip(range(len(epochs)), ({"color": "0.45"}, {"color": MODEL_COLORS[str(model)]})):
                row = ds.sel(model=model, layer=layer).isel(epoch=e)
                step_hist(ax, row.hist_edges, row.hist, lw=1.3,
                          label=f"epoch {epochs[e]} (std {float(row.act_std_ends):.3g})", **style)
            if layer == "output":
                step_hist(ax, ds.target_edges, ds.target_hist, color="k", ls="--", lw=1, label="target")
                ax.set_yscale("log")
            label_axes(ax, None, "density", f"{MODEL_LABELS[str(model)]}: {hook_label(layer, 'pre')}",
                       legend=True, fontsize=7)
        ax = axes[r, 2]
        for model in ds.model.values:
            for e, ls in zip(range(len(epochs)), (":", "-")):
                ax.semilogx(f, ds.cum_psd.sel(model=model, layer=layer).isel(epoch=e), color=MODEL_COLORS[str(model)],
                            ls=ls, lw=1.2, label=f"{MODEL_LABELS[str(model)]}, epoch {epochs[e]}")
        ax.semilogx(f, ds.target_cum_psd, color="k", ls="--", lw=1, label="target")
        ax.axvline(ds.attrs["band_edge"], color="0.7", lw=0.8)
        ax.set_ylim(0, 1.02)
        label_axes(ax, None, "cumulative PSD", f"{hook_label(layer, 'pre')}: cumulative PSD", legend=True, fontsize=7)
    label_axes(axes[-2, 2], "frequency / Nyquist (grey: target band edge)")
    steps = ds.step.values
    x = np.maximum(steps, 0.5)                      # step 0 on the log axis
    styles = ("-", "--", ":", "-.", (0, (1, 3)))
    for c, (var, ylabel, title) in enumerate((
            ("act_std", "std / std at epoch 0", "hidden pre-activation std over training"),
            ("hf_share", "share of power in the target's band", "high-frequency share over training"))):
        ax = axes[-1, c]
        for model in ds.model.values:
            for i, layer in enumerate(layers):
                if var == "act_std" and layer == "output":
                    continue
                y = ds[var].sel(model=model, layer=layer)
                y = y / y.isel(step=0) if var == "act_std" else y
                ax.plot(x, y, color=MODEL_COLORS[str(model)], ls=styles[i % len(styles)], marker=".", ms=2.5,
                        label=f"{MODEL_LABELS[str(model)]} {hook_label(layer, 'pre').replace(' pre-activation', '')}")
        ax.set_xscale("log")
        if var == "hf_share":
            ax.set_yscale("log")
        label_axes(ax, "epoch (0 drawn at 0.5)", ylabel, title)
        if c == 1:
            outside_legend(ax, 6.5)
    ax = axes[-1, 2]
    for model in ds.model.values:
        ax.plot(ds.train_epoch, ds.psnr.sel(model=model), color=MODEL_COLORS[str(model)],
                label=f"{MODEL_LABELS[str(model)]} (best {ds.attrs[f'{model}_best_psnr']:.1f} dB)")
    ax.axhline(ds.attrs["zero_psnr"], color="k", ls=":", label="zero-output floor")
    ax.set_xscale("log")
    label_axes(ax, "epoch", "PSNR (dB)", "training PSNR", legend=True, fontsize=7)
    a = ds.attrs
    suptitle(fig, f"Fig 14: hidden pre-activations and output at epoch 0 and {epochs[-1]}, SIREN vs SIREN$^2$ on "
                  f"{a.get('target_caption', a['target_name'])} (N = {a['n']}, $\\psi$ = {a['psi']:.3f}); probed at "
                  f"{ds.sizes['step']} steps")
    return fig


def estimate_fig14(preset: str) -> float:
    """CPU seconds of the SIREN and SIREN^2 runs (the SIREN run is shared with Fig 3 at equal sizes)."""
    return estimate_runs("14", preset, 2)


# ----------------------------------------------------------------------------- claims
def _deep(ds) -> list[str]:
    """Layers 3 and 4 ("downstream of layer-3", Sec A): layers 1-2 are a ramp and sines of it, set by the weights."""
    return [layer for layer in hidden_layers(ds) if int(layer.split(".")[1]) >= 2]


def _keeps_band(ds) -> Verdict:
    deep = _deep(ds)
    s2 = ds.hf_share.sel(model="siren2", layer=deep)
    s1 = ds.hf_share.sel(model="siren", layer=deep)
    keep = float(s2.isel(step=-1).min())
    siren = float(s1.isel(step=-1).max())
    start = float(s2.isel(step=0).min())
    ok = keep >= 10 * siren and keep >= 0.5 * start
    return Verdict(ok, keep, f"share of layer 3-4 pre-activation power in the target's band (> "
                   f"{ds.attrs['band_edge']:.3f} x Nyquist) at epoch {int(ds.step[-1])}: SIREN^2 >= {100 * keep:.2f} % "
                   f"(epoch 0: >= {100 * start:.2f} %), SIREN <= {100 * siren:.4f} %")


def _siren_loses(ds) -> Verdict:
    hidden = hidden_layers(ds)
    s1 = ds.hf_share.sel(model="siren", layer=hidden)
    start, last = float(s1.isel(step=0).max()), float(s1.isel(step=-1).max())
    return Verdict(last <= start and last < 0.01, last,
                   f"SIREN's hidden layers in the target's band: <= {100 * start:.3f} % at epoch 0, "
                   f"<= {100 * last:.3f} % at epoch {int(ds.step[-1])} (low: < 1 %)")


def _siren_unaltered(ds) -> Verdict:
    hidden = hidden_layers(ds)
    c = ds.cum_psd_steps.sel(model="siren", layer=hidden)
    change = float(np.abs(c.isel(step=-1) - c.isel(step=0)).max())
    return Verdict(change < 0.05, change, f"SIREN's hidden cumulative PSDs move by at most {change:.3f} between "
                   f"epoch 0 and {int(ds.step[-1])} (unaltered: < 0.05)")


def _recovers(ds) -> Verdict:
    gap = ds.attrs["siren2_best_psnr"] - ds.attrs["siren_best_psnr"]
    return Verdict(gap > 20.0, gap, f"peak PSNR SIREN^2 {ds.attrs['siren2_best_psnr']:.2f} dB, SIREN "
                   f"{ds.attrs['siren_best_psnr']:.2f} dB ({gap:+.1f}; Table 1 tetris: 62.7 vs 13.4)")


def _std_grows(ds) -> Verdict:
    deep = [layer for layer in hidden_layers(ds) if int(layer.split(".")[1]) >= 2]
    s = ds.act_std.sel(model="siren2", layer=deep)
    ratio = (s.isel(step=-1) / s.isel(step=0)).values
    return Verdict(bool(np.all(ratio > 1.0)), float(ratio.min()),
                   "SIREN^2 std(last)/std(0): " + ", ".join(f"layer {int(layer.split('.')[1]) + 1} {r:.2f}"
                                                             for layer, r in zip(deep, ratio)))


CLAIMS_FIG14 = (
    Claim("siren2-keeps-high-frequency", 'Fig 14 caption: "SIREN^2 maintains broader high-frequency support during '
          'training"; Sec A: "high-frequency energy persisting in deeper layers"', "SIREN^2's layers 3-4 at the last "
          "step: share in the target's band >= 10x SIREN's and >= half their own at epoch 0", ("hf_share", "band_edge"),
          _keeps_band),
    Claim("siren-loses-high-frequency", 'Fig 14 caption: "SIREN exhibits a rapid loss of high-frequency components '
          'across layers"', "SIREN's hidden share in the target's band does not grow and ends < 1 %",
          ("hf_share",), _siren_loses),
    Claim("siren-spectra-unaltered", 'Sec A: "For SIREN, the spectra of distributions remain unaltered throughout the '
          'training"', "SIREN's hidden cumulative PSDs change by < 0.05 from epoch 0 to the end", ("cum_psd_steps",),
          _siren_unaltered),
    Claim("siren2-recovers-target", 'Fig 14 caption: "enabling recovery of the high-frequency target"',
          "SIREN^2's peak PSNR > SIREN's + 20 dB", ("siren_best_psnr", "siren2_best_psnr"), _recovers),
    Claim("siren2-std-grows-deep", 'Sec A: "The increase in the standard deviation of distribution downstream of '
          'layer-3"', "SIREN^2's pre-activation std at the last step > at epoch 0 in layers 3 and 4",
          ("act_std",), _std_grows),
)
