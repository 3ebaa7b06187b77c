"""The shared input checks: values, names, KEY=VALUE parsing and output paths."""

import math
import os

import pytest

from spectral_probe.validation import (check_known, check_output_path, finite_float, nonnegative_int,
                                       parse_key_values, positive_float, positive_int)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None, float("nan")])
def test_positive_int_refuses(bad):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        positive_int(bad, "epochs")


def test_positive_int_accepts():
    assert positive_int(3, "n") == 3
    assert positive_int(None, "n", allow_none=True) is None
    assert nonnegative_int(0, "offset") == 0
    with pytest.raises(ValueError, match="offset must be a non-negative integer, got -2"):
        nonnegative_int(-2, "offset")


def test_floats():
    assert positive_float(2, "lr") == 2.0
    assert positive_float(0.0, "s1", allow_zero=True) == 0.0
    for bad in (0.0, -1e-3, math.inf, math.nan, "x", True):
        with pytest.raises(ValueError, match="lr must be"):
            positive_float(bad, "lr")
    assert finite_float(0.5, "psi", low=0, high=1) == 0.5
    with pytest.raises(ValueError, match="psi must be <= 1"):
        finite_float(1.5, "psi", low=0, high=1)


def test_check_known_lists_valid_names():
    check_known(["a"], ["a", "b"], "argument")
    with pytest.raises(TypeError, match=r"model 'siren' takes no argument 'zeta'; valid: a, b"):
        check_known(["zeta", "a"], ["a", "b"], "argument", owner="model 'siren'")
    with pytest.raises(ValueError, match="unknown key 'z'; valid: a"):
        check_known(["z"], ["a"], "key", exc=ValueError)
    with pytest.raises(ValueError, match=r"unknown \[grid\] keys 'x', 'y' in 'f.toml'; valid keys: a"):
        check_known(["y", "x", "a"], ["a"], "[grid] key", exc=ValueError, valid="valid keys", where=" in 'f.toml'")


def test_parse_key_values():
    assert parse_key_values(["a=1 b=2.5", "c=true", "d=abc", "a=3"], "--param") == \
        {"a": 3, "b": 2.5, "c": True, "d": "abc"}
    assert parse_key_values(["model=siren,siren2", "seed=0,1"], "--grid", split_lists=True) == \
        {"model": ["siren", "siren2"], "seed": [0, 1]}
    assert math.isnan(parse_key_values(["s0=nan"], "--set")["s0"])
    for bad in ("novalue", "=3"):
        with pytest.raises(ValueError, match="--param expects KEY=VALUE"):
            parse_key_values([bad], "--param")


def test_check_output_path(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert check_output_path(tmp_path / "run.h5") == tmp_path / "run.h5"
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_path(afile / "x.h5")
    with pytest.raises(ValueError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.h5")
    with pytest.raises(ValueError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(ValueError, match="exists"):
        check_output_path(afile, overwrite=False)
    assert check_output_path(tmp_path / "new" / "sub", directory=True) == tmp_path / "new" / "sub"
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_path(afile / "sub", directory=True)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_path(afile, directory=True)
    if os.geteuid() != 0:                       # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="not writable"):
            check_output_path(ro / "x.h5")
