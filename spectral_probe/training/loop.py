"""The bundled training loop: a pure training step, callbacks, and :func:`fit`.

Defaults follow the WINNER authors' setup: Adam, learning rate 1e-4 decayed by
1% every 20 epochs (``StepLR(step_size=20, gamma=0.99)``), MSE loss, full batch
when it fits in memory, PSNR ``= 10 log10(peak^2 / MSE)`` with ``peak = 1`` on
targets scaled to [-1, 1], and the best state (lowest loss *before* the update
of its epoch) restored at the end.

The loop avoids host synchronisation: per-epoch losses stay on the device and
the best parameters are tracked with ``torch.where``; the host reads them every
``log_every`` epochs (progress bar) and at the end.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..devices import available_memory_bytes, resolve_device
from ..signals import Target
from ..validation import positive_float, positive_int

__all__ = ["TrainConfig", "TrainState", "FitResult", "Callback", "Deadline", "train_step", "mse_loss", "fit",
           "psnr_from_mse", "full_batch_bytes", "auto_batch_size", "ORDERS", "ordered"]

log = logging.getLogger(__name__)

#: activation tensors kept per hidden unit and sample for the backward pass
#: (linear output, pre-activation, post-activation, their gradients), float32
_BYTES_PER_UNIT = 6 * 4


def psnr_from_mse(mse, peak: float = 1.0):
    """PSNR in dB, ``10 log10(peak^2 / mse)``; works on floats, arrays and tensors."""
    if isinstance(mse, torch.Tensor):
        return 10.0 * torch.log10(peak * peak / mse)
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak * peak / mse)


@dataclass
class TrainConfig:
    """Settings of :func:`fit`.

    Attributes
    ----------
    epochs
        Passes over the data.
    lr, lr_step, lr_gamma
        Adam learning rate and its ``StepLR`` decay (per epoch).
    batch_size
        Samples per step; None = full batch if it fits in ``memory_fraction`` of
        free memory, else the largest batch that does (a warning says so).
    seed
        Seed for the mini-batch order.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
    restore_best
        Load the best parameters into the model at the end.
    log_every
        Epochs between host reads of the loss (progress bar, logging).
    progress
        Show a tqdm progress bar.
    peak
        Peak value of the PSNR.
    compile
        Run the loss (forward and backward) through ``torch.compile``, which
        fuses the elementwise work of the activations; the first epoch pays the
        compilation (seconds), later ones run ~1.5x faster on a CPU.  Falls back
        to eager mode, with a warning, where compilation fails.
    cuda_graphs
        Capture a full-batch epoch as a CUDA graph and replay it (removes the
        kernel-launch cost of small problems on a GPU); ignored, with a note in
        ``FitResult.notes``, on other devices and in mini-batch mode.  See
        :mod:`spectral_probe.training.accel`.
    """

    epochs: int = 500
    lr: float = 1e-4
    lr_step: int = 20
    lr_gamma: float = 0.99
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    restore_best: bool = True
    log_every: int = 50
    progress: bool = False
    peak: float = 1.0
    memory_fraction: float = 0.5
    compile: bool = False
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "lr_step", "log_every"):
            positive_int(getattr(self, name), name)
        positive_int(self.batch_size, "batch_size", allow_none=True)
        for name in ("lr", "lr_gamma", "peak", "memory_fraction"):
            positive_float(getattr(self, name), name)

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, torch.device) else v) for k, v in asdict(self).items()}


@dataclass
class TrainState:
    """What callbacks see.  ``loss`` is a 0-d device tensor: reading it syncs.

    ``losses`` (device) and ``lrs`` (host) hold one entry per epoch, ``start_epoch``
    is the first epoch this fit runs (above 0 when it continues a run file), and
    ``previous`` maps a run file's group names to the ``xarray.Dataset`` of its rows
    at steps before ``start_epoch`` (None for a fresh fit): callbacks that keep state
    across epochs rebuild it from there in ``on_fit_start``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    target: Target
    coords: torch.Tensor
    values: torch.Tensor
    config: TrainConfig
    epoch: int = -1
    loss: torch.Tensor | None = None
    losses: torch.Tensor | None = None
    stop: bool = False
    stop_reason: str = ""
    info: dict = field(default_factory=dict)
    lrs: np.ndarray | None = None
    start_epoch: int = 0
    previous: dict | None = None
    tracker: "_BestTracker | None" = None
    generator: torch.Generator | None = None

    def psnr(self) -> float:
        """PSNR (dB) of the current epoch's loss (host sync)."""
        return float(psnr_from_mse(float(self.loss), self.config.peak))

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after this epoch."""
        self.stop, self.stop_reason = True, reason


#: ``Callback.order`` positions (:func:`ordered`; why each: :mod:`spectral_probe.training.recording`)
ORDERS = {"first": -100, "default": 0, "observe": 100, "stop": 200, "last": 300}


def ordered(callbacks: Iterable["Callback"]) -> list["Callback"]:
    """``callbacks`` as :func:`fit` calls them: by increasing ``order`` (default 0), ties in the order given."""
    def order(cb) -> float:
        value = getattr(cb, "order", ORDERS["default"])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{type(cb).__name__}.order must be a number (training.loop.ORDERS), got {value!r}")
        return value
    return sorted(callbacks, key=order)


class Callback:
    """Hooks into :func:`fit`.  Override any subset; probes are callbacks too.

    ``order`` places the callback among the fit's others (:data:`ORDERS`; default ``ORDERS["default"]``).
    """

    order = ORDERS["default"]

    def on_fit_start(self, state: TrainState) -> None:
        """Called once, before the first epoch (``state.start_epoch``; see :class:`TrainState`)."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Called before epoch ``state.epoch + 1`` runs."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after epoch ``state.epoch`` (0-based) with its loss in ``state.loss``."""

    def on_fit_end(self, state: TrainState, result: "FitResult") -> None:
        """Called once with the final result (best state already restored)."""


class Deadline(Callback):
    """Stop a fit at a wall-clock time: ``state.request_stop("deadline")`` once ``time.time() >= at``.

    The stop takes effect after the epoch in which the deadline passed, so a
    :class:`~spectral_probe.training.checkpoint.Checkpointer` placed after it saves that epoch and
    ``train_to_file(..., resume=True)`` continues from there.  ``at`` may be moved later
    (``deadline.at = ...``), e.g. to now on SIGTERM.  The clock is read once per epoch,
    which does not synchronise the device.

    Parameters
    ----------
    at
        The deadline, in ``time.time()`` seconds.
    """

    order = ORDERS["stop"]

    def __init__(self, at: float) -> None:
        self.at = float(at)
        if self.at != self.at:
            raise ValueError("Deadline(at): at must be a time.time() value, not NaN")

    def on_epoch_end(self, state: TrainState) -> None:
        if not state.stop and time.time() >= self.at:
            state.request_stop("deadline")

    def __repr__(self) -> str:
        return f"Deadline(at={self.at:.3f})"


@dataclass
class FitResult:
    """Outcome of :func:`fit`.  History arrays have shape ``(epochs_run,)``.

    ``best_epoch`` is the step of the best state (the parameters after ``best_epoch``
    updates); it equals ``epochs_run`` when the final state, evaluated after the last
    update, is the best, so ``best_psnr >= final_psnr`` always.  ``state_step`` is the
    step of the parameters the model holds after the fit (the best state when it was
    restored, else the final one).
    """

    history: dict[str, np.ndarray]
    best_epoch: int
    best_psnr: float
    final_psnr: float
    zero_psnr: float
    epochs_run: int
    wall_time: float
    batch_size: int
    device: str
    config: dict
    stop_reason: str = ""
    notes: list[str] = field(default_factory=list)
    state_step: int = -1

    @property
    def epochs_per_second(self) -> float:
        return self.epochs_run / self.wall_time if self.wall_time > 0 else math.inf

    def summary(self) -> str:
        """One paragraph for humans."""
        psnr = self.history["psnr"]
        marks = sorted({0, len(psnr) // 4, len(psnr) // 2, 3 * len(psnr) // 4, len(psnr) - 1})
        traj = ", ".join(f"{e}: {psnr[e]:.2f}" for e in marks if e < len(psnr))
        where = "the final state" if self.best_epoch == self.epochs_run else f"epoch {self.best_epoch}"
        text = (f"epochs {self.epochs_run} on {self.device} in {self.wall_time:.1f} s "
                f"({self.epochs_per_second:.1f} epochs/s, batch {self.batch_size})\n"
                f"PSNR by epoch [dB]: {traj}\n"
                f"best {self.best_psnr:.2f} dB at {where}; final {self.final_psnr:.2f} dB; "
                f"zero-output floor {self.zero_psnr:.2f} dB")
        if self.stop_reason:
            text += f"\nstopped early: {self.stop_reason}"
        return text


def mse_loss(model: nn.Module, coords: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``model(coords)`` against ``values``."""
    return torch.mean(torch.square(model(coords) - values))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, coords: torch.Tensor,
               values: torch.Tensor, loss_fn=mse_loss) -> torch.Tensor:
    """One optimiser step on ``(coords, values)``; returns the loss before the update (no sync)."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model, coords, values)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _own_code(fn):
    """A copy of ``fn`` with a code object of its own.

    Dynamo keeps its compiled graphs and guards on the code object, so every ``torch.compile(mse_loss)``
    of a process shared them: the second training shape (or model) of a process recompiled the loss with
    dynamic shapes (the ``switch`` compile: 19.2 s instead of 10.4 s for a 4x64 SIREN on this CPU, ~55 s on
    an H200) and every later run used those dynamic kernels.  With its own code object each run compiles
    statically for its model and shape (inductor's caches make the later compiles of a process cheaper).
    """
    import types

    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__doc__, copy.__qualname__ = fn.__kwdefaults__, fn.__doc__, fn.__qualname__
    return copy


class _CompiledLoss:
    """``torch.compile`` of a loss (default :func:`mse_loss`) that falls back to eager mode when compilation fails.

    Each instance compiles its own copy of the loss (:func:`_own_code`): runs in one process do not share graphs.
    """

    def __init__(self, fn=mse_loss) -> None:
        self.fn = fn
        self.compiled = torch.compile(_own_code(fn))
        self.failed = False

    def __call__(self, model, coords, values):
        if not self.failed:
            try:
                return self.compiled(model, coords, values)
            except Exception as exc:  # noqa: BLE001 - any backend failure means: run eagerly
                self.failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                              "training continues in eager mode", RuntimeWarning, stacklevel=2)
        return self.fn(model, coords, values)


@torch.no_grad()
def _check_output_shape(model: nn.Module, coords: torch.Tensor, values: torch.Tensor, name: str) -> None:
    """Refuse models whose output would broadcast against the target instead of matching it."""
    try:
        out = model(coords[:2])
    except RuntimeError as exc:
        raise ValueError(f"model cannot take target {name!r}'s inputs of shape (N, {coords.shape[1]}): "
                         f"{str(exc).splitlines()[0]}; build it with in_features={coords.shape[1]}") from None
    if tuple(out.shape) != (2, values.shape[1]):
        raise ValueError(f"model maps inputs (N, {coords.shape[1]}) to {tuple(out.shape[1:]) or 'scalars'} per "
                         f"sample, but target {name!r} has shape (N, {values.shape[1]}); the model must output "
                         f"(N, {values.shape[1]}) (out_features={values.shape[1]})")


def full_batch_bytes(model: nn.Module, n: int) -> int:
    """Rough activation memory of a full-batch forward+backward over ``n`` samples."""
    units = sum(m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return int(n) * units * _BYTES_PER_UNIT


def auto_batch_size(model: nn.Module, n: int, device: torch.device, fraction: float = 0.5) -> int:
    """Full batch if it fits in ``fraction`` of free memory, else the largest power of two that does."""
    budget = available_memory_bytes(device) * fraction
    need = full_batch_bytes(model, n)
    if need <= budget:
        return int(n)
    per_sample = max(1, need // max(n, 1))
    batch = 2 ** int(math.floor(math.log2(max(budget / per_sample, 1))))
    return int(max(1, min(batch, n)))


class _BestTracker:
    """Keeps a device copy of the parameters with the lowest loss seen, without host syncs."""

    def __init__(self, model: nn.Module) -> None:
        self.params = [p for p in model.parameters()]
        self.best = [p.detach().clone() for p in self.params]
        self.best_loss = torch.full((), math.inf, device=self.params[0].device)

    @torch.no_grad()
    def update(self, loss: torch.Tensor) -> None:
        improved = loss < self.best_loss
        self.best_loss = torch.where(improved, loss, self.best_loss)
        for b, p in zip(self.best, self.params):
            b.copy_(torch.where(improved, p, b))

    @torch.no_grad()
    def restore(self) -> None:
        for b, p in zip(self.best, self.params):
            p.copy_(b)


def _full_batch_epoch(state: TrainState, tracker: _BestTracker | None, loss_fn) -> torch.Tensor:
    """One full-batch step; the best state is recorded *before* the update."""
    model, opt = state.model, state.optimizer
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model, state.coords, state.values)
    loss.backward()
    if tracker is not None:
        tracker.update(loss.detach())
    opt.step()
    return loss.detach()


def _minibatch_epoch(state: TrainState, batch: int, generator: torch.Generator, loss_fn) -> torch.Tensor:
    """One pass in shuffled mini-batches; returns the mean batch loss."""
    n = state.coords.shape[0]
    order = torch.randperm(n, generator=generator, device="cpu").to(state.coords.device)
    total = torch.zeros((), device=state.coords.device)
    for start in range(0, n, batch):
        idx = order[start:start + batch]
        loss = train_step(state.model, state.optimizer, state.coords[idx], state.values[idx], loss_fn)
        total = total + loss * idx.numel()
    return total / n


def _progress_bar(config: TrainConfig):
    if not config.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.epochs, unit="epoch", dynamic_ncols=True, leave=False)


def fit(
    model: nn.Module,
    target: Target,
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    probes: Iterable[Callback] = (),
    resume_from=None,
    **overrides,
) -> FitResult:
    """Fit ``model`` to ``target`` with Adam + StepLR; see the module docstring.

    Parameters
    ----------
    model
        Any module mapping ``(N, d)`` coordinates to ``(N, C)`` values.
    target
        The signal; its ``coords()`` are the inputs.
    config
        Training settings; keyword ``overrides`` replace single fields.
    callbacks, probes
        Objects with the :class:`Callback` hooks (probes are callbacks).  Both are
        called in the order of :func:`ordered` (their ``order``, then callbacks
        before probes as given): the two arguments exist only for readability.
    resume_from
        Continue a saved run: an object whose ``restore(state)`` loads the model,
        optimizer, scheduler, best-state and RNG states and the history of the
        epochs already run, and returns the first epoch to run
        (:class:`spectral_probe.training.resume.ResumePoint`); its ``wall_time`` is added.

    Returns
    -------
    FitResult
        History (``epoch``, ``loss``, ``psnr``, ``lr``), best and final PSNR.
    """
    config = TrainConfig(**{**(config.to_dict() if config else {}), **overrides})
    device = resolve_device(config.device)
    model = model.to(device)
    values = target.values.to(device)
    coords = target.coords(device=device)
    _check_output_shape(model, coords, values, target.name)
    n = coords.shape[0]
    batch = config.batch_size or auto_batch_size(model, n, device, config.memory_fraction)
    batch = min(batch, n)
    notes = []
    if config.batch_size is None and batch < n:
        note = (f"full batch of {n} samples needs ~{full_batch_bytes(model, n) / 2**30:.1f} GiB; "
                f"falling back to mini-batches of {batch}")
        warnings.warn(note, RuntimeWarning, stacklevel=2)
        notes.append(note)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step, config.lr_gamma)
    losses = torch.empty(config.epochs, device=device)
    tracker = _BestTracker(model) if config.restore_best and batch == n else None
    best_minibatch = _MinibatchBest(model) if config.restore_best and batch < n else None
    generator = torch.Generator().manual_seed(config.seed)
    lrs = np.empty(config.epochs)
    state = TrainState(model, optimizer, scheduler, target, coords, values, config, losses=losses, lrs=lrs,
                       tracker=tracker or best_minibatch, generator=generator)
    first = resume_from.restore(state) if resume_from is not None else 0
    state.start_epoch, state.epoch = first, first - 1
    all_callbacks = ordered([*callbacks, *probes])
    bar = _progress_bar(config)
    loss_fn = _CompiledLoss() if config.compile else mse_loss
    epoch_fn = _full_batch_epoch
    if config.cuda_graphs:  # GPU-only path, kept in its own module
        from .accel import GraphedEpoch

        epoch_fn = GraphedEpoch(_full_batch_epoch, optimizer, device, batch == n, notes=notes)

    model.train()
    for cb in all_callbacks:
        cb.on_fit_start(state)
    start = time.perf_counter()
    epoch = first - 1
    if bar is not None and first:
        bar.update(first)
    try:
        for epoch in range(first, config.epochs):
            for cb in all_callbacks:
                cb.on_epoch_start(state)
            lrs[epoch] = scheduler.get_last_lr()[0]
            if batch == n:
                loss = epoch_fn(state, tracker, loss_fn)
            else:
                loss = _minibatch_epoch(state, batch, generator, loss_fn)
                if best_minibatch is not None:
                    best_minibatch.update(loss)
            scheduler.step()
            losses[epoch] = loss
            state.epoch, state.loss = epoch, loss
            for cb in all_callbacks:
                cb.on_epoch_end(state)
            if bar is not None and (epoch + 1) % config.log_every == 0:
                bar.update(config.log_every)
                bar.set_postfix(psnr=f"{state.psnr():.2f} dB")
            if state.stop:
                break
    finally:
        if bar is not None:
            bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the loop is asynchronous: count the queued work too
    wall = time.perf_counter() - start + float(getattr(resume_from, "wall_time", 0.0) or 0.0)
    epochs_run = epoch + 1
    return _finish(state, tracker or best_minibatch, epochs_run, wall, batch, lrs, notes, all_callbacks)


class _MinibatchBest(_BestTracker):
    """In mini-batch mode the best state is the parameters *after* the epoch with the lowest mean loss."""


def _finish(state: TrainState, tracker, epochs_run: int, wall: float, batch: int, lrs: np.ndarray,
            notes: list[str], callbacks: Sequence[Callback]) -> FitResult:
    config = state.config
    loss = state.losses[:epochs_run].double().cpu().numpy()
    psnr = psnr_from_mse(loss, config.peak)
    best_epoch = int(np.nanargmin(loss)) if epochs_run and np.any(np.isfinite(loss)) else -1
    best_psnr = float(psnr[best_epoch]) if best_epoch >= 0 else float("nan")
    final_mse = _evaluate_mse(state) if epochs_run else float("nan")
    final = float(psnr_from_mse(final_mse, config.peak)) if epochs_run else float("nan")
    state_step = epochs_run
    # the final state (after the last update) is a candidate too: best >= final
    if math.isfinite(final_mse) and (best_epoch < 0 or final_mse < loss[best_epoch]):
        best_epoch, best_psnr = epochs_run, final
    elif tracker is not None and best_epoch >= 0:
        tracker.restore()
        state_step = best_epoch + (1 if isinstance(tracker, _MinibatchBest) else 0)
    result = FitResult(
        history={"epoch": np.arange(epochs_run), "loss": loss, "psnr": psnr, "lr": lrs[:epochs_run]},
        best_epoch=best_epoch, best_psnr=best_psnr,
        final_psnr=final, zero_psnr=state.target.zero_psnr(config.peak), epochs_run=epochs_run,
        wall_time=wall, batch_size=batch, device=str(state.coords.device), config=config.to_dict(),
        stop_reason=state.stop_reason, notes=notes, state_step=state_step)
    if not np.all(np.isfinite(loss)):
        result.notes.append("the loss became NaN or infinite; lower the learning rate")
    for cb in callbacks:
        cb.on_fit_end(state, result)
    return result


@torch.no_grad()
def _evaluate_mse(state: TrainState) -> float:
    """MSE of the model as it is now (the final state, after the last update), batched."""
    n = state.coords.shape[0]
    batch = max(1, auto_batch_size(state.model, n, state.coords.device, state.config.memory_fraction))
    total = 0.0
    for start in range(0, n, batch):
        pred = state.model(state.coords[start:start + batch])
        total += float(torch.sum(torch.square(pred - state.values[start:start + batch])))
    return total / (n * state.values.shape[1])
