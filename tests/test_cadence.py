"""One cadence convention: probes, the bottleneck watch and NTK snapshots act on the same steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.bottleneck import BottleneckWatch
from spectral_probe.cadence import check_every, is_due
from spectral_probe.models import build_model
from spectral_probe.ntk import NTKSnapshot
from spectral_probe.probes import Probe
from spectral_probe.signals import Target
from spectral_probe.training import fit


def test_callbacks_with_the_same_every_act_on_the_same_steps():
    t = np.linspace(-1, 1, 64)
    target = Target(values=torch.tensor(np.sin(6 * np.pi * t), dtype=torch.float32)[:, None], grid_shape=(64,))
    model = build_model("siren", width=8, depth=2, seed=0)
    probe, watch, snap = Probe("output", every=3), BottleneckWatch(every=3, warn=False), NTKSnapshot(every=3)
    fit(model, target, epochs=8, lr=1e-3, device="cpu", probes=[probe, watch, snap])
    assert probe.cache.steps == [0, 3, 6]
    assert [row["step"] for row in watch.rows] == [0, 3, 6]
    assert snap.epochs == [0, 3, 6]
    assert [s for s in range(8) if is_due(s, 3)] == [0, 3, 6]


@pytest.mark.parametrize("value", [0, -1, 2.0, True, None])
def test_every_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="every must be a positive integer"):
        check_every(value)


def test_log_steps_are_dense_early_and_include_the_ends():
    from spectral_probe.cadence import Steps, log_steps

    steps = log_steps(10_000, 30)
    assert steps[0] == 0 and steps[-1] == 10_000 and list(steps) == sorted(set(steps))
    assert list(steps[:5]) == [0, 1, 2, 3, 4]                          # dense early
    assert 20 <= len(steps) <= 30 and np.all(np.diff(np.log(np.asarray(steps[1:]) + 1)) > 0)
    both = log_steps(500, 10, every=100)
    assert {0, 100, 200, 300, 400, 500} <= set(both)
    assert check_every(steps) is steps and is_due(4, steps) and not is_due(5, steps)
    assert Steps([3, 1, 1]) == (1, 3)
    with pytest.raises(ValueError, match="at least one step"):
        Steps([])


def test_callbacks_act_on_an_explicit_schedule():
    from spectral_probe.cadence import Steps

    t = np.linspace(-1, 1, 64)
    target = Target(values=torch.tensor(np.sin(6 * np.pi * t), dtype=torch.float32)[:, None], grid_shape=(64,))
    model = build_model("siren", width=8, depth=2, seed=0)
    schedule = Steps([0, 1, 2, 5, 7])
    probe, snap = Probe("output", every=schedule), NTKSnapshot(every=schedule)
    fit(model, target, epochs=8, lr=1e-3, device="cpu", probes=[probe, snap])
    assert probe.cache.steps == [0, 1, 2, 5, 7]
    assert snap.epochs == [0, 1, 2, 5, 7]
