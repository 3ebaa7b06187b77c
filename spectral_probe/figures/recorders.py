"""Training callbacks of the figures that keep a few numbers per step, in memory and in the run file.

Both act in ``on_epoch_start`` (step ``e`` = the model after ``e`` updates, as
:class:`~spectral_probe.probes.Probe`; :mod:`spectral_probe.cadence`) on ``every`` (an
integer or a :class:`~spectral_probe.cadence.Steps` schedule), mirror each row into the run's
writer when :func:`~spectral_probe.training.runs.train_to_file` gives them one, and take the rows of a
resumed run file as their own, so a part resumed from a checkpoint has its whole history.
:meth:`RowRecorder.record` adds a step by hand (the final state, after the last update).

* :class:`OutputRecorder` -- the model output on the whole grid (Fig 4);
* :class:`ProbeSummary` -- per hook point (hidden pre-activations and the output): histogram
  with its own range, std, kurtosis and the *cumulative* layer-averaged PSD sampled at fixed
  frequencies (a few kB per step, where the full PSD of 150,000 samples is 600 kB per hook
  point) (Figs 3 and 14).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..cadence import check_every, completed_epochs, is_due
from ..training.recording import RunRecorder

__all__ = ["RowRecorder", "OutputRecorder", "ProbeSummary", "summary_freqs"]


class RowRecorder(RunRecorder):
    """Base class: ``measure(model, coords) -> {name: array}`` at each due step; rows kept and mirrored.

    A :class:`~spectral_probe.training.recording.RunRecorder`: a subclass is registered by its definition.
    """

    group = "rows"
    data_attributes = ("writer", "rows")

    def __init__(self, every) -> None:
        self.every = check_every(every)
        self.writer = None
        self.steps: list[int] = []
        self.rows: dict[str, list[np.ndarray]] = {}
        self._declared = False
        self._state = None

    # subclasses ------------------------------------------------------------------
    def layout(self, state) -> tuple[dict, dict]:  # pragma: no cover - abstract
        """``(variables, coords)`` of the run-file group (see ``TrajectoryWriter.declare``)."""
        raise NotImplementedError

    def measure(self, model, coords) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    # recorder --------------------------------------------------------------------
    def on_fit_start(self, state) -> None:
        self._state = state
        self.steps, self.rows = [], {}
        super().on_fit_start(state)         # prepare, declare, restore

    def declare(self, writer=None) -> None:
        if writer is not None:
            self.writer = writer
        if self._declared:
            return
        variables, coords = self.layout(self._state)
        self.writer.declare(self.group, variables=variables, coords=coords, attrs=self._attrs())
        self._declared = True

    def _attrs(self) -> dict:
        return {"every": list(self.every) if not isinstance(self.every, int) else self.every}

    def restore(self, ds) -> None:
        """Take a resumed run file's rows as this recorder's own."""
        if ds.sizes.get("step", 0):
            self.steps = [int(s) for s in ds["step"].values]
            self.rows = {name: list(np.asarray(ds[name].values)) for name in ds.data_vars
                         if "step" in ds[name].dims}

    def rows_since(self, step: int):
        """The rows at steps ``>= step`` (``step`` dimension), None when there are none."""
        keep = [i for i, s in enumerate(self.steps) if s >= int(step)]
        if not keep or self._state is None:
            return None
        variables, coords = self.layout(self._state)
        return xr.Dataset({name: (("step", *variables[name].dims), np.stack([values[i] for i in keep]))
                           for name, values in self.rows.items()},
                          coords={"step": np.asarray([self.steps[i] for i in keep], dtype=np.int64),
                                  **{k: v for k, v in coords.items() if not np.isscalar(v)}},
                          attrs=self._attrs())

    def prepare(self, state) -> None:
        """Set-up before the group is declared (hook points, grid)."""

    def on_epoch_start(self, state) -> None:
        step = completed_epochs(state)
        if is_due(step, self.every):
            self.record(step, state.model, state.coords, write=True)

    @torch.no_grad()
    def record(self, step: int, model, coords, write: bool = False) -> None:
        """Measure ``model`` as step ``step`` (replacing a row already at that step)."""
        row = self.measure(model, coords)
        if self.steps and self.steps[-1] >= step:
            keep = [i for i, s in enumerate(self.steps) if s < step]
            self.steps = [self.steps[i] for i in keep]
            self.rows = {k: [v[i] for i in keep] for k, v in self.rows.items()}
        self.steps.append(int(step))
        for name, value in row.items():
            self.rows.setdefault(name, []).append(np.asarray(value))
        if write and self.writer is not None:
            self.writer.append(self.group, int(step), **row)


class OutputRecorder(RowRecorder):
    """The model's first output channel on the whole grid, as ``output (step, sample)``."""

    group = "outputs"

    def layout(self, state):
        from ..store import Var

        return {"output": Var(("sample",), "f4")}, {"sample": np.arange(state.coords.shape[0])}

    def measure(self, model, coords):
        return {"output": model(coords)[:, 0].detach().float().cpu().numpy()}

    def to_array(self) -> xr.DataArray:
        """Outputs as ``(epoch, sample)``."""
        return xr.DataArray(np.stack(self.rows["output"]), dims=("epoch", "sample"),
                            coords={"epoch": np.array(self.steps)}, name="output")


def summary_freqs(n: int, points: int = 240, extra=(0.02, 0.05, 0.15, 0.25, 0.5)) -> np.ndarray:
    """Frequencies (fractions of Nyquist) at which :class:`ProbeSummary` samples cumulative PSDs.

    Log-spaced from the first bin ``2/N`` to 1, plus ``extra`` (the thresholds the claims use).
    """
    grid = np.geomspace(2.0 / n, 1.0, points)
    return np.unique(np.concatenate([grid, np.asarray(extra, dtype=np.float64)]))


class ProbeSummary(RowRecorder):
    """Hidden pre-activations and the output: histogram, std, kurtosis, cumulative PSD at ``freqs``.

    Parameters
    ----------
    every
        Steps to probe (an integer or a :class:`~spectral_probe.cadence.Steps`).
    bins
        Histogram bins; each step's range is its own (``[min, max]`` widened by 5 %).
    points
        Log-spaced frequencies of the cumulative PSD (:func:`summary_freqs`).
    """

    group = "summary"
    LAYERS = ("*.pre", "output")

    def __init__(self, every, bins: int = 100, points: int = 240) -> None:
        super().__init__(every)
        self.bins, self.points = int(bins), int(points)
        self._probe = None
        self.layers: list[str] = []
        self.freqs = np.zeros(0)

    def prepare(self, state) -> None:
        self._setup(state.model, state.coords)

    def _setup(self, model, coords) -> None:
        if self._probe is not None:
            return
        from ..probes import Probe

        self._probe = Probe(list(self.LAYERS), every=1, bins=self.bins, bin_range="adaptive", psd="mean")
        self.layers = [p.name.removesuffix(".pre") for p in self._probe.attach(model)]
        self.freqs = summary_freqs(coords.shape[0], self.points)

    def layout(self, state):
        from ..store import Var

        return ({"hist": Var(("layer", "bin"), "f8"), "hist_edges": Var(("layer", "edge"), "f8"),
                 "act_std": Var(("layer",), "f8"), "act_kurtosis": Var(("layer",), "f8"),
                 "cum_psd": Var(("layer", "fk"), "f8")},
                {"layer": np.array(self.layers), "bin": np.arange(self.bins), "edge": np.arange(self.bins + 1),
                 "fk": self.freqs})

    def measure(self, model, coords):
        self._setup(model, coords)
        probe = self._probe
        probe.cache.steps.clear()
        probe.cache.stats.clear()
        points = probe.step(0, model, coords, force=True)
        rows = {k: [] for k in ("hist", "hist_edges", "act_std", "act_kurtosis", "cum_psd")}
        for name in probe.names:
            stats = {k: v.numpy() for k, v in points[name].items()}
            psd = np.asarray(stats["psd"], dtype=np.float64)
            cum = np.cumsum(psd)
            cum = cum / cum[-1] if cum[-1] > 0 else np.full_like(cum, np.nan)
            f = 2.0 * np.arange(psd.size) / (2 * (psd.size - 1))          # rfft bins as fractions of Nyquist
            rows["cum_psd"].append(np.interp(self.freqs, f, cum))
            rows["hist"].append(stats["hist"])
            rows["hist_edges"].append(stats["hist_edges"])
            rows["act_std"].append(float(stats["act_std"]))
            rows["act_kurtosis"].append(float(stats["act_kurtosis"]))
        return {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}

    def to_dataset(self) -> xr.Dataset:
        """``hist (step, layer, bin)``, ``hist_edges``, ``act_std``/``act_kurtosis (step, layer)``,
        ``cum_psd (step, layer, fk)`` with ``fk`` in fractions of Nyquist."""
        dims = {"hist": ("layer", "bin"), "hist_edges": ("layer", "edge"), "act_std": ("layer",),
                "act_kurtosis": ("layer",), "cum_psd": ("layer", "fk")}
        return xr.Dataset({k: (("step", *d), np.stack(self.rows[k])) for k, d in dims.items()},
                          coords={"step": np.asarray(self.steps, dtype=np.int64), "layer": self.layers,
                                  "fk": self.freqs})
