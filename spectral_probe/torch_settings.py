"""Process-wide torch settings, changed only inside a block that restores them.

torch keeps a few settings per process: the intra-op thread count, the float32
matrix-product precision (and the TF32 switches behind it), the default dtype.
A library function or a CLI command that changes one of them and returns leaves
the caller's process changed: a later fit runs on another thread count (another
summation order, so another trajectory), and a test suite depends on its order.
Every change of these settings in spectral-probe goes through this module:

* :func:`torch_threads` -- intra-op threads for a block (``--threads``);
* :func:`float32_matmul` -- full float32 (``"highest"``) or TF32 (``"high"``) matrix products;
* :func:`torch_settings` -- both, as one context (what a command changes);
* :func:`snapshot` / :func:`restore` -- every setting above plus the default dtype,
  for code that must hand a process back as it found it (the test suite does,
  after every test);
* :func:`kept_environment` -- ``os.environ`` as it was before a block, for libraries that
  set variables for their child processes in the caller's environment (dask's nanny:
  ``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``, ...).

>>> with torch_threads(1):           # doctest: +SKIP
...     fit(model, target)            # one thread inside, the caller's count after
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from .validation import positive_int

__all__ = ["torch_threads", "float32_matmul", "precision_settings", "torch_settings", "snapshot", "restore",
           "kept_environment", "restore_environment"]

_PRECISIONS = ("highest", "high")


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (``torch.set_num_threads``), then restore the count.

    Parameters
    ----------
    threads
        Threads inside the block; ``None`` or 0 leave the count as it is
        (``--threads 0``: torch's default).

    Yields
    ------
    int
        The thread count inside the block.
    """
    if threads is not None and threads != 0:
        threads = positive_int(threads, "threads")
    old = torch.get_num_threads()
    if threads and threads != old:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def precision_settings() -> dict:
    """The float32 settings in force (to store beside timings and PSNRs)."""
    return {"float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32)}


@contextlib.contextmanager
def float32_matmul(precision: str = "highest") -> Iterator[dict]:
    """Set float32 matrix-product precision for a block, restoring the previous settings after it.

    Parameters
    ----------
    precision
        ``"highest"``: full float32 (TF32 off for cuBLAS and cuDNN);
        ``"high"``: TF32 allowed (about 3x the float32 rate on Hopper, ~1e-3 relative error).

    Yields
    ------
    dict
        :func:`precision_settings` inside the block.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"unknown float32 precision {precision!r}; use 'highest' (full float32) or 'high' (TF32)")
    tf32 = precision == "high"
    saved = snapshot()
    torch.set_float32_matmul_precision(precision)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield precision_settings()
    finally:
        restore(saved)


@contextlib.contextmanager
def torch_settings(*, threads: int | None = None, precision: str | None = None) -> Iterator[dict]:
    """:func:`torch_threads` and (when ``precision`` is given) :func:`float32_matmul` as one block.

    Yields
    ------
    dict
        ``threads`` and the :func:`precision_settings` inside the block.
    """
    with contextlib.ExitStack() as stack:
        count = stack.enter_context(torch_threads(threads))
        if precision is not None:
            stack.enter_context(float32_matmul(precision))
        yield {"threads": count, **precision_settings()}


def snapshot() -> dict:
    """Every process-wide setting this module manages, plus the default dtype (for :func:`restore`)."""
    return {"threads": torch.get_num_threads(), "default_dtype": torch.get_default_dtype(),
            **precision_settings()}


def restore(saved: dict) -> list[str]:
    """Put back the settings of a :func:`snapshot`; returns the names that had changed."""
    changed = [k for k, v in snapshot().items() if v != saved[k]]
    if "threads" in changed:
        torch.set_num_threads(saved["threads"])
    if "default_dtype" in changed:
        torch.set_default_dtype(saved["default_dtype"])
    if changed:                 # the precision first: setting it also sets the cuBLAS TF32 switch
        torch.set_float32_matmul_precision(saved["float32_matmul_precision"])
        torch.backends.cuda.matmul.allow_tf32 = saved["cuda_matmul_allow_tf32"]
        torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
    return changed


@contextlib.contextmanager
def kept_environment() -> Iterator[dict]:
    """Undo every change of ``os.environ`` made inside the block when it ends.

    Yields
    ------
    dict
        Filled when the block ends: ``{name: value before the block (None: unset)}`` of every variable the
        block set, changed or removed, for :func:`restore_environment` later (a library that sets them again
        while it runs, e.g. dask's nanny when it restarts a worker).
    """
    before = dict(os.environ)
    changes: dict = {}
    try:
        yield changes
    finally:
        changes.update({k: before.get(k) for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)})
        restore_environment(changes)


def restore_environment(saved: dict) -> list[str]:
    """Put back ``{name: value or None (unset)}`` in ``os.environ``; returns the names that had changed."""
    changed = sorted(k for k, v in saved.items() if os.environ.get(k) != v)
    for key in changed:
        if saved[key] is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved[key]
    return changed
