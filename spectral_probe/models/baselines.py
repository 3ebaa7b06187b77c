"""The WINNER paper's baseline architectures as explicit :class:`INR` stacks.

* FINER   -- Liu et al., "FINER: Flexible spectral-bias tuning in INRs", CVPR 2024.
* FINER++ -- FINER with the first-layer bias drawn from ``U(-k, k)`` (Zhuang et al.,
  "FINER++", 2024), which widens the initial frequency support.
* Gauss   -- Ramasinghe & Lucey, "Beyond periodicity", ECCV 2022.
* WIRE    -- Saragadam et al., "WIRE: Wavelet implicit neural representations", CVPR 2023.
* ReLU+PE -- ReLU MLP on NeRF positional encoding (Mildenhall et al. 2020, Eqn 4).
* SIREN+RFF -- SIREN on random Fourier features (Tancik et al. 2020).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import INR, ComplexGabor, Finer, Gauss, INRLayer, ReLU, sitzmann_first_init_, \
    sitzmann_hidden_init_
from .encodings import PositionalEncoding, RandomFourierFeatures
from .registry import register_model
from .siren import _check_omega, check_size, siren_layers
from ..validation import positive_float

__all__ = ["finer", "finerpp", "gauss", "wire", "relu_pe", "siren_rff"]


def _finer_layers(in_features: int, width: int, depth: int, first_omega: float,
                  hidden_omega: float) -> list[INRLayer]:
    layers = []
    for i in range(depth):
        linear = nn.Linear(in_features if i == 0 else width, width)
        if i == 0:
            sitzmann_first_init_(linear)
            layers.append(INRLayer(linear, Finer(first_omega)))
        else:
            sitzmann_hidden_init_(linear, hidden_omega)
            layers.append(INRLayer(linear, Finer(hidden_omega)))
    return layers


@register_model("finer")
def finer(in_features: int = 1, out_features: int = 1, width: int = 256, depth: int = 4,
          first_omega: float = 30.0, hidden_omega: float = 30.0) -> INR:
    """FINER: SIREN initialisation with the variable-periodic activation ``sin(omega(|z|+1)z)``."""
    check_size(width, depth, in_features, out_features)
    first_omega = _check_omega("first_omega", first_omega)
    hidden_omega = _check_omega("hidden_omega", hidden_omega)
    layers = _finer_layers(in_features, width, depth, first_omega, hidden_omega)
    head = sitzmann_hidden_init_(nn.Linear(width, out_features), hidden_omega)
    config = dict(model="finer", in_features=in_features, out_features=out_features, width=width,
                  depth=depth, first_omega=first_omega, hidden_omega=hidden_omega)
    return INR(layers, head, config=config)


@register_model("finerpp")
def finerpp(in_features: int = 1, out_features: int = 1, width: int = 256, depth: int = 4,
            first_omega: float = 30.0, hidden_omega: float = 30.0, bias_scale: float = 5.0) -> INR:
    """FINER++: FINER with the first-layer bias drawn from ``U(-bias_scale, bias_scale)``.

    A larger first-layer bias pushes pre-activations onto the steeper part of
    ``(|z|+1) z`` so the network starts with a broader spectrum (FINER, Sec. 3.3).
    """
    bias_scale = positive_float(bias_scale, "bias_scale", allow_zero=True)
    model = finer(in_features, out_features, width, depth, first_omega, hidden_omega)
    with torch.no_grad():
        model.layers[0].linear.bias.uniform_(-bias_scale, bias_scale)
    model.config.update(model="finerpp", bias_scale=bias_scale)
    return model


@register_model("gauss")
def gauss(in_features: int = 1, out_features: int = 1, width: int = 256, depth: int = 4,
          sigma: float = 30.0) -> INR:
    """Gaussian-activation MLP ``exp(-(sigma z)^2)`` with PyTorch's default linear init."""
    check_size(width, depth, in_features, out_features)
    sigma = _check_omega("sigma", sigma)
    layers = [INRLayer(nn.Linear(in_features if i == 0 else width, width), Gauss(sigma))
              for i in range(depth)]
    config = dict(model="gauss", in_features=in_features, out_features=out_features, width=width,
                  depth=depth, sigma=sigma)
    return INR(layers, nn.Linear(width, out_features), config=config)


@register_model("wire")
def wire(in_features: int = 1, out_features: int = 1, width: int = 256, depth: int = 4,
         omega: float = 10.0, scale: float = 10.0, first_omega: float | None = None) -> INR:
    """WIRE: complex Gabor wavelet activations; the output is the head's real part.

    As in the WIRE reference code the first layer is real, later layers and the
    head are complex, and the hidden width is divided by sqrt(2) so that the
    real parameter count stays close to a real network of ``width`` units.
    ``first_omega`` (default ``omega``) is the first layer's Gabor frequency:
    the WINNER paper scales it by 100 for audio (arXiv 2509.09719, Sec 5.1).
    """
    check_size(width, depth, in_features, out_features)
    omega = _check_omega("omega", omega)
    scale = _check_omega("scale", scale)
    first_omega = omega if first_omega is None else _check_omega("first_omega", first_omega)
    hidden = max(1, int(width / math.sqrt(2)))
    layers = []
    for i in range(depth):
        dtype = torch.float32 if i == 0 else torch.complex64
        linear = nn.Linear(in_features if i == 0 else hidden, hidden, dtype=dtype)
        layers.append(INRLayer(linear, ComplexGabor(first_omega if i == 0 else omega, scale)))
    head = nn.Linear(hidden, out_features, dtype=torch.complex64)
    config = dict(model="wire", in_features=in_features, out_features=out_features, width=width,
                  depth=depth, omega=omega, scale=scale, first_omega=first_omega, hidden_width=hidden)
    return INR(layers, head, real_output=True, config=config)


@register_model("relu_pe")
def relu_pe(in_features: int = 1, out_features: int = 1, width: int = 256, depth: int = 4,
            num_frequencies: int = 7) -> INR:
    """ReLU MLP on NeRF positional encoding with ``num_frequencies`` octaves per coordinate."""
    check_size(width, depth, in_features, out_features)
    encoding = PositionalEncoding(in_features, num_frequencies)
    layers = [INRLayer(nn.Linear(encoding.out_features if i == 0 else width, width), ReLU())
              for i in range(depth)]
    config = dict(model="relu_pe", in_features=in_features, out_features=out_features,
                  width=width, depth=depth, num_frequencies=int(num_frequencies))
    return INR(layers, nn.Linear(width, out_features), encoding=encoding, config=config)


@register_model("siren_rff")
def siren_rff(in_features: int = 1, out_features: int = 1, width: int = 256, depth: int = 4,
              first_omega: float = 30.0, hidden_omega: float = 30.0, sigma: float = 30.0,
              num_features: int | None = None) -> INR:
    """SIREN on random Fourier features ``[cos 2 pi B x, sin 2 pi B x]``, ``B ~ N(0, sigma^2)``.

    ``num_features`` (rows of ``B``) defaults to ``width // 2`` so that the
    encoding has ``width`` channels.
    """
    check_size(width, depth, in_features, out_features)
    num_features = max(1, width // 2) if num_features is None else num_features
    encoding = RandomFourierFeatures(in_features, num_features, sigma)
    layers = siren_layers(encoding.out_features, width, depth, _check_omega("first_omega", first_omega),
                          _check_omega("hidden_omega", hidden_omega))
    head = sitzmann_hidden_init_(nn.Linear(width, out_features), hidden_omega)
    config = dict(model="siren_rff", in_features=in_features, out_features=out_features,
                  width=width, depth=depth, first_omega=float(first_omega),
                  hidden_omega=float(hidden_omega), sigma=float(sigma), num_features=num_features)
    return INR(layers, head, encoding=encoding, config=config)
