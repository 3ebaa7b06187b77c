"""Load audio and images into :class:`Target` objects, and resolve target specs.

Conventions follow the WINNER authors' code (and reproduce the paper's Table 6):
audio is read at the file's own sample rate, channels averaged to mono and
divided by the whole file's peak *before* cropping; images map ``[0, max]`` to
``[-1, 1]``.
"""

from __future__ import annotations

import contextlib
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .synthetic import parse_synthetic
from .target import _FILE_LOADERS, Target

__all__ = ["AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "load_audio", "load_image", "camera",
           "load_target", "resolve_data_path", "DATA_ENV", "cached_targets", "memoised"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64", ".mp3")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
#: colon-separated folders searched for bare file names (and their audio/ and images/ subfolders)
DATA_ENV = "SPECTRAL_PROBE_DATA"


def resolve_data_path(name: str | os.PathLike) -> Path:
    """Find ``name`` as given, or inside the folders listed in ``$SPECTRAL_PROBE_DATA``."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    tried = [str(path)]
    if not path.is_absolute():
        for root in filter(None, os.environ.get(DATA_ENV, "").split(os.pathsep)):
            for sub in ("", "audio", "images"):
                candidate = Path(root) / sub / path
                tried.append(str(candidate))
                if candidate.exists():
                    return candidate
    hint = "" if os.environ.get(DATA_ENV) else f" (set {DATA_ENV} to a data folder to search it)"
    raise FileNotFoundError(f"target file {str(name)!r} not found{hint}; tried: {', '.join(tried)}")


def _check_samples(samples: np.ndarray, name: str) -> None:
    if samples.size == 0:
        raise ValueError(f"audio file {name!r} holds no samples")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"audio file {name!r} contains NaN or infinite samples")
    if not np.any(samples):
        raise ValueError(f"audio file {name!r} is all zeros: nothing to fit, and psi (Eqn 10) is undefined")


def load_audio(
    path: str | os.PathLike,
    *,
    num_samples: int | None = None,
    offset: int = 0,
    mono: bool = True,
) -> Target:
    """Read an audio file (WAV/FLAC/OGG/..., any rate, int or float PCM) as a 1-D target.

    Parameters
    ----------
    num_samples, offset
        Keep samples ``[offset, offset + num_samples)`` after peak normalisation.
    mono
        Average channels (the paper's convention); otherwise keep them as ``C``.

    Returns
    -------
    Target
        ``values`` of shape ``(num_samples, C)`` with the file's peak at 1.
    """
    import soundfile as sf

    path = resolve_data_path(path)
    try:
        samples, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"cannot read audio file {str(path)!r}: {exc}") from None
    _check_samples(samples, str(path))
    if mono:
        samples = samples.mean(axis=1, keepdims=True)
        _check_samples(samples, str(path))
    samples = samples / np.abs(samples).max()
    target = Target(torch.from_numpy(samples.astype(np.float32)), (samples.shape[0],),
                    name=path.stem, kind="audio", sample_rate=float(rate),
                    meta={"path": str(path), "file_samples": int(samples.shape[0])})
    if num_samples is not None or offset:
        target = target.crop(num_samples, offset)
    return target


def _image_to_target(arr: np.ndarray, name: str, max_value: float, meta: dict) -> Target:
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]  # drop alpha
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    values = arr.astype(np.float64) / max_value * 2.0 - 1.0
    grid = arr.shape[:2]
    values = values.reshape(grid[0] * grid[1], -1)
    if values.shape[0] < 4:
        raise ValueError(f"image {name!r} is too small ({grid})")
    return Target(torch.from_numpy(values.astype(np.float32)), grid, name=name, kind="image", meta=meta)


def load_image(path: str | os.PathLike, *, gray: bool | None = None,
               size: tuple[int, int] | int | None = None) -> Target:
    """Read an image as a 2-D target with values in ``[-1, 1]``.

    Parameters
    ----------
    gray
        Force grayscale (True) or RGB (False); None keeps the file's mode.
    size
        Resize (bilinear) to ``(H, W)`` or ``(S, S)``; the authors resize grayscale
        images to 300 x 300.
    """
    from PIL import Image, UnidentifiedImageError

    path = resolve_data_path(path)
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image file {str(path)!r}: {exc}") from None
    if gray is True:
        img = img.convert("L") if img.mode not in ("I;16", "I") else img
    elif gray is False:
        img = img.convert("RGB")
    elif img.mode not in ("L", "RGB", "I;16", "I"):
        img = img.convert("RGB")
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        img = img.resize((int(w), int(h)), Image.BILINEAR)
    arr = np.asarray(img)
    max_value = 65535.0 if arr.dtype == np.uint16 or img.mode.startswith("I") else 255.0
    meta = {"path": str(path)} if size is None else {"path": str(path), "size": [int(h), int(w)]}
    return _image_to_target(arr, path.stem, max_value, meta)


_FILE_LOADERS.update(audio=load_audio, image=load_image)


def camera() -> Target:
    """scikit-image's 512 x 512 ``camera`` test image (needs ``scikit-image``)."""
    try:
        from skimage import data
    except ImportError:
        raise ValueError("the 'camera' target needs scikit-image: pip install scikit-image") from None
    return _image_to_target(np.asarray(data.camera()), "camera", 255.0, {"source": "skimage.data.camera"})


_MEMO: ContextVar[dict | None] = ContextVar("spectral_probe_target_memo", default=None)


@contextlib.contextmanager
def cached_targets() -> Iterator[None]:
    """Within the block, :func:`load_target` reads each file (or builds each synthetic signal) once.

    For code that builds many run settings from the same targets (a figure's parts, the
    ``reproduce paper`` catalogue): the same arguments (and the same ``$SPECTRAL_PROBE_DATA``)
    return the same :class:`Target` object, so callers must not modify its tensors in place.
    A file changed on disk inside the block is not re-read.  Nested blocks share the outer memo.
    """
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memoised(key: tuple, build):
    """``build()``, kept for the rest of the :func:`cached_targets` block under ``key`` (built each time outside one).

    For values derived only from targets and arguments (``key`` must name them all), e.g. a figure's parts.
    """
    memo = _MEMO.get()
    if memo is None:
        return build()
    key = ("memoised", key, os.environ.get(DATA_ENV))
    if key not in memo:
        memo[key] = build()
    return memo[key]


def load_target(spec: str, *, num_samples: int | None = None, offset: int = 0,
                n: int | None = None, seed: int = 0) -> Target:
    """Build a target from a spec string (see :func:`_load_target`); memoised inside :func:`cached_targets`."""
    memo = _MEMO.get()
    if memo is None:
        return _load_target(spec, num_samples=num_samples, offset=offset, n=n, seed=seed)
    key = (spec, num_samples, offset, n, seed, os.environ.get(DATA_ENV))
    if key not in memo:
        memo[key] = _load_target(spec, num_samples=num_samples, offset=offset, n=n, seed=seed)
    return memo[key]


def _load_target(spec: str, *, num_samples: int | None = None, offset: int = 0,
                 n: int | None = None, seed: int = 0) -> Target:
    """Build a target from a spec string.

    Specs
    -----
    ``path/to/file.wav`` (any audio suffix), ``path/to/image.png`` (any image
    suffix), ``camera`` (scikit-image), or a synthetic spec understood by
    :func:`~spectral_probe.signals.synthetic.parse_synthetic`, e.g.
    ``synthetic:high``, ``synthetic:low``, ``synthetic:broadband:0.15``.

    Parameters
    ----------
    num_samples, offset
        Crop of a 1-D target (audio files).
    n
        Length of a synthetic target (default 2^14).
    seed
        Seed of random synthetic targets.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"target spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec.startswith("synthetic:"):
        target = parse_synthetic(spec, n=n, seed=seed)
        return target.crop(num_samples, offset) if (num_samples is not None or offset) else target
    if spec == "camera":
        return camera()
    suffix = Path(spec).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return load_audio(spec, num_samples=num_samples, offset=offset)
    if suffix in IMAGE_SUFFIXES:
        return load_image(spec)
    raise ValueError(f"cannot tell what target {spec!r} is; give an audio file ({', '.join(AUDIO_SUFFIXES[:3])}, "
                     f"...), an image file (.png, .jpg, ...), 'camera', or 'synthetic:low|high|broadband[:cut]'")
