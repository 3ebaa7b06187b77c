"""Fig 2b,c: PSNR histories of SIREN on tetris.wav for different input scalings and network sizes.

The paper (arXiv 2509.09719, Sec 2.1 and Fig 2 caption): a five-layer MLP (four sine layers and
the linear output, as Table 1 counts "4 x 222"), learning rate 1e-4 reduced by 2 % every 20 epochs;
"although input scaling improves PSNR value, significant errors remain": a maximum of ~23.5 dB with
a scaling factor of 3 x 10^4, and larger networks do not resolve it.  An input scaling ``a`` maps
``x ~ U(-1, 1)`` to ``U(-a, a)`` (Sec 2.1), i.e. a first-layer omega of ``30 a``; Fig 2a's
"first layer omega0 = 30000" is ``a = 1000`` with width 128.  The paper's other scalings and sizes
are not stated; ours are in :mod:`spectral_probe.figures.sizes`.

On a crop of ``N`` samples the first-layer omega is multiplied by ``N / 150,000`` (as
:mod:`spectral_probe.training.presets` does), so each scaling keeps its frequency relative to Nyquist.
Target: ``--target`` or the bundled stand-in ``synthetic:broadband``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..training.presets import PAPER_AUDIO_SAMPLES, PRESETS, RunSpec, estimated_seconds, make_run
from ..training.loop import TrainConfig, fit
from .common import audio_offset, audio_target_spec, json_attr, maybe_save, training_preset
from .plotting import label_axes, new_figure
from .sizes import figure_sizes

__all__ = ["compute_fig2", "plot_fig2", "estimate_fig2", "SIREN_OMEGA"]

#: SIREN's omega0 (Sec 5.1: "SIREN and FINER use omega0 = 30")
SIREN_OMEGA = 30.0


def _history(target: str, preset: str, sz: dict, width: int, scaling: float, device, seed: int):
    spec, loaded = make_run("siren", target, training_preset(preset), num_samples=sz["n"],
                            **audio_offset(target, sz["offset"]), width=width, depth=sz["depth"],
                            epochs=sz["epochs"], seed=seed, train_overrides={"device": device,
                                                                             "lr_gamma": sz["lr_gamma"]})
    omega = SIREN_OMEGA * scaling * loaded.n / PAPER_AUDIO_SAMPLES
    spec.model_kwargs["first_omega"] = omega
    result = fit(spec.build_model(), loaded, spec.train)
    return loaded, result, spec


def compute_fig2(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """SIREN's PSNR per epoch for each input scaling (width ``width``) and each width (scaling ``size_scaling``).

    Returns
    -------
    xr.Dataset
        ``psnr_scaling (scaling, train_epoch)``, ``psnr_size (width, train_epoch)``, their peaks
        ``best_scaling (scaling)``, ``best_size (width)``, the first-layer omegas used, and
        ``zero_psnr``.
    """
    sz = figure_sizes("2", preset, **overrides)
    spec_name = audio_target_spec(target)
    scalings = [float(a) for a in sz["scalings"]]
    widths = [int(w) for w in sz["widths"]]
    runs: dict[tuple[float, int], tuple] = {}
    for a in scalings:
        runs[(a, sz["width"])] = _history(spec_name, preset, sz, sz["width"], a, device, seed)
    for w in widths:
        key = (float(sz["size_scaling"]), w)
        if key not in runs:
            runs[key] = _history(spec_name, preset, sz, w, key[0], device, seed)
    loaded = next(iter(runs.values()))[0]
    epochs = np.asarray(next(iter(runs.values()))[1].history["epoch"]) + 1

    def stack(keys):
        return np.stack([np.asarray(runs[k][1].history["psnr"], dtype=np.float64) for k in keys])

    by_scaling = [(a, sz["width"]) for a in scalings]
    by_size = [(float(sz["size_scaling"]), w) for w in widths]
    ds = xr.Dataset(
        {"psnr_scaling": (("scaling", "train_epoch"), stack(by_scaling)),
         "psnr_size": (("width", "train_epoch"), stack(by_size)),
         "best_scaling": ("scaling", np.array([runs[k][1].best_psnr for k in by_scaling])),
         "best_size": ("width", np.array([runs[k][1].best_psnr for k in by_size])),
         "first_omega": ("scaling", np.array([runs[k][2].model_kwargs["first_omega"] for k in by_scaling])),
         "zero_psnr": loaded.zero_psnr()},
        coords={"scaling": scalings, "width": widths, "train_epoch": epochs},
        attrs={"figure": "2", "preset": preset, "target": spec_name, "target_name": loaded.name, "n": loaded.n,
               "psi": float(loaded.psi()), "depth": sz["depth"], "base_width": sz["width"],
               "size_scaling": float(sz["size_scaling"]), "epochs": int(epochs[-1]), "lr_gamma": sz["lr_gamma"],
               "seed": seed, "sizes": json_attr(sz),
               "scaling": f"first-layer omega = {SIREN_OMEGA:g} x scaling x N/{PAPER_AUDIO_SAMPLES}"})
    return maybe_save(ds, out, "fig2")


def plot_fig2(ds: xr.Dataset):
    """(b) PSNR histories over input scalings; (c) over network widths; the zero-output floor dotted."""
    fig, axes = new_figure(1, 2, 12, 4.6)
    a = ds.attrs
    cmap = __import__("matplotlib").colormaps["viridis"]
    for ax, var, dim, title, fmt in (
            (axes[0, 0], "psnr_scaling", "scaling", f"(b) input scalings, width {a['base_width']}",
             lambda v, b: f"scaling {v:g} (best {b:.1f} dB)"),
            (axes[0, 1], "psnr_size", "width", f"(c) network sizes, scaling {a['size_scaling']:g}",
             lambda v, b: f"{a['depth']}x{int(v)} (best {b:.1f} dB)")):
        values = ds[dim].values
        best = ds["best_scaling" if dim == "scaling" else "best_size"].values
        for i, (v, b) in enumerate(zip(values, best)):
            ax.plot(ds.train_epoch, ds[var].isel({dim: i}), color=cmap(i / max(len(values) - 1, 1)), lw=1.1,
                    label=fmt(float(v), float(b)))
        ax.axhline(float(ds.zero_psnr), color="k", ls=":", label="zero-output floor")
        ax.set_xscale("log")
        label_axes(ax, "epoch", "PSNR (dB)", title, legend=True, fontsize=7)
    fig.suptitle(f"Fig 2: SIREN on {a['target_name']} (N = {a['n']}, $\\psi$ = {a['psi']:.3f}), {a['depth']} sine "
                 f"layers, lr 1e-4 x {a['lr_gamma']:g} every 20 epochs; first-layer omega = 30 x scaling"
                 + (f" x N/{PAPER_AUDIO_SAMPLES}" if a["n"] != PAPER_AUDIO_SAMPLES else ""), fontsize=10)
    return fig


def estimate_fig2(preset: str) -> float:
    """CPU seconds of the runs (:func:`spectral_probe.training.presets.estimated_seconds`)."""
    sz = figure_sizes("2", preset)
    p = PRESETS[training_preset(preset)]
    n = sz["n"] or p.audio_samples
    widths = [sz["width"]] * len(sz["scalings"]) + [w for w in sz["widths"] if w != sz["width"]]
    total = 0.0
    for w in widths:
        spec = RunSpec(model="siren", model_kwargs={"width": w, "depth": sz["depth"]},
                       train=TrainConfig(epochs=sz["epochs"]), target="", target_kwargs={}, preset=preset, seed=0)
        total += estimated_seconds(spec, n)
    return total
