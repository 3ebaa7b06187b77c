"""NTK results as xarray Datasets, and writing them to an HDF5 group.

Dimensions: ``sample`` / ``sample2`` (kernel rows / columns), ``in_dim``
(input coordinates), ``mode`` (eigenpairs, descending), ``k`` (one-sided
frequency index, cycles per record; see :mod:`spectral_probe.ntk.spectrum`),
``epoch`` (trajectories).  Attributes hold scalars and a JSON ``config``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .analysis import NTKResult
from .eig import decay_profile
from .spectrum import high_frequency_share

__all__ = ["NORMALISATION", "ntk_dataset", "write_dataset", "read_dataset", "spectrum_coords"]

#: stored in every dataset's attrs so readers know the convention
NORMALISATION = (
    "Theta unnormalised (sum over real parameters, traced over outputs); unitary DFT over the "
    "sample axis; S(k) = sum_i lambda_i |v_hat_i(k)|^2, one-sided k = 0..N//2 in cycles per record, "
    "sum over all N bins = trace(Theta). Authors' figures: S_auth = fftshift(two_sided(S)) / N^2 "
    "against omega = 2 pi fftshift(fftfreq(N)) rad/sample; their kernel is Theta / N^2.")


def spectrum_coords(n: int) -> dict[str, tuple]:
    """Coordinates of the ``k`` axis: index ``k`` and ``omega = 2 pi k / N`` (rad/sample)."""
    k = np.arange(n // 2 + 1)
    return {"k": ("k", k), "omega": ("k", 2 * math.pi * k / n)}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def ntk_dataset(result: NTKResult, *, eigenvectors: bool = False, kernel: bool = True) -> xr.Dataset:
    """Turn an :class:`~spectral_probe.ntk.analysis.NTKResult` into a Dataset.

    Parameters
    ----------
    result
        From :func:`~spectral_probe.ntk.analyze_ntk`.
    eigenvectors
        Include the eigenvectors ``(sample, mode)`` (N x r values).
    kernel
        Include the dense kernel ``(sample, sample2)`` when there is one.

    Returns
    -------
    xr.Dataset
        Variables ``eigenvalues (mode)``, ``eigenvalues_normalized (mode)``,
        ``eigenvalues_cumulative (mode)``, ``spectrum (k)``, optionally
        ``spectrum_topk (k)``, ``kernel (sample, sample2)``, ``eigenvectors``.
    """
    n = result.n
    values = result.eigen.values.double()
    profile = decay_profile(values)
    data = {
        "eigenvalues": ("mode", _np(values)),
        "eigenvalues_normalized": ("mode", _np(profile["normalized"])),
        "eigenvalues_cumulative": ("mode", _np(profile["cumulative"])),
        "spectrum": ("k", _np(result.spectrum.double())),
    }
    if result.spectrum_topk is not None:
        data["spectrum_topk"] = ("k", _np(result.spectrum_topk.double()))
    if kernel and result.kernel is not None:
        data["kernel"] = (("sample", "sample2"), _np(result.kernel))
    if eigenvectors and result.eigen.vectors is not None:
        data["eigenvectors"] = (("sample", "mode"), _np(result.eigen.vectors))
    coords = {"x": (("sample", "in_dim"), _np(result.x)), "mode": np.arange(values.numel()),
              **spectrum_coords(n)}
    attrs = {
        "n": n, "n_params": result.n_params, "implementation": result.implementation,
        "dtype": result.dtype, "spectrum_method": result.spectrum_method,
        "eigen_method": result.eigen.method, "n_clipped": result.eigen.n_clipped,
        "min_raw_eigenvalue": result.eigen.min_raw, "roundoff_tolerance": result.eigen.tolerance,
        "effective_rank": float(profile["effective_rank"]),
        "high_frequency_share": high_frequency_share(result.spectrum, n),
        "wall_time_s": float(result.timings.get("total", float("nan"))),
        "timings": json.dumps(result.timings), "config": json.dumps(result.config, default=str),
        "normalisation": NORMALISATION,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, group: str = "ntk", *,
                  config: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``ds`` as a static group of a run file (:class:`spectral_probe.store.TrajectoryWriter`).

    Non-index coordinates (``x``, ``omega``) become data variables, since the
    run-file schema keeps only dimension coordinates.  The file is valid
    netCDF4: ``xarray.open_dataset(path, engine="h5netcdf", group=group)`` or
    :func:`spectral_probe.store.open_run` read it.

    Parameters
    ----------
    config
        Run configuration stored in the file's root attribute ``config``.
    overwrite
        Replace an existing file (otherwise an existing file raises ``FileExistsError``).

    Returns
    -------
    Path
        The file written.
    """
    from ..store import TrajectoryWriter

    extra = [name for name in ds.coords if name not in ds.dims]
    with TrajectoryWriter(path, config=config, overwrite=overwrite) as writer:
        writer.write_dataset(group, ds.reset_coords(extra))
    return Path(path)


def read_dataset(path: str | os.PathLike, group: str = "ntk") -> xr.Dataset:
    """Load a group written by :func:`write_dataset`, with ``x`` and ``omega`` as coordinates again."""
    from ..store import open_run

    ds = open_run(path, group)
    return ds.set_coords([name for name in ("x", "omega") if name in ds.data_vars])
