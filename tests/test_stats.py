"""Statistics against numpy/scipy references and closed forms (Parseval, pure tones)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch

from spectral_probe.probes import stats


@pytest.mark.parametrize("n", [256, 255])
def test_psd_1d_matches_scipy_periodogram(n):
    x = np.random.default_rng(0).normal(size=(n, 3))
    spec = stats.psd_1d(torch.from_numpy(x), dim=0, fs=2.0)
    freqs, ref = scipy.signal.periodogram(x, fs=2.0, window="boxcar", detrend=False, scaling="density", axis=0)
    np.testing.assert_allclose(spec.freqs.numpy(), freqs, rtol=1e-12)
    np.testing.assert_allclose(spec.psd.numpy(), ref, rtol=1e-10, atol=1e-14)


def test_psd_1d_parseval_and_pure_tone():
    n, k, amp = 1024, 37, 3.0
    t = torch.arange(n, dtype=torch.float64)
    x = amp * torch.cos(2 * math.pi * k * t / n)
    spec = stats.psd_1d(x)
    df = 1.0 / n
    assert float(spec.psd.sum() * df) == pytest.approx(float(torch.mean(x * x)), rel=1e-12)
    assert int(torch.argmax(spec.psd)) == k
    # all power A^2/2 sits in bin k
    assert float(spec.psd[k] * df) == pytest.approx(amp ** 2 / 2, rel=1e-12)


def test_psd_2d_parseval_and_plane_wave():
    h, w, ky, kx = 32, 48, 5, -7
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    x = torch.cos(2 * math.pi * (ky * yy / h + kx * xx / w))
    spec = stats.psd_2d(x)
    assert float(spec.psd.sum() / (h * w)) == pytest.approx(float(torch.mean(x * x)), rel=1e-12)
    peaks = torch.nonzero(spec.psd > 0.25 * spec.psd.max())
    found = sorted((round(float(spec.fy[i]) * h), round(float(spec.fx[j]) * w)) for i, j in peaks.tolist())
    assert found == sorted([(ky, kx), (-ky, -kx)])


def test_radial_profile_of_flat_spectrum_and_ring():
    fy = torch.fft.fftshift(torch.fft.fftfreq(64, dtype=torch.float64))
    flat = stats.radial_profile(torch.full((64, 64), 2.0, dtype=torch.float64), fy, fy)
    assert flat.freqs.shape == (32,)
    np.testing.assert_allclose(flat.psd.numpy(), 2.0)
    radius = torch.sqrt(fy[:, None] ** 2 + fy[None, :] ** 2)
    ring = (torch.abs(radius - 10 / 64) < 0.5 / 64).double()
    prof = stats.radial_profile(ring, fy, fy)
    assert int(torch.argmax(prof.psd)) == 10
    assert float(prof.freqs[10]) == pytest.approx(10 / 64)


def test_cumulative_psd():
    psd = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    cum = stats.cumulative_psd(psd)
    np.testing.assert_allclose(cum[0].numpy(), [0.25, 0.75, 1.0])
    np.testing.assert_allclose(cum[1].numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(stats.cumulative_psd(np.array([1.0, 3.0]), normalize=False).numpy(), [1.0, 4.0])


@pytest.mark.parametrize("edges", [np.linspace(-2.0, 2.0, 17), np.array([-2.0, -1.0, -0.1, 0.0, 0.5, 2.0])])
def test_histogram_matches_numpy_with_edges_and_outliers(edges):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=5000), [-10.0, 10.0, 2.0, -2.0]])
    hist = stats.histogram(torch.from_numpy(x), torch.from_numpy(edges))
    ref, _ = np.histogram(x, edges)
    np.testing.assert_array_equal(hist.counts.numpy(), ref)
    assert int(hist.under) == int(np.sum(x < -2)) and int(hist.over) == int(np.sum(x > 2))
    assert int(hist.total) == x.size
    dens = hist.density.numpy()
    assert float(np.sum(dens * np.diff(edges))) == pytest.approx(1 - float(hist.outside), rel=1e-12)


def test_range_edges_cover_the_values_with_margin():
    x = torch.tensor([-1.0, 0.5, 3.0])
    edges = stats.range_edges(x, 8, margin=0.25)
    assert edges.shape == (9,)
    assert float(edges[0]) == pytest.approx(-2.0) and float(edges[-1]) == pytest.approx(4.0)
    hist = stats.histogram(x, edges)
    assert int(hist.counts.sum()) == 3


def test_moments_match_scipy():
    x = np.random.default_rng(2).gamma(2.0, size=(4000, 5))
    mom = stats.moments(torch.from_numpy(x))
    assert float(mom.mean) == pytest.approx(x.mean(), rel=1e-12)
    assert float(mom.std) == pytest.approx(x.std(), rel=1e-12)
    assert float(mom.kurtosis) == pytest.approx(scipy.stats.kurtosis(x.reshape(-1)), rel=1e-10)


def test_layer_psd_mean_and_sum():
    col = torch.randn(128, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    acts = torch.cat([col, col], dim=1)
    single = stats.psd_1d(col[:, 0]).psd
    torch.testing.assert_close(stats.layer_psd(acts, "mean").psd, single)
    torch.testing.assert_close(stats.layer_psd(acts, "sum").psd, 4 * single)
    with pytest.raises(ValueError, match="unknown PSD method 'median'"):
        stats.layer_psd(acts, "median")


def test_layer_psd_2d_averages_neurons_and_checks_grid():
    acts = torch.randn(16 * 8, 3, dtype=torch.float64)
    spec = stats.layer_psd_2d(acts, (16, 8))
    ref = sum(stats.psd_2d(acts[:, i].reshape(16, 8)).psd for i in range(3)) / 3
    torch.testing.assert_close(spec.psd, ref)
    with pytest.raises(ValueError, match=r"grid_shape \(10, 10\) does not match 128 samples"):
        stats.layer_psd_2d(acts, (10, 10))


def test_complex_input_is_rejected_with_a_fix():
    with pytest.raises(TypeError, match="take x.real"):
        stats.moments(torch.zeros(4, dtype=torch.complex64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_statistics_agree_on_cuda():
    x = torch.randn(4096, 16, dtype=torch.float64)
    edges = stats.uniform_edges(-3, 3, 32)
    cpu = (stats.histogram(x, edges).counts, stats.layer_psd(x).psd, stats.moments(x).kurtosis)
    gpu = (stats.histogram(x.cuda(), edges).counts, stats.layer_psd(x.cuda()).psd, stats.moments(x.cuda()).kurtosis)
    for a, b in zip(cpu, gpu):
        assert b.device.type == "cuda"
        torch.testing.assert_close(a, b.cpu())
