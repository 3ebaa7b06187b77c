"""GPU throughput options: the CUDA-graph guard, in-place tracker updates, float32 precision switch.

The CUDA-graph replay itself is checked against eager training in the tests marked ``cuda``
(skipped without a GPU); everything that decides *whether* graphs are used runs on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.models import build_model
from spectral_probe.signals import tones
from spectral_probe.training import fit
from spectral_probe.training.accel import GraphedEpoch, _InPlaceUpdates, cuda_graphs_supported, float32_matmul
from spectral_probe.training.loop import _BestTracker

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def target():
    return tones(256, (0.02, 0.05))


def test_cuda_graphs_are_ignored_on_cpu_with_a_note(target):
    eager = fit(build_model("siren", width=32, depth=2, seed=1), target, epochs=30, lr=1e-3, lr_step=10,
                device="cpu")
    graphed = fit(build_model("siren", width=32, depth=2, seed=1), target, epochs=30, lr=1e-3, lr_step=10,
                  device="cpu", cuda_graphs=True)
    np.testing.assert_array_equal(graphed.history["loss"], eager.history["loss"])   # the same eager loop
    assert graphed.best_psnr == eager.best_psnr
    assert any("cuda_graphs=True ignored on cpu" in n for n in graphed.notes)
    assert not any("cuda_graphs" in n for n in eager.notes)


def test_guard_names_the_reason():
    assert "CUDA device" in cuda_graphs_supported(torch.device("cpu"), True)
    assert "mini-batch" in cuda_graphs_supported(torch.device("cuda"), False)
    assert cuda_graphs_supported(torch.device("cuda"), True) == ""


def test_graphed_epoch_on_cpu_calls_the_eager_epoch_and_leaves_adam_alone():
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    calls = []
    notes: list[str] = []
    epoch = GraphedEpoch(lambda s, t, f: calls.append((s, t, f)) or torch.tensor(1.0), opt,
                         torch.device("cpu"), True, notes=notes)
    assert not epoch.active and notes == [epoch.note]
    assert float(epoch("state", None, "loss_fn")) == 1.0 and calls == [("state", None, "loss_fn")]
    assert opt.param_groups[0]["capturable"] is False          # only switched where a capture can happen


class _Rebinding:
    """A tracker that rebinds its tensors instead of writing into them (what a graph cannot replay)."""

    def __init__(self):
        self.best_loss = torch.tensor(float("inf"))
        self.best = [torch.zeros(2), torch.zeros(3)]
        self.count = 0

    def update(self, loss):
        improved = loss < self.best_loss
        self.best_loss = torch.where(improved, loss, self.best_loss)
        self.best = [torch.where(improved, b + 1, b) for b in self.best]
        self.count += 1


def test_in_place_proxy_writes_rebound_tensors_back():
    tracker = _Rebinding()
    ids = (id(tracker.best_loss), id(tracker.best[0]), id(tracker.best[1]))
    proxy = _InPlaceUpdates(tracker)
    proxy.update(torch.tensor(2.0))
    proxy.update(torch.tensor(3.0))            # not an improvement
    proxy.update(torch.tensor(1.0))
    assert (id(tracker.best_loss), id(tracker.best[0]), id(tracker.best[1])) == ids
    assert float(tracker.best_loss) == 1.0
    np.testing.assert_array_equal(tracker.best[0].numpy(), [2.0, 2.0])
    assert proxy.count == 3                     # other attributes read through


def test_in_place_proxy_keeps_the_loops_tracker_exact():
    model = build_model("siren", width=8, depth=2, seed=0)
    tracker = _BestTracker(model)
    ids = [id(t) for t in [tracker.best_loss, *tracker.best]]
    with torch.no_grad():
        model.head.weight.add_(1.0)
    _InPlaceUpdates(tracker).update(torch.tensor(0.5))
    assert [id(t) for t in [tracker.best_loss, *tracker.best]] == ids
    assert float(tracker.best_loss) == 0.5
    torch.testing.assert_close(tracker.best[-2], model.head.weight.detach(), rtol=0, atol=0)


def test_float32_matmul_sets_and_restores():
    before = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
              torch.backends.cudnn.allow_tf32)
    with float32_matmul("high") as settings:
        assert settings["cuda_matmul_allow_tf32"] and settings["cudnn_allow_tf32"]
        assert torch.get_float32_matmul_precision() == "high"
    with float32_matmul("highest") as settings:
        assert settings == {"float32_matmul_precision": "highest", "cuda_matmul_allow_tf32": False,
                            "cudnn_allow_tf32": False}
    assert (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(ValueError, match="unknown float32 precision 'tf32'"):
        with float32_matmul("tf32"):
            pass


@needs_cuda
@pytest.mark.parametrize("compile_loss", [False, True])
def test_graphed_fit_matches_eager_on_cuda(target, compile_loss):
    kwargs = dict(epochs=60, lr=1e-3, lr_step=7, lr_gamma=0.5, device="cuda", compile=compile_loss)
    with float32_matmul("highest"):
        eager = fit(build_model("siren2", width=64, depth=3, s0=5.0, s1=0.5, seed=3), target, **kwargs)
        model = build_model("siren2", width=64, depth=3, s0=5.0, s1=0.5, seed=3)
        graphed = fit(model, target, cuda_graphs=True, **kwargs)
    assert not graphed.notes, graphed.notes
    np.testing.assert_allclose(graphed.history["loss"], eager.history["loss"], rtol=2e-4)
    np.testing.assert_allclose(graphed.history["lr"], eager.history["lr"])
    assert graphed.best_epoch == eager.best_epoch
    assert graphed.best_psnr == pytest.approx(eager.best_psnr, abs=1e-3)
    with torch.no_grad():      # the restored best state is the graph's, not a stale pre-capture copy
        mse = float(torch.mean((model(target.coords(device="cuda")) - target.values.cuda()) ** 2))
    assert 10 * np.log10(1 / mse) == pytest.approx(graphed.best_psnr, abs=1e-2)
