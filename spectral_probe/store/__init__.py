"""Trajectory files: one HDF5 (netCDF4-compatible) file per run, appended while training.

Layout
------
``/`` (attributes ``schema``, ``schema_version``, ``config`` (JSON), ``created``,
``spectral_probe_version``; 0-d variable ``run_status``: 0 writing, 1 closed, 2 failed)
and one group per producer, e.g.::

    /scalars      step; loss, psnr, lr (step)
    /activations  step, layer, kind, bin, edge, freq; act_mean, act_std, act_kurtosis,
                  hist_outside (step, layer, kind), hist (step, layer, kind, bin),
                  hist_edges (step, layer, kind, edge), psd (step, layer, kind, freq)
    /ntk          step, mode, k; ...; static kernels (sample, sample2)

Every trajectory group has an unlimited ``step`` dimension (chunked datasets,
resized on each append) and a 0-d ``n_committed``: the number of leading rows
that are complete on disk.  Dimensions are HDF5 dimension scales, so the file
is valid netCDF4 and ``xarray.open_dataset(path, engine="h5netcdf",
group="scalars")`` names every dimension; plain ``h5py`` reads it too.

Writing protocol (SWMR)
-----------------------
:class:`TrajectoryWriter` has a *declare* phase (groups, coordinate axes,
variables, static data, attributes) and then :meth:`~TrajectoryWriter.start`,
which switches HDF5 to single-writer/multiple-reader mode (no new objects
afterwards).  Until then the file is built under a temporary name (a copy, when
resuming), so ``path`` only ever holds a complete SWMR or closed file; a run
killed while declaring leaves ``path`` as it was (and a ``.NAME.PID.tmp`` file).  Each append resizes and writes the rows, and every
``flush_every`` appends the writer flushes the data, then raises
``n_committed`` and flushes again.  Hence

* a live reader (``h5py.File(path, "r", swmr=True)``, :func:`open_run`) sees a
  consistent file while the run writes;
* a run killed with SIGKILL leaves a file that opens with ``swmr=True`` (or
  through :func:`open_run`) and holds every committed row; :func:`recover`
  rewrites such a file so that non-SWMR tools (plain ``h5py.File(path)``,
  ``xarray.open_dataset`` without ``driver_kwds={"swmr": True}``) open it.
  Rows after ``n_committed`` may hold fill values (NaN); :func:`open_run` drops them.

A write error (read-only location, full disk) raises ``OSError`` naming the
file and the number of committed rows, which stay readable.
"""

from .reader import list_groups, needs_recovery, open_run, read_config, recover
from .recorder import TrainingRecorder
from .schema import COMMITTED, SCHEMA_NAME, SCHEMA_VERSION, STEP, Var
from .writer import TrajectoryWriter

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "STEP", "COMMITTED", "Var", "TrajectoryWriter", "TrainingRecorder",
           "open_run", "read_config", "list_groups", "recover", "needs_recovery"]
