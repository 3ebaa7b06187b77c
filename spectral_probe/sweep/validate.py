"""Checking every run of a sweep before the first one starts.

A sweep that holds ``s0 = nan``, ``epochs = -3``, a missing target file or ``--device cuda`` on a
machine without CUDA would otherwise start every run and record each as failed.
:func:`validate_runs` checks each expanded run the way its worker would set it up, in three
stages, and returns one :class:`Problem` per invalid run (the first key found wrong):

1. numeric ranges of the run keys (``epochs``, ``width``, ``lr``, ...) and finiteness of the
   model arguments, with :mod:`spectral_probe.validation`;
2. the target: read, cropped and resized as the preset does it, once per distinct
   (target, preset, num_samples, offset[, seed for synthetic targets]);
3. the configuration: :func:`~spectral_probe.training.presets.make_run` on the loaded target (model
   arguments, WINNER scales, training settings) and the model's constructor (once per distinct
   model and arguments; the seed does not change validity).

The device is checked once for the sweep (:func:`check_device`), where the runs execute on this
machine.  Worker-side conditions (targets only on the cluster's file system) are out of reach:
``plan_sweep(..., validate=False)`` / ``spectral-probe sweep --no-validate`` skip the checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from ..validation import finite_float, nonnegative_int, positive_float, positive_int

__all__ = ["Problem", "SweepValidationError", "RANGE_CHECKS", "validate_runs", "check_device"]

#: run and training keys -> the check their value must pass
RANGE_CHECKS: dict[str, Callable] = {
    "epochs": positive_int, "width": positive_int, "depth": positive_int, "num_samples": positive_int,
    "lr_step": positive_int, "batch_size": positive_int, "seed": nonnegative_int, "offset": nonnegative_int,
    "lr": positive_float, "lr_gamma": positive_float,
}
#: keys that select and shape the target (what stage 2 loads once)
_TARGET_KEYS = ("target", "preset", "num_samples", "offset")
#: keys the model stage passes to make_run besides the model arguments
_SPEC_KEYS = ("model", "preset", "seed", "epochs", "width", "depth")


@dataclass(frozen=True)
class Problem:
    """One invalid run: its id, the values that distinguish it, the key at fault and why."""

    run_id: str
    key: str
    message: str
    label: dict = field(default_factory=dict)

    def line(self) -> str:
        """``run siren2-1a2b3c4d5e6f (s0=nan, seed=0): key 's0': s0 must be a finite number, got nan``."""
        where = f" ({', '.join(f'{k}={v}' for k, v in self.label.items())})" if self.label else ""
        return f"run {self.run_id}{where}: key {self.key!r}: {self.message}"


class SweepValidationError(ValueError):
    """Raised by :func:`~spectral_probe.sweep.plan_sweep` when runs are invalid; ``problems`` lists them."""

    def __init__(self, problems: Sequence[Problem], total: int) -> None:
        self.problems, self.total = list(problems), int(total)
        super().__init__(f"{len(self.problems)} of {self.total} runs are invalid, nothing was started; "
                         f"first: {self.problems[0].line()}")

    def lines(self) -> list[str]:
        """One line per invalid run, then a summary line."""
        return [p.line() for p in self.problems] + [
            f"{len(self.problems)} of {self.total} runs are invalid; nothing was started (fix them or remove "
            "them from the grid)"]


def check_device(device: str) -> None:
    """Raise ``ValueError`` when ``device`` is not available here (see :func:`~spectral_probe.devices.resolve_device`)."""
    from ..devices import resolve_device

    resolve_device(device)


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _blame(message: str, params: Mapping, fallback: str) -> str:
    """The parameter named in ``message`` (the longest such name), else ``fallback``."""
    named = [k for k in params if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", message)]
    return max(named, key=len) if named else fallback


def _range_problem(params: Mapping) -> tuple[str, str] | None:
    from .params import RUN_KEYS, TRAIN_KEYS

    for key, value in params.items():
        try:
            if key in RANGE_CHECKS:
                RANGE_CHECKS[key](value, key)
            elif key not in RUN_KEYS and key not in TRAIN_KEYS and isinstance(value, float):
                finite_float(value, key)
        except ValueError as exc:
            return key, _message(exc)
    return None


def _target_key(params: Mapping) -> tuple:
    name = str(params["target"])
    seed = params.get("seed", 0) if name.startswith("synthetic:") else None
    return (*(params.get(k) for k in _TARGET_KEYS), seed)


def _load_target(params: Mapping):
    """The target as the run's worker will see it (loaded, cropped, resized by the preset)."""
    from ..training.presets import make_run

    kwargs = {k: params[k] for k in ("preset", "num_samples", "offset", "seed") if k in params}
    _spec, target = make_run("siren", params["target"], **kwargs)
    return target


def _target_blame(params: Mapping) -> str:
    """Which key makes the target fail: the crop (``num_samples``, else ``offset``) when the uncropped
    target loads, else ``target``."""
    crop = [k for k in ("num_samples", "offset") if params.get(k)]
    if not crop:
        return "target"
    try:
        _load_target({k: v for k, v in params.items() if k not in crop})
    except (ValueError, TypeError, OSError):
        return "target"
    if "num_samples" in crop and "offset" in crop:
        try:
            _load_target({k: v for k, v in params.items() if k != "num_samples"})
        except (ValueError, TypeError, OSError):
            return "offset"
    return crop[0]


def _check_config(params: Mapping, target, built: dict) -> None:
    """make_run on the loaded target, then the model's constructor (cached per model and arguments)."""
    from ..training.presets import make_run
    from ..training.loop import TrainConfig
    from .params import RUN_KEYS, TRAIN_KEYS

    model_args = {k: v for k, v in params.items() if k not in RUN_KEYS and k not in TRAIN_KEYS}
    spec_args = {k: params[k] for k in _SPEC_KEYS if k in params}
    TrainConfig(**{k: v for k, v in params.items() if k in TRAIN_KEYS})
    spec, _ = make_run(target=target, **spec_args, **model_args, train_overrides={"device": "cpu"})
    key = json.dumps([spec.model, spec.model_kwargs], sort_keys=True, default=str)
    if key not in built:
        import torch

        with torch.no_grad():
            spec.build_model()
        built[key] = True


def validate_runs(runs: Iterable, labels: Sequence[str] = ()) -> list[Problem]:
    """Check every run; one :class:`Problem` per invalid run (nothing is trained or written).

    Parameters
    ----------
    runs
        Objects with ``run_id`` and ``params`` (:class:`~spectral_probe.sweep.RunPlan`,
        :class:`~spectral_probe.sweep.RunTask`).
    labels
        Keys whose values name a run in the messages (the sweep's grid keys).

    Returns
    -------
    list[Problem]
        Empty when every run is valid.
    """
    targets: dict[tuple, object] = {}
    built: dict[str, bool] = {}
    problems = []
    for run in runs:
        params = dict(run.params)
        label = {k: params[k] for k in labels if k in params}

        def fail(key: str, message: str) -> None:
            problems.append(Problem(run.run_id, key, message, label))

        bad = _range_problem(params)
        if bad is not None:
            fail(*bad)
            continue
        tkey = _target_key(params)
        if tkey not in targets:
            try:
                targets[tkey] = _load_target(params)
            except (ValueError, TypeError, OSError) as exc:
                targets[tkey] = (_target_blame(params), _message(exc))
        target = targets[tkey]
        if isinstance(target, tuple):
            fail(*target)
            continue
        try:
            _check_config(params, target, built)
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            message = _message(exc)
            fail(_blame(message, {k: v for k, v in params.items() if k not in ("target", "model")}, "model"),
                 message)
    return problems

