"""Step size against gradient flow (dmft.gradient_flow): same-time problems, the weighted
polynomial extrapolation eta -> 0 and its error bars, the figure."""
import pathlib

import numpy as np
import pytest

import dmft
from dmft.exact import linear_gd_exact
from dmft.gradient_flow import (common_times, extrapolate, plot_gradient_flow, same_time,
                                solve_same_time, wls_intercept)

ETAS = [0.4, 0.2, 0.1, 0.05, 0.025]


def test_same_time_problems_and_common_times():
    pr = dmft.Problem("z1", p=1, activation="linear", alpha=2.0, eta=0.3, steps=3)
    probs = same_time(pr, ETAS, 10.0)
    assert [p.steps for p in probs] == [25, 50, 100, 200, 400]
    assert [p.eta for p in probs] == ETAS
    np.testing.assert_allclose(common_times(ETAS, 10.0), 0.4 * np.arange(26))
    with pytest.raises(dmft.ProblemError, match="whole number"):
        same_time(pr, [0.3, 0.2], 1.0)
    with pytest.raises(dmft.ProblemError, match="distinct positive"):
        same_time(pr, [0.2, 0.2], 1.0)


def test_wls_recovers_polynomials_and_propagates_errors():
    x = np.array(ETAS)
    y = (1.5 + 2 * x - 3 * x ** 2)[:, None] * np.ones((1, 2))
    e = np.full_like(y, 0.01)
    v, s, chi2 = wls_intercept(x, y, e, 2)
    np.testing.assert_allclose(v, 1.5, rtol=1e-12)
    assert np.all(chi2 < 1e-12)
    # the intercept's error is the analytic one, sqrt of [(X^T W X)^-1]_00
    X = np.vander(x, 3, increasing=True)
    expected = np.sqrt(np.linalg.inv(X.T @ X / 0.01 ** 2)[0, 0])
    np.testing.assert_allclose(s, expected, rtol=1e-10)
    # a straight line through curved data: biased intercept and a large chi^2
    v1, _, chi1 = wls_intercept(x, y, e, 1)
    assert abs(v1[0] - 1.5) > 0.05 and chi1[0] > 10
    # errors are honest: over noisy draws the intercept scatters by its stated error
    rng = np.random.default_rng(0)
    noisy = y[:, :1] + 0.01 * rng.standard_normal((5, 4000))
    v, s, chi2 = wls_intercept(x, noisy, np.full_like(noisy, 0.01), 2)
    assert np.std(v) == pytest.approx(s[0], rel=0.05)
    assert np.mean(chi2) == pytest.approx(1.0, rel=0.05)


def test_extrapolation_of_exact_linear_gd_is_gradient_flow():
    """Exact GD curves (linear ridge regression, stable below eta = 2 / (ridge + (1 +
    sqrt(alpha))^2) = 0.67) at eta = 0.2 .. 0.05 to tau = 4, extrapolated quadratically,
    agree with the exact curve at eta = 0.001 (gradient flow to O(1e-3)); the runs
    themselves are off by far more."""
    tau, kw = 4.0, dict(alpha=0.5, ridge=0.1, noise=0.25)
    etas = np.array([0.2, 0.1, 0.05])
    taus = common_times(list(etas), tau)
    y = np.stack([linear_gd_exact(eta=e, steps=int(round(tau / e)), **kw)["test_error"]
                  [np.round(taus / e).astype(int)] for e in etas])
    v, _, _ = wls_intercept(etas, y, np.full_like(y, 1e-3), 2)
    fine = linear_gd_exact(eta=0.001, steps=4000, **kw)["test_error"][
        np.round(taus / 0.001).astype(int)]
    assert np.max(np.abs(v - fine)) < 2e-3
    assert np.max(np.abs(y[0] - fine)) > 10 * np.max(np.abs(v - fine))


def test_extrapolate_real_runs_and_figure(tmp_path):
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2, steps=2)
    runs = solve_same_time(pr, [0.4, 0.2, 0.1], 0.8, n_paths=4000, progress=False)
    assert [r.seed for r in runs] == [0, 1, 2]
    lim = extrapolate(runs)
    np.testing.assert_allclose(lim.tau, [0.0, 0.4, 0.8])
    assert lim.value["M"].shape == (3, 2, 2) and lim.value["test_error"].shape == (3,)
    assert np.all(lim.error["test_error"][1:] > 0) and np.all(np.isfinite(lim.value["Q"]))
    np.testing.assert_allclose(lim.value["Q"][0], np.eye(2), atol=1e-9)
    with pytest.raises(dmft.ProblemError, match="same time"):
        extrapolate(runs[:2] + [dmft.solve(pr.replace(eta=0.1, steps=4), n_paths=4000,
                                           progress=False)])
    fig = plot_gradient_flow(runs, lim, path=str(tmp_path / "gf.png"))
    assert len(fig.axes) == 10 and (tmp_path / "gf.png").stat().st_size > 10_000


def _example():
    import runpy
    return runpy.run_path(str(pathlib.Path(__file__).resolve().parent.parent / "examples" /
                              "gradient_flow.py"), run_name="example")


def test_example_study_file():
    """examples/gradient_flow.toml is the issue's study: five learning rates to eta t = 10."""
    ex = _example()
    root = pathlib.Path(__file__).resolve().parent.parent
    problem, study, solver = ex["read_study"](str(root / "examples" / "gradient_flow.toml"))
    assert study == {"etas": [0.4, 0.2, 0.1, 0.05, 0.025], "time": 10.0, "degree": 2}
    assert problem.to_dict()["target"] == "tanh(z1 + He3(z2))" and solver["n_groups"] == 8
    dmft.solver.solver_settings(problem.replace(steps=400, eta=0.025), **solver)


def test_example_runs_and_refuses_bad_input(tmp_path, capsys):
    ex = _example()
    cfg = tmp_path / "gf.toml"
    cfg.write_text('[problem]\ntarget = "tanh(z1 + He3(z2))"\np = 2\nactivation = "relu"\nalpha = 3.0\n'
                   'eta = 0.2\nsteps = 1\n[solver]\nn_paths = 4000\nn_groups = 4\n'
                   '[gradient_flow]\netas = [0.4, 0.2]\ntime = 1.2\ndegree = 1\n')
    out = tmp_path / "out"
    assert ex["main"](["--config", str(cfg), "--out", str(out)]) == 0
    assert (out / "gradient_flow.png").stat().st_size > 0
    head = (out / "gradient_flow.csv").read_text().splitlines()[0]
    assert head.startswith("tau,M_0,M_0_err,") and head.endswith("test_error,test_error_err")
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace("etas = [0.4, 0.2]", "etas = [0.4, -0.2]"))
    capsys.readouterr()
    assert ex["main"](["--config", str(bad), "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "etas" in err[0] and not (tmp_path / "no").exists()
