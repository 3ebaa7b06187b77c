"""Train one configuration and write one run file: the unit of work of the CLI and of sweeps.

A run file (see :mod:`spectral_probe.store`) holds

* root attributes: the :class:`~spectral_probe.presets.RunSpec` as JSON
  (``config``), plus the target's name, grid and psi;
* ``scalars``: loss, PSNR and learning rate per epoch, and the summary
  (best/final/zero-output PSNR, best epoch, wall time);
* ``prediction``: the target and the trained model's output, ``(sample, channel)``;
* whatever the probes add (``activations``, ``ntk``, ``bottleneck``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .presets import RunSpec
from .signals import Target
from .store import TrainingRecorder, TrajectoryWriter, Var
from .training import Callback, FitResult, TrainState, fit

__all__ = ["PredictionRecorder", "run_config", "train_to_file"]


class PredictionRecorder(Callback):
    """Store the target and the final model output (static ``(sample, channel)`` variables)."""

    def __init__(self, writer: TrajectoryWriter, group: str = "prediction") -> None:
        self.writer, self.group = writer, group

    def on_fit_start(self, state: TrainState) -> None:
        n, c = state.values.shape
        self.writer.declare(self.group, variables={
            "target": Var(("sample", "channel"), "f4", trajectory=False),
            "output": Var(("sample", "channel"), "f4", trajectory=False),
        }, coords={"sample": np.arange(n), "channel": np.arange(c)},
            attrs={"grid_shape": list(state.target.grid_shape)})
        self.writer.put(self.group, "target", state.values.detach().cpu().numpy())

    @torch.no_grad()
    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        outputs = [state.model(chunk) for chunk in torch.split(state.coords, 2 ** 16)]
        output = torch.cat(outputs).real if outputs[0].is_complex() else torch.cat(outputs)
        self.writer.put(self.group, "output", output.detach().float().cpu().numpy())


def run_config(spec: RunSpec, target: Target) -> dict:
    """JSON-serialisable description of a run (stored as the file's ``config``)."""
    config = spec.to_dict()
    config["target_info"] = {"name": target.name, "kind": target.kind, "grid_shape": list(target.grid_shape),
                             "channels": target.channels, "sample_rate": target.sample_rate,
                             "offset": int(target.meta.get("offset", 0))}
    return config


def train_to_file(
    spec: RunSpec,
    target: Target,
    out: str | os.PathLike | None,
    *,
    overwrite: bool = False,
    probes: Sequence[Callback] = (),
    callbacks: Sequence[Callback] = (),
    record_every: int = 50,
    device: str | torch.device | None = None,
) -> tuple[torch.nn.Module, FitResult]:
    """Build the model of ``spec``, fit it, and (when ``out`` is given) write the run file.

    Probes that accept a ``writer`` attribute and have none get this run's
    writer, so their rows land in the same file.

    Returns
    -------
    (model, FitResult)
    """
    model = spec.build_model(device=device)
    if out is None:
        return model, fit(model, target, spec.train, probes=probes, callbacks=callbacks)
    path = Path(out)
    with TrajectoryWriter(path, run_config(spec, target), overwrite=overwrite) as writer:
        for probe in probes:
            if hasattr(probe, "writer") and probe.writer is None:
                probe.writer = writer
        recorders = [TrainingRecorder(writer, every=record_every), PredictionRecorder(writer)]
        result = fit(model, target, spec.train, probes=probes, callbacks=[*recorders, *callbacks])
    return model, result
