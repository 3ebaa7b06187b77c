"""NTK engine benchmark: SIREN 4x256, float32, CPU, everything measured side by side in one run.

Sections (each runs in its own subprocess so that its peak memory and thread setting are its own):

* ``kernel``   -- N=1024 and 4096, torch with 1 and 2 threads: the structured route against an
  independent plain layerwise route (:func:`plain_layerwise`: hooks and one backward written here, one
  full ``(G G^T) * (A A^T + 1)`` per layer, no tiles, no symmetry) and nngeometry's dense NTK
  (``GramMatrix`` with ``FMatDense``), and at 2 threads the same default call inside
  ``set_num_threads(1)``; repeats interleaved, medians and ratios.
* ``accuracy`` -- N=1024: every route's relative Frobenius error against a float64 brute-force
  Jacobian, plus torch.func ``vmap(jacrev)`` + einsum (the PyTorch NTK tutorial) and our jacrev route.
* ``ntvp``     -- peak resident memory of the ntvp kernel against its stated budget, N=256-2048.
* ``dense``    -- N=16384: dense structured NTK + float64 ``eigh``; peak memory; then the
  matrix-free top-64 (Lanczos over structured NTK-vector products, no kernel) compared with it.
* ``spectrum`` -- N=150,000: ``S(k)`` without forming Theta (exact, and with the certified
  ``rtol=1e-6`` truncation), for SIREN 4x256 and the audio configuration SIREN^2 4x222.

Usage::

    python benchmarks/bench_ntk.py                      # all sections
    python benchmarks/bench_ntk.py --sections kernel    # the speed targets, one command (markdown table)
    python benchmarks/bench_ntk.py --sections kernel --kernel-n 1024 --threads 2 --repeats 21
"""

from __future__ import annotations

import argparse
import json
import os
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


def plain_layerwise(model, x):
    """An independent plain layerwise route: per ``nn.Linear`` one full ``(G G^T) * (A A^T + 1)``.

    Written here from the formula, sharing no code with spectral_probe's capture: forward hooks keep
    each linear layer's input ``A`` and output ``z``; one backward of ``sum(f)`` gives ``G = df/dz`` row
    by row (each sample's output depends only on its own row); the bias contributes ``G G^T``.  No tiles,
    no symmetry, no thread guard.
    """
    from torch import nn
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    inputs, outputs = [], []

    def keep(module, args, out):
        inputs.append(args[0].detach())
        outputs.append(out)

    handles = [m.register_forward_hook(keep) for m in linears]
    try:
        with torch.enable_grad():
            f = model(x)
            grads = torch.autograd.grad(f.sum(), outputs)
    finally:
        for h in handles:
            h.remove()
    total = None
    for a, g, m in zip(inputs, grads, linears):
        gram = a @ a.T
        if m.bias is not None:
            gram += 1.0
        term = (g @ g.T).mul_(gram)
        total = term if total is None else total.add_(term)
    return total


def structured_one_thread(model, x):
    """The default call inside ``torch.set_num_threads(1)`` (what the thread guard should match)."""
    from spectral_probe.ntk import empirical_ntk
    from spectral_probe.torch_settings import torch_threads
    with torch_threads(1):
        return empirical_ntk(model, x, implementation="structured")


def section_accuracy(n=1024):
    from spectral_probe.ntk import empirical_ntk
    model, x = _siren(), _grid(n)
    ref = tutorial_ntk(_siren().double(), x.double(), x.double())       # float64 brute force
    res = {"n": n, "threads": torch.get_num_threads()}
    runs = {
        "structured": lambda: empirical_ntk(model, x, implementation="structured"),
        "plain_layerwise": lambda: plain_layerwise(model, x),
        "tutorial_vmap_jacrev_einsum": lambda: tutorial_ntk(model, x, x),
        "ours_jacrev": lambda: empirical_ntk(model, x, implementation="jacrev", chunk_size=256),
    }
    try:
        import nngeometry  # noqa: F401
        runs["nngeometry_dense"] = lambda: nngeometry_ntk(model, x)
    except Exception as exc:  # noqa: BLE001 - report any import failure
        res["nngeometry_error"] = f"{type(exc).__name__}: {exc}"
    for name, fn in runs.items():
        med, best, out = _time(fn, 1)
        res[name] = {"s": med, "rel_fro_err_vs_f64": _rel(out, ref)}
    return res


def section_kernel_one(n, threads, repeats):
    """One (N, threads) cell of the kernel section, in its own process."""
    torch.set_num_threads(threads)
    from spectral_probe.ntk import empirical_ntk
    model, x = _siren(), _grid(n)
    runs = {"structured": lambda: empirical_ntk(model, x, implementation="structured"),
            "plain_layerwise": lambda: plain_layerwise(model, x)}
    if threads > 1:
        runs["structured_1thread"] = lambda: structured_one_thread(model, x)
    try:
        import nngeometry  # noqa: F401
        runs["nngeometry"] = lambda: nngeometry_ntk(model, x)
    except Exception as exc:  # noqa: BLE001
        nng_error = f"{type(exc).__name__}: {exc}"
    else:
        nng_error = None
    ref = runs["structured"]()
    for fn in runs.values():                                   # warm-up
        fn()
    times = {name: [] for name in runs}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):                                   # interleaved: the same machine load for all
        for name, fn in runs.items():
            t0 = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
        load.append(os.getloadavg()[0])
    res = {"n": n, "threads": torch.get_num_threads(), "repeats": repeats, "load_min": min(load),
           "load_max": max(load), "nngeometry_error": nng_error}
    for name in runs:
        res[name] = {"median_s": statistics.median(times[name]), "best_s": min(times[name])}
    # per repeat, the ratio of each route to the structured one measured right next to it
    for name in runs:
        if name != "structured":
            ratios = [t / s for t, s in zip(times[name], times["structured"])]
            res[name]["ratio_median"] = statistics.median(ratios)
    res["agree"] = _rel(plain_layerwise(model, x), ref)
    del out
    return res


KERNEL_N = (1024, 4096)
KERNEL_THREADS = (1, 2)


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


def section_ntvp(ns=(256, 512, 1024, 2048)):
    """Peak RSS of the ntvp kernel (SIREN 2x16, float32) against its stated budget, one child per N."""
    child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "_ntvp_child.py")
    rows = []
    for n in ns:
        proc = subprocess.run([sys.executable, child, str(n)], capture_output=True, text=True)
        if proc.returncode:
            rows.append({"n": n, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"rows": rows}


SECTIONS = {"kernel": None, "accuracy": section_accuracy, "dense": section_dense, "spectrum": section_spectrum,
            "ntvp": section_ntvp}


def _print_kernel(cells):
    print("\n== kernel: SIREN 4x256, float32, CPU; medians of interleaved repeats ==")
    print("| N | threads | structured | plain layerwise | nngeometry | plain / structured | "
          "nngeometry / structured | structured / same at 1 thread | load (1-min avg) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in cells:
        if "error" in r:
            print(f"| {r['n']} | {r['threads']} | FAILED: {r['error']} | | | | | | |")
            continue
        nng, one = r.get("nngeometry"), r.get("structured_1thread")
        print(f"| {r['n']} | {r['threads']} | {r['structured']['median_s']:.3f} s | "
              f"{r['plain_layerwise']['median_s']:.3f} s | " + (f"{nng['median_s']:.3f} s" if nng else "n/a") +
              f" | {r['plain_layerwise']['ratio_median']:.2f}x | " +
              (f"{nng['ratio_median']:.2f}x" if nng else "n/a") + " | " +
              (f"{1 / one['ratio_median']:.2f}x" if one else "-") + f" | {r['load_min']:.1f}-{r['load_max']:.1f} |")
        if r.get("nngeometry_error"):
            print(f"  nngeometry skipped: {r['nngeometry_error']}")


def _print(name, r):
    print(f"\n== {name} ==")
    if name == "accuracy":
        print(f"N={r['n']}, SIREN {DEPTH}x{WIDTH}, float32, {r['threads']} threads, one call each")
        for key, v in r.items():
            if isinstance(v, dict):
                print(f"  {key:30s} {v['s']:8.3f} s  rel.err {v['rel_fro_err_vs_f64']:.2e}")
        if "nngeometry_error" in r:
            print(f"  nngeometry skipped: {r['nngeometry_error']}")
    elif name == "ntvp":
        print("| N | chunk | stated budget | measured peak RSS | measured / stated |")
        print("| --- | --- | --- | --- | --- |")
        for row in r["rows"]:
            if "error" in row:
                print(f"| {row['n']} | failed: {row['error']} | | | |")
            else:
                print(f"| {row['n']} | {row['chunk']} | {row['need'] / 2**20:.1f} MiB | "
                      f"{row['measured'] / 2**20:.1f} MiB | {row['measured'] / row['need']:.2f} |")
    else:
        print(json.dumps(r, indent=1))


def _child(args):
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode:
        return None, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--kernel-n", nargs="+", type=int, default=list(KERNEL_N))
    ap.add_argument("--threads", nargs="+", type=int, default=list(KERNEL_THREADS))
    ap.add_argument("--repeats", type=int, default=None,
                    help="Interleaved repeats per kernel cell (default 15 at N <= 1024, 5 above).")
    ap.add_argument("--child", choices=[k for k in SECTIONS if k != "kernel"], help=argparse.SUPPRESS)
    ap.add_argument("--kernel-cell", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(SECTIONS[args.child]()))
        return
    if args.kernel_cell:
        print(json.dumps(section_kernel_one(*args.kernel_cell)))
        return
    print(f"uptime load before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs")
    for name in args.sections:
        if name == "kernel":
            cells = []
            for n in args.kernel_n:
                for threads in args.threads:
                    reps = args.repeats or (15 if n <= 1024 else 5)
                    r, err = _child([sys.executable, __file__, "--kernel-cell", str(n), str(threads), str(reps)])
                    cells.append(r if r else {"n": n, "threads": threads, "error": err.strip().splitlines()[-1]})
            _print_kernel(cells)
            continue
        r, err = _child([sys.executable, __file__, "--child", name])
        if r is None:
            print(f"\n== {name} == FAILED\n{err}")
            continue
        _print(name, r)
    print(f"\nuptime load after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
