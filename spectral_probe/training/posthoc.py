"""Post-hoc analysis of a run file: the model at a checkpoint, the best or the last state, and its target.

>>> import spectral_probe as sp
>>> model = sp.load_model("run.h5", "best")          # or "last", or a checkpoint step (0: the initial state)
>>> target = sp.posthoc.run_target("run.h5")        # the exact values the run fitted

Step 0, the initial state, is a checkpoint of every run file written since it was saved before the
first update.  In an older file :func:`initial_checkpoint` rebuilds it from the stored model,
arguments and seed, and uses it only when it reproduces what the file recorded at step 0 (the loss
of epoch 0, or the bottleneck watch's first check); otherwise it refuses in one line.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..signals import Target
from ..store import open_run, read_config
from .checkpoint import Checkpoint, StateLayout, checkpoint_steps, read_checkpoint

__all__ = ["load_model", "run_target", "run_points", "resolve_step", "initial_checkpoint", "REBUILD_RTOL"]

#: relative agreement a rebuilt initial state must reach with the file's step-0 records (float32 sums on
#: another device or thread count differ by ~1e-6; another seed or model by orders of magnitude more)
REBUILD_RTOL = 1e-4


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
        _check_step(path, int(step))
        if int(step) == 0 and 0 not in checkpoint_steps(path):
            return initial_checkpoint(path), False, 0
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


def _saved_steps(path) -> str:
    steps = [int(s) for s in checkpoint_steps(path)]
    shown = ", ".join(map(str, steps)) if len(steps) <= 12 else \
        ", ".join(map(str, steps[:5])) + ", ..., " + ", ".join(map(str, steps[-5:]))
    return f"checkpoints at steps {shown}" if steps else "no checkpoints"


def _check_step(path, step: int) -> None:
    """One line for a negative step or one beyond the run (listing the saved steps)."""
    if step < 0:
        raise ValueError(f"step must be >= 0 (the parameters after that many updates), got {step}; "
                         f"run file '{path}' has {_saved_steps(path)}")
    epochs = _summary(path).get("epochs_run", -1)     # -1 while the run is live
    if 0 <= epochs < step:
        raise ValueError(f"step {step} is beyond the run (it ran {epochs} epochs); run file '{path}' has "
                         f"{_saved_steps(path)}")


def initial_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The initial state (step 0) of a run file, from its checkpoint or rebuilt and verified.

    A file written before step 0 was checkpointed holds the model's name, arguments and seed: the
    state is rebuilt from them and compared with what the file recorded at step 0 (the loss of
    epoch 0, computed before the first update on the full batch, and the bottleneck watch's first
    output energy); it is used when one of them agrees to :data:`REBUILD_RTOL`.

    Raises
    ------
    ValueError
        One line: the rebuild is not possible or does not reproduce the file's step-0 records.
    """
    if 0 in checkpoint_steps(path):
        return read_checkpoint(path, 0)
    intro = f"run file '{path}' has no checkpoint at step 0 (written before the initial state was saved)"
    config = read_config(path)
    from ..models import build_model, list_models

    if config.get("model") not in list_models() or "model_kwargs" not in config or config.get("seed") is None:
        raise ValueError(f"{intro} and does not name a registered model with its seed, so the initial state "
                         f"cannot be rebuilt; {_saved_steps(path)}")
    model = build_model(config["model"], seed=config["seed"], **config["model_kwargs"])
    checks = _step0_agreement(path, model)
    if not checks:
        raise ValueError(f"{intro} and records nothing at step 0 to verify a rebuild against; "
                         f"{_saved_steps(path)}")
    if not any(ok for _, ok in checks):
        shown = "; ".join(text for text, _ in checks)
        raise ValueError(f"{intro}, and the state rebuilt from its configuration and seed does not reproduce "
                         f"its step-0 records ({shown}); {_saved_steps(path)}")
    tensors = {f"model/{k}": v.detach() for k, v in model.state_dict().items()}
    layout = StateLayout.build(tensors, {})
    arrays, _ = layout.unpack(layout.pack(tensors, {}))
    verified = "; ".join(text for text, ok in checks if ok)
    return Checkpoint(0, arrays, {"step": 0, "rebuilt": f"from the configuration and seed; {verified}"}, layout)


def _step0_agreement(path, model: torch.nn.Module) -> list[tuple[str, bool]]:
    """``(text, agrees)`` per step-0 record of the file that the rebuilt ``model`` can reproduce."""
    try:
        target = run_target(path)
    except ValueError:
        return []
    coords = target.coords()
    with torch.no_grad():
        out = model(coords)
        out = (out.real if out.is_complex() else out).double()
    y = target.values.double()
    computed = {"loss": float(torch.mean(torch.square(out - y))),
                "energy_ratio": float(torch.sum(torch.square(out)) / torch.sum(torch.square(y)))}
    checks = []
    for group, name in (("scalars", "loss"), ("bottleneck", "energy_ratio")):
        try:
            ds = open_run(path, group)
        except ValueError:
            continue
        if name not in ds or "step" not in ds.dims or 0 not in ds["step"].values:
            continue
        stored = float(ds[name].sel(step=0))
        ok = bool(np.isfinite(stored) and abs(computed[name] - stored) <= REBUILD_RTOL * abs(stored))
        checks.append((f"{group}/{name} at step 0: {stored:.6g} stored, {computed[name]:.6g} rebuilt", ok))
    return checks


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
    config = read_config(run_path, run=True)        # names an ntk/probe --out file given for a run
    try:
        ds = open_run(run_path, "prediction")
    except ValueError:
        raise ValueError(f"run file '{run_path}' has no 'prediction' group with its target") from None
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


def run_points(target: Target, n: int | None = None, offset: int | None = None,
               device=None, dtype=None) -> tuple[torch.Tensor, Target, str]:
    """Inputs of a run's model on a subset of its 1-D grid, the target there, and a line saying which.

    The coordinates are the run's own (``target.coords()`` at the chosen samples), so a saved
    state sees exactly the inputs it was trained on.

    Parameters
    ----------
    target
        The run's target (:func:`run_target`).
    n
        Samples to keep (2 .. the grid's length); None: the whole grid.
    offset
        None: ``n`` evenly spaced samples, every ``stride = N // n``-th from sample 0 (a uniform
        grid whose Nyquist frequency is ``1 / stride`` of the run's); an integer: the window of
        ``n`` consecutive samples from ``offset`` (the run's spacing, a coarser frequency resolution).

    Returns
    -------
    (coords, target, description)
        ``coords`` (n, 1); ``target`` holds the values there (its sample rate divided by the stride).
    """
    total = target.n
    coords = target.coords(device=device, dtype=dtype)
    if n is None:
        if offset is not None:
            raise ValueError("--offset chooses where a window of --num-samples samples starts; add --num-samples")
        return coords, target, f"the run's whole grid ({total} samples)"
    if target.spatial_dims != 1:
        raise ValueError(f"--num-samples takes a subset of a 1-D grid; this run's grid is "
                         f"{'x'.join(map(str, target.grid_shape))} (drop --num-samples: the whole grid)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= total:
        raise ValueError(f"--num-samples must be an integer from 2 to the run's {total} samples, got {n!r}")
    if offset is None:
        stride = total // int(n)
        index = torch.arange(int(n)) * stride
        rate = None if target.sample_rate is None else target.sample_rate / stride
        text = (f"{n} of the run's {total} samples, evenly spaced: every {stride}-th from sample 0"
                + (f" (Nyquist frequency 1/{stride} of the run's)" if stride > 1 else ""))
    else:
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset <= total - n:
            raise ValueError(f"--offset must be an integer from 0 to {total - n} (a window of {n} samples "
                             f"inside the run's {total}), got {offset!r}")
        index = torch.arange(int(offset), int(offset) + int(n))
        rate, stride = target.sample_rate, 1
        text = f"samples {offset}..{offset + n - 1} of the run's {total} (a window at the run's spacing)"
    from dataclasses import replace

    meta = dict(target.meta, subset={"n": int(n), "stride": int(stride), "first": int(index[0]), "of": total})
    sub = replace(target, values=target.values[index], grid_shape=(int(n),), sample_rate=rate, meta=meta)
    return coords[index.to(coords.device)], sub, text
