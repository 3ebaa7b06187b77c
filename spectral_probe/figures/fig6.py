"""Fig 6: SIREN^2's peak PSNR over a grid of WINNER noise scales ``(s0, s1)``, Eqn 11's choice marked.

Two targets: a 1-D signal (``--target`` when it is audio, else the bundled
``synthetic:broadband`` stand-in for tetris.wav) and an image (``--target``
when it is an image, else scikit-image's camera), both resized small on the
quick preset.  The grid is ``factor x (s0, s1)`` of Eqn 11 (from psi, Eqn 10;
on a 1-D crop s0 is scaled by N/150,000 as in :mod:`spectral_probe.training.presets`),
so factor 1 is Eqn 11's choice and factor 0 switches a noise term off.
A plain SIREN (first omega 3000 x N/150,000 for audio, 30 for images) is
trained once per target for reference.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from ..training.presets import RunSpec, estimated_seconds, make_run
from ..training.loop import TrainConfig, fit
from .common import audio_offset, audio_target_spec, image_target, json_attr, maybe_save, training_preset
from .plotting import label_axes, new_figure
from .sizes import figure_sizes

__all__ = ["compute_fig6", "plot_fig6", "estimate_fig6"]


def _train(model: str, target, preset: str, sz: dict, epochs: int, device, seed: int, **kw):
    spec, loaded = make_run(model, target, training_preset(preset), width=sz["width"], depth=sz["depth"],
                            epochs=epochs, seed=seed, train_overrides={"device": device}, **kw)
    return spec, loaded, fit(spec.build_model(), loaded, spec.train)


def _grid(target, preset: str, sz: dict, epochs: int, device, seed: int, crop: dict) -> dict:
    """Eqn 11 scales, then one SIREN^2 run per grid cell and one SIREN run."""
    spec, loaded = make_run("siren2", target, training_preset(preset), width=sz["width"], depth=sz["depth"],
                            epochs=epochs, seed=seed, **crop)
    s0_ref, s1_ref = spec.model_kwargs["s0"], spec.model_kwargs["s1"]
    factors = np.asarray(sz["factors"], dtype=np.float64)
    best = np.full((factors.size, factors.size), np.nan)
    final = np.full_like(best, np.nan)
    start = time.perf_counter()
    for i, f0 in enumerate(factors):
        for j, f1 in enumerate(factors):
            _, _, res = _train("siren2", loaded, preset, sz, epochs, device, seed, s0=f0 * s0_ref, s1=f1 * s1_ref)
            best[i, j], final[i, j] = res.best_psnr, res.final_psnr
    _, _, base = _train("siren", target, preset, sz, epochs, device, seed, **crop)
    return dict(best=best, final=final, s0=factors * s0_ref, s1=factors * s1_ref, s0_ref=s0_ref, s1_ref=s1_ref,
                psi=loaded.psi(), zero=loaded.zero_psnr(), siren=base.best_psnr, name=loaded.name,
                offset=float(loaded.meta.get("offset", 0)),
                grid=list(loaded.grid_shape), seconds=time.perf_counter() - start)


def compute_fig6(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """Peak PSNR of SIREN^2 over ``(s0, s1) = (f0 s0*, f1 s1*)`` for a 1-D and an image target.

    Returns
    -------
    xr.Dataset
        ``psnr (signal, f0, f1)`` (peak), ``final_psnr``, ``s0 (signal, f0)``, ``s1 (signal, f1)``,
        ``s0_eqn11``/``s1_eqn11``/``psi``/``zero_psnr``/``siren_psnr``/``offset`` ``(signal)``;
        signal = audio, image.
    """
    sz = figure_sizes("6", preset, **overrides)
    if 1.0 not in sz["factors"]:
        raise ValueError(f"Fig 6 factors must include 1 (Eqn 11's choice), got {sz['factors']}")
    spec = audio_target_spec(target)
    audio = _grid(spec, preset, sz, sz["audio_epochs"], device, seed,
                  {"num_samples": sz["n"], **audio_offset(spec, sz["offset"])})
    image = _grid(image_target(target, sz["image_size"]), preset, sz, sz["image_epochs"], device, seed, {})
    rows = (audio, image)
    factors = np.asarray(sz["factors"], dtype=np.float64)
    ds = xr.Dataset(
        {"psnr": (("signal", "f0", "f1"), np.stack([r["best"] for r in rows])),
         "final_psnr": (("signal", "f0", "f1"), np.stack([r["final"] for r in rows])),
         "s0": (("signal", "f0"), np.stack([r["s0"] for r in rows])),
         "s1": (("signal", "f1"), np.stack([r["s1"] for r in rows])),
         **{name: ("signal", np.array([r[key] for r in rows], dtype=np.float64))
            for name, key in (("s0_eqn11", "s0_ref"), ("s1_eqn11", "s1_ref"), ("psi", "psi"),
                              ("zero_psnr", "zero"), ("siren_psnr", "siren"), ("seconds", "seconds"),
                              ("offset", "offset"))},
         "target_name": ("signal", [r["name"] for r in rows]),
         "grid_shape": ("signal", ["x".join(map(str, r["grid"])) for r in rows])},
        coords={"signal": ["audio", "image"], "f0": factors, "f1": factors},
        attrs={"figure": "6", "preset": preset, "width": json_attr(sz["width"]), "depth": json_attr(sz["depth"]),
               "audio_epochs": sz["audio_epochs"], "image_epochs": sz["image_epochs"], "seed": seed,
               "sizes": json_attr(sz), "psnr": "peak PSNR over epochs, 10 log10(1/MSE) on [-1, 1] targets",
               "grid": "s0 = f0 * s0_eqn11, s1 = f1 * s1_eqn11 (Eqn 11 from psi, Eqn 10)"})
    return maybe_save(ds, out, "fig6")


def plot_fig6(ds: xr.Dataset):
    """One PSNR heatmap per target; the Eqn 11 cell is outlined and starred."""
    fig, axes = new_figure(1, 2, 12, 5.2)
    for c, signal in enumerate(ds.signal.values):
        ax, row = axes[0, c], ds.sel(signal=signal)
        vmin, vmax = float(row.zero_psnr), float(np.nanmax(row.psnr))     # colour scale per target
        grid = row.psnr.values.T                                      # rows: s1, columns: s0
        im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for i in range(grid.shape[1]):
            for j in range(grid.shape[0]):
                ax.text(i, j, f"{grid[j, i]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[j, i] < 0.6 * vmax + 0.4 * vmin else "black")
        i1 = int(np.flatnonzero(row.f0.values == 1.0)[0])
        j1 = int(np.flatnonzero(row.f1.values == 1.0)[0])
        ax.add_patch(_outline(i1, j1))
        ax.plot(i1 + 0.32, j1 + 0.3, marker="*", color="tab:red", markersize=14)
        ax.set_xticks(range(row.sizes["f0"]), [f"{v:.3g}" for v in row.s0.values])
        ax.set_yticks(range(row.sizes["f1"]), [f"{v:.3g}" for v in row.s1.values])
        label_axes(ax, "s0 (layer-1 noise scale)", "s1 (layer-2 noise scale)",
                   f"{signal}: {row.target_name.item()} ({row.grid_shape.item()}{_from(row)}), "
                   f"$\\psi$ = {float(row.psi):.3f}\n"
                   f"star: Eqn 11 (s0={float(row.s0_eqn11):.3g}, s1={float(row.s1_eqn11):.3g}); "
                   f"zero-output floor {float(row.zero_psnr):.1f} dB; plain SIREN {float(row.siren_psnr):.1f} dB")
        fig.colorbar(im, ax=ax, shrink=0.85, label="peak PSNR (dB)")
    fig.suptitle(f"Fig 6: SIREN$^2$ PSNR over the noise scales (s0, s1); {ds.attrs['audio_epochs']} / "
                 f"{ds.attrs['image_epochs']} epochs (audio / image), preset {ds.attrs['preset']}", fontsize=11)
    return fig


def _from(row) -> str:
    offset = int(row.offset) if "offset" in row else 0
    return f" from sample {offset}" if offset else ""


def _outline(i: int, j: int):
    from matplotlib.patches import Rectangle

    return Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=2.5)


def estimate_fig6(preset: str) -> float:
    """CPU seconds from :func:`spectral_probe.training.presets.estimated_seconds`: (grid + 1) runs per target."""
    sz = figure_sizes("6", preset)
    from ..training.presets import PRESETS

    p = PRESETS[training_preset(preset)]
    runs = len(sz["factors"]) ** 2 + 1
    total = 0.0
    for n, epochs, width, depth in ((sz["n"] or p.audio_samples, sz["audio_epochs"], sz["width"] or p.audio_width,
                                     sz["depth"] or p.audio_depth),
                                    (sz["image_size"] ** 2, sz["image_epochs"], sz["width"] or p.image_width,
                                     sz["depth"] or p.image_depth)):
        spec = RunSpec(model="siren2", model_kwargs={"width": width, "depth": depth},
                       train=TrainConfig(epochs=epochs), target="", target_kwargs={}, preset=preset, seed=0)
        total += runs * estimated_seconds(spec, n)
    return total
