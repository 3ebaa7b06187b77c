"""Matrix-free NTK: ``v -> Theta v`` without forming ``Theta`` (traced over outputs)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import jvp, vjp

from .empirical import Implementation, RealView, check_inputs, check_parameters, \
    output_channels, prepare_tensors, resolve_implementation
from ..hooks import paused
from .structured import LayerFactors, capture_factors, structured_matmat

__all__ = ["NTKOperator", "ntk_operator"]


class NTKOperator:
    """The traced NTK ``Theta`` of shape ``(N, N)`` as a linear operator.

    Built by :func:`ntk_operator`.  ``matmat`` accepts and returns tensors on
    the operator's device; :meth:`as_scipy` wraps it for ``scipy.sparse.linalg``.

    Attributes
    ----------
    n
        Number of samples ``N``.
    dtype
        Real compute dtype.
    implementation
        ``"structured"`` (Kronecker factors, ``O(N * width)`` memory) or
        ``"ntvp"`` (``vjp`` + ``jvp`` with ``torch.func``).
    factors
        Structured route only: the per-layer factors.
    matvecs
        Number of vectors multiplied so far.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, implementation: str,
                 matmat_fn, factors: list[LayerFactors] | None = None) -> None:
        self.n = n
        self.dtype = dtype
        self.device = device
        self.implementation = implementation
        self.factors = factors
        self._matmat = matmat_fn
        self.matvecs = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def matmat(self, v: torch.Tensor) -> torch.Tensor:
        """``Theta @ v`` for ``v`` of shape ``(N,)`` or ``(N, b)``."""
        v = v.to(device=self.device, dtype=self.dtype)
        self.matvecs += 1 if v.dim() == 1 else v.shape[1]
        return self._matmat(v)

    def diagonal(self, chunk: int = 256) -> torch.Tensor:
        """``diag(Theta)``, shape ``(N,)`` (``trace`` = its sum)."""
        if self.factors is not None:
            d = torch.zeros(self.n, dtype=self.dtype, device=self.device)
            for f in self.factors:
                aa = (f.a.abs() ** 2).sum(1)
                d += ((f.g.abs() ** 2).sum(2) * aa).sum(0).to(self.dtype)
            return d
        eye = torch.eye(self.n, dtype=self.dtype, device=self.device)
        return torch.cat([(self.matmat(eye[:, s:s + chunk]) * eye[:, s:s + chunk]).sum(0)
                          for s in range(0, self.n, chunk)])

    def as_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (float64 numpy in and out)."""
        from scipy.sparse.linalg import LinearOperator

        def mm(v):
            t = torch.from_numpy(np.ascontiguousarray(v))
            return self.matmat(t).double().cpu().numpy()

        return LinearOperator(self.shape, matvec=mm, matmat=mm, rmatvec=mm, dtype=np.float64)


def _generic_matmat(model, params, others, x, c):
    view = RealView(model, params, others)

    def matmat(v: torch.Tensor) -> torch.Tensor:
        vec = v.dim() == 1
        v2 = v.unsqueeze(1) if vec else v
        out = torch.zeros_like(v2)
        with paused(model):
            _, vjp_fn = vjp(lambda p: view.call(p, x), view.real)
            for col in range(v2.shape[1]):
                for ch in range(c):
                    ct = torch.zeros(x.shape[0], c, dtype=v2.dtype, device=v2.device)
                    ct[:, ch] = v2[:, col]
                    (tangent,) = vjp_fn(ct)
                    out[:, col] += jvp(lambda p: view.call(p, x), (view.real,), (tangent,))[1][:, ch]
        return out[:, 0] if vec else out

    return matmat


def ntk_operator(
    model: nn.Module,
    x: torch.Tensor,
    *,
    implementation: str | Implementation = "auto",
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
) -> NTKOperator:
    """Matrix-free traced NTK on inputs ``x``.

    Parameters
    ----------
    model
        Any model; the structured route is used when the model allows it
        (``"auto"``/``"structured"``), otherwise ``vjp``/``jvp`` products
        (``"ntvp"``; ``"jacrev"`` is mapped to it, having no matrix-free form).
    x
        Inputs ``(N, d_in)``.
    dtype
        Real compute dtype (model dtype by default).
    chunk_size
        Samples per forward/backward pass when capturing the structured factors.

    Returns
    -------
    NTKOperator
        ``matmat`` costs ``O(N * sum_l d_out d_in)`` per vector (structured)
        with ``O(N * width)`` memory.
    """
    check_inputs(x, "x")
    check_parameters(model)
    impl = resolve_implementation(model, implementation)
    params, others, dtype = prepare_tensors(model, dtype, device=x.device)
    x = x.to(dtype)
    if impl is Implementation.STRUCTURED:
        factors = capture_factors(model, x, {**params, **others}, chunk_size)
        workspace: dict = {}
        return NTKOperator(x.shape[0], dtype, x.device, "structured",
                           lambda v: structured_matmat(factors, v, workspace), factors)
    c = output_channels(model, x, params, others)
    return NTKOperator(x.shape[0], dtype, x.device, "ntvp", _generic_matmat(model, params, others, x, c))
