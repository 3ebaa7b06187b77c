"""The detector of the spectral-bottleneck watch: thresholds, verdicts, the state machine.

Rules and how their thresholds were chosen: module docstring of :mod:`spectral_probe.bottleneck`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

__all__ = ["FITTING", "AT_RISK", "BOTTLENECK", "UNDECIDED", "STATE_CODES", "Thresholds", "Verdict",
           "BottleneckDetector", "detect"]

#: the four states; "undecided" when no decision is possible
FITTING, AT_RISK, BOTTLENECK, UNDECIDED = "fitting", "at risk", "bottleneck", "undecided"
#: integer codes stored in the run file's ``state`` variable
STATE_CODES = {UNDECIDED: -1, FITTING: 0, AT_RISK: 1, BOTTLENECK: 2}


@dataclass(frozen=True)
class Thresholds:
    """Detector settings; the cuts derive from ``gain_db`` (see the module docstring).

    Attributes
    ----------
    gain_db
        The floor line: PSNR gain over the zero-output PSNR [dB].
    band_level
        Share of a layer's power below its band edge.
    patience
        Consecutive stuck checks that make a bottleneck.
    warmup
        First epoch at which a streak may start.
    """

    gain_db: float = 1.0
    band_level: float = 1.0 - 1e-3
    patience: int = 3
    warmup: int = 20

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain_db) and self.gain_db > 0):
            raise ValueError(f"gain_db must be a positive number of dB, got {self.gain_db!r}")
        if not 0.0 < self.band_level < 1.0:
            raise ValueError(f"band_level must lie in (0, 1), got {self.band_level!r}")
        for name in ("patience", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "patience" else 0):
                raise ValueError(f"{name} must be an integer >= {1 if name == 'patience' else 0}, got {value!r}")

    @property
    def explained_max(self) -> float:
        """``1 - 10^(-gain_db/10)``: energy share of an optimal fit on the floor line (0.206 at 1 dB)."""
        return 1.0 - 10.0 ** (-self.gain_db / 10.0)

    def to_dict(self) -> dict:
        return {**asdict(self), "explained_max": self.explained_max}


@dataclass(frozen=True)
class Verdict:
    """The detector's state after a check.

    Attributes
    ----------
    state
        ``"fitting"``, ``"at risk"``, ``"bottleneck"`` or ``"undecided"``.
    step
        Epoch of the latest check (-1: none yet).
    onset
        First epoch of the current bottleneck streak (or of the risk); None otherwise.
    reason
        One line of evidence.
    suggestion
        What to try (WINNER scales from the target's psi) when at risk or in the bottleneck.
    first_onset
        Onset of the first bottleneck of the run (kept after a recovery); None if never flagged.
    """

    state: str
    step: int = -1
    onset: int | None = None
    reason: str = ""
    suggestion: str = ""
    first_onset: int | None = None

    @property
    def code(self) -> int:
        return STATE_CODES[self.state]

    @property
    def flagged(self) -> bool:
        """True when the run was ever in the bottleneck."""
        return self.first_onset is not None

    def line(self) -> str:
        """``"bottleneck since epoch 30 (checked at 50): <reason>"``."""
        where = f"epoch {self.step}" if self.step >= 0 else "no check yet"
        since = f" since epoch {self.onset}" if self.onset is not None and self.state in (AT_RISK, BOTTLENECK) else ""
        text = f"{self.state}{since} ({where}): {self.reason}"
        return text + (f"; suggestion: {self.suggestion}" if self.suggestion else "")


# --------------------------------------------------------------------------- detector
def _fmt_evidence(values: Mapping[str, float], band: Sequence[float] | None = None) -> str:
    parts = [f"gain {values['psnr_gain']:+.2f} dB, output energy {values['energy_ratio']:.2g} x target's"]
    cov = values.get("coverage_hidden", math.nan)
    if math.isfinite(cov):
        where = f" (target band {band[0]:.3g}-{band[1]:.3g})" if band else ""
        parts.append(f"hidden band edge {values.get('band_edge_hidden', math.nan):.3g} x Nyquist covers "
                     f"{100 * cov:.1f} % of the target's power{where}")
    share = values.get("ntk_band_share", math.nan)
    if math.isfinite(share):
        trend = values.get("ntk_band_share_trend", math.nan)
        parts.append(f"NTK S(k) share in the target band {share:.2g}"
                     + (f" ({trend:+.2g} per 100 epochs)" if math.isfinite(trend) else ""))
    return "; ".join(parts)


class BottleneckDetector:
    """State machine over per-check indicators (see the module docstring).

    Parameters
    ----------
    thresholds
        :class:`Thresholds` (defaults derive from the 1 dB line).
    undecidable
        A reason why no decision is possible (e.g. a constant target); every check says so.
    suggestion
        Text attached to ``at risk`` and ``bottleneck`` verdicts.
    band
        The target's dominant band ``(lo, hi)`` [Nyquist fraction], quoted in the reasons.
    horizon
        Epochs of the whole run (where the gain's trend is extrapolated to); None: unknown.
    """

    def __init__(self, thresholds: Thresholds | None = None, undecidable: str | None = None,
                 suggestion: str = "", band: Sequence[float] | None = None, horizon: int | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.horizon = None if horizon is None else int(horizon)
        self.previous: tuple[int, float] | None = None
        self.band = tuple(band) if band is not None and len(band) == 2 else None
        self.undecidable = undecidable
        self.suggestion = suggestion
        self.streak_start: int | None = None
        self.risk_start: int | None = None
        self.streak = self.floor_streak = self.checks = 0
        self.last_floor = False
        self.first_onset: int | None = None
        self.verdict = Verdict(UNDECIDED, reason="no check yet")

    def _stuck(self, v: Mapping[str, float]) -> tuple[bool, bool, bool]:
        t = self.thresholds
        floor = v["psnr_gain"] < t.gain_db
        collapsed = v["energy_ratio"] < t.explained_max
        cov = v.get("coverage_hidden", math.nan)
        if not math.isfinite(cov):
            cov = v.get("coverage_output", math.nan)
        uncovered = math.isfinite(cov) and cov < t.explained_max
        return floor, collapsed, uncovered

    def update(self, step: int, values: Mapping[str, float]) -> Verdict:
        """Feed one check (``values``: the :data:`INDICATORS`, NTK ones optional); returns the new verdict."""
        self.checks += 1
        t, step = self.thresholds, int(step)
        if self.undecidable:
            return self._set(UNDECIDED, step, f"cannot decide: {self.undecidable}")
        if not all(math.isfinite(float(values[k])) for k in ("psnr_gain", "energy_ratio")):
            self.streak = self.floor_streak = 0
            return self._set(UNDECIDED, step, "cannot decide: the output is NaN or infinite (diverged?)")
        floor, collapsed, uncovered = self._stuck(values)
        projected = self._projected(step, float(values["psnr_gain"]))
        evidence = _fmt_evidence(values, self.band)
        self.last_floor = floor
        if not floor:
            note = (f" (left the bottleneck flagged at epoch {self.first_onset})"
                    if self.first_onset is not None and self.verdict.state != FITTING else "")
            self.streak = self.floor_streak = 0
            return self._set(FITTING, step, evidence + note)
        late = step >= t.warmup
        self.floor_streak = self.floor_streak + 1 if late else 0
        climbing = projected >= t.gain_db
        if self.verdict.state == BOTTLENECK and not climbing:   # hysteresis: a widening band alone does not end it
            return self._set(BOTTLENECK, step, f"still at the zero-output floor: {evidence}")
        if self.first_onset is not None and climbing:
            self.streak = 0       # one onset in the line: the bottleneck's ("at risk since epoch <onset>")
            return self._set(AT_RISK, step, f"escaping the bottleneck: the gain climbs ({projected:.2f} dB "
                             f"projected by epoch {self._end(step)}): {evidence}", onset=self.first_onset)
        stuck = collapsed and uncovered and late and not climbing
        if stuck and self.streak == 0:
            self.streak_start = step
        self.streak = self.streak + 1 if stuck else 0
        if self.streak >= t.patience:
            if self.first_onset is None:
                self.first_onset = self.streak_start
            return self._set(BOTTLENECK, step, "output collapsed at the zero-output floor, target band out of "
                             f"reach: {evidence}")
        if uncovered:
            trend = (f" but the gain climbs ({projected:.2f} dB projected by epoch {self._end(step)})"
                     if climbing else "")
            return self._set(AT_RISK, step, f"the network's spectrum misses the target's band{trend}: {evidence}")
        if self.floor_streak >= t.patience:
            return self._set(AT_RISK, step, f"stalled under the {t.gain_db:g} dB line for {self.floor_streak} "
                             f"checks although the spectrum covers the target's band (no spectral mismatch; "
                             f"check the learning rate): {evidence}")
        return self._set(FITTING, step, f"no gain yet but the spectrum covers the target's band: {evidence}")

    def _end(self, step: int) -> int:
        return self.horizon if self.horizon is not None else 2 * max(step, self.thresholds.warmup)

    def _projected(self, step: int, gain: float) -> float:
        """Positive part of the gain extrapolated at its rate since the previous check to the run's end."""
        positive = max(gain, 0.0)
        rate = 0.0
        if self.previous is not None and step > self.previous[0]:
            rate = max(positive - self.previous[1], 0.0) / (step - self.previous[0])
        self.previous = (step, positive)
        return positive + rate * max(self._end(step) - step, 0)

    def _set(self, state: str, step: int, reason: str, onset: int | None = None) -> Verdict:
        if state in (AT_RISK, BOTTLENECK):
            self.risk_start = step if self.risk_start is None else self.risk_start
        else:
            self.risk_start = None
        if onset is None:
            onset = self.streak_start if state == BOTTLENECK else self.risk_start
        self.verdict = Verdict(state, step, onset, reason,
                               self.suggestion if state in (AT_RISK, BOTTLENECK) else "", self.first_onset)
        return self.verdict


def detect(steps: Sequence[int], indicators: Mapping[str, Sequence[float]], *,
           thresholds: Thresholds | None = None, undecidable: str | None = None,
           suggestion: str = "", band: Sequence[float] | None = None, horizon: int | None = None) -> Verdict:
    """Run the detector over a recorded sequence and summarise it (pure).

    Returns ``undecided`` (with the latest evidence) when the run is under the
    floor but has too few checks after the warm-up for a decision.

    Parameters
    ----------
    steps
        Check epochs, increasing, shape (T,).
    indicators
        ``name -> (T,)`` values of at least ``psnr_gain`` and ``energy_ratio``.
    horizon
        Epochs of the whole run; see :class:`BottleneckDetector`.

    Returns
    -------
    Verdict
    """
    steps = [int(s) for s in steps]
    missing = [k for k in ("psnr_gain", "energy_ratio") if k not in indicators]
    if missing:
        raise ValueError(f"detect() needs indicators {', '.join(missing)}; got {', '.join(indicators) or 'none'}")
    detector = BottleneckDetector(thresholds, undecidable, suggestion, band, horizon)
    if not steps:
        return Verdict(UNDECIDED, reason="cannot decide: no checks recorded"
                       + (f"; {undecidable}" if undecidable else ""))
    for i, step in enumerate(steps):
        detector.update(step, {k: float(v[i]) for k, v in indicators.items()})
    verdict, t = detector.verdict, detector.thresholds
    if detector.last_floor and verdict.state in (AT_RISK, FITTING):
        late = sum(s >= t.warmup for s in steps)
        if late < t.patience:
            return replace(verdict, state=UNDECIDED, reason=(
                f"cannot decide: {len(steps)} check(s) up to epoch {steps[-1]}, {late} at or after the "
                f"warm-up (epoch {t.warmup}); a bottleneck needs {t.patience} consecutive; latest: "
                f"{verdict.state}: {verdict.reason}"))
    return verdict
