"""``reproduce paper`` through the figure-parts interface (a recipe with ``parts``/``compute_part``/``assemble``).

The recipe here is a stand-in written to the interface of spectral_probe.figures (issue 19's contract):
three parts, each one training run with a checkpointed run file, a result file per complete part, and
a figure assembled from the parts.  The runner must compute the parts one by one, stop one at the
deadline, continue it next time to the uninterrupted result, and draw the figure once all are done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import spectral_probe.figures as figures_pkg
from _paperscale_fixtures import one_thread  # noqa: F401 - fixture
from spectral_probe.paperscale import reproduce_paper
from spectral_probe.paperscale.specs import Work as TrainingWork      # the contract's TrainingWork fields
from spectral_probe.training import Deadline

EPOCHS = 40


@dataclass(frozen=True)
class FigurePart:
    name: str
    settings: dict
    runs: tuple = ()
    extra: dict = field(default_factory=dict)


@dataclass
class PartStatus:
    name: str
    complete: bool
    progress: float
    path: Path | None


class PartsRecipe:
    """Figure 5 as three training parts (the stand-in)."""

    number, title, target, module = "5", "stand-in: three training runs", "", "fig5"

    def estimate(self, preset):
        return 1.0

    def parts(self, preset, target=None, **sizes):
        return [FigurePart(f"run{i}", {"seed": i, "epochs": EPOCHS}, (TrainingWork("siren", 256, 1, 16, 2, EPOCHS),))
                for i in range(3)]

    def _paths(self, out_dir, name):
        folder = Path(out_dir) / "fig5.parts"
        return folder / f"{name}.run.h5", folder / f"{name}.h5"

    def compute_part(self, name, preset, target=None, out_dir=None, *, device="auto", seed=0, callbacks=(), **sizes):
        from spectral_probe.training.presets import make_run
        from spectral_probe.training.runs import train_to_file

        run_file, result = self._paths(out_dir, name)
        if result.exists():
            return PartStatus(name, True, 1.0, result)
        run_file.parent.mkdir(parents=True, exist_ok=True)
        spec, loaded = make_run("siren", "synthetic:broadband", "quick", num_samples=256, width=16, depth=2,
                                epochs=EPOCHS, seed=int(name[-1]))
        _, res = train_to_file(spec, loaded, run_file, resume=True, callbacks=list(callbacks), record_every=5,
                               handle_signals=False)
        if res.epochs_run < EPOCHS:
            return PartStatus(name, False, res.epochs_run / EPOCHS, None)
        ds = xr.Dataset({"psnr": ("epoch", res.history["psnr"])})
        tmp = result.with_suffix(".tmp")
        ds.to_netcdf(tmp, engine="h5netcdf")
        tmp.replace(result)
        return PartStatus(name, True, 1.0, result)

    def part_status(self, name, preset, target=None, out_dir=None, **sizes):
        from spectral_probe.training.checkpoint import checkpoint_steps

        run_file, result = self._paths(out_dir, name)
        if result.exists():
            return PartStatus(name, True, 1.0, result)
        steps = checkpoint_steps(run_file) if run_file.exists() else []
        return PartStatus(name, False, (steps[-1] / EPOCHS) if len(steps) else 0.0, None)

    def assemble(self, out_dir, preset, target=None, **sizes):
        missing = [p.name for p in self.parts(preset) if not self._paths(out_dir, p.name)[1].exists()]
        if missing:
            raise ValueError(f"parts not complete: {missing}")
        arrays = [xr.load_dataset(self._paths(out_dir, p.name)[1], engine="h5netcdf").psnr.values
                  for p in self.parts(preset)]
        return xr.Dataset({"psnr": (("run", "epoch"), np.stack(arrays))})

    def plot(self, ds):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(ds.psnr.values.T)
        return fig


@pytest.fixture()
def parts_recipe(monkeypatch):
    real = figures_pkg.get_recipe
    fake = PartsRecipe()
    monkeypatch.setattr(figures_pkg, "get_recipe", lambda n: fake if str(n).removeprefix("fig") == "5" else real(n))
    return fake


def run(out, **kw):
    return reproduce_paper(out, preset="test", device="cpu", budget="120s", jobs=["fig5"], log=lambda line: None, **kw)


def test_parts_are_computed_cut_continued_and_drawn(parts_recipe, tmp_path, monkeypatch):
    whole = run(tmp_path / "whole")
    assert whole.advanced == ["fig5/run0", "fig5/run1", "fig5/run2"] and not whole.left
    original = Deadline.on_epoch_end
    calls = {"n": 0}

    def cut_in_the_second_run(self, state):          # the deadline passes in epoch 13 of part run1
        calls["n"] += 1
        if calls["n"] == EPOCHS + 13:
            self.at = 0.0
        original(self, state)

    monkeypatch.setattr(Deadline, "on_epoch_end", cut_in_the_second_run)
    out = tmp_path / "cut"
    first = run(out)
    monkeypatch.setattr(Deadline, "on_epoch_end", original)
    assert first.ended_by == "budget" and first.advanced == ["fig5/run0", "fig5/run1"]
    manifest = json.loads((out / "manifest.json").read_text())
    parts = manifest["jobs"]["fig5"]["parts"]
    assert parts["run0"]["state"] == "done" and parts["run1"]["state"] == "partial"
    assert parts["run1"]["progress"] == pytest.approx(13 / EPOCHS) and parts["run2"]["state"] == "todo"
    assert manifest["jobs"]["fig5"]["state"] == "partial" and not (out / "fig5.png").exists()
    assert parts["run1"]["files"] == {"fig5.parts/run1.run.h5": {**parts["run1"]["files"]["fig5.parts/run1.run.h5"],
                                                                 "kind": "work"}}
    from spectral_probe.paperscale import carry_files

    assert carry_files(out, tmp_path / "carry") == ["fig5.parts/run1.run.h5"]     # the partial part's checkpoint
    second = run(out)
    assert second.advanced == ["fig5/run1", "fig5/run2"] and not second.left
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["jobs"]["fig5"]["state"] == "done" and manifest["jobs"]["fig5"]["drawn"]["device"] == "cpu"
    assert set(manifest["jobs"]["fig5"]["files"]) == {"fig5.png", "fig5.h5"}
    a = xr.load_dataset(tmp_path / "whole" / "fig5.h5", engine="h5netcdf")
    b = xr.load_dataset(out / "fig5.h5", engine="h5netcdf")
    np.testing.assert_array_equal(a.psnr.values, b.psnr.values)
    gitignore = (out / ".gitignore").read_text()
    assert "!/fig5.parts/run1.h5" in gitignore and "run1.run.h5" not in gitignore
    assert run(out).advanced == []


def test_a_drawing_that_did_not_fit_is_work_left(parts_recipe, tmp_path, monkeypatch):
    """All parts done but no time to draw: the run ends by its budget and lists ``fig5/draw`` as left (not
    "done, 0 left"); the next run draws it."""
    from spectral_probe.paperscale import planner

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(planner.TimeModel, "overhead",
                      lambda self, kind: 1e6 if kind.endswith("-draw") else 0.0)     # a drawing never fits
        first = run(out)
    assert first.advanced == ["fig5/run0", "fig5/run1", "fig5/run2"]
    assert first.ended_by == "budget" and first.left == ["fig5/draw"] and first.left_estimate_s == 1e6
    assert not (out / "fig5.png").exists()
    second = run(out)
    assert second.advanced == [] and second.ended_by == "done" and not second.left
    assert (out / "fig5.png").exists()
