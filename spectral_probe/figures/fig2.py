"""Fig 2: SIREN on tetris.wav -- (a) spectrograms of the target, the reconstruction and the error;
(b, c) PSNR histories for different input scalings and network sizes.

The paper (arXiv 2509.09719, Sec 2.1 and Fig 2 caption): a five-layer MLP (four sine layers and
the linear output, as Table 1 counts "4 x 222"), learning rate 1e-4 reduced by 2 % every 20 epochs;
"although input scaling improves PSNR value, significant errors remain, as shown in the spectrogram
error": "a maximum PSNR value of just ~23.5 dB was achieved using a scaling factor of 3 x 10^4",
and "increasing network size (Fig. 2b) ... none of which resolve this issue".

**Which number the scaling is.**  Fig 2a is "computed using first layer omega0 = 30000 and hidden
layer width 128", and the text's best scaling is 3 x 10^4: we read the paper's "scaling factor" as
the first-layer frequency itself, ``sin(scaling * (w x + b))`` with ``x`` in [-1, 1] (SIREN's
``first_omega``; the authors' scripts write Sec 5.1's x100 rule as ``first_w0=3000``).  The
other reading -- inputs ``U(-a, a)`` times omega0 = 30 (Sec 2.1, Proposition 1), first-layer
frequency 30 a -- puts a = 3 x 10^4 at 9 x 10^5 rad per unit of x, 3.8x the Nyquist rate of 150,000
samples on [-1, 1] (pi x 75,000); it is among our scalings (9e5), so the figure shows both.

On a crop of ``N`` samples the first-layer frequency is multiplied by ``N / 150,000`` (as
:mod:`spectral_probe.training.presets` does), so each scaling keeps its frequency relative to Nyquist.
Target: ``--target``, else tetris.wav when ``$SPECTRAL_PROBE_DATA`` has it (quick and paper presets),
else the bundled stand-in ``synthetic:broadband`` (said in the title).  One part per run.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..training.presets import PAPER_AUDIO_SAMPLES, PRESETS, RunSpec, estimated_seconds, make_run
from ..training.loop import TrainConfig
from .claims import Claim, Verdict
from .common import (audio_offset, audio_target_spec, json_attr, run_settings, target_caption, train_part,
                     training_preset, training_work)
from .parts import FigurePart, target_settings
from .plotting import label_axes, suptitle
from .sizes import figure_sizes

__all__ = ["compute_fig2", "plot_fig2", "estimate_fig2", "parts_fig2", "compute_part_fig2", "assemble_fig2",
           "spectrogram_db", "CLAIMS_FIG2", "PAPER_BEST_SCALING", "PAPER_BEST_PSNR"]

#: Sec 2.1: "A maximum PSNR value of just ~23.5dB was achieved using a scaling factor of 3x10^4"
PAPER_BEST_SCALING, PAPER_BEST_PSNR = 30000.0, 23.5
#: STFT of panel (a): 1024-sample Hann windows, half overlap (the authors' make_spectrograms.py uses
#: nperseg 1024, noverlap 512)
_NPERSEG, _NOVERLAP = 1024, 512


def spectrogram_db(x: np.ndarray, nperseg: int = _NPERSEG, noverlap: int = _NOVERLAP):
    """``(freq in cycles/sample, frame centre in samples, 10 log10 PSD)`` of a 1-D signal (Hann windows)."""
    from scipy.signal import spectrogram

    short = min(nperseg, max(32, x.size // 8))             # short records (test preset): >= 15 frames
    noverlap = noverlap if short == nperseg else short // 2
    f, t, sxx = spectrogram(np.asarray(x, dtype=np.float64), fs=1.0, window="hann", nperseg=short,
                            noverlap=min(noverlap, short - 1), scaling="density", mode="psd")
    return f, t, 10.0 * np.log10(sxx + 1e-12)


def _runs(sz: dict) -> list[tuple[float, int]]:
    """``(first-layer frequency, width)`` of every run: the scalings at the base width, the widths at ``size_scaling``."""
    keys = [(float(a), int(sz["width"])) for a in sz["scalings"]]
    keys += [(float(sz["size_scaling"]), int(w)) for w in sz["widths"]]
    return list(dict.fromkeys(keys))


def _name(scaling: float, width: int) -> str:
    return f"omega-{scaling:.0f}-w{width}"


def _target(ctx) -> str:
    return audio_target_spec(ctx.target, prefer_data=ctx.preset != "test")


def _spec(ctx, scaling: float, width: int):
    sz = ctx.sizes
    spec_name = _target(ctx)
    spec, loaded = make_run("siren", spec_name, training_preset(ctx.preset), num_samples=sz["n"],
                            **audio_offset(spec_name, sz["offset"]), width=width, depth=sz["depth"],
                            epochs=sz["epochs"], seed=ctx.seed,
                            train_overrides={"device": ctx.device, "lr_gamma": sz["lr_gamma"]})
    spec.model_kwargs["first_omega"] = scaling * loaded.n / PAPER_AUDIO_SAMPLES
    return spec, loaded


def parts_fig2(ctx) -> list[FigurePart]:
    """One part per run: ``omega-30000-w128`` = first-layer frequency 30000 (before the crop factor), width 128."""
    out = []
    ident = target_settings(_target(ctx))
    for scaling, width in _runs(ctx.sizes):
        spec, loaded = _spec(ctx, scaling, width)
        out.append(FigurePart(_name(scaling, width), run_settings(spec, ident, offset=ctx.sizes["offset"]),
                              (training_work(spec, loaded),)))
    return out


def compute_part_fig2(part: FigurePart, ctx):
    """One SIREN run: PSNR history, peak PSNR and the output of its best state."""
    _, omega, width = part.name.split("-")
    spec, loaded = _spec(ctx, float(omega), int(width[1:]))
    model, result, complete = train_part(part, ctx, spec, loaded)
    if not complete:
        return None, result.epochs_run / spec.train.epochs
    with torch.no_grad():
        coords = loaded.coords(device=next(model.parameters()).device)
        output = model(coords)[:, 0].float().cpu().numpy()
    return xr.Dataset({"best_psnr": result.best_psnr, "psnr": ("train_epoch", np.asarray(result.history["psnr"])),
                       "output": ("sample", output), "first_omega": spec.model_kwargs["first_omega"]},
                      coords={"train_epoch": result.history["epoch"] + 1}), 1.0


def assemble_fig2(datasets: dict, ctx) -> xr.Dataset:
    """PSNR histories by scaling and by width, the spectrograms of panel (a) and the zero-output floor."""
    sz = ctx.sizes
    spec_name = _target(ctx)
    scalings = [float(a) for a in sz["scalings"]]
    widths = [int(w) for w in sz["widths"]]
    by_scaling = [datasets[_name(a, sz["width"])] for a in scalings]
    by_size = [datasets[_name(sz["size_scaling"], w)] for w in widths]
    shown = datasets[_name(sz["size_scaling"], sz["width"])]
    _, loaded = _spec(ctx, float(sz["size_scaling"]), int(sz["width"]))
    target = loaded.values[:, 0].double().numpy()
    f, t, s_target = spectrogram_db(target)
    _, _, s_output = spectrogram_db(shown.output.values)
    _, _, s_error = spectrogram_db(target - shown.output.values)
    epochs = by_scaling[0].train_epoch.values
    return xr.Dataset(
        {"psnr_scaling": (("scaling", "train_epoch"), np.stack([d.psnr.values for d in by_scaling])),
         "psnr_size": (("width", "train_epoch"), np.stack([d.psnr.values for d in by_size])),
         "best_scaling": ("scaling", np.array([float(d.best_psnr) for d in by_scaling])),
         "best_size": ("width", np.array([float(d.best_psnr) for d in by_size])),
         "first_omega": ("scaling", np.array([float(d.first_omega) for d in by_scaling])),
         "zero_psnr": loaded.zero_psnr(),
         "spectrogram": (("panel", "sfreq", "frame"), np.stack([s_target, s_output, s_error])),
         "shown_psnr": float(shown.best_psnr)},
        coords={"scaling": scalings, "width": widths, "train_epoch": epochs, "sfreq": f, "frame": t,
                "panel": ["target", "siren", "error"]},
        attrs={"figure": "2", "preset": ctx.preset, "target": spec_name, "target_name": loaded.name,
               "target_caption": target_caption(spec_name, loaded.name), "n": loaded.n, "psi": float(loaded.psi()),
               "offset": int(sz["offset"]), "depth": sz["depth"], "base_width": sz["width"],
               "size_scaling": float(sz["size_scaling"]), "epochs": int(epochs[-1]), "lr_gamma": sz["lr_gamma"],
               "seed": ctx.seed, "sizes": json_attr(sz),
               "scaling": f"the paper's scaling = first-layer frequency (rad per unit of x, x in [-1, 1]); "
                          f"used: scaling x N/{PAPER_AUDIO_SAMPLES} on an N-sample crop",
               "spectrogram": f"10 log10 PSD, Hann windows of {_NPERSEG} samples, {_NOVERLAP} overlap; "
                              f"(a) shows scaling {sz['size_scaling']:g}, width {sz['width']}"})


def compute_fig2(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """All runs of Fig 2 in memory (:func:`assemble_fig2`)."""
    from .registry import get_recipe

    return get_recipe("2").compute(preset, target, out, device=device, seed=seed, **overrides)


def _flat(psnr: np.ndarray) -> float:
    """Rise of the running peak PSNR over the last 20 % of epochs (dB)."""
    peak = np.maximum.accumulate(psnr)
    return float(peak[-1] - peak[int(0.8 * (peak.size - 1))])


def plot_fig2(ds: xr.Dataset):
    """(a) spectrograms; (b) PSNR histories over input scalings; (c) over network widths; floor dotted."""
    fig = __import__("matplotlib.figure", fromlist=["Figure"]).Figure(figsize=(13, 8.4), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(1, 1.25))
    a = ds.attrs
    frames = ds.frame.values
    lo = float(np.percentile(ds.spectrogram.sel(panel="target"), 5))
    hi = float(ds.spectrogram.sel(panel="target").max())
    titles = {"target": f"(a) ground truth ({a['target_name']})",
              "siren": f"SIREN reconstruction (peak {float(ds.shown_psnr):.1f} dB)", "error": "error (target - SIREN)"}
    for r, panel in enumerate(("target", "siren", "error")):
        ax = fig.add_subplot(grid[r, 0])
        mesh = ax.pcolormesh(frames, 2 * ds.sfreq.values, ds.spectrogram.sel(panel=panel).values, shading="auto",
                             cmap="magma", vmin=lo, vmax=hi)
        label_axes(ax, "sample" if r == 2 else None, "frequency / Nyquist", titles[panel])
        fig.colorbar(mesh, ax=ax, label="PSD (dB)")
    cmap = __import__("matplotlib").colormaps["viridis"]
    for r, (var, dim, title, fmt) in enumerate((
            ("psnr_scaling", "scaling", f"(b) input scalings (first-layer $\\omega_0$), width {a['base_width']}",
             lambda v, b, d: f"{v:g} (peak {b:.1f} dB{d})"),
            ("psnr_size", "width", f"(c) network sizes, scaling {a['size_scaling']:g}",
             lambda v, b, d: f"{a['depth']}x{int(v)} (peak {b:.1f} dB{d})"))):
        ax = fig.add_subplot(grid[(0, 2)[r]: (2, 3)[r], 1])          # (b) rows 0-1, (c) row 2
        values = ds[dim].values
        best = ds["best_scaling" if dim == "scaling" else "best_size"].values
        for i, (v, b) in enumerate(zip(values, best)):
            rise = _flat(ds[var].isel({dim: i}).values)
            note = f", +{rise:.2f} in the last 20 %" if rise > 0.1 else ""
            ax.plot(ds.train_epoch, ds[var].isel({dim: i}), color=cmap(i / max(len(values) - 1, 1)), lw=1.1,
                    label=fmt(float(v), float(b), note))
        ax.axhline(float(ds.zero_psnr), color="k", ls=":", label="zero-output floor")
        ax.set_xscale("log")
        label_axes(ax, "epoch", "PSNR (dB)", title, legend=True, fontsize=7)
    rise = max(_flat(v) for v in ds.psnr_scaling.values)
    state = "flat" if rise <= 0.1 else f"still rising (up to +{rise:.2f} dB in the last 20 % of epochs)"
    suptitle(fig, f"Fig 2: SIREN on {a.get('target_caption', a['target_name'])} (N = {a['n']}, $\\psi$ = "
                  f"{a['psi']:.3f}), {a['depth']} sine layers, lr 1e-4 x {a['lr_gamma']:g} every 20 epochs, "
                  f"{a['epochs']} epochs: curves {state}")
    return fig


def estimate_fig2(preset: str) -> float:
    """CPU seconds of the runs (:func:`spectral_probe.training.presets.estimated_seconds`)."""
    sz = figure_sizes("2", preset)
    n = sz["n"] or PRESETS[training_preset(preset)].audio_samples
    total = 0.0
    for _, width in _runs(sz):
        spec = RunSpec(model="siren", model_kwargs={"width": width, "depth": sz["depth"]},
                       train=TrainConfig(epochs=sz["epochs"]), target="", target_kwargs={}, preset=preset, seed=0)
        total += estimated_seconds(spec, n)
    return total


# ----------------------------------------------------------------------------- claims
def _best_scaling(ds) -> Verdict:
    best = ds.best_scaling.values
    i = int(np.argmax(best))
    paper = ds.best_scaling.sel(scaling=PAPER_BEST_SCALING).item() if PAPER_BEST_SCALING in ds.scaling else np.nan
    gap = float(best[i] - paper)
    values = ", ".join(f"{s:g}: {b:.2f}" for s, b in zip(ds.scaling.values, best))
    return Verdict(bool(np.isfinite(paper) and gap <= 0.5), float(best[i]),
                   f"best scaling {float(ds.scaling[i]):g} ({best[i]:.2f} dB; paper 3e4, ~{PAPER_BEST_PSNR} dB); "
                   f"3e4 is {gap:.2f} dB below the best; peaks {values} dB")


def _errors_remain(ds) -> Verdict:
    best = float(ds.best_scaling.max())
    floor = float(ds.zero_psnr)
    return Verdict(best - floor > 1.0 and best < 30.0, best,
                   f"best {best:.2f} dB on a {floor:.2f} dB floor (+{best - floor:.2f}; paper ~23.5 on 13.4)")


def _bigger_no_better(ds) -> Verdict:
    base = float(ds.best_size.sel(width=ds.attrs["base_width"])) if ds.attrs["base_width"] in ds.width else \
        float(ds.best_size.isel(width=0))
    wide = int(ds.width.max())
    widest = float(ds.best_size.sel(width=wide))
    gain = widest - base
    return Verdict(gain < 3.0, gain, f"{ds.attrs['depth']}x{wide}: {widest:.2f} dB vs "
                   f"{ds.attrs['depth']}x{ds.attrs['base_width']}: {base:.2f} dB ({gain:+.2f}; 'no better': < +3 dB)")


CLAIMS_FIG2 = (
    Claim("best-scaling-3e4", 'Sec 2.1: "A maximum PSNR value of just ~23.5dB was achieved using a scaling factor '
          'of 3x10^4"', "the 3e4 run is within 0.5 dB of the best scaling's peak PSNR", ("best_scaling",),
          _best_scaling),
    Claim("scaling-helps-errors-remain", 'Sec 2.1: "although input scaling improves PSNR value, significant errors '
          'remain"', "best peak PSNR > floor + 1 dB and < 30 dB", ("best_scaling", "zero_psnr"), _errors_remain),
    Claim("bigger-network-no-better", 'Sec 2.1: "increasing network size (Fig. 2b) ... none of which resolve this '
          'issue"', "widest network's peak PSNR < base width's + 3 dB", ("best_size", "base_width"),
          _bigger_no_better),
)
