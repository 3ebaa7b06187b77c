"""Figure parts (the contract with the paper-scale runner): names, settings, files, resume, assembly, the pool."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from spectral_probe.figures import FIGURES, TrainingWork, get_recipe, make_figures
from spectral_probe.figures.parts import part_path, parts_dir, read_part
from spectral_probe.torch_settings import torch_threads
from spectral_probe.training import Callback


class StopAt(Callback):
    """Asks the fit to stop once ``epoch`` epochs are done (what a runner's deadline does)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state) -> None:
        if state.epoch + 1 >= self.epoch:
            state.request_stop("deadline")


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def test_every_recipe_lists_parts_with_stable_json_settings():
    for number in FIGURES:
        recipe = get_recipe(number)
        parts = recipe.parts("test")
        names = [p.name for p in parts]
        assert names and len(set(names)) == len(names), number
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names), names
        for part in parts:
            json.dumps(part.settings)                                   # JSON-able
            assert all(isinstance(r, TrainingWork) for r in part.runs)
        assert [p.key for p in parts] == [p.key for p in recipe.parts("test")]      # stable
        assert recipe.parts("test", seed=1)[0].key != parts[0].key                  # the seed is a setting
    sizes = {n: get_recipe(n).context("test").sizes for n in ("1", "6")}
    assert len(get_recipe("1").parts("test")) == 2 * len(sizes["1"]["signals"])
    assert len(get_recipe("6").parts("test")) == 2 * len(sizes["6"]["factors"]) ** 2 + 2
    assert [p.name for p in get_recipe("5").parts("test")] == ["all"]
    fig3, fig14 = get_recipe("3").parts("test"), get_recipe("14").parts("test")
    assert fig3[0].key == fig14[0].key and [p.name for p in fig14] == ["siren", "siren2"]   # shared SIREN run
    work = get_recipe("2").parts("test")[0].runs[0]
    assert (work.model, work.n, work.dims, work.depth, work.epochs) == ("siren", 1024, 1, 3, 60)
    assert get_recipe("4").parts("test")[0].extra["ntk_n"] == 1024


def test_parts_in_files_assemble_to_the_in_memory_figure(tmp_path):
    recipe = get_recipe("2")
    parts = recipe.parts("test")
    with pytest.raises(ValueError, match=r"3 of 3 part\(s\) not complete .*omega-30-w32"):
        recipe.assemble(tmp_path, "test")
    for part in parts:
        status = recipe.compute_part(part.name, "test", None, tmp_path, device="cpu")
        assert status.complete and status.progress == 1.0 and status.path == part_path(tmp_path, "2", part.name)
        assert recipe.part_status(part.name, "test", None, tmp_path).complete
    stored = read_part(parts[0].key and part_path(tmp_path, "2", parts[0].name))
    assert stored.attrs["settings_hash"] == parts[0].key and json.loads(stored.attrs["settings"]) == \
        json.loads(json.dumps(parts[0].settings))
    from_files = recipe.assemble(tmp_path, "test")
    in_memory = recipe.compute("test", device="cpu")
    np.testing.assert_allclose(from_files.psnr_scaling, in_memory.psnr_scaling, rtol=1e-6)
    np.testing.assert_allclose(from_files.spectrogram, in_memory.spectrogram, rtol=1e-5, atol=1e-4)
    assert from_files.attrs["checks"] == in_memory.attrs["checks"]
    assert not {"schema", "settings_hash", "part"} & set(from_files.attrs)          # a figure, not a part
    from spectral_probe.figures import save_dataset
    from spectral_probe.figures.report import check_file

    assert check_file(save_dataset(from_files, tmp_path / "fig2.h5"))[0] == "2"
    assert not list(parts_dir(tmp_path, "2").glob(".*.tmp"))                  # written atomically


def test_a_stopped_part_resumes_to_the_uninterrupted_result(tmp_path):
    recipe = get_recipe("3")
    epochs = recipe.context("test").sizes["epochs"]
    status = recipe.compute_part("siren", "test", None, tmp_path / "cut", device="cpu", callbacks=[StopAt(60)])
    assert not status.complete and status.path is None
    assert status.progress == pytest.approx(60 / epochs)
    assert recipe.part_status("siren", "test", None, tmp_path / "cut").progress == pytest.approx(60 / epochs)
    assert len(list(parts_dir(tmp_path / "cut", "3").glob("siren.*.run.h5"))) == 1
    done = recipe.compute_part("siren", "test", None, tmp_path / "cut", device="cpu")
    assert done.complete
    whole = recipe.compute_part("siren", "test", None, tmp_path / "whole", device="cpu")
    resumed, uninterrupted = read_part(done.path), read_part(whole.path)
    np.testing.assert_array_equal(resumed.step, uninterrupted.step)
    for name in ("psnr", "act_std", "cum_psd", "hist", "output"):
        np.testing.assert_allclose(resumed[name], uninterrupted[name], rtol=1e-6, atol=1e-9, err_msg=name)
    whole.path.unlink()                                  # the run file is complete: the part is rebuilt from it
    rebuilt = read_part(recipe.compute_part("siren", "test", None, tmp_path / "whole", device="cpu").path)
    for name in ("psnr", "act_std", "cum_psd", "output"):
        np.testing.assert_allclose(rebuilt[name], uninterrupted[name], rtol=1e-6, atol=1e-9, err_msg=name)


def test_changed_settings_recompute_and_keep_the_old_run_file(tmp_path):
    recipe = get_recipe("1")
    recipe.compute_part("S1-siren", "test", None, tmp_path, device="cpu", epochs=20)
    first = read_part(part_path(tmp_path, "1", "S1-siren"))
    recipe.compute_part("S1-siren", "test", None, tmp_path, device="cpu", epochs=30)
    second = read_part(part_path(tmp_path, "1", "S1-siren"))
    assert first.sizes["train_epoch"] == 20 and second.sizes["train_epoch"] == 30
    assert len(list(parts_dir(tmp_path, "1").glob("S1-siren.*.run.h5"))) == 2    # nothing overwritten
    assert not recipe.part_status("S1-siren", "test", None, tmp_path, epochs=20).complete


def test_default_single_part_and_bad_names(tmp_path):
    recipe = get_recipe("5")
    status = recipe.compute_part("all", "test", None, tmp_path, device="cpu")
    assert status.complete
    ds = recipe.assemble(tmp_path, "test")
    assert ds.attrs["figure"] == "5" and "settings_hash" not in ds.attrs and "checks" in ds.attrs
    with pytest.raises(ValueError, match="has no part 'cell'; parts: all"):
        recipe.compute_part("cell", "test", None, tmp_path)
    with pytest.raises(ValueError, match="needs out_dir"):
        recipe.compute_part("all", "test")


def test_pool_computes_a_shared_part_once(tmp_path):
    events = []
    outputs = make_figures(["3", "14"], "test", out=tmp_path / "out", device="cpu", workers=2,
                           parts_dir=tmp_path / "parts", on_event=events.append)
    assert [o.number for o in outputs] == ["3", "14"]
    computed = [e for e in events if e.strip().startswith("part ")]
    assert len(computed) == 2 and not any("fig14/siren:" in e for e in computed), events
    assert (tmp_path / "parts" / "fig14.parts" / "siren.h5").exists()            # copied from Fig 3's
    assert (tmp_path / "out" / "fig14.png").exists() and outputs[1].checks
    four = make_figures(["4"], "test", out=tmp_path / "out", device="cpu", workers=1)[0]   # several parts, concat
    assert "schema" not in four.dataset.attrs and "low_config" in four.dataset.attrs
    again = make_figures(["3"], "test", out=tmp_path / "out", device="cpu", workers=1, parts_dir=tmp_path / "parts")
    assert again[0].parts_seconds < 5                                           # reused from parts_dir
