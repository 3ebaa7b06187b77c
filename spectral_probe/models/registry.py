"""The model registry: one place where an architecture is added.

A builder is a function ``(in_features, out_features, width, depth, **args) ->
nn.Module`` whose arguments all have defaults.  Registering it makes it
visible to :func:`build_model`, :func:`list_models`, :func:`model_parameters`,
the CLI's ``--model`` (``spectral-probe models`` lists it) and sweeps (its
arguments become sweep keys)::

    from spectral_probe.models import register_model

    @register_model("my_siren")
    def my_siren(in_features=1, out_features=1, width=256, depth=4, omega=30.0):
        ...

The bundled architectures register themselves the same way (``models/siren.py``,
``models/baselines.py``).
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterator, Mapping, TypeVar

import torch

from ..validation import check_known

__all__ = ["register_model", "unregister_model", "build_model", "list_models", "model_parameters",
           "MODELS"]

#: arguments every builder takes: the CLI, presets and sweeps pass them
REQUIRED_ARGS = ("in_features", "out_features", "width", "depth")

Builder = TypeVar("Builder", bound=Callable[..., torch.nn.Module])
_REGISTRY: dict[str, Callable[..., torch.nn.Module]] = {}
_VERSION = [0]


class _ModelsView(Mapping):
    """Read-only ``name -> builder`` view of the registry (``MODELS``)."""

    def __getitem__(self, name: str) -> Callable[..., torch.nn.Module]:
        return _REGISTRY[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"MODELS({', '.join(self)})"


#: read-only view ``name -> builder`` of every registered model
MODELS: Mapping[str, Callable[..., torch.nn.Module]] = _ModelsView()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or not name.replace("_", "a").replace("-", "a").isalnum():
        raise ValueError(f"model names are non-empty strings of letters, digits, '_' and '-', got {name!r}")
    return name


def _check_builder(name: str, builder: object) -> None:
    if not callable(builder):
        raise TypeError(f"register_model({name!r}): the builder must be callable, got {builder!r}")
    params = inspect.signature(builder).parameters
    variadic = [p.name for p in params.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if variadic:
        raise TypeError(f"register_model({name!r}): the builder must list its arguments explicitly "
                        f"(no *{variadic[0]}): the CLI and sweeps read them from its signature")
    missing = [a for a in REQUIRED_ARGS if a not in params]
    if missing:
        raise TypeError(f"register_model({name!r}): the builder must accept {', '.join(REQUIRED_ARGS)} "
                        f"(missing: {', '.join(missing)})")
    no_default = [p.name for p in params.values() if p.default is p.empty]
    if no_default:
        raise TypeError(f"register_model({name!r}): every builder argument needs a default "
                        f"(none for: {', '.join(no_default)})")


def register_model(name: str | Callable | None = None, builder: Callable | None = None, *,
                   overwrite: bool = False):
    """Add an architecture to the registry; usable as a decorator.

    Parameters
    ----------
    name
        Registry name (``--model NAME``); default: the builder's ``__name__``.
    builder
        ``(in_features, out_features, width, depth, **args) -> nn.Module``, every
        argument with a default.  Omit it to use ``register_model`` as a decorator.
    overwrite
        Replace an existing entry of the same name (otherwise ``ValueError``).

    Returns
    -------
    The builder (so ``@register_model("name")`` leaves the function unchanged),
    or a decorator when ``builder`` is omitted.

    Examples
    --------
    >>> @register_model("tiny")
    ... def tiny(in_features=1, out_features=1, width=8, depth=1):
    ...     return torch.nn.Linear(in_features, out_features)
    >>> build_model("tiny", seed=0)
    """
    if callable(name) and builder is None:          # bare @register_model
        return register_model(name.__name__, name, overwrite=overwrite)

    def add(fn: Builder) -> Builder:
        key = _check_name(fn.__name__ if name is None else name)
        _check_builder(key, fn)
        if key in _REGISTRY and _REGISTRY[key] is not fn and not overwrite:
            raise ValueError(f"model {key!r} is already registered; pass overwrite=True to replace it")
        _REGISTRY[key] = fn
        _VERSION[0] += 1
        return fn

    return add if builder is None else add(builder)


def unregister_model(name: str) -> None:
    """Remove ``name`` from the registry (``ValueError`` naming the models if it is not there)."""
    _builder(name)
    del _REGISTRY[name]
    _VERSION[0] += 1


def registry_version() -> int:
    """A counter that changes whenever a model is (un)registered (for caches of derived tables)."""
    return _VERSION[0]


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(_REGISTRY)


def _builder(name: str) -> Callable[..., torch.nn.Module]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_parameters(name: str) -> dict[str, object]:
    """Keyword arguments of model ``name`` with their defaults."""
    builder = _builder(name)
    return {k: p.default for k, p in inspect.signature(builder).parameters.items()}


def build_model(
    name: str,
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **kwargs,
) -> torch.nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name
        One of :func:`list_models`.
    seed
        Seed for the initialisation (weights, WINNER noise, random features);
        the global RNG state is left untouched when given.
    device, dtype
        Where to place the model; ``dtype`` applies to real parameters only
        (WIRE's complex layers keep their complex dtype).
    **kwargs
        Architecture arguments; see :func:`model_parameters`.  Arguments that
        the architecture does not take raise ``TypeError``.
    """
    builder = _builder(name)
    check_known(kwargs, list(model_parameters(name)), "argument", owner=f"model {name!r}")
    if isinstance(kwargs.get("width"), int) and isinstance(kwargs.get("depth"), int) and \
            kwargs["width"] > 0 and kwargs["depth"] > 0:     # weights that cannot fit: refused before any layer
        from ..sizes import check_model

        check_model(kwargs["width"], kwargs["depth"], int(kwargs.get("in_features", 1)),
                    int(kwargs.get("out_features", 1)), device=device)
    if seed is None:
        model = builder(**kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = builder(**kwargs)
        config = getattr(model, "config", None)
        if isinstance(config, dict):
            config["seed"] = int(seed)
    if dtype is not None and not any(p.is_complex() for p in model.parameters()):
        model = model.to(dtype=dtype)
    if device is not None:
        model = model.to(device=device)
    return model
