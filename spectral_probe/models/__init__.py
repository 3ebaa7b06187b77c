"""Bundled INR architectures and a registry to build them by name.

>>> from spectral_probe.models import build_model
>>> model = build_model("siren2", width=64, depth=3, s0=10.0, s1=0.5, seed=0)
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch

from .base import INR, Activation, ComplexGabor, Finer, Gauss, HookPoint, INRLayer, ReLU, Sine
from .baselines import finer, finerpp, gauss, relu_pe, siren_rff, wire
from .encodings import PositionalEncoding, RandomFourierFeatures
from .siren import apply_winner_noise_, siren, siren2

__all__ = [
    "INR", "INRLayer", "HookPoint", "Activation", "Sine", "Finer", "Gauss", "ReLU", "ComplexGabor",
    "PositionalEncoding", "RandomFourierFeatures",
    "siren", "siren2", "finer", "finerpp", "gauss", "wire", "relu_pe", "siren_rff",
    "apply_winner_noise_", "MODELS", "build_model", "list_models", "model_parameters",
]

MODELS: dict[str, Callable[..., INR]] = {
    "siren": siren,
    "siren2": siren2,
    "finer": finer,
    "finerpp": finerpp,
    "gauss": gauss,
    "wire": wire,
    "relu_pe": relu_pe,
    "siren_rff": siren_rff,
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODELS)


def model_parameters(name: str) -> dict[str, object]:
    """Keyword arguments of model ``name`` with their defaults."""
    builder = _builder(name)
    return {k: p.default for k, p in inspect.signature(builder).parameters.items()}


def _builder(name: str) -> Callable[..., INR]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return MODELS[name]


def build_model(
    name: str,
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **kwargs,
) -> INR:
    """Build a registered model.

    Parameters
    ----------
    name
        One of :func:`list_models`.
    seed
        Seed for the initialisation (weights, WINNER noise, random features);
        the global RNG state is left untouched when given.
    device, dtype
        Where to place the model; ``dtype`` applies to real parameters only
        (WIRE's complex layers keep their complex dtype).
    **kwargs
        Architecture arguments; see :func:`model_parameters`.  Arguments that
        the architecture does not take raise ``TypeError``.
    """
    builder = _builder(name)
    accepted = model_parameters(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"model {name!r} takes no argument(s) {', '.join(unknown)}; "
                        f"it accepts: {', '.join(accepted)}")
    if seed is None:
        model = builder(**kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = builder(**kwargs)
        model.config["seed"] = int(seed)
    if dtype is not None and not model.is_complex:
        model = model.to(dtype=dtype)
    if device is not None:
        model = model.to(device=device)
    return model
