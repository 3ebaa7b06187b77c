"""Matrix-free NTK: ``v -> Theta v`` without forming ``Theta`` (traced over outputs).

Three product routes, none of which allocates an ``N x N`` array:

* ``structured`` -- Kronecker factors of the linear layers (``O(N * width)``
  memory, ``O(N * sum d_out d_in)`` per product); every bundled INR.
* ``jacrev`` -- per-sample Jacobians ``J`` (``N x C x P``) kept once, products
  ``J (J^T v)``; any model whose Jacobian fits in memory.
* ``ntvp`` -- ``vjp`` then ``jvp`` with ``torch.func`` per product (nothing but
  one forward graph kept); any model, slowest per product.

``"auto"`` takes the first that applies, in that order (falling back when
the structured route refuses the model, statically or while recording).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.func import jacrev, vmap

from .empirical import Implementation, RealView, check_inputs, check_parameters, count_parameters, \
    output_channels, prepare_tensors, resolve_implementation
from ..hooks import paused as paused_hooks
from .memory import available_memory_bytes, check_memory
from .ntvp import DEFAULT_WORKSPACE, ntvp_matmat, plan_ntvp, saved_bytes_per_sample
from .structured import LayerFactors, StructuredUnsupported, capture_factors, structured_matmat

__all__ = ["NTKOperator", "ntk_operator", "spectrum_from_operator"]


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
        ``"structured"`` (Kronecker factors, ``O(N * width)`` memory),
        ``"jacrev"`` (per-sample Jacobian, ``O(N * C * P)``) or ``"ntvp"``
        (``vjp`` + ``jvp`` with ``torch.func``).
    factors
        Structured route only: the per-layer factors.
    jacobian
        Jacrev route only: the Jacobian ``(N, C, P)``.
    matvecs
        Number of vectors multiplied so far.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, implementation: str,
                 matmat_fn, factors: list[LayerFactors] | None = None, *, diagonal_fn=None,
                 jacobian: torch.Tensor | None = None) -> None:
        self.n = n
        self._diagonal_fn = diagonal_fn
        self.jacobian = jacobian
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
        if self._diagonal_fn is not None:
            return self._diagonal_fn()
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


def _jacobian(view: RealView, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Per-sample Jacobian over real parameters, ``(N, C, P)``."""
    def single(p, xi):
        return view.call(p, xi.unsqueeze(0))[0]
    jac = vmap(jacrev(single), in_dims=(None, 0), chunk_size=chunk)(view.real, x)
    return torch.cat([v.reshape(v.shape[0], v.shape[1], -1) for v in jac.values()], dim=2)


def ntk_operator(
    model: nn.Module,
    x: torch.Tensor,
    *,
    implementation: str | Implementation = "auto",
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
    product_chunk: int | None = None,
) -> NTKOperator:
    """Matrix-free traced NTK on inputs ``x``.

    Parameters
    ----------
    model
        Any model.
    x
        Inputs ``(N, d_in)``.
    implementation
        ``"auto"`` (structured, else jacrev when the Jacobian fits in a quarter
        of the memory budget, else ntvp), ``"structured"``, ``"jacrev"`` or ``"ntvp"``.
    dtype
        Real compute dtype (model dtype by default).
    chunk_size
        Samples per forward/backward pass (structured factors, jacrev).
    product_chunk
        ntvp: products per vmapped batch (default: from its memory model,
        :mod:`spectral_probe.ntk.ntvp`).
    max_bytes
        Memory budget (default: what is available).

    Returns
    -------
    NTKOperator
        ``implementation`` says which route was taken.
    """
    check_inputs(x, "x")
    check_parameters(model)
    impl = resolve_implementation(model, implementation)
    requested = Implementation(implementation)
    params, others, dtype = prepare_tensors(model, dtype, device=x.device)
    x = x.to(dtype)
    n = x.shape[0]
    if impl is Implementation.STRUCTURED:
        try:
            factors = capture_factors(model, x, {**params, **others}, chunk_size)
        except StructuredUnsupported:
            if requested is not Implementation.AUTO:
                raise
            impl = Implementation.JACREV
        else:
            workspace: dict = {}
            return NTKOperator(n, dtype, x.device, "structured",
                               lambda v: structured_matmat(factors, v, workspace), factors)
    c = output_channels(model, x, params, others)
    item = torch.finfo(dtype).bits // 8
    n_params = count_parameters(model)
    view = RealView(model, params, others)
    budget = available_memory_bytes(x.device) if max_bytes is None else int(max_bytes)
    jac_bytes = n * c * n_params * item
    if impl is Implementation.JACREV and requested is Implementation.AUTO and 4 * jac_bytes > budget:
        impl = Implementation.NTVP
    if impl is Implementation.JACREV:
        check_memory(2 * jac_bytes, f"the {n}x{c}x{n_params} Jacobian of the jacrev operator",
                     device=x.device, max_bytes=max_bytes, alternative="use implementation='ntvp'")
        with paused_hooks(model):
            jac = _jacobian(view, x, chunk_size or max(1, min(n, DEFAULT_WORKSPACE // max(1, 3 * c * n_params * item))))

        def matmat(v: torch.Tensor) -> torch.Tensor:
            vec = v.dim() == 1
            v2 = v.unsqueeze(1) if vec else v
            out = torch.zeros_like(v2)
            for ch in range(c):
                out += jac[:, ch] @ (jac[:, ch].T @ v2)
            return out[:, 0] if vec else out

        diag = (jac * jac).sum((1, 2))
        return NTKOperator(n, dtype, x.device, "jacrev", matmat, diagonal_fn=lambda: diag, jacobian=jac)
    per_sample = saved_bytes_per_sample(view.call, view.real, x)
    plan = plan_ntvp(n, n, 64 * c, per_sample, n_params, item, 0, chunk_size=product_chunk, device=x.device,
                     max_bytes=max_bytes)

    def ntvp(v: torch.Tensor) -> torch.Tensor:
        vec = v.dim() == 1
        v2 = v.unsqueeze(1) if vec else v
        with paused_hooks(model):
            out = ntvp_matmat(view.call, view.real, x, c, v2, plan.chunk)
        return out[:, 0] if vec else out

    return NTKOperator(n, dtype, x.device, "ntvp", ntvp)


def _fourier_columns(grid: tuple[int, ...], start: int, stop: int, dtype, device) -> torch.Tensor:
    """Real probe vectors for frequency bins ``start..stop-1``: ``[cos | sin]``, shape ``(N, 2 b)``."""
    n = math.prod(grid)
    idx = torch.arange(start, stop, device=device)
    if len(grid) == 1:
        k = idx
        phase = (2 * math.pi / n) * ((k[None, :] * torch.arange(n, device=device)[:, None]) % n).double()
    else:
        h, w = grid
        kr, kc = idx // w, idx % w
        m = torch.arange(n, device=device)
        mr, mc = m // w, m % w
        phase = (2 * math.pi) * (((kr[None, :] * mr[:, None]) % h).double() / h
                                 + ((kc[None, :] * mc[:, None]) % w).double() / w)
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=1).to(dtype)


def spectrum_from_operator(op: "NTKOperator", grid_shape: tuple[int, ...] | None = None,
                           block: int = 64) -> torch.Tensor:
    """Exact ``S(k)`` from NTK-vector products: ``S(k) = (c_k^T Theta c_k + s_k^T Theta s_k) / N``.

    ``c_k``, ``s_k`` are the cosine and sine at frequency ``k`` on the grid
    (``f_k = c_k - i s_k``; ``Theta`` is real symmetric, so the cross terms
    cancel).  Costs two products per frequency bin (``N + 2`` in 1-D, ``2 N`` in
    2-D), ``block`` bins at a time; memory ``O(N * block)``, no ``N x N`` array.
    A jacrev operator transforms its Jacobian instead (``O(N log N * C P)``).

    Returns
    -------
    Tensor
        One-sided ``(N // 2 + 1,)`` for a 1-D grid, full ``(H, W)`` for a 2-D one;
        float64.
    """
    n = op.n
    grid = (n,) if grid_shape is None else tuple(int(g) for g in grid_shape)
    if math.prod(grid) != n or len(grid) not in (1, 2):
        raise ValueError(f"grid_shape {grid_shape!r} does not match the operator's {n} samples")
    if op.jacobian is not None:
        jac = op.jacobian.reshape(*grid, -1).double()
        dims = tuple(range(len(grid)))
        power = torch.zeros(grid, dtype=torch.float64, device=jac.device)
        for s in range(0, jac.shape[-1], 4096):
            f = torch.fft.fftn(jac[..., s:s + 4096], dim=dims)
            power += (f.real.square() + f.imag.square()).sum(-1)
        full = power / n
        return full[:n // 2 + 1].cpu() if len(grid) == 1 else full.cpu()
    bins = n // 2 + 1 if len(grid) == 1 else n
    out = torch.empty(bins, dtype=torch.float64)
    for start in range(0, bins, block):
        stop = min(start + block, bins)
        cols = _fourier_columns(grid, start, stop, op.dtype, op.device)
        prod = op.matmat(cols)
        quad = (cols * prod).sum(0).double().cpu()
        b = stop - start
        out[start:stop] = (quad[:b] + quad[b:]) / n
    return out if len(grid) == 1 else out.reshape(grid)
