"""spectral-probe: spectral diagnostics for the training dynamics of implicit neural representations.

The names below are the curated API; each is imported on first use, so
``import spectral_probe`` (and the ``spectral-probe`` command line) does not
load torch, h5py, xarray or matplotlib until they are needed.

>>> import spectral_probe as sp
>>> target = sp.load_target("synthetic:broadband")
>>> model = sp.build_model("siren2", width=128, depth=4, s0=10.0, s1=0.5, seed=0)
>>> result = sp.fit(model, target, epochs=300, probes=[sp.Probe(every=50)])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _moved
from ._lazy import lazy_exports
from ._version import __version__

_moved.install()                                # old paths of the training-run modules, for one release

#: public name -> submodule that defines it (imported on first access)
_API: dict[str, str] = {
    # models
    "build_model": "models", "list_models": "models", "register_model": "models",
    # targets and WINNER scales
    "Target": "signals", "load_target": "signals", "spectral_centroid": "winner", "winner_scales": "winner",
    # training
    "fit": "training", "train_step": "training", "TrainConfig": "training", "FitResult": "training",
    "Callback": "training", "make_run": "training", "resolve_device": "devices",
    # probes, NTK, bottleneck watch
    "Probe": "probes", "NTKSnapshot": "ntk", "BottleneckWatch": "bottleneck",
    # run files
    "TrajectoryWriter": "store", "open_run": "store", "load_model": "training",
}

__all__ = [*_API, "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _API)


if TYPE_CHECKING:  # pragma: no cover - static analysers see the eager imports
    from .bottleneck import BottleneckWatch
    from .devices import resolve_device
    from .models import build_model, list_models, register_model
    from .ntk import NTKSnapshot
    from .probes import Probe
    from .signals import Target, load_target
    from .store import TrajectoryWriter, open_run
    from .training import Callback, FitResult, TrainConfig, fit, load_model, make_run, train_step
    from .winner import spectral_centroid, winner_scales
