"""Population quantities from the order parameters (dmft.population): accuracy of the
integration rules against closed forms and independent adaptive quadrature, the refit readout
(eqs. (7.10), (7.11)) at t = 0 against the closed-form best linear readout of random features,
and in the simulator against an actual ridge refit on fresh samples."""
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import dmft
from dmft.population import PopulationRule, population_errors, refit, replica_errors
from dmft.simulate import run_seed

from quadrature import gauss_expectation


def relu_moments(M, Q, c):
    """Closed forms for ReLU features and the target y = z1 + c He2(z1): K = E[sigma sigma^T]
    (arc-cosine kernel), b = E[sigma y] (Stein: E[relu(h) z] = M/2, E[relu(h) He2(z)] =
    M^2 / sqrt(2 pi Q_jj)), E[y^2] = 1 + 2 c^2, mu = E[sigma]."""
    p = len(Q)
    K = np.empty((p, p))
    for j in range(p):
        for l in range(p):
            s = math.sqrt(Q[j, j] * Q[l, l])
            cos = min(1.0, max(-1.0, Q[j, l] / s))
            th = math.acos(cos)
            K[j, l] = s / (2 * math.pi) * (math.sin(th) + (math.pi - th) * cos)
    d = np.sqrt(np.diag(Q))
    b = M[:, 0] / 2 + c * M[:, 0] ** 2 / (math.sqrt(2 * math.pi) * d)
    return K, b, 1 + 2 * c * c, d / math.sqrt(2 * math.pi)


M2 = np.array([[0.5, 0.1], [-0.2, 0.3]])
Q2 = np.array([[1.0, 0.3], [0.3, 0.8]])


@pytest.mark.parametrize("k", [1, 2], ids=["gauss-hermite", "sobol"])
def test_relu_test_error_and_refit_against_closed_forms(k):
    """p + k = 3 (Gauss-Hermite) and 4 (quasi-Monte Carlo): the stated accuracy."""
    pr = dmft.Problem("z1 + 0.5 * He2(z1)", p=2, k=k, activation="relu", a=[0.8, -0.3],
                      noise=0.2)
    M = M2[:, :k]
    K, b, Ey2, _ = relu_moments(M, Q2, 0.5)
    exact = 0.5 * (pr.a @ K @ pr.a - 2 * pr.a @ b + Ey2 + 0.2)
    test, cls = population_errors(pr, M, Q2)
    assert cls is None
    tol = 1e-5 if k == 1 else 2e-3 * exact
    assert abs(test - exact) < tol, (test, exact)
    for ridge in (0.0, 0.3):
        a_star = np.linalg.solve(K + ridge * np.eye(2), b)
        e_star = 0.5 * (a_star @ K @ a_star - 2 * a_star @ b + Ey2 + 0.2)
        a_num, e_num = refit(pr, M, Q2, ridge)
        assert abs(e_num - e_star) < (1e-4 if k == 1 else 2e-3 * e_star), (ridge, e_num, e_star)
        np.testing.assert_allclose(a_num, a_star, atol=1e-3 if k == 1 else 2e-2)


def test_relu_kink_in_two_dimensions_against_closed_form():
    """One ReLU unit, y = He2(z1) + z1 + noise, M = 0.4, Q = 0.7: E[relu(h)^2] = Q/2,
    E[relu(h) z] = M/2, E[relu(h) He2(z)] = M^2 / sqrt(2 pi Q) (Stein twice), E[y^2] = 3 + noise;
    the Gauss-Hermite rule across the oblique kink within its stated 6e-6 (96 nodes: 2e-4)."""
    pr = dmft.Problem("He2(z1) + z1", activation="relu", noise=0.2)
    m, q = 0.4, 0.7
    exact = 0.5 * (q / 2 - 2 * (m / 2 + m * m / math.sqrt(2 * math.pi * q)) + 3) + 0.1
    test, _ = population_errors(pr, [[m]], [[q]])
    assert abs(test - exact) < 1e-5, (test, exact)


def test_smooth_student_against_adaptive_quadrature():
    pr = dmft.Problem("He3(z1)", p=1, activation="tanh", a=[1.3])
    s = math.sqrt(1.2 - 0.09)
    exact = gauss_expectation(lambda z: 0.5 * (1.3 * np.tanh(0.3 * z[:, 0] + s * z[:, 1])
                                               - (z[:, 0] ** 3 - 3 * z[:, 0])) ** 2, 2)
    test, _ = population_errors(pr, [[0.3]], [[1.2]])
    assert abs(test - exact) < 1e-10


@pytest.mark.parametrize("loss", ["logistic", "correlation", "square"])
def test_losses_and_class_error_for_sign_labels(loss):
    """y = sign(z1), one tanh unit with overlap m: the class error is arccos(m / sqrt(Q)) / pi
    exactly (the Sobol rule's stated 1e-3), the losses against adaptive quadrature."""
    pr = dmft.Problem("sign(z1)", p=1, activation="tanh", a=[1.0], loss=loss)
    m, q = 0.4, 1.3
    s = math.sqrt(q - m * m)
    test, cls = population_errors(pr, [[m]], [[q]])
    assert abs(cls - math.acos(m / math.sqrt(q)) / math.pi) < 1e-3
    ell = {"logistic": lambda yh, y: np.logaddexp(0, -y * yh),
           "correlation": lambda yh, y: -y * yh,
           "square": lambda yh, y: 0.5 * (yh - y) ** 2}[loss]
    # reference: Gauss-Hermite (200 nodes) over u, where the integrand is smooth, then adaptive
    # quadrature over z1 on each side of the jump of sign(z1)
    from scipy import integrate
    x, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()

    def inner(z1):
        return float(w @ ell(np.tanh(m * z1 + s * x), np.sign(z1))) * \
            math.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi)
    exact = sum(integrate.quad(inner, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
                for lo, hi in ((-12.0, 0.0), (0.0, 12.0)))
    assert abs(test - exact) < 2e-5, (test, exact)


def test_vectorised_over_leading_axes_and_nan():
    pr = dmft.Problem("z1 + 0.5 * He2(z1)", p=2, activation="relu")
    M = np.stack([M2[:, :1], 0.5 * M2[:, :1], np.full((2, 1), np.nan)])
    Q = np.stack([Q2, Q2, Q2])
    test, _ = population_errors(pr, M, Q)
    assert test.shape == (3,) and np.isnan(test[2])
    assert abs(test[0] - population_errors(pr, M[0], Q[0])[0]) < 1e-14
    _, err = refit(pr, M[None], Q[None])
    assert err.shape == (1, 3) and np.isnan(err[0, 2])


def test_replica_errors_control_variate():
    """Each replica on a small rule plus the accurate-minus-small difference at the mean: the
    same values as the accurate rule on every replica, to a small fraction of their spread."""
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu")
    rng = np.random.default_rng(0)
    G, T = 16, 3
    M = M2 + 0.01 * rng.standard_normal((G, T, 2, 2))
    Q = Q2 + 0.01 * rng.standard_normal((G, T, 2, 2))
    Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
    fast, _ = replica_errors(pr, M, Q)
    slow, _ = population_errors(pr, M, Q)
    spread = slow.std(axis=0, ddof=1)
    assert np.all(np.abs(fast.mean(0) - slow.mean(0)) < 0.1 * spread / math.sqrt(G))
    np.testing.assert_allclose(fast.std(axis=0, ddof=1), spread, rtol=0.1)


def test_rules_are_deterministic():
    a, b = PopulationRule(2, 2), PopulationRule(2, 2)
    assert a.kind == "sobol-65536" and np.array_equal(a.z, b.z)
    assert PopulationRule(1, 1).kind == "gauss-hermite-400"
    assert abs(a.w.sum() - 1) < 1e-12


# ------------------------------------------------------------------ must show: refit readout
def _features_closed_form_refit(M0, Q0, c, ridge):
    K, b, Ey2, _ = relu_moments(M0, Q0, c)
    a = np.linalg.solve(K + ridge * np.eye(len(Q0)), b)
    return 0.5 * (a @ K @ a - 2 * a @ b + Ey2)


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_refit_at_t0_is_the_best_linear_readout_of_random_features(ridge):
    """At t = 0 the features are sigma(W(0) x) with the given M0, Q0: the refit error of the
    DMFT and of the simulator equals the closed-form best linear readout (ReLU: arc-cosine
    kernel and Stein's lemma), with zero spread (every replica and seed starts there)."""
    M0 = np.array([[0.5], [-0.2]])
    Q0 = np.array([[1.0, 0.3], [0.3, 0.8]])
    pr = dmft.Problem("z1 + 0.5 * He2(z1)", p=2, activation="relu", M0=M0, Q0=Q0, steps=1)
    exact = _features_closed_form_refit(M0, Q0, 0.5, ridge)
    res = dmft.solve(pr, n_paths=400, n_groups=4, seed=0, progress=False)
    sim = dmft.simulate(pr, d=200, n_seeds=2, seed=0, n_jobs=1, n_test=1000, progress=False)
    for obj in (res, sim):
        value, err = obj.refit_error(ridge)
        assert value.shape == (2,) and abs(value[0] - exact) < 1e-4, (value[0], exact)
        assert err[0] < 1e-10


def test_refit_of_independent_random_features_by_quadrature():
    """M0 = 0 (the features independent of the target): a* = E[y] (K + ridge)^{-1} mu and the
    refit error is (a*^T K a* - 2 E[y] a*.mu + E[y^2]) / 2 (at ridge 0: (E[y^2] - E[y]^2
    mu^T K^{-1} mu) / 2), with mu = E[sigma(h)] and K = E[sigma sigma^T] computed here by
    adaptive quadrature for a sigmoid student with correlated rows."""
    Q0 = np.array([[1.0, 0.4], [0.4, 2.0]])
    pr = dmft.Problem("z1 ** 2 + 0.5", p=2, activation="sigmoid", Q0=Q0, steps=1)
    L = np.linalg.cholesky(Q0)
    sig = lambda x: 1 / (1 + np.exp(-x))                                   # noqa: E731
    K = gauss_expectation(lambda u: np.stack([sig(u @ L.T)[:, j] * sig(u @ L.T)[:, l]
                                              for j in range(2) for l in range(2)], 1), 2)
    mu = gauss_expectation(lambda u: sig(u @ L.T), 2)
    K = K.reshape(2, 2)
    Ey, Ey2 = 1.5, 3 + 1 + 0.25      # E[z^4] + 2 * 0.5 * E[z^2] + 0.25
    for ridge in (0.0, 0.2):
        a = Ey * np.linalg.solve(K + ridge * np.eye(2), mu)     # (E[y^2] - E[y]^2 mu.a) at 0
        exact = 0.5 * (a @ K @ a - 2 * Ey * a @ mu + Ey2)
        _, value = refit(pr, np.zeros((2, 1)), Q0, ridge)
        assert abs(value - exact) < 1e-8, (value, exact)


@pytest.mark.slow
def test_refit_matches_an_actual_ridge_refit_on_fresh_samples():
    """d = 2000: at t = 0 and after 3 GD steps, the second layer is refit by ridge regression on
    n_fit fresh samples through the simulator's own W(t), and its error measured on n_eval
    other fresh samples; per seed it agrees with the population refit of that seed's M(t),
    Q(t) within the Monte Carlo error of the fresh samples (n_fit = 15000 >> p keeps the
    fitting bias ~ p / n_fit below it), and SimResult.refit_error averages these per-seed
    values."""
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2,
                      steps=3)
    d, n_fit, n_eval, seeds, ridge = 2000, 15000, 15000, 3, 0.05
    seqs = np.random.SeedSequence(11).spawn(seeds)
    actual, errors, predicted = [], [], []

    def observer(t, W, W_star, a, rng):
        if t not in (0, pr.steps):
            return

        def draw(n):
            F, Y = [], []
            for start in range(0, n, 2000):
                X = rng.standard_normal((min(2000, n - start), d))
                F.append(np.maximum(X @ W.T / math.sqrt(d), 0.0))
                Y.append(pr.target(X @ W_star.T / math.sqrt(d)))
            return np.concatenate(F), np.concatenate(Y)

        F, Y = draw(n_fit)
        a_fit = np.linalg.solve(F.T @ F / n_fit + ridge * np.eye(pr.p), F.T @ Y / n_fit)
        F, Y = draw(n_eval)
        loss = 0.5 * (F @ a_fit - Y) ** 2
        actual.append(loss.mean())
        errors.append(loss.std() / math.sqrt(n_eval))

    outs = []
    for i, seq in enumerate(seqs):
        rng = np.random.default_rng(100 + i)
        with threadpool_limits(1):        # as simulate() runs: the same numbers
            out, status, _ = run_seed(pr.to_dict(), d, seq, n_test=1000,
                                      observer=lambda t, W, Ws, a: observer(t, W, Ws, a, rng))
        assert status == "ok"
        outs.append(out)
        _, pred = refit(pr, out["M"][[0, pr.steps]], out["Q"][[0, pr.steps]], ridge)
        predicted.extend(pred)
    actual, errors, predicted = map(np.array, (actual, errors, predicted))
    z = (actual - predicted) / errors
    assert np.all(np.abs(z) < 4), (actual, predicted, errors)
    assert np.abs(predicted[1::2] - predicted[0::2]).max() > 5 * errors.max()    # it moved
    sim = dmft.simulate(pr, d=d, n_seeds=seeds, seed=11, n_test=1000, progress=False)
    np.testing.assert_array_equal(sim.seeds["M"], np.stack([o["M"] for o in outs]))
    value, err = sim.refit_error(ridge)
    assert abs(value[pr.steps] - predicted[1::2].mean()) < 1e-12
    assert abs(value[0] - predicted[0::2].mean()) < 1e-12 and err[pr.steps] > 0
