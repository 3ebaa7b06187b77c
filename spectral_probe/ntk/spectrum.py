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
from dataclasses import dataclass

import numpy as np
import torch

from ..validation import positive_float
from .structured import LayerFactors

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


@dataclass
class FactorSpectrum:
    """``S(k)`` computed from Jacobian factors, with its truncation bookkeeping.

    Attributes
    ----------
    values
        One-sided ``S(k)``, shape ``(N // 2 + 1,)``, float64.
    pairs_used, pairs_total
        Rank-one parameter directions transformed / in total.
    dropped_mass
        ``sum_k (S_exact - S)(k)`` over all ``N`` bins (>= 0, exact up to the
        round-off of the factors' dtype): the trace mass of the dropped
        directions.  0 when ``rtol == 0``.
    trace
        ``trace(Theta) = sum_k S(k)`` over all ``N`` bins.
    """

    values: torch.Tensor
    pairs_used: int
    pairs_total: int
    dropped_mass: float
    trace: float


def _rotate(m: torch.Tensor) -> torch.Tensor:
    """Rotate columns onto the eigenbasis of ``m^H m`` (an orthogonal/unitary change of basis)."""
    # contiguous: eigh on the column-major product that matmul returns is ~50x slower
    gram = (m.conj().T @ m).to(torch.complex128 if m.is_complex() else torch.float64).contiguous()
    _, vecs = torch.linalg.eigh(gram)
    return m @ vecs.to(m.dtype)


def _blocks(factors, rtol):
    """Yield ``(g (N, d_out), a (N, d_in))`` per layer and output, optionally rotated."""
    blocks = []
    for f in factors:
        a = _rotate(f.a) if rtol > 0 else f.a
        for g in f.g:
            blocks.append((_rotate(g) if rtol > 0 else g, a))
    return blocks


def _select(blocks, rtol):
    # trace mass of each rank-one direction: sum_n |g_nq|^2 |a_nr|^2 (GEMM in the factors' precision)
    masses = [((g.abs().square().T @ a.abs().square()) if g.dtype == a.dtype else
               (g.abs().double().square().T @ a.abs().double().square())).double() for g, a in blocks]
    total = float(sum(m.sum() for m in masses))
    keep = [torch.ones_like(m, dtype=torch.bool) for m in masses]
    dropped = 0.0
    if rtol > 0 and total > 0:
        flat = torch.cat([m.flatten() for m in masses])
        order = torch.argsort(flat)
        cum = torch.cumsum(flat[order], 0)
        budget = torch.tensor(rtol * total, dtype=cum.dtype, device=cum.device)
        n_drop = int(torch.searchsorted(cum, budget, right=True))
        mask = torch.ones_like(flat, dtype=torch.bool)
        mask[order[:n_drop]] = False
        dropped = float(cum[n_drop - 1]) if n_drop else 0.0
        offsets = np.cumsum([0] + [m.numel() for m in masses])
        keep = [mask[offsets[i]:offsets[i + 1]].view_as(m) for i, m in enumerate(masses)]
    return keep, total, dropped


def _power_rows_cpu(gt: np.ndarray, at: np.ndarray, kept: np.ndarray, qs, block: int) -> tuple[np.ndarray, int]:
    """One thread's share: ``sum_{q in qs, r kept} |FFT(g_q * a_r)|^2`` (single-threaded FFTs)."""
    import scipy.fft as sfft

    n = gt.shape[1]
    complex_ = np.iscomplexobj(gt) or np.iscomplexobj(at)
    acc = np.zeros(n if complex_ else n // 2 + 1, dtype=np.float64)
    buf = np.empty((min(block, at.shape[0]), n), dtype=np.result_type(gt, at))
    ones = np.ones(buf.shape[0], dtype=buf.real.dtype)
    used = 0
    for q in qs:
        idx = np.flatnonzero(kept[q])
        used += idx.size
        dense = idx.size == at.shape[0]
        for s in range(0, idx.size, block):
            rows = buf[:min(block, idx.size - s)]
            np.multiply(at[s:s + rows.shape[0]] if dense else at[idx[s:s + block]], gt[q], out=rows)
            y = sfft.fft(rows, axis=-1, workers=1) if complex_ else sfft.rfft(rows, axis=-1, workers=1)
            flat = y.view(rows.real.dtype)
            np.square(flat, out=flat)
            acc += (ones[:rows.shape[0]] @ flat).reshape(-1, 2).sum(1)
    return acc, used


def _block_power_cpu(gt: np.ndarray, at: np.ndarray, kept: torch.Tensor, block: int,
                     workers: int) -> tuple[np.ndarray, int]:
    """CPU: ``sum_{q, r kept} |FFT(g_q * a_r)|^2`` with scipy's pocketfft, ``workers`` threads.

    Each thread takes every ``workers``-th output unit and runs its own
    single-threaded FFTs (faster here than splitting each batch between threads).
    """
    keep = kept.numpy()
    if workers <= 1 or gt.shape[0] == 1:
        return _power_rows_cpu(gt, at, keep, range(gt.shape[0]), block)
    from concurrent.futures import ThreadPoolExecutor

    shares = [range(w, gt.shape[0], workers) for w in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda qs: _power_rows_cpu(gt, at, keep, qs, block), shares))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _block_power_torch(gt: torch.Tensor, at: torch.Tensor, kept: torch.Tensor,
                       block: int) -> tuple[torch.Tensor, int]:
    """Any device: the same sum with ``torch.fft``."""
    n = gt.shape[1]
    complex_ = gt.is_complex() or at.is_complex()
    acc = torch.zeros(n if complex_ else n // 2 + 1, dtype=torch.float64, device=gt.device)
    used = 0
    for q in range(gt.shape[0]):
        idx = torch.nonzero(kept[q]).flatten().to(gt.device)
        used += idx.numel()
        for s in range(0, idx.numel(), block):
            rows = at[idx[s:s + block]] * gt[q]
            y = torch.fft.fft(rows, dim=-1) if complex_ else torch.fft.rfft(rows, dim=-1)
            acc += (y.real.square() + y.imag.square()).sum(0).double()
    return acc, used


def spectrum_from_factors(
    factors: list[LayerFactors],
    *,
    rtol: float = 0.0,
    block: int = 32,
    workers: int | None = None,
) -> FactorSpectrum:
    """``S(k) = (1/N) sum_p |DFT_x(df/dtheta_p)|^2`` without forming ``Theta``.

    For a linear layer the parameter Jacobians are the products
    ``g_j(x) a_i(x)`` of a backpropagated gradient and a layer input, so each
    layer needs ``d_out * d_in`` FFTs of length ``N``, done ``block`` at a time
    (memory ``O(N * (width + block))``).  Complex layers contribute
    ``(|F J(k)|^2 + |F J(-k)|^2) / 2`` per complex parameter (its real and
    imaginary parts counted as two real parameters).

    Parameters
    ----------
    factors
        From :func:`~spectral_probe.ntk.capture_factors` on grid-ordered inputs.
    rtol
        ``0`` (default) is exact.  ``rtol > 0`` first rotates each layer's
        gradient and input bases onto their principal axes (an orthogonal
        change of parameter basis, which leaves ``S`` unchanged) and skips the
        least energetic directions whose total trace mass is at most
        ``rtol * trace(Theta)``.  Every dropped direction only removes
        non-negative power, so ``0 <= S_exact(k) - S(k)`` pointwise and the sum
        of the differences is reported as ``dropped_mass``.
    block
        Rows per FFT batch.
    workers
        FFT threads on CPU (default ``torch.get_num_threads()``).

    Returns
    -------
    FactorSpectrum
    """
    if not factors:
        raise ValueError("no layer factors given")
    positive_float(rtol, "rtol", allow_zero=True)
    n = factors[0].a.shape[0]
    workers = torch.get_num_threads() if workers is None else workers
    blocks = _blocks(factors, rtol)
    keep, total, dropped = _select(blocks, rtol)
    acc_real = torch.zeros(n // 2 + 1, dtype=torch.float64)
    acc_cplx = torch.zeros(n, dtype=torch.float64)
    used = 0
    for (g, a), kept in zip(blocks, keep):
        complex_ = g.is_complex() or a.is_complex()
        dtype = torch.promote_types(g.dtype, a.dtype)
        gt = g.T.to(dtype).contiguous()
        at = (a.conj() if complex_ else a).T.to(dtype).contiguous()
        if gt.device.type == "cpu":
            acc, u = _block_power_cpu(gt.numpy(), at.resolve_conj().numpy(), kept.cpu(), block, workers)
            acc = torch.from_numpy(acc)
        else:
            acc, u = _block_power_torch(gt, at, kept, block)
        used += u
        if complex_:
            acc_cplx += acc.cpu()
        else:
            acc_real += acc.cpu()
    k = frequencies(n)
    acc_real += 0.5 * (acc_cplx[k] + acc_cplx[(-k) % n])
    values = acc_real / n
    return FactorSpectrum(values, used, sum(int(m.numel()) for m in keep), dropped, total)


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
