"""Linearised-dynamics forecast (Eqns 3-4): closed forms, Lanczos vs eigh, a model that is exactly linear."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from torch import nn

from spectral_probe.models import build_model
from spectral_probe.ntk import count_parameters, empirical_ntk, ntk_eigh, ntk_operator
from spectral_probe.ntk.eig import NTKEigen
from spectral_probe.ntk.forecast import (fit_lr_scale, forecast_fit, linearised_forecast, lr_schedule)
from spectral_probe.ntk.measure import lanczos_measure, measure_from_eigen
from spectral_probe.ntk.probe import NTKSnapshot
from spectral_probe.signals import Target
from spectral_probe.training import fit


def _psd(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = torch.logspace(3, -4, n, dtype=torch.float64)
    return q, lam, q @ torch.diag(lam) @ q.T


def test_gd_forecast_is_the_matrix_exponential():
    n = 40
    q, lam, theta = _psd(n)
    r0 = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    measure = measure_from_eigen(NTKEigen(lam, q, 0, 0.0, 0.0, "eigh"), r0)
    lrs = lr_schedule(0.3, 60, step=20, gamma=0.5)
    fc = linearised_forecast(measure, lrs, n_params=10, optimizer="gd")
    tau = np.concatenate([[0.0], np.cumsum(lrs)])[:-1]
    for e in (0, 7, 25, 59):
        r = expm(-2 * theta.numpy() * tau[e] / n) @ r0.numpy()       # Eqn 3 with t = tau / N
        assert fc.mse[e] == pytest.approx(float(r @ r) / n, rel=1e-10)
        assert fc.psnr[e] == pytest.approx(10 * math.log10(n / float(r @ r)), abs=1e-9)
    assert np.allclose(fc.tau, tau) and np.allclose(fc.eta, lrs)


def test_adam_first_step_normalises_the_gradient():
    n, p = 30, 123
    q, lam, theta = _psd(n, seed=2)
    r0 = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    measure = measure_from_eigen(NTKEigen(lam, q, 0, 0.0, 0.0, "eigh"), r0)
    fc = linearised_forecast(measure, [1e-3] * 5, n_params=p, optimizer="adam", eps=0.0)
    grad_norm = 2 / n * math.sqrt(float(r0 @ theta @ r0))            # |dL/dtheta| of the linear model
    # Adam's first step moves every parameter by lr: |step| = lr sqrt(P) = eta |g|
    assert fc.eta[0] == pytest.approx(1e-3 * math.sqrt(p) / grad_norm, rel=1e-12)


def test_lanczos_measure_matches_eigh_and_reports_its_gap():
    model = build_model("siren2", width=16, depth=2, s0=5.0, s1=0.5, seed=0)
    x = torch.linspace(-1, 1, 64, dtype=torch.float64)[:, None]
    y = torch.sin(9 * math.pi * x[:, 0]) + 0.3 * torch.sin(40 * math.pi * x[:, 0])
    with torch.no_grad():
        r0 = y - model.double()(x)[:, 0]
    eig = ntk_eigh(empirical_ntk(model, x))
    lrs = lr_schedule(1e-4, 200)
    p = count_parameters(model)
    exact = linearised_forecast(measure_from_eigen(eig, r0), lrs, n_params=p)
    full = linearised_forecast(lanczos_measure(ntk_operator(model, x), r0, 64), lrs, n_params=p)
    assert np.max(np.abs(full.psnr - exact.psnr)) < 1e-6
    assert np.nanmax(np.abs(full.band_remaining - exact.band_remaining)) < 1e-6
    short = linearised_forecast(lanczos_measure(ntk_operator(model, x), r0, 12), lrs, n_params=p)
    assert short.lanczos_gap_db is not None and short.lanczos_gap_db >= 0
    assert np.max(np.abs(short.psnr - exact.psnr)) < 0.5


def test_forecast_equals_training_when_the_model_is_linear():
    """Only the head trains: the output is linear in the parameters, the NTK constant, Eqn 3 exact."""
    model = build_model("siren", width=24, depth=2, seed=0).double()
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("head"))
    n = 80
    x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    y = torch.sin(3 * math.pi * x)
    eig = ntk_eigh(empirical_ntk(model, x))
    with torch.no_grad():
        r0 = (y - model(x))[:, 0]
    lr = 0.01 * n / float(eig.values[0])            # 2 lr lambda_max / N << 1: discrete GD ~ the flow
    fc = linearised_forecast(measure_from_eigen(eig, r0), [lr] * 40, n_params=count_parameters(model),
                             optimizer="gd")
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    actual = []
    for _ in range(40):
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        actual.append(10 * math.log10(1 / float(loss)))
        loss.backward()
        opt.step()
    assert np.max(np.abs(np.array(actual) - fc.psnr)) < 0.02


def test_band_map_and_t90():
    n = 128
    k = torch.arange(n, dtype=torch.float64)
    # two orthogonal Fourier modes, one in band 0 learned fast, one in band 3 never learned
    low = torch.cos(2 * math.pi * 3 * k / n)
    high = torch.cos(2 * math.pi * 40 * k / n)
    basis = torch.stack([low / low.norm(), high / high.norm()], 1)
    q, _ = torch.linalg.qr(torch.cat([basis, torch.randn(n, n - 2, dtype=torch.float64)], 1))
    q[:, :2] = basis
    lam = torch.zeros(n, dtype=torch.float64)
    lam[0] = 50.0
    r0 = low + high
    fc = linearised_forecast(measure_from_eigen(NTKEigen(lam, q, 0, 0.0, 0.0, "eigh"), r0), [1.0] * 30,
                             n_params=1, optimizer="gd", bands=4, band_points=30)
    assert fc.band_remaining[0, 0] == pytest.approx(1.0) and fc.band_remaining[0, 2] == pytest.approx(1.0)
    assert np.isnan(fc.band_remaining[0, 1]) and np.isnan(fc.band_remaining[0, 3])
    # band 0: exp(-4 * 50 * e / 128) <= 0.1 from e = 2
    assert fc.band_t90[0] == 2 and fc.band_t90[2] == -1
    assert fc.band_remaining[-1, 2] == pytest.approx(1.0)


def test_fit_lr_scale_recovers_a_known_scale():
    n = 50
    q, lam, _ = _psd(n, seed=4)
    r0 = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    m = measure_from_eigen(NTKEigen(lam, q, 0, 0.0, 0.0, "eigh"), r0)
    lrs = lr_schedule(1e-3, 40)
    truth = linearised_forecast(m, lrs, n_params=77, lr_scale=3.7)
    assert fit_lr_scale(m, lrs, truth.psnr, n_params=77, fit_epochs=20) == pytest.approx(3.7, rel=1e-2)


def test_forecast_fit_and_snapshot_forecasts_start_at_the_actual_psnr():
    n = 96
    t = np.linspace(-1, 1, n)
    target = Target(torch.tensor(np.sin(6 * np.pi * t), dtype=torch.float32)[:, None], (n,))
    model = build_model("siren", width=16, depth=2, seed=0)
    fc = forecast_fit(model, target, epochs=12)
    assert fc.measure.method == "eigenpairs" and fc.psnr.shape == (12,)
    snap = NTKSnapshot(every=4, forecast=6, lanczos_steps=96)
    run = fit(model, target, epochs=9, lr=1e-3, device="cpu", probes=[snap])
    ds = snap.to_dataset()
    assert ds["forecast_psnr"].dims == ("epoch", "horizon") and ds["forecast_psnr"].shape == (3, 6)
    # horizon 0 is the model at the snapshot: the PSNR the run measured at that epoch
    for i, epoch in enumerate(ds["epoch"].values):
        assert ds["forecast_psnr"].values[i, 0] == pytest.approx(run.history["psnr"][epoch], abs=1e-3)
    assert fc.psnr[0] == pytest.approx(run.history["psnr"][0], abs=1e-3)


def test_forecast_refuses_multichannel_targets():
    target = Target(torch.zeros(16, 3), (16,))
    with pytest.raises(ValueError, match="single-channel"):
        forecast_fit(build_model("siren", width=4, depth=1, out_features=3, seed=0), target, epochs=3)
    with pytest.raises(ValueError, match="unknown optimizer"):
        linearised_forecast(measure_from_eigen(NTKEigen(torch.ones(2, dtype=torch.float64),
                                                        torch.eye(2, dtype=torch.float64), 0, 0.0, 0.0, "eigh"),
                                               torch.ones(2)), [1.0], n_params=1, optimizer="sgd")


def test_measure_with_top_k_keeps_the_rest_frozen():
    n = 20
    q, lam, _ = _psd(n, seed=6)
    r0 = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    m = measure_from_eigen(NTKEigen(lam[:5], q[:, :5], 0, 0.0, 0.0, "lanczos"), r0)
    assert m.nodes.numel() == 6 and float(m.nodes[-1]) == 0.0
    assert m.residual_norm2 == pytest.approx(float(r0 @ r0), rel=1e-12)
    fc = linearised_forecast(m, [1e9] * 3, n_params=1, optimizer="gd")
    rest = float(r0 @ r0) - float(((q[:, :5].T @ r0) ** 2).sum())
    assert fc.mse[-1] == pytest.approx(rest / n, rel=1e-9)     # the top modes are gone, the rest stays


def test_tiny_nn_linear_regression_check():
    # a plain nn.Linear on fixed inputs: its NTK is x x^T + 1 (sanity of the whole chain)
    lin = nn.Linear(3, 1).double()
    x = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    theta = empirical_ntk(nn.Sequential(lin), x)
    assert torch.allclose(theta, x @ x.T + 1)
