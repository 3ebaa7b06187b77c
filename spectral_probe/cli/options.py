"""Click helpers that keep the command modules cheap to import.

``spectral-probe --help`` and ``spectral-probe <command> --help`` must not load
torch or matplotlib, so the CLI modules import heavy things inside their
functions.  Option choices and help texts that come from the library (model
names, presets) are computed when click first needs them, with
:class:`LazyChoice` and :func:`lazy_help_option`.
"""

from __future__ import annotations

from typing import Callable, Iterable

import click

__all__ = ["LazyChoice", "lazy_help_option", "model_option", "preset_names"]


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose choices come from ``factory()`` the first time click uses them."""

    def __init__(self, factory: Callable[[], Iterable[str]], case_sensitive: bool = True) -> None:
        self._factory = factory
        self._choices: tuple[str, ...] | None = None
        super().__init__((), case_sensitive)

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._choices is None:
            self._choices = tuple(self._factory())
        return self._choices

    @choices.setter
    def choices(self, value: Iterable[str]) -> None:
        value = tuple(value)
        if value:                          # click.Choice.__init__ sets the empty tuple: keep it lazy
            self._choices = value


class _LazyHelpOption(click.Option):
    """An option whose help text is ``help_factory()``, evaluated when the help is shown."""

    def __init__(self, *args, help_factory: Callable[[], str], **kwargs) -> None:
        self._help_factory = help_factory
        super().__init__(*args, **kwargs)

    @property
    def help(self) -> str | None:  # type: ignore[override]
        factory = getattr(self, "_help_factory", None)
        return factory() if factory is not None else self._help

    @help.setter
    def help(self, value: str | None) -> None:
        self._help = value


def lazy_help_option(*param_decls: str, help_factory: Callable[[], str], **attrs):
    """Like :func:`click.option`, with the help text computed when ``--help`` shows it."""
    return click.option(*param_decls, cls=_LazyHelpOption, help_factory=help_factory, **attrs)


def _model_help() -> str:
    from ..models import list_models

    return f"Architecture: {', '.join(list_models())}."


def model_option(default: str = "siren2"):
    """``--model NAME`` (stored as ``model_name``); its help lists the registered models."""
    return lazy_help_option("--model", "model_name", default=default, show_default=True,
                            help_factory=_model_help)


def preset_names() -> list[str]:
    """Names of the run presets (``--preset``)."""
    from ..training.presets import list_presets

    return list_presets()
