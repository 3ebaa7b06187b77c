"""``spectral-probe ntk``: summary, HDF5 output readable by xarray, one-line errors with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.ntk.dataset import read_dataset


def _run(*args):
    return CliRunner().invoke(main, ["ntk", *args])


def test_dense_run_writes_xarray_readable_file(tmp_path):
    out, png = tmp_path / "ntk.h5", tmp_path / "ntk.png"
    res = _run("--model", "siren2", "--s0", "10", "--s1", "0.5", "--n", "96", "--width", "16",
               "--depth", "2", "--out", str(out), "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert "N = 96, parameters = 321, implementation = structured" in res.output
    assert "above half-Nyquist" in res.output and "top eigenvalues (eigh)" in res.output
    ds = xr.open_dataset(out, engine="h5netcdf", group="ntk").load()
    assert ds["kernel"].shape == (96, 96) and ds.sizes["k"] == 49 and ds.sizes["mode"] == 96
    # Parseval: two-sided S(k) sums to trace(Theta) = sum of eigenvalues
    s = ds["spectrum"].values
    assert 2 * s.sum() - s[0] - s[-1] == pytest.approx(np.trace(ds["kernel"].values), rel=1e-5)
    assert ds.attrs["n_params"] == 321 and '"s0": 10.0' in ds.attrs["config"]
    assert png.stat().st_size > 10_000
    again = read_dataset(out)
    assert again["x"].dims == ("sample", "in_dim") and "x" in again.coords
    assert np.allclose(again["omega"].values, 2 * np.pi * np.arange(49) / 96)
    res = _run("--n", "8", "--width", "4", "--out", str(out))
    assert res.exit_code == 2
    assert res.output.strip() == f"error: --out file '{out}' exists; pass --overwrite to replace it"
    assert _run("--n", "8", "--width", "4", "--out", str(out), "--overwrite").exit_code == 0
    assert read_dataset(out).sizes["sample"] == 8


def test_matrix_free_run_agrees_with_dense(tmp_path):
    dense, free = tmp_path / "d.h5", tmp_path / "f.h5"
    common = ["--model", "siren", "--n", "128", "--width", "16", "--depth", "2", "--dtype", "float64"]
    assert _run(*common, "--out", str(dense)).exit_code == 0
    res = _run(*common, "--top-k", "6", "--out", str(free))
    assert res.exit_code == 0, res.output
    assert "top-6 modes hold" in res.output
    d = xr.open_dataset(dense, engine="h5netcdf", group="ntk").load()
    f = xr.open_dataset(free, engine="h5netcdf", group="ntk").load()
    assert "kernel" not in f and f.sizes["mode"] == 6
    assert np.allclose(f["eigenvalues"].values, d["eigenvalues"].values[:6], rtol=1e-8)
    atol = 1e-10 * d["spectrum"].max().item()
    assert np.allclose(f["spectrum"].values, d["spectrum"].values, rtol=1e-8, atol=atol)


@pytest.mark.parametrize("args,message", [
    (["--model", "foo"], "unknown model 'foo'"),
    (["--n", "0"], "--n must be a positive integer"),
    (["--width", "-4"], "--width must be a positive integer"),
    (["--model", "siren", "--s0", "3"], "takes no argument 's0'"),
    (["--n", "400000"], "use the matrix-free route"),
    (["--model", "relu_pe", "--omega0", "10"], "has no omega parameter"),
    (["--s0", "nan"], "s0"),
    (["--rtol", "1e-3"], "add --top-k K"),
    (["--top-k", "4", "--rtol", "-1"], "--rtol must be a finite number >= 0"),
])
def test_bad_input_one_line_exit_2(args, message):
    res = _run(*args)
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_nan_parameters_message(monkeypatch):
    import torch

    import spectral_probe.cli.ntk as cli

    real_build = cli.build_model

    def poisoned(*a, **kw):
        model = real_build(*a, **kw)
        with torch.no_grad():
            model.head.weight[0, 0] = float("nan")
        return model

    monkeypatch.setattr(cli, "build_model", poisoned)
    res = _run("--n", "16", "--width", "8")
    assert res.exit_code == 2
    assert res.output.strip() == ("error: parameter 'head.weight' contains NaN or infinite values; "
                                  "the NTK is undefined (re-initialise or restore a finite checkpoint)")
