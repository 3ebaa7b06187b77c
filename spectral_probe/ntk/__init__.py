"""Empirical neural tangent kernel (NTK) engine: kernels, eigenpairs and S(k).

* :func:`empirical_ntk` -- the kernel (``"structured"``, ``"jacrev"``, ``"ntvp"``
  or ``"auto"``; see :class:`Implementation`), traced or per output, optionally
  per layer.
* :func:`ntk_operator` -- matrix-free ``Theta @ v``.
* :func:`ntk_eigh` (dense) and :func:`ntk_topk` (Lanczos) -- eigenpairs.
* :mod:`spectral_probe.ntk.spectrum` -- Eqn 6 ``S(k)`` from eigenpairs, from
  the kernel, or from Jacobian factors without the kernel
  (:func:`spectrum_without_kernel`); the DFT normalisation and the conversion
  to the authors' figures are documented there.
* :mod:`spectral_probe.ntk.spectrum2d` -- S(k) on 2-D grids and its radial profile.
* :func:`analyze_ntk` / :func:`ntk_dataset` -- one-call pipeline (1-D or 2-D grids) and xarray output.
* :mod:`spectral_probe.ntk.forecast` -- linearised training dynamics (Eqns 3-4):
  :func:`forecast_fit`, :func:`linearised_forecast`, :class:`Forecast`.
* :class:`NTKSnapshot` -- training callback recording S(k) (and forecasts) every M epochs.
* :func:`paused_hooks` -- silence probes' forward hooks during NTK computations.
* :mod:`spectral_probe.ntk.plot` -- figures (imports matplotlib; not loaded here).
"""

from ..hooks import paused as paused_hooks
from .analysis import NTKResult, analyze_ntk, spectrum_without_kernel
from .eig import NTKEigen, decay_profile, ntk_eigh, ntk_topk
from .empirical import Implementation, count_parameters, empirical_ntk, resolve_implementation
from .memory import DenseKernelTooLarge
from .forecast import Forecast, forecast_fit, linearised_forecast, lr_schedule
from .measure import SpectralMeasure, lanczos_measure, measure_from_eigen
from .operator import NTKOperator, ntk_operator, spectrum_from_operator
from .spectrum import (authors_convention, high_frequency_share, normalized_kernel,
                       spectrum_from_eigenpairs, spectrum_from_factors, spectrum_from_kernel,
                       two_sided)
from .spectrum2d import high_frequency_share_2d, radial_profile, spectrum2d_from_eigenpairs, \
    spectrum2d_from_kernel
from .structured import LayerFactors, StructuredUnsupported, capture_factors, structured_layers, \
    supports_structured

__all__ = [
    "Implementation", "empirical_ntk", "resolve_implementation", "count_parameters",
    "NTKOperator", "ntk_operator", "NTKEigen", "ntk_eigh", "ntk_topk", "decay_profile",
    "spectrum_from_eigenpairs", "spectrum_from_kernel", "spectrum_from_factors",
    "spectrum_without_kernel", "two_sided", "authors_convention", "high_frequency_share",
    "normalized_kernel", "NTKResult", "analyze_ntk", "paused_hooks", "DenseKernelTooLarge",
    "LayerFactors", "capture_factors", "structured_layers", "supports_structured", "NTKSnapshot",
    "StructuredUnsupported", "spectrum_from_operator", "spectrum2d_from_eigenpairs", "spectrum2d_from_kernel",
    "radial_profile", "high_frequency_share_2d", "Forecast", "forecast_fit", "linearised_forecast",
    "lr_schedule", "SpectralMeasure", "lanczos_measure", "measure_from_eigen",
]


def __getattr__(name: str):
    # the training probe imports the training loop; load it only when asked for
    if name == "NTKSnapshot":
        from .probe import NTKSnapshot
        return NTKSnapshot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
