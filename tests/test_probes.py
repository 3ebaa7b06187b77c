"""Probes: hook points, filters, hook removal, torch.func pausing, statistics, callbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from spectral_probe import build_model, fit, load_target
from spectral_probe.probes import stats
from spectral_probe.probes import Probe, list_hook_points, paused, select_hook_points
from spectral_probe.probes.cache import freq_axis
from spectral_probe.training import Callback


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture
def siren():
    return build_model("siren", width=16, depth=2, seed=0)


@pytest.fixture
def x():
    return torch.linspace(-1, 1, 256)[:, None]


def test_bundled_model_hook_points(siren):
    assert list_hook_points(siren) == ["input", "layers.0.pre", "layers.0.post", "layers.1.pre",
                                       "layers.1.post", "output"]
    points = {p.name: (p.layer, p.kind) for p in select_hook_points(siren)}
    assert points["input"] == ("input", "post") and points["output"] == ("output", "pre")
    assert [p.name for p in select_hook_points(siren, "*pre*")] == ["layers.0.pre", "layers.1.pre"]
    assert [p.name for p in select_hook_points(siren, ["output", "layers.1.*"])] == [
        "layers.1.pre", "layers.1.post", "output"]


def test_unknown_layer_lists_valid_names(siren, x):
    with pytest.raises(ValueError, match=r"unknown layer 'layers\.7\.pre'; valid names: input, layers\.0\.pre"):
        Probe("layers.7.pre").step(0, siren, x)
    with pytest.raises(ValueError, match="unknown layer 'nope\\*'"):
        select_hook_points(siren, ["input", "nope*"])


def test_plain_module_falls_back_to_leaf_modules(x):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    points = {p.name: p.alias for p in select_hook_points(model)}
    assert points == {"0": "0.pre", "1": "0.post", "2": "2.pre", "3": "2.post", "4": "4.pre"}
    assert [p.name for p in select_hook_points(model, "*pre*")] == ["0", "2", "4"]
    with pytest.raises(ValueError, match=r"valid names: 0 \(0\.pre\), 1 \(0\.post\)"):
        select_hook_points(model, "layers.0.pre")
    rec = Probe("*post*").step(0, model, x)
    with torch.no_grad():
        ref = torch.tanh(model[0](x))
    assert float(rec["1"]["act_std"]) == pytest.approx(float(ref.std(unbiased=False)), rel=1e-5)
    assert _hook_count(model) == 0


def test_statistics_equal_direct_computation(siren, x):
    probe = Probe(every=10, bins=32, keep=True)
    rec = probe.step(0, siren, x)
    with torch.no_grad():
        pre = siren.layers[0].act.pre(siren.layers[0].linear(x))
    torch.testing.assert_close(probe.cache["layers.0.pre"], pre)
    r = rec["layers.0.pre"]
    mom = stats.moments(pre)
    assert float(r["act_std"]) == pytest.approx(float(mom.std), rel=1e-6)
    assert float(r["act_kurtosis"]) == pytest.approx(float(mom.kurtosis), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(r["psd"], stats.layer_psd(pre).psd.double(), rtol=1e-6, atol=0)
    edges = r["hist_edges"]
    assert float(edges[0]) < float(pre.min()) and float(edges[-1]) > float(pre.max())
    torch.testing.assert_close(r["hist"], stats.histogram(pre, edges).density)
    assert probe.step(5, siren, x) is None                      # not a probe epoch
    assert probe.cache.steps == [0]


def test_hooks_removed_after_exceptions(siren, x):
    class Boom(RuntimeError):
        pass

    def explode(module, args, output):
        raise Boom("in forward")

    handle = siren.layers[1].linear.register_forward_hook(explode)
    probe = Probe()
    with pytest.raises(Boom):
        probe.step(0, siren, x)
    handle.remove()
    assert _hook_count(siren) == 0
    with pytest.raises(Boom):
        with probe.hooks(siren):
            assert _hook_count(siren) == len(list_hook_points(siren))
            raise Boom("in user code")
    assert _hook_count(siren) == 0


def test_probe_is_inert_under_torch_func(siren, x):
    params = {k: v.detach() for k, v in siren.named_parameters()}
    probe = Probe()

    def f(p, xi):
        return functional_call(siren, p, (xi[None],))[0, 0]

    with probe.hooks(siren):
        jac = jacrev(f)(params, x[0])
        batched = vmap(lambda xi: siren(xi[None])[0])(x[:4])
        with paused():
            siren(x)
        with paused(siren):
            siren(x)
    assert probe.commit(0) is None                 # nothing recorded, nothing raised
    assert jac["layers.0.linear.weight"].shape == (16, 1) and batched.shape == (4, 1)
    with probe.hooks(siren):
        siren(x)
    assert set(probe.commit(1)) == set(list_hook_points(siren))


def test_bin_ranges(siren, x):
    fixed = Probe("layers.0.post", bins=10, bin_range=(-2.0, 2.0), every=1)
    rec = fixed.step(0, siren, x)["layers.0.post"]
    np.testing.assert_allclose(rec["hist_edges"].numpy(), np.linspace(-2, 2, 11), atol=1e-12)
    edges = Probe("layers.0.post", bins=[-1.0, 0.0, 1.0]).step(0, siren, x)["layers.0.post"]["hist_edges"]
    np.testing.assert_allclose(edges.numpy(), [-1, 0, 1])
    first = Probe("layers.0.pre", bins=8, every=1)
    e0 = first.step(0, siren, x)["layers.0.pre"]["hist_edges"]
    e1 = first.step(1, siren, 10 * x)["layers.0.pre"]
    torch.testing.assert_close(e1["hist_edges"], e0)               # fixed after the first step
    assert float(e1["hist_outside"]) > 0.3
    adaptive = Probe("layers.0.pre", bins=8, every=1, bin_range="adaptive")
    adaptive.step(0, siren, x)
    assert float(adaptive.step(1, siren, 10 * x)["layers.0.pre"]["hist_outside"]) == 0.0
    with pytest.raises(ValueError, match="unknown bin_range 'widest'"):
        Probe(bin_range="widest").step(0, siren, x)
    with pytest.raises(ValueError, match="increasing"):
        Probe(bins=[1.0, 0.0])


def test_complex_activations_use_the_real_part(x):
    model = build_model("wire", width=8, depth=2, seed=0)
    probe = Probe("layers.0.post", every=1)
    _, raw = probe.capture(model, x)
    assert raw["layers.0.post"].is_complex()
    rec = probe.step(0, model, x)["layers.0.post"]
    assert float(rec["act_mean"]) == pytest.approx(float(raw["layers.0.post"].real.mean()), rel=1e-5)
    absolute = Probe("layers.0.post", complex_part="abs").step(0, model, x)["layers.0.post"]
    assert float(absolute["act_mean"]) == pytest.approx(float(raw["layers.0.post"].abs().mean()), rel=1e-5)


def test_two_dimensional_grid_gives_radial_psd():
    model = build_model("siren", in_features=2, width=8, depth=1, seed=0)
    axes = torch.linspace(-1, 1, 24), torch.linspace(-1, 1, 16)
    coords = torch.stack([g.reshape(-1) for g in torch.meshgrid(*axes, indexing="ij")], dim=-1)
    probe = Probe("layers.0.post")
    rec = probe.step(0, model, coords)["layers.0.post"]
    assert probe.grid_shape == (24, 16)
    assert rec["psd"].shape == (8,) and freq_axis((24, 16)).shape == (8,)
    with pytest.raises(ValueError, match="grid_shape"):
        Probe(grid_shape=(5, 5)).step(0, model, coords)


class _NoHooksDuringTraining(Callback):
    def __init__(self):
        self.counts = []

    def on_epoch_end(self, state):
        self.counts.append(_hook_count(state.model))


def test_probe_as_fit_callback_copies_only_on_probe_steps():
    target = load_target("synthetic:broadband", n=512)
    model = build_model("siren", width=16, depth=2, seed=0)
    probe = Probe("*post*", every=10, device="cpu")
    watcher = _NoHooksDuringTraining()
    fit(model, target, epochs=25, device="cpu", probes=[probe], callbacks=[watcher])
    assert probe.cache.steps == [0, 10, 20]
    assert set(watcher.counts) == {0}
    assert probe.cache.stack("act_std").shape == (3, 2)
    assert probe.cache.stack("psd", ["layers.1.post"]).shape == (3, 1, 257)
    ds = probe.to_dataset()
    assert list(ds.layer.values) == ["layers.0", "layers.1"] and list(ds.kind.values) == ["post"]
    np.testing.assert_allclose(ds["act_std"].values[:, :, 0], probe.cache.stack("act_std").numpy())
    moved = probe.cache.to("cpu")
    assert moved.steps == probe.cache.steps and moved.stack("hist").dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_probe_on_cuda_matches_cpu(siren, x):
    cpu = Probe(every=1, bins=32, bin_range=(-40.0, 40.0)).step(0, siren, x)
    gpu_probe = Probe(every=1, bins=32, bin_range=(-40.0, 40.0))
    gpu = gpu_probe.step(0, siren.cuda(), x.cuda())
    assert gpu_probe.cache.stack("psd").device.type == "cpu"
    for name in cpu:
        for stat in ("act_std", "act_kurtosis", "psd"):
            torch.testing.assert_close(gpu[name][stat].cpu().double(), cpu[name][stat].double(),
                                       rtol=1e-3, atol=1e-5)
        # a value within rounding of a bin edge may change bins: allow 3 values per bin
        values = x.shape[0] * (16 if name.startswith("layers") else 1)
        torch.testing.assert_close(gpu[name]["hist"].cpu(), cpu[name]["hist"], rtol=0, atol=3 / (values * 2.5))


def test_a_registered_statistic_reaches_summary_cache_dataset_and_run_file(siren, x, tmp_path):
    """Adding a statistic is one register_statistic call: the probe, its cache and the run file follow."""
    from spectral_probe.probes import cache
    from spectral_probe.probes.registry import Statistic, list_statistics, register_statistic, unregister_statistic
    from spectral_probe.store import TrajectoryWriter, open_run

    quantiles = (0.1, 0.5, 0.9)
    register_statistic(Statistic(
        "act_quantile", ("quantile",), "f8",
        pack=lambda flat, ctx: torch.quantile(flat.reshape(-1).double(), torch.tensor(quantiles, dtype=torch.float64)),
        unpack=lambda packed, ctx: packed, coords={"quantile": quantiles}))
    register_statistic(Statistic("act_absmax", (), "f4", pack=lambda flat, ctx: flat.abs().amax().reshape(1),
                                 unpack=lambda packed, ctx: packed[0]))
    try:
        assert list_statistics()[-2:] == ["act_quantile", "act_absmax"]
        assert cache.STAT_DIMS["act_quantile"] == (("quantile",), "f8")
        with TrajectoryWriter(tmp_path / "run.h5") as writer:
            probe = Probe("layers.0.*", every=1, writer=writer)
            rec = probe.step(0, siren, x)
            probe.step(1, siren, 2 * x)
        pre = Probe("layers.0.pre").capture(siren, x)[1]["layers.0.pre"]
        expected = torch.quantile(pre.reshape(-1).double(), torch.tensor(quantiles, dtype=torch.float64))
        np.testing.assert_allclose(rec["layers.0.pre"]["act_quantile"].numpy(), expected.numpy(), rtol=1e-12)
        assert float(rec["layers.0.pre"]["act_absmax"]) == pytest.approx(float(pre.abs().max()))
        assert float(rec["layers.0.pre"]["act_std"]) == pytest.approx(float(pre.std(unbiased=False)), rel=1e-5)
        assert probe.cache.stack("act_quantile").shape == (2, 2, 3)
        ds = probe.to_dataset()
        assert ds["act_quantile"].dims == ("step", "layer", "kind", "quantile")
        np.testing.assert_allclose(ds["quantile"].values, quantiles)
        stored = open_run(tmp_path / "run.h5", "activations")
        assert stored["act_quantile"].dims == ("step", "layer", "kind", "quantile")
        assert stored["act_absmax"].dtype == np.float32
        np.testing.assert_allclose(stored["act_quantile"].values, ds["act_quantile"].values)
        np.testing.assert_allclose(stored["act_absmax"].values, ds["act_absmax"].values, rtol=1e-6)
    finally:
        unregister_statistic("act_quantile")
        unregister_statistic("act_absmax")
    rec = Probe("layers.0.pre", every=1).step(0, siren, x)["layers.0.pre"]
    assert set(rec) == {"act_mean", "act_std", "act_kurtosis", "hist", "hist_edges", "hist_outside", "psd"}
    assert "act_quantile" not in cache.STAT_DIMS


def test_register_statistic_refuses_bad_entries():
    from spectral_probe.probes.registry import Statistic, register_statistic

    with pytest.raises(ValueError, match="already registered"):
        register_statistic(Statistic("act_std", (), "f8", None, lambda p, c: 0.0))
    with pytest.raises(ValueError, match="dtype must be a float"):
        register_statistic(Statistic("act_count", (), "i8", None, lambda p, c: 0))
    with pytest.raises(ValueError, match="already have the probe's coordinates"):
        register_statistic(Statistic("act_x", ("freq",), "f4", None, lambda p, c: 0, coords={"freq": [0]}))


def _dropout_batchnorm_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 32), nn.BatchNorm1d(32), nn.Dropout(0.5), nn.Tanh(), nn.Linear(32, 1))
    with torch.no_grad():                                   # running stats that differ from the batch's
        model[1].running_mean.fill_(0.3)
        model[1].running_var.fill_(4.0)
    return model


def test_probe_mode_eval_by_default_and_restores_every_submodule(x):
    model = _dropout_batchnorm_model()
    model.train()
    model[2].eval()                                         # a user's mixed modes come back as they were
    before = [m.training for m in model.modules()]
    running = model[1].running_mean.clone()
    ev = Probe("1", every=1).step(0, model, x)["1"]         # BatchNorm output (pre of no linear: a post)
    with torch.no_grad():
        pre = model[0](x)
        expected = (pre - 0.3) / torch.sqrt(torch.tensor(4.0) + model[1].eps) * model[1].weight + model[1].bias
    assert float(ev["act_mean"]) == pytest.approx(float(expected.mean()), rel=1e-5)
    assert [m.training for m in model.modules()] == before
    assert torch.equal(model[1].running_mean, running)      # eval forward leaves the running stats alone
    tr = Probe("1", every=1, mode="train").step(0, model, x)["1"]
    with torch.no_grad():                                   # batch statistics
        batch = torch.nn.functional.batch_norm(pre, None, None, model[1].weight, model[1].bias, training=True,
                                               eps=model[1].eps)
    assert float(tr["act_mean"]) == pytest.approx(0.0, abs=1e-5)
    assert float(tr["act_std"]) == pytest.approx(float(batch.std(unbiased=False)), rel=1e-5)
    assert float(ev["act_mean"]) != pytest.approx(float(tr["act_mean"]), abs=1e-3)
    assert [m.training for m in model.modules()] == before
    assert not torch.equal(model[1].running_mean, running)  # a train-mode forward updates them (documented)
    model.eval()
    ev = Probe("1", every=1).step(0, model, x)["1"]
    as_is = Probe("2", every=1, mode="as-is").step(0, model, x)["2"]       # eval: dropout is the identity
    assert float(as_is["act_std"]) == pytest.approx(float(ev["act_std"]), rel=1e-6)
    assert not any(m.training for m in model.modules())
    model.train()
    torch.manual_seed(1)
    as_is = Probe("2", every=1, mode="as-is").step(0, model, x)["2"]       # train: dropout and batch stats
    torch.manual_seed(1)
    train = Probe("2", every=1, mode="train").step(0, model, x)["2"]
    assert float(as_is["act_std"]) == float(train["act_std"])
    assert float(as_is["act_std"]) != pytest.approx(float(Probe("2", every=1).step(0, model, x)["2"]["act_std"]),
                                                    rel=0.1)


def test_probe_mode_is_restored_when_the_forward_raises(x):
    class Boom(nn.Module):
        def forward(self, t):
            raise RuntimeError("boom")

    model = nn.Sequential(nn.Linear(1, 4), nn.Dropout(0.1), Boom())
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        Probe("0", every=1).step(0, model, x)
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="unknown mode 'test'; valid: eval, train, as-is"):
        Probe(mode="test")
