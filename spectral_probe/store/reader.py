"""Reading run files (live, finished or left by a killed writer) into xarray, after integrity checks."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from .filelock import writer_alive
from .guard import validate
from .integrity import DamagedFileError, check_committed, check_file, open_h5, read_superblock
from .schema import (COMMITTED, INTERNAL_ATTRS, STEP, check_run_kind, check_schema, from_stored, list_groups,
                     scale_name)

__all__ = ["open_run", "read_config", "list_groups", "needs_recovery", "open_checked", "verify_run",
           "CHECKPOINT_GROUP", "CHECKPOINT_DATA"]

#: the group of model/optimizer/RNG checkpoints and its (large) byte variable, read only on request
CHECKPOINT_GROUP, CHECKPOINT_DATA = "checkpoints", "state"


@contextmanager
def open_checked(path: str | os.PathLike, *, run: bool = False, unsealed: bool = False) -> Iterator[h5py.File]:
    """Open a run file for reading once it passed the integrity checks.

    The checks: truncation (:func:`~spectral_probe.store.integrity.check_file`), then a
    walk of the whole structure in a forked child with a time limit (schema, digests of
    every value without a checksum of its own, committed rows; :mod:`~spectral_probe.store.guard`),
    so that no read in this process can hang.  ``run=True`` also refuses a file that is
    not a training run (an ``ntk --out`` or ``probe --out`` file), naming what it is;
    ``unsealed=True`` accepts a closed file whose digests are missing (for ``recover``).
    A file whose writer still holds the lock and that fails a check is looked at again for
    up to :data:`LIVE_SETTLE_S` seconds (the writer may be closing and sealing it).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    DamagedFileError
        (an ``OSError``) The file is truncated, corrupted or inconsistent.
    ValueError
        The file is not a spectral-probe run file, or a newer schema.
    """
    path = Path(path)
    settle_until = None
    while True:
        alive = writer_alive(path)
        stack = ExitStack()
        try:
            check_file(path)
            validate(path, alive, unsealed=unsealed)
            h5 = stack.enter_context(open_h5(path, writer_alive=alive))
            _check_open(h5, path, run)
            break
        except DamagedFileError:
            stack.close()
            # A live writer's file passes through states a reader must not call damaged: between
            # the end of SWMR and the closing digests (TrajectoryWriter.close reopens the file
            # without SWMR to seal it) HDF5 refuses a SWMR open and the digests are missing.
            # While the writer lives, look again for a bounded time; a dead writer's file is as is.
            if not alive:
                raise
            now = time.monotonic()
            settle_until = now + LIVE_SETTLE_S if settle_until is None else settle_until
            if now >= settle_until:
                raise
            time.sleep(0.05)
        except BaseException:
            stack.close()
            raise
    with stack:
        yield h5


#: how long a reader looks again at a live writer's file that fails its checks before calling it damaged
LIVE_SETTLE_S = 5.0


def _check_open(h5: h5py.File, path: Path, run: bool) -> None:
    try:
        check_schema(h5, path)
        check_committed(h5, path)
        if run:
            check_run_kind(h5, path)
    except DamagedFileError:
        raise
    except (OSError, RuntimeError, KeyError) as exc:     # h5py reports unreadable objects as KeyError
        text = str(exc.args[0] if exc.args else exc).splitlines()[0][:200]
        raise DamagedFileError(path, f"its structure cannot be read ({text})") from exc


#: h5netcdf's marker of a dimension scale that is a bare dimension, not a variable
_BARE_DIMENSION = "This is a netCDF dimension but not a netCDF variable"


def _attrs(obj) -> dict:
    out = {}
    for key, value in obj.attrs.items():
        if key in INTERNAL_ATTRS or key.startswith("_"):
            continue
        if isinstance(value, np.ndarray) and value.shape == (1,):
            value = value[0]            # netCDF keeps numbers as 1-element arrays; h5netcdf reads a scalar
        out[key] = value.decode() if isinstance(value, bytes) else value
    return out


def _dataset(h5: h5py.File, group: str | None, drop: tuple[str, ...] = ()):
    """One group as an ``xarray.Dataset`` of its committed rows, read straight through h5py.

    The same Dataset as ``xarray.open_dataset(path, engine="h5netcdf", group=group)`` (less
    ``n_committed`` and the uncommitted rows), ~20 times faster for the small groups of a run.
    """
    import xarray as xr

    node = h5 if group is None else h5[group]
    where = f"group '{group}'" if group else "the root group"
    try:
        # read the commit count *before* the data: rows below it were flushed before it was raised
        committed = int(node[COMMITTED][()]) if COMMITTED in node else None
        coords, data_vars = {}, {}
        for name, ds in node.items():
            if not isinstance(ds, h5py.Dataset) or name == COMMITTED or name in drop:
                continue
            scale = h5py.h5ds.is_scale(ds.id)
            if scale:
                label = ds.attrs.get("NAME", b"")
                label = label.decode(errors="replace") if isinstance(label, bytes) else str(label)
                if label.startswith(_BARE_DIMENSION):
                    continue
                dims = (name,)
            else:
                dims = tuple(scale_name(ds, i) for i in range(ds.ndim))
            values = ds[:committed] if committed is not None and dims[:1] == (STEP,) else ds[()]
            if h5py.check_string_dtype(ds.dtype) is not None:
                values = from_stored(values)
            (coords if scale else data_vars)[name] = xr.Variable(dims, values, _attrs(ds))
    except (OSError, RuntimeError, KeyError) as exc:
        raise DamagedFileError(h5.filename, f"reading {where} failed ({str(exc).splitlines()[0][:200]}); "
                                            "a checksum or structure check failed") from exc
    return xr.Dataset(data_vars, coords=coords, attrs=_attrs(node))


def open_run(path: str | os.PathLike, group: str | None = None):
    """Read a run file, live or finished, into memory, after checking that it is intact.

    Parameters
    ----------
    path
        The run file.
    group
        A group name for one ``xarray.Dataset``; None for an ``xarray.DataTree``
        with the root (attributes, ``run_status``) and every group (only of a
        training run file: an ``ntk --out`` or ``probe --out`` file is refused,
        read its groups by name).  The tree
        leaves out the checkpoint bytes (``checkpoints/state``, the largest
        variable); ask for ``group="checkpoints"`` or use
        :func:`spectral_probe.training.checkpoint.read_checkpoint` for them.

    Returns
    -------
    xarray.Dataset or xarray.DataTree
        Trajectory groups hold only committed rows (dimension ``step``).

    Raises
    ------
    DamagedFileError
        (an ``OSError``) The file is truncated or corrupted (one line, in seconds).
    ValueError
        Not a run file (an ``ntk --out`` file with ``group=None``, another HDF5 file).
    """
    for attempt in range(_LIVE_ATTEMPTS):
        try:
            return _read(path, group)
        except DamagedFileError:
            # a reader may catch a chunk while the live writer rewrites it (its checksum then fails once)
            if attempt + 1 == _LIVE_ATTEMPTS or not writer_alive(path):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


#: reads of a file that a live writer holds, before a checksum failure counts as damage
_LIVE_ATTEMPTS = 4


def _read(path, group):
    import xarray as xr

    with open_checked(path, run=group is None) as h5:
        groups = list_groups(h5)
        if group is not None:
            if group not in groups:
                raise ValueError(f"run file '{path}' has no group {group!r}; groups: {', '.join(groups) or 'none'}")
            return _dataset(h5, group)
        tree = {"/": _dataset(h5, None)}
        for name in groups:
            tree[f"/{name}"] = _dataset(h5, name, (CHECKPOINT_DATA,) if name == CHECKPOINT_GROUP else ())
    return xr.DataTree.from_dict(tree)


def read_config(path: str | os.PathLike, *, run: bool = False) -> dict:
    """The run configuration stored in the root attribute ``config`` (``run=True``: of a training run only)."""
    with open_checked(path, run=run) as h5:
        return json.loads(h5.attrs.get("config", "{}"))


def needs_recovery(path: str | os.PathLike) -> bool:
    """True when ``path`` was left open by a writer that is gone (only SWMR readers can open it)."""
    sb = read_superblock(path)
    return sb.flags != 0 and not writer_alive(Path(path))


def verify_run(path: str | os.PathLike, *, unsealed: bool = False) -> dict[str, int]:
    """Read every committed row and static array of ``path`` once, checking every checksum and digest.

    ``unsealed=True`` accepts a closed file whose digests are missing (see :func:`open_checked`).

    Returns
    -------
    dict
        Committed rows per trajectory group.

    Raises
    ------
    DamagedFileError
        The file is truncated, a checksum fails or a group is inconsistent.
    """
    with open_checked(path, unsealed=unsealed) as h5:
        rows = check_committed(h5, path)

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            group = name.rsplit("/", 1)[0] if "/" in name else None
            n = rows.get(group) if group is not None else None
            try:
                if obj.ndim == 0:
                    obj[()]
                elif n is not None and obj.maxshape[0] is None:
                    obj[:n]
                else:
                    obj[...]
            except (OSError, RuntimeError) as exc:
                raise DamagedFileError(path, f"'{name}' fails to read ({str(exc).splitlines()[0][:160]})") from exc

        h5.visititems(visit)
    return rows
