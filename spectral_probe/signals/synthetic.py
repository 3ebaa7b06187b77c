"""Synthetic 1-D targets that need no data download.

* :func:`tones` -- sums of sinusoids; :func:`eqn5` gives the low- and
  high-frequency toy pair used for the paper's Fig 4 (Eqn 5).  The paper's exact
  coefficients are not restated here; our pair puts three equal-amplitude tones
  either far below (``low``) or in the upper half (``high``) of the band, with
  frequencies given as fractions of the Nyquist frequency so that "low" and
  "high" keep their meaning at any N.
* :func:`broadband` -- flat-magnitude, random-phase spectra on a band
  ``[low_cut, high_cut] x Nyquist``: raising ``low_cut`` removes low-frequency
  content, as in the paper's Fig 1 signals S1-S8 (:func:`fig1_series`).

All targets are peak-normalised to 1, like the audio files.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .target import Target

__all__ = ["EQN5_BANDS", "tones", "eqn5", "broadband", "fig1_series", "parse_synthetic",
           "DEFAULT_LENGTH", "TETRIS_LIKE_CUT"]

#: default synthetic length, 2^14 (the CPU "quick" preset's crop)
DEFAULT_LENGTH = 2 ** 14
#: tone frequencies of the Eqn 5 pair, as fractions of Nyquist
EQN5_BANDS: dict[str, tuple[float, ...]] = {
    "low": (0.004, 0.008, 0.012),
    "high": (0.55, 0.7, 0.85),
}
#: low cut (fraction of Nyquist) of a broadband target with psi close to tetris.wav's 0.5732
TETRIS_LIKE_CUT = 0.15
#: high cut of the default low-pass broadband target (psi ~ 0.025: well inside SIREN's band)
LOWPASS_CUT = 0.05


def _check_length(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"signal length must be an integer >= 2, got {n!r}")
    return int(n)


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction of Nyquist in [0, 1], got {value!r}")
    return value


def _peak_normalised(x: np.ndarray, name: str, meta: dict) -> Target:
    peak = np.abs(x).max()
    if peak == 0:
        raise ValueError(f"synthetic target {name!r} is all zeros; widen its band")
    return Target(torch.from_numpy((x / peak).astype(np.float32)[:, None]), (x.shape[0],),
                  name=name, kind="signal", meta=meta)


def tones(n: int, freqs: tuple[float, ...], amplitudes: tuple[float, ...] | None = None,
          phases: tuple[float, ...] | None = None, name: str = "tones") -> Target:
    """Sum of sinusoids ``sum_j A_j sin(pi f_j (N - 1) t / 1 + phi_j)`` sampled on ``t = linspace(-1, 1, N)``.

    Parameters
    ----------
    freqs
        Frequencies as fractions of Nyquist (1 = one cycle per two samples).
    """
    n = _check_length(n)
    freqs = tuple(_check_fraction("tone frequency", f) for f in freqs)
    if not freqs:
        raise ValueError("tones needs at least one frequency")
    amplitudes = (1.0,) * len(freqs) if amplitudes is None else tuple(amplitudes)
    phases = (0.0,) * len(freqs) if phases is None else tuple(phases)
    if len(amplitudes) != len(freqs) or len(phases) != len(freqs):
        raise ValueError("freqs, amplitudes and phases must have the same length")
    k = np.arange(n)
    x = sum(a * np.sin(math.pi * f * k + p) for f, a, p in zip(freqs, amplitudes, phases))
    meta = {"synthetic": "tones", "freqs_nyquist": list(freqs)}
    return _peak_normalised(np.asarray(x, dtype=np.float64), name, meta)


def eqn5(n: int = 2 ** 12, band: str = "high") -> Target:
    """The low/high-frequency toy targets of the paper's Fig 4 (Eqn 5); see the module docstring."""
    if band not in EQN5_BANDS:
        raise ValueError(f"unknown Eqn 5 band {band!r}; choose 'low' or 'high'")
    return tones(n, EQN5_BANDS[band], name=f"eqn5-{band}")


def broadband(n: int = DEFAULT_LENGTH, low_cut: float = TETRIS_LIKE_CUT, high_cut: float = 1.0,
              seed: int = 0) -> Target:
    """Flat-magnitude spectrum with random phases on ``[low_cut, high_cut] x Nyquist``.

    The magnitude-weighted centroid (Eqn 10) is close to ``(low_cut + high_cut) / 2``.
    """
    n = _check_length(n)
    low_cut = _check_fraction("low_cut", low_cut)
    high_cut = _check_fraction("high_cut", high_cut)
    if high_cut <= low_cut:
        raise ValueError(f"high_cut ({high_cut}) must exceed low_cut ({low_cut})")
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n) * 2.0  # fraction of Nyquist
    band = (freqs >= low_cut) & (freqs <= high_cut) & (freqs > 0)
    spectrum = np.zeros(freqs.shape, dtype=np.complex128)
    spectrum[band] = np.exp(2j * math.pi * rng.random(int(band.sum())))
    x = np.fft.irfft(spectrum, n=n)
    meta = {"synthetic": "broadband", "low_cut": low_cut, "high_cut": high_cut, "seed": int(seed)}
    return _peak_normalised(x, f"broadband-{low_cut:g}", meta)


def fig1_series(n: int = DEFAULT_LENGTH, count: int = 8, max_cut: float = 0.7, seed: int = 0) -> list[Target]:
    """Broadband signals S1..S{count} with low cuts ``linspace(0, max_cut, count)`` (Fig 1)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    cuts = np.linspace(0.0, _check_fraction("max_cut", max_cut), count)
    series = []
    for j, cut in enumerate(cuts, start=1):
        target = broadband(n, float(cut), 1.0, seed=seed + j)
        target.name = f"S{j}"
        series.append(target)
    return series


def parse_synthetic(spec: str, n: int | None = None, seed: int = 0) -> Target:
    """Targets named ``synthetic:<kind>[:<arg>]``.

    ``synthetic:low`` / ``synthetic:high`` -- Eqn 5 pair (default N = 2^12);
    ``synthetic:broadband[:low_cut]`` -- broadband (default cut 0.15, psi ~ tetris);
    ``synthetic:lowpass[:high_cut]`` -- broadband on ``[0, high_cut] x Nyquist``
    (default 0.05: a low-frequency target);
    ``synthetic:S<j>`` -- the j-th Fig 1 signal.  Other lengths via ``n``.
    """
    parts = spec.split(":")
    kind = parts[1] if len(parts) > 1 else ""
    arg = parts[2] if len(parts) > 2 else None
    if len(parts) > 3:
        raise ValueError(f"cannot parse synthetic target {spec!r}")
    if kind in EQN5_BANDS and arg is None:
        return eqn5(n or 2 ** 12, kind)
    if kind == "broadband":
        cut = TETRIS_LIKE_CUT if arg is None else _parse_float(arg, spec)
        return broadband(n or DEFAULT_LENGTH, cut, seed=seed)
    if kind == "lowpass":
        cut = LOWPASS_CUT if arg is None else _parse_float(arg, spec)
        target = broadband(n or DEFAULT_LENGTH, 0.0, cut, seed=seed)
        target.name = f"lowpass-{cut:g}"
        return target
    if kind.startswith("S") and kind[1:].isdigit() and arg is None:
        j = int(kind[1:])
        if not 1 <= j <= 8:
            raise ValueError(f"Fig 1 signals are S1..S8, got {kind!r}")
        return fig1_series(n or DEFAULT_LENGTH, seed=seed)[j - 1]
    raise ValueError(f"unknown synthetic target {spec!r}; use synthetic:low, synthetic:high, "
                     "synthetic:broadband[:low_cut], synthetic:lowpass[:high_cut] or synthetic:S1..S8")


def _parse_float(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"cannot read a number from {text!r} in {spec!r}") from None
