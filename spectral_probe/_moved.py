"""Old import paths of modules that moved, kept for one release with a ``DeprecationWarning``.

The training-run modules moved into :mod:`spectral_probe.training` (0.2).  ``import
spectral_probe.presets`` and ``from spectral_probe.runs import train_to_file`` (the paths the 0.1
README showed) still work: a finder on ``sys.meta_path`` answers for exactly these names, warns
once per name, and hands back the module at its new path (the same module object, so state and
``isinstance`` checks are shared).  Delete this module and its line in ``spectral_probe/__init__.py``
in the release after.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

#: old module path -> new module path
MOVED: dict[str, str] = {
    f"spectral_probe.{old}": f"spectral_probe.training.{new}"
    for old, new in [("recorder", "recorder"), ("checkpoint", "checkpoint"), ("resume", "resume"),
                     ("interrupts", "interrupts"), ("posthoc", "posthoc"), ("batched", "batched"),
                     ("accel", "accel"), ("presets", "presets"), ("runs", "runs")]
}


class _MovedLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None                                 # a placeholder; exec_module swaps in the real module

    def exec_module(self, module) -> None:
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}; import it from there (or the public names from "
                      "spectral_probe.training); the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)    # the import line (importlib's frames are skipped)
        sys.modules[module.__name__] = importlib.import_module(new)     # what the import statement returns


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths in :data:`MOVED` (and nothing else)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader())


def install() -> None:
    """Add the finder once (importing ``spectral_probe`` again does not add a second one)."""
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
