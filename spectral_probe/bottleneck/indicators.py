"""Pure indicator functions of the spectral-bottleneck watch (:mod:`spectral_probe.bottleneck`).

Every function works on tensors and keeps results on their device (no host sync);
:func:`indicator_vector` packs one check into a single vector so the caller copies once.

Spectra
-------
Power spectra follow :mod:`spectral_probe.probes.stats`: 1-D grids use the layer-averaged one-sided
periodogram (:func:`~spectral_probe.probes.stats.layer_psd`), 2-D grids the radial profile of the
layer-averaged 2-D periodogram.  The DC bin is left out (biases put arbitrary power there), and
frequencies are expressed as *fractions of the Nyquist frequency* (0.5 cycles per sample = 1).
A normalised cumulative spectrum ("CDF") is the fraction of the non-DC power at or below each
frequency; it is NaN when there is no such power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..probes import stats

__all__ = ["TargetReference", "energy_ratio", "psnr_gain", "power_spectrum", "cumulative", "spectral_distance",
           "band_edge", "coverage", "dominant_band", "target_reference", "hidden_point", "forward_with_hidden",
           "indicator_vector", "ntk_band_share", "DOMINANT_MASS", "CONSTANT_RTOL"]

#: share of the target's power in its "dominant band" (central quantiles 0.1 .. 0.9)
DOMINANT_MASS = 0.8
#: a target whose variance (power off DC) is below this share of its mean square counts as constant
CONSTANT_RTOL = 1e-10
_NYQUIST = 0.5  # cycles per sample


@dataclass(frozen=True)
class TargetReference:
    """What the watch needs of the target, on the training device.

    Attributes
    ----------
    values
        (N, C) target values.
    grid_shape
        (N,) or (H, W).
    cdf
        (F,) normalised cumulative spectrum without DC.
    freqs
        (F,) bin frequencies [Nyquist fraction].
    band
        Dominant band ``(lo, hi)`` [Nyquist fraction] holding :data:`DOMINANT_MASS` of the power.
    """

    values: torch.Tensor
    grid_shape: tuple[int, ...]
    cdf: torch.Tensor
    freqs: torch.Tensor
    band: tuple[float, float]


# --------------------------------------------------------------------------- amplitude
def energy_ratio(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|f|^2 / |y|^2`` over all samples and channels (0-d; inf for an all-zero target)."""
    return torch.sum(torch.square(output)) / torch.sum(torch.square(target))


def psnr_gain(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``PSNR(f) - PSNR(0) = -10 log10(|f - y|^2 / |y|^2)`` [dB], 0-d; independent of the PSNR peak.

    ``f = a y`` gives ``-20 log10 |1 - a|``; the zero output gives 0.
    """
    return -10.0 * torch.log10(torch.sum(torch.square(output - target)) / torch.sum(torch.square(target)))


# --------------------------------------------------------------------------- spectra
def power_spectrum(x: torch.Tensor, grid_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer-averaged power spectrum of ``x`` (N, ...) on ``grid_shape``, DC left out.

    Returns
    -------
    freqs, psd
        Shape (F,) each; ``freqs`` in fractions of Nyquist (increasing, > 0).
    """
    x = x.real if x.is_complex() else x
    if len(grid_shape) == 1:
        spec = stats.layer_psd(x)
    elif len(grid_shape) == 2:
        s2 = stats.layer_psd_2d(x, grid_shape)
        spec = stats.radial_profile(s2.psd, s2.fy, s2.fx)
    else:
        raise ValueError(f"spectra need a 1-D or 2-D grid, got grid_shape {tuple(grid_shape)}")
    return spec.freqs[1:] / _NYQUIST, spec.psd[1:]


def cumulative(psd: torch.Tensor) -> torch.Tensor:
    """Normalised running sum of a (non-DC) spectrum, shape (F,); all NaN when its power is 0."""
    total = torch.cumsum(psd, dim=-1)
    last = total[..., -1:]
    return torch.where(last > 0, total / torch.where(last > 0, last, torch.ones_like(last)),
                       torch.full_like(total, math.nan))


def _widths(freqs: torch.Tensor) -> torch.Tensor:
    return torch.diff(freqs, prepend=torch.zeros_like(freqs[:1]))


def spectral_distance(cdf_a: torch.Tensor, cdf_b: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Wasserstein-1 distance between two spectra given by their CDFs on ``freqs`` [Nyquist fraction].

    Two pure tones at ``f1`` and ``f2`` are ``|f1 - f2|`` apart; the result lies in [0, 1].
    """
    return torch.sum(torch.abs(cdf_a - cdf_b) * _widths(freqs), dim=-1)


def _first_at_least(cdf: torch.Tensor, level: float) -> torch.Tensor:
    """Index of the first bin whose CDF reaches ``level`` (0-d int64)."""
    reached = cdf >= level - 1e-6     # float32 sums of a full spectrum may end just below 1
    return torch.argmax(reached.to(torch.float32))      # first maximum (documented on CPU and CUDA)


def band_edge(cdf: torch.Tensor, freqs: torch.Tensor, level: float) -> torch.Tensor:
    """Frequency [Nyquist fraction] at or below which ``level`` of the power lies (0-d; NaN for no power)."""
    edge = freqs[_first_at_least(cdf, level)]
    return torch.where(torch.isnan(cdf[-1]), torch.full_like(edge, math.nan), edge)


def coverage(cdf_net: torch.Tensor, cdf_target: torch.Tensor, level: float) -> torch.Tensor:
    """Share of the target's power at or below the network's band edge (0-d in [0, 1]; NaN for no power)."""
    covered = cdf_target[_first_at_least(cdf_net, level)]
    return torch.where(torch.isnan(cdf_net[-1]), torch.full_like(covered, math.nan), covered)


def dominant_band(cdf: torch.Tensor, freqs: torch.Tensor, mass: float = DOMINANT_MASS) -> tuple[float, float]:
    """``(lo, hi)`` [Nyquist fraction]: the central quantiles holding ``mass`` of the power (host floats)."""
    lo = freqs[_first_at_least(cdf, (1.0 - mass) / 2)]
    hi = freqs[_first_at_least(cdf, (1.0 + mass) / 2)]
    return float(lo), float(hi)


# --------------------------------------------------------------------------- target
def target_reference(target, values: torch.Tensor | None = None) -> tuple[TargetReference | None, str | None]:
    """Reference spectrum of ``target`` (a :class:`~spectral_probe.signals.Target`).

    Parameters
    ----------
    values
        The target's values on the training device (default: ``target.values``).

    Returns
    -------
    (TargetReference or None, reason or None)
        The reason says why no decision is possible: no target (reference None), all zeros or
        constant (reference with a NaN spectrum, so the spectral indicators are NaN).
    """
    if target is None:
        return None, "the run has no target"
    values = target.values if values is None else values
    v64 = values.double()
    power = float(torch.sum(torch.square(v64)))
    why = None
    if power == 0.0:
        why = f"the target {target.name!r} is all zeros (its zero-output PSNR is infinite)"
    elif float(torch.sum(torch.square(v64 - v64.mean(dim=0)))) <= CONSTANT_RTOL * power:
        why = (f"the target {target.name!r} is constant: all its power is at frequency 0, "
               "so there is no band for the network to reach")
    freqs, psd = power_spectrum(v64, target.grid_shape)
    cdf = cumulative(psd if why is None else torch.zeros_like(psd))
    band = dominant_band(cdf, freqs) if why is None else (math.nan, math.nan)
    dtype = values.dtype if values.is_floating_point() else torch.float32
    return TargetReference(values, tuple(target.grid_shape), cdf.to(dtype), freqs.to(dtype), band), why


# --------------------------------------------------------------------------- model side
def hidden_point(model: torch.nn.Module, hidden: str = "auto") -> str | None:
    """Name of the hook point whose spectrum stands for the network's band.

    ``"auto"``: the last ``pre`` hook point followed by a ``post`` (a nonlinearity), i.e.
    ``layers.{depth-1}.pre`` for bundled models and not the head of a plain ``nn.Sequential``;
    None when the model has none.
    """
    from ..probes import hook_points

    points = hook_points(model)
    if hidden != "auto":
        if hidden not in points:
            raise ValueError(f"unknown hook point {hidden!r}; valid names: {', '.join(points)}")
        return hidden
    names = list(points)
    kinds = [points[n].kind for n in names]
    inner = [n for i, n in enumerate(names) if kinds[i] == "pre" and "post" in kinds[i + 1:]]
    return inner[-1] if inner else None


def forward_with_hidden(model: torch.nn.Module, coords: torch.Tensor,
                        point: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``model(coords)`` and the activation at hook point ``point`` (one forward, no grad)."""
    from ..probes import hook_points

    seen: dict[str, torch.Tensor] = {}
    handle = None
    if point is not None:
        module = hook_points(model)[point].module
        handle = module.register_forward_hook(lambda mod, args, out: seen.__setitem__("x", out.detach()))
    try:
        with torch.no_grad():
            output = model(coords)
    finally:
        if handle is not None:
            handle.remove()
    output = output.real if output.is_complex() else output
    return output.detach(), seen.get("x")


def indicator_vector(output: torch.Tensor, hidden: torch.Tensor | None, ref: TargetReference,
                     band_level: float = 1.0 - 1e-3) -> torch.Tensor:
    """The per-check indicators packed on the device, in the order of
    :data:`spectral_probe.bottleneck.INDICATORS`.

    Returns
    -------
    torch.Tensor
        Shape (8,): psnr_gain, energy_ratio, coverage_hidden, coverage_output, distance_hidden,
        distance_output, band_edge_hidden, band_edge_output (NaN where ``hidden`` is None).
    """
    y = ref.values
    out = output.to(y.dtype)
    _, psd_out = power_spectrum(out, ref.grid_shape)
    cdf_out = cumulative(psd_out.to(ref.cdf.dtype))
    if hidden is not None:
        _, psd_hid = power_spectrum(hidden.to(y.dtype), ref.grid_shape)
        cdf_hid = cumulative(psd_hid.to(ref.cdf.dtype))
    else:
        cdf_hid = torch.full_like(ref.cdf, math.nan)
    return torch.stack([
        psnr_gain(out, y), energy_ratio(out, y),
        coverage(cdf_hid, ref.cdf, band_level), coverage(cdf_out, ref.cdf, band_level),
        spectral_distance(cdf_hid, ref.cdf, ref.freqs), spectral_distance(cdf_out, ref.cdf, ref.freqs),
        band_edge(cdf_hid, ref.freqs, band_level), band_edge(cdf_out, ref.freqs, band_level),
    ]).to(torch.float32)


# --------------------------------------------------------------------------- NTK
def ntk_band_share(spectrum, n: int, band: tuple[float, float], stride: int = 1) -> float:
    """Share of the two-sided ``S(k)`` (Eqn 6, one-sided array over ``k = 0 .. n // 2``) in ``band``.

    ``S`` was computed on every ``stride``-th grid point (``n`` of them), so bin ``k`` sits at
    ``2 k / (n stride)`` of the training grid's Nyquist frequency.  DC is left out.  Host float.
    """
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim != 1 or s.size != n // 2 + 1:
        raise ValueError(f"S(k) must be one-sided of length n // 2 + 1 = {n // 2 + 1}, got shape {s.shape}")
    weights = np.full(s.size, 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    power = (weights * s)[1:]
    total = power.sum()
    if not np.isfinite(total) or total <= 0:
        return math.nan
    frac = 2.0 * np.arange(1, s.size) / (n * stride)
    inside = (frac >= band[0]) & (frac <= band[1])
    return float(power[inside].sum() / total)
