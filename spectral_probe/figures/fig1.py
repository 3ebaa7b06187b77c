"""Fig 1a: PSNR of SIREN vs SIREN^2 on eight broadband signals S1-S8 with decreasing low-frequency content.

The paper (arXiv 2509.09719, Fig 1 caption and Sec 1) fits "eight discretely sampled broadband 1D
signals (S1-S8) with decreasing low-frequency content", each of 150,000 samples, with "an MLP with
four hidden layers with 222 features": SIREN's PSNR falls from S1 to S4 and it "fails to capture
nearly all the frequencies of signals S4-S8", while SIREN^2 keeps a high PSNR on all of them.
The paper shows the signals' spectra but does not define them; ours are
:func:`spectral_probe.signals.fig1_series` (S1 white, then flat magnitude above a low cut that
doubles from 0.01 x Nyquist for S2 to 0.64 for S8).
Runs use :func:`spectral_probe.training.presets.make_run` (SIREN: first omega 3000 x N/150,000; SIREN^2:
WINNER scales from each signal's psi, Eqn 11, s0 x N/150,000).  Epochs: not stated for Fig 1;
the ``paper`` preset uses Table 1's protocol (Sec 5.1, 30,000).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..training.presets import RunSpec, estimated_seconds, make_run, PRESETS
from ..probes import stats
from ..signals import fig1_series
from ..training.loop import TrainConfig, fit
from .common import json_attr, maybe_save, training_preset
from .plotting import MODEL_COLORS, MODEL_LABELS, label_axes, new_figure
from .sizes import figure_sizes

__all__ = ["compute_fig1", "plot_fig1", "estimate_fig1"]

_MODELS = ("siren", "siren2")
#: spectrum bins kept for the plot (log-spaced)
_SPECTRUM_POINTS = 160


def _spectrum(target) -> tuple[np.ndarray, np.ndarray]:
    """Log-spaced samples of the signal's one-sided PSD: (frequency / Nyquist, PSD)."""
    psd = stats.psd_1d(target.values[:, 0].double())
    freqs = 2.0 * psd.freqs.numpy()
    keep = np.unique(np.geomspace(1, freqs.size - 1, _SPECTRUM_POINTS).astype(int))
    return freqs[keep], psd.psd.numpy()[keep]


def compute_fig1(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """Train SIREN and SIREN^2 on each of S1-S8.

    Returns
    -------
    xr.Dataset
        ``best_psnr``/``final_psnr (model, signal)``, ``zero_psnr``/``psi``/``low_cut (signal)``,
        ``spectrum (signal, k)`` at ``freq (signal, k)`` (fractions of Nyquist).
    """
    sz = figure_sizes("1", preset, **overrides)
    p = PRESETS[training_preset(preset)]
    n = sz["n"] or p.audio_samples
    series = fig1_series(n, count=sz["count"], seed=seed)
    best = np.full((len(_MODELS), len(series)), np.nan)
    final = np.full_like(best, np.nan)
    configs = {}
    for j, signal in enumerate(series):
        for i, model in enumerate(_MODELS):
            spec, loaded = make_run(model, signal, training_preset(preset), width=sz["width"], depth=sz["depth"],
                                    epochs=sz["epochs"], seed=seed, train_overrides={"device": device})
            result = fit(spec.build_model(), loaded, spec.train)
            best[i, j], final[i, j] = result.best_psnr, result.final_psnr
            configs[f"{model}_{signal.name}"] = spec.to_dict()
    spectra = [_spectrum(s) for s in series]
    k = max(f.size for f, _ in spectra)
    freq = np.full((len(series), k), np.nan)
    spectrum = np.full_like(freq, np.nan)
    for j, (f, s) in enumerate(spectra):
        freq[j, :f.size], spectrum[j, :s.size] = f, s
    names = [s.name for s in series]
    ds = xr.Dataset(
        {"best_psnr": (("model", "signal"), best), "final_psnr": (("model", "signal"), final),
         "zero_psnr": ("signal", np.array([s.zero_psnr() for s in series])),
         "psi": ("signal", np.array([s.psi() for s in series])),
         "low_cut": ("signal", np.array([s.meta["low_cut"] for s in series])),
         "freq": (("signal", "k"), freq), "spectrum": (("signal", "k"), spectrum)},
        coords={"model": list(_MODELS), "signal": names},
        attrs={"figure": "1", "preset": preset, "n": n, "width": sz["width"] or p.audio_width,
               "depth": sz["depth"], "epochs": int(sz["epochs"] or p.audio_epochs), "seed": seed,
               "sizes": json_attr(sz), "configs": json_attr(configs),
               "psnr": "peak PSNR over epochs, 10 log10(1/MSE) on [-1, 1] targets"})
    return maybe_save(ds, out, "fig1")


def plot_fig1(ds: xr.Dataset):
    """Left: the signals' spectra; right: peak PSNR of SIREN and SIREN^2 per signal with the zero-output floor."""
    fig, axes = new_figure(1, 2, 12, 4.6)
    ax = axes[0, 0]
    colors = [f"C{j}" for j in range(ds.sizes["signal"])]
    for j, name in enumerate(ds.signal.values):
        row = ds.sel(signal=name)
        keep = np.isfinite(row.freq.values)
        ax.loglog(row.freq.values[keep], row.spectrum.values[keep] + 1e-30, color=colors[j], lw=0.9,
                  label=f"{name} (cut {float(row.low_cut):.2g}, $\\psi$ {float(row.psi):.2f})")
    ax.set_ylim(bottom=max(1e-12, float(np.nanmax(ds.spectrum)) * 1e-8))
    label_axes(ax, "frequency / Nyquist", "PSD", f"signals {_span(ds)} (flat magnitude above a low cut)",
               legend=True, fontsize=6.5)
    ax = axes[0, 1]
    x = np.arange(ds.sizes["signal"])
    for model in ds.model.values:
        ax.plot(x, ds.best_psnr.sel(model=model), marker="o", color=MODEL_COLORS[str(model)],
                label=MODEL_LABELS[str(model)])
    ax.plot(x, ds.zero_psnr, color="k", ls=":", marker=".", label="zero-output floor")
    ax.set_xticks(x, [str(v) for v in ds.signal.values])
    label_axes(ax, "signal (decreasing low-frequency content)", "peak PSNR (dB)", "SIREN vs SIREN$^2$",
               legend=True, fontsize=8)
    a = ds.attrs
    fig.suptitle(f"Fig 1a: {a['depth']}x{a['width']} networks on {_span(ds)} (N = {a['n']}, {a['epochs']} epochs, "
                 f"preset {a['preset']})", fontsize=11)
    return fig


def _span(ds: xr.Dataset) -> str:
    names = [str(v) for v in ds.signal.values]
    return names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"


def estimate_fig1(preset: str) -> float:
    """CPU seconds: 2 models x ``count`` signals (:func:`spectral_probe.training.presets.estimated_seconds`)."""
    sz = figure_sizes("1", preset)
    p = PRESETS[training_preset(preset)]
    spec = RunSpec(model="siren", model_kwargs={"width": sz["width"] or p.audio_width, "depth": sz["depth"]},
                   train=TrainConfig(epochs=sz["epochs"] or p.audio_epochs), target="", target_kwargs={},
                   preset=preset, seed=0)
    return 2 * sz["count"] * estimated_seconds(spec, sz["n"] or p.audio_samples)
