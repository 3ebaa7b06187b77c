"""S(k) (Eqn 6) three ways, truncation, conversions and plotting helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral_probe.models import build_model
from spectral_probe.ntk import (authors_convention, capture_factors, empirical_ntk,
                                high_frequency_share, normalized_kernel, ntk_eigh, ntk_operator,
                                ntk_topk, spectrum_from_eigenpairs, spectrum_from_factors,
                                spectrum_from_kernel, spectrum_without_kernel, two_sided)
from spectral_probe.ntk.empirical import prepare_tensors


def _factors(model, x, dtype=torch.float64):
    params, others, dtype = prepare_tensors(model, dtype)
    return capture_factors(model, x.to(dtype), {**params, **others})


CASES = [("siren2", dict(s0=10.0, s1=0.5, out_features=2), 64),
         ("siren2", dict(s0=10.0, s1=0.5), 65),
         ("wire", {}, 48), ("relu_pe", {}, 33)]


@pytest.mark.parametrize("name,kw,n", CASES)
def test_three_routes_agree(name, kw, n):
    model = build_model(name, width=12, depth=3, seed=0, **kw)
    x = torch.linspace(-1, 1, n)[:, None]
    theta = empirical_ntk(model, x, dtype=torch.float64)
    e = ntk_eigh(theta)
    s_eig = spectrum_from_eigenpairs(e.values, e.vectors)
    s_ker = spectrum_from_kernel(theta, block=10)
    s_fac = spectrum_from_factors(_factors(model, x), block=5)
    scale = float(s_eig.max())
    assert s_eig.shape == (n // 2 + 1,)
    assert float((s_ker - s_eig).abs().max()) < 1e-12 * scale
    assert float((s_fac.values - s_eig).abs().max()) < 1e-12 * scale
    # Parseval: the two-sided spectrum sums to the trace
    assert float(two_sided(s_eig, n).sum()) == pytest.approx(float(theta.trace()), rel=1e-12)
    assert s_fac.trace == pytest.approx(float(theta.trace()), rel=1e-12)


def test_definition_by_explicit_dft_matrix():
    model = build_model("siren", width=8, depth=2, seed=4)
    n = 20
    x = torch.linspace(-1, 1, n)[:, None]
    theta = empirical_ntk(model, x, dtype=torch.float64).numpy()
    idx = np.arange(n)
    f = np.exp(-2j * np.pi * np.outer(idx, idx) / n) / np.sqrt(n)
    direct = np.real(np.diag(f @ theta @ f.conj().T))
    s = spectrum_from_kernel(torch.from_numpy(theta)).numpy()
    assert np.allclose(s, direct[: n // 2 + 1], rtol=1e-12, atol=1e-12 * direct.max())
    assert np.allclose(direct[1:], direct[1:][::-1], rtol=1e-10)  # S(N - k) = S(k)


def test_truncated_spectrum_from_lanczos_pairs():
    model = build_model("siren2", width=16, depth=3, s0=10.0, s1=0.5, seed=0)
    n = 128
    x = torch.linspace(-1, 1, n)[:, None]
    theta = empirical_ntk(model, x, dtype=torch.float64)
    dense = ntk_eigh(theta)
    top = ntk_topk(ntk_operator(model, x, dtype=torch.float64), 10)
    s_top = spectrum_from_eigenpairs(top.values, top.vectors)
    s_ref = spectrum_from_eigenpairs(dense.values[:10], dense.vectors[:, :10])
    s_all = spectrum_from_eigenpairs(dense.values, dense.vectors)
    assert torch.allclose(s_top, s_ref, rtol=1e-7, atol=1e-9 * float(s_ref.max()))
    assert bool((s_top <= s_all + 1e-9 * float(s_all.max())).all())
    assert float(two_sided(s_top, n).sum()) == pytest.approx(float(top.values.sum()), rel=1e-10)


@pytest.mark.parametrize("name", ["siren2", "wire"])
def test_certified_truncation(name):
    kw = dict(s0=10.0, s1=0.5) if name == "siren2" else {}
    model = build_model(name, width=16, depth=3, seed=0, **kw)
    n = 96
    factors = _factors(model, torch.linspace(-1, 1, n)[:, None])
    exact = spectrum_from_factors(factors)
    approx = spectrum_from_factors(factors, rtol=1e-3)
    assert approx.pairs_used < exact.pairs_used == exact.pairs_total
    diff = exact.values - approx.values
    assert float(diff.min()) > -1e-12 * float(exact.values.max())
    assert float(two_sided(diff, n).sum()) == pytest.approx(approx.dropped_mass, rel=1e-8)
    assert 0 < approx.dropped_mass <= 1e-3 * approx.trace
    with pytest.raises(ValueError, match="rtol"):
        spectrum_from_factors(factors, rtol=-1.0)


def test_authors_convention_matches_their_code():
    """Re-implementation of SIREN-square modules/utils_NTK.py (K = G G^T / N^2, S/N, fftshift)."""
    model = build_model("siren", width=10, depth=2, seed=1)
    n = 40
    x = torch.linspace(-1, 1, n)[:, None]
    theta = empirical_ntk(model, x, dtype=torch.float64)
    k_auth = (theta / n ** 2).numpy()
    lam, vec = np.linalg.eigh(k_auth)
    lam, vec = lam[::-1], vec[:, ::-1]
    s_auth = sum(lam[i] * np.abs(np.fft.fftshift(np.fft.fft(vec[:, i]))) ** 2 for i in range(n)) / n
    freqs = np.fft.fftshift(np.fft.fftfreq(n)) * 2 * np.pi
    e = ntk_eigh(theta)
    omega, ours = authors_convention(spectrum_from_eigenpairs(e.values, e.vectors), n)
    assert np.allclose(omega.numpy(), freqs)
    assert np.allclose(ours.numpy(), s_auth, rtol=1e-9, atol=1e-12 * s_auth.max())
    assert np.allclose(normalized_kernel(theta, "authors").numpy(), k_auth)


def test_high_frequency_share_closed_form():
    n = 64
    idx = torch.arange(n, dtype=torch.float64)
    low = torch.cos(2 * math.pi * 3 * idx / n)
    high = torch.cos(2 * math.pi * 20 * idx / n)
    theta = torch.outer(low, low) + 3 * torch.outer(high, high)
    s = spectrum_from_kernel(theta)
    # power sits at k = +-3 (energy 1 * n/2 ... ) and k = +-20 > n/4 = 16
    assert high_frequency_share(s, n) == pytest.approx(0.75, rel=1e-12)
    assert high_frequency_share(s, n, cutoff=0.9) == pytest.approx(0.0, abs=1e-12)
    assert high_frequency_share(torch.zeros(n // 2 + 1), n) == 0.0


def test_two_sided_and_normalized_kernel():
    s = torch.tensor([1.0, 2.0, 3.0])
    assert two_sided(s, 4).tolist() == [1.0, 2.0, 3.0, 2.0]
    assert two_sided(s, 5).tolist() == [1.0, 2.0, 3.0, 3.0, 2.0]
    theta = torch.tensor([[4.0, 2.0], [2.0, 9.0]])
    assert torch.allclose(normalized_kernel(theta), torch.tensor([[1.0, 1 / 3], [1 / 3, 1.0]]))
    assert torch.allclose(normalized_kernel(theta, "max"), theta / 9)
    with pytest.raises(ValueError, match="unknown mode 'x'"):
        normalized_kernel(theta, "x")


def test_spectrum_without_kernel_float32_close_to_float64():
    model = build_model("siren2", width=24, depth=3, s0=10.0, s1=0.5, seed=0)
    x = torch.linspace(-1, 1, 500)[:, None]
    s64 = spectrum_without_kernel(model, x, dtype=torch.float64, chunk_size=128)
    s32 = spectrum_without_kernel(model, x, chunk_size=None)
    assert s64.values.shape == (251,)
    assert float((s32.values - s64.values).abs().max()) < 1e-5 * float(s64.values.max())
    with pytest.raises(ValueError, match="implementation='jacrev'"):
        spectrum_without_kernel(torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.Dropout()), x,
                                implementation="structured")
