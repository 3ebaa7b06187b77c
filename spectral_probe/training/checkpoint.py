"""Checkpoints of a fit in its run file: everything needed to continue it bit for bit, or to analyse it later.

A checkpoint at step ``s`` is the state after ``s`` updates, saved at the end of epoch
``s - 1`` (after the scheduler's step), all parts together.  A fresh fit also saves step 0,
the initial state, before its first update (the reference of every post-hoc comparison
with initialisation; its optimizer is marked ``optimizer_fresh``: Adam has no moments yet).
Every checkpoint holds:

* the model's ``state_dict`` (parameters and buffers);
* the optimizer's state tensors (Adam: ``step``, ``exp_avg``, ``exp_avg_sq``) and param groups;
* the scheduler's ``state_dict``;
* the best state so far (``restore_best``: the parameters with the lowest loss, and that loss);
* every random state: torch's CPU generator, each CUDA generator (when CUDA is in use),
  numpy's and Python's global generators, and the mini-batch order generator of :func:`fit`.

Layout in the run file (group ``checkpoints``): one row per checkpoint of the uint8
variable ``state (step, byte)``, the tensors' raw bytes one after the other, then a
zero-padded JSON block (``meta``: scheduler, optimizer param groups, non-tensor
state, Python/numpy generator positions, the best state's step, wall time).  The
group attribute ``layout`` (JSON) lists every entry: ``name``, ``dtype`` (torch's
name), ``shape``, ``offset``, ``nbytes``; an entry reads as
``np.frombuffer(row[offset:offset + nbytes], numpy_dtype).reshape(shape)``
(:func:`read_checkpoint` does it).  Entry names: ``model/<state_dict key>``,
``optimizer/<param index>/<key>``, ``best/<param index>``, ``best/loss``,
``rng/torch``, ``rng/cuda/<i>``, ``rng/numpy``, ``rng/python``, ``rng/loader``.
Bytes, not floats, keep every dtype exact (float32 parameters, complex WIRE layers,
uint8 generator states); the Fletcher32 checksum of each row catches corruption.

Size: about four times the parameters' bytes (parameters, two Adam moments, the
best state) plus 15 kB of generator states and 4 kB of JSON: 817,984 bytes per checkpoint for the quick
preset's 4 x 128 SIREN (49,921 parameters).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from ..cadence import completed_epochs, is_due
from ..store import TrajectoryWriter, Var
from ..validation import positive_int
from .loop import ORDERS, TrainState
from .recording import RunRecorder

__all__ = ["GROUP", "DATA", "StateLayout", "capture_state", "restore_state", "optimizer_entries", "optimizer_state",
           "Checkpointer", "Checkpoint",
           "read_checkpoint", "checkpoint_steps", "checkpoint_bytes", "default_checkpoint_every",
           "damaged_checkpoints"]

GROUP, DATA = "checkpoints", "state"
_META_MIN_BYTES = 4096

_NUMPY_VIEW = {torch.bfloat16: np.int16}


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().contiguous()
    if t.dtype in _NUMPY_VIEW:
        t = t.view(getattr(torch, np.dtype(_NUMPY_VIEW[t.dtype]).name))
    return t.numpy()


def _numpy_dtype(torch_dtype: str) -> np.dtype:
    dtype = getattr(torch, torch_dtype.replace("torch.", ""))
    if dtype in _NUMPY_VIEW:
        return np.dtype(_NUMPY_VIEW[dtype])
    return torch.empty((), dtype=dtype).numpy().dtype


def _to_tensor(values: np.ndarray, torch_dtype: str) -> torch.Tensor:
    dtype = getattr(torch, torch_dtype.replace("torch.", ""))
    out = torch.from_numpy(np.array(values))
    return out.view(dtype) if dtype in _NUMPY_VIEW else out


# --------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Entry:
    name: str
    dtype: str          #: torch dtype name, e.g. "torch.float32"
    shape: tuple
    offset: int
    nbytes: int


class StateLayout:
    """Where each tensor of a checkpoint lies in the row of bytes, and the size of the JSON block."""

    def __init__(self, entries: list[Entry], meta_offset: int, meta_bytes: int) -> None:
        self.entries = {e.name: e for e in entries}
        self.meta_offset, self.meta_bytes = int(meta_offset), int(meta_bytes)

    @property
    def nbytes(self) -> int:
        return self.meta_offset + self.meta_bytes

    @classmethod
    def build(cls, tensors: Mapping[str, torch.Tensor], meta: dict) -> "StateLayout":
        entries, offset = [], 0
        for name, t in tensors.items():
            nbytes = t.numel() * t.element_size()
            entries.append(Entry(name, str(t.dtype), tuple(t.shape), offset, nbytes))
            offset += nbytes
        meta_bytes = max(_META_MIN_BYTES, 2 * len(_meta_json(meta)) + 1024)
        return cls(entries, offset, meta_bytes)

    def to_json(self) -> str:
        return json.dumps({"entries": [{"name": e.name, "dtype": e.dtype, "shape": list(e.shape),
                                        "offset": e.offset, "nbytes": e.nbytes} for e in self.entries.values()],
                           "meta_offset": self.meta_offset, "meta_bytes": self.meta_bytes})

    @classmethod
    def from_json(cls, text: str) -> "StateLayout":
        raw = json.loads(text)
        return cls([Entry(e["name"], e["dtype"], tuple(e["shape"]), e["offset"], e["nbytes"]) for e in raw["entries"]],
                   raw["meta_offset"], raw["meta_bytes"])

    def pack(self, tensors: Mapping[str, torch.Tensor], meta: dict) -> np.ndarray:
        """One row of bytes; the tensors must match the layout exactly."""
        if set(tensors) != set(self.entries):
            extra, missing = sorted(set(tensors) - set(self.entries)), sorted(set(self.entries) - set(tensors))
            raise ValueError(f"the training state no longer matches the checkpoint layout (new: {extra}, "
                             f"gone: {missing}); checkpoints need a fixed set of tensors")
        row = np.zeros(self.nbytes, dtype=np.uint8)
        for name, t in tensors.items():
            e = self.entries[name]
            if tuple(t.shape) != e.shape or str(t.dtype) != e.dtype:
                raise ValueError(f"checkpoint entry {name!r} changed from {e.dtype} {e.shape} to "
                                 f"{t.dtype} {tuple(t.shape)}")
            row[e.offset:e.offset + e.nbytes] = _to_numpy(t).reshape(-1).view(np.uint8)
        text = _meta_json(meta).encode()
        if len(text) > self.meta_bytes:
            raise ValueError(f"checkpoint metadata needs {len(text)} bytes, the layout holds {self.meta_bytes}")
        row[self.meta_offset:self.meta_offset + len(text)] = np.frombuffer(text, dtype=np.uint8)
        return row

    def unpack(self, row: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """``(arrays by entry name, meta)`` from one row."""
        row = np.asarray(row, dtype=np.uint8)
        arrays = {name: row[e.offset:e.offset + e.nbytes].view(_numpy_dtype(e.dtype)).reshape(e.shape)
                  for name, e in self.entries.items()}
        meta = json.loads(bytes(row[self.meta_offset:self.nbytes]).rstrip(b"\0").decode() or "{}")
        return arrays, meta


def _meta_json(meta: dict) -> str:
    return json.dumps(meta, sort_keys=True, allow_nan=True, default=_json_default)


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --------------------------------------------------------------------------- capture / restore
def _optimizer_state_dict(optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's ``state_dict``; before its first step, that of a copy after one zero-gradient step.

    The layout of a run file's checkpoints is fixed before SWMR writing starts, while
    Adam creates its moments lazily in the first step.
    """
    if optimizer.state:
        return optimizer.state_dict()
    clones = {}
    groups = []
    for group in optimizer.param_groups:
        params = []
        for p in group["params"]:
            if id(p) not in clones:
                clones[id(p)] = p.detach().clone().requires_grad_(p.requires_grad)
            params.append(clones[id(p)])
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": params})
    dry = type(optimizer)(groups, **optimizer.defaults)
    for p in clones.values():
        p.grad = torch.zeros_like(p)
    dry.step()
    return dry.state_dict()


def capture_state(state: TrainState, step: int, *, wall_time: float = math.nan,
                  cuda: bool | None = None) -> tuple[dict, dict]:
    """Tensors and JSON metadata of the whole training state after ``step`` updates.

    ``cuda``: include the CUDA generators (default: when CUDA is initialised).
    """
    tensors: dict[str, torch.Tensor] = {}
    meta: dict = {"step": int(step), "wall_time": float(wall_time)}
    for key, t in state.model.state_dict().items():
        tensors[f"model/{key}"] = t
    if not state.optimizer.state:
        meta["optimizer_fresh"] = True     # the moments below are a layout placeholder, not the state
    opt_tensors, opt_meta = optimizer_entries(_optimizer_state_dict(state.optimizer))
    tensors.update(opt_tensors)
    meta.update(opt_meta)
    meta["scheduler"] = state.scheduler.state_dict()
    tracker = state.tracker
    if tracker is not None:
        for i, b in enumerate(tracker.best):
            tensors[f"best/{i}"] = b
        tensors["best/loss"] = tracker.best_loss
        losses = state.losses[:step].detach().double().cpu().numpy() if step else np.zeros(0)
        best = int(np.nanargmin(losses)) if losses.size and np.any(np.isfinite(losses)) else -1
        after = type(tracker).__name__ == "_MinibatchBest"
        meta["best_step"] = -1 if best < 0 else best + (1 if after else 0)
    if state.generator is not None:
        tensors["rng/loader"] = state.generator.get_state()
    tensors["rng/torch"] = torch.get_rng_state()
    if cuda is None:
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(key, dtype=np.uint32).view(np.int32).copy())
    meta["rng_numpy"] = [kind, int(pos), int(has_gauss), float(gauss)]
    version, internal, gauss_next = random.getstate()
    tensors["rng/python"] = torch.from_numpy(np.asarray(internal, dtype=np.uint32).view(np.int32).copy())
    meta["rng_python"] = [version, gauss_next]
    return tensors, meta


def optimizer_entries(state_dict: dict) -> tuple[dict, dict]:
    """An optimizer ``state_dict`` as checkpoint entries: tensors ``optimizer/<param index>/<key>`` and the
    JSON meta ``optimizer_groups`` (param groups) and ``optimizer_values`` (non-tensor state)."""
    tensors, values = {}, {}
    for index, state in state_dict["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                values[f"{index}/{key}"] = value
    return tensors, {"optimizer_groups": state_dict["param_groups"], "optimizer_values": values}


def optimizer_state(arrays: Mapping[str, np.ndarray], meta: dict, tensor) -> dict:
    """The optimizer ``state_dict`` from checkpoint entries (``tensor(name)`` reads one entry)."""
    state: dict = {}
    for name in arrays:
        if name.startswith("optimizer/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = tensor(name)
    for name, value in meta.get("optimizer_values", {}).items():
        index, key = name.split("/", 1)
        state.setdefault(int(index), {})[key] = value
    if meta.get("optimizer_fresh"):        # before the first update: the entries are layout placeholders
        state = {}
    return {"state": state, "param_groups": meta["optimizer_groups"]}


def restore_state(state: TrainState, arrays: Mapping[str, np.ndarray], meta: dict, layout: StateLayout) -> list[str]:
    """Load a captured state into a fresh fit's objects; returns notes (e.g. CUDA generators left alone)."""
    notes = []
    dtype = {name: e.dtype for name, e in layout.entries.items()}

    def tensor(name: str) -> torch.Tensor:
        return _to_tensor(arrays[name], dtype[name])

    model_sd = {k[len("model/"):]: tensor(k) for k in arrays if k.startswith("model/")}
    state.model.load_state_dict(model_sd)
    state.optimizer.load_state_dict(optimizer_state(arrays, meta, tensor))
    state.scheduler.load_state_dict(meta["scheduler"])
    if state.tracker is not None:
        if "best/loss" not in arrays:
            raise ValueError("the checkpoint has no best state, but this fit restores the best state")
        with torch.no_grad():
            for i, b in enumerate(state.tracker.best):
                b.copy_(tensor(f"best/{i}"))
            state.tracker.best_loss.copy_(tensor("best/loss"))
    if state.generator is not None and "rng/loader" in arrays:
        state.generator.set_state(tensor("rng/loader"))
    torch.set_rng_state(tensor("rng/torch"))
    cuda = sorted(k for k in arrays if k.startswith("rng/cuda/"))
    if cuda:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all([tensor(k) for k in cuda])
        else:
            notes.append(f"the checkpoint holds {len(cuda)} CUDA generator state(s) but this machine has "
                         f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} CUDA device(s); "
                         "they were not restored")
    kind, pos, has_gauss, gauss = meta["rng_numpy"]
    np.random.set_state((kind, np.asarray(arrays["rng/numpy"]).view(np.uint32).copy(), pos, has_gauss, gauss))
    version, gauss_next = meta["rng_python"]
    random.setstate((version, tuple(int(v) for v in np.asarray(arrays["rng/python"]).view(np.uint32)), gauss_next))
    return notes


def checkpoint_bytes(state: TrainState) -> int:
    """Bytes of one checkpoint row of ``state`` (the size it adds to the run file)."""
    tensors, meta = capture_state(state, 0)
    return StateLayout.build(tensors, meta).nbytes


def default_checkpoint_every(epochs: int, record_every: int = 50) -> int:
    """About 20 checkpoints per run, no more often than every ``record_every`` epochs (a multiple of 10)."""
    return max(int(record_every), 10 * math.ceil(epochs / 20 / 10))


# --------------------------------------------------------------------------- callback
class Checkpointer(RunRecorder):
    """Save the training state at step 0 (a fresh fit's initial state, before its first update), every
    ``every`` epochs, at the last epoch, and when the fit stops early.

    Its ``order`` is ``last`` (:data:`~spectral_probe.training.loop.ORDERS`): :func:`fit` calls it after
    every other callback, so it sees the stop requests made in that epoch and saves the random states
    after every draw of it.  Before a row is appended the writer's commit hooks run, so the scalars up
    to the checkpoint are committed with it.

    Parameters
    ----------
    writer
        The run's :class:`~spectral_probe.store.TrajectoryWriter` (declare phase at ``on_fit_start``).
    every
        Epochs between checkpoints; None: only the final one (and early stops).
    """

    order = ORDERS["last"]
    data_attributes = ("writer", "layout", "saved")

    def __init__(self, writer: TrajectoryWriter, every: int | None = None, group: str = GROUP) -> None:
        every = positive_int(every, "checkpoint every", allow_none=True)
        self.writer, self.every, self.group = writer, every, group
        self.layout: StateLayout | None = None
        self.saved: list[int] = []
        self._t0 = 0.0
        self._wall_before = 0.0
        self._cuda = False

    def prepare(self, state: TrainState) -> None:
        stored = state.info.get("checkpoint_layout")        # a resumed fit keeps the file's layout
        self._cuda = (any(n.startswith("rng/cuda/") for n in stored.entries) if stored is not None else None)
        tensors, meta = capture_state(state, state.start_epoch, cuda=self._cuda)
        self.layout = stored if stored is not None else StateLayout.build(tensors, meta)
        self.layout.pack(tensors, meta)                      # the state fits the layout (raises otherwise)
        self._cuda = any(name.startswith("rng/cuda/") for name in self.layout.entries)

    def declare(self, writer=None) -> None:
        (writer or self.writer).declare(self.group, variables={
            DATA: Var(("byte",), "u1", attrs={"long_name": "training state after `step` updates (raw bytes + JSON)"}),
        }, coords={"byte": self.layout.nbytes},
            attrs={"layout": self.layout.to_json(), "every": self.every or 0,
                   "format": "see spectral_probe.training.checkpoint; entries in the 'layout' attribute"})

    def previous(self, state: TrainState):
        return None             # a resumed fit keeps the file's checkpoints before its own; nothing to rebuild

    def begin(self, state: TrainState) -> None:
        self._t0 = time.perf_counter()
        self._wall_before = float(state.info.get("resumed_wall_time", 0.0))
        self.saved = []

    def rows_since(self, step: int):
        """The steps ``>= step`` checkpointed by this fit (the states themselves are in the file only)."""
        import xarray as xr

        steps = [s for s in self.saved if s >= int(step)]
        if not steps:
            return None
        return xr.Dataset(coords={"step": np.asarray(steps, dtype=np.int64)},
                          attrs={"every": self.every or 0, "bytes_per_checkpoint": self.bytes_per_checkpoint})

    @property
    def bytes_per_checkpoint(self) -> int:
        return self.layout.nbytes if self.layout is not None else 0

    def on_epoch_start(self, state: TrainState) -> None:
        if state.start_epoch == 0 and completed_epochs(state) == 0:
            self.save(state, 0)            # the initial state (a resumed fit already has it, or never will)

    def on_epoch_end(self, state: TrainState) -> None:
        step = completed_epochs(state)
        if (self.every and is_due(step, self.every)) or step >= state.config.epochs or state.stop:
            self.save(state, step)

    def save(self, state: TrainState, step: int) -> None:
        """Append the checkpoint of ``state`` (after ``step`` updates) and commit it."""
        if self.writer.last_step(self.group) is not None and self.writer.last_step(self.group) >= step:
            return
        wall = self._wall_before + time.perf_counter() - self._t0
        tensors, meta = capture_state(state, step, wall_time=wall, cuda=self._cuda)
        self.writer.append(self.group, step, **{DATA: self.layout.pack(tensors, meta)})
        self.writer.flush()
        self.saved.append(step)


# --------------------------------------------------------------------------- reading
@dataclass
class Checkpoint:
    """One checkpoint read from a run file: ``arrays`` by entry name, ``meta``, and the layout."""

    step: int
    arrays: dict[str, np.ndarray]
    meta: dict
    layout: StateLayout

    def model_state(self, best: bool = False, parameter_names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """The model's ``state_dict`` of this checkpoint, or (``best``) with the best state's parameters."""
        sd = {k[len("model/"):]: _to_tensor(v, self.layout.entries[k].dtype)
              for k, v in self.arrays.items() if k.startswith("model/")}
        if best:
            if "best/loss" not in self.arrays:
                raise ValueError(f"checkpoint at step {self.step} holds no best state (trained with restore_best=False)")
            if parameter_names is None:
                raise ValueError("parameter_names are needed to map the best state onto the model")
            for i, name in enumerate(parameter_names):
                sd[name] = _to_tensor(self.arrays[f"best/{i}"], self.layout.entries[f"best/{i}"].dtype)
        return sd


def checkpoint_steps(path) -> np.ndarray:
    """Steps of the committed checkpoints of a run file (empty when it has none)."""
    from ..store.reader import open_checked

    with open_checked(path, run=True) as h5:
        if GROUP not in h5:
            return np.zeros(0, dtype=np.int64)
        n = int(h5[GROUP]["n_committed"][()])
        return h5[GROUP]["step"][:n].astype(np.int64)


def read_checkpoint(path, step: int | None = None) -> Checkpoint:
    """Read the checkpoint at ``step`` (None: the last one) of a run file, checksums checked.

    Raises
    ------
    ValueError
        The file has no checkpoint at ``step`` (the message lists the steps it has).
    """
    from ..store.integrity import DamagedFileError
    from ..store.reader import open_checked

    with open_checked(path, run=True) as h5:
        if GROUP not in h5 or int(h5[GROUP]["n_committed"][()]) == 0:
            raise ValueError(f"run file '{path}' holds no checkpoint (written before checkpoints existed, or "
                             "stopped before the first); train with --checkpoint-every N")
        g = h5[GROUP]
        n = int(g["n_committed"][()])
        steps = g["step"][:n].astype(np.int64)
        if step is None:
            index = n - 1
        else:
            hits = np.flatnonzero(steps == int(step))
            if not hits.size:
                raise ValueError(f"run file '{path}' has no checkpoint at step {step}; checkpoints at steps "
                                 f"{_list_steps(steps)}")
            index = int(hits[0])
        layout = StateLayout.from_json(g.attrs["layout"])
        try:
            row = g[DATA][index]
        except (OSError, RuntimeError) as exc:
            raise DamagedFileError(path, f"checkpoint at step {steps[index]} fails its checksum ({exc})") from exc
    arrays, meta = layout.unpack(row)
    return Checkpoint(int(steps[index]), arrays, meta, layout)


def damaged_checkpoints(path, up_to: int | None = None) -> list[int]:
    """Steps of the committed checkpoints (at steps ``<= up_to``) whose bytes fail their checksum.

    Every row is read once (Fletcher32 is checked chunk by chunk), so a resumed run
    never keeps a damaged checkpoint (see :func:`~spectral_probe.training.resume.plan_resume`).
    """
    from ..store.reader import open_checked

    bad = []
    with open_checked(path, run=True) as h5:
        if GROUP not in h5:
            return bad
        g = h5[GROUP]
        n = int(g["n_committed"][()])
        for index, step in enumerate(g["step"][:n].astype(np.int64)):
            if up_to is not None and step > up_to:
                break
            try:
                g[DATA][index]
            except (OSError, RuntimeError):
                bad.append(int(step))
    return bad


def _list_steps(steps: np.ndarray) -> str:
    values = [str(int(s)) for s in steps]
    return ", ".join(values) if len(values) <= 12 else ", ".join(values[:5] + ["..."] + values[-5:])
