"""``spectral-probe models``: constructor defaults beside the values the presets resolve to."""

from __future__ import annotations

from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.cli.models import model_table
from spectral_probe.models import model_parameters
from spectral_probe.training.presets import PAPER_AUDIO_SAMPLES, PRESETS, SIREN_AUDIO_FIRST_OMEGA, make_run


def run(*args):
    return CliRunner().invoke(main, list(args))


def _row(rows, key):
    header = rows[0]
    row = next(r for r in rows if r[0] == key)
    return dict(zip(header, row))


def test_siren_columns_follow_make_run_on_real_targets():
    rows = model_table("siren")
    assert rows[0] == ["argument", "default", "quick 1-D", "quick 2-D", "paper 1-D", "paper 2-D"]
    omega = _row(rows, "first_omega")
    assert omega["default"] == f"{model_parameters('siren')['first_omega']:.4g}"
    # the quick preset crops 1-D targets to its length and scales SIREN's first omega by N / 150,000 (327.7)
    quick = PRESETS["quick"]
    assert omega["quick 1-D"] == f"{SIREN_AUDIO_FIRST_OMEGA * quick.audio_samples / PAPER_AUDIO_SAMPLES:.4g}" == "327.7"
    spec, _ = make_run("siren", "synthetic:broadband", "quick")          # a real target, as `train` loads it
    assert omega["quick 1-D"] == f"{spec.model_kwargs['first_omega']:.4g}"
    assert _row(rows, "width")["quick 1-D"] == str(spec.model_kwargs["width"])
    assert _row(rows, "epochs")["quick 1-D"] == str(spec.train.epochs)
    for preset in ("quick", "paper"):
        p = PRESETS[preset]
        assert _row(rows, "width")[f"{preset} 1-D"] == str(p.audio_width)
        assert _row(rows, "depth")[f"{preset} 2-D"] == str(p.image_depth)
        assert _row(rows, "lr_gamma")[f"{preset} 2-D"] == f"{p.image_lr_gamma:.4g}"
    assert _row(rows, "width")["default"] == str(model_parameters("siren")["width"])


def test_winner_scales_are_shown_as_eqn_11():
    rows = model_table("siren2")
    assert _row(rows, "s0")["quick 1-D"] == "Eqn 11 x N/150000"
    assert _row(rows, "s1")["paper 2-D"] == "Eqn 11" and _row(rows, "s0")["default"] == "0"


def test_cli_lists_every_model_and_refuses_unknown_names():
    res = run("models")
    assert res.exit_code == 0, res.output
    assert "siren2: SIREN^2" in res.output and "wire:" in res.output and "327.7" in res.output
    res = run("models", "gauss", "bogus")
    assert res.exit_code == 2 and "unknown model 'bogus'" in res.output
