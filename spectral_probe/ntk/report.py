"""Plain-text summaries of an NTK analysis and of a forecast (what ``spectral-probe ntk`` prints)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .eig import decay_profile
from .plot import frequency_profile, target_profile

__all__ = ["summary_lines", "cut_description", "target_share_above", "forecast_lines", "CONVENTION"]

#: one-line statement of the S(k) convention
CONVENTION = ("S(k) = sum_i lambda_i |v_hat_i(k)|^2 (Eqn 6) with Theta unnormalised and a unitary DFT over the "
              "grid, so S summed over all bins = trace(Theta); the authors' plots show S/N^2 against "
              "omega = 2 pi k/N (spectral_probe.ntk.authors_convention)")


def cut_description(cutoff: float, grid_shape: tuple[int, ...], sample_rate: float | None = None) -> str:
    """The frequency cut ``cutoff`` x Nyquist in physical terms.

    1-D: cycles over the grid (``k > cutoff N / 2``; on ``linspace(-1, 1, N)``
    that is per domain ``[-1, 1]``), and Hz when the signal has a sample rate.
    2-D: radial frequency, cycles per image along each axis.
    """
    if len(grid_shape) == 1:
        n = grid_shape[0]
        text = f"{cutoff:g} x Nyquist = k > {cutoff * n / 2:.6g} cycles per domain [-1, 1] ({n} samples)"
        if sample_rate:
            text += f" = {cutoff * sample_rate / 2:,.6g} Hz at {sample_rate:,.6g} Hz"
        return text
    h, w = grid_shape
    return (f"radial frequency {cutoff:g} x Nyquist = {cutoff * h / 2:.6g} cycles per image height "
            f"({h} px), {cutoff * w / 2:.6g} per width ({w} px)")


def target_share_above(values: torch.Tensor, grid_shape: tuple[int, ...], cutoff: float) -> float:
    """Share of the target's power above ``cutoff`` x Nyquist (same frequency axis as ``S``)."""
    f, p = target_profile(values, grid_shape)
    total = p.sum()
    return float(p[f > cutoff].sum() / total) if total > 0 else 0.0


def summary_lines(result, *, top: int = 8, cutoff: float = 0.5, sample_rate: float | None = None,
                  target=None) -> list[str]:
    """Human-readable summary of an :class:`~spectral_probe.ntk.NTKResult`."""
    values = result.eigen.values.double()
    profile = decay_profile(values)
    t = result.timings
    grid = "1-D" if len(result.grid_shape) == 1 else "x".join(map(str, result.grid_shape))
    f, s = frequency_profile(result.spectrum, result.grid_shape)
    trace = float(s.sum())
    lines = [
        f"N = {result.n} ({grid} grid), parameters = {result.n_params:,}, implementation = "
        f"{result.implementation}, dtype = {result.dtype}",
        f"wall time {t['total']:.2f} s (" + ", ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "total") + ")",
        f"top eigenvalues ({result.eigen.method}): " + ", ".join(f"{v:.4g}" for v in values[:top].tolist()),
        f"eigenvalues: {result.eigen.clip_report()}",
    ]
    if result.eigen.method == "eigh":
        lines.append(f"effective rank {profile['effective_rank']:.2f} (exp of the entropy of lambda / trace); "
                     f"{profile['modes_90']} mode(s) hold 90 % of the trace, {profile['modes_99']} hold 99 %")
    else:
        lines.append(f"effective rank of the top {values.numel()} modes {profile['effective_rank']:.2f} "
                     "(the dense route gives it over all modes)")
    lines.append(f"S(k) convention: {CONVENTION}; here trace = {trace:.6g}")
    share = result.high_frequency_share(cutoff)
    line = (f"high-frequency share: {100 * share:.3g} % of S above {cut_description(cutoff, result.grid_shape, sample_rate)}")
    if target is not None:
        line += f"; the target has {100 * target_share_above(target.values, result.grid_shape, cutoff):.3g} % of its power there"
    lines.append(line)
    if result.spectrum_topk is not None:
        top_share = float(result.spectrum_topk.sum() / result.spectrum.sum()) if float(result.spectrum.sum()) else 0.0
        lines.append(f"top-{values.numel()} modes hold {100 * top_share:.2f} % of S(k)")
    return lines


def forecast_lines(fc, *, zero_psnr: float | None = None, lr_text: str = "", marks=None) -> list[str]:
    """Summary of a :class:`~spectral_probe.ntk.forecast.Forecast`."""
    epochs = len(fc.epochs)
    marks = sorted({0, 10, 50, 100, epochs - 1} if marks is None else set(marks))
    marks = [e for e in marks if 0 <= e < epochs]
    how = (f"eigh ({fc.measure.nodes.numel()} modes)" if fc.measure.method == "eigenpairs"
           else f"Lanczos, {fc.measure.steps} steps")
    opt = ("Adam as a scalar-preconditioned flow" if fc.optimizer == "adam" else "plain gradient descent")
    scale = "" if fc.lr_scale == 1.0 else f", lr x {fc.lr_scale:.4g}"
    lines = [f"forecast (linearised dynamics, Eqns 3-4; {opt}{scale}{lr_text}; {how}):"]
    text = ", ".join(f"epoch {e}: {fc.psnr[e]:.2f}" for e in marks)
    floor = "" if zero_psnr is None else f" (zero-output floor {zero_psnr:.2f} dB)"
    lines.append(f"  predicted PSNR [dB]: {text}{floor}")
    if fc.lanczos_gap_db is not None:
        lines.append(f"  Lanczos accuracy: {fc.lanczos_gap_db:.3g} dB largest change from {fc.measure.steps // 2} "
                     f"to {fc.measure.steps} steps")
    if fc.band_t90 is not None:
        parts = []
        for b, t90 in enumerate(fc.band_t90):
            left = fc.band_remaining[-1, b]
            if np.isnan(left):
                continue
            lo, hi = fc.band_edges[b], fc.band_edges[b + 1]
            if t90 >= 0:
                when = f"epoch {t90}"
            elif left > 1:
                when = f"grows to {left:.3g}x its start by epoch {epochs - 1}"
            else:
                when = f"not within {epochs} epochs ({100 * (1 - left):.0f} % learned)"
            parts.append(f"[{lo:.3g}, {hi:.3g}): {when}")
        lines.append("  90 % of a band's residual learned (band / Nyquist; bands with < 0.1 % of the residual "
                     "left out): " + "; ".join(parts))
    if not math.isfinite(float(fc.psnr[-1])):
        lines.append("  the linear model fits the target exactly within the horizon (PSNR unbounded)")
    return lines
