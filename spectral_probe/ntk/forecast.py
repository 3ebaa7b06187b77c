"""Linearised training dynamics (paper Eqns 3-4): forecast PSNR and per-band learning from the NTK.

Model
-----
For the loss ``L = (1 / (N C)) sum_n |f(x_n) - y_n|^2`` (:func:`spectral_probe.training.mse_loss`)
and gradient flow ``d theta / dt = -eta dL/dtheta``, a network linearised
around ``theta_0`` has residual ``r = y - f`` obeying::

    dr/dt = -(2 eta / (N C)) Theta r      =>      r(tau) = Q exp(-2 Lambda tau / (N C)) Q^T r_0

with ``Theta = Q Lambda Q^T`` the *unnormalised* empirical NTK of
:mod:`spectral_probe.ntk.empirical` (traced; ``C = 1`` here) and ``tau`` the
accumulated learning rate, ``tau(e) = sum_{s < e} eta_s``.  This is the paper's
Eqn 3 ``E(t) = exp(-2 Theta t) E_0`` with ``t = tau / (N C)``; with the authors'
kernel ``Theta / N^2`` (:func:`~spectral_probe.ntk.spectrum.normalized_kernel`)
it reads ``t = N tau / C``.  Mode ``i`` keeps the fraction
``exp(-2 lambda_i tau / N)`` of its amplitude: large eigenvalues are learned
first, and Eqn 4 (the same in Fourier space) makes the per-frequency picture.

Optimiser and learning rate (how ``tau`` advances per epoch ``e``)
-------------------------------------------------------------------
* ``optimizer="gd"`` -- plain gradient descent: ``tau += lr_scale * lr_e``.
  The literal linearisation; the baseline.
* ``optimizer="adam"`` (default) -- Adam as a scalar-preconditioned gradient
  flow.  Adam divides each gradient entry by the root of its running second
  moment ``v``; its first step moves every parameter by ``lr``.  Replacing the
  per-parameter ``v`` by its mean over parameters gives
  ``tau += lr_scale * lr_e / (sqrt(v_hat_e) + eps)`` with
  ``v_e = beta2 v_{e-1} + (1 - beta2) |g_e|^2 / P`` (bias-corrected), where the
  gradient norm is the linear model's own: ``|g|^2 = (2 / (N C))^2 r^T Theta r``.
  No training is needed; the first momentum (``beta1``) is neglected.
* ``lr_scale`` -- a multiplicative correction; :func:`fit_lr_scale` fits it to
  the first epochs of an actual run (an honest calibration: the forecast is
  then only a forecast for the later epochs).

Per-epoch decay is exact (exponential), whatever the step size: a mode with
``lambda_i tau / N >> 1`` is simply learned, where discrete gradient descent
with that step would diverge.  What the model leaves out: the NTK changes
during training (feature learning; SIREN's ``S(k)`` moves, paper Fig 4),
Adam's per-parameter preconditioning, and momentum.
``benchmarks/bench_forecast.py`` compares forecasts with actual runs.

Spectral measure
----------------
Everything above only needs the eigenvalues ``lambda_j`` and the residual's
coefficients ``c_j = q_j . r_0``, plus the vectors ``q_j`` for the per-band map.
:func:`measure_from_eigen` takes them from a dense ``eigh``;
:func:`lanczos_measure` builds the same quantities matrix-free by Lanczos
started from ``r_0`` (Gauss quadrature of the residual's spectral measure:
``m`` steps reproduce ``r_0^T p(Theta) r_0`` exactly for polynomials ``p`` of
degree ``< 2m``); its accuracy is estimated by comparing ``m`` with ``m / 2``
steps (:attr:`Forecast.lanczos_gap_db`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..validation import finite_float, positive_int
from .eig import NTKEigen
from .measure import SpectralMeasure, lanczos_measure, measure_from_eigen

__all__ = ["SpectralMeasure", "Forecast", "measure_from_eigen", "lanczos_measure", "lr_schedule",
           "linearised_forecast", "fit_lr_scale", "band_edges", "adam_state", "forecast_fit", "OPTIMIZERS",
           "DENSE_LIMIT"]

OPTIMIZERS = ("adam", "gd")
#: bands holding less than this share of the initial residual are left out of the band map (NaN)
BAND_FLOOR = 1e-3


def adam_state(optimizer: torch.optim.Optimizer) -> tuple[float, int] | None:
    """``(mean second moment over all parameters, steps taken)`` of a ``torch.optim.Adam``, or ``None``
    before its first step."""
    total, count, steps = 0.0, 0, 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            if "exp_avg_sq" in st:
                sq = st["exp_avg_sq"]
                total += float(sq.sum()) * (2 if sq.is_complex() or p.is_complex() else 1)
                count += p.numel() * (2 if p.is_complex() else 1)
                steps = max(steps, int(st["step"]))
    return None if count == 0 else (total / count, steps)


def lr_schedule(lr: float, epochs: int, step: int = 20, gamma: float = 0.99) -> np.ndarray:
    """Learning rate of each epoch under ``StepLR(step, gamma)`` (the presets' schedule), ``(epochs,)``."""
    lr = finite_float(lr, "lr", low=0.0)
    epochs = positive_int(epochs, "epochs")
    step = positive_int(step, "step")
    return lr * float(gamma) ** (np.arange(epochs) // step)


def band_edges(bands: int) -> np.ndarray:
    """``bands + 1`` equal band edges on ``[0, 1]`` x Nyquist (radial on 2-D grids; the last band
    also takes the corners above Nyquist)."""
    return np.linspace(0.0, 1.0, positive_int(bands, "bands") + 1)


def _band_index(grid: tuple[int, ...], bands: int) -> torch.Tensor:
    """Band of every DFT bin: 1-D two-sided bins ``(N,)``, 2-D ``(H * W,)``."""
    if len(grid) == 1:
        n = grid[0]
        k = torch.arange(n)
        frac = torch.minimum(k, n - k).double() / (n / 2)
    else:
        from .spectrum2d import radial_frequency
        frac = radial_frequency(grid).reshape(-1)
    return torch.clamp((frac * bands).floor().long(), max=bands - 1)


def _band_energy(vectors: torch.Tensor, grid: tuple[int, ...], index: torch.Tensor, bands: int) -> torch.Tensor:
    """Energy per band of each column of ``vectors`` ``(N, E)`` -> ``(E, bands)``."""
    cols = vectors.T
    if len(grid) == 1:
        power = torch.fft.fft(cols, dim=-1).abs().square()
    else:
        power = torch.fft.fft2(cols.reshape(-1, *grid)).abs().square().reshape(cols.shape[0], -1)
    out = torch.zeros(cols.shape[0], bands, dtype=torch.float64)
    out.index_add_(1, index, power.double())
    return out


@dataclass
class Forecast:
    """Predicted training curve of the linearised model.

    Attributes
    ----------
    epochs
        ``0 .. E-1``; entry ``e`` is the state before update ``e`` (as ``FitResult.history``).
    psnr, mse
        Predicted PSNR (dB, peak 1) and MSE, ``(E,)``.
    tau
        Accumulated effective learning rate before each epoch, ``(E,)``.
    eta
        Effective learning rate of each epoch, ``(E,)``.
    band_epochs
        Epochs at which the band map is evaluated, ``(S,)``.
    band_remaining
        Fraction of each band's initial residual energy left, ``(S, B)``; above
        1 where the band gains residual (the linear model moves energy between
        frequencies); NaN for bands holding less than ``BAND_FLOOR`` of the
        initial residual.
    band_edges
        ``(B + 1,)`` fractions of Nyquist.
    band_t90
        First epoch at which a band is 90 % learned (``-1``: not within the horizon), ``(B,)``.
    """

    epochs: np.ndarray
    psnr: np.ndarray
    mse: np.ndarray
    tau: np.ndarray
    eta: np.ndarray
    optimizer: str
    lr_scale: float
    measure: SpectralMeasure
    grid_shape: tuple[int, ...]
    band_epochs: np.ndarray | None = None
    band_remaining: np.ndarray | None = None
    band_edges: np.ndarray | None = None
    band_t90: np.ndarray | None = None
    lanczos_gap_db: float | None = None
    notes: list[str] = field(default_factory=list)

    def at(self, epoch: int) -> float:
        """Predicted PSNR before update ``epoch``."""
        return float(self.psnr[int(epoch)])

    def to_dataset(self):
        """``xarray.Dataset``: ``psnr``/``mse``/``tau``/``eta`` over ``epoch``, the band map over
        ``(band_epoch, band)``, and the measure over ``node``."""
        import xarray as xr

        data = {"psnr": ("epoch", self.psnr), "mse": ("epoch", self.mse), "tau": ("epoch", self.tau),
                "eta": ("epoch", self.eta),
                "node_lambda": ("node", self.measure.nodes.numpy()),
                "node_weight": ("node", (self.measure.coeffs ** 2).numpy())}
        coords = {"epoch": self.epochs, "node": np.arange(self.measure.nodes.numel())}
        if self.band_remaining is not None:
            data["band_remaining"] = (("band_epoch", "band"), self.band_remaining)
            data["band_t90"] = ("band", self.band_t90)
            data["band_low"] = ("band", self.band_edges[:-1])
            data["band_high"] = ("band", self.band_edges[1:])
            coords.update(band_epoch=self.band_epochs, band=np.arange(len(self.band_edges) - 1))
        attrs = {"optimizer": self.optimizer, "lr_scale": self.lr_scale, "method": self.measure.method,
                 "lanczos_steps": self.measure.steps, "grid_shape": list(self.grid_shape),
                 "lanczos_gap_db": float("nan") if self.lanczos_gap_db is None else self.lanczos_gap_db,
                 "model": "linearised dynamics, paper Eqns 3-4; see spectral_probe.ntk.forecast",
                 "notes": "; ".join(self.notes)}
        return xr.Dataset(data, coords=coords, attrs=attrs)


def _trajectory(nodes, weights, lrs, n, optimizer, lr_scale, n_params, betas, eps, peak, adam_state=None):
    """PSNR, MSE, tau and eta per epoch from the measure (weights = c_j^2)."""
    epochs = len(lrs)
    tau = 0.0
    v, done = (0.0, 0) if adam_state is None else (float(adam_state[0]), int(adam_state[1]))
    out_tau, out_eta, out_mse = np.empty(epochs), np.empty(epochs), np.empty(epochs)
    lam = nodes.numpy()
    w = weights.numpy()
    for e in range(epochs):
        decay2 = np.exp(-4.0 * lam * tau / n)
        r2 = w * decay2
        mse = float(r2.sum()) / n
        out_tau[e], out_mse[e] = tau, mse
        if optimizer == "gd":
            eta = lr_scale * lrs[e]
        else:
            g2 = (2.0 / n) ** 2 * float((lam * r2).sum()) / max(n_params, 1)
            v = betas[1] * v + (1 - betas[1]) * g2
            v_hat = v / (1 - betas[1] ** (done + e + 1))
            eta = lr_scale * lrs[e] / (math.sqrt(v_hat) + eps)
        out_eta[e] = eta
        tau += eta
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(peak * peak / out_mse)
    return psnr, out_mse, out_tau, out_eta


def linearised_forecast(
    measure: SpectralMeasure,
    lrs,
    *,
    n_params: int,
    optimizer: str = "adam",
    lr_scale: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    peak: float = 1.0,
    grid_shape: tuple[int, ...] | None = None,
    bands: int = 8,
    band_points: int = 50,
    adam_state: tuple[float, int] | None = None,
) -> Forecast:
    """Predicted PSNR per epoch and per-band learning of the linearised model.

    Parameters
    ----------
    measure
        From :func:`measure_from_eigen` or :func:`lanczos_measure`.
    lrs
        Learning rate of each epoch (:func:`lr_schedule`); its length is the horizon.
    n_params
        Trainable real parameters ``P`` (Adam's mean second moment).
    optimizer
        ``"adam"`` or ``"gd"``; see the module docstring.
    lr_scale
        Multiplies the learning rate (1 = no calibration; :func:`fit_lr_scale`).
    grid_shape
        ``(N,)``/``None`` or ``(H, W)``: how samples map to frequencies in the band map.
    bands
        Equal frequency bands on ``[0, 1]`` x Nyquist.
    band_points
        Epochs (evenly spaced, first and last included) at which the band map is evaluated.
    adam_state
        ``(v, steps)``: Adam's mean second moment and step count when the
        forecast starts mid-training (:func:`adam_state`); ``None`` = fresh optimiser.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    lrs = np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ValueError("lrs must be a non-empty 1-D sequence of finite learning rates >= 0")
    lr_scale = finite_float(lr_scale, "lr_scale", low=0.0)
    n = measure.n
    grid = (n,) if grid_shape is None else tuple(int(g) for g in grid_shape)
    if math.prod(grid) != n:
        raise ValueError(f"grid_shape {grid_shape!r} does not match the {n} samples")
    psnr, mse, tau, eta = _trajectory(measure.nodes, measure.coeffs ** 2, lrs, n, optimizer, lr_scale,
                                      n_params, betas, eps, peak, adam_state)
    fc = Forecast(np.arange(lrs.size), psnr, mse, tau, eta, optimizer, lr_scale, measure, grid)
    if measure.method == "lanczos" and measure.tridiagonal is not None and measure.steps >= 8:
        half = measure.truncated(measure.steps // 2)
        coarse = _trajectory(half.nodes, half.coeffs ** 2, lrs, n, optimizer, lr_scale, n_params, betas, eps,
                             peak, adam_state)[0]
        fc.lanczos_gap_db = float(np.nanmax(np.abs(coarse - psnr)))
    if measure.basis is not None:
        _band_map(fc, bands, band_points)
    return fc


def _band_map(fc: Forecast, bands: int, points: int) -> None:
    m = fc.measure
    sel = np.unique(np.linspace(0, len(fc.epochs) - 1, max(2, points)).round().astype(int))
    decay = torch.exp(-2.0 * m.nodes[:, None] * torch.from_numpy(fc.tau[sel])[None, :] / m.n)   # (M, S)
    vectors = m.basis @ (m.coeffs[:, None] * decay)                                            # (N, S)
    index = _band_index(fc.grid_shape, bands)
    energy = _band_energy(vectors, fc.grid_shape, index, bands).numpy()                          # (S, B)
    start = _band_energy((m.basis @ m.coeffs)[:, None], fc.grid_shape, index, bands).numpy()[0]
    total = start.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        remaining = np.where(start > BAND_FLOOR * total, energy / start, np.nan)
    t90 = np.full(bands, -1)
    for b in range(bands):
        hit = np.flatnonzero(remaining[:, b] <= 0.1)
        if hit.size:
            t90[b] = sel[hit[0]]
    fc.band_epochs, fc.band_remaining, fc.band_edges, fc.band_t90 = sel, remaining, band_edges(bands), t90


def fit_lr_scale(measure: SpectralMeasure, lrs, actual_psnr, *, n_params: int, fit_epochs: int = 20,
                 optimizer: str = "adam", betas=(0.9, 0.999), eps: float = 1e-8, peak: float = 1.0,
                 bounds: tuple[float, float] = (1e-3, 1e4)) -> float:
    """``lr_scale`` minimising the squared PSNR error over the first ``fit_epochs`` epochs of a run.

    Parameters
    ----------
    actual_psnr
        The run's PSNR per epoch (``FitResult.history["psnr"]``), at least ``fit_epochs`` long.
    bounds
        Search range of the scale (log-uniform golden-section search).
    """
    from scipy.optimize import minimize_scalar

    fit_epochs = positive_int(fit_epochs, "fit_epochs")
    actual = np.asarray(actual_psnr, dtype=np.float64)[:fit_epochs]
    if actual.size < fit_epochs:
        raise ValueError(f"need {fit_epochs} epochs of PSNR to fit, got {actual.size}")
    lrs = np.asarray(lrs, dtype=np.float64)[:fit_epochs]

    def loss(log_scale: float) -> float:
        pred = _trajectory(measure.nodes, measure.coeffs ** 2, lrs, measure.n, optimizer, 10 ** log_scale,
                           n_params, betas, eps, peak)[0]
        return float(np.sum((np.minimum(pred, 300.0) - actual) ** 2))

    res = minimize_scalar(loss, bounds=tuple(math.log10(b) for b in bounds), method="bounded",
                          options={"xatol": 1e-3})
    return float(10 ** res.x)


#: largest N for which :func:`forecast_fit` decomposes the dense kernel by default
DENSE_LIMIT = 4096


def forecast_fit(model, target, config=None, *, epochs: int | None = None, optimizer: str = "adam",
                 lr_scale: float = 1.0, method: str = "auto", steps: int = 256, bands: int = 8,
                 dtype: torch.dtype | None = None, eigen: NTKEigen | None = None) -> Forecast:
    """Forecast :func:`~spectral_probe.training.fit` of ``model`` on ``target`` from the NTK at its current state.

    Parameters
    ----------
    model
        The network (its current parameters define ``Theta`` and ``r_0``).
    target
        A :class:`~spectral_probe.signals.Target` (single channel).
    config
        The :class:`~spectral_probe.training.TrainConfig` whose ``lr``, ``lr_step``
        and ``lr_gamma`` set the schedule (default ``TrainConfig()``).
    epochs
        Horizon (default ``config.epochs``).
    method
        ``"eigh"`` (dense kernel, exact), ``"lanczos"`` (matrix-free, ``steps``
        products) or ``"auto"`` (``eigh`` up to :data:`DENSE_LIMIT` samples).
    eigen
        Dense eigenpairs already computed on ``target.coords()`` (reused).
    """
    from ..training.loop import TrainConfig
    from .empirical import count_parameters, empirical_ntk
    from .eig import ntk_eigh
    from ..hooks import paused as paused_hooks
    from .operator import ntk_operator

    config = TrainConfig() if config is None else config
    epochs = config.epochs if epochs is None else positive_int(epochs, "epochs")
    if method not in ("auto", "eigh", "lanczos"):
        raise ValueError(f"unknown method {method!r}; valid: 'auto', 'eigh', 'lanczos'")
    if target.channels != 1:
        raise ValueError(f"the forecast handles single-channel targets; {target.name!r} has "
                         f"{target.channels} channels (use a mono signal or a gray image)")
    device = next(model.parameters()).device
    x = target.coords(device=device, dtype=dtype or next(model.parameters()).real.dtype)
    with torch.no_grad(), paused_hooks(model):
        out = model(x)
    out = out.real if out.is_complex() else out
    residual = (target.values.to(device).double() - out.double().reshape(target.values.shape)).cpu()
    if method == "auto":
        method = "eigh" if eigen is not None or target.n <= DENSE_LIMIT else "lanczos"
    if method == "eigh":
        if eigen is None:
            eigen = ntk_eigh(empirical_ntk(model, x, dtype=dtype))
        measure = measure_from_eigen(eigen, residual)
    else:
        measure = lanczos_measure(ntk_operator(model, x, dtype=dtype), residual, steps)
    lrs = lr_schedule(config.lr, epochs, config.lr_step, config.lr_gamma)
    return linearised_forecast(measure, lrs, n_params=count_parameters(model), optimizer=optimizer,
                               lr_scale=lr_scale, peak=config.peak, grid_shape=target.grid_shape,
                               bands=bands)
