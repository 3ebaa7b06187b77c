"""The paper at its own scale, completed piece by piece: ``spectral-probe reproduce paper``.

The paper's figures (:mod:`spectral_probe.figures`) and Table 1 (six file x model cells x five
seeds) are split into *parts* of at most a few GPU-minutes; one folder (default
``figures/paper``) keeps their results and a manifest (``manifest.json``: per part its settings
hash, state ``done|partial|todo|failed``, device, torch, commit, wall time and numbers, the
paper's numbers beside them).  Each run continues the manifest within a time budget: done parts
with the same settings hash are skipped, partial parts continue from their checkpoints, and the
planner (:mod:`.planner`) fills the budget from a time model calibrated on the device.

>>> from spectral_probe.paperscale import reproduce_paper, paper_status
>>> report = reproduce_paper("figures/paper", budget="9m", device="cuda")     # doctest: +SKIP
>>> print(paper_status("figures/paper"))                                       # doctest: +SKIP

Modules: :mod:`.jobs` (what there is to do, settings hashes), :mod:`.manifest` (the record, one
writer), :mod:`.planner` (time model, what to run next), :mod:`.table1` (Table 1 parts),
:mod:`.figparts` (figure parts), :mod:`.runner` (the run), :mod:`.readme` (the generated
README), :mod:`.transfer` (bringing results back from a GPU machine).
"""

from __future__ import annotations

__all__ = ["reproduce_paper", "paper_status", "import_results", "export_results", "carry_files", "parse_budget",
           "RunReport"]


def __getattr__(name: str):
    if name in ("reproduce_paper", "paper_status", "RunReport"):
        from . import runner

        return getattr(runner, name)
    if name in ("import_results", "export_results", "carry_files"):
        from . import transfer

        return getattr(transfer, name)
    if name == "parse_budget":
        from .jobs import parse_budget

        return parse_budget
    raise AttributeError(f"module 'spectral_probe.paperscale' has no attribute {name!r}")
