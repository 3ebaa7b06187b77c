"""Post-hoc analysis of a run file: the model at a checkpoint, the best or the last state, and its target.

>>> import spectral_probe as sp
>>> model = sp.load_model("run.h5", "best")          # or "last", or a checkpoint step
>>> target = sp.posthoc.run_target("run.h5")        # the exact values the run fitted
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..signals import Target
from ..store import open_run, read_config
from .checkpoint import Checkpoint, read_checkpoint

__all__ = ["load_model", "run_target", "resolve_step"]


def _summary(path) -> dict:
    try:
        ds = open_run(path, "scalars")
    except ValueError:
        return {}
    out = {}
    for name in ("best_epoch", "epochs_run"):
        if name in ds and np.isfinite(float(ds[name])):
            out[name] = int(ds[name])
    return out


def resolve_step(path: str | os.PathLike, step: int | str = "last") -> tuple[Checkpoint, bool, int]:
    """Which checkpoint holds ``step`` and whether it is the best-state copy.

    Parameters
    ----------
    step
        A checkpoint step (``int`` or digits), ``"last"`` (the last checkpoint) or
        ``"best"`` (the best state: the run's ``best_epoch`` when it finished,
        else the best state so far, kept in every checkpoint).

    Returns
    -------
    (Checkpoint, best, state_step)
        ``best``: the parameters come from the checkpoint's best-state copy.
    """
    if isinstance(step, str) and step.strip().lstrip("-").isdigit():
        step = int(step)
    if isinstance(step, (int, np.integer)) and not isinstance(step, bool):
        summary = _summary(path)
        last = read_checkpoint(path)
        if summary.get("best_epoch") == int(step) and summary.get("epochs_run") == last.step \
                and int(step) != last.step:
            return last, True, int(step)
        checkpoint = read_checkpoint(path, int(step))
        return checkpoint, False, checkpoint.step
    if step == "last":
        checkpoint = read_checkpoint(path)
        return checkpoint, False, checkpoint.step
    if step == "best":
        checkpoint = read_checkpoint(path)
        summary = _summary(path)
        if summary.get("epochs_run") == checkpoint.step and summary.get("best_epoch", -1) >= 0:
            best = summary["best_epoch"]
            if best == checkpoint.step:             # the final state was the best
                return checkpoint, False, best
            return checkpoint, True, best
        best = int(checkpoint.meta.get("best_step", -1))
        if best < 0:
            raise ValueError(f"run file '{path}' has no best state yet (no finite loss before step "
                             f"{checkpoint.step}, or trained with restore_best=False); use 'last' or a step")
        return checkpoint, True, best
    raise ValueError(f"step must be a checkpoint step (an integer), 'best' or 'last'; got {step!r}")


def load_model(run_path: str | os.PathLike, step: int | str = "last", *, model: torch.nn.Module | None = None,
               device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The model of a run file at a checkpoint step, its best state (``"best"``) or its last checkpoint.

    Parameters
    ----------
    run_path
        A run file written by ``spectral-probe train --out`` / :func:`~spectral_probe.training.runs.train_to_file`.
    step
        ``int``: a checkpoint step (the parameters after that many updates);
        ``"best"``; ``"last"``.
    model
        A module to load the state into (for files written by your own loop);
        default: rebuilt from the file's configuration (model name, arguments, seed).
    device, dtype
        Where to put the model, and an optional dtype for its real parameters.

    Returns
    -------
    torch.nn.Module
        In eval mode; ``model.loaded_step`` is the step of the state.
    """
    checkpoint, best, state_step = resolve_step(run_path, step)
    if model is None:
        config = read_config(run_path)
        if "model" not in config or "model_kwargs" not in config:
            raise ValueError(f"run file '{run_path}' does not name its model (written by your own loop?); "
                             "pass model= to load the state into")
        from ..models import build_model

        model = build_model(config["model"], seed=config.get("seed"), **config["model_kwargs"])
    names = [name for name, _ in model.named_parameters()]
    state = checkpoint.model_state(best=best, parameter_names=names)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"the checkpoint of '{run_path}' does not fit this model: "
                         f"{str(exc).splitlines()[0]}") from None
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    model.eval()
    model.loaded_step = state_step
    return model


def run_target(run_path: str | os.PathLike) -> Target:
    """The target a run fitted, rebuilt from the file (``prediction/target`` and its grid)."""
    try:
        ds = open_run(run_path, "prediction")
    except ValueError:
        raise ValueError(f"run file '{run_path}' has no 'prediction' group with its target") from None
    config = read_config(run_path)
    info = config.get("target_info", {})
    grid = [int(n) for n in np.atleast_1d(_attr_list(ds.attrs.get("grid_shape", info.get("grid_shape"))))]
    return Target(torch.from_numpy(np.asarray(ds["target"].values, dtype=np.float32)), tuple(grid),
                  name=info.get("name", config.get("target", "target")), kind=info.get("kind", "signal"),
                  sample_rate=info.get("sample_rate"))


def _attr_list(value):
    import json

    if isinstance(value, str):
        return json.loads(value)
    return value
