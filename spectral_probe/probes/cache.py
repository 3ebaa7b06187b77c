"""In-memory probe results and their (layer, kind) layout shared with the trajectory store.

A probe observes hook points (``layers.0.pre``, ...); the store and
``xarray`` views index them by ``layer`` (``"input"``, ``"layers.0"``, ...,
``"output"``) and ``kind`` (``"pre"``, ``"post"``), with NaN where a
combination does not exist (``input``/``pre``, ``output``/``post``).

The variables per probe step, their dims and dtypes come from the statistic
registry (:mod:`.registry`, which lists them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from . import stats
from .registry import STATISTICS, active_statistics

__all__ = ["STAT_NAMES", "STAT_DIMS", "ProbeCache", "freq_axis"]

_ORDER = ("pre", "post")


def __getattr__(name: str):
    # STAT_DIMS ({stat: (dims after (layer, kind), dtype)}) and STAT_NAMES follow the registry
    if name == "STAT_DIMS":
        return {s.name: (s.dims, s.dtype) for s in STATISTICS.values()}
    if name == "STAT_NAMES":
        return tuple(STATISTICS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def freq_axis(grid_shape: Sequence[int]) -> np.ndarray:
    """Frequencies (cycles/sample) of the probe's PSD: rfft bins in 1-D, annuli in 2-D."""
    grid = tuple(int(n) for n in grid_shape)
    if len(grid) == 2:
        fy, fx = (torch.fft.fftshift(torch.fft.fftfreq(n, dtype=torch.float64)) for n in grid)
        return stats.radial_profile(torch.zeros(grid, dtype=torch.float64), fy, fx).freqs.numpy()
    return np.fft.rfftfreq(math.prod(grid))


@dataclass
class ActivationLayout:
    """Coordinates and variables of an activations group, and the map hook point -> (layer, kind)."""

    layers: list[str]
    kinds: list[str]
    index: dict[str, tuple[int, int]]
    coords: dict[str, np.ndarray]
    variables: dict

    def arrange(self, names: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """Rows ``(len(names), ...)`` in hook-point order -> ``(layer, kind, ...)`` with NaN holes."""
        out = np.full((len(self.layers), len(self.kinds), *rows.shape[1:]), np.nan)
        for name, row in zip(names, rows):
            i, j = self.index[name]
            out[i, j] = row
        return out


def stack_points(names: Sequence[str], current: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{hook name: {stat: tensor}}`` -> ``{stat: tensor (len(names), ...)}`` (float64, NaN where missing).

    Stays on the statistics' device, so the host copy is one transfer per statistic.
    """
    out = {}
    for stat in STATISTICS:
        present = {n: s[stat] for n, s in current.items() if stat in s}
        if not present:
            continue
        like = next(iter(present.values()))
        out[stat] = torch.stack([present[n].detach().to(torch.float64) if n in present
                                 else torch.full(like.shape, math.nan, dtype=torch.float64, device=like.device)
                                 for n in names])
    return out


def activation_layout(points, n_bins: int, freqs: np.ndarray | None) -> ActivationLayout:
    """Layout for hook points ``points`` (objects with ``name``, ``layer``, ``kind``)."""
    from ..store import Var

    layers = list(dict.fromkeys(p.layer for p in points))
    kinds = [k for k in _ORDER if any(p.kind == k for p in points)]
    index = {p.name: (layers.index(p.layer), kinds.index(p.kind)) for p in points}
    coords = {"layer": np.array(layers), "kind": np.array(kinds), "bin": np.arange(n_bins),
              "edge": np.arange(n_bins + 1)}
    if freqs is not None:
        coords["freq"] = np.asarray(freqs, dtype=np.float64)
    variables = {}
    for stat in active_statistics(freqs is not None):
        variables[stat.name] = Var(("layer", "kind", *stat.dims), stat.dtype)
        coords.update({dim: np.asarray(values) for dim, values in stat.coords.items()})
    return ActivationLayout(layers, kinds, index, coords, variables)


class ProbeCache:
    """Statistics of every probe step, stacked per statistic, plus the latest raw activations.

    ``cache.stack("act_std")`` has shape ``(steps, hook points)``; ``cache.stack("psd")``
    ``(steps, hook points, freq)``.  ``cache["layers.0.pre"]`` is the raw
    activation of the latest probe step when the probe keeps them.
    """

    def __init__(self, names: Sequence[str], device: torch.device | str = "cpu") -> None:
        self.names = list(names)
        self.device = torch.device(device)
        self.steps: list[int] = []
        self.stats: dict[str, list[torch.Tensor]] = {}
        self.activations: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return (f"ProbeCache(steps={self.steps}, names={self.names}, stats={list(self.stats)}, "
                f"activations={list(self.activations)}, device={self.device})")

    def append(self, step: int, stacked: Mapping[str, torch.Tensor],
               raw: Mapping[str, torch.Tensor] | None = None) -> None:
        """Add one probe step ``{stat: tensor (hook points, ...)}`` (see :func:`stack_points`)."""
        if self.steps and step <= self.steps[-1]:
            raise ValueError(f"probe step {step} is not after the last cached step {self.steps[-1]}")
        for stat, rows in stacked.items():
            self.stats.setdefault(stat, []).append(rows.to(self.device))
        self.steps.append(int(step))
        if raw:
            self.activations = dict(raw)

    def stack(self, stat: str, names: Sequence[str] | None = None) -> torch.Tensor:
        """One statistic over all steps: shape ``(steps, len(names), ...)``."""
        if stat not in self.stats:
            raise KeyError(f"no statistic {stat!r} cached; available: {', '.join(self.stats) or 'none'}")
        out = torch.stack(self.stats[stat])
        if names is None:
            return out
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"unknown hook point(s) {missing}; cached: {', '.join(self.names)}")
        return out[:, [self.names.index(n) for n in names]]

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.activations:
            raise KeyError(f"no raw activation {name!r}; kept: {', '.join(self.activations) or 'none'} "
                           "(create the probe with keep=True)")
        return self.activations[name]

    def to(self, device: torch.device | str) -> "ProbeCache":
        """A copy of the cache on ``device``."""
        out = ProbeCache(self.names, device)
        out.steps = list(self.steps)
        out.stats = {k: [t.to(device) for t in v] for k, v in self.stats.items()}
        out.activations = {k: t.to(device) for k, t in self.activations.items()}
        return out

    def to_dataset(self, points, n_bins: int, freqs: np.ndarray | None):
        """The cached statistics as an ``xarray.Dataset`` in the store's layout."""
        import xarray as xr

        layout = activation_layout(points, n_bins, freqs if "psd" in self.stats else None)
        data = {}
        for stat, rows in self.stats.items():
            per_step = [layout.arrange(self.names, row.cpu().numpy()) for row in rows]
            spec = STATISTICS[stat]
            data[stat] = (("step", "layer", "kind", *spec.dims), np.stack(per_step).astype(spec.dtype))
        return xr.Dataset(data, coords={"step": np.asarray(self.steps, dtype=np.int64), **layout.coords})
