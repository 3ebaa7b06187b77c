"""Lazy package exports: a package's public names, imported from their submodules on first use.

Used by ``spectral_probe``, ``spectral_probe.training`` and ``spectral_probe.figures``, so that
importing a package (and the command line's ``--help``) loads no torch, h5py, xarray or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict, api: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``, whose names ``api`` (name -> submodule) load on first access.

    ``namespace`` is the package's ``globals()``: a loaded name is stored there, so later lookups
    skip ``__getattr__``.
    """
    def __getattr__(name: str):
        module = api.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *api})

    return __getattr__, __dir__
