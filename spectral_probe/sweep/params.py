"""The parameters a sweep can vary: their names, types, and which models they apply to.

Every run of a sweep is described by a flat ``{key: value}`` dict.  Keys are

* run keys, which apply to every model: the arguments of
  :func:`~spectral_probe.training.presets.make_run` (``model``, ``target``, ``preset``,
  ``seed``, ``epochs``, ``width``, ``depth``, ``num_samples``, ``offset``, ``omega_rule``) and the
  training settings ``lr``, ``lr_step``, ``lr_gamma``, ``batch_size``;
* model keys: the keyword arguments of the model builders
  (:func:`~spectral_probe.models.model_parameters`), e.g. ``s0``/``s1`` (siren2
  only), ``first_omega``, ``sigma``.  A model key applies only to the models
  that accept it; for the others it is dropped from the run (so those models
  are trained once, not once per value).
"""

from __future__ import annotations

from functools import lru_cache

from ..models import list_models, model_parameters
from ..models.registry import registry_version
from ..validation import check_known

__all__ = ["RUN_KEYS", "TRAIN_KEYS", "DEFAULTS", "valid_keys", "applies_to", "coerce", "check_key"]

#: keys passed to make_run (type of each)
RUN_KEYS: dict[str, type] = {"model": str, "target": str, "preset": str, "seed": int, "epochs": int,
                             "width": int, "depth": int, "num_samples": int, "offset": int, "omega_rule": str}
#: keys passed to TrainConfig through make_run's train_overrides
TRAIN_KEYS: dict[str, type] = {"lr": float, "lr_step": int, "lr_gamma": float, "batch_size": int}
#: values filled in when a sweep leaves them out (they are part of every run's identity)
DEFAULTS: dict[str, object] = {"preset": "quick", "seed": 0}
#: model arguments whose builders default to None, with their type
_NONE_DEFAULT_TYPES: dict[str, type] = {"noise_omega": float, "num_features": int}
#: model arguments a sweep never sets (derived from the target, or run keys)
_DERIVED = ("in_features", "out_features", "width", "depth")


def _model_keys() -> dict[str, tuple[type | None, frozenset[str]]]:
    """Model key -> (type, models that accept it); follows :func:`~spectral_probe.models.register_model`."""
    return _model_keys_at(registry_version())


@lru_cache(maxsize=1)
def _model_keys_at(version: int) -> dict[str, tuple[type | None, frozenset[str]]]:
    found: dict[str, tuple[type | None, set[str]]] = {}
    for name in list_models():
        for key, default in model_parameters(name).items():
            if key in _DERIVED:
                continue
            kind = _NONE_DEFAULT_TYPES.get(key) if default is None else type(default)
            found.setdefault(key, (kind, set()))[1].add(name)
    return {k: (kind, frozenset(models)) for k, (kind, models) in found.items()}


def valid_keys() -> list[str]:
    """Every key a sweep accepts, run keys first."""
    return [*RUN_KEYS, *TRAIN_KEYS, *sorted(_model_keys())]


def check_key(key: str, where: str = "sweep") -> None:
    """Raise ValueError naming the valid keys when ``key`` is not one."""
    if key not in RUN_KEYS and key not in TRAIN_KEYS and key not in _model_keys():
        check_known([key], valid_keys(), f"{where} key", exc=ValueError, valid="valid keys")


def applies_to(key: str) -> frozenset[str]:
    """Models for which ``key`` has an effect (all models for run and training keys)."""
    check_key(key)
    if key in RUN_KEYS or key in TRAIN_KEYS:
        return frozenset(list_models())
    return _model_keys()[key][1]


def _key_type(key: str) -> type | None:
    if key in RUN_KEYS:
        return RUN_KEYS[key]
    if key in TRAIN_KEYS:
        return TRAIN_KEYS[key]
    return _model_keys()[key][0]


def coerce(key: str, value):
    """``value`` converted to ``key``'s type (``1`` -> ``1.0`` for a float key), so run ids are stable.

    Raises
    ------
    ValueError
        When the value has the wrong type (e.g. ``width = 1.5`` or ``s0 = "big"``).
    """
    check_key(key)
    kind = _key_type(key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str and isinstance(value, str) and value.strip():
        return value.strip()
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and number:
        return float(value)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is None and (number or isinstance(value, (str, bool))):
        return value
    want = {str: "a non-empty string", int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a value")
    raise ValueError(f"sweep key {key!r} must be {want}, got {value!r}")
