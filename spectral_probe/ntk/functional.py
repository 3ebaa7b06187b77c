"""``torch.func.functional_call`` that always leaves the model as it found it."""

from __future__ import annotations

from torch import nn
from torch.func import functional_call

__all__ = ["call_with"]


def call_with(model: nn.Module, tensors, args: tuple, modules: list[nn.Module] | None = None):
    """``functional_call(model, tensors, args)``, then put every module's parameters and buffers back.

    ``functional_call`` does not restore a module that is registered under two
    names (an ``nn.Sequential`` that reuses a layer): afterwards the layer
    holds the substituted tensor instead of its ``Parameter``.  Here the
    original tensors are recorded and reassigned in any case.

    Parameters
    ----------
    modules
        ``list(model.modules())``, when the caller has it already (repeated calls).
    """
    modules = list(model.modules()) if modules is None else modules
    saved = [(m, dict(m._parameters), dict(m._buffers)) for m in modules]
    try:
        return functional_call(model, tensors, args)
    finally:
        for m, params, buffers in saved:
            m._parameters.update(params)
            m._buffers.update(buffers)
