"""Exploration: where the paper-size SIREN^2 epoch spends its time on a GPU, and which loop variants cut it.

Not a benchmark of the package's API (bench_training.py is): plain loops over one model, so that each
variant changes one thing.  All variants train the same initialisation on the same data; full float32
(TF32 off) unless the name says tf32.  Timing: CUDA events around ``--epochs`` epochs after a warm-up,
``--repeats`` interleaved repeats, medians.

    python benchmarks/gpu_step_explore.py --device cuda --epochs 100 --repeats 3
    python benchmarks/gpu_step_explore.py --device cpu --size quick --epochs 3 --repeats 1   # smoke test
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import torch

from spectral_probe.torch_settings import float32_matmul
from spectral_probe.devices import resolve_device
from spectral_probe.training.presets import make_run


def flops_per_epoch(n: int, width: int, depth: int, in_features: int = 1) -> float:
    """Matrix-product FLOP of one full-batch epoch (forward 2nk per product, backward twice that)."""
    macs = n * (in_features * width + (depth - 1) * width * width + width)
    return 3 * 2 * macs


def pad_width(model, width_to: int):
    """A copy of an INR whose hidden width is zero-padded to ``width_to`` (same function, same training)."""
    model = copy.deepcopy(model)
    layers = [layer.linear for layer in model.layers] + [model.head]
    with torch.no_grad():
        for i, lin in enumerate(layers):
            out_f, in_f = lin.weight.shape
            new_out = width_to if i < len(layers) - 1 else out_f
            new_in = in_f if i == 0 else width_to
            w = torch.zeros(new_out, new_in, dtype=lin.weight.dtype, device=lin.weight.device)
            w[:out_f, :in_f] = lin.weight
            b = torch.zeros(new_out, dtype=lin.bias.dtype, device=lin.bias.device)
            b[:out_f] = lin.bias
            lin.weight = torch.nn.Parameter(w)
            lin.bias = torch.nn.Parameter(b)
            lin.in_features, lin.out_features = new_in, new_out
    return model


class Variant:
    def __init__(self, name, model, x, y, *, compile_mode=None, fused=False, graph=False, sync=False,
                 lr=1e-4):
        self.name, self.model, self.x, self.y = name, model, x, y
        self.sync = sync
        self.graph_enabled = graph
        kw = {"fused": True} if fused else {}
        if graph:
            kw["capturable"] = True
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, **kw)

        def loss_fn(model, x, y):
            return torch.mean((model(x) - y) ** 2)

        self.loss_fn = torch.compile(loss_fn, mode=compile_mode) if compile_mode else loss_fn
        self.graph = None
        self.static_loss = None
        self.best = torch.full((), math.inf, device=x.device)
        self.losses = []

    def _epoch(self):
        self.opt.zero_grad(set_to_none=not self.graph_enabled)
        loss = self.loss_fn(self.model, self.x, self.y)
        loss.backward()
        self.opt.step()
        torch.minimum(self.best, loss.detach(), out=self.best)
        return loss

    def warmup(self, epochs=3):
        if not self.graph_enabled:
            for _ in range(epochs):
                self._epoch()
            return
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(epochs):
                self._epoch()
        torch.cuda.current_stream().wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=False)
        with torch.cuda.graph(self.graph):
            self.static_loss = self._epoch()

    def run(self, epochs):
        for _ in range(epochs):
            if self.graph is not None:
                self.graph.replay()
                loss = self.static_loss
            else:
                loss = self._epoch()
            if self.sync:
                self.losses.append(loss.item())
            else:
                self.losses.append(loss.detach().clone())


def authors_epochs(model, x, y, epochs, opt, state):
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
        psnr = 10 * math.log10(1.0 / loss.item())
        if psnr > state["best"]:
            state["best"] = psnr
            state["state"] = copy.deepcopy(model.state_dict())


def timed(fn, device):
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000.0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def kernel_breakdown(variant, device, epochs=5):
    """Top CUDA kernels of ``epochs`` epochs: {category: ms per epoch} and the top 12 names."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        variant.run(epochs)
        torch.cuda.synchronize()
    rows = []
    for evt in prof.key_averages():
        t = getattr(evt, "device_time_total", None) or getattr(evt, "cuda_time_total", 0)
        if t and evt.count:
            rows.append((evt.key, t / 1000.0 / epochs, evt.count // epochs))
    rows.sort(key=lambda r: -r[1])
    cats = {}
    for key, ms, _ in rows:
        k = key.lower()
        cat = ("gemm" if any(s in k for s in ("gemm", "sgemm", "cutlass", "matmul", "mm_", "ampere", "sm90", "xmma"))
               else "elementwise/fused")
        cats[cat] = cats.get(cat, 0.0) + ms
    return cats, rows[:14]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="paper", choices=("quick", "paper"))
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", nargs="*", default=None)
    p.add_argument("--skip-autotune", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--time-limit", type=float, default=240.0, help="stop adding variants after this many s")
    args = p.parse_args()
    t_start = time.time()
    device = resolve_device(args.device)
    spec, target = make_run("siren2", "synthetic:broadband", args.size,
                            train_overrides={"device": str(device), "compile": False})
    x, y = target.coords(device=device), target.values.to(device)
    base = spec.build_model(device)
    width, depth = spec.model_kwargs["width"], spec.model_kwargs["depth"]
    n = x.shape[0]
    flop = flops_per_epoch(n, width, depth)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}; torch {torch.__version__}; N={n} {depth}x{width}; matrix FLOP/epoch {flop:.3e}",
          flush=True)
    results = {"device": name, "torch": torch.__version__, "n": n, "width": width, "depth": depth,
               "flop_per_epoch": flop, "variants": {}}
    with float32_matmul("highest"):
        # --- ceilings: float32 GEMM rate at the epoch's main shape, copy bandwidth
        if device.type == "cuda":
            a = torch.randn(n, width, device=device)
            w = torch.randn(width, width, device=device)
            for _ in range(3):
                a @ w
            t = timed(lambda: [a @ w for _ in range(50)], device) / 50
            results["sgemm_tflops_n_w_w"] = 2 * n * width * width / t / 1e12
            w2 = torch.randn(256, 256, device=device)
            a2 = torch.randn(n, 256, device=device)
            t2 = timed(lambda: [a2 @ w2 for _ in range(50)], device) / 50
            results["sgemm_tflops_n_256_256"] = 2 * n * 256 * 256 / t2 / 1e12
            big = torch.randn(8192, 8192, device=device)
            tb = timed(lambda: [big @ big for _ in range(5)], device) / 5
            results["sgemm_tflops_8192"] = 2 * 8192 ** 3 / tb / 1e12
            buf = torch.empty(2 ** 29, device=device)
            buf2 = torch.empty_like(buf)
            tc = timed(lambda: [buf2.copy_(buf) for _ in range(10)], device) / 10
            results["copy_TBps"] = 2 * buf.numel() * 4 / tc / 1e12
            del a, w, a2, w2, big, buf, buf2
            print("ceilings: " + json.dumps({k: round(v, 2) for k, v in results.items()
                                              if k.startswith(("sgemm", "copy"))}), flush=True)
        all_variants = {            # most informative first (a time limit may cut the tail)
            "authors": None,
            "compile": dict(compile_mode="default"),
            "compile-fusedadam-graph": dict(compile_mode="default", fused=True, graph=True),
            "eager-fusedadam-graph": dict(fused=True, graph=True),
            "compile-fusedadam-graph-w224": dict(compile_mode="default", fused=True, graph=True, pad=224),
            "compile-fusedadam-graph-w256": dict(compile_mode="default", fused=True, graph=True, pad=256),
            "compile-fusedadam-graph-tf32": dict(compile_mode="default", fused=True, graph=True, tf32=True),
            "compile-fusedadam": dict(compile_mode="default", fused=True),
            "eager-fusedadam": dict(fused=True),
            "eager-nosync": dict(),
            "maxautotune-nocg-fusedadam-graph": dict(compile_mode="max-autotune-no-cudagraphs", fused=True,
                                                     graph=True),
        }
        names = args.variants or list(all_variants)
        if device.type != "cuda":
            names = [v for v in names if "graph" not in v]
        if args.skip_autotune:
            names = [v for v in names if "autotune" not in v]
        built = {}
        for v in names:
            if time.time() - t_start > args.time_limit:
                print(f"skip {v}: time limit", flush=True)
                continue
            t0 = time.time()
            try:
                if v == "authors":
                    m = copy.deepcopy(base)
                    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
                    st = {"best": -math.inf, "state": None}
                    authors_epochs(m, x, y, 3, opt, st)
                    built[v] = ("authors", m, opt, st)
                else:
                    kw = dict(all_variants[v])
                    pad = kw.pop("pad", None)
                    tf32 = kw.pop("tf32", False)
                    m = pad_width(base, pad) if pad else copy.deepcopy(base)
                    var = Variant(v, m, x, y, **kw)
                    if tf32:
                        with float32_matmul("high"):
                            var.warmup()
                    else:
                        var.warmup()
                    built[v] = ("variant", var, tf32)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                print(f"built {v} in {time.time() - t0:.1f} s", flush=True)
            except Exception as exc:  # an exploration: report and go on
                print(f"FAILED {v}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", flush=True)
        secs = {v: [] for v in built}
        for r in range(args.repeats):
            for v, b in built.items():
                if b[0] == "authors":
                    _, m, opt, st = b
                    secs[v].append(timed(lambda: authors_epochs(m, x, y, args.epochs, opt, st), device))
                else:
                    _, var, tf32 = b
                    if tf32:
                        with float32_matmul("high"):
                            secs[v].append(timed(lambda: var.run(args.epochs), device))
                    else:
                        secs[v].append(timed(lambda: var.run(args.epochs), device))
        base_ms = statistics.median(secs["authors"]) / args.epochs * 1e3 if "authors" in secs else math.nan
        print(f"\n| variant | ms/epoch (median) | ratio to authors | % of matrix-FLOP time at measured SGEMM |")
        print("| --- | --- | --- | --- |")
        rate = results.get("sgemm_tflops_n_w_w")
        for v, s in secs.items():
            ms = statistics.median(s) / args.epochs * 1e3
            floor_ms = flop / (rate * 1e12) * 1e3 if rate else math.nan
            results["variants"][v] = {"ms_per_epoch": ms, "all_s": s}
            print(f"| {v} | {ms:.3f} | {base_ms / ms:.2f}x | {100 * floor_ms / ms:.0f} % |", flush=True)
        # first-loss agreement (same init, same data): PSNR of last epoch per variant
        for v, b in built.items():
            if b[0] == "variant":
                last = b[1].losses[-1]
                last = float(last) if not isinstance(last, float) else last
                results["variants"][v]["last_psnr"] = 10 * math.log10(1 / last)
        if device.type == "cuda":
            for v in ("compile-fusedadam-graph", "eager-fusedadam", "maxautotune-nocg-fusedadam-graph"):
                if v in built and built[v][0] == "variant":
                    try:
                        cats, top = kernel_breakdown(built[v][1], device)
                        results["variants"][v]["kernels"] = {"categories_ms": cats, "top": top}
                        print(f"\nkernels of {v} (ms/epoch): " + json.dumps({k: round(c, 3) for k, c in cats.items()}))
                        for key, ms, cnt in top:
                            print(f"  {ms:7.3f} ms  x{cnt:<3d} {key[:110]}")
                    except Exception as exc:
                        print(f"profile {v} failed: {exc}")
    # fit_batched K = 1, 5 at this size (item 4 of issue 18)
    if device.type == "cuda" and time.time() - t_start < args.time_limit + 60:
        from spectral_probe.training.batched import fit_batched

        for k in (1, 5):
            try:
                models = [make_run("siren2", "synthetic:broadband", args.size, seed=s,
                                   train_overrides={"device": str(device)})[0].build_model(device) for s in range(k)]
                with float32_matmul("highest"):
                    fit_batched(models, target, epochs=5, device=str(device), progress=False)
                    models = [make_run("siren2", "synthetic:broadband", args.size, seed=s,
                                       train_overrides={"device": str(device)})[0].build_model(device)
                              for s in range(k)]
                    t = timed(lambda: fit_batched(models, target, epochs=args.epochs, device=str(device),
                                                  progress=False), device)
                ms = t / args.epochs * 1e3
                results[f"fit_batched_K{k}_ms_per_epoch"] = ms
                print(f"fit_batched K={k}: {ms:.3f} ms/epoch for K models = {ms / k:.3f} ms per model-epoch",
                      flush=True)
            except Exception as exc:
                print(f"fit_batched K={k} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    print(f"total {time.time() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
