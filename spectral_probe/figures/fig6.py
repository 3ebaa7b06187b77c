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
from ..training.loop import TrainConfig
from .claims import Claim, Verdict
from .common import (audio_offset, audio_target_spec, image_target, image_target_spec, json_attr, run_settings,
                     train_part, training_preset, training_work)
from .parts import FigurePart, target_settings
from .plotting import label_axes, new_figure, suptitle
from .sizes import figure_sizes

__all__ = ["compute_fig6", "plot_fig6", "estimate_fig6", "parts_fig6", "compute_part_fig6", "assemble_fig6",
           "CLAIMS_FIG6", "NEAR_OPTIMAL_DB"]

#: "near-optimal" (Fig 6 caption) in the check: within this many dB of the grid's best cell
NEAR_OPTIMAL_DB = 3.0


_SIGNALS = ("audio", "image")


def _target(ctx, signal: str):
    """``(target for make_run, crop kwargs, identity for the settings)`` of the audio or image grid."""
    sz = ctx.sizes
    if signal == "audio":
        spec = audio_target_spec(ctx.target)
        return spec, {"num_samples": sz["n"], **audio_offset(spec, sz["offset"])}, \
            {"target": target_settings(spec), "offset": sz["offset"], "n": sz["n"]}
    return image_target(ctx.target, sz["image_size"]), {}, \
        {"target": target_settings(image_target_spec(ctx.target)), "size": sz["image_size"]}


def _epochs(ctx, signal: str) -> int:
    return ctx.sizes["audio_epochs" if signal == "audio" else "image_epochs"]


def _spec(ctx, signal: str, model: str, **scales):
    sz = ctx.sizes
    target, crop, _ = _target(ctx, signal)
    return make_run(model, target, training_preset(ctx.preset), width=sz["width"], depth=sz["depth"],
                    epochs=_epochs(ctx, signal), seed=ctx.seed, train_overrides={"device": ctx.device}, **crop,
                    **scales)


def _reference(ctx, signal: str) -> tuple[float, float, object]:
    """Eqn 11's ``(s0, s1)`` for the target (s0 scaled by N/150,000 on a 1-D crop) and the loaded target."""
    spec, loaded = _spec(ctx, signal, "siren2")
    return spec.model_kwargs["s0"], spec.model_kwargs["s1"], loaded


def _cells(ctx) -> list[tuple[str, str, int, int]]:
    n = len(ctx.sizes["factors"])
    return [(f"{signal}-cell-{i:02d}-{j:02d}", signal, i, j) for signal in _SIGNALS for i in range(n)
            for j in range(n)] + [(f"{signal}-siren", signal, -1, -1) for signal in _SIGNALS]


def _part_spec(ctx, signal: str, i: int, j: int, refs: dict):
    if i < 0:
        return _spec(ctx, signal, "siren")
    s0, s1, _ = refs[signal]
    factors = ctx.sizes["factors"]
    return _spec(ctx, signal, "siren2", s0=float(factors[i]) * s0, s1=float(factors[j]) * s1)


def parts_fig6(ctx) -> list[FigurePart]:
    """One part per grid cell (``audio-cell-01-02``: f0 = factors[1], f1 = factors[2]) and per plain SIREN."""
    refs = {signal: _reference(ctx, signal) for signal in _SIGNALS}
    out = []
    for name, signal, i, j in _cells(ctx):
        spec, loaded = _part_spec(ctx, signal, i, j, refs)
        out.append(FigurePart(name, run_settings(spec, _target(ctx, signal)[2]), (training_work(spec, loaded),)))
    return out


def compute_part_fig6(part: FigurePart, ctx):
    """Train one cell (or the plain SIREN): its peak and final PSNR."""
    _, signal, i, j = next(c for c in _cells(ctx) if c[0] == part.name)
    refs = {signal: _reference(ctx, signal)}
    spec, loaded = _part_spec(ctx, signal, i, j, refs)
    start = time.perf_counter()
    _, result, complete = train_part(part, ctx, spec, loaded)
    if not complete:
        return None, result.epochs_run / spec.train.epochs
    return xr.Dataset({"best_psnr": result.best_psnr, "final_psnr": result.final_psnr,
                       "seconds": time.perf_counter() - start}), 1.0


def assemble_fig6(datasets: dict, ctx) -> xr.Dataset:
    """``psnr (signal, f0, f1)`` (peak), ``final_psnr``, ``s0 (signal, f0)``, ``s1 (signal, f1)``,
    ``s0_eqn11``/``s1_eqn11``/``psi``/``zero_psnr``/``siren_psnr``/``offset``/``seconds (signal)``."""
    sz = ctx.sizes
    factors = np.asarray(sz["factors"], dtype=np.float64)
    rows = []
    for signal in _SIGNALS:
        s0_ref, s1_ref, loaded = _reference(ctx, signal)
        cell = {(i, j): datasets[f"{signal}-cell-{i:02d}-{j:02d}"] for i in range(factors.size)
                for j in range(factors.size)}
        best = np.array([[float(cell[i, j].best_psnr) for j in range(factors.size)] for i in range(factors.size)])
        final = np.array([[float(cell[i, j].final_psnr) for j in range(factors.size)] for i in range(factors.size)])
        rows.append(dict(best=best, final=final, s0=factors * s0_ref, s1=factors * s1_ref, s0_ref=s0_ref,
                         s1_ref=s1_ref, psi=loaded.psi(), zero=loaded.zero_psnr(),
                         siren=float(datasets[f"{signal}-siren"].best_psnr), name=loaded.name,
                         offset=float(loaded.meta.get("offset", 0)), grid=list(loaded.grid_shape),
                         seconds=sum(float(c.seconds) for c in cell.values())))
    return xr.Dataset(
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
        coords={"signal": list(_SIGNALS), "f0": factors, "f1": factors},
        attrs={"figure": "6", "preset": ctx.preset, "width": json_attr(sz["width"]), "depth": json_attr(sz["depth"]),
               "audio_epochs": sz["audio_epochs"], "image_epochs": sz["image_epochs"], "seed": ctx.seed,
               "sizes": json_attr(sz), "psnr_definition": "peak PSNR over epochs, 10 log10(1/MSE) on [-1, 1] targets",
               "grid": "s0 = f0 * s0_eqn11, s1 = f1 * s1_eqn11 (Eqn 11 from psi, Eqn 10)"})


def compute_fig6(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """SIREN^2's peak PSNR over the (s0, s1) grid for an audio and an image target (in memory)."""
    from .registry import get_recipe

    sz = figure_sizes("6", preset, **overrides)
    if 1.0 not in sz["factors"]:
        raise ValueError(f"Fig 6 factors must include 1 (Eqn 11's choice), got {sz['factors']}")
    return get_recipe("6").compute(preset, target, out, device=device, seed=seed, **overrides)


def plot_fig6(ds: xr.Dataset):
    """One PSNR heatmap per target; the Eqn 11 cell is outlined and starred."""
    fig, axes = new_figure(1, 2, 12, 5.2)
    for c, signal in enumerate(ds.signal.values):
        ax, row = axes[0, c], ds.sel(signal=signal)
        vmin, vmax = float(row.zero_psnr), float(np.nanmax(row.psnr))     # colour scale per target
        grid = row.psnr.values.T                                      # rows: s1, columns: s0
        im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        i1 = int(np.flatnonzero(row.f0.values == 1.0)[0])
        j1 = int(np.flatnonzero(row.f1.values == 1.0)[0])
        ib, jb = np.unravel_index(int(np.nanargmax(grid.T)), grid.T.shape)      # best cell (f0 index, f1 index)
        for i in range(grid.shape[1]):
            for j in range(grid.shape[0]):
                marked = (i, j) in ((i1, j1), (ib, jb))
                ax.text(i, j - (0.24 if marked else 0.0), f"{grid[j, i]:.1f}", ha="center", va="center",
                        fontsize=8, color="white" if grid[j, i] < 0.6 * vmax + 0.4 * vmin else "black")
        ax.add_patch(_outline(i1, j1))
        ax.plot(i1, j1 + 0.08, marker="*", color="tab:red", markersize=15, markeredgecolor="white",
                label="Eqn 11")
        if (ib, jb) != (i1, j1):
            ax.plot(ib, jb + 0.08, marker="o", color="white", markersize=9, markeredgecolor="k",
                    label="best cell")
        ax.set_xticks(range(row.sizes["f0"]), [f"{v:.3g}" for v in row.s0.values])
        ax.set_yticks(range(row.sizes["f1"]), [f"{v:.3g}" for v in row.s1.values])
        label_axes(ax, "s0 (layer-1 noise scale)", "s1 (layer-2 noise scale)",
                   f"{signal}: {row.target_name.item()} ({row.grid_shape.item()}{_from(row)}), "
                   f"$\\psi$ = {float(row.psi):.3f}\n"
                   f"star: Eqn 11 (s0={float(row.s0_eqn11):.3g}, s1={float(row.s1_eqn11):.3g}), "
                   f"{float(row.psnr.sel(f0=1.0, f1=1.0)):.1f} dB vs best {float(row.psnr.max()):.1f} dB\n"
                   f"zero-output floor {float(row.zero_psnr):.1f} dB; plain SIREN {float(row.siren_psnr):.1f} dB",
                   fontsize=7.5)
        fig.colorbar(im, ax=ax, shrink=0.85, label="peak PSNR (dB)")
    suptitle(fig, f"Fig 6: SIREN$^2$ PSNR over the noise scales (s0, s1); {ds.attrs['audio_epochs']} / "
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


# ----------------------------------------------------------------------------- claims
def _near_optimal(signal: str):
    def check(ds) -> Verdict:
        row = ds.sel(signal=signal)
        eqn11 = float(row.psnr.sel(f0=1.0, f1=1.0))
        best = float(row.psnr.max())
        i, j = np.unravel_index(int(np.nanargmax(row.psnr.values)), row.psnr.shape)
        gap = best - eqn11
        return Verdict(gap <= NEAR_OPTIMAL_DB, gap,
                       f"{signal} ({row.target_name.item()}, {row.grid_shape.item()}): Eqn 11 cell {eqn11:.1f} dB, "
                       f"best {best:.1f} dB at s0 = {float(row.s0[i]):.3g}, s1 = {float(row.s1[j]):.3g} "
                       f"({gap:.1f} dB below; near-optimal: <= {NEAR_OPTIMAL_DB:g})")
    return check


CLAIMS_FIG6 = tuple(
    Claim(f"eqn11-near-optimal-{signal}", 'Fig 6 caption: "the cross-mark indicating the target-aware scales from '
          'Eqn. 11 that consistently yield near-optimal results"', f"{signal}: the Eqn 11 cell within "
          f"{NEAR_OPTIMAL_DB:g} dB of the grid's best cell", ("psnr", "s0", "s1"), _near_optimal(signal))
    for signal in _SIGNALS)
