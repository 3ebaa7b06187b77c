"""Reads that cannot hang: a run file's structure is walked in a forked child with a time limit first.

HDF5 checks most of its metadata, but not all of it: a zeroed block in the global heap
(where string attributes such as ``config`` live) makes the library loop at 100 % CPU
inside one C call, which neither a timeout in Python nor Ctrl-C can stop.  Before a
reader trusts ``h5py`` with a file in its own process, :func:`validate` forks a child that
opens the file and reads everything a reader relies on (every attribute, every value
without a checksum of its own, the digests of :mod:`~spectral_probe.store.digests`, the
committed rows and the chunked data up to :data:`DEEP_READ_BYTES` per variable, except the
checkpoints' bytes, checked row by row when read).  A child
that does not answer within :data:`STRUCTURE_TIMEOUT_S` seconds is killed and the file is
refused as damaged; one that crashes likewise.  The parent waits in ``select``, so Ctrl-C
stops it at once (the child is killed on the way out).

A file that passed is remembered (by inode, size and modification time) so that one
command reading it several times forks once.  Where ``fork`` is not available the walk
runs in the calling process (no time limit).
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import time
import warnings
from collections import OrderedDict
from pathlib import Path


__all__ = ["validate", "inspect_file", "forget", "STRUCTURE_TIMEOUT_S", "DEEP_READ_BYTES"]

#: seconds the forked child may take to walk a file before the file is refused as damaged
STRUCTURE_TIMEOUT_S = 5.0
#: chunked variables up to this size are read in full by the child (their Fletcher32 checksums checked)
DEEP_READ_BYTES = 4 * 2 ** 20
_VALIDATED: "OrderedDict[tuple, None]" = OrderedDict()
_CACHE_SIZE = 64


def inspect_file(path: Path, writer_alive: bool, unsealed: bool = False) -> str:
    """Open ``path`` and read what readers use; returns the digest state (``sealed``, ``unsealed``, ``legacy``).

    ``unsealed=True`` accepts a closed schema-3 file without digests (state ``missing``; for ``recover``).

    Raises
    ------
    DamagedFileError
        A check failed (one line naming the damaged object).
    ValueError
        Not a spectral-probe run file, or a newer schema.
    """
    import h5py

    from .digests import ON_REQUEST, object_digests, verify_seal
    from .integrity import DamagedFileError, check_committed, open_h5
    from .schema import check_schema

    with open_h5(path, writer_alive=writer_alive) as h5:
        try:
            check_schema(h5, path)
        except (OSError, RuntimeError, KeyError) as exc:
            raise DamagedFileError(path, f"its root attributes cannot be read ({_line(exc)})") from exc
        try:
            state = verify_seal(h5, allow_missing=unsealed)
        except ValueError as exc:
            raise DamagedFileError(path, str(exc)) from exc
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise DamagedFileError(path, f"its structure cannot be read ({_line(exc)})") from exc
        try:
            if state != "sealed":
                object_digests(h5, None)    # every attribute and unchecked value, read once
            rows = check_committed(h5, path)

            def deep(name: str, obj) -> None:
                if not isinstance(obj, h5py.Dataset) or obj.chunks is None or name in ON_REQUEST:
                    return
                if obj.size * obj.dtype.itemsize > DEEP_READ_BYTES:
                    return
                group = name.rsplit("/", 1)[0] if "/" in name else None
                n = rows.get(group) if group is not None else None
                try:
                    obj[:n] if (n is not None and obj.ndim and obj.maxshape[0] is None) else obj[()]
                except (OSError, RuntimeError) as exc:
                    raise DamagedFileError(path, f"'{name}' fails to read ({_line(exc)})") from exc

            h5.visititems(deep)
        except DamagedFileError:
            raise
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise DamagedFileError(path, f"its structure cannot be read ({_line(exc)})") from exc
    return state


def _line(exc: BaseException) -> str:
    text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _key(path: Path) -> tuple:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def validate(path: str | os.PathLike, writer_alive: bool = False, timeout: float | None = None, *,
             unsealed: bool = False) -> None:
    """Refuse ``path`` unless :func:`inspect_file` passes in a forked child within ``timeout`` seconds.

    Raises
    ------
    DamagedFileError
        The walk failed, crashed or did not finish in time.
    ValueError
        Not a spectral-probe run file, or a newer schema.
    """
    path = Path(path)
    key = (*_key(path), unsealed)
    if key in _VALIDATED:
        _VALIDATED.move_to_end(key)
        return
    if not hasattr(os, "fork"):                 # pragma: no cover - Windows
        inspect_file(path, writer_alive, unsealed)
    else:
        try:
            _in_child(path, writer_alive, STRUCTURE_TIMEOUT_S if timeout is None else float(timeout), unsealed)
        except _NoFork:                         # out of processes or memory: walk here, without the time limit
            inspect_file(path, writer_alive, unsealed)
    _VALIDATED[key] = None
    while len(_VALIDATED) > _CACHE_SIZE:
        _VALIDATED.popitem(last=False)


def _child(path: Path, writer_alive: bool, unsealed: bool, out: int) -> None:
    """The forked child: walk the file, write one JSON answer to ``out``, never return."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from .integrity import DamagedFileError

        try:
            answer = {"ok": inspect_file(path, writer_alive, unsealed)}
        except DamagedFileError as exc:
            answer = {"damaged": getattr(exc, "why", str(exc))}
        except FileNotFoundError as exc:
            answer = {"missing": str(exc)}
        except ValueError as exc:
            answer = {"value": str(exc)}
        except Exception as exc:  # noqa: BLE001 - any other failure of HDF5 on this file is damage
            answer = {"damaged": f"HDF5 fails on its structure ({type(exc).__name__}: {_line(exc)})"}
        data = json.dumps(answer).encode()
        while data:
            data = data[os.write(out, data):]
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's code
        code = 1
    finally:
        os._exit(code)


class _NoFork(Exception):
    """``fork`` failed (EAGAIN, ENOMEM)."""


def _in_child(path: Path, writer_alive: bool, timeout: float, unsealed: bool) -> None:
    from .integrity import DamagedFileError

    read_end, write_end = os.pipe()
    try:
        with warnings.catch_warnings():         # Python >= 3.12 warns about fork() beside threads (torch's);
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            pid = os.fork()                     # the child only reads HDF5 and exits with os._exit
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        raise _NoFork from exc
    if pid == 0:                                # pragma: no cover - runs in the child
        os.close(read_end)
        _child(path, writer_alive, unsealed, write_end)
    os.close(write_end)
    chunks, status, deadline = [], None, time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([read_end], [], [], min(left, 1.0))
            if ready:
                data = os.read(read_end, 1 << 16)
                if not data:                    # the child closed its end: it has ended
                    _, status = os.waitpid(pid, 0)
                    break
                chunks.append(data)
    finally:
        if status is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:       # pragma: no cover - it ended meanwhile
                pass
            os.waitpid(pid, 0)
        os.close(read_end)
    if status is None:
        raise DamagedFileError(path, f"reading its HDF5 structure did not finish within {timeout:g} s "
                                     "(a damaged structure makes the HDF5 library loop)")
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT:
        raise KeyboardInterrupt
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        why = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}")
        raise DamagedFileError(path, f"HDF5 crashed reading its structure ({why})") from None
    if "damaged" in answer:
        raise DamagedFileError(path, answer["damaged"])
    if "missing" in answer:
        raise FileNotFoundError(errno.ENOENT, answer["missing"])
    if "value" in answer:
        raise ValueError(answer["value"])


def forget(path: str | os.PathLike | None = None) -> None:
    """Drop remembered validations (of ``path``, or all); for tests that rewrite a file in place."""
    if path is None:
        _VALIDATED.clear()
        return
    real = os.path.realpath(path)
    for key in [k for k in _VALIDATED if k[0] == real]:
        del _VALIDATED[key]

