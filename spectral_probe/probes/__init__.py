"""Probes: named hook points, per-layer activation statistics and their cache.

:class:`Probe` (``probe.py``) records activations at hook points on probe steps;
the functions it computes with live in :mod:`.stats`; the statistics it records
are registered in :mod:`.registry` (one entry each: name, dims, dtype,
pack/unpack); ``summary.py`` packs them on the device and ``cache.py`` holds
them per step.
"""

from .cache import ProbeCache
from .probe import HookInfo, Probe, hook_points, is_paused, list_hook_points, paused, select_hook_points
from .registry import Statistic, list_statistics, register_statistic, unregister_statistic

__all__ = ["HookInfo", "hook_points", "list_hook_points", "select_hook_points", "paused", "is_paused",
           "Probe", "ProbeCache", "Statistic", "register_statistic", "unregister_statistic", "list_statistics"]
