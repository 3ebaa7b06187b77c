"""Pause the forward hooks of a model while an NTK is computed.

Probes observe a model through forward hooks on its ``HookPoint`` modules.
Computing an empirical NTK runs the model many times, often inside
``torch.func`` transforms (``vmap``/``jacrev``) where hook callbacks would see
batched tracer tensors that must not escape the transform (functorch#1054).
:func:`paused_hooks` removes every module-level forward (and forward-pre) hook
for the duration of a ``with`` block and restores them afterwards, even when
the block raises.

Semantics
---------
* Hooks registered on the model's modules *before* the block do not fire
  inside it and are back in place, in their original order, after it.
* Hooks registered *inside* the block (for instance by the structured NTK
  route, which captures layer inputs and outputs) fire inside it and are
  discarded when it ends.
* ``handle.remove()`` called inside the block on a paused hook still removes
  it for good: handles refer to the stashed dictionaries, which are put back.
* Global hooks (``torch.nn.modules.module.register_module_forward_hook``) are
  not touched.
* Blocks nest; each restores what it found.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from torch import nn

__all__ = ["paused_hooks", "HOOK_DICTS"]

#: attributes of ``nn.Module`` that hold forward and forward-pre hooks
HOOK_DICTS: tuple[str, ...] = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


@contextmanager
def paused_hooks(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily detach all forward hooks of ``model`` and its submodules.

    Parameters
    ----------
    model
        Any module; every submodule (``model.modules()``) is paused.

    Yields
    ------
    nn.Module
        ``model`` itself, with empty hook dictionaries.

    Examples
    --------
    >>> with paused_hooks(model):
    ...     theta = empirical_ntk(model, x)   # probes do not fire here
    """
    stashed: list[tuple[nn.Module, str, object]] = []
    try:
        for module in model.modules():
            for attr in HOOK_DICTS:
                current = getattr(module, attr, None)
                if current is None:
                    continue
                stashed.append((module, attr, current))
                setattr(module, attr, OrderedDict())
        yield model
    finally:
        for module, attr, original in stashed:
            setattr(module, attr, original)
