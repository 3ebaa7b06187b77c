"""Run presets: the paper's protocol (``paper``) and a CPU-minutes version (``quick``).

Every setting of ``paper`` is taken from Chandravamsi et al., arXiv 2509.09719; the
section, table or equation is cited beside each constant below.

``paper`` -- audio follows Table 1's protocol (Sec 5.1): the first 150,000 samples,
30,000 epochs, five trials (:data:`PAPER_TRIALS`), Adam from 1e-4 decaying 1 % every 20
epochs, inputs and targets in [-1, 1], the width of each architecture from Table 1
(:data:`PAPER_AUDIO_WIDTHS`: 4 x 222 for SIREN, FINER, FINER++ and SIREN^2, 4 x 157
complex units for WIRE, 4 x 193 for ReLU-PE and SIREN-RFF) and its reproducibility details
(:data:`PAPER_AUDIO_MODEL_KWARGS`), and the first-layer omega of every architecture but
SIREN^2 scaled by 100 (:data:`FIRST_OMEGA_SCALE`; SIREN: 30 x 100 = 3000).  Images
follow Sec 5.2: four layers of 256 (Table 2), the audio settings otherwise (Sec 5.2
"All networks follow the same settings as the audio fitting experiments, with no scaling
applied to the first layer omega0"), at the file's own resolution (the paper states no
resizing, and Table 6's image psi is reproduced at 512 x 512, not at 300 x 300).

The paper is inconsistent about SIREN^2's first layer: Sec 5 (first paragraph) says
"all architectures, except SIREN^2, use a scaling factor of 100", Sec 5.1's
reproducibility details "For all networks, the first-layer omega0 is scaled by 100".
``omega_rule="sec5"`` (default, also the authors' scripts) leaves SIREN^2 at 30;
``omega_rule="all"`` is the literal reading of Sec 5.1 (SIREN^2 at 3000).  The default
is the better-founded one: WINNER's layer-1 noise N(0, (s0/30)^2) already puts SIREN^2's
first-layer frequencies at the scale s0 ~ 3436 (tetris, Table 6) that the x100 rule gives
the other networks (3000); multiplying them by another 100 pushes them past the Nyquist
frequency, and on the quick preset's tetris crop SIREN^2 reaches 54.8 dB instead of 77.4
(benchmarks/README.md, "Table 1 protocol").

``quick`` keeps the bottleneck visible on a CPU in minutes: the first 2^14 samples, width
128, 500 epochs.  Cropping lowers every frequency measured in cycles per domain by
``N / 150,000``, so the x100 first-layer omegas (SIREN 3000) and WINNER's s0 are
multiplied by that factor (``freq_scale``): the network's initial frequency support then
sits where it would on the full signal, relative to Nyquist.  With it, SIREN on tetris
stays at the zero-output PSNR while SIREN^2 fits.  WINNER's s0, s1 come from the psi of
the samples trained on (``Target.psi()``'s default convention; on ``paper`` that is
Table 6's first 150,000 samples).

``paper`` runs the loss through ``torch.compile`` (long runs repay the
compilation); ``quick`` stays eager unless ``compile=True`` is passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from ..models import build_model, list_models, model_parameters
from ..models.base import INR
from ..models.siren import _check_scale, check_size
from ..signals import EQN5_BANDS, Target, load_target
from ..sizes import check_samples, check_training
from ..validation import check_known, positive_int
from .loop import TrainConfig

__all__ = ["Preset", "PRESETS", "RunSpec", "make_run", "PAPER_AUDIO_SAMPLES", "PAPER_AUDIO_EPOCHS",
           "PAPER_TRIALS", "PAPER_LR", "PAPER_LR_STEP", "PAPER_LR_GAMMA", "FIRST_OMEGA_SCALE",
           "FIRST_OMEGA_MODELS", "OMEGA_RULES", "PAPER_AUDIO_WIDTHS", "PAPER_AUDIO_MODEL_KWARGS",
           "SIREN_AUDIO_FIRST_OMEGA", "list_presets", "estimated_seconds", "first_omega"]

#: Sec 5.1: "all audio signals are fixed at a length of 150,000 samples"
PAPER_AUDIO_SAMPLES = 150_000
#: Sec 5.1: "Each network is trained for 30,000 epochs"
PAPER_AUDIO_EPOCHS = 30_000
#: Sec 5.1: "every experiment is conducted over five random trials"
PAPER_TRIALS = 5
#: Sec 5.1 reproducibility details: "a learning-rate scheduler that decays by 1% every 20 epochs from an
#: initial value of 10^-4" (also the Conclusions' recommendation, "1-2% every 20 epochs", for images)
PAPER_LR, PAPER_LR_STEP, PAPER_LR_GAMMA = 1e-4, 20, 0.99
#: Sec 5 and Sec 5.1: the first-layer omega0 is scaled by 100 for audio ("Following the recommendation in [1]")
FIRST_OMEGA_SCALE = 100.0
#: models whose first-layer omega0 the x100 rule scales, with their unscaled value (Sec 5.1: SIREN, FINER,
#: FINER++ and SIREN-RFF use omega0 = 30, WIRE omega0 = 10); SIREN^2 only under omega_rule="all"
FIRST_OMEGA_MODELS: Mapping[str, float] = MappingProxyType(
    {"siren": 30.0, "finer": 30.0, "finerpp": 30.0, "siren_rff": 30.0, "wire": 10.0})
#: SIREN's first-layer omega for audio: 30 x 100 (Sec 5.1)
SIREN_AUDIO_FIRST_OMEGA = FIRST_OMEGA_MODELS["siren"] * FIRST_OMEGA_SCALE
#: "sec5": every architecture but SIREN^2 (Sec 5, first paragraph; default); "all": SIREN^2 too (Sec 5.1)
OMEGA_RULES = ("sec5", "all")
#: Table 1, "Hidden layers": 4 x 222 (SIREN, FINER, FINER++, SIREN^2), 4 x 157 (WIRE), 4 x 193 (ReLU-PE,
#: SIREN-RFF).  Our WIRE divides ``width`` by sqrt(2) for its complex units, so 223 gives the paper's 157
#: (149,466 parameters; Table 1: 149,474).
PAPER_AUDIO_WIDTHS: Mapping[str, int] = MappingProxyType(
    {"siren": 222, "finer": 222, "finerpp": 222, "siren2": 222, "wire": 223, "relu_pe": 193, "siren_rff": 193})
#: Sec 5.1 reproducibility details, per architecture: WIRE omega0 = 10 and s0 = 10; SIREN-RFF Fourier
#: embeddings from N(0, 30^2), 97 frequencies (194 inputs: Table 1's 150,155 parameters exactly); FINER++
#: first-layer bias U(-5, 5).  ReLU-PE: Table 1's "193 Fourier features" would need octaves up to 2^95 pi
#: with our NeRF encoding; we use 17 octaves (2^0 .. 2^16 pi, up to the Nyquist frequency of 150,000
#: samples on [-1, 1]), 119,468 parameters instead of 150,155.
PAPER_AUDIO_MODEL_KWARGS: Mapping[str, Mapping[str, object]] = MappingProxyType({
    "wire": {"omega": 10.0, "scale": 10.0},
    "siren_rff": {"sigma": 30.0, "num_features": 97},
    "finerpp": {"bias_scale": 5.0},
    "relu_pe": {"num_frequencies": 17},
})


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
    #: per-model hidden widths for 1-D targets (overriding ``audio_width``)
    audio_widths: Mapping[str, int] = field(default_factory=dict)
    #: per-model architecture arguments for 1-D targets
    audio_model_kwargs: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "quick": Preset("quick", audio_samples=2 ** 14, audio_width=128, audio_depth=4, audio_epochs=500,
                    audio_lr_gamma=PAPER_LR_GAMMA, image_size=128, image_width=128, image_depth=4,
                    image_epochs=300, image_lr_gamma=PAPER_LR_GAMMA),
    # Sec 5.1 / Table 1 (audio), Sec 5.2 / Table 2 (images): see the module docstring
    "paper": Preset("paper", audio_samples=PAPER_AUDIO_SAMPLES, audio_width=222, audio_depth=4,
                    audio_epochs=PAPER_AUDIO_EPOCHS, audio_lr_gamma=PAPER_LR_GAMMA, image_size=None,
                    image_width=256, image_depth=4, image_epochs=PAPER_AUDIO_EPOCHS,
                    image_lr_gamma=PAPER_LR_GAMMA, compile=True, audio_widths=PAPER_AUDIO_WIDTHS,
                    audio_model_kwargs=PAPER_AUDIO_MODEL_KWARGS),
}


def first_omega(model: str, n: int, omega_rule: str = "sec5") -> float | None:
    """First-layer omega of ``model`` on a 1-D target of ``n`` samples under the x100 rule (Sec 5.1).

    ``base x 100 x n / 150,000`` for the models of :data:`FIRST_OMEGA_MODELS` (and SIREN^2 under
    ``omega_rule="all"``, base 30); None for models the rule leaves alone.
    """
    check_known([omega_rule], OMEGA_RULES, "omega_rule", exc=ValueError)
    base = FIRST_OMEGA_MODELS.get(model, 30.0 if (model == "siren2" and omega_rule == "all") else None)
    return None if base is None else base * FIRST_OMEGA_SCALE * n / PAPER_AUDIO_SAMPLES


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
        if target.split(":")[1] in EQN5_BANDS and num_samples is None:
            kwargs["n"] = 2 ** 12  # the Eqn 5 toy pair: N = 2^12 unless num_samples says otherwise
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
        from ..signals import load_image

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
    omega_rule: str = "sec5",
    train_overrides: dict | None = None,
    **model_overrides,
) -> tuple[RunSpec, Target]:
    """Resolve a preset into a :class:`RunSpec` and the loaded target.

    WINNER scales (siren2) come from the target's psi via Eqn 11 unless ``s0``/
    ``s1`` are given; an explicit ``s0`` is used as is (no ``freq_scale``).
    ``omega_rule`` says which models get the x100 first-layer omega on 1-D targets
    (:data:`OMEGA_RULES`; see the module docstring).

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
    check_known([omega_rule], OMEGA_RULES, "omega_rule", exc=ValueError)
    p = PRESETS[preset]
    if num_samples is not None:
        check_samples(positive_int(num_samples, "num_samples"))    # before a target of that size is made
    loaded, target_kwargs = _load(target, p, num_samples, offset, seed)
    one_d = loaded.spatial_dims == 1
    scale = loaded.n / PAPER_AUDIO_SAMPLES if one_d else 1.0
    accepted = model_parameters(model)
    kwargs: dict = {"in_features": loaded.spatial_dims, "out_features": loaded.channels,
                    "width": _default(width, p.audio_widths.get(model, p.audio_width) if one_d else p.image_width),
                    "depth": _default(depth, p.audio_depth if one_d else p.image_depth)}
    check_size(kwargs["width"], kwargs["depth"])
    spec_notes: list[str] = []
    if one_d:
        kwargs.update(p.audio_model_kwargs.get(model, {}))
        omega = first_omega(model, loaded.n, omega_rule)
        if omega is not None:
            kwargs["first_omega"] = omega
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
    train = TrainConfig(**{"epochs": _default(epochs, p.audio_epochs if one_d else p.image_epochs),
                           "lr": PAPER_LR, "lr_step": PAPER_LR_STEP,
                           "lr_gamma": p.audio_lr_gamma if one_d else p.image_lr_gamma, "seed": seed,
                           "compile": p.compile, **(train_overrides or {})})
    check_training(loaded.n, kwargs["width"], kwargs["depth"], loaded.spatial_dims, loaded.channels,
                   batch_size=train.batch_size)
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
