"""``spectral-probe ntk``: empirical NTK, eigenvalues, S(k) and a linearised forecast of a model.

The model and its grid come from :func:`_model_and_grid`:

* ``--target FILE|synthetic:...`` -- the target's grid and the preset's model,
  built exactly as ``spectral-probe train`` builds it (:func:`spectral_probe.training.presets.make_run`:
  SIREN^2's WINNER scales from the target's psi via Eqn 11, ``s0`` scaled by
  ``N / 150,000`` on the quick preset), unless ``--s0/--s1`` are given;
* ``--run RUN.h5 --step S|best|last`` -- a saved state of a training run
  (:func:`spectral_probe.training.posthoc.load_model`) on the grid of the target it fitted;
* otherwise ``linspace(-1, 1, N)`` (``--num-samples``) or a 2-D grid (``--grid-shape HxW``)
  and a ``--width`` x ``--depth`` model; SIREN^2 then needs ``--s0`` and ``--s1``.

The command's options are one typed object, :class:`NTKOptions`, built and checked in one place
(:meth:`NTKOptions.from_cli`); the model options are the shared group of every command that
builds a model (:class:`~spectral_probe.cli.options.ModelOptions`).

Up to 4096 samples the dense kernel is formed and fully decomposed; above
that, or with ``--top-k K``, the top-K eigenpairs come from Lanczos over
NTK-vector products and ``S(k)`` is computed without the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from ..validation import check_output_path, finite_float, positive_int
from .options import (ModelOptions, command, deprecated_option, model_options, overwrite_option, preset_option,
                      run_option, target_option, threads_option)

__all__ = ["ntk", "NTKOptions", "ModelSetup", "model_kwargs", "parse_grid"]

_DTYPES = ("float32", "float64")
#: above this many samples (and without --top-k or --dense) the matrix-free route is used
DENSE_AUTO_LIMIT = 4096
#: eigenpairs of the automatic matrix-free route
AUTO_TOP_K = 64


@dataclass
class ModelSetup:
    """What :func:`_model_and_grid` hands to the analysis besides the model and the coordinates.

    Attributes
    ----------
    grid_shape
        ``(N,)`` or ``(H, W)``.
    scales
        ``{"s0", "s1", "psi", "sources"}`` for SIREN^2 (``sources``: where each
        scale came from, for printing), empty for other models.
    description
        Lines printed before the analysis (model, scales, grid).
    train
        The :class:`~spectral_probe.training.TrainConfig` a forecast follows (``None``
        without a target).
    config
        JSON-ready description stored in ``--out``.
    sample_rate
        The target's sample rate (Hz) when it has one.
    """

    grid_shape: tuple[int, ...]
    scales: dict = field(default_factory=dict)
    description: list[str] = field(default_factory=list)
    train: object = None
    config: dict = field(default_factory=dict)
    sample_rate: float | None = None


@dataclass(frozen=True)
class NTKOptions:
    """Every option of ``spectral-probe ntk``, typed; built and checked by :meth:`from_cli`.

    Attributes
    ----------
    model
        The shared model options (``--model``, sizes, scales, omegas, ``--set``, seed, device).
    target, preset, run_path, run_step
        Where the model and grid come from (``--target``/``--preset``, ``--run``/``--step``).
    num_samples, offset, grid_shape
        The grid: samples of a 1-D target, grid or run subset; a crop or window start; ``(H, W)``.
    implementation, dtype, top_k, dense, rtol, cut
        The analysis.
    forecast, forecast_optimizer, calibrate, lanczos_steps
        The linearised forecast.
    save_eigenvectors, out, overwrite, plot
        Outputs.
    threads
        torch CPU threads (0: torch's own setting).
    omega0
        The deprecated ``--omega0`` (every omega of the model), ``None`` unless given.
    """

    model: ModelOptions = field(default_factory=ModelOptions)
    target: str | None = None
    preset: str | None = None
    run_path: str | None = None
    run_step: str = "last"
    num_samples: int | None = None
    offset: int | None = None
    grid_shape: tuple[int, int] | None = None
    implementation: str = "auto"
    dtype: str = "float32"
    top_k: int | None = None
    dense: bool = False
    rtol: float = 0.0
    cut: float = 0.5
    forecast: int | None = None
    forecast_optimizer: str = "adam"
    calibrate: int | None = None
    lanczos_steps: int = 256
    save_eigenvectors: int | None = None
    out: str | None = None
    overwrite: bool = False
    plot: str | None = None
    threads: int = 0
    omega0: float | None = None

    @classmethod
    def from_cli(cls, **params) -> "NTKOptions":
        """The options from click's parameters (deprecated spellings already moved), checked."""
        model = ModelOptions.pop(params)
        grid = parse_grid(params.pop("grid_shape", None))
        opts = cls(model=model, grid_shape=grid, **params)
        _check_options(opts)
        return opts


def parse_grid(text: str | None) -> tuple[int, int] | None:
    """``"64x48"`` -> ``(64, 48)``."""
    if text is None:
        return None
    parts = str(text).lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--grid-shape expects HxW (e.g. 32x32), got {text!r}") from None
    return positive_int(h, "--grid-shape height"), positive_int(w, "--grid-shape width")


def model_kwargs(name: str, width: int, depth: int, omega0: float | None,
                 s0: float | None, s1: float | None, in_features: int = 1) -> dict:
    """Map CLI options onto the keyword arguments model ``name`` accepts (no target)."""
    from ..models import model_parameters

    accepted = model_parameters(name)
    kwargs: dict = {"width": width, "depth": depth}
    if in_features != 1:
        kwargs["in_features"] = in_features
    kwargs.update(_omega_kwargs(name, omega0, accepted))
    for key, value in (("s0", s0), ("s1", s1)):
        if value is not None:
            kwargs[key] = value
    return kwargs


def _omega_kwargs(name: str, omega0: float | None, accepted) -> dict:
    if omega0 is None:
        return {}
    keys = [k for k in ("first_omega", "hidden_omega", "omega") if k in accepted]
    if not keys:
        raise ValueError(f"model {name!r} has no omega parameter; drop --omega0 (deprecated: use --first-omega, "
                         "--hidden-omega)")
    return {k: omega0 for k in keys}


def _fmt(kwargs: dict) -> str:
    skip = ("in_features", "out_features", "width", "depth", "s0", "s1")
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs.items()
                     if k not in skip)


def _scales_line(model_name: str, scales: dict) -> str:
    if model_name != "siren2":
        return f"WINNER scales: none ({model_name} has no weight noise)"
    parts = []
    for key in ("s0", "s1"):
        src = scales["sources"][key]
        parts.append(f"{key} = {scales[key]:.4g} ({src})")
    return "WINNER scales " + ", ".join(parts)


def _model_and_grid(opts: NTKOptions):
    """Build the model and its input grid from the command's options.

    Returns
    -------
    (model, coords, target, setup)
        ``coords`` ``(N, d)`` on the device, ``target`` a
        :class:`~spectral_probe.signals.Target` or ``None``, ``setup`` a :class:`ModelSetup`.
    """
    import torch

    from ..devices import resolve_device
    from ..models import build_model, list_models, model_parameters

    m = opts.model
    dev = resolve_device(m.device)
    dtype = getattr(torch, opts.dtype)
    if opts.run_path is not None:
        return _saved_state(opts, dev, dtype)
    name = m.model_name
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    merged, extra = m.arguments()
    omegas = {k: merged[k] for k in ("first_omega", "hidden_omega") if merged[k] is not None}
    if opts.target is not None:
        from ..training.presets import make_run

        if opts.grid_shape is not None:
            raise ValueError("--grid-shape sets the grid when there is no target; with --target the grid is the "
                             "target's (choose its length with --num-samples)")
        overrides = {**_omega_kwargs(name, opts.omega0, model_parameters(name)), **omegas, **extra}
        spec, target = make_run(name, opts.target, opts.preset or "quick", s0=merged["s0"], s1=merged["s1"],
                                width=merged["width"], depth=merged["depth"], num_samples=opts.num_samples,
                                offset=opts.offset or 0, seed=m.seed, **overrides)
        if target.channels != 1 and opts.forecast:
            raise ValueError(f"--forecast handles single-channel targets; {target.name!r} has {target.channels}")
        model = build_model(name, seed=m.seed, device=dev, dtype=dtype, **spec.model_kwargs)
        coords = target.coords(device=dev, dtype=dtype)
        kw = spec.model_kwargs
        scales = {}
        if name == "siren2":
            from_psi = (f"from the target's psi = {spec.psi:.4f} via Eqn 11, {target.winner_preset} "
                        "coefficients") if spec.psi is not None else ""
            scaled = f", x N/150,000 = {spec.freq_scale:.4g} ({spec.preset} preset crop)" \
                if spec.freq_scale != 1 else ""
            scales = {"s0": kw["s0"], "s1": kw["s1"], "psi": spec.psi, "sources": {
                "s0": "--s0" if merged["s0"] is not None else from_psi + scaled,
                "s1": "--s1" if merged["s1"] is not None else from_psi}}
        shape = "x".join(map(str, target.grid_shape))
        rate = f" at {target.sample_rate:,.6g} Hz ({target.n / target.sample_rate:.4g} s)" if target.sample_rate else ""
        desc = [f"model {name} {kw['depth']}x{kw['width']}" + (f" [{_fmt(kw)}]" if _fmt(kw) else "")
                + f", preset {spec.preset}, seed {m.seed}",
                _scales_line(name, scales),
                f"grid: target {target.name}, {shape} samples{rate}, {target.channels} channel(s)"]
        config = {"model": name, "model_kwargs": kw, "target": spec.target, "preset": spec.preset,
                  "target_kwargs": spec.target_kwargs, "psi": spec.psi, "freq_scale": spec.freq_scale}
        setup = ModelSetup(target.grid_shape, scales, desc, spec.train, config, target.sample_rate)
        return model, coords, target.to(dev), setup
    if merged["s0"] is None or merged["s1"] is None:
        if name == "siren2":
            raise ValueError("--model siren2 needs its WINNER noise scales: give --s0 and --s1, or --target "
                             "FILE|synthetic:... to derive them from the target's psi (Eqn 11); "
                             "--model siren is the noise-free baseline")
    if opts.preset is not None or opts.offset is not None:
        raise ValueError("--preset and --offset apply with --target (or --offset with --run)")
    grid = opts.grid_shape
    if grid is not None and opts.num_samples is not None:
        raise ValueError("give either --num-samples (1-D grid) or --grid-shape HxW (2-D grid), not both")
    shape = grid or (positive_int(opts.num_samples if opts.num_samples is not None else 1024, "--num-samples"),)
    if len(shape) == 1 and shape[0] < 2:
        raise ValueError(f"--num-samples must be at least 2, got {shape[0]}")
    width = positive_int(merged["width"] if merged["width"] is not None else 256, "--width")
    depth = positive_int(merged["depth"] if merged["depth"] is not None else 4, "--depth")
    kwargs = {**model_kwargs(name, width, depth, opts.omega0, merged["s0"], merged["s1"], len(shape)),
              **omegas, **extra}
    model = build_model(name, seed=m.seed, device=dev, dtype=dtype, **kwargs)
    from ..signals import grid_coords

    coords = grid_coords(shape, device=dev, dtype=dtype)
    scales = {"s0": kwargs["s0"], "s1": kwargs["s1"], "psi": None,
              "sources": {"s0": "--s0", "s1": "--s1"}} if name == "siren2" else {}
    desc = [f"model {name} {depth}x{width}" + (f" [{_fmt(kwargs)}]" if _fmt(kwargs) else "") + f", seed {m.seed}",
            _scales_line(name, scales),
            "grid: " + (f"linspace(-1, 1, {shape[0]})" if len(shape) == 1 else
                        f"{shape[0]}x{shape[1]} on [-1, 1]^2 (row-major)")]
    config = {"model": name, "model_kwargs": kwargs, "grid_shape": list(shape)}
    return model, coords, None, ModelSetup(tuple(shape), scales, desc, None, config, None)


def _saved_state(opts: NTKOptions, dev, dtype):
    """Model and grid of ``--run RUN.h5 --step S``: a checkpointed state on the target it was trained on."""
    from ..training.posthoc import load_model, run_points, run_target
    from ..store import read_config

    m = opts.model
    given = [o for o, v in (("--target", opts.target), ("--grid-shape", opts.grid_shape),
                            ("--s0", m.s0), ("--s1", m.s1), ("--width", m.width), ("--depth", m.depth),
                            ("--first-omega", m.first_omega), ("--hidden-omega", m.hidden_omega),
                            ("--omega0", opts.omega0), ("--preset", opts.preset), ("--set", m.params or None))
             if v is not None]
    if given:
        raise ValueError(f"--run takes the model and grid from the run file (--num-samples and --offset choose a "
                         f"subset of its grid); drop {', '.join(given)}")
    if opts.forecast is not None:
        raise ValueError("--forecast follows training from initialisation; with --run, use "
                         "`spectral-probe train --resume` or NTKSnapshot(forecast=...) instead")
    target = run_target(opts.run_path)
    coords, target, points = run_points(target, opts.num_samples, opts.offset, device=dev, dtype=dtype)
    model = load_model(opts.run_path, opts.run_step, device=dev, dtype=dtype)
    config = read_config(opts.run_path)
    step = int(model.loaded_step)
    name = config.get("model", "?")
    kw = dict(config.get("model_kwargs", {}))
    scales = {}
    if name == "siren2":
        scales = {"s0": kw.get("s0"), "s1": kw.get("s1"), "psi": config.get("psi"),
                  "sources": {"s0": "the run's configuration", "s1": "the run's configuration"}}
    shape = "x".join(map(str, target.grid_shape))
    desc = [f"model {name} {kw.get('depth', '?')}x{kw.get('width', '?')}" + (f" [{_fmt(kw)}]" if _fmt(kw) else "")
            + f", state at step {step} of run file {opts.run_path} (--step {opts.run_step})",
            _scales_line(name, scales) if scales or name != "siren2" else "WINNER scales: see the run's configuration",
            f"grid: target {target.name}, {shape} samples, {target.channels} channel(s): {points}"]
    out_config = {"model": name, "model_kwargs": kw, "run": str(opts.run_path), "step": step, "points": points,
                  **({"subset": target.meta["subset"]} if "subset" in target.meta else {})}
    setup = ModelSetup(target.grid_shape, scales, desc, None, out_config, target.sample_rate)
    return model, coords, target.to(dev), setup


def _check_options(opts: NTKOptions) -> None:
    m = opts.model
    for name in ("top_k", "forecast", "save_eigenvectors", "calibrate", "num_samples"):
        if getattr(opts, name) is not None:
            positive_int(getattr(opts, name), "--" + name.replace("_", "-"))
    for name in ("width", "depth"):
        if getattr(m, name) is not None:
            positive_int(getattr(m, name), "--" + name)
    finite_float(opts.rtol, "--rtol", low=0.0)
    finite_float(opts.cut, "--cut", low=0.0, high=1.0)
    for key in ("s0", "s1"):
        if getattr(m, key) is not None:
            finite_float(getattr(m, key), "--" + key, low=0.0)
    positive_int(opts.lanczos_steps, "--lanczos-steps")
    if opts.rtol and opts.top_k is None:
        raise ValueError("--rtol applies to the matrix-free route; add --top-k K")
    if opts.forecast is not None and opts.target is None:
        raise ValueError("--forecast needs --target: the forecast follows the residual y - f(x) on the target")
    if opts.calibrate is not None and opts.forecast is None:
        raise ValueError("--calibrate fits the forecast's learning-rate scale; add --forecast EPOCHS")
    if opts.save_eigenvectors is not None and opts.out is None:
        raise ValueError("--save-eigenvectors K stores eigenvectors in the --out file; add --out FILE.h5")
    if opts.dense and opts.top_k is not None:
        raise ValueError("--dense and --top-k choose opposite routes; give one")
    if opts.out is not None:
        from pathlib import Path

        if Path(opts.out).exists() and not opts.overwrite:
            raise FileExistsError(f"--out file '{opts.out}' exists; pass --overwrite to replace it")
        check_output_path(opts.out, "--out")
    if opts.plot is not None:
        check_output_path(opts.plot, "--plot")


def _calibrated_scale(model, target, setup, calibrate, optimizer, measure):
    """Train a copy of the model for ``calibrate`` epochs and fit the forecast's learning-rate scale."""
    import copy

    from ..ntk.empirical import count_parameters
    from ..ntk.forecast import fit_lr_scale, lr_schedule
    from ..training.loop import fit

    cfg = setup.train
    run = fit(copy.deepcopy(model), target, cfg, epochs=calibrate, progress=False, restore_best=False)
    lrs = lr_schedule(cfg.lr, calibrate, cfg.lr_step, cfg.lr_gamma)
    return fit_lr_scale(measure, lrs, run.history["psnr"], n_params=count_parameters(model),
                        fit_epochs=calibrate, optimizer=optimizer)


@command("ntk")
@model_options(sizes=("256 without --target, else the preset's", "4 without --target, else the preset's"))
@deprecated_option("--omega0", "omega0", to=("first_omega", "hidden_omega"), use="--first-omega X --hidden-omega X",
                   keep=True, type=float, default=None)
@target_option("Audio/image file or synthetic:...: its grid, the preset's model and (siren2) its WINNER scales.")
@preset_option("With --target: the training preset the model follows (quick: CPU minutes, paper: GPU) "
               "[default: quick].", default=None)
@click.option("--num-samples", type=int, default=None,
              help="Samples: without --target, grid points on [-1, 1] [default: 1024]; with --target, of a 1-D "
                   "target; with --run, that many of the run's samples, evenly spaced (or a window from --offset).")
@deprecated_option("--n", "n_deprecated", to="num_samples", use="--num-samples", type=int, default=None)
@click.option("--offset", type=int, default=None,
              help="With --target: first sample of a 1-D crop [default: 0]; with --run --num-samples: first sample "
                   "of a window.")
@click.option("--grid-shape", default=None, metavar="HxW", help="Without --target: a 2-D grid on [-1, 1]^2.")
@deprecated_option("--grid", "grid_deprecated", to="grid_shape", use="--grid-shape HxW", default=None, metavar="HxW")
@click.option("--implementation", default="auto", show_default=True,
              type=click.Choice(["auto", "structured", "jacrev", "ntvp"]))
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(_DTYPES))
@threads_option("the kernel and its eigendecomposition")
@click.option("--top-k", "top_k", type=int, default=None,
              help=f"Matrix-free: top-K eigenpairs by Lanczos, S(k) without the kernel "
                   f"(automatic, K={AUTO_TOP_K}, above {DENSE_AUTO_LIMIT} samples).")
@click.option("--dense", is_flag=True, help=f"Form the dense kernel even above {DENSE_AUTO_LIMIT} samples.")
@click.option("--rtol", type=float, default=0.0, show_default=True,
              help="With --top-k: certified truncation of the no-kernel S(k) (dropped trace share).")
@click.option("--cut", type=float, default=0.5, show_default=True,
              help="Frequency cut of the high-frequency share, as a fraction of Nyquist.")
@click.option("--forecast", type=int, default=None, metavar="EPOCHS",
              help="With --target: linearised-dynamics forecast of PSNR over EPOCHS (Eqns 3-4).")
@click.option("--forecast-optimizer", default="adam", show_default=True, type=click.Choice(["adam", "gd"]),
              help="How the learning rate maps to the linear model's time (see README).")
@click.option("--calibrate", type=int, default=None, metavar="EPOCHS",
              help="Fit the forecast's learning-rate scale to EPOCHS epochs of an actual run.")
@click.option("--lanczos-steps", type=int, default=256, show_default=True,
              help="Forecast on the matrix-free route: Lanczos steps from the residual.")
@click.option("--save-eigenvectors", type=int, default=None, metavar="K",
              help="Store the top-K eigenvectors (eigvec, sample) in --out.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="HDF5 file (netCDF4: xarray/h5py): groups 'ntk' and, with --forecast, 'forecast'.")
@overwrite_option()
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG: kernel, eigenvalue decay and S(k) on log-log axes (+ target spectrum, forecast).")
@run_option("Analyse a saved state of this run file (its model and grid) instead of a fresh model.")
@click.option("--step", "run_step", default="last", show_default=True,
              help="With --run: a checkpoint step (0: the initial state), 'best' or 'last'.")
def ntk(**params):
    """Empirical NTK of a model (at initialisation, or a run file's saved state): eigenvalues, S(k), forecast."""
    from ..torch_settings import torch_threads

    opts = NTKOptions.from_cli(**params)
    with torch_threads(opts.threads):
        model, coords, target, setup = _model_and_grid(opts)
        _analyse(model, coords, target, setup, opts)


def _analyse(model, coords, target, setup, opts) -> None:
    import torch

    from ..ntk import analyze_ntk

    from ..ntk.empirical import check_parameters

    check_parameters(model)              # a diverged checkpoint fails here, in one line
    n = coords.shape[0]
    top_k = opts.top_k
    auto = top_k is None and n > DENSE_AUTO_LIMIT and not opts.dense
    if auto:
        top_k = AUTO_TOP_K
    if top_k is not None and top_k >= n:
        raise ValueError(f"--top-k must be below N = {n}, got {top_k}")
    if top_k is None:                     # refuse a dense kernel that cannot fit before printing anything
        from ..ntk.analysis import dense_bytes
        from ..ntk.memory import check_memory

        check_memory(dense_bytes(n, getattr(torch, opts.dtype)),
                     f"a dense {n}x{n} NTK and its eigendecomposition", device=coords.device,
                     alternative="use the matrix-free route: --top-k K (Lanczos top-K eigenpairs, "
                                 "S(k) without forming the kernel)")
    from ..sizes import check_ntk               # the per-sample factors, before anything is printed

    check_ntk(n, [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)],
              device=coords.device)
    for line in setup.description:
        click.echo(line)
    if auto:
        click.echo(f"note: N = {n} > {DENSE_AUTO_LIMIT}: matrix-free route (top-{top_k} eigenpairs by Lanczos, "
                   "S(k) without the kernel); --top-k K sets K, --dense forces the dense kernel")
    config = {**setup.config, "n": n, "implementation": opts.implementation, "dtype": opts.dtype,
              "device": str(coords.device), "top_k": top_k, "rtol": opts.rtol}
    result = analyze_ntk(model, coords, implementation=opts.implementation, top_k=top_k,
                         dtype=getattr(torch, opts.dtype), rtol=opts.rtol, config=config,
                         grid_shape=setup.grid_shape)
    available = result.eigen.values.numel() if result.eigen.vectors is not None else 0
    if opts.save_eigenvectors is not None and opts.save_eigenvectors > available:
        raise ValueError(f"--save-eigenvectors {opts.save_eigenvectors} exceeds the {available} eigenpairs "
                         "computed" + (" (raise --top-k)" if top_k is not None else ""))
    from ..ntk.report import forecast_lines, summary_lines

    for line in summary_lines(result, cutoff=opts.cut, sample_rate=setup.sample_rate, target=target):
        click.echo(line)
    forecast = _forecast(model, coords, target, setup, result, opts) if opts.forecast else None
    if forecast is not None:
        cfg = setup.train
        lr_text = f", lr {cfg.lr:g} with StepLR({cfg.lr_step}, {cfg.lr_gamma:g})"
        for line in forecast_lines(forecast, zero_psnr=target.zero_psnr(), lr_text=lr_text):
            click.echo(line)
    _outputs(result, target, forecast, setup, opts)


def _forecast(model, coords, target, setup, result, opts):
    from ..ntk.empirical import count_parameters
    from ..ntk.forecast import linearised_forecast, lr_schedule
    from ..ntk.measure import lanczos_measure, measure_from_eigen
    from ..ntk.operator import ntk_operator
    import torch

    with torch.no_grad():
        out = model(coords)
    residual = (target.values.double() - out.double()).cpu()
    if result.eigen.method == "eigh" and result.eigen.vectors is not None:
        measure = measure_from_eigen(result.eigen, residual)
    else:
        op = ntk_operator(model, coords, implementation=opts.implementation)
        measure = lanczos_measure(op, residual, opts.lanczos_steps)
    cfg = setup.train
    scale = 1.0
    if opts.calibrate:
        scale = _calibrated_scale(model, target, setup, opts.calibrate, opts.forecast_optimizer, measure)
        click.echo(f"learning-rate scale fitted on the first {opts.calibrate} epochs of an actual run: {scale:.4g}")
    lrs = lr_schedule(cfg.lr, opts.forecast, cfg.lr_step, cfg.lr_gamma)
    return linearised_forecast(measure, lrs, n_params=count_parameters(model), optimizer=opts.forecast_optimizer,
                               lr_scale=scale, peak=cfg.peak, grid_shape=setup.grid_shape)


def _outputs(result, target, forecast, setup, opts) -> None:
    out, plot = opts.out, opts.plot
    if out:
        from ..ntk.dataset import ntk_dataset, write_dataset

        groups = {"ntk": ntk_dataset(result, eigenvectors=opts.save_eigenvectors or 0, cutoff=opts.cut)}
        if forecast is not None:
            groups["forecast"] = forecast.to_dataset()
        write_dataset(groups, out, config=result.config, overwrite=opts.overwrite)
        names = " and ".join(f"'{g}'" for g in groups)
        click.echo(f"wrote {out} (group {names}); open with xarray.open_dataset({out!r}, engine='h5netcdf', "
                   f"group='ntk') or h5py.File({out!r})['ntk/eigenvalues']")
    else:
        click.echo("nothing saved: add --out FILE.h5 to keep eigenvalues, S(k) and the kernel "
                   "(--save-eigenvectors K adds eigenvectors)")
    if plot:
        from ..ntk.plot import plot_ntk, save

        label = setup.config.get("model", opts.model.model_name)
        save(plot_ntk(result, target=target, forecast=forecast, cutoff=opts.cut, label=label), plot)
        click.echo(f"wrote {plot}")
