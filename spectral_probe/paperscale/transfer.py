"""Moving a reproduction between machines: what a GPU run sends back, what it needs carried in.

* :func:`export_results` (on the GPU machine, after a run): the manifest, README, ``.gitignore``
  and every file written by the runs started at or after ``since`` go into
  ``paper-results.tar.gz`` in ``dest``, split into pieces of at most ``piece_bytes`` and at most
  ``max_pieces`` pieces.  What does not fit is left out by priority (first out: run files of
  finished parts, then large figure data; never the manifest or a partial part's checkpoints
  unless those alone exceed the limit), and the packed manifest says so: a partial part whose
  checkpoint file stayed behind restarts from zero.
* :func:`import_results` (here): checks the archive (relative paths under the folder only, no
  links, every file matching the checksum its manifest records), merges its manifest into the local
  one part by part (the further-advanced record wins; runs and device profiles are united) and writes
  the files of the records it took; a file whose local record stays the newer one is kept, and the
  incoming copy goes to ``superseded/import-<time>/``.  The README and ``.gitignore`` are regenerated.
* :func:`carry_files` (here, before a GPU run): copies the files a next run needs and git does not
  hold (partial parts' checkpoints, complete parts of undrawn figures that are too large for git)
  into a folder for the device tool's ``carry``, within a size limit.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

from .manifest import MANIFEST, Manifest, writer_lock
from .readme import committed

__all__ = ["ARCHIVE", "export_results", "import_results", "carry_files", "merge_manifests"]

ARCHIVE = "paper-results.tar.gz"
_STATE_RANK = {"todo": 0, "failed": 1, "partial": 2, "done": 3}


def _run_files(manifest: Manifest, since: float) -> list[str]:
    """Files written by the runs that started at or after ``since`` (Unix time), that still exist."""
    import datetime as dt

    out = []
    for run in manifest.data.get("runs", []):
        started = run.get("started_ts") or dt.datetime.fromisoformat(run["started"]).timestamp()
        if started >= since:
            out += [p for p in run.get("wrote", []) if p not in out and (manifest.folder / p).exists()]
    return out


def _priority(manifest: Manifest, path: str) -> int:
    """0: needed to continue (a partial part's checkpoint); 1: committed results; 2: large data; 3: finished runs."""
    record = {"bytes": (manifest.folder / path).stat().st_size}
    for job in manifest.jobs.values():
        for rec in [job] + list(job.get("parts", {}).values()):
            if path in rec.get("files", {}):
                if rec.get("state") == "partial":
                    return 0
                record = rec["files"][path]
    if committed(path, record):
        return 1
    return 3 if path.startswith("runs/") or record.get("kind") == "work" else 2


def export_results(out: str | os.PathLike, dest: str | os.PathLike, *, since: float = 0.0,
                   piece_bytes: int = 15 * 2 ** 20, max_pieces: int = 6) -> list[Path]:
    """Pack the results of the runs since ``since`` into ``dest`` (see the module docstring); returns the pieces."""
    out, dest = Path(out), Path(dest)
    manifest = Manifest.load(out)
    files = sorted(_run_files(manifest, since), key=lambda p: (_priority(manifest, p), p))
    limit = int(piece_bytes * max_pieces * 0.99) - 2 ** 16  # gzip of h5/png gains little; tar headers: a margin
    fixed = [MANIFEST, "README.md", ".gitignore"]
    used = sum((out / p).stat().st_size for p in fixed if (out / p).exists())
    kept, dropped = [], []
    for p in files:
        size = (out / p).stat().st_size
        if used + size <= limit:
            kept.append(p)
            used += size
        else:
            dropped.append(p)
    packed = _drop_from_manifest(manifest, dropped)
    dest.mkdir(parents=True, exist_ok=True)
    buffer = dest / f".{ARCHIVE}.tmp"
    with tarfile.open(buffer, "w:gz") as tar:
        data = json.dumps(packed.data, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
        for p in [f for f in fixed[1:] if (out / f).exists()] + kept:
            tar.add(out / p, arcname=p, recursive=False)
    pieces = _split(buffer, dest, piece_bytes)
    if dropped:
        (dest / "left-behind.txt").write_text("not returned (size limit):\n" + "\n".join(dropped) + "\n")
    return pieces


def _drop_from_manifest(manifest: Manifest, dropped: list[str]) -> Manifest:
    """A copy of the manifest without the files left behind; partial parts that lost their checkpoint restart."""
    data = json.loads(json.dumps(manifest.data))
    gone = set(dropped)
    for job in data["jobs"].values():
        if gone & set(job.get("files", {})):
            job["files"] = {p: r for p, r in job["files"].items() if p not in gone}
        for rec in job.get("parts", {}).values():
            lost = gone & set(rec.get("files", {}))
            if not lost:
                continue
            rec["files"] = {p: r for p, r in rec["files"].items() if p not in gone}
            if rec.get("state") == "partial":
                rec.update(state="todo", progress=0.0, note=f"checkpoint {sorted(lost)[0]} not returned (size); restarts")
                rec.pop("batch", None)
    return Manifest(manifest.folder, data)


def _split(buffer: Path, dest: Path, piece_bytes: int) -> list[Path]:
    for old in dest.glob(f"{ARCHIVE}*"):
        old.unlink()
    size = buffer.stat().st_size
    if size <= piece_bytes:
        target = dest / ARCHIVE
        os.replace(buffer, target)
        return [target]
    pieces = []
    with open(buffer, "rb") as fh:
        for i in range(0, size, piece_bytes):
            piece = dest / f"{ARCHIVE}.{i // piece_bytes:03d}"
            piece.write_bytes(fh.read(piece_bytes))
            pieces.append(piece)
    buffer.unlink()
    return pieces


def _read_archive(src: Path) -> bytes:
    if src.is_file():
        return src.read_bytes()
    whole = src / ARCHIVE
    if whole.exists():
        return whole.read_bytes()
    pieces = sorted(src.glob(f"{ARCHIVE}.[0-9][0-9][0-9]"))
    if not pieces:
        raise ValueError(f"no {ARCHIVE} (or {ARCHIVE}.000, ...) in '{src}'")
    numbers = [int(p.suffix[1:]) for p in pieces]
    if numbers != list(range(len(pieces))):
        raise ValueError(f"pieces of {ARCHIVE} in '{src}' are missing: have {numbers}")
    return b"".join(p.read_bytes() for p in pieces)


def _members(tar: tarfile.TarFile, src) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        parts = Path(m.name).parts
        if not m.isfile() or m.name.startswith("/") or ".." in parts or not parts:
            raise ValueError(f"archive from '{src}' holds {m.name!r}, which is not a plain file under the folder; "
                             "nothing was imported")
    return members


def merge_manifests(local: Manifest, incoming: dict) -> tuple[list[str], set[str]]:
    """Merge ``incoming`` into ``local`` part by part (the further-advanced record wins).

    Returns
    -------
    (parts, files)
        The part ids taken from ``incoming``, and the files their records (and drawn figures) name:
        those replace the local copies.
    """
    taken, files = [], set()
    for name, job in incoming.get("jobs", {}).items():
        mine = local.jobs.get(name)
        if mine is None or mine.get("hash") != job.get("hash"):
            if mine is not None and mine.get("parts"):
                local.supersede(name, f"replaced by an imported record (hash {job.get('hash')})")
            local.jobs[name] = job
            taken += [f"{name}/{p}" for p in job.get("parts", {})]
            files |= set(job.get("files", {})) | {f for r in job.get("parts", {}).values() for f in r.get("files", {})}
            continue
        for pname, rec in job.get("parts", {}).items():
            have = mine["parts"].get(pname, {"state": "todo", "progress": 0.0})
            newer = (_STATE_RANK.get(rec.get("state"), 0), rec.get("progress", 0.0)) > \
                (_STATE_RANK.get(have.get("state"), 0), have.get("progress", 0.0))
            if newer:
                mine["parts"][pname] = rec
                taken.append(f"{name}/{pname}")
                files |= set(rec.get("files", {}))
        if job.get("drawn") and not mine.get("drawn"):
            mine["drawn"], mine["files"] = job["drawn"], job.get("files", {})
            files |= set(job.get("files", {}))
        mine["state"] = max(mine.get("state", "todo"), job.get("state", "todo"), key=lambda s: _STATE_RANK.get(s, 0))
    ids = {(r.get("started"), r.get("started_ts")) for r in local.data["runs"]}
    for run in incoming.get("runs", []):
        if (run.get("started"), run.get("started_ts")) not in ids:
            local.data["runs"].append({**run, "id": len(local.data["runs"]) + 1})
    for device, prof in incoming.get("profiles", {}).items():
        local.data["profiles"][device] = _merge_profile(local.data["profiles"].get(device, {}), prof)
    local.data["measurements"].update(incoming.get("measurements", {}))
    for key in ("preset", "target"):
        if local.data.get(key) is None:
            local.data[key] = incoming.get(key)
    return taken, files


def _merge_profile(mine: dict, theirs: dict) -> dict:
    """Incoming observations supersede the local ones (they are the same or later)."""
    from .planner import KEEP

    out = {}
    for key in ("rates", "overheads", "compile"):
        a, b = mine.get(key, {}), theirs.get(key, {})
        out[key] = {k: (b[k] if k in b else a[k])[-KEEP:] for k in set(a) | set(b)}
    return out


def import_results(src: str | os.PathLike, out: str | os.PathLike = "figures/paper") -> list[str]:
    """Unpack a GPU run's results into ``out`` (see the module docstring); returns the parts taken."""
    src, out = Path(src), Path(out)
    blob = _read_archive(src)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz")
        members = _members(tar, src)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"the archive in '{src}' cannot be read ({exc}); nothing was imported") from None
    names = {m.name: m for m in members}
    if MANIFEST not in names:
        raise ValueError(f"the archive in '{src}' has no {MANIFEST}; nothing was imported")
    try:
        incoming = json.loads(tar.extractfile(names[MANIFEST]).read())
    except json.JSONDecodeError as exc:
        raise ValueError(f"the archive's {MANIFEST} is damaged ({exc}); nothing was imported") from None
    contents = {name: tar.extractfile(m).read() for name, m in names.items() if name != MANIFEST}
    recorded = _known_files(Manifest(out, incoming))
    bad = [n for n, data in contents.items() if n in recorded and recorded[n] and recorded[n] != _sha(data)]
    if bad:
        raise ValueError(f"{', '.join(bad)} in the archive from '{src}' do(es) not match the checksum its manifest "
                         "records; nothing was imported")
    with writer_lock(out):
        local = Manifest.load(out)
        if local.data.get("preset") not in (None, incoming.get("preset")):
            raise ValueError(f"'{out}' holds the {local.data.get('preset')!r} preset, the archive "
                             f"{incoming.get('preset')!r}; nothing was imported")
        known = _known_files(local)
        taken, newer_files = merge_manifests(local, incoming)
        aside = out / "superseded" / f"import-{time.strftime('%Y%m%d-%H%M%S')}"
        for name, data in contents.items():
            target = out / name
            keep_local = (target.exists() and name in known and known[name] != _sha(data)
                          and name not in newer_files and not name.endswith(("README.md", ".gitignore")))
            if keep_local:                  # the local record is the newer one: the incoming copy goes aside
                target = aside / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.import.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        local.save()
        from . import readme
        from .jobs import known_jobs

        readme.write(out, local, known_jobs(local, local.data.get("preset") or "paper",
                                            local.data.get("target") or "tetris.wav"))
    return taken


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _known_files(manifest: Manifest) -> dict[str, str]:
    known = {}
    for job in manifest.jobs.values():
        for files in [job.get("files", {})] + [p.get("files", {}) for p in job.get("parts", {}).values()]:
            known.update({p: r.get("sha256") for p, r in files.items()})
    return known


def carry_files(out: str | os.PathLike, dest: str | os.PathLike, *, limit_bytes: int = 48 * 2 ** 20) -> list[str]:
    """Copy the files a next run needs that git does not hold into ``dest`` (same relative paths).

    Raises
    ------
    ValueError
        They exceed ``limit_bytes`` (the device tool carries 64 MiB in all); the message lists them.
    """
    out, dest = Path(out), Path(dest)
    manifest = Manifest.load(out)
    need = []
    for job in manifest.jobs.values():
        undrawn = job.get("kind") == "figure" and not job.get("drawn")
        for rec in job.get("parts", {}).values():
            files = rec.get("files", {}).items()
            if rec.get("state") == "partial":
                need += [p for p, r in files if not committed(p, r) and (out / p).exists()]
            elif undrawn and rec.get("state") == "done":
                need += [p for p, r in files if r.get("kind", "result") == "result" and not committed(p, r)
                         and (out / p).exists()]
    need = sorted(set(need))
    total = sum((out / p).stat().st_size for p in need)
    if total > limit_bytes:
        listing = ", ".join(f"{p} ({(out / p).stat().st_size / 2**20:.1f} MiB)" for p in need)
        raise ValueError(f"the files to carry take {total / 2**20:.1f} MiB, over {limit_bytes / 2**20:.0f} MiB: "
                         f"{listing}; run fewer jobs at once (--jobs) or finish partial ones first")
    if dest.exists():
        shutil.rmtree(dest)
    for p in need:
        (dest / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out / p, dest / p)
    return need
