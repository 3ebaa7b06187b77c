"""NTK snapshots as a training probe (trajectory of S(k) for Fig 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from spectral_probe.models import build_model
from spectral_probe.ntk import spectrum_without_kernel
from spectral_probe.ntk.probe import NTKSnapshot
from spectral_probe.signals import Target
from spectral_probe.training.recorder import TrainingRecorder
from spectral_probe.store import TrajectoryWriter, open_run
from spectral_probe.training import fit


def _target(n=64):
    t = np.linspace(-1, 1, n)
    return Target(values=torch.tensor(np.sin(8 * np.pi * t), dtype=torch.float32)[:, None], grid_shape=(n,))


def test_snapshots_every_m_epochs_and_dataset(tmp_path):
    model = build_model("siren2", width=16, depth=2, s0=5.0, s1=0.2, seed=0)
    target = _target()
    seen = []
    model.layers[0].pre.register_forward_hook(lambda m, i, o: seen.append(1))
    path = tmp_path / "run.h5"
    with TrajectoryWriter(path, config={"test": 1}) as writer:
        snap = NTKSnapshot(every=3, top_k=4, writer=writer)
        fit(model, target, epochs=7, lr=1e-3, device="cpu", probes=[snap, TrainingRecorder(writer)])
    assert snap.epochs == [0, 3, 6]
    # hooks of other probes fire during training but never inside the NTK computation: exactly the
    # forwards of the same fit without snapshots (output-shape check, 7 full-batch epochs, final
    # evaluation = 9); with pausing broken the 3 snapshots add 6 more
    baseline = build_model("siren2", width=16, depth=2, s0=5.0, s1=0.2, seed=0)
    plain = []
    baseline.layers[0].pre.register_forward_hook(lambda m, i, o: plain.append(1))
    fit(baseline, target, epochs=7, lr=1e-3, device="cpu")
    assert len(seen) == len(plain) == 9
    ds = snap.to_dataset()
    assert ds["spectrum"].dims == ("epoch", "k") and ds.sizes["k"] == 33
    assert ds["eigenvalues"].shape == (3, 4)
    # the epoch-0 snapshot is the initial model's spectrum; training changes it
    fresh = build_model("siren2", width=16, depth=2, s0=5.0, s1=0.2, seed=0)
    direct = spectrum_without_kernel(fresh, target.coords()).values.numpy()
    assert np.allclose(ds["spectrum"].isel(epoch=0).values, direct, rtol=1e-6)
    assert not np.allclose(ds["spectrum"].isel(epoch=2).values, direct, rtol=1e-3)
    back = xr.open_dataset(path, engine="h5netcdf", group="ntk").load()
    assert back["spectrum"].shape == (3, 33) and list(back["step"].values) == [0, 3, 6]
    assert np.allclose(back["spectrum"].values, ds["spectrum"].values)
    assert np.allclose(back["eigenvalues"].values, ds["eigenvalues"].values)
    assert open_run(path, "scalars")["loss"].shape == (7,)
    fig4 = snap.log1p_authors()
    assert fig4.dims == ("epoch", "omega") and fig4.shape == (3, 64)
    assert float(fig4.omega.min()) == pytest.approx(-np.pi)


def test_bad_arguments():
    with pytest.raises(ValueError, match="every must be a positive integer"):
        NTKSnapshot(every=0)
    with pytest.raises(ValueError, match="top_k"):
        NTKSnapshot(top_k=-1)
