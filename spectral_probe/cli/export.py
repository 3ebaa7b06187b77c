"""``spectral-probe export --run run.h5 --tensorboard DIR``: browse any run file in TensorBoard."""

from __future__ import annotations

from pathlib import Path

import click

from .options import command, overwrite_option, run_option

__all__ = ["export"]


def tensorboard_ready(logdir, what: str = "--tensorboard", overwrite: bool = False, append: bool = False) -> None:
    """Check the ``tensorboard`` extra and the output folder before any work (one-line errors)."""
    from ..monitor.tensorboard import check_logdir, require_tensorboard
    from .main import UserError

    try:
        require_tensorboard()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    check_logdir(logdir, what, overwrite=overwrite, append=append)


@command("export")
@run_option("Run file to export: finished, crashed or live (required).", positional=True,
            type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tensorboard", "logdir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="TensorBoard run folder to write (view with `tensorboard --logdir` on its parent).")
@overwrite_option("the event files already in DIR")
@click.option("--follow", is_flag=True, help="Keep exporting while the run is being written, until it ends.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between polls (--follow).")
@click.option("--timeout", type=float, default=None, help="Stop following after this many seconds.")
@click.option("--images/--no-images", default=True, show_default=True,
              help="Render the cumulative-spectrum and NTK S(k) images.")
def export(run_path: Path | None, logdir: Path, overwrite: bool, follow: bool, interval: float,
           timeout: float | None, images: bool) -> None:
    """Write the TensorBoard events of the --run file (finished, crashed or live) into DIR.

    The events are those `spectral-probe train --tensorboard DIR` writes during a run:
    loss, PSNR and learning rate per epoch with the zero-output floor, activation histograms,
    cumulative spectra against the target's, NTK S(k), and the bottleneck watch's state,
    onset and suggestion.  Damaged and foreign files are refused.  The run file used to be
    the first argument (`export run.h5 ...`); that form still works for one release, with a warning.
    """
    from ..monitor.export import export_tensorboard
    from ..validation import positive_float

    if run_path is None:
        raise click.UsageError("missing option --run FILE (the run file to export)")
    run = Path(run_path)
    positive_float(interval, "--interval")
    if timeout is not None:
        positive_float(timeout, "--timeout")
    tensorboard_ready(logdir, overwrite=overwrite)
    if not run.exists():
        raise FileNotFoundError(f"no run file at '{run}'")

    def progress(new: int) -> None:
        if follow and new:
            click.echo(f"exported {new} new row(s)")

    report = export_tensorboard(run, logdir, follow=follow, interval=interval, timeout=timeout, images=images,
                                overwrite=overwrite, on_update=progress)
    from ..monitor.tensorboard import view_hint

    click.echo(f"{report.line()} ({view_hint(logdir)})")
