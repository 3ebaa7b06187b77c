"""NTK results as xarray Datasets, and writing them to an HDF5 group.

Dimensions: ``sample`` / ``sample2`` (kernel rows / columns), ``in_dim``
(input coordinates), ``mode`` (eigenpairs, descending), ``eigvec`` (the saved
eigenvectors: the first ``K`` modes), ``k`` (one-sided frequency index, cycles
per record; see :mod:`spectral_probe.ntk.spectrum`) on 1-D grids, or
``k_row``/``k_col`` (the unshifted 2-D DFT, :mod:`spectral_probe.ntk.spectrum2d`)
and ``k_radial`` (annuli) on 2-D grids, ``epoch`` (trajectories).  Attributes
hold scalars, ``grid_shape`` and a JSON ``config``.
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
from .spectrum2d import grid_frequencies, radial_profile

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


def _spectrum_vars(result: NTKResult) -> tuple[dict, dict]:
    grid = result.grid_shape
    if len(grid) == 1:
        data = {"spectrum": ("k", _np(result.spectrum.double()))}
        if result.spectrum_topk is not None:
            data["spectrum_topk"] = ("k", _np(result.spectrum_topk.double()))
        return data, spectrum_coords(result.n)
    kr, kc = grid_frequencies(grid)
    rho, radial = radial_profile(result.spectrum)
    data = {"spectrum2d": (("k_row", "k_col"), _np(result.spectrum.double())),
            "spectrum_radial": ("k_radial", _np(radial))}
    if result.spectrum_topk is not None:
        data["spectrum2d_topk"] = (("k_row", "k_col"), _np(result.spectrum_topk.double()))
        data["spectrum_radial_topk"] = ("k_radial", _np(radial_profile(result.spectrum_topk)[1]))
    return data, {"k_row": _np(kr), "k_col": _np(kc), "k_radial": np.arange(rho.numel()),
                  "rho": ("k_radial", _np(rho))}


def ntk_dataset(result: NTKResult, *, eigenvectors: bool | int = False, kernel: bool = True,
                cutoff: float = 0.5) -> xr.Dataset:
    """Turn an :class:`~spectral_probe.ntk.analysis.NTKResult` into a Dataset.

    Parameters
    ----------
    result
        From :func:`~spectral_probe.ntk.analyze_ntk`.
    eigenvectors
        ``K`` (int): store the top-``K`` eigenvectors as ``eigenvectors (eigvec, sample)``;
        ``True``: all available.  Unit vectors, samples in grid order.
    kernel
        Include the dense kernel ``(sample, sample2)`` when there is one.
    cutoff
        Fraction of Nyquist for the ``high_frequency_share`` attribute.

    Returns
    -------
    xr.Dataset
        Variables ``eigenvalues (mode)``, ``eigenvalues_normalized (mode)``,
        ``eigenvalues_cumulative (mode)``, the spectrum (1-D: ``spectrum (k)``;
        2-D: ``spectrum2d (k_row, k_col)`` and ``spectrum_radial (k_radial)``),
        optionally the top-k spectra, ``kernel (sample, sample2)``, ``eigenvectors``.
    """
    n = result.n
    values = result.eigen.values.double()
    profile = decay_profile(values)
    spec_data, spec_coords = _spectrum_vars(result)
    data = {
        "eigenvalues": ("mode", _np(values)),
        "eigenvalues_normalized": ("mode", _np(profile["normalized"])),
        "eigenvalues_cumulative": ("mode", _np(profile["cumulative"])),
        **spec_data,
    }
    if kernel and result.kernel is not None:
        data["kernel"] = (("sample", "sample2"), _np(result.kernel))
    coords = {"x": (("sample", "in_dim"), _np(result.x)), "mode": np.arange(values.numel()), **spec_coords}
    count = values.numel() if eigenvectors is True else int(eigenvectors or 0)
    if count and result.eigen.vectors is not None:
        count = min(count, result.eigen.vectors.shape[1])
        data["eigenvectors"] = (("eigvec", "sample"), _np(result.eigen.vectors[:, :count].T))
        coords["eigvec"] = np.arange(count)
    attrs = {
        "n": n, "n_params": result.n_params, "implementation": result.implementation,
        "dtype": result.dtype, "spectrum_method": result.spectrum_method,
        "eigen_method": result.eigen.method, "n_clipped": result.eigen.n_clipped,
        "min_raw_eigenvalue": result.eigen.min_raw, "roundoff_tolerance": result.eigen.tolerance,
        "effective_rank": float(profile["effective_rank"]),
        "modes_90": int(profile["modes_90"]), "modes_99": int(profile["modes_99"]),
        "high_frequency_share": result.high_frequency_share(cutoff),
        "high_frequency_cutoff": float(cutoff), "grid_shape": list(result.grid_shape),
        "wall_time_s": float(result.timings.get("total", float("nan"))),
        "timings": json.dumps(result.timings), "config": json.dumps(result.config, default=str),
        "normalisation": NORMALISATION,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_dataset(ds: xr.Dataset | dict[str, xr.Dataset], path: str | os.PathLike, group: str = "ntk", *,
                  config: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``ds`` as a static group of a run file (:class:`spectral_probe.store.TrajectoryWriter`).

    Non-index coordinates (``x``, ``omega``) become data variables, since the
    run-file schema keeps only dimension coordinates.  The file is valid
    netCDF4: ``xarray.open_dataset(path, engine="h5netcdf", group=group)`` or
    :func:`spectral_probe.store.open_run` read it.

    Parameters
    ----------
    ds
        One Dataset (written to ``group``) or ``{group: Dataset}`` for several groups.
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

    groups = ds if isinstance(ds, dict) else {group: ds}
    with TrajectoryWriter(path, config=config, overwrite=overwrite) as writer:
        for name, one in groups.items():
            extra = [c for c in one.coords if c not in one.dims]
            writer.write_dataset(name, one.reset_coords(extra))
    return Path(path)


def read_dataset(path: str | os.PathLike, group: str = "ntk") -> xr.Dataset:
    """Load a group written by :func:`write_dataset`, with ``x``, ``omega``, ``rho`` as coordinates again."""
    from ..store import open_run

    ds = open_run(path, group)
    return ds.set_coords([name for name in ("x", "omega", "rho") if name in ds.data_vars])
