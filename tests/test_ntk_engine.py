"""Engine hardening: auto falls back when the structured route refuses, the matrix-free route never
forms the kernel, tiles and worker threads give the same kernel, ntvp chunks within its memory model."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from spectral_probe.models import build_model
from spectral_probe.models.base import Sine
from spectral_probe.ntk import (DenseKernelTooLarge, Implementation, analyze_ntk, empirical_ntk,
                                ntk_operator, resolve_implementation, spectrum_without_kernel,
                                supports_structured)
from spectral_probe.ntk.operator import spectrum_from_operator
from spectral_probe.ntk.parallel import plan_tiles
from spectral_probe.ntk.spectrum import spectrum_from_kernel
from spectral_probe.ntk.structured import StructuredUnsupported, capture_factors, structured_kernel_sum

from test_ntk_empirical import reference_ntk, rel

HERE = Path(__file__).resolve().parent


def _reused_linear_model():
    torch.manual_seed(0)
    lin = nn.Linear(6, 6)
    return nn.Sequential(nn.Linear(1, 6), nn.Tanh(), lin, nn.Tanh(), lin, nn.Tanh(), nn.Linear(6, 1)), lin


def test_auto_falls_back_for_a_reused_linear_and_leaves_the_model_intact():
    model, lin = _reused_linear_model()
    weight = lin.weight
    x = torch.linspace(-1, 1, 9)[:, None]
    assert not supports_structured(model)
    assert resolve_implementation(model, "auto") is Implementation.JACREV
    with pytest.raises(StructuredUnsupported, match="reuses an nn.Linear"):
        empirical_ntk(model, x, implementation="structured")
    ref = reference_ntk(copy.deepcopy(model), x)   # (the brute-force helper calls functional_call itself)
    for impl in ("auto", "jacrev", "ntvp"):
        assert rel(empirical_ntk(model, x, implementation=impl, dtype=torch.float64), ref) < 1e-12
        # torch.func.functional_call alone would leave the substituted tensor in the reused layer
        assert lin.weight is weight and isinstance(lin.weight, nn.Parameter)


class _SineCallingLinear(Sine):
    """A parameter-free activation that secretly runs a registered layer again (passes the static check)."""

    def __init__(self, omega, lin):
        super().__init__(omega)
        self._lin = [lin]                       # a list: not registered as a submodule

    def post(self, p):
        return torch.sin(p) + 0.1 * self._lin[0](torch.sin(p))


def test_runtime_refusal_is_caught_by_auto():
    model = build_model("siren", width=5, depth=3, seed=0)
    model.layers[1].act = _SineCallingLinear(30.0, model.layers[2].linear)
    x = torch.linspace(-1, 1, 7)[:, None]
    assert supports_structured(model)            # static check passes...
    with pytest.raises(StructuredUnsupported, match=r"layers\.2\.linear ran 2 time"):
        empirical_ntk(model, x, implementation="structured")
    ref = reference_ntk(copy.deepcopy(model), x)   # ...auto catches the runtime refusal
    assert rel(empirical_ntk(model, x, dtype=torch.float64), ref) < 1e-12
    res = analyze_ntk(model, x, dtype=torch.float64)
    assert res.implementation == "jacrev"
    assert rel(res.kernel, ref) < 1e-12


def test_tied_weights_are_not_structured():
    torch.manual_seed(1)
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    model = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), a, nn.Tanh(), b, nn.Tanh(), nn.Linear(4, 1))
    x = torch.linspace(-1, 1, 6)[:, None]
    with pytest.raises(StructuredUnsupported, match="shared with"):
        empirical_ntk(model, x, implementation="structured")
    assert rel(empirical_ntk(model, x, dtype=torch.float64), reference_ntk(copy.deepcopy(model), x)) < 1e-12


@pytest.mark.parametrize("impl,n", [("auto", 600), ("ntvp", 200)])
def test_matrix_free_never_forms_the_kernel(monkeypatch, impl, n):
    model, _ = _reused_linear_model()
    x = torch.linspace(-1, 1, n)[:, None]
    theta = empirical_ntk(model, x, dtype=torch.float64)
    dense_top = torch.linalg.eigvalsh(theta).flip(0)[:4]
    # the dense route needs the kernel and its float64 eigh (4 kernels): refused within 2 kernels
    budget = n * n * 8 * 2
    with pytest.raises(DenseKernelTooLarge):
        analyze_ntk(model, x, dtype=torch.float64, max_bytes=budget)

    def no_kernel(*args, **kwargs):
        raise AssertionError("the matrix-free route formed the dense kernel")

    import spectral_probe.ntk.analysis as analysis
    monkeypatch.setattr(analysis, "empirical_ntk", no_kernel)
    res = analyze_ntk(model, x, implementation=impl, top_k=4, dtype=torch.float64, max_bytes=budget)
    assert res.kernel is None and res.implementation == ("jacrev" if impl == "auto" else "ntvp")
    assert res.spectrum_method == "products"
    assert torch.allclose(res.eigen.values, dense_top, rtol=1e-9)
    assert torch.allclose(res.spectrum, spectrum_from_kernel(theta), rtol=1e-9, atol=1e-12 * float(theta.trace()))


def test_generic_operators_match_the_kernel_on_1d_and_2d_grids():
    model, _ = _reused_linear_model()
    x = torch.linspace(-1, 1, 24, dtype=torch.float64)[:, None]
    theta = empirical_ntk(model.double(), x)
    v = torch.randn(24, 3, dtype=torch.float64)
    for impl in ("jacrev", "ntvp"):
        op = ntk_operator(model, x, implementation=impl)
        assert op.implementation == impl
        assert torch.allclose(op.matmat(v), theta @ v, atol=1e-12 * float(theta.abs().max()))
        assert torch.allclose(op.diagonal(), theta.diagonal())
        assert torch.allclose(spectrum_from_operator(op), spectrum_from_kernel(theta), atol=1e-11)
    # the same S on a 4 x 6 grid read as 2-D, through the generic routes
    s2d = spectrum_without_kernel(model, x, grid_shape=(4, 6)).values
    assert s2d.shape == (4, 6) and float(s2d.sum()) == pytest.approx(float(theta.trace()), rel=1e-12)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("n", [7, 300, 1100])
def test_tiles_and_workers_give_the_same_kernel(n, workers):
    model = build_model("siren2", width=20, depth=3, s0=5.0, s1=0.5, out_features=2, seed=0)
    x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    f = capture_factors(model.double(), x, None, workers=workers)
    one = capture_factors(model, x, None, workers=1)
    # chunked captures differ from one pass only by GEMM round-off
    assert all(torch.allclose(a.a, b.a, rtol=1e-13, atol=1e-13) and torch.allclose(a.g, b.g, rtol=1e-12, atol=1e-12)
               for a, b in zip(f, one))
    ref = sum(torch.einsum("cnd,cmd->nm", l.g, l.g) * (l.a @ l.a.T) for l in one)
    k = structured_kernel_sum(f, workers=workers)
    assert torch.allclose(k, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))
    assert torch.allclose(k, k.T, rtol=1e-13, atol=0)
    y = torch.linspace(-0.5, 0.7, 13, dtype=torch.float64)[:, None]
    cross = structured_kernel_sum(f, capture_factors(model, y, None, workers=workers), workers=workers)
    fy = capture_factors(model, y, None, workers=1)
    assert torch.allclose(cross, sum(torch.einsum("cnd,cmd->nm", a.g, b.g) * (a.a @ b.a.T)
                                     for a, b in zip(one, fy)), rtol=1e-12)


def test_tile_plan_covers_the_upper_triangle_once():
    for n, workers in ((1024, 1), (1024, 2), (4096, 2), (300, 4), (5, 2)):
        tiles, side = plan_tiles(n, n, symmetric=True, workers=workers)
        cover = torch.zeros(n, n, dtype=torch.int32)
        for r0, r1, c0, c1 in tiles:
            assert r0 <= c0 and r1 - r0 <= side
            cover[r0:r1, c0:c1] += 1
        upper = torch.triu_indices(n, n)
        assert int(cover[upper[0], upper[1]].min()) == 1 and int(cover.max()) == 1
        if n >= 1024:
            assert min(r1 - r0 for r0, r1, _, _ in tiles) >= 128
            if workers > 1:
                assert len(tiles) >= 3 * workers


def _ntvp_peak(n: int) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "_ntvp_child.py"), str(n)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_peak(r: dict) -> None:
    ratio = r["measured"] / r["need"]
    assert 0.5 <= ratio <= 1.5, r                 # the stated budget holds the measured peak within 1.5x
    assert r["chunk"] < r["n"]                    # chunked: not all columns at once


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux peak-RSS reset")
def test_ntvp_peak_memory_matches_its_budget():
    _check_peak(_ntvp_peak(512))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux peak-RSS reset")
@pytest.mark.parametrize("n", [256, 1024, 2048])
def test_ntvp_peak_memory_matches_its_budget_across_sizes(n):
    _check_peak(_ntvp_peak(n))
