"""Fixtures shared by the ``reproduce paper`` tests (imported by them; pytest finds imported fixtures)."""

from __future__ import annotations

import pytest
import torch

from spectral_probe.signals import load_target, tones


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Stand-ins named like the paper's files (the runner must find them through --data only)."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("data")
    (root / "audio").mkdir()
    sf.write(root / "audio" / "tetris.wav", 0.9 * load_target("synthetic:broadband", n=4096).values.numpy()[:, 0],
             22050)
    sf.write(root / "audio" / "gt_bach.wav", 0.9 * tones(4096, (0.005, 0.02)).values.numpy()[:, 0], 22050)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread (the runner's CPU parts are small; two threads on a loaded machine are slower)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
