"""The run-file schema: names, status codes, variable specs, and the netCDF4 helpers the store modules share.

Public helpers (used by the writer, the reader and :mod:`~spectral_probe.store.recover`):

* :class:`Var`, :func:`as_var`, :class:`Layout`, :func:`read_layout`: what a group holds;
* :func:`create_coordinate`, :func:`create_variable`: netCDF4 variables (chunked numeric
  arrays carry a Fletcher32 checksum, so a corrupted chunk fails to read instead of
  returning wrong numbers);
* :func:`to_stored`, :func:`from_stored`, :func:`is_text`, :func:`attr_value`: value conversions;
* :func:`root_attributes`, :func:`check_schema`, :func:`check_name`, :func:`list_groups`,
  :func:`config_differences`, :func:`io_error`.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import h5py
import numpy as np

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "STEP", "COMMITTED", "STATUS", "STATUS_WRITING", "STATUS_CLOSED",
           "STATUS_FAILED", "STATUS_INTERRUPTED", "STATUS_NAMES", "CHUNK_BYTES", "PAGE_BYTES", "STEP_CHUNK_ROWS", "Var",
           "as_var", "Layout", "read_layout", "create_coordinate", "create_variable", "to_stored", "from_stored",
           "is_text", "attr_value", "root_attributes", "package_version", "check_schema", "check_name",
           "list_groups", "config_differences", "io_error", "scale_name", "INTERNAL_ATTRS", "file_kind",
           "check_run_kind"]


SCHEMA_NAME = "spectral-probe-trajectory"
#: 2: Fletcher32 checksums, ``checkpoints`` group, status 3 (interrupted); 3: digests of every value a
#: reader trusts (:mod:`~spectral_probe.store.digests`); readers accept 1, 2 and 3
SCHEMA_VERSION = 3
STEP = "step"
COMMITTED = "n_committed"
STATUS = "run_status"
STATUS_WRITING, STATUS_CLOSED, STATUS_FAILED, STATUS_INTERRUPTED = 0, 1, 2, 3
STATUS_NAMES = {STATUS_WRITING: "writing", STATUS_CLOSED: "closed", STATUS_FAILED: "failed",
                STATUS_INTERRUPTED: "interrupted"}
#: the file-space page: run files are created with paged aggregation (``fs_strategy="page"``), under
#: which HDF5 never lets an object smaller than a page cross a page boundary
PAGE_BYTES = 4096
#: most bytes of a chunk that holds more than one row: with its 4-byte Fletcher32 checksum it fits
#: one page.  A chunk holding committed rows is rewritten in place at each commit, and a SIGKILL
#: stops the kernel's write only between pages, so such a chunk is never torn: it holds either
#: its old or its new bytes (with 64 KiB chunks a kill could tear committed rows; CI, 2026-12-05)
CHUNK_BYTES = PAGE_BYTES - 4
#: rows per chunk of the ``step`` coordinate (and the most rows of any chunk; 8-byte steps fill half a page)
STEP_CHUNK_ROWS = 256


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


def as_var(spec) -> Var:
    """``Var``, a tuple of dimension names, ``(dims, dtype)`` or one dimension name -> :class:`Var`."""
    if isinstance(spec, Var):
        return spec
    if isinstance(spec, str):
        return Var((spec,))
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], tuple):
        return Var(spec[0], spec[1])
    if isinstance(spec, (tuple, list)):
        return Var(tuple(spec))
    raise TypeError(f"variable spec must be Var, a tuple of dimension names or (dims, dtype); got {spec!r}")


class Layout:
    """What a writer knows about one group: sizes of its dims and its variables."""

    def __init__(self, sizes: dict[str, int], variables: dict[str, Var]) -> None:
        self.sizes = sizes
        self.variables = variables

    @property
    def trajectory(self) -> list[str]:
        return [n for n, v in self.variables.items() if v.trajectory]


# --------------------------------------------------------------------------- errors
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}
#: how a full disk is fixed (the CLI's ``--resume`` and the Python ``resume=True``)
FULL_DISK_FIX = "free space, then continue the run with --resume (Python: resume=True)"


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
        why = f"the disk is full or a file-size limit was reached; {FULL_DISK_FIX}"
    else:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return OSError(code or errno.EIO, f"cannot {action} run file '{path}': {why}{kept}")


# --------------------------------------------------------------------------- values
def attr_value(value):
    """An attribute value HDF5 can store: dicts, lists and tuples become JSON, None becomes ``"null"``."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if value is None:
        return "null"
    return value


def to_stored(values) -> np.ndarray:
    """Values as written: text becomes an object array of ``str`` (HDF5 variable-length strings)."""
    values = np.asarray(values)
    if not is_text(values):
        return values
    return np.array([str(v) for v in values.reshape(-1)], dtype=object).reshape(values.shape)


def from_stored(values):
    """Values as read back: HDF5 strings (bytes or objects) become a ``str`` array."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.dtype.kind in ("O", "S"):
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]).reshape(values.shape)
    return values


def is_text(values: np.ndarray) -> bool:
    return np.asarray(values).dtype.kind in ("U", "S", "O")


# --------------------------------------------------------------------------- netCDF variables
def _chunks(row_shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * itemsize)
    rows = int(np.clip(CHUNK_BYTES // row_bytes, 1, STEP_CHUNK_ROWS))
    rows = 1 << (rows.bit_length() - 1)
    return (rows, *(max(1, n) for n in row_shape))


def create_coordinate(g, name: str, values) -> None:
    """A 1-D coordinate variable ``name(name)`` holding ``values`` (checksummed when numeric)."""
    values = np.asarray(values)
    if is_text(values):
        g.create_variable(name, (name,), dtype=h5py.string_dtype(), data=to_stored(values))
    elif values.size:
        g.create_variable(name, (name,), data=values, chunks=values.shape, fletcher32=True)
    else:
        g.create_variable(name, (name,), data=values)


def create_variable(g, name: str, var: Var, sizes: Mapping[str, int]) -> None:
    """An empty variable of ``var``'s layout; trajectory variables get an unlimited ``step`` axis.

    Numeric arrays are chunked with a Fletcher32 checksum; NaN is the fill value of
    floating variables (rows appended without a value, static data never written).
    """
    shape = tuple(int(sizes[d]) for d in var.dims)
    text = var.dtype == "str"
    dtype = h5py.string_dtype() if text else np.dtype(var.dtype)
    fill = np.nan if not text and dtype.kind in "fc" else None
    checksum = {} if text else {"fletcher32": True}
    if var.trajectory:
        chunks = _chunks(shape, dtype.itemsize if not text else 16)
        v = g.create_variable(name, (STEP, *var.dims), dtype=dtype, chunks=chunks, fillvalue=fill, **checksum)
    elif shape and all(shape) and not text:
        v = g.create_variable(name, var.dims, dtype=dtype, fillvalue=fill, chunks=shape, **checksum)
    else:
        v = g.create_variable(name, var.dims, dtype=dtype, fillvalue=fill)
    for key, value in var.attrs.items():
        v.attrs[key] = attr_value(value)


#: HDF5 / netCDF bookkeeping attributes, never shown as a variable's attributes
INTERNAL_ATTRS = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates"}


def scale_name(ds: h5py.Dataset, axis: int) -> str:
    """Name of the dimension (scale) attached to ``axis`` of ``ds`` ("" when none)."""
    scales = list(ds.dims[axis].values())
    if not scales:
        return ""
    return scales[0].name.rsplit("/", 1)[-1]


def read_layout(group: h5py.Group) -> Layout:
    """The :class:`Layout` of a group of an open file (dimension sizes and variables)."""
    sizes, variables = {}, {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset) or name in (STEP, COMMITTED):
            continue
        if h5py.h5ds.is_scale(ds.id) and ds.ndim == 1:
            sizes[name] = ds.shape[0]
            continue
        dims = tuple(scale_name(ds, i) for i in range(ds.ndim))
        dtype = "str" if h5py.check_string_dtype(ds.dtype) is not None else ds.dtype.str
        attrs = {k: v for k, v in ds.attrs.items() if k not in INTERNAL_ATTRS and not k.startswith("_")}
        trajectory = dims[:1] == (STEP,)
        variables[name] = Var(dims[1:] if trajectory else dims, dtype, trajectory, attrs)
    return Layout(sizes, variables)


def list_groups(h5: h5py.File) -> list[str]:
    """Names of the groups (trajectory or static) in an open run file."""
    return [name for name, obj in h5.items() if isinstance(obj, h5py.Group)]


# --------------------------------------------------------------------------- root
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spectral-probe")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


_package_version = package_version      # the name spectral_probe.sweep.combine imports


def root_attributes(config: Mapping) -> dict:
    """Root attributes of a new run file: schema name and version, config (JSON), creation time, version."""
    return {"schema": SCHEMA_NAME, "schema_version": np.int32(SCHEMA_VERSION),
            "config": json.dumps(dict(config), sort_keys=True, default=str),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "spectral_probe_version": package_version()}


def _foreign_hdf5(h5: h5py.File) -> str:
    """What an HDF5 file without the run-file schema is, as far as its attributes tell."""
    keys = set(h5.attrs.keys())
    if keys & {"settings_hash", "figure", "part"}:
        return "a figure data file (written by `spectral-probe figure` or `reproduce`)"
    groups = [name for name, obj in h5.items() if isinstance(obj, h5py.Group)]
    shown = ", ".join(sorted(groups)[:5]) or "none"
    return f"an HDF5 file without the spectral-probe schema attribute (groups: {shown})"


def file_kind(h5: h5py.File) -> tuple[str, str]:
    """``(kind, description)`` of a spectral-probe file: ``run`` (training), ``ntk``, ``probe`` or ``store``.

    Only ``run`` files hold a training trajectory and checkpoints (``watch``, ``export``,
    ``probe --run``, ``ntk --run``, ``--resume``); ``ntk --out`` and ``probe --out`` files
    are written by the same writer but hold one analysis.
    """
    groups = set(list_groups(h5))
    if groups & {"scalars", "checkpoints"}:
        return "run", "a training run file"
    try:
        config = json.loads(h5.attrs.get("config", "{}"))
    except (ValueError, TypeError):
        config = {}
    if isinstance(config, dict) and {"source", "state_step"} <= set(config):
        return "probe", (f"a `probe --out` file (activation statistics of {config['source']} at step "
                         f"{config['state_step']})")
    if groups and groups <= {"ntk", "forecast"}:
        return "ntk", f"an `ntk --out` file (groups {', '.join(sorted(groups))}: an NTK spectrum)"
    return "store", f"a spectral-probe file without training groups (groups: {', '.join(sorted(groups)) or 'none'})"


def check_run_kind(h5: h5py.File, path: Path) -> None:
    """``ValueError`` naming what ``h5`` is when it is an ``ntk --out`` or ``probe --out`` file (:func:`file_kind`).

    Files of other writers of the store (their own groups) pass: they are read as they are.
    """
    kind, what = file_kind(h5)
    if kind in ("ntk", "probe"):
        raise ValueError(f"'{path}' is {what}, not a training run file; pass a file written by "
                         "`spectral-probe train --out`")


def check_schema(h5: h5py.File, path: Path) -> int:
    """Raise ``ValueError`` unless ``h5`` is a run file this version reads; returns its schema version."""
    schema = h5.attrs.get("schema")
    if schema != SCHEMA_NAME:
        raise ValueError(f"'{path}' is not a spectral-probe run file: it is {_foreign_hdf5(h5)}")
    version = int(h5.attrs.get("schema_version", 0))
    if version > SCHEMA_VERSION:
        raise ValueError(f"'{path}' uses schema version {version}; this spectral-probe reads up to "
                         f"{SCHEMA_VERSION}; upgrade spectral-probe")
    return version


def check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", name) or name in (STEP, COMMITTED):
        raise ValueError(f"invalid {what} name {name!r}; use letters, digits, '_', '-' or '.', "
                         f"starting with a letter (not '{STEP}' or '{COMMITTED}')")


def _flatten(config: Mapping, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(stored: Mapping, given: Mapping, ignore: Iterable[str] = ()) -> list[str]:
    """Dotted keys (``model_kwargs.s0``) whose values differ between two configs, except ``ignore``.

    Values are compared after a JSON round trip (tuples equal lists, numbers keep their value).
    """
    a = _flatten(json.loads(json.dumps(dict(stored), sort_keys=True, default=str)))
    b = _flatten(json.loads(json.dumps(dict(given), sort_keys=True, default=str)))
    skip = set(ignore)
    return sorted(k for k in set(a) | set(b)
                  if k not in skip and not any(k.startswith(s + ".") for s in skip) and a.get(k) != b.get(k))
