"""Spectral centroid (Eqn 10) against closed forms and Table 6; noise scales (Eqn 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spectral_probe.signals import load_audio
from spectral_probe.winner import WINNER_PRESETS, spectral_centroid, winner_scales


def _cos(n, k, amp=1.0):
    return amp * np.cos(2 * np.pi * k * np.arange(n) / n)


def test_pure_tone_centroid_is_its_bin():
    # all magnitude sits in rfft bin k, whose frequency is k/N cycles/sample -> psi = 2k/N
    n, k = 1024, 100
    assert spectral_centroid(_cos(n, k)) == pytest.approx(2 * k / n, abs=1e-12)


def test_two_tones_magnitude_weighted():
    n = 2048
    x = _cos(n, 10, 3.0) + _cos(n, 500, 1.0)
    expected = 2 * (3.0 * 10 + 1.0 * 500) / (n * (3.0 + 1.0))
    assert spectral_centroid(x) == pytest.approx(expected, abs=1e-12)


def test_multichannel_mean_and_authors_normalisation():
    n = 512
    x = np.stack([_cos(n, 32), _cos(n, 128)], axis=1)
    mean = (2 * 32 / n + 2 * 128 / n) / 2
    assert spectral_centroid(x) == pytest.approx(mean, abs=1e-12)
    assert spectral_centroid(x, channel_norm="authors") == pytest.approx(mean / 2, abs=1e-12)


def test_2d_methods_on_a_separable_grating():
    h, w, k = 64, 128, 16
    img = np.tile(_cos(w, k), (h, 1))
    for method in ("rows", "flatten", "radial"):
        assert spectral_centroid(img, method=method) == pytest.approx(2 * k / w, abs=1e-12), method
    rgb = np.stack([img, img, img], axis=-1)
    assert spectral_centroid(rgb) == pytest.approx(2 * k / w, abs=1e-12)


def test_bad_signals_are_refused():
    with pytest.raises(ValueError, match="all zeros"):
        spectral_centroid(np.zeros(100))
    with pytest.raises(ValueError, match="NaN"):
        spectral_centroid(np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="at least 2 samples"):
        spectral_centroid(np.ones(1))
    with pytest.raises(ValueError, match="unknown centroid method"):
        spectral_centroid(np.ones((8, 8)), method="foo")
    with pytest.raises(TypeError, match="real numeric"):
        spectral_centroid(np.ones(8, dtype=complex))


def test_eqn11_closed_form_and_presets():
    s0, s1 = winner_scales(0.5732)
    assert s0 == pytest.approx(3500 * (1 - math.exp(-7 * 0.5732)))
    assert s1 == pytest.approx(3 * 0.5732)
    s0_text, _ = winner_scales(0.5732, "audio-text")
    assert s0_text == pytest.approx(3500 * (1 - math.exp(-5 * 0.5732)))
    s0_img, s1_img = winner_scales(0.3, "image")
    assert (s0_img, s1_img) == pytest.approx((50 * (1 - math.exp(-1.5)), 0.12))
    assert winner_scales(0.6, channels=3) == pytest.approx(winner_scales(0.2))
    assert WINNER_PRESETS["audio"].a == 7.0


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_eqn11_rejects_bad_psi(bad):
    with pytest.raises(ValueError, match="psi must be"):
        winner_scales(bad)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown WINNER preset 'video'"):
        winner_scales(0.1, "video")


@pytest.mark.parametrize("fixture,psi", [("tetris", 0.5732), ("gt_bach", 0.0737)])
def test_table6_psi_from_real_audio(fixture, psi, request):
    path = request.getfixturevalue(fixture)
    target = load_audio(path, num_samples=150_000)
    assert round(target.psi(), 4) == psi


@pytest.mark.parametrize("fixture,psi,s0,s1", [("tetris", 0.5732, 3436, 1.72), ("gt_bach", 0.0737, 1410, 0.22)])
def test_psi_conventions_on_real_audio(fixture, psi, s0, s1, request):
    """``load_target(path)`` holds the whole file: the default convention uses it, ``table6`` the first 150,000."""
    from spectral_probe import load_target

    path = request.getfixturevalue(fixture)
    whole = load_target(str(path))
    assert whole.n > 150_000
    assert round(whole.psi(), 4) != psi                                   # the crop decides ...
    assert round(whole.psi(convention="table6"), 4) == psi                # ... unless Table 6's convention is asked
    ours_s0, ours_s1 = whole.winner_scales(convention="table6")
    assert 0 <= ours_s0 - s0 < 1 and round(ours_s1, 2) == s1               # Table 6 truncates s0
    assert whole.winner_scales() == winner_scales(whole.psi())
    crop = whole.crop(2 ** 14, offset=65536)                               # a crop re-reads its file
    assert round(crop.psi(convention="table6"), 4) == psi and round(crop.psi(), 4) != psi
    with pytest.raises(ValueError, match="unknown psi convention"):
        whole.psi(convention="paper")
