"""Plot helpers shared by the figure recipes (matplotlib ``Figure`` objects, no pyplot state).

Figures are built with :class:`matplotlib.figure.Figure` directly, so nothing
needs a display and no global backend is touched; ``fig.savefig`` renders with
Agg.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["MODEL_COLORS", "MODEL_LABELS", "new_figure", "step_hist", "label_axes", "save_figure",
           "hook_label", "panel_note"]

#: one colour per model, used by every figure
MODEL_COLORS = {"siren": "tab:blue", "siren2": "tab:red"}
#: display names
MODEL_LABELS = {"siren": "SIREN", "siren2": "SIREN$^2$"}


def new_figure(nrows: int, ncols: int, width: float, height: float, **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure with an ``(nrows, ncols)`` array of axes (always 2-D) and constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def step_hist(ax, edges, density, **kwargs):
    """Draw a histogram density given its bin edges (``len(edges) == len(density) + 1``)."""
    edges = np.asarray(edges, dtype=np.float64)
    density = np.asarray(density, dtype=np.float64)
    keep = np.isfinite(edges)
    if not keep.all():
        edges, density = edges[keep], density[keep[1:]]
    return ax.stairs(density, edges, **kwargs)


def label_axes(ax, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
               legend: bool = False, fontsize: float = 8) -> None:
    """Axis labels, title and a small legend."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, frameon=False)


def panel_note(ax, text: str, loc: str = "upper right", fontsize: float = 7) -> None:
    """A short note in a corner of the axes."""
    x = 0.98 if "right" in loc else 0.02
    y = 0.95 if "upper" in loc else 0.05
    ax.text(x, y, text, transform=ax.transAxes, ha="right" if "right" in loc else "left",
            va="top" if "upper" in loc else "bottom", fontsize=fontsize,
            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))


def hook_label(layer: str, kind: str) -> str:
    """``("layers.1", "pre")`` -> ``"layer 2 pre-activation"`` (layers counted from 1, as in the paper)."""
    if layer == "input":
        return "input x"
    if layer == "output":
        return "output"
    index = int(layer.split(".")[1]) + 1
    return f"layer {index} {'pre-activation' if kind == 'pre' else 'post-activation'}"


def save_figure(fig: Figure, stem: str | os.PathLike, formats: Sequence[str] = ("png",),
                dpi: int = 80) -> list[Path]:
    """Save ``fig`` as ``stem.<format>`` for each format; returns the paths written."""
    paths = []
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise ValueError(f"unknown figure format {fmt!r}; use png, pdf or svg")
        path = Path(f"{stem}.{fmt}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
