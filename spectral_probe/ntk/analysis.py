"""One call from a model and a grid to kernel, eigenpairs and ``S(k)``: :func:`analyze_ntk`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .eig import NTKEigen, ntk_eigh, ntk_topk
from .empirical import Implementation, check_inputs, check_parameters, count_parameters, \
    empirical_ntk, prepare_tensors, resolve_implementation
from .memory import check_memory
from .operator import ntk_operator
from .spectrum import FactorSpectrum, spectrum_from_eigenpairs, spectrum_from_factors, \
    spectrum_from_kernel
from .structured import capture_factors, structured_layers

__all__ = ["NTKResult", "analyze_ntk", "spectrum_without_kernel", "dense_bytes"]


@dataclass
class NTKResult:
    """Everything :func:`analyze_ntk` computed.

    Attributes
    ----------
    x
        Inputs ``(N, d_in)`` (CPU).
    n_params
        Trainable real parameters.
    implementation
        Route that produced the kernel or the operator.
    dtype
        Compute dtype name (``"float32"``).
    kernel
        Dense traced NTK ``(N, N)``, or ``None`` on the matrix-free route.
    eigen
        All (dense) or top-k (matrix-free) eigenpairs.
    spectrum
        Exact one-sided ``S(k)``, shape ``(N // 2 + 1,)``, float64.
    spectrum_method
        ``"eigenpairs"`` (dense) or ``"factors"`` (no kernel).
    spectrum_topk
        ``S_r(k)`` from the top-k pairs (matrix-free route), else ``None``.
    timings
        Seconds per stage (``kernel``, ``eigen``, ``spectrum``, ``total``).
    config
        Free-form metadata stored with the result (model config, options).
    """

    x: torch.Tensor
    n_params: int
    implementation: str
    dtype: str
    kernel: torch.Tensor | None
    eigen: NTKEigen
    spectrum: torch.Tensor
    spectrum_method: str
    spectrum_topk: torch.Tensor | None = None
    timings: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of samples ``N``."""
        return int(self.x.shape[0])


def dense_bytes(n: int, dtype: torch.dtype, eigenvectors: bool = True) -> int:
    """Memory of a dense ``N x N`` kernel in ``dtype`` plus a float64 ``eigh`` of it."""
    item = torch.finfo(dtype).bits // 8
    return n * n * item + (3 if eigenvectors else 2) * n * n * 8


def spectrum_without_kernel(
    model: nn.Module,
    x: torch.Tensor,
    *,
    rtol: float = 0.0,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = 16384,
) -> FactorSpectrum:
    """Exact ``S(k)`` of a structured model without forming ``Theta`` (memory ``O(N * width)``).

    Parameters
    ----------
    model
        A model accepted by the structured route (all bundled INRs).
    x
        Grid-ordered inputs ``(N, d_in)``.
    rtol
        Optional certified truncation; see
        :func:`~spectral_probe.ntk.spectrum.spectrum_from_factors`.
    dtype
        Compute dtype (model dtype by default).
    chunk_size
        Samples per forward/backward pass when recording the factors.

    Returns
    -------
    FactorSpectrum
    """
    check_inputs(x, "x")
    check_parameters(model)
    structured_layers(model)
    params, others, dtype = prepare_tensors(model, dtype, device=x.device)
    factors = capture_factors(model, x.to(dtype), {**params, **others}, chunk_size)
    return spectrum_from_factors(factors, rtol=rtol)


def _dense(model, x, impl, dtype, chunk_size, max_bytes, timings):
    t0 = time.perf_counter()
    kernel = empirical_ntk(model, x, implementation=impl, dtype=dtype, chunk_size=chunk_size,
                           max_bytes=max_bytes)
    timings["kernel"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    eigen = ntk_eigh(kernel, float64=True, max_bytes=max_bytes)
    timings["eigen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    spectrum = spectrum_from_eigenpairs(eigen.values, eigen.vectors).double()
    timings["spectrum"] = time.perf_counter() - t0
    return kernel, eigen, spectrum


def _matrix_free(model, x, impl, dtype, top_k, rtol, chunk_size, timings):
    t0 = time.perf_counter()
    chunk_size = 16384 if chunk_size is None else chunk_size     # bounds the autograd graph
    op = ntk_operator(model, x, implementation=impl, dtype=dtype, chunk_size=chunk_size)
    timings["operator"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    eigen = ntk_topk(op, top_k)
    timings["eigen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if op.factors is not None:
        spectrum = spectrum_from_factors(op.factors, rtol=rtol).values
        method = "factors"
    else:
        spectrum = spectrum_from_kernel(empirical_ntk(model, x, implementation="jacrev", dtype=dtype)).double()
        method = "kernel"
    timings["spectrum"] = time.perf_counter() - t0
    topk = spectrum_from_eigenpairs(eigen.values, eigen.vectors).double()
    return eigen, spectrum, method, topk


def analyze_ntk(
    model: nn.Module,
    x: torch.Tensor,
    *,
    implementation: str | Implementation = "auto",
    top_k: int | None = None,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    rtol: float = 0.0,
    max_bytes: int | None = None,
    config: dict | None = None,
) -> NTKResult:
    """Kernel, eigenpairs and ``S(k)`` of ``model`` on the grid ``x``.

    Dense route (``top_k=None``): the full kernel, ``eigh`` in float64 and
    ``S(k)`` from all eigenpairs.  Matrix-free route (``top_k=K``): the top-K
    eigenpairs by Lanczos over NTK-vector products, the exact ``S(k)`` from the
    Jacobian factors (no kernel) and the truncated ``S_K(k)``.

    Raises
    ------
    DenseKernelTooLarge
        On the dense route when kernel plus ``eigh`` exceed the memory budget;
        the message gives the size and names ``top_k``.
    """
    check_inputs(x, "x")
    check_parameters(model)
    impl = resolve_implementation(model, implementation)
    dtype = prepare_tensors(model, dtype)[2]
    n = x.shape[0]
    timings: dict[str, float] = {}
    start = time.perf_counter()
    kernel, topk = None, None
    if top_k is None:
        check_memory(dense_bytes(n, dtype), f"a dense {n}x{n} NTK and its eigendecomposition",
                     device=x.device, max_bytes=max_bytes,
                     alternative="use the matrix-free route (top_k=K in analyze_ntk, CLI --top-k K): "
                                 "Lanczos top-K eigenpairs and S(k) without forming the kernel")
        kernel, eigen, spectrum = _dense(model, x, impl, dtype, chunk_size, max_bytes, timings)
        method = "eigenpairs"
    else:
        eigen, spectrum, method, topk = _matrix_free(model, x, impl, dtype, top_k, rtol, chunk_size, timings)
    timings["total"] = time.perf_counter() - start
    return NTKResult(x=x.detach().cpu(), n_params=count_parameters(model), implementation=impl.value,
                     dtype=str(dtype).replace("torch.", ""), kernel=None if kernel is None else kernel.cpu(),
                     eigen=eigen, spectrum=spectrum.cpu(), spectrum_method=method,
                     spectrum_topk=None if topk is None else topk.cpu(), timings=timings,
                     config=dict(config or {}))
