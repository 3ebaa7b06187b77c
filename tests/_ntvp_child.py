"""Child process for tests/test_ntk_engine.py: peak resident memory of one ntvp kernel vs its stated budget.

Usage: python _ntvp_child.py N  -> prints JSON {n, chunk, need, measured} (bytes).
"""

from __future__ import annotations

import json
import sys

import torch

from spectral_probe.models import build_model
from spectral_probe.ntk import count_parameters, empirical_ntk
from spectral_probe.ntk import ntvp
from spectral_probe.ntk.empirical import RealView, prepare_tensors

WORKSPACE = 32 * 2 ** 20


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def main() -> None:
    torch.set_num_threads(1)
    n = int(sys.argv[1])
    ntvp.DEFAULT_WORKSPACE = WORKSPACE
    model = build_model("siren", width=16, depth=2, seed=0)
    x = torch.linspace(-1, 1, n)[:, None]
    empirical_ntk(model, x[:8], implementation="ntvp")          # warm-up: load kernels, allocator pools
    params, others, _ = prepare_tensors(model)
    view = RealView(model, params, others)
    per_sample = ntvp.saved_bytes_per_sample(view.call, view.real, x)
    plan = ntvp.plan_ntvp(n, n, n, per_sample, count_parameters(model), 4, n * n * 4)
    base = _status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:               # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    empirical_ntk(model, x, implementation="ntvp")
    print(json.dumps({"n": n, "chunk": plan.chunk, "need": plan.need, "measured": _status("VmHWM:") - base}))


if __name__ == "__main__":
    main()
