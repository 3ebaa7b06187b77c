"""Checks of user input, in one place.

Every public entry point (Python API and CLI) validates its arguments with
these helpers before any expensive work, so that a bad value fails at once
with one line naming the value and the fix.  User errors are ``ValueError``
(a bad value) or ``TypeError`` (a wrong kind or an unknown name); the CLI turns
both into ``error: ...`` and exit code 2.

This module imports nothing heavy (no torch, numpy or h5py), so the CLI can use
it while parsing options.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["positive_int", "nonnegative_int", "positive_float", "finite_float", "check_known",
           "parse_value", "parse_key_values", "merge_key_values", "check_value_types", "check_output_path"]


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """``value`` as an ``int`` >= 1 (``None`` passes when ``allow_none``); otherwise ``ValueError``."""
    if value is None and allow_none:
        return None
    if not _is_int(value) or value < 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer{extra}, got {value!r}")
    return int(value)


def nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` >= 0; otherwise ``ValueError``."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _as_float(value: Any, name: str, want: str) -> float:
    """``float(value)`` for numbers (and numeric strings, 0-d tensors); ``ValueError`` naming ``want`` else."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {want}, got {value!r}") from None


def finite_float(value: Any, name: str, *, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite ``float`` within ``[low, high]`` (bounds optional); otherwise ``ValueError``."""
    out = _as_float(value, name, "a number")
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and out < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value!r}")
    if high is not None and out > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return out


def positive_float(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite ``float`` > 0 (>= 0 with ``allow_zero``); otherwise ``ValueError``.

    One message for every failure: ``"{name} must be a positive finite number"``
    (``"a finite number >= 0"`` with ``allow_zero``).
    """
    want = "a finite number >= 0" if allow_zero else "a positive finite number"
    out = _as_float(value, name, want)
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return out


def check_known(given: Iterable[str], accepted: Sequence[str], what: str, *, owner: str = "",
                exc: type[Exception] = TypeError, valid: str = "valid", where: str = "") -> None:
    """Raise ``exc`` naming every key of ``given`` that is not in ``accepted``, and listing the valid ones.

    Parameters
    ----------
    given, accepted
        Names supplied and names allowed.
    what
        What one name is, e.g. ``"argument"`` or ``"[grid] key"`` (an ``s`` is
        added for several).
    owner
        Who refuses them, e.g. ``"model 'siren'"``: ``"model 'siren' takes no
        argument 'zeta'; valid: ..."``; without it ``"unknown argument 'zeta'; ..."``.
    valid
        Label of the list of valid names (``"valid keys"``).
    where
        Appended after the names, e.g. ``" in 'sweep.toml'"``.
    """
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        noun = what if len(unknown) == 1 else f"{what}s"
        head = f"{owner} takes no {noun}" if owner else f"unknown {noun}"
        raise exc(f"{head} {', '.join(map(repr, unknown))}{where}; {valid}: {', '.join(accepted) or '(none)'}")


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-4"`` -> 0.0001, ``"true"`` -> True, ``"nan"`` -> nan, anything else stays a string."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_key_values(items: Sequence[str], option: str, *, split_lists: bool = False) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` items (several per item when separated by spaces).

    Parameters
    ----------
    items
        E.g. ``("sigma=10", "num_frequencies=12 s0=3")``.
    option
        The option's name for error messages, e.g. ``"--param"``.
    split_lists
        Parse ``VALUE`` as a comma-separated list (``--grid model=siren,siren2``).

    Returns
    -------
    dict
        ``{key: value}`` with values from :func:`parse_value` (lists of them with ``split_lists``).
        A key given twice keeps its last value.
    """
    out: dict[str, Any] = {}
    for item in items:
        for pair in str(item).split():
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"{option} expects KEY=VALUE, got {pair!r}")
            if split_lists:
                out[key] = [parse_value(v) for v in text.split(",") if v.strip()]
            else:
                out[key] = parse_value(text)
    return out


def merge_key_values(options: Mapping[str, Any], pairs: Mapping[str, Any], *, option_names: Mapping[str, str],
                     refuse: Mapping[str, str] | None = None, source: str = "--param") -> tuple[dict, dict]:
    """Combine dedicated options with ``KEY=VALUE`` pairs that may name the same settings.

    Parameters
    ----------
    options
        ``key -> value`` of the dedicated options (``None``: not given).
    pairs
        Parsed ``KEY=VALUE`` items (:func:`parse_key_values`).
    option_names
        ``key -> "--flag"`` for the keys a pair may set instead of its option
        (``--param s0=10`` is ``--s0 10``).
    refuse
        ``key -> why`` for keys a pair must not set (e.g. ``"use --epochs"``).
    source
        The option the pairs came from, for messages.

    Returns
    -------
    (options, rest)
        The options with the pairs' values filled in, and the pairs left over.

    Raises
    ------
    ValueError
        A pair sets a refused key, or conflicts with its option given with another value.
    """
    merged, rest = dict(options), {}
    for key, value in pairs.items():
        if refuse and key in refuse:
            raise ValueError(f"{source} {key}={value}: {refuse[key]}")
        if key in option_names:
            given = merged.get(key)
            if given is not None and given != value:
                raise ValueError(f"conflicting values for {key}: {option_names[key]} {given} and {source} "
                                 f"{key}={value}; give one")
            merged[key] = value
        else:
            rest[key] = value
    return merged, rest


def check_value_types(values: Mapping[str, Any], defaults: Mapping[str, Any], source: str = "--param") -> None:
    """Refuse values whose kind does not match the default's (``sigma=abc`` where a number is expected).

    A default of ``None`` accepts a number; ``bool`` defaults need ``true``/``false``.
    """
    for key, value in values.items():
        default = defaults.get(key, object())
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, Integral):
            ok, kind = _is_int(value), "an integer"
        elif isinstance(default, Real) or default is None:
            ok, kind = isinstance(value, Real) and not isinstance(value, bool), "a number"
        else:
            continue
        if not ok:
            raise ValueError(f"{source} {key}={value}: {key} must be {kind}")


def check_output_path(path: str | os.PathLike, what: str = "--out", *, overwrite: bool = True,
                      directory: bool = False) -> Path:
    """Check that ``path`` can be written, before any compute.

    Parameters
    ----------
    path
        A file to create (or a folder with ``directory=True``; it may exist).
    what
        The option or argument's name for messages.
    overwrite
        Whether an existing file may be replaced (``False`` refuses it).
    directory
        ``path`` is an output folder; missing folders are allowed when their
        nearest existing ancestor is a writable folder.

    Returns
    -------
    Path
        ``path`` as given (not resolved).

    Raises
    ------
    ValueError
        The path, or one of its parents, is a file where a folder is needed,
        the folder is not writable, or the file exists and ``overwrite`` is
        false.
    """
    path = Path(path)
    if directory:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{what} {str(path)!r} is a file, not a folder")
        probe = path
    else:
        if path.is_dir():
            raise ValueError(f"{what} {str(path)!r} is a folder; give a file name")
        if path.exists() and not overwrite:
            raise ValueError(f"{what} {str(path)!r} exists; choose another name or allow overwriting")
        probe = path.parent
    # nearest existing ancestor: it must be a writable folder
    probe = Path(os.path.abspath(probe))
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(probe)!r} is a file, not a folder")
    if not directory and probe != Path(os.path.abspath(path.parent)):
        raise ValueError(f"{what} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: folder {str(probe)!r} is not writable")
    return path
