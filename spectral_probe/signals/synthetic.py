"""Synthetic 1-D targets that need no data download.

* :func:`tones` -- sums of sinusoids; :func:`eqn5` gives the low- and
  high-frequency toy pair of the paper's Fig 4 (Eqn 5, Sec 2.2 of arXiv
  2509.09719): amplitudes ``A = [1, 2, 4] / 7`` and tones at
  ``[0.25, 0.50, 0.75] k~`` (low) or ``[0.85, 0.90, 0.95] k~`` (high), with the
  Nyquist frequency ``k~ = N / 2`` (cycles per record) and ``N = 2^16``.

  Read literally (``synthetic:eqn5-paper-low``), the *low* signal is not low for
  the network the paper fits it with (a SIREN whose first layer has frequency
  300: omega0 = 30, inputs scaled by 10; Sec 2.2) at the paper's N: its tones
  sit at 8192-24576 cycles per record and its spectral centroid psi = 0.607
  (Eqn 10) is above tetris.wav's 0.573, the paper's example of a
  high-frequency-dominated signal.  The network's first layer spans
  ``300 / pi = 95.5`` cycles per record; at N = 2^16, 99.9 % of its initial
  NTK-weighted spectrum S(k) lies below 0.06 x Nyquist (about 1970 cycles per
  record), and trained for 200 epochs it stays at the zero-output floor on the
  literal low signal (gain 0.00 dB) as on the high one, while it fits tones at
  24/48/72 cycles per record (46 dB).  At N = 2^12 the literal tones sit at
  512-1536 cycles per record, within the network's reach, and it fits them
  (84 dB in 300 epochs): whether the literal pair splits depends on N.  The
  default ``synthetic:low`` therefore keeps Eqn 5's amplitudes and fractions
  but applies the fractions to the first-layer band edge: tones at
  ``[0.25, 0.50, 0.75] x 300 / pi`` cycles per record (23.9, 47.7, 71.6,
  rounded to 24, 48, 72 so that they are periodic on the record), low at any
  N.  ``synthetic:high`` is Eqn 5's high signal as written
  (``synthetic:eqn5-paper-high`` is the same signal).  Measurements:
  ``benchmarks/bench_eqn5.py`` (benchmarks/README.md, "Eqn 5").
* :func:`broadband` -- flat-magnitude, random-phase spectra on a band
  ``[low_cut, high_cut] x Nyquist``: raising ``low_cut`` removes low-frequency
  content.
* :func:`fig1_series` -- the paper's Fig 1 signals S1-S8, broadband with decreasing
  low-frequency content (the paper shows their spectra but does not define them;
  ours are defined in :data:`FIG1_SIGNALS` from its words).

Broadband targets are peak-normalised to 1, like the audio files; the Eqn 5
signals keep the paper's amplitudes (their sum, 1, bounds the peak).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..validation import positive_int
from .target import Target

__all__ = ["EQN5_BANDS", "EQN5_AMPLITUDES", "EQN5_FRACTIONS", "EQN5_FIRST_LAYER_FREQUENCY", "EQN5_PAPER_N",
           "eqn5_frequencies", "tones", "eqn5", "broadband", "fig1_series", "fig1_signal", "FIG1_SIGNALS",
           "FIG1_LOW_BAND", "parse_synthetic",
           "DEFAULT_LENGTH", "TETRIS_LIKE_CUT"]

#: default synthetic length, 2^14 (the CPU "quick" preset's crop)
DEFAULT_LENGTH = 2 ** 14
#: Eqn 5 (Sec 2.2): "The amplitudes are normalized as A = [1/7, 2/7, 4/7]"
EQN5_AMPLITUDES: tuple[float, ...] = (1 / 7, 2 / 7, 4 / 7)
#: Eqn 5 (Sec 2.2): k^(L) = [0.25, 0.50, 0.75] k~, k^(H) = [0.85, 0.90, 0.95] k~
EQN5_FRACTIONS: dict[str, tuple[float, ...]] = {"low": (0.25, 0.50, 0.75), "high": (0.85, 0.90, 0.95)}
#: Sec 2.2: "a five-layer SIREN with 128 hidden units, omega0 = 30, and inputs scaled by 10, giving a
#: first-layer frequency of 300"
EQN5_FIRST_LAYER_FREQUENCY = 300.0
#: Sec 2.2: "N = 2^16 samples"
EQN5_PAPER_N = 2 ** 16
#: the Eqn 5 targets: name -> (band, reference); "nyquist": fractions of k~ = N/2 (the paper's text),
#: "first-layer": fractions of the Fig 4 SIREN's first-layer band edge 300/pi cycles per record (default low)
EQN5_BANDS: dict[str, tuple[str, str]] = {
    "low": ("low", "first-layer"),
    "high": ("high", "nyquist"),
    "eqn5-paper-low": ("low", "nyquist"),
    "eqn5-paper-high": ("high", "nyquist"),
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
          phases: tuple[float, ...] | None = None, name: str = "tones", normalise: bool = True) -> Target:
    """Sum of sinusoids ``sum_j A_j sin(pi f_j k + phi_j)`` over the sample index ``k = 0 .. N-1``.

    ``f_j`` is a fraction of Nyquist, so tone ``j`` makes ``f_j N / 2`` cycles over the
    record (Eqn 5's ``sin(2 pi k_i t)`` with ``t = k / N`` and ``k_i = f_j N / 2``).

    Parameters
    ----------
    freqs
        Frequencies as fractions of Nyquist (1 = one cycle per two samples).
    normalise
        Divide by the peak (True) or keep the amplitudes as given.
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
    x = np.asarray(sum(a * np.sin(math.pi * f * k + p) for f, a, p in zip(freqs, amplitudes, phases)),
                   dtype=np.float64)
    meta = {"synthetic": "tones", "freqs_nyquist": list(freqs), "amplitudes": list(amplitudes)}
    if normalise:
        return _peak_normalised(x, name, meta)
    if not np.any(x):
        raise ValueError(f"synthetic target {name!r} is all zeros (tones at 0 or Nyquist only)")
    return Target(torch.from_numpy(x.astype(np.float32)[:, None]), (n,), name=name, kind="signal", meta=meta)


def eqn5_frequencies(n: int, name: str = "high") -> tuple[float, ...]:
    """Tone frequencies (fractions of Nyquist) of the Eqn 5 target ``name`` at length ``n``.

    ``name`` is a key of :data:`EQN5_BANDS`: ``"low"`` / ``"high"`` (defaults) or
    ``"eqn5-paper-low"`` / ``"eqn5-paper-high"`` (the text read literally).
    """
    if name not in EQN5_BANDS:
        raise ValueError(f"unknown Eqn 5 band {name!r}; choose one of {', '.join(EQN5_BANDS)}")
    band, reference = EQN5_BANDS[name]
    fractions = EQN5_FRACTIONS[band]
    if reference == "nyquist":
        return fractions
    edge_cycles = EQN5_FIRST_LAYER_FREQUENCY / math.pi        # sin(300 w x + b), |w| <= 1, x in [-1, 1]
    cycles = [round(f * edge_cycles) for f in fractions]       # whole cycles: periodic on the record, no leakage
    freqs = tuple(c / (n / 2) for c in cycles)
    if max(freqs) >= 1.0:
        raise ValueError(f"N = {n} is too short for the low Eqn 5 tones at {cycles[-1]} cycles per record; "
                         f"use N > {2 * cycles[-1]}")
    return freqs


def eqn5(n: int = 2 ** 12, band: str = "high") -> Target:
    """An Eqn 5 target of the paper's Fig 4: amplitudes [1, 2, 4]/7 (see the module docstring).

    Parameters
    ----------
    band
        ``"low"``, ``"high"``, ``"eqn5-paper-low"`` or ``"eqn5-paper-high"``.
    """
    n = _check_length(n)
    return tones(n, eqn5_frequencies(n, band), EQN5_AMPLITUDES, name=f"eqn5-{band.removeprefix('eqn5-')}",
                 normalise=False)


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


#: Fig 1 signals S1-S8: (energy share of the low band, low cut of the broadband part as a fraction of Nyquist)
FIG1_SIGNALS: dict[str, tuple[float, float]] = {
    "S1": (0.999, 0.01), "S2": (0.99, 0.01), "S3": (0.9, 0.01), "S4": (0.0, 0.01),
    "S5": (0.0, 0.02), "S6": (0.0, 0.04), "S7": (0.0, 0.08), "S8": (0.0, 0.16)}
#: Fig 1's low band, [0, 0.01] x Nyquist: inside SIREN's first-layer band at the paper's settings
#: (first-layer omega0 3000, Sec 5.1, reaches 3000/pi = 955 cycles per record = 0.0127 x the Nyquist
#: frequency of 150,000 samples)
FIG1_LOW_BAND = 0.01


def fig1_signal(n: int, name: str, seed: int = 0) -> Target:
    """One Fig 1 signal (:data:`FIG1_SIGNALS`): broadband noise with a given share of low-frequency energy.

    Flat magnitude and random phases on ``[cut, 1] x Nyquist``, plus a band ``(0, 0.01] x Nyquist``
    (:data:`FIG1_LOW_BAND`) that carries ``share`` of the energy; peak-normalised.
    """
    if name not in FIG1_SIGNALS:
        raise ValueError(f"unknown Fig 1 signal {name!r}; choose one of {', '.join(FIG1_SIGNALS)}")
    n = _check_length(n)
    share, cut = FIG1_SIGNALS[name]
    freqs = np.fft.rfftfreq(n) * 2.0
    low = (freqs > 0) & (freqs <= FIG1_LOW_BAND)
    high = (freqs >= cut) & ~low & (freqs > 0)
    if not high.any() or (share > 0 and not low.any()):
        raise ValueError(f"{name} needs more samples than N = {n} (its bands hold no frequency bin)")
    index = int(name[1:])
    rng = np.random.default_rng(seed + index)
    phases = np.exp(2j * math.pi * rng.random(freqs.size))
    spectrum = np.zeros(freqs.shape, dtype=np.complex128)
    spectrum[high] = math.sqrt((1.0 - share) / high.sum()) * phases[high]
    if share:
        spectrum[low] = math.sqrt(share / low.sum()) * phases[low]
    meta = {"synthetic": "fig1", "low_share": share, "low_band": FIG1_LOW_BAND, "low_cut": cut, "seed": int(seed)}
    return _peak_normalised(np.fft.irfft(spectrum, n=n), name, meta)


def fig1_series(n: int = DEFAULT_LENGTH, count: int = 8, seed: int = 0,
                names: tuple[str, ...] | None = None) -> list[Target]:
    """The paper's Fig 1 signals S1..S{count} (or ``names``): broadband, with decreasing low-frequency content.

    The paper (arXiv 2509.09719, Fig 1 caption) fits "eight discretely sampled broadband 1D
    signals (S1-S8) with decreasing low-frequency content"; SIREN's PSNR "progressively decreases
    from S1 to S4", and Sec 2.1 says S4-S8 are "all lacking low-frequency components", while
    SIREN's "frequency support should in principle allow it to represent a portion of the
    spectrum" (Fig 1 caption).  It shows their spectra but does not define them.  Ours
    (:data:`FIG1_SIGNALS`): every signal is flat broadband noise from a low cut to Nyquist; S1-S3
    add a low band ``(0, 0.01] x Nyquist`` (within SIREN's first-layer band) carrying 99.9 %,
    99 % and 90 % of the energy; S4-S8 have none, and their cut rises 0.01, 0.02, 0.04, 0.08,
    0.16 x Nyquist.  Low-frequency content thus decreases from S1 to S8 (psi, Eqn 10, rises).
    """
    if names is None:
        count = positive_int(count, "count")
        if count > len(FIG1_SIGNALS):
            raise ValueError(f"the paper has {len(FIG1_SIGNALS)} Fig 1 signals, not {count}")
        names = tuple(FIG1_SIGNALS)[:count]
    return [fig1_signal(n, name, seed) for name in names]


def parse_synthetic(spec: str, n: int | None = None, seed: int = 0) -> Target:
    """Targets named ``synthetic:<kind>[:<arg>]``.

    ``synthetic:low`` / ``synthetic:high`` -- Eqn 5 pair (default N = 2^12; the low tones
    sit in the band of the paper's Fig 4 SIREN, see the module docstring);
    ``synthetic:eqn5-paper-low`` / ``synthetic:eqn5-paper-high`` -- Eqn 5 read literally;
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
        if kind not in FIG1_SIGNALS:
            raise ValueError(f"Fig 1 signals are S1..S8, got {kind!r}")
        return fig1_signal(n or DEFAULT_LENGTH, kind, seed=seed)
    raise ValueError(f"unknown synthetic target {spec!r}; use synthetic:low, synthetic:high, "
                     "synthetic:eqn5-paper-low, synthetic:eqn5-paper-high, "
                     "synthetic:broadband[:low_cut], synthetic:lowpass[:high_cut] or synthetic:S1..S8")


def _parse_float(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"cannot read a number from {text!r} in {spec!r}") from None
