"""Private torch APIs: resolved in spectral_probe._compat, and a missing one fails loudly."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest
import torch
from torch import nn

from spectral_probe import _compat
from spectral_probe.hooks import inside_transform, is_paused, paused
from spectral_probe.probes import Probe


def test_missing_transform_check_fails_loudly_at_import(monkeypatch):
    monkeypatch.delattr(torch._C, "_are_functorch_transforms_active")
    with pytest.raises(ImportError, match=r"torch .* has no torch\._C\._are_functorch_transforms_active.*"
                                          r"inert inside torch\.func") as err:
        importlib.reload(_compat)                  # what `import spectral_probe.probes` runs
    assert type(err.value).__name__ == "TorchCompatError"
    monkeypatch.undo()
    importlib.reload(_compat)                      # the real API again, for the other tests
    assert _compat.transforms_active() is False


def test_missing_api_stops_import_of_the_probes_in_a_fresh_interpreter():
    code = ("import torch; del torch._C._functorch.is_functorch_wrapped_tensor\n"
            "import spectral_probe.probes")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "TorchCompatError" in res.stderr and "is_functorch_wrapped_tensor" in res.stderr


def test_renamed_hook_dicts_fail_loudly():
    with pytest.raises(_compat.TorchCompatError, match="nn.Module._forward_hooks_v2"):
        _compat._check_hook_dicts(("_forward_hooks_v2",))
    with pytest.raises(_compat.TorchCompatError, match="register_forward_hook stores elsewhere"):
        _compat._check_hook_dicts(("_forward_pre_hooks",))     # a forward hook does not land there
    _compat._check_hook_dicts()


def test_is_compiling_falls_back_and_fails_at_first_use(monkeypatch):
    monkeypatch.delattr(torch.compiler, "is_compiling")
    fake = types.ModuleType("torch._dynamo")
    fake.is_compiling = lambda: False
    monkeypatch.setitem(sys.modules, "torch._dynamo", fake)
    monkeypatch.setattr(torch, "_dynamo", fake, raising=False)
    assert _compat._resolve_compiling()() is False
    del fake.is_compiling
    check = _compat._resolve_compiling()           # resolving still works: the fallback loads on first use
    with pytest.raises(_compat.TorchCompatError, match="is_compiling"):
        check()


def test_one_pausing_mechanism_for_probes_and_other_hooks():
    model = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))
    x = torch.linspace(-1, 1, 8)[:, None]
    other = []
    model[0].register_forward_hook(lambda m, i, o: other.append(1))
    probe = Probe(every=1)
    with probe.hooks(model):
        with paused():                              # probes inert, other hooks still fire
            assert is_paused()
            model(x)
        assert probe.commit(0) is None and other == [1]
        with paused(model):                         # every hook registered before the block is detached
            model(x)
            inner = model[2].register_forward_hook(lambda m, i, o: other.append("inner"))
            model(x)
            with paused(model):                     # nests
                model(x)
        assert probe.commit(0) is None and other == [1, "inner"] and not is_paused()
        model(x)                                    # restored: the probe and the first hook fire again
    assert set(probe.commit(0)) == {"0", "1", "2"} and other == [1, "inner", 1]
    inner.remove()
    with pytest.raises(RuntimeError):
        with paused(model):
            raise RuntimeError("boom")
    model(x)
    assert other == [1, "inner", 1, 1] and not is_paused()


def test_inside_transform_sees_vmap_tensors():
    seen = []
    torch.func.vmap(lambda t: seen.append(inside_transform(t)) or t)(torch.zeros(3, 2))
    assert seen == [True] and inside_transform(torch.zeros(2)) is False
