"""Closed forms of theory.py, and measured activations at initialisation against them.

The measurements use width d = 2048 and N = 2048 inputs on [-1, 1] (the
authors' notebook uses width 2048).  Our models keep PyTorch's default biases,
so the prediction includes the bias term omega^2 / (3 d); with biases zeroed the
theorem as stated (sqrt(1 + d s^2 / 2)) is checked.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import integrate

from spectral_probe import build_model, theory
from spectral_probe.probes import stats
from spectral_probe.probes import Probe

WIDTH = 2048
N = 2048
OMEGA = 30.0


def test_arcsine_density_and_moments():
    total, _ = integrate.quad(theory.arcsine_pdf, -1, 1)
    second, _ = integrate.quad(lambda x: x * x * theory.arcsine_pdf(x), -1, 1)
    fourth, _ = integrate.quad(lambda x: x ** 4 * theory.arcsine_pdf(x), -1, 1)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert second == pytest.approx(theory.ARCSINE_VARIANCE, abs=1e-6)
    assert fourth / second ** 2 - 3 == pytest.approx(theory.ARCSINE_EXCESS_KURTOSIS, abs=1e-5)
    assert theory.arcsine_cdf(0.5) == pytest.approx(2 / 3)


@pytest.mark.parametrize("std", [0.5, 1.0, 3.0])
def test_sine_of_gaussian_against_monte_carlo(std):
    z = np.random.default_rng(0).normal(scale=std, size=400_000)
    y = np.sin(z)
    grid = np.linspace(-0.9, 0.9, 7)
    np.testing.assert_allclose(theory.sine_gaussian_cdf(grid, std), [(y <= g).mean() for g in grid], atol=3e-3)
    total, _ = integrate.quad(lambda v: theory.sine_gaussian_pdf(v, std), -1, 1, limit=200)
    assert total == pytest.approx(1.0, abs=1e-4)
    assert theory.sine_gaussian_second_moment(std) == pytest.approx(np.mean(y * y), abs=3e-3)


def test_sine_of_wide_gaussian_is_arcsine():
    y = np.linspace(-0.95, 0.95, 9)
    np.testing.assert_allclose(theory.sine_gaussian_pdf(y, 30.0), theory.arcsine_pdf(y), rtol=1e-6)


def test_theorem31_closed_form_values():
    assert theory.theorem31_std(WIDTH, 0.0) == pytest.approx(1.0)
    assert theory.theorem31_std(WIDTH, 1.0) == pytest.approx(math.sqrt(1 + WIDTH / 2))
    with_bias = theory.theorem31_std(WIDTH, 0.0, bias_var=theory.pytorch_bias_variance(WIDTH))
    assert with_bias == pytest.approx(math.sqrt(1 + OMEGA ** 2 / (3 * WIDTH)))


@functools.lru_cache(maxsize=None)
def _init_stats(s: float, zero_bias: bool) -> dict[str, dict[str, torch.Tensor]]:
    """Probe layers 1 and 2 of a 3-layer SIREN^2 (s0 = 0, s1 = s) at initialisation."""
    model = build_model("siren2", width=WIDTH, depth=3, s0=0.0, s1=s, seed=1)
    if zero_bias:
        with torch.no_grad():
            for layer in model.layers[1:]:
                layer.linear.bias.zero_()
    model.head = torch.nn.Identity()             # the head is not measured; skip its matmul
    probe = Probe(["layers.1.*", "layers.2.pre"], bins=96, bin_range="adaptive")
    return probe.step(0, model, torch.linspace(-1, 1, N)[:, None])


def _tv(rec: dict, cdf, **kw) -> float:
    return theory.total_variation(rec["hist"].numpy(), rec["hist_edges"].numpy(), cdf, **kw)


@pytest.mark.parametrize("s", [0.0, 0.05, 0.2, 1.0])
def test_theorem31_std_with_default_biases(s):
    rec = _init_stats(s, zero_bias=False)
    predicted = theory.theorem31_std(WIDTH, s, OMEGA, bias_var=theory.pytorch_bias_variance(WIDTH))
    measured = float(rec["layers.1.pre"]["act_std"])
    assert measured == pytest.approx(predicted, rel=0.01)
    # Parseval: the layer-averaged PSD integrates to the same variance (its mean is ~0)
    assert float(rec["layers.1.pre"]["psd"].sum()) / N == pytest.approx(predicted ** 2, rel=0.02)
    # the pre-activation is Gaussian (CLT over d = 2048 terms)
    assert _tv(rec["layers.1.pre"], theory.gaussian_cdf, std=predicted) < 0.02
    assert abs(float(rec["layers.1.pre"]["act_kurtosis"])) < 0.1
    # its sine is exactly sin(N(0, sigma^2)); arcsine once sigma is large
    assert _tv(rec["layers.1.post"], theory.sine_gaussian_cdf, std=predicted) < 0.02
    if s >= 0.2:
        assert _tv(rec["layers.1.post"], theory.arcsine_cdf) < 0.02
        assert float(rec["layers.1.post"]["act_kurtosis"]) == pytest.approx(theory.ARCSINE_EXCESS_KURTOSIS, abs=0.03)
    # next layer (no noise): Sitzmann's N(0, 1) up to E[h^2] of sin(N(0, sigma^2)) and the bias
    m2 = theory.sine_gaussian_second_moment(predicted)
    nxt = math.sqrt(theory.preactivation_variance(
        WIDTH, theory.siren_hidden_weight_variance(WIDTH, OMEGA), OMEGA, m2, theory.pytorch_bias_variance(WIDTH)))
    assert float(rec["layers.2.pre"]["act_std"]) == pytest.approx(nxt, rel=0.01)


@pytest.mark.parametrize("s", [0.0, 1.0])
def test_theorem31_std_as_stated_with_zero_biases(s):
    rec = _init_stats(s, zero_bias=True)
    assert float(rec["layers.1.pre"]["act_std"]) == pytest.approx(math.sqrt(1 + WIDTH * s * s / 2), rel=0.01)


def test_small_noise_post_activation_is_not_arcsine():
    """Guards the arcsine check above: with s = 0 (sigma ~ 1.07) the law differs measurably."""
    rec = _init_stats(0.0, zero_bias=False)
    assert _tv(rec["layers.1.post"], theory.arcsine_cdf) > 0.04


@pytest.mark.parametrize("name", ["layers.1.pre", "output"])
def test_proposition1_psd_scales_with_a_squared(name):
    """Scaling the linear map that produces ``name`` by a scales its layer PSD by a^2."""
    model = build_model("siren", width=64, depth=2, seed=0)
    x = torch.linspace(-1, 1, 512)[:, None]
    probe = Probe([name], every=1, bin_range="adaptive")
    before = probe.step(0, model, x)[name]
    a = 3.0
    lin = model.head if name == "output" else model.layers[1].linear
    with torch.no_grad():
        lin.weight.mul_(a)
        lin.bias.mul_(a)
    after = probe.step(1, model, x)[name]
    scale = float(before["psd"].max())               # float32 rounding floor of the smallest bins
    torch.testing.assert_close(after["psd"], theory.proposition1_psd(before["psd"], a), rtol=1e-4, atol=1e-6 * scale)
    # Parseval ties the PSD to the moments: sum(psd) * df = E[x^2], df = 1/n
    power = float(after["psd"].sum()) / 512
    assert power == pytest.approx(float(after["act_std"] ** 2 + after["act_mean"] ** 2), rel=1e-4)


def test_laplace_law_moments_and_cdf():
    x = np.linspace(-40, 40, 400001)
    pdf = theory.laplace_pdf(x, std=3.0, mean=1.0)
    dx = x[1] - x[0]
    assert np.sum(pdf) * dx == pytest.approx(1.0, abs=1e-6)
    assert np.sqrt(np.sum((x - 1.0) ** 2 * pdf) * dx) == pytest.approx(3.0, rel=1e-4)
    np.testing.assert_allclose(np.cumsum(pdf) * dx, theory.laplace_cdf(x, std=3.0, mean=1.0), atol=1e-4)
    assert theory.laplace_cdf(1.0, 3.0, 1.0) == pytest.approx(0.5)
