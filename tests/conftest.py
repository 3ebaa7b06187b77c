"""Shared fixtures: the real data in ../shared/data (skip cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spectral_probe.torch_settings import restore, snapshot

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    candidates = [p for p in os.environ.get("SPECTRAL_PROBE_DATA", "").split(os.pathsep) if p]
    candidates.append(str(REPO.parent / "shared" / "data"))
    for c in candidates:
        path = Path(c)
        if (path / "audio").is_dir() or (path / "images").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with audio/tetris.wav, audio/gt_bach.wav, images/camera.png, images/noise1.png."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("real data (../shared/data) not present")
    return path


def _audio(shared_data: Path, name: str) -> Path:
    path = shared_data / "audio" / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    return path


@pytest.fixture(scope="session")
def tetris(shared_data) -> Path:
    """The paper's high-frequency-dominant audio target (psi 0.5732)."""
    return _audio(shared_data, "tetris.wav")


@pytest.fixture(scope="session")
def gt_bach(shared_data) -> Path:
    """The paper's low-frequency audio target (psi 0.0737); its first samples are silent."""
    return _audio(shared_data, "gt_bach.wav")


#: torch's process-wide settings when the session started (before any test could change them)
_SESSION = snapshot()


@pytest.fixture(autouse=True)
def _torch_settings():
    """Every test starts with the session's torch settings and the same thread count (at most 2, as on the CI
    machine), whatever the previous test did; a test whose code leaves a setting changed fails (library code
    changes them only inside :mod:`spectral_probe.torch_settings`' context managers), and the settings are
    restored for the next test either way."""
    start = {**_SESSION, "threads": min(2, _SESSION["threads"])}
    restore(start)
    yield
    leaked = restore(start)
    assert not leaked, f"the test left torch settings changed: {leaked} (use spectral_probe.torch_settings)"
