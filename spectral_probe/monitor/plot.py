"""The ``spectral-probe watch --plot`` figure and the panels it shares with the TensorBoard images.

Figures are :class:`matplotlib.figure.Figure` objects rendered with Agg
(:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`); nothing here touches pyplot or the
global backend.

>>> from spectral_probe.store import open_run
>>> fig = run_figure(open_run("run.h5"))      # PSNR + floor, std, cumulative spectra, NTK S(k)
>>> save_run_figure(open_run("run.h5"), "run.png")
"""

from __future__ import annotations

import math
import os
import textwrap
from typing import Mapping, Sequence

import numpy as np

from .spectra import TargetSpectrum, alias, hidden_layer, layer_cumulatives, ntk_frequencies, target_from_run

__all__ = ["run_figure", "save_run_figure", "run_verdict", "draw_psnr", "draw_cumulative", "draw_ntk",
           "render_rgb", "CumulativeImage"]

#: colours of the target and of the two layers the bottleneck watch compares with it
TARGET_COLOR, HIDDEN_COLOR, OUTPUT_COLOR = "black", "tab:blue", "tab:red"


# --------------------------------------------------------------------------- panels
def draw_psnr(ax, steps, psnr, zero_psnr: float | None = None, gain_db: float | None = None,
              onset: int | None = None) -> None:
    """PSNR by epoch with the zero-output floor (dashed), the watch's floor + ``gain_db`` line and its onset."""
    ax.plot(steps, psnr, color="tab:green", lw=1.2, label="training PSNR")
    if zero_psnr is not None and math.isfinite(zero_psnr):
        ax.axhline(zero_psnr, color="black", ls="--", lw=1.0, label=f"zero-output floor {zero_psnr:.2f} dB")
        if gain_db is not None:
            ax.axhline(zero_psnr + gain_db, color="gray", ls=":", lw=1.0,
                       label=f"floor + {gain_db:g} dB (watch threshold)")
    if onset is not None:
        ax.axvline(onset, color="tab:purple", ls="-.", lw=1.0, label=f"bottleneck onset (epoch {onset})")
    ax.set(xlabel="epoch", ylabel="PSNR [dB]", title="training PSNR")
    ax.legend(fontsize=7, frameon=False, loc="lower right")


def draw_cumulative(ax, freqs: np.ndarray, curves: Mapping[str, np.ndarray], target_cdf: np.ndarray | None,
                    hidden: str | None = None, step: int | None = None) -> None:
    """Normalised cumulative spectra: the target's, the last hidden layer's, the output's (others faint).

    Parameters
    ----------
    freqs
        (F,) frequencies [fraction of Nyquist].
    curves
        ``alias -> (F,)`` cumulative spectra (see :func:`~spectral_probe.monitor.spectra.layer_cumulatives`).
    target_cdf
        (F,) the target's, or None.
    hidden
        Alias of the last hidden pre-activation (highlighted).
    """
    for name, cdf in curves.items():
        if name not in (hidden, "output") and name.endswith(".pre"):
            ax.plot(freqs, cdf, color="0.75", lw=0.8)
    if hidden in curves:
        ax.plot(freqs, curves[hidden], color=HIDDEN_COLOR, lw=1.5, label=f"last hidden ({hidden})")
    if "output" in curves:
        ax.plot(freqs, curves["output"], color=OUTPUT_COLOR, lw=1.5, label="output")
    if target_cdf is not None:
        ax.plot(freqs, target_cdf, color=TARGET_COLOR, lw=2.0, ls="--", label="target")
    where = f" (epoch {step})" if step is not None else ""
    ax.set(xlabel="frequency [fraction of Nyquist]", ylabel="cumulative power (DC left out)",
           title=f"cumulative spectra{where}", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=7, frameon=False, loc="lower right")


def draw_ntk(ax, snapshots: Sequence[tuple[int, np.ndarray, np.ndarray]], target: TargetSpectrum | None = None,
             band: Sequence[float] | None = None) -> None:
    """NTK ``S(k)`` snapshots, each normalised to unit sum, on a log axis; the target's spectrum beside them.

    Parameters
    ----------
    snapshots
        ``(epoch, freqs, S)``: frequencies [fraction of Nyquist] and one-sided ``S(k)``.
    target
        The target's spectrum (normalised the same way), or None.
    band
        The target's dominant band ``(lo, hi)`` [fraction of Nyquist], shaded.
    """
    from matplotlib import colormaps
    from matplotlib.ticker import LogLocator, NullLocator

    cmap = colormaps["viridis"]
    peaks = []
    for i, (epoch, freqs, s) in enumerate(snapshots):
        s = np.asarray(s, dtype=np.float64)
        total = np.nansum(s[1:])
        if not np.isfinite(total) or total <= 0:
            continue
        color = cmap(i / max(len(snapshots) - 1, 1))
        share = s[1:] / total
        peaks.append(np.nanmax(share))
        ax.semilogy(freqs[1:], np.clip(share, 1e-300, None), color=color, lw=1.0, label=f"S(k), epoch {epoch}")
    if target is not None:
        psd = target.psd / max(float(np.sum(target.psd)), np.finfo(float).tiny)
        peaks.append(np.nanmax(psd))
        ax.semilogy(target.freqs, np.clip(psd, 1e-300, None), color=TARGET_COLOR, lw=0.8, alpha=0.6,
                    label="target PSD")
    if band is not None and len(band) == 2 and all(np.isfinite(band)):
        ax.axvspan(band[0], band[1], color="tab:orange", alpha=0.12, label="target's dominant band")
    if peaks and np.isfinite(max(peaks)) and max(peaks) > 0:
        ax.set_ylim(max(peaks) * 1e-8, max(peaks) * 3)      # 80 dB below the highest bin
    ax.yaxis.set_major_locator(LogLocator(numticks=6))      # few ticks: log axes dominate the draw time
    ax.yaxis.set_minor_locator(NullLocator())
    title = "NTK S(k)" + (f" (epoch {snapshots[0][0]})" if len(snapshots) == 1 else "")
    ax.set(xlabel="frequency [fraction of Nyquist]", ylabel="share of the total", title=title, xlim=(0, 1))
    ax.legend(fontsize=6, frameon=True, framealpha=0.8, loc="upper right")


def render_rgb(fig) -> np.ndarray:
    """Render ``fig`` with Agg: (H, W, 3) uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class CumulativeImage:
    """The :func:`draw_cumulative` panel as an image, re-rendered cheaply at every probe step.

    The first call draws the whole panel; the axes, ticks, labels and legend are then kept as a
    rendered background and later calls with the same curve names, frequencies and target only
    move the curves and the title (Agg blitting: about a tenth of a full redraw, which is mostly
    tick and text layout).  The curves are redrawn in :func:`draw_cumulative`'s order; they are
    drawn over the spines and the frameless legend rather than under them, the only difference
    from a full redraw.

    >>> panel = CumulativeImage()
    >>> rgb = panel.render(freqs, curves, target_cdf, "l3.pre", step=100)   # (H, W, 3) uint8
    """

    def __init__(self, figsize: tuple[float, float] = (5.5, 4.0), dpi: float = 80) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(self.figure)
        self._key = None
        self._lines: list = []
        self._background = None

    @staticmethod
    def _order(curves: Mapping[str, np.ndarray], hidden: str | None, target: bool) -> list[str | None]:
        """Curve names in :func:`draw_cumulative`'s drawing order (None: the target)."""
        faint = [n for n in curves if n not in (hidden, "output") and n.endswith(".pre")]
        return faint + [n for n in (hidden, "output") if n in curves] + ([None] if target else [])

    def render(self, freqs: np.ndarray, curves: Mapping[str, np.ndarray], target_cdf: np.ndarray | None,
               hidden: str | None = None, step: int | None = None) -> np.ndarray:
        """(H, W, 3) uint8 image of the panel for one probe step (arguments as :func:`draw_cumulative`)."""
        freqs = np.asarray(freqs, dtype=np.float64)
        target = None if target_cdf is None else np.asarray(target_cdf, dtype=np.float64)
        key = (tuple(curves), hidden, freqs.tobytes(), None if target is None else target.tobytes())
        canvas = self.figure.canvas
        if key != self._key:                               # first call, or a different panel: draw it all
            self.figure.clear()                            # (resets the margins too)
            self.figure.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.92)   # no layout engine
            ax = self.figure.add_subplot()
            draw_cumulative(ax, freqs, curves, target, hidden, step)
            order = self._order(curves, hidden, target is not None)
            self._lines = list(zip(order, ax.lines))
            for _, line in self._lines:
                line.set_animated(True)
            ax.title.set_animated(True)
            canvas.draw()                                  # background: everything but curves and title
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._key = key
        ax = self.figure.axes[0]
        canvas.restore_region(self._background)
        for name, line in self._lines:
            line.set_ydata(target if name is None else np.asarray(curves[name], dtype=np.float64))
            ax.draw_artist(line)
        ax.title.set_text("cumulative spectra" + (f" (epoch {step})" if step is not None else ""))
        ax.draw_artist(ax.title)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# --------------------------------------------------------------------------- the watch figure
def run_verdict(tree) -> tuple[str, int | None, float | None]:
    """``(title line, onset or None, gain_db or None)``: the bottleneck watch's verdict over a run file.

    Without a ``bottleneck`` group the line gives the best PSNR's gain over the zero-output floor.
    """
    groups = tree.children
    if _has_rows(groups, "bottleneck", "psnr_gain", "energy_ratio"):
        from ..bottleneck import detect
        from ..bottleneck.watch import detector_settings

        ds = groups["bottleneck"].to_dataset()
        settings = detector_settings(ds.attrs)
        indicators = {k: ds[k].values for k in ds.data_vars if k not in ("state", "onset")}
        verdict = detect(ds["step"].values, indicators, **settings)
        onset = verdict.onset if verdict.state == "bottleneck" else verdict.first_onset
        return f"bottleneck watch: {verdict.line()}", onset, settings["thresholds"].gain_db
    if _has_rows(groups, "scalars", "psnr"):
        ds = groups["scalars"].to_dataset()
        target = target_from_run(tree)
        best = float(np.nanmax(ds["psnr"].values))
        if target is not None:
            return (f"no bottleneck watch in this run (train with --watch); best PSNR {best:.2f} dB, "
                    f"{best - target.zero_psnr:+.2f} dB over the zero-output floor"), None, None
        return f"no bottleneck watch in this run (train with --watch); best PSNR {best:.2f} dB", None, None
    return "no training steps recorded yet", None, None


def _has_rows(groups, name: str, *variables: str) -> bool:
    """True when group ``name`` exists with the ``variables`` and at least one step."""
    if name not in groups:
        return False
    ds = groups[name].dataset
    return all(v in ds for v in variables) and ds.sizes.get("step", 0) > 0


def _ntk_snapshots(ds, limit: int = 6) -> list[tuple[int, np.ndarray, np.ndarray]]:
    steps = ds["step"].values
    if not len(steps):
        return []
    pick = np.unique(np.linspace(0, len(steps) - 1, min(limit, len(steps))).round().astype(int))
    n, stride = int(ds.attrs.get("n", 2 * (ds.sizes["k"] - 1))), int(ds.attrs.get("stride", 1))
    freqs = ntk_frequencies(n, stride)
    return [(int(steps[i]), freqs, ds["spectrum"].values[i]) for i in pick]


def run_figure(tree):
    """The watch figure of a run file (live or finished).

    Panels: PSNR by epoch with the zero-output floor; activation std per hook point; the target's
    cumulative spectrum beside the last hidden layer's and the output's (latest probe step); NTK
    ``S(k)`` snapshots when the run has them.  The title is the bottleneck watch's verdict.

    Parameters
    ----------
    tree
        ``xarray.DataTree`` from :func:`spectral_probe.store.open_run`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    groups = tree.children
    has_ntk = _has_rows(groups, "ntk", "spectrum")
    ncols = 4 if has_ntk else 3
    fig = Figure(figsize=(5 * ncols, 4.6), layout="constrained")
    axes = fig.subplots(1, ncols)
    title, onset, gain_db = run_verdict(tree)
    fig.suptitle("\n".join(textwrap.wrap(title, width=40 * ncols)), fontsize=9, ha="center")
    target = target_from_run(tree)
    if _has_rows(groups, "scalars", "psnr"):
        ds = groups["scalars"].to_dataset()
        draw_psnr(axes[0], ds["step"].values, ds["psnr"].values, target.zero_psnr if target else None,
                  gain_db, onset)
    else:
        axes[0].set(title="training PSNR (no steps yet)")
    acts = groups["activations"].to_dataset() if "activations" in groups else None
    if acts is not None and not ({"layer", "kind"} <= set(acts.dims) and "act_std" in acts):
        acts = None                                             # not a probe's group
    if acts is not None and acts.sizes.get("step", 0):
        for layer in acts["layer"].values:
            for kind in acts["kind"].values:
                std = acts["act_std"].sel(layer=layer, kind=kind).values
                if np.isfinite(std).any():
                    axes[1].semilogy(acts["step"].values, std, label=alias(layer, kind), lw=1.0)
        axes[1].set(xlabel="epoch", ylabel="std", title="activation std")
        axes[1].legend(fontsize=6, frameon=False, ncols=2)
        if "psd" in acts:
            last = acts.isel(step=-1)
            freqs, curves = layer_cumulatives(last)
            hint = None
            if "bottleneck" in groups:
                hint = str(groups["bottleneck"].dataset.attrs.get("hidden", "")) or None
            draw_cumulative(axes[2], freqs, curves, target.on(freqs) if target else None,
                            hidden_layer(list(curves), hint), int(last["step"]))
        else:
            axes[2].set(title="cumulative spectra (the probe recorded no PSD)")
    else:
        axes[1].set(title="activation std (no probe steps; train with --probe-every N)")
        axes[2].set(title="cumulative spectra (no probe steps; train with --probe-every N)")
        if target is not None:
            axes[2].plot(target.freqs, target.cdf, color=TARGET_COLOR, lw=2.0, ls="--", label="target")
            axes[2].set(xlabel="frequency [fraction of Nyquist]", ylabel="cumulative power (DC left out)")
            axes[2].legend(fontsize=7, frameon=False)
    if has_ntk:
        ntk = groups["ntk"].to_dataset()
        band = None
        if "bottleneck" in groups:
            from ..bottleneck.watch import detector_settings

            band = detector_settings(groups["bottleneck"].dataset.attrs)["band"]
        draw_ntk(axes[3], _ntk_snapshots(ntk), target, band)
    return fig


def save_run_figure(tree, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write :func:`run_figure` of ``tree`` to ``path`` (format from the suffix; PNG by default)."""
    fig = run_figure(tree)
    fig.savefig(path, dpi=dpi)
