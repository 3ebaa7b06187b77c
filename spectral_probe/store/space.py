"""Disk-space check before every write that can grow a run file.

HDF5 does not recover from a failed write: after ``ENOSPC`` the file handle
can neither flush nor close, and the process may crash (h5py#914, h5py#2160; a
full disk while a run file's groups were declared ended in a segmentation fault
inside h5netcdf's error path).  The writer therefore checks, before touching the
file -- creating it, copying it for a resume, declaring groups, starting SWMR,
each append and each static write -- that the file system has room for what it
writes plus a reserve for metadata, and that the process's file-size limit
(``RLIMIT_FSIZE``) allows it.  If not, it raises a clear ``OSError(ENOSPC)``
and the file stays consistent, committed and closable: the reserve is what the
final flush and close write (they overwrite blocks already allocated or use
the reserve), so a refused write never leaves a file HDF5 cannot close.
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


def check_space(path: Path, need: int, reserve: int = RESERVE_BYTES, kept: str = "", *,
                action: str = "append to", what: str = "the next rows", name: Path | None = None) -> None:
    """Raise ``OSError(ENOSPC)`` unless ``need + reserve`` bytes can still be written to ``path``.

    Parameters
    ----------
    path
        The file that grows (a writer's temporary before it publishes the run file).
    action, what
        Wording of the message: ``cannot {action} run file '...': ... about N are needed for {what}``.
    name
        The run file named in the message (default ``path``).
    """
    total = int(need) + int(reserve)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:         # the folder vanished or is unreadable: the write itself will say why
        return
    size = path.stat().st_size if path.exists() else 0
    limit = _file_size_limit()
    if free < total:
        why = f"only {free} bytes are free on its disk, about {total} are needed for {what}"
    elif size + total > limit:
        why = f"the process's file-size limit ({int(limit)} bytes) would be exceeded"
    else:
        return
    raise OSError(errno.ENOSPC, f"cannot {action} run file '{name or path}': {why}; the disk is full or a "
                  f"file-size limit was reached; {FULL_DISK_FIX}{kept}")
