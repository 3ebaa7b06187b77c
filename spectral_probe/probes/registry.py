"""The statistic registry: one entry per statistic a probe records, in one place.

A :class:`Statistic` says what a probe computes at each hook point and how it
is stored: its name, its dims after ``(layer, kind)``, its run-file dtype, a
``pack`` function (device reductions of the activation, packed into the
hook point's summary vector) and an ``unpack`` function (finishes the value on
the host).  The probe's summary packing (:mod:`.summary`), the in-memory cache
and its ``xarray`` view (:mod:`.cache`) and the variables of the run file's
``activations`` group all derive from this registry, so adding a statistic is
one :func:`register_statistic` call.

Built-in statistics (dims after ``step``; ``(layer, kind)`` first):

==============  =======================  ==============================================
name            dims                     meaning
==============  =======================  ==============================================
act_mean        (layer, kind)            mean over all samples and neurons
act_std         (layer, kind)            standard deviation (ddof 0), same values
act_kurtosis    (layer, kind)            excess (Fisher) kurtosis, same values
hist            (layer, kind, bin)       density: counts / (all values * bin width)
hist_edges      (layer, kind, edge)      bin edges used at that step
hist_outside    (layer, kind)            fraction of values outside the edges
psd             (layer, kind, freq)      layer-averaged PSD (1-D or radial profile)
==============  =======================  ==============================================

A statistic is recorded when every one of its dims has a coordinate: ``bin``
and ``edge`` always, ``freq`` when the probe computes PSDs (``psd`` is not
None), and the dims listed in the statistic's own ``coords``.

Example
-------
>>> register_statistic(Statistic(
...     "act_absmax", (), "f4",
...     pack=lambda flat, ctx: flat.abs().amax().reshape(1),
...     unpack=lambda packed, ctx: packed[0]))
>>> probe = Probe(every=10)          # now also records act_absmax (step, layer, kind)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from . import stats

__all__ = ["Statistic", "PackContext", "UnpackContext", "register_statistic", "unregister_statistic",
           "list_statistics", "get_statistic", "active_statistics", "STATISTICS", "BUILTIN_DIMS"]

#: dims whose coordinates the probe provides: always, or with a PSD
BUILTIN_DIMS: dict[str, str] = {"bin": "always", "edge": "always", "freq": "psd"}


@dataclass
class PackContext:
    """What ``pack`` functions see besides the activation ``flat`` ``(N, neurons)``.

    ``bins``/``bounds``: the histogram's bin count and range; ``edges``: explicit
    edges on the device (None for uniform bins); ``psd``: the PSD method or None;
    ``grid``: the sample grid.  ``moments`` and ``counts`` are shared
    reductions, computed once per activation whichever statistic asks first.
    """

    bins: int
    bounds: tuple[float, float]
    psd: str | None
    grid: tuple[int, ...]
    edges: torch.Tensor | None = None
    _memo: dict = field(default_factory=dict, repr=False)

    def moments(self, flat: torch.Tensor) -> torch.Tensor:
        """``[mean, m2, m4]`` (central moments, population), float64, on the device."""
        if "moments" not in self._memo:
            mean = flat.mean()
            sq = (flat - mean).square_()
            m2 = sq.mean()
            m4 = sq.square_().mean()
            self._memo["moments"] = torch.stack([mean, m2, m4]).double()
        return self._memo["moments"]

    def counts(self, flat: torch.Tensor) -> torch.Tensor:
        """Histogram counts ``(bins,)`` (float64) on the device."""
        if "counts" not in self._memo:
            if self.edges is None:
                counts = stats.uniform_counts(flat, self.bins, *self.bounds)
            else:
                counts = stats.histogram(flat, self.edges, uniform=False).counts
            self._memo["counts"] = counts.double()
        return self._memo["counts"]

    def spectrum(self, flat: torch.Tensor) -> torch.Tensor:
        """Layer PSD (1-D, or the radial profile of the 2-D PSD), float64, on the device."""
        if len(self.grid) == 2:
            spec = stats.layer_psd_2d(flat, self.grid, self.psd)
            return stats.radial_profile(spec.psd, spec.fy, spec.fx).psd.double()
        return stats.layer_psd(flat, self.psd).psd.double()


@dataclass(frozen=True)
class UnpackContext:
    """What ``unpack`` functions see besides their packed slice: values counted and the bin edges."""

    numel: int
    edges: np.ndarray


@dataclass(frozen=True)
class Statistic:
    """One statistic of a probe step.

    Parameters
    ----------
    name
        Variable name in the cache, the ``xarray`` view and the run file.
    dims
        Dims after ``(layer, kind)`` (``()`` for a scalar per hook point).
    dtype
        Run-file dtype (``"f4"``, ``"f8"``); the cache keeps float64.
    pack
        ``(flat (N, neurons), PackContext) -> 1-D tensor`` of device reductions, or
        None when the statistic needs none (e.g. ``hist_edges``).  Use the
        context's shared ``moments``/``counts``/``spectrum`` where they fit.
    unpack
        ``(packed: np.ndarray (float64, this statistic's slice), UnpackContext) ->``
        the value (scalar or array of the dims' sizes), on the host.
    coords
        Coordinates of dims the probe does not provide (``dim -> values``).
    description
        Stored as an attribute of the run file's group when given.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    pack: Callable[[torch.Tensor, PackContext], torch.Tensor] | None
    unpack: Callable[[np.ndarray, UnpackContext], object]
    coords: Mapping[str, Sequence] = field(default_factory=dict)
    description: str | None = None

    def active(self, available: Sequence[str]) -> bool:
        """Whether every dim has a coordinate, given the probe's ``available`` dims."""
        return all(d in available or d in self.coords for d in self.dims)


_REGISTRY: dict[str, Statistic] = {}


class _View(Mapping):
    def __getitem__(self, name: str) -> Statistic:
        return _REGISTRY[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


#: read-only view ``name -> Statistic`` in registration order
STATISTICS: Mapping[str, Statistic] = _View()


def register_statistic(stat: Statistic, *, overwrite: bool = False) -> Statistic:
    """Add ``stat`` to the registry (every probe created or attached afterwards records it)."""
    if not isinstance(stat, Statistic):
        raise TypeError(f"register_statistic takes a Statistic, got {type(stat).__name__}")
    if not stat.name.isidentifier():
        raise ValueError(f"statistic names are identifiers, got {stat.name!r}")
    if stat.name in _REGISTRY and not overwrite:
        raise ValueError(f"statistic {stat.name!r} is already registered; pass overwrite=True to replace it")
    if np.dtype(stat.dtype).kind != "f":
        raise ValueError(f"statistic {stat.name!r}: dtype must be a float type such as 'f4', got {stat.dtype!r}")
    clash = [d for d in stat.coords if d in BUILTIN_DIMS or d in ("layer", "kind", "step")]
    if clash:
        raise ValueError(f"statistic {stat.name!r}: dims {clash} already have the probe's coordinates")
    _REGISTRY[stat.name] = stat
    return stat


def unregister_statistic(name: str) -> None:
    """Remove a statistic from the registry."""
    get_statistic(name)
    del _REGISTRY[name]


def get_statistic(name: str) -> Statistic:
    """The registered statistic ``name`` (``KeyError`` listing the valid names)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown statistic {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def list_statistics() -> list[str]:
    """Registered statistic names, in registration (= storage) order."""
    return list(_REGISTRY)


def active_statistics(psd: bool) -> list[Statistic]:
    """Statistics a probe records, with (``psd=True``) or without a PSD."""
    available = [d for d, when in BUILTIN_DIMS.items() if when == "always" or psd]
    return [s for s in _REGISTRY.values() if s.active(available)]


# --------------------------------------------------------------------------- built-in statistics
def _density(packed: np.ndarray, ctx: UnpackContext) -> np.ndarray:
    return packed / (max(ctx.numel, 1) * np.diff(ctx.edges))


def _kurtosis(packed: np.ndarray, ctx: UnpackContext) -> float:
    m2, m4 = packed
    return m4 / max(m2 * m2, np.finfo(np.float64).tiny) - 3.0


for _stat in (
    Statistic("act_mean", (), "f8", lambda f, c: c.moments(f)[:1], lambda p, c: p[0]),
    Statistic("act_std", (), "f8", lambda f, c: c.moments(f)[1:2], lambda p, c: np.sqrt(p[0])),
    Statistic("act_kurtosis", (), "f8", lambda f, c: c.moments(f)[1:], _kurtosis,
              description="excess (Fisher)"),
    Statistic("hist", ("bin",), "f4", lambda f, c: c.counts(f), _density,
              description="density: counts / (all values * bin width)"),
    Statistic("hist_edges", ("edge",), "f8", None, lambda p, c: c.edges),
    Statistic("hist_outside", (), "f4", lambda f, c: c.counts(f).sum().reshape(1),
              lambda p, c: (c.numel - p[0]) / max(c.numel, 1)),
    Statistic("psd", ("freq",), "f4", lambda f, c: c.spectrum(f), lambda p, c: p),
):
    register_statistic(_stat)
del _stat
