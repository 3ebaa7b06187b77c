"""Train one configuration and write one run file: the unit of work of the CLI and of sweeps.

A run file (see :mod:`spectral_probe.store`) holds

* root attributes: the :class:`~spectral_probe.training.presets.RunSpec` as JSON
  (``config``, with the target's name, grid and psi, and the recording settings);
* ``scalars``: loss, PSNR and learning rate per epoch, and the summary
  (best/final/zero-output PSNR, best epoch, wall time);
* ``prediction``: the target and the output of the state the model holds at the end
  (the best state by default), ``(sample, channel)``;
* ``checkpoints``: the training state every ``checkpoint_every`` epochs, at the end
  and on an interrupt (:mod:`spectral_probe.training.checkpoint`);
* whatever the probes add (``activations``, ``ntk``, ``bottleneck``, ...).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch

from ..signals import Target
from ..store import RunLock, TrajectoryWriter
from .checkpoint import GROUP as CHECKPOINTS, Checkpointer
from .interrupts import InterruptGuard, RunInterrupted
from .loop import Callback, FitResult, fit
from .presets import RunSpec
from .recorder import PredictionRecorder, TrainingRecorder
from .recording import bind_writer, describe, recorders
from .resume import RESUMABLE_KEYS, plan_resume

__all__ = ["PredictionRecorder", "run_config", "recording_config", "train_to_file", "RunInterrupted",
           "checkpoint_summary"]


def run_config(spec: RunSpec, target: Target, recording: dict | None = None) -> dict:
    """JSON-serialisable description of a run (stored as the file's ``config``)."""
    config = spec.to_dict()
    config["target_info"] = {"name": target.name, "kind": target.kind, "grid_shape": list(target.grid_shape),
                             "channels": target.channels, "sample_rate": target.sample_rate,
                             "offset": int(target.meta.get("offset", 0))}
    if recording is not None:
        config["recording"] = recording
    return config


def recording_config(probes: Sequence[Callback], record_every: int, checkpoint_every: int | None) -> dict:
    """What the run records and how often (part of the run's configuration).

    ``probes`` are described by :func:`~spectral_probe.training.recording.describe` (a recorder's
    :meth:`~spectral_probe.training.recording.RunRecorder.settings`).
    """
    return {"record_every": int(record_every), "checkpoint_every": checkpoint_every,
            "probes": [describe(p) for p in probes]}


def train_to_file(
    spec: RunSpec,
    target: Target,
    out: str | os.PathLike | None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    salvage: bool = False,
    probes: Sequence[Callback] = (),
    callbacks: Sequence[Callback] = (),
    record_every: int = 50,
    checkpoint_every: int | None = None,
    device: str | torch.device | None = None,
    handle_signals: bool = True,
    notes: list | None = None,
) -> tuple[torch.nn.Module, FitResult]:
    """Build the model of ``spec``, fit it, and (when ``out`` is given) write the run file.

    Every :class:`~spectral_probe.training.recording.RunRecorder` among ``probes`` and
    ``callbacks`` that has no writer gets this run's
    (:meth:`~spectral_probe.training.recording.RunRecorder.bind`), so its rows land in the same file;
    ``probes`` and the recorders among ``callbacks`` are described in the run's configuration.
    :func:`fit` calls them all in their ``order`` (:mod:`spectral_probe.training.recording`).

    Parameters
    ----------
    overwrite
        Replace an existing ``out``.
    resume
        Continue ``out`` (a killed, interrupted or finished run) up to
        ``spec.train.epochs``; the configuration must match the file's except
        for :data:`~spectral_probe.training.resume.RESUMABLE_KEYS`.  Without a file at
        ``out`` the run starts afresh.
    salvage
        With ``resume``: when a checkpoint the run keeps is damaged, continue from the newest intact
        one before it (and say so in ``notes``) instead of raising ``DamagedFileError``.
    checkpoint_every
        Epochs between checkpoints (None: only at the end, on an early stop or an interrupt).
    handle_signals
        Turn SIGINT/SIGTERM into a clean stop (checkpoint, commit, ``run_status``
        3) in the main thread; :class:`RunInterrupted` is raised afterwards.
    notes
        A list that receives notes for the user (resume point, stale lock, restored states).

    Returns
    -------
    (model, FitResult)

    Raises
    ------
    RunInterrupted
        (a ``KeyboardInterrupt``) after SIGINT or SIGTERM; it says what was saved.
    RunLockedError
        Another process writes ``out``.
    """
    notes = notes if notes is not None else []
    model = spec.build_model(device=device)
    if out is None:
        return model, fit(model, target, spec.train, probes=probes, callbacks=callbacks)
    if overwrite and resume:
        raise ValueError("choose overwrite (replace the file) or resume (continue it), not both")
    path = Path(out)
    described = [*probes, *(r for r in recorders(callbacks) if r not in probes)]
    config = run_config(spec, target, recording_config(described, record_every, checkpoint_every))
    lock = RunLock(path)
    try:
        if lock.stale_note():
            notes.append(lock.stale_note())
        point = plan_resume(path, config, salvage=salvage) if resume and path.exists() else None
    except BaseException:
        lock.release()
        raise
    if point is not None:
        notes.append(point.line())
    # every group keeps its rows before the resume point; the checkpoints keep the one it starts from
    keep = {None: point.step, CHECKPOINTS: point.step + 1} if point is not None else None
    guard = InterruptGuard() if handle_signals else None
    writer = None
    try:
        # the guard stays installed while the writer closes: a signal just after the last epoch is not lost
        with guard.installed() if guard is not None else nullcontext():
            with TrajectoryWriter(path, config, overwrite=overwrite, resume=resume, may_change=RESUMABLE_KEYS,
                                  keep_before=keep, lock=lock) as writer:
                bind_writer([*probes, *callbacks], writer)
                own = [TrainingRecorder(writer, every=record_every), PredictionRecorder(writer),
                       Checkpointer(writer, checkpoint_every), *([guard] if guard is not None else [])]
                result = fit(model, target, spec.train, probes=probes, callbacks=[*own, *callbacks],
                             resume_from=point)                  # fit orders the callbacks by `order`
                if guard is not None and guard.signum is not None:
                    raise KeyboardInterrupt      # the writer closes the file as interrupted
        if guard is not None and guard.signum is not None:          # it came while the finished run was closed
            saved = writer.saved()
            raise RunInterrupted(path, guard.signal_name, saved, saved.get("checkpoints", (0, None))[1], True,
                                 complete=True)
    except KeyboardInterrupt as exc:
        if writer is None or isinstance(exc, RunInterrupted):
            raise
        graceful = guard is not None and guard.signum is not None and not str(exc)
        name = guard.signal_name if guard is not None and guard.signal_name else "KeyboardInterrupt"
        saved = writer.saved() if writer.started else {}
        last = saved.get("checkpoints", (0, None))[1]
        raise RunInterrupted(path, name, saved, last, graceful) from None
    finally:
        if point is not None:
            notes.extend(point.notes)
    return model, result


def checkpoint_summary(path) -> str:
    """One line: how many checkpoints a run file holds, at which steps, and their size."""
    from ..store.reader import open_checked
    from .checkpoint import checkpoint_steps

    steps = checkpoint_steps(path)
    if not steps.size:
        return "no checkpoints"
    with open_checked(path) as h5:
        size = int(h5["checkpoints"]["state"].shape[1])
    shown = ", ".join(map(str, steps[:6])) + (f", ... {steps[-1]}" if steps.size > 6 else "")
    return f"{steps.size} checkpoint(s) at steps {shown} ({size / 1e6:.2f} MB each)"
