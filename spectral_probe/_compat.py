"""The private torch APIs spectral-probe relies on, resolved and checked in one place.

Each is needed for a guarantee that would otherwise break *silently* when
torch renames it, so a missing one raises :class:`TorchCompatError` (naming the
API, the torch version and what depends on it) when this module is imported,
i.e. on ``import spectral_probe.probes`` or ``spectral_probe.hooks``:

==========================================================  =====================================================
API                                                         needed for
==========================================================  =====================================================
``torch._C._are_functorch_transforms_active``               probe hooks are inert inside ``torch.func`` transforms
``torch._C._functorch.is_functorch_wrapped_tensor``         (vmap/jacrev tracers must not be recorded, functorch#1054)
``torch.compiler.is_compiling``                             ... and while ``torch.compile`` traces (checked at first use
                                                            on torch < 2.3, where it is ``torch._dynamo.is_compiling``)
``nn.Module._forward_hooks`` and the other hook dicts       :func:`spectral_probe.hooks.paused` detaches a model's hooks
``torch.nn.modules.conv._ConvNd``                           convolutions count as linear maps in the probes' fallback
==========================================================  =====================================================
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["TorchCompatError", "HOOK_DICTS", "CONV_BASE", "transforms_active", "is_functorch_wrapped",
           "is_compiling"]


class TorchCompatError(ImportError):
    """A private torch API spectral-probe needs is missing in the installed torch."""


def _missing(api: str, purpose: str) -> TorchCompatError:
    return TorchCompatError(
        f"torch {torch.__version__} has no {api}, which spectral-probe needs {purpose}; "
        "install a torch version supported by this spectral-probe release, or update "
        "spectral_probe/_compat.py for the new name")


def _attr(obj, dotted: str, api: str, purpose: str):
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise _missing(api, purpose)
        obj = getattr(obj, part)
    return obj


_TRANSFORMS = "so that probe hooks stay inert inside torch.func transforms (vmap/jacrev)"

#: attributes of ``nn.Module`` that hold forward and forward-pre hooks (detached by ``paused(model)``)
HOOK_DICTS: tuple[str, ...] = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


def _check_hook_dicts(names: tuple[str, ...] = HOOK_DICTS) -> None:
    probe = nn.Module()
    for name in names:
        if not isinstance(getattr(probe, name, None), dict):
            raise _missing(f"nn.Module.{name} (a dict of hooks)",
                           "to pause a model's forward hooks during NTK computations")
    # a hook registered through the public API must land in one of them, or pausing misses it
    handle = probe.register_forward_hook(lambda *a: None)
    found = any(len(getattr(probe, name)) for name in names)
    handle.remove()
    if not found:
        raise _missing("the forward-hook dicts listed in HOOK_DICTS (register_forward_hook stores elsewhere)",
                       "to pause a model's forward hooks during NTK computations")


def _resolve_compiling() -> Callable[[], bool]:
    public = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if public is not None:
        return public
    state: dict[str, Callable[[], bool]] = {}

    def fallback() -> bool:                    # torch < 2.3: import torch._dynamo (slow) on first use
        if "fn" not in state:
            import torch._dynamo as dynamo

            state["fn"] = _attr(dynamo, "is_compiling", "torch.compiler.is_compiling or "
                                "torch._dynamo.is_compiling", "so that probe hooks stay inert while compiling")
        return state["fn"]()
    return fallback


CONV_BASE: type = _attr(torch.nn.modules.conv, "_ConvNd", "torch.nn.modules.conv._ConvNd",
                        "to treat convolutions as linear maps in the probes' leaf-module fallback")
transforms_active: Callable[[], bool] = _attr(torch._C, "_are_functorch_transforms_active",
                                              "torch._C._are_functorch_transforms_active", _TRANSFORMS)
is_functorch_wrapped: Callable[[torch.Tensor], bool] = _attr(
    torch._C, "_functorch.is_functorch_wrapped_tensor", "torch._C._functorch.is_functorch_wrapped_tensor",
    _TRANSFORMS)
is_compiling: Callable[[], bool] = _resolve_compiling()
_check_hook_dicts()
