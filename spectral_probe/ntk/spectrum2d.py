"""``S(k)`` on 2-D grids (images): the 2-D analogue of Eqn 6 and its radial profile.

Convention
----------
The ``N = H * W`` samples are the row-major flattening of an ``H x W`` grid
(``spectral_probe.signals.grid_coords((H, W))``: sample ``n = r * W + c``).
Eigenvectors are reshaped to ``(H, W)`` and transformed with the **unitary**
2-D DFT::

    v_hat(k_r, k_c) = N^{-1/2} sum_{r, c} v[r, c] exp(-2 pi i (k_r r / H + k_c c / W))

    S(k_r, k_c) = sum_i lambda_i |v_hat_i(k_r, k_c)|^2 = (F2 Theta F2^H)_kk

so the sum over all ``H x W`` bins is ``trace(Theta)``.  Arrays are the full,
two-sided, **unshifted** ``(H, W)`` spectrum (index ``[k_r mod H, k_c mod W]``,
as ``numpy.fft.fft2``); ``k_r``, ``k_c`` are integers in cycles per record along
each axis (:func:`grid_frequencies`).  ``Theta`` is real and symmetric, so
``S(-k) = S(k)``.

Radial frequency, as a fraction of each axis' Nyquist frequency::

    rho = sqrt((2 k_r / H)^2 + (2 k_c / W)^2)        (1 = Nyquist along an axis)

:func:`radial_profile` sums ``S`` over annuli of width ``2 / min(H, W)`` (one
frequency step of the shorter axis), corners (``rho`` up to ``sqrt 2``)
included, so the profile also sums to the trace.  (The probes' radial PSD,
:func:`spectral_probe.probes.stats.radial_profile`, is a *mean* per annulus
without the corners: a density, where this is an energy.)
"""

from __future__ import annotations

import math

import torch

__all__ = ["grid_frequencies", "radial_frequency", "spectrum2d_from_eigenpairs",
           "spectrum2d_from_kernel", "radial_profile", "high_frequency_share_2d", "check_grid"]


def check_grid(grid_shape, n: int) -> tuple[int, int]:
    """``(H, W)`` as ints, checking ``H * W == n`` (``ValueError`` naming both otherwise)."""
    try:
        h, w = (int(g) for g in grid_shape)
    except (TypeError, ValueError):
        raise ValueError(f"grid_shape must be (H, W), got {grid_shape!r}") from None
    if h < 1 or w < 1 or h * w != n:
        raise ValueError(f"grid_shape {grid_shape!r} does not match the {n} samples (H * W must equal N)")
    return h, w


def grid_frequencies(grid_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer frequencies ``k_r`` (H,) and ``k_c`` (W,) of the unshifted 2-D DFT, cycles per record."""
    h, w = grid_shape
    return (torch.fft.fftfreq(h, d=1.0 / h).round().long(), torch.fft.fftfreq(w, d=1.0 / w).round().long())


def radial_frequency(grid_shape: tuple[int, int]) -> torch.Tensor:
    """``rho`` of every bin, shape ``(H, W)``, as a fraction of each axis' Nyquist frequency."""
    h, w = grid_shape
    kr, kc = grid_frequencies(grid_shape)
    return torch.sqrt((2.0 * kr[:, None] / h) ** 2 + (2.0 * kc[None, :] / w) ** 2).double()


def spectrum2d_from_eigenpairs(values: torch.Tensor, vectors: torch.Tensor,
                               grid_shape: tuple[int, int]) -> torch.Tensor:
    """``S(k_r, k_c) = sum_i lambda_i |v_hat_i(k_r, k_c)|^2`` from (possibly top-r) eigenpairs.

    Parameters
    ----------
    values
        Eigenvalues ``(r,)``.
    vectors
        Unit eigenvectors as columns ``(N, r)``, samples in row-major grid order.
    grid_shape
        ``(H, W)`` with ``H * W = N``.

    Returns
    -------
    Tensor
        ``(H, W)``, unshifted, float64.
    """
    h, w = check_grid(grid_shape, vectors.shape[0])
    cube = vectors.double().T.reshape(-1, h, w)
    power = torch.fft.fft2(cube, norm="ortho").abs().square()            # (r, H, W)
    return torch.einsum("rhw,r->hw", power, values.double().to(power.device))


def spectrum2d_from_kernel(theta: torch.Tensor, grid_shape: tuple[int, int], block: int = 512) -> torch.Tensor:
    """``S = diag(F2 Theta F2^H)`` without an eigendecomposition, ``block`` kernel columns at a time.

    ``X = F2 Theta[:, cols]`` (2-D FFT of each column on the grid) and
    ``S(k) += Re sum_m X[k, m] exp(+2 pi i k . m) / N``.  Memory ``O(N * block)``.

    Returns
    -------
    Tensor
        ``(H, W)``, unshifted, float64.
    """
    if theta.dim() != 2 or theta.shape[0] != theta.shape[1]:
        raise ValueError(f"theta must be a square (N, N) kernel, got shape {tuple(theta.shape)}")
    n = theta.shape[0]
    h, w = check_grid(grid_shape, n)
    kr, kc = grid_frequencies((h, w))
    kr, kc = kr.to(theta.device), kc.to(theta.device)
    s = torch.zeros(h, w, dtype=torch.float64, device=theta.device)
    for start in range(0, n, block):
        m = torch.arange(start, min(start + block, n), device=theta.device)
        mr, mc = m // w, m % w
        cols = theta[:, start:start + block].double().T.reshape(-1, h, w)   # (b, H, W)
        x = torch.fft.fft2(cols)                                             # (b, H, W)
        # phase(k, m) = 2 pi (k_r m_r / H + k_c m_c / W), kept exact with integer arithmetic
        pr = (2 * math.pi / h) * ((kr[None, :] * mr[:, None]) % h).double()  # (b, H)
        pc = (2 * math.pi / w) * ((kc[None, :] * mc[:, None]) % w).double()  # (b, W)
        phase = torch.polar(torch.ones_like(pr), pr)[:, :, None] * torch.polar(torch.ones_like(pc), pc)[:, None, :]
        s += (x * phase).real.sum(0)
    return s / n


def radial_profile(s2d: torch.Tensor, grid_shape: tuple[int, int] | None = None,
                   mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum (or mean) of a 2-D ``S`` over annuli of ``rho``.

    Parameters
    ----------
    s2d
        ``(..., H, W)`` unshifted spectrum.
    mean
        Average instead of sum per annulus.

    Returns
    -------
    rho, profile
        Annulus centres as fractions of Nyquist (``(B,)``, step ``2 / min(H, W)``,
        up to ``sqrt 2``) and the profile ``(..., B)``; with ``mean=False`` it sums
        to the total of ``s2d``.
    """
    h, w = s2d.shape[-2:] if grid_shape is None else grid_shape
    step = 2.0 / min(h, w)
    rho = radial_frequency((h, w)).to(s2d.device)
    idx = torch.round(rho / step).long().reshape(-1)
    bins = int(idx.max()) + 1
    flat = s2d.double().reshape(*s2d.shape[:-2], h * w)
    out = torch.zeros(*flat.shape[:-1], bins, dtype=torch.float64, device=s2d.device)
    out.index_add_(-1, idx, flat)
    if mean:
        counts = torch.zeros(bins, dtype=torch.float64, device=s2d.device)
        counts.index_add_(0, idx, torch.ones_like(idx, dtype=torch.float64))
        out = out / counts.clamp_min(1)
    return torch.arange(bins, dtype=torch.float64) * step, out


def high_frequency_share_2d(s2d: torch.Tensor, cutoff: float = 0.5) -> float:
    """Share of the 2-D ``S`` at radial frequency ``rho > cutoff`` (fraction of Nyquist)."""
    total = float(s2d.double().sum())
    if total <= 0:
        return 0.0
    rho = radial_frequency(tuple(s2d.shape[-2:])).to(s2d.device)
    return float(s2d.double()[rho > cutoff].sum()) / total
