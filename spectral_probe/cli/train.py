"""``spectral-probe train`` and ``demo``."""

from __future__ import annotations

import math
import os
import warnings

import click

from ..validation import check_output_path, nonnegative_int, positive_int
from .options import (ModelOptions, command, device_option, model_options, overwrite_option, preset_option,
                      seed_option, target_option, threads_option)

__all__ = ["train", "demo", "train_options", "resume_command", "build_run"]


def train_options(func):
    """Options shared by ``train`` and the commands that train: the model group, target, preset, training."""
    options = [
        model_options(),
        target_option("Audio/image file, 'camera', or synthetic:low|high|broadband[:cut]|S1..S8.",
                      default="synthetic:broadband"),
        preset_option(),
        click.option("--epochs", type=int, default=None, help="Override the preset's epochs."),
        click.option("--num-samples", type=int, default=None, help="Samples of a 1-D target to fit."),
        click.option("--offset", type=int, default=0, show_default=True, help="First sample of a 1-D crop."),
        click.option("--lr", type=float, default=None, help="Adam learning rate (default 1e-4)."),
        click.option("--batch-size", type=int, default=None, help="Samples per step (default: full batch)."),
        click.option("--compile/--no-compile", "compile_", default=None,
                     help="torch.compile the loss (~1.5x faster epochs after a few seconds of compilation); "
                          "default: on for --preset paper, off for quick."),
        threads_option("the training"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_run(model: ModelOptions, target, preset, epochs, num_samples, offset, lr, batch_size, compile_=None,
              progress=True):
    """Turn CLI options into ``(RunSpec, Target)``."""
    from ..devices import resolve_device
    from ..training.presets import make_run

    resolve_device(model.device)  # fail fast on an unavailable device
    positive_int(num_samples, "--num-samples", allow_none=True)
    nonnegative_int(offset, "--offset")
    positive_int(epochs, "--epochs", allow_none=True)
    positive_int(batch_size, "--batch-size", allow_none=True)
    merged, overrides = model.arguments()
    model.check_types(merged, overrides)
    train_overrides = {"device": model.device, "progress": progress}
    if compile_ is not None:
        train_overrides["compile"] = compile_
    if lr is not None:
        train_overrides["lr"] = lr
    if batch_size is not None:
        train_overrides["batch_size"] = batch_size
    for key in ("first_omega", "hidden_omega"):
        if merged[key] is not None:
            overrides[key] = merged[key]
    return make_run(model.model_name, target, preset, s0=merged["s0"], s1=merged["s1"], width=merged["width"],
                    depth=merged["depth"], epochs=epochs, num_samples=num_samples, offset=offset, seed=model.seed,
                    train_overrides=train_overrides, **overrides)


def describe_run(spec, target) -> str:
    kw = spec.model_kwargs
    extra = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()
                      if k not in ("in_features", "out_features", "width", "depth"))
    shape = "x".join(map(str, target.grid_shape))
    return (f"target {target.name} ({shape} samples, {target.channels} channel(s)); "
            f"model {spec.model} {kw['depth']}x{kw['width']}" + (f" [{extra}]" if extra else "")
            + f"; preset {spec.preset}, {spec.train.epochs} epochs")


def run_training(spec, target, out=None, overwrite=False, probes=(), callbacks=(), *, resume=False,
                 checkpoint_every=None, salvage=False):
    """Fit one run (writing ``out`` when given), echoing notes; returns ``(model, FitResult)``."""
    from ..training.runs import train_to_file

    notes = _EchoedNotes()                  # resume point, stale lock: said when they happen
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            model, result = train_to_file(spec, target, out, overwrite=overwrite, resume=resume, probes=probes,
                                          callbacks=callbacks, checkpoint_every=checkpoint_every, notes=notes,
                                          salvage=salvage)
    finally:
        for note in [*spec.notes, *(str(w.message) for w in caught)]:
            click.echo(f"note: {note}", err=True)
    return model, result


class _EchoedNotes(list):
    """A list of notes that prints each one as it is added."""

    def append(self, note) -> None:
        click.echo(f"note: {note}", err=True)
        super().append(note)

    def extend(self, notes) -> None:
        for note in notes:
            self.append(note)


def resume_command(ctx: click.Context) -> str:
    """The command line that continues this ``train`` run: its options, without ``--overwrite``, plus ``--resume``."""
    import shlex

    parts = ["spectral-probe", ctx.info_name or "train"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in ("overwrite", "resume", "salvage"):
            continue
        value = ctx.params.get(param.name)
        if value is None or value == param.default or (param.multiple and not value):
            continue
        if param.is_flag and param.secondary_opts:
            parts.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                parts.append(param.opts[0])
        else:
            for item in (value if param.multiple else [value]):
                parts += [param.opts[0], str(item)]
    return shlex.join([*parts, "--resume"])


def make_probes(probe_every: int | None, ntk_every: int | None, watch_every: int | None = None,
                early_stop: bool = False) -> list:
    """Activation probe, NTK snapshots and bottleneck watch requested on the command line."""
    probes = []
    if probe_every:
        from ..probes import Probe

        probes.append(Probe("*", every=probe_every))
    if ntk_every:
        from ..ntk import NTKSnapshot

        probes.append(NTKSnapshot(every=ntk_every))
    if watch_every:
        from ..bottleneck import BottleneckWatch

        probes.append(BottleneckWatch(every=watch_every, early_stop=early_stop, warn=False,
                                      ntk=probes[-1] if ntk_every else None,
                                      on_change=lambda v: click.echo(f"watch: {v.line()}", err=True)))
    return probes


@command()
@train_options
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Run file (HDF5) for the trajectory, prediction and probes.")
@overwrite_option()
@click.option("--resume", is_flag=True,
              help="Continue the --out run (killed, interrupted or finished) up to --epochs from its last checkpoint.")
@click.option("--salvage", is_flag=True,
              help="With --resume: when a checkpoint the run keeps is damaged, continue from the newest intact "
                   "one before it (the epochs after it are recomputed) instead of refusing.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Epochs between checkpoints in --out (default: about 20 per run, at least every 50 epochs); "
                   "also at the end and on an interrupt.")
@click.option("--probe-every", type=click.IntRange(min=1), default=None,
              help="Record activation statistics every N epochs (needs --out to keep them).")
@click.option("--ntk-every", type=click.IntRange(min=1), default=None,
              help="Record the NTK spectrum S(k) every N epochs.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--watch", is_flag=True, help="Watch for the spectral bottleneck (states, onset, suggestion).")
@click.option("--watch-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Epochs between bottleneck checks (with --watch).")
@click.option("--early-stop", is_flag=True, help="Stop once the run is in the spectral bottleneck (implies --watch).")
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(), default=None, metavar="DIR",
              help="Also write TensorBoard events into the run folder DIR (needs the tensorboard extra).")
@click.pass_context
def train(ctx, out, overwrite, resume, salvage, checkpoint_every, probe_every, ntk_every, progress, watch, watch_every,
          early_stop, tensorboard_dir, **options):
    """Train one model on one target and print its PSNR trajectory.

    With --out, SIGINT (Ctrl-C) and SIGTERM stop after the current epoch, save a
    checkpoint and print the --resume command; a SIGKILL loses at most the epochs
    since the last checkpoint.
    """
    from ..training.checkpoint import default_checkpoint_every
    from ..training.interrupts import RunInterrupted
    from ..store.filelock import RunLockedError, describe_holder

    if resume and overwrite:
        raise ValueError("--resume continues --out and --overwrite replaces it; choose one")
    if resume and out is None:
        raise ValueError("--resume needs --out (the run file to continue)")
    if salvage and not resume:
        raise ValueError("--salvage applies to --resume (continue --out from its newest intact checkpoint); "
                         "add --resume")
    if out is not None:
        if os.path.exists(out) and not (overwrite or resume) and not os.path.isdir(out):
            raise FileExistsError(f"run file '{out}' exists; pass --overwrite to replace it or --resume to continue it")
        check_output_path(out, "--out", overwrite=overwrite or resume)
        holder = describe_holder(out)
        if holder is not None:
            raise RunLockedError(16, f"run file '{out}' is being written by {holder}; wait for it to end, "
                                     "stop it, or choose another --out")
        if resume and not os.path.exists(out):
            click.echo(f"note: no run file at '{out}' yet; starting it", err=True)
    if tensorboard_dir is not None:
        from .export import tensorboard_ready

        tensorboard_ready(tensorboard_dir, append=resume)
    threads = options.pop("threads")
    model = ModelOptions.pop(options)
    spec, target = build_run(model, **options, progress=progress)
    if watch or early_stop:
        _check_watch_cadence(watch_every, spec.train.epochs, early_stop)
    click.echo(describe_run(spec, target))
    probes = make_probes(probe_every, ntk_every, watch_every if watch or early_stop else None, early_stop)
    callbacks = []
    if tensorboard_dir is not None:
        from ..monitor import TensorBoardLogger
        from ..training.runs import run_config

        callbacks.append(TensorBoardLogger(tensorboard_dir, probes, config=run_config(spec, target), append=resume))
    every = checkpoint_every or default_checkpoint_every(spec.train.epochs)
    from ..torch_settings import torch_threads

    try:
        with torch_threads(threads):
            _model, result = run_training(spec, target, out, overwrite, probes, callbacks, resume=resume,
                                          checkpoint_every=every, salvage=salvage)
    except RunInterrupted as exc:
        click.echo(str(exc), err=True)
        if not exc.complete:
            click.echo(f"continue with: {resume_command(ctx)}", err=True)
        ctx.exit(exc.exit_code)
    click.echo(result.summary())
    if watch or early_stop:
        click.echo(f"bottleneck watch: {probes[-1].summary().line()}")
    if out is not None:
        from ..training.runs import checkpoint_summary

        click.echo(f"wrote {out}: {checkpoint_summary(out)}; the saved prediction is the "
                   f"{'best' if spec.train.restore_best else 'final'} state (step {result.state_step}); "
                   f"open with spectral_probe.open_run or `spectral-probe watch --run {out}`")
    if tensorboard_dir is not None:
        from ..monitor.tensorboard import view_hint

        click.echo(f"wrote TensorBoard events to {tensorboard_dir} ({view_hint(tensorboard_dir)})")


def _check_watch_cadence(every: int, epochs: int, early_stop: bool) -> None:
    """One line when the watch cannot judge the run: ``--watch-every`` beyond the epochs; a note when the run
    ends before the earliest bottleneck flag (``--early-stop`` can then never act)."""
    option = "--early-stop" if early_stop else "--watch"
    if every > epochs:
        raise ValueError(f"--watch-every {every} is larger than the run's {epochs} epochs: {option} would check only "
                         f"the initial state; use a --watch-every below {epochs} (default 10)")
    from ..bottleneck import Thresholds

    t = Thresholds()
    first = t.warmup + t.trend_window
    first = -(-first // every) * every + (t.patience - 1) * every       # first due check, then the streak
    if early_stop and first >= epochs:
        click.echo(f"note: --early-stop can act from epoch {first} on (warm-up {t.warmup} + trend window "
                   f"{t.trend_window} epochs, then {t.patience} checks every {every}); this run has {epochs} epochs",
                   err=True)


def _verdict(result) -> str:
    gain = result.best_psnr - result.zero_psnr
    if not math.isfinite(gain):
        return "diverged"
    return "stuck at the zero-output floor (spectral bottleneck)" if gain < 1.0 else f"+{gain:.1f} dB over the floor"


@command()
@click.option("--epochs", type=click.IntRange(min=1), default=300, show_default=True)
@device_option()
@seed_option()
@threads_option("the training")
@click.option("--progress/--no-progress", default=True, show_default=True)
def demo(epochs, device, seed, threads, progress):
    """SIREN vs SIREN^2 on a bundled high-frequency-dominant signal (no data needed)."""
    from ..torch_settings import torch_threads
    from ..training.presets import make_run

    target = "synthetic:broadband"
    click.echo("Fitting a broadband signal with no energy below 0.15 x Nyquist "
               "(psi ~ tetris.wav), quick preset.")
    rows = []
    for name in ("siren", "siren2"):
        spec, loaded = make_run(name, target, "quick", epochs=epochs, seed=seed,
                                train_overrides={"device": device, "progress": progress})
        click.echo(describe_run(spec, loaded))
        with torch_threads(threads):
            _model, result = run_training(spec, loaded)
        rows.append((name, result))
    click.echo("\nmodel    best PSNR  final PSNR  zero floor  epochs/s  verdict")
    for name, r in rows:
        click.echo(f"{name:<8} {r.best_psnr:8.2f}  {r.final_psnr:10.2f}  {r.zero_psnr:10.2f}  "
                   f"{r.epochs_per_second:8.1f}  {_verdict(r)}")
