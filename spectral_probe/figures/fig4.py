"""Fig 4: SIREN on the Eqn 5 low- and high-frequency targets: output and NTK spectrum over training.

The paper (arXiv 2509.09719, Sec 2.2): Eqn 5's two signals (amplitudes [1, 2, 4]/7, tones at
[0.25, 0.50, 0.75] or [0.85, 0.90, 0.95] x the Nyquist frequency, N = 2^16) fitted by "a five-layer
SIREN with 128 hidden units, omega0 = 30, and inputs scaled by 10, giving a first-layer frequency
of 300"; S(k) (Eqn 6) tracked during training.  The claim: "SIREN accurately reconstructs the
low-frequency target, with S(k) progressively increasing in the relevant modes", while for the
high-frequency target "the output remains near zero and S(k) is steadily suppressed".

Targets: ``synthetic:<band>`` for each entry of the ``bands`` size (:func:`spectral_probe.signals.eqn5`):
``low`` (Eqn 5's amplitudes and fractions applied to the network's first-layer band, 24/48/72
cycles per record), ``high`` (Eqn 5 as written), and on the ``paper`` preset also
``eqn5-paper-low`` (Eqn 5's low signal as written: 0.25-0.75 x Nyquist, psi 0.607 -- not low for
this network at N = 2^16; see the signals module and benchmarks/README.md, "Eqn 5").  SIREN from
:func:`spectral_probe.training.presets.make_run` with the first-layer omega of the ``first_omega`` size (300);
every ``every`` epochs the model output is kept and an :class:`~spectral_probe.ntk.NTKSnapshot`
records ``S(k)``; the figure shows ``log(1 + S_auth)`` with the authors' normalisation ``S_auth =
S / N^2`` (:func:`spectral_probe.ntk.authors_convention`).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm

from ..probes import stats
from ..ntk import NTKSnapshot
from ..training.presets import make_run
from ..signals import EQN5_BANDS
from ..training.loop import fit
from ..validation import check_known
from .common import OutputRecorder, json_attr, maybe_save, training_preset
from .plotting import label_axes, new_figure
from .sizes import figure_sizes

__all__ = ["compute_fig4", "plot_fig4", "estimate_fig4", "BANDS"]

#: the Eqn 5 targets a figure may show (``bands`` size)
BANDS = tuple(EQN5_BANDS)


def _bands(value) -> list[str]:
    bands = [b.strip() for b in value.split(",")] if isinstance(value, str) else [str(b) for b in value]
    check_known(bands, BANDS, "Eqn 5 band", exc=ValueError)
    if not bands:
        raise ValueError(f"Fig 4 needs at least one band of {', '.join(BANDS)}")
    return bands


def _one_band(band: str, preset: str, sz: dict, device, seed: int) -> xr.Dataset:
    spec, target = make_run("siren", f"synthetic:{band}", training_preset(preset), num_samples=sz["n"],
                            width=sz["width"], depth=sz["depth"], epochs=sz["epochs"], seed=seed,
                            first_omega=float(sz["first_omega"]), train_overrides={"device": device})
    outputs, snap = OutputRecorder(sz["every"]), NTKSnapshot(every=sz["every"])
    result = fit(spec.build_model(), target, spec.train, probes=[snap], callbacks=[outputs])
    ntk = snap.to_dataset()
    n = target.n
    values = target.values[:, 0].double()
    t_psd = stats.psd_1d(values)
    return xr.Dataset(
        {"output": outputs.to_array(),
         "spectrum": ntk.spectrum, "log1p_s": np.log1p(ntk.spectrum / n ** 2),   # authors_convention: S / N^2
         "high_frequency_share": ntk.high_frequency_share,
         "target": ("sample", values.float().numpy()), "target_psd": ("k", t_psd.psd.numpy()),
         "psnr": ("train_epoch", result.history["psnr"]),
         "zero_psnr": target.zero_psnr(), "best_psnr": result.best_psnr,
         "tones": ("tone", np.asarray(target.meta.get("freqs_nyquist", []), dtype=np.float64)),
         "psi": target.psi()},
        coords={"train_epoch": result.history["epoch"] + 1, "k": ntk.k.values, "omega": ("k", ntk.omega.values)},
        attrs={f"{band}_config": json_attr(spec.to_dict())})


def compute_fig4(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """Train SIREN on both Eqn 5 targets with output and NTK snapshots every ``every`` epochs.

    Returns
    -------
    xr.Dataset
        ``output (band, epoch, sample)``, ``spectrum (band, epoch, k)`` (one-sided ``S(k)``, Eqn 6),
        ``log1p_s (band, epoch, k)`` = ``log(1 + S/N^2)``, ``high_frequency_share (band, epoch)``,
        ``target (band, sample)``, ``target_psd (band, k)``, ``psnr (band, train_epoch)``,
        ``zero_psnr``/``best_psnr (band)``, ``tones (band, tone)`` (fractions of Nyquist).
    """
    sz = figure_sizes("4", preset, **overrides)
    bands = _bands(sz["bands"])
    parts = [_one_band(b, preset, sz, device, seed) for b in bands]
    ds = xr.concat(parts, dim="band", coords="minimal", compat="override", combine_attrs="drop")
    ds = ds.assign_coords(band=bands)
    ds.attrs = {"figure": "4", "preset": preset, "n": sz["n"], "width": sz["width"], "depth": sz["depth"],
                "first_omega": float(sz["first_omega"]),
                "epochs": sz["epochs"], "every": sz["every"], "window": sz["window"], "seed": seed,
                "sizes": json_attr(sz), "spectrum": "S(k) one-sided, k cycles per record (Eqn 6); "
                "log1p_s = log(1 + S/N^2), the authors' normalisation",
                **{k: v for p in parts for k, v in p.attrs.items()}}
    return maybe_save(ds, out, "fig4")


def plot_fig4(ds: xr.Dataset):
    """Columns: the bands.  Rows: outputs vs target, PSNR, log(1+S) over epochs, S(k) at a few epochs."""
    fig, axes = new_figure(4, ds.sizes["band"], 6 * ds.sizes["band"], 12)
    epochs = ds.epoch.values
    shown = sorted({int(epochs[0]), int(epochs[len(epochs) // 2]), int(epochs[-1])})
    shades = dict(zip(shown, ("0.6", "tab:orange", "tab:blue")))
    x_frac = ds.omega.values / math.pi
    for c, band in enumerate(ds.band.values):
        row = ds.sel(band=band)
        high = float(row.tones.max()) > 0.05                  # tones near Nyquist: a short window; else 1/8 of it
        window = slice(0, int(ds.attrs["window"]) if high else max(row.sizes["sample"] // 8, 2))
        ax = axes[0, c]
        ax.plot(row.target[window], color="k", lw=1.6, label="target")
        for e in shown:
            ax.plot(row.output.sel(epoch=e)[window], color=shades[e], lw=1, label=f"output, epoch {e}")
        label_axes(ax, "sample", "value", f"synthetic:{band} (Eqn 5, $\\psi$ {float(row.psi):.3f}), "
                   f"samples 0-{window.stop - 1}")
        ax.set_ylim(-1.6, 1.25)
        ax.legend(fontsize=7, ncol=4, loc="lower center", frameon=False)
        ax = axes[1, c]
        ax.plot(row.train_epoch, row.psnr, color="tab:blue", label=f"SIREN (best {float(row.best_psnr):.1f} dB)")
        ax.axhline(float(row.zero_psnr), color="k", ls=":", label="zero-output floor")
        label_axes(ax, "epoch", "PSNR (dB)", "training PSNR", legend=True, fontsize=7)
        ax = axes[2, c]
        values = row.log1p_s.values[:, 1:]
        top = float(np.nanmax(values))
        norm = LogNorm(vmin=max(top * 1e-7, float(np.nanmin(values[values > 0]))), vmax=top)
        mesh = ax.pcolormesh(x_frac[1:], epochs, values, shading="nearest", cmap="magma", norm=norm)
        for f in row.tones.values[np.isfinite(row.tones.values)]:
            ax.axvline(f, color="cyan", lw=0.8, ls="--")
        ax.set_xscale("log")
        fig.colorbar(mesh, ax=ax, label=r"$\log(1 + S(k)/N^2)$ (log colour scale)")
        label_axes(ax, r"$\omega/\pi$ (fraction of Nyquist; dashed: target tones)", "epoch",
                   "NTK spectrum over training")
        ax = axes[3, c]
        for e in shown:
            s = row.spectrum.sel(epoch=e) / ds.attrs["n"] ** 2
            ax.loglog(x_frac[1:], s[1:], color=shades[e], lw=1, label=f"epoch {e}")
        for f in row.tones.values[np.isfinite(row.tones.values)]:
            ax.axvline(f, color="k", lw=0.8, ls="--")
        label_axes(ax, r"$\omega/\pi$", r"$S(k)/N^2$", "NTK snapshots (dashed: target tones)", legend=True,
                   fontsize=7)
    a = ds.attrs
    fig.suptitle(f"Fig 4: SIREN ({a['depth']}x{a['width']}, first-layer omega {a.get('first_omega', 0):g}) on the "
                 f"Eqn 5 targets, N = {a['n']}, {a['epochs']} epochs, NTK every {a['every']} epochs", fontsize=11)
    return fig


def estimate_fig4(preset: str) -> float:
    """Rough CPU seconds: one run per band (1.2e-10 s per sample x width^2 x layer x epoch) and its NTK snapshots."""
    sz = figure_sizes("4", preset)
    unit = sz["n"] * sz["width"] ** 2 * sz["depth"]
    snapshots = sz["epochs"] // sz["every"] + 1
    return len(_bands(sz["bands"])) * (sz["epochs"] * unit * 1.2e-10 + snapshots * unit * 5e-9)
