"""Making figures: compute their parts (in a process pool on a CPU), assemble, check, plot and save.

:func:`make_figures` gathers the parts of every requested figure, computes each distinct part
once (Figs 3 and 14 share their SIREN run when their settings agree), longest first, in
``workers`` processes of one torch thread each (:class:`~spectral_probe.sweep.executors.LocalExecutor`),
and as soon as all parts of a figure are in, assembles it, evaluates its claims and writes
``figN.h5`` and ``figN.png``.  Parts live in ``parts_dir`` (kept: a second call resumes and
reuses them) or in a temporary folder removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import xarray as xr

from .claims import CheckResult, read_checks
from .common import save_dataset
from .parts import FigurePart, part_path
from .plotting import DEFAULT_DPI, save_figure
from .registry import get_recipe

__all__ = ["FigureOutput", "make_figure", "make_figures", "part_cost", "default_workers"]


@dataclass
class FigureOutput:
    """What :func:`make_figure` produced."""

    number: str
    dataset: xr.Dataset
    data_path: Path | None
    figure_paths: list[Path] = field(default_factory=list)
    compute_seconds: float = 0.0
    plot_seconds: float = 0.0
    parts_seconds: float = 0.0
    parts_cpu_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.compute_seconds + self.plot_seconds

    @property
    def checks(self) -> list[CheckResult]:
        return read_checks(self.dataset) if self.dataset is not None else []


def part_cost(part: FigurePart) -> float:
    """Relative cost of a part for scheduling: training work (samples x width^2 x depth x epochs) or CPU seconds."""
    from ..training.presets import CPU_SECONDS_PER_UNIT

    train = sum(r.n * r.width * r.width * r.depth * r.epochs for r in part.runs) * CPU_SECONDS_PER_UNIT
    return train + float(part.extra.get("cpu_seconds", 0.0))


def default_workers(preset: str, device) -> int:
    """Processes for the parts: the CPUs this process may use on a CPU (quick/test presets), else 1."""
    from ..devices import resolve_device
    from ..sweep.executors import default_workers as cpus

    if preset == "paper" or resolve_device(device).type != "cpu":
        return 1
    return cpus(1)


def _compute(item: dict) -> dict:
    """Compute one part (runs in a worker process or in this one); wall and CPU seconds of this process."""
    start, cpu = time.perf_counter(), time.process_time()
    status = get_recipe(item["number"]).compute_part(
        item["name"], item["preset"], item["target"], item["out_dir"], device=item["device"], seed=item["seed"],
        **item["sizes"])
    return {**item, "complete": status.complete, "progress": status.progress, "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


@contextlib.contextmanager
def _parts_folder(parts_dir):
    if parts_dir is not None:
        yield Path(parts_dir)
        return
    with tempfile.TemporaryDirectory(prefix="spectral-probe-parts-") as tmp:
        yield Path(tmp)


def make_figures(numbers: Sequence[str], preset: str = "quick", *, target: str | None = None,
                 out: str | os.PathLike | None = "figures", formats: Sequence[str] = ("png",), dpi: int = DEFAULT_DPI,
                 device="auto", seed: int = 0, workers: int | None = 1, parts_dir=None,
                 sizes: dict[str, dict] | None = None, on_event: Callable[[str], None] | None = None,
                 on_figure: Callable[[FigureOutput], None] | None = None) -> list[FigureOutput]:
    """Compute, check, plot and save the figures ``numbers``; see the module docstring.

    Parameters
    ----------
    workers
        Processes for the parts (None: :func:`default_workers`); 1 computes them in this process.
    parts_dir
        Folder for the parts (``figN.parts/``); None: a temporary folder.
    sizes
        ``figure -> {size: value}`` overrides.
    on_event, on_figure
        Called with a line of progress, and with each figure's output as soon as it is written.
    """
    sizes = sizes or {}
    say = on_event or (lambda line: None)
    workers = default_workers(preset, device) if workers is None else max(1, int(workers))
    start = time.perf_counter()
    outputs: dict[str, FigureOutput] = {}
    with _parts_folder(parts_dir) as folder:
        plan = {n: get_recipe(n).parts(preset, target, seed=seed, **sizes.get(n, {})) for n in numbers}
        waiting = {n: {p.name for p in parts} for n, parts in plan.items()}
        first_of: dict[str, tuple[str, str]] = {}       # settings hash -> (figure, part) computed
        copies: dict[tuple[str, str], list[tuple[str, str]]] = {}
        items = []
        for n, parts in plan.items():
            for part in parts:
                key = part.key
                if key in first_of:
                    copies.setdefault(first_of[key], []).append((n, part.name))
                    continue
                first_of[key] = (n, part.name)
                items.append(({"number": n, "name": part.name, "preset": preset, "target": target,
                               "out_dir": str(folder), "device": str(device), "seed": seed,
                               "sizes": sizes.get(n, {})}, part_cost(part)))
        items.sort(key=lambda pair: -pair[1])              # longest first
        total = len(items)
        seconds: dict[str, float] = {n: 0.0 for n in numbers}
        cpu: dict[str, float] = {n: 0.0 for n in numbers}

        def finished(result: dict, done: int) -> None:
            if not result["complete"]:
                raise RuntimeError(f"figure {result['number']} part {result['name']} stopped at "
                                   f"{100 * result['progress']:.0f} % (a callback asked it to stop)")
            number, name = result["number"], result["name"]
            say(f"  part fig{number}/{name}: {result['seconds']:.1f} s, {result['cpu_seconds']:.1f} s CPU "
                f"({done}/{total})")
            for target_number, target_name in [(number, name), *copies.get((number, name), [])]:
                if (target_number, target_name) != (number, name):
                    dest = part_path(folder, target_number, target_name)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(part_path(folder, number, name), dest)
                if target_number == number:
                    seconds[number] += result["seconds"]
                    cpu[number] += result["cpu_seconds"]
                waiting[target_number].discard(target_name)
                if not waiting[target_number]:
                    outputs[target_number] = _finish(target_number, preset, target, folder, out, formats, dpi,
                                                     seed, sizes.get(target_number, {}), start,
                                                     seconds[target_number], cpu[target_number])
                    if on_figure is not None:
                        on_figure(outputs[target_number])

        if workers == 1:
            for done, (item, _) in enumerate(items, start=1):
                finished(_compute(item), done)
        else:
            from ..sweep.executors import LocalExecutor

            say(f"  {total} part(s) in {workers} worker process(es), one torch thread each")
            with LocalExecutor(workers, threads=1) as pool:
                handles = [pool.submit(_compute, item) for item, _ in items]
                for done, handle in enumerate(pool.as_completed(handles), start=1):
                    finished(handle.result(), done)
    return [outputs[n] for n in numbers]


def _finish(number: str, preset: str, target, folder: Path, out, formats, dpi, seed: int, sizes: dict,
            start: float, parts_seconds: float, parts_cpu: float) -> FigureOutput:
    recipe = get_recipe(number)
    ds = recipe.assemble(folder, preset, target, seed=seed, **sizes)
    compute_seconds = time.perf_counter() - start
    ds.attrs["compute_seconds"] = compute_seconds
    ds.attrs["parts_seconds"] = parts_seconds
    ds.attrs["parts_cpu_seconds"] = parts_cpu
    t0 = time.perf_counter()
    fig = recipe.plot(ds)
    data_path, paths = None, []
    if out is not None:
        stem = Path(out) / f"fig{recipe.number}"
        data_path = save_dataset(ds, stem.with_suffix(".h5"))
        paths = save_figure(fig, stem, formats, dpi)
    return FigureOutput(recipe.number, ds, data_path, paths, compute_seconds, time.perf_counter() - t0, parts_seconds,
                        parts_cpu)


def make_figure(number: str, preset: str = "quick", *, target: str | None = None,
                out: str | os.PathLike | None = "figures", formats: Sequence[str] = ("png",), dpi: int = DEFAULT_DPI,
                device="auto", seed: int = 0, workers: int | None = 1, parts_dir=None, **sizes) -> FigureOutput:
    """Compute figure ``number`` through its parts, check its claims, save ``out/figN.h5`` and ``out/figN.<format>``.

    ``out=None`` computes and plots without writing the figure (parts go to ``parts_dir`` or a temporary folder).
    """
    number = get_recipe(number).number
    return make_figures([number], preset, target=target, out=out, formats=formats, dpi=dpi, device=device, seed=seed,
                        workers=workers, parts_dir=parts_dir, sizes={number: sizes})[0]
