"""``S(k)`` from the Jacobian factors of a structured model, without forming ``Theta``.

For a linear layer the parameter Jacobians are the products ``g_j(x) a_i(x)``
of a backpropagated gradient and a layer input, so

    S(k) = (1/N) sum_p |DFT_x(df/dtheta_p)|^2

needs one FFT per (output unit, input unit) pair of each layer, over the
sample axis (1-D grids) or over the reshaped ``(H, W)`` grid (2-D grids, a
2-D DFT).  Conventions as in :mod:`spectral_probe.ntk.spectrum` (1-D, one-sided)
and :mod:`spectral_probe.ntk.spectrum2d` (2-D, full two-sided ``(H, W)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .structured import LayerFactors

__all__ = ["FactorSpectrum", "spectrum_from_factors"]


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


def _fft_power_shape(n: int, grid: tuple[int, ...], complex_: bool) -> tuple[int, ...]:
    """Shape of the accumulated power: one-sided/half spectrum for real rows, full for complex."""
    if len(grid) == 1:
        return (n,) if complex_ else (n // 2 + 1,)
    h, w = grid
    return (h, w) if complex_ else (h, w // 2 + 1)


def _power_rows_cpu(gt: np.ndarray, at: np.ndarray, kept: np.ndarray, qs, block: int,
                    grid: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """One thread's share: ``sum_{q in qs, r kept} |FFT(g_q * a_r)|^2`` (single-threaded FFTs)."""
    import scipy.fft as sfft

    n = gt.shape[1]
    complex_ = np.iscomplexobj(gt) or np.iscomplexobj(at)
    shape = _fft_power_shape(n, grid, complex_)
    acc = np.zeros(math.prod(shape), dtype=np.float64)
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
            if len(grid) == 1:
                y = sfft.fft(rows, axis=-1, workers=1) if complex_ else sfft.rfft(rows, axis=-1, workers=1)
            else:
                cube = rows.reshape(rows.shape[0], *grid)
                y = sfft.fft2(cube, workers=1) if complex_ else sfft.rfft2(cube, workers=1)
                y = y.reshape(rows.shape[0], -1)
            flat = y.view(rows.real.dtype)
            np.square(flat, out=flat)
            acc += (ones[:rows.shape[0]] @ flat).reshape(-1, 2).sum(1)
    return acc.reshape(shape), used


def _block_power_cpu(gt: np.ndarray, at: np.ndarray, kept: torch.Tensor, block: int,
                     workers: int, grid: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """CPU: ``sum_{q, r kept} |FFT(g_q * a_r)|^2`` with scipy's pocketfft, ``workers`` threads.

    Each thread takes every ``workers``-th output unit and runs its own
    single-threaded FFTs (faster here than splitting each batch between threads).
    """
    keep = kept.numpy()
    if workers <= 1 or gt.shape[0] == 1:
        return _power_rows_cpu(gt, at, keep, range(gt.shape[0]), block, grid)
    from concurrent.futures import ThreadPoolExecutor

    shares = [range(w, gt.shape[0], workers) for w in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda qs: _power_rows_cpu(gt, at, keep, qs, block, grid), shares))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _block_power_torch(gt: torch.Tensor, at: torch.Tensor, kept: torch.Tensor,
                       block: int, grid: tuple[int, ...]) -> tuple[torch.Tensor, int]:
    """Any device: the same sum with ``torch.fft``."""
    n = gt.shape[1]
    complex_ = gt.is_complex() or at.is_complex()
    acc = torch.zeros(_fft_power_shape(n, grid, complex_), dtype=torch.float64, device=gt.device)
    used = 0
    for q in range(gt.shape[0]):
        idx = torch.nonzero(kept[q]).flatten().to(gt.device)
        used += idx.numel()
        for s in range(0, idx.numel(), block):
            rows = at[idx[s:s + block]] * gt[q]
            if len(grid) == 1:
                y = torch.fft.fft(rows, dim=-1) if complex_ else torch.fft.rfft(rows, dim=-1)
            else:
                cube = rows.reshape(rows.shape[0], *grid)
                y = torch.fft.fft2(cube) if complex_ else torch.fft.rfft2(cube)
            acc += (y.real.square() + y.imag.square()).sum(0).double()
    return acc, used


def _check_grid(grid_shape, n: int) -> tuple[int, ...]:
    grid = (n,) if grid_shape is None else tuple(int(g) for g in grid_shape)
    if len(grid) not in (1, 2) or math.prod(grid) != n:
        raise ValueError(f"grid_shape {grid_shape!r} must be (N,) or (H, W) with H * W = N = {n}")
    return grid


def _mirror(half: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Full two-sided 2-D spectrum from the ``rfft2`` half of a real signal's power (``S(-k) = S(k)``)."""
    h, w = grid
    kr = torch.arange(h)
    kc = torch.arange(w)
    cols = torch.where(kc <= w // 2, kc, w - kc)
    rows = torch.where((kc <= w // 2)[None, :], kr[:, None], (-kr[:, None]) % h)
    return half[rows, cols[None, :].expand(h, w)]


def _symmetrised(full: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """``(P(k) + P(-k)) / 2`` of a full spectrum (complex parameters count as two real ones)."""
    if len(grid) == 1:
        n = grid[0]
        k = torch.arange(n // 2 + 1)
        return 0.5 * (full[k] + full[(-k) % n])
    h, w = grid
    return 0.5 * (full + full[(-torch.arange(h)) % h][:, (-torch.arange(w)) % w])


def spectrum_from_factors(
    factors: list[LayerFactors],
    *,
    rtol: float = 0.0,
    block: int = 32,
    workers: int | None = None,
    grid_shape: tuple[int, ...] | None = None,
) -> FactorSpectrum:
    """``S(k) = (1/N) sum_p |DFT_x(df/dtheta_p)|^2`` without forming ``Theta``.

    For a linear layer the parameter Jacobians are the products
    ``g_j(x) a_i(x)`` of a backpropagated gradient and a layer input, so each
    layer needs ``d_out * d_in`` FFTs of length ``N`` (or 2-D FFTs of the
    ``(H, W)`` grid), done ``block`` at a time (memory ``O(N * (width + block))``).
    Complex layers contribute ``(|F J(k)|^2 + |F J(-k)|^2) / 2`` per complex
    parameter (its real and imaginary parts counted as two real parameters).

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
        FFT threads on CPU (default ``torch.get_num_threads()``; 1 under
        :func:`~spectral_probe.ntk.parallel.cpu_guard` on a busy machine).
    grid_shape
        ``None`` or ``(N,)``: 1-D grid, one-sided result ``(N // 2 + 1,)``.
        ``(H, W)``: samples are the row-major flattening of an ``H x W`` grid;
        the result is the full two-sided 2-D ``S`` of shape ``(H, W)``
        (unshifted; see :mod:`spectral_probe.ntk.spectrum2d`).

    Returns
    -------
    FactorSpectrum
    """
    if not factors:
        raise ValueError("no layer factors given")
    if rtol < 0 or not math.isfinite(rtol):
        raise ValueError(f"rtol must be a finite number >= 0, got {rtol!r}")
    n = factors[0].a.shape[0]
    grid = _check_grid(grid_shape, n)
    workers = torch.get_num_threads() if workers is None else workers
    blocks = _blocks(factors, rtol)
    keep, total, dropped = _select(blocks, rtol)
    acc_real = torch.zeros(_fft_power_shape(n, grid, False), dtype=torch.float64)
    acc_cplx = torch.zeros(_fft_power_shape(n, grid, True), dtype=torch.float64)
    used = 0
    for (g, a), kept in zip(blocks, keep):
        complex_ = g.is_complex() or a.is_complex()
        dtype = torch.promote_types(g.dtype, a.dtype)
        gt = g.T.to(dtype).contiguous()
        at = (a.conj() if complex_ else a).T.to(dtype).contiguous()
        if gt.device.type == "cpu":
            acc, u = _block_power_cpu(gt.numpy(), at.resolve_conj().numpy(), kept.cpu(), block, workers, grid)
            acc = torch.from_numpy(acc)
        else:
            acc, u = _block_power_torch(gt, at, kept, block, grid)
        used += u
        if complex_:
            acc_cplx += acc.cpu()
        else:
            acc_real += acc.cpu()
    if len(grid) == 1:
        values = (acc_real + _symmetrised(acc_cplx, grid)) / n
    else:
        values = (_mirror(acc_real, grid) + _symmetrised(acc_cplx, grid)) / n
    return FactorSpectrum(values, used, sum(int(m.numel()) for m in keep), dropped, total)
