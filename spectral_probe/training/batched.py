"""Train K models of one architecture as one batched model (seed sets, noise-scale grids).

:func:`fit_batched` stacks the parameters of K models of the same shape into
tensors with a leading model axis, runs the K forward passes as one batched
computation and sums the K per-model MSE losses, so one backward pass gives
every model its own gradient.  Adam acts elementwise, so one Adam over the
stacked tensors keeps per-model first and second moments, exactly as K
separate optimisers would; the best state (lowest loss before its epoch's
update) is tracked and restored per model.  Each model then has the PSNR
trajectory that :func:`~spectral_probe.training.fit` gives it alone, to
round-off (the batched matrix products sum in another order).

While training, every model's parameters are views into the stacked tensors,
so per-model callbacks (run-file recorders, probes) see their model live; the
views are released at the end.

Implementations (:class:`BatchedImplementation`): ``bmm`` stacks the layers of
the bundled INRs and calls ``torch.baddbmm``; per-model activation constants
(SIREN's first omega 3000 vs SIREN^2's 30) become ``(K, 1, 1)`` tensors, so a
SIREN and a SIREN^2 share a batch.  ``vmap`` runs
``torch.func.functional_call`` under ``torch.func.vmap`` and takes any module,
but the K models must be identical apart from their parameter values.
``auto`` picks ``bmm`` when it applies.  ``benchmarks/bench_batched.py``
compares both with one-by-one training.

Limits: full batch only (no mini-batches); one learning-rate schedule for all
models; a callback's stop request stops the batch only once every model asked.
"""

from __future__ import annotations

import copy
import enum
import math
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..devices import available_memory_bytes, resolve_device
from ..models.base import INR, Activation, INRLayer
from ..signals import Target
from ..validation import positive_int
from .loop import (Callback, FitResult, TrainConfig, TrainState, _check_output_shape, full_batch_bytes, ordered,
                   psnr_from_mse)

__all__ = ["BatchedImplementation", "fit_batched", "batch_key", "max_models_in_memory"]


class BatchedImplementation(str, enum.Enum):
    """How :func:`fit_batched` batches the K forward passes.

    ``BMM``
        Bundled :class:`~spectral_probe.models.INR` models: each layer's K weight
        matrices are one ``(K, out, in)`` tensor and the layer is one
        ``torch.baddbmm``; activation constants that differ between models
        (omega, sigma) become per-model tensors, and input encodings are
        evaluated per model (random Fourier features differ by seed).  Needs the
        same layer sizes and activation types in every model.
    ``VMAP``
        Any ``nn.Module``: ``vmap(functional_call)`` over the stacked parameters
        and buffers.  Every non-tensor attribute must agree across the K models
        (their ``repr`` must be equal); slower than ``BMM`` where both apply
        (``benchmarks/README.md``).
    ``AUTO``
        ``BMM`` when the models allow it, else ``VMAP``.
    """

    AUTO = "auto"
    BMM = "bmm"
    VMAP = "vmap"


# --------------------------------------------------------------------------- batched forward passes

class _Stack:
    """The K models' parameters as stacked leaf tensors; the models' own parameters become views of them."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        names = [n for n, _ in models[0].named_parameters()]
        shapes = [tuple(p.shape) for _, p in models[0].named_parameters()]
        for i, m in enumerate(models[1:], 1):
            got = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
            if got != list(zip(names, shapes)):
                raise ValueError(f"model {i} does not have the parameter names and shapes of model 0 "
                                 f"({len(got)} vs {len(names)} tensors); fit_batched needs models of one shape")
        self.models, self.names = list(models), names
        self.params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).clone()
                       .requires_grad_(True) for n in names}
        for k, m in enumerate(models):
            for n, p in m.named_parameters():
                p.data = self.params[n].data[k]

    def release(self) -> None:
        """Give every model its own storage again (the values stay)."""
        for m in self.models:
            for p in m.parameters():
                p.data = p.data.clone()


def _activation_batch(acts: Sequence[Activation], device, dtype) -> Activation:
    """One activation for the K models: constants that differ become ``(K, 1, 1)`` tensors."""
    kinds = {type(a) for a in acts}
    if len(kinds) > 1:
        raise ValueError(f"activations differ between models ({', '.join(sorted(k.__name__ for k in kinds))})")
    out = copy.copy(acts[0])
    for name, value in vars(acts[0]).items():
        if name.startswith("_") or name == "training":
            continue
        values = [vars(a)[name] for a in acts]
        if all(v == value for v in values):
            continue
        if not all(isinstance(v, float) for v in values):
            raise ValueError(f"activation {type(acts[0]).__name__}.{name} differs between models and is not a float")
        object.__setattr__(out, name, torch.tensor(values, device=device, dtype=dtype).view(-1, 1, 1))
    return out


class _BmmForward:
    """``(N, d)`` coordinates -> ``(K, N, C)`` outputs of K bundled INRs, one ``baddbmm`` per layer."""

    def __init__(self, models: Sequence[nn.Module], stack: _Stack, device) -> None:
        if not all(isinstance(m, INR) and all(isinstance(l, INRLayer) for l in m.layers) for m in models):
            raise ValueError("implementation 'bmm' needs the bundled INR models (spectral_probe.models); "
                             "use implementation='vmap' for other modules")
        first = models[0]
        if len({m.real_output for m in models}) > 1:
            raise ValueError("models differ in real_output")
        self.encodings = [m.encoding for m in models] if first.encoding is not None else None
        self.real_output = first.real_output
        self.layers = []
        for i, layer in enumerate(first.layers):
            acts = [m.layers[i].act for m in models]
            weight = stack.params[f"layers.{i}.linear.weight"]
            self.layers.append((weight, stack.params.get(f"layers.{i}.linear.bias"),
                                _activation_batch(acts, device, weight.real.dtype)))
        self.head = (stack.params["head.weight"], stack.params.get("head.bias"))

    @staticmethod
    def _linear(h, weight, bias):
        if bias is None:
            return torch.bmm(h, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k = self.head[0].shape[0]
        if self.encodings is None:
            h = x.unsqueeze(0).expand(k, *x.shape)
        else:
            h = torch.stack([enc(x) for enc in self.encodings])
        for weight, bias, act in self.layers:
            h = act.post(act.pre(self._linear(h, weight, bias)))
        out = self._linear(h, *self.head)
        return out.real if self.real_output else out


class _VmapForward:
    """``vmap(functional_call)`` over the stacked parameters and buffers of K identical modules."""

    def __init__(self, models: Sequence[nn.Module], stack: _Stack) -> None:
        reference = repr(models[0])
        for i, m in enumerate(models[1:], 1):
            if repr(m) != reference:
                raise ValueError(f"implementation 'vmap' needs models that differ only in parameter values; "
                                 f"model {i} differs from model 0 in its settings ({_first_diff(repr(m), reference)}); "
                                 "use implementation='bmm' for the bundled INRs")
        self.base = copy.deepcopy(models[0]).to("meta")
        self.params = stack.params
        self.buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in models])
                        for n, _ in models[0].named_buffers()}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params, buffers, inputs):
            return functional_call(self.base, (params, buffers), (inputs,))

        return vmap(one, in_dims=(0, 0, None))(self.params, self.buffers, x)


def _first_diff(a: str, b: str) -> str:
    for line_a, line_b in zip(a.splitlines(), b.splitlines()):
        if line_a != line_b:
            return f"{line_a.strip()!r} vs {line_b.strip()!r}"
    return "layout"


def _make_forward(models, stack: _Stack, implementation: BatchedImplementation, device):
    if implementation is BatchedImplementation.VMAP:
        return _VmapForward(models, stack), "vmap"
    try:
        return _BmmForward(models, stack, device), "bmm"
    except ValueError:
        if implementation is BatchedImplementation.BMM:
            raise
    return _VmapForward(models, stack), "vmap"


def _per_model_mse(forward, coords: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``(K,)`` MSE of each model against its target ``values (K, N, C)``."""
    return torch.mean(torch.square(forward(coords) - values), dim=(1, 2))


# --------------------------------------------------------------------------- public API

def batch_key(model: nn.Module) -> tuple:
    """Models with equal keys can share a batch: parameter names, shapes and dtypes, activation types."""
    params = tuple((n, tuple(p.shape), str(p.dtype)) for n, p in model.named_parameters())
    acts = tuple(type(m).__name__ for m in model.modules() if isinstance(m, Activation))
    return (type(model).__name__, params, acts)


def max_models_in_memory(model: nn.Module, n: int, device, fraction: float = 0.5) -> int:
    """How many full-batch copies of ``model`` on ``n`` samples fit in ``fraction`` of free memory."""
    per_model = max(1, full_batch_bytes(model, n))
    return int(available_memory_bytes(resolve_device(device)) * fraction // per_model)


def fit_batched(
    models: Sequence[nn.Module],
    target: Target | Sequence[Target],
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Sequence[Callback]] | None = None,
    implementation: str | BatchedImplementation = "auto",
    max_models: int | None = None,
    checkpoint=None,
    **overrides,
) -> list[FitResult]:
    """Fit K models of one shape at once; per model the same result as :func:`~spectral_probe.training.fit`.

    Parameters
    ----------
    models
        K modules with the same parameter names and shapes (e.g. seeds, or
        SIREN^2 with different ``s0, s1``).  Trained in place, like ``fit``.
    target
        One target for all models, or K targets on the same grid.
    config, overrides
        As for ``fit``; ``batch_size`` must be None or the full batch.
    callbacks
        Optional: one sequence of callbacks per model; each sees a
        :class:`~spectral_probe.training.TrainState` for its own model.  Each
        sequence is called in ``order`` (:func:`~spectral_probe.training.loop.ordered`).
    implementation
        ``"auto"``, ``"bmm"`` or ``"vmap"`` (:class:`BatchedImplementation`).
    max_models
        Models per batch; default: as many as fit in ``memory_fraction`` of free
        memory.  More models run as several consecutive batches.
    checkpoint
        A :class:`~spectral_probe.training.batched_state.BatchedCheckpoint`: save the batch's state
        to its file (every ``every`` epochs, at an early stop, at the end) and continue
        from the file when it exists.  The K models must then train as one batch.

    Returns
    -------
    list of FitResult
        In the order of ``models``; ``wall_time`` is the wall time of the batch
        the model trained in (a note says so).
    """
    models = list(models)
    if not models:
        raise ValueError("fit_batched needs at least one model")
    if len({id(m) for m in models}) < len(models):
        raise ValueError("the same model object appears twice in models; pass K distinct models")
    try:
        impl = BatchedImplementation(implementation)
    except ValueError:
        raise ValueError(f"unknown implementation {implementation!r}; choose one of: "
                         f"{', '.join(i.value for i in BatchedImplementation)}") from None
    max_models = positive_int(max_models, "max_models", allow_none=True)
    config = TrainConfig(**{**(config.to_dict() if config else {}), **overrides})
    targets = list(target) if isinstance(target, (list, tuple)) else [target] * len(models)
    if len(targets) != len(models):
        raise ValueError(f"got {len(targets)} targets for {len(models)} models; give one target or one per model")
    grids = {(t.grid_shape, t.channels) for t in targets}
    if len(grids) > 1:
        raise ValueError(f"targets must share one grid and channel count to train as a batch, got {sorted(grids)}")
    callbacks = [ordered(c) for c in callbacks] if callbacks is not None else [[] for _ in models]
    if len(callbacks) != len(models):
        raise ValueError(f"callbacks must be one sequence per model ({len(models)}), got {len(callbacks)}")
    n = targets[0].n
    if config.batch_size is not None and config.batch_size < n:
        raise ValueError(f"fit_batched trains full batches of all {n} samples, got batch_size={config.batch_size}; "
                         "use fit() for mini-batch training")
    keys = {batch_key(m) for m in models}
    if len(keys) > 1:
        raise ValueError("models differ in parameter shapes or activation types; group them with batch_key()")
    device = resolve_device(config.device)
    fits = max_models_in_memory(models[0], n, device, config.memory_fraction)
    if fits < 1:
        raise ValueError(f"one full batch of {n} samples needs ~{full_batch_bytes(models[0], n) / 2**30:.1f} GiB, "
                         "more than the free memory allows; use fit(), which falls back to mini-batches")
    per_batch = min(fits, max_models) if max_models is not None else fits
    if checkpoint is not None and per_batch < len(models):
        raise ValueError(f"a checkpointed batch trains all {len(models)} models at once, but only {per_batch} "
                         "fit in memory (or max_models); checkpoint smaller batches")
    results: list[FitResult] = []
    for start in range(0, len(models), per_batch):
        sl = slice(start, start + per_batch)
        results += _fit_group(models[sl], targets[sl], callbacks[sl], config, device, impl, checkpoint)
    return results


def _fit_group(models, targets, callbacks, config: TrainConfig, device, impl, checkpoint=None) -> list[FitResult]:
    k = len(models)
    models = [m.to(device) for m in models]
    coords = targets[0].coords(device=device)
    values = torch.stack([t.values.to(device) for t in targets])
    for m, t in zip(models, targets):
        _check_output_shape(m, coords, t.values.to(device), t.name)
    stack = _Stack(models)
    try:
        forward, used = _make_forward(models, stack, impl, device)
        return _train(models, targets, callbacks, config, device, stack, forward, used, coords, values, k,
                      checkpoint)
    finally:
        stack.release()


def _loss_function(config: TrainConfig):
    if not config.compile:
        return _per_model_mse
    from .loop import _CompiledLoss

    return _CompiledLoss(_per_model_mse)


def _train(models, targets, callbacks, config, device, stack, forward, used, coords, values, k, checkpoint=None):
    params = [stack.params[n] for n in stack.names]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step, config.lr_gamma)
    losses = torch.empty(config.epochs, k, device=device)
    best_loss = torch.full((k,), math.inf, device=device)
    best = [p.detach().clone() for p in params] if config.restore_best else []
    lrs = np.empty(config.epochs)
    first, wall_before = _resume(checkpoint, stack, optimizer, scheduler, best, best_loss, losses, lrs, config, k)
    states = [TrainState(m, optimizer, scheduler, t, coords, values[i], config, losses=losses[:, i], lrs=lrs,
                         start_epoch=first, epoch=first - 1) for i, (m, t) in enumerate(zip(models, targets))]
    loss_fn = _loss_function(config)
    for state, cbs in zip(states, callbacks):
        for cb in cbs:
            cb.on_fit_start(state)
    start = time.perf_counter()
    epoch = first - 1
    for epoch in range(first, config.epochs):
        for state, cbs in zip(states, callbacks):
            for cb in cbs:
                cb.on_epoch_start(state)
        lrs[epoch] = scheduler.get_last_lr()[0]
        optimizer.zero_grad(set_to_none=True)
        per_model = loss_fn(forward, coords, values)
        per_model.sum().backward()
        per_model = per_model.detach()
        if best:
            with torch.no_grad():
                improved = per_model < best_loss
                best_loss.copy_(torch.where(improved, per_model, best_loss))
                for b, p in zip(best, params):
                    b.copy_(torch.where(improved.view(-1, *([1] * (p.dim() - 1))), p, b))
        optimizer.step()
        scheduler.step()
        losses[epoch] = per_model
        for i, (state, cbs) in enumerate(zip(states, callbacks)):
            state.epoch, state.loss = epoch, per_model[i]
            for cb in cbs:
                cb.on_epoch_end(state)
        stop = all(s.stop for s in states)
        if checkpoint is not None and checkpoint.due(epoch + 1, config.epochs, stop):
            _save(checkpoint, epoch + 1, wall_before + time.perf_counter() - start, stack, optimizer, scheduler,
                  best, best_loss, losses, lrs, config, k)
        if stop:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start + wall_before
    epochs_run = epoch + 1
    with torch.no_grad():
        final = _per_model_mse(forward, coords, values).double().cpu().numpy() if epochs_run else None
    history = losses[:epochs_run].double().cpu().numpy()
    if best and epochs_run:
        # the final state (after the last update) is a candidate too, as in fit(): keep it where it is best
        final_better = torch.as_tensor(final < history.min(axis=0, initial=math.inf), device=device)
        with torch.no_grad():
            for b, p in zip(best, params):
                p.copy_(torch.where(final_better.view(-1, *([1] * (p.dim() - 1))), p, b))
    results = []
    for i, (state, cbs) in enumerate(zip(states, callbacks)):
        result = _result(history[:, i], lrs[:epochs_run], final[i] if final is not None else math.nan,
                         targets[i], config, wall, coords, epochs_run, k, used, state.stop_reason)
        for cb in cbs:
            cb.on_fit_end(state, result)
        results.append(result)
    return results


def _resume(checkpoint, stack, optimizer, scheduler, best, best_loss, losses, lrs, config, k) -> tuple[int, float]:
    """Load a checkpointed batch's saved state, if any: ``(first epoch, training seconds before it)``."""
    if checkpoint is None:
        return 0, 0.0
    saved = checkpoint.read()
    if saved is None:
        return 0, 0.0
    from .batched_state import restore

    checkpoint.check(saved, k, config.to_dict(), stack.names)
    restore(saved, stack.params, optimizer, scheduler, best, best_loss, stack.names)
    s = saved.step
    losses[:s] = torch.as_tensor(saved.losses, dtype=losses.dtype, device=losses.device)
    lrs[:s] = saved.lrs
    return s, saved.wall_time


def _save(checkpoint, step, wall, stack, optimizer, scheduler, best, best_loss, losses, lrs, config, k) -> None:
    from .batched_state import capture

    tensors, meta = capture(stack.params, optimizer, scheduler, best, best_loss, stack.names)
    meta.update(k=k, names=stack.names, config=config.to_dict())
    checkpoint.save(step, wall, meta, tensors, losses[:step].detach().double().cpu().numpy(), lrs[:step])


def _result(loss, lrs, final_mse, target, config, wall, coords, epochs_run, k, used, stop_reason) -> FitResult:
    psnr = psnr_from_mse(loss, config.peak)
    best_epoch = int(np.nanargmin(loss)) if epochs_run and np.any(np.isfinite(loss)) else -1
    best_psnr = float(psnr[best_epoch]) if best_epoch >= 0 else math.nan
    final_psnr = float(psnr_from_mse(final_mse, config.peak))
    # which state the model holds (as fit(): the final state when it beats every epoch's loss)
    state_step = epochs_run
    if math.isfinite(final_mse) and (best_epoch < 0 or final_mse < loss[best_epoch]):
        best_epoch, best_psnr = epochs_run, final_psnr
    elif config.restore_best and best_epoch >= 0:
        state_step = best_epoch
    notes = [f"trained in a batch of {k} models ({used}); wall_time is the batch's"]
    if not np.all(np.isfinite(loss)):
        notes.append("the loss became NaN or infinite; lower the learning rate")
    return FitResult(
        history={"epoch": np.arange(epochs_run), "loss": loss, "psnr": psnr, "lr": lrs},
        best_epoch=best_epoch, best_psnr=best_psnr, final_psnr=final_psnr, zero_psnr=target.zero_psnr(config.peak),
        epochs_run=epochs_run, wall_time=wall, batch_size=int(coords.shape[0]), device=str(coords.device),
        config=config.to_dict(), stop_reason=stop_reason, notes=notes, state_step=state_step)
