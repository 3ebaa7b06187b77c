"""The record of a paper reproduction: ``manifest.json`` in the output folder, one writer at a time.

Layout (JSON, ``format`` :data:`FORMAT`)::

    {"format", "preset", "target", "updated",
     "jobs": {job: {"kind", "hash", "state", "parts": {part: PART}, "drawn": ENV + {"wall_s"}, "files": FILES,
                    "paper": [mean, std] (Table 1)}},
     "superseded": [old job records whose settings changed],
     "runs": [{"id", "started", "ended", "device", "torch", "commit", "budget_s", "used_s", "idle_s",
               "ended_by", "advanced": [part ids], "wrote": [paths]}],
     "profiles": {device name: time-model profile (see planner)},
     "measurements": {name: {"device", "torch", "commit", "date", "table": [[...], ...], "note"}}}

    PART = {"hash", "state": "done|partial|todo|failed", "progress", "device", "torch", "commit", "date",
            "wall_s" (all attempts), "estimate_s", "files": FILES, "numbers": {...}, "note", "batch"}
    FILES = {relative path: {"bytes", "sha256"}}

The file is replaced atomically after every part, so a kill leaves the last consistent record.
A manifest that is not valid JSON or not of this format is refused (the file named, nothing
overwritten).  :func:`writer_lock` holds the folder's lock for a whole run: a second
``reproduce paper`` on the same folder is refused with the first one named.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

__all__ = ["FORMAT", "MANIFEST", "STATES", "Manifest", "writer_lock", "environment", "file_record", "now"]

FORMAT = "spectral_probe.paper_manifest/1"
MANIFEST = "manifest.json"
STATES = ("done", "partial", "todo", "failed")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def file_record(path: Path) -> dict:
    """``{"bytes", "sha256"}`` of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _commit() -> str | None:
    """``$SPECTRAL_PROBE_COMMIT``, else the short commit of the package's git checkout (``+dirty`` when changed)."""
    if os.environ.get("SPECTRAL_PROBE_COMMIT"):
        return os.environ["SPECTRAL_PROBE_COMMIT"]
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "spectral_probe"], capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device) -> dict:
    """Device name, torch version, commit and date of this process."""
    import torch

    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {"device": name, "torch": torch.__version__, "commit": _commit(), "date": now()[:10]}


class Manifest:
    """``manifest.json`` of an output folder (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, data: dict | None = None) -> None:
        self.folder = Path(folder)
        self.data = data if data is not None else {"format": FORMAT, "jobs": {}, "superseded": [], "runs": [],
                                                   "profiles": {}, "measurements": {}}
        for key, empty in (("jobs", {}), ("superseded", []), ("runs", []), ("profiles", {}), ("measurements", {})):
            self.data.setdefault(key, empty)

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Manifest":
        """The folder's manifest (an empty one when there is none).

        Raises
        ------
        ValueError
            The file is not valid JSON or not a manifest of this format (named; left as it is).
        """
        path = Path(folder) / MANIFEST
        if not path.exists():
            return cls(folder)
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"manifest '{path}' is damaged ({exc}); it was left as it is: restore it "
                             "(e.g. git checkout) or move it away to start a new record") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("jobs"), dict):
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"'{path}' is not a reproduce-paper manifest (format {got!r}, expected {FORMAT!r}); "
                             "it was left as it is")
        for name, job in data["jobs"].items():
            bad = [p for p, rec in job.get("parts", {}).items() if rec.get("state") not in STATES]
            if bad:
                raise ValueError(f"manifest '{path}': job {name} has part(s) {', '.join(bad)} in an unknown state; "
                                 "it was left as it is")
        return cls(folder, data)

    def save(self) -> None:
        """Write atomically (temporary file, then rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data["updated"] = now()
        tmp = self.path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=False, allow_nan=False, default=_json_default) + "\n")
        os.replace(tmp, self.path)

    # ------------------------------------------------------------------ records
    @property
    def jobs(self) -> dict:
        return self.data["jobs"]

    def job(self, name: str, kind: str | None = None, hash_: str | None = None) -> dict:
        rec = self.jobs.setdefault(name, {"kind": kind, "hash": hash_, "state": "todo", "parts": {}})
        return rec

    def part(self, job: str, part: str) -> dict:
        return self.jobs.setdefault(job, {"kind": None, "hash": None, "state": "todo", "parts": {}})["parts"] \
            .setdefault(part, {"state": "todo", "progress": 0.0})

    def part_state(self, job: str, part: str) -> str:
        return self.jobs.get(job, {}).get("parts", {}).get(part, {}).get("state", "todo")

    def job_done(self, name: str, hash_: str) -> bool:
        rec = self.jobs.get(name)
        return bool(rec) and rec.get("hash") == hash_ and rec.get("state") == "done"

    def update_job_state(self, name: str, part_names: list[str], drawn_needed: bool) -> str:
        """Derive a job's state from its parts (and, for figures, whether it is drawn)."""
        rec = self.jobs[name]
        states = [rec["parts"].get(p, {}).get("state", "todo") for p in part_names]
        progress = [rec["parts"].get(p, {}).get("progress", 0.0) for p in part_names]
        if states and all(s == "done" for s in states) and (not drawn_needed or rec.get("drawn")):
            state = "done"
        elif "failed" in states:
            state = "failed"
        elif any(s in ("done", "partial") for s in states) or any(p > 0 for p in progress):
            state = "partial"
        else:
            state = "todo"
        rec["state"] = state
        return state

    def supersede(self, name: str, reason: str) -> None:
        """Keep an old job record aside (its settings changed) and start the job afresh."""
        old = self.jobs.pop(name)
        self.data["superseded"].append({"job": name, "reason": reason, "when": now(), "record": old})

    def profile(self, device_name: str) -> dict:
        return self.data["profiles"].setdefault(device_name, {})


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the output folder's lock (``.manifest.json.lock``) for one ``reproduce paper`` at a time.

    Raises
    ------
    OSError
        (``RunLockedError``) another live process holds it; the message names that process.
    """
    from ..store.filelock import RunLock, RunLockedError, describe_holder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = RunLock(folder / MANIFEST)
    except RunLockedError as exc:
        who = describe_holder(folder / MANIFEST) or "another process"
        raise RunLockedError(exc.errno, f"'{folder}' is being updated by another reproduce paper ({who}); "
                             "wait for it to end or stop it") from None
    try:
        yield
    finally:
        lock.release()
