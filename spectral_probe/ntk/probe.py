"""NTK snapshots during training: S(k) every M epochs, stored as a trajectory (paper Fig 4).

>>> from spectral_probe.training import fit
>>> snap = NTKSnapshot(every=50)
>>> fit(model, target, epochs=500, probes=[snap])
>>> ds = snap.to_dataset()                # dims (epoch, k)
>>> fig4 = snap.log1p_authors()           # log(1 + S_auth) over (epoch, omega)
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
import xarray as xr

from ..training import Callback
from .dataset import NORMALISATION, spectrum_coords, write_dataset
from .eig import ntk_topk
from .empirical import empirical_ntk
from .operator import ntk_operator
from .spectrum import authors_convention, high_frequency_share, spectrum_from_kernel, two_sided
from .analysis import spectrum_without_kernel
from .structured import supports_structured

__all__ = ["NTKSnapshot"]


class NTKSnapshot(Callback):
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
    path, group
        Write the trajectory to this HDF5 file/group at the end of training.
    """

    def __init__(self, every: int = 50, *, top_k: int = 0, stride: int = 1, rtol: float = 0.0,
                 dtype: torch.dtype | None = None, at_start: bool = True,
                 path: str | os.PathLike | None = None, group: str = "ntk_trajectory") -> None:
        for name, value in (("every", every), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0, got {top_k!r}")
        self.every, self.top_k, self.stride, self.rtol = every, top_k, stride, float(rtol)
        self.dtype, self.at_start, self.path, self.group = dtype, at_start, path, group
        self.epochs: list[int] = []
        self.spectra: list[np.ndarray] = []
        self.eigenvalues: list[np.ndarray] = []
        self.seconds: list[float] = []
        self.n = 0

    # ------------------------------------------------------------------ callback hooks
    def on_fit_start(self, state) -> None:
        self.n = len(range(0, state.coords.shape[0], self.stride))
        if self.top_k >= self.n:
            raise ValueError(f"top_k={self.top_k} must be below the {self.n} grid points used")
        if self.at_start:
            self.snapshot(state.model, state.coords, epoch=0)

    def on_epoch_end(self, state) -> None:
        done = state.epoch + 1
        if done % self.every == 0:
            self.snapshot(state.model, state.coords, epoch=done)

    def on_fit_end(self, state, result) -> None:
        if self.path is not None and self.epochs:
            write_dataset(self.to_dataset(), self.path, group=self.group)

    # ------------------------------------------------------------------ work
    def _spectrum(self, model, x) -> torch.Tensor:
        if supports_structured(model):
            return spectrum_without_kernel(model, x, rtol=self.rtol, dtype=self.dtype).values
        theta = empirical_ntk(model, x, implementation="jacrev", dtype=self.dtype)
        return spectrum_from_kernel(theta).double().cpu()

    def snapshot(self, model: torch.nn.Module, coords: torch.Tensor, epoch: int) -> None:
        """Compute and append ``S(k)`` (and top eigenvalues) at ``coords[::stride]``."""
        x = coords[::self.stride]
        start = time.perf_counter()
        finite = all(bool(torch.isfinite(p.detach()).all()) for p in model.parameters())
        if finite:
            spectrum = self._spectrum(model, x).numpy()
            eig = ntk_topk(ntk_operator(model, x, dtype=self.dtype), self.top_k).values.numpy() \
                if self.top_k else np.zeros(0)
        else:  # diverged training: keep the trajectory aligned
            spectrum = np.full(x.shape[0] // 2 + 1, np.nan)
            eig = np.full(self.top_k, np.nan)
        self.epochs.append(int(epoch))
        self.spectra.append(spectrum)
        self.eigenvalues.append(eig)
        self.seconds.append(time.perf_counter() - start)

    # ------------------------------------------------------------------ output
    def to_dataset(self) -> xr.Dataset:
        """Trajectory as a Dataset with dims ``(epoch, k)`` and ``(epoch, mode)``."""
        n = self.n or 2 * (len(self.spectra[0]) - 1)
        spectra = np.stack(self.spectra)
        data = {
            "spectrum": (("epoch", "k"), spectra),
            "trace": ("epoch", np.array([float(two_sided(torch.from_numpy(s), n).sum()) for s in spectra])),
            "high_frequency_share": ("epoch", np.array(
                [high_frequency_share(torch.from_numpy(s), n) for s in spectra])),
            "seconds": ("epoch", np.array(self.seconds)),
        }
        if self.top_k:
            data["eigenvalues"] = (("epoch", "mode"), np.stack(self.eigenvalues))
        coords = {"epoch": np.array(self.epochs), **spectrum_coords(n)}
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

