"""Continuing a run file: pick the checkpoint, check the configuration, and rebuild the fit's state.

``train_to_file(..., resume=True)`` (CLI ``--resume``) continues a killed, interrupted
or finished run up to the requested epochs.  :func:`plan_resume` chooses the last
checkpoint ``s`` whose scalars (steps ``0 .. s-1``) are all committed; every group keeps
its rows at steps below ``s`` and the fit runs epochs ``s, s+1, ...`` from the
checkpoint's model, optimizer, scheduler, best-state and random states.  Rows a killed
run committed after its last checkpoint are dropped and recomputed, so on the same
device, seed and settings the resumed trajectory equals an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..store import open_run, read_config
from ..store.schema import config_differences
from ..store.integrity import DamagedFileError
from .checkpoint import (GROUP as CHECKPOINTS, Checkpoint, checkpoint_steps, damaged_checkpoints, read_checkpoint,
                         restore_state)
from .loop import TrainState

__all__ = ["ResumePoint", "plan_resume", "RESUMABLE_KEYS"]

#: configuration keys a resumed run may change (they do not change the trajectory)
RESUMABLE_KEYS = ("train.epochs", "train.device", "train.progress", "train.log_every",
                  "recording.checkpoint_every", "recording.record_every")


@dataclass
class ResumePoint:
    """Where and how a fit continues a run file (``fit(..., resume_from=point)``).

    Attributes
    ----------
    path
        The run file.
    step
        First epoch to run (the checkpoint's step; 0 when the file has no usable checkpoint).
    checkpoint
        The checkpoint read from the file (None: start from the initial model).
    previous
        ``group -> xarray.Dataset`` of the rows at steps below ``step``.
    wall_time
        Training seconds spent before ``step``.
    """

    path: Path
    step: int
    checkpoint: Checkpoint | None
    previous: dict = field(default_factory=dict)
    wall_time: float = 0.0
    notes: list[str] = field(default_factory=list)

    def restore(self, state: TrainState) -> int:
        """Load the checkpoint and the history into ``state``; returns the first epoch to run."""
        s = self.step
        if s > state.config.epochs:
            raise ValueError(f"run file '{self.path}' already holds {s} epochs; ask for at least that many "
                             f"(--epochs {s} or more), not {state.config.epochs}")
        if self.checkpoint is not None:
            self.notes += restore_state(state, self.checkpoint.arrays, self.checkpoint.meta, self.checkpoint.layout)
            state.info["checkpoint_layout"] = self.checkpoint.layout
        scalars = self.previous.get("scalars")
        if s and scalars is not None:
            state.losses[:s] = torch.as_tensor(scalars["loss"].values[:s], dtype=state.losses.dtype,
                                               device=state.losses.device)
            state.lrs[:s] = scalars["lr"].values[:s]
        elif s:
            state.losses[:s] = float("nan")
            state.lrs[:s] = np.nan
        state.previous = self.previous
        state.info["resumed_wall_time"] = self.wall_time
        return s

    def line(self) -> str:
        if self.checkpoint is None:
            return f"resuming '{self.path}' from the start (it holds no usable checkpoint after the initial state)"
        return (f"resuming '{self.path}' at epoch {self.step} (its last checkpoint; rows after it are recomputed)")


def _leading_steps(ds) -> int:
    """How many rows from step 0 on are present without a gap."""
    steps = ds["step"].values.astype(np.int64)
    expected = np.arange(steps.size)
    mismatch = np.flatnonzero(steps != expected)
    return int(mismatch[0]) if mismatch.size else int(steps.size)


def plan_resume(path: str | os.PathLike, config: dict | None = None, *, may_change=RESUMABLE_KEYS,
                scalars: str = "scalars", salvage: bool = False) -> ResumePoint:
    """Check ``path`` (integrity, configuration, every checkpoint kept) and choose where to continue it.

    Parameters
    ----------
    config
        The new run's configuration; keys other than ``may_change`` must equal the file's.
    salvage
        When a checkpoint the run would keep is damaged: continue from the newest intact
        checkpoint before the first damaged one (the epochs after it are recomputed, and
        the damaged checkpoints dropped) instead of refusing; the point's
        :attr:`~ResumePoint.notes` say so.

    Raises
    ------
    ValueError
        The configuration differs (one line naming the keys).
    DamagedFileError
        The file is truncated or corrupted, or (without ``salvage``) a checkpoint it keeps is damaged.
    """
    path = Path(path)
    stored = read_config(path, run=True)
    if config:
        diff = config_differences(stored, config, ignore=may_change)
        if diff:
            shown = ", ".join(f"{k} ({_get(stored, k)!r} in the file, {_get(config, k)!r} now)" for k in diff[:4])
            more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
            raise ValueError(f"cannot resume '{path}': the configuration differs in {shown}{more}; "
                             "pass the same settings, or write a new file (--overwrite or another --out)")
    tree = open_run(path)
    groups = {name: node.to_dataset() for name, node in tree.children.items()}
    steps = checkpoint_steps(path)
    covered = _leading_steps(groups[scalars]) if scalars in groups and "step" in groups[scalars].dims else None
    # step 0 (the initial state) is where a fresh fit starts anyway: starting afresh is exact and replays
    # the probes' step-0 rows from the same random states, so only later checkpoints are resume points
    usable = [int(s) for s in steps if s > 0 and (covered is None or s <= covered)]
    start = max(usable) if usable else 0
    notes = []
    damaged = damaged_checkpoints(path, up_to=start)
    if damaged:
        first = damaged[0]
        before = [int(s) for s in steps if s < first]           # all intact: ``first`` is the first damaged one
        listed = ", ".join(map(str, damaged))
        if not salvage or not before:
            where = (f"the newest intact checkpoint before it is at step {max(before)}; `train --resume --salvage` "
                     "(salvage=True in Python) continues from there" if before else "no intact checkpoint precedes it")
            raise DamagedFileError(path, f"checkpoint(s) at step {listed} fail their checksum; {where}")
        start = max(before)
        usable = [s for s in usable if s <= start]
        notes.append(f"checkpoint(s) at step {listed} of '{path}' are damaged: resuming from step {start} "
                     "instead (the epochs after it are recomputed, the damaged checkpoints dropped)")
    checkpoint = read_checkpoint(path, start) if usable else None
    previous = {}
    for name, ds in groups.items():
        if name == CHECKPOINTS or "step" not in ds.dims:
            continue
        previous[name] = ds.isel(step=np.flatnonzero(ds["step"].values < start))
    wall = float(checkpoint.meta.get("wall_time", 0.0)) if checkpoint is not None else 0.0
    return ResumePoint(path, start, checkpoint, previous, wall if np.isfinite(wall) else 0.0, notes)


def _get(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
