"""The CLI's vocabulary: every option that more than one command takes is defined here, once.

``spectral-probe --help`` and ``spectral-probe <command> --help`` must not load
torch, matplotlib or xarray, so this module and the command modules import
heavy things inside their functions.  Option choices that come from the
library (presets) are computed when click first needs them to check a value
(:class:`LazyChoice`); their help names the choices without importing them.

One name per concept, in every command:

===================================  ==========================================================
``--model``, ``--width``, ``--depth``  the architecture and its sizes (:func:`model_options`)
``--s0``, ``--s1``                     WINNER noise scales (siren2)
``--first-omega``, ``--hidden-omega``  first-layer and hidden-layer omega
``--seed``, ``--device``               initialisation seed (>= 0), ``auto|cpu|cuda|cuda:<i>``
``--set KEY=VALUE``                    an override (model argument, figure size, sweep key)
``--target``, ``--run``                the target to fit, the run file to read
``--overwrite``                        replace existing outputs (without it they are refused)
``--threads N``                        torch CPU threads; 0 (default): automatic
===================================  ==========================================================

Old spellings (``--param``, ``ntk --omega0``/``--n``/``--grid HxW``, ``diagnose --omega``, positional
targets and run files, ``figure --size``) are :class:`DeprecatedOption` / :class:`DeprecatedArgument`
parameters: hidden from ``--help``, they still work for one release with a one-line ``warning:`` on
stderr, and given together with the new spelling they are a one-line usage error (exit code 2).
Commands that have them are built with :func:`command` (a :class:`Command`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import click

__all__ = ["LazyChoice", "lazy_help_option", "model_option", "preset_names", "Command", "command",
           "DeprecatedOption", "DeprecatedArgument", "deprecated_option", "model_options", "ModelOptions",
           "seed_option", "device_option", "threads_option", "overwrite_option", "set_option", "run_option",
           "target_option", "preset_option", "THREADS_AUTO", "MODEL_OPTIONS", "NOT_MODEL_ARGUMENTS"]


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose choices come from ``factory()`` the first time a value is checked.

    ``--help`` shows ``metavar`` (the help text names the choices), so it imports nothing.
    """

    def __init__(self, factory: Callable[[], Iterable[str]], case_sensitive: bool = True,
                 metavar: str = "NAME") -> None:
        self._factory = factory
        self._choices: tuple[str, ...] | None = None
        self._metavar = metavar
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

    def get_metavar(self, *args, **kwargs) -> str:  # noqa: D102 - click API (param[, ctx])
        return self._metavar if self._choices is None else super().get_metavar(*args, **kwargs)

    def to_info_dict(self) -> dict:  # noqa: D102 - click API
        return {"param_type": "Choice", "name": "choice", "choices": None, "case_sensitive": self.case_sensitive}


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
    """Like :func:`click.option`, with the help text computed when ``--help`` shows it (keep it light)."""
    return click.option(*param_decls, cls=_LazyHelpOption, help_factory=help_factory, **attrs)


def preset_names() -> list[str]:
    """Names of the run presets (``--preset``)."""
    from ..training.presets import list_presets

    return list_presets()


# --------------------------------------------------------------------------- deprecated spellings
class DeprecatedOption(click.Option):
    """An old spelling of an option: hidden from ``--help``, resolved by :class:`Command` after parsing.

    Parameters
    ----------
    to
        Parameter name(s) of the new spelling.  Giving both spellings is a usage error.
    use
        How to write it now, for the warning (e.g. ``"--num-samples"``).
    keep
        Keep the value under the old parameter's own name (the command interprets it) instead of
        moving it to ``to``.
    """

    def __init__(self, *param_decls, to: str | tuple[str, ...], use: str, keep: bool = False, **attrs) -> None:
        attrs.setdefault("hidden", True)
        super().__init__(*param_decls, **attrs)
        self.to = (to,) if isinstance(to, str) else tuple(to)
        self.use, self.keep = use, keep

    @property
    def spelling(self) -> str:
        return self.opts[0]


class DeprecatedArgument(click.Argument):
    """An old positional form (``watch RUN``) of an option (``--run``); see :class:`DeprecatedOption`."""

    def __init__(self, param_decls, to: str, use: str, **attrs) -> None:
        attrs.setdefault("required", False)
        super().__init__(param_decls, **attrs)
        self.to, self.use, self.keep = (to,), use, False

    @property
    def spelling(self) -> str:
        return f"the positional {self.make_metavar_text()}"

    def make_metavar_text(self) -> str:
        return (self.metavar or self.name or "").upper().strip("[]")


def deprecated_option(*param_decls: str, to: str | tuple[str, ...], use: str, keep: bool = False, **attrs):
    """``@deprecated_option("--n", "n_old", to="num_samples", use="--num-samples", type=int)``."""
    return click.option(*param_decls, cls=DeprecatedOption, to=to, use=use, keep=keep, **attrs)


def _given(ctx: click.Context, name: str) -> bool:
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def resolve_deprecated(ctx: click.Context, params) -> None:
    """Move each deprecated spelling's value to its new name, warning on stderr; both given: usage error."""
    names = {p.name: p for p in params}
    for param in params:
        if not isinstance(param, (DeprecatedOption, DeprecatedArgument)):
            continue
        if not _given(ctx, param.name):
            if not param.keep:
                ctx.params.pop(param.name, None)
            continue
        both = [t for t in param.to if _given(ctx, t)]
        if both:
            new = "/".join(names[t].opts[0] for t in both)
            raise click.UsageError(f"{param.spelling} is the old spelling of {param.use}; give {new} only, not both",
                                   ctx=ctx)
        click.echo(f"warning: {param.spelling} is deprecated and goes in the next release; use {param.use}",
                   err=True)
        if not param.keep:
            value = ctx.params.pop(param.name)
            ctx.params[param.to[0]] = value


class Command(click.Command):
    """A command whose deprecated spellings (:class:`DeprecatedOption`, :class:`DeprecatedArgument`) are
    resolved right after parsing, before the command runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        resolve_deprecated(ctx, self.get_params(ctx))
        return rest


def command(name: str | None = None, **attrs):
    """:func:`click.command` with :class:`Command` (deprecated spellings resolved)."""
    attrs.setdefault("cls", Command)
    return click.command(name, **attrs)


# --------------------------------------------------------------------------- shared options
def _stack(options: list) -> Callable:
    def apply(func):
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def seed_option(help: str = "Seed of the initialisation (and of the data order).") -> Callable:
    """``--seed N`` (N >= 0, default 0)."""
    return click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=help)


def device_option(default: str | None = "auto", help: str = "auto, cpu, cuda or cuda:<i>.") -> Callable:
    """``--device auto|cpu|cuda|cuda:<i>``."""
    return click.option("--device", default=default, show_default=default is not None, help=help)


#: what ``--threads 0`` (the default) means wherever the computation runs in the command's own process
THREADS_AUTO = "0: automatic, torch's own setting (its default or what OMP_NUM_THREADS says) is left as it is"


def threads_option(of: str = "the computation", auto: str = THREADS_AUTO) -> Callable:
    """``--threads N`` (default 0: automatic): torch CPU threads ``of`` ...; ``auto`` says what 0 does."""
    return click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                        help=f"torch CPU threads of {of}; {auto}.")


def overwrite_option(what: str = "the --out file") -> Callable:
    """``--overwrite``: replace existing outputs; without it a command refuses to replace them."""
    return click.option("--overwrite", is_flag=True, help=f"Replace {what} if it exists (else it is refused).")


def set_option(help: str, old: tuple[str, ...] = ("--param",)) -> Callable:
    """``--set KEY=VALUE`` (stored as ``params``), with the old spellings ``old`` deprecated."""
    options = [click.option("--set", "params", multiple=True, metavar="KEY=VALUE", help=help)]
    options += [deprecated_option(spelling, spelling.lstrip("-") + "_deprecated", to="params", use="--set",
                                  multiple=True, metavar="KEY=VALUE") for spelling in old]
    return _stack(options)


def run_option(help: str, required: bool = False, positional: bool = False, type=None) -> Callable:
    """``--run FILE`` (stored as ``run_path``); ``positional``: the old ``RUN`` argument, deprecated (the
    command then checks that one of them was given)."""
    type = type or click.Path(dir_okay=False)
    must = required and not positional
    extra = {"required": True} if must else {"default": None}     # click >= 8.2 ignores required with a default
    options = [click.option("--run", "run_path", type=type, metavar="FILE", help=help, **extra)]
    if positional:
        options.insert(0, click.argument("run_positional", cls=DeprecatedArgument, to="run_path", use="--run FILE",
                                         metavar="[RUN]", type=type))
    return _stack(options)


def target_option(help: str, default: str | None = None, positional: bool = False) -> Callable:
    """``--target SPEC``; ``positional``: the old ``TARGET`` argument, deprecated."""
    options = [click.option("--target", default=default, show_default=default is not None, help=help)]
    if positional:
        options.insert(0, click.argument("target_positional", cls=DeprecatedArgument, to="target",
                                         use="--target SPEC", metavar="[TARGET]"))
    return _stack(options)


def preset_option(help: str = "quick (CPU minutes) or paper (GPU).", default: str | None = "quick") -> Callable:
    return click.option("--preset", default=default, show_default=default is not None,
                        type=LazyChoice(preset_names, metavar="PRESET"), help=help)


def _model_help() -> str:
    """The ``--model`` help: the registered names when the registry is loaded already (it needs torch, so
    ``--help`` never loads it for this), else a pointer to ``spectral-probe models``."""
    import sys

    registry = sys.modules.get("spectral_probe.models.registry")
    if registry is None:
        return "Architecture: siren, siren2, finer, ... (`spectral-probe models` lists them)."
    return f"Architecture: {', '.join(registry.list_models())}."


def model_option(default: str = "siren2") -> Callable:
    """``--model NAME`` (stored as ``model_name``); see :func:`_model_help`."""
    return lazy_help_option("--model", "model_name", default=default, show_default=True, metavar="NAME",
                            help_factory=_model_help)


def model_options(*, model: bool = True, sizes: tuple[str, str] = ("the preset's", "the preset's"),
                  winner: bool = True, omegas: str = "both", overrides: bool = True,
                  first_omega_help: str | None = None) -> Callable:
    """The options of a command that builds a model, with the same names and meanings everywhere.

    Parameters
    ----------
    model
        Add ``--model``.
    sizes
        What ``--width`` and ``--depth`` default to, for their help.
    winner
        Add ``--s0``/``--s1``.
    omegas
        ``"both"``: ``--first-omega`` and ``--hidden-omega``; ``"first"``: ``--first-omega`` only.
    overrides
        Add ``--set KEY=VALUE`` (other model arguments; ``--param`` deprecated).
    """
    options = [model_option()] if model else []
    options += [click.option("--width", type=int, default=None, help=f"Hidden width [default: {sizes[0]}]."),
                click.option("--depth", type=int, default=None,
                             help=f"Number of hidden (activation) layers [default: {sizes[1]}].")]
    if winner:
        options += [click.option("--s0", type=float, default=None, help="WINNER layer-1 noise scale (siren2)."),
                    click.option("--s1", type=float, default=None, help="WINNER layer-2 noise scale (siren2).")]
    options.append(click.option("--first-omega", type=float, default=None,
                                help=first_omega_help or "First-layer omega [default: the model's or preset's]."))
    if omegas == "both":
        options.append(click.option("--hidden-omega", type=float, default=None,
                                    help="Hidden-layer omega [default: the model's]."))
    if overrides:
        options.append(set_option("Other model arguments, e.g. --set sigma=10 (see `spectral-probe models`); "
                                  "repeatable."))
    options += [seed_option(), device_option()]
    return _stack(options)


#: model arguments with their own option: ``--set s0=10`` is the same as ``--s0 10``
MODEL_OPTIONS = {"s0": "--s0", "s1": "--s1", "width": "--width", "depth": "--depth",
                 "first_omega": "--first-omega", "hidden_omega": "--hidden-omega"}
#: settings that are not model arguments, with the option to use instead
NOT_MODEL_ARGUMENTS = {**{k: f"not a model argument; use --{k.replace('_', '-')}" for k in
                          ("epochs", "num_samples", "offset", "lr", "batch_size", "seed", "device", "model", "target",
                           "preset")},
                       "in_features": "set by the target's dimensions; drop it",
                       "out_features": "set by the target's channels; drop it"}


@dataclass(frozen=True)
class ModelOptions:
    """The model options of one command line (:func:`model_options`), mapped onto model arguments in one place.

    Attributes
    ----------
    model_name
        ``--model``.
    width, depth, s0, s1, first_omega, hidden_omega
        The dedicated options (``None``: not given).
    params
        ``--set KEY=VALUE`` items.
    seed, device
        ``--seed``, ``--device``.
    """

    model_name: str = "siren2"
    width: int | None = None
    depth: int | None = None
    s0: float | None = None
    s1: float | None = None
    first_omega: float | None = None
    hidden_omega: float | None = None
    params: tuple[str, ...] = ()
    seed: int = 0
    device: str = "auto"

    FIELDS = ("model_name", "width", "depth", "s0", "s1", "first_omega", "hidden_omega", "params", "seed", "device")

    @classmethod
    def pop(cls, options: dict) -> "ModelOptions":
        """Take this group's keys out of a command's ``**options`` (the rest stay)."""
        return cls(**{k: options.pop(k) for k in cls.FIELDS if k in options})

    def arguments(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(dedicated, others)``: the six dedicated values (``--set`` filling the ones not given) and the
        other ``--set`` model arguments.

        Raises
        ------
        ValueError
            A ``--set`` key is not a model argument, or conflicts with its dedicated option (the values
            themselves are checked where the model is built).
        """
        from ..validation import merge_key_values, parse_key_values

        given = {k: getattr(self, k) for k in MODEL_OPTIONS}
        return merge_key_values(given, parse_key_values(self.params, "--set"), option_names=MODEL_OPTIONS,
                                refuse=NOT_MODEL_ARGUMENTS, source="--set")

    def check_types(self, merged: dict, others: dict) -> None:
        """Refuse ``--set`` values whose kind does not fit the model's argument (``sigma=abc``)."""
        from ..models import list_models, model_parameters
        from ..validation import check_value_types

        if self.model_name in list_models():
            check_value_types({**{k: v for k, v in merged.items() if v is not None}, **others},
                              model_parameters(self.model_name), "--set")
