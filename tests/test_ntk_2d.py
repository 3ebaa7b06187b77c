"""S(k) on 2-D grids: every route against the explicit 2-D DFT matrix, radial profile, CLI --grid-shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.models import build_model
from spectral_probe.ntk import analyze_ntk, empirical_ntk, ntk_eigh, ntk_operator, spectrum_without_kernel
from spectral_probe.ntk.dataset import ntk_dataset
from spectral_probe.ntk.operator import spectrum_from_operator
from spectral_probe.ntk.spectrum2d import (high_frequency_share_2d, radial_frequency, radial_profile,
                                           spectrum2d_from_eigenpairs, spectrum2d_from_kernel)
from spectral_probe.signals import grid_coords


def brute_force_2d(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """diag(F2 Theta F2^H) with the unitary 2-D DFT matrix of a row-major H x W grid."""
    n = h * w
    r, c = torch.arange(n) // w, torch.arange(n) % w
    f = torch.exp(-2j * math.pi * (r[:, None].double() * r[None, :] / h + c[:, None].double() * c[None, :] / w))
    f = f / math.sqrt(n)
    return torch.diagonal(f @ theta.to(torch.complex128) @ f.conj().T).real.reshape(h, w)


@pytest.mark.parametrize("name,kw", [("siren2", dict(s0=5.0, s1=0.5)), ("wire", {}), ("relu_pe", {})])
def test_every_route_matches_the_2d_dft(name, kw):
    h, w = 6, 5
    model = build_model(name, in_features=2, width=12, depth=2, seed=0, **kw)
    x = grid_coords((h, w), dtype=torch.float64)
    theta = empirical_ntk(model, x, dtype=torch.float64)
    ref = brute_force_2d(theta, h, w)
    eig = ntk_eigh(theta)
    scale = float(ref.abs().max())
    routes = {
        "eigenpairs": spectrum2d_from_eigenpairs(eig.values, eig.vectors, (h, w)),
        "kernel": spectrum2d_from_kernel(theta, (h, w), block=7),
        "factors": spectrum_without_kernel(model, x, dtype=torch.float64, grid_shape=(h, w)).values,
        "products": spectrum_from_operator(ntk_operator(model, x, implementation="ntvp", dtype=torch.float64),
                                           (h, w), block=4),
    }
    for route, s in routes.items():
        assert s.shape == (h, w), route
        assert float((s - ref).abs().max()) < 1e-11 * scale, route
    assert float(ref.sum()) == pytest.approx(float(theta.trace()), rel=1e-12)   # total over all bins = trace


def test_radial_profile_and_share():
    s = torch.rand(8, 12, dtype=torch.float64)
    rho, prof = radial_profile(s)
    assert float(prof.sum()) == pytest.approx(float(s.sum()), rel=1e-12)
    assert rho[1] == pytest.approx(2 / 8) and float(rho[-1]) <= math.sqrt(2) + 2 / 8
    r = radial_frequency((8, 12))
    assert float(r[0, 0]) == 0 and float(r[4, 0]) == pytest.approx(1.0) and float(r[0, 6]) == pytest.approx(1.0)
    assert high_frequency_share_2d(s, 0.5) == pytest.approx(float(s[r > 0.5].sum() / s.sum()))
    _, mean = radial_profile(s, mean=True)
    assert float(mean[0]) == pytest.approx(float(s[0, 0]))


def test_analyze_2d_dense_and_matrix_free_agree_and_dataset():
    h, w = 8, 7
    model = build_model("siren2", in_features=2, width=16, depth=2, s0=8.0, s1=0.4, seed=1)
    x = grid_coords((h, w), dtype=torch.float64)
    dense = analyze_ntk(model, x, dtype=torch.float64, grid_shape=(h, w))
    free = analyze_ntk(model, x, dtype=torch.float64, grid_shape=(h, w), top_k=5)
    assert dense.spectrum.shape == (h, w) and dense.grid_shape == (h, w)
    assert torch.allclose(free.spectrum, dense.spectrum, rtol=1e-9, atol=1e-12 * float(dense.spectrum.max()))
    ds = ntk_dataset(dense, eigenvectors=3)
    assert ds["spectrum2d"].dims == ("k_row", "k_col") and ds["spectrum_radial"].dims == ("k_radial",)
    assert float(ds["spectrum_radial"].sum()) == pytest.approx(float(dense.kernel.trace()), rel=1e-10)
    assert list(ds["k_row"].values[:5]) == [0, 1, 2, 3, -4]
    assert ds["eigenvectors"].dims == ("eigvec", "sample") and ds.sizes["eigvec"] == 3
    assert ds.attrs["grid_shape"] == [h, w]
    with pytest.raises(ValueError, match="does not match"):
        analyze_ntk(model, x, grid_shape=(5, 5))


def test_cli_grid_writes_2d_spectrum(tmp_path):
    out = tmp_path / "g.h5"
    res = CliRunner().invoke(main, ["ntk", "--model", "siren", "--grid-shape", "8x6", "--width", "16", "--depth", "2",
                                    "--out", str(out), "--plot", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    assert "grid: 8x6 on [-1, 1]^2" in res.output and "radial frequency 0.5 x Nyquist" in res.output
    ds = xr.open_dataset(out, engine="h5netcdf", group="ntk").load()
    assert ds["spectrum2d"].shape == (8, 6)
    assert np.isclose(ds["spectrum2d"].sum(), np.trace(ds["kernel"].values), rtol=1e-5)
    assert (tmp_path / "g.png").stat().st_size > 10_000
    bad = CliRunner().invoke(main, ["ntk", "--model", "siren", "--grid-shape", "8by6"])
    assert bad.exit_code == 2 and "--grid-shape expects HxW" in bad.output
