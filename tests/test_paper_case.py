"""The paper's case (Dandi et al. 2024): tanh(z1 + He3(z2)), ReLU, p = k = 2, alpha = 3,
eta = 0.2, 6 steps, one million paths.  Its wall time is measured by benchmarks/."""
import numpy as np
import pytest


@pytest.mark.slow
def test_paper_case_one_million_paths(paper_result):
    res = paper_result
    assert np.allclose(res.problem.a, [1 / np.sqrt(2), -1 / np.sqrt(2)])
    assert res.ok and res.response == "stein"
    assert res.M.shape == (7, 2, 2) and res.Q.shape == (7, 2, 2)
    assert res.C_theta.shape == (7, 7, 2, 2) and res.Psi.shape == (7, 2, 2)
    # batch reuse learns both directions: every overlap is many error bars away from 0
    assert np.all(np.abs(res.overlap[2:]) > 10 * res.overlap_err[2:])
    # training decreases the training loss monotonically in this regime
    assert np.all(np.diff(res.train_loss) < 0)
    # Monte Carlo self-consistency: drawn omega has covariance C_theta (1e6 paths: ~1e-3)
    assert np.nanmax(res.residuals["omega_cov"]) < 0.01
    assert np.nanmax(res.residuals["g_innovation"]) < 1e-8
    # t = 0 observables are exact: M0 = 0, Q0 = I
    assert np.all(res.M[0] == 0) and np.allclose(res.Q[0], np.eye(2))
    assert res.timings["total"] > 0
