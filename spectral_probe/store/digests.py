"""Digests of every value a reader trusts, written when a run file is closed and checked when it is opened.

HDF5 checks its own metadata (object headers, B-trees, chunk indices: ``libver="latest"``)
and the writer puts Fletcher32 on chunked numeric arrays, but several values a reader uses
have no checksum of their own: 0-d variables (``run_status``, ``n_committed``,
``scalars/best_psnr``), contiguous and text variables, and every string attribute (the
``config`` JSON lives in HDF5's global heap, which carries no checksum).  One flipped bit
there used to be read as valid data.

Schema 3 closes the gap with a *seal*: when :class:`~spectral_probe.store.TrajectoryWriter`
closes a file it reopens it (no longer in SWMR mode) and stores the root attribute
``_digests``::

    {"objects": {"/": "9f3c...", "scalars": "...", "scalars/best_psnr": "...", ...}}\\n<digest of that line>

one BLAKE2b digest per group and dataset, over what a reader takes from it: attributes,
dtype, shape, the names of its dimensions and the values themselves, except those of
chunked Fletcher32 variables larger than :data:`VALUE_DIGEST_BYTES` (HDF5 checks their
chunks on every read).  Fletcher32 alone is not enough for small chunks: the checksum of
zeros is zero, so a chunk zeroed together with its checksum (one lost 4 KiB page holds a
whole chunk of at most a page, see :data:`~spectral_probe.store.schema.CHUNK_BYTES`) reads
as valid zeros; the seal records its rule (``chunked_values_up_to``), and seals written
before it (chunked values left out) are verified by their own rule.  The seal carries its own digest, so a flipped
bit in the seal is caught as well.  :func:`verify_seal` recomputes the digests and names the
first object that differs.

A file with a writer (or left by a killed one) has no seal yet: the writer drops the seal
when it resumes a file and writes a new one when it closes.  A schema-3 file that was closed
as finished, failed or interrupted (``run_status`` != 0) without a seal is damaged; one
still marked "writing" (a writer that stopped on an I/O error) is read without digests.
Schema-2 files (before the seal) are read as before; :func:`~spectral_probe.store.upgrade`
seals them.
"""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

__all__ = ["SEAL_ATTR", "object_digests", "write_seal", "read_seal", "verify_seal", "seal_state"]

#: the root attribute that holds the digests (attributes starting with "_" are not shown by readers)
SEAL_ATTR = "_digests"
#: attributes holding object references (addresses): their meaning (the dimension names) is digested instead
_REFERENCE_ATTRS = {"REFERENCE_LIST", "DIMENSION_LIST"}
_BARE_DIMENSION = b"This is a netCDF dimension but not a netCDF variable"
#: chunked Fletcher32 variables up to this many bytes have their values in the digest as well
VALUE_DIGEST_BYTES = 4 * 2 ** 20
#: chunked data read only on request, each row checked then (a damaged checkpoint spares the rest of the
#: file: ``--resume --salvage``), so neither the structure walk nor the value rule reads it
ON_REQUEST = frozenset({"checkpoints/state"})
#: the seal's key recording that rule (absent in seals written before it: chunked values left out)
_RULE_KEY = "chunked_values_up_to"


def _canon(value, out: list) -> None:
    """Append a canonical byte form of an attribute or dataset value to ``out``."""
    if isinstance(value, bytes):
        out += [b"b", len(value).to_bytes(8, "little"), value]
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        out += [b"s", len(raw).to_bytes(8, "little"), raw]
    elif isinstance(value, h5py.Reference):
        out.append(b"r")
    elif isinstance(value, h5py.Empty):
        out += [b"e", str(value.dtype).encode()]
    else:
        arr = np.asarray(value)
        out += [b"a", arr.dtype.str.encode(), repr(arr.shape).encode()]
        if arr.dtype.kind == "O":
            for item in arr.reshape(-1):
                _canon(item, out)
        else:
            out.append(np.ascontiguousarray(arr).tobytes())


def _attrs(obj, out: list, skip: frozenset = frozenset()) -> None:
    for key in sorted(obj.attrs.keys()):
        if key in _REFERENCE_ATTRS or key in skip:
            continue
        out.append(b"k" + key.encode())
        _canon(obj.attrs[key], out)


def _scale_names(ds: h5py.Dataset) -> list[str]:
    names = []
    for axis in range(ds.ndim):
        scales = list(ds.dims[axis].values())
        names.append(scales[0].name.rsplit("/", 1)[-1] if scales else "")
    return names


def _checksummed(ds: h5py.Dataset) -> bool:
    """True when HDF5 checks the values of ``ds`` on every read (chunked with Fletcher32, numeric)."""
    return ds.chunks is not None and ds.fletcher32 and ds.dtype.kind in "biufc"


def _bare(ds: h5py.Dataset) -> bool:
    name = ds.attrs.get("NAME", b"")
    name = name if isinstance(name, bytes) else str(name).encode()
    return name.startswith(_BARE_DIMENSION)


def _digest(parts: list) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.hexdigest()


def object_digests(h5: h5py.File, chunked_up_to: int | None = VALUE_DIGEST_BYTES) -> dict[str, str]:
    """``path -> digest`` of the root (``"/"``), every group and every dataset of an open file.

    A dataset's digest covers its attributes (references: the names of its dimensions
    instead), dtype, shape and its values, except a bare netCDF dimension (no values) and
    a variable chunked with Fletcher32 (checked by HDF5 on every read) larger than
    ``chunked_up_to`` bytes (None: every such variable is left out, the rule of older seals).
    """
    out: dict[str, str] = {}
    parts: list = []
    _attrs(h5, parts, frozenset({SEAL_ATTR}))
    out["/"] = _digest(parts)

    def visit(name: str, obj) -> None:
        parts: list = []
        _attrs(obj, parts)
        if isinstance(obj, h5py.Dataset):
            parts += [b"d", obj.dtype.str.encode(), repr(obj.shape).encode(),
                      "/".join(_scale_names(obj)).encode()]
            small = (chunked_up_to is not None and obj.size * obj.dtype.itemsize <= chunked_up_to
                     and name not in ON_REQUEST)
            if (small or not _checksummed(obj)) and not _bare(obj):
                try:
                    value = obj[()]
                except (OSError, RuntimeError) as exc:      # a chunk fails its Fletcher32 checksum
                    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise ValueError(f"'{name}' fails to read ({text[:200]})") from exc
                _canon(value, parts)
        else:
            parts.append(b"g")
        out[name] = _digest(parts)

    h5.visititems(visit)
    return out


def _encode(digests: dict[str, str], chunked_up_to: int | None) -> bytes:
    body = json.dumps({"objects": digests, _RULE_KEY: chunked_up_to}, sort_keys=True, separators=(",", ":")).encode()
    return body + b"\n" + _digest([body]).encode()


def write_seal(h5: h5py.File) -> None:
    """Store the digests of ``h5`` (open for writing, not in SWMR mode) as the root attribute ``_digests``."""
    if SEAL_ATTR in h5.attrs:
        del h5.attrs[SEAL_ATTR]
    raw = _encode(object_digests(h5, VALUE_DIGEST_BYTES), VALUE_DIGEST_BYTES)
    h5.attrs.create(SEAL_ATTR, np.frombuffer(raw, dtype=np.uint8))


def read_seal(h5: h5py.File) -> dict[str, str] | None:
    """The digests stored in ``h5`` (None without a seal); ``ValueError`` when the seal fails its own digest."""
    sealed = _read_seal(h5)
    return None if sealed is None else sealed[0]


def _read_seal(h5: h5py.File) -> tuple[dict[str, str], int | None] | None:
    """``(digests, chunked_up_to)`` of the seal (the rule is None in seals that predate it)."""
    if SEAL_ATTR not in h5.attrs:
        return None
    raw = np.asarray(h5.attrs[SEAL_ATTR])
    raw = raw.tobytes() if raw.dtype == np.uint8 else bytes(raw)
    body, _, check = raw.rpartition(b"\n")
    if not body or _digest([body]).encode() != check:
        raise ValueError("its digests (the root attribute '_digests') fail their own check")
    try:
        parsed = json.loads(body)
        objects, rule = parsed["objects"], parsed.get(_RULE_KEY)
        rule = None if rule is None else int(rule)
    except (ValueError, KeyError, TypeError) as exc:       # pragma: no cover - the digest matched
        raise ValueError(f"its digests cannot be parsed ({exc})") from None
    return {str(k): str(v) for k, v in objects.items()}, rule


def seal_state(h5: h5py.File, allow_missing: bool = False) -> str:
    """``"sealed"``, ``"unsealed"`` (schema 3, still marked writing), ``"legacy"`` (schema < 3).

    A schema-3 file marked closed, failed or interrupted without digests raises ``ValueError``
    unless ``allow_missing`` (``"missing"``: for :func:`~spectral_probe.store.recover`, which
    seals it again).
    """
    from .schema import STATUS, STATUS_WRITING

    if SEAL_ATTR in h5.attrs:
        return "sealed"
    if int(np.asarray(h5.attrs.get("schema_version", 0)).reshape(-1)[0]) < 3:
        return "legacy"
    status = int(h5[STATUS][()]) if STATUS in h5 else STATUS_WRITING
    if status != STATUS_WRITING:
        if allow_missing:
            return "missing"
        raise ValueError(f"it is marked {'closed' if status == 1 else f'run_status {status}'} but its digests "
                         "(the root attribute '_digests') are missing (a writer stopped while closing it? "
                         "spectral_probe.store.recover(path) checks the rest and seals it)")
    return "unsealed"


def _what(name: str) -> str:
    if name == "/":
        return "the root attributes (configuration, schema)"
    return f"'{name}'"


def verify_seal(h5: h5py.File, allow_missing: bool = False) -> str:
    """Check every digest of ``h5``; returns :func:`seal_state` (``allow_missing``: see there).

    Raises
    ------
    ValueError
        One line naming the first damaged object (or the seal itself).
    """
    state = seal_state(h5, allow_missing)
    if state != "sealed":
        return state
    stored, rule = _read_seal(h5)
    actual = object_digests(h5, rule)
    for name in sorted(set(stored) | set(actual)):
        if name not in actual:
            raise ValueError(f"{_what(name)} is missing (its digest is stored)")
        if name not in stored:
            raise ValueError(f"{_what(name)} has no stored digest (an object that was not written by the run)")
        if stored[name] != actual[name]:
            raise ValueError(f"{_what(name)} fail their digest" if name == "/" else f"{_what(name)} fails its digest")
    return state
