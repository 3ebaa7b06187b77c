"""Spectral-bottleneck watch: indicators per check, a detector, and a training callback.

The spectral bottleneck (arXiv 2509.09719; "Making SIREN a WINNER", arXiv 2509.12980): when the
network's frequency support misses the target's spectrum, the fit "yields to a near-zero output"
and the PSNR stays at the zero-output floor.  :class:`BottleneckWatch` checks a run every
``every`` epochs (one extra forward, one host copy) and tells which of three states it is in.

Indicators (pure functions in :mod:`spectral_probe.bottleneck_indicators`; one row per check)
----------------------------------------------------------------------------------------------
``psnr_gain``        ``PSNR(f) - PSNR(0) = -10 log10(|f - y|^2 / |y|^2)`` [dB] (any peak).
``energy_ratio``     ``|f|^2 / |y|^2`` (output-to-target energy).
``coverage_hidden``  share of the target's power below the *band edge* of the last hidden
                     pre-activations (the frequency under which all but ``1e-3`` of the layer's
                     power lies; DC left out).  ``coverage_output``: the same for the output.
``distance_hidden``  Wasserstein-1 distance between the normalised cumulative spectra of the
                     layer and of the target, in fractions of Nyquist (tones at f1, f2: |f1 - f2|);
                     ``distance_output`` for the output.  ``band_edge_hidden`` [Nyquist fraction].
``ntk_band_share``   with NTK snapshots: share of ``S(k)`` (Eqn 6) in the target's dominant band
                     (central 80 % of its power) and ``ntk_band_share_trend`` (change / 100 epochs).
``state``, ``onset`` detector state (-1 undecided, 0 fitting, 1 at risk, 2 bottleneck), onset epoch.

How the thresholds were chosen
------------------------------
All cuts come from one line, a PSNR gain of 1 dB over the zero-output floor (the line the
quick-preset claims and ``spectral-probe demo`` use); none was fitted to a signal.

* *floor*: ``psnr_gain < 1 dB``.
* *collapsed*: ``energy_ratio < 1 - 10^(-1/10) = 0.206``.  A least-squares-optimal output
  (``f`` orthogonal to ``y - f``) has ``|f|^2/|y|^2 = 1 - 10^(-gain/10)``, so under the 1 dB line
  an optimal fit carries < 20.6 % of the target's energy; an output under the floor with *more*
  energy is noise (e.g. at initialisation), not a collapse.
* *uncovered*: ``coverage_hidden < 0.206``.  A network that fitted exactly the target's power
  inside its band would gain ``-10 log10(1 - coverage)``; with < 20.6 % covered even that perfect
  in-band fit stays under the 1 dB line.  The band edge level ``1 - 1e-3`` (-30 dB of the layer's
  power left above it) is a definition, not a fit (0.99 gives the same verdicts; benchmarks/README.md).
* *not climbing*: the positive part of the gain, extrapolated at its rate since the previous
  check to the end of the run (``horizon`` epochs; twice the epochs so far when unknown), stays
  under the 1 dB line.  A partial overlap that training widens (SIREN on broadband low-pass
  targets reaching 0.3-0.5 x Nyquist) climbs off the floor slowly: at risk, not a bottleneck.
* *bottleneck*: floor, collapsed, uncovered and not climbing on ``patience = 3`` consecutive
  checks, all at or after ``warmup = 20`` epochs (one StepLR period: the output of every bundled
  model starts below the collapse line, so the first epochs carry no evidence).  ``onset`` = first
  check of the streak.
* *at risk*: under the floor and uncovered without a complete streak; or under the floor on
  ``patience`` checks after the warm-up although the spectrum covers the target (a stall that is
  not a spectral mismatch: never flagged as a bottleneck).
* *fitting*: gain >= 1 dB, or under it with spectra that cover the target (no sign of a bottleneck).

Hysteresis: a run in the bottleneck stays there (its onset kept) while its gain does not climb,
even if its spectrum widens meanwhile; a climbing gain makes it ``at risk`` ("escaping"), the
1 dB line makes it ``fitting``; ``first_onset`` remembers the first flag.
The detector says ``undecided`` (and why) for a constant or all-zero target, a run without a
target, non-finite outputs, or (in :func:`detect`, summarising a run) too few checks to conclude.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from . import bottleneck_indicators as ind
from .training import Callback, TrainState

__all__ = ["FITTING", "AT_RISK", "BOTTLENECK", "UNDECIDED", "STATE_CODES", "Thresholds", "Verdict",
           "BottleneckWarning", "BottleneckDetector", "detect", "BottleneckWatch", "winner_suggestion",
           "diagnose_run", "watch_line", "INDICATORS"]

log = logging.getLogger(__name__)

FITTING, AT_RISK, BOTTLENECK, UNDECIDED = "fitting", "at risk", "bottleneck", "undecided"
#: integer codes stored in the run file's ``state`` variable
STATE_CODES = {UNDECIDED: -1, FITTING: 0, AT_RISK: 1, BOTTLENECK: 2}
_STATE_NAMES = {v: k for k, v in STATE_CODES.items()}
#: per-check indicators, in the order of the packed device vector
INDICATORS = ("psnr_gain", "energy_ratio", "coverage_hidden", "coverage_output", "distance_hidden",
              "distance_output", "band_edge_hidden", "band_edge_output")
_NTK_INDICATORS = ("ntk_band_share", "ntk_band_share_trend")


class BottleneckWarning(UserWarning):
    """Issued when a run enters the spectral bottleneck."""


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
            self.streak = 0
            return self._set(AT_RISK, step, f"escaping the bottleneck flagged at epoch {self.first_onset}: the "
                             f"gain climbs ({projected:.2f} dB projected by epoch {self._end(step)}): {evidence}")
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

    def _set(self, state: str, step: int, reason: str) -> Verdict:
        if state in (AT_RISK, BOTTLENECK):
            self.risk_start = step if self.risk_start is None else self.risk_start
        else:
            self.risk_start = None
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


# --------------------------------------------------------------------------- suggestion
def winner_suggestion(target, model_config: Mapping | None = None) -> str:
    """WINNER scales (Eqn 11) from the target's psi, with ``s0`` scaled by ``N / 150000`` for 1-D crops."""
    from .presets import PAPER_AUDIO_SAMPLES

    psi = target.psi()
    s0, s1 = target.winner_scales()
    scale = target.n / PAPER_AUDIO_SAMPLES if target.spatial_dims == 1 else 1.0
    text = (f"train siren2 (WINNER) with s0={s0 * scale:.4g}, s1={s1:.4g} (Eqn 11 from psi={psi:.4f}"
            + (f", s0 x N/{PAPER_AUDIO_SAMPLES}" if scale != 1.0 else "") + ")")
    current = dict(model_config or {})
    if "s0" in current:
        text += f"; this run uses s0={float(current['s0']):.4g}, s1={float(current.get('s1', 0)):.4g}"
    return text


# --------------------------------------------------------------------------- callback
class BottleneckWatch(Callback):
    """Training callback: indicators every ``every`` epochs, detector states, warnings, early stop.

    Parameters
    ----------
    every
        Check epochs ``0, every, 2 every, ...`` (step ``e`` sees the parameters after ``e`` updates,
        the ones epoch ``e``'s loss is computed with).
    early_stop
        Stop the fit (``state.request_stop``) once the run is in the bottleneck.
    writer, group
        A :class:`~spectral_probe.store.TrajectoryWriter`; rows go to ``group``.
    thresholds
        :class:`Thresholds`.
    hidden
        Hook point of the "last hidden pre-activation"; ``"auto"`` = the last ``pre`` before the output.
    ntk
        An :class:`~spectral_probe.ntk.NTKSnapshot` of the same fit; its latest ``S(k)`` feeds
        ``ntk_band_share`` and its trend.
    warn
        Issue a :class:`BottleneckWarning` when the run enters the bottleneck.
    on_change
        Called with the :class:`Verdict` whenever the state changes (the CLI prints it).
    """

    def __init__(self, every: int = 10, *, early_stop: bool = False, writer=None, group: str = "bottleneck",
                 thresholds: Thresholds | None = None, hidden: str = "auto", ntk=None, warn: bool = True,
                 on_change: Callable[[Verdict], None] | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every, self.early_stop, self.writer, self.group = every, bool(early_stop), writer, group
        self.thresholds = thresholds or Thresholds()
        self.hidden, self.ntk, self.warn, self.on_change = hidden, ntk, bool(warn), on_change
        self.detector = BottleneckDetector(self.thresholds)
        self.rows: list[dict] = []
        self.reference: ind.TargetReference | None = None
        self._point = None
        self._prepared = False

    @property
    def verdict(self) -> Verdict:
        return self.detector.verdict

    # ------------------------------------------------------------------ set-up
    def on_fit_start(self, state: TrainState) -> None:
        self.prepare(state.model, state.target, state.values, state.config.epochs)
        if self.writer is not None:
            self.writer.declare(self.group, variables=self._variables(), attrs=self._attrs(state))

    def prepare(self, model, target, values: torch.Tensor | None = None, epochs: int | None = None) -> None:
        """Resolve the hidden hook point and the target's reference spectrum (call before :meth:`check`).

        ``epochs``: length of the run (the horizon of the gain's trend); :func:`fit` passes its own.
        """
        self._point = ind.hidden_point(model, self.hidden)
        self.reference, why = ind.target_reference(target, values)
        suggestion = winner_suggestion(target, getattr(model, "config", None)) if why is None else ""
        band = self.reference.band if why is None else None
        self.detector = BottleneckDetector(self.thresholds, why, suggestion, band, epochs)
        self.rows, self._prepared = [], True

    def _variables(self) -> dict:
        from .store import Var

        names = (*INDICATORS, *_NTK_INDICATORS)
        variables = {n: Var((), "f8") for n in names}
        variables["state"] = Var((), "i1", attrs={"codes": STATE_CODES})
        variables["onset"] = Var((), "i8", attrs={"long_name": "onset epoch of the current bottleneck, -1 none"})
        return variables

    def _attrs(self, state: TrainState) -> dict:
        return {"every": self.every, "thresholds": self.thresholds.to_dict(), "hidden": self._point or "none",
                "epochs": state.config.epochs,
                "undecidable": self.detector.undecidable or "", "suggestion": self.detector.suggestion,
                "target_band": list(self.detector.band or ()),
                "target": getattr(state.target, "name", "none"),
                "step": "epochs completed (parameters after `step` updates)",
                "definitions": "see spectral_probe.bottleneck module docstring"}

    # ------------------------------------------------------------------ checks
    def on_epoch_start(self, state: TrainState) -> None:
        step = state.epoch + 1
        if step % self.every == 0:
            self.check(step, state.model, state.coords, state)

    @torch.no_grad()
    def check(self, step: int, model, coords: torch.Tensor, state: TrainState | None = None) -> Verdict:
        """One forward, indicators on the device, one host copy, detector update, row, warnings."""
        if not self._prepared:
            raise ValueError("BottleneckWatch.check() needs prepare(model, target) first (fit() calls it)")
        if self.reference is None:                                  # no target: nothing to measure against
            values = {k: math.nan for k in INDICATORS}
        else:
            output, hidden = ind.forward_with_hidden(model, coords, self._point)
            packed = ind.indicator_vector(output, hidden, self.reference, self.thresholds.band_level)
            values = dict(zip(INDICATORS, packed.double().cpu().numpy().tolist()))     # the one host sync
        values.update(self._ntk_values(step))
        previous = self.verdict.state
        verdict = self.detector.update(step, values)
        self.rows.append({"step": int(step), **values, "state": verdict.code,
                          "onset": -1 if verdict.onset is None or verdict.state != BOTTLENECK else verdict.onset})
        if self.writer is not None:
            self.writer.append(self.group, int(step), **{k: v for k, v in self.rows[-1].items() if k != "step"})
        if verdict.state != previous:
            self._announce(verdict, state)
        return verdict

    def _ntk_values(self, step: int) -> dict[str, float]:
        if self.ntk is None or not getattr(self.ntk, "spectra", None) or self.detector.band is None:
            return {k: math.nan for k in _NTK_INDICATORS}
        pairs = [(e, s) for e, s in zip(self.ntk.epochs, self.ntk.spectra) if e <= step]
        if not pairs:
            return {k: math.nan for k in _NTK_INDICATORS}
        shares = [ind.ntk_band_share(s, self.ntk.n, self.detector.band, self.ntk.stride) for _, s in pairs[-2:]]
        trend = math.nan
        if len(pairs) > 1 and pairs[-1][0] > pairs[-2][0]:
            trend = 100.0 * (shares[-1] - shares[-2]) / (pairs[-1][0] - pairs[-2][0])
        return {"ntk_band_share": shares[-1], "ntk_band_share_trend": trend}

    def _announce(self, verdict: Verdict, state: TrainState | None) -> None:
        log.info("bottleneck watch: %s", verdict.line())
        if self.on_change is not None:
            self.on_change(verdict)
        if verdict.state != BOTTLENECK:
            return
        if self.warn:
            warnings.warn(f"spectral bottleneck: {verdict.line()}", BottleneckWarning, stacklevel=2)
        if self.early_stop and state is not None:
            state.request_stop(f"spectral bottleneck since epoch {verdict.onset}: {verdict.reason}")

    # ------------------------------------------------------------------ output
    def history(self) -> dict[str, np.ndarray]:
        """Every check so far: ``step`` and each indicator, shape (checks,)."""
        keys = ("step", *INDICATORS, *_NTK_INDICATORS, "state", "onset")
        return {k: np.asarray([r[k] for r in self.rows]) for k in keys}

    def summary(self) -> Verdict:
        """:func:`detect` over the recorded checks (``undecided`` when there are too few)."""
        h = self.history()
        return detect(h["step"], {k: h[k] for k in (*INDICATORS, *_NTK_INDICATORS)},
                      thresholds=self.thresholds, undecidable=self.detector.undecidable,
                      suggestion=self.detector.suggestion, band=self.detector.band, horizon=self.detector.horizon)


# --------------------------------------------------------------------------- run files
def _from_group(ds) -> Verdict:
    import json

    attrs = dict(ds.attrs)
    raw = attrs.get("thresholds", "{}")
    stored = json.loads(raw) if isinstance(raw, str) else dict(raw)
    stored.pop("explained_max", None)
    thresholds = Thresholds(**stored)
    band = attrs.get("target_band", "[]")
    band = json.loads(band) if isinstance(band, str) else [float(b) for b in np.atleast_1d(band)]
    indicators = {k: ds[k].values for k in (*INDICATORS, *_NTK_INDICATORS) if k in ds}
    return detect(ds["step"].values, indicators, thresholds=thresholds,
                  undecidable=str(attrs.get("undecidable", "")) or None,
                  suggestion=str(attrs.get("suggestion", "")), band=band or None,
                  horizon=int(attrs["epochs"]) if "epochs" in attrs else None)


def diagnose_run(path) -> Verdict:
    """The detector's verdict for a run file (live or finished) with a ``bottleneck`` group.

    Returns ``undecided`` with the reason when the file has no such group
    (trained without ``--watch``) or no target.
    """
    from .store import open_run
    from .store.reader import _open_read, list_groups

    with _open_read(path) as h5:
        groups = list_groups(h5)
    if "bottleneck" not in groups:
        has_target = "prediction" in groups or "scalars" in groups
        why = ("the run has no target (no 'prediction' or 'scalars' group)" if not has_target else
               "the run file has no 'bottleneck' group; train with --watch (BottleneckWatch)")
        return Verdict(UNDECIDED, reason=f"cannot decide: {why}")
    return _from_group(open_run(path, "bottleneck"))


def watch_line(ds) -> str | None:
    """One line for ``spectral-probe watch``: the detector's verdict over a ``bottleneck`` group."""
    if ds.sizes.get("step", 0) == 0:
        return None
    return "bottleneck watch: " + _from_group(ds).line()
