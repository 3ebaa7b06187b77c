"""One writer per run file: an exclusive lock on a sidecar file that names its holder.

HDF5's own file lock does not protect a run: it is dropped once SWMR writing
starts, a second process may open with ``locking=False``, and replacing the file
(``--overwrite``) never opens the old one.  So every writer holds an exclusive
``flock`` on ``.NAME.h5.lock`` beside the run file for its whole life (declaring,
writing, closing).  The lock file holds the writer's PID, host, start time and
command line, so a refused second writer can name the first.

* The OS releases a ``flock`` when its process dies (SIGKILL included): a lock file
  whose lock is free is *stale*; the next writer takes it over and reports the
  dead PID (:attr:`RunLock.stale`).
* Where ``flock`` is missing or not supported (Windows, some network file
  systems) the PID in the lock file decides: a live process on the same host holds it.
* Readers never take the lock (:func:`lock_holder` only tests it), so a watching
  process cannot block a writer; a writer that meets a lock retries for 0.5 s
  before refusing.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["RunLock", "RunLockedError", "lock_path", "lock_holder", "describe_holder", "writer_alive",
           "remove_stale_temporaries", "pid_alive"]

_RETRY_SECONDS = 0.5


class RunLockedError(OSError):
    """Another process writes this run file."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def lock_path(path: str | os.PathLike) -> Path:
    """``dir/run.h5`` -> ``dir/.run.h5.lock``."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists (on this host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_info(fd_or_path) -> dict:
    try:
        if isinstance(fd_or_path, int):
            os.lseek(fd_or_path, 0, os.SEEK_SET)
            raw = os.read(fd_or_path, 65536)
        else:
            raw = Path(fd_or_path).read_bytes()
        info = json.loads(raw.decode() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    text = f"process {info.get('pid', '?')}"
    if info.get("host") and info.get("host") != socket.gethostname():
        text += f" on {info['host']}"
    if info.get("command"):
        text += f" ({info['command'][:120]})"
    if info.get("since"):
        text += f", running since {info['since']}"
    return text


def _flock_supported(fd: int) -> bool | None:
    """Try a non-blocking exclusive flock: True taken, False held elsewhere, None unsupported."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _pid_holds(info: dict) -> bool:
    return bool(info) and info.get("host") == socket.gethostname() and info.get("pid") != os.getpid() \
        and pid_alive(int(info.get("pid", 0)))


class RunLock:
    """Exclusive lock of one run file, held from construction to :meth:`release`.

    Raises
    ------
    RunLockedError
        (``errno.EBUSY``) when another live process holds the lock; the message names it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock_file = lock_path(self.path)
        self.stale: dict | None = None
        self._fd: int | None = None
        deadline = time.monotonic() + _RETRY_SECONDS
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            taken = _flock_supported(fd)
            info = _read_info(fd)
            if taken is None:                       # no flock here: the PID decides
                taken = not _pid_holds(info)
            if taken and not self._same_file(fd):   # removed by its previous holder meanwhile: start over
                os.close(fd)
                continue
            if taken:
                break
            os.close(fd)
            if time.monotonic() > deadline:
                raise RunLockedError(errno.EBUSY, f"run file '{self.path}' is being written by {_describe(info)}; "
                                     "wait for it to end, stop it, or choose another output file")
            time.sleep(0.05)
        if info.get("pid") and info.get("pid") != os.getpid():
            self.stale = info                      # a writer died without releasing: its lock was stale
        self._fd = fd
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.lock_file).st_ino
        except FileNotFoundError:
            return False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def stale_note(self) -> str | None:
        """A line about the stale lock taken over, if any."""
        if not self.stale:
            return None
        return f"took over a stale lock on '{self.path}' left by {_describe(self.stale)} (no longer running)"

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                self.lock_file.unlink(missing_ok=True)
        finally:
            os.close(self._fd)      # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - a safety net; writers release explicitly
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


def lock_holder(path: str | os.PathLike) -> dict | None:
    """The record of the process that holds ``path``'s lock (pid, host, since, command), or None.

    Tests the lock without taking it for longer than a system call.
    """
    lock_file = lock_path(path)
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        info = _read_info(fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return info or {"pid": "?"}
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return None
        return info if _pid_holds(info) else None
    finally:
        os.close(fd)


def writer_alive(path: str | os.PathLike) -> bool:
    """True when a live process holds the writer lock of ``path``."""
    return lock_holder(path) is not None


def describe_holder(path: str | os.PathLike) -> str | None:
    """``"process 123 (spectral-probe train ...)"`` for the lock holder of ``path``, or None."""
    info = lock_holder(path)
    return None if info is None else _describe(info)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete ``.NAME.h5.<pid>.tmp`` / ``.recover`` files of ``path`` whose process is gone; returns them.

    Call it while holding the run's lock: no live writer of this path can own them then.
    """
    path = Path(path)
    removed = []
    for suffix in ("tmp", "recover"):
        for tmp in path.parent.glob(f".{path.name}.*.{suffix}"):
            pid = tmp.name[len(path.name) + 2:-len(suffix) - 1]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed

