"""Figures of an NTK analysis (``spectral-probe ntk --plot``): kernel, eigenvalue decay, ``S(k)``, forecast.

Everything is drawn on :class:`matplotlib.figure.Figure` objects (no pyplot
state, no global backend); :func:`save` renders with Agg.

* :func:`plot_ntk` -- one model: normalised kernel (or, on a 2-D grid, the
  kernel row of the centre sample and the 2-D ``S``), eigenvalue decay on
  log-log axes, ``S(k)`` on log-log axes against the frequency as a fraction
  of Nyquist with its cumulative share (right axis), optionally the target's
  power spectrum on the same axes, and the forecast (PSNR per epoch and the
  per-band learnability map).
* :func:`plot_comparison` -- several models side by side (paper Fig 7 style).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .spectrum import normalized_kernel
from .spectrum2d import radial_profile

__all__ = ["plot_ntk", "plot_comparison", "save", "frequency_profile", "target_profile"]

_COLORS = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]


def save(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Render ``fig`` with Agg to ``path`` (format from the suffix)."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    return Path(path)


def frequency_profile(spectrum: torch.Tensor, grid_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(f, S(f))``: frequency as a fraction of Nyquist and the energy per bin.

    1-D: the one-sided ``S(k)`` with both signs of ``k`` added (sum = trace) at
    ``f = 2k / N``.  2-D: the radial profile (sum per annulus) at ``f = rho``.
    """
    if len(grid_shape) == 1:
        n = grid_shape[0]
        s = spectrum.double().cpu()
        w = torch.full_like(s, 2.0)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        return (2.0 * np.arange(s.numel()) / n), (s * w).numpy()
    rho, prof = radial_profile(spectrum.double().cpu())
    return rho.numpy(), prof.numpy()


def target_profile(values: torch.Tensor, grid_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The target's power on the same frequency axis as :func:`frequency_profile` (channels summed)."""
    v = torch.as_tensor(values).double().cpu().reshape(*grid_shape, -1)
    if len(grid_shape) == 1:
        p = torch.fft.rfft(v, dim=0, norm="ortho").abs().square().sum(-1)
        return frequency_profile(p, grid_shape)
    p = torch.fft.fft2(v.permute(2, 0, 1), norm="ortho").abs().square().sum(0)
    rho, prof = radial_profile(p)
    return rho.numpy(), prof.numpy()


def _loglog_spectrum(ax, f, s, label, color, cumulative=True, ls="-"):
    keep = (f > 0) & (s > 0)
    ax.loglog(f[keep], s[keep], color=color, ls=ls, lw=1.1, label=label)
    if cumulative:
        twin = getattr(ax, "_sp_twin", None)
        if twin is None:
            twin = ax.twinx()
            twin.set_ylim(0, 1.02)
            twin.set_ylabel("cumulative share", fontsize=8)
            ax._sp_twin = twin
        total = s.sum()
        if total > 0:
            twin.plot(f[f > 0], np.cumsum(s)[f > 0] / total, color=color, ls=":" if ls == "-" else "-.",
                      lw=1.0, alpha=0.8)


def _spectrum_panel(ax, results: dict, target=None, cutoff: float | None = 0.5):
    for i, (label, res) in enumerate(results.items()):
        f, s = frequency_profile(res.spectrum, res.grid_shape)
        share0 = s[0] / max(s.sum(), 1e-300)
        _loglog_spectrum(ax, f, s / max(s.sum(), 1e-300), f"{label} S (S(0): {100 * share0:.2g} %)",
                         _COLORS[i % len(_COLORS)])
    if target is not None:
        res = next(iter(results.values()))
        f, p = target_profile(target.values, res.grid_shape)
        _loglog_spectrum(ax, f, p / max(p.sum(), 1e-300), f"target {target.name} power", "black", ls="--")
    if cutoff is not None:
        ax.axvline(cutoff, color="grey", lw=0.8, ls="--")
    two_d = len(next(iter(results.values())).grid_shape) == 2
    ax.set_xlabel("radial frequency / Nyquist" if two_d else "frequency / Nyquist (2k/N)")
    ax.set_ylabel("share of the total per bin")
    ax.set_title("S(k) (solid) and its cumulative share (dotted)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower left")


def _decay_panel(ax, results: dict):
    for i, (label, res) in enumerate(results.items()):
        v = res.eigen.values.double().cpu().numpy()
        v = v[v > 0]
        ax.loglog(np.arange(1, v.size + 1), v / v[0], color=_COLORS[i % len(_COLORS)], lw=1.1, label=label)
    ax.set_xlabel("mode i")
    ax.set_ylabel("lambda_i / lambda_1")
    ax.set_title("eigenvalue decay", fontsize=9)
    ax.legend(fontsize=7, frameon=False)


def _kernel_panel(fig, ax, res, label: str):
    if res.kernel is None:
        ax.set_axis_off()
        ax.set_title(f"{label}: kernel not formed (matrix-free)", fontsize=9)
        return
    k = normalized_kernel(res.kernel.double())
    if len(res.grid_shape) == 1:
        im = ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, extent=[-1, 1, 1, -1])
        ax.set_title(f"{label}: Theta(x, x') normalised", fontsize=9)
        ax.set_xlabel("x'")
        ax.set_ylabel("x")
    else:
        h, w = res.grid_shape
        centre = (h // 2) * w + w // 2
        im = ax.imshow(k[centre].reshape(h, w).numpy(), cmap="RdBu_r", vmin=-1, vmax=1,
                       extent=[-1, 1, 1, -1])
        ax.set_title(f"{label}: Theta(centre, x') normalised", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)


def _log_share_2d(res) -> np.ndarray:
    s = torch.fft.fftshift(res.spectrum.double().cpu()).numpy()
    return np.log10(np.maximum(s / max(float(s.sum()), 1e-300), 1e-15))


def _color_range(results) -> tuple[float, float]:
    """Shared colour range of the 2-D panels, from the bins other than k = 0 (the DC bin would set it alone)."""
    vals = []
    for res in results:
        img = _log_share_2d(res)
        h, w = img.shape
        mask = np.ones_like(img, dtype=bool)
        mask[h // 2, w // 2] = False
        vals.append(img[mask])
    flat = np.concatenate(vals)
    return float(np.percentile(flat, 1)), float(flat.max())


def _spectrum2d_panel(fig, ax, res, label: str, vrange: tuple[float, float] | None = None):
    img = _log_share_2d(res)
    vmin, vmax = vrange or _color_range([res])
    im = ax.imshow(img, cmap="magma", extent=[-1, 1, -1, 1], origin="lower", vmin=vmin, vmax=vmax)
    ax.set_title(f"{label}: log10 S / trace (k = 0 off scale)", fontsize=9)
    ax.set_xlabel("k_col / Nyquist")
    ax.set_ylabel("k_row / Nyquist")
    fig.colorbar(im, ax=ax, shrink=0.8)


def _forecast_panels(fig, ax_psnr, ax_map, fc, actual=None):
    ax_psnr.plot(fc.epochs, fc.psnr, color="tab:red", lw=1.2, label=f"forecast ({fc.optimizer})")
    if actual is not None:
        ax_psnr.plot(np.arange(len(actual)), actual, color="black", lw=1.0, label="actual")
    ax_psnr.set_xlabel("epoch")
    ax_psnr.set_ylabel("PSNR (dB)")
    ax_psnr.set_title("linearised forecast (Eqns 3-4)", fontsize=9)
    ax_psnr.legend(fontsize=7, frameon=False)
    if fc.band_remaining is None:
        ax_map.set_axis_off()
        return
    edges = fc.band_edges
    raw = fc.band_remaining.T
    data = np.ma.masked_invalid(np.where(raw <= 1.05, np.minimum(raw, 1.0), raw))   # red: grew by > 5 %
    e = fc.band_epochs
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(over="tab:red", bad="lightgrey")
    im = ax_map.pcolormesh(np.concatenate([e, [e[-1] + 1]]) if e.size > 1 else np.array([0, 1]), edges, data,
                           cmap=cmap, vmin=0, vmax=1, shading="flat")
    ax_map.set_xlabel("epoch")
    ax_map.set_ylabel("frequency band / Nyquist")
    ax_map.set_title("share of each band's residual left (red: grew > 5 %; grey: no residual)", fontsize=8)
    fig.colorbar(im, ax=ax_map, shrink=0.8, extend="max")


def plot_ntk(result, *, target=None, forecast=None, actual_psnr=None, cutoff: float | None = 0.5,
             label: str | None = None) -> Figure:
    """All panels for one :class:`~spectral_probe.ntk.NTKResult`.

    Parameters
    ----------
    target
        A :class:`~spectral_probe.signals.Target` on the same grid: its power
        spectrum is drawn beside ``S``.
    forecast
        A :class:`~spectral_probe.ntk.forecast.Forecast`: PSNR curve and band map.
    actual_psnr
        A run's PSNR per epoch, drawn with the forecast.
    cutoff
        Fraction of Nyquist marked on the spectrum (``None``: no mark).
    """
    label = label or "model"
    two_d = len(result.grid_shape) == 2
    ncols = 3 + (1 if two_d else 0)
    nrows = 2 if forecast is not None else 1
    fig = Figure(figsize=(4.6 * ncols, 4.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    _kernel_panel(fig, axes[0, 0], result, label)
    col = 1
    if two_d:
        _spectrum2d_panel(fig, axes[0, 1], result, label)
        col = 2
    _decay_panel(axes[0, col], {label: result})
    _spectrum_panel(axes[0, col + 1], {label: result}, target, cutoff)
    if forecast is not None:
        _forecast_panels(fig, axes[1, 0], axes[1, 1], forecast, actual_psnr)
        for ax in axes[1, 2:]:
            ax.set_axis_off()
    return fig


def plot_comparison(results: dict, *, target=None, cutoff: float | None = None, title: str | None = None) -> Figure:
    """Paper Fig 7 layout for several models on one grid: kernels (row 1), decay and ``S`` (row 2).

    Parameters
    ----------
    results
        ``{label: NTKResult}`` on the same grid.
    """
    if not results:
        raise ValueError("no results to plot")
    shapes = {r.grid_shape for r in results.values()}
    if len(shapes) != 1:
        raise ValueError(f"results are on different grids: {sorted(shapes)}")
    two_d = len(next(iter(shapes))) == 2
    m = len(results)
    ncols = max(m, 2)
    nrows = 3 if two_d else 2
    fig = Figure(figsize=(4.2 * ncols, 3.7 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    vrange = _color_range(list(results.values())) if two_d else None
    for i, (label, res) in enumerate(results.items()):
        _kernel_panel(fig, axes[0, i], res, label)
        if two_d:
            _spectrum2d_panel(fig, axes[1, i], res, label, vrange)
    for ax in list(axes[0, m:]) + (list(axes[1, m:]) if two_d else []):
        ax.set_axis_off()
    last = axes[-1]
    _decay_panel(last[0], results)
    _spectrum_panel(last[1], results, target, cutoff)
    for ax in last[2:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
