"""NTK-weighted spectrum ``S(k)`` (paper Eqn 6) three ways, and plotting helpers.

Normalisation (ours)
--------------------
Samples ``x_0 .. x_{N-1}`` lie on a uniform grid, in order (``linspace(-1, 1, N)``
for 1-D signals; a flattened row-major grid otherwise, as in the authors' code).
``Theta`` is the unnormalised empirical NTK (:func:`~spectral_probe.ntk.empirical_ntk`,
traced over outputs) with eigenpairs ``Theta v_i = lambda_i v_i``, ``|v_i| = 1``.
The DFT is **unitary** over the sample axis::

    v_hat(k) = N^{-1/2} sum_n v[n] exp(-2 pi i k n / N),   k = 0 .. N-1

``k`` is an integer frequency index in **cycles per record** (the whole grid of
``N`` samples; for ``linspace(-1, 1, N)`` one cycle spans ``2 N / (N - 1)`` units
of ``x``).  Then (Eqn 6)::

    S(k) = sum_i lambda_i |v_hat_i(k)|^2 = (F Theta F^H)_kk
         = (1/N) sum_p |sum_n exp(-2 pi i k n / N) df(x_n)/dtheta_p|^2

and ``sum_{k=0}^{N-1} S(k) = trace(Theta)`` (Parseval).  ``Theta`` is real and
symmetric, so ``S(N - k) = S(k)``: arrays here are **one-sided**, ``k = 0 ..
N // 2`` (length ``N // 2 + 1``), each entry being the two-sided value at ``+k``
(and ``-k``); :func:`two_sided` restores all ``N`` bins.

Conversion to the authors' figures (``modules/utils_NTK.py`` of SIREN-square)
------------------------------------------------------------------------------
They decompose ``K = Theta / N^2``, use the unnormalised FFT and divide the
spectrum by ``N``: ``S_auth(k) = (1/N) sum_i (lambda_i / N^2) |FFT(v_i)(k)|^2``.
Since ``|FFT(v)|^2 = N |v_hat|^2``::

    S_auth = fftshift(two_sided(S)) / N^2,   omega = 2 pi fftshift(fftfreq(N))

with ``omega`` in radians per sample in ``[-pi, pi)``; :func:`authors_convention`
does this.  Half-Nyquist (``|omega| = pi/2``) is ``k = N/4``.
"""

from __future__ import annotations

import math
import torch

from .spectrum_factors import FactorSpectrum, spectrum_from_factors

__all__ = [
    "frequencies", "two_sided", "authors_convention", "high_frequency_share",
    "spectrum_from_eigenpairs", "spectrum_from_kernel", "spectrum_from_factors",
    "FactorSpectrum", "normalized_kernel",
]


def frequencies(n: int) -> torch.Tensor:
    """One-sided frequency indices ``k = 0 .. n // 2`` (cycles per record), int64."""
    return torch.arange(n // 2 + 1)


def two_sided(s: torch.Tensor, n: int) -> torch.Tensor:
    """All ``n`` bins ``k = 0 .. n - 1`` from a one-sided spectrum (``S(n - k) = S(k)``)."""
    k = torch.arange(n, device=s.device)
    return s[torch.minimum(k, n - k)]


def authors_convention(s: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert to the authors' plotting convention.

    Returns
    -------
    omega, s_auth
        Angular frequency ``2 pi fftshift(fftfreq(n))`` in rad/sample, shape
        ``(n,)``, and ``fftshift(two_sided(s)) / n^2``, shape ``(n,)``.
    """
    omega = 2 * math.pi * torch.fft.fftshift(torch.fft.fftfreq(n, dtype=torch.float64))
    return omega, torch.fft.fftshift(two_sided(s, n)) / n ** 2


def _two_sided_weights(n: int, dtype=torch.float64) -> torch.Tensor:
    w = torch.full((n // 2 + 1,), 2.0, dtype=dtype)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def high_frequency_share(s: torch.Tensor, n: int, cutoff: float = 0.5) -> float:
    """Share of the two-sided ``S(k)`` energy at ``|k| > cutoff * n / 2``.

    ``cutoff=0.5`` is "above half-Nyquist" (``|omega| > pi/2``).
    """
    w = _two_sided_weights(n).to(s.device) * s.double()
    total = float(w.sum())
    if total <= 0:
        return 0.0
    k = frequencies(n).to(s.device)
    return float(w[k > cutoff * n / 2].sum()) / total


def spectrum_from_eigenpairs(values: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``S(k) = sum_i lambda_i |v_hat_i(k)|^2`` (Eqn 6) from (possibly top-r) eigenpairs.

    With the top-``r`` pairs of :func:`~spectral_probe.ntk.ntk_topk` this is the
    truncated spectrum ``S_r(k) <= S(k)``.

    Parameters
    ----------
    values
        Eigenvalues ``(r,)``.
    vectors
        Unit eigenvectors as columns ``(N, r)``, samples in grid order.

    Returns
    -------
    Tensor
        One-sided ``S(k)``, shape ``(N // 2 + 1,)``.
    """
    n = vectors.shape[0]
    vhat = torch.fft.rfft(vectors, dim=0) / math.sqrt(n)
    return (vhat.abs() ** 2) @ values.to(vhat.real.dtype)


def spectrum_from_kernel(theta: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """``S(k) = (F Theta F^H)_kk`` without an eigendecomposition.

    Processes ``block`` kernel columns at a time: ``X = rfft(Theta[:, cols])``
    then ``S(k) += Re sum_m X[k, m] exp(2 pi i k m / N) / N``.  Memory
    ``O(N * block)``, cost ``O(N^2 log N)``.

    Parameters
    ----------
    theta
        Traced kernel ``(N, N)``.

    Returns
    -------
    Tensor
        One-sided ``S(k)``, shape ``(N // 2 + 1,)``.
    """
    if theta.dim() != 2 or theta.shape[0] != theta.shape[1]:
        raise ValueError(f"theta must be a square (N, N) kernel, got shape {tuple(theta.shape)}")
    n = theta.shape[0]
    k = frequencies(n).to(theta.device)
    s = torch.zeros(n // 2 + 1, dtype=theta.dtype, device=theta.device)
    for start in range(0, n, block):
        m = torch.arange(start, min(start + block, n), device=theta.device)
        x = torch.fft.rfft(theta[:, start:start + block], dim=0)
        phase = (2 * math.pi / n) * ((k[:, None] * m[None, :]) % n).to(theta.dtype)
        s += (x.real * torch.cos(phase) - x.imag * torch.sin(phase)).sum(1)
    return s / n


def normalized_kernel(theta: torch.Tensor, mode: str = "cosine") -> torch.Tensor:
    """Kernel rescaled for plotting.

    Parameters
    ----------
    theta
        Traced kernel ``(N, N)``.
    mode
        ``"cosine"``: ``Theta_nm / sqrt(Theta_nn Theta_mm)`` (in ``[-1, 1]``,
        unit diagonal); ``"max"``: ``Theta / max |Theta|``; ``"authors"``:
        ``Theta / N^2`` (SIREN-square's ``compute_ntk``).

    Returns
    -------
    Tensor
        Shape ``(N, N)``.
    """
    if mode == "cosine":
        d = theta.diagonal().clamp_min(torch.finfo(theta.dtype).tiny).sqrt()
        return theta / d[:, None] / d[None, :]
    if mode == "max":
        return theta / theta.abs().max().clamp_min(torch.finfo(theta.dtype).tiny)
    if mode == "authors":
        return theta / theta.shape[0] ** 2
    raise ValueError(f"unknown mode {mode!r}; valid: 'cosine', 'max', 'authors'")
