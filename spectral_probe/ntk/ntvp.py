"""NTK-vector products ``Theta V = J (J^T V)`` with ``torch.func`` (``vjp`` then ``jvp``), in chunks.

Used for the ``"ntvp"`` kernel route (one product per kernel column) and for
matrix-free operators on models the structured route cannot handle.  Nothing
of size ``N x N`` beyond the requested kernel is ever allocated: the unit
vectors of a kernel are generated one chunk at a time.

Memory model
------------
A batch of ``b`` products (``vmap`` over the columns) holds, besides the
graph of one forward pass over ``x1`` (kept by ``vjp``)::

    b * (K_VJP * N1 * m  +  K_JVP * N2 * m  +  K_PARAM * P * item)

plus ``K_OUT`` times the kernel being returned and ``K_GRAPH * N1 * s``, where
``m`` is the largest tensor autograd saves per sample in a forward pass (about
one layer's activations: ``vjp`` and ``jvp`` free each layer's intermediates as
they go, so the product's memory does not grow with depth), ``s`` the total
saved per sample (both measured once with ``torch.autograd.graph.saved_tensors_hooks``
on a few samples), ``P`` the real parameter count and ``item`` the bytes per
value.  The constants were fitted to the peak resident memory of child
processes (SIREN widths 16-128, depths 2-4, N = 256-2048);
``tests/test_ntk_engine.py`` checks the estimate against the measured peak.  The chunk
size is the largest ``b`` whose batch fits in the working budget
(:data:`DEFAULT_WORKSPACE`, or what is available if that is less).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.func import jvp, vjp, vmap

from .memory import available_memory_bytes, check_memory, format_bytes

__all__ = ["DEFAULT_WORKSPACE", "NTVPPlan", "saved_bytes_per_sample", "plan_ntvp", "ntvp_kernels",
           "ntvp_matmat"]

#: working memory the ntvp route allows itself by default (beyond the kernel and the x1 graph)
DEFAULT_WORKSPACE = 512 * 2 ** 20
#: fitted memory constants of one vmapped product (see the module docstring)
K_VJP, K_JVP, K_PARAM, K_GRAPH, K_OUT = 6.0, 7.6, 4.0, 1.5, 2.0


def _saved_profile(call, params, xs: torch.Tensor) -> tuple[int, int]:
    """Total bytes autograd saves in one forward pass of ``xs`` (each storage once), and the largest
    per-sample share of a saved tensor whose leading axis is the batch."""
    seen: dict[tuple, int] = {}
    batch = xs.shape[0]
    largest = 0

    def pack(t: torch.Tensor):
        nonlocal largest
        try:
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        except (RuntimeError, NotImplementedError):   # tensors without storage
            key = (id(t),)
        seen[key] = t.numel() * t.element_size()
        if t.dim() and t.shape[0] == batch:
            largest = max(largest, seen[key] // batch)
        return t

    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        call(leaves, xs)
    return sum(seen.values()), largest


def saved_bytes_per_sample(call, params, x: torch.Tensor, probe: int = 8) -> tuple[int, int]:
    """Bytes autograd saves per sample in one forward pass of ``call(params, x)``: total and largest tensor.

    The total is measured on ``probe`` and ``2 * probe`` samples; the
    difference divided by ``probe`` leaves out what does not grow with the
    batch (weights saved by linear layers).  Tensors saved twice (same
    storage) count once.  The largest saved tensor per sample (about one
    layer's activations) sets the memory of a product, since ``vjp`` and
    ``jvp`` free each layer's intermediates as they go.
    """
    probe = max(1, min(probe, x.shape[0] // 2))
    small = _saved_profile(call, params, x[:probe])
    if x.shape[0] < 2:
        return max(1, small[0]), max(1, small[1] or small[0])
    large = _saved_profile(call, params, x[:2 * probe])
    total = max(1, math.ceil((large[0] - small[0]) / probe))
    return total, max(1, large[1] or total)


@dataclass
class NTVPPlan:
    """Chunking of the ntvp route and what it needs.

    Attributes
    ----------
    chunk
        Products per vmapped batch.
    per_product
        Estimated bytes of one product inside a batch.
    fixed
        Bytes that do not depend on the chunk: the kernel (or product block)
        being returned and the forward graph kept by ``vjp``.
    """

    chunk: int
    per_product: int
    fixed: int

    @property
    def need(self) -> int:
        """Estimated peak bytes: ``fixed + chunk * per_product``."""
        return self.fixed + self.chunk * self.per_product

    def describe(self) -> str:
        return (f"chunks of {self.chunk} products, {format_bytes(self.need)} estimated "
                f"({format_bytes(self.per_product)} per product)")


def plan_ntvp(n1: int, n2: int, columns: int, per_sample: tuple[int, int], n_params: int, item: int,
              output_bytes: int, *, chunk_size: int | None = None, workspace: int | None = None,
              device: torch.device | str | None = None, max_bytes: int | None = None) -> NTVPPlan:
    """Choose the chunk of the ntvp route from the memory model.

    Parameters
    ----------
    n1, n2
        Samples of the vjp (``x1``) and jvp (``x2``) passes.
    columns
        Products needed in total (kernel columns, or vectors of a block).
    per_sample
        ``(total, largest)`` from :func:`saved_bytes_per_sample`.
    n_params, item
        Real parameters and bytes per value.
    output_bytes
        Size of what is returned (the kernel).
    chunk_size
        Forced chunk (still checked against the memory available).
    workspace
        Budget for the batch (default :data:`DEFAULT_WORKSPACE`, capped by the
        memory available).

    Raises
    ------
    DenseKernelTooLarge
        When even one product at a time does not fit.
    """
    total, largest = per_sample
    per_product = int(K_VJP * n1 * largest + K_JVP * n2 * largest + K_PARAM * n_params * item)
    fixed = int(K_OUT * output_bytes + K_GRAPH * n1 * total)
    budget = available_memory_bytes(torch.device(device or "cpu")) if max_bytes is None else int(max_bytes)
    if chunk_size is None:
        room = min(DEFAULT_WORKSPACE if workspace is None else int(workspace), budget - fixed)
        chunk = max(1, min(columns, room // max(per_product, 1)))
    else:
        chunk = max(1, min(columns, int(chunk_size)))
    plan = NTVPPlan(chunk, per_product, fixed)
    check_memory(plan.need, f"the ntvp route ({plan.describe()})", device=device, max_bytes=max_bytes,
                 alternative="use implementation='jacrev' or 'structured', or fewer samples")
    return plan


def ntvp_kernels(call, params, x1, x2, c: int, groups: list[str], group_of, trace: bool,
                 chunk: int) -> dict[str, torch.Tensor]:
    """Kernel columns ``Theta e_j`` by ``vjp`` over ``x1`` and ``jvp`` over ``x2``, ``chunk`` at a time.

    Parameters
    ----------
    call
        ``call(params, x) -> (N, C)`` (a :class:`~spectral_probe.ntk.empirical.RealView`'s ``call``).
    groups, group_of
        Parameter groups to return separately (``["total"]`` for the sum) and
        the map from a parameter name to its group.

    Returns
    -------
    dict of str to Tensor
        Per group, ``(N1, N2)`` when ``trace`` else ``(N1, N2, C, C)``.
    """
    x2 = x1 if x2 is None else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    _, vjp_fn = vjp(lambda p: call(p, x1), params)

    def column(vec):
        (ct,) = vjp_fn(vec)
        outs = []
        for grp in groups:
            tangent = ct if grp == "total" else \
                {k: v if group_of(k) == grp else torch.zeros_like(v) for k, v in ct.items()}
            outs.append(jvp(lambda p: call(p, x2), (params,), (tangent,))[1])
        return torch.stack(outs)                                   # (G, n2, c)

    shape = (n1, n2) if trace else (n1, n2, c, c)
    out = {g: torch.zeros(shape, dtype=x1.dtype, device=x1.device) for g in groups}
    total = n1 * c
    for start in range(0, total, chunk):
        idx = torch.arange(start, min(start + chunk, total), device=x1.device)
        b = idx.numel()
        basis = torch.zeros(b, n1 * c, dtype=x1.dtype, device=x1.device)
        basis[torch.arange(b, device=x1.device), idx] = 1
        cols = vmap(column)(basis.reshape(b, n1, c))               # (b, G, n2, c')
        rows, chans = idx // c, idx % c
        for gi, g in enumerate(groups):
            block = cols[:, gi]                                     # (b, n2, c')
            if trace:        # sum_c Theta[(n, c), (m, c)]
                out[g].index_add_(0, rows, block[torch.arange(b, device=x1.device), :, chans])
            else:
                out[g][rows, :, chans, :] = block
        del cols, basis
    return out


def ntvp_matmat(call, params, x: torch.Tensor, c: int, v: torch.Tensor, chunk: int) -> torch.Tensor:
    """Traced ``Theta @ V`` for ``V`` of shape ``(N, b)``: ``vjp``/``jvp`` over ``chunk`` columns at a time.

    ``Theta`` traced over outputs is ``sum_c J_c J_c^T``; each column is pushed
    through once per output channel.
    """
    _, vjp_fn = vjp(lambda p: call(p, x), params)

    def product(vec):                      # vec (N, C): one cotangent; returns J J^T vec, (N, C)
        (ct,) = vjp_fn(vec)
        return jvp(lambda p: call(p, x), (params,), (ct,))[1]

    n, b = v.shape
    out = torch.empty(n, b, dtype=v.dtype, device=v.device)
    eye = torch.eye(c, dtype=v.dtype, device=v.device)
    for start in range(0, b, max(1, chunk // c)):
        cols = v[:, start:start + max(1, chunk // c)]                        # (N, b')
        cot = (cols.T[:, None, :, None] * eye[None, :, None, :])              # (b', C, N, C)
        res = vmap(product)(cot.reshape(-1, n, c)).reshape(cols.shape[1], c, n, c)
        out[:, start:start + cols.shape[1]] = res.diagonal(dim1=1, dim2=3).sum(-1).T
    return out
