"""Closed forms for SIREN/SIREN^2 activations at initialisation (theory overlays).

References
----------
* Sitzmann et al. 2020 (SIREN), Sec. 3.2 and Lemma 1.5-1.7 of their appendix:
  with ``W ~ U(-sqrt(6/d)/omega, +)`` and arcsine-distributed inputs, the
  pre-activation ``omega * W h`` is approximately standard normal and
  ``sin`` of a wide normal is arcsine-distributed on [-1, 1].
* Chandravamsi et al., arXiv 2509.09719, Theorem 3.1: adding WINNER noise
  ``eta ~ N(0, (s/omega)^2)`` (Eqn 8) to such weights gives a Gaussian
  pre-activation of standard deviation ``sqrt(1 + d s^2 / 2)`` (Sec 3, Theorem 3.1:
  inputs ``X ~ Arcsin(-1, 1)`` of variance 1/2, ``W ~ U(+-sqrt(6/d)/omega0)``,
  ``eta ~ N(0, (s/omega0)^2)``, no bias), derived in :func:`theorem31_std`.
  Proposition 2 of the paper notes that the bias is neglected, "justified for
  large d (fan_in) values".
* Proposition 1 of the same paper (Sec 2.1): for ``w_a ~ U(-a, a)^d``,
  ``z_a = a z_1``, so "the power spectral density satisfies S_a(k) = a^2 S_1(k)"
  (:func:`proposition1_psd`).

Bias term
---------
Our models keep PyTorch's default bias init ``b ~ U(-1/sqrt(d), 1/sqrt(d))``
(as the authors' code), which adds ``omega^2 Var(b) = omega^2 / (3 d)`` to the
pre-activation variance: 0.146 for ``omega = 30, d = 2048``, i.e. 7 % of the
std (at ``d = 128``: 2.34, i.e. std 1.83 instead of 1).  :func:`theorem31_std`
therefore takes ``bias_var``; pass :func:`pytorch_bias_variance` for our models,
or 0 for bias-free networks (the theorem as stated).  Deeper than layer 2 a
layer's input is ``sin(N(0, sigma^2))``, whose second moment
(:func:`sine_gaussian_second_moment`) is below the arcsine's 1/2 when ``sigma``
is near 1; :func:`siren_preactivation_stds` chains both effects through a
network.  The tests check all three.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = [
    "ARCSINE_VARIANCE", "ARCSINE_EXCESS_KURTOSIS",
    "arcsine_pdf", "arcsine_cdf", "gaussian_pdf", "gaussian_cdf", "laplace_pdf", "laplace_cdf",
    "sine_gaussian_pdf", "sine_gaussian_cdf", "sine_gaussian_second_moment",
    "uniform_variance", "pytorch_bias_variance", "siren_hidden_weight_variance",
    "preactivation_variance", "theorem31_std", "siren_preactivation_stds", "proposition1_psd",
    "bin_probabilities", "total_variation",
]

#: variance (= second moment) of the arcsine law on [-1, 1], density 1 / (pi sqrt(1 - x^2))
ARCSINE_VARIANCE = 0.5
#: excess kurtosis of the arcsine law on [-1, 1]
ARCSINE_EXCESS_KURTOSIS = -1.5


def arcsine_pdf(x) -> np.ndarray:
    """Arcsine density on (-1, 1): ``1 / (pi sqrt(1 - x^2))``, 0 outside (Sitzmann Lemma 1.5)."""
    x = np.asarray(x, dtype=np.float64)
    inside = np.abs(x) < 1
    out = np.zeros_like(x)
    out[inside] = 1.0 / (np.pi * np.sqrt(1.0 - x[inside] ** 2))
    return out


def arcsine_cdf(x) -> np.ndarray:
    """Arcsine distribution function on [-1, 1]: ``1/2 + arcsin(x) / pi``."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    return 0.5 + np.arcsin(x) / np.pi


def gaussian_pdf(x, std: float = 1.0, mean: float = 0.0) -> np.ndarray:
    """Normal density ``N(mean, std^2)``."""
    z = (np.asarray(x, dtype=np.float64) - mean) / std
    return np.exp(-0.5 * z * z) / (std * math.sqrt(2 * math.pi))


def gaussian_cdf(x, std: float = 1.0, mean: float = 0.0) -> np.ndarray:
    """Normal distribution function ``N(mean, std^2)``."""
    z = (np.asarray(x, dtype=np.float64) - mean) / std
    return 0.5 * special.erfc(-z / math.sqrt(2.0))


def laplace_pdf(x, std: float = 1.0, mean: float = 0.0) -> np.ndarray:
    """Laplace density with standard deviation ``std`` (scale ``b = std / sqrt(2)``): ``exp(-|x - mean| / b) / 2b``."""
    b = std / math.sqrt(2.0)
    return np.exp(-np.abs(np.asarray(x, dtype=np.float64) - mean) / b) / (2.0 * b)


def laplace_cdf(x, std: float = 1.0, mean: float = 0.0) -> np.ndarray:
    """Laplace distribution function with standard deviation ``std``."""
    z = (np.asarray(x, dtype=np.float64) - mean) / (std / math.sqrt(2.0))
    return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))


def _periods(std: float) -> np.ndarray:
    """Period indices ``k`` whose shifted copies ``2 pi k`` carry Gaussian mass (|k| <= 8 std / 2pi + 2)."""
    kmax = int(math.ceil(8.0 * std / (2 * math.pi))) + 2
    return np.arange(-kmax, kmax + 1, dtype=np.float64)


def sine_gaussian_pdf(y, std: float) -> np.ndarray:
    """Exact density of ``sin(Z)``, ``Z ~ N(0, std^2)``, on (-1, 1).

    ``p(y) = sum_k [phi(a + 2 pi k) + phi(pi - a + 2 pi k)] / sqrt(1 - y^2)``
    with ``a = arcsin(y)``; it tends to :func:`arcsine_pdf` as ``std`` grows
    (the post-activation of a wide SIREN layer).
    """
    y = np.asarray(y, dtype=np.float64)
    out = np.zeros_like(y)
    inside = np.abs(y) < 1
    a = np.arcsin(y[inside])[..., None]
    shifts = 2 * np.pi * _periods(std)
    mass = gaussian_pdf(a + shifts, std) + gaussian_pdf(np.pi - a + shifts, std)
    out[inside] = mass.sum(axis=-1) / np.sqrt(1.0 - y[inside] ** 2)
    return out


def sine_gaussian_cdf(y, std: float) -> np.ndarray:
    """Distribution function of ``sin(Z)``, ``Z ~ N(0, std^2)``.

    On each period ``[-pi/2, 3pi/2) + 2 pi k``, ``sin z <= y`` holds on
    ``[-pi/2, a]`` and ``[pi - a, 3pi/2)`` with ``a = arcsin(y)``.
    """
    y = np.clip(np.asarray(y, dtype=np.float64), -1.0, 1.0)
    a = np.arcsin(y)[..., None]
    shifts = 2 * np.pi * _periods(std)
    first = gaussian_cdf(a + shifts, std) - gaussian_cdf(-np.pi / 2 + shifts, std)
    second = gaussian_cdf(1.5 * np.pi + shifts, std) - gaussian_cdf(np.pi - a + shifts, std)
    return np.clip((first + second).sum(axis=-1), 0.0, 1.0)


def sine_gaussian_second_moment(std: float) -> float:
    """``E[sin(Z)^2] = (1 - exp(-2 std^2)) / 2`` for ``Z ~ N(0, std^2)`` (tends to 1/2)."""
    return 0.5 * (1.0 - math.exp(-2.0 * std * std))


def uniform_variance(bound: float) -> float:
    """Variance of ``U(-bound, bound)``: ``bound^2 / 3``."""
    return bound * bound / 3.0


def pytorch_bias_variance(fan_in: int) -> float:
    """Variance of ``nn.Linear``'s default bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: ``1 / (3 fan_in)``."""
    return uniform_variance(1.0 / math.sqrt(fan_in))


def siren_hidden_weight_variance(fan_in: int, omega: float) -> float:
    """Variance of SIREN's hidden weights ``U(+-sqrt(6/d)/omega)``: ``2 / (d omega^2)``."""
    return uniform_variance(math.sqrt(6.0 / fan_in) / omega)


def preactivation_variance(fan_in: int, weight_var: float, omega: float,
                           input_second_moment: float = ARCSINE_VARIANCE, bias_var: float = 0.0) -> float:
    """Variance of ``omega (W h + b)`` for i.i.d. zero-mean weights independent of the inputs.

    ``omega^2 (d Var(W) E[h^2] + Var(b))`` -- the sum of ``d`` independent
    terms plus the bias (its mean is 0 since ``E[W] = E[b] = 0``).
    """
    return omega * omega * (fan_in * weight_var * input_second_moment + bias_var)


def theorem31_std(fan_in: int, s: float, omega: float = 30.0, bias_var: float = 0.0,
                  input_second_moment: float = ARCSINE_VARIANCE) -> float:
    """Std of a SIREN^2 pre-activation whose weights carry WINNER noise (Theorem 3.1).

    Weights ``U(+-sqrt(6/d)/omega) + N(0, (s/omega)^2)`` (Eqn 8), inputs with
    ``E[h^2] = 1/2`` (arcsine): ``omega^2 d (2/(d omega^2) + s^2/omega^2) / 2
    = 1 + d s^2 / 2``, plus ``omega^2 bias_var`` for biased layers.

    Parameters
    ----------
    fan_in
        Width ``d`` of the layer's input.
    s
        WINNER noise scale (``s1`` for the second hidden layer).
    omega
        Frequency factor ``omega_0`` of the layer; the noise is ``s / omega``.
    bias_var
        Variance of the bias before the ``omega`` scaling; use
        :func:`pytorch_bias_variance` for our models, 0 for the theorem as stated.
    input_second_moment
        ``E[h^2]`` of the layer input; 1/2 for arcsine inputs.
    """
    weight_var = siren_hidden_weight_variance(fan_in, omega) + (s / omega) ** 2
    return math.sqrt(preactivation_variance(fan_in, weight_var, omega, input_second_moment, bias_var))


def siren_preactivation_stds(width: int, depth: int, omega: float = 30.0, scales=(0.0, 0.0),
                             bias: bool = True, first_second_moment: float = ARCSINE_VARIANCE) -> list[float]:
    """Predicted std of the pre-activations of layers 2..depth of a (noisy) SIREN of ``width`` units.

    Layer ``l`` (1-based) gets Theorem 3.1 with its WINNER scale (``scales[1]`` for layer 2, 0
    deeper) and, with ``bias``, PyTorch's default bias variance; its input second moment is
    ``first_second_moment`` for layer 2 (the arcsine law of the first layer's output) and
    :func:`sine_gaussian_second_moment` of the previous layer's predicted std deeper.

    Returns
    -------
    list of float
        ``depth - 1`` values, for layers 2, 3, ..., depth.
    """
    bias_var = pytorch_bias_variance(width) if bias else 0.0
    stds, moment = [], float(first_second_moment)
    for layer in range(2, depth + 1):
        s = float(scales[1]) if layer == 2 and len(scales) > 1 else 0.0
        std = theorem31_std(width, s, omega, bias_var, input_second_moment=moment)
        stds.append(std)
        moment = sine_gaussian_second_moment(std)
    return stds


def proposition1_psd(psd, a: float):
    """PSD of ``a * x`` from the PSD of ``x``: ``a^2 psd`` (Proposition 1; the PSD is quadratic)."""
    return (a * a) * psd


def bin_probabilities(cdf, edges, **kwargs) -> np.ndarray:
    """Probability of each bin ``[edges[i], edges[i+1])`` under ``cdf(x, **kwargs)``, shape (B,)."""
    edges = np.asarray(edges, dtype=np.float64)
    return np.diff(cdf(edges, **kwargs))


def total_variation(density, edges, cdf, **kwargs) -> float:
    """Total-variation distance between a measured histogram density and a law given by its cdf.

    ``0.5 * sum |p_measured - p_theory|`` over the bins, in [0, 1]; values
    outside the bins count as disagreement through the missing theory mass.
    """
    edges = np.asarray(edges, dtype=np.float64)
    measured = np.asarray(density, dtype=np.float64) * np.diff(edges)
    theory = bin_probabilities(cdf, edges, **kwargs)
    outside = max(0.0, 1.0 - float(theory.sum()))
    return 0.5 * (float(np.abs(measured - theory).sum()) + outside)
