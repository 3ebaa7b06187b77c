"""Structure of the package: a light ``import spectral_probe`` and CLI help."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from spectral_probe.cli.main import COMMANDS, main

HEAVY = ("torch", "matplotlib", "h5py", "xarray", "scipy")


def _imported_modules(*args: str) -> set[str]:
    """Top-level names of every module ``python -X importtime ARGS`` imported."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "click" in names or "spectral_probe" in names, res.stderr[-2000:]   # the parse worked
    return names


@pytest.mark.parametrize("args", [["--help"], ["models", "--help"]])
def test_cli_help_imports_neither_torch_nor_matplotlib(args):
    imported = _imported_modules("-m", "spectral_probe", *args)
    assert "click" in imported
    assert not imported & {"torch", "matplotlib"}, sorted(imported & set(HEAVY))


def test_import_spectral_probe_is_light():
    imported = _imported_modules("-c", "import spectral_probe")
    assert "spectral_probe" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_top_level_api_resolves_lazily():
    import spectral_probe as sp

    for name in sp.__all__:
        assert getattr(sp, name) is not None, name
    from spectral_probe.bottleneck import BottleneckWatch
    from spectral_probe.ntk import NTKSnapshot
    from spectral_probe.probes import Probe
    from spectral_probe.store import TrajectoryWriter

    assert (sp.Probe, sp.NTKSnapshot, sp.BottleneckWatch, sp.TrajectoryWriter) == \
        (Probe, NTKSnapshot, BottleneckWatch, TrajectoryWriter)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sp.nope  # noqa: B018


def test_every_registered_command_resolves_and_is_listed():
    ctx = click.Context(main)
    for name, entry in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert isinstance(entry, str) or entry[1].strip(), f"{name}: empty help in COMMANDS"
    listing = main.get_help(ctx)
    for name in COMMANDS:
        assert f"  {name} " in listing


def test_version_license_and_typing_marker_in_one_place():
    import importlib.metadata
    import tomllib
    from pathlib import Path

    import spectral_probe

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "spectral_probe._version.__version__"
    assert spectral_probe.__version__ == importlib.metadata.version("spectral-probe")
    assert project["project"]["license"] == "MIT" and "MIT License" in (root / "LICENSE").read_text()
    assert (root / "spectral_probe" / "py.typed").exists()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["spectral_probe"]
