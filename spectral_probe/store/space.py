"""Disk-space check before each append.

HDF5 does not recover from a failed write: after ``ENOSPC`` the file handle
can neither flush nor close, and the process may crash at exit (h5py#914,
h5py#2160).  The writer therefore checks, before touching the file, that the
file system has room for the rows plus a reserve for metadata, and that the
process's file-size limit (``RLIMIT_FSIZE``) allows it.  If not, it raises a
clear ``OSError`` and the file stays consistent, committed and closable.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from .schema import FULL_DISK_FIX

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

__all__ = ["RESERVE_BYTES", "check_space"]

#: room kept free for HDF5 metadata (object headers, chunk indices, the final flush)
RESERVE_BYTES = 1 << 20


def _file_size_limit() -> float:
    if resource is None:
        return float("inf")
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return float("inf") if soft == resource.RLIM_INFINITY else float(soft)


def check_space(path: Path, need: int, reserve: int = RESERVE_BYTES, kept: str = "") -> None:
    """Raise ``OSError(ENOSPC)`` unless ``need + reserve`` bytes can still be written to ``path``."""
    total = int(need) + int(reserve)
    free = shutil.disk_usage(path.parent).free
    size = path.stat().st_size if path.exists() else 0
    limit = _file_size_limit()
    if free < total:
        why = f"only {free} bytes are free on its disk and the next rows need about {total}"
    elif size + total > limit:
        why = f"the process's file-size limit ({int(limit)} bytes) would be exceeded"
    else:
        return
    raise OSError(errno.ENOSPC, f"cannot append to run file '{path}': {why}; the disk is full or a "
                  f"file-size limit was reached; {FULL_DISK_FIX}{kept}")
