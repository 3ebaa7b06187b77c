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

__all__ = ["DEFAULT_DPI", "MODEL_COLORS", "MODEL_LABELS", "new_figure", "step_hist", "label_axes", "save_figure",
           "hook_label", "panel_note", "outside_legend", "suptitle", "checks_footer"]

#: resolution of saved figures (legend text of 6.5-8 pt is 11-13 px high at 120 dpi)
DEFAULT_DPI = 120
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
    """Axis labels, title and a small legend outside the data (right of the axes, see :func:`outside_legend`)."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    if legend and ax.get_legend_handles_labels()[0]:
        outside_legend(ax, fontsize)


def outside_legend(ax, fontsize: float = 8, where: str = "right", ncol: int = 1):
    """A legend outside the axes (``"right"`` or ``"below"``), so that it never covers a curve.

    Constrained layout makes room for it.
    """
    if where == "below":
        return ax.legend(fontsize=fontsize, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18),
                         ncol=ncol, borderaxespad=0.0)
    return ax.legend(fontsize=fontsize, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                     ncol=ncol, borderaxespad=0.0)


def checks_footer(fig, results, width: int = 170) -> None:
    """Under the figure: the paper's claims checked on its data, each failing one with its numbers."""
    import textwrap

    if not results:
        return
    held = [r.id for r in results if r.status == "pass"]
    lines = [f"Claims checked on this data: {len(held)} of {len(results)} hold" + (f" ({', '.join(held)})" if held
                                                                                  else "")]
    for r in results:
        if r.status != "pass":
            word = "DISAGREES with the paper" if r.status == "fail" else f"not checked ({r.status})"
            lines += textwrap.wrap(f"{word}: {r.id}: {r.text}", width)
    fig.supxlabel("\n".join(lines), fontsize=8, ha="left", x=0.01,
                  color="k" if len(lines) == 1 else "darkred")


def suptitle(fig, text: str, fontsize: float = 10.5, width: int = 140) -> None:
    """A figure title wrapped at ``width`` characters."""
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(text, width)), fontsize=fontsize)


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
                dpi: int = DEFAULT_DPI) -> list[Path]:
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
