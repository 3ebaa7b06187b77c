"""Checks of what a writer is asked to store: a group declared twice, appended rows, their size on disk."""

from __future__ import annotations

from typing import Mapping

import h5py
import numpy as np

from .schema import PAGE_BYTES, Layout, Var, from_stored

__all__ = ["check_same_layout", "check_rows", "bytes_needed"]


def check_same_layout(group: str, layout: Layout, stored: h5py.Group, variables: Mapping[str, Var],
                      coords: Mapping) -> None:
    """Refuse declaring ``group`` again with other variables or axes than ``layout`` / the stored coordinates."""
    for name, var in variables.items():
        old = layout.variables.get(name)
        if old is None or old.dims != var.dims or old.trajectory != var.trajectory:
            raise ValueError(f"group {group!r} already holds a different layout: variable {name!r} "
                             f"{'is missing' if old is None else f'has dims {old.dims}'}; "
                             "write to a new file or use another group name")
    for dim, values in coords.items():
        if isinstance(values, int):
            same = layout.sizes.get(dim) == values
        else:
            old = from_stored(stored[dim][()]) if dim in stored else None
            same = old is not None and old.shape == values.shape and np.array_equal(old, from_stored(values))
        if not same:
            raise ValueError(f"group {group!r} already has a different '{dim}' axis; "
                             "write to a new file or use another group name")


def check_rows(group: str, layout: Layout, steps: np.ndarray, values: Mapping, last: int | None) -> dict:
    """Rows to append, shaped ``(k, *dims)``; ``ValueError`` naming the variable for any mismatch.

    ``steps`` (1-D) must increase strictly and start after ``last`` (the group's last step).
    """
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"step must be an integer or a 1-D array of integers, got {steps!r}")
    if np.any(np.diff(steps) <= 0) or (last is not None and steps[0] <= last):
        raise ValueError(f"steps {steps.tolist()} for group '{group}' do not increase strictly after the "
                         f"last written step {last}; steps must increase (write a new file to start over)")
    rows = {}
    for name, value in values.items():
        var = layout.variables.get(name)
        if var is None or not var.trajectory:
            raise ValueError(f"unknown trajectory variable {name!r} in group '{group}'; "
                             f"declared: {', '.join(layout.trajectory)}")
        shape = tuple(layout.sizes[d] for d in var.dims)
        value = np.asarray(value)
        if value.shape == shape and steps.size == 1:
            value = value[None]
        if value.shape != (steps.size, *shape):
            raise ValueError(f"{group}/{name} expects shape {(steps.size, *shape)} "
                             f"(step, {', '.join(var.dims)}), got {value.shape}")
        rows[name] = value
    return rows


def bytes_needed(datasets: Mapping[str, h5py.Dataset], k: int) -> int:
    """Upper bound of the bytes ``k`` new rows allocate: whole chunks of every trajectory variable.

    Each chunk the rows touch counts in whole file-space pages (paged aggregation allocates a
    chunk larger than a page on page boundaries, and a small one may open a new page), with
    its 4-byte checksum.
    """
    total = 0
    for ds in datasets.values():
        row = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
        chunk = int(np.prod(ds.chunks, dtype=np.int64)) * ds.dtype.itemsize
        touched = -(-row * k // max(chunk, 1)) + 1
        total += touched * (-(-(chunk + 4) // PAGE_BYTES) * PAGE_BYTES)
    return total
