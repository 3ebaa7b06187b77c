"""Constants, variable specs, netCDF helpers and error messages shared by the store modules."""

from __future__ import annotations

import errno
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "STEP", "COMMITTED", "STATUS", "STATUS_WRITING", "STATUS_CLOSED",
           "STATUS_FAILED", "CHUNK_BYTES", "Var", "io_error", "check_schema", "read_layout"]


SCHEMA_NAME = "spectral-probe-trajectory"
SCHEMA_VERSION = 1
STEP = "step"
COMMITTED = "n_committed"
STATUS = "run_status"
STATUS_WRITING, STATUS_CLOSED, STATUS_FAILED = 0, 1, 2
#: target bytes per chunk of a trajectory variable (rows are grouped up to this size)
CHUNK_BYTES = 2 ** 16
_MAX_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class Var:
    """A variable of a group: its dimensions (without ``step``), dtype, and whether it grows.

    ``trajectory=True`` variables get ``step`` prepended and one row per append;
    static ones have a fixed shape and are written with :meth:`TrajectoryWriter.put`.
    """

    dims: tuple[str, ...] = ()
    dtype: str = "f4"
    trajectory: bool = True
    attrs: dict = field(default_factory=dict)


def _as_var(spec) -> Var:
    if isinstance(spec, Var):
        return spec
    if isinstance(spec, str):
        return Var((spec,))
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], tuple):
        return Var(spec[0], spec[1])
    if isinstance(spec, (tuple, list)):
        return Var(tuple(spec))
    raise TypeError(f"variable spec must be Var, a tuple of dimension names or (dims, dtype); got {spec!r}")


# --------------------------------------------------------------------------- errors
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


def _errno_of(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = re.findall(r"errno = (\d+)", str(exc))
    return int(found[-1]) if found else None


def io_error(exc: BaseException, action: str, path: Path, kept: str = "") -> OSError:
    """A one-line ``OSError`` that names the file, the cause and the fix."""
    code = _errno_of(exc)
    if code in _READ_ONLY:
        why = "permission denied (read-only location); choose a writable path"
    elif code in _DISK_FULL:
        why = "the disk is full or a file-size limit was reached; free space and continue with resume=True"
    else:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return OSError(code or errno.EIO, f"cannot {action} run file '{path}': {why}{kept}")


def _jsonable(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if value is None:
        return "null"
    return value


def _string_data(values) -> np.ndarray:
    return np.array([str(v) for v in np.asarray(values).reshape(-1)], dtype=object).reshape(np.shape(values))


def _is_text(values: np.ndarray) -> bool:
    return values.dtype.kind in ("U", "S", "O")


def _chunks(row_shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * itemsize)
    rows = int(np.clip(CHUNK_BYTES // row_bytes, 1, _MAX_CHUNK_ROWS))
    rows = 1 << (rows.bit_length() - 1)
    return (rows, *(max(1, n) for n in row_shape))


class _Layout:
    """What a writer knows about one group: sizes of its dims and its variables."""

    def __init__(self, sizes: dict[str, int], variables: dict[str, Var]) -> None:
        self.sizes = sizes
        self.variables = variables

    @property
    def trajectory(self) -> list[str]:
        return [n for n, v in self.variables.items() if v.trajectory]



def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spectral-probe")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", name) or name in (STEP, COMMITTED):
        raise ValueError(f"invalid {what} name {name!r}; use letters, digits, '_', '-' or '.', "
                         f"starting with a letter (not '{STEP}' or '{COMMITTED}')")


def _create_data(g, name: str, dims: tuple, values: np.ndarray) -> None:
    values = np.asarray(values)
    if _is_text(values):
        g.create_variable(name, dims, dtype=h5py.string_dtype(), data=_string_data(values))
    else:
        g.create_variable(name, dims, data=values)


def _create_empty(g, name: str, var: Var, coords: dict) -> None:
    shape = tuple(len(coords[d]) for d in var.dims)
    text = var.dtype == "str"
    dtype = h5py.string_dtype() if text else np.dtype(var.dtype)
    fill = np.nan if not text and dtype.kind in "fc" else None
    if var.trajectory:
        chunks = _chunks(shape, dtype.itemsize if not text else 16)
        v = g.create_variable(name, (STEP, *var.dims), dtype=dtype, chunks=chunks, fillvalue=fill)
    else:
        v = g.create_variable(name, var.dims, dtype=dtype, fillvalue=fill)
    for key, value in var.attrs.items():
        v.attrs[key] = _jsonable(value)


def _decode(values):
    if values is None:
        return None
    values = np.asarray(values)
    if values.dtype.kind in ("O", "S"):
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]).reshape(values.shape)
    return values


def read_layout(group: h5py.Group) -> _Layout:
    sizes, variables = {}, {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset) or name in (STEP, COMMITTED):
            continue
        if h5py.h5ds.is_scale(ds.id) and ds.ndim == 1:
            sizes[name] = ds.shape[0]
            continue
        dims = tuple(_scale_name(ds, i) for i in range(ds.ndim))
        dtype = "str" if h5py.check_string_dtype(ds.dtype) is not None else ds.dtype.str
        attrs = {k: v for k, v in ds.attrs.items() if k not in _INTERNAL_ATTRS and not k.startswith("_")}
        trajectory = dims[:1] == (STEP,)
        variables[name] = Var(dims[1:] if trajectory else dims, dtype, trajectory, attrs)
    return _Layout(sizes, variables)


_INTERNAL_ATTRS = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST"}


def _scale_name(ds: h5py.Dataset, axis: int) -> str:
    scales = list(ds.dims[axis].values())
    if not scales:
        return ""
    return scales[0].name.rsplit("/", 1)[-1]


def check_schema(h5: h5py.File, path: Path) -> None:
    schema = h5.attrs.get("schema")
    if schema != SCHEMA_NAME:
        raise ValueError(f"'{path}' is not a spectral-probe run file (schema attribute {schema!r})")
    version = int(h5.attrs.get("schema_version", 0))
    if version > SCHEMA_VERSION:
        raise ValueError(f"'{path}' uses schema version {version}; this spectral-probe reads up to "
                         f"{SCHEMA_VERSION}; upgrade spectral-probe")


