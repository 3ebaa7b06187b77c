"""``spectral-probe figure``: regenerate the paper's Figures 1-8, 13 and 14."""

from __future__ import annotations

import click

from .options import LazyChoice

__all__ = ["figure", "human_seconds"]


def _figure_presets() -> tuple[str, ...]:
    from ..figures.sizes import FIGURE_PRESETS

    return FIGURE_PRESETS


def human_seconds(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _check_paper_on_cpu(numbers, preset, device, yes) -> None:
    from ..figures import estimate_seconds

    if preset != "paper" or device.type != "cpu":
        return
    est = estimate_seconds(numbers, preset)
    message = (f"--preset paper on a CPU: figure(s) {', '.join(numbers)} would take about {human_seconds(est)} "
               "(rough estimate); it is meant for a GPU")
    if not yes:
        raise ValueError(f"{message}; pass --yes to run anyway, or use --preset quick")
    click.echo(f"warning: {message}; continuing (--yes)", err=True)


def _describe_target(recipe, target) -> str | None:
    from ..figures.common import audio_target_spec, image_target_spec

    if not recipe.target:
        return None if target is None else f"note: figure {recipe.number} does not use --target"
    used = [audio_target_spec(target)] + ([image_target_spec(target)] if "image" in recipe.target else [])
    return f"target: {' and '.join(used)}" + ("" if target else " (no --target: bundled stand-in for tetris.wav)")


def _size_overrides(numbers, preset, pairs) -> dict[str, dict]:
    """``--size KEY=VALUE`` pairs -> per-figure overrides; a KEY no selected figure has is an error."""
    from ..figures import figure_sizes
    from .train import parse_params

    from ..validation import check_value_types

    given = parse_params(pairs)
    for n in numbers:
        check_value_types({k: v for k, v in given.items() if k in figure_sizes(n, preset)},
                          figure_sizes(n, preset), "--size")
    per_figure = {n: {k: v for k, v in given.items() if k in figure_sizes(n, preset)} for n in numbers}
    unused = sorted(set(given) - {k for o in per_figure.values() for k in o})
    if unused:
        valid = sorted({k for n in numbers for k in figure_sizes(n, preset)})
        raise ValueError(f"--size {', '.join(unused)}: no selected figure has it; valid: {', '.join(valid)}")
    return per_figure


@click.command()
@click.argument("which", nargs=-1, required=True)
@click.option("--preset", default="quick", show_default=True, type=LazyChoice(_figure_presets),
              help="quick (CPU minutes), paper (the paper's sizes, GPU) or test (seconds, tiny).")
@click.option("--target", default=None,
              help="Audio file for the tetris.wav figures (2, 3, 6, 14) and/or image for Fig 6; "
                   "default: bundled synthetic:broadband and scikit-image camera.")
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="Folder for figN.png (and other formats) and the data figN.h5.")
@click.option("--format", "formats", default="png", show_default=True,
              help="Comma-separated image formats: png, pdf, svg.")
@click.option("--dpi", type=click.IntRange(min=20), default=80, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:<i>.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="torch CPU threads; 0 keeps torch's default.  Use 1 on a machine busy with other jobs: "
                   "oversubscribed threads made the quick figures 6-20x slower (figures/README.md).")
@click.option("--size", "sizes", multiple=True, metavar="KEY=VALUE",
              help="Override a size of the preset (spectral_probe/figures/sizes.py), e.g. --size offset=65536; "
                   "applies to the selected figures that have KEY.")
@click.option("--yes", is_flag=True, help="Run --preset paper on a CPU despite the estimated time.")
def figure(which, preset, target, out, formats, dpi, device, seed, threads, sizes, yes):
    """Regenerate paper figures: WHICH is any of 1 2 3 4 5 6 7 8 13 14, or all."""
    from ..devices import resolve_device
    from ..figures import clear_run_cache, expand_figures, get_recipe, make_figure
    from ..figures.common import check_target_spec

    from ..torch_settings import torch_threads
    from ..validation import check_output_path

    numbers = expand_figures(which)
    check_output_path(out, "--out", directory=True)
    overrides = _size_overrides(numbers, preset, sizes)
    fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in ("png", "pdf", "svg")]
    if bad or not fmts:
        raise ValueError(f"unknown --format {formats!r}; use png, pdf, svg or a comma-separated list")
    dev = resolve_device(device)
    check_target_spec(target)
    _check_paper_on_cpu(numbers, preset, dev, yes)
    rows = []
    with torch_threads(threads):           # the caller's count is back afterwards
        try:
            for number in numbers:
                recipe = get_recipe(number)
                click.echo(f"figure {number} ({preset}): {recipe.title}")
                note = _describe_target(recipe, target)
                if note:
                    click.echo(f"  {note}")
                res = make_figure(number, preset, target=target, out=out, formats=fmts, dpi=dpi, device=dev, seed=seed,
                                  **overrides[number])
                click.echo(f"  wrote {', '.join(str(p) for p in [*res.figure_paths, res.data_path])} in "
                           f"{res.seconds:.1f} s (compute {res.compute_seconds:.1f} s, plot {res.plot_seconds:.1f} s)")
                rows.append((number, res.seconds))
        finally:
            clear_run_cache()
    if len(rows) > 1:
        click.echo("\nfigure  seconds")
        for number, seconds in rows:
            click.echo(f"{number:>6}  {seconds:7.1f}")
        click.echo(f"{'total':>6}  {sum(s for _, s in rows):7.1f}")
