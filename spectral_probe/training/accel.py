"""GPU throughput options of :func:`~spectral_probe.training.fit`: float32 precision and CUDA graphs.

Two concerns, kept out of the training loop itself:

* :func:`float32_matmul` (from :mod:`spectral_probe.torch_settings`) -- full float32 (``"highest"``)
  or TF32 matrix products.
  A 60 dB PSNR is an MSE of 1e-6 on [-1, 1] targets, i.e. about 1e-3 relative
  accuracy of the output; TF32's 10-bit mantissa (relative error ~5e-4 per
  product, more after accumulation over 222-256 inputs) is at that edge, so the
  paper-scale runs keep full float32 and record the setting.
* :class:`GraphedEpoch` -- ``TrainConfig(cuda_graphs=True)``: one full-batch
  epoch (zero_grad, forward, backward, best-state update, Adam step) is
  captured once as a CUDA graph and replayed every epoch, which removes the
  per-kernel launch cost that dominates small problems on a GPU (the quick
  preset: ~50 small kernels per epoch).  The first ``warmup`` epochs run
  eagerly on a side stream (they are real epochs: their losses are kept), so
  cuBLAS handles and the compiled loss (``compile=True``) exist before the
  capture.  Adam runs with ``capturable=True`` (its step count lives on the
  device); the learning rate is a device scalar inside the graph, refreshed
  from the optimizer's float before a replay when a scheduler changed it.

When CUDA graphs are not used
    On a CPU or MPS device (there are no CUDA graphs there), in mini-batch mode
    (every batch has a different index tensor), or when the capture fails, the
    loop runs eagerly with the same arithmetic; :attr:`GraphedEpoch.note` says
    why and :func:`~spectral_probe.training.fit` adds it to ``FitResult.notes``.

Limits
    Callbacks still run between replays and see the live model (probes work),
    but a callback that replaces parameter or optimizer-state tensors (instead
    of copying into them) after the capture is not seen by the graph.  Adam's
    ``capturable`` arithmetic computes the bias corrections on the device, so a
    graphed run matches an eager one to round-off, not bit for bit.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable

import torch

from ..torch_settings import float32_matmul, precision_settings

__all__ = ["float32_matmul", "precision_settings", "GraphedEpoch", "cuda_graphs_supported"]

log = logging.getLogger(__name__)

#: eager epochs before the capture (allocator, cuBLAS handles, torch.compile's first call)
DEFAULT_WARMUP = 3


def cuda_graphs_supported(device: torch.device, full_batch: bool) -> str:
    """Empty string when an epoch on ``device`` can be captured; else the reason it cannot."""
    if device.type != "cuda":
        return f"cuda_graphs=True ignored on {device.type} (CUDA graphs need a CUDA device); ran eagerly"
    if not full_batch:
        return "cuda_graphs=True ignored in mini-batch mode (only full-batch epochs are captured); ran eagerly"
    return ""


class _InPlaceUpdates:
    """Proxy of a best-state tracker whose ``update`` writes back into the tensors it had before.

    A CUDA graph replays the memory addresses seen during the capture.  A tracker
    that rebinds an attribute (``self.best_loss = torch.where(...)``) would leave
    the graph reading the pre-capture tensor forever; the proxy copies every
    rebound tensor (or list element) back into the original one, inside the
    capture, and restores the binding.  In eager mode it is a no-op wrapper.
    """

    def __init__(self, tracker) -> None:
        self._tracker = tracker

    def update(self, loss: torch.Tensor) -> None:
        before = _tensor_slots(self._tracker)
        self._tracker.update(loss)
        after = _tensor_slots(self._tracker)
        with torch.no_grad():
            for key, old in before.items():
                new = after.get(key)
                if new is not None and new is not old:
                    old.copy_(new)
                    _rebind(self._tracker, key, old)

    def __getattr__(self, name):
        return getattr(self._tracker, name)


def _tensor_slots(obj) -> dict:
    """``{(attr, index or None): tensor}`` for tensor attributes and lists/tuples of tensors."""
    slots = {}
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            slots[(name, None)] = value
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    slots[(name, i)] = item
    return slots


def _rebind(obj, key, tensor) -> None:
    name, index = key
    if index is None:
        setattr(obj, name, tensor)
        return
    container = getattr(obj, name)
    if isinstance(container, tuple):
        items = list(container)
        items[index] = tensor
        setattr(obj, name, type(container)(items))
    else:
        container[index] = tensor


class GraphedEpoch:
    """Drop-in for the loop's full-batch epoch function that replays a captured CUDA graph.

    Call it like the eager epoch: ``loss = graphed(state, tracker, loss_fn)``.
    It returns a 0-d device tensor holding the epoch's loss (before the update);
    the tensor is reused by the next replay, so copy it to keep it (the loop
    stores it in ``state.losses[epoch]``).

    Parameters
    ----------
    eager_epoch
        The eager epoch function ``(state, tracker, loss_fn) -> loss``.
    optimizer
        The loop's optimizer; switched to ``capturable=True`` here (before its
        first step) where the device supports the capture.
    device
        The training device.
    full_batch
        Whether the loop runs full-batch epochs.
    notes
        A list that receives :attr:`note` (why the epochs ran eagerly), when there is one.
    warmup
        Eager epochs before the capture.
    """

    def __init__(self, eager_epoch: Callable, optimizer: torch.optim.Optimizer, device: torch.device,
                 full_batch: bool, *, notes: list | None = None, warmup: int = DEFAULT_WARMUP) -> None:
        self.eager_epoch = eager_epoch
        self.optimizer = optimizer
        self.device = torch.device(device)
        self.warmup = max(1, int(warmup))
        self.note = cuda_graphs_supported(self.device, full_batch)
        self.active = not self.note
        self._notes = notes if notes is not None else []
        if self.note:
            self._notes.append(self.note)
        self.graph = None
        self.static_loss: torch.Tensor | None = None
        self._lr_tensors: list[torch.Tensor] = []
        self._lr_values: list[float] = []
        self._calls = 0
        self.replays = 0
        if self.active:
            for group in optimizer.param_groups:
                if "capturable" in group:
                    group["capturable"] = True
            self._stream = torch.cuda.Stream(self.device)

    def __call__(self, state, tracker, loss_fn) -> torch.Tensor:
        if not self.active:
            return self.eager_epoch(state, tracker, loss_fn)
        self._calls += 1
        if self._calls <= self.warmup:
            return self._side_stream_epoch(state, tracker, loss_fn)
        if self.graph is None:
            self._capture(state, tracker, loss_fn)
            if self.graph is None:       # the capture failed: eager from here on
                return self.eager_epoch(state, tracker, loss_fn)
        self._refresh_lr()
        self.graph.replay()
        self.replays += 1
        return self.static_loss

    def _side_stream_epoch(self, state, tracker, loss_fn) -> torch.Tensor:
        """An eager epoch on a side stream (what the capture will record), then rejoin."""
        self._stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._stream):
            loss = self.eager_epoch(state, _InPlaceUpdates(tracker) if tracker is not None else None, loss_fn)
        torch.cuda.current_stream(self.device).wait_stream(self._stream)
        return loss

    def _capture(self, state, tracker, loss_fn) -> None:
        groups = self.optimizer.param_groups
        lr_floats = [float(g["lr"]) for g in groups]
        self._lr_tensors = [torch.tensor(v, dtype=torch.float32, device=self.device) for v in lr_floats]
        self._lr_values = list(lr_floats)
        saved = _tensor_slots(tracker) if tracker is not None else {}
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        try:
            for g, t in zip(groups, self._lr_tensors):
                g["lr"] = t
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph):
                proxy = _InPlaceUpdates(tracker) if tracker is not None else None
                self.static_loss = self.eager_epoch(state, proxy, loss_fn)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: continue eagerly
            self._fail(f"CUDA graph capture failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                       "training continues eagerly")
            for key, tensor in saved.items():
                _rebind(tracker, key, tensor)
            self.optimizer.zero_grad(set_to_none=True)
            graph = None
        finally:
            for g, v in zip(groups, lr_floats):
                g["lr"] = v       # the scheduler and the loop keep working with floats
        self.graph = graph

    def _fail(self, message: str) -> None:
        self.active = False
        self.note = message
        self._notes.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _refresh_lr(self) -> None:
        """Copy a changed learning rate (a float set by the scheduler) into the graph's device scalar."""
        for i, group in enumerate(self.optimizer.param_groups):
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):       # someone stored a tensor: take its value once
                lr = float(lr)
                group["lr"] = lr
            if lr != self._lr_values[i]:
                self._lr_tensors[i].fill_(lr)
                self._lr_values[i] = lr
