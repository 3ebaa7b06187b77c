"""Combining a sweep's run files into one xarray Dataset, saved to ``<outdir>/sweep.h5``.

``sweep.h5`` holds two netCDF4 groups:

* the root: the grid, one dimension per ``[grid]`` key (in order: e.g. ``model,
  target, s0, s1, seed``) plus ``epoch``; ``[fixed]`` values are scalar
  coordinates.  Variables: ``psnr`` (..., epoch) (dB, each epoch's loss before
  its update; NaN past a run's last epoch), ``best_psnr``, ``final_psnr``,
  ``zero_psnr``, ``wall_time`` (s), ``best_epoch``, ``epochs_run`` (-1 when
  missing), ``status`` (``"ok"``, ``"failed"``, ``"missing"``), ``error`` and
  ``run_id``.  A key that does not apply to a model (``s0``/``s1`` for anything
  but siren2) does not change its run: that run's values repeat along the
  key's dimension (same ``run_id``), and the attribute ``model_specific`` says
  which keys apply to which models.
* ``runs``: one row per distinct run (dimension ``run``, the run ids), each
  parameter as a coordinate along ``run`` (NaN or "" where it does not apply).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .config import SweepSpec
from .grid import RunPlan
from .params import applies_to
from .unit import is_complete, read_failure

__all__ = ["SUMMARY_VARS", "read_runs", "grid_dataset", "save_sweep", "load_sweep", "combine"]

#: 0-d summary variables copied from each run file's ``scalars`` group (name -> fill when missing)
SUMMARY_VARS: dict[str, float | int] = {"best_psnr": np.nan, "final_psnr": np.nan, "zero_psnr": np.nan,
                                        "wall_time": np.nan, "best_epoch": -1, "epochs_run": -1}


def _read_scalars(path: Path) -> tuple[dict, np.ndarray]:
    from ..store import open_run

    ds = open_run(path, "scalars")
    return {k: ds[k].item() for k in SUMMARY_VARS}, ds["psnr"].values


def _param_values(plans: list[RunPlan], key: str) -> np.ndarray:
    values = [p.params.get(key) for p in plans]
    if all(isinstance(v, str) or v is None for v in values):
        return np.array(["" if v is None else v for v in values], dtype=object)
    return np.array([np.nan if v is None else v for v in values])


def read_runs(plans: list[RunPlan], runs_dir: str | os.PathLike):
    """The table of runs: dimension ``run`` (run ids), parameters as coordinates.

    Returns
    -------
    xarray.Dataset
        ``psnr`` (run, epoch), the :data:`SUMMARY_VARS` (run), ``status`` and ``error`` (run).
    """
    import xarray as xr

    runs_dir = Path(runs_dir)
    n = len(plans)
    summary = {k: np.full(n, fill, dtype=np.int64 if isinstance(fill, int) else np.float64)
               for k, fill in SUMMARY_VARS.items()}
    status, error, curves = np.full(n, "missing", dtype=object), np.full(n, "", dtype=object), []
    for i, plan in enumerate(plans):
        path = runs_dir / f"{plan.run_id}.h5"
        curve = np.empty(0)
        if is_complete(path):
            values, curve = _read_scalars(path)
            for k, v in values.items():
                summary[k][i] = v
            status[i] = "ok"
        elif (record := read_failure(path)) is not None:
            status[i], error[i] = "failed", record.get("error", "unknown error")
        curves.append(curve)
    psnr = np.full((n, max((len(c) for c in curves), default=0)), np.nan)
    for i, curve in enumerate(curves):
        psnr[i, :len(curve)] = curve
    keys = sorted({k for p in plans for k in p.params})
    coords = {"run": np.array([p.run_id for p in plans], dtype=object),
              "epoch": np.arange(psnr.shape[1]), **{k: ("run", _param_values(plans, k)) for k in keys}}
    data = {"psnr": (("run", "epoch"), psnr, {"units": "dB", "long_name": "PSNR of each epoch's loss "
                                               "before its update"}),
            **{k: ("run", v) for k, v in summary.items()},
            "status": ("run", status), "error": ("run", error)}
    return xr.Dataset(data, coords=coords)


def _attrs(spec: SweepSpec) -> dict:
    from ..store.schema import _package_version

    models = set(spec.models)
    specific = {k: sorted(applies_to(k) & models) for k in [*spec.grid, *spec.fixed]
                if not models <= applies_to(k)}
    return {"sweep_name": spec.name, "description": spec.settings.get("description", ""),
            "grid": json.dumps(spec.grid), "fixed": json.dumps(spec.fixed),
            "model_specific": json.dumps(specific),
            "note": "keys in model_specific apply only to the models listed; other models' runs repeat "
                    "along those dimensions (same run_id)",
            "spectral_probe_version": _package_version()}


def grid_dataset(spec: SweepSpec, table, index: np.ndarray):
    """Reshape the table of runs onto the grid (see the module docstring)."""
    import xarray as xr

    dims = list(spec.grid)
    params = [k for k in table.coords if k not in ("run", "epoch")]
    picked = table.drop_vars(params).isel(run=xr.DataArray(index, dims=dims))
    picked = picked.rename({"run": "run_id"}).reset_coords("run_id")
    coords = {k: np.array(v, dtype=object) if isinstance(v[0], str) else np.array(v) for k, v in spec.grid.items()}
    grid = picked.assign_coords(coords).assign_coords({k: v for k, v in spec.fixed.items()})
    grid.attrs.update(_attrs(spec))
    return grid


def save_sweep(grid, table, path: str | os.PathLike) -> Path:
    """Write ``grid`` (root) and ``table`` (group ``runs``) to ``path`` atomically (netCDF4 via h5netcdf)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    encoding = {"psnr": {"zlib": True, "complevel": 4}}
    try:
        grid.to_netcdf(tmp, engine="h5netcdf", mode="w", encoding=encoding)
        table.to_netcdf(tmp, engine="h5netcdf", mode="a", group="runs", encoding=encoding)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_sweep(path: str | os.PathLike, table: bool = False):
    """Read a combined sweep file (or ``<outdir>``): the grid Dataset, or with ``table=True`` the runs table."""
    import xarray as xr

    path = Path(path)
    if path.is_dir():
        path = path / "sweep.h5"
    if not path.exists():
        raise FileNotFoundError(f"no combined sweep file at '{path}'; run `spectral-probe sweep` first")
    with xr.open_dataset(path, engine="h5netcdf", group="runs" if table else None) as ds:
        return ds.load()


def combine(spec: SweepSpec, plans: list[RunPlan], index: np.ndarray, outdir: str | os.PathLike):
    """Read every run file of the sweep and save ``<outdir>/sweep.h5``; returns the grid Dataset."""
    outdir = Path(outdir)
    table = read_runs(plans, outdir / "runs")
    table.attrs.update(_attrs(spec))
    grid = grid_dataset(spec, table, index)
    save_sweep(grid, table, outdir / "sweep.h5")
    return grid
