"""Process-wide torch settings change only inside blocks that restore them (threads, float32 precision)."""

from __future__ import annotations

import pytest
import torch

from spectral_probe.torch_settings import float32_matmul, restore, snapshot, torch_settings, torch_threads


def test_torch_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    other = 1 if before > 1 else 2
    with torch_threads(other) as inside:
        assert inside == torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(other):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_torch_threads_none_or_zero_leaves_the_count_and_restores_changes_made_inside():
    before = torch.get_num_threads()
    for threads in (None, 0):
        with torch_threads(threads) as inside:
            assert inside == before
            torch.set_num_threads(3)            # a change inside the block is undone too
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_torch_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        with torch_threads(bad):
            pass


def test_torch_settings_combines_threads_and_precision():
    before = snapshot()
    with torch_settings(threads=1, precision="high") as inside:
        assert inside == {"threads": 1, "float32_matmul_precision": "high", "cuda_matmul_allow_tf32": True,
                          "cudnn_allow_tf32": True}
        assert torch.get_num_threads() == 1 and torch.get_float32_matmul_precision() == "high"
    assert snapshot() == before
    with pytest.raises(ValueError, match="unknown float32 precision 'tf32'"):
        with torch_settings(precision="tf32"):
            pass
    assert snapshot() == before


def test_snapshot_and_restore_name_what_changed():
    saved = snapshot()
    torch.set_default_dtype(torch.float64)
    torch.set_float32_matmul_precision("medium")
    try:
        assert sorted(restore(saved)) == ["cuda_matmul_allow_tf32", "default_dtype", "float32_matmul_precision"]
    finally:
        restore(saved)
    assert snapshot() == saved and torch.get_default_dtype() == torch.float32
    assert restore(saved) == []


def test_float32_matmul_nests():
    with float32_matmul("high"):
        with float32_matmul("highest") as inner:
            assert inner["float32_matmul_precision"] == "highest"
        assert torch.get_float32_matmul_precision() == "high"


def test_kept_environment_undoes_sets_changes_and_removals_even_on_error(monkeypatch):
    import os

    from spectral_probe.torch_settings import kept_environment, restore_environment

    monkeypatch.setenv("SP_TEST_KEEP", "old")
    monkeypatch.delenv("SP_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError, match="boom"):
        with kept_environment() as changes:
            os.environ["SP_TEST_NEW"] = "1"
            os.environ["SP_TEST_KEEP"] = "changed"
            raise RuntimeError("boom")
    assert os.environ["SP_TEST_KEEP"] == "old" and "SP_TEST_NEW" not in os.environ
    assert changes == {"SP_TEST_NEW": None, "SP_TEST_KEEP": "old"}
    os.environ["SP_TEST_NEW"] = "again"                 # set again later (a restarted dask worker)
    assert restore_environment(changes) == ["SP_TEST_NEW"]
    assert "SP_TEST_NEW" not in os.environ and restore_environment(changes) == []


def test_the_dask_executor_leaves_the_environment_as_it_found_it():
    """dask's nanny sets OMP_NUM_THREADS=1, PYTHONHASHSEED, ... for its workers in the parent's environment."""
    import os

    pytest.importorskip("distributed")
    from spectral_probe.sweep.executors import DaskExecutor

    before = dict(os.environ)
    executor = DaskExecutor(workers=1)
    try:
        assert dict(os.environ) == before
        worker = executor.client.submit(lambda: __import__("os").environ.get("OMP_NUM_THREADS"), pure=False)
        assert worker.result(timeout=60) == "1"         # the workers still get theirs
    finally:
        executor.shutdown()
    assert dict(os.environ) == before
