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
    res = _run("--model", "siren2", "--s0", "10", "--s1", "0.5", "--num-samples", "96", "--width", "16",
               "--depth", "2", "--out", str(out), "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert "N = 96 (1-D grid), parameters = 321, implementation = structured" in res.output
    assert "WINNER scales s0 = 10 (--s0), s1 = 0.5 (--s1)" in res.output
    assert "of S above 0.5 x Nyquist = k > 24 cycles per domain [-1, 1] (96 samples)" in res.output
    assert "top eigenvalues (eigh)" in res.output and "effective rank" in res.output
    assert "sum over all bins = trace(Theta)" in res.output.replace("S summed", "sum")
    assert f"open with xarray.open_dataset('{out}', engine='h5netcdf', group='ntk')" in res.output
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
    res = _run("--model", "siren", "--num-samples", "8", "--width", "4", "--out", str(out))
    assert res.exit_code == 2
    assert res.output.strip() == f"error: --out file '{out}' exists; pass --overwrite to replace it"
    assert _run("--model", "siren", "--num-samples", "8", "--width", "4", "--out", str(out), "--overwrite").exit_code == 0
    assert read_dataset(out).sizes["sample"] == 8


def test_matrix_free_run_agrees_with_dense(tmp_path):
    dense, free = tmp_path / "d.h5", tmp_path / "f.h5"
    common = ["--model", "siren", "--num-samples", "128", "--width", "16", "--depth", "2", "--dtype", "float64"]
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
    (["--num-samples", "0"], "--num-samples must be a positive integer"),
    ([], "--model siren2 needs its WINNER noise scales: give --s0 and --s1, or --target"),
    (["--s0", "3"], "--model siren2 needs its WINNER noise scales"),
    (["--model", "siren", "--target", "synthetic:low", "--grid-shape", "8x8"],
     "--grid-shape sets the grid when there is no target"),
    (["--model", "siren", "--forecast", "10"], "--forecast needs --target"),
    (["--model", "siren", "--save-eigenvectors", "3"], "add --out FILE.h5"),
    (["--model", "siren", "--plot", "/nonexistent-dir/x.png"], "does not exist; create it first"),
    (["--model", "siren", "--cut", "1.5"], "--cut must be <= 1"),
    (["--width", "-4"], "--width must be a positive integer"),
    (["--model", "siren", "--s0", "3"], "takes no argument 's0'"),
    (["--model", "siren", "--num-samples", "400000", "--dense"], "use the matrix-free route"),
    (["--model", "relu_pe", "--first-omega", "10"], "takes no argument 'first_omega'"),
    (["--s0", "nan", "--s1", "1"], "s0"),
    (["--model", "siren", "--rtol", "1e-3"], "add --top-k K"),
    (["--model", "siren", "--top-k", "4", "--rtol", "-1"], "--rtol must be >= 0"),
])
def test_bad_input_one_line_exit_2(args, message):
    res = _run(*args)
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_nan_parameters_message(monkeypatch):
    import torch

    import spectral_probe.cli.ntk as cli

    real_build = cli_build_model()

    def poisoned(*a, **kw):
        model = real_build(*a, **kw)
        with torch.no_grad():
            model.head.weight[0, 0] = float("nan")
        return model

    import spectral_probe.models as models

    monkeypatch.setattr(models, "build_model", poisoned)
    res = _run("--model", "siren", "--num-samples", "16", "--width", "8")
    assert res.exit_code == 2
    assert res.output.strip() == ("error: parameter 'head.weight' contains NaN or infinite values; "
                                  "the NTK is undefined (re-initialise or restore a finite checkpoint)")


def cli_build_model():
    from spectral_probe.models import build_model

    return build_model


def test_paths_are_checked_before_computing(tmp_path, monkeypatch):
    import spectral_probe.ntk as ntk

    def boom(*a, **kw):
        raise AssertionError("computed before checking the output paths")

    monkeypatch.setattr(ntk, "analyze_ntk", boom)
    (tmp_path / "f").write_text("x")
    res = _run("--model", "siren", "--num-samples", "8", "--out", str(tmp_path / "f" / "x.h5"))
    assert res.exit_code == 2 and "is a file, not a folder" in res.output


def test_nothing_saved_message_and_eigenvectors(tmp_path):
    res = _run("--model", "siren", "--num-samples", "40", "--width", "8", "--depth", "2")
    assert res.exit_code == 0, res.output
    assert "nothing saved: add --out FILE.h5" in res.output
    assert "WINNER scales: none (siren has no weight noise)" in res.output
    out = tmp_path / "e.h5"
    res = _run("--model", "siren", "--num-samples", "40", "--width", "8", "--depth", "2", "--dtype", "float64",
               "--out", str(out), "--save-eigenvectors", "3")
    assert res.exit_code == 0, res.output
    ds = xr.open_dataset(out, engine="h5netcdf", group="ntk").load()
    vec = ds["eigenvectors"]
    assert vec.dims == ("eigvec", "sample") and vec.shape == (3, 40)
    theta = ds["kernel"].values
    for i in range(3):   # eigenvectors of the stored kernel with the stored eigenvalues
        assert np.allclose(theta @ vec.values[i], ds["eigenvalues"].values[i] * vec.values[i],
                           atol=1e-8 * ds["eigenvalues"].values[0])
    res = _run("--model", "siren", "--num-samples", "40", "--width", "8", "--top-k", "2", "--out", str(tmp_path / "f.h5"),
               "--save-eigenvectors", "3")
    assert res.exit_code == 2 and "exceeds the 2 eigenpairs computed (raise --top-k)" in res.output


def test_target_scales_follow_train_and_forecast(tmp_path):
    from spectral_probe.training.presets import make_run

    spec, target = make_run("siren2", "synthetic:broadband", "quick", num_samples=256)
    out = tmp_path / "t.h5"
    res = _run("--target", "synthetic:broadband", "--num-samples", "256", "--width", "16", "--depth", "2",
               "--forecast", "30", "--calibrate", "5", "--out", str(out))
    assert res.exit_code == 0, res.output
    s0, s1 = spec.model_kwargs["s0"], spec.model_kwargs["s1"]
    assert f"WINNER scales s0 = {s0:.4g} (from the target's psi = {spec.psi:.4f} via Eqn 11" in res.output
    assert f"x N/150,000 = {256 / 150_000:.4g} (quick preset crop)), s1 = {s1:.4g}" in res.output
    assert "the target has" in res.output and "forecast (linearised dynamics" in res.output
    assert "learning-rate scale fitted on the first 5 epochs of an actual run" in res.output
    fc = xr.open_dataset(out, engine="h5netcdf", group="forecast").load()
    assert fc["psnr"].shape == (30,) and fc.attrs["optimizer"] == "adam"
    assert abs(float(fc["psnr"][0]) - target.zero_psnr()) < 3.0     # the initial output is small
