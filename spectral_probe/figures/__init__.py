"""The paper's Figures 1-8, 13 and 14 as recipes: ``compute_figN(preset) -> xr.Dataset``, ``plot_figN(ds)``,
their parts (:mod:`.parts`) and the paper's claims about each, checked on its data (:mod:`.claims`).

>>> from spectral_probe.figures import make_figure
>>> out = make_figure("7", preset="quick", out="figures")       # figures/fig7.png + fig7.h5
>>> out.dataset.s_auth.sel(factor=1.0)                           # S(k) of SIREN^2 [10, 0.5]

Presets (:mod:`spectral_probe.figures.sizes`): ``quick`` (CPU, minutes),
``paper`` (the paper's sizes, GPU), ``test`` (seconds).  The CLI is
``spectral-probe figure {1,2,3,4,5,6,7,8,13,14,all} --preset quick|paper``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

#: public name -> submodule that defines it (imported on first access: ``figures.sizes`` and the
#: registry load no torch, so ``spectral-probe figure --help`` stays light)
_API: dict[str, str] = {
    **{f"{kind}_fig{n}": module for n, module in (("1", "fig1"), ("2", "fig2"), ("3", "fig3"), ("4", "fig4"),
                                                   ("5", "fig5"), ("6", "fig6"), ("7", "fig7"), ("8", "fig8_13"),
                                                   ("13", "fig8_13"), ("14", "fig14"))
       for kind in ("compute", "plot")},
    **dict.fromkeys(["clear_run_cache", "load_dataset", "save_dataset"], "common"),
    **dict.fromkeys(["FigureOutput", "make_figure", "make_figures"], "build"),
    **dict.fromkeys(["CheckResult", "Claim"], "claims"),
    **dict.fromkeys(["FigurePart", "PartStatus", "TrainingWork"], "parts"),
    **dict.fromkeys(["FIGURES", "Recipe", "estimate_seconds", "expand_figures", "get_recipe", "list_figures"],
                    "registry"),
    **dict.fromkeys(["FIGURE_PRESETS", "FIGURE_SIZES", "figure_sizes"], "sizes"),
}

__all__ = list(_API)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _API)
