"""The :class:`Target` a network is fitted to: values on a regular grid in [-1, 1]^d."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..validation import check_known
from ..winner import TABLE6_AUDIO_SAMPLES, spectral_centroid, winner_scales

#: file readers by target kind ("audio", "image"), registered by :mod:`.io` (which builds targets, so
#: this module cannot import it); used to re-read a file's Table 6 samples in :meth:`Target.psi`
_FILE_LOADERS: dict = {}

__all__ = ["Target", "grid_coords", "PSI_CONVENTIONS"]

#: how :meth:`Target.psi` picks its samples: the ones held, or Table 6's (first 150,000 of the file)
PSI_CONVENTIONS = ("samples", "table6")


def grid_coords(grid_shape: tuple[int, ...], device=None, dtype=torch.float32) -> torch.Tensor:
    """Regular grid in ``[-1, 1]^d``, ``'ij'`` order.

    Returns
    -------
    torch.Tensor
        Shape ``(prod(grid_shape), len(grid_shape))``.

    Raises
    ------
    SizeTooLarge
        (a ``ValueError``) when the grid cannot fit in memory (:func:`spectral_probe.sizes.check_grid`).
    """
    from ..sizes import check_grid

    check_grid(grid_shape)
    axes = [torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) for n in grid_shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


@dataclass
class Target:
    """A sampled signal to fit.

    Attributes
    ----------
    values
        Shape ``(N, C)``; audio is scaled by the file's peak to [-1, 1], images map
        ``[0, max]`` to ``[-1, 1]`` (the authors' conventions).
    grid_shape
        ``(N,)`` for 1-D signals, ``(H, W)`` for images; ``prod(grid_shape) == N``.
    kind
        ``"audio"``, ``"image"`` or ``"signal"`` (synthetic 1-D); selects the
        WINNER coefficients (1-D -> audio, 2-D -> image).
    """

    values: torch.Tensor
    grid_shape: tuple[int, ...]
    name: str = "target"
    kind: str = "signal"
    sample_rate: float | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = torch.as_tensor(self.values)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(f"target values must have shape (N, C), got {tuple(values.shape)}")
        self.grid_shape = tuple(int(n) for n in self.grid_shape)
        if math.prod(self.grid_shape) != values.shape[0]:
            raise ValueError(f"grid_shape {self.grid_shape} does not match {values.shape[0]} samples")
        if values.shape[0] < 2:
            raise ValueError(f"target {self.name!r} has {values.shape[0]} sample(s); at least 2 are needed")
        if not torch.isfinite(values).all():
            raise ValueError(f"target {self.name!r} contains NaN or infinite values")
        self.values = values.to(torch.float32) if not values.is_floating_point() else values

    # ------------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        """Number of samples N."""
        return int(self.values.shape[0])

    @property
    def channels(self) -> int:
        return int(self.values.shape[1])

    @property
    def spatial_dims(self) -> int:
        return len(self.grid_shape)

    @property
    def device(self) -> torch.device:
        return self.values.device

    def coords(self, device=None, dtype=None) -> torch.Tensor:
        """Input coordinates, shape ``(N, spatial_dims)``, on the values' device by default."""
        return grid_coords(self.grid_shape, device=device or self.values.device,
                           dtype=dtype or self.values.dtype)

    def grid(self) -> torch.Tensor:
        """Values reshaped to ``(*grid_shape, C)``."""
        return self.values.reshape(*self.grid_shape, self.channels)

    def to(self, device=None, dtype=None) -> "Target":
        return replace(self, values=self.values.to(device=device, dtype=dtype))

    # ------------------------------------------------------------ spectrum
    def psi(self, convention: str = "samples", **kwargs) -> float:
        """Spectral centroid psi (Eqn 10); see :func:`spectral_centroid` for ``kwargs``.

        Parameters
        ----------
        convention
            Which samples psi is computed on (:data:`PSI_CONVENTIONS`):

            * ``"samples"`` (default): the samples this target holds -- the crop
              decides.  ``load_target("tetris.wav").psi()`` uses the whole file;
              :func:`~spectral_probe.training.presets.make_run` computes WINNER's scales on
              the crop it trains on (150,000 samples on the ``paper`` preset, the
              paper's own setting; 2^14 on ``quick``).
            * ``"table6"``: the paper's Table 6 convention (Supplementary Sec C):
              the first 150,000 samples of the audio file (the whole file when
              shorter; an audio crop or offset is read again from its file), and
              images at the file's own resolution.  Synthetic 1-D targets use
              their first 150,000 samples.
        """
        check_known([convention], PSI_CONVENTIONS, "psi convention", exc=ValueError)
        source = self._table6_source() if convention == "table6" else self
        return spectral_centroid(source.grid().cpu().numpy(), spatial_dims=source.spatial_dims, **kwargs)

    def _table6_source(self) -> "Target":
        """The samples Table 6's psi is computed on (see :meth:`psi`)."""
        path = self.meta.get("path")
        if self.spatial_dims == 1:
            offset = int(self.meta.get("offset", 0))
            if self.kind == "audio" and path is not None:
                file_samples = int(self.meta.get("file_samples", self.n))
                wanted = min(TABLE6_AUDIO_SAMPLES, file_samples)
                if offset == 0 and self.n >= wanted:
                    return self.crop(wanted)
                full = _FILE_LOADERS["audio"](path)
                return full.crop(min(TABLE6_AUDIO_SAMPLES, full.n))
            return self.crop(min(TABLE6_AUDIO_SAMPLES, self.n)) if self.n > TABLE6_AUDIO_SAMPLES else self
        if self.kind == "image" and path is not None and ("resized_to" in self.meta or "size" in self.meta):
            return _FILE_LOADERS["image"](path, gray=self.channels == 1)
        return self

    @property
    def winner_preset(self) -> str:
        return "audio" if self.spatial_dims == 1 else "image"

    def winner_scales(self, convention: str = "samples", **kwargs) -> tuple[float, float]:
        """``(s0, s1)`` from Eqn 11 with the preset for this target's dimensionality.

        ``convention`` chooses the samples psi is computed on (:meth:`psi`); ``kwargs`` go to
        :func:`~spectral_probe.winner.winner_scales` (``s0_max``, ``a``, ``b``, ``channels``).
        """
        return winner_scales(self.psi(convention), self.winner_preset, **kwargs)

    def zero_psnr(self, peak: float = 1.0) -> float:
        """PSNR (dB) of the all-zero prediction: the spectral-bottleneck floor."""
        power = float(self.values.double().square().mean())
        if power == 0:
            return math.inf
        return 10.0 * math.log10(peak * peak / power)

    # --------------------------------------------------------------- crops
    def crop(self, num_samples: int | None = None, offset: int = 0) -> "Target":
        """Samples ``[offset, offset + num_samples)`` of a 1-D target."""
        if self.spatial_dims != 1:
            raise ValueError("crop(num_samples, offset) applies to 1-D targets; crop images before loading")
        offset = int(offset)
        if offset < 0 or offset >= self.n:
            raise ValueError(f"offset {offset} outside the signal (0 <= offset < {self.n})")
        stop = self.n if num_samples is None else offset + int(num_samples)
        if num_samples is not None and int(num_samples) < 2:
            raise ValueError(f"num_samples must be >= 2, got {num_samples}")
        if stop > self.n:
            raise ValueError(f"cannot take {num_samples} samples from offset {offset}: "
                             f"the signal has {self.n}")
        values = self.values[offset:stop]
        if not torch.any(values != 0):
            raise ValueError(f"samples {offset}..{stop} of {self.name!r} are all zero; "
                             "choose another offset (e.g. offset=65536 for gt_bach)")
        meta = dict(self.meta, offset=int(self.meta.get("offset", 0)) + offset)
        return replace(self, values=values, grid_shape=(stop - offset,), meta=meta)

    def numpy(self) -> np.ndarray:
        """Values as a float64 array of shape ``(*grid_shape, C)``."""
        return self.grid().detach().cpu().double().numpy()
