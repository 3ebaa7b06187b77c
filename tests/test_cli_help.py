"""Every ``spectral-probe <command> [<subcommand>] --help`` works without importing torch, matplotlib or xarray.

One subprocess shows the help of every command and subcommand in turn (click's own ``main``, as the
console script runs it) and records the heavy modules loaded after each one, so a command whose
module (or an option's help or choices) imports torch is named.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click

from spectral_probe.cli.main import COMMANDS, main

HEAVY = ("torch", "matplotlib", "xarray")

_CHILD = r"""
import json, sys
from spectral_probe.cli.main import main
heavy = {}
for path in json.loads(sys.argv[1]):
    try:
        main.main(args=[*path, "--help"], prog_name="spectral-probe", standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    heavy[" ".join(path)] = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
print(json.dumps(heavy))
""" % (HEAVY,)


def _command_paths() -> list[list[str]]:
    """``[["watch"], ..., ["reproduce"], ["reproduce", "table6"], ...]``: every command and subcommand."""
    ctx = click.Context(main)
    paths = []
    for name in sorted(COMMANDS):
        command = main.get_command(ctx, name)
        paths.append([name])
        if isinstance(command, click.Group):
            sub = click.Context(command, parent=ctx)
            paths += [[name, s] for s in command.list_commands(sub)]
    return paths


def test_every_command_lists_its_help_without_heavy_imports():
    paths = _command_paths()
    assert len(paths) >= len(COMMANDS) + 3 and ["reproduce", "paper"] in paths
    res = subprocess.run([sys.executable, "-c", _CHILD, json.dumps([[], *paths])], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    heavy = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(heavy) == {" ".join(p) for p in [[], *paths]}
    first = next(((cmd, mods) for cmd, mods in heavy.items() if mods), None)    # later ones inherit them
    assert first is None, f"`spectral-probe {first[0]} --help` imported {', '.join(first[1])}"


def test_help_of_a_command_is_its_own_and_names_no_deprecated_spelling():
    from click.testing import CliRunner

    for args, hidden in ((["ntk"], ("--omega0", "--n ", "--param", "--grid ")), (["train"], ("--param",)),
                         (["diagnose"], ("--omega ",)), (["figure"], ("--size",))):
        out = CliRunner().invoke(main, [*args, "--help"]).output
        assert out.startswith(f"Usage: main {args[0]}") or f"{args[0]} [OPTIONS]" in out, out
        for spelling in hidden:
            assert spelling not in out, (args, spelling)
