"""The figure registry: number -> recipe (compute, parts, assemble, plot, claims, CPU estimate).

Every recipe computes an ``xr.Dataset`` (in memory with :meth:`Recipe.compute`, or as parts
in files with :meth:`Recipe.compute_part` and :meth:`Recipe.assemble`, see
:mod:`spectral_probe.figures.parts`), checks the paper's claims on it (:meth:`Recipe.check`)
and plots it; plotting reads only the dataset, so a saved ``figN.h5`` can be re-plotted
without recomputing::

    from spectral_probe.figures import get_recipe, load_dataset
    fig = get_recipe("7").plot(load_dataset("figures/fig7.h5"))

:func:`~spectral_probe.figures.build.make_figure` writes ``figN.h5`` and ``figN.png``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import xarray as xr

from .claims import CheckResult, Claim, checks_attr, run_checks
from .parts import (MEMORY_PARTS, PART_ATTRS, FigurePart, PartContext, PartStatus, part_file_status, part_path, parts_dir, read_part,
                    run_path, run_progress, target_settings, write_part)
from .sizes import figure_sizes

__all__ = ["Recipe", "FIGURES", "list_figures", "get_recipe", "expand_figures", "estimate_seconds"]


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
        Module under :mod:`spectral_probe.figures` holding ``compute_figN``, ``plot_figN``,
        ``estimate_figN``, the claims ``CLAIMS_FIGN`` and, for a figure split into parts,
        ``parts_figN(ctx)``, ``compute_part_figN(part, ctx)`` and ``assemble_figN(datasets, ctx)``.
    target
        Which ``--target`` the recipe uses: ``""`` (none), ``"tetris"`` (1-D; without one,
        tetris.wav from ``$SPECTRAL_PROBE_DATA`` on the quick and paper presets, else the
        bundled stand-in) or ``"audio+image"`` (Fig 6: the stand-in and camera by default).
    """

    number: str
    title: str
    module: str
    target: str = ""

    def _module(self):
        return importlib.import_module(f"spectral_probe.figures.{self.module}")

    def _get(self, kind: str):
        return getattr(self._module(), f"{kind}_fig{self.number}")

    def _hook(self, kind: str):
        return getattr(self._module(), f"{kind}_fig{self.number}", None)

    # ------------------------------------------------------------------ whole figure
    def compute(self, preset: str = "quick", target: str | None = None, out=None, *, device="auto", seed: int = 0,
                **sizes) -> xr.Dataset:
        """The figure's Dataset, computed in memory (its parts one after the other), with its checks attached."""
        from .common import maybe_save

        if self._hook("parts") is None:
            ds = self._get("compute")(preset, target, None, device=device, seed=seed, **sizes)
        else:
            ctx = self.context(preset, target, seed=seed, device=device, **sizes)
            datasets = {}
            for part in self._hook("parts")(ctx):
                if part.key not in MEMORY_PARTS:          # Figs 3 and 14 share their SIREN part
                    MEMORY_PARTS[part.key], _ = self._hook("compute_part")(part, ctx)
                datasets[part.name] = MEMORY_PARTS[part.key]
            ds = self._hook("assemble")(datasets, ctx)
        return maybe_save(self.attach_checks(ds), out, f"fig{self.number}")

    def plot(self, ds: xr.Dataset):
        """Run ``plot_figN`` on a computed dataset; its stored checks are written under the figure."""
        from .claims import read_checks
        from .plotting import checks_footer

        fig = self._get("plot")(ds)
        checks_footer(fig, read_checks(ds))
        return fig

    def estimate(self, preset: str) -> float:
        """Rough CPU seconds of ``compute_figN`` under ``preset``."""
        return float(self._get("estimate")(preset))

    # ------------------------------------------------------------------ claims
    @property
    def claims(self) -> tuple[Claim, ...]:
        """The paper's claims about this figure, as checks on its data (:mod:`spectral_probe.figures.claims`)."""
        return tuple(getattr(self._module(), f"CLAIMS_FIG{self.number}"))

    def check(self, ds: xr.Dataset) -> list[CheckResult]:
        """Evaluate every claim on ``ds`` (a figure's Dataset, e.g. ``load_dataset("fig1.h5")``)."""
        return run_checks(self.number, self.claims, ds)

    def attach_checks(self, ds: xr.Dataset) -> xr.Dataset:
        """Store the checks' results in ``ds.attrs["checks"]`` (JSON) and return ``ds``."""
        ds.attrs["checks"] = checks_attr(self.check(ds))
        return ds

    # ------------------------------------------------------------------ parts
    def context(self, preset: str = "quick", target: str | None = None, *, seed: int = 0, device="auto",
                callbacks: Sequence = (), out_dir=None, **sizes) -> PartContext:
        """Resolved sizes and settings for the part functions (``ValueError`` on unknown sizes)."""
        return PartContext(self.number, preset, target, figure_sizes(self.number, preset, **sizes), seed, device,
                           tuple(callbacks), None if out_dir is None else Path(out_dir), dict(sizes))

    def parts(self, preset: str = "quick", target: str | None = None, *, seed: int = 0, **sizes) -> list[FigurePart]:
        """The figure's parts (one ``"all"`` part for a figure without a natural split)."""
        ctx = self.context(preset, target, seed=seed, **sizes)
        hook = self._hook("parts")
        if hook is not None:
            return hook(ctx)
        settings = {"figure": self.number, "preset": preset, "sizes": ctx.sizes, "seed": seed,
                    "target": target_settings(target) if self.target else None}
        return [FigurePart("all", settings, (), {"cpu_seconds": self.estimate(preset)})]

    def _find(self, name: str, preset: str, target, seed: int, sizes: dict) -> FigurePart:
        parts = self.parts(preset, target, seed=seed, **sizes)
        for part in parts:
            if part.name == name:
                return part
        raise ValueError(f"figure {self.number} has no part {name!r}; parts: {', '.join(p.name for p in parts)}")

    def _locate(self, what: str, name: str, preset: str, target, out_dir, seed: int, sizes: dict):
        """``(part, its file, finished?)``; ``ValueError`` without ``out_dir`` or for an unknown part."""
        if out_dir is None:
            raise ValueError(f"{what} needs out_dir (the folder that holds figN.parts/)")
        part = self._find(name, preset, target, seed, sizes)
        path = part_path(out_dir, self.number, name)
        return part, path, part_file_status(path, part)

    def compute_part(self, name: str, preset: str = "quick", target: str | None = None, out_dir=None, *,
                     device="auto", seed: int = 0, callbacks: Sequence = (), **sizes) -> PartStatus:
        """Compute part ``name`` into ``out_dir/figN.parts/<name>.h5`` (resuming its run files); see :mod:`.parts`."""
        part, path, done = self._locate("compute_part", name, preset, target, out_dir, seed, sizes)
        if done:
            return PartStatus(name, True, 1.0, path)
        ctx = self.context(preset, target, seed=seed, device=device, callbacks=callbacks, out_dir=out_dir, **sizes)
        hook = self._hook("compute_part")
        if hook is None:
            ds, progress = self._get("compute")(preset, target, None, device=device, seed=seed, **sizes), 1.0
        else:
            ds, progress = hook(part, ctx)
        if ds is None:
            return PartStatus(name, False, float(progress), None)
        write_part(ds, path, self.number, part)
        return PartStatus(name, True, 1.0, path)

    def part_status(self, name: str, preset: str = "quick", target: str | None = None, out_dir=None, *,
                    seed: int = 0, **sizes) -> PartStatus:
        """Where part ``name`` stands in ``out_dir`` (reads files only)."""
        part, path, done = self._locate("part_status", name, preset, target, out_dir, seed, sizes)
        if done:
            return PartStatus(name, True, 1.0, path)
        total = sum(r.epochs for r in part.runs)
        done = sum(r.epochs * run_progress(run_path(out_dir, self.number, part, i), r.epochs)
                   for i, r in enumerate(part.runs))
        return PartStatus(name, False, done / total if total else 0.0, None)

    def assemble(self, out_dir, preset: str = "quick", target: str | None = None, *, seed: int = 0,
                 **sizes) -> xr.Dataset:
        """The figure's Dataset from its finished parts in ``out_dir`` (``ValueError`` names the others)."""
        parts = self.parts(preset, target, seed=seed, **sizes)
        statuses = [self.part_status(p.name, preset, target, out_dir, seed=seed, **sizes) for p in parts]
        absent = [s for s in statuses if not s.complete]
        if absent:
            shown = ", ".join(f"{s.name} ({100 * s.progress:.0f} % trained)" if s.progress else s.name
                              for s in absent[:8])
            more = f" and {len(absent) - 8} more" if len(absent) > 8 else ""
            raise ValueError(f"figure {self.number}: {len(absent)} of {len(parts)} part(s) not complete in "
                             f"'{parts_dir(out_dir, self.number)}': {shown}{more}")
        datasets = {p.name: read_part(s.path) for p, s in zip(parts, statuses)}
        hook = self._hook("assemble")
        ds = datasets["all"] if hook is None else hook(datasets, self.context(preset, target, seed=seed, **sizes))
        for key in PART_ATTRS:                       # a figure file is not a part file
            ds.attrs.pop(key, None)
        return self.attach_checks(ds)


FIGURES: dict[str, Recipe] = {r.number: r for r in (
    Recipe("1", "PSNR of SIREN vs SIREN^2 on eight broadband signals S1-S8 with decreasing low-frequency content",
           "fig1"),
    Recipe("2", "PSNR histories of SIREN for different input scalings and network sizes (tetris.wav)", "fig2",
           "tetris"),
    Recipe("3", "SIREN on a high-frequency target: pre-activation/output distributions and cumulative PSDs, "
                "epoch 0 vs last", "fig3", "tetris"),
    Recipe("4", "SIREN on the Eqn 5 low/high targets: output and log(1+S(k)) over training", "fig4"),
    Recipe("5", "omega0 X (W + eta) with arcsine X, uniform W, Gaussian noise vs Theorem 3.1", "fig5"),
    Recipe("6", "SIREN^2 PSNR over an (s0, s1) grid for an audio and an image target, Eqn 11 marked",
           "fig6", "audio+image"),
    Recipe("7", "NTK of SIREN and SIREN^2 at init: normalised kernel, eigenvalue decay, S(k)", "fig7"),
    Recipe("8", "input/pre/post distributions and layer-averaged PSDs up to layer 2, SIREN vs SIREN^2",
           "fig8_13"),
    Recipe("13", "all layers' distributions and PSDs at init with Theorem 3.1 / Sitzmann densities",
           "fig8_13"),
    Recipe("14", "pre-activation and output distributions and cumulative PSDs at start and end of training, "
                 "SIREN vs SIREN^2", "fig14", "tetris"),
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
