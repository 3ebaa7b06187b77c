"""Advisory lock that marks a live trajectory writer (released by the OS when the process dies).

HDF5 drops its own file lock once SWMR writing starts, so after a crash the
file cannot tell whether its writer is still running.  The writer therefore
holds a shared ``flock`` on the run file; :func:`writer_alive` tries an
exclusive one.  Where ``fcntl`` is missing (Windows) the lock is a no-op and
:func:`writer_alive` answers False.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["WriterLock", "writer_alive"]


class WriterLock:
    """Shared lock held on ``path`` for the lifetime of a writer."""

    def __init__(self, path: Path) -> None:
        self._fd = None
        if fcntl is None:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writer_alive(path: Path) -> bool:
    """True when another process holds a lock on ``path`` (a live writer, or an HDF5 reader)."""
    if fcntl is None or not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
