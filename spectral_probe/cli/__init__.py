"""Command-line interface: ``spectral-probe <command>``; see :mod:`spectral_probe.cli.main`."""

from .main import main

__all__ = ["main"]
