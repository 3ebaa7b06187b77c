"""The quick preset shows the bottleneck on real audio (slow: ~3 minutes on 2 cores)."""

from __future__ import annotations

import pytest

from spectral_probe.training.presets import make_run
from spectral_probe.training import fit

pytestmark = pytest.mark.slow


def _run(model, path, offset=0, epochs=500):
    spec, target = make_run(model, str(path), "quick", epochs=epochs, offset=offset,
                            train_overrides={"device": "cpu"})
    return fit(spec.build_model(), target, spec.train)


def test_siren_stuck_siren2_fits_on_tetris(tetris):
    siren = _run("siren", tetris)
    assert abs(siren.best_psnr - siren.zero_psnr) < 1.0
    assert siren.zero_psnr == pytest.approx(15.56, abs=0.01)
    winner = _run("siren2", tetris)
    assert winner.best_psnr > 50.0


def test_both_improve_on_gt_bach(gt_bach):
    for model in ("siren", "siren2"):
        r = _run(model, gt_bach, offset=65536, epochs=300)
        assert r.best_psnr > r.zero_psnr + 5.0, model
