"""Repair a run file left by a killed writer, through the writer's public API."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .filelock import describe_holder
from .digests import seal_state
from .integrity import check_file
from .reader import open_checked, verify_run
from .schema import STATUS, STATUS_INTERRUPTED, STATUS_WRITING
from .writer import TrajectoryWriter

__all__ = ["recover"]


def recover(path: str | os.PathLike) -> bool:
    """Make a run file left by a killed writer readable by every HDF5 tool; seal an older file with digests.

    A killed SWMR writer leaves a file that only SWMR readers (``open_run``,
    ``h5py.File(path, "r", swmr=True)``) open.  ``recover`` first checks the whole
    file (truncation, every checksum, committed rows) and refuses a damaged one;
    then it continues the file with :class:`TrajectoryWriter` (``resume=True``: the
    committed rows are kept, the rest dropped) and closes it with ``run_status``
    3 (interrupted).  The file is replaced atomically.  A closed file written before
    schema 3 (no digests: :mod:`~spectral_probe.store.digests`) is rewritten the same
    way, keeping its ``run_status``, so that every value in it is checked from then on, and so
    is a file whose writer stopped while writing its digests at close (a full disk).

    Returns
    -------
    bool
        False when nothing had to be done (the file was closed cleanly, is intact and sealed).

    Raises
    ------
    OSError
        A writer process still holds the file (``errno.EBUSY``, naming it).
    DamagedFileError
        The file is truncated or corrupted; it is left as it is.
    """
    path = Path(path)
    holder = describe_holder(path)
    if holder is not None:
        raise OSError(errno.EBUSY, f"run file '{path}' is being written by {holder}; "
                      "recover it once that process has ended")
    verify_run(path, unsealed=True)         # every checksum, before anything is rewritten
    with open_checked(path, unsealed=True) as h5:
        status = int(h5[STATUS][()]) if STATUS in h5 else STATUS_WRITING
        sealed = seal_state(h5, allow_missing=True) == "sealed"
    if check_file(path).flags == 0 and sealed:
        return False
    writer = TrajectoryWriter(path, resume=True)
    writer.close(STATUS_INTERRUPTED if status == STATUS_WRITING else status)
    return True
