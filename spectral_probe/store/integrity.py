"""Integrity of run files: truncation, checksums, committed rows, and reads that cannot hang.

A run file is never read as valid when it is damaged:

* **Truncation.**  HDF5's superblock (the first 48 bytes) stores the file's
  end-of-file address.  A file shorter than that address was cut (an interrupted
  copy, a full disk while copying, ``truncate``): :func:`check_file` refuses it
  before HDF5 touches the file.  A live SWMR writer never leaves the file
  shorter than its stored end of file (the data is written before the superblock
  that points past it; 900,000 checks against a writing process found none).
* **Checksums.**  With ``libver="latest"`` every HDF5 metadata block carries a
  checksum, and the writer puts a Fletcher32 checksum on every chunked numeric
  dataset, so a corrupted chunk fails to read instead of returning wrong numbers; the
  values without a checksum of their own carry digests (:mod:`~spectral_probe.store.digests`).
* **Committed rows.**  :func:`check_committed` checks that every trajectory group holds
  at least its ``n_committed`` rows and that their steps increase.

Why reads could hang: an HDF5 reader in SWMR mode retries a metadata block whose
checksum fails (it may be a block the writer is rewriting), with an exponential
back-off that HDF5 caps at one hour per wait and 100 attempts; on a truncated file
(zeros past the end) every block fails, so one ``h5py`` call slept for minutes
(30 attempts already cost 1 s).  :func:`open_h5` opens closed files without SWMR
(no retries; HDF5 checks the end of file itself) and sets the attempts of SWMR
reads to 1 when no writer holds the file and to 24 (at most ~30 ms of waiting)
while one does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from .schema import COMMITTED, STEP

__all__ = ["DamagedFileError", "Superblock", "read_superblock", "check_file", "check_committed", "open_h5",
           "clear_write_flags", "lookup3", "SWMR_READ_ATTEMPTS_LIVE"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: metadata read attempts of an SWMR reader while a writer holds the file (2^24 ns of back-off in all)
SWMR_READ_ATTEMPTS_LIVE = 24


class DamagedFileError(OSError):
    """A run file that is truncated, corrupted or inconsistent (never read as valid)."""

    def __init__(self, path, why: str) -> None:
        super().__init__(errno.EIO, f"run file '{path}' is damaged: {why}; it cannot be read or resumed "
                                    "(restore it from a copy, or start the run again)")
        self.filename = None
        self.why = why

    def __str__(self) -> str:
        return self.strerror


#: leading bytes of files mistaken for run files -> what they are
_KINDS = ((b"RIFF", "a WAV audio file"), (b"fLaC", "a FLAC audio file"), (b"ID3", "an MP3 audio file"),
          (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"PK\x03\x04", "a zip archive (.npz?)"),
          (b"\x93NUMPY", "a NumPy .npy array"), (b"%PDF", "a PDF document"))


class NotHDF5Error(DamagedFileError):
    """A file of another known format (audio, an image, an archive): not a run file, rather than a damaged one."""

    def __init__(self, path, kind: str) -> None:
        OSError.__init__(self, errno.EINVAL, f"'{path}' is not an HDF5 run file ({kind}); pass a run file "
                                             "written by spectral-probe train (.h5)")
        self.filename = None


# --------------------------------------------------------------------------- superblock
@dataclass(frozen=True)
class Superblock:
    """What the HDF5 superblock says: version, offset width, consistency flags, stored end of file."""

    offset: int         #: where the superblock starts (0 unless there is a user block)
    version: int
    offset_size: int
    flags: int          #: file consistency flags; non-zero while a writer has the file open (or was killed)
    eof: int            #: stored end-of-file address (relative to the base address)
    base: int


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: HDF5's metadata checksum (``H5_checksum_lookup3``)."""
    m = 0xFFFFFFFF
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    if length == 0:
        return c
    k = data
    while length > 12:
        a = (a + int.from_bytes(k[0:4], "little")) & m
        b = (b + int.from_bytes(k[4:8], "little")) & m
        c = (c + int.from_bytes(k[8:12], "little")) & m
        a = (a - c) & m; a ^= _rot(c, 4); c = (c + b) & m    # noqa: E702 - the mix as published
        b = (b - a) & m; b ^= _rot(a, 6); a = (a + c) & m    # noqa: E702
        c = (c - b) & m; c ^= _rot(b, 8); b = (b + a) & m    # noqa: E702
        a = (a - c) & m; a ^= _rot(c, 16); c = (c + b) & m   # noqa: E702
        b = (b - a) & m; b ^= _rot(a, 19); a = (a + c) & m   # noqa: E702
        c = (c - b) & m; c ^= _rot(b, 4); b = (b + a) & m    # noqa: E702
        length -= 12
        k = k[12:]
    tail = bytes(k[:length]) + bytes(12 - length)             # the C switch adds the missing bytes as zeros
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - _rot(b, 14)) & m    # noqa: E702 - the final mix as published
    a ^= c; a = (a - _rot(c, 11)) & m    # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & m    # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & m    # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & m     # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & m    # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & m    # noqa: E702
    return c


def _find_signature(fh) -> int | None:
    size = os.fstat(fh.fileno()).st_size
    where = 0
    while where + 8 <= size:
        fh.seek(where)
        if fh.read(8) == _SIGNATURE:
            return where
        where = 512 if where == 0 else where * 2
    return None


def read_superblock(path: str | os.PathLike) -> Superblock:
    """Parse the superblock of ``path`` (versions 0-3); ``DamagedFileError`` if it is not HDF5 or is cut."""
    path = Path(path)
    with open(path, "rb") as fh:
        start = _find_signature(fh)
        if start is None:
            fh.seek(0)
            head = fh.read(16)
            kind = next((k for magic, k in _KINDS if head.startswith(magic)), None)
            if kind is not None:
                raise NotHDF5Error(path, kind)
            size = os.fstat(fh.fileno()).st_size
            why = "it is empty" if size == 0 else f"it holds {size} bytes without an HDF5 signature"
            raise DamagedFileError(path, f"not an HDF5 file ({why})")
        fh.seek(start)
        head = fh.read(96)
    if len(head) < 12:
        raise DamagedFileError(path, "truncated inside its HDF5 superblock")
    version, = struct.unpack_from("<B", head, 8)
    if version >= 2:
        o = head[9]
        need = 12 + 4 * o + 4
        if len(head) < need or o not in (2, 4, 8):
            raise DamagedFileError(path, "truncated inside its HDF5 superblock")
        base, _ext, eof, _root = (int.from_bytes(head[12 + i * o:12 + (i + 1) * o], "little") for i in range(4))
        stored, = struct.unpack_from("<I", head, need - 4)
        if lookup3(head[:need - 4]) != stored:
            raise DamagedFileError(path, "its HDF5 superblock fails its checksum")
        return Superblock(start, version, o, head[11], eof, base)
    o = head[13]
    flags_at, addr_at = (20, 24) if version == 0 else (20, 28)
    need = addr_at + 4 * o
    if len(head) < need or o not in (2, 4, 8):
        raise DamagedFileError(path, "truncated inside its HDF5 superblock")
    flags, = struct.unpack_from("<I", head, flags_at)
    base = int.from_bytes(head[addr_at:addr_at + o], "little")
    eof = int.from_bytes(head[addr_at + 2 * o:addr_at + 3 * o], "little")
    return Superblock(start, version, o, flags, eof, base)


def check_file(path: str | os.PathLike) -> Superblock:
    """Refuse a file that is not HDF5 or is shorter than its stored end of file; returns its superblock.

    The superblock is read *before* the size: a live writer only ever makes the
    file longer, so a short file is a cut file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"no run file at '{path}'")
    sb = read_superblock(path)
    size = path.stat().st_size
    end = sb.base + sb.eof
    if size < end:
        raise DamagedFileError(path, f"truncated ({size:,} bytes on disk; its HDF5 superblock says {end:,})")
    return sb


def clear_write_flags(path: str | os.PathLike) -> bool:
    """Clear the consistency flags a killed SWMR writer leaves (what ``h5clear -s`` does); True if changed.

    Only for a private copy of a run file: HDF5 refuses to open a file with these
    flags for writing.  The superblock checksum is recomputed.
    """
    sb = read_superblock(path)
    if sb.flags == 0:
        return False
    if sb.version < 2:
        raise DamagedFileError(path, f"superblock version {sb.version} has write flags set")
    with open(path, "r+b") as fh:
        fh.seek(sb.offset)
        need = 12 + 4 * sb.offset_size + 4
        head = bytearray(fh.read(need))
        head[11] = 0
        head[need - 4:need] = struct.pack("<I", lookup3(bytes(head[:need - 4])))
        fh.seek(sb.offset)
        fh.write(head)
        fh.flush()
        os.fsync(fh.fileno())
    return True


# --------------------------------------------------------------------------- bounded SWMR reads
_LIB: ctypes.CDLL | None | bool = None


def _hdf5_library():
    """The libhdf5 that h5py loaded (found through ``/proc/self/maps``); None where that is not possible."""
    global _LIB
    if _LIB is None:
        _LIB = False
        try:
            with open("/proc/self/maps") as fh:
                paths = {line.split()[-1] for line in fh if "libhdf5" in line}
        except OSError:
            paths = set()
        for candidate in sorted(p for p in paths if "libhdf5" in os.path.basename(p) and "_hl" not in p):
            try:
                lib = ctypes.CDLL(candidate)
                major, minor, release = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
                lib.H5get_libversion(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(release))
                if (major.value, minor.value, release.value) == h5py.version.hdf5_version_tuple[:3]:
                    lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
                    _LIB = lib
                    break
            except (OSError, AttributeError):
                continue
    return _LIB or None


def _swmr_fapl(attempts: int):
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
    lib = _hdf5_library()
    if lib is not None:
        lib.H5Pset_metadata_read_attempts(fapl.id, int(attempts))
    return fapl


@contextmanager
def open_h5(path: str | os.PathLike, *, writer_alive: bool = False) -> Iterator[h5py.File]:
    """Open a run file for reading after :func:`check_file`, so that no read can hang.

    A cleanly closed file (consistency flags 0) opens without SWMR; a file with a
    writer (``writer_alive``) or left by a killed one opens in SWMR mode with
    bounded metadata retries (see the module docstring).
    """
    path = Path(path)
    sb = check_file(path)
    try:
        if sb.flags == 0:
            try:
                h5 = h5py.File(path, "r")
            except OSError:                 # the writer started SWMR between our look and the open
                sb = check_file(path)
                if sb.flags == 0:
                    raise
                h5 = None
        else:
            h5 = None
        if h5 is None:
            attempts = SWMR_READ_ATTEMPTS_LIVE if writer_alive else 1
            fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ,
                                fapl=_swmr_fapl(attempts))
            h5 = h5py.File(fid)
    except OSError as exc:
        if isinstance(exc, DamagedFileError):
            raise
        raise DamagedFileError(path, f"HDF5 cannot open it ({_first_line(exc)})") from exc
    try:
        yield h5
    finally:
        h5.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def check_committed(h5: h5py.File, path) -> dict[str, int]:
    """Committed rows per trajectory group; ``DamagedFileError`` when a group holds fewer or steps repeat."""
    out = {}
    for name, group in h5.items():
        if not isinstance(group, h5py.Group) or COMMITTED not in group:
            continue
        try:
            n = int(group[COMMITTED][()])
            if STEP not in group:
                out[name] = n
                continue
            for var_name, ds in group.items():
                if isinstance(ds, h5py.Dataset) and ds.ndim and ds.dims[0] and var_name != COMMITTED:
                    scales = list(ds.dims[0].values())
                    if scales and scales[0].name.rsplit("/", 1)[-1] == STEP and ds.shape[0] < n:
                        raise DamagedFileError(path, f"group '{name}' commits {n} rows but '{var_name}' "
                                                     f"holds {ds.shape[0]}")
            steps = group[STEP][:n]
        except DamagedFileError:
            raise
        except (OSError, RuntimeError, KeyError) as exc:
            raise DamagedFileError(path, f"cannot read group '{name}' ({_first_line(exc)})") from exc
        if n < 0 or (steps.size > 1 and np.any(np.diff(steps) <= 0)):
            raise DamagedFileError(path, f"group '{name}': its {n} committed steps do not increase")
        out[name] = n
    return out
