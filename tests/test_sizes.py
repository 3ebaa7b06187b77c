"""Sizes checked before compute (issue 22 item 5): one line naming the option and the estimate."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.sizes import (ACTIVATION_COPIES, BYTES_PER_SAMPLE, ITEM, TRAIN_COPIES, SizeTooLarge, check_fits,
                                  check_grid, check_model, check_ntk, check_training, format_bytes, parameter_count,
                                  training_bytes)

TRAIN = ["train", "--model", "siren2", "--target", "synthetic:broadband", "--epochs", "2", "--no-progress"]


@pytest.mark.parametrize("model, kwargs", [("siren", {}), ("siren2", {"s0": 10.0, "s1": 1.0}), ("finer", {})])
def test_parameter_count_is_the_models_own(model, kwargs):
    from spectral_probe.models import build_model

    for width, depth, d_in, d_out in [(16, 3, 1, 1), (8, 2, 2, 3), (32, 5, 2, 1)]:
        net = build_model(model, width=width, depth=depth, in_features=d_in, out_features=d_out, **kwargs)
        assert parameter_count(width, depth, d_in, d_out) == sum(p.numel() for p in net.parameters())


def test_the_budget_is_a_sharp_bound():
    check_fits(1000, "width", 7, "x", budget=1000)
    with pytest.raises(SizeTooLarge, match=r"^width=7 \(--width\) needs about 1001 B of memory \(x\); 1000 B is "
                                           r"available here; choose a smaller width$"):
        check_fits(1001, "width", 7, "x", budget=1000)
    assert format_bytes(3 * 2 ** 50) == "3.0 PiB" and format_bytes(1536) == "1.5 KiB"


def test_training_estimate_and_the_input_blamed():
    params, acts, samples = training_bytes(1000, 10, 3, 1, 1)
    assert params == TRAIN_COPIES * ITEM * (20 + 2 * 110 + 11)
    assert acts == ACTIVATION_COPIES * ITEM * 1000 * 10 * 3 and samples == BYTES_PER_SAMPLE * 1000
    assert training_bytes(1000, 10, 3, batch_size=100)[1] == acts // 10
    need = params + acts + samples
    check_training(1000, 10, 3, budget=need)
    for (n, w, d, batch), blamed in [((1000, 10 ** 6, 4, None), "width"), ((1000, 128, 10 ** 8, None), "depth"),
                                     ((10 ** 9, 128, 4, None), "num_samples"),
                                     ((10 ** 7, 256, 4, 10 ** 6), "batch_size")]:
        with pytest.raises(SizeTooLarge, match=rf"^{blamed}="):
            check_training(n, w, d, batch_size=batch, budget=2 ** 30)


def test_grid_ntk_and_model_checks():
    with pytest.raises(SizeTooLarge, match=r"^grid_shape=100000x100000 \(--grid-shape\) needs about 149\.0 GiB"):
        check_grid((100_000, 100_000), budget=2 ** 30)
    with pytest.raises(SizeTooLarge, match=r"^num_samples=100000000 \(--num-samples\)"):
        check_grid((100_000_000,), budget=2 ** 20)
    check_grid((1000, 1000), budget=16 * 10 ** 6)              # 2 x 10^6 points x 2 x 4 B = 16 MB
    with pytest.raises(SizeTooLarge, match=r"^num_samples=100000000 \(--num-samples\) needs about 1\.1 TiB"):
        check_ntk(10 ** 8, [256, 256, 256, 256, 1], budget=2 ** 34)
    with pytest.raises(SizeTooLarge, match=r"^depth=100000000 \(--depth\)"):
        check_model(16, 10 ** 8, budget=2 ** 30)


def test_library_entry_points_refuse_before_allocating():
    """make_run, build_model, grid_coords and analyze_ntk: all sizes here exceed any machine by far."""
    import torch

    from spectral_probe.models import build_model
    from spectral_probe.ntk import analyze_ntk
    from spectral_probe.signals import grid_coords
    from spectral_probe.training.presets import make_run

    with pytest.raises(SizeTooLarge, match=r"^num_samples=1000000000000 .*TiB"):
        make_run("siren", "synthetic:broadband", num_samples=10 ** 12)
    with pytest.raises(SizeTooLarge, match=r"^width=100000000 .*PiB"):
        make_run("siren", "synthetic:broadband", num_samples=256, width=10 ** 8)
    with pytest.raises(SizeTooLarge, match=r"^depth=100000000 "):
        make_run("siren", "synthetic:broadband", num_samples=256, depth=10 ** 8)
    with pytest.raises(SizeTooLarge, match=r"^width=100000000 "):
        build_model("siren", width=10 ** 8, depth=4)
    with pytest.raises(SizeTooLarge, match=r"^grid_shape=100000x100000 "):
        grid_coords((100_000, 100_000))
    model = build_model("siren", width=1024, depth=4, seed=0)
    x = torch.zeros(10 ** 7, 1)            # 40 MB of points; their NTK factors: 3 x 10^7 x 4097 x 4 B = 492 GB
    with pytest.raises(SizeTooLarge, match=r"^num_samples=10000000 \(--num-samples\) needs about 457\.9 GiB"):
        analyze_ntk(model, x, top_k=4)


@pytest.mark.parametrize("args, line", [
    ([*TRAIN, "--num-samples", "1000000000000"], "error: num_samples=1000000000000 (--num-samples) needs about 29.1 TiB"),
    ([*TRAIN, "--width", "100000000"], "error: width=100000000 (--width) needs about"),
    ([*TRAIN, "--depth", "100000000"], "error: depth=100000000 (--depth) needs about"),
    (["ntk", "--model", "siren", "--num-samples", "100000000"],
     "error: num_samples=100000000 (--num-samples) needs about 1.1 TiB"),
    (["ntk", "--model", "siren", "--grid-shape", "100000x100000"],
     "error: grid_shape=100000x100000 (--grid-shape) needs about 149.0 GiB"),
    (["ntk", "--model", "siren", "--width", "100000000"], "error: width=100000000 (--width) needs about"),
])
def test_cli_refuses_in_one_line(tmp_path, args, line):
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "run.h5")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    errors = [row for row in result.output.splitlines() if row.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(line), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run.h5").exists()


def test_sweep_validation_names_the_size_at_fault(tmp_path):
    from spectral_probe.sweep import SweepSpec, SweepValidationError, plan_sweep

    spec = SweepSpec(fixed={"model": "siren", "target": "synthetic:broadband", "epochs": 2, "num_samples": 256},
                     grid={"width": [100_000_000, 16]})
    with pytest.raises(SweepValidationError) as info:
        plan_sweep(spec, tmp_path, device="cpu")
    (problem,) = info.value.problems
    assert problem.key == "width" and problem.message.startswith("width=100000000 (--width) needs about")
