"""The ``spectral-probe`` command group.

Subcommands live in their own modules and are imported only when invoked, so
``spectral-probe --help`` stays fast.  User errors (``ValueError``,
``TypeError``, ``OSError``) become a one-line ``error: ...`` message and exit
code 2, and so do click's usage errors (an unknown option, a bad value); anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

__all__ = ["main", "COMMANDS"]

#: command name -> ("module:attribute" of a click command, one-line help for the command list).
#: Listing the commands (``spectral-probe --help``) reads the help from here and imports nothing;
#: a bare "module:attribute" string also works (its module is then imported to list it).
COMMANDS: dict[str, str | tuple[str, str]] = {
    "watch": ("spectral_probe.cli.watch:watch", "Print (and optionally plot) a run file while a run writes it."),
    "demo": ("spectral_probe.cli.train:demo", "SIREN vs SIREN^2 on a bundled high-frequency-dominant signal."),
    "train": ("spectral_probe.cli.train:train", "Train one model on one target and print its PSNR trajectory."),
    "models": ("spectral_probe.cli.models:models", "List the architectures and their arguments."),
    "ntk": ("spectral_probe.cli.ntk:ntk", "Empirical NTK of an initialised model: eigenvalues and S(k)."),
    "probe": ("spectral_probe.cli.probe:probe", "Activation statistics of a saved state of a run file."),
    "figure": ("spectral_probe.cli.figure:figure", "Regenerate the paper's figures 1-8, 13, 14 and check their claims."),
    "diagnose": ("spectral_probe.cli.diagnose:diagnose", "psi, WINNER scales and a bottleneck forecast for a target."),
    "sweep": ("spectral_probe.cli.sweep:sweep", "Train a grid of runs and combine them into sweep.h5."),
    "export": ("spectral_probe.cli.export:export", "Write a run file's trajectories as TensorBoard event files."),
    "reproduce": ("spectral_probe.cli.reproduce:reproduce", "Recompute the paper's Table 6, or run Table 1, beside the paper's numbers."),
}

USER_ERRORS = (ValueError, TypeError, OSError)


class UserError(click.ClickException):
    """A bad input: printed on one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"error: {self.format_message()}", err=True)


def one_line_usage_error(exc: click.UsageError) -> click.ClickException:
    """A click usage error (unknown option, bad value, missing argument) as one ``error:`` line, exit code 2.

    Click prints three lines (usage, a hint, the error); the hint to ``--help`` is kept on the same line.
    A bare group's "show the help" (click >= 8.2 raises it as a usage error) is left as it is.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc
    message = " ".join(exc.format_message().split())
    if message.startswith("Error: "):
        message = message[len("Error: "):]
    where = getattr(exc, "ctx", None)
    if where is not None:
        message = f"{message} (see '{where.command_path} --help')"
    return UserError(message)


class LazyGroup(click.Group):
    """Group that imports each subcommand on first use and maps user errors to exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr = (entry if isinstance(entry, str) else entry[0]).split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the one-line helps in :data:`COMMANDS` (no subcommand is imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            entry = COMMANDS[name]
            if isinstance(entry, str):                     # no help given: import the command
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=entry[1]).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise one_line_usage_error(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise one_line_usage_error(exc) from None
        except USER_ERRORS as exc:
            message = str(exc) or exc.__class__.__name__
            if isinstance(exc, OSError) and exc.strerror:          # "[Errno 2] ..." -> the words only
                message = exc.strerror
            if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
                message = f"{message}: {exc.filename}"
            raise UserError(message.splitlines()[0]) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spectral-probe")
def main() -> None:
    """Spectral diagnostics for implicit neural representations (SIREN, SIREN^2, ...)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
