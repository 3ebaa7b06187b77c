"""``spectral-probe models``: the architectures, their constructor defaults, and what each preset trains.

The preset columns are not a copy of the preset tables: each is the :class:`~spectral_probe.training.presets.RunSpec`
that :func:`~spectral_probe.training.presets.make_run` resolves for a stand-in target of the preset's size
(a 1-D signal of the preset's audio length, a square image of its image size), so they follow
any change of the presets.
"""

from __future__ import annotations

import math

import click

__all__ = ["models", "preset_specs", "model_table", "PRESET_COLUMNS"]

#: (preset, spatial dims) of each preset column
PRESET_COLUMNS = (("quick", 1), ("quick", 2), ("paper", 1), ("paper", 2))
#: TrainConfig fields shown below the model arguments
_TRAIN_FIELDS = ("epochs", "lr", "lr_step", "lr_gamma", "compile")
#: stand-in image side when a preset keeps images at their own size
_IMAGE_SIDE = 64


def _stand_in(preset: str, dims: int):
    """A random target with the preset's 1-D length or image size (what make_run sizes the run from)."""
    import torch

    from ..training.presets import PRESETS
    from ..signals import Target

    p = PRESETS[preset]
    shape = (p.audio_samples,) if dims == 1 else (p.image_size or _IMAGE_SIDE,) * 2
    gen = torch.Generator().manual_seed(0)
    values = torch.rand(math.prod(shape), 1, generator=gen) * 2 - 1
    return Target(values, shape, name=f"{preset} {dims}-D stand-in", kind="audio" if dims == 1 else "image")


def preset_specs(model: str) -> dict[str, object]:
    """``"quick 1-D" -> RunSpec`` for each of :data:`PRESET_COLUMNS` (from :func:`make_run`)."""
    from ..training.presets import make_run

    return {f"{preset} {dims}-D": make_run(model, _stand_in(preset, dims), preset,
                                           train_overrides={"device": "cpu"})[0]
            for preset, dims in PRESET_COLUMNS}


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_table(model: str) -> list[list[str]]:
    """Rows ``[argument, default, <preset columns>...]`` for ``model`` (header first)."""
    from ..models import model_parameters
    from ..training.loop import TrainConfig

    specs = preset_specs(model)
    rows = [["argument", "default", *specs]]
    for key, default in model_parameters(model).items():
        cells = []
        for spec in specs.values():
            value = spec.model_kwargs.get(key, default)
            if key == "out_features":
                value = "channels"
            elif key in ("s0", "s1") and spec.psi is not None:
                scaled = key == "s0" and spec.freq_scale != 1.0
                value = "Eqn 11 x N/150000" if scaled else "Eqn 11"
            cells.append(_fmt(value))
        rows.append([key, _fmt(default), *cells])
    defaults = TrainConfig()
    for field in _TRAIN_FIELDS:
        rows.append([field, _fmt(getattr(defaults, field)), *(_fmt(getattr(s.train, field)) for s in specs.values())])
    return rows


def _notes() -> list[str]:
    from ..training.presets import PAPER_AUDIO_SAMPLES, PRESETS

    sizes = "; ".join(f"{name}: 1-D first {p.audio_samples:,} samples, images "
                      + (f"{p.image_size} x {p.image_size}" if p.image_size else "as loaded")
                      for name, p in PRESETS.items())
    return [f"Presets ({sizes}).",
            f"For 1-D crops of N samples, SIREN's first omega and WINNER's s0 scale with N/{PAPER_AUDIO_SAMPLES:,} "
            "(shown for N = the preset's length); Eqn 11: WINNER scales from the target's spectral centroid psi.",
            "Change any value with --set KEY=VALUE (or --width, --depth, --epochs, --lr, --first-omega, ...)."]


@click.command("models")
@click.argument("names", nargs=-1)
def models(names: tuple[str, ...]) -> None:
    """List the architectures: constructor defaults and the values the quick and paper presets use.

    NAMES restricts the list (default: every model).
    """
    from ..models import MODELS, list_models
    from ..validation import check_known

    check_known(names, list_models(), "model", exc=ValueError)
    for name in names or list_models():
        doc = (MODELS[name].__doc__ or "").strip().splitlines()
        click.echo(f"{name}: {doc[0].replace('``', '') if doc else ''}")
        rows = model_table(name)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            click.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        click.echo("")
    for line in _notes():
        click.echo(line)
