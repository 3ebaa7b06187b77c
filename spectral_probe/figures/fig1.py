"""Fig 1a: PSNR of SIREN vs SIREN^2 on eight broadband signals S1-S8 with decreasing low-frequency content.

The paper (arXiv 2509.09719, Fig 1 caption and Sec 1) fits "eight discretely sampled broadband 1D
signals (S1-S8) with decreasing low-frequency content", each of 150,000 samples, with "an MLP with
four hidden layers with 222 features": SIREN's PSNR "progressively decreases from S1 to S4,
eventually encountering a spectral bottleneck after S4", it "fails to capture nearly all the
frequencies of signals S4-S8" (Sec 2.1: "all lacking low-frequency components"), while SIREN^2
"maintains higher PSNR across all signals".  The paper shows the signals' spectra but does not
define them; ours are :func:`spectral_probe.signals.fig1_series` (S1-S3 broadband noise plus a
low band (0, 0.01] x Nyquist holding 99.9 / 99 / 90 % of the energy, S4-S8 broadband noise above a
cut rising from 0.01 to 0.16 x Nyquist).
Runs use :func:`spectral_probe.training.presets.make_run` (SIREN: first omega 3000 x N/150,000; SIREN^2:
WINNER scales from each signal's psi, Eqn 11, s0 x N/150,000).  Epochs: not stated for Fig 1;
the ``paper`` preset uses Table 1's protocol (Sec 5.1, 30,000).  One part per signal and model.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..training.presets import PRESETS, RunSpec, estimated_seconds, make_run
from ..probes import stats
from ..signals import fig1_series
from ..training.loop import TrainConfig
from .claims import Claim, Verdict
from .common import json_attr, run_settings, train_part, training_preset, training_work
from .parts import FigurePart
from .plotting import MODEL_COLORS, MODEL_LABELS, label_axes, new_figure, suptitle
from .sizes import figure_sizes

__all__ = ["compute_fig1", "plot_fig1", "estimate_fig1", "parts_fig1", "compute_part_fig1", "assemble_fig1",
           "CLAIMS_FIG1"]

_MODELS = ("siren", "siren2")
#: spectrum bins kept for the plot (log-spaced)
_SPECTRUM_POINTS = 160


def _spectrum(target) -> tuple[np.ndarray, np.ndarray]:
    """Log-spaced samples of the signal's one-sided PSD: (frequency / Nyquist, PSD)."""
    psd = stats.psd_1d(target.values[:, 0].double())
    freqs = 2.0 * psd.freqs.numpy()
    keep = np.unique(np.geomspace(1, freqs.size - 1, _SPECTRUM_POINTS).astype(int))
    return freqs[keep], psd.psd.numpy()[keep]


def _series(ctx):
    n = ctx.sizes["n"] or PRESETS[training_preset(ctx.preset)].audio_samples
    return fig1_series(n, names=tuple(ctx.sizes["signals"]), seed=ctx.seed)


def _spec(ctx, model: str, signal):
    sz = ctx.sizes
    return make_run(model, signal, training_preset(ctx.preset), width=sz["width"], depth=sz["depth"],
                    epochs=sz["epochs"], seed=ctx.seed, train_overrides={"device": ctx.device})


def parts_fig1(ctx) -> list[FigurePart]:
    """One part per signal and model: ``S1-siren``, ``S1-siren2``, ..."""
    out = []
    for signal in _series(ctx):
        for model in _MODELS:
            spec, loaded = _spec(ctx, model, signal)
            out.append(FigurePart(f"{signal.name}-{model}", run_settings(spec, f"fig1:{signal.name}:n={loaded.n}"),
                                  (training_work(spec, loaded),)))
    return out


def compute_part_fig1(part: FigurePart, ctx):
    """Train one model on one signal; its peak/final PSNR and PSNR history."""
    name, model = part.name.split("-")
    signal = next(s for s in _series(ctx) if s.name == name)
    spec, loaded = _spec(ctx, model, signal)
    _, result, complete = train_part(part, ctx, spec, loaded)
    if not complete:
        return None, result.epochs_run / spec.train.epochs
    return xr.Dataset({"best_psnr": result.best_psnr, "final_psnr": result.final_psnr,
                       "psnr": ("train_epoch", np.asarray(result.history["psnr"], dtype=np.float64))},
                      coords={"train_epoch": result.history["epoch"] + 1},
                      attrs={"config": json_attr(spec.to_dict())}), 1.0


def assemble_fig1(datasets: dict, ctx) -> xr.Dataset:
    """``best_psnr``/``final_psnr (model, signal)``, ``psnr (model, signal, train_epoch)``, the signals' spectra."""
    sz = ctx.sizes
    series = _series(ctx)
    names = [s.name for s in series]
    pick = {(m, s): datasets[f"{s}-{m}"] for m in _MODELS for s in names}
    best = np.array([[float(pick[m, s].best_psnr) for s in names] for m in _MODELS])
    final = np.array([[float(pick[m, s].final_psnr) for s in names] for m in _MODELS])
    history = np.stack([np.stack([pick[m, s].psnr.values for s in names]) for m in _MODELS])
    spectra = [_spectrum(s) for s in series]
    k = max(f.size for f, _ in spectra)
    freq = np.full((len(series), k), np.nan)
    spectrum = np.full_like(freq, np.nan)
    for j, (f, s) in enumerate(spectra):
        freq[j, :f.size], spectrum[j, :s.size] = f, s
    p = PRESETS[training_preset(ctx.preset)]
    configs = {f"{m}_{s}": pick[m, s].attrs.get("config", "") for m in _MODELS for s in names}
    return xr.Dataset(
        {"best_psnr": (("model", "signal"), best), "final_psnr": (("model", "signal"), final),
         "psnr": (("model", "signal", "train_epoch"), history),
         "zero_psnr": ("signal", np.array([s.zero_psnr() for s in series])),
         "psi": ("signal", np.array([s.psi() for s in series])),
         "low_share": ("signal", np.array([s.meta["low_share"] for s in series])),
         "low_cut": ("signal", np.array([s.meta["low_cut"] for s in series])),
         "freq": (("signal", "k"), freq), "spectrum": (("signal", "k"), spectrum)},
        coords={"model": list(_MODELS), "signal": names,
                "train_epoch": pick[_MODELS[0], names[0]].train_epoch.values},
        attrs={"figure": "1", "preset": ctx.preset, "n": series[0].n, "width": sz["width"] or p.audio_width,
               "depth": sz["depth"], "epochs": int(sz["epochs"] or p.audio_epochs), "seed": ctx.seed,
               "sizes": json_attr(sz), "configs": json_attr(configs),
               "signals": "broadband noise above low_cut x Nyquist, plus a band (0, 0.01] x Nyquist holding "
                          "low_share of the energy (signals.fig1_series)",
               "psnr_definition": "peak PSNR over epochs, 10 log10(1/MSE) on [-1, 1] targets"})


def compute_fig1(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """Train SIREN and SIREN^2 on each of S1-S8 (all parts in memory); see :func:`assemble_fig1`."""
    from .registry import get_recipe

    return get_recipe("1").compute(preset, target, out, device=device, seed=seed, **overrides)


def plot_fig1(ds: xr.Dataset):
    """Left: the signals' spectra; right: peak PSNR of SIREN and SIREN^2 per signal with the zero-output floor."""
    fig, axes = new_figure(1, 2, 15, 4.8)
    ax = axes[0, 0]
    colors = [f"C{j}" for j in range(ds.sizes["signal"])]
    for j, name in enumerate(ds.signal.values):
        row = ds.sel(signal=name)
        keep = np.isfinite(row.freq.values)
        share = float(row.low_share) if "low_share" in row else 0.0
        ax.loglog(row.freq.values[keep], row.spectrum.values[keep] + 1e-30, color=colors[j], lw=0.9,
                  label=f"{name}: low band {100 * share:g} %, cut {float(row.low_cut):.2g}, "
                        f"$\\psi$ {float(row.psi):.2f}")
    ax.set_ylim(bottom=max(1e-12, float(np.nanmax(ds.spectrum)) * 1e-8))
    label_axes(ax, "frequency / Nyquist", "PSD", f"signals {_span(ds)}: decreasing low-frequency content",
               legend=True, fontsize=7)
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
    suptitle(fig, f"Fig 1a: {a['depth']}x{a['width']} networks on {_span(ds)} (N = {a['n']}, {a['epochs']} epochs, "
                  f"preset {a['preset']})", fontsize=11)
    return fig


def _span(ds: xr.Dataset) -> str:
    names = [str(v) for v in ds.signal.values]
    return names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"


def estimate_fig1(preset: str) -> float:
    """CPU seconds: 2 models x the signals (:func:`spectral_probe.training.presets.estimated_seconds`)."""
    sz = figure_sizes("1", preset)
    p = PRESETS[training_preset(preset)]
    spec = RunSpec(model="siren", model_kwargs={"width": sz["width"] or p.audio_width, "depth": sz["depth"]},
                   train=TrainConfig(epochs=sz["epochs"] or p.audio_epochs), target="", target_kwargs={},
                   preset=preset, seed=0)
    return 2 * len(sz["signals"]) * estimated_seconds(spec, sz["n"] or p.audio_samples)


# ----------------------------------------------------------------------------- claims
def _gain(ds, model: str) -> np.ndarray:
    return (ds.best_psnr.sel(model=model) - ds.zero_psnr).values


def _siren_falls(ds) -> Verdict:
    names = [s for s in ("S1", "S2", "S3", "S4") if s in ds.signal.values]
    values = [float(ds.best_psnr.sel(model="siren", signal=s)) for s in names]
    steps = np.diff(values)
    ok = len(values) >= 2 and bool(np.all(steps < -0.5))
    text = " > ".join(f"{s} {v:.1f}" for s, v in zip(names, values)) + " dB (SIREN peak PSNR)"
    return Verdict(ok, float(-steps.max()) if steps.size else float("nan"), text)


def _siren_floor(ds) -> Verdict:
    names = [s for s in ("S4", "S5", "S6", "S7", "S8") if s in ds.signal.values]
    gains = [float(_gain(ds.sel(signal=[s]), "siren")[0]) for s in names]
    ok = bool(names) and max(gains) < 3.0
    return Verdict(ok, max(gains) if gains else float("nan"),
                   "SIREN over its zero-output floor: " + ", ".join(f"{s} {g:.2f}" for s, g in zip(names, gains))
                   + " dB (fails: < 3 dB, i.e. less than half of the signal's energy captured)")


def _siren2_above(ds) -> Verdict:
    margin = (ds.best_psnr.sel(model="siren2") - ds.best_psnr.sel(model="siren")).values
    names = [str(s) for s in ds.signal.values]
    return Verdict(bool(np.all(margin > 0)), float(margin.min()),
                   "SIREN^2 minus SIREN: " + ", ".join(f"{s} {m:+.1f}" for s, m in zip(names, margin)) + " dB")


CLAIMS_FIG1 = (
    Claim("siren-falls-s1-s4", 'Fig 1 caption: "the PSNR of SIREN progressively decreases from S1 to S4"',
          "SIREN's peak PSNR drops by > 0.5 dB at each step S1 -> S4", ("best_psnr",), _siren_falls),
    Claim("siren-bottleneck-s4-s8", 'Fig 1 caption: "SIREN fails to capture nearly all the frequencies of signals '
          'S4-S8"', "SIREN's peak PSNR < floor + 3 dB (under half the energy captured) on S4-S8",
          ("best_psnr", "zero_psnr"), _siren_floor),
    Claim("siren2-above-siren", 'Fig 1 caption: "SIREN^2 initialized with WINNER maintains higher PSNR across all '
          'signals"', "SIREN^2's peak PSNR above SIREN's on every signal", ("best_psnr",), _siren2_above),
)
