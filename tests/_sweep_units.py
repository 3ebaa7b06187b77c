"""Units of work for the sweep tests; importable by spawned worker processes (tests/ is on their sys.path)."""

from __future__ import annotations

import os

from spectral_probe.sweep import run_one


def crash_on_siren_seed1(task):
    """Kill the worker process (as the OOM killer would) for siren seed 1; train the others."""
    if task.params["model"] == "siren" and task.params["seed"] == 1:
        os._exit(9)
    return run_one(task)


def raise_for_everything(task):
    """An executor-level failure for every task."""
    raise ConnectionError(f"lost the worker running {task.run_id}")
