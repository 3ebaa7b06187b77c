"""Training callbacks that write a fit into a run file: per-epoch scalars and the final prediction.

They sit next to the training loop (they are :class:`~spectral_probe.training.Callback`\\ s) and
write through the public API of :class:`~spectral_probe.store.TrajectoryWriter`, so the I/O
layer (:mod:`spectral_probe.store`) does not depend on the training code.
"""

from __future__ import annotations

import numpy as np
import torch

from ..store import TrajectoryWriter, Var
from .loop import ORDERS, FitResult, TrainState, psnr_from_mse
from .recording import EpochBlocks, RunRecorder

__all__ = ["TrainingRecorder", "PredictionRecorder", "SUMMARY_FIELDS"]

#: fields of :class:`~spectral_probe.training.FitResult` stored as 0-d variables at the end of a fit
SUMMARY_FIELDS = ("best_psnr", "best_epoch", "final_psnr", "zero_psnr", "epochs_run", "wall_time")
_INTEGER_FIELDS = ("best_epoch", "epochs_run")


class TrainingRecorder(RunRecorder):
    """Write ``loss``, ``psnr`` and ``lr`` of every epoch to ``group`` of a trajectory writer.

    The loop keeps losses on the device; the recorder copies them to the host
    in blocks of ``every`` epochs (:class:`~spectral_probe.training.recording.EpochBlocks`:
    one synchronisation per block, none per epoch) and appends the block.  It also appends
    the epochs run so far whenever any other group of the file commits a row (a probe step, a
    checkpoint; :meth:`TrajectoryWriter.add_commit_hook`), so the scalars are
    committed at least as often as any other row.  Step ``e`` holds epoch
    ``e``'s loss, computed before that epoch's update (the parameters after
    ``e`` updates), and the learning rate used in that epoch.  At the end of the
    fit the remaining epochs and a summary (:data:`SUMMARY_FIELDS`, 0-d
    variables) are written.  A resumed fit (``state.start_epoch > 0``)
    continues after the rows already in the file.  A
    :class:`~spectral_probe.training.recording.RunRecorder` of order ``first``.

    Parameters
    ----------
    writer
        A :class:`~spectral_probe.store.TrajectoryWriter` (not started yet, or
        with ``group`` already declared).
    group
        Group name.
    every
        Epochs per host copy and append.
    step_offset
        Added to the epoch index.
    """

    order = ORDERS["first"]
    tensorboard = "scalars"

    def __init__(self, writer: TrajectoryWriter, group: str = "scalars", every: int = 50,
                 step_offset: int = 0) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.writer, self.group, self.every, self.step_offset = writer, group, every, int(step_offset)
        self._blocks = EpochBlocks(every)
        self._seen = 0
        self._state: TrainState | None = None
        self._hooked = False

    def prepare(self, state: TrainState) -> None:
        self._state = state

    def declare(self, writer=None) -> None:
        writer = writer or self.writer
        state = self._state
        summary = {name: Var((), "i8" if name in _INTEGER_FIELDS else "f8", trajectory=False)
                   for name in SUMMARY_FIELDS}
        writer.declare(self.group, variables={
            "loss": Var((), "f8", attrs={"long_name": "MSE before the epoch's update"}),
            "psnr": Var((), "f8", attrs={"units": "dB", "peak": state.config.peak}),
            "lr": Var((), "f8", attrs={"long_name": "learning rate used in the epoch"}),
            **summary,
        }, attrs={"train_config": state.config.to_dict(), "target": state.target.name,
                  "best_epoch": "step of the best state: the parameters after best_epoch updates; "
                                "equal to epochs_run when the final state is the best"})
        for name in SUMMARY_FIELDS:         # unset until the fit ends (a resumed file drops its old summary)
            writer.put(self.group, name, np.int64(-1) if name in _INTEGER_FIELDS else np.float64(np.nan))

    def begin(self, state: TrainState) -> None:
        self._blocks.start(state)
        self._seen = state.start_epoch
        if not self._hooked:
            self.writer.add_commit_hook(self._commit_hook)
            self._hooked = True

    def on_epoch_end(self, state: TrainState) -> None:
        self._seen = state.epoch + 1
        if self._blocks.due(state):
            self._write_until(state, self._seen)

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        self._seen = result.epochs_run
        self._write_until(state, result.epochs_run)
        for name in SUMMARY_FIELDS:
            value = getattr(result, name)
            self.writer.put(self.group, name, np.int64(value) if name in _INTEGER_FIELDS else np.float64(value))
        self.writer.flush()

    def rows_since(self, step: int):
        """The epochs ``>= step`` this fit holds (those of a continued file included): ``loss``, ``psnr``, ``lr``."""
        import xarray as xr

        state = self._state
        first = max(int(step) - self.step_offset, 0)
        if state is None or self._seen <= first:
            return None
        loss = state.losses[first:self._seen].detach().double().cpu().numpy()
        return xr.Dataset({"loss": ("step", loss), "psnr": ("step", psnr_from_mse(loss, state.config.peak)),
                           "lr": ("step", np.asarray(state.lrs[first:self._seen], dtype=np.float64))},
                          coords={"step": np.arange(first, self._seen) + self.step_offset},
                          attrs={"target": state.target.name})

    def _commit_hook(self) -> None:
        if self._state is not None and self.writer.started and not self.writer.failed:
            self._write_until(self._state, self._seen)

    def _write_until(self, state: TrainState, end: int) -> None:
        block = self._blocks.take(state, end)
        if block is not None:
            steps, loss, psnr, lr = block
            self.writer.append(self.group, steps + self.step_offset, loss=loss, psnr=psnr, lr=lr)


class PredictionRecorder(RunRecorder):
    """Store the target and the model's output at the end of the fit (static ``(sample, channel)`` variables).

    The output is that of the state the model holds after :func:`~spectral_probe.training.fit`:
    the best state when ``restore_best`` (the default), else the final one.  The group's
    attribute ``state`` says which, and its 0-d variable ``state_step`` gives the state's step.
    It records no rows (:meth:`rows_since` is None).
    """

    order = ORDERS["first"]

    def __init__(self, writer: TrajectoryWriter, group: str = "prediction") -> None:
        self.writer, self.group = writer, group
        self._state: TrainState | None = None

    def prepare(self, state: TrainState) -> None:
        self._state = state

    def declare(self, writer=None) -> None:
        writer, state = writer or self.writer, self._state
        n, c = state.values.shape
        writer.declare(self.group, variables={
            "target": Var(("sample", "channel"), "f4", trajectory=False),
            "output": Var(("sample", "channel"), "f4", trajectory=False),
            "state_step": Var((), "i8", trajectory=False, attrs={
                "long_name": "step of the state whose output is stored (parameters after `step` updates)"}),
        }, coords={"sample": np.arange(n), "channel": np.arange(c)},
            attrs={"grid_shape": list(state.target.grid_shape),
                   "state": "best" if state.config.restore_best else "final"})
        writer.put(self.group, "target", state.values.detach().cpu().numpy())

    @torch.no_grad()
    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        outputs = [state.model(chunk) for chunk in torch.split(state.coords, 2 ** 16)]
        output = torch.cat(outputs).real if outputs[0].is_complex() else torch.cat(outputs)
        self.writer.put(self.group, "output", output.detach().float().cpu().numpy())
        self.writer.put(self.group, "state_step", np.int64(result.state_step))
