"""``spectral-probe diagnose --target TARGET``: psi, WINNER scales and a bottleneck forecast, before training."""

from __future__ import annotations

import click

from ..validation import positive_float
from .options import command, deprecated_option, model_options, preset_option, target_option, threads_option

__all__ = ["diagnose"]


@command("diagnose")
@target_option("Audio/image file, 'camera' or synthetic:... to diagnose (required).", positional=True)
@preset_option("Crop and model size of the run to come: quick (CPU minutes) or paper (GPU).")
@model_options(model=False, winner=False, omegas="first", overrides=False,
               first_omega_help="First-layer omega of the plain SIREN [default: the preset's, 3000 x N/150000 "
                                "for 1-D].")
@deprecated_option("--omega", "omega_deprecated", to="first_omega", use="--first-omega", type=float, default=None)
@click.option("--num-samples", type=int, default=None, help="Samples of a 1-D target [default: the preset's].")
@click.option("--offset", type=int, default=0, show_default=True, help="First sample of a 1-D crop.")
@click.option("--window", type=int, default=4096, show_default=True,
              help="Samples of the centred window on which the NTK S(k) is computed.")
@click.option("--rtol", type=float, default=1e-6, show_default=True,
              help="Certified truncation of S(k) (0 = exact, slower).")
@threads_option("the NTK computation")
def diagnose(target, preset, first_omega, width, depth, num_samples, offset, seed, window, rtol, device, threads):
    """Report psi, the recommended s0/s1, and whether a plain SIREN is likely to bottleneck on --target.

    The target used to be the first argument (`diagnose tetris.wav`); that form still works for one
    release, with a warning.
    """
    from ..bottleneck import diagnose_target
    from ..devices import resolve_device
    from ..torch_settings import torch_threads

    if target is None:
        raise click.UsageError("missing option --target (the signal to diagnose, e.g. --target tetris.wav)")
    positive_float(rtol, "--rtol", allow_zero=True)
    with torch_threads(threads):
        result = diagnose_target(target, preset, first_omega=first_omega, width=width, depth=depth,
                                 num_samples=num_samples, offset=offset, seed=seed, window=window, rtol=rtol,
                                 device=resolve_device(device))
    for line in result.lines():
        click.echo(line)
