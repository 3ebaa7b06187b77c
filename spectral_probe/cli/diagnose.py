"""``spectral-probe diagnose TARGET``: psi, WINNER scales and a bottleneck forecast, before training."""

from __future__ import annotations

import click

from ..validation import positive_float
from .options import LazyChoice, preset_names

__all__ = ["diagnose"]


@click.command("diagnose")
@click.argument("target")
@click.option("--preset", default="quick", show_default=True, type=LazyChoice(preset_names),
              help="Crop and model size of the run to come.")
@click.option("--omega", "first_omega", type=float, default=None,
              help="First-layer omega of the plain SIREN [default: the preset's, 3000 x N/150000 for 1-D].")
@click.option("--width", type=int, default=None, help="Hidden width [default: the preset's].")
@click.option("--depth", type=int, default=None, help="Hidden layers [default: the preset's].")
@click.option("--num-samples", type=int, default=None, help="Samples of a 1-D target [default: the preset's].")
@click.option("--offset", type=int, default=0, show_default=True, help="First sample of a 1-D crop.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the SIREN's initialisation.")
@click.option("--window", type=int, default=4096, show_default=True,
              help="Samples of the centred window on which the NTK S(k) is computed.")
@click.option("--rtol", type=float, default=1e-6, show_default=True,
              help="Certified truncation of S(k) (0 = exact, slower).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:<i>.")
def diagnose(target, preset, first_omega, width, depth, num_samples, offset, seed, window, rtol, device):
    """Report psi, the recommended s0/s1, and whether a plain SIREN is likely to bottleneck on TARGET."""
    from ..devices import resolve_device
    from ..bottleneck import diagnose_target

    positive_float(rtol, "--rtol", allow_zero=True)
    result = diagnose_target(target, preset, first_omega=first_omega, width=width, depth=depth,
                             num_samples=num_samples, offset=offset, seed=seed, window=window, rtol=rtol,
                             device=resolve_device(device))
    for line in result.lines():
        click.echo(line)
