"""Paper Fig 7, image version: NTK of an image SIREN and SIREN^2 on a 32 x 32 grid.

SIREN^2's WINNER scales are those ``spectral-probe train --model siren2 --target camera`` uses
(Eqn 11 with the image coefficients from the psi of scikit-image's camera at the quick preset's
128 x 128); both networks are 4 x 256 with omega 30 (as in Fig 7), on a 32 x 32 grid in [-1, 1]^2
(N = 1024, the size of Fig 7).  The spectrum panel overlays the camera image resized to 32 x 32.

Usage::

    python docs/make_ntk_image_panel.py            # writes docs/ntk_image_siren_vs_siren2.png
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from spectral_probe.models import build_model
from spectral_probe.ntk import analyze_ntk
from spectral_probe.ntk.plot import plot_comparison, save
from spectral_probe.ntk.report import summary_lines
from spectral_probe.training.presets import make_run
from spectral_probe.signals import grid_coords

GRID = (32, 32)
OUT = Path(__file__).with_name("ntk_image_siren_vs_siren2.png")


def main() -> None:
    torch.set_num_threads(1)
    spec, camera = make_run("siren2", "camera", "quick")
    s0, s1 = spec.model_kwargs["s0"], spec.model_kwargs["s1"]
    small = F.interpolate(camera.grid().permute(2, 0, 1)[None], size=GRID, mode="bilinear", align_corners=False)[0]
    target = replace(camera, values=small.permute(1, 2, 0).reshape(-1, camera.channels), grid_shape=GRID,
                     name="camera 32x32")
    x = grid_coords(GRID)
    results = {}
    t0 = time.perf_counter()
    for label, kw in (("SIREN", {}), ("SIREN$^2$", {"s0": s0, "s1": s1})):
        name = "siren2" if kw else "siren"
        model = build_model(name, in_features=2, width=256, depth=4, seed=0, first_omega=30.0, hidden_omega=30.0, **kw)
        results[label] = analyze_ntk(model, x, grid_shape=GRID)
        print(f"{label}:")
        for line in summary_lines(results[label], target=target):
            print("  " + line)
    title = (f"4x256 networks, omega 30, on a 32x32 grid; SIREN$^2$ with [s0, s1] = [{s0:.3g}, {s1:.3g}] "
             f"(Eqn 11 from psi = {spec.psi:.3f} of camera)")
    save(plot_comparison(results, target=target, cutoff=0.5, title=title), OUT, dpi=70)
    print(f"psi(camera, 128x128) = {spec.psi:.4f} -> s0 = {s0:.4g}, s1 = {s1:.4g}; "
          f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} kB) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
