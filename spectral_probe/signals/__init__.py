"""Targets to fit: audio, images and synthetic signals on a grid in [-1, 1]^d."""

from .io import DATA_ENV, camera, load_audio, load_image, load_target, resolve_data_path
from .synthetic import EQN5_BANDS, broadband, eqn5, fig1_series, tones
from .target import Target, grid_coords

__all__ = ["Target", "grid_coords", "load_audio", "load_image", "load_target", "camera",
           "resolve_data_path", "DATA_ENV", "tones", "eqn5", "broadband", "fig1_series", "EQN5_BANDS"]
