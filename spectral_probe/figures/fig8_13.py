"""Figs 8 and 13: activation distributions and layer-averaged PSDs at initialisation, SIREN vs SIREN^2.

Both models use ``omega0 = 30`` in every layer (SIREN^2's convention; the
authors' notebook uses it for SIREN too) and SIREN^2 adds WINNER noise
``s0``, ``s1`` (Eqns 7-9).  Inputs are ``linspace(-1, 1, N)``.

Theory overlays (stored with the data, see :func:`theory_curves`):

* input: ``U(-1, 1)``;
* post-activations: the arcsine law (Sitzmann et al. 2020, Lemma 1.5), and for
  layers >= 2 the exact law of ``sin(Z)``, ``Z ~ N(0, sigma^2)``;
* pre-activations of layers >= 2: ``N(0, sigma^2)`` for the network shown
  (:func:`spectral_probe.theory.siren_preactivation_stds`: Theorem 3.1 with
  ``s = s1`` for layer 2 of SIREN^2 and 0 otherwise, plus PyTorch's default
  bias, which our layers keep, and the second moment of each layer's actual
  input), and, where it differs by more than 1 %, Theorem 3.1 as the paper
  states it (``sqrt(1 + d s^2 / 2)``, bias-free; Sitzmann's N(0, 1) at s = 0).
  At width 2048 they differ by 7 % for ``s = 0`` (1.07 vs 1) and coincide for
  ``s1 = 1`` (32.0); at width 128 the bias makes it 1.83 vs 1.
* The first layer's pre-activation ``omega0 (w x + b)`` has no closed form here.

Layers are counted from 1 in labels (hook point ``layers.0`` is layer 1).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import theory
from .claims import Claim, Verdict
from .common import CPU_GEMM_FLOPS, init_activations, json_attr, maybe_save
from .plotting import MODEL_COLORS, MODEL_LABELS, hook_label, label_axes, new_figure, step_hist, suptitle
from .sizes import figure_sizes

__all__ = ["compute_fig8", "compute_fig13", "plot_fig8", "plot_fig13", "estimate_fig8", "estimate_fig13",
           "theory_curves", "compare_at_init", "CLAIMS_FIG8", "CLAIMS_FIG13", "HIGH_BAND", "LOW_BAND"]

#: points of each theory curve
_CURVE_POINTS = 400
_CURVES = ("primary", "secondary")
#: relative difference above which Theorem 3.1 as stated is drawn beside the network's prediction
_DIFFER = 0.01
#: "high frequencies" of the claims: above half-Nyquist (0.25 cycles/sample; Fig 7's share above pi/2)
HIGH_BAND = 0.25
#: "low frequencies": below 0.05 x Nyquist (0.025 cycles/sample; well inside SIREN's band)
LOW_BAND = 0.025


def _layer_scale(model_s: tuple[float, float], layer: str) -> float:
    """WINNER scale acting on the weights *into* hook layer ``layers.i`` (s0 for i=0, s1 for i=1, else 0)."""
    index = int(layer.split(".")[1])
    return model_s[index] if index < 2 else 0.0


def _curves_for(layer: str, kind: str, x: np.ndarray, stds: dict[str, tuple[float, float]]):
    """``[(label, pdf), ...]`` (up to two) for one hook point; empty when no closed form applies.

    ``stds`` maps ``layers.i`` (i >= 1) to (network prediction, Theorem 3.1 as stated).
    """
    if layer == "input":
        return [("U(-1, 1)", np.where(np.abs(x) <= 1, 0.5, 0.0))]
    if layer == "output":
        return []
    index = int(layer.split(".")[1])
    if index == 0:
        if kind == "post":
            return [("arcsine (Sitzmann)", theory.arcsine_pdf(x))]
        fit = stds.get("layers.0.pre")                 # (mean, std) measured: the Laplace fit of Sec A
        return [(f"Laplace fit (std {fit[1]:.3g})", theory.laplace_pdf(x, fit[1], fit[0]))] if fit else []
    net, stated = stds[layer]
    if kind == "pre":
        curves = [(f"network (Thm 3.1 + bias) N(0, {net:.3g}$^2$)", theory.gaussian_pdf(x, net))]
        if abs(net / stated - 1.0) > _DIFFER:
            name = (f"Thm 3.1 as stated (no bias) N(0, {stated:.3g}$^2$)" if stated > 1.0 + 1e-9
                    else "Thm 3.1 / Sitzmann, no bias: N(0, 1)")
            curves.append((name, theory.gaussian_pdf(x, stated)))
        return curves
    return [("arcsine (Sitzmann)", theory.arcsine_pdf(x)),
            (f"sin(N(0, {net:.3g}$^2$))", theory.sine_gaussian_pdf(x, net))]


def predicted_stds(width: int, depth: int, omega: float, s: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """``layers.i`` -> (std predicted for the network shown, Theorem 3.1 as stated), for i = 1 .. depth-1."""
    net = theory.siren_preactivation_stds(width, depth, omega, s, bias=True)
    return {f"layers.{i}": (net[i - 1], theory.theorem31_std(width, s[1] if i == 1 else 0.0, omega))
            for i in range(1, depth)}


def theory_curves(ds: xr.Dataset, width: int, omega: float, scales: dict[str, tuple[float, float]],
                  depth: int | None = None) -> xr.Dataset:
    """Theory densities on each panel's histogram range.

    Returns
    -------
    xr.Dataset
        ``theory_x (model, layer, kind, tx)``, ``theory_pdf (model, layer, kind, curve, tx)``
        (NaN where none), ``theory_label (model, layer, kind, curve)`` ("" where none),
        ``std_network``/``std_theorem (model, layer)``: the predicted pre-activation stds (NaN where none).
    """
    depth = depth or 1 + max(int(str(v).split(".")[1]) for v in ds.layer.values if str(v).startswith("layers."))
    stds = {str(m): predicted_stds(width, depth, omega, scales[str(m)]) for m in ds.model.values}
    if "layers.0" in ds.layer.values and "pre" in ds.kind.values:
        for m in ds.model.values:                      # Sec A: SIREN^2's layer-1 pre-activation "Laplace"
            if scales[str(m)][0] > 0:
                row = ds.sel(model=m, layer="layers.0", kind="pre")
                stds[str(m)]["layers.0.pre"] = (float(row.act_mean), float(row.act_std))
    std_net = np.full((ds.sizes["model"], ds.sizes["layer"]), np.nan)
    std_thm = np.full_like(std_net, np.nan)
    shape = (ds.sizes["model"], ds.sizes["layer"], ds.sizes["kind"])
    tx = np.full(shape + (_CURVE_POINTS,), np.nan)
    pdf = np.full(shape + (len(_CURVES), _CURVE_POINTS), np.nan)
    labels = np.full(shape + (len(_CURVES),), "", dtype=object)
    for m, model in enumerate(ds.model.values):
        for i, layer in enumerate(ds.layer.values):
            for j, kind in enumerate(ds.kind.values):
                edges = ds.hist_edges.values[m, i, j]
                if not np.all(np.isfinite(edges)):
                    continue
                x = np.linspace(edges[0], edges[-1], _CURVE_POINTS)
                tx[m, i, j] = x
                for c, (name, values) in enumerate(_curves_for(str(layer), str(kind), x, stds[str(model)])):
                    pdf[m, i, j, c], labels[m, i, j, c] = values, name
            if str(layer) in stds[str(model)] and str(layer) != "layers.0":
                std_net[m, i], std_thm[m, i] = stds[str(model)][str(layer)]
    dims = ("model", "layer", "kind")
    return xr.Dataset({"theory_x": (dims + ("tx",), tx), "theory_pdf": (dims + ("curve", "tx"), pdf),
                       "theory_label": (dims + ("curve",), labels.astype(str)),
                       "std_network": (("model", "layer"), std_net), "std_theorem": (("model", "layer"), std_thm)},
                      coords={"curve": list(_CURVES)})


def compare_at_init(sz: dict, layers, *, device="auto", seed: int = 0) -> xr.Dataset:
    """Probe SIREN and SIREN^2 at initialisation and attach the theory curves (dims model, layer, kind, ...)."""
    common = dict(width=sz["width"], depth=sz["depth"], first_omega=sz["omega"], hidden_omega=sz["omega"])
    scales = {"siren": (0.0, 0.0), "siren2": (sz["s0"], sz["s1"])}
    parts = [init_activations("siren", sz["n"], sz["bins"], device=device, seed=seed, layers=layers, **common),
             init_activations("siren2", sz["n"], sz["bins"], device=device, seed=seed, layers=layers,
                              s0=sz["s0"], s1=sz["s1"], **common)]
    ds = xr.concat(parts, dim="model", coords="minimal", compat="override").assign_coords(model=["siren", "siren2"])
    return ds.merge(theory_curves(ds, sz["width"], sz["omega"], scales, sz["depth"]))


def _attrs(figure: str, preset: str, sz: dict, seed: int) -> dict:
    return {"figure": figure, "preset": preset, "n": sz["n"], "width": sz["width"], "depth": sz["depth"],
            "omega0": sz["omega"], "s0": sz["s0"], "s1": sz["s1"], "seed": seed, "sizes": json_attr(sz),
            "psd": "layer-averaged periodogram (mean of per-neuron PSDs), density scaling, cycles/sample",
            "layers": "hook point layers.i is layer i+1 in the figure"}


def compute_fig8(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                 seed: int = 0, **overrides) -> xr.Dataset:
    """Input, pre- and post-activations up to layer ``last_layer`` (1-based) of SIREN and SIREN^2 at init.

    Returns
    -------
    xr.Dataset
        The probe layout with a ``model`` axis (``hist``, ``hist_edges``,
        ``psd (model, layer, kind, freq)``, ``act_std`` ...) plus the theory curves.
    """
    sz = figure_sizes("8", preset, **overrides)
    layers = ["input"] + [f"layers.{i}.*" for i in range(min(sz["last_layer"], sz["depth"]))]
    ds = compare_at_init(sz, layers, device=device, seed=seed)
    ds.attrs = _attrs("8", preset, sz, seed)
    return maybe_save(ds, out, "fig8")


def compute_fig13(preset: str = "quick", target: str | None = None, out=None, *, device="auto",
                  seed: int = 0, **overrides) -> xr.Dataset:
    """All layers' pre/post-activations of SIREN and SIREN^2 at init with Theorem 3.1 / Sitzmann curves.

    Returns
    -------
    xr.Dataset
        As :func:`compute_fig8`, for every hidden layer.
    """
    sz = figure_sizes("13", preset, **overrides)
    ds = compare_at_init(sz, ["input", "layers.*"], device=device, seed=seed)
    ds.attrs = _attrs("13", preset, sz, seed)
    return maybe_save(ds, out, "fig13")


def _points(ds: xr.Dataset) -> list[tuple[str, str]]:
    return [(str(layer), str(kind)) for layer in ds.layer.values for kind in ds.kind.values
            if np.all(np.isfinite(ds.hist_edges.sel(layer=layer, kind=kind).values))]


def _plot_init(ds: xr.Dataset, title: str):
    points = _points(ds)
    fig, axes = new_figure(len(points), 3, 17, 2.05 * len(points) + 0.6)
    for r, (layer, kind) in enumerate(points):
        for c, model in enumerate(("siren", "siren2")):
            ax, row = axes[r, c], ds.sel(model=model, layer=layer, kind=kind)
            step_hist(ax, row.hist_edges, row.hist, color=MODEL_COLORS[model], fill=True, alpha=0.35,
                      label=f"measured (std {float(row.act_std):.3g})")
            for k, style in zip(range(row.sizes["curve"]), ("-", "--")):
                if str(row.theory_label.values[k]):
                    ax.plot(row.theory_x, row.theory_pdf.isel(curve=k), color="k", ls=style, lw=1,
                            label=str(row.theory_label.values[k]))
            ax.set_ylim(0, 1.35 * float(np.nanmax(row.hist)))
            label_axes(ax, hook_label(layer, kind) if r == len(points) - 1 else None, "density",
                       f"{MODEL_LABELS[model]}: {hook_label(layer, kind)}", legend=True, fontsize=6.5)
        ax = axes[r, 2]
        for model in ("siren", "siren2"):
            psd = ds.psd.sel(model=model, layer=layer, kind=kind)
            ax.loglog(ds.freq[1:], psd[1:], color=MODEL_COLORS[model], lw=0.9, label=MODEL_LABELS[model])
        label_axes(ax, "frequency (cycles/sample)" if r == len(points) - 1 else None, "PSD",
                   f"layer-averaged PSD: {hook_label(layer, kind)}", legend=(r == 0), fontsize=7)
    suptitle(fig, title, fontsize=11)
    return fig


def plot_fig8(ds: xr.Dataset):
    """Rows: input, then pre/post of each layer; columns: SIREN, SIREN^2 histograms, PSDs of both."""
    a = ds.attrs
    return _plot_init(ds, f"Fig 8: activations at initialisation, SIREN vs SIREN$^2$ (s0={a['s0']:g}, "
                          f"s1={a['s1']:g}), {a['depth']}x{a['width']}, N = {a['n']} inputs")


def plot_fig13(ds: xr.Dataset):
    """As Fig 8 for all layers, with Theorem 3.1 and Sitzmann's analytic densities."""
    a = ds.attrs
    return _plot_init(ds, f"Fig 13: all layers at initialisation with Theorem 3.1 / Sitzmann densities "
                          f"(width {a['width']}, N = {a['n']} inputs, s0={a['s0']:g}, s1={a['s1']:g}, "
                          rf"$\omega_0$={a['omega0']:g})")


def _estimate(sz: dict) -> float:
    # two models: forward GEMMs plus per-hook-point FFT statistics (~2e-8 s per value)
    flops = 2 * sz["n"] * sz["width"] ** 2 * (sz["depth"] - 1)
    values = sz["n"] * sz["width"] * (2 * sz["depth"] + 1)
    return 1.0 + 2 * (flops / CPU_GEMM_FLOPS + values * 2e-8)


def estimate_fig8(preset: str) -> float:
    """Rough CPU seconds of :func:`compute_fig8`."""
    return _estimate(figure_sizes("8", preset))


def estimate_fig13(preset: str) -> float:
    """Rough CPU seconds of :func:`compute_fig13`."""
    return _estimate(figure_sizes("13", preset))


# ----------------------------------------------------------------------------- claims
def _points_psd(ds) -> list[tuple[str, str]]:
    return [(layer, kind) for layer, kind in _points(ds) if layer.startswith("layers.")]


def _band_power(ds, model: str, layer: str, kind: str, above: float | None = None, below: float | None = None):
    psd = ds.psd.sel(model=model, layer=layer, kind=kind)
    f = ds.freq
    keep = (f > above) if above is not None else (f < below) & (f > 0)
    return float(psd.where(keep).sum())


def _high_every_layer(ds) -> Verdict:
    ratios = {(layer, kind): _band_power(ds, "siren2", layer, kind, above=HIGH_BAND)
              / max(_band_power(ds, "siren", layer, kind, above=HIGH_BAND), 1e-300)
              for layer, kind in _points_psd(ds)}
    worst = min(ratios, key=ratios.get)
    return Verdict(min(ratios.values()) > 1.0, min(ratios.values()),
                   f"SIREN^2 / SIREN PSD power above half-Nyquist, {len(ratios)} hook points: min "
                   f"{ratios[worst]:.3g} ({hook_label(*worst)}), max {max(ratios.values()):.3g}")


def _std_prediction(ds) -> Verdict:
    rows = []
    for model in ds.model.values:
        for layer in ds.layer.values:
            net = float(ds.std_network.sel(model=model, layer=layer))
            if np.isfinite(net):
                rows.append((str(model), str(layer), float(ds.act_std.sel(model=model, layer=layer, kind="pre")), net))
    rel = [abs(m / p - 1) for _, _, m, p in rows]
    return Verdict(bool(rows) and max(rel) < 0.05, max(rel) if rel else float("nan"),
                   "pre-activation std measured / predicted: " + ", ".join(
                       f"{MODEL_LABELS[m].replace('$^2$', '^2')} L{int(layer.split('.')[1]) + 1} {a:.3g}/{p:.3g}"
                       for m, layer, a, p in rows) + f" (max deviation {100 * max(rel):.1f} %; within 5 %)")


def _laplace(ds) -> Verdict:
    row = ds.sel(model="siren2", layer="layers.0", kind="pre")
    edges, hist = row.hist_edges.values, row.hist.values
    std, mean = float(row.act_std), float(row.act_mean)
    tv_l = theory.total_variation(hist, edges, theory.laplace_cdf, std=std, mean=mean)
    tv_g = theory.total_variation(hist, edges, theory.gaussian_cdf, std=std, mean=mean)
    return Verdict(tv_l < tv_g, tv_l, f"SIREN^2 layer-1 pre-activation: total variation to a Laplace fit {tv_l:.3f}, "
                   f"to a Gaussian fit {tv_g:.3f} (same mean and std)")


def _low_deep(ds) -> Verdict:
    deep = [layer for layer in ds.layer.values if str(layer).startswith("layers.") and int(str(layer)[7:]) >= 2]
    ratios = [_band_power(ds, "siren2", str(layer), "pre", below=LOW_BAND)
              / _band_power(ds, "siren", str(layer), "pre", below=LOW_BAND) for layer in deep]
    return Verdict(bool(ratios) and max(ratios) < 1.0, max(ratios) if ratios else float("nan"),
                   "SIREN^2 / SIREN pre-activation PSD power below 0.05 x Nyquist: " + ", ".join(
                       f"layer {int(str(layer)[7:]) + 1} {r:.3g}" for layer, r in zip(deep, ratios)))


_HIGH = ("psd", "freq")
CLAIMS_FIG8 = (
    Claim("siren2-more-high-frequency", 'Fig 8 caption: "SIREN^2 maintains broader spectral coverage with larger '
          'amplitudes at higher frequencies. This behavior persists through depth"', "SIREN^2's PSD power above "
          "half-Nyquist exceeds SIREN's at every pre/post hook point", _HIGH, _high_every_layer),
    Claim("std-network-prediction", 'Fig 8 caption: "SIREN^2 exhibits higher variance in its pre-activation '
          'distributions" (Theorem 3.1)', "pre-activation std within 5 % of Theorem 3.1 for the network shown "
          "(with its biases)", ("act_std", "std_network"), _std_prediction),
)
CLAIMS_FIG13 = (
    Claim("siren2-more-high-frequency", 'Sec A: "a consistent increase in high-frequency power across all layers"',
          "SIREN^2's PSD power above half-Nyquist exceeds SIREN's at every pre/post hook point", _HIGH,
          _high_every_layer),
    Claim("siren2-less-low-frequency-deep", 'Sec A: "a notable reduction in low-frequency power for the layer-3 and '
          'layer-4 distributions"', "SIREN^2's pre-activation PSD power below 0.05 x Nyquist is below SIREN's in "
          "layers 3 and 4", _HIGH, _low_deep),
    Claim("std-network-prediction", 'Fig 13 caption: "analytical estimates from the present Theorem 3.1 ... closely '
          'matching empirical data"', "pre-activation std of layers 2-4 within 5 % of Theorem 3.1 for the network "
          "shown (with its biases)", ("act_std", "std_network"), _std_prediction),
    Claim("layer1-laplace", 'Sec A: "except for the layer-1 pre-activations, which appears to follow a Laplace '
          'distribution"', "SIREN^2's layer-1 pre-activation histogram is closer (total variation) to a Laplace than "
          "to a Gaussian of the same mean and std", ("hist", "hist_edges", "act_std", "act_mean"), _laplace),
)
