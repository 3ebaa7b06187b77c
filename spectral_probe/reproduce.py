"""Reproduce the paper's tables: Table 6 (psi, s0, s1 per file) and Table 1 (audio fitting PSNR).

:func:`reproduce_table6` recomputes the spectral centroid (Eqn 10) and the WINNER scales (Eqn 11)
of every audio or image file of Table 6 found in the data folders, with the paper's convention
(Supplementary Sec C: the first 150,000 samples of audio, channels averaged, images at their own
resolution; :meth:`~spectral_probe.signals.Target.psi` with ``convention="table6"``), and compares
them with the printed values (:data:`spectral_probe.paper_data.TABLE6`) within the printed precision
(:data:`~spectral_probe.paper_data.TABLE6_TOLERANCE`).

:func:`reproduce_table1` trains the Table 1 grid (files x architectures x seeds) through the sweep
machinery (:mod:`spectral_probe.sweep`: one resumable run file per run, a process pool, Slurm or
dask) with a training preset of :mod:`spectral_probe.training.presets` (``paper``: Table 1's protocol;
``quick``: the CPU version), and sets the mean and standard deviation of the peak PSNR over the
seeds beside the paper's (:data:`~spectral_probe.paper_data.TABLE1_PSNR`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .paper_data import (TABLE1_ARCHITECTURES, TABLE1_MODELS, TABLE6_TOLERANCE, Table6Row, find_table6_files,
                         table1_psnr)
from .validation import check_known, positive_int

__all__ = ["Table6Result", "reproduce_table6", "data_folders", "Table1Row", "table1_sweep", "reproduce_table1",
           "TABLES", "table1_architecture_lines"]

#: the tables ``spectral-probe reproduce`` knows
TABLES = ("paper", "table1", "table6")


def data_folders(data: str | os.PathLike | None = None) -> list[Path]:
    """``[data]`` when given (it must be a folder), else the folders of ``$SPECTRAL_PROBE_DATA``.

    Raises
    ------
    ValueError
        ``data`` is not a folder, or neither it nor ``$SPECTRAL_PROBE_DATA`` is set.
    """
    from .signals import DATA_ENV

    if data is not None:
        path = Path(data).expanduser()
        if not path.is_dir():
            raise ValueError(f"--data {str(data)!r} is not a folder")
        return [path]
    folders = [Path(p) for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    if not folders:
        raise ValueError(f"no data folder: pass --data DIR or set {DATA_ENV}")
    return folders


# --------------------------------------------------------------------------- Table 6
@dataclass
class Table6Result:
    """One file of Table 6: our psi, s0, s1 beside the paper's.

    ``status`` is ``"ok"``, ``"mismatch (psi, s0)"`` (the quantities outside the printed
    precision) or ``"unreadable: <why>"``.
    """

    row: Table6Row
    path: Path
    psi: float = math.nan
    s0: float = math.nan
    s1: float = math.nan
    status: str = "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _table6_values(row: Table6Row, path: Path) -> tuple[float, float, float]:
    from .signals import load_audio, load_image
    from .winner import winner_scales

    target = load_audio(path) if row.kind == "audio" else load_image(path)
    psi = target.psi(convention="table6")
    s0, s1 = winner_scales(psi, target.winner_preset)
    return psi, s0, s1


def reproduce_table6(data: str | os.PathLike | None = None) -> tuple[list[Table6Result], list[Table6Row]]:
    """psi, s0, s1 of every Table 6 file found in ``data`` (or ``$SPECTRAL_PROBE_DATA``), beside the paper's.

    Returns
    -------
    (results, missing)
        One :class:`Table6Result` per file found (unreadable files included, marked), in the
        table's order, and the audio/image rows not found.

    Raises
    ------
    ValueError
        No data folder, or no file of Table 6 in it.
    """
    folders = data_folders(data)
    found, missing = find_table6_files(folders)
    if not found:
        wanted = ", ".join(" or ".join(r.names) for r in missing)
        raise ValueError(f"no file of Table 6 in {', '.join(map(str, folders))} (or its audio/, images/); "
                         f"looked for {wanted}")
    results = []
    for row, path in found:
        result = Table6Result(row, path)
        try:
            result.psi, result.s0, result.s1 = _table6_values(row, path)
        except (ValueError, OSError, RuntimeError, TypeError) as exc:
            result.status = "unreadable: " + (str(exc).splitlines() or [type(exc).__name__])[0]
        else:
            bad = [name for name in ("psi", "s0", "s1")
                   if not abs(getattr(result, name) - getattr(row, name)) <= TABLE6_TOLERANCE[name]]
            result.status = f"mismatch ({', '.join(bad)})" if bad else "ok"
        results.append(result)
    return results, missing


# --------------------------------------------------------------------------- Table 1
@dataclass
class Table1Row:
    """One (file, model) cell of Table 1: our peak PSNR over seeds beside the paper's."""

    file: str
    model: str
    psnr: list[float] = field(default_factory=list)
    failed: int = 0
    paper: tuple[float, float] | None = None

    @property
    def mean(self) -> float:
        return sum(self.psnr) / len(self.psnr) if self.psnr else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation over the seeds (0 for one seed)."""
        if not self.psnr:
            return math.nan
        m = self.mean
        return math.sqrt(sum((p - m) ** 2 for p in self.psnr) / len(self.psnr))


def _check_files(files: Sequence[str]) -> list[str]:
    """Every file must exist and be readable audio, before any training."""
    from .signals import load_target

    for name in files:
        target = load_target(name)            # FileNotFoundError / ValueError name the file
        if target.spatial_dims != 1:
            raise ValueError(f"{name!r} is not audio; Table 1 is audio fitting")
    return list(files)


def table1_sweep(preset: str, files: Sequence[str], models: Sequence[str], seeds: int, *,
                 omega_rule: str = "sec5", epochs: int | None = None, offset: int = 0):
    """The :class:`~spectral_probe.sweep.SweepSpec` of a Table 1 reproduction (validated)."""
    from .training.presets import OMEGA_RULES, list_presets
    from .sweep import SweepSpec

    check_known([preset], list_presets(), "preset", exc=ValueError)
    check_known(models, TABLE1_MODELS, "Table 1 model", exc=ValueError)
    check_known([omega_rule], OMEGA_RULES, "omega rule", exc=ValueError)
    seeds = positive_int(seeds, "--seeds")
    if not files or not models:
        raise ValueError("Table 1 needs at least one file and one model")
    fixed: dict = {"preset": preset}
    if omega_rule != "sec5":
        fixed["omega_rule"] = omega_rule
    if epochs is not None:
        fixed["epochs"] = positive_int(epochs, "--epochs")
    if offset:
        fixed["offset"] = int(offset)
    grid = {"model": list(models), "target": list(files), "seed": list(range(seeds))}
    name = f"table1-{preset}" + ("" if omega_rule == "sec5" else f"-{omega_rule}")
    return SweepSpec(fixed=fixed, grid=grid, settings={"name": name}).validated()


def reproduce_table1(preset: str, files: Sequence[str], models: Sequence[str] = TABLE1_MODELS, seeds: int = 5, *,
                     outdir: str | os.PathLike | None = None, omega_rule: str = "sec5", epochs: int | None = None,
                     offset: int = 0, device: str = "auto", executor=None, on_result=None) -> list[Table1Row]:
    """Train the Table 1 grid through :func:`~spectral_probe.sweep.run_sweep` and summarise it.

    Finished runs in ``outdir`` (default ``sweeps/<name>``) are reused, so an interrupted
    reproduction resumes.

    Returns
    -------
    list of Table1Row
        One per (file, model), in the order given.
    """
    from .sweep import plan_sweep, run_sweep

    spec = table1_sweep(preset, _check_files(files), models, seeds, omega_rule=omega_rule, epochs=epochs,
                        offset=offset)
    plan = plan_sweep(spec, outdir or f"sweeps/{spec.name}", device=device)
    report = run_sweep(plan, executor, on_result=on_result)
    ds = report.dataset
    rows = []
    for f in spec.grid["target"]:
        for m in spec.grid["model"]:
            cell = ds.sel(target=f, model=m)
            ok = cell.status.values == "ok"
            rows.append(Table1Row(f, m, [float(v) for v in cell.best_psnr.values[ok]], int((~ok).sum()),
                                  (table1_psnr(f) or {}).get(m)))
    return rows


def table1_architecture_lines() -> list[str]:
    """Table 1's architectures beside our builds of them (parameter counts)."""
    from .models import build_model
    from .training.presets import PAPER_AUDIO_MODEL_KWARGS, PAPER_AUDIO_WIDTHS

    lines = []
    for model, arch in TABLE1_ARCHITECTURES.items():
        net = build_model(model, width=PAPER_AUDIO_WIDTHS[model], depth=arch.depth,
                          **dict(PAPER_AUDIO_MODEL_KWARGS.get(model, {})))
        ours = sum(p.numel() * (2 if p.is_complex() else 1) for p in net.parameters())
        lines.append(f"{arch.label}: paper {arch.depth}x{arch.width}, {arch.parameters} parameters; "
                     f"ours width={PAPER_AUDIO_WIDTHS[model]}, {ours} parameters")
    return lines

