"""NTK snapshots during training: S(k) every M epochs, stored as a trajectory (paper Fig 4).

>>> from spectral_probe.training import fit
>>> snap = NTKSnapshot(every=50)
>>> fit(model, target, epochs=500, probes=[snap])
>>> ds = snap.to_dataset()                # dims (epoch, k)
>>> fig4 = snap.log1p_authors()           # log(1 + S_auth) over (epoch, omega)

With a run file, rows are streamed as a trajectory group (``step`` = epoch)::

>>> with TrajectoryWriter("run.h5", config=cfg) as w:
...     fit(model, target, probes=[TrainingRecorder(w), NTKSnapshot(every=50, writer=w)])
>>> open_run("run.h5", "ntk")["spectrum"]  # (step, k)

With ``forecast=H`` every snapshot also predicts the next ``H`` epochs' PSNR
from the kernel and residual at that moment (linearised dynamics, paper Eqns
3-4; :mod:`spectral_probe.ntk.forecast`), so forecasts made at epoch 0, M, 2M,
... can be set against what happened: ``forecast_psnr (epoch, horizon)``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import xarray as xr

from ..cadence import check_every, completed_epochs, is_due
from ..training.recording import RunRecorder
from ..validation import check_known, nonnegative_int, positive_int
from .dataset import NORMALISATION, spectrum_coords
from .eig import ntk_topk
from .operator import ntk_operator
from .spectrum import authors_convention, high_frequency_share, two_sided
from .analysis import spectrum_without_kernel

__all__ = ["NTKSnapshot"]


class NTKSnapshot(RunRecorder):
    """Training callback that records the NTK spectrum ``S(k)`` every ``every`` epochs.

    Epoch labels count *completed* epochs: 0 is the initialisation (recorded
    at ``on_fit_start`` when ``at_start``), ``M`` is after ``M`` epochs.
    Forward hooks of other probes are paused while the NTK is computed.

    Parameters
    ----------
    every
        Record after every ``every``-th epoch (``M``).
    top_k
        Also record the top-k eigenvalues (Lanczos, matrix-free); 0 = off.
    stride
        Use every ``stride``-th grid point (cheaper; lowers the Nyquist limit).
    rtol
        Certified truncation of the no-kernel ``S(k)`` route (0 = exact).
    dtype
        Compute dtype (model dtype by default).
    writer, group
        A :class:`~spectral_probe.store.TrajectoryWriter` (still in its declare
        phase at ``on_fit_start``) and the group to stream rows into: variables
        ``spectrum (step, k)``, ``trace``, ``high_frequency_share``, ``seconds``
        and, with ``top_k``, ``eigenvalues (step, mode)``, with ``forecast``,
        ``forecast_psnr (step, horizon)``; ``step`` is the epoch.  Rows are
        appended at epoch ends, after every callback has declared its group
        (a :class:`~spectral_probe.training.recording.RunRecorder`).
    forecast
        Horizon ``H`` (epochs) of a linearised-dynamics PSNR forecast made at
        every snapshot; 0 = off.  It uses the snapshot's grid, the run's
        learning-rate schedule and Adam's current second moment
        (``optimizer="adam"``), ``lanczos_steps`` products per snapshot
        (single-channel 1-D targets; with ``stride > 1`` the forecast is that
        of the subsampled problem).
    """

    tensorboard = "ntk"
    data_attributes = ("writer", "epochs", "spectra", "eigenvalues", "seconds")

    def __init__(self, every: int = 50, *, top_k: int = 0, stride: int = 1, rtol: float = 0.0,
                 dtype: torch.dtype | None = None, at_start: bool = True,
                 writer=None, group: str = "ntk", forecast: int = 0,
                 forecast_optimizer: str = "adam", lanczos_steps: int = 128) -> None:
        from .forecast import OPTIMIZERS

        check_every(every)
        positive_int(stride, "stride")
        nonnegative_int(top_k, "top_k")
        self.forecast = nonnegative_int(forecast, "forecast")
        self.lanczos_steps = positive_int(lanczos_steps, "lanczos_steps")
        check_known([forecast_optimizer], OPTIMIZERS, "forecast_optimizer", exc=ValueError)
        self.forecast_optimizer = forecast_optimizer
        self.forecasts: list[np.ndarray] = []
        self.every, self.top_k, self.stride, self.rtol = every, top_k, stride, float(rtol)
        self.dtype, self.at_start, self.writer, self.group = dtype, at_start, writer, group
        self.epochs: list[int] = []
        self.spectra: list[np.ndarray] = []
        self.eigenvalues: list[np.ndarray] = []
        self.seconds: list[float] = []
        self.n = 0
        self._written = 0

    # ------------------------------------------------------------------ callback hooks
    def prepare(self, state) -> None:
        self.n = len(range(0, state.coords.shape[0], self.stride))
        if self.top_k >= self.n:
            raise ValueError(f"top_k={self.top_k} must be below the {self.n} grid points used")
        if self.forecast and (state.values.shape[1] != 1 or state.coords.shape[1] != 1):
            raise ValueError("NTKSnapshot(forecast=...) handles single-channel 1-D targets; "
                             f"this one has inputs of dimension {state.coords.shape[1]} and "
                             f"{state.values.shape[1]} channel(s)")

    def previous(self, state):
        start = getattr(state, "start_epoch", 0)
        return super().previous(state) if start else None

    def begin(self, state) -> None:
        start = getattr(state, "start_epoch", 0)
        if start:               # continuing a run file: after its rows before `start`, the snapshot due at `start`
            if is_due(start, self.every):
                self.snapshot(state.model, state.coords, epoch=start, state=state)
        elif self.at_start:
            self.snapshot(state.model, state.coords, epoch=0, state=state)

    def on_epoch_end(self, state) -> None:
        done = completed_epochs(state)
        if is_due(done, self.every):
            self.snapshot(state.model, state.coords, epoch=done, state=state)
        self._stream()

    def on_fit_end(self, state, result) -> None:
        self._stream()

    # ------------------------------------------------------------------ run file
    def declare(self, writer=None) -> None:
        """Declare the ``ntk`` group in ``writer`` (default: :attr:`writer`; needs the fit's grid)."""
        from ..store import Var

        if writer is not None:
            self.writer = writer

        variables = {"spectrum": Var(("k",), "f8"), "trace": Var((), "f8"),
                     "high_frequency_share": Var((), "f8"), "seconds": Var((), "f8")}
        coords = {"k": np.arange(self.n // 2 + 1)}
        if self.top_k:
            variables["eigenvalues"] = Var(("mode",), "f8")
            coords["mode"] = np.arange(self.top_k)
        if self.forecast:
            variables["forecast_psnr"] = Var(("horizon",), "f8")
            coords["horizon"] = np.arange(self.forecast)
        self.writer.declare(self.group, variables=variables, coords=coords, attrs=self._attrs())
        self._written = 0

    def _attrs(self) -> dict:
        return {"n": self.n, "stride": self.stride, "every": self.every, "rtol": self.rtol,
                "normalisation": NORMALISATION, "step": "completed epochs"}

    def rows_since(self, step: int):
        """The snapshots at epochs ``>= step`` in the run file's layout (``step`` = completed epochs)."""
        if not self.epochs or self.epochs[-1] < int(step):
            return None
        ds = self.to_dataset().rename(epoch="step")
        ds = ds.isel(step=np.flatnonzero(ds["step"].values >= int(step)))
        ds.attrs.update(self._attrs(), n=ds.attrs["n"])
        return ds

    def restore(self, ds) -> None:
        """Take the snapshots of a run file's group (rows already written) as this probe's own."""
        if ds is None or not ds.sizes.get("step", 0):
            return
        self.epochs = [int(e) for e in ds["step"].values]
        self.spectra = list(np.asarray(ds["spectrum"].values, dtype=np.float64))
        self.seconds = [float(v) for v in ds["seconds"].values]
        self.eigenvalues = (list(np.asarray(ds["eigenvalues"].values, dtype=np.float64)) if self.top_k
                            else [np.zeros(0)] * len(self.epochs))
        self._written = len(self.epochs)

    def _stream(self) -> None:
        if self.writer is None or self._written == len(self.epochs):
            return
        new = slice(self._written, len(self.epochs))
        spectra = np.stack(self.spectra[new])
        values = {"spectrum": spectra, "seconds": np.asarray(self.seconds[new]),
                  "trace": np.array([self._trace(s) for s in spectra]),
                  "high_frequency_share": np.array([high_frequency_share(torch.from_numpy(s), self.n)
                                                    for s in spectra])}
        if self.top_k:
            values["eigenvalues"] = np.stack(self.eigenvalues[new])
        if self.forecast:
            values["forecast_psnr"] = np.stack(self.forecasts[new])
        self.writer.append(self.group, np.asarray(self.epochs[new]), **values)
        self._written = len(self.epochs)

    def _trace(self, s: np.ndarray) -> float:
        return float(two_sided(torch.from_numpy(s), self.n).sum())

    # ------------------------------------------------------------------ work
    def _forecast(self, model, x, state, epoch: int) -> np.ndarray:
        from .empirical import count_parameters
        from .forecast import adam_state, lanczos_measure, linearised_forecast
        from ..hooks import paused as paused_hooks

        values = state.values[::self.stride]
        with torch.no_grad(), paused_hooks(model):
            out = model(x)
        out = out.real if out.is_complex() else out
        residual = (values.double() - out.double()).cpu()
        cfg = state.config
        lrs = cfg.lr * cfg.lr_gamma ** ((epoch + np.arange(self.forecast)) // cfg.lr_step)
        measure = lanczos_measure(ntk_operator(model, x, dtype=self.dtype), residual, self.lanczos_steps,
                                  keep_basis=False)
        fc = linearised_forecast(measure, lrs, n_params=count_parameters(model),
                                 optimizer=self.forecast_optimizer, peak=cfg.peak,
                                 adam_state=adam_state(state.optimizer))
        return fc.psnr

    def snapshot(self, model: torch.nn.Module, coords: torch.Tensor, epoch: int, state=None) -> None:
        """Compute and append ``S(k)`` (and top eigenvalues, and the forecast) at ``coords[::stride]``.

        ``state`` (the training state) is needed for the forecast.
        """
        x = coords[::self.stride]
        start = time.perf_counter()
        finite = all(bool(torch.isfinite(p.detach()).all()) for p in model.parameters())
        fc = np.full(self.forecast, np.nan)
        if finite:
            spectrum = spectrum_without_kernel(model, x, rtol=self.rtol, dtype=self.dtype).values.numpy()
            eig = ntk_topk(ntk_operator(model, x, dtype=self.dtype), self.top_k).values.numpy() \
                if self.top_k else np.zeros(0)
            if self.forecast and state is not None:
                fc = self._forecast(model, x, state, epoch)
        else:  # diverged training: keep the trajectory aligned
            spectrum = np.full(x.shape[0] // 2 + 1, np.nan)
            eig = np.full(self.top_k, np.nan)
        self.epochs.append(int(epoch))
        self.spectra.append(spectrum)
        self.eigenvalues.append(eig)
        self.forecasts.append(fc)
        self.seconds.append(time.perf_counter() - start)

    # ------------------------------------------------------------------ output
    def to_dataset(self) -> xr.Dataset:
        """Trajectory as a Dataset with dims ``(epoch, k)`` and ``(epoch, mode)``."""
        n = self.n or 2 * (len(self.spectra[0]) - 1)
        spectra = np.stack(self.spectra)
        data = {
            "spectrum": (("epoch", "k"), spectra),
            "trace": ("epoch", np.array([self._trace(s) for s in spectra])),
            "high_frequency_share": ("epoch", np.array(
                [high_frequency_share(torch.from_numpy(s), n) for s in spectra])),
            "seconds": ("epoch", np.array(self.seconds)),
        }
        if self.top_k:
            data["eigenvalues"] = (("epoch", "mode"), np.stack(self.eigenvalues))
        if self.forecast:
            data["forecast_psnr"] = (("epoch", "horizon"), np.stack(self.forecasts))
        coords = {"epoch": np.array(self.epochs), **spectrum_coords(n)}
        if self.forecast:
            coords["horizon"] = np.arange(self.forecast)
        attrs = {"n": n, "stride": self.stride, "every": self.every, "rtol": self.rtol,
                 "normalisation": NORMALISATION}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def log1p_authors(self) -> xr.DataArray:
        """``log(1 + S_auth)`` over ``(epoch, omega)``: the quantity of the paper's Fig 4."""
        rows, omega = [], None
        for s in self.spectra:
            omega, s_auth = authors_convention(torch.from_numpy(s), self.n)
            rows.append(torch.log1p(s_auth).numpy())
        return xr.DataArray(np.stack(rows), dims=("epoch", "omega"),
                            coords={"epoch": np.array(self.epochs), "omega": omega.numpy()},
                            name="log1p_S", attrs={"units_omega": "rad/sample",
                                                   "definition": "log(1 + fftshift(S)/N^2)"})

