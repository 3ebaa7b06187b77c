"""Sizes checked before compute: memory estimates of runs, models, grids and NTKs.

A sample count, width, depth or grid far beyond the machine used to end in a traceback
after compute had started (numpy asking for 3.64 TiB for ``--num-samples 10^12``; 79 s of
building layers, then ``MemoryError``, for ``--depth 10^8``).  The library now estimates
what an input needs *before allocating anything* and refuses it in one line that names the
option and the estimate::

    width=100000000 (--width) needs about 298.0 PiB of memory (a 4x100000000 network's weights,
    gradients, Adam state and best-state copy); 9.3 GiB is available here; choose a smaller width

The checks live where runs, models and NTK inputs are built, so every entry point (Python,
``train``, ``ntk``, ``sweep``, ``reproduce``) gets them: :func:`~spectral_probe.training.presets.make_run`
(:func:`check_samples` before the target is loaded, :func:`check_training` once the sizes are
known), :func:`~spectral_probe.models.build_model` (:func:`check_model`),
:func:`~spectral_probe.signals.grid_coords` (:func:`check_grid`) and
:func:`~spectral_probe.ntk.analyze_ntk` (:func:`check_ntk`).

The estimates are lower bounds (float32 values; the arrays a step cannot do without), so a
refusal is certain to fail, while a run that passes may still need somewhat more.  The budget
is the host's available memory (``MemAvailable``), or less under an address-space limit
(``RLIMIT_AS``); on a CUDA device, its free memory.
"""

from __future__ import annotations

import os

__all__ = ["SizeTooLarge", "format_bytes", "available_bytes", "check_fits", "parameter_count", "check_samples",
           "check_model", "check_training", "training_bytes", "check_grid", "check_ntk", "BYTES_PER_SAMPLE", "ITEM"]

#: bytes of a float32 value (parameters, activations and samples are float32 by default)
ITEM = 4
#: bytes per sample while a target is loaded or synthesised: float64 generation, float32 coordinates and
#: values, the prediction and the residual
BYTES_PER_SAMPLE = 32
#: float32 copies per parameter during training: weights, gradient, Adam's two moments, the best state
TRAIN_COPIES = 5
#: float32 values per hidden unit and sample kept by a training step: pre-activation, activation and their
#: gradients
ACTIVATION_COPIES = 4


class SizeTooLarge(ValueError):
    """An input's size needs more memory than the machine has (raised before anything is allocated)."""


def format_bytes(n: float) -> str:
    """Human-readable size in binary units (``"1.0 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _address_space_left() -> float:
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):  # pragma: no cover - Windows
        return float("inf")
    if soft == resource.RLIM_INFINITY:
        return float("inf")
    try:
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        used = 0
    return max(0.0, float(soft - used))


def available_bytes(device=None) -> int:
    """Memory an allocation can use now: free CUDA memory on a CUDA ``device``, else the host's
    available memory, capped by what an address-space limit (``RLIMIT_AS``) leaves."""
    import torch

    from .devices import available_memory_bytes

    dev = torch.device(device) if device is not None else torch.device("cpu")
    free = available_memory_bytes(dev)
    if dev.type != "cuda":
        free = min(free, _address_space_left())
    return int(free)


def check_fits(nbytes: float, option: str, value, what: str, *, flag: str | None = None, device=None,
               budget: int | None = None) -> None:
    """Raise :class:`SizeTooLarge` when ``nbytes`` exceed the memory available.

    Parameters
    ----------
    nbytes
        The estimate.
    option, value
        The input at fault (``"width"``, 100000000); the message names it as ``width=100000000``.
    what
        What the memory holds (``"a 4x100000000 network's weights, ..."``).
    flag
        The CLI spelling (default ``--`` + ``option`` with dashes).
    budget
        Bytes available (default :func:`available_bytes` of ``device``).
    """
    free = available_bytes(device) if budget is None else int(budget)
    if nbytes <= free:
        return
    flag = flag or "--" + option.replace("_", "-")
    raise SizeTooLarge(f"{option}={value} ({flag}) needs about {format_bytes(nbytes)} of memory ({what}); "
                       f"{format_bytes(free)} is available here; choose a smaller {option}")


def parameter_count(width: int, depth: int, in_features: int = 1, out_features: int = 1) -> int:
    """Parameters of a ``depth x width`` fully connected INR (weights and biases, output layer included)."""
    width, depth = int(width), int(depth)
    return (in_features * width + width) + (depth - 1) * (width * width + width) + (width * out_features
                                                                                    + out_features)


def _blame_shape(width: int, depth: int) -> tuple[str, int]:
    """Which of width and depth makes a network too large (the one far from usual sizes)."""
    return ("depth", depth) if depth > width else ("width", width)


def check_samples(num_samples: int, *, budget: int | None = None) -> None:
    """Refuse a sample count whose target alone cannot be held (before it is synthesised or cropped)."""
    check_fits(int(num_samples) * BYTES_PER_SAMPLE, "num_samples", int(num_samples),
               f"{BYTES_PER_SAMPLE} bytes per sample for the target, its coordinates and the prediction",
               budget=budget)


def check_model(width: int, depth: int, in_features: int = 1, out_features: int = 1, *, device=None,
                budget: int | None = None) -> None:
    """Refuse a network whose weights alone do not fit (before any layer is built)."""
    p = parameter_count(width, depth, in_features, out_features)
    option, value = _blame_shape(width, depth)
    check_fits(p * ITEM, option, value, f"the float32 weights of a {depth}x{width} network, {p:,} parameters",
               device=device, budget=budget)


#: usual sizes: an input is blamed when bringing it down to its usual size shrinks the estimate the most
_USUAL = {"width": 256, "depth": 4, "num_samples": 150_000, "batch_size": 150_000}


def training_bytes(num_samples: int, width: int, depth: int, in_features: int = 1, out_features: int = 1,
                   batch_size: int | None = None) -> tuple[int, int, int]:
    """``(parameters, activations, samples)`` bytes of a full-batch (or ``batch_size``) training step."""
    p = parameter_count(width, depth, in_features, out_features)
    batch = min(int(batch_size), int(num_samples)) if batch_size else int(num_samples)
    return (TRAIN_COPIES * p * ITEM, ACTIVATION_COPIES * batch * int(width) * int(depth) * ITEM,
            int(num_samples) * BYTES_PER_SAMPLE)


def check_training(num_samples: int, width: int, depth: int, in_features: int = 1, out_features: int = 1, *,
                   batch_size: int | None = None, device=None, budget: int | None = None) -> None:
    """Refuse a run whose training step cannot fit: parameters with their gradient, Adam state and best
    copy, plus the activations of one batch and the samples.  The message names the input whose
    reduction to a usual size (:data:`_USUAL`) shrinks the estimate the most."""
    sizes = {"num_samples": int(num_samples), "width": int(width), "depth": int(depth)}
    if batch_size:          # the batch, not the data, decides the activations: fewer samples keep it
        sizes["batch_size"] = min(int(batch_size), int(num_samples))

    def total(**change) -> int:
        s = {**sizes, **change}
        params, acts, samples = training_bytes(s["num_samples"], s["width"], s["depth"], in_features, out_features)
        if "batch_size" in s:
            acts = acts // s["num_samples"] * s["batch_size"]
        return params + acts + samples

    params, activations, _samples = training_bytes(num_samples, width, depth, in_features, out_features, batch_size)
    option = min(sizes, key=lambda k: total(**{k: min(sizes[k], _USUAL[k])}))
    batch = min(sizes.get("batch_size", sizes["num_samples"]), sizes["num_samples"])
    check_fits(total(), option, sizes[option],
               f"a {depth}x{width} network's weights, gradients, Adam state and best copy ({format_bytes(params)}), "
               f"the activations of {batch} samples ({format_bytes(activations)}) and the samples", device=device,
               budget=budget)


def check_grid(grid_shape, *, option: str = "grid_shape", flag: str | None = None, budget: int | None = None) -> None:
    """Refuse a coordinate grid that cannot be held (coordinates and the temporaries that build them)."""
    shape = tuple(int(n) for n in grid_shape)
    points = 1
    for n in shape:
        points *= n
    value = "x".join(map(str, shape)) if len(shape) > 1 else shape[0]
    if len(shape) == 1:
        option, flag = ("num_samples", flag or "--num-samples") if option == "grid_shape" else (option, flag)
    check_fits(2 * points * len(shape) * ITEM, option, value,
               f"{points:,} points x {len(shape)} float32 coordinates and the mesh that builds them", flag=flag,
               budget=budget)


def check_ntk(n: int, layer_widths, *, itemsize: int = ITEM, device=None, budget: int | None = None) -> None:
    """Refuse an NTK of ``n`` points whose per-sample factors (three float values per hidden unit and
    point: activation, derivative and back-propagated factor) cannot fit; the dense kernel is checked
    separately (:func:`spectral_probe.ntk.memory.check_memory`, naming the matrix-free route)."""
    units = max(int(sum(layer_widths)), 1)
    check_fits(3 * int(n) * units * itemsize, "num_samples", int(n),
               f"{int(n):,} points x {units} hidden units of per-sample NTK factors", device=device, budget=budget)
