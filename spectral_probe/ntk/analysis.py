"""One call from a model and a grid to kernel, eigenpairs and ``S(k)``: :func:`analyze_ntk`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .eig import NTKEigen, ntk_eigh, ntk_topk
from .empirical import Implementation, check_inputs, check_parameters, count_parameters, \
    empirical_ntk, prepare_tensors, resolve_implementation
from ..sizes import check_ntk
from .memory import check_memory
from .operator import ntk_operator, spectrum_from_operator
from .parallel import cpu_guard
from .spectrum import high_frequency_share, spectrum_from_eigenpairs
from .spectrum2d import check_grid, high_frequency_share_2d, spectrum2d_from_eigenpairs
from .spectrum_factors import FactorSpectrum, spectrum_from_factors
from .structured import StructuredUnsupported, capture_factors

__all__ = ["NTKResult", "analyze_ntk", "spectrum_without_kernel", "dense_bytes", "grid_spectrum",
           "resolve_grid"]


def resolve_grid(grid_shape, n: int) -> tuple[int, ...]:
    """``(N,)`` for ``None`` or a 1-D shape; ``(H, W)`` checked against ``N`` for a 2-D one."""
    if grid_shape is None or len(tuple(grid_shape)) == 1:
        if grid_shape is not None and int(tuple(grid_shape)[0]) != n:
            raise ValueError(f"grid_shape {tuple(grid_shape)} does not match the {n} samples")
        return (n,)
    return check_grid(grid_shape, n)


def grid_spectrum(values: torch.Tensor, vectors: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Eqn 6 from eigenpairs on a 1-D (one-sided ``(N//2+1,)``) or 2-D (full ``(H, W)``) grid, float64."""
    if len(grid) == 1:
        return spectrum_from_eigenpairs(values, vectors).double()
    return spectrum2d_from_eigenpairs(values, vectors, grid)


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
        Exact ``S(k)``, float64: one-sided ``(N // 2 + 1,)`` on a 1-D grid
        (:mod:`~spectral_probe.ntk.spectrum`), full unshifted ``(H, W)`` on a
        2-D grid (:mod:`~spectral_probe.ntk.spectrum2d`).
    spectrum_method
        ``"eigenpairs"`` (dense), ``"factors"`` (structured, no kernel) or
        ``"products"`` (NTK-vector products with Fourier vectors, no kernel).
    spectrum_topk
        ``S_r(k)`` from the top-k pairs (matrix-free route), else ``None``.
    grid_shape
        ``(N,)`` or ``(H, W)``: how the samples are laid out.
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
    grid_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.grid_shape:
            self.grid_shape = (int(self.x.shape[0]),)

    @property
    def n(self) -> int:
        """Number of samples ``N``."""
        return int(self.x.shape[0])

    def high_frequency_share(self, cutoff: float = 0.5) -> float:
        """Share of ``S`` above ``cutoff`` x Nyquist (radial frequency on a 2-D grid)."""
        if len(self.grid_shape) == 1:
            return high_frequency_share(self.spectrum, self.n, cutoff)
        return high_frequency_share_2d(self.spectrum, cutoff)


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
    grid_shape: tuple[int, ...] | None = None,
    implementation: str | Implementation = "auto",
) -> FactorSpectrum:
    """Exact ``S(k)`` without forming ``Theta``.

    Structured models (all bundled INRs): FFTs of the Jacobian factors, memory
    ``O(N * width)``.  Other models (``implementation="auto"`` falls back,
    or ``"jacrev"``/``"ntvp"``): :func:`~spectral_probe.ntk.operator.spectrum_from_operator`
    (Jacobian FFTs or NTK-vector products with Fourier vectors; no ``N x N``
    array either, but ``O(N)`` products).

    Parameters
    ----------
    model
        Any model.
    x
        Grid-ordered inputs ``(N, d_in)``.
    rtol
        Optional certified truncation of the structured route; see
        :func:`~spectral_probe.ntk.spectrum_factors.spectrum_from_factors`.
    dtype
        Compute dtype (model dtype by default).
    chunk_size
        Samples per forward/backward pass when recording the factors.
    grid_shape
        ``None``/``(N,)`` (1-D, one-sided result) or ``(H, W)`` (2-D, full result).

    Returns
    -------
    FactorSpectrum
        On the generic routes ``pairs_used = pairs_total`` = parameters and
        ``dropped_mass = 0``.
    """
    check_inputs(x, "x")
    with cpu_guard(x.device):       # one thread (and one FFT worker) on a busy CPU, for the whole call
        return _spectrum_without_kernel(model, x, rtol, dtype, chunk_size, grid_shape, implementation)


def _spectrum_without_kernel(model, x, rtol, dtype, chunk_size, grid_shape, implementation) -> FactorSpectrum:
    check_parameters(model)
    grid = resolve_grid(grid_shape, x.shape[0])
    impl = resolve_implementation(model, implementation)
    if impl is Implementation.STRUCTURED:
        try:
            params, others, dtype = prepare_tensors(model, dtype, device=x.device)
            factors = capture_factors(model, x.to(dtype), {**params, **others}, chunk_size)
            return spectrum_from_factors(factors, rtol=rtol, grid_shape=grid)
        except StructuredUnsupported:
            if Implementation(implementation) is not Implementation.AUTO:
                raise
            impl = Implementation.JACREV
    op = ntk_operator(model, x, implementation=impl, dtype=dtype)
    values = spectrum_from_operator(op, grid)
    p = count_parameters(model)
    return FactorSpectrum(values, p, p, 0.0, float(values.sum() if len(grid) == 2 else
                                                    2 * values.sum() - values[0] - (values[-1] if x.shape[0] % 2 == 0 else 0)))


def _dense(model, x, requested, impl, dtype, chunk_size, max_bytes, timings, grid):
    t0 = time.perf_counter()
    try:
        kernel = empirical_ntk(model, x, implementation=impl, dtype=dtype, chunk_size=chunk_size,
                               max_bytes=max_bytes)
    except StructuredUnsupported:
        if requested is not Implementation.AUTO:
            raise
        impl = Implementation.JACREV
        kernel = empirical_ntk(model, x, implementation=impl, dtype=dtype, chunk_size=chunk_size,
                               max_bytes=max_bytes)
    timings["kernel"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    eigen = ntk_eigh(kernel, float64=True, max_bytes=max_bytes)
    timings["eigen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    spectrum = grid_spectrum(eigen.values, eigen.vectors, grid)
    timings["spectrum"] = time.perf_counter() - t0
    return kernel, eigen, spectrum, impl


def _matrix_free(model, x, impl, dtype, top_k, rtol, chunk_size, max_bytes, timings, grid):
    t0 = time.perf_counter()
    chunk_size = 16384 if chunk_size is None else chunk_size     # bounds the autograd graph
    op = ntk_operator(model, x, implementation=impl, dtype=dtype, chunk_size=chunk_size,
                      max_bytes=max_bytes)
    timings["operator"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    eigen = ntk_topk(op, top_k)
    timings["eigen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if op.factors is not None:
        spectrum = spectrum_from_factors(op.factors, rtol=rtol, grid_shape=grid).values
        method = "factors"
    else:
        if rtol:
            raise ValueError(f"rtol applies to the structured route; this model uses {op.implementation!r} "
                             "(its S(k) is exact): drop rtol")
        spectrum = spectrum_from_operator(op, grid)
        method = "products"
    timings["spectrum"] = time.perf_counter() - t0
    topk = grid_spectrum(eigen.values, eigen.vectors, grid)
    return eigen, spectrum, method, topk, op


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
    grid_shape: tuple[int, ...] | None = None,
) -> NTKResult:
    """Kernel, eigenpairs and ``S(k)`` of ``model`` on the grid ``x``.

    Dense route (``top_k=None``): the full kernel, ``eigh`` in float64 and
    ``S(k)`` from all eigenpairs.  Matrix-free route (``top_k=K``): the top-K
    eigenpairs by Lanczos over NTK-vector products (structured factors,
    a per-sample Jacobian or ``vjp``/``jvp``; see
    :func:`~spectral_probe.ntk.ntk_operator`), the exact ``S(k)`` without the
    kernel and the truncated ``S_K(k)``; no ``N x N`` array is allocated.

    Parameters
    ----------
    grid_shape
        ``None`` (1-D grid in sample order) or ``(H, W)`` for inputs that are
        the row-major flattening of a 2-D grid (``grid_coords((H, W))``): then
        ``S`` is the 2-D spectrum (:mod:`~spectral_probe.ntk.spectrum2d`).

    Raises
    ------
    DenseKernelTooLarge
        On the dense route when kernel plus ``eigh`` exceed the memory budget;
        the message gives the size and names ``top_k``.
    """
    check_inputs(x, "x")
    check_parameters(model)
    check_ntk(x.shape[0], [m.out_features for m in model.modules() if isinstance(m, nn.Linear)],
              device=x.device)       # the per-sample factors of every layer, before any is computed
    grid = resolve_grid(grid_shape, x.shape[0])
    impl = resolve_implementation(model, implementation)
    dtype = prepare_tensors(model, dtype)[2]
    n = x.shape[0]
    timings: dict[str, float] = {}
    start = time.perf_counter()
    kernel, topk = None, None
    route = impl.value
    if top_k is None:
        check_memory(dense_bytes(n, dtype), f"a dense {n}x{n} NTK and its eigendecomposition",
                     device=x.device, max_bytes=max_bytes,
                     alternative="use the matrix-free route (top_k=K in analyze_ntk, CLI --top-k K): "
                                 "Lanczos top-K eigenpairs and S(k) without forming the kernel")
        kernel, eigen, spectrum, used = _dense(model, x, Implementation(implementation), impl, dtype,
                                               chunk_size, max_bytes, timings, grid)
        method, route = "eigenpairs", used.value
    else:
        eigen, spectrum, method, topk, op = _matrix_free(model, x, implementation, dtype, top_k, rtol,
                                                         chunk_size, max_bytes, timings, grid)
        route = op.implementation
    timings["total"] = time.perf_counter() - start
    return NTKResult(x=x.detach().cpu(), n_params=count_parameters(model), implementation=route,
                     dtype=str(dtype).replace("torch.", ""), kernel=None if kernel is None else kernel.cpu(),
                     eigen=eigen, spectrum=spectrum.cpu(), spectrum_method=method,
                     spectrum_topk=None if topk is None else topk.cpu(), timings=timings,
                     config=dict(config or {}), grid_shape=grid)

