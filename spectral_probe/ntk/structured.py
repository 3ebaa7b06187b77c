"""Structured (layerwise) NTK for per-sample-independent MLPs.

For a linear map ``z = W a + b`` applied once per sample, the Jacobian of an
output ``f_c(x_n)`` with respect to ``W`` is the outer product ``g_n a_n^T`` of
the backpropagated gradient ``g_n = d f_c(x_n) / d z_n`` and the layer input
``a_n``; with respect to ``b`` it is ``g_n``.  The layer's NTK contribution is
therefore the Hadamard product (Novak et al., ICML 2022, "structured
derivatives"; the Kronecker-factored form of KFAC)::

    Theta_l = (G_l G_l^T) * (A_l A_l^T + 1)            (real parameters)

computed from one batched forward pass that records ``a_l`` and one backward
pass per output channel that yields ``g_l`` for all samples at once.  Cost
``O(N^2 * sum of widths)`` instead of ``O(N^2 * parameters)``.

Complex layers (WIRE) count each complex weight ``w = u + i v`` as two real
parameters.  PyTorch's gradient convention gives ``J = df/du + i df/dv =
g conj(a)``, so ``Theta_l = Re[(G G^H) * (conj(A) A^T + 1)]``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from torch import nn

from ..models.base import INR, Activation, HookPoint
from .functional import call_with
from ..hooks import paused as paused_hooks
from .parallel import MIN_TILE, default_workers, plan_tiles, run_shared

__all__ = [
    "LayerFactors",
    "StructuredUnsupported",
    "ELEMENTWISE_MODULES",
    "structured_layers",
    "supports_structured",
    "capture_factors",
    "structured_kernels",
    "structured_kernel_sum",
    "structured_matmat",
]

#: parameter-free modules that act elementwise on the feature axis
ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    Activation, HookPoint, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Mish, nn.Hardtanh, nn.Softsign, nn.Tanhshrink,
)


@dataclass
class LayerFactors:
    """Kronecker factors of one linear layer's Jacobian.

    Attributes
    ----------
    name
        Qualified module name (``"layers.0.linear"``, ``"head"``, ``"0"``).
    a
        Layer inputs, shape ``(N, d_in)``; with a trainable bias a column of
        ones is appended (shape ``(N, d_in + 1)``).  Without a trainable weight
        only the ones column is kept.
    g
        Output gradients ``d f_c / d z``, shape ``(C, N, d_out)``.
    """

    name: str
    a: torch.Tensor
    g: torch.Tensor

    @property
    def n_params(self) -> int:
        """Number of real parameters the factors stand for."""
        factor = 2 if (self.a.is_complex() or self.g.is_complex()) else 1
        return factor * self.a.shape[1] * self.g.shape[2]


class StructuredUnsupported(ValueError):
    """The structured route cannot compute this model's NTK exactly (the message says why).

    ``implementation="auto"`` catches it, whether raised by the static check
    (:func:`structured_layers`) or while recording the factors (a layer that
    runs more than once per forward), and falls back to a generic route.
    """


def _reject(model: nn.Module, reason: str) -> StructuredUnsupported:
    return StructuredUnsupported(
        f"implementation='structured' cannot handle {type(model).__name__}: {reason}; "
        "it needs an MLP whose trainable parameters all sit in nn.Linear layers applied once "
        "per forward with elementwise activations in between; use implementation='jacrev'")


def _check_sequential(model: nn.Sequential, seen: set[int] | None = None) -> None:
    seen = set() if seen is None else seen
    # ``_modules`` keeps a module placed twice (``named_children`` would hide the repeat)
    for name, child in model._modules.items():
        if child is None:
            continue
        if isinstance(child, nn.Linear):
            if id(child) in seen:
                raise _reject(model, f"module {name!r} reuses an nn.Linear that already ran earlier in "
                                     "the forward pass (each layer must run exactly once)")
            seen.add(id(child))
        if isinstance(child, nn.Sequential):
            _check_sequential(child, seen)
        elif not isinstance(child, (nn.Linear, *ELEMENTWISE_MODULES)):
            raise _reject(model, f"module {name!r} ({type(child).__name__}) is not an nn.Linear "
                                 "or a known elementwise activation")


def structured_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The linear layers of a model the structured route can handle.

    Parameters
    ----------
    model
        An :class:`~spectral_probe.models.INR` or an ``nn.Sequential`` of
        ``nn.Linear`` and elementwise activation modules.

    Returns
    -------
    list of (str, nn.Linear)
        Qualified names and modules in forward order.

    Raises
    ------
    ValueError
        Explains why the model is not supported and suggests ``jacrev``.
    """
    if isinstance(model, INR):
        if _forward_overridden(model, INR):
            raise _reject(model, "it overrides INR.forward")
        linears = model.linear_layers()
        for i, layer in enumerate(model.layers):
            if not isinstance(layer.act, Activation) or any(True for _ in layer.act.parameters()):
                raise _reject(model, f"layers.{i}.act is not a parameter-free elementwise Activation")
    elif isinstance(model, nn.Sequential):
        if _forward_overridden(model, nn.Sequential):
            raise _reject(model, "it overrides nn.Sequential.forward")
        _check_sequential(model)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    else:
        raise _reject(model, "it is neither an INR nor an nn.Sequential")
    names = {id(m): name for name, m in model.named_modules()}
    owners: dict[int, str] = {}
    for lin in linears:
        for pname, p in lin.named_parameters(recurse=False):
            if id(p) in owners:
                raise _reject(model, f"parameter {names[id(lin)]}.{pname} is shared with {owners[id(p)]} "
                                     "(tied weights add cross-layer terms the layerwise formula misses)")
            owners[id(p)] = f"{names[id(lin)]}.{pname}"
    covered = {id(p) for lin in linears for p in lin.parameters()}
    stray = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    if stray:
        raise _reject(model, f"trainable parameter(s) outside nn.Linear layers: {', '.join(stray)}")
    if not linears:
        raise _reject(model, "it has no nn.Linear layer")
    return [(names[id(lin)], lin) for lin in linears]


def supports_structured(model: nn.Module) -> bool:
    """Whether :func:`structured_layers` accepts ``model``."""
    try:
        structured_layers(model)
    except ValueError:
        return False
    return True


def _trainable_flags(linear: nn.Linear) -> tuple[bool, bool]:
    weight = linear.weight.requires_grad
    bias = linear.bias is not None and linear.bias.requires_grad
    return weight, bias


def _augment(a: torch.Tensor, weight: bool, bias: bool) -> torch.Tensor:
    ones = torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)
    if weight and bias:
        return torch.cat([a, ones], dim=1)
    return a if weight else ones


def _forward_overridden(model: nn.Module, base: type) -> bool:
    return type(model).forward is not base.forward


class _Recorder:
    """Forward hooks on the linear layers that keep, per thread, each layer's input and output."""

    def __init__(self, layers) -> None:
        self.layers = layers
        self.local = threading.local()

    def hook(self, i):
        def record(module, args, out):
            rec = self.local.__dict__.setdefault("rec", {})
            calls, inputs, outputs = rec.setdefault("calls", {}), rec.setdefault("in", {}), rec.setdefault("out", {})
            calls[i] = calls.get(i, 0) + 1
            inputs[i] = args[0].detach()
            outputs[i] = out
        return record

    def take(self) -> dict:
        rec = self.local.__dict__.pop("rec", {})
        return rec


def _capture_chunk(model, recorder, tensors, x):
    with torch.enable_grad():
        out = model(x) if tensors is None else call_with(model, tensors, (x,))
    rec = recorder.take()
    layers = recorder.layers
    calls = rec.get("calls", {})
    bad = [(layers[i][0], calls.get(i, 0)) for i in range(len(layers)) if calls.get(i, 0) != 1]
    if bad:
        raise _reject(model, "layer(s) " + ", ".join(f"{n} ran {c} time(s)" for n, c in bad)
                             + " in one forward pass (each must run exactly once)")
    if out.dim() == 1:
        out = out.unsqueeze(1)
    zs = [rec["out"][i] for i in range(len(layers))]
    live = [i for i, z in enumerate(zs) if z.requires_grad]   # frozen early layers: no gradient needed
    grads = []
    for c in range(out.shape[1]):
        got = torch.autograd.grad(out[:, c].sum(), [zs[i] for i in live], retain_graph=c + 1 < out.shape[1],
                                  allow_unused=True) if live and out.requires_grad else [None] * len(live)
        full = [None] * len(zs)
        for i, g in zip(live, got):
            full[i] = g
        grads.append(full)
    gs = []
    for i, z in enumerate(zs):
        g = [(gc[i] if gc[i] is not None else torch.zeros_like(z)).detach() for gc in grads]
        gs.append(g[0].unsqueeze(0) if len(g) == 1 else torch.stack(g))     # one output: a view, no copy
    return [rec["in"][i] for i in range(len(layers))], gs


def capture_factors(
    model: nn.Module,
    x: torch.Tensor,
    tensors: dict[str, torch.Tensor] | None,
    chunk_size: int | None = None,
    workers: int | None = None,
) -> list[LayerFactors]:
    """Record every linear layer's inputs and output gradients for all samples.

    Parameters
    ----------
    model
        A model accepted by :func:`structured_layers`.
    x
        Inputs, shape ``(N, d_in)``.
    tensors
        Parameters and buffers passed to ``functional_call`` (already cast to
        the compute dtype); the parameters must require grad.  ``None`` runs
        the model with its own parameters (no copy; nothing is accumulated
        into ``.grad``).
    chunk_size
        Samples per forward/backward pass (all at once when ``None``).
    workers
        Python threads sharing the chunks (default 1; see
        :mod:`spectral_probe.ntk.parallel`).  With more than one worker and
        ``tensors=None`` the samples are split into at least one chunk per
        worker, each run with one intra-op thread.

    Returns
    -------
    list of LayerFactors
        One entry per layer with a trainable parameter; ``a`` has shape
        ``(N, d_in [+1])`` and ``g`` shape ``(C, N, d_out)``.

    Raises
    ------
    StructuredUnsupported
        A layer ran more or less than once per forward pass.
    """
    layers = structured_layers(model)
    n = x.shape[0]
    workers = default_workers(x.device) if workers is None else max(1, int(workers))
    if tensors is not None:     # functional_call swaps module attributes: not thread-safe
        workers = 1
    step = n if chunk_size is None else max(1, int(chunk_size))
    if workers > 1 and n >= 2 * MIN_TILE:
        step = min(step, -(-n // workers))
    starts = list(range(0, n, step))
    recorder = _Recorder(layers)
    with paused_hooks(model):
        handles = [lin.register_forward_hook(recorder.hook(i)) for i, (_, lin) in enumerate(layers)]
        try:
            def work(stream):
                return [(s, _capture_chunk(model, recorder, tensors, x[s:s + step])) for s in stream]
            done = [part for parts in run_shared(starts, work, workers) for part in parts]
        finally:
            for h in handles:
                h.remove()
    parts = [p for _, p in sorted(done, key=lambda item: item[0])]
    factors = []
    for i, (name, lin) in enumerate(layers):
        weight, bias = _trainable_flags(lin)
        if not (weight or bias):
            continue
        a = torch.cat([p[0][i] for p in parts]) if len(parts) > 1 else parts[0][0][i]
        g = torch.cat([p[1][i] for p in parts], dim=1) if len(parts) > 1 else parts[0][1][i]
        factors.append(LayerFactors(name, _augment(a, weight, bias), g))
    return factors


def _layer_kernel(f1: LayerFactors, f2: LayerFactors, trace_outputs: bool) -> torch.Tensor:
    complex_ = f1.a.is_complex() or f1.g.is_complex()
    aa = (f1.a.conj() if complex_ else f1.a) @ f2.a.T
    if trace_outputs:
        gg = torch.einsum("cnd,cmd->nm", f1.g, f2.g.conj()) if f1.g.shape[0] > 1 \
            else f1.g[0] @ f2.g[0].conj().T
        out = gg.mul_(aa) if gg.dtype == torch.promote_types(gg.dtype, aa.dtype) else gg * aa
        return out.real if complex_ else out
    gg = torch.einsum("cnd,emd->nmce", f1.g, f2.g.conj())
    out = gg * aa[:, :, None, None]
    return out.real if complex_ else out


def structured_kernels(
    factors1: list[LayerFactors],
    factors2: list[LayerFactors] | None = None,
    trace_outputs: bool = True,
) -> dict[str, torch.Tensor]:
    """Per-layer NTK contributions from Kronecker factors.

    Returns
    -------
    dict of str to Tensor
        Layer name -> kernel of shape ``(N1, N2)`` (traced over outputs) or
        ``(N1, N2, C, C)``; their sum is the NTK.
    """
    factors2 = factors1 if factors2 is None else factors2
    return {f1.name: _layer_kernel(f1, f2, trace_outputs) for f1, f2 in zip(factors1, factors2)}


def _is_complex(f: LayerFactors) -> bool:
    return f.a.is_complex() or f.g.is_complex()


def _gemm_operands(f: LayerFactors) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per layer, what the traced kernel needs: ``(G, A)`` or, for rank-one factors, ``(P, None)``.

    ``G`` stacks the output channels along the feature axis (``(N, C d_out)``), so
    one GEMM gives ``sum_c G_c G_c^T``.  A single-output layer with ``d_out == 1``
    or ``d_in == 1`` (the head, a lone bias) has flattened Jacobian rows
    ``P = g_n a_n`` and contributes ``P P^T`` with no Hadamard pass.
    """
    if f.g.shape[0] == 1 and min(f.g.shape[2], f.a.shape[1]) == 1:
        g, a = f.g[0], f.a
        return (a * g if g.shape[1] == 1 else g * a).contiguous(), None
    g = f.g[0] if f.g.shape[0] == 1 else f.g.permute(1, 0, 2).reshape(f.g.shape[1], -1)
    return g.contiguous(), f.a.contiguous()


def _real_trace_sum(factors1, factors2, symmetric: bool, workers: int | None = None) -> torch.Tensor:
    """Fast path: real factors, traced outputs, tiles shared by worker threads.

    Per tile, the layers are accumulated in turn (the tile stays in cache);
    on a symmetric kernel only the upper tiles are computed and then mirrored.
    """
    ops1 = [_gemm_operands(f) for f in factors1]
    ops2 = ops1 if symmetric else [_gemm_operands(f) for f in factors2]
    n1, n2 = ops1[0][0].shape[0], ops2[0][0].shape[0]
    ref = ops1[0][0]
    workers = default_workers(ref.device) if workers is None else max(1, int(workers))
    tiles, side = plan_tiles(n1, n2, symmetric=symmetric, workers=workers)
    total = torch.empty(n1, n2, dtype=ref.dtype, device=ref.device)

    def work(stream):
        buf_g = torch.empty(side * side, dtype=ref.dtype, device=ref.device)
        buf_a = torch.empty(side * side, dtype=ref.dtype, device=ref.device)
        for r0, r1, c0, c1 in stream:
            out = total[r0:r1, c0:c1]
            shape = (r1 - r0, c1 - c0)
            gg = buf_g[:shape[0] * shape[1]].view(shape)
            aa = buf_a[:shape[0] * shape[1]].view(shape)
            first = True
            for (g1, a1), (g2, a2) in zip(ops1, ops2):
                if a1 is None:
                    if first:
                        torch.mm(g1[r0:r1], g2[c0:c1].T, out=out)
                    else:
                        out.addmm_(g1[r0:r1], g2[c0:c1].T)
                else:
                    torch.mm(g1[r0:r1], g2[c0:c1].T, out=gg)
                    torch.mm(a1[r0:r1], a2[c0:c1].T, out=aa)
                    if first:
                        torch.mul(gg, aa, out=out)
                    else:
                        out.addcmul_(gg, aa)
                first = False

    run_shared(tiles, work, workers)
    if symmetric:
        for r0, r1, c0, c1 in tiles:
            if c0 > r0:
                total[c0:c1, r0:r1] = total[r0:r1, c0:c1].T
    return total


def structured_kernel_sum(factors1, factors2=None, trace_outputs: bool = True,
                          workers: int | None = None) -> torch.Tensor:
    """Sum of :func:`structured_kernels` (the NTK) without keeping per-layer kernels.

    Parameters
    ----------
    factors1, factors2
        From :func:`capture_factors`; ``factors2=None`` means ``factors1``
        (the kernel is then symmetric and only its upper tiles are computed).
    trace_outputs
        Sum over outputs (shape ``(N1, N2)``) or full kernel ``(N1, N2, C, C)``.
    workers
        Python threads sharing the kernel's tiles (default 1: torch's own
        threads run each GEMM; see :mod:`spectral_probe.ntk.parallel`).

    Returns
    -------
    Tensor
        The NTK.
    """
    symmetric = factors2 is None
    factors2 = factors1 if factors2 is None else factors2
    if trace_outputs and not any(_is_complex(f) for f in factors1):
        return _real_trace_sum(factors1, factors2, symmetric, workers)
    total = None
    for f1, f2 in zip(factors1, factors2):
        k = _layer_kernel(f1, f2, trace_outputs)
        total = k if total is None else total.add_(k)
    return total


def _real_matvec_into(f: LayerFactors, v: torch.Tensor, out: torch.Tensor, work: dict) -> None:
    """Real layer, one vector: ``out += rowsum(G * (A (G^T diag(v) A)^T))`` with reused buffers."""
    key = (f.name, "w")
    if key not in work:
        n, d_out = f.g.shape[1], f.g.shape[2]
        work[key] = torch.empty(n, d_out, dtype=f.g.dtype, device=f.g.device)
        work[(f.name, "y")] = torch.empty(n, d_out, dtype=f.g.dtype, device=f.g.device)
        work[(f.name, "u")] = torch.empty(d_out, f.a.shape[1], dtype=f.g.dtype, device=f.g.device)
    w, y, u = work[key], work[(f.name, "y")], work[(f.name, "u")]
    vv = v.to(f.g.dtype)[:, None]
    for g in f.g:
        torch.mul(g, vv, out=w)
        torch.mm(w.T, f.a, out=u)
        torch.mm(f.a, u.T, out=y)
        out += y.mul_(g).sum(1).to(out.dtype)


def structured_matmat(factors: list[LayerFactors], v: torch.Tensor,
                      workspace: dict | None = None) -> torch.Tensor:
    """NTK-vector products ``Theta @ v`` (traced over outputs) without forming ``Theta``.

    Per layer and output, ``U = G^H diag(v) A`` and ``(Theta v)_n = Re g_n^T U conj(a_n)``;
    cost ``O(N d_out d_in)`` per vector, memory ``O(N d_out)``.

    Parameters
    ----------
    factors
        From :func:`capture_factors`.
    v
        Shape ``(N,)`` or ``(N, b)``.
    workspace
        Optional dict in which buffers are kept between calls (repeated
        products, e.g. Lanczos, then avoid re-allocating ``N x width`` arrays).

    Returns
    -------
    Tensor
        Same shape as ``v``.
    """
    vec = v.dim() == 1
    v2 = v.unsqueeze(1) if vec else v
    n, b = v2.shape
    out = torch.zeros(n, b, dtype=v2.dtype, device=v2.device)
    for f in factors:
        complex_ = f.a.is_complex() or f.g.is_complex()
        if not complex_ and b == 1 and workspace is not None:
            _real_matvec_into(f, v2[:, 0], out[:, 0], workspace)
            continue
        a = f.a
        vv = v2.to(a.dtype) if complex_ and not v2.is_complex() else v2
        for g in f.g:
            d_out = g.shape[1]
            w = (g.conj()[:, :, None] * vv.to(g.dtype)[:, None, :]).reshape(n, d_out * b)
            u = w.T @ a.to(w.dtype)                                 # (d_out*b, d_in)
            y = (a.conj() if complex_ else a).to(u.dtype) @ u.T     # (N, d_out*b)
            r = (g[:, :, None].to(y.dtype) * y.reshape(n, d_out, b)).sum(1)
            out += r.real if r.is_complex() else r
    return out[:, 0] if vec else out
