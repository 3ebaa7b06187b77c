"""Spectral-bottleneck watch: indicators per check, a detector, and a training callback.

The spectral bottleneck (arXiv 2509.09719; "Making SIREN a WINNER", arXiv 2509.12980): when the
network's frequency support misses the target's spectrum, the fit "yields to a near-zero output"
and the PSNR stays at the zero-output floor.  :class:`BottleneckWatch` checks a run every
``every`` epochs (one extra forward, one host copy) and tells which of three states it is in.

Indicators (one row per check, group ``bottleneck`` of the run file)
--------------------------------------------------------------------
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
The level cuts come from one line, a PSNR gain of 1 dB over the zero-output floor (the line the
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
* *settled* (the two trend tests, measured over the last ``trend_window = 40`` epochs after the
  warm-up): the positive part of the gain rises by at most ``gain_growth = 0.0003 dB`` per 100 epochs
  and the network's band edge (hidden, else output) grows by at most ``edge_growth = 10 %`` per 100
  epochs.  A run at the floor that still fits anything is ``at risk``, never stopped: SIREN on
  ``synthetic:broadband:0.08`` gained +0.003 dB per 100 epochs at epochs 40-100, its output energy 5e-5
  of the target's, and crossed the 1 dB line at epoch 311 of 500; the frozen runs (tetris, the high
  tones, broadband above 0.15) gained at most +0.0001 dB per 100 epochs, their band edges grew at most
  6 % per 100 epochs (1-2 frequency bins).  Unlike the level cuts, these two were chosen on recorded
  runs (benchmarks/README.md, "Bottleneck watch: verdicts that can be acted on").
* *bottleneck*: floor, collapsed, uncovered, not climbing and settled on ``patience = 3`` consecutive
  checks, all at or after ``warmup = 20`` epochs (one StepLR period: SIREN-type outputs start
  small, 0.007-0.36 of the target's energy in the benchmark, so the first epochs cannot tell a
  collapse from a slow start) and after the trend window (first flag at epoch 80 with checks every
  10 epochs).  ``onset`` = first check of the streak.  ``--early-stop`` stops the run there.
* *at risk*: under the floor and uncovered without a complete streak (too early, or the band widens,
  or the gain rises); or under the floor on ``patience`` checks after the warm-up although the
  spectrum covers the target (a stall that is not a spectral mismatch: never flagged as a bottleneck).
* *fitting*: gain >= 1 dB, or under it with spectra that cover the target (no sign of a bottleneck).

Hysteresis: a run in the bottleneck stays there (its onset kept) while its gain does not climb,
even if its spectrum widens meanwhile; a climbing gain makes it ``at risk`` ("escaping"), the
1 dB line makes it ``fitting``; ``first_onset`` remembers the first flag.  Every verdict carries
the run's story (each change of state and its epoch), and one that changed more than twice says
it is uncertain.  The detector says ``undecided`` (and why) for a constant or all-zero target, a run
without a target, non-finite outputs, or (in :func:`detect`, summarising a run) too few checks to conclude.

Validation (benchmarks/README.md): with the trend tests, ``--early-stop`` stops none of the recorded
calibration runs that left the floor (quick preset, six real clips at three offsets, synthetic targets;
SIREN, SIREN^2 and FINER) and every frozen one at epoch 80; one stuck run that crept up by 0.07 dB in
500 epochs (SIREN on chopin.wav at offset 65536) is left ``at risk``.  Without the trend tests the
detector stopped 6 of the 41 tuning runs that crossed the 1 dB line later (chopin.wav: SIREN and FINER
flagged at epoch 70, over the line at 468 and 153).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Callable, Mapping

import numpy as np
import torch

from . import indicators as ind
from .detector import (AT_RISK, BOTTLENECK, FITTING, STATE_CODES, UNDECIDED, BottleneckDetector,
                                  Thresholds, Verdict, detect)
from ..cadence import check_every, completed_epochs, is_due
from ..training.loop import TrainState
from ..training.recording import RunRecorder

__all__ = ["FITTING", "AT_RISK", "BOTTLENECK", "UNDECIDED", "STATE_CODES", "Thresholds", "Verdict",
           "BottleneckWarning", "BottleneckDetector", "detect", "BottleneckWatch", "winner_suggestion",
           "diagnose_run", "watch_line", "detector_settings", "INDICATORS"]

log = logging.getLogger(__name__)

#: per-check indicators, in the order of the packed device vector
INDICATORS = ("psnr_gain", "energy_ratio", "coverage_hidden", "coverage_output", "distance_hidden",
              "distance_output", "band_edge_hidden", "band_edge_output")
_NTK_INDICATORS = ("ntk_band_share", "ntk_band_share_trend")


class BottleneckWarning(UserWarning):
    """Issued when a run enters the spectral bottleneck."""


# --------------------------------------------------------------------------- suggestion
def winner_suggestion(target, model_config: Mapping | None = None) -> str:
    """What to try when a run is at risk or in the bottleneck; never the run's own settings.

    WINNER scales (Eqn 11) from the target's psi, with ``s0`` scaled by ``N / 150000`` for 1-D crops.
    A SIREN^2 run that already uses them (to 0.1 %) is told what is left (the scales leave nothing to
    change); another model with a lower first-layer omega than the paper preset's (Sec 5.1, 30 x 100 x
    N / 150000 on 1-D targets) is also pointed to that omega.  Empty when nothing is left to suggest.
    """
    from ..training.presets import FIRST_OMEGA_SCALE, PAPER_AUDIO_SAMPLES

    psi = target.psi()
    s0, s1 = target.winner_scales()
    one_d = target.spatial_dims == 1
    scale = target.n / PAPER_AUDIO_SAMPLES if one_d else 1.0
    s0 *= scale
    source = f"Eqn 11 from psi={psi:.4f}" + (f", s0 x N/{PAPER_AUDIO_SAMPLES}" if scale != 1.0 else "")
    current = dict(model_config or {})
    if "s0" in current:
        run_s0, run_s1 = float(current["s0"]), float(current.get("s1", 0.0))
        if math.isclose(run_s0, s0, rel_tol=1e-3) and math.isclose(run_s1, s1, rel_tol=1e-3):
            return (f"this run already uses the WINNER scales of Eqn 11 (s0={s0:.4g}, s1={s1:.4g}): nothing to "
                    "change there; what is left is more epochs or a larger learning rate")
        return f"train siren2 (WINNER) with s0={s0:.4g}, s1={s1:.4g} ({source}) instead of s0={run_s0:.4g}, s1={run_s1:.4g}"
    text = f"train siren2 (WINNER) with s0={s0:.4g}, s1={s1:.4g} ({source})"
    omega = current.get("first_omega")
    paper = 30.0 * FIRST_OMEGA_SCALE * scale
    if one_d and isinstance(omega, (int, float)) and omega < 0.999 * paper:
        text += (f", or a first-layer omega of {paper:.4g} (the paper preset's 30 x 100 x N/{PAPER_AUDIO_SAMPLES}, "
                 f"Sec 5.1) instead of {float(omega):.4g}")
    return text


# --------------------------------------------------------------------------- callback
class BottleneckWatch(RunRecorder):
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

    A :class:`~spectral_probe.training.recording.RunRecorder`.
    """

    tensorboard = "watch"
    data_attributes = ("writer", "rows")

    def __init__(self, every: int = 10, *, early_stop: bool = False, writer=None, group: str = "bottleneck",
                 thresholds: Thresholds | None = None, hidden: str = "auto", ntk=None, warn: bool = True,
                 on_change: Callable[[Verdict], None] | None = None) -> None:
        every = check_every(every)
        self.every, self.early_stop, self.writer, self.group = every, bool(early_stop), writer, group
        self.thresholds = thresholds or Thresholds()
        self.hidden, self.ntk, self.warn, self.on_change = hidden, ntk, bool(warn), on_change
        self.detector = BottleneckDetector(self.thresholds)
        self.rows: list[dict] = []
        self.reference: ind.TargetReference | None = None
        self._point = None
        self._prepared = False
        self._run_attrs: dict = {}

    @property
    def verdict(self) -> Verdict:
        return self.detector.verdict

    # ------------------------------------------------------------------ set-up
    def prepare(self, model, target=None, values: torch.Tensor | None = None, epochs: int | None = None) -> None:
        """Resolve the hidden hook point and the target's reference spectrum (call before :meth:`check`).

        Inside :func:`fit` it gets the fit's state; in your own loop call ``prepare(model, target)``
        (``values``: the target's values on the model's device; ``epochs``: the length of the run, the
        horizon of the gain's trend).
        """
        if isinstance(model, TrainState):           # from the RunRecorder template (on_fit_start)
            state = model
            self._prepare(state.model, state.target, state.values, state.config.epochs)
            self._run_attrs = {"epochs": state.config.epochs, "target": getattr(state.target, "name", "none")}
        else:
            self._prepare(model, target, values, epochs)
            self._run_attrs = {**({"epochs": int(epochs)} if epochs is not None else {}),
                              "target": getattr(target, "name", "none")}

    def declare(self, writer=None) -> None:
        """Declare the ``bottleneck`` group in ``writer`` (default: :attr:`writer`), after :meth:`prepare`."""
        if writer is not None:
            self.writer = writer
        self.writer.declare(self.group, variables=self._variables(), attrs=self._attrs())

    def restore(self, ds) -> None:
        """Continue a run file: feed its recorded checks to the detector (no announcements)."""
        self.replay(ds)

    def replay(self, ds) -> None:
        """Continue a run file: feed its recorded checks to the detector (no announcements)."""
        for i, step in enumerate(ds["step"].values):
            values = {k: float(ds[k].values[i]) for k in (*INDICATORS, *_NTK_INDICATORS) if k in ds}
            verdict = self.detector.update(int(step), values)
            self.rows.append({"step": int(step), **values, "state": verdict.code,
                              "onset": -1 if verdict.onset is None or verdict.state != BOTTLENECK else verdict.onset})

    def _prepare(self, model, target, values: torch.Tensor | None, epochs: int | None) -> None:
        self._point = ind.hidden_point(model, self.hidden)
        self.reference, why = ind.target_reference(target, values)
        suggestion = winner_suggestion(target, getattr(model, "config", None)) if why is None else ""
        band = self.reference.band if why is None else None
        self.detector = BottleneckDetector(self.thresholds, why, suggestion, band, epochs)
        self.rows, self._prepared = [], True

    def _variables(self) -> dict:
        from ..store import Var

        names = (*INDICATORS, *_NTK_INDICATORS)
        variables = {n: Var((), "f8") for n in names}
        variables["state"] = Var((), "i1", attrs={"codes": STATE_CODES})
        variables["onset"] = Var((), "i8", attrs={"long_name": "onset epoch of the current bottleneck, -1 none"})
        return variables

    def _attrs(self) -> dict:
        """The group's attributes (:func:`detector_settings` reads the detector's back from them)."""
        return {"every": self.every, "thresholds": self.thresholds.to_dict(), "hidden": self._point or "none",
                **({"epochs": self._run_attrs["epochs"]} if "epochs" in self._run_attrs else {}),
                "undecidable": self.detector.undecidable or "", "suggestion": self.detector.suggestion,
                "target_band": list(self.detector.band or ()),
                "target": self._run_attrs.get("target", "none"),
                "step": "epochs completed (parameters after `step` updates)",
                "definitions": "see spectral_probe.bottleneck module docstring"}

    def rows_since(self, step: int):
        """The checks at steps ``>= step`` in the ``bottleneck`` group's layout (attributes included)."""
        import xarray as xr

        rows = [r for r in self.rows if r["step"] >= int(step)]
        if not rows:
            return None
        keys = [k for k in rows[0] if k != "step"]
        return xr.Dataset({k: ("step", np.asarray([r[k] for r in rows])) for k in keys},
                          coords={"step": np.asarray([r["step"] for r in rows], dtype=np.int64)},
                          attrs=self._attrs())

    # ------------------------------------------------------------------ checks
    def on_epoch_start(self, state: TrainState) -> None:
        step = completed_epochs(state)
        if is_due(step, self.every):
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
def detector_settings(attrs: Mapping) -> dict:
    """Keyword arguments of :class:`BottleneckDetector` / :func:`detect` stored in a ``bottleneck`` group's attributes."""
    import json

    attrs = dict(attrs)
    raw = attrs.get("thresholds", "{}")
    stored = json.loads(raw) if isinstance(raw, str) else dict(raw)
    band = attrs.get("target_band", "[]")
    band = json.loads(band) if isinstance(band, str) else [float(b) for b in np.atleast_1d(band)]
    return {"thresholds": Thresholds.from_dict(stored), "undecidable": str(attrs.get("undecidable", "")) or None,
            "suggestion": str(attrs.get("suggestion", "")), "band": band or None,
            "horizon": int(attrs["epochs"]) if "epochs" in attrs else None}


def _from_group(ds) -> Verdict:
    indicators = {k: ds[k].values for k in (*INDICATORS, *_NTK_INDICATORS) if k in ds}
    return detect(ds["step"].values, indicators, **detector_settings(ds.attrs))


def diagnose_run(path) -> Verdict:
    """The detector's verdict for a run file (live or finished) with a ``bottleneck`` group.

    Returns ``undecided`` with the reason when the file has no such group
    (trained without ``--watch``) or no target.
    """
    from ..store import open_run, read_config

    try:
        ds = open_run(path, "bottleneck")
    except ValueError as exc:
        if "no group 'bottleneck'" not in str(exc):
            raise
        config = read_config(path)
        why = ("the run has no target (its config names none)" if not config.get("target") else
               "the run file has no 'bottleneck' group; train with --watch (BottleneckWatch)")
        return Verdict(UNDECIDED, reason=f"cannot decide: {why}")
    return _from_group(ds)


def watch_line(ds) -> str | None:
    """One line for ``spectral-probe watch``: the detector's verdict over a ``bottleneck`` group."""
    if ds.sizes.get("step", 0) == 0:
        return None
    return "bottleneck watch: " + _from_group(ds).line()
