"""Sweeps: many independent training runs, one run file each, combined into one Dataset.

The unit of work is :func:`run_one`: train one configuration and write
``<outdir>/runs/<run_id>.h5`` (``run_id`` = model + a hash of the run's
parameters).  A sweep is

1. a :class:`SweepSpec` from a TOML file (:func:`load_config`) and/or
   ``--grid KEY=V1,V2`` arguments (:func:`parse_grid_args`), validated;
2. :func:`plan_sweep`: the product of the grid lists, minus the runs whose file is
   already complete (resume); every run left is checked before anything starts
   (:func:`validate_runs`: ranges, model arguments, readable targets, the device);
3. :func:`run_sweep`: dispatch through an executor (:func:`make_executor`: a local
   process pool, submitit/Slurm job arrays, or a dask.distributed scheduler),
   recording failures without stopping the others;
4. :func:`combine`: every run file into one xarray Dataset with one dimension per
   grid key plus ``epoch``, saved to ``<outdir>/sweep.h5`` (read it with
   :func:`load_sweep`).

>>> spec = SweepSpec(fixed={"target": "synthetic:high", "epochs": 20, "width": 16, "depth": 2},
...                  grid={"model": ["siren", "siren2"], "seed": [0, 1]})
>>> report = run_sweep(plan_sweep(spec, "sweeps/demo"))          # doctest: +SKIP
>>> load_sweep("sweeps/demo").best_psnr.sel(model="siren2")      # doctest: +SKIP
"""

from .combine import combine, load_sweep
from .config import SweepSpec, load_config, parse_grid_args, parse_set_args
from .executors import DaskExecutor, FuturesExecutor, LocalExecutor, SubmititExecutor, SweepExecutor, make_executor
from .grid import RunPlan, expand, run_id
from .params import valid_keys
from .runner import SweepPlan, SweepReport, plan_sweep, run_sweep
from .unit import RunTask, is_complete, run_one
from .validate import Problem, SweepValidationError, validate_runs

__all__ = ["SweepSpec", "load_config", "parse_grid_args", "parse_set_args", "valid_keys", "RunPlan", "expand",
           "run_id", "RunTask", "run_one", "is_complete", "SweepExecutor", "FuturesExecutor", "LocalExecutor",
           "SubmititExecutor", "DaskExecutor", "make_executor", "SweepPlan", "SweepReport", "plan_sweep",
           "run_sweep", "combine", "load_sweep", "validate_runs", "Problem", "SweepValidationError"]
