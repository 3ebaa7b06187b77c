"""One CLI vocabulary: shared option names, old spellings (one warning line), conflicts and usage errors
(one ``error:`` line, exit code 2), ``watch`` on a missing file, run states from the store."""

from __future__ import annotations

import os
import signal

import click
import pytest
from click.testing import CliRunner

from spectral_probe.cli.main import COMMANDS, main
from spectral_probe.cli.ntk import NTKOptions
from spectral_probe.cli.options import ModelOptions


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _command(name: str, sub: str | None = None) -> click.Command:
    command = main.get_command(click.Context(main), name)
    return command.commands[sub] if sub else command


def _params(name: str, args: list[str], capsys=None) -> dict:
    """The parameters a command line resolves to (deprecated spellings moved), without running it."""
    command = _command(name)
    ctx = command.make_context(name, list(args))
    return ctx.params


def _one_error(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert res.exit_code == 2 and len(errors) == 1, res.output
    assert "Usage:" not in res.output and "Traceback" not in res.output, res.output
    return errors[0]


# --------------------------------------------------------------------------- one name per concept
#: commands that build a model and the model options they share
MODEL_COMMANDS = {"train": ("model_name", "width", "depth", "s0", "s1", "first_omega", "hidden_omega", "params",
                            "seed", "device", "threads"),
                  "ntk": ("model_name", "width", "depth", "s0", "s1", "first_omega", "hidden_omega", "params",
                          "seed", "device", "threads"),
                  "diagnose": ("width", "depth", "first_omega", "seed", "device", "threads"),
                  "demo": ("seed", "device", "threads"),
                  "figure": ("seed", "device", "threads", "params", "overwrite"),
                  "sweep": ("device", "threads", "params", "overwrite"),
                  "probe": ("device", "threads", "overwrite", "run_path")}


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
def test_shared_options_have_one_spelling_type_and_default(name):
    params = {p.name: p for p in _command(name).params if not getattr(p, "hidden", False)}
    spelling = {"model_name": "--model", "params": "--set", "run_path": "--run"}
    for key in MODEL_COMMANDS[name]:
        assert key in params, (name, key)
        assert params[key].opts[0] == spelling.get(key, "--" + key.replace("_", "-")), (name, key)
    if "seed" in params:
        assert params["seed"].default == 0 and isinstance(params["seed"].type, click.IntRange)
        assert params["seed"].type.min == 0
    if "threads" in params:
        assert params["threads"].default == 0 and params["threads"].type.min == 0
    if "device" in params:
        assert params["device"].default in ("auto", None)          # sweep: [sweep] device, else auto
    if "overwrite" in params:
        assert params["overwrite"].is_flag and not params["overwrite"].secondary_opts   # off unless given


def test_every_command_that_writes_files_has_overwrite():
    for path in (("train",), ("ntk",), ("probe",), ("figure",), ("sweep",), ("export",), ("reproduce", "table1")):
        names = {p.name for p in _command(*path).params}
        assert "overwrite" in names, path


def test_target_and_run_are_options_everywhere():
    for path in (("train",), ("ntk",), ("diagnose",), ("figure",)):
        target = [p for p in _command(*path).params if p.name == "target"]
        assert target and isinstance(target[0], click.Option), path
    for path in (("ntk",), ("probe",), ("watch",), ("export",)):
        runs = [p for p in _command(*path).params if p.name == "run_path"]
        assert runs and runs[0].opts == ["--run"], path


# --------------------------------------------------------------------------- old spellings
@pytest.mark.parametrize("name,old,new,warned", [
    ("ntk", ["--n", "64"], ["--num-samples", "64"], ["--n"]),
    ("ntk", ["--grid", "8x6"], ["--grid-shape", "8x6"], ["--grid"]),
    ("ntk", ["--param", "sigma=3"], ["--set", "sigma=3"], ["--param"]),
    ("train", ["--param", "s0=10", "--param", "width=16"], ["--set", "s0=10", "--set", "width=16"], ["--param"]),
    ("diagnose", ["--omega", "300", "synthetic:low"], ["--first-omega", "300", "--target", "synthetic:low"],
     ["the positional TARGET", "--omega"]),
    ("watch", ["run.h5"], ["--run", "run.h5"], ["the positional RUN"]),
    ("export", ["run.h5", "--tensorboard", "tb"], ["--run", "run.h5", "--tensorboard", "tb"], ["the positional RUN"]),
    ("figure", ["5", "--size", "epochs=3"], ["5", "--set", "epochs=3"], ["--size"]),
])
def test_old_spelling_gives_the_new_parameters_and_one_warning(name, old, new, warned, capsys):
    new_params = _params(name, new)
    assert capsys.readouterr().err == ""
    old_params = _params(name, old)
    warnings = capsys.readouterr().err.splitlines()
    assert old_params == new_params
    assert [w.split(" is deprecated")[0] for w in warnings] == [f"warning: {s}" for s in warned], warnings
    assert all("goes in the next release; use --" in w for w in warnings), warnings


def test_omega0_keeps_its_meaning_every_omega_of_the_model(capsys):
    opts = NTKOptions.from_cli(**_params("ntk", ["--model", "siren", "--omega0", "12", "--num-samples", "8"]))
    assert opts.omega0 == 12.0 and opts.model.first_omega is None and opts.num_samples == 8
    assert "--omega0 is deprecated" in capsys.readouterr().err
    res = run("ntk", "--model", "siren", "--omega0", "12", "--num-samples", "16", "--width", "8", "--depth", "1")
    assert res.exit_code == 0, res.output
    assert "model siren 1x8 [first_omega=12, hidden_omega=12]" in res.output
    new = run("ntk", "--model", "siren", "--first-omega", "12", "--hidden-omega", "12", "--num-samples", "16",
              "--width", "8", "--depth", "1")
    assert new.exit_code == 0
    drop_times = lambda text: [line for line in text.splitlines() if "time" not in line and "warning" not in line]
    assert drop_times(new.output) == drop_times(res.output)


@pytest.mark.parametrize("args,message", [
    (["ntk", "--n", "8", "--num-samples", "8"], "--n is the old spelling of --num-samples; give --num-samples only"),
    (["ntk", "--omega0", "3", "--hidden-omega", "4"], "--omega0 is the old spelling of"),
    (["ntk", "--grid", "4x4", "--grid-shape", "4x4"], "--grid is the old spelling of --grid-shape"),
    (["train", "--param", "sigma=1", "--set", "sigma=1"], "--param is the old spelling of --set"),
    (["diagnose", "synthetic:low", "--target", "synthetic:low"], "the positional TARGET is the old spelling"),
    (["diagnose", "--omega", "3", "--first-omega", "3", "--target", "x"], "--omega is the old spelling"),
    (["watch", "a.h5", "--run", "a.h5"], "the positional RUN is the old spelling of --run FILE"),
    (["figure", "5", "--size", "epochs=3", "--set", "epochs=3"], "--size is the old spelling of --set"),
])
def test_old_and_new_spelling_together_is_one_line_exit_2(args, message):
    assert message in _one_error(run(*args))


# --------------------------------------------------------------------------- usage errors: one line
@pytest.mark.parametrize("args,message", [
    (["train", "--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0"),
    (["ntk", "--seed", "-1"], "Invalid value for '--seed'"),
    (["demo", "--seed", "-1"], "Invalid value for '--seed'"),
    (["figure", "5", "--seed", "-1"], "Invalid value for '--seed'"),
    (["diagnose", "--target", "x", "--seed", "-1"], "Invalid value for '--seed'"),
    (["train", "--threads", "-2"], "Invalid value for '--threads'"),
    (["train", "--nope"], "No such option"),
    (["trian"], "No such command 'trian'"),
    (["ntk", "--dtype", "float16"], "Invalid value for '--dtype'"),
    (["train", "--preset", "fast"], "Invalid value for '--preset': 'fast' is not one of"),
    (["figure"], "Missing argument"),
    (["probe"], "Missing option '--run'"),
    (["watch"], "missing option --run FILE"),
    (["export", "--run", "x.h5"], "Missing option '--tensorboard'"),
    (["diagnose"], "missing option --target"),
    (["reproduce", "table1", "--seeds", "0"], "Invalid value for '--seeds'"),
    (["reproduce", "table9"], "unknown table 'table9'"),
    (["sweep", "--threads", "x"], "Invalid value for '--threads'"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    line = _one_error(run(*args))
    assert message in line, line
    if not line.startswith("error: unknown table"):
        assert line.endswith("--help')"), line          # where to look


def test_model_options_map_set_onto_the_dedicated_options():
    merged, others = ModelOptions(model_name="siren", width=16, params=("depth=2 sigma=3", "first_omega=9")).arguments()
    assert merged == {"s0": None, "s1": None, "width": 16, "depth": 2, "first_omega": 9, "hidden_omega": None}
    assert others == {"sigma": 3}
    with pytest.raises(ValueError, match="conflicting values for width: --width 16 and --set width=8; give one"):
        ModelOptions(width=16, params=("width=8",)).arguments()
    with pytest.raises(ValueError, match="--set seed=3: not a model argument; use --seed"):
        ModelOptions(params=("seed=3",)).arguments()


# --------------------------------------------------------------------------- watch and run states
def test_watch_refuses_a_missing_file_at_once_unless_asked_to_wait(tmp_path):
    missing = tmp_path / "MISTYPED.h5"
    line = _one_error(run("watch", "--run", missing))
    assert f"no run file at '{missing}'" in line and "--wait" in line
    line = _one_error(run("watch", "--run", missing, "--wait", "--timeout", "0.2", "--interval", "0.05"))
    assert "after waiting 0.2 s" in line
    assert "choose one" in _one_error(run("watch", "--run", missing, "--wait", "--once"))


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run stopped by SIGINT after its third epoch (run_status 3, 'interrupted')."""
    from spectral_probe.store import STATUS_INTERRUPTED
    from spectral_probe.training import Callback, RunInterrupted, make_run, train_to_file

    class CtrlC(Callback):
        def on_epoch_end(self, state) -> None:
            if state.epoch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    path = tmp_path_factory.mktemp("interrupted") / "run.h5"
    spec, target = make_run("siren", "synthetic:broadband", "quick", width=8, depth=1, num_samples=64, epochs=20,
                            train_overrides={"device": "cpu", "progress": False})
    with pytest.raises(RunInterrupted):
        train_to_file(spec, target, path, callbacks=[CtrlC()])
    import h5py

    with h5py.File(path, "r") as h5:
        assert int(h5["run_status"][()]) == STATUS_INTERRUPTED
    return path


def test_watch_and_export_name_the_run_state_from_the_store(interrupted_run, tmp_path):
    pytest.importorskip("tensorboard")
    res = run("watch", "--run", interrupted_run, "--once")
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "run interrupted", res.output
    res = run("export", "--run", interrupted_run, "--tensorboard", tmp_path / "tb", "--no-images")
    assert res.exit_code == 0, res.output
    assert "(interrupted run)" in res.output and "unknown" not in res.output


def test_every_command_in_the_table_uses_the_vocabulary_command_class():
    from spectral_probe.cli.options import Command

    for name in COMMANDS:
        command = _command(name)
        if isinstance(command, click.Group) or name == "models":
            continue
        assert isinstance(command, Command), name


# --------------------------------------------------------------------------- --overwrite
def test_figure_refuses_to_replace_its_files_without_overwrite(tmp_path):
    (tmp_path / "fig5.h5").write_bytes(b"hours of compute")
    line = _one_error(run("figure", "5", "--preset", "test", "--out", tmp_path))
    assert f"figure file(s) {tmp_path / 'fig5.h5'} exist; pass --overwrite to replace them" in line
    assert (tmp_path / "fig5.h5").read_bytes() == b"hours of compute"


def test_sweep_overwrite_trains_finished_runs_again(tmp_path):
    args = ["sweep", "--set", "model=siren", "--set", "target=synthetic:high", "--set", "epochs=2", "--set", "width=8",
            "--set", "depth=1", "--set", "num_samples=64", "--grid", "seed=0,1", "--out", tmp_path, "--batch-models",
            "--no-progress"]
    first = run(*args)
    assert first.exit_code == 0 and "2 runs, 0 done, 2 to run" in first.output, first.output
    runs = sorted((tmp_path / "runs").glob("*.h5"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = run(*args)
    assert again.exit_code == 0 and "2 runs, 2 done, 0 to run" in again.output, again.output
    assert [p.stat().st_mtime_ns for p in runs] == stamps                       # reused, not rewritten
    over = run(*args, "--overwrite")
    assert over.exit_code == 0, over.output
    assert f"--overwrite: removed 2 finished run file(s) in {tmp_path / 'runs'}" in over.output
    assert "2 runs, 0 done, 2 to run" in over.output and "2 of 2 runs finished" in over.output
    assert all(p.stat().st_mtime_ns != s for p, s in zip(runs, stamps))


def test_threads_apply_inside_the_command_and_are_restored(monkeypatch):
    import torch

    import spectral_probe.ntk as ntk

    seen = []

    def record(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise ValueError("stop here")

    monkeypatch.setattr(ntk, "analyze_ntk", record)
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    for threads, inside in ((want, want), (0, before)):          # 0: torch's own setting is left alone
        line = _one_error(run("ntk", "--model", "siren", "--num-samples", "8", "--width", "4", "--depth", "1",
                              "--threads", threads))
        assert line == "error: stop here" and seen[-1] == inside and torch.get_num_threads() == before
