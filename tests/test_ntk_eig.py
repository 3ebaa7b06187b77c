"""NTK eigendecomposition: dense eigh, clipping report, matrix-free operator and Lanczos top-k."""

from __future__ import annotations

import math

import pytest
import torch

from spectral_probe.models import build_model
from spectral_probe.ntk import decay_profile, empirical_ntk, ntk_eigh, ntk_operator, ntk_topk


def _psd(n: int, spectrum: torch.Tensor, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q @ torch.diag(spectrum) @ q.T


def test_eigh_descending_and_reconstructs():
    lam = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.1, 0.0], dtype=torch.float64)
    theta = _psd(6, lam)
    e = ntk_eigh(theta)
    assert torch.allclose(e.values, lam, atol=1e-12)
    assert torch.allclose(e.vectors @ torch.diag(e.values) @ e.vectors.T, theta, atol=1e-12)
    assert e.method == "eigh"


def test_roundoff_negative_eigenvalues_are_clipped_and_reported():
    lam = torch.tensor([4.0, 2.0, 1.0, -1e-14, -3e-15], dtype=torch.float64)
    e = ntk_eigh(_psd(5, lam))
    assert e.n_clipped == 2
    assert e.min_raw == pytest.approx(-1e-14, abs=2e-15)
    assert float(e.values.min()) == 0.0
    assert e.tolerance == pytest.approx(5 * torch.finfo(torch.float64).eps * 4.0)
    assert "2 negative eigenvalue(s) clipped" in e.clip_report()


def test_large_negative_eigenvalue_warns():
    lam = torch.tensor([1.0, 0.5, -0.2], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="not positive semi-definite"):
        e = ntk_eigh(_psd(3, lam))
    assert e.n_clipped == 1


def test_float32_kernel_tolerance_uses_float32_eps():
    theta = _psd(4, torch.tensor([2.0, 1.0, 0.5, 0.25], dtype=torch.float64)).float()
    e = ntk_eigh(theta, float64=True)
    assert e.tolerance == pytest.approx(4 * torch.finfo(torch.float32).eps * float(e.values[0]), rel=1e-6)


def test_eigh_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        ntk_eigh(torch.zeros(3, 3, 2, 2))


@pytest.mark.parametrize("name,impl", [("siren2", "structured"), ("wire", "structured"),
                                       ("siren", "ntvp")])
def test_operator_matches_dense_kernel(name, impl):
    kw = dict(s0=10.0, s1=0.5) if name == "siren2" else {}
    model = build_model(name, width=12, depth=2, out_features=2, seed=0, **kw)
    x = torch.linspace(-1, 1, 17)[:, None]
    theta = empirical_ntk(model, x, dtype=torch.float64)
    op = ntk_operator(model, x, implementation=impl, dtype=torch.float64)
    v = torch.randn(17, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(op.matmat(v), theta @ v, rtol=1e-12, atol=1e-10)
    assert torch.allclose(op.matmat(v[:, 0]), theta @ v[:, 0], rtol=1e-12, atol=1e-10)
    assert torch.allclose(op.diagonal(), theta.diagonal(), rtol=1e-12)
    assert op.implementation == impl


def test_topk_matches_dense_eigh():
    model = build_model("siren2", width=32, depth=3, s0=10.0, s1=0.5, seed=0)
    x = torch.linspace(-1, 1, 300)[:, None]
    dense = ntk_eigh(empirical_ntk(model, x, dtype=torch.float64))
    op = ntk_operator(model, x, dtype=torch.float64)
    top = ntk_topk(op, 12)
    assert top.values.shape == (12,) and top.vectors.shape == (300, 12)
    assert torch.allclose(top.values, dense.values[:12], rtol=1e-9)
    overlap = (top.vectors.T @ dense.vectors[:, :12]).abs().diagonal()
    assert float(overlap.min()) > 1 - 1e-6
    assert top.matvecs > 12
    # a dense kernel is accepted too
    assert torch.allclose(ntk_topk(empirical_ntk(model, x, dtype=torch.float64), 5).values,
                          dense.values[:5], rtol=1e-9)


def test_topk_rejects_bad_k():
    theta = torch.eye(5, dtype=torch.float64)
    for k in (0, 5, 2.5):
        with pytest.raises(ValueError, match="1 <= k < N=5"):
            ntk_topk(theta, k)
    with pytest.raises(ValueError, match="unknown method"):
        ntk_topk(theta, 2, method="power")


def test_decay_profile_closed_form():
    prof = decay_profile(torch.tensor([4.0, 2.0, 1.0, 1.0]))
    assert torch.allclose(prof["normalized"], torch.tensor([1, 0.5, 0.25, 0.25], dtype=torch.float64))
    assert torch.allclose(prof["cumulative"], torch.tensor([0.5, 0.75, 0.875, 1.0], dtype=torch.float64))
    p = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    assert prof["effective_rank"] == pytest.approx(math.exp(float(-(p * p.log()).sum())))
    assert prof["modes_90"] == 4 and prof["modes_99"] == 4
    assert decay_profile(torch.tensor([9.0, 0.5, 0.5]))["modes_90"] == 1
