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
* The lock follows the *real* file, not the name it was reached by: the sidecar sits beside
  ``os.path.realpath(path)`` (a symlink ``link.h5 -> run.h5`` locks ``.run.h5.lock``), and a
  second lock is taken on the file's identity (device and inode) in :func:`inode_lock_dir`,
  so a hard link (another name of the same inode, in any folder) is refused too.  Writers
  replace the file when they publish it (a new inode); :meth:`RunLock.track` then locks the
  new inode as well.
* A lock that cannot be written (a full disk) leaves no lock file behind: the error is an
  ``OSError(ENOSPC)`` naming the run file.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["RunLock", "RunLockedError", "lock_path", "lock_holder", "describe_holder", "writer_alive",
           "remove_stale_temporaries", "pid_alive", "real_path", "inode_lock_dir", "inode_lock_path"]

_RETRY_SECONDS = 0.5


class RunLockedError(OSError):
    """Another process writes this run file."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def real_path(path: str | os.PathLike) -> Path:
    """``path`` with every symlink resolved (the file a writer really writes)."""
    return Path(os.path.realpath(path))


def lock_path(path: str | os.PathLike) -> Path:
    """``dir/run.h5`` -> ``dir/.run.h5.lock``, beside the real file (symlinks resolved)."""
    path = real_path(path)
    return path.with_name(f".{path.name}.lock")


def inode_lock_dir() -> Path:
    """The host-wide folder of the locks on file identities (``$TMPDIR/spectral-probe-locks``)."""
    return Path(tempfile.gettempdir()) / "spectral-probe-locks"


def inode_lock_path(path: str | os.PathLike) -> Path | None:
    """The lock file of the inode ``path`` names (``<device>-<inode>.lock``), or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return inode_lock_dir() / f"{st.st_dev}-{st.st_ino}.lock"


def _open_lock_file(lock_file: Path) -> int:
    if lock_file.parent == inode_lock_dir() and not lock_file.parent.is_dir():
        lock_file.parent.mkdir(exist_ok=True)
        try:
            os.chmod(lock_file.parent, 0o1777)      # shared by every user of the host, like /tmp
        except OSError:
            pass
    return os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)


def _no_room(path: Path, lock_file: Path, exc: OSError) -> OSError:
    from .schema import FULL_DISK_FIX

    return OSError(exc.errno, f"cannot lock run file '{path}': writing its lock file '{lock_file}' failed "
                   f"({os.strerror(exc.errno or errno.EIO)}); the disk is full or not writable; "
                   f"{FULL_DISK_FIX}")


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
        self._inodes: dict[Path, int] = {}      # inode lock file -> its descriptor
        self._fd, info = self._acquire(self.lock_file)
        if info.get("pid") and info.get("pid") != os.getpid():
            self.stale = info                      # a writer died without releasing: its lock was stale
        try:
            self._write_record(self._fd, self.lock_file)
            self.track()
        except BaseException:
            self.release()
            raise

    def _acquire(self, lock_file: Path, identity: tuple[int, int] | None = None) -> tuple[int | None, dict]:
        """Take the exclusive lock of ``lock_file`` (retrying for 0.5 s); returns its descriptor and old record.

        With ``identity`` (an inode lock): a holder whose file is no longer that inode (inode numbers are
        reused once a file is deleted) holds a different file; the lock is then skipped (descriptor None).
        """
        deadline = time.monotonic() + _RETRY_SECONDS
        while True:
            try:
                fd = _open_lock_file(lock_file)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise _no_room(self.path, lock_file, exc) from None
                raise
            taken = _flock_supported(fd)
            info = _read_info(fd)
            if taken is None:                       # no flock here: the PID decides
                taken = not _pid_holds(info)
            if taken and not _same_file(fd, lock_file):   # removed by its previous holder meanwhile: start over
                os.close(fd)
                continue
            if taken:
                return fd, info
            os.close(fd)
            if identity is not None and _identity(info.get("file")) != identity:
                return None, info
            if time.monotonic() > deadline:
                raise RunLockedError(errno.EBUSY, f"run file '{self.path}' is being written by {_describe(info)}"
                                     f"{_via(self.path, info)}; wait for it to end, stop it, or choose another "
                                     "output file")
            time.sleep(0.05)

    def _write_record(self, fd: int, lock_file: Path) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
                  "file": str(real_path(self.path))}
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            data = json.dumps(record).encode()
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            raise _no_room(self.path, lock_file, exc) from None

    def track(self) -> None:
        """Lock the identity (device, inode) of the file now at the real path, if it exists.

        Called on construction and by writers after they replace the file (a new inode), so that a
        hard link made at any time reaches a locked inode.
        """
        if self._fd is None:
            return
        real = real_path(self.path)
        lock_file = inode_lock_path(real)
        if lock_file is None or lock_file in self._inodes:
            return
        fd, _info = self._acquire(lock_file, _identity(real))
        for old, old_fd in list(self._inodes.items()):     # the replaced inode is another file now
            _drop(old, old_fd)
            del self._inodes[old]
        if fd is not None:
            self._inodes[lock_file] = fd
            self._write_record(fd, lock_file)

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
        held = [*self._inodes.items(), (self.lock_file, self._fd)]
        self._inodes = {}
        self._fd = None
        for lock_file, fd in held:
            _drop(lock_file, fd)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - a safety net; writers release explicitly
        for fd in [getattr(self, "_fd", None), *getattr(self, "_inodes", {}).values()]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


def lock_holder(path: str | os.PathLike) -> dict | None:
    """The record of the process that holds ``path``'s lock (pid, host, since, command), or None.

    Tests the lock of the real file (symlinks resolved) and of its inode (hard links), each
    without taking it for longer than a system call.
    """
    info = _test_lock(lock_path(path))
    if info is not None:
        return info
    inode_lock = inode_lock_path(real_path(path))
    info = _test_lock(inode_lock) if inode_lock is not None else None
    if info is not None and info.get("file") and _identity(info["file"]) != _identity(real_path(path)):
        return None         # an inode number reused: the holder writes another file
    return info


def _identity(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _drop(lock_file: Path, fd: int) -> None:
    """Remove a lock file we hold, then release it."""
    try:
        if _same_file(fd, lock_file):
            lock_file.unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        os.close(fd)        # closing drops the flock


def _same_file(fd: int, lock_file: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(lock_file).st_ino
    except FileNotFoundError:
        return False


def _via(path: Path, info: dict) -> str:
    """How ``path`` reaches the locked file, when not by its own name: a symlink or a hard link."""
    real = real_path(path)
    held = info.get("file")
    if held and Path(held) != real:
        return f" (it is the same file as '{held}': a hard link)"
    return "" if real == Path(os.path.abspath(path)) else f" (a link to '{real}')"


def _test_lock(lock_file: Path) -> dict | None:
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
    path = real_path(path)
    removed = []
    for suffix in ("tmp", "recover"):
        for tmp in path.parent.glob(f".{path.name}.*.{suffix}"):
            pid = tmp.name[len(path.name) + 2:-len(suffix) - 1]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed

