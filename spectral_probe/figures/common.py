"""Helpers shared by the figure recipes: targets, inputs, training runs of parts, saving.

Only the public API of the rest of the package is used: :func:`~spectral_probe.training.presets.make_run`,
:func:`~spectral_probe.training.fit`, :class:`~spectral_probe.probes.Probe`,
:mod:`spectral_probe.probes.stats` and :mod:`spectral_probe.signals`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import xarray as xr

from ..cadence import check_every, completed_epochs, is_due
from ..models import build_model
from ..training.presets import RunSpec, make_run
from ..probes import Probe
from ..signals import Target, grid_coords, load_target
from ..signals.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from ..training.loop import Callback, FitResult, fit

__all__ = ["run_settings", "training_work", "train_part", "CPU_GEMM_FLOPS", "DEFAULT_AUDIO_TARGET", "DEFAULT_IMAGE_TARGET", "training_preset",
           "check_target_spec", "audio_target_spec", "target_caption", "PAPER_AUDIO_TARGET", "audio_offset", "image_target_spec", "image_target",
           "resize_image", "grid_inputs", "clear_run_cache",
           "init_activations", "json_attr", "save_dataset", "maybe_save", "load_dataset"]

#: the paper's high-frequency-dominated audio target (Sec 2.1, Figs 2, 3, 14)
PAPER_AUDIO_TARGET = "tetris.wav"
#: bundled stand-in for tetris.wav: flat spectrum above 0.15 x Nyquist (psi ~ 0.575, tetris 0.573)
DEFAULT_AUDIO_TARGET = "synthetic:broadband"
#: image used when --target is not an image (scikit-image's camera)
DEFAULT_IMAGE_TARGET = "camera"

#: float32 GEMM rate of one core of the project's 2-core CPU machine (MKL; Fig 13 forward passes), for estimates
CPU_GEMM_FLOPS = 3e10


def training_preset(preset: str) -> str:
    """Training preset of :mod:`spectral_probe.training.presets` behind a figure preset (``test`` -> ``quick``)."""
    return "paper" if preset == "paper" else "quick"


def _kind(spec: str) -> str:
    """``"audio"``, ``"image"`` or ``"synthetic"`` from a target spec (no loading)."""
    if spec.startswith("synthetic:"):
        return "synthetic"
    if spec == "camera":
        return "image"
    suffix = Path(spec).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise ValueError(f"cannot tell what target {spec!r} is; give an audio file (.wav, .flac, ...), an "
                     "image file (.png, .jpg, ...), 'camera' or a synthetic:... spec")


def check_target_spec(spec: str | None) -> str | None:
    """Validate a ``--target`` early: the file must exist and be readable as audio or image.

    Returns
    -------
    str or None
        ``"audio"``, ``"image"``, ``"synthetic"`` or None when no target was given.
    """
    if spec is None:
        return None
    kind = _kind(spec)
    if kind == "synthetic":
        load_target(spec, n=256)     # parses the spec
    else:
        load_target(spec)            # finds and reads the file
    return kind


def audio_target_spec(target: str | None, prefer_data: bool = False) -> str:
    """The 1-D target of a figure: ``target`` when it is audio or synthetic, else the bundled stand-in.

    With ``prefer_data`` and no ``target``, the paper's tetris.wav when ``$SPECTRAL_PROBE_DATA``
    (or the path as given) has it.
    """
    if target is not None and _kind(target) != "image":
        return target
    if prefer_data:
        from ..signals.io import resolve_data_path

        try:
            resolve_data_path(PAPER_AUDIO_TARGET)
            return PAPER_AUDIO_TARGET
        except FileNotFoundError:
            pass
    return DEFAULT_AUDIO_TARGET


def target_caption(spec: str, name: str) -> str:
    """How a figure title names its target: the file, or the stand-in for tetris.wav."""
    if spec == DEFAULT_AUDIO_TARGET:
        return f"{spec}, a stand-in for tetris.wav (flat spectrum above 0.15 x Nyquist)"
    return name if not spec.startswith("synthetic:") else spec


def audio_offset(target: str, offset: int) -> dict:
    """``{"offset": offset}`` for an audio file, ``{}`` for synthetic targets (generated from sample 0)."""
    if offset and _kind(target) == "audio":
        return {"offset": int(offset)}
    return {}


def resize_image(target: Target, size: int) -> Target:
    """Area-average a 2-D target to ``size x size`` (keeps values in ``[-1, 1]``)."""
    if target.spatial_dims != 2:
        raise ValueError(f"resize_image needs a 2-D target, got grid {target.grid_shape}")
    grid = target.grid().permute(2, 0, 1)[None]
    small = torch.nn.functional.interpolate(grid, size=(size, size), mode="area")[0]
    values = small.permute(1, 2, 0).reshape(size * size, target.channels).contiguous()
    return replace(target, values=values, grid_shape=(size, size),
                   meta=dict(target.meta, resized_to=[size, size]))


def image_target_spec(target: str | None) -> str:
    """The image of a figure: ``target`` when it is an image, else the bundled camera."""
    return target if target is not None and _kind(target) == "image" else DEFAULT_IMAGE_TARGET


def image_target(target: str | None, size: int | None) -> Target:
    """The 2-D target of a figure (:func:`image_target_spec`), grayscale, resized to ``size``."""
    loaded = load_target(image_target_spec(target))
    if loaded.channels > 1:
        gray = loaded.values.mean(dim=1, keepdim=True)   # luminance stand-in; the paper fits grayscale
        loaded = replace(loaded, values=gray)
    return loaded if size is None else resize_image(loaded, int(size))


def grid_inputs(n: int, device=None) -> torch.Tensor:
    """``linspace(-1, 1, n)`` as model inputs, shape ``(n, 1)``."""
    return grid_coords((int(n),), device=device)


#: TrainConfig fields that do not change a run's result (left out of a part's settings)
_NOT_RESULT = ("device", "progress", "log_every")


def run_settings(spec: RunSpec, target_id, **extra) -> dict:
    """A training run as part settings: the :class:`RunSpec` (without device and logging) and the target."""
    run = spec.to_dict()
    run["train"] = {k: v for k, v in run["train"].items() if k not in _NOT_RESULT}
    run.pop("notes", None)
    return {"run": run, "target": target_id, **extra}


def training_work(spec: RunSpec, target: Target):
    """The :class:`~spectral_probe.figures.parts.TrainingWork` of one run (for time estimates)."""
    from .parts import TrainingWork

    return TrainingWork(spec.model, int(target.n), int(target.spatial_dims), int(spec.model_kwargs["width"]),
                        int(spec.model_kwargs["depth"]), int(spec.train.epochs))


def train_part(part, ctx, spec: RunSpec, target: Target, *, index: int = 0, probes: Sequence = (),
               callbacks: Sequence = ()):
    """Train one run of ``part``: into its run file (resumed) when ``ctx.out_dir`` is set, else in memory.

    Returns ``(model, FitResult, complete)`` (:func:`~spectral_probe.figures.parts.train_part_run`).
    """
    from .parts import train_part_run

    return train_part_run(spec, target, ctx.run_path(part, index), probes=probes,
                          callbacks=[*ctx.callbacks, *callbacks])


def clear_run_cache() -> None:
    """Forget the figure parts computed in memory in this process (``Recipe.compute`` reuses them by settings)."""
    from .parts import MEMORY_PARTS

    MEMORY_PARTS.clear()


def init_activations(name: str, n: int, bins: int, *, device="auto", seed: int = 0,
                     layers: str | Sequence[str] = "*", **model_kwargs) -> xr.Dataset:
    """Activation statistics of a freshly initialised model on ``linspace(-1, 1, n)``.

    Returns
    -------
    xr.Dataset
        The probe's layout without the step axis: ``hist (layer, kind, bin)``,
        ``hist_edges (layer, kind, edge)``, ``psd (layer, kind, freq)``, ``act_std`` ...
    """
    from ..devices import resolve_device

    dev = resolve_device(device)
    model = build_model(name, seed=seed, device=dev, **model_kwargs)
    probe = Probe(layers, every=1, bins=bins, bin_range="first", psd="mean")
    probe.step(0, model, grid_inputs(n, dev), force=True)
    return probe.to_dataset().isel(step=0, drop=True)


def json_attr(value) -> str:
    """A JSON string for a dataset attribute (netCDF attributes hold no dicts)."""
    return json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as HDF5 (netCDF4 via h5netcdf); read it back with :func:`load_dataset`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def maybe_save(ds: xr.Dataset, out: str | os.PathLike | None, name: str) -> xr.Dataset:
    """Save ``ds`` to ``out`` (a ``.h5`` file, or a folder that receives ``<name>.h5``) when given."""
    if out is not None:
        path = Path(out)
        save_dataset(ds, path if path.suffix in (".h5", ".nc") else path / f"{name}.h5")
    return ds


def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a figure's data file into memory."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
