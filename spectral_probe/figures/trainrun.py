"""The probed training runs behind Figs 3 and 14: one part per model, shared when the settings agree.

A run fits ``--target`` (else tetris.wav from ``$SPECTRAL_PROBE_DATA`` on the quick and paper
presets, else the stand-in ``synthetic:broadband``) with :func:`spectral_probe.training.presets.make_run`
(SIREN: first omega 3000 x N/150,000; SIREN^2: first omega 30 and WINNER scales from Eqn 11, s0
x N/150,000), keeps the final state (no best-state restore: "epoch 10^4" means the model after
10^4 updates), and records a :class:`~spectral_probe.figures.recorders.ProbeSummary` of the hidden
pre-activations and the output at log-spaced steps (dense early: ``probe_log`` steps) and every
``probe_every`` epochs, plus the final state.  Fig 3 uses the SIREN run, Fig 14 both; at equal
sizes they are the same part (computed once by :func:`~spectral_probe.figures.build.make_figures`).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..cadence import Steps, log_steps
from ..training.presets import PRESETS, RunSpec, estimated_seconds, make_run
from ..training.loop import TrainConfig
from .common import (audio_offset, audio_target_spec, json_attr, run_settings, target_caption, train_part,
                     training_preset, training_work)
from .parts import FigurePart, target_settings
from .recorders import ProbeSummary

__all__ = ["run_target", "probe_steps", "run_parts", "compute_run_part", "run_seconds", "loaded_target",
           "highest_energy_window", "hidden_layers", "estimate_runs"]


def run_target(ctx) -> str:
    """The target spec of the runs (tetris.wav preferred on the quick and paper presets)."""
    return audio_target_spec(ctx.target, prefer_data=ctx.preset != "test")


def probe_steps(sz: dict) -> Steps:
    """Probe steps: ``probe_log`` log-spaced steps up to ``epochs``, every ``probe_every`` epochs, and ``epochs``."""
    epochs = int(sz["epochs"])
    steps = set(log_steps(epochs, int(sz["probe_log"]), every=int(sz["probe_every"]))) if sz["probe_log"] else \
        set(range(0, epochs + 1, int(sz["probe_every"]))) | {epochs}
    return Steps(steps)


def _spec(ctx, model: str):
    sz = ctx.sizes
    spec_name = run_target(ctx)
    return make_run(model, spec_name, training_preset(ctx.preset), num_samples=sz["num_samples"],
                    **audio_offset(spec_name, sz.get("offset", 0)), width=sz["width"], depth=sz["depth"],
                    epochs=sz["epochs"], seed=ctx.seed, train_overrides={"device": ctx.device, "restore_best": False})


def loaded_target(ctx):
    """The target as trained on (cropped)."""
    return _spec(ctx, "siren")[1]


def run_parts(ctx, models) -> list[FigurePart]:
    """One part per model, named after it; the settings hold the run, the target and the probe schedule."""
    ident = target_settings(run_target(ctx))
    out = []
    for model in models:
        spec, loaded = _spec(ctx, model)
        settings = run_settings(spec, ident, offset=ctx.sizes.get("offset", 0), probe=list(probe_steps(ctx.sizes)),
                                bins=ctx.sizes["bins"], recorder="ProbeSummary")
        out.append(FigurePart(model, settings, (training_work(spec, loaded),)))
    return out


def compute_run_part(part: FigurePart, ctx):
    """Train one model with its probe summary; ``(Dataset, 1.0)``, or ``(None, progress)`` when stopped."""
    spec, loaded = _spec(ctx, part.name)
    summary = ProbeSummary(probe_steps(ctx.sizes), bins=ctx.sizes["bins"])
    model, result, complete = train_part(part, ctx, spec, loaded, probes=[summary])
    if not complete:
        return None, result.epochs_run / spec.train.epochs
    coords = loaded.coords(device=next(model.parameters()).device)
    summary.record(result.epochs_run, model, coords)                 # the final state, after the last update
    with torch.no_grad():
        output = model(coords)[:, 0].float().cpu().numpy()
    ds = summary.to_dataset()
    ds["psnr"] = ("train_epoch", np.asarray(result.history["psnr"], dtype=np.float64))
    ds = ds.assign_coords(train_epoch=result.history["epoch"] + 1)
    ds["output"] = ("sample", output)
    ds.attrs.update({"best_psnr": float(result.best_psnr), "final_psnr": float(result.final_psnr),
                     "epochs": int(result.epochs_run), "config": json_attr(spec.to_dict()),
                     "target_spec": run_target(ctx), "target_name": loaded.name, "n": int(loaded.n),
                     "psi": float(loaded.psi()), "zero_psnr": float(loaded.zero_psnr()),
                     "target_caption": target_caption(run_target(ctx), loaded.name),
                     "offset": int(ctx.sizes.get("offset", 0))})
    return ds, 1.0


def run_seconds(sz: dict, preset: str, models: int) -> float:
    """CPU seconds of ``models`` runs (:func:`spectral_probe.training.presets.estimated_seconds`, +15 % for the probes)."""
    p = PRESETS[training_preset(preset)]
    spec = RunSpec(model="siren", model_kwargs={"width": sz["width"] or p.audio_width, "depth": sz["depth"]},
                   train=TrainConfig(epochs=sz["epochs"] or p.audio_epochs), target="", target_kwargs={},
                   preset=preset, seed=0)
    return models * 1.15 * estimated_seconds(spec, sz["num_samples"] or p.audio_samples)


def estimate_runs(figure: str, preset: str, models: int) -> float:
    """CPU seconds of a figure's ``models`` runs (:func:`run_seconds` at its sizes)."""
    from .sizes import figure_sizes

    return run_seconds(figure_sizes(figure, preset), preset, models)


def hidden_layers(ds: xr.Dataset) -> list[str]:
    """The hidden layers (``layers.i``) of a summary's ``layer`` axis."""
    return [str(v) for v in ds.layer.values if str(v).startswith("layers.")]


def highest_energy_window(x: np.ndarray, width: int) -> int:
    """Start of the ``width``-sample span of ``x`` with the largest energy (sum of squares)."""
    width = max(1, min(int(width), x.size))
    energy = np.convolve(np.asarray(x, dtype=np.float64) ** 2, np.ones(width), mode="valid")
    return int(np.argmax(energy))


def target_values(ctx) -> np.ndarray:
    """The cropped target's first channel (float64)."""
    return loaded_target(ctx).values[:, 0].double().numpy()


def ends(ds: xr.Dataset) -> xr.Dataset:
    """First and last probe steps of a run's summary, relabelled ``epoch``."""
    steps = ds.step.values
    return ds.sel(step=[steps[0], steps[-1]]).rename(step="epoch")
