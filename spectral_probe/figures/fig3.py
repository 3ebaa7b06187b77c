"""Fig 3: SIREN fitting a high-frequency-dominated target -- distributions and cumulative PSDs of the
hidden pre-activations and of the output at epoch 0 and at the end, with the target's.

The paper (arXiv 2509.09719, Sec 2.2 and Fig 3 caption): tetris.wav, 150,000 samples, a four-layer
SIREN at epochs 0 and 10^4; "across all hidden layers, the value distributions remain centered and
narrow, while the cumulative PSD is heavily biased toward low frequencies ... Even after 10^4
epochs, the mismatch persists".  The run is :mod:`spectral_probe.figures.trainrun`'s SIREN part.
The sample panel shows the 200-sample span where the target has the most energy (tetris.wav is
silent over its first ~3,500 samples).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..probes import stats
from .claims import Claim, Verdict, cumulative_share_below
from .common import json_attr
from .plotting import hook_label, label_axes, new_figure, step_hist, suptitle
from .trainrun import (compute_run_part, ends, estimate_runs, hidden_layers, highest_energy_window, run_parts,
                       target_values)

__all__ = ["compute_fig3", "plot_fig3", "estimate_fig3", "parts_fig3", "compute_part_fig3", "assemble_fig3",
           "CLAIMS_FIG3", "LOW_BAND", "SAMPLE_WINDOW"]

#: the claims' "low frequencies": below 0.02 x Nyquist
LOW_BAND = 0.02
#: samples in the target-vs-output panel
SAMPLE_WINDOW = 200


def parts_fig3(ctx):
    """One part: the SIREN run (shared with Fig 14 at equal sizes)."""
    return run_parts(ctx, ("siren",))


def compute_part_fig3(part, ctx):
    return compute_run_part(part, ctx)


def target_summary(values: np.ndarray, fk: np.ndarray, bins: int) -> dict:
    """The target's histogram and cumulative PSD at ``fk`` (fractions of Nyquist)."""
    import torch

    x = torch.as_tensor(values, dtype=torch.float64)
    hist = stats.histogram(x, stats.range_edges(x, bins))
    psd = stats.layer_psd(x).psd.numpy()
    cum = np.cumsum(psd) / np.sum(psd)
    f = np.linspace(0.0, 1.0, psd.size)
    return {"target_hist": ("bin", hist.density.numpy()), "target_edges": ("edge", hist.edges.numpy()),
            "target_cum_psd": ("fk", np.interp(fk, f, cum))}


def assemble_fig3(datasets: dict, ctx) -> xr.Dataset:
    """``hist``/``hist_edges``/``cum_psd``/``act_std (epoch, layer, ...)`` at the first and last step, the
    target's histogram and cumulative PSD, ``psnr (train_epoch)``, ``target`` and ``output (sample)``."""
    run = datasets["siren"]
    e = ends(run)
    values = target_values(ctx)
    start = highest_energy_window(values, SAMPLE_WINDOW)
    a = run.attrs
    ds = xr.Dataset(
        {"hist": e.hist, "hist_edges": e.hist_edges, "act_std": e.act_std, "cum_psd": e.cum_psd,
         **target_summary(values, run.fk.values, run.sizes["bin"]), "psnr": run.psnr,
         "target": ("sample", values.astype(np.float32)), "output": run.output},
        attrs={"figure": "3", "preset": ctx.preset, "target": a["target_spec"], "target_name": a["target_name"],
               "target_caption": a["target_caption"], "n": a["n"], "psi": a["psi"], "zero_psnr": a["zero_psnr"],
               "epochs": a["epochs"], "seed": ctx.seed, "sizes": json_attr(ctx.sizes), "siren_config": a["config"],
               "siren_best_psnr": a["best_psnr"], "siren_final_psnr": a["final_psnr"], "window_start": start,
               "window": SAMPLE_WINDOW, "offset": a["offset"],
               "probe": "histograms with per-step ranges; cumulative layer-averaged PSD (mean of per-neuron "
                        "periodograms) at fk, fractions of Nyquist"})
    return ds


def compute_fig3(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """SIREN on a high-frequency target (in memory); see :func:`assemble_fig3`."""
    from .registry import get_recipe

    return get_recipe("3").compute(preset, target, out, device=device, seed=seed, **overrides)


def plot_fig3(ds: xr.Dataset):
    """Row 0: PSNR and target vs output; then per hook point its histograms and cumulative PSDs."""
    layers = [str(v) for v in ds.layer.values]
    fig, axes = new_figure(len(layers) + 1, 2, 12.5, 2.35 * (len(layers) + 1))
    epochs = ds.epoch.values
    colors = ("0.45", "tab:blue")
    ax = axes[0, 0]
    ax.plot(ds.train_epoch, ds.psnr, color="tab:blue", label="SIREN")
    ax.axhline(ds.attrs["zero_psnr"], color="k", ls=":", label="zero-output floor")
    label_axes(ax, "epoch", "PSNR (dB)", "training PSNR", legend=True)
    ax = axes[0, 1]
    start = int(ds.attrs.get("window_start", 0))
    window = slice(start, min(start + int(ds.attrs.get("window", SAMPLE_WINDOW)), ds.sizes["sample"]))
    x = np.arange(window.start, window.stop) + int(ds.attrs.get("offset", 0))
    ax.plot(x, ds.target[window], color="0.6", lw=1, label="target")
    ax.plot(x, ds.output[window], color="tab:blue", lw=1.2, label=f"SIREN output, epoch {epochs[-1]}")
    label_axes(ax, "sample", "value", f"samples {x[0]}-{x[-1]}: the {window.stop - window.start}-sample span with "
               "the most target energy", legend=True, fontsize=7)
    f = ds.fk.values
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
            ax.semilogx(f, ds.cum_psd.sel(layer=layer).isel(epoch=e), color=color, lw=1.3, label=f"epoch {epochs[e]}")
        ax.semilogx(f, ds.target_cum_psd, color="k", ls="--", lw=1, label="target")
        ax.axvline(LOW_BAND, color="0.7", lw=0.8, ls=":")
        ax.set_ylim(0, 1.02)
        label_axes(ax, None, "cumulative PSD", f"{hook_label(layer, 'pre')}: cumulative PSD", legend=True,
                   fontsize=7)
    label_axes(axes[-1, 0], "value")
    label_axes(axes[-1, 1], "frequency / Nyquist (dotted: 0.02)")
    a = ds.attrs
    suptitle(fig, f"Fig 3: SIREN on {a.get('target_caption', a['target_name'])} (N = {a['n']}, $\\psi$ = {a['psi']:.3f}), "
                  f"epoch 0 vs {epochs[-1]}; best PSNR {a['siren_best_psnr']:.1f} dB, zero-output floor "
                  f"{a['zero_psnr']:.1f} dB")
    return fig


def estimate_fig3(preset: str) -> float:
    """CPU seconds of the SIREN run."""
    return estimate_runs("3", preset, 1)


# ----------------------------------------------------------------------------- claims
def _low_band(ds) -> Verdict:
    shares = cumulative_share_below(ds.fk.values, ds.cum_psd.sel(layer=hidden_layers(ds)).values, LOW_BAND)
    target = float(cumulative_share_below(ds.fk.values, ds.target_cum_psd.values, LOW_BAND))
    low = float(shares.min())
    return Verdict(low >= 0.5 and low >= 10 * target, low,
                   f"hidden pre-activations keep >= {100 * low:.1f} % of their power below {LOW_BAND} x Nyquist at "
                   f"epochs 0 and {int(ds.epoch[-1])}; the target {100 * target:.2f} %")


def _output_deviates(ds) -> Verdict:
    out = float(cumulative_share_below(ds.fk.values, ds.cum_psd.sel(layer="output").isel(epoch=-1).values, LOW_BAND))
    target = float(cumulative_share_below(ds.fk.values, ds.target_cum_psd.values, LOW_BAND))
    return Verdict(out >= 10 * max(target, 1e-4), out,
                   f"output at epoch {int(ds.epoch[-1])}: {100 * out:.1f} % of its power below {LOW_BAND} x Nyquist,"
                   f" the target {100 * target:.2f} %")


def _zero_output(ds) -> Verdict:
    gain = ds.attrs["siren_best_psnr"] - ds.attrs["zero_psnr"]
    ratio = float(ds.output.std() / ds.target.std())
    return Verdict(gain < 0.5 and ratio < 0.1, gain,
                   f"peak {ds.attrs['siren_best_psnr']:.2f} dB on a {ds.attrs['zero_psnr']:.2f} dB floor "
                   f"(+{gain:.2f}); output std {ratio:.3f} x the target's")


CLAIMS_FIG3 = (
    Claim("hidden-psd-low", 'Fig 3 caption: "Across all layers, the spectral content is concentrated far below that '
          'of the high-frequency target"', f"every hidden pre-activation, epoch 0 and last: >= 50 % of its power "
          f"below {LOW_BAND} x Nyquist and >= 10x the target's share", ("cum_psd", "target_cum_psd", "fk"), _low_band),
    Claim("output-spectrum-deviates", 'Sec 2.2: "The network outputs ... exhibit a spectral profile that deviates '
          'significantly from the ground-truth spectrum"', f"output's share below {LOW_BAND} x Nyquist >= 10x the "
          "target's", ("cum_psd", "target_cum_psd", "fk"), _output_deviates),
    Claim("zero-output", 'Sec 2.1 Remark: "convergence to a fixed PSNR of 13.4 with a zero-valued output"',
          "peak PSNR < floor + 0.5 dB and output std < 0.1 x the target's", ("siren_best_psnr", "zero_psnr",
                                                                            "output", "target"), _zero_output),
)
