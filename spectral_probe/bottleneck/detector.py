"""The detector of the spectral-bottleneck watch: thresholds, verdicts, the state machine.

Rules and how their thresholds were chosen: module docstring of :mod:`spectral_probe.bottleneck`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

__all__ = ["FITTING", "AT_RISK", "BOTTLENECK", "UNDECIDED", "STATE_CODES", "MAX_CHANGES", "Thresholds", "Verdict",
           "BottleneckDetector", "detect"]

#: the four states; "undecided" when no decision is possible
FITTING, AT_RISK, BOTTLENECK, UNDECIDED = "fitting", "at risk", "bottleneck", "undecided"
#: integer codes stored in the run file's ``state`` variable
STATE_CODES = {UNDECIDED: -1, FITTING: 0, AT_RISK: 1, BOTTLENECK: 2}
#: changes of state a run may go through before its verdict says it is uncertain
MAX_CHANGES = 2


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
    edge_growth
        Relative growth of the network's band edge per 100 epochs above which a run at the floor
        still widens its band (``at risk``, never ``bottleneck``); ``inf`` switches the test off.
    gain_growth
        Rise of the PSNR gain's positive part [dB] per 100 epochs over the same window above which a
        run at the floor still fits part of the target (``at risk``); ``inf`` switches the test off.
    trend_window
        Epochs after the warm-up over which both trends are measured; a check is stuck only once
        the window is covered (0: no window, no trend tests).
    """

    gain_db: float = 1.0
    band_level: float = 1.0 - 1e-3
    patience: int = 3
    warmup: int = 20
    edge_growth: float = 0.1
    gain_growth: float = 0.0003
    trend_window: int = 40

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain_db) and self.gain_db > 0):
            raise ValueError(f"gain_db must be a positive number of dB, got {self.gain_db!r}")
        if not 0.0 < self.band_level < 1.0:
            raise ValueError(f"band_level must lie in (0, 1), got {self.band_level!r}")
        for name in ("patience", "warmup", "trend_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "patience" else 0):
                raise ValueError(f"{name} must be an integer >= {1 if name == 'patience' else 0}, got {value!r}")
        for name in ("edge_growth", "gain_growth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0 (inf: no test), got {value!r}")

    @property
    def explained_max(self) -> float:
        """``1 - 10^(-gain_db/10)``: energy share of an optimal fit on the floor line (0.206 at 1 dB)."""
        return 1.0 - 10.0 ** (-self.gain_db / 10.0)

    def to_dict(self) -> dict:
        out = {**asdict(self), "explained_max": self.explained_max}
        for name in ("edge_growth", "gain_growth"):            # JSON has no inf
            out[name] = str(out[name]) if math.isinf(out[name]) else out[name]
        return out

    @classmethod
    def from_dict(cls, stored: Mapping) -> "Thresholds":
        """Inverse of :meth:`to_dict`; files written before a setting existed get its value then (none)."""
        stored = {k: v for k, v in stored.items() if k in cls.__dataclass_fields__}
        for name in ("edge_growth", "gain_growth"):
            if isinstance(stored.get(name), str):
                stored[name] = float(stored[name])
            stored.setdefault(name, math.inf)                   # older files: no trend tests
        stored.setdefault("trend_window", 0)
        return cls(**stored)


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
    story
        Every change of state so far, ``((epoch, state), ...)``, the current state last.
    """

    state: str
    step: int = -1
    onset: int | None = None
    reason: str = ""
    suggestion: str = ""
    first_onset: int | None = None
    story: tuple[tuple[int, str], ...] = ()

    @property
    def code(self) -> int:
        return STATE_CODES[self.state]

    @property
    def flagged(self) -> bool:
        """True when the run was ever in the bottleneck."""
        return self.first_onset is not None

    @property
    def changes(self) -> int:
        """How often the state changed (the first state counts as none)."""
        return max(len(self.story) - 1, 0)

    @property
    def uncertain(self) -> bool:
        """More than :data:`MAX_CHANGES` changes of state: the verdict is not to be acted on alone."""
        return self.changes > MAX_CHANGES

    def story_text(self) -> str:
        """``"at risk at epoch 0, bottleneck at 70, at risk at 440, fitting at 470"`` ("" without a change)."""
        if self.changes == 0:
            return ""
        parts = [f"{state} at {'epoch ' if i == 0 else ''}{epoch}" for i, (epoch, state) in enumerate(self.story)]
        return ", ".join(parts)

    def line(self) -> str:
        """``"bottleneck since epoch 30 (checked at 50): <reason>; story: ...; suggestion: ..."``."""
        where = f"epoch {self.step}" if self.step >= 0 else "no check yet"
        since = f" since epoch {self.onset}" if self.onset is not None and self.state in (AT_RISK, BOTTLENECK) else ""
        doubt = f", uncertain: the verdict changed {self.changes} times" if self.uncertain else ""
        text = f"{self.state}{since} ({where}{doubt}): {self.reason}"
        story = self.story_text()
        if story:
            text += f"; story: {story}"
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
        self.story: list[tuple[int, str]] = []
        self.trail: list[tuple[int, float, float]] = []      # (step, band edge, gain) after the warm-up
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
        growth, rise = self._trends(step, values)
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
        settled = growth is not None and growth <= t.edge_growth and rise <= t.gain_growth
        stuck = collapsed and uncovered and late and not climbing and settled
        if stuck and self.streak == 0:
            self.streak_start = step
        self.streak = self.streak + 1 if stuck else 0
        if self.streak >= t.patience:
            if self.first_onset is None:
                self.first_onset = self.streak_start
            return self._set(BOTTLENECK, step, "output collapsed at the zero-output floor, target band out of "
                             f"reach{self._edge_text(growth, rise)}: {evidence}")
        if uncovered and collapsed and growth is not None and growth > t.edge_growth:
            return self._set(AT_RISK, step, f"at the zero-output floor but the network's band widens "
                             f"(edge {100 * growth:+.0f} % per 100 epochs; over {100 * t.edge_growth:.3g} % it "
                             f"may still reach the target's band): {evidence}")
        if uncovered and collapsed and growth is not None and rise > t.gain_growth:
            return self._set(AT_RISK, step, f"at the zero-output floor but the gain still rises "
                             f"({rise:+.2g} dB per 100 epochs, over {t.gain_growth:g}: the run fits part of the "
                             f"target and may escape): {evidence}")
        if uncovered:
            trend = (f" but the gain climbs ({projected:.2f} dB projected by epoch {self._end(step)})"
                     if climbing else "")
            return self._set(AT_RISK, step, f"the network's spectrum misses the target's band{trend}: {evidence}")
        if self.floor_streak >= t.patience:
            return self._set(AT_RISK, step, f"stalled under the {t.gain_db:g} dB line for {self.floor_streak} "
                             f"checks although the spectrum covers the target's band (no spectral mismatch; "
                             f"check the learning rate): {evidence}")
        return self._set(FITTING, step, f"no gain yet but the spectrum covers the target's band: {evidence}")

    def _trends(self, step: int, v: Mapping[str, float]) -> tuple[float | None, float]:
        """``(edge growth, gain rise)`` per 100 epochs over the last ``trend_window`` epochs after the
        warm-up: the band edge's relative growth (hidden, else output; 0 without an edge) and the rise of
        the gain's positive part [dB]; ``(None, nan)`` until the window is covered."""
        t = self.thresholds
        if t.trend_window == 0 or (math.isinf(t.edge_growth) and math.isinf(t.gain_growth)):
            return 0.0, 0.0
        if step < t.warmup:
            return None, math.nan
        edge = float(v.get("band_edge_hidden", math.nan))
        if not math.isfinite(edge):
            edge = float(v.get("band_edge_output", math.nan))
        self.trail = [r for r in self.trail if r[0] >= step - 2 * t.trend_window] + [(step, edge, float(v["psnr_gain"]))]
        past = [r for r in self.trail if r[0] <= step - t.trend_window]
        if not past:
            return None, math.nan
        s0, e0, g0 = past[-1]
        per = 100.0 / (step - s0)
        growth = (edge / e0 - 1.0) * per if math.isfinite(edge) and math.isfinite(e0) and e0 > 0 else 0.0
        # the positive part, as in the climb test: a gain rising from below 0 is initial noise fading
        return growth, (max(float(v["psnr_gain"]), 0.0) - max(g0, 0.0)) * per

    def _edge_text(self, growth: float | None, rise: float) -> str:
        t = self.thresholds
        if growth is None or t.trend_window == 0:
            return ""
        parts = ([f"the network's band no longer widens (edge {100 * growth:+.1f} %)"]
                 if math.isfinite(t.edge_growth) else [])
        parts += [f"the gain no longer rises ({rise:+.1g} dB)"] if math.isfinite(t.gain_growth) else []
        return f" and {' and '.join(parts)} per 100 epochs over {t.trend_window} epochs" if parts else ""

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
        if not self.story or self.story[-1][1] != state:
            self.story.append((int(step), state))
        self.verdict = Verdict(state, step, onset, reason,
                               self.suggestion if state in (AT_RISK, BOTTLENECK) else "", self.first_onset,
                               tuple(self.story))
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
        trends = t.trend_window > 0 and not (math.isinf(t.edge_growth) and math.isinf(t.gain_growth))
        first = t.warmup + (t.trend_window if trends else 0)
        late = sum(s >= first for s in steps)
        if late < t.patience:
            why = f"warm-up {t.warmup} + trend window {t.trend_window}" if trends else "the warm-up"
            return replace(verdict, state=UNDECIDED, reason=(
                f"cannot decide: {len(steps)} check(s) up to epoch {steps[-1]}, {late} at or after epoch {first} "
                f"({why}); a bottleneck needs {t.patience} consecutive; latest: {verdict.state}: {verdict.reason}"))
    return verdict
