"""Live monitoring: TensorBoard events read back with TensorBoard's own reader, run-file export, watch figure."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from spectral_probe.bottleneck import BottleneckWatch, diagnose_run  # noqa: E402
from spectral_probe.cli.main import main  # noqa: E402
from spectral_probe.monitor import TensorBoardLogger, export_tensorboard, run_figure  # noqa: E402
from spectral_probe.monitor.spectra import TargetSpectrum, target_from_run  # noqa: E402
from spectral_probe.ntk import NTKSnapshot  # noqa: E402
from spectral_probe.training.presets import make_run  # noqa: E402
from spectral_probe.probes import Probe  # noqa: E402
from spectral_probe.training.runs import run_config, train_to_file  # noqa: E402
from spectral_probe.store import open_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 60
ALL = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def events(logdir) -> EventAccumulator:
    ea = EventAccumulator(str(logdir), size_guidance=ALL)
    ea.Reload()
    return ea


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tiny_run(epochs: int = EPOCHS):
    return make_run("siren", "synthetic:broadband", "quick", epochs=epochs, width=16, depth=2, num_samples=256,
                    train_overrides={"device": "cpu"})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One tiny SIREN run with a probe, NTK snapshots and the watch: live events, run file, exported events."""
    root = tmp_path_factory.mktemp("monitor")
    spec, target = tiny_run()
    probe, snap = Probe(every=20), NTKSnapshot(every=30)
    watch = BottleneckWatch(every=10, ntk=snap, warn=False)
    logger = TensorBoardLogger(root / "live", [probe, snap, watch], config=run_config(spec, target))
    _model, result = train_to_file(spec, target, root / "run.h5", probes=[probe, snap, watch], callbacks=[logger])
    report = export_tensorboard(root / "run.h5", root / "exported")
    return {"root": root, "result": result, "report": report, "live": events(root / "live"),
            "exported": events(root / "exported"), "run": open_run(root / "run.h5")}


def test_event_counts_equal_epochs_and_probe_steps(recorded):
    ea, run, result = recorded["live"], recorded["run"], recorded["result"]
    scalars = run["scalars"].to_dataset()
    psnr = ea.Scalars("train/psnr")
    assert len(psnr) == EPOCHS == result.epochs_run == scalars.sizes["step"]
    assert [e.step for e in psnr] == list(range(EPOCHS))
    np.testing.assert_array_equal([e.value for e in psnr], scalars.psnr.values.astype(np.float32))
    assert [e.value for e in ea.Scalars("train/lr")] == list(scalars.lr.values.astype(np.float32))
    acts = run["activations"].to_dataset()
    probe_steps = [int(s) for s in acts.step.values]
    assert probe_steps == [0, 20, 40]
    for tag in ("activations/input", "activations/layers.1.pre", "activations/output"):
        assert [e.step for e in ea.Histograms(tag)] == probe_steps, tag
    assert [e.step for e in ea.Images("spectra/cumulative")] == probe_steps
    # buckets are the probe's bins: fraction of values per bin = density x width
    hist = ea.Histograms("activations/layers.1.pre")[1].histogram_value
    cell = acts.sel(step=20, layer="layers.1", kind="pre")
    edges = cell.hist_edges.values
    np.testing.assert_allclose(hist.bucket_limit, edges[1:])
    np.testing.assert_allclose(hist.bucket, cell.hist.values * np.diff(edges), rtol=1e-6)
    assert hist.min == edges[0] and hist.max == edges[-1]
    assert sum(hist.bucket) == pytest.approx(1 - float(cell.hist_outside), abs=1e-5)
    ntk_steps = [int(s) for s in run["ntk"].to_dataset().step.values]
    assert ntk_steps == [0, 30, 60]
    assert [e.step for e in ea.Scalars("ntk/trace")] == ntk_steps == [e.step for e in ea.Images("ntk/spectrum")]
    checks = run["bottleneck"].to_dataset()
    state = ea.Scalars("bottleneck/state")
    assert [e.step for e in state] == [int(s) for s in checks.step.values] == list(range(0, EPOCHS, 10))
    assert [e.value for e in state] == [float(s) for s in checks.state.values]


def test_floor_summary_and_verdict_text(recorded):
    ea, result, path = recorded["live"], recorded["result"], recorded["root"] / "run.h5"
    floor = ea.Scalars("train/zero_output_psnr")
    assert [e.step for e in floor] == [0, EPOCHS - 1]
    assert floor[0].value == pytest.approx(result.zero_psnr, abs=1e-4)

    def text(tag):
        return [(e.step, e.tensor_proto.string_val[0].decode()) for e in ea.Tensors(f"{tag}/text_summary")]

    assert text("bottleneck/summary") == [(50, diagnose_run(path).line())]
    summary = text("run/summary")
    assert summary[0][0] == EPOCHS - 1 and f"best {result.best_psnr:.2f} dB" in summary[0][1]
    verdicts = text("bottleneck/verdict")
    assert verdicts and verdicts[0][0] == 0
    assert json.loads("\n".join(line[4:] for line in text("run/config")[0][1].splitlines()))["model"] == "siren"
    # the spectral distance of the output equals the watch's distance_output at the same epochs (both W1
    # between cumulative spectra, the watch's in float32 on the training device)
    checks = recorded["run"]["bottleneck"].to_dataset()
    dist = {e.step: e.value for e in ea.Scalars("spectral_distance/output")}
    for step in (20, 40):
        assert dist[step] == pytest.approx(float(checks.distance_output.sel(step=step)), abs=2e-3)


def test_export_writes_the_same_events(recorded):
    live, exported = recorded["live"], recorded["exported"]
    assert recorded["report"].status == "closed"
    assert recorded["report"].rows == {"epochs": EPOCHS, "probe steps": 3, "NTK snapshots": 3, "watch checks": 6}
    for kind in ("scalars", "histograms", "images", "tensors"):
        assert sorted(live.Tags()[kind]) == sorted(exported.Tags()[kind]), kind
    for tag in live.Tags()["scalars"]:
        assert [(e.step, e.value) for e in live.Scalars(tag)] == [(e.step, e.value) for e in exported.Scalars(tag)]
    for tag in live.Tags()["histograms"]:
        assert [(e.step, e.histogram_value) for e in live.Histograms(tag)] == \
            [(e.step, e.histogram_value) for e in exported.Histograms(tag)]
    for tag in live.Tags()["tensors"]:
        exported_text = [(e.step, e.tensor_proto.string_val) for e in exported.Tensors(tag)]
        if tag == "run/config/text_summary":     # the file's config also says what the run recorded and how often
            config = json.loads(exported_text[0][1][0])
            assert set(config.pop("recording")) >= {"probes", "record_every", "checkpoint_every"}
            body = json.dumps(config, indent=1, sort_keys=True)
            exported_text = [(0, ["\n".join("    " + line for line in body.splitlines()).encode()])]
        assert [(e.step, list(e.tensor_proto.string_val)) for e in live.Tensors(tag)] == \
            [(step, list(text)) for step, text in exported_text]
    for tag in live.Tags()["images"]:
        assert [(e.step, e.encoded_image_string) for e in live.Images(tag)] == \
            [(e.step, e.encoded_image_string) for e in exported.Images(tag)]


def test_own_loop(tmp_path):
    from spectral_probe.training import train_step

    import torch

    spec, target = tiny_run()
    model = spec.build_model()
    x, y = target.coords(), target.values
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    probe = Probe(every=5)
    with TensorBoardLogger(tmp_path / "tb", target=target) as tb:
        logged = []
        for epoch in range(12):
            probe.step(epoch, model, x)
            loss = train_step(model, opt, x, y)
            tb.log_epoch(epoch, loss=float(loss), lr=opt.param_groups[0]["lr"])
            logged.append(tb.log_probe(probe))
        with pytest.raises(TypeError, match="Probe, NTKSnapshot and BottleneckWatch"):
            tb.log_probe(object())
    assert logged == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    ea = events(tmp_path / "tb")
    assert len(ea.Scalars("train/psnr")) == 12 and len(ea.Scalars("train/lr")) == 12
    assert [e.step for e in ea.Histograms("activations/layers.0.pre")] == [0, 5, 10]
    assert [e.step for e in ea.Scalars("train/zero_output_psnr")] == [0, 11]


_CRASH = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from spectral_probe.training.presets import make_run
from spectral_probe.probes import Probe
from spectral_probe.training.runs import train_to_file
from spectral_probe.training import Callback

class Crash(Callback):
    def on_epoch_end(self, state):
        if state.epoch == 34:
            os.kill(os.getpid(), signal.SIGKILL)

spec, target = make_run("siren", "synthetic:broadband", "quick", epochs=100, width=16, depth=2, num_samples=256,
                        train_overrides={{"device": "cpu"}})
train_to_file(spec, target, {path!r}, probes=[Probe(every=10)], callbacks=[Crash()], record_every=10)
"""


def test_export_of_a_crashed_run(tmp_path):
    path = tmp_path / "crashed.h5"
    proc = subprocess.run([sys.executable, "-c", _CRASH.format(repo=str(REPO), path=str(path))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    scalars = open_run(path, "scalars")
    committed = scalars.sizes["step"]
    assert 0 < committed < 100
    res = cli("export", "--run", path, "--tensorboard", tmp_path / "tb")
    assert res.exit_code == 0, res.output
    assert "(crashed run)" in res.output and f"{committed} epochs" in res.output
    ea = events(tmp_path / "tb")
    assert [e.step for e in ea.Scalars("train/psnr")] == list(range(committed))
    steps = [int(s) for s in open_run(path, "activations").step.values]
    assert [e.step for e in ea.Histograms("activations/output")] == steps and steps[:3] == [0, 10, 20]


def test_train_cli_writes_events_and_watch_plot(tmp_path):
    out, tb, png = tmp_path / "run.h5", tmp_path / "tb" / "run", tmp_path / "run.png"
    res = cli("train", "--model", "siren", "--target", "synthetic:broadband", "--num-samples", 256, "--width", 16,
              "--depth", 2, "--epochs", 30, "--probe-every", 10, "--no-progress", "--device", "cpu", "--out", out,
              "--tensorboard", tb)
    assert res.exit_code == 0, res.output
    assert f"wrote TensorBoard events to {tb} (view: tensorboard --logdir {tb.parent})" in res.output
    ea = events(tb)
    assert len(ea.Scalars("train/psnr")) == 30 and [e.step for e in ea.Histograms("activations/output")] == [0, 10, 20]
    res = cli("watch", "--run", out, "--once", "--plot", png)
    assert res.exit_code == 0 and png.stat().st_size > 10_000, res.output
    # no watch, no NTK: three panels, the title says so and gives the gain over the floor
    fig = run_figure(open_run(out))
    assert len(fig.axes) == 3 and "no bottleneck watch in this run" in fig._suptitle.get_text()


def test_watch_figure(recorded):
    tree = recorded["run"]
    fig = run_figure(tree)
    assert len(fig.axes) == 4                                   # PSNR, std, cumulative spectra, NTK S(k)
    title = " ".join(fig._suptitle.get_text().split())
    assert title == " ".join(f"bottleneck watch: {diagnose_run(recorded['root'] / 'run.h5').line()}".split())
    psnr_ax, _std_ax, cum_ax, ntk_ax = fig.axes
    target = target_from_run(tree)
    assert target.zero_psnr == pytest.approx(recorded["result"].zero_psnr, abs=1e-9)
    lines = {line.get_label(): line for line in psnr_ax.lines}
    floor = next(line for label, line in lines.items() if label.startswith("zero-output floor"))
    assert np.allclose(floor.get_ydata(), target.zero_psnr)
    curves = {line.get_label(): line for line in cum_ax.lines}
    assert {"target", "output", "last hidden (layers.1.pre)"} <= set(curves)
    np.testing.assert_allclose(curves["target"].get_ydata(), target.cdf)
    assert curves["target"].get_ydata()[-1] == pytest.approx(1.0)
    assert "epoch 40" in cum_ax.get_title()
    assert [line.get_label() for line in ntk_ax.lines][:3] == ["S(k), epoch 0", "S(k), epoch 30", "S(k), epoch 60"]


def test_target_spectrum_of_a_tone():
    """A pure tone's cumulative spectrum steps from 0 to 1 at its frequency; the floor is 10 log10(2) dB."""
    n, k = 256, 32
    values = np.sin(2 * np.pi * k * np.arange(n) / n)[:, None]
    ref = TargetSpectrum(values, (n,))
    assert ref.zero_psnr == pytest.approx(10 * np.log10(2))
    step = np.flatnonzero(ref.cdf > 0.5)[0]
    assert ref.freqs[step] == pytest.approx(k / (n / 2))
    assert ref.cdf[step - 1] < 1e-12 and ref.band == pytest.approx((k / 128, k / 128))


def _full_redraw(freqs, curves, target, hidden, step) -> np.ndarray:
    """The cumulative panel drawn from scratch (draw_cumulative on a new figure of the same size)."""
    from matplotlib.figure import Figure

    from spectral_probe.monitor.plot import draw_cumulative, render_rgb

    fig = Figure(figsize=(5.5, 4.0), dpi=80)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.92)
    draw_cumulative(fig.add_subplot(), freqs, curves, target, hidden, step)
    return render_rgb(fig)


def test_cumulative_image_blits_what_a_full_redraw_draws():
    """The TensorBoard image re-rendered by blitting equals a full redraw (up to line/spine overlap order)."""
    from spectral_probe.monitor.plot import CumulativeImage

    freqs = np.linspace(0.0, 1.0, 400)[1:]
    target = freqs ** 0.5

    def curves(p):
        return {"layers.0.pre": freqs ** p, "layers.1.pre": freqs ** (2 * p), "layers.2.pre": freqs ** (3 * p),
                "output": freqs ** (0.5 * p)}

    panel = CumulativeImage()
    changed = []
    for step, p in ((0, 1.0), (100, 3.0), (200, 0.3)):
        got = panel.render(freqs, curves(p), target, "layers.2.pre", step)
        want = _full_redraw(freqs, curves(p), target, "layers.2.pre", step)
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.any(got != want, axis=-1).mean() < 0.003           # measured 0.006-0.06 % of the pixels
        changed.append(np.any(want != _full_redraw(freqs, curves(1.0), target, "layers.2.pre", 0), axis=-1).mean())
    assert changed[0] == 0.0 and min(changed[1:]) > 0.01              # the steps differ: the check can fail
    # another set of layers (or no target) draws the panel anew
    fewer = {k: v for k, v in curves(2.0).items() if k != "layers.0.pre"}
    got = panel.render(freqs, fewer, None, "layers.2.pre", 300)
    assert np.any(got != _full_redraw(freqs, fewer, None, "layers.2.pre", 300), axis=-1).mean() < 0.003


def test_export_skips_groups_in_another_layout(tmp_path):
    """A hand-written run file: its scalars are exported, an 'activations' group without the probe's layout is not."""
    from spectral_probe.store import TrajectoryWriter, Var

    path = tmp_path / "custom.h5"
    with TrajectoryWriter(path, config={"mine": 1}) as writer:
        writer.declare("scalars", variables={"loss": Var((), "f8")})
        writer.declare("activations", coords={"layer": ["a", "b"], "freq": np.arange(5) / 10},
                       variables={"psd": ("layer", "freq")})
        writer.start()
        for i in range(4):
            writer.append("scalars", i, loss=0.5 ** i)
            writer.append("activations", i, psd=np.ones((2, 5)))
    report = export_tensorboard(path, tmp_path / "tb")
    assert report.rows["epochs"] == 4 and report.rows["probe steps"] == 0
    assert "skipped group 'activations' (not the spectral-probe layout: no kind, hist, hist_edges)" in report.line()
    ea = events(tmp_path / "tb")
    assert [e.value for e in ea.Scalars("train/loss")] == [1.0, 0.5, 0.25, 0.125]
    assert not ea.Tags()["histograms"] and "train/psnr" not in ea.Tags()["scalars"]
    assert len(run_figure(open_run(path)).axes) == 3                     # the watch figure copes too


# --------------------------------------------------------------------------- bad input
def test_logdir_that_is_a_file_or_holds_events(tmp_path, recorded):
    file = tmp_path / "afile"
    file.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        TensorBoardLogger(file)
    res = cli("train", "--epochs", 2, "--no-progress", "--tensorboard", file)
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "is a file, not a folder" in res.output
    run = recorded["root"] / "run.h5"
    res = cli("export", "--run", run, "--tensorboard", recorded["root"] / "live")
    assert res.exit_code == 2 and "already holds TensorBoard event files" in res.output
    again = tmp_path / "again"
    assert cli("export", "--run", run, "--tensorboard", again, "--no-images").exit_code == 0
    res = cli("export", "--run", run, "--tensorboard", again, "--overwrite", "--no-images")
    assert res.exit_code == 0 and len(list(again.glob("events.out.tfevents.*"))) == 1


def _unwritable_folder(tmp_path) -> Path:
    """A folder this process cannot write: a read-only directory, or (as root) a read-only mount."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked
    for folder in (Path("/proc/sys"),):
        if folder.is_dir() and not os.access(folder, os.W_OK):
            return folder
    pytest.skip("root writes everywhere here and no read-only mount was found")


def test_logdir_not_writable(tmp_path, recorded):
    locked = _unwritable_folder(tmp_path)
    for args in (["export", "--run", recorded["root"] / "run.h5"], ["train", "--epochs", 2, "--no-progress"]):
        res = cli(*args, "--tensorboard", locked / "tb")
        lines = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert res.exit_code == 2 and len(lines) == 1 and "is not writable" in lines[0], res.output


def test_export_refuses_foreign_and_damaged_files(tmp_path, recorded):
    import h5py

    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    (tmp_path / "garbage.h5").write_bytes(os.urandom(4096))
    whole = (recorded["root"] / "run.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(whole[: len(whole) // 2])      # a truncated run file (used to hang)
    for name, message in (("foreign.h5", "is not a spectral-probe run file"), ("garbage.h5", "is damaged"),
                          ("cut.h5", "is damaged"), ("missing.h5", "no run file")):
        res = cli("export", "--run", tmp_path / name, "--tensorboard", tmp_path / "tb")
        lines = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert res.exit_code == 2 and len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "tb").exists()


def test_missing_extra_is_one_line(tmp_path, monkeypatch, recorded):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)        # import fails as if not installed
    for args in (["export", "--run", recorded["root"] / "run.h5"], ["train", "--epochs", 2, "--no-progress"]):
        res = cli(*args, "--tensorboard", tmp_path / "tb")
        lines = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert res.exit_code == 2 and len(lines) == 1 and 'pip install -e ".[tensorboard]"' in lines[0], res.output
    with pytest.raises(ImportError, match=r'pip install -e "\.\[tensorboard\]"'):
        TensorBoardLogger(tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


# --------------------------------------------------------------------------- slow: live follow, real server
_LIVE = """
import sys, time
sys.path.insert(0, {repo!r})
from spectral_probe.training.presets import make_run
from spectral_probe.training.runs import train_to_file
from spectral_probe.training import Callback

class Slow(Callback):
    def on_epoch_end(self, state):
        time.sleep(0.02)

spec, target = make_run("siren", "synthetic:broadband", "quick", epochs=200, width=16, depth=2, num_samples=256,
                        train_overrides={{"device": "cpu"}})
train_to_file(spec, target, {path!r}, callbacks=[Slow()], record_every=10)
"""


@pytest.mark.slow
def test_export_follows_a_live_run(tmp_path):
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, "-c", _LIVE.format(repo=str(REPO), path=str(path))])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if open_run(path, "scalars").sizes["step"]:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        updates = []
        report = export_tensorboard(path, tmp_path / "tb", follow=True, interval=0.3, timeout=240,
                                    on_update=updates.append)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    assert report.status == "closed" and report.rows["epochs"] == 200
    assert sum(1 for n in updates if n) >= 2                # rows arrived while the run was writing
    assert [e.step for e in events(tmp_path / "tb").Scalars("train/psnr")] == list(range(200))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_server_serves_the_psnr_series(recorded, tmp_path):
    """A real `tensorboard --logdir` on a free local port; the PSNR series comes back over its HTTP API."""
    port = _free_port()
    exe = Path(sys.executable).with_name("tensorboard")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tensorboard.main"]
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([*cmd, "--logdir", str(recorded["root"]), "--host", "127.0.0.1", "--port", str(port),
                             "--reload_interval", "1"], stdout=log, stderr=subprocess.STDOUT)
    query = urllib.parse.urlencode({"run": "exported", "tag": "train/psnr"})
    url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"
    series = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(series) < EPOCHS:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    series = json.loads(response.read())
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode is not None
    scalars = recorded["run"]["scalars"].to_dataset()
    assert [s for _, s, _ in series] == list(range(EPOCHS))
    np.testing.assert_allclose([v for _, _, v in series], scalars.psnr.values.astype(np.float32), rtol=1e-6)


def test_resumed_run_continues_its_curves(tmp_path):
    """train 30 epochs, then --resume to 60 into the same folder: every epoch logged once, in order."""
    args = ["train", "--model", "siren", "--target", "synthetic:broadband", "--num-samples", 256, "--width", 16,
            "--depth", 2, "--no-progress", "--out", tmp_path / "run.h5", "--tensorboard", tmp_path / "tb",
            "--checkpoint-every", 10]
    first = cli(*args, "--epochs", 30)
    assert first.exit_code == 0, first.output
    other = [tmp_path / "other.h5" if a == tmp_path / "run.h5" else a for a in args]
    again = cli(*other, "--epochs", 60)                   # a new run into that folder: refused
    assert again.exit_code == 2 and "already holds TensorBoard event files" in again.output
    resumed = cli(*args, "--epochs", 60, "--resume")
    assert resumed.exit_code == 0, resumed.output
    psnr = events(tmp_path / "tb").Scalars("train/psnr")
    assert [e.step for e in psnr] == list(range(60))
    run = open_run(tmp_path / "run.h5")["scalars"].to_dataset()
    np.testing.assert_array_equal([e.value for e in psnr], run.psnr.values.astype(np.float32))


def test_a_resumed_logger_writes_a_file_tensorboard_reads_last(tmp_path):
    """TensorBoard reads event files in name order (``...tfevents.<seconds>.<host>.<pid>.<counter>``): an
    appending event sink (the logger's, export's) started in the same second as an existing file (counter 9 -> 10 sorts first) waits
    for the next second, so the resumed curve is read after the epochs it continues."""
    import socket
    import time

    from spectral_probe.monitor.tensorboard import EventSink, event_files

    now = int(time.time())
    old = tmp_path / f"events.out.tfevents.{now}.{socket.gethostname()}.{os.getpid()}.9"
    old.write_bytes(b"")
    sink = EventSink(tmp_path, append=True, images=False)
    sink.close()
    files = event_files(tmp_path)
    assert len(files) == 2 and files[0] == old and int(files[1].name.split(".")[3]) > now
