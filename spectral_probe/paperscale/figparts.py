"""Figures as parts for ``reproduce paper``: list, compute and draw them through the figure registry.

Recipes that split into parts (``recipe.parts``, ``recipe.compute_part``, ``recipe.assemble``: the
figure-parts interface of :mod:`spectral_probe.figures`) are computed part by part, each part's
training continuing from its run file, and drawn once every part is complete.  A recipe without
that interface is one part, ``all``, computed and drawn by :func:`~spectral_probe.figures.make_figure`
in one go (it cannot stop at a deadline, so the planner starts it only when it fits).  The training
work of an ``all`` part is derived from the figure's sizes, for the time model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .specs import JobSpec, PartSpec, Work

__all__ = ["has_parts", "part_specs", "default_work", "PartOutcome", "compute_part", "progress", "draw",
           "figure_files"]


def has_parts(recipe) -> bool:
    """True when the recipe implements the figure-parts interface."""
    return all(hasattr(recipe, a) for a in ("parts", "compute_part", "assemble"))


def part_specs(number: str, preset: str, target: str | None, seed: int, sizes: dict, settings: dict) -> list[PartSpec]:
    """The parts of figure ``number`` (one ``all`` part for recipes without parts)."""
    from ..figures import get_recipe

    recipe = get_recipe(number)
    job, kind = f"fig{number}", f"fig{number}"
    if not has_parts(recipe):
        return [PartSpec(job, "all", kind, settings, default_work(number, preset, target, sizes))]
    parts = recipe.parts(preset, target, **sizes)
    out = []
    for p in parts:
        work = tuple(Work.of(r) for r in getattr(p, "runs", ()) or ())
        single = len(parts) == 1 and p.name == "all"
        part_settings = settings if single else {**settings, "part": p.name, "part_settings": p.settings}
        out.append(PartSpec(job, p.name, kind, part_settings, work, dict(getattr(p, "extra", None) or {}),
                            resumable=bool(work) and not single))
    return out


def default_work(number: str, preset: str, target: str | None, sizes: dict) -> tuple[Work, ...]:
    """Training runs of a whole figure, from its sizes (Figs 1, 2, 3, 4, 6, 14 train; the others do not)."""
    from ..figures.common import training_preset
    from ..figures.sizes import figure_sizes
    from ..training.presets import PAPER_AUDIO_EPOCHS, PRESETS

    sz = figure_sizes(number, preset, **sizes)
    tp = PRESETS[training_preset(preset)]

    def n_of(value) -> int:
        return int(tp.audio_samples if value is None else value)

    def runs(model, n, width, depth, epochs, dims=1, count=1):
        return [Work(model, n, dims, int(width), int(depth), int(epochs))] * count

    if number in ("3", "14"):
        models = ("siren",) if number == "3" else ("siren", "siren2")
        return tuple(w for m in models for w in runs(m, n_of(sz["num_samples"]), sz["width"], sz["depth"],
                                                       sz["epochs"]))
    if number == "4":
        return tuple(w for _ in sz["bands"] for w in runs("siren", sz["n"], sz["width"], sz["depth"], sz["epochs"]))
    if number == "1":
        epochs = sz["epochs"] if sz["epochs"] is not None else PAPER_AUDIO_EPOCHS
        return tuple(runs("siren", n_of(sz["n"]), sz["width"], sz["depth"], epochs, count=len(sz["signals"]))
                     + runs("siren2", n_of(sz["n"]), sz["width"], sz["depth"], epochs, count=len(sz["signals"])))
    if number == "2":
        n = n_of(sz["n"])
        return tuple(runs("siren", n, sz["width"], sz["depth"], sz["epochs"], count=len(sz["scalings"]))
                     + [w for width in sz["widths"] for w in runs("siren", n, width, sz["depth"], sz["epochs"])])
    if number == "6":
        width = sz["width"] or tp.audio_width
        depth = sz["depth"] or tp.audio_depth
        cells = len(sz["factors"]) ** 2
        image = int(sz["image_size"] or 256)
        iw, idp = sz["width"] or tp.image_width, sz["depth"] or tp.image_depth
        return tuple(runs("siren2", n_of(sz["n"]), width, depth, sz["audio_epochs"], count=cells)
                     + runs("siren", n_of(sz["n"]), width, depth, sz["audio_epochs"])
                     + runs("siren2", image * image, iw, idp, sz["image_epochs"], dims=2, count=cells)
                     + runs("siren", image * image, iw, idp, sz["image_epochs"], dims=2))
    return ()


@dataclass
class PartOutcome:
    """What computing a part did: complete or not, its progress, the files it wrote, whether the figure is drawn."""

    complete: bool
    progress: float
    files: list[Path] = field(default_factory=list)
    drawn: bool = False


def compute_part(job: JobSpec, part: PartSpec, preset: str, target: str | None, out_dir: Path, *, device: str,
                 seed: int = 0, callbacks=(), dpi: int = 80) -> PartOutcome:
    """Compute one part into ``out_dir`` (an ``all`` part also draws the figure)."""
    from ..figures import get_recipe, make_figure

    recipe = get_recipe(job.number)
    if has_parts(recipe):
        status = recipe.compute_part(part.name, preset, target, out_dir=out_dir, device=device, seed=seed,
                                     callbacks=tuple(callbacks), **job.sizes)
        files = [Path(status.path)] if getattr(status, "path", None) else []
        if status.complete and part.name == "all" and list(job.part_names) == ["all"]:
            return PartOutcome(True, 1.0, draw(job, preset, target, out_dir, dpi), drawn=True)   # as make_figure did
        return PartOutcome(bool(status.complete), float(status.progress), files)
    res = make_figure(job.number, preset, target=target, out=out_dir, formats=("png",), dpi=dpi, device=device,
                      seed=seed, **job.sizes)
    return PartOutcome(True, 1.0, [p for p in [res.data_path, *res.figure_paths] if p is not None], drawn=True)


def progress(job: JobSpec, part: PartSpec, preset: str, target: str | None, out_dir: Path,
             recorded: float = 0.0) -> float:
    """A part's progress as its files say (``recipe.part_status``), else ``recorded`` (the manifest's)."""
    from ..figures import get_recipe

    recipe = get_recipe(job.number)
    if not has_parts(recipe) or not hasattr(recipe, "part_status"):
        return recorded
    try:
        status = recipe.part_status(part.name, preset, target, out_dir=out_dir, **job.sizes)
    except (OSError, ValueError, KeyError):         # unreadable: computing it will say why
        return recorded
    return float(getattr(status, "progress", recorded))


def draw(job: JobSpec, preset: str, target: str | None, out_dir: Path, dpi: int = 80) -> list[Path]:
    """Assemble a figure from its complete parts, save ``figN.h5`` and plot ``figN.png``."""
    from ..figures import get_recipe
    from ..figures.common import save_dataset
    from ..figures.plotting import save_figure

    recipe = get_recipe(job.number)
    ds = recipe.assemble(out_dir, preset, target, **job.sizes)
    stem = Path(out_dir) / f"fig{recipe.number}"
    data = save_dataset(ds, stem.with_suffix(".h5"))
    fig = recipe.plot(ds)
    try:
        paths = save_figure(fig, stem, ("png",), dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return [Path(data), *paths]


def figure_files(number: str) -> list[str]:
    """The files a drawn figure has in the output folder."""
    return [f"fig{number}.png", f"fig{number}.h5"]
