"""The residual's spectral measure under the NTK: eigenpairs (dense) or Lanczos from the residual.

The linearised forecast (:mod:`spectral_probe.ntk.forecast`) needs the
eigenvalues ``lambda_j`` of ``Theta``, the coefficients ``c_j = q_j . r_0`` of
the initial residual and, for per-frequency results, the vectors ``q_j``.
:func:`measure_from_eigen` reads them off a dense ``eigh``;
:func:`lanczos_measure` builds ``m`` Ritz pairs from the Krylov space of ``r_0``
(Gauss quadrature of the residual's spectral measure), never forming ``Theta``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..validation import positive_int
from .eig import NTKEigen
from .operator import NTKOperator
from .parallel import cpu_guard

__all__ = ["SpectralMeasure", "measure_from_eigen", "lanczos_measure"]


@dataclass
class SpectralMeasure:
    """The initial residual in an (approximate) eigenbasis of ``Theta``.

    Attributes
    ----------
    nodes
        Eigenvalues (or Ritz values) ``lambda_j``, shape ``(M,)``, float64.
    coeffs
        ``c_j = q_j . r_0``, shape ``(M,)``; ``sum c_j^2 = |r_0|^2``.
    basis
        ``q_j`` as columns ``(N, M)`` (float64), or ``None`` (no band map).
    n
        Samples ``N``.
    method
        ``"eigenpairs"`` or ``"lanczos"``.
    steps
        Lanczos steps (``M``); 0 for eigenpairs.
    tridiagonal
        Lanczos ``(alpha, beta)``, kept to re-solve with fewer steps.
    """

    nodes: torch.Tensor
    coeffs: torch.Tensor
    basis: torch.Tensor | None
    n: int
    method: str
    steps: int = 0
    tridiagonal: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def residual_norm2(self) -> float:
        return float((self.coeffs ** 2).sum())

    def truncated(self, steps: int) -> "SpectralMeasure":
        """The Lanczos measure of the first ``steps`` steps (for the accuracy estimate)."""
        if self.tridiagonal is None:
            raise ValueError("only a Lanczos measure can be truncated")
        alpha, beta = self.tridiagonal
        nodes, vecs = _tridiagonal_eigh(alpha[:steps], beta[:steps - 1])
        norm = math.sqrt(self.residual_norm2)
        return SpectralMeasure(nodes, norm * vecs[0], None, self.n, "lanczos", steps, None)


def _as_residual(residual: torch.Tensor, n: int) -> torch.Tensor:
    r = torch.as_tensor(residual).detach().double().cpu()
    if r.dim() == 2:
        if r.shape[1] != 1:
            raise ValueError(f"the forecast handles single-channel targets; the residual has shape "
                             f"{tuple(r.shape)} (use a mono signal or a gray image)")
        r = r[:, 0]
    if r.dim() != 1 or r.shape[0] != n:
        raise ValueError(f"residual must have shape (N,) or (N, 1) with N = {n}, got {tuple(r.shape)}")
    if not torch.isfinite(r).all():
        raise ValueError("the residual contains NaN or infinite values")
    return r


def measure_from_eigen(eigen: NTKEigen, residual: torch.Tensor) -> SpectralMeasure:
    """Project the residual ``r_0 = y - f(x; theta_0)`` on dense eigenpairs.

    With top-``K`` pairs only, the part of ``r_0`` outside their span is kept
    as one extra node at ``lambda = 0`` (it is never learned in the forecast:
    a pessimistic choice, since its true eigenvalues lie in ``[0, lambda_K]``).
    """
    if eigen.vectors is None:
        raise ValueError("eigenvectors are needed: compute the eigenpairs with eigenvectors=True")
    q = eigen.vectors.double().cpu()
    r = _as_residual(residual, q.shape[0])
    c = q.T @ r
    nodes, coeffs, basis = eigen.values.double().cpu(), c, q
    rest = r - q @ c
    rest_norm = float(rest.norm())
    if q.shape[1] < q.shape[0] and rest_norm > 1e-12 * float(r.norm()):
        nodes = torch.cat([nodes, torch.zeros(1, dtype=torch.float64)])
        coeffs = torch.cat([coeffs, torch.tensor([rest_norm], dtype=torch.float64)])
        basis = torch.cat([q, (rest / rest_norm)[:, None]], dim=1)
    return SpectralMeasure(nodes, coeffs, basis, q.shape[0], "eigenpairs")


def _tridiagonal_eigh(alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
    values, vectors = torch.linalg.eigh(t)
    return values.clamp_min(0), vectors


def lanczos_measure(op: NTKOperator, residual: torch.Tensor, steps: int = 256, *,
                    keep_basis: bool = True) -> SpectralMeasure:
    """Lanczos from ``r_0`` with full reorthogonalisation: Ritz values and the residual's weights.

    Parameters
    ----------
    op
        The NTK as an operator (:func:`~spectral_probe.ntk.ntk_operator`).
    residual
        ``r_0``, shape ``(N,)`` or ``(N, 1)``.
    steps
        Krylov dimension ``m`` (``min(m, N)`` products); stops early on an
        invariant subspace (then exact).
    keep_basis
        Keep the Ritz vectors ``(N, m)`` for the per-band map.
    """
    steps = positive_int(steps, "steps")
    r = _as_residual(residual, op.n)
    norm = float(r.norm())
    if norm == 0:
        raise ValueError("the residual is zero: the model already fits the target")
    m = min(steps, op.n)
    basis = torch.zeros(op.n, m, dtype=torch.float64)
    alpha = torch.zeros(m, dtype=torch.float64)
    beta = torch.zeros(max(m - 1, 0), dtype=torch.float64)
    q = r / norm
    with cpu_guard(op.device):            # many small products: one thread on a busy machine
        done = _lanczos_steps(op, basis, alpha, beta, q, m)
    alpha, beta, basis = alpha[:done], beta[:done - 1], basis[:, :done]
    nodes, vecs = _tridiagonal_eigh(alpha, beta)
    coeffs = norm * vecs[0]
    ritz = basis @ vecs if keep_basis else None
    return SpectralMeasure(nodes, coeffs, ritz, op.n, "lanczos", done, (alpha, beta))


def _lanczos_steps(op, basis, alpha, beta, q, m) -> int:
    """Fill ``basis``, ``alpha``, ``beta`` in place; returns the number of steps taken."""
    done = m
    scale = 0.0
    for j in range(m):
        basis[:, j] = q
        w = op.matmat(q.to(op.dtype)).double().cpu()
        alpha[j] = q @ w
        scale = max(scale, abs(float(alpha[j])))
        for _ in range(2):                         # full reorthogonalisation, twice is enough
            w -= basis[:, :j + 1] @ (basis[:, :j + 1].T @ w)
        if j + 1 == m:
            break
        b = float(w.norm())
        if b <= 1e-12 * max(scale, 1e-300):        # invariant subspace: the measure is exact
            done = j + 1
            break
        beta[j] = b
        q = w / b
    return done
