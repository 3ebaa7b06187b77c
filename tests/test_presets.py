"""Presets: frequency scaling of the quick preset, paper sizes, WINNER scales from psi."""

from __future__ import annotations

import pytest

from spectral_probe.presets import PAPER_AUDIO_SAMPLES, make_run
from spectral_probe.signals import load_target
from spectral_probe.winner import winner_scales


def test_quick_scales_siren_first_omega_and_winner_s0():
    spec, target = make_run("siren", "synthetic:broadband", "quick")
    scale = 2 ** 14 / PAPER_AUDIO_SAMPLES
    assert target.n == 2 ** 14 and spec.freq_scale == pytest.approx(scale)
    assert spec.model_kwargs["first_omega"] == pytest.approx(3000 * scale)
    spec2, target2 = make_run("siren2", "synthetic:broadband", "quick")
    s0, s1 = winner_scales(target2.psi())
    assert spec2.model_kwargs["s0"] == pytest.approx(s0 * scale)
    assert spec2.model_kwargs["s1"] == pytest.approx(s1)
    assert "first_omega" not in spec2.model_kwargs  # SIREN^2 keeps omega 30 (authors' code)
    assert spec2.model_kwargs["width"] == 128 and spec2.train.epochs == 500


def test_explicit_scales_and_sizes_win():
    spec, _ = make_run("siren2", "synthetic:high", "quick", s0=10, s1=0.5, width=64, depth=3, epochs=7)
    assert (spec.model_kwargs["s0"], spec.model_kwargs["s1"]) == (10.0, 0.5)
    assert (spec.model_kwargs["width"], spec.model_kwargs["depth"], spec.train.epochs) == (64, 3, 7)


def test_image_preset_resizes_and_uses_image_coefficients():
    spec, target = make_run("siren2", "camera", "quick")
    assert target.grid_shape == (128, 128) and spec.model_kwargs["in_features"] == 2
    assert spec.model_kwargs["s0"] == pytest.approx(winner_scales(target.psi(), "image")[0])


def test_paper_preset_sizes(tetris):
    spec, target = make_run("siren", str(tetris), "paper")
    assert target.n == PAPER_AUDIO_SAMPLES and spec.freq_scale == 1.0
    assert spec.model_kwargs["first_omega"] == 3000.0
    assert (spec.model_kwargs["width"], spec.model_kwargs["depth"]) == (222, 4)
    spec2, _ = make_run("siren2", str(tetris), "paper")
    assert spec2.model_kwargs["s0"] == pytest.approx(winner_scales(0.5732429916525842)[0], rel=1e-6)


def test_offset_crop(gt_bach):
    _spec, target = make_run("siren", str(gt_bach), "quick", offset=65536)
    full = load_target(str(gt_bach))
    assert target.n == 2 ** 14
    assert float((target.values - full.values[65536:65536 + 2 ** 14]).abs().max()) == 0.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(model="foo"), "unknown model"),
    (dict(preset="fast"), "unknown preset"),
    (dict(model="siren", s0=1.0), "apply to siren2 only"),
    (dict(s0=-1.0), "s0 must be"),
    (dict(width=0), "width must be"),
    (dict(epochs=0), "epochs must be"),
])
def test_bad_input(kwargs, match):
    args = dict(model="siren2", target="synthetic:high", preset="quick") | kwargs
    with pytest.raises(ValueError, match=match):
        make_run(args.pop("model"), args.pop("target"), args.pop("preset"), **args)
