"""Device selection shared by the library and the CLI (``--device auto|cpu|cuda[:i]``)."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "available_memory_bytes"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``/``"cpu"``/``"cuda"``/``"cuda:1"``/``torch.device`` into a usable device.

    ``"auto"`` (or None) picks CUDA when available, else the CPU.  Asking for
    CUDA on a machine without it raises ``ValueError`` naming the fix.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:<index>") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist; this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"unsupported device {device!r}; use auto, cpu or cuda")
    elif dev.index not in (None, 0):
        raise ValueError(f"device {device!r} does not exist; there is one {dev.type} device: use --device {dev.type}")
    return dev


def available_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA free memory, or the host's MemAvailable."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
