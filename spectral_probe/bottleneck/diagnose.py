"""Before training: will a plain SIREN hit the spectral bottleneck on this target?

:func:`diagnose_target` reports, from the target and a freshly initialised plain SIREN:

* the spectral centroid psi (Eqn 10) and the WINNER scales ``s0, s1`` (Eqn 11), with ``s0``
  multiplied by ``N / 150000`` on 1-D crops as :func:`~spectral_probe.training.presets.make_run` does;
* the target's dominant band (the central 80 % of its power);
* the NTK-weighted spectrum ``S(k)`` (Eqn 6) of the SIREN at initialisation on a centred window
  of ``window`` consecutive samples (same sample spacing, hence the same Nyquist frequency; the
  frequency resolution is ``1 / window``): its share in the target's band, and the share of the
  target's power below the ``S(k)`` band edge (the frequency under which ``band_level`` of the
  kernel's trace lies) -- ``ntk_coverage``;
* the same coverage for the last hidden pre-activations (what :class:`~spectral_probe.bottleneck.BottleneckWatch`
  measures during training).

Forecast, from the bound the coverage puts on the PSNR gain: with a share ``c`` of the target's power
within the kernel's reach (the NTK-weighted coverage, or the hidden one for 2-D targets), a perfect
fit of that share and nothing else gains ``G = -10 log10(1 - c)`` dB over the zero-output floor.

* *likely to bottleneck* when ``G < gain_db`` (1 dB, the watch's bottleneck line; ``c < 20.6 %``):
  even a perfect fit of everything the initial kernel reaches stays under the line, so the run
  starts in the bottleneck and leaves it only if training widens the network's band;
* *at risk (slow start)* when ``gain_db <= G < 3 gain_db`` (``c`` below 50 %): the reachable
  part lifts the run over the line, but at least half of the target's power has to wait for
  the band to widen;
* *unlikely to bottleneck* when ``G >= 3 gain_db``.

An earlier rule called ``c >= 1e-3`` "at risk"; on real clips it gave that verdict to runs whose
bound was 0.01-0.07 dB and which never left the floor.  Forecast vs outcome of the current rule:
benchmarks/README.md, "Bottleneck watch".

2-D targets have no 1-D sample axis for ``S(k)``; their forecast uses the hidden-layer coverage
and says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import indicators as ind
from .detector import Thresholds
from ..ntk.spectrum import _two_sided_weights
from ..models import model_parameters
from ..training.presets import make_run
from ..signals import Target

__all__ = ["Diagnosis", "diagnose_target", "ntk_coverage", "forecast_from_bound", "AT_RISK_FACTOR"]

#: "at risk" up to this many times the bottleneck line (3 dB at 1 dB: half the target's power out of reach)
AT_RISK_FACTOR = 3.0


@dataclass
class Diagnosis:
    """Result of :func:`diagnose_target` (frequencies in fractions of Nyquist).

    ``forecast`` is ``"likely"``, ``"at risk"``, ``"unlikely"`` or ``"undecided"`` (``reason``
    says why); ``likely_bottleneck`` is ``forecast == "likely"`` (None when undecided).
    """

    target: str
    grid_shape: tuple[int, ...]
    preset: str
    psi: float
    s0: float
    s1: float
    s0_eqn11: float
    freq_scale: float
    first_omega: float
    width: int
    depth: int
    band: tuple[float, float]
    window: int
    ntk_band_share: float
    ntk_band_edge: float
    ntk_coverage: float
    hidden_band_edge: float
    hidden_coverage: float
    likely_bottleneck: bool | None
    reason: str
    seconds: float
    forecast: str = "undecided"

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable report (the CLI prints it)."""
        shape = "x".join(map(str, self.grid_shape))
        scaled = (f" = {self.s0_eqn11:.4g} x N/150000" if self.freq_scale != 1.0 else "")
        out = [f"target {self.target} ({shape} samples, {self.preset} preset): psi = {self.psi:.4f} (Eqn 10)",
               f"WINNER scales (Eqn 11): s0 = {self.s0:.4g}{scaled}, s1 = {self.s1:.4g} "
               f"(siren2 in `spectral-probe train` uses these by default)"]
        if math.isfinite(self.band[0]):
            out.append(f"dominant band (central 80 % of the power): {self.band[0]:.3g}-{self.band[1]:.3g} x Nyquist")
        out.append(f"plain SIREN {self.depth}x{self.width}, first omega {self.first_omega:.4g}, at initialisation:")
        if math.isfinite(self.ntk_coverage):
            out.append(f"  NTK S(k) on a centred window of {self.window} samples: {100 * self.ntk_band_share:.3g} % "
                       f"of its trace in the target band; band edge {self.ntk_band_edge:.3g} x Nyquist covers "
                       f"{100 * self.ntk_coverage:.1f} % of the target's power")
        if math.isfinite(self.hidden_coverage):
            out.append(f"  last hidden pre-activations: band edge {self.hidden_band_edge:.3g} x Nyquist covers "
                       f"{100 * self.hidden_coverage:.1f} % of the target's power")
        verdict = {"likely": "likely to bottleneck", "at risk": "at risk (slow start)",
                   "unlikely": "unlikely to bottleneck", "undecided": "undecided"}[self.forecast]
        out.append(f"verdict: {verdict}: {self.reason} ({self.seconds:.1f} s)")
        return out


def ntk_coverage(spectrum: torch.Tensor, window: int, ref: ind.TargetReference,
                 level: float) -> tuple[float, float]:
    """Band edge of a one-sided ``S(k)`` on ``window`` samples and the target's power share below it.

    Returns
    -------
    (band_edge, coverage)
        Host floats; the edge in fractions of Nyquist.
    """
    s = spectrum.double().cpu()
    power = (_two_sided_weights(window) * s)[1:]
    freqs = 2.0 * torch.arange(1, s.numel(), dtype=torch.float64) / window
    cdf = ind.cumulative(power)
    edge = float(ind.band_edge(cdf, freqs, level))
    target_freqs = ref.freqs.double().cpu()
    below = int(torch.searchsorted(target_freqs, torch.tensor([edge], dtype=torch.float64), right=True)[0]) - 1
    covered = float(ref.cdf[below]) if below >= 0 else 0.0
    return edge, covered


def _window(coords: torch.Tensor, window: int) -> torch.Tensor:
    n = coords.shape[0]
    w = min(int(window), n)
    start = (n - w) // 2
    return coords[start:start + w]


def diagnose_target(target: str | Target, preset: str = "quick", *, first_omega: float | None = None,
                    width: int | None = None, depth: int | None = None, num_samples: int | None = None,
                    offset: int = 0, seed: int = 0, window: int = 4096, rtol: float = 1e-6,
                    device: str | torch.device | None = None, thresholds: Thresholds | None = None) -> Diagnosis:
    """Diagnose ``target`` before training (see the module docstring).

    Parameters
    ----------
    target
        Anything :func:`~spectral_probe.training.presets.make_run` accepts (path, name, ``synthetic:...``, a Target).
    preset, width, depth, num_samples, offset, seed
        As in :func:`~spectral_probe.training.presets.make_run` (the crop and model sizes of the run to come).
    first_omega
        The plain SIREN's first-layer omega; default the preset's (``3000 x N / 150000`` for 1-D).
    window
        Samples of the centred window on which ``S(k)`` is computed (cost ~ window x parameters).
    rtol
        Certified truncation of the ``S(k)`` computation (0 = exact).

    Returns
    -------
    Diagnosis
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 16:
        raise ValueError(f"window must be an integer >= 16 samples, got {window!r}")
    t = thresholds or Thresholds()
    start = time.perf_counter()
    spec, loaded = make_run("siren", target, preset, width=width, depth=depth, num_samples=num_samples,
                            offset=offset, seed=seed, first_omega=first_omega)
    psi = loaded.psi()
    s0_eqn11, s1 = loaded.winner_scales()
    device = torch.device(device) if device is not None else torch.device("cpu")
    ref, why = ind.target_reference(loaded, loaded.values.to(device))
    kw = {**model_parameters("siren"), **spec.model_kwargs}
    result = Diagnosis(loaded.name, tuple(loaded.grid_shape), preset, psi, s0_eqn11 * spec.freq_scale, s1,
                       s0_eqn11, spec.freq_scale, float(kw.get("first_omega", math.nan)), kw["width"], kw["depth"],
                       ref.band, min(window, loaded.n),
                       math.nan, math.nan, math.nan, math.nan, math.nan, None, "", 0.0)
    if why is not None:
        result.reason = f"cannot decide: {why}"
    else:
        from ..ntk.parallel import cpu_guard

        with cpu_guard(device):      # on a busy CPU, small eighs and FFT workers wait at every barrier
            _measure(result, spec, loaded, ref, window, rtol, device, t)
    result.seconds = time.perf_counter() - start
    return result


def _measure(result: Diagnosis, spec, loaded: Target, ref: ind.TargetReference, window: int, rtol: float,
             device: torch.device, t: Thresholds) -> None:
    from ..ntk import spectrum_without_kernel

    model = spec.build_model(device=device)
    coords = loaded.coords(device=device)
    output, hidden = ind.forward_with_hidden(model, coords, ind.hidden_point(model))
    packed = ind.indicator_vector(output, hidden, ref, t.band_level).double().cpu().numpy()
    result.hidden_coverage, result.hidden_band_edge = float(packed[2]), float(packed[6])
    if loaded.spatial_dims == 1:
        x = _window(coords, window)
        s = spectrum_without_kernel(model, x, rtol=rtol).values
        result.ntk_band_share = ind.ntk_band_share(s.double().cpu().numpy(), x.shape[0], ref.band)
        result.ntk_band_edge, result.ntk_coverage = ntk_coverage(s, x.shape[0], ref, t.band_level)
        covered, source = result.ntk_coverage, "the NTK S(k) at initialisation"
    else:
        covered, source = result.hidden_coverage, "the last hidden layer's spectrum (S(k) needs a 1-D target)"
    if not np.isfinite(covered):
        result.reason = "cannot decide: the network's spectrum has no power off DC"
        return
    gain_max = -10.0 * math.log10(max(1.0 - covered, 1e-12))
    result.forecast = forecast_from_bound(gain_max, t.gain_db)
    result.likely_bottleneck = result.forecast == "likely"
    result.reason = (f"{source} reaches {100 * covered:.2g} % of the target's power; a perfect fit of that part "
                     f"gains at most {gain_max:.2f} dB over the zero-output floor")
    if result.forecast == "likely":
        result.reason += (f" (< {t.gain_db:g} dB, the bottleneck line): the run starts in the bottleneck and leaves "
                          f"it only if training widens the network's band; use siren2 with s0={result.s0:.4g}, "
                          f"s1={result.s1:.4g}")
    elif result.forecast == "at risk":
        result.reason += (f" (< {AT_RISK_FACTOR * t.gain_db:g} dB): expect a slow start, with at least half of the "
                          f"target's power fitted only once training widens the network's band; siren2 with "
                          f"s0={result.s0:.4g}, s1={result.s1:.4g} avoids it")


def forecast_from_bound(gain_max: float, gain_db: float = 1.0) -> str:
    """``"likely"``, ``"at risk"`` or ``"unlikely"`` from the reachable PSNR gain (module docstring)."""
    if gain_max < gain_db:
        return "likely"
    return "at risk" if gain_max < AT_RISK_FACTOR * gain_db else "unlikely"
