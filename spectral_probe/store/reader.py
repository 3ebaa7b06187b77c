"""Reading run files (live or finished) into xarray, and repairing files left by killed writers."""

from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py

from .filelock import writer_alive
from .schema import COMMITTED, STATUS, STATUS_FAILED, STATUS_WRITING, STEP, check_schema, io_error, read_layout

__all__ = ["open_run", "read_config", "list_groups", "needs_recovery", "recover"]


@contextmanager
def _open_read(path: str | os.PathLike) -> Iterator[h5py.File]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"no run file at '{path}'")
    try:
        h5 = h5py.File(path, "r", swmr=True)
    except OSError:
        try:
            h5 = h5py.File(path, "r")
        except OSError as exc:
            raise io_error(exc, "read", path) from exc
    try:
        check_schema(h5, path)
        yield h5
    finally:
        h5.close()


def list_groups(h5: h5py.File) -> list[str]:
    """Names of the groups (trajectory or static) in an open run file."""
    return [name for name, obj in h5.items() if isinstance(obj, h5py.Group)]


def _dataset(h5: h5py.File, group: str | None):
    import h5netcdf
    import xarray as xr

    node = h5 if group is None else h5[group]
    # read the commit count *before* the data: rows below it were flushed before it was raised
    committed = int(node[COMMITTED][()]) if COMMITTED in node else None
    nc = h5netcdf.File(h5, "r")
    try:
        store = xr.backends.H5NetCDFStore(nc, group=group)
        ds = xr.open_dataset(store).load()
    finally:
        nc.close()
    if committed is not None:
        ds = ds.drop_vars(COMMITTED)
        if STEP in ds.dims:
            ds = ds.isel({STEP: slice(0, committed)})
    return ds


def open_run(path: str | os.PathLike, group: str | None = None):
    """Read a run file, live or finished, into memory.

    Parameters
    ----------
    path
        The run file.
    group
        A group name for one ``xarray.Dataset``; None for an ``xarray.DataTree``
        with the root (attributes, ``run_status``) and every group.

    Returns
    -------
    xarray.Dataset or xarray.DataTree
        Trajectory groups hold only committed rows (dimension ``step``).
    """
    import xarray as xr

    with _open_read(path) as h5:
        groups = list_groups(h5)
        if group is not None:
            if group not in groups:
                raise ValueError(f"run file '{path}' has no group {group!r}; groups: {', '.join(groups) or 'none'}")
            return _dataset(h5, group)
        tree = {"/": _dataset(h5, None)}
        for name in groups:
            tree[f"/{name}"] = _dataset(h5, name)
    return xr.DataTree.from_dict(tree)


def read_config(path: str | os.PathLike) -> dict:
    """The run configuration stored in the root attribute ``config``."""
    with _open_read(path) as h5:
        return json.loads(h5.attrs.get("config", "{}"))


# --------------------------------------------------------------------------- recovery
def needs_recovery(path: str | os.PathLike) -> bool:
    """True when ``path`` was left open by a writer that is gone (only SWMR readers can open it)."""
    try:
        with h5py.File(path, "r"):
            return False
    except OSError:
        pass
    with _open_read(path):
        pass
    return not writer_alive(Path(path))


def recover(path: str | os.PathLike) -> bool:
    """Rewrite a run file left by a killed writer so that every HDF5 tool opens it.

    The committed rows (and static data, attributes) are copied to a new file
    that then replaces ``path`` atomically.  Returns False when nothing had to be done.

    Raises
    ------
    OSError
        If a writer process still holds the file.
    """
    path = Path(path)
    if writer_alive(path):
        raise OSError(errno.EBUSY, f"run file '{path}' is in use (a writer is running or a reader holds it "
                      "open); recover it once that process has ended")
    try:
        with h5py.File(path, "r"):
            return False
    except OSError:
        pass
    with _open_read(path) as h5:
        root_attrs = {k: h5.attrs[k] for k in h5.attrs}
        status = int(h5[STATUS][()]) if STATUS in h5 else STATUS_FAILED
        groups = {name: (_dataset(h5, name), read_layout(h5[name]), dict(h5[name].attrs))
                  for name in list_groups(h5)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.recover")
    tmp.unlink(missing_ok=True)
    from .writer import TrajectoryWriter

    writer = TrajectoryWriter(tmp, json.loads(root_attrs.get("config", "{}")))
    for key, value in root_attrs.items():
        writer._h5.attrs[key] = value
    for name, (ds, layout, attrs) in groups.items():
        coords = {d: ds[d].values for d in layout.sizes if d in ds}
        writer.declare(name, variables=layout.variables, coords=coords,
                       attrs={k: v for k, v in attrs.items() if not k.startswith("_")})
    for name, (ds, layout, _attrs) in groups.items():
        for var in layout.variables:
            if not layout.variables[var].trajectory:
                writer.put(name, var, ds[var].values)
    writer.start()
    for name, (ds, layout, _attrs) in groups.items():
        if STEP in ds.dims and ds.sizes[STEP]:
            writer.append(name, ds[STEP].values, **{v: ds[v].values for v in layout.trajectory})
    writer.close(status=STATUS_FAILED if status == STATUS_WRITING else status)
    os.replace(tmp, path)
    return True
