"""One activation's statistics packed into a single device vector, unpacked on the host.

A probe step observes about ten hook points; computing every statistic as its
own small tensor and copying each to the host costs dozens of synchronisations
per step, which dominates on a GPU.  :func:`summarize` leaves only reductions
on the device: it concatenates the ``pack`` results of every registered
statistic (:mod:`.registry`) into one float64 vector; the probe stacks the
vectors of all hook points and copies them in one transfer; :func:`unpack`
finishes each statistic on the host from its slice (standard deviation, excess
kurtosis, histogram density, outside fraction, ...).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from .registry import PackContext, UnpackContext, active_statistics, get_statistic

__all__ = ["Summary", "summarize", "unpack"]


class Summary(NamedTuple):
    """A packed summary: the float64 device vector and each statistic's slice of it."""

    vector: torch.Tensor
    slices: dict[str, slice]


def summarize(flat: torch.Tensor, bounds: tuple[float, float], bins: int, psd: str | None,
              grid: Sequence[int], edges: torch.Tensor | None = None) -> Summary:
    """Packed statistics of ``flat`` (N, neurons) on its device, float64.

    ``bounds`` are the histogram range (uniform bins, ``torch.histc``); pass
    ``edges`` instead for arbitrary bins (exact ``bucketize``, slower).  Every
    statistic registered and active (``psd`` given or not) contributes its
    ``pack`` result; the slices are known from the shapes, without a device sync.
    """
    ctx = PackContext(bins=bins, bounds=bounds, psd=psd, grid=tuple(grid), edges=edges)
    parts, slices, offset = [], {}, 0
    for stat in active_statistics(psd is not None):
        if stat.pack is None:
            slices[stat.name] = slice(offset, offset)
            continue
        part = stat.pack(flat, ctx).reshape(-1).double()
        parts.append(part)
        slices[stat.name] = slice(offset, offset + part.numel())
        offset += part.numel()
    vector = torch.cat(parts) if parts else flat.new_zeros(0, dtype=torch.float64)
    return Summary(vector, slices)


def unpack(vector: np.ndarray, slices: dict[str, slice], numel: int, edges: np.ndarray) -> dict[str, torch.Tensor]:
    """Finish one hook point's statistics from its packed summary (host, float64 tensors)."""
    ctx = UnpackContext(numel=int(numel), edges=edges)
    out = {name: get_statistic(name).unpack(vector[where], ctx) for name, where in slices.items()}
    return {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in out.items()}
