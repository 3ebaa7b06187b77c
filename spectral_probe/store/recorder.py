"""Training callback that writes loss, PSNR and learning rate per epoch to a run file."""

from __future__ import annotations

import numpy as np

from ..training import Callback, FitResult, TrainState, psnr_from_mse
from .schema import Var

__all__ = ["TrainingRecorder", "SUMMARY_FIELDS"]

#: fields of :class:`~spectral_probe.training.FitResult` stored as 0-d variables at the end of a fit
SUMMARY_FIELDS = ("best_psnr", "best_epoch", "final_psnr", "zero_psnr", "epochs_run", "wall_time")
_INTEGER_FIELDS = ("best_epoch", "epochs_run")


class TrainingRecorder(Callback):
    """Write ``loss``, ``psnr`` and ``lr`` of every epoch to ``group`` of a trajectory writer.

    The loop keeps losses on the device; the recorder copies them to the host
    once every ``every`` epochs (one synchronisation per block, none per
    epoch) and appends the block.  Step ``e`` holds epoch ``e``'s loss, computed
    before that epoch's update (the parameters after ``e`` updates), and the
    learning rate used in that epoch.  At the end of the fit the remaining
    epochs and a summary (:data:`SUMMARY_FIELDS`, 0-d variables) are written.

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
        Added to the epoch index (to continue a resumed run).
    """

    def __init__(self, writer, group: str = "scalars", every: int = 50, step_offset: int = 0) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.writer, self.group, self.every, self.step_offset = writer, group, every, int(step_offset)
        self._lrs: list[float] = []
        self._done = 0

    def on_fit_start(self, state: TrainState) -> None:
        summary = {name: Var((), "i8" if name in _INTEGER_FIELDS else "f8", trajectory=False)
                   for name in SUMMARY_FIELDS}
        self.writer.declare(self.group, variables={
            "loss": Var((), "f8", attrs={"long_name": "MSE before the epoch's update"}),
            "psnr": Var((), "f8", attrs={"units": "dB", "peak": state.config.peak}),
            "lr": Var((), "f8", attrs={"long_name": "learning rate used in the epoch"}),
            **summary,
        }, attrs={"train_config": state.config.to_dict(), "target": state.target.name})
        self._lrs, self._done = [], 0

    def on_epoch_start(self, state: TrainState) -> None:
        self._lrs.append(float(state.scheduler.get_last_lr()[0]))

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch + 1 - self._done >= self.every:
            self._write_until(state, state.epoch + 1)

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        self._write_until(state, result.epochs_run)
        for name in SUMMARY_FIELDS:
            value = getattr(result, name)
            self.writer.put(self.group, name, np.int64(value) if name in _INTEGER_FIELDS else np.float64(value))
        self.writer.flush()

    def _write_until(self, state: TrainState, end: int) -> None:
        start = self._done
        if end <= start:
            return
        loss = state.losses[start:end].detach().double().cpu().numpy()
        self.writer.append(self.group, np.arange(start, end) + self.step_offset, loss=loss,
                           psnr=psnr_from_mse(loss, state.config.peak), lr=np.asarray(self._lrs[start:end]))
        self._done = end
