"""fit_batched: K models trained as one give each model the trajectory it has alone (to round-off)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral_probe.training.batched import batch_key, fit_batched
from spectral_probe.models import build_model
from spectral_probe.signals import load_target, tones
from spectral_probe.training import Callback, fit

#: the paper's learning rate; round-off differences between batched and single GEMMs stay ~1e-7 relative
#: over these runs (at lr 1e-3 they grow chaotically to percent level within 100 epochs, for both routes)
KW = dict(epochs=40, lr=1e-4, lr_step=10, lr_gamma=0.5, device="cpu")


def _models():
    return [build_model("siren2", width=24, depth=3, s0=s0, s1=s1, seed=seed)
            for s0, s1, seed in ((40.0, 0.5, 0), (120.0, 1.5, 1), (0.0, 0.0, 2))]


@pytest.fixture(scope="module")
def target():
    return load_target("synthetic:broadband", n=256, seed=0)


def _close(batched, alone):
    np.testing.assert_allclose(batched.history["loss"], alone.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(batched.history["lr"], alone.history["lr"])
    assert batched.best_epoch == alone.best_epoch and batched.state_step == alone.state_step
    assert batched.best_psnr == pytest.approx(alone.best_psnr, abs=1e-4)
    assert batched.final_psnr == pytest.approx(alone.final_psnr, abs=1e-4)


@pytest.fixture(scope="module")
def solo(target):
    """Each of the three models trained alone: (trained model, FitResult)."""
    return [(m, fit(m, target, **KW)) for m in _models()]


@pytest.mark.parametrize("implementation", ["bmm", "vmap"])
def test_each_model_matches_its_solo_run(target, solo, implementation):
    models = _models()
    batched = fit_batched(models, target, implementation=implementation, **KW)
    for model, (solo_model, alone), result in zip(models, solo, batched):
        _close(result, alone)
        for p, q in zip(model.parameters(), solo_model.parameters()):     # restored best states agree
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
        assert f"batch of 3 models ({implementation})" in result.notes[0]


def test_siren_and_siren2_share_a_bmm_batch_with_their_own_omega_and_target(target):
    """SIREN (first omega 3000 x N/150,000) and SIREN^2 (30), each on its own target (one 3x louder)."""
    loud = tones(256, (0.01, 0.3), amplitudes=(0.9, 0.6))
    make = [lambda: build_model("siren", width=24, depth=3, first_omega=3000 * 256 / 150_000, seed=5),
            lambda: build_model("siren2", width=24, depth=3, s0=60.0, s1=1.0, seed=6)]
    assert batch_key(make[0]()) == batch_key(make[1]())
    results = fit_batched([m() for m in make], [target, loud], implementation="bmm", **KW)
    for build, tgt, result in zip(make, [target, loud], results):
        _close(result, fit(build(), tgt, **KW))
    with pytest.raises(ValueError, match="differs from model 0 in its settings .*omega"):
        fit_batched([m() for m in make], target, implementation="vmap", **KW)


def test_best_state_restored_per_model(target):
    # a large learning rate makes the losses oscillate, so the best epoch is not the last one
    models = _models()
    results = fit_batched(models, target, epochs=40, lr=5e-2, device="cpu")
    assert any(r.best_epoch < r.epochs_run - 1 for r in results)
    for model, result in zip(models, results):
        with torch.no_grad():
            mse = float(torch.mean((model(target.coords()) - target.values) ** 2))
        assert 10 * math.log10(1 / mse) == pytest.approx(result.best_psnr, abs=1e-3)


def test_groups_callbacks_and_released_storage(target, solo):
    class Live(Callback):
        def __init__(self):
            self.epochs, self.gap = 0, 0.0

        def on_epoch_end(self, state):
            self.epochs += 1
            with torch.no_grad():     # the model the callback sees is the one being trained
                mse = torch.mean((state.model(state.coords) - state.values) ** 2)
            # state.loss is before the update, the model is after it: close but not equal
            self.gap = max(self.gap, abs(float(mse) / float(state.loss) - 1))

    models = _models()
    spies = [[Live()] for _ in models]
    chunked = fit_batched(models, target, callbacks=spies, max_models=2, **KW)
    for (_, alone), result in zip(solo, chunked):
        _close(result, alone)
    assert "batch of 2" in chunked[0].notes[0] and "batch of 1" in chunked[2].notes[0]
    assert [s[0].epochs for s in spies] == [40, 40, 40]
    assert all(0 < s[0].gap < 0.05 for s in spies)
    before = models[1].head.weight.detach().clone()
    with torch.no_grad():
        models[0].head.weight.add_(1.0)
    torch.testing.assert_close(models[1].head.weight.detach(), before, rtol=0, atol=0)


def test_refusals(target):
    with pytest.raises(ValueError, match="differ in parameter shapes"):
        fit_batched([build_model("siren", width=16, depth=2), build_model("siren", width=32, depth=2)], target)
    with pytest.raises(ValueError, match="full batches of all 256 samples"):
        fit_batched(_models(), target, batch_size=128)
    model = build_model("siren", width=16, depth=2)
    with pytest.raises(ValueError, match="appears twice"):
        fit_batched([model, model], target)
    with pytest.raises(ValueError, match="2 targets for 3 models"):
        fit_batched(_models(), [target, target])
    with pytest.raises(ValueError, match="share one grid"):
        fit_batched(_models()[:2], [target, tones(128, (0.1,))])
    with pytest.raises(ValueError, match="unknown implementation 'jit'; choose one of: auto, bmm, vmap"):
        fit_batched(_models(), target, implementation="jit")
    with pytest.raises(ValueError, match="max_models must be a positive integer"):
        fit_batched(_models(), target, max_models=0)
    with pytest.raises(ValueError, match="'bmm' needs the bundled INR"):
        fit_batched([torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)], target, implementation="bmm", epochs=2)


class _StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_epoch_end(self, state) -> None:
        if state.epoch + 1 >= self.step:
            state.request_stop("test")


def test_a_checkpointed_batch_continues_bit_for_bit(target, tmp_path):
    from spectral_probe.training import BatchedCheckpoint

    kw = dict(KW, epochs=30)
    whole = fit_batched(_models(), target, **kw)
    path = tmp_path / "batch.h5"
    first = fit_batched(_models(), target, callbacks=[[_StopAt(11)] for _ in range(3)],
                        checkpoint=BatchedCheckpoint(path, key="cell", every=4), **kw)
    assert first[0].epochs_run == 11 and first[0].stop_reason == "test"
    again = BatchedCheckpoint(path, key="cell", every=4)
    rest = fit_batched(_models(), target, checkpoint=again, **kw)
    assert again.saved_steps == [12, 16, 20, 24, 28, 30]
    for a, b in zip(whole, rest):
        np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
        assert (a.best_epoch, a.best_psnr, a.final_psnr) == (b.best_epoch, b.best_psnr, b.final_psnr)
    with pytest.raises(ValueError, match="belongs to other work: its work key differs"):
        fit_batched(_models(), target, checkpoint=BatchedCheckpoint(path, key="other"), **kw)
    with pytest.raises(ValueError, match="it holds 3 models, not 2"):
        fit_batched(_models()[:2], target, checkpoint=BatchedCheckpoint(path, key="cell"), **kw)
    with pytest.raises(ValueError, match=r"training settings differ \(lr\)"):
        fit_batched(_models(), target, checkpoint=BatchedCheckpoint(path, key="cell"), **{**kw, "lr": 1e-3})
    damaged = path.read_bytes()
    path.write_bytes(damaged[: len(damaged) // 2])
    with pytest.raises(ValueError, match=r"batched training state '.*batch.h5' cannot be read"):
        fit_batched(_models(), target, checkpoint=BatchedCheckpoint(path, key="cell"), **kw)
    assert path.read_bytes() == damaged[: len(damaged) // 2]          # left as it is


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("implementation", ["bmm", "vmap"])
def test_each_model_matches_its_solo_run_on_cuda(target, implementation):
    from spectral_probe.training.accel import float32_matmul

    kw = dict(KW, device="cuda")
    with float32_matmul("highest"):
        batched = fit_batched(_models(), target, implementation=implementation, **kw)
        for solo_model, result in zip(_models(), batched):
            alone = fit(solo_model, target, **kw)
            np.testing.assert_allclose(result.history["loss"], alone.history["loss"], rtol=1e-4)
            assert result.best_epoch == alone.best_epoch
