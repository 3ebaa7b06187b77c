"""Empirical NTK: every implementation against a float64 brute-force real-parameter Jacobian."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from spectral_probe.models import HookPoint, build_model
from spectral_probe.ntk import (DenseKernelTooLarge, Implementation, empirical_ntk, paused_hooks,
                                resolve_implementation, structured_layers, supports_structured)

IMPLS = ["structured", "jacrev", "ntvp"]


def brute_force_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``J[n, c, p]`` over real parameters by one float64 backward per (sample, output).

    Complex parameters are rebuilt from explicit real and imaginary leaves, so
    the result does not depend on PyTorch's complex-gradient convention.
    """
    leaves, rebuild = [], {}
    for name, p in model.named_parameters():
        if p.is_complex():
            u = p.detach().real.double().clone().requires_grad_()
            v = p.detach().imag.double().clone().requires_grad_()
            leaves += [u, v]
            rebuild[name] = (u, v)
        else:
            w = p.detach().double().clone().requires_grad_()
            leaves.append(w)
            rebuild[name] = (w,)
    rows = []
    for xn in x.double():
        params = {k: torch.complex(*t) if len(t) == 2 else t[0] for k, t in rebuild.items()}
        out = functional_call(model, params, (xn[None],))[0]
        per_c = []
        for c in range(out.shape[0]):
            grads = torch.autograd.grad(out[c], leaves, retain_graph=True, allow_unused=True)
            per_c.append(torch.cat([(g if g is not None else torch.zeros_like(l)).flatten()
                                    for g, l in zip(grads, leaves)]))
        rows.append(torch.stack(per_c))
    return torch.stack(rows)


def reference_ntk(model, x1, x2=None, trace=True):
    j1 = brute_force_jacobian(model, x1)
    j2 = j1 if x2 is None else brute_force_jacobian(model, x2)
    return torch.einsum("ncp,mcp->nm", j1, j2) if trace else torch.einsum("ncp,mdp->nmcd", j1, j2)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


MODELS = [
    ("siren2", dict(s0=10.0, s1=0.5)),
    ("wire", {}),
    ("finer", {}),
    ("relu_pe", {}),
    ("gauss", {}),
    ("siren_rff", {}),
]


@pytest.mark.parametrize("name,kw", MODELS)
@pytest.mark.parametrize("impl", IMPLS)
def test_float64_matches_brute_force(name, kw, impl):
    model = build_model(name, width=12, depth=2, out_features=2, seed=1, **kw)
    x1 = torch.linspace(-1, 1, 6)[:, None]
    x2 = torch.linspace(-0.7, 0.9, 4)[:, None]
    ref_full = reference_ntk(model, x1, x2, trace=False)
    full = empirical_ntk(model, x1, x2, implementation=impl, trace_outputs=False, dtype=torch.float64)
    assert full.shape == (6, 4, 2, 2)
    assert rel(full, ref_full) < 1e-12
    traced = empirical_ntk(model, x1, x2, implementation=impl, dtype=torch.float64)
    assert rel(traced, ref_full.diagonal(dim1=-2, dim2=-1).sum(-1)) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_relative_error_small(impl):
    model = build_model("siren2", width=32, depth=3, s0=10.0, s1=0.5, seed=0)
    x = torch.linspace(-1, 1, 40)[:, None]
    ref = reference_ntk(model, x)
    assert rel(empirical_ntk(model, x, implementation=impl), ref) < 1e-5


def test_wire_complex_parameters_count_twice():
    model = build_model("wire", width=8, depth=2, seed=0)
    assert any(p.is_complex() for p in model.parameters())
    x = torch.linspace(-1, 1, 5)[:, None]
    ref = reference_ntk(model, x)
    # treating only the real part of each complex weight as a parameter misses the imaginary half
    theta = empirical_ntk(model, x, implementation="structured", dtype=torch.float64)
    assert rel(theta, ref) < 1e-12
    assert resolve_implementation(model, "auto") is Implementation.STRUCTURED


@pytest.mark.parametrize("impl", IMPLS)
def test_per_layer_contributions_sum_to_total(impl):
    model = build_model("siren", width=10, depth=3, out_features=2, seed=2)
    x = torch.linspace(-1, 1, 7)[:, None]
    parts = empirical_ntk(model, x, implementation=impl, per_layer=True, dtype=torch.float64)
    assert sorted(parts) == sorted(name for name, _ in structured_layers(model))
    total = empirical_ntk(model, x, implementation=impl, dtype=torch.float64)
    assert rel(sum(parts.values()), total) < 1e-12
    # each layer's contribution is itself a PSD Gram matrix
    for k in parts.values():
        assert float(torch.linalg.eigvalsh(k).min()) > -1e-9 * float(k.diagonal().max())


def test_trace_equals_diagonal_of_full_kernel():
    model = build_model("siren", width=10, depth=2, out_features=3, seed=3)
    x = torch.linspace(-1, 1, 9)[:, None]
    full = empirical_ntk(model, x, trace_outputs=False, dtype=torch.float64)
    assert full.shape == (9, 9, 3, 3)
    assert rel(empirical_ntk(model, x, dtype=torch.float64), full.diagonal(dim1=-2, dim2=-1).sum(-1)) < 1e-14
    # the full kernel is symmetric under (n, c) <-> (m, c')
    assert rel(full, full.permute(1, 0, 3, 2)) < 1e-14


def test_sequential_mlp_is_structured_and_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 7), nn.Tanh(), nn.Linear(7, 5), nn.GELU(), nn.Linear(5, 2))
    x = torch.rand(6, 2)
    assert supports_structured(model)
    theta = empirical_ntk(model, x, implementation="structured", dtype=torch.float64)
    assert rel(theta, reference_ntk(model, x)) < 1e-12


def test_frozen_parameters_are_excluded():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 1))
    model[0].weight.requires_grad_(False)
    x = torch.linspace(-1, 1, 5)[:, None]
    jac = empirical_ntk(model, x, implementation="jacrev", dtype=torch.float64)
    st = empirical_ntk(model, x, implementation="structured", dtype=torch.float64)
    assert rel(st, jac) < 1e-12
    model[0].weight.requires_grad_(True)
    assert rel(empirical_ntk(model, x, dtype=torch.float64), jac) > 1e-3


class _Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.inp = nn.Linear(1, 3)

    def forward(self, x):
        return self.lin(torch.sin(self.lin(self.inp(x)))).sum(-1, keepdim=True)


def test_structured_rejects_with_reason_and_auto_falls_back():
    model = nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"BatchNorm1d.*implementation='jacrev'"):
        empirical_ntk(model, torch.rand(4, 1), implementation="structured")
    assert resolve_implementation(model, "auto") is Implementation.JACREV
    shared = _Shared()
    with pytest.raises(ValueError, match="neither an INR nor an nn.Sequential"):
        structured_layers(shared)
    x = torch.rand(5, 1)
    assert rel(empirical_ntk(shared, x, dtype=torch.float64), reference_ntk(shared, x)) < 1e-12


def test_layer_applied_twice_is_rejected():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(1, 4), lin, nn.Tanh(), lin, nn.Linear(4, 1))
    with pytest.raises(ValueError, match="exactly once"):
        empirical_ntk(model, torch.rand(3, 1), implementation="structured")


def test_bad_inputs():
    model = build_model("siren", width=8, depth=2, seed=0)
    with pytest.raises(ValueError, match="unknown implementation 'fast'"):
        empirical_ntk(model, torch.rand(3, 1), implementation="fast")
    with pytest.raises(ValueError, match=r"shape \(N, d_in\)"):
        empirical_ntk(model, torch.rand(3))
    with pytest.raises(ValueError, match="NaN"):
        empirical_ntk(model, torch.tensor([[0.0], [float("nan")]]))
    with torch.no_grad():
        model.layers[1].linear.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"parameter 'layers.1.linear.weight' contains NaN"):
        empirical_ntk(model, torch.rand(3, 1))


def test_dense_kernel_too_large_names_size_and_matrix_free_route():
    model = build_model("siren", width=8, depth=2, seed=0)
    with pytest.raises(DenseKernelTooLarge, match=r"needs .*MiB.*matrix-free route"):
        empirical_ntk(model, torch.rand(2000, 1), max_bytes=1 << 20)


def test_paused_hooks_silence_probes_and_restore_them():
    model = build_model("siren", width=8, depth=2, seed=0)
    seen = []
    handle = model.layers[0].pre.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    for impl in IMPLS:
        empirical_ntk(model, torch.rand(4, 1), implementation=impl)
    assert seen == []
    with paused_hooks(model):
        model(torch.rand(2, 1))
        inner = model.layers[0].post.register_forward_hook(lambda m, i, o: seen.append("inner"))
        model(torch.rand(2, 1))
    assert seen == ["inner"]
    model(torch.rand(3, 1))
    assert seen == ["inner", (3, 8)]
    handle.remove()
    inner.remove()
    model(torch.rand(3, 1))
    assert seen == ["inner", (3, 8)]


def test_paused_hooks_restore_on_error():
    model = nn.Sequential(HookPoint(), nn.Linear(1, 1))
    calls = []
    model[0].register_forward_hook(lambda m, i, o: calls.append(1))
    with pytest.raises(RuntimeError):
        with paused_hooks(model):
            raise RuntimeError("boom")
    model(torch.zeros(1, 1))
    assert calls == [1]
