"""What ``reproduce paper`` has to do: jobs (a figure, a Table 1 cell), their parts, and settings hashes.

A *job* is one figure (``fig3``) or one Table 1 cell (``table1/tetris/siren2``: a file x an
architecture); its *parts* are the units that are computed, saved and resumed: the figure's parts
(:mod:`.figparts`; a figure without a natural split has one part, ``all``) or the cell's seeds
(``seed0`` ... ``seed4``: Sec 5.1, "every experiment is conducted over five random trials").

Every part carries the settings that determine its result and their hash (:func:`settings_hash`),
and the training work inside it (:class:`Work`, for the time model).  Settings that change speed but
not results (device, ``torch.compile``, CUDA graphs, logging) are left out of the hash, so a faster
route does not invalidate finished parts.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path
from typing import Sequence

from .specs import JobSpec, PartSpec, Work, canonical, settings_hash

__all__ = ["Work", "PartSpec", "JobSpec", "known_jobs", "jobs_from_manifest", "TABLE1_CELLS", "TEST_TABLE1", "PRESETS", "parse_budget",
           "settings_hash", "canonical", "catalogue", "select", "table1_cell_name", "TRAIN_RESULT_KEYS"]

#: the presets of ``reproduce paper``: the paper's sizes (GPU) and a seconds-long rehearsal (CPU tests)
PRESETS = ("paper", "test")
#: Table 1 cells run, in the order kept when time is short: the bottleneck pair first (tetris.wav,
#: psi 0.5732), then bach.wav = gt_bach.wav (psi 0.0737, Table 6); SIREN, FINER, SIREN^2 (Table 1)
TABLE1_CELLS = (("tetris.wav", "siren2"), ("tetris.wav", "siren"), ("gt_bach.wav", "finer"),
                ("gt_bach.wav", "siren2"), ("gt_bach.wav", "siren"), ("tetris.wav", "finer"))
#: the test preset's Table 1 sizes (training preset ``quick``; a crop from the middle of the file)
TEST_TABLE1 = dict(num_samples=512, width=32, depth=3, epochs=30)
#: TrainConfig fields that determine a run's result (the rest change speed or logging only)
TRAIN_RESULT_KEYS = ("epochs", "lr", "lr_step", "lr_gamma", "batch_size", "seed", "restore_best", "peak")

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_budget(text) -> float:
    """``"9m"``, ``"90s"``, ``"1h"``, ``"2m30s"`` or a number of seconds -> seconds (> 0).

    Raises
    ------
    ValueError
        Zero, negative, not finite, or not a duration.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower()
        pieces = re.findall(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|min|m|sec|s)?", s)
        if not s or re.sub(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|min|m|sec|s)?", "", s).strip():
            raise ValueError(f"--budget {text!r} is not a duration; give e.g. 9m, 540s, 1h or 2m30s")
        if len(pieces) > 1 and any(not unit for _, unit in pieces):
            raise ValueError(f"--budget {text!r}: give a unit to every number (e.g. 2m30s)")
        seconds = sum(float(v) * _UNITS[u or "s"] for v, u in pieces)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"--budget must be a positive duration, got {text!r}")
    return seconds


# --------------------------------------------------------------------------- Table 1
def table1_cell_name(file: str, model: str) -> str:
    """``("tetris.wav", "siren2")`` -> ``"table1/tetris/siren2"``."""
    return f"table1/{Path(file).stem}/{model}"


def _middle(target: str, length: int) -> int:
    from ..training import presets

    return max(0, presets.load_target(target).n // 2 - int(length) // 2)


@contextlib.contextmanager
def _one_load_per_file():
    """Within the block, ``make_run`` reads each data file once (a catalogue builds 30 runs from two files).

    The loaded targets are not changed by ``make_run`` (it crops into new targets); the module attribute
    is restored on exit.
    """
    from ..training import presets

    original = presets.load_target
    cache: dict = {}

    def load(spec, **kwargs):
        key = (str(spec), tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(spec, **kwargs)
        return cache[key]

    presets.load_target = load
    try:
        yield
    finally:
        presets.load_target = original


def table1_run(file: str, model: str, preset: str, seed: int):
    """``make_run`` of one Table 1 run: the paper preset (Sec 5.1), or the test preset's tiny crop."""
    from ..training.presets import make_run

    extra = {}
    if preset == "test":
        extra = dict(TEST_TABLE1, offset=_middle(file, TEST_TABLE1["num_samples"]))
    return make_run(model, file, "quick" if preset == "test" else "paper", seed=seed, **extra)


def result_settings(spec) -> dict:
    """The result-determining settings of a RunSpec (device, compile, logging left out)."""
    d = spec.to_dict()
    d["train"] = {k: d["train"][k] for k in TRAIN_RESULT_KEYS}
    d.pop("notes", None)
    return d


def table1_job(file: str, model: str, preset: str, seeds: int) -> JobSpec:
    specs = [table1_run(file, model, preset, seed) for seed in range(seeds)]
    name = table1_cell_name(file, model)
    parts = []
    for seed, (spec, loaded) in enumerate(specs):
        kw = spec.model_kwargs
        work = Work(model, loaded.n, loaded.spatial_dims, kw["width"], kw["depth"], spec.train.epochs)
        parts.append(PartSpec(name, f"seed{seed}", "table1", {"table1": result_settings(spec)}, (work,),
                              resumable=True))
    job_settings = {"table1": {k: v for k, v in result_settings(specs[0][0]).items() if k != "seed"}}
    job_settings["table1"]["train"] = {k: v for k, v in job_settings["table1"]["train"].items() if k != "seed"}
    job_settings["table1"]["target_kwargs"] = {k: v for k, v in job_settings["table1"]["target_kwargs"].items()
                                               if k != "seed"}
    return JobSpec(name, "table1", job_settings, parts, file=file, model=model, data=(file,))


# --------------------------------------------------------------------------- figures
def figure_overrides(number: str, preset: str, target: str | None) -> dict:
    """Size overrides of a figure: none at the paper preset; at ``test``, a crop from the middle of the audio.

    The test preset's crops are short (2^10 samples) and the paper's files start silent (tetris.wav's
    first 2^10 samples are zero), so the rehearsal crops from the middle of the file; the paper preset
    crops the first 150,000 samples as the paper does (Sec 5.1).
    """
    from ..figures.sizes import figure_sizes

    sizes = figure_sizes(number, preset)
    if preset != "test" or "offset" not in sizes or target is None or target.startswith("synthetic:"):
        return {}
    return {"offset": _middle(target, sizes.get("num_samples") or sizes.get("n") or 0)}


def figure_targets(number: str, target: str | None) -> list[str] | None:
    """The target specs figure ``number`` reads (None for figures without a target)."""
    from ..figures import get_recipe
    from ..figures.common import audio_target_spec, image_target_spec

    kind = get_recipe(number).target
    if not kind:
        return None
    return [audio_target_spec(target)] + ([image_target_spec(target)] if "image" in kind else [])


def figure_settings(number: str, preset: str, target: str | None, seed: int, sizes: dict) -> dict:
    """Figure-level settings (hashed): number, preset, targets, seed, sizes, the training preset's settings."""
    from dataclasses import fields

    from ..figures.common import training_preset
    from ..figures.sizes import figure_sizes
    from ..training.presets import PRESETS as TRAIN_PRESETS

    p = TRAIN_PRESETS[training_preset(preset)]
    train = {f.name: getattr(p, f.name) for f in fields(p) if f.name != "compile"}
    return {"figure": number, "preset": preset, "targets": figure_targets(number, target), "seed": seed,
            "sizes": figure_sizes(number, preset, **sizes), "training_preset": train}


def figure_job(number: str, preset: str, target: str | None, seed: int = 0) -> JobSpec:
    from . import figparts

    sizes = figure_overrides(number, preset, target)
    settings = figure_settings(number, preset, target, seed, sizes)
    parts = figparts.part_specs(number, preset, target, seed, sizes, settings)
    files = [t for t in (figure_targets(number, target) or []) if not t.startswith("synthetic:") and t != "camera"]
    return JobSpec(f"fig{number}", "figure", settings, parts, number=number, sizes=sizes, data=tuple(files))


# --------------------------------------------------------------------------- catalogue
def catalogue(preset: str = "paper", target: str | None = "tetris.wav", seeds: int = 5,
              figures: Sequence[str] | None = None, cells: Sequence[tuple[str, str]] = TABLE1_CELLS,
              selectors: Sequence[str] | None = None) -> list[JobSpec]:
    """Every job in priority order: the figures in paper order, then the Table 1 cells of :data:`TABLE1_CELLS`.

    With ``selectors`` (see :func:`select`) only the jobs they name are built, after checking that
    their data files exist (``ValueError`` naming the file and ``--data``).
    """
    from ..figures import list_figures
    from ..validation import check_known, positive_int

    check_known([preset], PRESETS, "preset", exc=ValueError)
    seeds = positive_int(seeds, "--seeds")
    numbers = list_figures() if figures is None else list(figures)
    names = [(f"fig{n}", n, None) for n in numbers] + [(table1_cell_name(f, m), None, (f, m)) for f, m in cells]
    wanted = _selectors(selectors)
    keep = [(name, n, cell) for name, n, cell in names if _job_selected(name, wanted)]
    for sel in wanted:
        if not any(_job_selected(name, [sel]) for name, _, _ in names):
            raise ValueError(f"--jobs {sel!r} names no job; choose from: all, figures, table1, "
                             f"{', '.join(name for name, _, _ in names)} (or one part, e.g. table1/tetris/siren2/seed3)")
    for name, n, cell in keep:
        files = [cell[0]] if cell else [t for t in (figure_targets(n, target) or []) if _is_file(t)]
        check_data(files, name)
    with _one_load_per_file():
        jobs = [figure_job(n, preset, target) if n else table1_job(cell[0], cell[1], preset, seeds)
                for _, n, cell in keep]
    return select(jobs, selectors) if selectors else jobs


def _is_file(spec: str) -> bool:
    return not spec.startswith("synthetic:") and spec != "camera"


def check_data(files: Sequence[str], job: str) -> None:
    """Every data file a job reads must be found (ValueError naming it, the job and ``--data``)."""
    import os

    from ..signals.io import DATA_ENV, resolve_data_path

    for name in files:
        try:
            resolve_data_path(name)
        except FileNotFoundError:
            raise ValueError(f"data file {name} not found (needed by {job}); put it in DIR/audio and pass --data DIR "
                             f"or set {DATA_ENV} (now {os.environ.get(DATA_ENV, 'unset')!r})") from None


def _selectors(selectors) -> list[str]:
    wanted: list[str] = []
    for item in selectors or ():
        for s in str(item).split(","):
            s = s.strip().strip("/")
            if s:
                wanted.append(re.sub(r"^(\d+)(/|$)", r"fig\1\2", s))          # "3" -> "fig3"
    if selectors is not None and not wanted and list(selectors):
        raise ValueError("--jobs is empty; name jobs such as fig3,table1/tetris/siren2 or all")
    return wanted


def _job_selected(name: str, wanted: list[str]) -> bool:
    if not wanted:
        return True
    for sel in wanted:
        if sel == "all" or (sel in ("figures", "figs") and name.startswith("fig")):
            return True
        if name == sel or sel.startswith(name + "/") or name.startswith(sel + "/"):
            return True
    return False


def select(jobs: list[JobSpec], selectors: Sequence[str] | None) -> list[JobSpec]:
    """Keep the jobs (and parts) named by ``selectors``: ``all``, ``figures``, ``table1``, a job
    (``fig3``, ``table1/tetris/siren2``), a prefix (``table1/tetris``) or a part (``table1/tetris/siren2/seed3``).

    Raises
    ------
    ValueError
        A selector matches nothing; the message lists the jobs.
    """
    if not selectors:
        return jobs
    wanted = _selectors(selectors)

    def matches(pid: str, sel: str) -> bool:
        if sel == "all":
            return True
        if sel in ("figures", "figs"):
            return pid.startswith("fig")
        return pid == sel or pid.startswith(sel + "/")

    out = []
    for sel in wanted:
        if not any(matches(p.id, sel) for j in jobs for p in j.parts):
            names = ", ".join(j.name for j in jobs)
            raise ValueError(f"--jobs {sel!r} names no job; choose from: all, figures, table1, {names} "
                             "(or one part, e.g. table1/tetris/siren2/seed3)")
    for job in jobs:
        parts = [p for p in job.parts if any(matches(p.id, s) for s in wanted)]
        if parts:
            out.append(job if len(parts) == len(job.parts) else _with_parts(job, parts))
    return out


def _with_parts(job: JobSpec, parts: list[PartSpec]) -> JobSpec:
    from dataclasses import replace

    return replace(job, parts=parts, all_parts=tuple(job.part_names))


def known_jobs(manifest, preset: str, target: str = "tetris.wav", seeds: int = 5) -> list[JobSpec] | None:
    """The catalogue; without the data files it needs, the jobs as ``manifest`` records them (None: no manifest)."""
    try:
        return catalogue(preset, target, seeds)
    except (FileNotFoundError, ValueError):
        return jobs_from_manifest(manifest) if manifest is not None else None


def jobs_from_manifest(manifest) -> list[JobSpec]:
    """Jobs and parts as recorded (no settings): for reports where the data are not at hand."""
    from ..figures import list_figures

    records = dict(manifest.jobs)
    for number in list_figures():
        records.setdefault(f"fig{number}", {"kind": "figure", "number": number, "parts": {"all": {}}})
    figures = [f"fig{n}" for n in list_figures()]
    out = []
    for name in figures + [n for n in records if n not in figures]:
        rec = records[name]
        parts = [PartSpec(name, p, "table1" if rec.get("kind") == "table1" else name, {}) for p in rec.get("parts", {})]
        number = rec.get("number") or (name.removeprefix("fig") if rec.get("kind") == "figure" else None)
        out.append(JobSpec(name, rec.get("kind") or "figure", {}, parts, number=number, file=rec.get("file"),
                           model=rec.get("model")))
    return out
