"""Small run-file items of issue 22 (item 9): attributes follow a resumed run, a non-HDF5 file is named as such."""

from __future__ import annotations

import h5py
import pytest

from spectral_probe.store import TrajectoryWriter, Var, open_run
from spectral_probe.store.integrity import DamagedFileError, NotHDF5Error


def test_a_resumed_run_rewrites_its_group_attributes(tmp_path):
    path = tmp_path / "run.h5"
    for epochs, resume in ((300, False), (400, True)):
        with TrajectoryWriter(path, config={"k": 1}, resume=resume) as w:
            w.declare("scalars", variables={"loss": Var((), "f8")},
                      attrs={"train_config": {"epochs": epochs}, "epochs": epochs})
            w.append("scalars", step=w.rows("scalars"), loss=float(epochs))
    with h5py.File(path, "r") as h5:
        assert h5["scalars"].attrs["epochs"] == 400
        assert h5["scalars"].attrs["train_config"] == '{"epochs": 400}'
    assert open_run(path)["scalars"]["loss"].values.tolist() == [300.0, 400.0]


@pytest.mark.parametrize("head, kind", [(b"RIFF\x24\x08\x00\x00WAVEfmt ", "a WAV audio file"),
                                        (b"\x89PNG\r\n\x1a\n", "a PNG image")])
def test_a_file_that_is_not_hdf5_is_not_called_damaged(tmp_path, head, kind):
    path = tmp_path / "stereo.wav"
    path.write_bytes(head)
    with pytest.raises(NotHDF5Error) as info:
        open_run(path)
    assert isinstance(info.value, DamagedFileError)          # every reader's refusal path still applies
    assert str(info.value) == (f"'{path}' is not an HDF5 run file ({kind}); pass a run file written by "
                               "spectral-probe train (.h5)")
    with pytest.raises(NotHDF5Error, match="not an HDF5 run file"):
        TrajectoryWriter(path, config={"k": 1}, resume=True)
    assert path.read_bytes() == head and sorted(p.name for p in tmp_path.iterdir()) == ["stereo.wav"]
