"""Targets to fit: audio, images and synthetic signals on a grid in [-1, 1]^d."""

from .io import DATA_ENV, camera, load_audio, load_image, load_target, resolve_data_path
from .synthetic import (EQN5_AMPLITUDES, EQN5_BANDS, EQN5_FIRST_LAYER_FREQUENCY, EQN5_FRACTIONS, EQN5_PAPER_N,
                        FIG1_SIGNALS, broadband, eqn5, eqn5_frequencies, fig1_series, fig1_signal, tones)
from .target import Target, grid_coords

__all__ = ["Target", "grid_coords", "load_audio", "load_image", "load_target", "camera",
           "resolve_data_path", "DATA_ENV", "tones", "eqn5", "eqn5_frequencies", "broadband", "fig1_series", "fig1_signal",
           "FIG1_SIGNALS", "EQN5_BANDS",
           "EQN5_AMPLITUDES", "EQN5_FRACTIONS", "EQN5_FIRST_LAYER_FREQUENCY", "EQN5_PAPER_N"]
