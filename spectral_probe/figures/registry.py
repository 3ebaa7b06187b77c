"""The figure registry: number -> recipe (compute, plot, CPU estimate), and :func:`make_figure`.

Every recipe is a pair ``compute_figN(preset, target=None, out=None, *, device, seed, **sizes)
-> xr.Dataset`` and ``plot_figN(ds) -> matplotlib.figure.Figure``; plotting reads
only the dataset, so a saved ``figN.h5`` can be re-plotted without recomputing::

    from spectral_probe.figures import get_recipe, load_dataset
    fig = get_recipe("7").plot(load_dataset("figures/fig7.h5"))
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import xarray as xr

from .common import save_dataset
from .plotting import save_figure

__all__ = ["Recipe", "FIGURES", "list_figures", "get_recipe", "expand_figures", "estimate_seconds",
           "FigureOutput", "make_figure"]


@dataclass(frozen=True)
class Recipe:
    """One paper figure.

    Attributes
    ----------
    number
        The paper's figure number (a string: ``"3"``, ``"13"``).
    title
        What the figure shows, in one line.
    module
        Module under :mod:`spectral_probe.figures` holding ``compute_figN``, ``plot_figN``, ``estimate_figN``.
    target
        Which ``--target`` the recipe uses: ``""`` (none), ``"audio"`` (1-D; an image
        falls back to the bundled signal) or ``"audio+image"``.
    """

    number: str
    title: str
    module: str
    target: str = ""

    def _get(self, kind: str):
        module = importlib.import_module(f"spectral_probe.figures.{self.module}")
        return getattr(module, f"{kind}_fig{self.number}")

    def compute(self, preset: str = "quick", target: str | None = None, out=None, **kwargs) -> xr.Dataset:
        """Run ``compute_figN``."""
        return self._get("compute")(preset, target, out, **kwargs)

    def plot(self, ds: xr.Dataset):
        """Run ``plot_figN`` on a computed dataset."""
        return self._get("plot")(ds)

    def estimate(self, preset: str) -> float:
        """Rough CPU seconds of ``compute_figN`` under ``preset``."""
        return float(self._get("estimate")(preset))


FIGURES: dict[str, Recipe] = {r.number: r for r in (
    Recipe("1", "PSNR of SIREN vs SIREN^2 on eight broadband signals S1-S8 with decreasing low-frequency content",
           "fig1"),
    Recipe("2", "PSNR histories of SIREN for different input scalings and network sizes (tetris.wav)", "fig2",
           "audio"),
    Recipe("3", "SIREN on a high-frequency target: pre-activation/output distributions and cumulative PSDs, "
                "epoch 0 vs last", "fig3_14", "audio"),
    Recipe("4", "SIREN on the Eqn 5 low/high targets: output and log(1+S(k)) over training", "fig4"),
    Recipe("5", "omega0 X (W + eta) with arcsine X, uniform W, Gaussian noise vs Theorem 3.1", "fig5"),
    Recipe("6", "SIREN^2 PSNR over an (s0, s1) grid for an audio and an image target, Eqn 11 marked",
           "fig6", "audio+image"),
    Recipe("7", "NTK of SIREN and SIREN^2 at init: normalised kernel, eigenvalue decay, S(k)", "fig7"),
    Recipe("8", "input/pre/post distributions and layer-averaged PSDs up to layer 2, SIREN vs SIREN^2",
           "fig8_13"),
    Recipe("13", "all layers' distributions and PSDs at init with Theorem 3.1 / Sitzmann densities",
           "fig8_13"),
    Recipe("14", "pre-activation statistics at start and end of training, SIREN vs SIREN^2", "fig3_14",
           "audio"),
)}


def list_figures() -> list[str]:
    """Figure numbers in paper order."""
    return list(FIGURES)


def get_recipe(number: str) -> Recipe:
    """The recipe of figure ``number``; ``ValueError`` names the valid ones."""
    key = str(number).strip().lower().removeprefix("fig")
    if key not in FIGURES:
        raise ValueError(f"unknown figure {number!r}; valid: {', '.join(FIGURES)} or all")
    return FIGURES[key]


def expand_figures(which: str | Sequence[str]) -> list[str]:
    """``["all"]`` -> every figure; otherwise validated numbers in the order given (no repeats)."""
    items = [which] if isinstance(which, str) else list(which)
    if not items:
        raise ValueError(f"name a figure: {', '.join(FIGURES)} or all")
    out: list[str] = []
    for item in items:
        for number in (list(FIGURES) if str(item).lower() == "all" else [get_recipe(item).number]):
            if number not in out:
                out.append(number)
    return out


def estimate_seconds(numbers: Sequence[str], preset: str) -> float:
    """Rough CPU seconds of computing ``numbers`` under ``preset`` (see each ``estimate_figN``)."""
    return sum(get_recipe(n).estimate(preset) for n in numbers)


@dataclass
class FigureOutput:
    """What :func:`make_figure` produced."""

    number: str
    dataset: xr.Dataset
    data_path: Path | None
    figure_paths: list[Path] = field(default_factory=list)
    compute_seconds: float = 0.0
    plot_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.compute_seconds + self.plot_seconds


def make_figure(number: str, preset: str = "quick", *, target: str | None = None,
                out: str | os.PathLike | None = "figures", formats: Sequence[str] = ("png",), dpi: int = 80,
                device="auto", seed: int = 0, **sizes) -> FigureOutput:
    """Compute figure ``number``, save ``out/figN.h5`` and ``out/figN.<format>``.

    ``out=None`` computes and plots without writing anything.
    """
    recipe = get_recipe(number)
    start = time.perf_counter()
    ds = recipe.compute(preset, target, None, device=device, seed=seed, **sizes)
    compute_seconds = time.perf_counter() - start
    ds.attrs["compute_seconds"] = compute_seconds
    data_path = None
    start = time.perf_counter()
    fig = recipe.plot(ds)
    paths = []
    if out is not None:
        stem = Path(out) / f"fig{recipe.number}"
        data_path = save_dataset(ds, stem.with_suffix(".h5"))
        paths = save_figure(fig, stem, formats, dpi)
    return FigureOutput(recipe.number, ds, data_path, paths, compute_seconds, time.perf_counter() - start)
