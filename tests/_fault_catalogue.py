"""Fault catalogue runner: damage copies of a run file and read each with every reader, in this process.

Usage::

    python tests/_fault_catalogue.py GOOD.h5 WORKDIR CASES.json TRAIN_ARGS.json

``CASES.json`` lists ``{"id": ..., "kind": "zero" | "random" | "flip" | "xor" | "none", "offset": int, "bit": int}``
(optionally ``"readers"``, a subset of :data:`READERS`).  For
each case a damaged copy is written and read by ``open_run``, ``watch --once``, ``ntk --run``,
``probe --run``, ``export`` and ``train --resume``; each outcome is compared with the same
reader on the undamaged file.  One JSON line per (case, reader) goes to stdout::

    {"case": id, "reader": name, "outcome": "refused" | "identical" | "wrong" | "traceback" | "untidy",
     "seconds": float, "detail": str}

``refused``: a one-line refusal (CLI: exit 2, one ``error:`` line, no traceback; Python: an
``OSError`` or ``ValueError`` of one line).  ``identical``: the reader's result equals the
undamaged file's.  Anything else is a failure.  A reader that hangs is stopped by
``faulthandler`` after ``HANG_S`` seconds: the process exits and the caller reports the last
``start`` line as a hang.
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

HANG_S = 60
READERS = ("open_run", "watch", "ntk_run", "probe_run", "export", "resume")
_TIMES = re.compile(r"\d+(\.\d+)?( s\b| epochs/s)")


def _mask(text: str) -> str:
    return "\n".join(_TIMES.sub("#", line) for line in text.splitlines() if not line.startswith("wall time"))


def _trees_equal(a, b, skip_vars=()) -> str:
    """'' when two DataTrees hold the same groups, variables, values and attributes; else the first difference."""
    if set(a.children) != set(b.children):
        return f"groups {sorted(a.children)} != {sorted(b.children)}"
    for name in ["/", *sorted(a.children)]:
        da = a.to_dataset() if name == "/" else a[name].to_dataset()
        db = b.to_dataset() if name == "/" else b[name].to_dataset()
        da = da.drop_vars([v for v in skip_vars if v in da])
        db = db.drop_vars([v for v in skip_vars if v in db])
        if not da.identical(db):
            return f"group {name} differs"
    return ""


def _tb_scalars(logdir: Path) -> list:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = []
    for events in sorted(logdir.rglob("events.*")):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        tags = acc.Tags()
        for tag in sorted(tags.get("scalars", [])):
            out.append((tag, [(e.step, e.value) for e in acc.Scalars(tag)]))
        for tag in sorted(tags.get("tensors", [])):
            out.append((tag, [(e.step, e.tensor_proto.SerializeToString()) for e in acc.Tensors(tag)]))
    return out


class Readers:
    """Each reader on a file named ``run.h5`` in the current folder; ``result`` is compared across files."""

    def __init__(self, train_args: list[str]) -> None:
        from click.testing import CliRunner

        self.runner = CliRunner()
        self.train_args = train_args

    def _cli(self, args):
        from spectral_probe.cli.main import main as cli

        res = self.runner.invoke(cli, args)
        return res

    @staticmethod
    def _cli_outcome(res) -> tuple[str | None, str]:
        """``("refused", line)`` / ``("traceback"|"untidy", why)`` / ``(None, output)`` for a success."""
        out = res.output
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            import traceback

            return "traceback", "".join(traceback.format_exception(res.exception))[-600:]
        if "Traceback" in out:
            return "traceback", out[-600:]
        if res.exit_code == 0:
            return None, out
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        if res.exit_code == 2 and len(errors) == 1:
            return "refused", errors[0][:300]
        return "untidy", f"exit {res.exit_code}: {out[-400:]}"

    def open_run(self):
        from spectral_probe.store import open_run

        try:
            return None, open_run("run.h5")
        except (OSError, ValueError) as exc:
            text = str(exc)
            return ("refused", text[:300]) if "\n" not in text else ("untidy", text[:400])

    def watch(self):
        return self._cli_outcome(self._cli(["watch", "--run", "run.h5", "--once"]))

    def ntk_run(self):
        return self._cli_outcome(self._cli(["ntk", "--run", "run.h5", "--num-samples", "64"]))

    def probe_run(self):
        return self._cli_outcome(self._cli(["probe", "--run", "run.h5"]))

    def export(self):
        shutil.rmtree("tb", ignore_errors=True)
        outcome, out = self._cli_outcome(self._cli(["export", "--run", "run.h5", "--tensorboard", "tb", "--no-images"]))
        if outcome is not None:
            return outcome, out
        return None, (out, _tb_scalars(Path("tb")))

    def resume(self):
        from spectral_probe.store import open_run

        outcome, out = self._cli_outcome(self._cli([*self.train_args, "--out", "run.h5", "--resume"]))
        if outcome is not None:
            return outcome, out
        return None, (out, open_run("run.h5"))

    def compare(self, reader: str, got, want) -> str:
        if reader == "open_run":
            return _trees_equal(got, want)
        if reader == "export":
            if _mask(got[0]) != _mask(want[0]):
                return "output differs"
            return "" if got[1] == want[1] else "exported events differ"
        if reader == "resume":
            if _mask(got[0]) != _mask(want[0]):
                return "output differs"
            return _trees_equal(got[1], want[1], skip_vars=("wall_time", "seconds"))
        return "" if _mask(got) == _mask(want) else "output differs"


def _damage(data: bytes, case: dict) -> bytes:
    raw = bytearray(data)
    at = int(case["offset"])
    if case["kind"] == "none":                  # a control case: the undamaged file
        return data
    if case["kind"] == "zero":
        raw[at:at + 4096] = bytes(len(raw[at:at + 4096]))
    elif case["kind"] == "random":              # a 4 kB block of random bytes (seeded by the offset)
        import random

        raw[at:at + 4096] = random.Random(at).randbytes(len(raw[at:at + 4096]))
    elif case["kind"] == "xor":                 # a byte edited (``"s0": 23.46`` -> ``93.46``: mask 0x0b)
        raw[at] ^= int(case["bit"])
    else:
        raw[at] ^= 1 << int(case["bit"])
    return bytes(raw)


def main() -> None:
    good, work, cases_file, train_file = (Path(a) for a in sys.argv[1:5])
    cases = json.loads(cases_file.read_text())
    train_args = json.loads(train_file.read_text())
    data = good.read_bytes()
    readers = Readers(train_args)
    from spectral_probe.torch_settings import torch_threads

    with torch_threads(1):
        ref_dir = work / "reference"
        ref_dir.mkdir(parents=True, exist_ok=True)
        os.chdir(ref_dir)
        reference = {}
        for name in READERS:
            Path("run.h5").write_bytes(data)
            outcome, value = getattr(readers, name)()
            if outcome is not None:
                raise SystemExit(f"reader {name} fails on the undamaged file: {outcome} {value}")
            reference[name] = value
        for case in cases:
            case_dir = work / f"case{case['id']}"
            case_dir.mkdir(parents=True, exist_ok=True)
            os.chdir(case_dir)
            damaged = _damage(data, case)
            for name in case.get("readers", READERS):
                Path("run.h5").write_bytes(damaged)      # every reader starts from the damaged file
                print(json.dumps({"start": case["id"], "reader": name}), flush=True)
                faulthandler.dump_traceback_later(HANG_S, exit=True)
                t0 = time.perf_counter()
                try:
                    outcome, value = getattr(readers, name)()
                    if outcome is None:
                        diff = readers.compare(name, value, reference[name])
                        outcome, detail = ("identical", "") if not diff else ("wrong", diff)
                    else:
                        detail = value
                except Exception as exc:  # noqa: BLE001 - a reader's traceback is an outcome
                    import traceback

                    outcome, detail = "traceback", "".join(traceback.format_exception(exc))[-600:]
                finally:
                    faulthandler.cancel_dump_traceback_later()
                seconds = time.perf_counter() - t0
                print(json.dumps({"case": case["id"], "kind": case["kind"], "offset": case["offset"],
                                  "reader": name, "outcome": outcome, "seconds": round(seconds, 3),
                                  "detail": detail if outcome != "identical" else ""}), flush=True)
            os.chdir(work)
            shutil.rmtree(case_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
