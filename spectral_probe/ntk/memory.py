"""Memory estimates and the "too large for a dense kernel" error."""

from __future__ import annotations

import torch

from ..devices import available_memory_bytes

__all__ = ["DenseKernelTooLarge", "available_memory_bytes", "format_bytes", "check_memory"]


class DenseKernelTooLarge(ValueError):
    """A dense object (kernel, Jacobian, eigenvectors) would not fit in memory."""


from ..sizes import format_bytes  # noqa: E402 - one formatter for every memory message


def check_memory(
    nbytes: int,
    what: str,
    *,
    device: torch.device | str | None = None,
    max_bytes: int | None = None,
    alternative: str = "use the matrix-free route: ntk_topk(...) for the top eigenpairs and "
                       "spectrum_without_kernel(...) for S(k) (CLI: --top-k K)",
) -> None:
    """Raise :class:`DenseKernelTooLarge` when ``nbytes`` exceed the budget.

    Parameters
    ----------
    nbytes
        Bytes the operation needs.
    what
        Description used in the message, e.g. ``"a dense 200000x200000 float32 NTK"``.
    max_bytes
        Budget; defaults to the memory available on ``device``.
    alternative
        The route to suggest instead.
    """
    budget = available_memory_bytes(torch.device(device or "cpu")) if max_bytes is None else int(max_bytes)
    if nbytes > budget:
        raise DenseKernelTooLarge(
            f"{what} needs {format_bytes(nbytes)} but only {format_bytes(budget)} is available; "
            f"{alternative}")
