"""Empirical neural tangent kernel ``Theta(x, x') = sum_p df(x)/dtheta_p df(x')/dtheta_p``.

Convention: the kernel is *not* normalised (no ``1/N`` or ``1/N^2``; the
authors' ``Theta/N^2`` is a plotting convention, see
:mod:`spectral_probe.ntk.spectrum`).  The sum runs over trainable *real*
parameters; a complex parameter ``u + i v`` counts as the two real parameters
``u`` and ``v``.  Multi-output models: ``trace_outputs=True`` returns
``sum_c Theta_cc`` with shape ``(N1, N2)``; ``False`` returns the full
per-output kernel ``Theta[n, m, c, c'] = J_c(x1_n) . J_c'(x2_m)`` with shape
``(N1, N2, C, C)``.
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import nn
from torch.func import jacrev, vmap

from .functional import call_with
from ..hooks import paused as paused_hooks
from .memory import check_memory
from .ntvp import ntvp_kernels, plan_ntvp, saved_bytes_per_sample
from .parallel import cpu_guard
from .structured import StructuredUnsupported, capture_factors, structured_kernel_sum, \
    structured_kernels, structured_layers, supports_structured

__all__ = ["Implementation", "empirical_ntk", "resolve_implementation", "prepare_tensors",
           "check_parameters", "check_inputs", "count_parameters", "output_channels", "RealView"]


class Implementation(str, Enum):
    """How the empirical NTK is computed.

    * ``STRUCTURED`` -- layerwise ``(G G^T) * (A A^T + 1)`` from one batched
      forward/backward.  Exact for MLPs of ``nn.Linear`` layers and elementwise
      activations (every bundled INR, WIRE included).  Fastest by far: cost
      ``O(N^2 * sum of widths)``, memory ``O(N * width)`` besides the kernel.
      Best whenever the model allows it.
    * ``JACREV`` -- per-sample Jacobians with ``torch.func.vmap(jacrev)`` and
      ``functional_call``, contracted per parameter.  Works for any model;
      memory ``O(N * parameters)``, cost ``O(N^2 * parameters)``.  Best for
      small ``N`` on models the structured route rejects.
    * ``NTVP`` -- NTK-vector products ``J (J^T v)`` by ``vjp`` then ``jvp``.
      Never stores a Jacobian; slow for a full kernel (one product per column)
      but the building block of matrix-free eigensolvers
      (:func:`spectral_probe.ntk.ntk_operator`).  Best for very large models
      or when only a few products are needed.  Columns are batched in chunks
      sized from a measured memory model (:mod:`spectral_probe.ntk.ntvp`).
    * ``AUTO`` -- ``STRUCTURED`` when the model passes its static check, else
      ``JACREV``; if the structured route still refuses while recording (a
      layer that runs twice in one forward pass), ``JACREV`` takes over.
      Every trainable parameter is covered either way.
    """

    AUTO = "auto"
    JACREV = "jacrev"
    STRUCTURED = "structured"
    NTVP = "ntvp"


def resolve_implementation(model: nn.Module, implementation: str | Implementation) -> Implementation:
    """Validate ``implementation`` and resolve ``"auto"``.

    Raises
    ------
    ValueError
        Unknown name, or ``"structured"`` on a model it cannot handle (the
        message says why and suggests ``"jacrev"``).
    """
    try:
        impl = Implementation(implementation)
    except ValueError:
        valid = ", ".join(repr(i.value) for i in Implementation)
        raise ValueError(f"unknown implementation {implementation!r}; valid: {valid}") from None
    if impl is Implementation.AUTO:
        return Implementation.STRUCTURED if supports_structured(model) else Implementation.JACREV
    if impl is Implementation.STRUCTURED:
        structured_layers(model)
    return impl


def check_parameters(model: nn.Module) -> None:
    """Raise ``ValueError`` if a trainable parameter has NaN or infinite entries."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{type(model).__name__} has no trainable parameter; the NTK is zero")
    tensors = [torch.view_as_real(p.detach()) if p.is_complex() else p.detach()
               for _, p in trainable if p.is_floating_point() or p.is_complex()]
    if tensors and len({t.device for t in tensors}) == 1 and len({t.dtype for t in tensors}) == 1:
        # one fused pass and one host sync, no copy: a NaN or inf entry makes its norm non-finite (a huge
        # finite one may overflow the norm too; the exact per-parameter check below then decides)
        if bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all()):
            return
    for name, p in trainable:
        if not torch.isfinite(p.detach()).all():
            raise ValueError(f"parameter {name!r} contains NaN or infinite values; "
                             "the NTK is undefined (re-initialise or restore a finite checkpoint)")


def check_inputs(x: torch.Tensor, name: str = "x1") -> None:
    """Raise for inputs that are not a finite ``(N, d)`` floating tensor with ``N >= 1``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, d_in), got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, d_in) with N >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite coordinates")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable real parameters (a complex entry counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters() if p.requires_grad)


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _model_real_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
        if p.is_complex():
            return torch.float64 if p.dtype == torch.complex128 else torch.float32
    return torch.get_default_dtype()


def prepare_tensors(model: nn.Module, dtype: torch.dtype | None = None,
                    device: torch.device | None = None) -> tuple[dict, dict, torch.dtype]:
    """Detached copies of the trainable parameters and the other tensors, cast to ``dtype``.

    Returns
    -------
    params, others, dtype
        ``params`` (trainable, requiring grad) and ``others`` (frozen parameters
        and buffers) for ``functional_call``; ``dtype`` is the real compute dtype.
    """
    dtype = _model_real_dtype(model) if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise TypeError(f"dtype must be a real floating dtype such as torch.float64, got {dtype}")

    def cast(t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        if t.is_complex():
            t = t.to(_complex_of(dtype))
        elif t.is_floating_point():
            t = t.to(dtype)
        return t.to(device) if device is not None else t

    params = {n: cast(p).requires_grad_(True) for n, p in model.named_parameters() if p.requires_grad}
    others = {n: cast(p) for n, p in model.named_parameters() if not p.requires_grad}
    others.update({n: cast(b) for n, b in model.named_buffers()})
    return params, others, dtype


class RealView:
    """Represent complex parameters as real ``(..., 2)`` tensors for ``torch.func``.

    ``torch.func.jacrev`` rejects complex inputs; differentiating with respect
    to ``(Re w, Im w)`` gives the Jacobian over real parameters directly.
    """

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], others: dict) -> None:
        self.model = model
        self.others = others
        self._modules = list(model.modules())
        self.complex_keys = {k for k, v in params.items() if v.is_complex()}
        self.real = {k: torch.view_as_real(v.detach()).clone() if k in self.complex_keys else v.detach()
                     for k, v in params.items()}

    def call(self, real_params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Model output ``(N, C)`` at ``x`` with parameters given in real form."""
        p = {k: torch.complex(v[..., 0], v[..., 1]) if k in self.complex_keys else v
             for k, v in real_params.items()}
        out = call_with(self.model, (p, self.others), (x,), self._modules)
        return out.unsqueeze(1) if out.dim() == 1 else out


def output_channels(model: nn.Module, x: torch.Tensor, params: dict, others: dict) -> int:
    """Number of output channels ``C``, from one forward pass on ``x[:1]`` (hooks paused)."""
    with paused_hooks(model), torch.no_grad():
        out = call_with(model, ({**params, **others},), (x[:1],))
    return 1 if out.dim() == 1 else int(out.shape[1])


def _group(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def _jacobians(view: RealView, x: torch.Tensor, chunk_size: int | None) -> dict[str, torch.Tensor]:
    def single(p, xi):
        return view.call(p, xi.unsqueeze(0))[0]
    jac = vmap(jacrev(single), in_dims=(None, 0), chunk_size=chunk_size)(view.real, x)
    return {k: v.reshape(v.shape[0], v.shape[1], -1) for k, v in jac.items()}


def _contract(j1: torch.Tensor, j2: torch.Tensor, trace: bool) -> torch.Tensor:
    return torch.einsum("ncp,mcp->nm", j1, j2) if trace else torch.einsum("ncp,mdp->nmcd", j1, j2)


def _jacrev_kernels(view, x1, x2, trace, chunk_size, per_layer):
    j1 = _jacobians(view, x1, chunk_size)
    j2 = j1 if x2 is None else _jacobians(view, x2, chunk_size)
    out: dict[str, torch.Tensor] = {}
    for k in j1:
        key = _group(k) if per_layer else "total"
        term = _contract(j1[k], j2[k], trace)
        out[key] = term if key not in out else out[key].add_(term)
    return out


def empirical_ntk(
    model: nn.Module,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    implementation: str | Implementation = "auto",
    trace_outputs: bool = True,
    chunk_size: int | None = None,
    dtype: torch.dtype | None = None,
    per_layer: bool = False,
    max_bytes: int | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Empirical NTK of ``model`` between inputs ``x1`` and ``x2``.

    Parameters
    ----------
    model
        Any module mapping ``(N, d_in)`` to ``(N, C)`` (or ``(N,)``).  Forward
        hooks on it are paused while the kernel is computed
        (:func:`~spectral_probe.hooks.paused`).
    x1, x2
        Inputs of shape ``(N1, d_in)`` and ``(N2, d_in)``; ``x2=None`` means ``x1``.
    implementation
        ``"auto"``, ``"structured"``, ``"jacrev"`` or ``"ntvp"``; see
        :class:`Implementation`.
    trace_outputs
        Sum over output channels (default) or return the full per-output kernel.
    chunk_size
        Samples per vectorised pass (jacrev/structured) or kernel columns per
        pass (ntvp); ``None`` processes everything at once.
    dtype
        Real compute dtype (``torch.float64`` for a reference kernel); the
        model's dtype by default.  The model itself is not modified.
    per_layer
        Return a dict of per-layer contributions (keys: qualified module
        names) that sum to the kernel.
    max_bytes
        Memory budget for the dense result; defaults to the available memory.

    Returns
    -------
    Tensor or dict of str to Tensor
        Shape ``(N1, N2)`` if ``trace_outputs`` else ``(N1, N2, C, C)``.

    Raises
    ------
    DenseKernelTooLarge
        (a ``ValueError``) when the kernel or Jacobians would not fit; the
        message gives the size and names the matrix-free route.

    Notes
    -----
    The whole call, checks and casts included, runs under one thread-count decision
    (:func:`~spectral_probe.ntk.parallel.cpu_guard`: one intra-op thread on a busy CPU).  At small
    ``N`` the checks alone (a ``cat`` and ``isfinite`` over every parameter) cost tens of
    milliseconds in a two-thread parallel region whose second thread another process holds.
    """
    with cpu_guard(getattr(x1, "device", None)):
        return _empirical_ntk(model, x1, x2, implementation, trace_outputs, chunk_size, dtype, per_layer,
                              max_bytes)


def _empirical_ntk(model, x1, x2, implementation, trace_outputs, chunk_size, dtype, per_layer, max_bytes):
    check_inputs(x1, "x1")
    if x2 is not None:
        check_inputs(x2, "x2")
    check_parameters(model)
    impl = resolve_implementation(model, implementation)
    requested = Implementation(implementation)
    params, others, dtype = prepare_tensors(model, dtype, device=x1.device)
    x1 = x1.to(dtype)
    x2 = None if x2 is None else x2.to(dtype)
    if impl is Implementation.STRUCTURED:
        try:
            return _structured(model, x1, x2, params, others, dtype, trace_outputs, chunk_size,
                               per_layer, max_bytes)
        except StructuredUnsupported:
            if requested is not Implementation.AUTO:
                raise
            impl = Implementation.JACREV          # auto: the runtime check refused; fall back
    view = RealView(model, params, others)
    c = output_channels(model, x1, params, others)
    n1, n2 = x1.shape[0], (x1.shape[0] if x2 is None else x2.shape[0])
    item = torch.finfo(dtype).bits // 8
    kernel_bytes = n1 * n2 * (1 if trace_outputs else c * c) * item
    groups = sorted({_group(k) for k in view.real}) if per_layer else ["total"]
    with paused_hooks(model):
        if impl is Implementation.JACREV:
            need = 2 * kernel_bytes * len(groups) + (n1 + (0 if x2 is None else n2)) * c \
                * count_parameters(model) * item
            check_memory(need, f"a dense {n1}x{n2} {_name(dtype)} NTK with its Jacobians",
                         device=x1.device, max_bytes=max_bytes)
            kernels = _jacrev_kernels(view, x1, x2, trace_outputs, chunk_size, per_layer)
        else:
            per_sample = saved_bytes_per_sample(view.call, view.real, x1)
            plan = plan_ntvp(n1, n2, n1 * c, per_sample, count_parameters(model), item,
                             kernel_bytes * len(groups), chunk_size=chunk_size, device=x1.device,
                             max_bytes=max_bytes)
            kernels = ntvp_kernels(view.call, view.real, x1, x2, c, groups, _group, trace_outputs,
                                   plan.chunk)
    return kernels if per_layer else kernels["total"]


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _structured(model, x1, x2, params, others, dtype, trace_outputs, chunk_size, per_layer, max_bytes):
    c = 1 if trace_outputs else output_channels(model, x1, params, others)
    n1, n2 = x1.shape[0], (x1.shape[0] if x2 is None else x2.shape[0])
    item = torch.finfo(dtype).bits // 8
    kernel_bytes = n1 * n2 * (1 if trace_outputs else c * c) * item
    copies = len(structured_layers(model)) + 1 if per_layer else (1 if trace_outputs else 3)
    check_memory(kernel_bytes * copies, f"a dense {n1}x{n2} {_name(dtype)} NTK", device=x1.device,
                 max_bytes=max_bytes)
    own = all(p.dtype == params[n].dtype and p.device == params[n].device   # (capture pauses hooks)
              for n, p in model.named_parameters() if p.requires_grad)
    tensors = None if own else {**params, **others}   # no copy when nothing is cast
    f1 = capture_factors(model, x1, tensors, chunk_size)
    f2 = None if x2 is None else capture_factors(model, x2, tensors, chunk_size)
    if per_layer:
        return structured_kernels(f1, f2, trace_outputs)
    return structured_kernel_sum(f1, f2, trace_outputs)
