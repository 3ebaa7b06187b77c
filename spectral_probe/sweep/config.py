"""Sweep specifications: a TOML file and/or ``--grid KEY=V1,V2`` arguments, validated.

A sweep file has up to four tables::

    [sweep]            # name, description and execution settings (see SETTINGS)
    name = "fig6"
    checkpoint_every = 100   # epochs between checkpoints (default: 10 per run); resume points
    [sweep.slurm]      # submitit parameters, passed to AutoExecutor.update_parameters
    timeout_min = 240
    [fixed]            # one value for every run
    model = "siren2"
    target = "tetris.wav"
    [grid]             # the runs are the product of these lists (in this order)
    s0 = [0, 1000, 2000]
    s1 = [0.5, 1.0]
    seed = [0, 1, 2]

Keys of ``[fixed]`` and ``[grid]`` are listed by :func:`~spectral_probe.sweep.params.valid_keys`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from ..models import list_models
from ..training.presets import list_presets
from ..validation import check_known, parse_key_values, parse_value, positive_int
from .params import DEFAULTS, applies_to, check_key, coerce

__all__ = ["SETTINGS", "SweepSpec", "load_config", "parse_grid_args", "parse_set_args", "parse_value"]

#: keys of the [sweep] table and their types
SETTINGS: dict[str, type | tuple[type, ...]] = {
    "name": str, "description": str, "outdir": str, "executor": str, "workers": int, "scheduler": str,
    "cluster": str, "device": str, "threads": int, "record_every": int, "checkpoint_every": int,
    "retry_failed": bool, "slurm": dict,
}
_TABLES = ("sweep", "fixed", "grid")


@dataclass(frozen=True)
class SweepSpec:
    """What to run: fixed values, grid lists (their product is the sweep), and settings.

    Attributes
    ----------
    fixed
        ``{key: value}`` shared by every run.
    grid
        ``{key: [values]}``; the runs are the product over the keys, in order.
    settings
        The ``[sweep]`` table (name, description, execution defaults, ``slurm``).
    """

    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.settings.get("name", "sweep")

    @property
    def models(self) -> list[str]:
        """The models the sweep trains."""
        return list(self.grid["model"]) if "model" in self.grid else [self.fixed.get("model")]

    def with_overrides(self, grid: dict | None = None, fixed: dict | None = None,
                       settings: dict | None = None) -> "SweepSpec":
        """A copy where ``grid`` lists and ``fixed`` values replace those of the same key (in either table)."""
        grid, fixed = dict(grid or {}), dict(fixed or {})
        new_grid = {k: v for k, v in self.grid.items() if k not in fixed}
        new_grid.update(grid)
        new_fixed = {k: v for k, v in self.fixed.items() if k not in grid}
        new_fixed.update(fixed)
        return replace(self, grid=new_grid, fixed=new_fixed, settings={**self.settings, **(settings or {})})

    def validated(self) -> "SweepSpec":
        """A copy with values coerced to their key's type; raises ValueError on any bad input."""
        for key, value in self.settings.items():
            _check_setting(key, value)
        if not self.grid:
            raise ValueError("empty grid: no [grid] table and no --grid KEY=V1,V2; give at least one key to "
                             "vary (for a single run use `spectral-probe train`)")
        fixed = {k: coerce(k, v) for k, v in self.fixed.items() if _known(k, "[fixed]")}
        grid = {k: _coerce_list(k, v) for k, v in self.grid.items() if _known(k, "[grid]")}
        for key in ("model", "target"):
            if key not in fixed and key not in grid:
                raise ValueError(f"sweep has no {key!r}; set it in [fixed] or [grid] (or --set/--grid {key}=...)")
        checked = replace(self, fixed={**{k: v for k, v in DEFAULTS.items() if k not in grid}, **fixed}, grid=grid)
        _check_names(checked)
        return checked


def _known(key: str, where: str) -> bool:
    check_key(key, where)
    return True


def _check_setting(key: str, value) -> None:
    check_known([key], list(SETTINGS), "[sweep] key", exc=ValueError, valid="valid keys")
    kind = SETTINGS[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"[sweep] {key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    if kind is int:
        positive_int(value, f"[sweep] {key}")


def _coerce_list(key: str, values) -> list:
    if not isinstance(values, (list, tuple)):
        values = [values]
    if not values:
        raise ValueError(f"empty grid: key {key!r} has no values; give at least one (e.g. --grid {key}=V1,V2)")
    out = [coerce(key, v) for v in values]
    seen = set()
    for v in out:
        marker = "nan" if isinstance(v, float) and math.isnan(v) else v
        if marker in seen:
            raise ValueError(f"grid key {key!r} repeats the value {v!r}; list each value once")
        seen.add(marker)
    return out


def _check_names(spec: SweepSpec) -> None:
    models = spec.models
    for name in models:
        if name not in list_models():
            raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    for preset in spec.grid.get("preset", [spec.fixed.get("preset")]):
        if preset not in list_presets():
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(list_presets())}")
    for key in [*spec.fixed, *spec.grid]:
        if not applies_to(key) & set(models):
            raise ValueError(f"sweep key {key!r} applies to {', '.join(sorted(applies_to(key)))} only, and the "
                             f"sweep trains {', '.join(models)}; remove it or add such a model")


# --------------------------------------------------------------------------- parsing
def load_config(path: str | Path) -> SweepSpec:
    """Read a sweep TOML file (unvalidated; call :meth:`SweepSpec.validated`)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"no sweep config at '{path}'") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"cannot parse sweep config '{path}': {exc}") from None
    check_known(data, list(_TABLES), "table", exc=ValueError, valid="valid tables", where=f" in '{path}'")
    for table in _TABLES:
        if not isinstance(data.get(table, {}), dict):
            raise ValueError(f"'{table}' in '{path}' must be a table ([{table}])")
    fixed = data.get("fixed", {})
    for key, value in fixed.items():
        if isinstance(value, list):
            raise ValueError(f"[fixed] {key} is a list; move it to [grid] to sweep over it")
    return SweepSpec(fixed=dict(fixed), grid=dict(data.get("grid", {})), settings=dict(data.get("sweep", {})))


def parse_grid_args(items: Sequence[str]) -> dict[str, list]:
    """``("model=siren,siren2", "seed=0,1 s0=10")`` -> ``{"model": [...], "seed": [0, 1], "s0": [10]}``."""
    return parse_key_values(items, "--grid", split_lists=True)


def parse_set_args(items: Sequence[str]) -> dict:
    """``("epochs=20", "preset=quick")`` -> ``{"epochs": 20, "preset": "quick"}``."""
    return parse_key_values(items, "--set")
