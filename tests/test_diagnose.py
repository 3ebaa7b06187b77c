"""Pre-training diagnosis: psi, WINNER scales, the S(k) coverage forecast, bad inputs, the CLI."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from spectral_probe.bottleneck import diagnose_target, ntk_coverage
from spectral_probe.bottleneck import indicators as ind
from spectral_probe.bottleneck.diagnose import forecast_from_bound
from spectral_probe.cli.main import main
from spectral_probe.signals import Target, broadband, eqn5, load_target
from spectral_probe.winner import winner_scales


def _two_tones(n=1024, bins=(100, 400)) -> Target:
    k = torch.arange(n, dtype=torch.float64)
    x = sum(torch.cos(2 * math.pi * b * k / n) for b in bins)
    return Target(x[:, None].float(), (n,), name="two-tones")


def test_ntk_coverage_closed_form():
    ref, why = ind.target_reference(_two_tones())
    assert why is None
    window = 256
    s = torch.zeros(window // 2 + 1, dtype=torch.float64)
    s[1:41] = 1.0                                        # flat S(k) up to k = 40: edge 2 * 40 / 256 = 0.3125
    edge, covered = ntk_coverage(s, window, ref, 0.999)
    assert edge == pytest.approx(2 * 40 / window)
    assert covered == pytest.approx(0.5, abs=1e-6)       # the tone at 2*100/1024 = 0.195, not the one at 0.78
    s[1:11], s[11:] = 1.0, 0.0
    assert ntk_coverage(s, window, ref, 0.999)[1] == pytest.approx(0.0)


def test_siren_on_high_tones_is_likely_to_bottleneck():
    d = diagnose_target("synthetic:high", width=32, depth=3, window=512)
    target = eqn5(2 ** 12, "high")
    s0, s1 = winner_scales(target.psi(), "audio")
    assert d.psi == pytest.approx(target.psi()) and d.s1 == pytest.approx(s1)
    assert d.s0 == pytest.approx(s0 * 4096 / 150000) and d.s0_eqn11 == pytest.approx(s0)
    assert d.first_omega == pytest.approx(3000 * 4096 / 150000)
    assert d.band[0] == pytest.approx(0.90, abs=5e-3) and d.band[1] == pytest.approx(0.95, abs=5e-3)  # A = [1,2,4]/7
    assert d.forecast == "likely" and d.likely_bottleneck is True
    assert d.ntk_coverage < 1e-3                                      # spectral leakage of the tones only
    assert d.ntk_band_share < 1e-3 and "at most 0.00 dB" in d.reason and f"s0={d.s0:.4g}" in d.reason


def test_siren_on_low_tones_is_unlikely_to_bottleneck():
    d = diagnose_target("synthetic:low", width=32, depth=3, window=512)
    assert d.forecast == "unlikely" and d.ntk_coverage > 0.99 and d.hidden_coverage > 0.99


def test_forecast_follows_the_gain_bound():
    """likely under the 1 dB line, at risk from 1 to 3 dB, unlikely above (the module docstring)."""
    assert [forecast_from_bound(g) for g in (0.0, 0.07, 0.99, 1.0, 2.9, 3.0, 12.0)] == \
        ["likely"] * 3 + ["at risk"] * 2 + ["unlikely"] * 2
    assert forecast_from_bound(2.0, gain_db=0.5) == "unlikely"


def test_partial_overlaps():
    wide = diagnose_target(broadband(2 ** 14, 0.0, 0.7, seed=0), window=2048)    # 10 % covered: 0.46 dB
    assert wide.forecast == "likely" and wide.likely_bottleneck is True
    assert 1e-3 <= wide.ntk_coverage < 1 - 10 ** -0.1 and "only if training widens" in wide.reason
    mid = diagnose_target(broadband(2 ** 14, 0.0, 0.25, seed=0), window=2048)   # between 20.6 % and 50 %
    assert mid.forecast == "at risk" and mid.likely_bottleneck is False
    assert 1 - 10 ** -0.1 <= mid.ntk_coverage < 1 - 10 ** -0.3 and "slow start" in mid.lines()[-1]


def test_higher_omega_moves_the_forecast():
    low = diagnose_target("synthetic:high", width=32, depth=3, window=512)
    high = diagnose_target("synthetic:high", width=32, depth=3, window=512, first_omega=3000.0)
    assert high.first_omega == 3000.0 and high.ntk_band_edge > low.ntk_band_edge


def test_constant_target_cannot_be_decided():
    d = diagnose_target(Target(torch.full((512, 1), 0.25), (512,), name="dc"), width=16, depth=2)
    assert d.likely_bottleneck is None and d.forecast == "undecided"
    assert "constant" in d.reason and math.isnan(d.ntk_coverage)
    assert d.psi == 0.0 and "undecided" in d.lines()[-1]


def test_image_uses_the_hidden_spectrum():
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    img = torch.cos(2 * math.pi * 2 * xx / 32).reshape(-1, 1).float()
    d = diagnose_target(Target(img, (32, 32), name="stripes", kind="image"), width=16, depth=2)
    assert math.isnan(d.ntk_coverage) and "S(k) needs a 1-D target" in d.reason
    assert d.likely_bottleneck is False and d.freq_scale == 1.0


def test_bad_window():
    with pytest.raises(ValueError, match="window"):
        diagnose_target("synthetic:low", window=8)


def test_cli_diagnose_reports_psi_scales_and_verdict():
    res = CliRunner().invoke(main, ["diagnose", "--target", "synthetic:high", "--width", "32", "--depth", "3",
                                    "--window", "512", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "psi = 0.9021" in res.output and "WINNER scales (Eqn 11): s0 = 95.4" in res.output
    assert "verdict: likely to bottleneck" in res.output


@pytest.mark.parametrize("args,message", [(["--target", "nowhere.wav"], "not found"),
                                          (["--target", "synthetic:low", "--window", "4"], "window must be")])
def test_cli_diagnose_bad_input_is_one_line_exit_2(args, message):
    res = CliRunner().invoke(main, ["diagnose", *args])
    assert res.exit_code == 2 and message in res.output


def test_real_audio_forecasts(tetris, gt_bach):
    stuck = diagnose_target(str(tetris), window=2048)
    assert stuck.likely_bottleneck is True and stuck.ntk_coverage < 0.01
    assert stuck.grid_shape == (2 ** 14,)
    fits = diagnose_target(str(gt_bach), offset=65536, window=2048)
    assert fits.likely_bottleneck is False and fits.ntk_coverage > 0.5
    assert fits.psi == pytest.approx(load_target(str(gt_bach)).crop(2 ** 14, 65536).psi())
