"""SIREN and SIREN^2 (SIREN initialised with WINNER weight noise).

References
----------
Sitzmann et al., "Implicit Neural Representations with Periodic Activation
Functions", NeurIPS 2020 (SIREN).  Chandravamsi et al., "Spectral Bottleneck in
Deep Neural Networks: Noise is All You Need", arXiv 2509.09719 (WINNER, Eqns 7-9).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import INR, INRLayer, Sine, sitzmann_first_init_, sitzmann_hidden_init_
from .registry import register_model
from ..validation import positive_float, positive_int

__all__ = ["siren", "siren2", "apply_winner_noise_"]


def check_size(width: int, depth: int, in_features: int = 1, out_features: int = 1) -> None:
    """Raise ``ValueError`` unless every size is a positive integer."""
    for name, value in (("width", width), ("depth", depth), ("in_features", in_features),
                        ("out_features", out_features)):
        positive_int(value, name)


def _check_omega(name: str, value: float) -> float:
    return positive_float(value, name)


def siren_layers(
    in_features: int, width: int, depth: int, first_omega: float, hidden_omega: float
) -> list[INRLayer]:
    """``depth`` sine layers with Sitzmann's initialisation (biases keep PyTorch's default)."""
    layers = []
    for i in range(depth):
        d_in = in_features if i == 0 else width
        linear = nn.Linear(d_in, width)
        if i == 0:
            sitzmann_first_init_(linear)
            layers.append(INRLayer(linear, Sine(first_omega)))
        else:
            sitzmann_hidden_init_(linear, hidden_omega)
            layers.append(INRLayer(linear, Sine(hidden_omega)))
    return layers


@register_model("siren")
def siren(
    in_features: int = 1,
    out_features: int = 1,
    width: int = 256,
    depth: int = 4,
    first_omega: float = 30.0,
    hidden_omega: float = 30.0,
) -> INR:
    """SIREN with ``depth`` sine layers of ``width`` units and a linear head.

    Parameters
    ----------
    first_omega
        Frequency factor of the first layer (30 for images; 3000 for audio in
        Sitzmann et al. and in the WINNER paper).
    hidden_omega
        Frequency factor of the hidden layers (30).

    Notes
    -----
    The head receives the hidden-layer initialisation, as in the authors' code.
    """
    check_size(width, depth, in_features, out_features)
    first_omega = _check_omega("first_omega", first_omega)
    hidden_omega = _check_omega("hidden_omega", hidden_omega)
    layers = siren_layers(in_features, width, depth, first_omega, hidden_omega)
    head = sitzmann_hidden_init_(nn.Linear(width, out_features), hidden_omega)
    config = dict(model="siren", in_features=in_features, out_features=out_features,
                  width=width, depth=depth, first_omega=first_omega, hidden_omega=hidden_omega)
    return INR(layers, head, config=config)


def _check_scale(name: str, value: float) -> float:
    return positive_float(value, name, allow_zero=True)


def apply_winner_noise_(
    model: INR, s0: float, s1: float, noise_omega: float | None = None,
    generator: torch.Generator | None = None,
) -> INR:
    """Add WINNER noise in place: ``W_1 += N(0,(s0/omega)^2)``, ``W_2 += N(0,(s1/omega)^2)``.

    Eqns 7-9 of arXiv 2509.09719: only the weights into the first and second
    hidden layers are perturbed; biases and deeper layers keep their SIREN
    initialisation.  ``omega`` is the hidden-layer frequency factor, as in the
    authors' code (both perturbations are divided by the same omega0).

    Parameters
    ----------
    noise_omega
        Divisor of both noise scales; defaults to the model's ``hidden_omega``.
    """
    s0 = _check_scale("s0", s0)
    s1 = _check_scale("s1", s1)
    if noise_omega is None:
        noise_omega = model.config.get("hidden_omega", 30.0)
    noise_omega = _check_omega("noise_omega", noise_omega)
    linears = [layer.linear for layer in model.layers]
    with torch.no_grad():
        for linear, s in zip(linears[:2], (s0, s1)):
            if s > 0:
                noise = torch.randn(linear.weight.shape, generator=generator,
                                    dtype=linear.weight.dtype, device=linear.weight.device)
                linear.weight.add_(noise, alpha=s / noise_omega)
    return model


@register_model("siren2")
def siren2(
    in_features: int = 1,
    out_features: int = 1,
    width: int = 256,
    depth: int = 4,
    first_omega: float = 30.0,
    hidden_omega: float = 30.0,
    s0: float = 0.0,
    s1: float = 0.0,
    noise_omega: float | None = None,
) -> INR:
    """SIREN^2: a SIREN whose first two weight matrices carry WINNER noise.

    ``s0``/``s1`` are usually derived from the target's spectral centroid with
    :func:`spectral_probe.winner.winner_scales` (Eqn 11); ``s0 = s1 = 0`` gives a
    plain SIREN.  See :func:`apply_winner_noise_` for the noise definition.
    """
    model = siren(in_features, out_features, width, depth, first_omega, hidden_omega)
    if depth < 2 and float(s1) > 0:
        raise ValueError(f"s1={s1} perturbs the second hidden layer, but depth={depth} has only one")
    apply_winner_noise_(model, s0, s1, noise_omega)
    model.config.update(model="siren2", s0=float(s0), s1=float(s1),
                        noise_omega=float(noise_omega if noise_omega is not None else hidden_omega))
    return model
