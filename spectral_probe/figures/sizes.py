"""Sizes of every figure recipe for the presets ``quick`` (CPU), ``paper`` (GPU) and ``test`` (seconds).

One table, :data:`FIGURE_SIZES`: ``preset -> figure -> {name: value}``.  The
recipes read it with :func:`figure_sizes`, which also applies keyword
overrides (``compute_fig7("quick", width=64)``) and rejects unknown names.

Where the paper states a size (arXiv 2509.09719: Fig 7 caption ``4 x 256,
omega0 30, 2^10 inputs``; Fig 8 caption ``4 x 2048, 2^10 inputs, s0 = 100,
s1 = 1``; Sec. A on Fig 13 ``2048 wide, 16,384 inputs``; Fig 14 caption
``4 x 256``) ``paper`` uses it.  The epochs of the training figures and the
Fig 6 grid are our choices; ``paper`` then follows the project's
``presets.PRESETS["paper"]`` (150,000 samples, 4 x 222) or the authors'
scripts (1000 audio epochs, 500 image epochs).

``quick`` keeps the measured CPU preset of :mod:`spectral_probe.presets`
(2^14 samples, 4 x 128, 500 epochs, SIREN's first omega and WINNER's s0
scaled by N/150,000) for the training figures, and the paper's sizes where a
figure is cheap on a CPU (Figs 5, 7, 8, 13).  ``test`` shrinks everything so
that the claim of each figure is still visible (checked in tests/test_figures.py).

``offset`` (Figs 3, 6, 14) is the first sample of the crop of an audio file
(synthetic targets ignore it): the first 2^12 samples of tetris.wav are nearly
silent (zero-output PSNR 54.7 dB), so ``figure 6 --target tetris.wav`` is worth
running with ``--size offset=...``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIGURE_SIZES", "FIGURE_PRESETS", "figure_sizes"]

#: presets accepted by every recipe
FIGURE_PRESETS = ("quick", "paper", "test")

#: the spectral-bottleneck training runs of Figs 3 and 14 (target: --target or synthetic:broadband)
_TRAIN_QUICK = dict(num_samples=2 ** 14, offset=0, width=128, depth=4, epochs=500, probe_every=50, bins=80)
_TRAIN_PAPER = dict(num_samples=None, offset=0, width=222, depth=4, epochs=None, probe_every=1000, bins=100)
_TRAIN_TEST = dict(num_samples=1024, offset=0, width=64, depth=4, epochs=150, probe_every=50, bins=40)

FIGURE_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "3": dict(_TRAIN_QUICK),
        "4": dict(n=2 ** 12, width=128, depth=4, epochs=300, every=25, window=160),
        "5": dict(fan_in=2048, n_inputs=1024, n_neurons=1024, omega=30.0, scales=(0.0, 0.1, 0.25, 1.0),
                  bins=100),
        "6": dict(n=2 ** 12, offset=0, image_size=64, width=128, depth=4, audio_epochs=150,
                  image_epochs=150, factors=(0.0, 0.25, 1.0, 4.0)),
        "7": dict(n=2 ** 10, width=256, depth=4, omega=30.0, s0=10.0, s1=0.5,
                  factors=(0.0, 0.5, 1.0, 2.0, 4.0)),
        "8": dict(n=2 ** 10, width=2048, depth=4, omega=30.0, s0=100.0, s1=1.0, last_layer=2, bins=100),
        "13": dict(n=2 ** 14, width=2048, depth=4, omega=30.0, s0=100.0, s1=1.0, bins=100),
        "14": dict(_TRAIN_QUICK),
    },
    "paper": {
        "3": dict(_TRAIN_PAPER),
        "4": dict(n=2 ** 12, width=256, depth=4, epochs=1000, every=50, window=160),
        "5": dict(fan_in=2048, n_inputs=4096, n_neurons=2048, omega=30.0, scales=(0.0, 0.1, 0.25, 1.0),
                  bins=120),
        "6": dict(n=None, offset=0, image_size=300, width=None, depth=None, audio_epochs=1000,
                  image_epochs=500, factors=(0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)),
        "7": dict(n=2 ** 10, width=256, depth=4, omega=30.0, s0=10.0, s1=0.5,
                  factors=(0.0, 0.5, 1.0, 2.0, 4.0)),
        "8": dict(n=2 ** 10, width=2048, depth=4, omega=30.0, s0=100.0, s1=1.0, last_layer=2, bins=100),
        "13": dict(n=2 ** 14, width=2048, depth=4, omega=30.0, s0=100.0, s1=1.0, bins=120),
        "14": dict(_TRAIN_PAPER, width=256),
    },
    "test": {
        "3": dict(_TRAIN_TEST),
        "4": dict(n=1024, width=64, depth=4, epochs=150, every=50, window=64),
        "5": dict(fan_in=256, n_inputs=256, n_neurons=256, omega=30.0, scales=(0.0, 0.25, 1.0), bins=40),
        "6": dict(n=1024, offset=0, image_size=16, width=64, depth=4, audio_epochs=150, image_epochs=60,
                  factors=(0.0, 1.0)),
        "7": dict(n=128, width=32, depth=4, omega=30.0, s0=10.0, s1=0.5, factors=(0.0, 1.0, 4.0)),
        "8": dict(n=256, width=256, depth=4, omega=30.0, s0=100.0, s1=1.0, last_layer=2, bins=40),
        "13": dict(n=512, width=256, depth=4, omega=30.0, s0=100.0, s1=1.0, bins=40),
        "14": dict(_TRAIN_TEST),
    },
}


def figure_sizes(figure: str, preset: str, **overrides) -> dict[str, Any]:
    """Sizes of ``figure`` under ``preset``, with ``overrides`` applied (None values are ignored).

    Raises
    ------
    ValueError
        Unknown preset, figure or size name.
    """
    if preset not in FIGURE_SIZES:
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(FIGURE_PRESETS)}")
    table = FIGURE_SIZES[preset]
    if figure not in table:
        raise ValueError(f"no sizes for figure {figure!r}; figures: {', '.join(table)}")
    sizes = dict(table[figure])
    unknown = sorted(set(overrides) - set(sizes))
    if unknown:
        raise ValueError(f"figure {figure} has no size(s) {', '.join(unknown)}; valid: {', '.join(sizes)}")
    sizes.update({k: v for k, v in overrides.items() if v is not None})
    return sizes
