"""Stein (integration by parts) and pathwise response estimators agree within errors."""
import numpy as np
import pytest

import dmft


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["tanh", "erf"])
def test_stein_and_pathwise_agree(activation):
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation=activation, alpha=2.0, eta=0.3,
                      steps=12)
    rs = dmft.solve(pr, n_paths=100_000, seed=3, response="stein")
    rp = dmft.solve(pr, n_paths=100_000, seed=4, response="pathwise")
    assert rs.ok and rp.ok
    zmax = 0.0
    for key in ("M", "Q", "train_loss", "test_error"):
        a, ea = getattr(rs, key)[1:], getattr(rs, key + "_err")[1:]
        b, eb = getattr(rp, key)[1:], getattr(rp, key + "_err")[1:]
        z = np.abs(a - b) / np.sqrt(ea ** 2 + eb ** 2)
        zmax = max(zmax, float(z.max()))
    # ~100 correlated comparisons: the largest |z| of independent normals would be ~3
    assert zmax < 4.0, zmax
    # the overlap really moved: the comparison is not between two zeros
    assert np.all(np.abs(rs.M[-1]) > 20 * rs.M_err[-1])
    # response kernels themselves agree on the first steps (R_g(t, t) and R_g(t, t-1))
    for t in range(1, 4):
        for s in (t, t - 1):
            d = np.abs(rs.R_g[t, s] - rp.R_g[t, s])
            e = np.sqrt(rs.R_g_err[t, s] ** 2 + rp.R_g_err[t, s] ** 2)
            assert np.all(d < 4.5 * e + 1e-12), (t, s, d, e)
