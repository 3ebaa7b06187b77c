"""spectral-probe: spectral diagnostics for the training dynamics of implicit neural representations."""

from .devices import resolve_device
from .models import build_model, list_models
from .posthoc import load_model
from .signals import Target, load_target
from .store import open_run
from .training import Callback, FitResult, TrainConfig, fit, train_step
from .winner import spectral_centroid, winner_scales

__version__ = "0.1.0"

__all__ = ["build_model", "list_models", "Target", "load_target", "fit", "train_step", "TrainConfig",
           "FitResult", "Callback", "spectral_centroid", "winner_scales", "resolve_device", "open_run",
           "load_model", "__version__"]
