"""The training run: the loop, what it records into a run file, and how a run survives an interrupt.

One module per concern:

================= ======================================================================================
``loop``          :func:`fit`, :func:`train_step`, :class:`TrainConfig`, :class:`Callback`, :class:`FitResult`,
                  :class:`Deadline`
``presets``       the quick and paper settings (cited from the papers): :func:`make_run` -> :class:`RunSpec`
``runs``          one run -> one run file: :func:`train_to_file` (recorders, checkpoints, lock, signals)
``recording``     :class:`RunRecorder`, the protocol of everything that records into a run file (its registry,
                  the loss blocks); the order of a fit's callbacks is ``loop.ORDERS``
``recorder``      run-file callbacks: :class:`TrainingRecorder` (losses, PSNR), :class:`PredictionRecorder`
``checkpoint``    the training state as a run-file row: :class:`Checkpointer`, :func:`read_checkpoint`
``resume``        continuing a run file from its last checkpoint (:func:`plan_resume`)
``interrupts``    SIGINT/SIGTERM during a fit: :class:`InterruptGuard`, :class:`RunInterrupted`
``posthoc``       a run file's model and target back: :func:`load_model`, :func:`run_target`, :func:`run_points`
``batched``       K models of one shape trained as one: :func:`fit_batched`
``batched_state`` a batch's training state in a file, to stop and continue it: :class:`BatchedCheckpoint`
``accel``         GPU options of :func:`fit`: CUDA graphs (:class:`GraphedEpoch`), float32 precision
================= ======================================================================================

The names below are importable from ``spectral_probe.training`` itself; each is imported on first
use (``from spectral_probe.training import Callback`` does not load h5py or the presets).  Constants
and helpers stay in their modules (``spectral_probe.training.presets.PAPER_AUDIO_SAMPLES``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

#: public name -> submodule that defines it (imported on first access)
_API: dict[str, str] = {
    **dict.fromkeys(["TrainConfig", "TrainState", "FitResult", "Callback", "Deadline", "train_step", "mse_loss",
                     "fit", "psnr_from_mse", "full_batch_bytes", "auto_batch_size"], "loop"),
    **dict.fromkeys(["Preset", "PRESETS", "RunSpec", "make_run", "list_presets", "estimated_seconds"], "presets"),
    **dict.fromkeys(["train_to_file", "run_config", "recording_config", "checkpoint_summary"], "runs"),
    **dict.fromkeys(["RunRecorder"], "recording"),
    **dict.fromkeys(["TrainingRecorder", "PredictionRecorder"], "recorder"),
    **dict.fromkeys(["Checkpointer", "Checkpoint", "read_checkpoint", "checkpoint_steps"], "checkpoint"),
    **dict.fromkeys(["ResumePoint", "plan_resume"], "resume"),
    **dict.fromkeys(["InterruptGuard", "RunInterrupted"], "interrupts"),
    **dict.fromkeys(["load_model", "run_target", "run_points", "initial_checkpoint"], "posthoc"),
    **dict.fromkeys(["fit_batched", "batch_key", "BatchedImplementation"], "batched"),
    **dict.fromkeys(["BatchedCheckpoint"], "batched_state"),
    **dict.fromkeys(["GraphedEpoch", "float32_matmul"], "accel"),
}

__all__ = list(_API)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _API)


if TYPE_CHECKING:  # pragma: no cover - static analysers see the eager imports
    from .accel import GraphedEpoch, float32_matmul
    from .batched import BatchedImplementation, batch_key, fit_batched
    from .batched_state import BatchedCheckpoint
    from .checkpoint import Checkpoint, Checkpointer, checkpoint_steps, read_checkpoint
    from .interrupts import InterruptGuard, RunInterrupted
    from .loop import (Callback, Deadline, FitResult, TrainConfig, TrainState, auto_batch_size, fit,
                       full_batch_bytes, mse_loss, psnr_from_mse, train_step)
    from .posthoc import initial_checkpoint, load_model, run_points, run_target
    from .presets import PRESETS, Preset, RunSpec, estimated_seconds, list_presets, make_run
    from .recorder import PredictionRecorder, TrainingRecorder
    from .recording import RunRecorder
    from .resume import ResumePoint, plan_resume
    from .runs import checkpoint_summary, recording_config, run_config, train_to_file
