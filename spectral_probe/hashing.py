"""Settings hashes: one canonical JSON form of a settings mapping, and its SHA-256.

Used for the parts of a figure (:mod:`spectral_probe.figures.parts`: a part's file is stale when its
hash changes) and for the jobs of ``reproduce paper`` (:mod:`spectral_probe.paperscale`).
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["canonical", "settings_hash"]


def canonical(obj):
    """JSON-able, order-independent form of settings (tuples -> lists, mappings -> sorted dicts)."""
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): canonical(v) for k, v in sorted(dict(obj).items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def settings_hash(settings) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``settings``."""
    text = json.dumps(canonical(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
