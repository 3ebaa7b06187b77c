"""Figure parts: a figure computed as named pieces, each saved to its own file, then assembled.

A long figure (Fig 6's grid, Fig 1's 16 runs, Figs 3/14's training runs) is split into *parts*
that can run in different processes, on different machines and in different sessions::

    recipe = get_recipe("6")
    for part in recipe.parts("paper"):                       # FigurePart(name, settings, runs, extra)
        recipe.compute_part(part.name, "paper", out_dir=out, callbacks=[Deadline(t_end)])
    ds = recipe.assemble(out, "paper")                       # ValueError names missing parts

* ``out_dir/figN.parts/<name>.h5`` holds a finished part (an xarray Dataset written atomically,
  with its settings and their hash in the attributes); a file whose hash differs from the
  current settings is stale and recomputed.
* A part that trains writes a run file with checkpoints, ``<name>.<hash>.run.h5`` in the same
  folder (:func:`~spectral_probe.training.runs.train_to_file`); when called again it resumes from the
  last checkpoint to the same trajectory as an uninterrupted run.  The settings hash is in the
  name, so changed settings start a new run file and never overwrite an old one.
* ``callbacks`` reach every training run of a part (a runner's deadline stops it cleanly:
  checkpoint, then ``PartStatus(complete=False, progress=...)``).

A recipe without a natural split has one part, ``"all"``: the whole ``compute_figN``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..hashing import canonical, settings_hash

__all__ = ["TrainingWork", "FigurePart", "PartStatus", "PartContext", "settings_hash", "target_settings", "parts_dir", "part_path",
           "run_path", "write_part", "read_part", "part_file_status", "run_progress", "train_part_run",
           "PART_SCHEMA", "PART_ATTRS"]

#: ``schema`` attribute of a part file
PART_SCHEMA = "spectral-probe-figure-part"
#: attributes :func:`write_part` adds (a figure assembled from parts drops them)
PART_ATTRS = ("schema", "part", "settings", "settings_hash", "spectral_probe_version")
#: parts computed in memory by ``Recipe.compute`` in this process, by settings hash (cleared by
#: :func:`spectral_probe.figures.clear_run_cache`)
MEMORY_PARTS: dict = {}


@dataclass(frozen=True)
class TrainingWork:
    """One training run inside a part, for time estimates: ``epochs`` epochs of ``model`` on ``n`` samples."""

    model: str
    n: int
    dims: int
    width: int
    depth: int
    epochs: int


@dataclass(frozen=True)
class FigurePart:
    """A piece of a figure.

    Attributes
    ----------
    name
        Stable and filename-safe (``"S3-siren"``, ``"cell-02-05"``, ``"all"``).
    settings
        JSON-able; everything that determines the part's result (its hash names the files).
    runs
        The training work inside the part (:class:`TrainingWork`; empty when it trains nothing).
    extra
        Other costs, e.g. ``{"ntk_n": 4096, "ntk_snapshots": 12}``.
    """

    name: str
    settings: dict = field(hash=False)
    runs: tuple = ()
    extra: dict = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        """Hash of the settings (16 hex digits)."""
        return settings_hash(self.settings)


@dataclass(frozen=True)
class PartStatus:
    """Where a part stands: ``complete`` (its file is there), ``progress`` (epochs done / epochs, in [0, 1])."""

    name: str
    complete: bool
    progress: float
    path: Path | None


@dataclass
class PartContext:
    """What a recipe's part functions get: the figure, preset, target, resolved sizes and where to write.

    ``out_dir`` None computes in memory (no run files); ``overrides`` are the size overrides as given.
    """

    number: str
    preset: str
    target: str | None
    sizes: dict
    seed: int = 0
    device: object = "auto"
    callbacks: tuple = ()
    out_dir: Path | None = None
    overrides: dict = field(default_factory=dict)

    def run_path(self, part: "FigurePart", index: int = 0) -> Path | None:
        """The run file of training run ``index`` of ``part`` (None in memory)."""
        return None if self.out_dir is None else run_path(self.out_dir, self.number, part, index)


_TARGET_HASHES: dict[tuple, str] = {}


def target_settings(spec: str | None):
    """A target as part settings: synthetic specs as they are, files by name and content hash (not their path).

    The same file under another folder (a GPU machine's copy) gives the same settings.
    """
    if spec is None or spec.startswith("synthetic:") or spec == "camera":
        return spec
    from ..signals.io import resolve_data_path

    path = Path(resolve_data_path(spec))
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _TARGET_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _TARGET_HASHES[key] = digest.hexdigest()[:16]
    return {"file": path.name, "sha256": _TARGET_HASHES[key]}


def parts_dir(out_dir: str | os.PathLike, number: str) -> Path:
    """``out_dir/figN.parts``."""
    return Path(out_dir) / f"fig{number}.parts"


def part_path(out_dir, number: str, name: str) -> Path:
    """The finished part's file."""
    return parts_dir(out_dir, number) / f"{name}.h5"


def run_path(out_dir, number: str, part: FigurePart, index: int = 0) -> Path:
    """The run file of training run ``index`` of ``part`` (its settings hash in the name)."""
    suffix = f".{index}" if index else ""
    return parts_dir(out_dir, number) / f"{part.name}{suffix}.{part.key[:10]}.run.h5"


def write_part(ds, path: Path, number: str, part: FigurePart) -> Path:
    """Write a finished part atomically (temporary file, then rename) with its settings and hash."""
    from .. import __version__

    ds = ds.copy()
    ds.attrs.update({"schema": PART_SCHEMA, "figure": str(number), "part": part.name,
                     "settings": json.dumps(canonical(part.settings)), "settings_hash": part.key,
                     "spectral_probe_version": __version__})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_part(path: Path):
    """A part file as an in-memory Dataset (``ValueError`` naming the file when it is not one)."""
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"'{path}' is not a readable figure part ({type(exc).__name__}: {exc})") from None
    if ds.attrs.get("schema") != PART_SCHEMA:
        raise ValueError(f"'{path}' is not a figure part (no '{PART_SCHEMA}' schema attribute)")
    return ds


def part_file_status(path: Path, part: FigurePart) -> bool:
    """True when ``path`` holds ``part`` finished with the current settings (cheap: reads attributes)."""
    if not path.exists():
        return False
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            stored = h5.attrs.get("settings_hash")
    except OSError:
        return False
    if isinstance(stored, bytes):
        stored = stored.decode()
    return stored == part.key


def run_progress(path: Path, epochs: int) -> float:
    """Epochs a run file can resume from (its last checkpoint) over ``epochs``; 0 without a usable file."""
    if not path.exists() or epochs <= 0:
        return 0.0
    from ..training.checkpoint import checkpoint_steps

    try:
        steps = checkpoint_steps(path)
    except Exception:  # noqa: BLE001 - damaged or foreign: nothing to resume from
        return 0.0
    return float(min(1.0, (int(steps[-1]) if len(steps) else 0) / epochs))


def train_part_run(spec, target, path: Path | None, *, probes: Sequence = (), callbacks: Sequence = (),
                   checkpoint_every: int | None = None, notes: list | None = None):
    """Train ``spec`` on ``target`` for a part: into the run file ``path`` (resumed when it exists), or in memory.

    Returns
    -------
    (model, FitResult, complete)
        ``complete`` is False when a callback stopped the fit before ``spec.train.epochs``.
    """
    from ..training.runs import train_to_file

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    every = checkpoint_every or max(1, spec.train.epochs // 10)
    model, result = train_to_file(spec, target, path, resume=path is not None, probes=probes, callbacks=callbacks,
                                  record_every=min(50, spec.train.epochs), checkpoint_every=every, notes=notes)
    return model, result, result.epochs_run >= spec.train.epochs
