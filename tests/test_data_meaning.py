"""Data with meaning (issue 19, item 5): every netCDF variable carries a long name, a
definition and units (and an equation reference where the theory documentation gives one),
the dimensions have coordinates, and the CSV curves are readable."""
import csv

import numpy as np
import pytest
import xarray as xr

import dmft
from dmft.commands import curves_csv
from dmft.schema import COORDINATES, VARIABLES, attributes

PROBLEM = dict(target="z1 + z2", p=2, activation="tanh", alpha=2.0, eta=0.2, steps=3)


@pytest.fixture(scope="module")
def res():
    return dmft.solve(dmft.Problem(**PROBLEM), n_paths=800, n_groups=4, seed=1)


@pytest.fixture(scope="module")
def sim():
    return dmft.simulate(dmft.Problem(**PROBLEM), d=60, n_seeds=3, seed=1, n_test=1000,
                         n_jobs=1)


def _check_file(path, dims):
    with xr.open_dataset(path) as ds:
        for name, var in ds.data_vars.items():
            for key in ("long_name", "definition", "units"):
                assert var.attrs.get(key), (name, key)
            assert var.attrs == attributes(name), name
        for dim in dims:
            assert dim in ds.coords, dim
            assert ds[dim].attrs["long_name"] == COORDINATES[dim][1]
        assert list(ds["t"].values) == list(range(PROBLEM["steps"] + 1))
        assert list(ds["neuron"].values) == [1, 2] and list(ds["direction"].values) == [1, 2]
        return {d: list(ds[d].values) for d in dims}


def test_result_file_has_meaning(res, tmp_path):
    res.save(tmp_path / "r.nc")
    coords = _check_file(tmp_path / "r.nc", ("t", "s", "neuron", "neuron2", "direction",
                                             "replica"))
    assert coords["replica"] == [0, 1, 2, 3]
    back = dmft.load(tmp_path / "r.nc")           # the round trip stays exact
    for name in ("M", "Q", "C_theta", "test_error_err"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))


def test_sim_file_has_meaning(sim, tmp_path):
    sim.save(tmp_path / "s.nc")
    coords = _check_file(tmp_path / "s.nc", ("t", "neuron", "neuron2", "direction", "seed"))
    assert coords["seed"] == [0, 1, 2]
    back = dmft.load(tmp_path / "s.nc")
    for key in sim.seeds:
        np.testing.assert_array_equal(back.seeds[key], sim.seeds[key])


def test_schema_attributes():
    import re
    for name, var in VARIABLES.items():
        a = attributes(name)
        assert a["long_name"] == var.long_name and a["units"] == "1"
        assert re.fullmatch(r"eqs?\. \(\d+\.\d+\)(, \(\d+\.\d+\))*", a["equation"]), name
        # (tests/test_docs_equations.py checks that every number cited in dmft/ is defined)
        assert attributes(name + "_err")["long_name"].startswith("standard error of")
    assert attributes("replica_M")["long_name"].startswith("per replica: ")
    assert attributes("seed_test_error")["long_name"].startswith("per seed: ")
    assert attributes("sim_Q_err")["long_name"] == "simulation: standard error of the " \
                                                  "student Gram matrix"


def test_equation_reference_is_written():
    from dataclasses import replace

    import dmft.schema as schema
    original = schema.VARIABLES["M"]
    try:
        schema.VARIABLES["M"] = replace(original, equation="(S.1)")
        assert attributes("M")["equation"] == "(S.1)"
        assert attributes("M_err")["equation"] == "(S.1)"
    finally:
        schema.VARIABLES["M"] = original


def test_csv_is_readable(res, sim, tmp_path):
    for run, name in ((res, "r.csv"), (sim, "s.csv")):
        curves_csv(run, tmp_path / name)
        text = (tmp_path / name).read_text()
        rows = list(csv.reader(text.splitlines()))
        assert rows[0][:3] == ["t", "train_loss", "train_loss_err"]
        assert "M_12" in rows[0] and "Q_22_err" in rows[0] and "Q_21" not in rows[0]
        assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
        assert all(len(r) == len(rows[0]) for r in rows)
        width = max(len(x) for r in rows[1:] for x in r)
        assert width <= 17, width                     # %.10g: compact
        table = np.array(rows[1:], dtype=float)
        col = rows[0].index("test_error")
        np.testing.assert_allclose(table[:, col], run.test_error, rtol=1e-9)
        col = rows[0].index("M_21_err")
        np.testing.assert_allclose(table[:, col], run.M_err[:, 1, 0], rtol=1e-9)
