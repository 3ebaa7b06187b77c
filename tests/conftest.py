"""Shared fixtures: the real data in ../shared/data (skip cleanly when absent)."""

from __future__ import annotations

import os
import signal
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


def _handlers() -> dict:
    """The Python-level handler of every signal a process can catch."""
    out = {}
    for signum in signal.valid_signals():
        try:
            out[signum] = signal.getsignal(signum)
        except (OSError, ValueError):       # SIGKILL, SIGSTOP and real-time signals on some platforms
            continue
    return out


#: variables set by pytest while a test runs, and by torch for the rest of the process on its first
#: compile (inductor's cache folder, ``_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR``, ...): not spectral-probe's
#: doing, left as they are
_NOT_OURS = ("PYTEST_CURRENT_TEST",)
_NOT_OURS_PREFIXES = ("TORCHINDUCTOR_", "_TORCHINDUCTOR_")


def _environment_changes(before: dict) -> list[str]:
    """Names of the environment variables set, changed or removed since ``before``; puts them back."""
    changed = sorted(k for k in set(before) | set(os.environ)
                     if before.get(k) != os.environ.get(k) and k not in _NOT_OURS
                     and not k.startswith(_NOT_OURS_PREFIXES))
    for key in changed:
        if key in before:
            os.environ[key] = before[key]
        else:
            os.environ.pop(key, None)
    return changed


def _handler_changes(before: dict) -> list[str]:
    """Names of the signals whose handler changed since ``before``; puts the handlers back."""
    changed = []
    for signum, handler in _handlers().items():
        if signum in before and handler is not before[signum]:
            changed.append(signal.Signals(signum).name)
            signal.signal(signum, before[signum])
    return changed


@pytest.fixture(autouse=True)
def _process_state():
    """Every test starts with the session's process state and hands it back as it found it.

    Torch's settings (the same thread count, at most 2, as on the CI machine), the environment and the
    signal handlers are put back after each test, whatever it did; a test whose code left one of them changed
    fails, naming it (library code changes them only inside :mod:`spectral_probe.torch_settings`'s context
    managers, :func:`spectral_probe.paperscale.runner.data_folder`, ``InterruptGuard.installed``...), so the
    suite passes in any order (``--random-order``, README "Tests")."""
    start = {**_SESSION, "threads": min(2, _SESSION["threads"])}
    restore(start)
    environment, handlers = dict(os.environ), _handlers()
    yield
    leaked = restore(start)
    leaked += [f"environment variable {k}" for k in _environment_changes(environment)]
    leaked += [f"handler of {name}" for name in _handler_changes(handlers)]
    assert not leaked, (f"the test left process state changed: {', '.join(map(str, leaked))} (use "
                        "spectral_probe.torch_settings, monkeypatch or a context manager that restores it)")
