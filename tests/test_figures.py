"""Figure recipes: reduced-size ("test" preset) version of every figure, checking the paper's claims.

Each recipe is computed once (module fixture); the tests check the values that
carry the figure's claim, the plots (labelled axes, small PNGs), the HDF5
round trip and the CLI's handling of bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from spectral_probe import load_target, theory
from spectral_probe.cli.main import main
from spectral_probe.figures import (FIGURES, expand_figures, figure_sizes, get_recipe, load_dataset,
                                    make_figure, save_dataset)
from spectral_probe.figures.claims import read_checks
from spectral_probe.figures.fig4 import snapshot_steps
from spectral_probe.figures.trainrun import probe_steps
from spectral_probe.figures.common import audio_offset, check_target_spec, image_target, resize_image
from spectral_probe.torch_settings import torch_threads

ALL = ["1", "2", "3", "4", "5", "6", "7", "8", "13", "14"]


@pytest.fixture(scope="module")
def data():
    """Every recipe at the test preset (1 torch thread: robust on a shared 2-core machine)."""
    with torch_threads(1):
        return {n: get_recipe(n).compute("test", device="cpu") for n in ALL}


# ----------------------------------------------------------------------------- registry
def test_registry_covers_the_issue_figures():
    assert list(FIGURES) == ALL
    assert expand_figures(["all"]) == ALL
    for number in ALL:                                    # every figure states >= 1 claim of the paper
        claims = get_recipe(number).claims
        assert claims and all(c.source and c.test and c.needs for c in claims), number
        assert len({c.id for c in claims}) == len(claims)
    assert expand_figures(["13", "fig3", "13"]) == ["13", "3"]
    with pytest.raises(ValueError, match="unknown figure '9'; valid: 1, 2, 3, 4"):
        expand_figures(["9"])


def test_sizes_overrides_and_errors():
    assert figure_sizes("7", "quick", width=64)["width"] == 64
    assert figure_sizes("7", "paper") == dict(n=1024, width=256, depth=4, omega=30.0, s0=10.0, s1=0.5,
                                              factors=(0.0, 0.5, 1.0, 2.0, 4.0))
    assert figure_sizes("8", "paper")["width"] == 2048 and figure_sizes("13", "paper")["n"] == 16384
    with pytest.raises(ValueError, match="no size"):
        figure_sizes("7", "quick", colour=1)
    with pytest.raises(ValueError, match="unknown preset"):
        figure_sizes("7", "fast")


def test_quick_preset_trains_with_the_measured_cpu_preset():
    for fig in ("3", "14"):
        sz = figure_sizes(fig, "quick")
        assert (sz["num_samples"], sz["width"], sz["depth"], sz["epochs"]) == (2 ** 14, 128, 4, 500)
    from spectral_probe.models import build_model

    fig1 = figure_sizes("1", "quick")                     # Table 1's rule: parameters ~ samples
    params = sum(p.numel() for p in build_model("siren", width=fig1["width"], depth=fig1["depth"]).parameters())
    assert abs(params / fig1["n"] - 1) < 0.05


def test_paper_preset_uses_the_papers_settings():
    """The sizes the paper states (Sec 2.1-2.2, Figs 1-4, 7, 8, 13, 14 captions, Sec A)."""
    assert figure_sizes("1", "paper") == dict(n=None, width=222, depth=4, epochs=None,
                                              signals=tuple(f"S{j}" for j in range(1, 9)))
    fig2 = figure_sizes("2", "paper")
    assert (fig2["width"], fig2["depth"], fig2["lr_gamma"], fig2["size_scaling"]) == (128, 4, 0.98, 30000.0)
    assert {30000.0, 900000.0} <= set(fig2["scalings"])         # the caption's omega0 and the 30 x 3e4 reading
    fig4 = figure_sizes("4", "paper")
    assert (fig4["n"], fig4["width"], fig4["first_omega"]) == (2 ** 16, 128, 300.0)
    assert "eqn5-paper-low" in fig4["bands"]
    for fig, width in (("3", 222), ("14", 256)):
        sz = figure_sizes(fig, "paper")
        assert (sz["epochs"], sz["width"], sz["depth"], sz["num_samples"]) == (10_000, width, 4, None)
        assert sz["probe_log"] >= 30                                 # probed densely early


# ----------------------------------------------------------------------------- claims
def _checks(number, ds):
    return {c.id: c for c in get_recipe(number).check(ds)}


def test_fig1_siren_falls_then_bottlenecks_and_siren2_stays_above(data):
    ds = data["1"]
    gain = ds.best_psnr - ds.zero_psnr
    siren = ds.best_psnr.sel(model="siren")
    assert float(siren.sel(signal="S1")) > float(siren.sel(signal="S3")) + 5 > float(siren.sel(signal="S4")) + 5
    assert float(gain.sel(model="siren", signal="S8")) < 0.5                          # bottleneck
    assert (ds.best_psnr.sel(model="siren2") >= ds.best_psnr.sel(model="siren")).all()
    assert np.all(np.diff(ds.psi.values) > 0) and list(ds.low_share.values) == [0.999, 0.9, 0.0, 0.0]
    checks = _checks("1", ds)
    assert all(c.status == "pass" for c in checks.values()), checks


def test_fig1_signals_follow_the_papers_words():
    from spectral_probe.signals import fig1_series

    series = fig1_series(4096)
    assert [s.name for s in series] == [f"S{j}" for j in range(1, 9)]
    for s in series:                                       # the low band's energy share is what it says
        spec = np.abs(np.fft.rfft(s.values[:, 0].double().numpy())) ** 2
        f = np.fft.rfftfreq(4096) * 2
        share = spec[(f > 0) & (f <= 0.01)].sum() / spec[f > 0].sum()
        assert share == pytest.approx(s.meta["low_share"], abs=1e-4)
        assert spec[(f > 0.01) & (f < s.meta["low_cut"])].sum() < 1e-9 * spec.sum()


def test_fig2_scaling_is_the_first_layer_frequency_and_panel_a_is_drawn(data):
    ds = data["2"]
    n = ds.attrs["n"]
    np.testing.assert_allclose(ds.first_omega, ds.scaling * n / 150_000)
    assert ds.psnr_scaling.dims == ("scaling", "train_epoch") and ds.sizes["width"] == 2
    assert list(ds.panel.values) == ["target", "siren", "error"] and ds.sizes["frame"] >= 8
    checks = _checks("2", ds)
    assert checks["best-scaling-3e4"].value == pytest.approx(float(ds.best_scaling.max()))
    assert checks["bigger-network-no-better"].text.startswith("3x32")


def test_fig2_spectrogram_of_a_tone():
    from spectral_probe.figures.fig2 import spectrogram_db

    x = np.sin(2 * np.pi * 0.1 * np.arange(8192))
    f, t, s = spectrogram_db(x)
    assert f[np.argmax(s[:, 3])] == pytest.approx(0.1, abs=1 / 1024)
    assert s.shape == (513, len(t)) and len(t) == 15


def test_fig3_siren_output_stuck_near_zero(data):
    ds = data["3"]
    assert abs(ds.attrs["siren_best_psnr"] - ds.attrs["zero_psnr"]) < 0.5          # spectral bottleneck
    assert float(ds.output.std()) < 0.2 * float(ds.target.std())
    last = ds.isel(epoch=-1)
    half = float(np.interp(0.5, ds.fk, ds.target_cum_psd))
    assert half < 0.5                                                                # target: high band
    for layer in ("layers.1", "layers.2", "layers.3"):
        assert float(np.interp(0.5, ds.fk, last.cum_psd.sel(layer=layer))) > 0.9     # hidden: low band
    widths = np.diff(ds.hist_edges.values, axis=-1)
    mass = (ds.hist.values * widths).sum(-1)
    np.testing.assert_allclose(mass, 1.0, atol=1e-4)                                 # densities, no outliers
    assert list(ds.epoch.values) == [0, figure_sizes("3", "test")["epochs"]]
    checks = _checks("3", ds)
    assert checks["hidden-psd-low"].status == "pass" and checks["zero-output"].status == "pass"


def test_fig3_sample_window_has_the_most_energy():
    from spectral_probe.figures.trainrun import highest_energy_window

    x = np.zeros(5000)
    x[3700:3760] = 1.0
    start = highest_energy_window(x, 200)
    assert start <= 3700 and start + 200 >= 3760
    assert highest_energy_window(np.ones(10), 200) == 0


def test_fig4_low_fits_high_fails(data):
    ds = data["4"]
    low, high = ds.sel(band="low"), ds.sel(band="high")
    assert float(low.best_psnr) > float(low.zero_psnr) + 10
    assert float(high.best_psnr) < float(high.zero_psnr) + 0.5
    n = ds.attrs["n"]
    final = high.spectrum.isel(epoch=-1)
    tones = np.rint(high.tones.values * n / 2).astype(int)                            # tone -> bin k
    assert float(final[tones].max()) < 1e-3 * float(final.max())                     # NTK blind to the tones
    np.testing.assert_allclose(ds.log1p_s, np.log1p(ds.spectrum / n ** 2))
    steps = list(ds.epoch.values)
    assert steps[:2] == [0, 1] and steps[-1] == 150 and ds.output.sizes["epoch"] == len(steps)
    assert steps == list(snapshot_steps(figure_sizes("4", "test")))                  # log-spaced, dense early
    assert ds.attrs["first_omega"] == figure_sizes("4", "test")["first_omega"]
    checks = _checks("4", ds)
    assert checks["low-reconstructed"].status == "pass" and checks["high-output-zero"].status == "pass"
    assert checks["literal-low-reconstructed"].status == "missing"                   # no such band at test size


def test_fig5_matches_theorem31(data):
    ds = data["5"]
    np.testing.assert_allclose(ds.measured_std, ds.theorem_std, rtol=0.03)
    d = ds.attrs["fan_in"]
    np.testing.assert_allclose(ds.theorem_std, np.sqrt(1 + d * ds.scale ** 2 / 2))
    assert float(ds.tv_theorem.max()) < 0.05
    assert (ds.tv_sitzmann.sel(scale=[0.25, 1.0]) > 0.4).all() and float(ds.tv_sitzmann.sel(scale=0.0)) < 0.05


def test_fig6_eqn11_beats_no_noise(data):
    ds = data["6"]
    audio = ds.sel(signal="audio")
    assert float(audio.psnr.sel(f0=1.0, f1=1.0)) > float(audio.psnr.sel(f0=0.0, f1=0.0)) + 10
    assert math.isclose(float(audio.s0.sel(f0=1.0)), float(audio.s0_eqn11))
    assert ds.psnr.shape == (2, 2, 2) and np.isfinite(ds.psnr).all()
    assert ds.sel(signal="image").grid_shape.item() == "16x16"


def test_fig7_noise_broadens_the_ntk(data):
    ds = data["7"]
    assert np.all(np.diff(ds.effective_rank.values) > 0)
    assert np.all(np.diff(ds.high_frequency_share.values) > 0)
    for model in ("siren", "siren2"):
        np.testing.assert_allclose(np.diag(ds.kernel.sel(model=model)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ds.eigenvalues.isel(mode=0), 1.0)
    np.testing.assert_allclose(ds.spectrum_share.isel(k=-1), 1.0)


@pytest.mark.parametrize("fig", ["8", "13"])
def test_fig8_13_preactivation_std_follows_theorem31(data, fig):
    ds = data[fig]
    d, s1 = ds.attrs["width"], ds.attrs["s1"]
    bias = theory.pytorch_bias_variance(d)
    std = ds.act_std.sel(kind="pre", layer="layers.1")
    assert math.isclose(float(std.sel(model="siren2")), theory.theorem31_std(d, s1, 30.0, bias), rel_tol=0.08)
    assert math.isclose(float(std.sel(model="siren")), theory.theorem31_std(d, 0.0, 30.0, bias), rel_tol=0.08)
    post = ds.act_std.sel(kind="post", layer="layers.0")
    np.testing.assert_allclose(post, math.sqrt(theory.ARCSINE_VARIANCE), rtol=0.03)
    labels = ds.theory_label.sel(model="siren2", layer="layers.1", kind="pre").values
    assert labels[0].startswith("network (Thm 3.1 + bias)") and labels[1] == ""     # s1 = 1: bias negligible
    labels = ds.theory_label.sel(model="siren", layer="layers.1", kind="pre").values
    assert "no bias" in labels[1]                                                     # both drawn: 7 % apart
    # the overlay is the prediction for the network shown: measured std within 5 %
    net = ds.std_network.sel(layer="layers.1")
    np.testing.assert_allclose(std, net, rtol=0.05)
    np.testing.assert_allclose(net.sel(model="siren"), theory.theorem31_std(d, 0.0, 30.0, bias))
    assert float(ds.std_theorem.sel(model="siren", layer="layers.1")) == pytest.approx(1.0)
    # the noisy layer-1 post-activation has more power above 0.05 cycles/sample
    psd = ds.psd.sel(layer="layers.0", kind="post")
    hi = ds.freq > 0.05
    share = psd.where(hi).sum("freq") / psd.sum("freq")
    assert float(share.sel(model="siren2")) > 10 * float(share.sel(model="siren"))


def test_fig13_covers_all_layers_and_theory_fits(data):
    ds = data["13"]
    assert list(ds.layer.values) == ["input", "layers.0", "layers.1", "layers.2", "layers.3"]
    row = ds.sel(model="siren2", layer="layers.1", kind="pre")
    edges = row.hist_edges.values
    tv = theory.total_variation(row.hist.values, edges, theory.gaussian_cdf,
                                std=float(theory.theorem31_std(ds.attrs["width"], ds.attrs["s1"])))
    assert tv < 0.1
    laplace = ds.sel(model="siren2", layer="layers.0", kind="pre")          # Sec A: "a Laplace distribution"
    assert str(laplace.theory_label.values[0]).startswith("Laplace fit")
    assert str(ds.sel(model="siren", layer="layers.0", kind="pre").theory_label.values[0]) == ""
    assert _checks("13", ds)["layer1-laplace"].status == "pass"


def test_fig14_siren2_fits_and_widens_layer2(data):
    ds = data["14"]
    assert ds.attrs["siren2_best_psnr"] > ds.attrs["siren_best_psnr"] + 15
    start = ds.act_std.sel(step=0, layer="layers.1")
    assert float(start.sel(model="siren2")) > 3 * float(start.sel(model="siren"))
    assert ds.hist.dims == ("model", "epoch", "layer", "bin") and "output" in ds.layer.values
    assert ds.cum_psd.dims == ("model", "epoch", "layer", "fk")
    assert list(ds.step.values[:2]) == [0, 1] and list(ds.step.values) == list(probe_steps(figure_sizes("14", "test")))
    share = 1 - np.interp(ds.attrs["band_edge"], ds.fk, ds.cum_psd_steps.sel(model="siren2", layer="output")[-1])
    assert float(ds.hf_share.sel(model="siren2", layer="output")[-1]) == pytest.approx(share, rel=1e-6)
    assert _checks("14", ds)["siren2-recovers-target"].status == "pass"


# ----------------------------------------------------------------------------- plots and files
@pytest.mark.parametrize("fig", ALL)
def test_plots_are_labelled_and_small(data, fig, tmp_path):
    figure = get_recipe(fig).plot(data[fig])
    axes = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert axes and all(ax.get_title() for ax in axes)
    assert all(ax.get_ylabel() or ax.get_xlabel() for ax in axes)
    assert figure._suptitle is not None and figure._suptitle.get_text().startswith(f"Fig {fig}")
    path = tmp_path / f"fig{fig}.png"
    figure.savefig(path, dpi=60)
    assert 10_000 < path.stat().st_size < 1_000_000
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    for ax in axes:                                        # legends sit outside the data
        legend = ax.get_legend()
        if legend is not None:
            box = legend.get_window_extent(renderer)
            area = ax.get_window_extent(renderer)
            overlap = min(box.x1, area.x1) - max(box.x0, area.x0), min(box.y1, area.y1) - max(box.y0, area.y0)
            assert min(overlap) <= 1.0, (fig, ax.get_title())


@pytest.mark.parametrize("fig", ["2", "5", "13", "14"])
def test_dataset_round_trip_replots(data, fig, tmp_path):
    path = save_dataset(data[fig], tmp_path / f"fig{fig}.h5")
    back = load_dataset(path)
    for name, var in data[fig].data_vars.items():
        if var.dtype.kind in "fiu":
            np.testing.assert_allclose(back[name].values, var.values, equal_nan=True)
        else:
            assert (back[name].values == var.values).all()
    assert get_recipe(fig).plot(back).axes


def test_make_figure_writes_png_and_h5_with_checks(tmp_path):
    out = make_figure("5", "test", out=tmp_path, formats=("png", "pdf"), device="cpu")
    assert [p.name for p in out.figure_paths] == ["fig5.png", "fig5.pdf"]
    assert out.data_path == tmp_path / "fig5.h5" and out.data_path.exists()
    assert out.dataset.attrs["compute_seconds"] >= 0
    stored = {c.id: c.status for c in read_checks(load_dataset(out.data_path))}
    assert stored == {"std-theorem31": "pass", "gaussian": "pass"}


def test_targets(tmp_path):
    assert check_target_spec(None) is None and check_target_spec("synthetic:high") == "synthetic"
    with pytest.raises(FileNotFoundError, match="not found"):
        check_target_spec(str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match="2-D target"):
        resize_image(load_target("synthetic:low"), 8)


def test_offset_applies_to_audio_files_only():
    assert audio_offset("tetris.wav", 8192) == {"offset": 8192}
    assert audio_offset("synthetic:broadband", 8192) == {} and audio_offset("tetris.wav", 0) == {}


@pytest.mark.slow
def test_fig14_on_tetris(tetris):
    ds = get_recipe("14").compute("test", str(tetris), device="cpu", offset=16384)
    assert ds.attrs["target_caption"] == "tetris"
    assert ds.attrs["target_name"] == "tetris"
    assert abs(ds.attrs["siren_best_psnr"] - ds.attrs["zero_psnr"]) < 0.5
    assert ds.attrs["siren2_best_psnr"] > ds.attrs["siren_best_psnr"] + 15


def test_image_target_is_small_and_gray():
    pytest.importorskip("skimage")
    cam = image_target(None, 32)
    assert cam.grid_shape == (32, 32) and cam.channels == 1
    assert float(cam.values.min()) >= -1 and float(cam.values.max()) <= 1


# ----------------------------------------------------------------------------- CLI
def run(*args):
    return CliRunner().invoke(main, ["figure", *args])


def test_cli_writes_figure(tmp_path):
    res = run("5", "--preset", "test", "--out", str(tmp_path), "--device", "cpu", "--threads", "1")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "fig5.png").exists() and (tmp_path / "fig5.h5").exists()
    assert "wrote" in res.output


@pytest.mark.parametrize("args,message", [
    (["9"], "unknown figure '9'"),
    (["3", "--target", "nowhere.wav"], "not found"),
    (["5", "--format", "jpg"], "unknown --format"),
    (["5", "--size", "colour=3"], "no selected figure has it"),
    (["3", "--preset", "paper", "--device", "cpu"], "pass --yes"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message):
    res = run(*args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], res.output


def test_cli_paper_on_cpu_warns_and_continues_with_yes(monkeypatch, tmp_path):
    import spectral_probe.figures as figures

    calls = []

    def fake(numbers, preset, **kwargs):
        calls.extend((number, preset) for number in numbers)
        return []

    monkeypatch.setattr(figures, "make_figures", fake)
    res = run("7", "--preset", "paper", "--device", "cpu", "--yes", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert calls == [("7", "paper")]
    assert "warning: --preset paper on a CPU" in res.output and "about" in res.output
