"""Per-layer activation statistics: histograms, moments and power spectra.

Pure functions on tensors (numpy arrays are accepted and converted); every
result stays on the input's device, so the probe can compute statistics on the
GPU and copy only the small results to the host.

Conventions
-----------
* The *sample axis* is dim 0 of an activation tensor ``(N, ...)``; the other
  dims are flattened into "neurons" (channels).  Samples must be in grid order
  (``torch.linspace(-1, 1, n)`` per axis, meshgrid ``'ij'``) for the spectra to
  mean anything.
* Frequencies are in cycles per sample (``fs = 1``): 1-D spectra cover
  ``[0, 0.5]``.  Angular frequency (the authors' ``k`` in ``[-pi, pi)``) is
  ``2 pi f``.
* :func:`psd_1d` is the one-sided periodogram with density scaling, identical
  to ``scipy.signal.periodogram(x, fs, window="boxcar", detrend=False,
  scaling="density")``: by Parseval ``sum(psd) * fs / N == mean(x**2)``.
* :func:`psd_2d` is the two-sided, ``fftshift``-ed 2-D periodogram with the same
  density scaling (``sum(psd) / (H W) == mean(x**2)`` for ``fs = 1``).
* The *layer-averaged PSD* (paper Figs 3, 8, 13, 14) is the mean over neurons of
  each neuron's PSD (``method="mean"``); ``method="sum"`` is the PSD of the
  sum over neurons, as in the authors' notebook (``periodogram(sum(acts))``).
* Kurtosis is the *excess* (Fisher) kurtosis, 0 for a Gaussian and -1.5 for
  the arcsine law (``scipy.stats.kurtosis`` default).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..validation import positive_int

__all__ = [
    "Histogram", "Moments", "Spectrum", "Spectrum2D",
    "as_tensor", "flatten_neurons", "moments", "uniform_edges", "range_edges", "uniform_counts", "histogram",
    "psd_1d", "psd_2d", "radial_profile", "cumulative_psd", "layer_psd", "layer_psd_2d",
]

#: elements per chunk when binning (bounds the int64 index buffer to 32 MiB)
_HIST_CHUNK = 2 ** 22
#: elements per torch.histc call: its float32 counts are exact up to 2^24
_HISTC_CHUNK = 2 ** 24


class Histogram(NamedTuple):
    """Counts in ``len(edges) - 1`` bins plus the values below and above the range."""

    counts: torch.Tensor  #: (B,) int64
    edges: torch.Tensor   #: (B + 1,)
    under: torch.Tensor   #: () int64, values < edges[0]
    over: torch.Tensor    #: () int64, values > edges[-1]

    @property
    def total(self) -> torch.Tensor:
        """All values counted, inside the range or not."""
        return self.counts.sum() + self.under + self.over

    @property
    def density(self) -> torch.Tensor:
        """``counts / (total * bin width)``, shape (B,): integrates to the fraction inside."""
        widths = torch.diff(self.edges).to(torch.float64)
        return self.counts.to(torch.float64) / (self.total.clamp_min(1) * widths)

    @property
    def outside(self) -> torch.Tensor:
        """Fraction of the values outside ``[edges[0], edges[-1]]``."""
        return (self.under + self.over).to(torch.float64) / self.total.clamp_min(1)


class Moments(NamedTuple):
    """0-d tensors: mean, standard deviation (ddof 0), excess kurtosis."""

    mean: torch.Tensor
    std: torch.Tensor
    kurtosis: torch.Tensor


class Spectrum(NamedTuple):
    """A 1-D (or radially averaged) spectrum: ``freqs`` (F,), ``psd`` (..., F)."""

    freqs: torch.Tensor
    psd: torch.Tensor


class Spectrum2D(NamedTuple):
    """A 2-D spectrum on the shifted grid: ``fy`` (H,), ``fx`` (W,), ``psd`` (..., H, W)."""

    fy: torch.Tensor
    fx: torch.Tensor
    psd: torch.Tensor


def as_tensor(x) -> torch.Tensor:
    """``x`` as a tensor (numpy arrays are wrapped, tensors are returned as they are)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x))


def _real(x: torch.Tensor) -> torch.Tensor:
    if x.is_complex():
        raise TypeError("statistics need real values; take x.real, x.imag or x.abs() of complex activations first")
    return x if x.is_floating_point() else x.to(torch.float32)


def flatten_neurons(x) -> torch.Tensor:
    """Reshape an activation ``(N, ...)`` to ``(N, neurons)``; a 1-D ``(N,)`` becomes ``(N, 1)``."""
    x = _real(as_tensor(x))
    if x.ndim == 0:
        raise ValueError("an activation needs a sample axis; got a 0-d tensor")
    return x.reshape(x.shape[0], -1)


def moments(x) -> Moments:
    """Mean, standard deviation and excess kurtosis of all values of ``x`` (two-pass)."""
    x = _real(as_tensor(x))
    mean = x.mean()
    sq = (x - mean).square_()                      # one temporary, reused for the 4th moment
    m2 = sq.mean()
    m4 = sq.square_().mean()
    kurt = m4 / torch.clamp_min(m2 * m2, torch.finfo(m2.dtype).tiny) - 3.0
    return Moments(mean, torch.sqrt(m2), kurt)


def uniform_edges(lo: float, hi: float, bins: int, *, device=None,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``bins + 1`` equally spaced edges on ``[lo, hi]``, shape (bins + 1,)."""
    positive_int(bins, "bins")
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"histogram range must be finite with hi > lo, got ({lo}, {hi})")
    return torch.linspace(lo, hi, bins + 1, device=device, dtype=dtype)


def range_edges(x, bins: int, margin: float = 0.05) -> torch.Tensor:
    """Edges spanning ``[min(x), max(x)]`` widened by ``margin * span`` on both sides (no host sync).

    Returns
    -------
    Tensor
        Shape (bins + 1,), float64, on ``x``'s device.
    """
    positive_int(bins, "bins")
    x = _real(as_tensor(x))
    lo, hi = torch.aminmax(x.detach().reshape(-1))
    lo, hi = lo.to(torch.float64), hi.to(torch.float64)
    span = torch.clamp_min(hi - lo, 1e-12 * torch.clamp_min(torch.maximum(lo.abs(), hi.abs()), 1.0))
    lo, hi = lo - margin * span, hi + margin * span
    steps = torch.arange(bins + 1, device=x.device, dtype=torch.float64) / bins
    return lo + (hi - lo) * steps


def _is_uniform(edges: torch.Tensor) -> bool:
    widths = torch.diff(edges.detach().to("cpu", torch.float64))
    return bool(torch.allclose(widths, widths[0].expand_as(widths), rtol=1e-9, atol=0.0))


def uniform_counts(x, bins: int, lo: float, hi: float) -> torch.Tensor:
    """Counts of ``x`` in ``bins`` equal bins on ``[lo, hi]`` (``torch.histc``; outside values dropped).

    Returns
    -------
    Tensor
        Shape (bins,), int64, on ``x``'s device.
    """
    x = _real(as_tensor(x)).detach().reshape(-1)
    work = x if x.dtype in (torch.float32, torch.float64) else x.to(torch.float32)
    counts = None
    for start in range(0, max(work.numel(), 1), _HISTC_CHUNK):   # float32 counts are exact below 2^24
        part = torch.histc(work[start:start + _HISTC_CHUNK], bins, lo, hi).to(torch.int64)
        counts = part if counts is None else counts + part
    return counts


def histogram(x, edges, uniform: bool | None = None, bounds: tuple[float, float] | None = None) -> Histogram:
    """Histogram of all values of ``x`` on sorted ``edges`` (numpy convention: last bin closed).

    Parameters
    ----------
    x
        Any real tensor; all values are counted.
    edges
        Sorted bin edges, shape (B + 1,).
    uniform
        Equal-width bins: counted with ``torch.histc`` (fast; a value within
        rounding error of an inner edge may land in the neighbouring bin).  None
        checks the edges (one small host copy).  Other edges use
        ``torch.bucketize`` in chunks (exact, slower).
    bounds
        ``(edges[0], edges[-1])`` as Python floats, if known: saves a device sync.
    """
    x = _real(as_tensor(x)).detach().reshape(-1)
    edges = as_tensor(edges).to(device=x.device, dtype=torch.float64)
    if edges.ndim != 1 or edges.numel() < 2:
        raise ValueError(f"edges must be 1-D with at least 2 entries, got shape {tuple(edges.shape)}")
    bins = edges.numel() - 1
    if uniform is None:
        uniform = _is_uniform(edges)
    if uniform:
        lo, hi = bounds if bounds is not None else (float(v) for v in edges[[0, -1]].cpu())
        counts = uniform_counts(x, bins, lo, hi)
        under = torch.count_nonzero(x < lo)
        return Histogram(counts, edges, under, x.numel() - counts.sum() - under)
    slots = torch.zeros(bins + 2, dtype=torch.int64, device=x.device)
    one = torch.ones((), dtype=torch.int64, device=x.device)
    for start in range(0, x.numel(), _HIST_CHUNK):
        chunk = x[start:start + _HIST_CHUNK].to(torch.float64)
        idx = torch.bucketize(chunk, edges, right=True)          # 0: under, bins+1: >= last edge
        idx = torch.where(chunk == edges[-1], bins, idx)         # last bin is closed
        slots.scatter_add_(0, idx, one.expand(idx.shape))
    return Histogram(slots[1:bins + 1], edges, slots[0], slots[bins + 1])


def _one_sided_scale(n_freq: int, n: int, fs: float, like: torch.Tensor) -> torch.Tensor:
    """Density scaling of ``|rfft|^2``: ``1 / (fs N)``, doubled except at DC (and Nyquist for even N)."""
    return _cached_scale(n_freq, n, float(fs), like.dtype, like.device)


@functools.lru_cache(maxsize=32)
def _cached_scale(n_freq: int, n: int, fs: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    scale = np.full(n_freq, 2.0 / (fs * n))
    scale[0] = 1.0 / (fs * n)
    if n % 2 == 0:
        scale[-1] = 1.0 / (fs * n)
    return torch.as_tensor(scale, dtype=dtype).to(device)


@functools.lru_cache(maxsize=32)
def _rfftfreq(n: int, fs: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.fft.rfftfreq(n, d=1.0 / fs, dtype=dtype).to(device)


def psd_1d(x, dim: int = 0, fs: float = 1.0) -> Spectrum:
    """One-sided periodogram along ``dim`` (density scaling, no window, no detrending).

    Returns
    -------
    Spectrum
        ``freqs`` (N // 2 + 1,) in cycles per unit of ``fs``; ``psd`` with ``dim``
        replaced by the frequency axis.
    """
    x = _real(as_tensor(x))
    n = x.shape[dim]
    spec = torch.fft.rfft(x, dim=dim)
    power = spec.real.square() + spec.imag.square()
    shape = [1] * power.ndim
    shape[dim] = -1
    psd = power * _one_sided_scale(power.shape[dim], n, fs, power).reshape(shape)
    freqs = torch.fft.rfftfreq(n, d=1.0 / fs, device=x.device, dtype=psd.dtype)
    return Spectrum(freqs, psd)


def psd_2d(x, dims: tuple[int, int] = (0, 1), fs: float = 1.0) -> Spectrum2D:
    """Two-sided 2-D periodogram over ``dims``, shifted so the zero frequency is central.

    Returns
    -------
    Spectrum2D
        ``fy`` (H,), ``fx`` (W,) and ``psd`` with ``dims`` holding (H, W).
    """
    x = _real(as_tensor(x))
    h, w = x.shape[dims[0]], x.shape[dims[1]]
    spec = torch.fft.fftn(x, dim=dims)
    psd = (spec.real.square() + spec.imag.square()) / (fs * fs * h * w)
    psd = torch.fft.fftshift(psd, dim=dims)
    fy = torch.fft.fftshift(torch.fft.fftfreq(h, d=1.0 / fs, device=x.device, dtype=psd.dtype))
    fx = torch.fft.fftshift(torch.fft.fftfreq(w, d=1.0 / fs, device=x.device, dtype=psd.dtype))
    return Spectrum2D(fy, fx, psd)


def radial_profile(psd2d, fy, fx, bins: int | None = None, fmax: float | None = None) -> Spectrum:
    """Azimuthal average of a shifted 2-D spectrum over annuli of ``|f|``.

    Parameters
    ----------
    psd2d
        Shape (..., H, W), as returned by :func:`psd_2d`.
    fy, fx
        Frequencies of the last two axes.
    bins
        Number of annuli on ``[0, fmax]``; default ``min(H, W) // 2``, i.e. one
        frequency step per annulus.
    fmax
        Outer radius; default the Nyquist frequency of the shorter axis
        (corners beyond it are left out).

    Returns
    -------
    Spectrum
        ``freqs`` (bins,) annulus centres; ``psd`` (..., bins) mean power per annulus.
    """
    psd2d, fy, fx = as_tensor(psd2d), as_tensor(fy), as_tensor(fx)
    h, w = psd2d.shape[-2], psd2d.shape[-1]
    bins = bins or max(1, min(h, w) // 2)
    fmax = float(fmax) if fmax is not None else float(min(fy.abs().max(), fx.abs().max()))
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).reshape(-1)
    idx = torch.floor(radius / fmax * bins + 0.5).to(torch.int64)   # annulus k centred on k * fmax / bins
    keep = idx < bins
    flat = psd2d.reshape(*psd2d.shape[:-2], h * w)[..., keep]
    idx = idx[keep]
    sums = torch.zeros(*flat.shape[:-1], bins, dtype=flat.dtype, device=flat.device)
    sums.index_add_(-1, idx, flat)
    counts = torch.zeros(bins, dtype=flat.dtype, device=flat.device).index_add_(0, idx, torch.ones_like(idx, dtype=flat.dtype))
    freqs = torch.arange(bins, dtype=flat.dtype, device=flat.device) * (fmax / bins)
    return Spectrum(freqs, sums / counts.clamp_min(1))


def cumulative_psd(psd, dim: int = -1, normalize: bool = True) -> torch.Tensor:
    """Running sum of a spectrum along ``dim``; with ``normalize`` the last value is 1.

    The normalised curve is the fraction of power below each frequency.
    """
    psd = as_tensor(psd)
    total = torch.cumsum(psd, dim=dim)
    if not normalize:
        return total
    last = total.narrow(dim, total.shape[dim] - 1, 1)
    return total / torch.where(last == 0, torch.ones_like(last), last)


def _check_method(method: str) -> str:
    if method not in ("mean", "sum"):
        raise ValueError(f"unknown PSD method {method!r}; use 'mean' (average of per-neuron PSDs) "
                         "or 'sum' (PSD of the sum over neurons)")
    return method


def layer_psd(acts, method: str = "mean", fs: float = 1.0) -> Spectrum:
    """Layer-averaged 1-D PSD of an activation ``(N, ...)`` over its sample axis.

    Returns
    -------
    Spectrum
        ``freqs`` (N // 2 + 1,), ``psd`` (N // 2 + 1,).
    """
    x = flatten_neurons(acts)
    if _check_method(method) == "sum":
        x = x.sum(dim=1, keepdim=True)
    n = x.shape[0]
    power = torch.fft.rfft(x, dim=0).abs().square_().mean(dim=1)     # average before scaling
    freqs = _rfftfreq(n, float(fs), power.dtype, power.device).clone()
    return Spectrum(freqs, power * _one_sided_scale(power.shape[0], n, fs, power))


def layer_psd_2d(acts, grid_shape: Sequence[int], method: str = "mean", fs: float = 1.0) -> Spectrum2D:
    """Layer-averaged 2-D PSD of an activation whose samples form a ``(H, W)`` grid.

    Returns
    -------
    Spectrum2D
        ``fy`` (H,), ``fx`` (W,), ``psd`` (H, W).
    """
    h, w = (int(n) for n in grid_shape)
    x = flatten_neurons(acts)
    if x.shape[0] != h * w:
        raise ValueError(f"grid_shape {tuple(grid_shape)} does not match {x.shape[0]} samples")
    if _check_method(method) == "sum":
        x = x.sum(dim=1, keepdim=True)
    spec = psd_2d(x.reshape(h, w, -1), dims=(0, 1), fs=fs)
    return Spectrum2D(spec.fy, spec.fx, spec.psd.mean(dim=-1))
