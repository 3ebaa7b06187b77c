"""Run presets: the paper's setup (``paper``) and a CPU-minutes version (``quick``).

``paper`` follows the WINNER authors' scripts: audio = first 150,000 samples,
4 sine layers of width 222, SIREN first-layer omega 3000 (SIREN^2 uses 30 with
WINNER noise), hidden omega 30, Adam 1e-4 with StepLR(20, 0.99); images =
grayscale resized to 300 x 300, 5 layers of width 256, StepLR(20, 0.998).

``paper`` runs the loss through ``torch.compile`` (long runs repay the
compilation); ``quick`` stays eager unless ``compile=True`` is passed.

``quick`` keeps the bottleneck visible on a CPU in minutes: the first 2^14
samples, width 128, 500 epochs.  Cropping lowers every frequency measured in
cycles per domain by ``N / 150,000``, so SIREN's first-layer omega (3000) and
WINNER's s0 are both multiplied by that factor (``freq_scale``): the network's
initial frequency support then sits where it would on the full signal,
relative to Nyquist.  With it, SIREN on tetris stays at the zero-output PSNR
while SIREN^2 fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .models import build_model, list_models, model_parameters
from .models.base import INR
from .models.siren import _check_scale, check_size
from .signals import Target, load_target
from .training import TrainConfig
from .validation import check_known

__all__ = ["Preset", "PRESETS", "RunSpec", "make_run", "PAPER_AUDIO_SAMPLES",
           "SIREN_AUDIO_FIRST_OMEGA", "list_presets", "estimated_seconds"]

#: audio samples the paper fits (the authors' ``max_samples``)
PAPER_AUDIO_SAMPLES = 150_000
#: SIREN's first-layer omega for audio (Sitzmann et al. 2020; WINNER paper baseline)
SIREN_AUDIO_FIRST_OMEGA = 3000.0
#: models whose first-layer omega follows SIREN's audio value
_AUDIO_OMEGA_MODELS = ("siren", "siren_rff")


@dataclass(frozen=True)
class Preset:
    """Sizes and schedule for one preset; ``None`` sizes keep the target as loaded."""

    name: str
    audio_samples: int
    audio_width: int
    audio_depth: int
    audio_epochs: int
    audio_lr_gamma: float
    image_size: int | None
    image_width: int
    image_depth: int
    image_epochs: int
    image_lr_gamma: float
    compile: bool = False


PRESETS: dict[str, Preset] = {
    "quick": Preset("quick", audio_samples=2 ** 14, audio_width=128, audio_depth=4, audio_epochs=500,
                    audio_lr_gamma=0.99, image_size=128, image_width=128, image_depth=4,
                    image_epochs=300, image_lr_gamma=0.998),
    "paper": Preset("paper", audio_samples=PAPER_AUDIO_SAMPLES, audio_width=222, audio_depth=4,
                    audio_epochs=30_000, audio_lr_gamma=0.99, image_size=300, image_width=256,
                    image_depth=5, image_epochs=500, image_lr_gamma=0.998, compile=True),
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


@dataclass
class RunSpec:
    """Everything needed to rebuild one training run; ``to_dict()`` is stored with the run."""

    model: str
    model_kwargs: dict
    train: TrainConfig
    target: str
    target_kwargs: dict
    preset: str
    seed: int
    freq_scale: float = 1.0
    psi: float | None = None
    notes: list[str] = field(default_factory=list)

    def build_model(self, device=None) -> INR:
        return build_model(self.model, seed=self.seed, device=device, **self.model_kwargs)

    def to_dict(self) -> dict:
        return {"model": self.model, "model_kwargs": dict(self.model_kwargs),
                "train": self.train.to_dict(), "target": self.target,
                "target_kwargs": dict(self.target_kwargs), "preset": self.preset, "seed": self.seed,
                "freq_scale": self.freq_scale, "psi": self.psi, "notes": list(self.notes)}


def _load(target: str | Target, preset: Preset, num_samples, offset, seed) -> tuple[Target, dict]:
    if isinstance(target, Target):
        if num_samples is not None or offset:
            target = target.crop(num_samples, offset)
        return target, {}
    kwargs: dict = {"seed": seed}
    if target.startswith("synthetic:"):
        kwargs["n"] = _default(num_samples, preset.audio_samples)
        if target.split(":")[1] in ("low", "high") and num_samples is None:
            kwargs["n"] = 2 ** 12  # the Eqn 5 toy splits at N = 2^12
        loaded = load_target(target, n=kwargs["n"], seed=seed)
        if offset:
            loaded = loaded.crop(None, offset)
        return loaded, kwargs
    loaded = load_target(target, seed=seed)
    if loaded.spatial_dims == 1:
        kwargs.update(num_samples=_default(num_samples, min(preset.audio_samples, loaded.n - offset)),
                      offset=offset)
        loaded = loaded.crop(kwargs["num_samples"], offset)
    elif preset.image_size is not None:
        from .signals import load_image

        if target != "camera":
            loaded = load_image(target, gray=loaded.channels == 1, size=preset.image_size)
        else:
            loaded = _resize_target(loaded, preset.image_size)
        kwargs["size"] = preset.image_size
    return loaded, kwargs


def _resize_target(target: Target, size: int) -> Target:
    import torch.nn.functional as F

    grid = target.grid().permute(2, 0, 1)[None]
    resized = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0]
    values = resized.permute(1, 2, 0).reshape(size * size, target.channels)
    return replace(target, values=values.contiguous(), grid_shape=(size, size))


def _default(value, fallback):
    return fallback if value is None else value


def make_run(
    model: str,
    target: str | Target,
    preset: str = "quick",
    *,
    s0: float | None = None,
    s1: float | None = None,
    width: int | None = None,
    depth: int | None = None,
    epochs: int | None = None,
    num_samples: int | None = None,
    offset: int = 0,
    seed: int = 0,
    train_overrides: dict | None = None,
    **model_overrides,
) -> tuple[RunSpec, Target]:
    """Resolve a preset into a :class:`RunSpec` and the loaded target.

    WINNER scales (siren2) come from the target's psi via Eqn 11 unless ``s0``/
    ``s1`` are given; an explicit ``s0`` is used as is (no ``freq_scale``).

    Returns
    -------
    (RunSpec, Target)
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(list_presets())}")
    if model not in list_models():
        raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(list_models())}")
    if model != "siren2" and (s0 is not None or s1 is not None):
        raise ValueError(f"--s0/--s1 set WINNER noise and apply to siren2 only, not {model!r}")
    p = PRESETS[preset]
    loaded, target_kwargs = _load(target, p, num_samples, offset, seed)
    one_d = loaded.spatial_dims == 1
    scale = loaded.n / PAPER_AUDIO_SAMPLES if one_d else 1.0
    accepted = model_parameters(model)
    kwargs: dict = {"in_features": loaded.spatial_dims, "out_features": loaded.channels,
                    "width": _default(width, p.audio_width if one_d else p.image_width),
                    "depth": _default(depth, p.audio_depth if one_d else p.image_depth)}
    check_size(kwargs["width"], kwargs["depth"])
    spec_notes: list[str] = []
    if one_d and model in _AUDIO_OMEGA_MODELS:
        kwargs["first_omega"] = SIREN_AUDIO_FIRST_OMEGA * scale
    psi = None
    if model == "siren2":
        if s0 is None or s1 is None:
            psi = loaded.psi()
            auto_s0, auto_s1 = loaded.winner_scales()
            s0 = auto_s0 * scale if s0 is None else s0
            s1 = auto_s1 if s1 is None else s1
            spec_notes.append(f"WINNER scales from psi={psi:.4f} (Eqn 11, {loaded.winner_preset} preset)"
                              + (f", s0 scaled by N/{PAPER_AUDIO_SAMPLES}={scale:.4f}" if scale != 1 else ""))
        kwargs.update(s0=_check_scale("s0", s0), s1=_check_scale("s1", s1))
    for key, value in model_overrides.items():
        if value is not None:
            kwargs[key] = value
    check_known(kwargs, list(accepted), "argument", owner=f"model {model!r}")
    train = TrainConfig(epochs=_default(epochs, p.audio_epochs if one_d else p.image_epochs),
                        lr_gamma=p.audio_lr_gamma if one_d else p.image_lr_gamma, seed=seed,
                        **{"compile": p.compile, **(train_overrides or {})})
    spec = RunSpec(model=model, model_kwargs=kwargs, train=train,
                   target=target if isinstance(target, str) else target.name,
                   target_kwargs=target_kwargs, preset=preset, seed=seed, freq_scale=scale, psi=psi,
                   notes=spec_notes)
    return spec, loaded


#: CPU seconds per (sample x width^2 x layer) of one full-batch epoch on this project's 2-core machine:
#: the quick preset measured 0.085 s/epoch (bench_bottleneck.py: 11-13 epochs/s); paper-size audio
#: (150,000 samples, 4 x 222) measured 4-5 s/epoch there, i.e. 1.4-1.7e-10, so this is a rough middle value
CPU_SECONDS_PER_UNIT = 1.2e-10


def estimated_seconds(spec: RunSpec, n: int, seconds_per_unit: float = CPU_SECONDS_PER_UNIT) -> float:
    """Rough CPU time of a run: ``epochs x N x width^2 x depth x seconds_per_unit``."""
    width, depth = spec.model_kwargs["width"], spec.model_kwargs["depth"]
    return spec.train.epochs * n * width * width * depth * seconds_per_unit
