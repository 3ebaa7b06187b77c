"""The RunRecorder protocol: one registry, generic description/binding/restore, rows in the file's layout,
explicit callback order, and a new recorder that is one class."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from spectral_probe.bottleneck import BottleneckWatch
from spectral_probe.cadence import completed_epochs, log_steps
from spectral_probe.figures.recorders import OutputRecorder, ProbeSummary
from spectral_probe.ntk import NTKSnapshot
from spectral_probe.probes import Probe
from spectral_probe.store import Var, open_run
from spectral_probe.training import Callback, Checkpointer, Deadline, InterruptGuard, fit
from spectral_probe.training.loop import ORDERS, ordered
from spectral_probe.training.presets import make_run
from spectral_probe.training.recorder import PredictionRecorder, TrainingRecorder
from spectral_probe.training.recording import RECORDERS, EpochBlocks, RunRecorder, describe
from spectral_probe.training.runs import recording_config, train_to_file

PACKAGE = Path(__file__).resolve().parents[1] / "spectral_probe"


def _tiny(epochs=12):
    return make_run("siren", "synthetic:broadband", "quick", width=8, depth=2, num_samples=128, epochs=epochs,
                    train_overrides={"device": "cpu", "progress": False, "lr": 1e-3})


class NormRecorder(RunRecorder):
    """A recorder written for this test: the parameters' squared norm every ``every`` epochs (group ``norms``)."""

    group = "norms"
    data_attributes = ("writer", "steps", "values")

    def __init__(self, every: int = 3) -> None:
        self.every, self.steps, self.values = every, [], []
        self.restored = None

    def declare(self, writer=None) -> None:
        (writer or self.writer).declare(self.group, variables={"norm": Var((), "f8")}, attrs={"every": self.every})

    def restore(self, ds) -> None:
        self.restored = [int(s) for s in ds["step"].values]
        self.steps, self.values = list(self.restored), [float(v) for v in ds["norm"].values]

    def on_epoch_start(self, state) -> None:
        step = completed_epochs(state)
        if self.due(step):
            norm = float(sum(torch.sum(p.detach().double() ** 2) for p in state.model.parameters()))
            self.steps.append(step)
            self.values.append(norm)
            self.writer.append(self.group, step, norm=norm)

    def rows_since(self, step: int):
        import xarray as xr

        keep = [i for i, s in enumerate(self.steps) if s >= step]
        return xr.Dataset({"norm": ("step", np.asarray(self.values)[keep])},
                          coords={"step": np.asarray(self.steps, dtype=np.int64)[keep]}) if keep else None


def test_every_recorder_is_registered_by_its_class_and_implements_the_protocol():
    for cls in (Probe, NTKSnapshot, BottleneckWatch, TrainingRecorder, PredictionRecorder, Checkpointer,
                OutputRecorder, ProbeSummary, NormRecorder):
        assert issubclass(cls, RunRecorder) and RECORDERS[cls.__name__] is cls
    views = {cls.__name__: cls.tensorboard for cls in (Probe, NTKSnapshot, BottleneckWatch, TrainingRecorder,
                                                       PredictionRecorder, Checkpointer)}
    assert views == {"Probe": "activations", "NTKSnapshot": "ntk", "BottleneckWatch": "watch",
                     "TrainingRecorder": "scalars", "PredictionRecorder": None, "Checkpointer": None}
    with pytest.raises(TypeError, match="'Probe' is taken by spectral_probe.probes.probe.Probe"):
        type("Probe", (RunRecorder,), {"__module__": "somewhere.else"})
    assert RECORDERS["Probe"] is Probe


def test_descriptions_are_those_of_files_written_before_the_protocol():
    """The ``recording`` configuration is compared on resume: every recorder describes itself as before."""
    snap = NTKSnapshot(every=5, top_k=2)
    got = recording_config([Probe("*pre*", every=7, bins=32), snap, BottleneckWatch(every=10, ntk=snap),
                            ProbeSummary(log_steps(100, 5)), OutputRecorder(25)], 50, None)
    # printed by the code before this change (training/runs.py's _describe at 3655ea9)
    assert got == {"record_every": 50, "checkpoint_every": None, "probes": [
        {"type": "Probe", "bin_range": "auto", "bins": 32, "complex_part": "real", "device": "cpu", "every": 7,
         "grid_shape": None, "group": "activations", "keep": False, "layers": "*pre*", "margin": 0.05,
         "mode": "eval", "psd": "mean"},
        {"type": "NTKSnapshot", "at_start": True, "dtype": None, "every": 5, "forecast": 0,
         "forecast_optimizer": "adam", "forecasts": [], "group": "ntk", "lanczos_steps": 128, "n": 0, "rtol": 0.0,
         "stride": 1, "top_k": 2},
        {"type": "BottleneckWatch", "early_stop": False, "every": 10, "group": "bottleneck", "hidden": "auto",
         "on_change": None, "reference": None, "warn": True},
        {"type": "ProbeSummary", "bins": 100, "every": [0, 2, 9, 31, 100], "layers": [], "points": 240,
         "steps": []},
        {"type": "OutputRecorder", "every": 25, "steps": []}]}
    assert describe(Deadline(5.0)) == {"type": "Deadline", "at": 5.0}       # a plain callback: its settings
    assert describe(NormRecorder(4)) == {"type": "NormRecorder", "every": 4, "restored": None}


def test_no_module_outside_the_recorders_reads_their_data_attributes():
    """runs.py and the TensorBoard logger use the protocol only: no recorder's data attribute, no hasattr."""
    data = set()
    for cls in (Probe, NTKSnapshot, BottleneckWatch, TrainingRecorder, PredictionRecorder, Checkpointer,
                OutputRecorder, ProbeSummary):
        data |= set(cls.data_attributes) - {"writer"}
    assert {"cache", "rows", "epochs", "spectra", "saved"} <= data
    for module in ("training/runs.py", "monitor/logger.py", "monitor/tensorboard.py"):
        tree = ast.parse((PACKAGE / module).read_text())
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)   # not writer.saved(),
                and ast.unparse(node.value) not in ("writer", "self", "self.sink")}       # sink.rows(): their own
        assert not used & data, (module, used & data)
        calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name)}
        assert "hasattr" not in calls or module == "monitor/logger.py", module
    logger = ast.parse((PACKAGE / "monitor/logger.py").read_text())
    assert not [n for n in ast.walk(logger) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                and n.func.id == "isinstance" and "Probe" in ast.unparse(n)]


# --------------------------------------------------------------------------- order
class Log(Callback):
    def __init__(self, name, calls, order=None, stop_at=None):
        self.name, self.calls, self.stop_at = name, calls, stop_at
        if order is not None:
            self.order = order

    def on_epoch_end(self, state):
        self.calls.append(self.name)
        if self.stop_at is not None and state.epoch + 1 == self.stop_at:
            state.request_stop("test")


def test_ordered_sorts_by_order_and_keeps_ties_in_the_given_order():
    calls = []
    a, b, c = Log("a", calls), Log("b", calls, ORDERS["last"]), Log("c", calls, ORDERS["first"])
    d = Log("d", calls)
    assert ordered([a, b, c, d]) == [c, a, d, b]
    assert [type(x).__name__ for x in ordered([Checkpointer(None), Deadline(1e12), InterruptGuard(),
                                                TrainingRecorder(None), Probe()])] == \
        ["TrainingRecorder", "Probe", "Deadline", "InterruptGuard", "Checkpointer"]
    with pytest.raises(TypeError, match="Log.order must be a number"):
        ordered([Log("x", calls, "late")])
    spec, target = _tiny(3)
    fit(spec.build_model(), target, spec.train, callbacks=[b, a], probes=[c, d])
    assert calls == ["c", "a", "d", "b"] * 3


def test_a_checkpointer_given_first_still_saves_a_stop_requested_after_it(tmp_path):
    """The checkpointer's order, not its place in the list, puts it after the callback that stops the fit."""
    from spectral_probe.store import TrajectoryWriter
    from spectral_probe.training.checkpoint import checkpoint_steps

    spec, target = _tiny(20)
    calls = []
    with TrajectoryWriter(tmp_path / "run.h5", {"x": 1}) as writer:
        checkpointer = Checkpointer(writer, every=None)
        result = fit(spec.build_model(), target, spec.train,
                     callbacks=[checkpointer, TrainingRecorder(writer, every=4), Log("stop", calls, stop_at=7)])
    assert result.epochs_run == 7 and result.stop_reason == "test"
    assert list(checkpoint_steps(tmp_path / "run.h5")) == [0, 7] == checkpointer.saved


# --------------------------------------------------------------------------- a new recorder, end to end
def test_a_new_recorder_is_bound_described_written_restored_and_resumes_identically(tmp_path):
    spec, target = _tiny(12)
    whole = NormRecorder(every=3)
    train_to_file(spec, target, tmp_path / "whole.h5", probes=[whole], record_every=4, checkpoint_every=4)
    assert whole.steps == [0, 3, 6, 9] and whole.restored is None
    ds = open_run(tmp_path / "whole.h5", "norms")
    assert list(ds["step"].values) == whole.steps
    np.testing.assert_array_equal(ds["norm"].values, whole.values)
    from spectral_probe.store import read_config

    assert read_config(tmp_path / "whole.h5")["recording"]["probes"] == [
        {"type": "NormRecorder", "every": 3, "restored": None}]

    short, _ = _tiny(7)
    first = NormRecorder(every=3)
    train_to_file(short, target, tmp_path / "part.h5", probes=[first], record_every=4, checkpoint_every=4)
    assert first.steps == [0, 3, 6]
    rest = NormRecorder(every=3)
    notes = []
    train_to_file(spec, target, tmp_path / "part.h5", probes=[rest], resume=True, record_every=4,
                  checkpoint_every=4, notes=notes)
    assert "at epoch 7" in notes[0]                          # the last checkpoint: the end of the short run
    assert rest.restored == [0, 3, 6] and rest.steps == [0, 3, 6, 9]
    np.testing.assert_array_equal(rest.values, whole.values)          # bit for bit
    resumed = open_run(tmp_path / "part.h5", "norms")
    np.testing.assert_array_equal(resumed["norm"].values, ds["norm"].values)
    np.testing.assert_array_equal(open_run(tmp_path / "part.h5", "scalars")["loss"].values,
                                  open_run(tmp_path / "whole.h5", "scalars")["loss"].values)


def test_a_recorder_given_as_a_callback_gets_the_writer_and_is_described(tmp_path):
    spec, target = _tiny(4)
    norms = NormRecorder(every=2)
    train_to_file(spec, target, tmp_path / "run.h5", callbacks=[norms])
    assert list(open_run(tmp_path / "run.h5", "norms")["step"].values) == [0, 2]
    from spectral_probe.store import read_config

    assert [p["type"] for p in read_config(tmp_path / "run.h5")["recording"]["probes"]] == ["NormRecorder"]


def test_rows_since_is_the_run_files_layout(tmp_path):
    """Every bundled recorder's rows_since(step) equals the rows of its group in the file from that step on."""
    from spectral_probe.store import TrajectoryWriter

    spec, target = _tiny(12)
    probe, snap = Probe(every=4), NTKSnapshot(every=6)
    watch = BottleneckWatch(every=3, ntk=snap, warn=False)
    outputs = OutputRecorder(5)
    path = tmp_path / "run.h5"
    with TrajectoryWriter(path, {"x": 1}) as writer:
        scalars, checkpointer = TrainingRecorder(writer, every=5), Checkpointer(writer, every=5)
        sources = [probe, snap, watch, outputs, scalars, checkpointer]
        for source in sources:
            source.bind(writer)
        fit(spec.build_model(), target, spec.train, callbacks=sources)
    assert not scalars.bind(None) and scalars.writer is writer            # bind never replaces a writer
    for source in sources:
        stored = open_run(path, source.group)
        for since in (0, 5, 13):
            ds = source.rows_since(since)
            expected = stored.isel(step=np.flatnonzero(stored["step"].values >= since))
            if not expected.sizes["step"]:
                assert ds is None, (source.group, since)
                continue
            np.testing.assert_array_equal(ds["step"].values, expected["step"].values)
            for name in expected.data_vars:
                if "step" in expected[name].dims and name in ds:
                    assert ds[name].dims == expected[name].dims, (source.group, name)
                    np.testing.assert_allclose(ds[name].values, expected[name].values, rtol=1e-6, equal_nan=True,
                                               err_msg=f"{source.group}.{name}")
    assert list(checkpointer.rows_since(0)["step"].values) == [0, 5, 10, 12]
    assert snap.rows_since(0).attrs["n"] == 128 and watch.rows_since(0).attrs["epochs"] == 12
    assert PredictionRecorder(None).rows_since(0) is None


def test_epoch_blocks_follow_the_cadence_also_after_a_resume():
    class State:
        config = type("C", (), {"peak": 1.0})()
        losses = torch.arange(1, 101, dtype=torch.float32)
        lrs = np.full(100, 1e-4)
        start_epoch, epoch = 37, 36

    blocks = EpochBlocks(25)
    state = State()
    blocks.start(state)
    due = []
    for epoch in range(37, 100):
        state.epoch = epoch
        if blocks.due(state):
            steps, loss, psnr, lr = blocks.take(state, epoch + 1)
            due.append((int(steps[0]), int(steps[-1])))
    assert due == [(37, 49), (50, 74), (75, 99)]          # blocks end on multiples of 25, as in a fresh fit
    assert blocks.take(state, 100) is None
    np.testing.assert_allclose(psnr, -10 * np.log10(np.arange(76, 101)))
    with pytest.raises(ValueError, match="positive integer"):
        EpochBlocks(log_steps(10, 3))


def test_the_tensorboard_logger_follows_recorders_by_their_view_only(tmp_path):
    from spectral_probe.monitor import TensorBoardLogger

    with pytest.raises(TypeError, match="RunRecorder with `tensorboard` set\\), got NormRecorder"):
        TensorBoardLogger(tmp_path / "tb", [NormRecorder()])
    odd = NormRecorder()
    odd.tensorboard = "norms"
    with pytest.raises(ValueError, match="NormRecorder.tensorboard is 'norms'; TensorBoard views: scalars, "):
        TensorBoardLogger(tmp_path / "tb", [odd])
    assert not (tmp_path / "tb").exists()                 # refused before any output


def test_a_plain_callback_with_an_empty_writer_still_gets_one_with_a_deprecation_note(tmp_path):
    class Legacy(Callback):                     # how recorders were recognised before RunRecorder
        def __init__(self):
            self.writer = None

        def on_fit_start(self, state):
            self.writer.set_attrs(None, legacy=1)

    spec, target = _tiny(2)
    legacy = Legacy()
    with pytest.warns(DeprecationWarning, match="Legacy gets the run's writer .* make it a .*RunRecorder"):
        train_to_file(spec, target, tmp_path / "run.h5", probes=[legacy])
    from spectral_probe.store import open_run as _open

    assert _open(tmp_path / "run.h5").attrs["legacy"] == 1
