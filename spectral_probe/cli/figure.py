"""``spectral-probe figure``: regenerate the paper's Figures 1-8, 13 and 14, check their claims, index them."""

from __future__ import annotations

import click

from .options import (LazyChoice, command, device_option, overwrite_option, seed_option, set_option,
                      threads_option)

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


def _describe_target(recipe, target, preset) -> str | None:
    from ..figures.common import DEFAULT_AUDIO_TARGET, audio_target_spec, image_target_spec

    if not recipe.target:
        return None if target is None else f"note: figure {recipe.number} does not use --target"
    audio = audio_target_spec(target, prefer_data=recipe.target == "tetris" and preset != "test")
    used = [audio] + ([image_target_spec(target)] if "image" in recipe.target else [])
    stand_in = " (bundled stand-in for tetris.wav)" if target is None and audio == DEFAULT_AUDIO_TARGET else ""
    return f"target: {' and '.join(used)}{stand_in}"


def _size_overrides(numbers, preset, pairs) -> dict[str, dict]:
    """``--set KEY=VALUE`` pairs -> per-figure overrides; a KEY no selected figure has is an error."""
    from ..figures import figure_sizes
    from ..validation import check_value_types, parse_key_values

    given = parse_key_values(pairs, "--set")
    for n in numbers:
        check_value_types({k: v for k, v in given.items() if k in figure_sizes(n, preset)},
                          figure_sizes(n, preset), "--set")
    per_figure = {n: {k: v for k, v in given.items() if k in figure_sizes(n, preset)} for n in numbers}
    unused = sorted(set(given) - {k for o in per_figure.values() for k in o})
    if unused:
        valid = sorted({k for n in numbers for k in figure_sizes(n, preset)})
        raise ValueError(f"--set {', '.join(unused)}: no selected figure has it; valid: {', '.join(valid)}")
    return per_figure


def _existing_outputs(numbers, out, formats) -> None:
    """Refuse to replace figure files (``figN.h5`` and its images) already in ``out`` (unless ``--overwrite``)."""
    from pathlib import Path

    found = [str(Path(out) / f"fig{n}.{ext}") for n in numbers for ext in ("h5", *formats)
             if (Path(out) / f"fig{n}.{ext}").exists()]
    if found:
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise FileExistsError(f"figure file(s) {', '.join(found[:3])}{more} exist; pass --overwrite to replace them "
                              "or choose another --out")


def _check_files(files, echo) -> int:
    """``figure check FILE...``: re-run each file's claims; exit 1 when a claim fails, 2 when one could not run."""
    from ..figures.report import check_file, missing_summary, print_results

    if not files:
        raise ValueError("figure check needs one or more figure files (figN.h5)")
    worst = 0
    for path in files:
        number, results = check_file(path)
        echo(f"{path}: figure {number}, {sum(r.passed for r in results)} of {len(results)} claim check(s) pass")
        print_results(results, echo)
        line = missing_summary(path, results)
        if line:
            click.echo(f"error: {line}", err=True)
            worst = 2
        elif any(r.status == "fail" for r in results):
            worst = max(worst, 1)
    return worst


@command()
@click.argument("which", nargs=-1, required=True)
@click.option("--preset", default="quick", show_default=True, type=LazyChoice(_figure_presets, metavar="PRESET"),
              help="quick (CPU minutes), paper (the paper's sizes, GPU) or test (seconds, tiny).")
@click.option("--target", default=None,
              help="Audio file for the tetris.wav figures (2, 3, 6, 14) and/or image for Fig 6; default: "
                   "tetris.wav from $SPECTRAL_PROBE_DATA for Figs 2, 3, 14 (else the bundled synthetic:broadband), "
                   "synthetic:broadband and scikit-image's camera for Fig 6.")
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="Folder for figN.png (and other formats) and the data figN.h5; for 'index', the folder whose "
                   "README.md is updated.")
@overwrite_option("figN.h5 and figN.<format> in --out")
@click.option("--format", "formats", default="png", show_default=True,
              help="Comma-separated image formats: png, pdf, svg.")
@click.option("--dpi", type=click.IntRange(min=20), default=120, show_default=True)
@device_option()
@seed_option()
@threads_option("the parts when they run in this process (--workers 1)",
                auto="0: automatic, torch's own setting is left as it is; worker processes use one thread each")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes that compute the figures' parts; 0: one per CPU on a CPU with the quick/test "
                   "presets, else 1.")
@click.option("--parts-dir", default=None, type=click.Path(file_okay=False),
              help="Keep the figures' parts (figN.parts/) here; a later call resumes and reuses them "
                   "(default: a temporary folder).")
@set_option("Override a size of the preset (spectral_probe/figures/sizes.py), e.g. --set offset=65536; applies "
            "to the selected figures that have KEY (repeatable).", old=("--size",))
@click.option("--yes", is_flag=True, help="Run --preset paper on a CPU despite the estimated time.")
def figure(which, preset, target, out, overwrite, formats, dpi, device, seed, threads, workers, parts_dir, params,
           yes):
    """Regenerate paper figures: WHICH is any of 1 2 3 4 5 6 7 8 13 14, or all.

    Each figure's claims (the paper's words, checked on its data) are printed and stored in figN.h5.
    `figure check FILE.h5 ...` re-runs them on figure files (exit 1: a claim fails; 2: a file is not
    a figure file or lacks data a check needs).  `figure index` rewrites the table of --out/README.md
    from the figN.h5 files there.
    """
    if which[0] == "check":
        code = _check_files(which[1:], click.echo)
        if code:
            raise SystemExit(code)
        return
    if which[0] == "index":
        if len(which) > 1:
            raise ValueError(f"figure index takes no arguments (got {' '.join(which[1:])}); use --out DIR")
        from ..figures.report import update_readme

        click.echo(f"wrote {update_readme(out)}")
        return
    from ..devices import resolve_device
    from ..figures import expand_figures, make_figures
    from ..figures.common import check_target_spec
    from ..figures.report import print_results

    from ..torch_settings import torch_threads
    from ..validation import check_output_path

    numbers = expand_figures(which)
    check_output_path(out, "--out", directory=True)
    overrides = _size_overrides(numbers, preset, params)
    fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in ("png", "pdf", "svg")]
    if bad or not fmts:
        raise ValueError(f"unknown --format {formats!r}; use png, pdf, svg or a comma-separated list")
    dev = resolve_device(device)
    check_target_spec(target)
    _check_paper_on_cpu(numbers, preset, dev, yes)
    if not overwrite:
        _existing_outputs(numbers, out, fmts)
    for number in numbers:
        from ..figures import get_recipe

        recipe = get_recipe(number)
        note = _describe_target(recipe, target, preset)
        click.echo(f"figure {number} ({preset}): {recipe.title}" + (f"; {note}" if note else ""))
    rows = []

    def done(res) -> None:
        click.echo(f"figure {res.number}: wrote {', '.join(str(p) for p in [*res.figure_paths, res.data_path])} "
                   f"({res.compute_seconds:.1f} s from the start; parts {res.parts_seconds:.1f} s, "
                   f"{res.parts_cpu_seconds:.1f} s CPU; plot {res.plot_seconds:.1f} s)")
        print_results(res.checks, lambda line: click.echo(f"  {line}"), source=False)
        rows.append(res)

    with torch_threads(threads):           # the caller's count is back afterwards
        make_figures(numbers, preset, target=target, out=out, formats=fmts, dpi=dpi, device=dev, seed=seed,
                     workers=workers or None, parts_dir=parts_dir, sizes=overrides, on_event=click.echo,
                     on_figure=done)
    if len(rows) > 1:
        import resource

        click.echo("\nfigure  parts s  CPU s  plot s  claims")
        for res in sorted(rows, key=lambda r: list(map(str, numbers)).index(r.number)):
            checks = res.checks
            click.echo(f"{res.number:>6}  {res.parts_seconds:7.1f}  {res.parts_cpu_seconds:5.0f}  {res.plot_seconds:6.1f}  "
                       f"{sum(c.passed for c in checks)}/{len(checks)}")
        own = resource.getrusage(resource.RUSAGE_SELF)
        click.echo(f"{'total':>6}  {max(r.compute_seconds + r.plot_seconds for r in rows):7.1f} s wall; parts "
                   f"{sum(r.parts_cpu_seconds for r in rows):.0f} s CPU in the workers, this process "
                   f"{own.ru_utime + own.ru_stime:.0f} s CPU")
