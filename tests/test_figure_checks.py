"""Claims as code: checks never pass on missing data, ``figure check`` on good, old and bad files, ``figure index``."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from spectral_probe.cli.main import main
from spectral_probe.figures import get_recipe, save_dataset
from spectral_probe.figures.claims import Claim, Verdict, run_checks
from spectral_probe.figures.report import INDEX_BEGIN, INDEX_END, update_readme

def _h200() -> Path:
    """The H200 run's folder in ../shared (beside the repository, or beside $SPECTRAL_PROBE_DATA)."""
    import os

    roots = [Path(__file__).resolve().parents[2] / "shared"]
    roots += [Path(p).parent for p in os.environ.get("SPECTRAL_PROBE_DATA", "").split(os.pathsep) if p]
    for root in roots:
        if (root / "gpu-runs" / "2026-12-04-h200").is_dir():
            return root / "gpu-runs" / "2026-12-04-h200"
    return roots[0] / "gpu-runs" / "2026-12-04-h200"


H200 = _h200()


def run(*args):
    return CliRunner(mix_stderr=False).invoke(main, ["figure", *args]) if _mix_stderr() else \
        CliRunner().invoke(main, ["figure", *args])


def _mix_stderr() -> bool:
    import inspect

    return "mix_stderr" in inspect.signature(CliRunner).parameters


def _text(res) -> str:
    return res.output + (getattr(res, "stderr", "") if _mix_stderr() else "")


@pytest.fixture(scope="module")
def fig5(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ds = get_recipe("5").compute("test", device="cpu")
    finally:
        torch.set_num_threads(threads)
    path = save_dataset(ds, tmp_path_factory.mktemp("fig5") / "fig5.h5")
    return ds, path


def test_a_check_without_its_data_is_missing_never_passed(fig5):
    ds, _ = fig5
    claims = (Claim("x", "s", "t", ("nope",), lambda d: Verdict(True, 1.0, "would pass")),
              Claim("y", "s", "t", ("measured_std",), lambda d: d["absent"]),
              Claim("z", "s", "t", ("measured_std",), lambda d: Verdict(False, float("nan"), "fails")))
    results = run_checks("5", claims, ds)
    assert [r.status for r in results] == ["missing", "error", "fail"]
    assert "needs nope" in results[0].text and not any(r.passed for r in results)


def test_check_cli_on_a_figure_file(fig5):
    res = run("check", str(fig5[1]))
    assert res.exit_code == 0, _text(res)
    assert "figure 5, 2 of 2 claim check(s) pass" in res.output
    assert "PASS    fig5/std-theorem31: measured / Theorem 3.1 std" in res.output


def test_check_cli_on_an_older_layout_says_what_is_missing(fig5, tmp_path):
    ds, _ = fig5
    old = save_dataset(ds.drop_vars(["tv_theorem"]), tmp_path / "old5.h5")
    res = run("check", str(old))
    assert res.exit_code == 2
    assert "MISSING fig5/gaussian: needs tv_theorem" in res.output and "PASS    fig5/std-theorem31" in res.output
    errors = [line for line in _text(res).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(old) in errors[0] and "missing: tv_theorem" in errors[0]
    assert "Traceback" not in _text(res)


def _bad_files(tmp_path, good: Path) -> dict[str, Path]:
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as h5:
        h5["x"] = np.arange(3)
    part = tmp_path / "part.h5"
    with h5py.File(part, "w") as h5:
        h5.attrs["schema"] = "spectral-probe-figure-part"
        h5.attrs["figure"] = "5"
    return {"not a readable HDF5": text, "truncated or not HDF5": truncated, "has no 'figure' attribute": plain,
            "one part of a figure": part, "not found": tmp_path / "missing.h5"}


def test_check_cli_refuses_bad_files_in_one_line(fig5, tmp_path):
    for message, path in _bad_files(tmp_path, fig5[1]).items():
        res = run("check", str(path))
        text = _text(res)
        assert res.exit_code == 2, (message, text)
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (message, text)
        assert str(path) in lines[0] or path.name in lines[0]


@pytest.mark.skipif(not H200.is_dir(), reason="../shared/gpu-runs/2026-12-04-h200 not present")
@pytest.mark.parametrize("name,code", [("fig5", 0), ("fig8", 0), ("fig13", 0), ("fig14", 2)])
def test_check_cli_on_the_h200_files(name, code):
    res = run("check", str(H200 / f"{name}.h5"))
    assert res.exit_code == code, _text(res)
    assert "Traceback" not in _text(res)
    lines = [line for line in res.output.splitlines() if line.split(" ")[0] in ("PASS", "FAIL", "MISSING", "ERROR")]
    assert len(lines) == len(get_recipe(name[3:]).claims)
    if name == "fig14":                     # that run kept no PSDs: the spectral claims say so, the rest run
        assert sum(line.startswith("MISSING") for line in lines) == 3
        assert "PASS    fig14/siren2-recovers-target: peak PSNR SIREN^2 66.69 dB, SIREN 13.44 dB" in res.output


def test_index_is_generated_from_the_files(fig5, tmp_path):
    save_dataset(fig5[0], tmp_path / "fig5.h5")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Figures\n\nintro\n\n{INDEX_BEGIN}\nold table\n{INDEX_END}\n\nafter\n")
    update_readme(tmp_path)
    text = readme.read_text()
    assert text.startswith("# Figures\n\nintro") and text.rstrip().endswith("after") and "old table" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    fig5_rows = [r for r in rows if "std-theorem31" in r or "Theorem 3.1 std" in r]
    assert fig5_rows and "**yes**" in fig5_rows[0] and "[Fig 5](fig5.png)" in fig5_rows[0]
    assert any(r.startswith("| Fig 1 |") and "no figure file" in r for r in rows)
    res = run("index", "--out", str(tmp_path))
    assert res.exit_code == 0 and text == readme.read_text()
