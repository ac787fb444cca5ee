"""Tests of the exact linear-GD oracle dmft.exact."""

import numpy as np
import pytest
from scipy.integrate import quad

from dmft.errors import ProblemError
from dmft.exact import linear_gd_exact, marchenko_pastur_quadrature

KEYS = ("M", "Q", "train_loss", "test_error")


def _mp_density(alpha):
    lo, hi = (1 - np.sqrt(alpha)) ** 2, (1 + np.sqrt(alpha)) ** 2
    return lo, hi, lambda x: np.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * np.pi * x)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 1.0, 2.0, 4.0])
def test_quadrature_moments(alpha):
    x, w = marchenko_pastur_quadrature(alpha, 100)
    lo, hi, _ = _mp_density(alpha)
    assert np.all(w > 0)
    assert abs(w.sum() - 1.0) < 1e-13
    assert np.all(x >= 0) and np.all(x <= hi + 1e-12)
    # tr(A^k)/d for A = X^T X / d: alpha, alpha(1+alpha), alpha(1 + 3 alpha + alpha^2)
    assert w @ x == pytest.approx(alpha, rel=1e-12)
    assert w @ x**2 == pytest.approx(alpha * (1 + alpha), rel=1e-12)
    assert w @ x**3 == pytest.approx(alpha * (1 + 3 * alpha + alpha**2), rel=1e-12)
    if alpha < 1:
        assert x[0] == 0.0 and w[0] == pytest.approx(1 - alpha, abs=1e-15)
        assert np.all(x[1:] >= lo - 1e-12)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.5])
def test_quadrature_matches_density(alpha):
    """The Gauss rule reproduces integrals against the explicit MP density + atom."""
    x, w = marchenko_pastur_quadrature(alpha, 200)
    lo, hi, rho = _mp_density(alpha)
    atom = max(0.0, 1.0 - alpha)
    assert quad(rho, lo, hi, limit=200)[0] + atom == pytest.approx(1.0, abs=1e-9)
    for f in (lambda t: t**3, lambda t: np.exp(-t), lambda t: 1.0 / (0.1 + t)):
        ref = quad(lambda t: f(t) * rho(t), lo, hi, limit=200, epsabs=1e-13)[0] + atom * f(0.0)
        assert w @ f(x) == pytest.approx(ref, abs=1e-9)


def test_initial_values_and_first_step():
    alpha, eta, lam, delta, M0, Q0 = 1.7, 0.15, 0.3, 0.4, 0.2, 0.9
    out = linear_gd_exact(alpha, eta, lam, delta, steps=3, M0=M0, Q0=Q0)
    for k in KEYS:
        assert out[k].shape == (4,) and out[k].dtype == np.float64
    assert out["M"][0] == pytest.approx(M0, abs=1e-13)
    assert out["Q"][0] == pytest.approx(Q0, abs=1e-13)
    e0 = (Q0 - 2 * M0 + 1 + delta) / 2
    assert out["train_loss"][0] == pytest.approx(e0, abs=1e-13)
    assert out["test_error"][0] == pytest.approx(e0, abs=1e-13)
    # t = 1 from the moments E x = alpha, E x^2 = alpha (1 + alpha):
    # c_1 = M0 a + eta (1 - M0) x, F_1 = a - eta x, P_1 = eta, with a = 1 - eta lambda.
    a, m2 = 1 - eta * lam, alpha * (1 + alpha)
    M1 = M0 * a + eta * (1 - M0) * alpha
    Q1 = (M0**2 * a**2 + 2 * M0 * a * eta * (1 - M0) * alpha + eta**2 * (1 - M0) ** 2 * m2
          + (Q0 - M0**2) * (a**2 - 2 * a * eta * alpha + eta**2 * m2) + delta * eta**2 * alpha)
    assert out["M"][1] == pytest.approx(M1, abs=1e-13)
    assert out["Q"][1] == pytest.approx(Q1, abs=1e-13)
    assert out["test_error"][1] == pytest.approx((Q1 - 2 * M1 + 1 + delta) / 2, abs=1e-13)


def test_noiseless_interpolation_recovers_teacher():
    """alpha = 2, no noise, no ridge: A is invertible, GD converges to w*."""
    out = linear_gd_exact(2.0, 0.3, ridge=0.0, noise=0.0, steps=600)
    assert out["M"][-1] == pytest.approx(1.0, abs=1e-9)
    assert out["Q"][-1] == pytest.approx(1.0, abs=1e-9)
    assert out["test_error"][-1] < 1e-9 and out["train_loss"][-1] < 1e-9
    # eta < 2 / x+ with no ridge: every eigen-component contracts, so both the
    # quadratic train loss and |w - w*|^2 decrease (checked before rounding level).
    assert np.all(np.diff(out["train_loss"][:150]) < 0)
    assert np.all(np.diff(out["test_error"][:150]) < 0)


def test_nodes_do_not_matter_once_exact():
    a = linear_gd_exact(0.5, 0.2, 0.1, 0.25, steps=30, M0=0.1, Q0=0.5)
    x, w = marchenko_pastur_quadrature(0.5, 31)   # already exact for 30 steps
    F, P, M = np.ones_like(x), np.zeros_like(x), []
    for t in range(31):
        M.append(w @ (0.1 * F + x * P))
        P, F = P + 0.2 * F, (1 - 0.2 * (0.1 + x)) * F
    np.testing.assert_allclose(a["M"], M, rtol=0, atol=1e-12)


def _simulate(alpha, eta, ridge, noise, steps, M0, Q0, d, seed):
    """Direct finite-d GD with the summed gradient; returns the four curves."""
    rng = np.random.default_rng(seed)
    n = int(round(alpha * d))
    X = rng.standard_normal((n, d))
    ws = rng.standard_normal(d)
    ws *= np.sqrt(d) / np.linalg.norm(ws)
    u = rng.standard_normal(d)
    u -= (u @ ws) / d * ws
    u *= np.sqrt(d) / np.linalg.norm(u)
    y = X @ ws / np.sqrt(d) + np.sqrt(noise) * rng.standard_normal(n)
    w = M0 * ws + np.sqrt(Q0 - M0**2) * u
    res = {k: np.empty(steps + 1) for k in KEYS}
    for t in range(steps + 1):
        r = X @ w / np.sqrt(d) - y
        M, Q = w @ ws / d, w @ w / d
        res["M"][t], res["Q"][t] = M, Q
        res["train_loss"][t] = 0.5 * np.mean(r**2)
        res["test_error"][t] = (Q - 2 * M + 1 + noise) / 2   # exact average over a fresh sample
        w = (1 - eta * ridge) * w - eta * X.T @ r / np.sqrt(d)
    return res


@pytest.mark.slow
@pytest.mark.parametrize("alpha,M0,Q0", [(0.5, 0.0, 1.0), (2.0, 0.3, 0.5)])
def test_matches_finite_size_simulation(alpha, M0, Q0):
    eta, ridge, noise, steps, d, seeds = 0.2, 0.1, 0.25, 20, 2000, 6
    exact = linear_gd_exact(alpha, eta, ridge, noise, steps, M0, Q0)
    sims = [_simulate(alpha, eta, ridge, noise, steps, M0, Q0, d, s) for s in range(seeds)]
    # Each observable is a normalised quadratic form in d or n Gaussian directions;
    # its per-run fluctuation is ~ C / sqrt(min(n, d)) with C <= 2.2 here (measured
    # worst case: train loss at alpha = 0.5, where n = 1000), and the finite-d bias
    # is O(1/d).  Averaging `seeds` runs, allow ~2.5 standard deviations of C = 2.2
    # (tolerance ~0.07 at alpha = 0.5, ~0.05 at alpha = 2; curves are O(1)).
    tol = 5.5 / np.sqrt(seeds * min(alpha * d, d))
    for k in KEYS:
        mean = np.mean([s[k] for s in sims], axis=0)
        assert np.max(np.abs(mean - exact[k])) < tol, (k, np.abs(mean - exact[k]).max(), tol)


@pytest.mark.parametrize("kwargs,field", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha"), (dict(alpha=np.nan), "alpha"),
    (dict(eta=0.0), "eta"), (dict(ridge=-0.1), "ridge"), (dict(noise=-1e-3), "noise"),
    (dict(steps=-1), "steps"), (dict(steps=2.5), "steps"), (dict(steps=True), "steps"),
    (dict(M0=0.8, Q0=0.5), "Q0"), (dict(M0="x"), "M0"),
])
def test_validation(kwargs, field):
    args = dict(alpha=1.0, eta=0.1)
    args.update(kwargs)
    with pytest.raises(ProblemError) as err:
        linear_gd_exact(**args)
    assert err.value.field == field


def test_quadrature_validation():
    with pytest.raises(ProblemError):
        marchenko_pastur_quadrature(0.0)
    with pytest.raises(ProblemError):
        marchenko_pastur_quadrature(1.0, n_nodes=0)
