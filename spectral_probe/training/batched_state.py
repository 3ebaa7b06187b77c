"""A resumable :func:`~spectral_probe.training.batched.fit_batched`: the batch's whole training state in one file.

``fit_batched(models, target, config, checkpoint=BatchedCheckpoint(path, every=...))`` saves
the K models' stacked parameters, the shared Adam's moments and step, the scheduler, the
per-model best states and best losses, and the per-epoch losses and learning rates every
``every`` epochs, when the batch stops early (a :class:`~spectral_probe.training.Deadline`
on every model) and at the end.  Called again with the same models, target and settings
(``epochs`` may grow), it continues from the saved step; a full-batch fit uses no random
numbers, so the continued trajectories equal an uninterrupted batch's bit for bit on the
same device.

The file (HDF5) holds one row of bytes (:class:`~spectral_probe.training.checkpoint.StateLayout`:
entries ``param/<name>``, ``optimizer/<index>/<key>``, ``best/<name>``, ``best/loss``, JSON meta)
with a Fletcher32 checksum, and the ``losses (step, model)`` and ``lrs (step,)`` arrays.  It
is written to a temporary file and renamed over the old one, so a kill leaves the previous
state.  A file whose settings differ from the fit's (``key``, K, shapes, training settings)
or that fails its checksum is refused with a ``ValueError`` naming it, and left as it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import StateLayout, _to_tensor, optimizer_entries, optimizer_state
from ..validation import positive_int

__all__ = ["BatchedCheckpoint", "BATCHED_FORMAT"]

BATCHED_FORMAT = "spectral_probe.batched_state/1"
#: training settings a continued batch may change (they do not change the trajectory)
_MAY_CHANGE = ("epochs", "device", "progress", "log_every")


@dataclass
class _Saved:
    step: int
    wall_time: float
    arrays: dict
    meta: dict
    layout: StateLayout
    losses: np.ndarray
    lrs: np.ndarray


class BatchedCheckpoint:
    """Where and how often :func:`~spectral_probe.training.batched.fit_batched` saves its state.

    Parameters
    ----------
    path
        The state file (``.h5``); continued when it exists.
    key
        JSON-able description of the work (e.g. the runs' settings); a file saved under
        another key is refused.
    every
        Epochs between saves (None: only at an early stop and at the end).
    """

    def __init__(self, path: str | os.PathLike, key=None, every: int | None = None) -> None:
        self.path = Path(path)
        self.key = json.dumps(key, sort_keys=True, default=str)
        self.every = positive_int(every, "checkpoint every", allow_none=True)
        self.saved_steps: list[int] = []

    # ------------------------------------------------------------------ reading
    def read(self) -> _Saved | None:
        """The saved state, or None when there is no file; ValueError when it is damaged."""
        if not self.path.exists():
            return None
        import h5py

        try:
            with h5py.File(self.path, "r") as h5:
                if h5.attrs.get("format") != BATCHED_FORMAT:
                    raise ValueError(f"not a batched training state (format {h5.attrs.get('format')!r})")
                layout = StateLayout.from_json(h5.attrs["layout"])
                row = h5["state"][()]
                arrays, meta = layout.unpack(row)
                losses, lrs = h5["losses"][()], h5["lrs"][()]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"batched training state '{self.path}' cannot be read ({str(exc).splitlines()[0]}); "
                             "it was left as it is: move it away to start the batch afresh") from None
        step = int(meta["step"])
        if losses.shape[0] != step or lrs.shape[0] != step:
            raise ValueError(f"batched training state '{self.path}' is inconsistent (step {step}, "
                             f"{losses.shape[0]} losses); it was left as it is")
        return _Saved(step, float(meta.get("wall_time", 0.0)), arrays, meta, layout, losses, lrs)

    def check(self, saved: _Saved, k: int, config: dict, names: list[str]) -> None:
        """Refuse a saved state of other work (ValueError naming the file and the difference)."""
        meta = saved.meta
        why = []
        if meta.get("key") != self.key:
            why.append("its work key differs")
        if meta.get("k") != k:
            why.append(f"it holds {meta.get('k')} models, not {k}")
        if meta.get("names") != names:
            why.append("the parameter names differ")
        stored = {a: b for a, b in meta.get("config", {}).items() if a not in _MAY_CHANGE}
        now = {a: b for a, b in config.items() if a not in _MAY_CHANGE}
        diff = sorted(a for a in set(stored) | set(now) if stored.get(a) != now.get(a))
        if diff:
            why.append(f"training settings differ ({', '.join(diff)})")
        if saved.step > config["epochs"]:
            why.append(f"it already holds {saved.step} epochs, more than the {config['epochs']} asked for")
        if why:
            raise ValueError(f"batched training state '{self.path}' belongs to other work: {'; '.join(why)}; "
                             "it was left as it is")

    # ------------------------------------------------------------------ writing
    def save(self, step: int, wall_time: float, meta: dict, tensors: dict, losses: np.ndarray,
             lrs: np.ndarray) -> None:
        """Write the state after ``step`` updates (atomically: temporary file, then rename)."""
        import h5py

        meta = {**meta, "step": int(step), "wall_time": float(wall_time), "key": self.key}
        layout = StateLayout.build(tensors, meta)
        row = layout.pack(tensors, meta)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(tmp, "w") as h5:
                h5.attrs["format"] = BATCHED_FORMAT
                h5.attrs["layout"] = layout.to_json()
                h5.create_dataset("state", data=row, fletcher32=True, chunks=(min(row.size, 1 << 20),))
                h5.create_dataset("losses", data=np.asarray(losses, dtype=np.float64))
                h5.create_dataset("lrs", data=np.asarray(lrs, dtype=np.float64))
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self.saved_steps.append(int(step))

    def due(self, step: int, epochs: int, stop: bool) -> bool:
        return stop or step >= epochs or bool(self.every and step % self.every == 0)


def capture(stack_params: dict, optimizer, scheduler, best: list, best_loss, names: list[str]) -> tuple[dict, dict]:
    """Tensors and meta of a batch's state (see :class:`BatchedCheckpoint`)."""
    tensors = {f"param/{n}": stack_params[n].detach() for n in names}
    opt_tensors, meta = optimizer_entries(optimizer.state_dict())
    tensors.update(opt_tensors)
    meta.update(scheduler=scheduler.state_dict(), has_best=bool(best))
    for n, b in zip(names, best):
        tensors[f"best/{n}"] = b
    if best:
        tensors["best/loss"] = best_loss
    return tensors, meta


@torch.no_grad()
def restore(saved: _Saved, stack_params: dict, optimizer, scheduler, best: list, best_loss, names: list[str]) -> None:
    """Load a saved batch state into freshly built training objects."""
    dtype = {name: e.dtype for name, e in saved.layout.entries.items()}

    def tensor(name: str) -> torch.Tensor:
        return _to_tensor(saved.arrays[name], dtype[name])

    for n in names:
        stack_params[n].copy_(tensor(f"param/{n}"))
    opt = optimizer_state(saved.arrays, saved.meta, tensor)
    if opt["state"]:
        optimizer.load_state_dict(opt)
    scheduler.load_state_dict(saved.meta["scheduler"])
    if best:
        if not saved.meta.get("has_best"):
            raise ValueError("the batched state has no best state, but this fit restores the best state")
        for n, b in zip(names, best):
            b.copy_(tensor(f"best/{n}"))
        best_loss.copy_(tensor("best/loss"))
