"""Models: Sitzmann init bounds, WINNER noise statistics, registry errors, activations."""

from __future__ import annotations

import math

import pytest
import torch

from spectral_probe.models import (INR, build_model, list_models, model_parameters, siren, siren2)
from spectral_probe.models.base import ComplexGabor, Finer, Gauss, Sine
from spectral_probe.models.encodings import PositionalEncoding, RandomFourierFeatures


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_coords_to_outputs(name):
    model = build_model(name, in_features=2, out_features=3, width=16, depth=3, seed=0)
    out = model(torch.rand(10, 2) * 2 - 1)
    assert out.shape == (10, 3)
    assert out.dtype == torch.float32
    assert isinstance(model, INR) and len(model.layers) == 3


def test_siren_init_follows_sitzmann_bounds():
    model = build_model("siren", width=512, depth=3, first_omega=3000.0, hidden_omega=30.0, seed=1)
    w1 = model.layers[0].linear.weight
    assert w1.abs().max() <= 1.0  # U(-1/d_in, 1/d_in), d_in = 1
    bound = math.sqrt(6 / 512) / 30
    for linear in [model.layers[1].linear, model.layers[2].linear, model.head]:
        w = linear.weight.detach()
        assert w.abs().max() <= bound
        # variance of U(-b, b) is b^2 / 3
        assert float(w.var()) == pytest.approx(bound ** 2 / 3, rel=0.02 if w.numel() > 1000 else 0.3)
    assert model.layers[0].act.omega == 3000.0 and model.layers[1].act.omega == 30.0


def test_winner_noise_has_eqn7_statistics_and_touches_only_two_layers():
    base = build_model("siren", width=256, depth=4, seed=3)
    noisy = build_model("siren2", width=256, depth=4, s0=10.0, s1=0.5, seed=3)
    d0 = noisy.layers[0].linear.weight - base.layers[0].linear.weight
    d1 = noisy.layers[1].linear.weight - base.layers[1].linear.weight
    assert float(d0.std()) == pytest.approx(10.0 / 30.0, rel=0.15)  # 256 samples
    assert float(d1.std()) == pytest.approx(0.5 / 30.0, rel=0.01)  # 65536 samples
    for a, b in zip(base.layers[2:], noisy.layers[2:]):
        assert torch.equal(a.linear.weight, b.linear.weight)
    for a, b in zip(base.layers, noisy.layers):
        assert torch.equal(a.linear.bias, b.linear.bias)
    assert torch.equal(base.head.weight, noisy.head.weight)


def test_siren2_with_zero_noise_is_siren():
    a = build_model("siren", width=32, depth=3, seed=5)
    b = build_model("siren2", width=32, depth=3, s0=0.0, s1=0.0, seed=5)
    x = torch.linspace(-1, 1, 50)[:, None]
    assert torch.equal(a(x), b(x))


def test_seed_reproducible_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    m1 = build_model("siren2", width=16, depth=2, s0=5, s1=1, seed=7)
    after = torch.rand(3)
    m2 = build_model("siren2", width=16, depth=2, s0=5, s1=1, seed=7)
    assert torch.equal(before, after)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)


def test_hook_point_names():
    names = [n for n, _ in build_model("siren", width=8, depth=2).named_modules()]
    for expected in ["input", "layers.0.pre", "layers.0.post", "layers.1.pre", "layers.1.post", "output"]:
        assert expected in names


def test_pre_activation_is_omega_times_linear_output():
    model = siren(width=8, depth=1, first_omega=7.0)
    x = torch.linspace(-1, 1, 5)[:, None]
    seen = {}
    model.layers[0].pre.register_forward_hook(lambda m, i, o: seen.setdefault("pre", o))
    model(x)
    assert torch.allclose(seen["pre"], 7.0 * model.layers[0].linear(x))


def test_activations_closed_forms():
    z = torch.linspace(-2, 2, 101)
    assert torch.allclose(Sine(3.0)(z), torch.sin(3.0 * z))
    assert torch.allclose(Finer(2.0)(z), torch.sin(2.0 * (z.abs() + 1) * z))
    assert torch.allclose(Gauss(1.5)(z), torch.exp(-(1.5 * z) ** 2))
    g = ComplexGabor(4.0, 0.5)(z)
    assert torch.allclose(g.real, torch.cos(4.0 * z) * torch.exp(-(0.5 * z) ** 2), atol=1e-6)


def test_finer_scale_is_detached_by_default():
    z = torch.tensor([0.5], requires_grad=True)
    Finer(1.0)(z).sum().backward()
    # d/dz sin(omega * s * z) with s = |z| + 1 held constant: omega * s * cos(omega * s * z)
    assert float(z.grad) == pytest.approx(1.5 * math.cos(0.75), rel=1e-6)


def test_finerpp_first_bias_uniform_k():
    model = build_model("finerpp", width=4096, depth=2, bias_scale=5.0, seed=0)
    b = model.layers[0].linear.bias
    assert b.abs().max() <= 5.0 and b.abs().max() > 4.9
    assert float(b.var()) == pytest.approx(25 / 3, rel=0.08)


def test_wire_is_complex_inside_and_real_outside():
    model = build_model("wire", width=32, depth=3, seed=0)
    assert model.layers[0].linear.weight.dtype == torch.float32
    assert model.layers[1].linear.weight.dtype == torch.complex64
    assert model.layers[1].linear.out_features == int(32 / math.sqrt(2))
    assert not model(torch.zeros(4, 1)).is_complex()


def test_positional_encoding_values():
    pe = PositionalEncoding(1, 3)
    x = torch.tensor([[0.25]])
    out = pe(x)
    freqs = math.pi * torch.tensor([1.0, 2.0, 4.0])
    expected = torch.cat([x[0], torch.sin(0.25 * freqs), torch.cos(0.25 * freqs)])
    assert out.shape == (1, 7) and torch.allclose(out[0], expected)


def test_random_fourier_features_statistics():
    torch.manual_seed(0)
    rff = RandomFourierFeatures(2, 4000, sigma=30.0)
    assert float(rff.B.std()) == pytest.approx(30.0, rel=0.03)
    out = rff(torch.zeros(3, 2))
    assert torch.equal(out[:, :4000], torch.ones(3, 4000)) and torch.equal(out[:, 4000:], torch.zeros(3, 4000))


def test_registry_errors_name_the_fix():
    with pytest.raises(ValueError, match="unknown model 'foo'; choose one of: finer"):
        build_model("foo")
    with pytest.raises(TypeError, match="takes no argument.*'s0'; valid: in_features"):
        build_model("siren", s0=1.0)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        build_model("siren", width=0)
    with pytest.raises(ValueError, match="s1 must be a finite number >= 0"):
        build_model("siren2", s1=float("nan"))
    with pytest.raises(ValueError, match="first_omega"):
        siren2(first_omega=-1.0)
    assert "bias_scale" in model_parameters("finerpp")


def test_register_model_reaches_build_list_parameters_cli_and_sweeps():
    from click.testing import CliRunner

    from spectral_probe.cli.main import main
    from spectral_probe.models import register_model, unregister_model
    from spectral_probe.sweep.params import applies_to, valid_keys

    @register_model("toy_linear")
    def toy_linear(in_features: int = 1, out_features: int = 1, width: int = 4, depth: int = 1,
                   gain: float = 2.0) -> torch.nn.Module:
        layers = [torch.nn.Linear(in_features, width)]
        for _ in range(depth - 1):
            layers += [torch.nn.Tanh(), torch.nn.Linear(width, width)]
        net = torch.nn.Sequential(*layers, torch.nn.Tanh(), torch.nn.Linear(width, out_features))
        with torch.no_grad():
            net[-1].weight.mul_(gain)
        return net

    try:
        assert "toy_linear" in list_models()
        assert model_parameters("toy_linear") == {"in_features": 1, "out_features": 1, "width": 4, "depth": 1,
                                                  "gain": 2.0}
        a, b = build_model("toy_linear", width=8, depth=2, seed=3), build_model("toy_linear", width=8, depth=2, seed=3)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))     # seeded
        assert a(torch.zeros(5, 1)).shape == (5, 1) and a[0].out_features == 8
        with pytest.raises(TypeError, match="takes no argument.*'sigma'"):
            build_model("toy_linear", sigma=1.0)
        runner = CliRunner()
        listing = runner.invoke(main, ["models"]).output.splitlines()
        row = listing.index(next(line for line in listing if line.startswith("toy_linear:")))
        assert listing[row + 5].split()[:2] == ["depth", "1"] and listing[row + 6].split()[:3] == ["gain", "2", "2"]
        assert "toy_linear" in runner.invoke(main, ["train", "--help"]).output
        assert "gain" in valid_keys() and applies_to("gain") == frozenset({"toy_linear"})
        with pytest.raises(ValueError, match="already registered"):
            register_model("toy_linear", lambda in_features=1, out_features=1, width=1, depth=1: None)
    finally:
        unregister_model("toy_linear")
    assert "toy_linear" not in list_models() and "gain" not in valid_keys()


@pytest.mark.parametrize("builder,message", [
    (lambda in_features=1, out_features=1, width=1: None, "must accept in_features, out_features, width, depth"),
    (lambda in_features=1, out_features=1, width=1, depth=1, **kw: None, "no \\*kw"),
    (lambda in_features, out_features=1, width=1, depth=1: None, "needs a default.*in_features"),
    ("not callable", "must be callable"),
])
def test_register_model_refuses_builders_the_cli_cannot_drive(builder, message):
    from spectral_probe.models import register_model

    with pytest.raises(TypeError, match=message):
        register_model("bad_model", builder)
    assert "bad_model" not in list_models()
    with pytest.raises(ValueError, match="model names"):
        register_model("bad name", lambda in_features=1, out_features=1, width=1, depth=1: None)
