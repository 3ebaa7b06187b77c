"""The paper's Figures 1-8, 13 and 14 as recipes: ``compute_figN(preset) -> xr.Dataset``, ``plot_figN(ds)``,
their parts (:mod:`.parts`) and the paper's claims about each, checked on its data (:mod:`.claims`).

>>> from spectral_probe.figures import make_figure
>>> out = make_figure("7", preset="quick", out="figures")       # figures/fig7.png + fig7.h5
>>> out.dataset.s_auth.sel(factor=1.0)                           # S(k) of SIREN^2 [10, 0.5]

Presets (:mod:`spectral_probe.figures.sizes`): ``quick`` (CPU, minutes),
``paper`` (the paper's sizes, GPU), ``test`` (seconds).  The CLI is
``spectral-probe figure {1,2,3,4,5,6,7,8,13,14,all} --preset quick|paper``.
"""

from .fig1 import compute_fig1, plot_fig1
from .fig2 import compute_fig2, plot_fig2
from .fig8_13 import compute_fig8, compute_fig13, plot_fig8, plot_fig13
from .fig3 import compute_fig3, plot_fig3
from .fig14 import compute_fig14, plot_fig14
from .common import clear_run_cache, load_dataset, save_dataset
from .fig4 import compute_fig4, plot_fig4
from .fig5 import compute_fig5, plot_fig5
from .fig6 import compute_fig6, plot_fig6
from .fig7 import compute_fig7, plot_fig7
from .build import FigureOutput, make_figure, make_figures
from .claims import CheckResult, Claim
from .parts import FigurePart, PartStatus, TrainingWork
from .registry import FIGURES, Recipe, estimate_seconds, expand_figures, get_recipe, list_figures
from .sizes import FIGURE_PRESETS, FIGURE_SIZES, figure_sizes

__all__ = ["FIGURES", "Recipe", "FigureOutput", "list_figures", "get_recipe", "expand_figures",
           "estimate_seconds", "make_figure", "make_figures", "FigurePart", "PartStatus", "TrainingWork",
           "Claim", "CheckResult", "FIGURE_PRESETS", "FIGURE_SIZES", "figure_sizes",
           "load_dataset", "save_dataset", "clear_run_cache",
           "compute_fig1", "plot_fig1", "compute_fig2", "plot_fig2", "compute_fig3", "plot_fig3", "compute_fig4", "plot_fig4", "compute_fig5", "plot_fig5",
           "compute_fig6", "plot_fig6", "compute_fig7", "plot_fig7", "compute_fig8", "plot_fig8",
           "compute_fig13", "plot_fig13", "compute_fig14", "plot_fig14"]
