"""Expanding a sweep into runs, each named by a stable hash of its parameters."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

import numpy as np

from .config import SweepSpec
from .params import applies_to

__all__ = ["RunPlan", "resolve_params", "run_id", "expand"]

#: hex digits of the parameter hash kept in a run id (48 bits: no collision in any realistic sweep)
_HASH_DIGITS = 12


@dataclass(frozen=True)
class RunPlan:
    """One run of a sweep: its id and its parameters (only those that apply to its model)."""

    run_id: str
    params: dict


def resolve_params(params: dict) -> dict:
    """Drop the keys that do not apply to ``params["model"]`` (e.g. ``s0`` for siren); keys sorted."""
    model = params["model"]
    return {k: params[k] for k in sorted(params) if model in applies_to(k)}


def run_id(params: dict) -> str:
    """``"<model>-<hash>"``: the hash of the canonical JSON of the resolved parameters.

    ``run_id`` depends on the parameter values only (not on their order, the
    sweep they came from, the device or the executor), so a run shared by two
    sweeps writing to the same folder is trained once.
    """
    resolved = resolve_params(params)
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return f"{resolved['model']}-{hashlib.sha256(text.encode()).hexdigest()[:_HASH_DIGITS]}"


def expand(spec: SweepSpec) -> tuple[list[RunPlan], np.ndarray]:
    """The distinct runs of a validated sweep, and where each grid cell finds its run.

    Cells that differ only in keys that do not apply to their model (``s0`` for
    siren) share one run.

    Returns
    -------
    plans : list[RunPlan]
        Distinct runs in grid order.
    index : numpy.ndarray of int, shape (len(grid[k0]), len(grid[k1]), ...)
        ``plans[index[i, j, ...]]`` is the run of cell ``(i, j, ...)``.
    """
    keys = list(spec.grid)
    shape = tuple(len(spec.grid[k]) for k in keys)
    plans: list[RunPlan] = []
    position: dict[str, int] = {}
    index = np.empty(int(np.prod(shape)), dtype=np.int64)
    for cell, values in enumerate(itertools.product(*(spec.grid[k] for k in keys))):
        params = resolve_params({**spec.fixed, **dict(zip(keys, values))})
        rid = run_id(params)
        if rid not in position:
            position[rid] = len(plans)
            plans.append(RunPlan(rid, params))
        index[cell] = position[rid]
    return plans, index.reshape(shape)
