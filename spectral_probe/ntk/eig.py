"""Eigendecomposition of the NTK: dense ``eigh`` and matrix-free top-k (Lanczos / LOBPCG).

The NTK is symmetric positive semi-definite, so negative eigenvalues can only
come from round-off.  Both routes sort eigenvalues in descending order, clip
negative ones to zero and report what was clipped (:class:`NTKEigen`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .memory import check_memory
from .operator import NTKOperator
from .parallel import cpu_guard

__all__ = ["NTKEigen", "ntk_eigh", "ntk_topk", "decay_profile", "roundoff_tolerance"]


@dataclass
class NTKEigen:
    """Eigenpairs of an NTK, sorted by decreasing eigenvalue.

    Attributes
    ----------
    values
        Eigenvalues ``(r,)``, descending, negative round-off clipped to 0.
    vectors
        Unit eigenvectors as columns ``(N, r)``, or ``None``.
    n_clipped
        How many eigenvalues were negative and set to zero.
    min_raw
        Most negative raw eigenvalue (0.0 when none was negative).
    tolerance
        Round-off bound ``N * eps * lambda_max`` of the compute dtype; a
        negative eigenvalue beyond it triggers a ``RuntimeWarning``.
    method
        ``"eigh"`` or ``"lanczos"``.
    matvecs
        Operator applications (matrix-free routes).
    """

    values: torch.Tensor
    vectors: torch.Tensor | None
    n_clipped: int
    min_raw: float
    tolerance: float
    method: str
    matvecs: int = 0

    def clip_report(self) -> str:
        """One line describing the clipping (for summaries)."""
        if self.n_clipped == 0:
            return "no negative eigenvalue"
        return (f"{self.n_clipped} negative eigenvalue(s) clipped to 0 (most negative "
                f"{self.min_raw:.3e}, round-off bound {self.tolerance:.3e})")


def roundoff_tolerance(n: int, lam_max: float, dtype: torch.dtype) -> float:
    """``N * eps(dtype) * lambda_max``: the size of round-off in a computed eigenvalue."""
    return float(n * torch.finfo(dtype).eps * max(lam_max, 0.0))


def _finish(values, vectors, n, dtype, method, matvecs=0) -> NTKEigen:
    order = torch.argsort(values, descending=True)
    values = values[order]
    vectors = None if vectors is None else vectors[:, order]
    lam_max = float(values[0]) if values.numel() else 0.0
    tol = roundoff_tolerance(n, lam_max, dtype)
    negative = values < 0
    n_clipped = int(negative.sum())
    min_raw = float(values.min()) if n_clipped else 0.0
    if n_clipped and -min_raw > tol:
        warnings.warn(f"NTK eigenvalue {min_raw:.3e} is below -{tol:.3e} (round-off bound); "
                      "the kernel is not positive semi-definite beyond round-off -- check its "
                      "symmetry or recompute in float64", RuntimeWarning, stacklevel=3)
    values = values.clamp_min(0)
    return NTKEigen(values, vectors, n_clipped, min_raw, tol, method, matvecs)


def ntk_eigh(
    theta: torch.Tensor,
    *,
    float64: bool = True,
    eigenvectors: bool = True,
    max_bytes: int | None = None,
) -> NTKEigen:
    """Dense eigendecomposition of a traced NTK with ``torch.linalg.eigh``.

    Parameters
    ----------
    theta
        Symmetric kernel ``(N, N)``.
    float64
        Decompose in float64 (recommended: eigenvalues span many decades).
    eigenvectors
        Return eigenvectors (``eigvalsh`` otherwise).
    max_bytes
        Memory budget; defaults to the available memory.

    Returns
    -------
    NTKEigen
        All ``N`` eigenpairs, descending, negative round-off clipped.
    """
    if theta.dim() != 2 or theta.shape[0] != theta.shape[1]:
        raise ValueError(f"theta must be a square (N, N) kernel, got shape {tuple(theta.shape)}; "
                         "for a per-output kernel (N, N, C, C) trace it or reshape to (N*C, N*C)")
    n = theta.shape[0]
    dtype = torch.float64 if float64 else theta.dtype
    item = torch.finfo(dtype).bits // 8
    check_memory((3 if eigenvectors else 2) * n * n * item,
                 f"dense eigh of a {n}x{n} {str(dtype).replace('torch.', '')} NTK",
                 device=theta.device, max_bytes=max_bytes)
    a = theta.to(dtype).contiguous()      # LAPACK is much slower on strided input
    if eigenvectors:
        values, vectors = torch.linalg.eigh(a)
    else:
        values, vectors = torch.linalg.eigvalsh(a), None
    # round-off is set by the less precise of the kernel and the decomposition
    worst = theta.dtype if torch.finfo(theta.dtype).eps > torch.finfo(dtype).eps else dtype
    return _finish(values, vectors, n, worst, "eigh")


def _lanczos(op: NTKOperator, k: int, tol: float, seed: int, ncv: int | None):
    from scipy.sparse.linalg import eigsh

    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(op.n)
    ncv = min(op.n, max(2 * k + 1, 20) if ncv is None else ncv)
    values, vectors = eigsh(op.as_scipy(), k=k, which="LA", tol=tol, v0=v0, ncv=ncv)
    return torch.from_numpy(values), torch.from_numpy(vectors)


def _dense_operator(theta: torch.Tensor) -> NTKOperator:
    return NTKOperator(theta.shape[0], theta.dtype, theta.device, "dense", lambda v: theta @ v)


def ntk_topk(
    op: NTKOperator | torch.Tensor,
    k: int,
    *,
    method: str = "lanczos",
    tol: float = 0.0,
    seed: int = 0,
    ncv: int | None = None,
) -> NTKEigen:
    """Top-``k`` eigenpairs of the NTK from matrix-vector products.

    Parameters
    ----------
    op
        An :class:`NTKOperator` (matrix-free) or a dense ``(N, N)`` kernel.
    k
        Number of leading eigenpairs, ``1 <= k < N``.
    method
        ``"lanczos"``: implicitly restarted Lanczos (ARPACK via
        ``scipy.sparse.linalg.eigsh``, ``which="LA"``).  (``torch.lobpcg``
        only accepts tensors, not operators, so it is not offered.)
    tol
        Relative accuracy of the eigenvalues (``0`` = machine precision, ARPACK).
    seed
        Seed of the random starting vector(s).
    ncv
        Lanczos basis size (default ``max(2k + 1, 20)``).

    Returns
    -------
    NTKEigen
        ``k`` eigenpairs, descending; eigenvectors ``(N, k)`` in float64.
    """
    if isinstance(op, torch.Tensor):
        if op.dim() != 2 or op.shape[0] != op.shape[1]:
            raise ValueError(f"kernel must be square (N, N), got {tuple(op.shape)}")
        op = _dense_operator(op)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < op.n:
        raise ValueError(f"k must be an integer with 1 <= k < N={op.n}, got {k!r}; "
                         "for all eigenpairs use ntk_eigh on the dense kernel")
    check_memory(op.n * (max(2 * k + 1, 20) if ncv is None else ncv) * 8,
                 f"a Lanczos basis of {k} vectors of length {op.n}", device="cpu",
                 alternative="lower k")
    start = op.matvecs
    if method == "lanczos":
        with cpu_guard(op.device):            # many small products: one thread on a busy machine
            values, vectors = _lanczos(op, k, tol, seed, ncv)
    else:
        raise ValueError(f"unknown method {method!r}; valid: 'lanczos'")
    return _finish(values, vectors, op.n, op.dtype, method, op.matvecs - start)


def decay_profile(values: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """Eigenvalue decay summary.

    Parameters
    ----------
    values
        Eigenvalues, descending, non-negative.

    Returns
    -------
    dict
        ``normalized`` (``lambda_i / lambda_1``, shape ``(r,)``), ``cumulative``
        (share of ``sum lambda`` in the first ``i+1`` modes, ``(r,)``),
        ``effective_rank`` (``exp`` of the entropy of ``lambda / sum lambda``),
        ``modes_90``/``modes_99`` (modes holding 90 % / 99 % of the trace).
    """
    v = values.double().clamp_min(0)
    total = float(v.sum())
    if total <= 0:
        zeros = torch.zeros_like(v)
        return dict(normalized=zeros, cumulative=zeros, effective_rank=0.0, modes_90=0, modes_99=0)
    p = v / total
    nz = p[p > 0]
    cum = torch.cumsum(p, 0)

    def modes(q: float) -> int:
        return int(torch.searchsorted(cum, torch.tensor(q - 1e-12, dtype=cum.dtype, device=cum.device))) + 1

    return dict(normalized=v / v[0], cumulative=cum,
                effective_rank=float(math.exp(float(-(nz * nz.log()).sum()))),
                modes_90=min(modes(0.9), v.numel()), modes_99=min(modes(0.99), v.numel()))

