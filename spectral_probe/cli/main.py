"""The ``spectral-probe`` command group.

Subcommands live in their own modules and are imported only when invoked, so
``spectral-probe --help`` stays fast.  User errors (``ValueError``,
``TypeError``, ``OSError``) become a one-line ``error: ...`` message and exit
code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

__all__ = ["main", "COMMANDS", "UserError"]

#: command name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "watch": "spectral_probe.cli.watch:watch",
    "demo": "spectral_probe.cli.train:demo",
    "train": "spectral_probe.cli.train:train",
    "models": "spectral_probe.cli.train:models",
    "ntk": "spectral_probe.cli.ntk:ntk",
    "probe": "spectral_probe.cli.probe:probe",
    "figure": "spectral_probe.cli.figure:figure",
    "diagnose": "spectral_probe.cli.diagnose:diagnose",
    "sweep": "spectral_probe.cli.sweep:sweep",
}

USER_ERRORS = (ValueError, TypeError, OSError)


class UserError(click.ClickException):
    """A bad input: printed on one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"error: {self.format_message()}", err=True)


class LazyGroup(click.Group):
    """Group that imports each subcommand on first use and maps user errors to exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            message = str(exc) or exc.__class__.__name__
            if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
                message = f"{message}: {exc.filename}"
            raise UserError(message.splitlines()[0]) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spectral-probe")
def main() -> None:
    """Spectral diagnostics for implicit neural representations (SIREN, SIREN^2, ...)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
