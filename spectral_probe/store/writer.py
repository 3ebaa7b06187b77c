"""The trajectory writer: lock, declare groups, start SWMR, append rows, flush, commit."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Mapping

import h5py
import numpy as np

from .deferral import deferred_signals
from .digests import SEAL_ATTR, write_seal
from .filelock import RunLock, real_path, remove_stale_temporaries
from .guard import validate
from .integrity import DamagedFileError, check_committed, check_file, clear_write_flags
from .schema import (COMMITTED, SCHEMA_VERSION, STATUS, STATUS_CLOSED, STATUS_FAILED, STATUS_INTERRUPTED,
                     PAGE_BYTES, STATUS_WRITING, STEP, STEP_CHUNK_ROWS, Layout, Var, as_var, attr_value, check_name,
                     check_schema, config_differences, create_coordinate, create_variable, io_error,
                     is_text, list_groups, read_layout, root_attributes, to_stored)
from .rows import bytes_needed, check_rows, check_same_layout
from .space import RESERVE_BYTES, check_space
from ..validation import positive_int

__all__ = ["TrajectoryWriter"]

log = logging.getLogger(__name__)


class TrajectoryWriter:
    """Append-only writer of one run file (see the package docstring).

    Parameters
    ----------
    path
        The ``.h5`` file (a symlink is followed: the writer writes the real file).
    config
        The run configuration (JSON-serialisable dict), stored as the root attribute ``config``.
    overwrite
        Replace an existing file.  The new file is built under a temporary name
        and moved over the old one only by :meth:`start`, so a failure before
        leaves the old file untouched.
    resume
        Continue an existing file (or create it): its config must equal
        ``config`` (when given) except for the keys in ``may_change``; rows after
        ``n_committed`` are dropped, and with ``keep_before`` every row at a step ``>= keep_before``.
        A file left by a killed writer is continued too.  The writer works on a copy until
        :meth:`start` (the copy costs the file's size); a damaged file
        (:class:`~spectral_probe.store.integrity.DamagedFileError`) is refused.
    may_change
        Dotted config keys (``"train.epochs"``) allowed to differ when resuming; the
        file then records the new config.
    keep_before
        When resuming: drop the rows of every trajectory group at steps ``>= keep_before``;
        a mapping gives a bound per group (key None: the other groups).
    flush_every
        Appends between flushes (1: flush after every append).
    reserve_bytes
        Free space kept for metadata and the close; a write that would leave less raises ``OSError``
        before writing (see :mod:`spectral_probe.store.space`).
    lock
        A :class:`~spectral_probe.store.filelock.RunLock` of ``path`` already held by the caller (the
        writer releases it on close); by default the writer takes one.  Another process writing
        ``path`` (through any link) raises ``RunLockedError`` naming it.

    Use: ``with TrajectoryWriter("run.h5", config=cfg) as w: w.declare("scalars", variables={"loss": Var((),
    "f8")}); w.append("scalars", step=0, loss=0.5)``.
    """

    def __init__(self, path: str | os.PathLike, config: Mapping | None = None, *,
                 overwrite: bool = False, resume: bool = False, may_change: Iterable[str] = (),
                 keep_before: int | Mapping[str | None, int] | None = None, flush_every: int = 1,
                 reserve_bytes: int = RESERVE_BYTES, lock: RunLock | None = None) -> None:
        if overwrite and resume:
            raise ValueError("choose overwrite=True (replace the file) or resume=True (continue it), not both")
        positive_int(flush_every, "flush_every")
        self.path = Path(path)
        self.config = dict(config or {})
        self.flush_every = flush_every
        self.reserve_bytes = int(reserve_bytes)
        self._layouts: dict[str, Layout] = {}
        self._rows: dict[str, int] = {}
        self._last_step: dict[str, int] = {}
        self._committed: dict[str, int] = {}
        self._hooks: list[Callable[[], None]] = []
        self._handles: dict[tuple[str, str], h5py.Dataset] = {}
        self._in_hooks = False
        self._appends = 0
        self._started = self._closed = self._failed = False
        self._h5 = self._nc = None
        self.resumed = False
        if not self.path.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, f"folder '{self.path.parent}' of run file does not exist; "
                                    "create it first")
        self._lock = lock if lock is not None else RunLock(self.path)
        self._real = real_path(self.path)       # a symlink stays a link: the file it names is written
        self._tmp = self._real.with_name(f".{self._real.name}.{os.getpid()}.tmp")
        try:
            remove_stale_temporaries(self.path)
            self._replace = self.path.exists()
            if self._replace and resume:
                self._open_existing(may_change, keep_before)
            elif self._replace and not overwrite:
                raise FileExistsError(errno.EEXIST, f"run file '{self.path}' exists; pass overwrite=True "
                                      "(--overwrite) to replace it or resume=True (--resume) to continue it")
            else:
                self._create()
        except BaseException:
            self._lock.release()
            raise

    # ------------------------------------------------------------------ open
    def _create(self) -> None:
        """Build the file under a temporary name; :meth:`start` moves it to ``path``."""
        self._room(0, "create", "its first metadata")
        try:
            self._h5 = h5py.File(self._tmp, "w", libver="latest", fs_strategy="page", fs_page_size=PAGE_BYTES)
        except OSError as exc:
            raise io_error(exc, "create", self.path) from exc
        try:
            for key, value in root_attributes(self.config).items():
                self._h5.attrs[key] = value
            self._nc_open()
            self._nc.create_variable(STATUS, (), dtype="i1", data=np.int8(STATUS_WRITING))
        except (OSError, RuntimeError) as exc:
            self._h5.close()
            self._tmp.unlink(missing_ok=True)
            raise io_error(exc, "create", self.path) from exc

    def _open_existing(self, may_change: Iterable[str], keep_before) -> None:
        check_file(self.path)
        validate(self.path, unsealed=True)      # structure and digests, in a child with a time limit
        self._room(self.path.stat().st_size, "open for resuming", "a working copy of the file")
        try:                    # work on a copy until start(): a crash before it leaves the file as it was
            shutil.copyfile(self.path, self._tmp)
            clear_write_flags(self._tmp)        # left set by a killed SWMR writer
            self._h5 = h5py.File(self._tmp, "r+", libver="latest")
        except DamagedFileError:
            self._tmp.unlink(missing_ok=True)
            raise
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise io_error(exc, "open for resuming", self.path) from exc
        try:
            check_schema(self._h5, self.path)
            check_committed(self._h5, self.path)
            stored = json.loads(self._h5.attrs.get("config", "{}"))
            if self.config:
                diff = config_differences(stored, self.config, ignore=may_change)
                if diff:
                    raise ValueError(f"cannot resume '{self.path}': its configuration differs in "
                                     f"{', '.join(diff)}; pass the same settings or write a new file")
                self._h5.attrs["config"] = json.dumps(self.config, sort_keys=True, default=str)
            else:
                self.config = stored
            self._h5.attrs["schema_version"] = np.int32(max(SCHEMA_VERSION, int(self._h5.attrs.get("schema_version", 0))))
            if SEAL_ATTR in self._h5.attrs:     # the file changes from here on: close() seals it again
                del self._h5.attrs[SEAL_ATTR]
            self._nc_open()
            for name in list_groups(self._h5):
                self._layouts[name] = read_layout(self._h5[name])
                bound = keep_before.get(name, keep_before.get(None)) if isinstance(keep_before, Mapping) else keep_before
                self._truncate(name, bound)
            self._nc[STATUS][()] = np.int8(STATUS_WRITING)
        except BaseException:
            self._drop_handle()
            self._tmp.unlink(missing_ok=True)
            raise
        self.resumed = True

    def _truncate(self, name: str, keep_before: int | None) -> None:
        """Keep the committed rows of ``name`` (and only those at steps below ``keep_before``)."""
        group = self._h5[name]
        n = int(group[COMMITTED][()]) if COMMITTED in group else 0
        if STEP in group:
            if keep_before is not None and n:
                n = int(np.searchsorted(group[STEP][:n], keep_before, side="left"))
            for var in [*self._layouts[name].trajectory, STEP]:
                group[var].resize(n, axis=0)
            group[COMMITTED][()] = np.int64(n)
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
            ``dim -> values`` for every dimension other than ``step``; an integer
            declares a dimension of that size without coordinate values (e.g. the
            bytes of a checkpoint).
        attrs
            Group attributes (dicts and lists are stored as JSON).

        Declaring the same group again with the same layout is a no-op; a
        different layout raises ``ValueError``.
        """
        self._require_declare_phase("declare()")
        check_name(group, "group")
        variables = {k: as_var(v) for k, v in variables.items()}
        coords = {k: (int(v) if isinstance(v, (int, np.integer)) else np.asarray(v)) for k, v in (coords or {}).items()}
        sizes = {k: (v if isinstance(v, int) else len(v)) for k, v in coords.items()}
        for name, var in variables.items():
            check_name(name, "variable")
            missing = [d for d in var.dims if d not in coords and d != STEP]
            if missing or STEP in var.dims:
                raise ValueError(f"variable {name!r} of group {group!r}: dimension(s) {missing or [STEP]} "
                                 f"need coordinates in coords= ('{STEP}' is added for trajectory variables)")
        if group in self._layouts:
            check_same_layout(group, self._layouts[group], self._h5[group], variables, coords)
            for key, value in (attrs or {}).items():        # a resumed run's settings (e.g. its epochs)
                self._h5[group].attrs[key] = attr_value(value)
            return
        static = sum(8 * int(np.prod([sizes[d] for d in v.dims])) for v in variables.values() if not v.trajectory)
        self._room(static + sum(8 * sizes[d] for d, v in coords.items() if not isinstance(v, int)),
                   f"declare group '{group}' in", "its variables")
        g = self._nc.create_group(group)
        if any(v.trajectory for v in variables.values()):
            g.dimensions[STEP] = None
            g.create_variable(STEP, (STEP,), dtype="i8", chunks=(STEP_CHUNK_ROWS,), fletcher32=True)
        for dim, values in coords.items():
            g.dimensions[dim] = sizes[dim]
            if not isinstance(values, int):
                create_coordinate(g, dim, values)
        for name, var in variables.items():
            create_variable(g, name, var, sizes)
        g.create_variable(COMMITTED, (), dtype="i8", data=np.int64(0))
        for key, value in (attrs or {}).items():
            g.attrs[key] = attr_value(value)
        self._layouts[group] = Layout(dict(sizes), variables)
        self._rows[group] = self._committed[group] = 0

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
        variables = {n: Var(tuple(da.dims), da.dtype.str if not is_text(da.values) else "str", False,
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
                create_coordinate(g, dim, values)
                layout.sizes[dim] = len(values)
        for name, var in variables.items():
            if name not in layout.variables:
                create_variable(g, name, var, layout.sizes)
                layout.variables[name] = var

    def set_attrs(self, group: str | None = None, **attrs) -> None:
        """Set attributes of the root (``group=None``) or of a declared group, before :meth:`start`."""
        self._require_declare_phase("set_attrs()")
        target = self._h5 if group is None else self._group(group)
        for key, value in attrs.items():
            target.attrs[key] = attr_value(value)

    def add_commit_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` at the start of every :meth:`flush`, so producers append what they buffer.

        The training recorder uses it: whenever any group commits a row (a probe
        step, a checkpoint), the scalars of the epochs run so far are committed too.
        """
        self._hooks.append(hook)

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
        self._room(0, "start", "its first flush")
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
        self._started = True

    def _publish(self) -> None:
        """Move the temporary file to ``path`` (atomically; never clobbering a file that appeared meanwhile)."""
        if self._replace:
            os.replace(self._tmp, self._real)
        else:
            try:
                os.link(self._tmp, self._real)
            except FileExistsError:
                raise
            except OSError:     # no hard links on this file system
                if self._real.exists():
                    raise FileExistsError(errno.EEXIST, str(self.path)) from None
                os.replace(self._tmp, self._real)
            self._tmp.unlink(missing_ok=True)
        self._tmp = None
        self._lock.track()      # the published file is a new inode: lock it against hard links too

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
        self._room(value.nbytes, f"write {group}/{name} in", "its values")
        self._write(lambda: g[name].__setitem__((), to_stored(value)), f"write {group}/{name}")

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
        self._group(group)
        layout = self._layouts[group]
        steps = np.atleast_1d(np.asarray(step)).astype(np.int64)
        rows = check_rows(group, layout, steps, values, self._last_step.get(group))
        n, k = self._rows[group], steps.size
        ds = {name: self._dataset(group, name) for name in [*layout.trajectory, STEP]}
        self._room(bytes_needed(ds, k), "append to", "the next rows")

        def write() -> None:
            for name in layout.trajectory:
                ds[name].resize(n + k, axis=0)
                if name in rows:
                    ds[name][n:n + k] = rows[name]
            ds[STEP].resize(n + k, axis=0)
            ds[STEP][n:n + k] = steps

        self._write(write, f"append to group '{group}' at step {int(steps[0])}")
        self._rows[group] = n + k
        self._last_step[group] = int(steps[-1])
        self._appends += 1
        if self._appends % self.flush_every == 0:
            self.flush()

    def _dataset(self, group: str, name: str) -> h5py.Dataset:
        """The open dataset ``group/name`` (looked up once: h5py's lookups dominate small appends)."""
        key = (group, name)
        if key not in self._handles:
            self._handles[key] = self._h5[group][name]
        return self._handles[key]

    def _room(self, need: int, action: str, what: str) -> None:
        """Refuse (``OSError(ENOSPC)``, nothing written) unless ``need`` bytes and the reserve fit (every
        write that grows the file checks first: see :mod:`spectral_probe.store.space`)."""
        try:
            check_space(self._tmp or self._real, need, self.reserve_bytes, action=action, what=what, name=self.path)
        except OSError as exc:
            if self._started and not self._failed:     # commit what is written and buffered (the reserve pays
                with contextlib.suppress(OSError, ValueError, RuntimeError):    # for it): the message counts
                    self.flush()                                                # what the file keeps
            raise OSError(exc.errno, f"{exc.strerror}{self._kept()}") from None

    def _kept(self) -> str:
        if not self._committed:
            return ""
        return "; the file keeps the rows committed before: " + ", ".join(
            f"{g} {n}" for g, n in self._committed.items())

    def flush(self) -> None:
        """Let the commit hooks append, flush the written rows, then raise ``n_committed`` and flush again."""
        if not self._started or self._closed or self._failed:
            return
        if self._hooks and not self._in_hooks:
            self._in_hooks = True
            try:
                for hook in self._hooks:
                    try:
                        hook()
                    except (OSError, ValueError, RuntimeError) as exc:   # e.g. no room for buffered rows: commit the rest
                        log.warning("run file '%s': a producer could not append its buffered rows: %s",
                                    self.path, exc)
                        if self._failed:
                            raise
            finally:
                self._in_hooks = False
        pending = {g: n for g, n in self._rows.items() if n != self._committed[g]}
        self._write(self._h5.flush, "flush")
        if pending:
            def commit() -> None:
                for group, n in pending.items():
                    self._dataset(group, COMMITTED)[()] = np.int64(n)
                self._h5.flush()
            self._write(commit, "commit")
            self._committed.update(pending)

    def _write(self, func, action: str) -> None:
        try:
            func()
        except (OSError, RuntimeError) as exc:     # h5py reports failed flushes as RuntimeError
            self._failed = True
            raise io_error(exc, action + " in", self.path, self._kept()) from exc

    # ------------------------------------------------------------------ state
    def rows(self, group: str) -> int:
        """Rows written to ``group`` so far (committed or not)."""
        self._group(group)
        return self._rows[group]

    def committed(self, group: str) -> int:
        """Rows of ``group`` committed (complete on disk)."""
        self._group(group)
        return self._committed[group]

    def last_step(self, group: str) -> int | None:
        """The last step appended to ``group`` (None when empty)."""
        self._group(group)
        return self._last_step.get(group)

    def saved(self) -> dict[str, tuple[int, int | None]]:
        """``group -> (committed rows, last committed step)`` for every trajectory group."""
        out = {}
        for name, layout in self._layouts.items():
            if layout.trajectory:
                n = self._committed[name]
                live = bool(n) and self._h5 is not None and self._h5.id.valid
                last = int(self._h5[name][STEP][n - 1]) if live else (self._last_step.get(name) if n else None)
                out[name] = (n, last)
        return out

    @property
    def groups(self) -> list[str]:
        return list(self._layouts)

    @property
    def started(self) -> bool:
        return self._started

    @property
    def failed(self) -> bool:
        return self._failed

    # ------------------------------------------------------------------ close
    def close(self, status: int = STATUS_CLOSED) -> None:
        """Commit what is buffered, set ``run_status`` and release the file and its lock.  Idempotent."""
        if self._closed:
            return
        try:
            if self._failed:
                self._abandon()
                return
            with deferred_signals():        # a Ctrl-C here would leave it marked closed without its seal
                if not self._started:
                    self.start()
                self.flush()
                self._write(lambda: self._h5[STATUS].__setitem__((), np.int8(status)), "close")
                self._write(self._h5.close, "close")
                self._write(self._seal, "write the closing digests")
        finally:
            self._closed = True
            self._lock.release()

    def _seal(self) -> None:
        """Reopen the closed file (SWMR is over) and store the digests of every value readers trust."""
        # HDF5's own file lock would refuse while a reader (watch) has the file open; the run lock is ours
        with h5py.File(self.path, "r+", libver="latest", locking=False) as h5:
            write_seal(h5)

    def _drop_handle(self) -> None:
        for handle in (self._nc, self._h5):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - the file is already in error; keep the original exception
                pass

    def _abandon(self) -> None:
        """Drop the HDF5 handle after an I/O error without writing more (committed rows stay)."""
        self._drop_handle()
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
        self._closed = True
        self._lock.release()

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self._started:
            self._abandon()         # failed before writing: nothing appears, an old file stays as it was
            return
        if exc_type is None:
            self.close(STATUS_CLOSED)
        else:
            self.close(STATUS_INTERRUPTED if issubclass(exc_type, KeyboardInterrupt) else STATUS_FAILED)
