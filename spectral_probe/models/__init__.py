"""Bundled INR architectures and a registry to build them by name.

A new architecture is added in one place: decorate its builder with
:func:`register_model` (see :mod:`.registry`); ``build_model``, ``list_models``,
``model_parameters``, the CLI's ``--model`` and sweeps then know it.

>>> from spectral_probe.models import build_model
>>> model = build_model("siren2", width=64, depth=3, s0=10.0, s1=0.5, seed=0)
"""

from __future__ import annotations

from .base import INR, Activation, ComplexGabor, Finer, Gauss, HookPoint, INRLayer, ReLU, Sine
from .baselines import finer, finerpp, gauss, relu_pe, siren_rff, wire
from .encodings import PositionalEncoding, RandomFourierFeatures
from .registry import MODELS, build_model, list_models, model_parameters, register_model, unregister_model
from .siren import apply_winner_noise_, siren, siren2

__all__ = [
    "INR", "INRLayer", "HookPoint", "Activation", "Sine", "Finer", "Gauss", "ReLU", "ComplexGabor",
    "PositionalEncoding", "RandomFourierFeatures",
    "siren", "siren2", "finer", "finerpp", "gauss", "wire", "relu_pe", "siren_rff",
    "apply_winner_noise_", "MODELS", "build_model", "list_models", "model_parameters", "register_model",
    "unregister_model",
]
