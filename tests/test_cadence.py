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
