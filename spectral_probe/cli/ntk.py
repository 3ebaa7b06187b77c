"""``spectral-probe ntk``: empirical NTK, eigenvalues and S(k) of a freshly initialised model.

The grid is ``linspace(-1, 1, N)`` (1-D input).  Without ``--top-k`` the
dense kernel is formed and fully decomposed; with ``--top-k K`` the top-K
eigenpairs come from Lanczos over NTK-vector products and ``S(k)`` from the
Jacobian factors, so no ``N x N`` matrix is ever stored.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..validation import positive_float, positive_int
from .options import model_option

__all__ = ["ntk", "model_kwargs", "summary_lines"]

_DTYPES = ("float32", "float64")


def build_model(*args, **kwargs):
    """:func:`spectral_probe.models.build_model`, imported on first use (keeps ``--help`` light)."""
    from ..models import build_model as build

    return build(*args, **kwargs)


def model_kwargs(name: str, width: int, depth: int, omega0: float | None,
                 s0: float | None, s1: float | None) -> dict:
    """Map CLI options onto the keyword arguments model ``name`` accepts."""
    from ..models import model_parameters

    accepted = model_parameters(name)
    kwargs: dict = {"width": width, "depth": depth}
    if omega0 is not None:
        keys = [k for k in ("first_omega", "hidden_omega", "omega") if k in accepted]
        if not keys:
            raise ValueError(f"model {name!r} has no omega parameter; drop --omega0")
        kwargs.update({k: omega0 for k in keys})
    for key, value in (("s0", s0), ("s1", s1)):
        if value is not None:
            kwargs[key] = value
    return kwargs


def summary_lines(result, top: int = 8) -> list[str]:
    """Human-readable summary of an :class:`~spectral_probe.ntk.NTKResult`."""
    from ..ntk.spectrum import high_frequency_share

    values = result.eigen.values[:top].tolist()
    t = result.timings
    lines = [
        f"N = {result.n}, parameters = {result.n_params:,}, implementation = {result.implementation}, "
        f"dtype = {result.dtype}",
        f"wall time {t['total']:.2f} s (" + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()
                                                  if k != "total") + ")",
        f"top eigenvalues ({result.eigen.method}): " + ", ".join(f"{v:.4g}" for v in values),
        f"eigenvalues: {result.eigen.clip_report()}",
        f"S(k) energy above half-Nyquist (|k| > N/4): "
        f"{100 * high_frequency_share(result.spectrum, result.n):.3f} %",
    ]
    if result.spectrum_topk is not None:
        share = float(result.spectrum_topk.sum() / result.spectrum.sum())
        lines.append(f"top-{result.eigen.values.numel()} modes hold {100 * share:.2f} % of S(k)")
    return lines


def _plot(result, path: str) -> None:
    import matplotlib
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..ntk.spectrum import authors_convention, normalized_kernel

    n = result.n
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if result.kernel is not None:
        im = axes[0].imshow(normalized_kernel(result.kernel.double()).numpy(), cmap="RdBu_r",
                            vmin=-1, vmax=1, extent=[-1, 1, 1, -1])
        fig.colorbar(im, ax=axes[0], label="Theta / sqrt(diag diag)")
        axes[0].set_title("normalised NTK")
    else:
        axes[0].set_axis_off()
        axes[0].set_title("kernel not formed (matrix-free)")
    vals = result.eigen.values.double().numpy()
    axes[1].semilogy(range(1, len(vals) + 1), vals / vals[0])
    axes[1].set(xlabel="mode i", ylabel="lambda_i / lambda_1", title="eigenvalue decay")
    omega, s_auth = authors_convention(result.spectrum.double(), n)
    axes[2].plot(omega.numpy(), torch.log1p(s_auth).numpy())
    axes[2].set(xlabel="omega (rad/sample)", ylabel="log(1 + S(k))",
                title="S(k), authors' convention (Theta/N^2, /N, fftshift)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@click.command("ntk")
@model_option()
@click.option("--s0", type=float, default=None, help="WINNER layer-1 noise scale (siren2).")
@click.option("--s1", type=float, default=None, help="WINNER layer-2 noise scale (siren2).")
@click.option("--n", "n", type=int, default=1024, show_default=True, help="Grid points on [-1, 1].")
@click.option("--width", type=int, default=256, show_default=True)
@click.option("--depth", type=int, default=4, show_default=True)
@click.option("--omega0", type=float, default=None, help="Omega of every sine layer (model default: 30).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--implementation", default="auto", show_default=True,
              type=click.Choice(["auto", "structured", "jacrev", "ntvp"]))
@click.option("--dtype", "dtype_name", default="float32", show_default=True, type=click.Choice(_DTYPES))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:<i>.")
@click.option("--top-k", "top_k", type=int, default=None,
              help="Matrix-free: top-K eigenpairs by Lanczos, S(k) without the kernel.")
@click.option("--rtol", type=float, default=0.0, show_default=True,
              help="With --top-k: certified truncation of the no-kernel S(k) (dropped trace share).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Run file (HDF5, xarray/h5netcdf readable); results go to group 'ntk'.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG with kernel, decay, S(k).")
@click.option("--run", "run_path", type=click.Path(dir_okay=False), default=None,
              help="Analyse a saved state of this run file (its model and grid) instead of a fresh model.")
@click.option("--step", "run_step", default="last", show_default=True,
              help="With --run: a checkpoint step, 'best' or 'last'.")
def ntk(model_name, s0, s1, n, width, depth, omega0, seed, implementation, dtype_name, device, top_k,
        rtol, out, overwrite, plot, run_path, run_step):
    """Empirical NTK of an initialised model: eigenvalues and S(k) (Eqn 6)."""
    import torch

    from ..devices import resolve_device
    from ..ntk import analyze_ntk
    from ..ntk.dataset import ntk_dataset, write_dataset

    for name, value in (("n", n), ("width", width), ("depth", depth), ("top-k", top_k)):
        if value is not None:
            positive_int(value, f"--{name}")
    if n < 2:
        raise ValueError(f"--n must be at least 2, got {n}")
    positive_float(rtol, "--rtol", allow_zero=True)
    if out and Path(out).exists() and not overwrite:
        raise FileExistsError(f"--out file '{out}' exists; pass --overwrite to replace it")
    from ..validation import check_output_path

    for path, what in ((out, "--out"), (plot, "--plot")):
        if path:
            check_output_path(path, what)
    dev = resolve_device(device)
    if run_path:                 # a trained state: model and grid from the run file
        from ..posthoc import load_model, run_target

        model = load_model(run_path, run_step, device=dev, dtype=getattr(torch, dtype_name))
        x = run_target(run_path).coords(device=dev, dtype=getattr(torch, dtype_name))
        n = x.shape[0]
    else:
        kwargs = model_kwargs(model_name, width, depth, omega0, s0, s1)
        model = build_model(model_name, seed=seed, device=dev, dtype=getattr(torch, dtype_name), **kwargs)
        x = torch.linspace(-1, 1, n, device=dev, dtype=getattr(torch, dtype_name)).unsqueeze(1)
    config = {"model": model.config, "n": n, "implementation": implementation, "dtype": dtype_name,
              "device": str(dev), "top_k": top_k, "rtol": rtol,
              **({"run": str(run_path), "step": int(model.loaded_step)} if run_path else {})}
    if rtol and top_k is None:
        raise ValueError("--rtol applies to the matrix-free route; add --top-k K")
    result = analyze_ntk(model, x, implementation=implementation, top_k=top_k,
                         dtype=getattr(torch, dtype_name), rtol=rtol, config=config)
    for line in summary_lines(result):
        click.echo(line)
    if out:
        path = write_dataset(ntk_dataset(result), out, group="ntk", config=config, overwrite=overwrite)
        click.echo(f"wrote {path} (group 'ntk')")
    if plot:
        _plot(result, plot)
        click.echo(f"wrote {plot}")

