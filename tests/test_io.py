"""Tests for reproducibility, the Result object, and saving/loading results (dmft.io)."""

import os

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dmft  # noqa: E402
from dmft.errors import ProblemError  # noqa: E402
from dmft.result import KERNELS, OBSERVABLES  # noqa: E402

TARGET = "tanh(z1 + He3(z2))"
SOLVE = dict(n_paths=4000, n_groups=8)
ARRAYS = OBSERVABLES + tuple(n + "_err" for n in OBSERVABLES) + KERNELS \
    + tuple(n + "_err" for n in KERNELS) + ("t",)


def _problem(**kw):
    base = dict(p=2, activation="relu", alpha=3.0, eta=0.2, steps=3)
    base.update(kw)
    return dmft.Problem(TARGET, **base)


@pytest.fixture(scope="module")
def problem():
    return _problem()


@pytest.fixture(scope="module")
def res(problem):
    return dmft.solve(problem, seed=123, **SOLVE)


@pytest.fixture(scope="module")
def diverged():
    pr = dmft.Problem("z1", p=1, activation="linear", alpha=2.0, eta=50.0, steps=10)
    with pytest.warns(dmft.DivergenceWarning, match=r"DMFT diverged \(step \d+"):
        return dmft.solve(pr, seed=0, **SOLVE)


def _assert_results_equal(a, b, timings=True):
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert set(a.replicas) == set(b.replicas) == set(OBSERVABLES) | {"a", "test_error_sampled"}
    for name in a.replicas:
        np.testing.assert_array_equal(a.replicas[name], b.replicas[name], err_msg=name)
    assert set(a.residuals) == set(b.residuals)
    for name in a.residuals:
        np.testing.assert_array_equal(a.residuals[name], b.residuals[name], err_msg=name)
    assert a.problem == b.problem
    for key in ("seed", "n_paths", "n_groups", "response", "version", "status", "message",
                "steps_completed"):
        assert getattr(a, key) == getattr(b, key), key
    if timings:
        assert a.timings == b.timings


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_bit_identical(problem, res):
    again = dmft.solve(problem, seed=123, **SOLVE)
    assert res.ok and again.ok
    _assert_results_equal(res, again, timings=False)


def test_different_seeds_differ(problem, res):
    other = dmft.solve(problem, seed=124, **SOLVE)
    for name in ("M", "Q", "train_loss", "test_error", "C_g", "R_g"):
        assert not np.array_equal(getattr(res, name), getattr(other, name)), name


def test_seed_none_is_recorded_and_reproduces(problem):
    r1 = dmft.solve(problem, seed=None, **SOLVE)
    assert isinstance(r1.seed, int) and r1.seed >= 0
    r2 = dmft.solve(problem, seed=r1.seed, **SOLVE)
    np.testing.assert_array_equal(r1.M, r2.M)
    np.testing.assert_array_equal(r1.test_error, r2.test_error)


def test_result_records_metadata(problem, res):
    assert res.seed == 123
    assert res.version == dmft.__version__
    assert res.problem == problem
    assert res.n_paths == 4000 and res.n_groups == 8
    assert res.response == "stein"            # auto -> stein for relu
    assert res.status == "ok" and res.message == "" and res.steps_completed == 3
    assert set(res.timings) >= {"total", "weight_side", "sample_side"}
    assert all(v >= 0 for v in res.timings.values())
    T, p, k = 3, 2, 2
    assert res.M.shape == (T + 1, p, k) and res.Q.shape == (T + 1, p, p)
    assert res.C_theta.shape == (T + 1, T + 1, p, p)
    assert res.replicas["M"].shape == (8, T + 1, p, k)
    for name in ARRAYS:
        assert np.all(np.isfinite(getattr(res, name))), name


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip(res, tmp_path):
    path = tmp_path / "r.nc"
    res.save(path)
    assert path.exists()
    back = dmft.load(path)
    _assert_results_equal(res, back)
    assert isinstance(back, dmft.Result)
    assert back.ok
    # str paths work too
    back2 = dmft.load(str(path))
    np.testing.assert_array_equal(back2.C_theta, res.C_theta)


def test_save_is_atomic_no_leftovers(res, tmp_path):
    res.save(tmp_path / "r.nc")
    res.save(tmp_path / "r.nc")             # overwrite in place
    res.plot(tmp_path / "fig.png")
    names = sorted(os.listdir(tmp_path))
    assert names == ["fig.png", "r.nc"]
    assert not [n for n in names if n.startswith(".tmp-")]


def test_load_missing_file(tmp_path):
    with pytest.raises(ProblemError) as info:
        dmft.load(tmp_path / "missing.nc")
    assert str(info.value).startswith("path:")


def test_load_not_a_netcdf_file(tmp_path):
    path = tmp_path / "junk.nc"
    path.write_text("this is not netCDF")
    with pytest.raises(ProblemError) as info:
        dmft.load(path)
    assert str(info.value).startswith("path:")


def test_load_netcdf_that_is_not_a_result(tmp_path):
    import xarray as xr
    path = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(path, engine="netcdf4")
    with pytest.raises(ProblemError) as info:
        dmft.load(path)
    assert str(info.value).startswith("path:")


def test_plot_writes_png(res, tmp_path):
    path = tmp_path / "plot.png"
    fig = res.plot(path)
    assert path.exists() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_summary_mentions_target(res):
    s = res.summary()
    assert TARGET in s
    assert "status=ok" in s
    assert len(s.splitlines()) >= 4 + res.problem.steps + 1


# ----------------------------------------------------------------------------- divergence
def test_divergence_reported(diverged):
    d = diverged
    T = d.problem.steps
    assert d.status != "ok" and not d.ok
    assert d.steps_completed < T
    fail = d.steps_completed + 1
    assert f"step {fail}" in d.message
    assert d.message.startswith("step ")
    good, bad = slice(0, fail), slice(fail, None)
    for name in OBSERVABLES + ("Psi",):
        x = getattr(d, name)
        assert np.all(np.isfinite(x[good])), name
        assert np.all(np.isnan(x[bad])), name
        if name in d.replicas:
            assert np.all(np.isfinite(d.replicas[name][:, good])), name
            assert np.all(np.isnan(d.replicas[name][:, bad])), name
    for name in ("C_theta", "C_g", "R_theta", "R_g"):
        x = getattr(d, name)
        assert np.all(np.isfinite(x[good, good])), name
        assert np.all(np.isnan(x[bad])), name
        assert np.all(np.isnan(x[:, bad])), name
    assert f"status={d.status}" in d.summary()


def test_diverged_result_save_load(diverged, tmp_path):
    path = tmp_path / "div.nc"
    diverged.save(path)
    back = dmft.load(path)
    _assert_results_equal(diverged, back)
    assert back.status == diverged.status and not back.ok
    assert os.listdir(tmp_path) == ["div.nc"]


def test_plot_to_file_keeps_backend(tmp_path, res):
    import matplotlib
    before = matplotlib.get_backend()
    res.plot(tmp_path / "x.png")
    assert matplotlib.get_backend() == before
