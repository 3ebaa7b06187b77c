"""NTK engine benchmark: SIREN 4x256, float32, CPU, everything measured side by side in one run.

Sections (each runs in its own subprocess so that its peak memory is its own):

* ``kernel``   -- N=1024: structured route vs torch.func ``vmap(jacrev)`` + einsum (the PyTorch
  NTK tutorial's Jacobian contraction), our jacrev route and nngeometry's dense NTK
  (``GramMatrix`` with ``FMatDense``); relative Frobenius error of each against a float64
  brute-force Jacobian.
* ``dense``    -- N=16384: dense structured NTK + float64 ``eigh``; peak memory; then the
  matrix-free top-64 (Lanczos over structured NTK-vector products, no kernel) compared with it.
* ``spectrum`` -- N=150,000: ``S(k)`` without forming Theta (exact, and with the certified
  ``rtol=1e-6`` truncation), for SIREN 4x256 and the audio configuration SIREN^2 4x222.

Usage::

    python benchmarks/bench_ntk.py                      # all sections
    python benchmarks/bench_ntk.py --sections kernel    # one section
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

SEED = 0
WIDTH, DEPTH = 256, 4


def _siren(width=WIDTH, **kw):
    from spectral_probe.models import build_model
    return build_model("siren", width=width, depth=DEPTH, seed=SEED, **kw)


def _grid(n, dtype=torch.float32):
    return torch.linspace(-1, 1, n, dtype=dtype)[:, None]


def _time(fn, repeats):
    """Median and best wall time of ``repeats`` calls (after one warm-up), and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def tutorial_ntk(model, x1, x2):
    """PyTorch tutorial "Neural Tangent Kernels": vmap(jacrev) + einsum Jacobian contraction."""
    from torch.func import functional_call, jacrev, vmap
    params = {k: v.detach() for k, v in model.named_parameters()}

    def fnet_single(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jac1 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x1).values()]
    jac2 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x2).values()]
    return torch.stack([torch.einsum("Naf,Maf->NM", j1, j2) for j1, j2 in zip(jac1, jac2)]).sum(0)


def nngeometry_ntk(model, x):
    from nngeometry import GramMatrix
    from torch.utils.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(x), batch_size=x.shape[0])
    return GramMatrix(model, loader, function=lambda inp: model(inp)).data[0, :, 0, :]


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def section_kernel(n=1024, repeats=15):
    from spectral_probe.ntk import empirical_ntk
    model, x = _siren(), _grid(n)
    ref = tutorial_ntk(_siren().double(), x.double(), x.double())       # float64 brute force
    res = {"n": n}
    runs = {
        "structured": lambda: empirical_ntk(model, x, implementation="structured"),
        "tutorial_vmap_jacrev_einsum": lambda: tutorial_ntk(model, x, x),
        "ours_jacrev": lambda: empirical_ntk(model, x, implementation="jacrev", chunk_size=256),
    }
    try:
        import nngeometry  # noqa: F401
        runs["nngeometry_dense"] = lambda: nngeometry_ntk(model, x)
    except Exception as exc:  # noqa: BLE001 - report any import failure
        res["nngeometry_error"] = f"{type(exc).__name__}: {exc}"
    fast = [name for name in ("structured", "nngeometry_dense") if name in runs]
    times = {name: [] for name in fast}
    outs = {name: runs[name]() for name in fast}                  # warm-up
    for _ in range(repeats):                                      # interleaved: same machine load
        for name in fast:
            t0 = time.perf_counter()
            outs[name] = runs[name]()
            times[name].append(time.perf_counter() - t0)
    for name in fast:
        res[name] = {"median_s": statistics.median(times[name]), "best_s": min(times[name]),
                     "rel_fro_err_vs_f64": _rel(outs[name], ref)}
    for name in runs:
        if name not in fast:
            med, best, out = _time(runs[name], 1)
            res[name] = {"median_s": med, "best_s": best, "rel_fro_err_vs_f64": _rel(out, ref)}
    for name in runs:
        if name != "structured":
            res[name]["structured_speedup"] = res[name]["median_s"] / res["structured"]["median_s"]
            res[name]["structured_speedup_best"] = res[name]["best_s"] / res["structured"]["best_s"]
    return res


def section_dense(n=16384, k=64):
    from spectral_probe.ntk import empirical_ntk, ntk_eigh, ntk_operator, ntk_topk
    model, x = _siren(), _grid(n)
    res = {"n": n, "k": k}
    t0 = time.perf_counter()
    theta = empirical_ntk(model, x, implementation="structured")
    res["kernel_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dense = ntk_eigh(theta, float64=True)
    res["eigh_f64_s"] = time.perf_counter() - t0
    res["dense_peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    res["clip_report"] = dense.clip_report()
    top_dense = dense.values[:k].clone()
    del theta, dense
    for dtype in (torch.float32, torch.float64):
        t0 = time.perf_counter()
        op = ntk_operator(model, x, dtype=dtype)
        top = ntk_topk(op, k)
        key = f"topk_{str(dtype).replace('torch.', '')}"
        res[key] = {"s": time.perf_counter() - t0, "matvecs": top.matvecs,
                    "max_rel_err_vs_dense": float(((top.values - top_dense) / top_dense).abs().max()),
                    "lambda_1": float(top.values[0]), "lambda_k": float(top.values[-1])}
    return res


def section_spectrum(n=150_000):
    from spectral_probe.models import build_model
    from spectral_probe.ntk import spectrum_without_kernel
    res = {"n": n, "threads": torch.get_num_threads()}
    configs = {"siren_4x256": _siren(),
               "siren2_4x222_audio": build_model("siren2", width=222, depth=DEPTH, s0=3000.0, s1=0.3,
                                                 seed=SEED)}
    x = _grid(n)
    for name, model in configs.items():
        for rtol in (0.0, 1e-6):
            t0 = time.perf_counter()
            s = spectrum_without_kernel(model, x, rtol=rtol)
            res[f"{name}_rtol{rtol:g}"] = {
                "s": time.perf_counter() - t0, "pairs_used": s.pairs_used, "pairs_total": s.pairs_total,
                "dropped_mass_rel": s.dropped_mass / s.trace,
                "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}
    return res


SECTIONS = {"kernel": section_kernel, "dense": section_dense, "spectrum": section_spectrum}


def _print(name, r):
    print(f"\n== {name} ==")
    if name == "kernel":
        print(f"N={r['n']}, SIREN {DEPTH}x{WIDTH}, float32, {torch.get_num_threads()} threads")
        for key, v in r.items():
            if isinstance(v, dict):
                extra = (f"  structured {v['structured_speedup']:.1f}x faster (median), "
                         f"{v['structured_speedup_best']:.1f}x (best)") if "structured_speedup" in v else ""
                print(f"  {key:30s} median {v['median_s']:8.3f} s  best {v['best_s']:8.3f} s  "
                      f"rel.err {v['rel_fro_err_vs_f64']:.2e}{extra}")
        if "nngeometry_error" in r:
            print(f"  nngeometry skipped: {r['nngeometry_error']}")
    else:
        print(json.dumps(r, indent=1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--child", choices=list(SECTIONS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(SECTIONS[args.child]()))
        return
    for name in args.sections:
        proc = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True)
        if proc.returncode:
            print(f"\n== {name} == FAILED\n{proc.stderr[-3000:]}")
            continue
        _print(name, json.loads(proc.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
