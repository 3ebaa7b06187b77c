"""Trajectory files: one HDF5 (netCDF4-compatible) file per run, appended while training.

Layout
------
``/`` (attributes ``schema``, ``schema_version``, ``config`` (JSON), ``created``,
``spectral_probe_version``; 0-d variable ``run_status``: 0 writing, 1 closed,
2 failed, 3 interrupted) and one group per producer, e.g.::

    /scalars      step; loss, psnr, lr (step)
    /activations  step, layer, kind, bin, edge, freq; act_mean, act_std, act_kurtosis,
                  hist_outside (step, layer, kind), hist (step, layer, kind, bin),
                  hist_edges (step, layer, kind, edge), psd (step, layer, kind, freq)
    /ntk          step, mode, k; ...; static kernels (sample, sample2)
    /checkpoints  step, byte; state (step, byte) uint8 (see spectral_probe.training.checkpoint)

Every trajectory group has an unlimited ``step`` dimension (chunked datasets,
resized on each append) and a 0-d ``n_committed``: the number of leading rows
that are complete on disk.  Chunked numeric datasets carry Fletcher32 checksums; every
other value a reader trusts (0-d and text variables, attributes, the ``config`` JSON) is
covered by a digest written when the file is closed (schema 3, :mod:`~spectral_probe.store.digests`).
Dimensions are HDF5 dimension scales, so the file is valid netCDF4 and
``xarray.open_dataset(path, engine="h5netcdf", group="scalars")`` names every
dimension; plain ``h5py`` reads it too.

Writing protocol (SWMR)
-----------------------
A :class:`TrajectoryWriter` first takes the run's lock (``.NAME.h5.lock`` beside
the file, :mod:`~spectral_probe.store.filelock`): a second writer of the same path
is refused with the first one's PID and command.  It then has a *declare* phase
(groups, coordinate axes, variables, static data, attributes) and
:meth:`~TrajectoryWriter.start`, which switches HDF5 to single-writer/multiple-reader
mode (no new objects afterwards).  Until then the file is built under a temporary
name (a copy, when resuming), so ``path`` only ever holds a complete SWMR or closed
file; a run killed while declaring leaves ``path`` as it was and a
``.NAME.h5.PID.tmp`` file that the next writer of ``path`` removes.  Each append
resizes and writes the rows, and every ``flush_every`` appends the writer flushes
the data, then raises ``n_committed`` and flushes again.  Hence

* a live reader (:func:`open_run`, ``h5py.File(path, "r", swmr=True)``) sees a
  consistent file while the run writes;
* a run killed with SIGKILL leaves a file that opens with ``swmr=True`` (or
  through :func:`open_run`) and holds every committed row; :func:`recover`
  rewrites such a file so that non-SWMR tools (plain ``h5py.File(path)``,
  ``xarray.open_dataset`` without ``driver_kwds={"swmr": True}``) open it, and
  ``TrajectoryWriter(path, resume=True)`` continues it.  Rows after
  ``n_committed`` may hold fill values (NaN); :func:`open_run` drops them.
* a truncated or corrupted file is refused by :func:`open_run`, :func:`recover`
  and the writer (:class:`~spectral_probe.store.integrity.DamagedFileError`), in
  seconds: see :mod:`~spectral_probe.store.integrity`; its structure is walked in a
  forked child with a time limit first, so no read hangs (:mod:`~spectral_probe.store.guard`).

A write error (read-only location, full disk) raises ``OSError`` naming the
file and the number of committed rows, which stay readable.
"""

from .filelock import RunLock, RunLockedError, lock_holder, writer_alive
from .integrity import DamagedFileError
from .reader import list_groups, needs_recovery, open_run, read_config, verify_run
from .recover import recover
from .schema import (COMMITTED, SCHEMA_NAME, SCHEMA_VERSION, STATUS_CLOSED, STATUS_FAILED, STATUS_INTERRUPTED,
                     STATUS_NAMES, STATUS_WRITING, STEP, Var)
from .writer import TrajectoryWriter

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "STEP", "COMMITTED", "STATUS_WRITING", "STATUS_CLOSED", "STATUS_FAILED",
           "STATUS_INTERRUPTED", "STATUS_NAMES", "Var", "TrajectoryWriter", "open_run", "read_config", "list_groups",
           "recover", "needs_recovery", "verify_run", "DamagedFileError", "RunLock", "RunLockedError",
           "lock_holder", "writer_alive"]

