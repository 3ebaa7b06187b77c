"""What the monitors show, computed once for the TensorBoard output and the ``watch`` figure.

Everything here works on host arrays in the run file's layout (see :mod:`spectral_probe.store`),
so a live run and a run file give the same numbers:

* the target's spectrum on the probe's frequency axis and its zero-output PSNR;
* normalised cumulative spectra of the probed layers (fraction of the non-DC power at or below
  each frequency, frequencies in fractions of Nyquist, as in :mod:`spectral_probe.bottleneck.indicators`);
* the Wasserstein-1 distance of each layer's cumulative spectrum to the target's;
* the frequency axis of NTK ``S(k)`` snapshots.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["NYQUIST", "alias", "zero_output_psnr", "TargetSpectrum", "target_spectrum", "cumulative",
           "layer_cumulatives", "spectral_distances", "hidden_layer", "ntk_frequencies", "target_from_run",
           "summary_line"]

#: cycles per sample at the Nyquist frequency
NYQUIST = 0.5


def alias(layer: str, kind: str) -> str:
    """Display name of a (layer, kind) cell: ``"layers.3.pre"``, ``"output"``, ``"input"``."""
    return str(layer) if str(layer) in ("input", "output") else f"{layer}.{kind}"


def zero_output_psnr(values: np.ndarray, peak: float = 1.0) -> float:
    """PSNR [dB] of the all-zero prediction of ``values`` (N, C): the spectral-bottleneck floor."""
    power = float(np.mean(np.square(np.asarray(values, dtype=np.float64))))
    return math.inf if power == 0.0 else 10.0 * math.log10(peak * peak / power)


def cumulative(psd: np.ndarray) -> np.ndarray:
    """Normalised running sum of a non-DC spectrum along its last axis (NaN where it has no power)."""
    import torch

    from ..bottleneck.indicators import cumulative as _cumulative

    return _cumulative(torch.as_tensor(np.asarray(psd, dtype=np.float64))).numpy()


class TargetSpectrum:
    """The target's reference: values, grid, zero-output PSNR and non-DC spectrum.

    Parameters
    ----------
    values
        Target values, shape (N, C) (host array).
    grid_shape
        ``(N,)`` or ``(H, W)``.
    peak
        PSNR peak (1 for targets scaled to [-1, 1]).

    Attributes
    ----------
    freqs, psd, cdf
        Shape (F,): frequencies [fraction of Nyquist, DC left out], the layer-averaged
        spectrum (channels averaged; radial profile in 2-D) and its normalised cumulative sum.
    zero_psnr
        :func:`zero_output_psnr` of the values.
    """

    def __init__(self, values: np.ndarray, grid_shape: Sequence[int], peak: float = 1.0) -> None:
        import torch

        from ..bottleneck.indicators import power_spectrum

        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        self.grid_shape = tuple(int(n) for n in grid_shape)
        if math.prod(self.grid_shape) != values.shape[0]:
            raise ValueError(f"target grid {self.grid_shape} does not match its {values.shape[0]} samples")
        self.peak = float(peak)
        self.zero_psnr = zero_output_psnr(values, self.peak)
        freqs, psd = power_spectrum(torch.from_numpy(values), self.grid_shape)
        self.freqs, self.psd = freqs.numpy(), psd.numpy()
        self.cdf = cumulative(self.psd)

    @property
    def band(self) -> tuple[float, float] | None:
        """The dominant band ``(lo, hi)`` [fraction of Nyquist] (the bottleneck watch's), None without power."""
        import torch

        from ..bottleneck.indicators import dominant_band

        if not np.all(np.isfinite(self.cdf)):
            return None
        return dominant_band(torch.from_numpy(self.cdf), torch.from_numpy(self.freqs))

    def on(self, freqs: np.ndarray) -> np.ndarray | None:
        """The target's cumulative spectrum on ``freqs`` (a probe's non-DC axis), None if the grids differ."""
        freqs = np.asarray(freqs, dtype=np.float64)
        if freqs.shape != self.freqs.shape or not np.allclose(freqs, self.freqs, rtol=1e-6, atol=1e-9):
            return None
        return self.cdf


def target_spectrum(values: np.ndarray, grid_shape: Sequence[int], peak: float = 1.0) -> TargetSpectrum:
    """:class:`TargetSpectrum` of ``values`` (N, C) on ``grid_shape``."""
    return TargetSpectrum(values, grid_shape, peak)


def layer_cumulatives(step) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cumulative spectra of every probed (layer, kind) at one probe step.

    Parameters
    ----------
    step
        The ``activations`` group at one step (an ``xarray.Dataset`` with ``psd (layer, kind, freq)``).

    Returns
    -------
    freqs : numpy.ndarray, shape (F - 1,)
        Non-DC frequencies [fraction of Nyquist].
    curves : dict
        ``alias -> (F - 1,)`` normalised cumulative spectrum, in (layer, kind) order; cells without
        data (NaN) are left out.
    """
    freqs = np.asarray(step["freq"].values, dtype=np.float64)[1:] / NYQUIST
    curves = {}
    psd = step["psd"]
    values = np.asarray(psd.transpose("layer", "kind", ...).values, dtype=np.float64)   # one copy, no .sel
    for i, layer in enumerate(psd["layer"].values):
        for j, kind in enumerate(psd["kind"].values):
            row = values[i, j].reshape(-1)[1:]
            if row.size and np.all(np.isfinite(row)):
                curves[alias(layer, kind)] = cumulative(row)
    return freqs, curves


def spectral_distances(curves: Mapping[str, np.ndarray], target_cdf: np.ndarray,
                       freqs: np.ndarray) -> dict[str, float]:
    """Wasserstein-1 distance [fraction of Nyquist] of each curve to the target's (NaN without power)."""
    import torch

    from ..bottleneck.indicators import spectral_distance

    ref = torch.as_tensor(np.asarray(target_cdf, dtype=np.float64))
    f = torch.as_tensor(np.asarray(freqs, dtype=np.float64))
    return {name: float(spectral_distance(torch.as_tensor(c, dtype=torch.float64), ref, f))
            for name, c in curves.items()}


def hidden_layer(names: Sequence[str], hint: str | None = None) -> str | None:
    """The last hidden pre-activation among ``names`` (aliases): ``hint`` when given and present, else
    the last ``*.pre`` alias that is not the output."""
    if hint and hint in names:
        return hint
    inner = [n for n in names if n.endswith(".pre") and n != "output"]
    return inner[-1] if inner else None


def ntk_frequencies(n: int, stride: int = 1) -> np.ndarray:
    """Frequencies of one-sided ``S(k)``, ``k = 0 .. n // 2``, as fractions of the training grid's Nyquist.

    ``S`` is computed on every ``stride``-th of the grid's points (``n`` of them), so bin ``k`` sits
    at ``2 k / (n stride)`` (the convention of :func:`spectral_probe.bottleneck.indicators.ntk_band_share`).
    """
    return 2.0 * np.arange(int(n) // 2 + 1) / (int(n) * int(stride))


def target_from_run(tree, peak: float | None = None) -> TargetSpectrum | None:
    """The target of a run file (its ``prediction`` group) as a :class:`TargetSpectrum`, or None.

    ``peak`` defaults to the ``peak`` attribute of the ``scalars`` group's ``psnr`` (else 1).
    """
    groups = tree.children
    if "prediction" not in groups or "target" not in groups["prediction"].dataset:
        return None
    ds = groups["prediction"].to_dataset()
    values = np.asarray(ds["target"].values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return None
    grid = ds.attrs.get("grid_shape", [values.shape[0]])
    if isinstance(grid, str):                       # lists are stored as JSON text
        import json

        grid = json.loads(grid)
    grid = [int(g) for g in np.atleast_1d(grid)]
    if peak is None:
        peak = 1.0
        if "scalars" in groups and "psnr" in groups["scalars"].dataset:
            peak = float(groups["scalars"].dataset["psnr"].attrs.get("peak", 1.0))
    try:
        return TargetSpectrum(values, grid, peak)
    except ValueError:
        return None


def summary_line(best_psnr: float, best_epoch: int, final_psnr: float, zero_psnr: float, epochs_run: int) -> str:
    """One line: best/final PSNR against the zero-output floor."""
    gain = best_psnr - zero_psnr
    verdict = ("stuck at the zero-output floor" if gain < 1.0 else f"{gain:+.2f} dB over the floor") \
        if math.isfinite(gain) else "diverged"
    return (f"{epochs_run} epochs: best {best_psnr:.2f} dB at epoch {best_epoch}; final {final_psnr:.2f} dB; "
            f"zero-output floor {zero_psnr:.2f} dB ({verdict})")
