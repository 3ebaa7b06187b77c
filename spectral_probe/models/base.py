"""Building blocks shared by every bundled INR: hook points, activations, layers.

Every bundled model is an :class:`INR`: an optional fixed input encoding, a stack
of :class:`INRLayer` (``nn.Linear`` -> activation) and a linear head.  Each layer
exposes two named :class:`HookPoint` modules so probes can observe

* ``layers.{i}.pre``  -- the argument of the nonlinearity (for SIREN ``omega * (W h + b)``,
  the quantity of the paper's Theorem 3.1),
* ``layers.{i}.post`` -- the activation output,

plus ``input`` (the encoded coordinates) and ``output`` (the prediction).  The
structured NTK route relies on the same layout: all trainable parameters live in
``nn.Linear`` modules and every activation acts elementwise.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = [
    "HookPoint",
    "Activation",
    "Sine",
    "Finer",
    "Gauss",
    "ReLU",
    "ComplexGabor",
    "INRLayer",
    "INR",
    "sitzmann_first_init_",
    "sitzmann_hidden_init_",
]


class HookPoint(nn.Module):
    """Identity module that marks a named place where a tensor can be observed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Activation(nn.Module):
    """Parameter-free elementwise nonlinearity split into ``pre`` and ``post``.

    ``pre(z)`` maps the linear output ``z`` to the argument of the nonlinearity
    (e.g. ``omega * z`` for a sine); ``post(p)`` applies the nonlinearity.
    """

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def post(self, p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.post(self.pre(z))


class Sine(Activation):
    """``sin(omega * z)`` (SIREN, Sitzmann et al. 2020, Eqn 1)."""

    def __init__(self, omega: float) -> None:
        super().__init__()
        self.omega = float(omega)

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        return self.omega * z

    def post(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sin(p)

    def extra_repr(self) -> str:
        return f"omega={self.omega:g}"


class Finer(Activation):
    """Variable-periodic ``sin(omega * (|z| + 1) * z)`` (FINER, Liu et al. CVPR 2024, Eqn 4).

    As in the FINER reference code the scale ``|z| + 1`` is treated as a constant
    in the backward pass (``scale_grad=False``).
    """

    def __init__(self, omega: float, scale_grad: bool = False) -> None:
        super().__init__()
        self.omega = float(omega)
        self.scale_grad = bool(scale_grad)

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        scale = torch.abs(z) + 1 if self.scale_grad else torch.abs(z).detach() + 1
        return self.omega * scale * z

    def post(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sin(p)

    def extra_repr(self) -> str:
        return f"omega={self.omega:g}, scale_grad={self.scale_grad}"


class Gauss(Activation):
    """Gaussian bump ``exp(-(sigma z)^2)`` (Ramasinghe & Lucey, ECCV 2022)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        return self.sigma * z

    def post(self, p: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(p * p))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"


class ReLU(Activation):
    """``max(z, 0)``."""

    def post(self, p: torch.Tensor) -> torch.Tensor:
        return torch.relu(p)


class ComplexGabor(Activation):
    """Complex Gabor wavelet ``exp(i omega z - |s z|^2)`` (WIRE, Saragadam et al. CVPR 2023, Eqn 5)."""

    def __init__(self, omega: float, scale: float) -> None:
        super().__init__()
        self.omega = float(omega)
        self.scale = float(scale)

    def post(self, p: torch.Tensor) -> torch.Tensor:
        phase = self.omega * p
        envelope = self.scale * p
        return torch.exp(1j * phase - envelope.abs().square())

    def extra_repr(self) -> str:
        return f"omega={self.omega:g}, scale={self.scale:g}"


class INRLayer(nn.Module):
    """``nn.Linear`` followed by an elementwise activation, with ``pre``/``post`` hook points."""

    def __init__(self, linear: nn.Linear, act: Activation) -> None:
        super().__init__()
        self.linear = linear
        self.act = act
        self.pre = HookPoint()
        self.post = HookPoint()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        p = self.pre(self.act.pre(self.linear(h)))
        return self.post(self.act.post(p))


class INR(nn.Module):
    """Coordinate network: ``encoding -> layers -> head``.

    Parameters
    ----------
    layers
        Hidden layers, each an :class:`INRLayer`.
    head
        Final linear map to the output channels.
    encoding
        Optional fixed (parameter-free) input encoding such as positional encoding.
    real_output
        Take the real part of a complex head output (WIRE).
    config
        The constructor arguments, kept so a run can be rebuilt and stored.
    """

    def __init__(
        self,
        layers: Sequence[INRLayer],
        head: nn.Linear,
        encoding: nn.Module | None = None,
        real_output: bool = False,
        config: dict | None = None,
    ) -> None:
        super().__init__()
        self.encoding = encoding
        self.input = HookPoint()
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.output = HookPoint()
        self.real_output = bool(real_output)
        self.config = dict(config or {})

    @property
    def in_features(self) -> int:
        return int(self.config.get("in_features", 1))

    @property
    def out_features(self) -> int:
        return self.head.out_features

    @property
    def is_complex(self) -> bool:
        return any(p.is_complex() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoding(x) if self.encoding is not None else x
        h = self.input(h)
        for layer in self.layers:
            h = layer(h)
        out = self.head(h)
        if self.real_output:
            out = out.real
        return self.output(out)

    def linear_layers(self) -> list[nn.Linear]:
        """All linear maps in forward order (hidden layers then head)."""
        return [layer.linear for layer in self.layers] + [self.head]


def sitzmann_first_init_(linear: nn.Linear) -> nn.Linear:
    """First SIREN layer: ``W ~ U(-1/d_in, 1/d_in)`` (Sitzmann et al. 2020, Sec. 3.2)."""
    bound = 1.0 / linear.in_features
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
    return linear


def sitzmann_hidden_init_(linear: nn.Linear, omega: float) -> nn.Linear:
    """Hidden SIREN layer: ``W ~ U(-sqrt(6/d_in)/omega, sqrt(6/d_in)/omega)`` (Sitzmann et al., Sec. 3.2)."""
    bound = math.sqrt(6.0 / linear.in_features) / omega
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
    return linear
