"""Pausing forward hooks: one mechanism for probes, NTK computations and users.

Probes observe a model through forward hooks.  Computing an empirical NTK
runs the model many times, often inside ``torch.func`` transforms
(``vmap``/``jacrev``) where hook callbacks would see batched tracer tensors
that must not escape the transform (functorch#1054), and a user may want a
forward pass that no probe records.  :func:`paused` covers both:

* ``with paused():`` -- every spectral-probe probe hook in this thread is inert
  (a thread-local counter the hooks check; cheap, no hook is touched);
* ``with paused(model):`` -- in addition, every forward and forward-pre hook
  registered on ``model``'s modules *before* the block (any hook, not only
  probes') is detached, and put back in its original order afterwards.

Semantics of ``paused(model)``
------------------------------
* Hooks registered *inside* the block (for instance by the structured NTK
  route, which captures layer inputs and outputs) fire inside it and are
  discarded when it ends.
* ``handle.remove()`` called inside the block on a paused hook still removes
  it for good: handles refer to the stashed dictionaries, which are put back.
* Global hooks (``torch.nn.modules.module.register_module_forward_hook``) are
  not touched.

Both forms nest, restore what they found even when the block raises, and are
combined with the transform check (:func:`inside_transform`): probe hooks are
also inert when they see tensors of a ``torch.func`` transform or while
``torch.compile`` traces.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from . import _compat

__all__ = ["paused", "is_paused", "inside_transform"]

_STATE = threading.local()


@contextmanager
def paused(model: nn.Module | None = None) -> Iterator[nn.Module | None]:
    """Silence probe hooks in this thread and, with ``model``, detach all of its forward hooks.

    Parameters
    ----------
    model
        Any module; every submodule (``model.modules()``) has its forward and
        forward-pre hooks detached for the block.  None pauses probe hooks only.

    Yields
    ------
    nn.Module or None
        ``model``.

    Examples
    --------
    >>> with paused(model):
    ...     theta = empirical_ntk(model, x)   # no hook registered before the block fires
    >>> with paused():
    ...     model(x)                          # probes record nothing
    """
    stashed: list[tuple[nn.Module, str, object]] = []
    _STATE.depth = getattr(_STATE, "depth", 0) + 1
    try:
        if model is not None:
            for module in model.modules():
                for attr in _compat.HOOK_DICTS:
                    current = getattr(module, attr, None)
                    if current is None:                 # a module that skipped nn.Module.__init__
                        continue
                    stashed.append((module, attr, current))
                    setattr(module, attr, OrderedDict())
        yield model
    finally:
        for module, attr, original in stashed:
            setattr(module, attr, original)
        _STATE.depth -= 1


def is_paused() -> bool:
    """True inside :func:`paused` (in this thread)."""
    return getattr(_STATE, "depth", 0) > 0


def inside_transform(t: torch.Tensor) -> bool:
    """True for tensors seen inside ``torch.func`` transforms or while ``torch.compile`` traces."""
    return bool(_compat.transforms_active() or _compat.is_functorch_wrapped(t) or _compat.is_compiling())
