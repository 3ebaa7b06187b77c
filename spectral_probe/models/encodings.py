"""Fixed (parameter-free) input encodings for coordinate networks."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import positive_float, positive_int

__all__ = ["PositionalEncoding", "RandomFourierFeatures"]


class PositionalEncoding(nn.Module):
    """NeRF encoding ``[x, sin(2^k pi x), cos(2^k pi x)]`` for ``k < num_frequencies``.

    Mildenhall et al. 2020, Eqn 4.  Input ``(..., d)`` -> output ``(..., d (1 + 2L))``.
    """

    def __init__(self, in_features: int, num_frequencies: int) -> None:
        super().__init__()
        positive_int(num_frequencies, "num_frequencies")
        self.in_features = in_features
        self.num_frequencies = num_frequencies
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(num_frequencies),
                             persistent=False)

    @property
    def out_features(self) -> int:
        return self.in_features * (1 + 2 * self.num_frequencies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (x.unsqueeze(-1) * self.freqs.to(x.dtype)).flatten(-2)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_frequencies={self.num_frequencies}"


class RandomFourierFeatures(nn.Module):
    """Gaussian random Fourier features ``[cos 2 pi B x, sin 2 pi B x]`` (Tancik et al. 2020).

    ``B`` has shape ``(num_features, in_features)`` with entries ``N(0, sigma^2)``;
    it is a buffer, not a parameter.  Output ``(..., 2 num_features)``.
    """

    def __init__(self, in_features: int, num_features: int, sigma: float) -> None:
        super().__init__()
        sigma = positive_float(sigma, "sigma")
        positive_int(num_features, "num_features")
        self.in_features = in_features
        self.sigma = sigma
        self.register_buffer("B", torch.randn(num_features, in_features) * sigma)

    @property
    def out_features(self) -> int:
        return 2 * self.B.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * x @ self.B.to(x.dtype).T
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_features={self.B.shape[0]}, sigma={self.sigma:g}"
