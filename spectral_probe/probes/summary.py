"""One activation's statistics packed into a single device vector, unpacked on the host.

A probe step observes about ten hook points; computing every statistic as its
own small tensor and copying each to the host costs dozens of synchronisations
per step, which dominates on a GPU.  :func:`summarize` leaves only reductions
on the device and packs them as ``[mean, m2, m4, counts (B), psd (F)]``
(float64); the probe stacks the vectors of all hook points and copies them in
one transfer; :func:`unpack` finishes the statistics on the host (standard
deviation, excess kurtosis, histogram density, outside fraction).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from . import stats

__all__ = ["summarize", "unpack", "summary_length"]

#: leading entries of a summary: mean, second and fourth central moments
_HEAD = 3


def summary_length(bins: int, n_freq: int) -> int:
    """Length of a packed summary with ``bins`` bins and ``n_freq`` PSD frequencies (0 without PSD)."""
    return _HEAD + bins + n_freq


def _spectrum(flat: torch.Tensor, method: str | None, grid: Sequence[int]) -> torch.Tensor:
    if method is None:
        return flat.new_zeros(0)
    if len(grid) == 2:
        spec = stats.layer_psd_2d(flat, grid, method)
        return stats.radial_profile(spec.psd, spec.fy, spec.fx).psd
    return stats.layer_psd(flat, method).psd


def summarize(flat: torch.Tensor, bounds: tuple[float, float], bins: int, psd: str | None,
              grid: Sequence[int], edges: torch.Tensor | None = None) -> torch.Tensor:
    """Packed statistics of ``flat`` (N, neurons) on its device, float64, shape (3 + bins + F,).

    ``bounds`` are the histogram range (uniform bins, ``torch.histc``); pass
    ``edges`` instead for arbitrary bins (exact ``bucketize``, slower).
    """
    mean = flat.mean()
    sq = (flat - mean).square_()
    m2 = sq.mean()
    m4 = sq.square_().mean()
    if edges is None:
        counts = stats.uniform_counts(flat, bins, *bounds)
    else:
        counts = stats.histogram(flat, edges, uniform=False).counts
    head = torch.stack([mean, m2, m4]).double()
    return torch.cat([head, counts.double(), _spectrum(flat, psd, grid).double()])


def unpack(vector: np.ndarray, numel: int, edges: np.ndarray) -> dict[str, torch.Tensor]:
    """Finish one hook point's statistics from its packed summary (host, float64 tensors)."""
    bins = edges.size - 1
    mean, m2, m4 = vector[:_HEAD]
    counts = vector[_HEAD:_HEAD + bins]
    inside = counts.sum()
    kurtosis = m4 / max(m2 * m2, np.finfo(np.float64).tiny) - 3.0
    out = {"act_mean": mean, "act_std": np.sqrt(m2), "act_kurtosis": kurtosis,
           "hist": counts / (max(numel, 1) * np.diff(edges)), "hist_edges": edges,
           "hist_outside": (numel - inside) / max(numel, 1)}
    if vector.size > _HEAD + bins:
        out["psd"] = vector[_HEAD + bins:]
    return {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in out.items()}
