"""Probes: named hook points, per-layer activation statistics and their cache.

:class:`Probe` (``probe.py``) records activations at hook points on probe steps;
the statistics it computes live in :mod:`.stats`; ``summary.py`` packs them on
the device and ``cache.py`` holds them per step.
"""

from .cache import ProbeCache
from .probe import HookInfo, Probe, hook_points, is_paused, list_hook_points, paused, select_hook_points

__all__ = ["HookInfo", "hook_points", "list_hook_points", "select_hook_points", "paused", "is_paused",
           "Probe", "ProbeCache"]
