"""The trajectory writer: declare groups, start SWMR, append rows, flush, commit."""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from .filelock import WriterLock, writer_alive
from .reader import list_groups, needs_recovery, recover
from .space import RESERVE_BYTES, check_space
from ..validation import positive_int
from .schema import (COMMITTED, STATUS, STATUS_CLOSED, STATUS_FAILED, STATUS_WRITING, SCHEMA_NAME,
                     SCHEMA_VERSION, STEP, Var, _as_var, _check_name, _create_data, _create_empty, _decode,
                     _is_text, _jsonable, _Layout, _MAX_CHUNK_ROWS, _package_version, _string_data,
                     check_schema, io_error, read_layout)

__all__ = ["TrajectoryWriter"]


class TrajectoryWriter:
    """Append-only writer of one run file (see the module docstring).

    Parameters
    ----------
    path
        The ``.h5`` file.
    config
        The run configuration (JSON-serialisable dict), stored as the root
        attribute ``config``.
    overwrite
        Replace an existing file.  The new file is built under a temporary name
        and moved over the old one only by :meth:`start`, so a failure before
        leaves the old file untouched.
    resume
        Continue an existing file (or create it): its config must equal
        ``config`` (when given); rows after ``n_committed`` are dropped; a file
        left by a killed writer is repaired first (:func:`recover`).  The writer
        works on a copy until :meth:`start` (the copy costs the file's size).
    flush_every
        Appends between flushes (1: flush after every append).
    reserve_bytes
        Free space kept for metadata; an append that would leave less raises
        ``OSError`` before writing (see :mod:`spectral_probe.store.space`).

    Examples
    --------
    >>> with TrajectoryWriter("run.h5", config={"model": "siren"}) as w:
    ...     w.declare("scalars", variables={"loss": Var((), "f8")})
    ...     w.append("scalars", step=0, loss=0.5)
    """

    def __init__(self, path: str | os.PathLike, config: Mapping | None = None, *,
                 overwrite: bool = False, resume: bool = False, flush_every: int = 1,
                 reserve_bytes: int = RESERVE_BYTES) -> None:
        if overwrite and resume:
            raise ValueError("choose overwrite=True (replace the file) or resume=True (continue it), not both")
        positive_int(flush_every, "flush_every")
        self.path = Path(path)
        self.config = dict(config or {})
        self.flush_every = flush_every
        self.reserve_bytes = int(reserve_bytes)
        self._layouts: dict[str, _Layout] = {}
        self._rows: dict[str, int] = {}
        self._last_step: dict[str, int] = {}
        self._committed: dict[str, int] = {}
        self._appends = 0
        self._started = self._closed = self._failed = False
        self._lock: WriterLock | None = None
        self._tmp: Path | None = None
        if not self.path.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, f"folder '{self.path.parent}' of run file does not exist; "
                                    "create it first")
        self._replace = self.path.exists()
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        if self._replace and resume:
            self._open_existing()
        elif self._replace and not overwrite:
            raise FileExistsError(errno.EEXIST, f"run file '{self.path}' exists; pass overwrite=True "
                                  "(--overwrite) to replace it or resume=True to continue it")
        else:
            self._create()

    # ------------------------------------------------------------------ open
    def _create(self) -> None:
        """Build the file under a temporary name; :meth:`start` moves it to ``path``."""
        target = self._tmp
        try:
            self._h5 = h5py.File(target, "w", libver="latest")
        except OSError as exc:
            raise io_error(exc, "create", self.path) from exc
        try:
            root = self._h5.attrs
            root["schema"] = SCHEMA_NAME
            root["schema_version"] = np.int32(SCHEMA_VERSION)
            root["config"] = json.dumps(self.config, sort_keys=True, default=str)
            root["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            root["spectral_probe_version"] = _package_version()
            self._nc_open()
            self._nc.create_variable(STATUS, (), dtype="i1", data=np.int8(STATUS_WRITING))
        except (OSError, RuntimeError) as exc:
            self._h5.close()
            target.unlink(missing_ok=True)
            raise io_error(exc, "create", self.path) from exc

    def _open_existing(self) -> None:
        if writer_alive(self.path):
            raise OSError(errno.EBUSY, f"run file '{self.path}' is in use (a writer is running or a reader "
                          "holds it open); close it there or write a new file")
        if needs_recovery(self.path):
            recover(self.path)
        try:                    # work on a copy until start(): a crash before it leaves the file as it was
            shutil.copyfile(self.path, self._tmp)
            self._h5 = h5py.File(self._tmp, "r+", libver="latest")
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise io_error(exc, "open for resuming", self.path) from exc
        check_schema(self._h5, self.path)
        stored = json.loads(self._h5.attrs.get("config", "{}"))
        if self.config and stored != json.loads(json.dumps(self.config, sort_keys=True, default=str)):
            diff = sorted(k for k in set(stored) | set(self.config) if stored.get(k) != self.config.get(k))
            self._h5.close()
            self._tmp.unlink(missing_ok=True)
            raise ValueError(f"cannot resume '{self.path}': its config differs in {', '.join(diff) or 'values'}; "
                             "pass the same config or write a new file (overwrite=True)")
        self.config = stored
        self._nc_open()
        for name in list_groups(self._h5):
            self._layouts[name] = read_layout(self._h5[name])
            self._truncate_to_committed(name)
        self._nc[STATUS][()] = np.int8(STATUS_WRITING)

    def _truncate_to_committed(self, name: str) -> None:
        group = self._h5[name]
        n = int(group[COMMITTED][()]) if COMMITTED in group else 0
        if STEP in group:
            for var in [*self._layouts[name].trajectory, STEP]:
                group[var].resize(n, axis=0)
            if n:
                self._last_step[name] = int(group[STEP][n - 1])
        self._rows[name] = self._committed[name] = n

    def _nc_open(self) -> None:
        import h5netcdf

        self._nc = h5netcdf.File(self._h5, "a")

    # --------------------------------------------------------------- declare
    def _require_declare_phase(self, what: str) -> None:
        if self._closed:
            raise ValueError(f"run file '{self.path}' is closed")
        if self._started:
            raise RuntimeError(f"{what} must come before the writer starts (HDF5 SWMR allows no new objects "
                               "later); declare every group before the first append, e.g. in on_fit_start")

    def declare(self, group: str, *, variables: Mapping[str, object], coords: Mapping | None = None,
                attrs: Mapping | None = None) -> None:
        """Create a group with fixed coordinate axes and (trajectory or static) variables.

        Parameters
        ----------
        group
            Group name (``"scalars"``, ``"activations"``, ``"ntk"``, ...).
        variables
            ``name -> Var`` (or a tuple of dims, or ``(dims, dtype)``); trajectory
            variables get ``step`` prepended.
        coords
            ``dim -> values`` for every dimension other than ``step``.
        attrs
            Group attributes (dicts and lists are stored as JSON).

        Declaring the same group again with the same layout is a no-op; a
        different layout raises ``ValueError``.
        """
        self._require_declare_phase("declare()")
        _check_name(group, "group")
        variables = {k: _as_var(v) for k, v in variables.items()}
        coords = {k: np.asarray(v) for k, v in (coords or {}).items()}
        for name, var in variables.items():
            _check_name(name, "variable")
            missing = [d for d in var.dims if d not in coords and d != STEP]
            if missing or STEP in var.dims:
                raise ValueError(f"variable {name!r} of group {group!r}: dimension(s) {missing or [STEP]} "
                                 f"need coordinates in coords= ('{STEP}' is added for trajectory variables)")
        if group in self._layouts:
            self._check_same(group, variables, coords)
            return
        g = self._nc.create_group(group)
        if any(v.trajectory for v in variables.values()):
            g.dimensions[STEP] = None
            g.create_variable(STEP, (STEP,), dtype="i8", chunks=(_MAX_CHUNK_ROWS,))
        for dim, values in coords.items():
            g.dimensions[dim] = len(values)
            _create_data(g, dim, (dim,), values)
        for name, var in variables.items():
            _create_empty(g, name, var, coords)
        g.create_variable(COMMITTED, (), dtype="i8", data=np.int64(0))
        for key, value in (attrs or {}).items():
            g.attrs[key] = _jsonable(value)
        self._layouts[group] = _Layout({d: len(v) for d, v in coords.items()}, variables)
        self._rows[group] = self._committed[group] = 0

    def _check_same(self, group: str, variables: dict[str, Var], coords: dict) -> None:
        layout = self._layouts[group]
        for name, var in variables.items():
            old = layout.variables.get(name)
            if old is None or old.dims != var.dims or old.trajectory != var.trajectory:
                raise ValueError(f"group {group!r} already holds a different layout: variable {name!r} "
                                 f"{'is missing' if old is None else f'has dims {old.dims}'}; "
                                 "write to a new file or use another group name")
        for dim, values in coords.items():
            stored = self._h5[group][dim][()] if dim in self._h5[group] else None
            stored = _decode(stored)
            if stored is None or stored.shape != values.shape or not np.array_equal(stored, _decode(values)):
                raise ValueError(f"group {group!r} already has a different '{dim}' axis; "
                                 "write to a new file or use another group name")

    def write_dataset(self, group: str, ds) -> None:
        """Write an ``xarray.Dataset`` of static (step-free) variables into ``group``.

        Before :meth:`start` the group and variables are created (coordinates come
        from ``ds``); afterwards every variable must have been declared with
        ``Var(..., trajectory=False)`` and is overwritten.
        """
        if STEP in ds.dims:
            raise ValueError(f"write_dataset() stores static results; '{STEP}' rows go through append()")
        if self._started:
            for name, da in ds.data_vars.items():
                self.put(group, name, da.values)
            return
        coords = {d: (ds[d].values if d in ds.coords else np.arange(n)) for d, n in ds.sizes.items()}
        variables = {n: Var(tuple(da.dims), da.dtype.str if not _is_text(da.values) else "str", False,
                            dict(da.attrs)) for n, da in ds.data_vars.items()}
        if group in self._layouts:
            self._add_static(group, variables, coords)
        else:
            self.declare(group, variables=variables, coords=coords, attrs=dict(ds.attrs))
        for name, da in ds.data_vars.items():
            self.put(group, name, da.values)

    def _add_static(self, group: str, variables: dict[str, Var], coords: dict) -> None:
        g = self._nc[group]
        layout = self._layouts[group]
        for dim, values in coords.items():
            if dim not in layout.sizes:
                g.dimensions[dim] = len(values)
                _create_data(g, dim, (dim,), values)
                layout.sizes[dim] = len(values)
        for name, var in variables.items():
            if name not in layout.variables:
                _create_empty(g, name, var, coords)
                layout.variables[name] = var

    def set_attrs(self, group: str | None = None, **attrs) -> None:
        """Set attributes of the root (``group=None``) or of a declared group, before :meth:`start`."""
        self._require_declare_phase("set_attrs()")
        target = self._h5 if group is None else self._group(group)
        for key, value in attrs.items():
            target.attrs[key] = _jsonable(value)

    # ------------------------------------------------------------------ write
    def _group(self, group: str) -> h5py.Group:
        if group not in self._layouts:
            raise ValueError(f"group {group!r} was not declared; declared groups: "
                             f"{', '.join(self._layouts) or 'none'}")
        return self._h5[group]

    def start(self) -> None:
        """End the declare phase: switch to SWMR mode and make the file visible at ``path``."""
        if self._started:
            return
        self._require_declare_phase("start()")
        self._nc.close()
        try:
            self._h5.flush()
            self._h5.swmr_mode = True
            self._publish()
        except FileExistsError:
            self._abandon()
            raise FileExistsError(errno.EEXIST, f"run file '{self.path}' appeared while this writer was "
                                  "declaring; pass overwrite=True to replace it") from None
        except (OSError, RuntimeError) as exc:
            self._abandon()
            raise io_error(exc, "start", self.path) from exc
        self._lock = WriterLock(self.path)
        self._started = True

    def _publish(self) -> None:
        """Move the temporary file to ``path`` (atomically; never clobbering a file that appeared meanwhile)."""
        if self._replace:
            os.replace(self._tmp, self.path)
        else:
            try:
                os.link(self._tmp, self.path)
            except FileExistsError:
                raise
            except OSError:     # no hard links on this file system
                if self.path.exists():
                    raise FileExistsError(errno.EEXIST, str(self.path)) from None
                os.replace(self._tmp, self.path)
            self._tmp.unlink(missing_ok=True)
        self._tmp = None

    def put(self, group: str, name: str, value) -> None:
        """Write the whole of a static variable (before or after :meth:`start`)."""
        g = self._group(group)
        var = self._layouts[group].variables.get(name)
        if var is None or var.trajectory:
            raise ValueError(f"{name!r} is not a static variable of group {group!r}; static variables: "
                             f"{', '.join(n for n, v in self._layouts[group].variables.items() if not v.trajectory)}")
        value = np.asarray(value)
        if value.shape != g[name].shape:
            raise ValueError(f"{group}/{name} has shape {g[name].shape}, got {value.shape}")
        self._write(lambda: g[name].__setitem__((), _string_data(value) if _is_text(value) else value),
                    f"write {group}/{name}")

    def append(self, group: str, step, **values) -> None:
        """Append one row (scalar ``step``) or several rows (1-D ``step``) to a trajectory group.

        Each value has shape ``(k, *dims)`` (or ``dims`` for one row); variables
        left out are filled with NaN.  Steps must increase strictly.
        """
        if not self._started:
            self.start()
        if self._failed or self._closed:
            raise ValueError(f"run file '{self.path}' is {'closed' if self._closed else 'in a failed state'}; "
                             "open it again with resume=True")
        g = self._group(group)
        layout = self._layouts[group]
        steps = np.atleast_1d(np.asarray(step)).astype(np.int64)
        rows = self._check_rows(group, layout, steps, values)
        n, k = self._rows[group], steps.size
        check_space(self.path, self._bytes_needed(g, layout, k), self.reserve_bytes, self._kept())

        def write() -> None:
            for name in layout.trajectory:
                g[name].resize(n + k, axis=0)
                if name in rows:
                    g[name][n:n + k] = rows[name]
            g[STEP].resize(n + k, axis=0)
            g[STEP][n:n + k] = steps

        self._write(write, f"append to group '{group}' at step {int(steps[0])}")
        self._rows[group] = n + k
        self._last_step[group] = int(steps[-1])
        self._appends += 1
        if self._appends % self.flush_every == 0:
            self.flush()

    def _check_rows(self, group: str, layout: _Layout, steps: np.ndarray, values: dict) -> dict:
        if steps.ndim != 1 or steps.size == 0:
            raise ValueError(f"step must be an integer or a 1-D array of integers, got {steps!r}")
        last = self._last_step.get(group)
        if np.any(np.diff(steps) <= 0) or (last is not None and steps[0] <= last):
            raise ValueError(f"steps {steps.tolist()} for group '{group}' do not increase strictly after the "
                             f"last written step {last}; steps must increase (write a new file to start over)")
        rows = {}
        for name, value in values.items():
            var = layout.variables.get(name)
            if var is None or not var.trajectory:
                raise ValueError(f"unknown trajectory variable {name!r} in group '{group}'; "
                                 f"declared: {', '.join(layout.trajectory)}")
            shape = tuple(layout.sizes[d] for d in var.dims)
            value = np.asarray(value)
            if value.shape == shape and steps.size == 1:
                value = value[None]
            if value.shape != (steps.size, *shape):
                raise ValueError(f"{group}/{name} expects shape {(steps.size, *shape)} "
                                 f"(step, {', '.join(var.dims)}), got {value.shape}")
            rows[name] = value
        return rows

    @staticmethod
    def _bytes_needed(g: h5py.Group, layout: _Layout, k: int) -> int:
        """Upper bound of the bytes ``k`` new rows allocate: whole chunks of every trajectory variable."""
        total = 0
        for name in [*layout.trajectory, STEP]:
            ds = g[name]
            row = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
            chunk = int(np.prod(ds.chunks, dtype=np.int64)) * ds.dtype.itemsize
            total += max(chunk, row * k) + chunk
        return total

    def _kept(self) -> str:
        if not self._committed:
            return ""
        return "; the file keeps the rows committed before: " + ", ".join(
            f"{g} {n}" for g, n in self._committed.items())

    def flush(self) -> None:
        """Flush written rows, then raise ``n_committed`` of every group and flush again."""
        if not self._started or self._closed or self._failed:
            return
        pending = {g: n for g, n in self._rows.items() if n != self._committed[g]}
        self._write(self._h5.flush, "flush")
        if pending:
            def commit() -> None:
                for group, n in pending.items():
                    self._h5[group][COMMITTED][()] = np.int64(n)
                self._h5.flush()
            self._write(commit, "commit")
            self._committed.update(pending)

    def _write(self, func, action: str) -> None:
        try:
            func()
        except (OSError, RuntimeError) as exc:     # h5py reports failed flushes as RuntimeError
            self._failed = True
            raise io_error(exc, action + " in", self.path, self._kept()) from exc

    # ------------------------------------------------------------------ close
    def rows(self, group: str) -> int:
        """Rows written to ``group`` so far (committed or not)."""
        self._group(group)
        return self._rows[group]

    def last_step(self, group: str) -> int | None:
        """The last step appended to ``group`` (None when empty)."""
        self._group(group)
        return self._last_step.get(group)

    @property
    def groups(self) -> list[str]:
        return list(self._layouts)

    @property
    def started(self) -> bool:
        return self._started

    def close(self, status: int = STATUS_CLOSED) -> None:
        """Flush, mark the run closed and release the file.  Idempotent."""
        if self._closed:
            return
        try:
            if self._failed:
                self._abandon()
                return
            if not self._started:
                self.start()
            self.flush()
            self._write(lambda: self._h5[STATUS].__setitem__((), np.int8(status)), "close")
            self._write(self._h5.close, "close")
        finally:
            self._closed = True
            if self._lock is not None:
                self._lock.release()

    def _abandon(self) -> None:
        """Drop the HDF5 handle after an I/O error without writing more (committed rows stay)."""
        try:
            self._h5.close()
        except Exception:  # noqa: BLE001 - the file is already in error; keep the original exception
            pass
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
        self._closed = True

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self._started:
            self._abandon()         # failed before writing: nothing appears, an old file stays as it was
            return
        self.close(STATUS_FAILED if exc_type is not None else STATUS_CLOSED)


