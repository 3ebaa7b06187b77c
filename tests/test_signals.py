"""Loading audio/images into targets, coordinates, synthetic signals, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from spectral_probe.signals import (Target, broadband, eqn5, fig1_series, grid_coords, load_audio,
                                    load_image, load_target, tones)


def _wav(tmp_path, name, data, rate=22050, subtype="PCM_16"):
    path = tmp_path / name
    sf.write(path, data, rate, subtype=subtype)
    return path


def test_stereo_int_pcm_is_averaged_and_peak_normalised(tmp_path):
    n = 1000
    left = 0.5 * np.sin(np.arange(n) * 0.1)
    right = 0.25 * np.ones(n)
    path = _wav(tmp_path, "s.wav", np.stack([left, right], 1), rate=8000)
    target = load_audio(path)
    mono = (left + right) / 2
    expected = mono / np.abs(mono).max()
    assert target.sample_rate == 8000 and target.values.shape == (n, 1)
    np.testing.assert_allclose(target.values[:, 0].numpy(), expected, atol=1e-4)  # 16-bit quantisation


def test_crop_after_whole_file_peak(tmp_path):
    x = np.concatenate([0.1 * np.sin(np.arange(500)), [0.8], 0.1 * np.sin(np.arange(499))])
    target = load_audio(_wav(tmp_path, "f.flac", x, subtype="PCM_24"), num_samples=200, offset=10)
    assert target.n == 200
    # the crop's values keep the whole file's normalisation: max 0.1 / 0.8
    assert float(target.values.abs().max()) == pytest.approx(0.125, rel=1e-3)
    assert target.meta["offset"] == 10


def test_float_wav_nan_empty_zero_and_garbage_are_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        load_audio(_wav(tmp_path, "nan.wav", np.array([0.1, np.nan, 0.2]), subtype="FLOAT"))
    with pytest.raises(ValueError, match="no samples"):
        load_audio(_wav(tmp_path, "empty.wav", np.zeros(0)))
    with pytest.raises(ValueError, match="all zeros"):
        load_audio(_wav(tmp_path, "zero.wav", np.zeros(100)))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="cannot read audio file"):
        load_audio(junk)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_audio(tmp_path / "missing.wav")


def test_data_folder_search(tmp_path, monkeypatch):
    (tmp_path / "audio").mkdir()
    _wav(tmp_path / "audio", "tone.wav", np.sin(np.arange(100) * 0.3))
    monkeypatch.setenv("SPECTRAL_PROBE_DATA", str(tmp_path))
    assert load_target("tone.wav").n == 100


def test_images_gray_rgb_and_16bit(tmp_path):
    gray = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    t = load_image(tmp_path / "g.png")
    assert t.grid_shape == (2, 2) and t.channels == 1
    np.testing.assert_allclose(t.values[:, 0].numpy(), gray.reshape(-1) / 255 * 2 - 1, atol=1e-6)
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb).save(tmp_path / "c.png")
    t = load_image(tmp_path / "c.png")
    assert t.grid_shape == (3, 4) and t.channels == 3
    assert torch.equal(t.values[:, 1], torch.ones(12))
    deep = np.full((4, 4), 65535, dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert torch.allclose(load_image(tmp_path / "d.png").values, torch.ones(16, 1))
    assert load_image(tmp_path / "c.png", gray=True, size=2).grid_shape == (2, 2)


def test_grid_coords_ij_order_and_range():
    c = grid_coords((3, 5))
    assert c.shape == (15, 2)
    assert torch.equal(c[0], torch.tensor([-1.0, -1.0])) and torch.equal(c[-1], torch.tensor([1.0, 1.0]))
    assert torch.allclose(c[1], torch.tensor([-1.0, -0.5]))  # last axis varies fastest


def test_target_checks():
    with pytest.raises(ValueError, match="does not match"):
        Target(torch.zeros(10, 1), (5,))
    with pytest.raises(ValueError, match="NaN"):
        Target(torch.tensor([1.0, float("nan")]), (2,))
    t = Target(torch.tensor([0.0, 0.0, 1.0, 0.5]), (4,))
    with pytest.raises(ValueError, match="all zero"):
        t.crop(2, 0)
    assert t.zero_psnr() == pytest.approx(10 * np.log10(4 / 1.25))


def test_tones_are_exact_sinusoids():
    t = tones(64, (0.25,))
    k = np.arange(64)
    np.testing.assert_allclose(t.values[:, 0].numpy(), np.sin(np.pi * 0.25 * k), atol=1e-6)


def test_eqn5_pair_low_and_high():
    """Eqn 5 (Sec 2.2): A = [1, 2, 4]/7; high tones [0.85, 0.90, 0.95] x Nyquist; literal low [0.25, 0.5, 0.75]."""
    low, high = eqn5(4096, "low"), eqn5(4096, "high")
    assert low.psi() < 0.1 < 0.5 < high.psi()
    assert high.meta["freqs_nyquist"] == [0.85, 0.90, 0.95] and high.meta["amplitudes"] == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    k = np.arange(4096)
    expected = sum(a * np.sin(np.pi * f * k) for a, f in zip((1 / 7, 2 / 7, 4 / 7), (0.85, 0.90, 0.95)))
    np.testing.assert_allclose(high.values[:, 0].numpy(), expected, atol=1e-6)    # no peak normalisation
    for n in (4096, 2 ** 16):                                                       # low: 24/48/72 cycles at any N
        np.testing.assert_allclose(np.asarray(eqn5(n, "low").meta["freqs_nyquist"]) * n / 2, [24, 48, 72])
    paper_low = eqn5(2 ** 16, "eqn5-paper-low")
    assert paper_low.meta["freqs_nyquist"] == [0.25, 0.50, 0.75]
    assert paper_low.psi() == pytest.approx((0.25 + 2 * 0.5 + 4 * 0.75) / 7, abs=1e-3)   # 0.607 > tetris 0.573
    assert load_target("synthetic:eqn5-paper-high", n=512).name == "eqn5-paper-high"
    with pytest.raises(ValueError, match="unknown Eqn 5 band"):
        eqn5(100, "mid")
    with pytest.raises(ValueError, match="too short"):
        eqn5(100, "low")


def test_broadband_has_no_energy_below_cut_and_predicted_centroid():
    t = broadband(8192, low_cut=0.3, seed=1)
    spec = np.abs(np.fft.rfft(t.values[:, 0].double().numpy()))
    freqs = np.fft.rfftfreq(8192) * 2
    assert spec[freqs < 0.3].max() < 1e-6 * spec.max()  # float32 storage
    assert t.psi() == pytest.approx(0.65, abs=0.005)  # flat magnitude on [0.3, 1]
    assert float(t.values.abs().max()) == pytest.approx(1.0)


def test_fig1_series_low_frequency_content_decreases():
    series = fig1_series(4096)
    psis = [s.psi() for s in series]
    assert [s.name for s in series] == [f"S{j}" for j in range(1, 9)]
    assert all(b > a for a, b in zip(psis, psis[1:]))


def test_target_specs():
    assert load_target("synthetic:high").n == 4096
    assert load_target("synthetic:broadband:0.5", n=1000).psi() == pytest.approx(0.75, abs=0.01)
    assert load_target("synthetic:S3", n=512).name == "S3"
    low = load_target("synthetic:lowpass:0.1", n=4096)
    assert low.name == "lowpass-0.1" and low.psi() == pytest.approx(0.05, abs=0.005)
    for bad in ["synthetic:foo", "synthetic:S9", "synthetic:broadband:x", "data.xyz", ""]:
        with pytest.raises(ValueError):
            load_target(bad)


def test_real_tetris_zero_output_psnr(tetris):
    # the quick preset's floor quoted in DEVELOPERS.md: 15.6 dB
    assert load_audio(tetris, num_samples=2 ** 14).zero_psnr() == pytest.approx(15.56, abs=0.01)
