"""The simulator beyond the paper's model: losses, a trained second layer and spherical GD,
eqs. (7.1)-(7.4), (7.7).  The first step is checked against an independent implementation that
differentiates the summed empirical loss by finite differences (so l', the layers' step sizes
and the 1/sqrt(d), 1/d normalisations are all tested), for the same draws as the simulator."""
import math

import numpy as np
import pytest

import dmft
from dmft.activations import get_activation
from dmft.losses import loss_derivative, loss_second_derivative, loss_value
from dmft.simulate import initial_weights, run_seed

from quadrature import gauss_expectation

LOSSES = {"square": lambda yh, y: 0.5 * (yh - y) ** 2,
          "logistic": lambda yh, y: np.log1p(np.exp(-y * yh)),
          "correlation": lambda yh, y: -y * yh}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_derivatives_by_finite_differences(loss):
    rng = np.random.default_rng(1)
    yh, y = rng.standard_normal(50) * 2, np.sign(rng.standard_normal(50))
    np.testing.assert_allclose(loss_value(loss, yh, y), LOSSES[loss](yh, y), rtol=1e-13)
    h = 1e-5
    fd1 = (LOSSES[loss](yh + h, y) - LOSSES[loss](yh - h, y)) / (2 * h)
    np.testing.assert_allclose(loss_derivative(loss, yh, y), fd1, atol=1e-8)
    fd2 = (loss_derivative(loss, yh + h, y) - loss_derivative(loss, yh - h, y)) / (2 * h)
    np.testing.assert_allclose(loss_second_derivative(loss, yh, y), fd2, atol=1e-8)
    big = loss_value(loss, np.array([800.0, -800.0]), np.array([-1.0, 1.0]))
    assert np.all(np.isfinite(big))                   # no overflow


def _first_step_by_hand(pr, d, seed_seq):
    """M(1), Q(1), a(1) from the simulator's own draws, with the gradients of the summed loss
    L = sum_mu l(yhat_mu, y_mu) taken by central finite differences.  Since dL/dW =
    sum_mu g_mu x_mu^T / sqrt(d), eq. (1.5) is W <- (1 - eta lambda) W - eta dL/dW; eq. (7.4) is
    a <- (1 - eta_a lambda_a) a - (eta_a / d) dL/da; then eq. (7.7) for spherical GD."""
    act = get_activation(pr.activation)
    rng = np.random.default_rng(seed_seq)
    n = int(round(pr.alpha * d))
    W_star, W = initial_weights(pr, d, rng)
    X = rng.standard_normal((n, d))
    y = pr.labels(X @ W_star.T / math.sqrt(d), rng.standard_normal(n))
    a = pr.a.copy()

    def L(W, a):
        return float(np.sum(LOSSES[pr.loss](act.f(X @ W.T / math.sqrt(d)) @ a, y)))

    eps = 1e-6
    dW = np.zeros_like(W)
    for j in range(pr.p):
        for i in range(d):
            E = np.zeros_like(W)
            E[j, i] = eps
            dW[j, i] = (L(W + E, a) - L(W - E, a)) / (2 * eps)
    da = np.array([(L(W, a + eps * e) - L(W, a - eps * e)) / (2 * eps) for e in np.eye(pr.p)])
    # dL/dW_ji = sum_mu g_mu,j x_mu,i / sqrt(d): the simulator's step is eta * dL/dW
    W1 = (1 - pr.eta * pr.ridge) * W - pr.eta * dW
    a1 = a
    if pr.readout == "trained":
        a1 = (1 - pr.eta_readout * pr.ridge_readout) * a - pr.eta_readout / d * da
    if pr.normalize == "sphere":
        W1 = math.sqrt(d) * W1 / np.linalg.norm(W1, axis=1, keepdims=True)
    return W1 @ W_star.T / d, W1 @ W1.T / d, a1


@pytest.mark.parametrize("kw", [
    dict(target="z1 + 0.5 * He2(z2)", loss="square", readout="trained", eta_readout=0.7,
         ridge_readout=0.2, ridge=0.1),
    dict(target="sign(z1 * z2)", loss="logistic", readout="trained"),
    dict(target="sign(z1) * sign(z2)", loss="logistic", normalize="sphere"),
    dict(target="He2(z1) + z2", loss="correlation", normalize="sphere", readout="trained",
         ridge_readout=0.05),
    dict(target="z1 * z2", loss="correlation"),
], ids=["square-trained", "logistic-trained", "logistic-sphere", "correlation-all",
        "correlation"])
def test_first_step_is_the_gradient_of_the_summed_loss(kw):
    pr = dmft.Problem(**dict(dict(p=2, k=2, activation="tanh", alpha=1.5, eta=0.4, steps=1,
                                  M0=[[0.3, 0.0], [0.0, -0.2]]), **kw))
    d = 24
    seq = np.random.SeedSequence(5)
    out, status, _ = run_seed(pr.to_dict(), d, seq, n_test=200)
    assert status == "ok"
    M1, Q1, a1 = _first_step_by_hand(pr, d, seq)
    np.testing.assert_allclose(out["M"][1], M1, atol=1e-7)
    np.testing.assert_allclose(out["Q"][1], Q1, atol=1e-7)
    np.testing.assert_allclose(out["a"][1], a1, atol=1e-8)
    if pr.readout == "trained":
        assert np.abs(a1 - pr.a).max() > 1e-3          # the readout did move


def test_sphere_keeps_unit_norms_at_every_step():
    pr = dmft.Problem("He3(z1)", p=3, activation="relu", alpha=2.0, eta=1.0, steps=8,
                      normalize="sphere", loss="correlation")
    sim = dmft.simulate(pr, d=300, n_seeds=2, seed=1, n_jobs=1, n_test=1000, progress=False)
    diag = np.einsum("stjj->stj", sim.seeds["Q"])
    assert np.abs(diag - 1).max() < 1e-12
    plain = dmft.simulate(pr.replace(normalize="none"), d=300, n_seeds=2, seed=1, n_jobs=1,
                          n_test=1000, progress=False)
    assert np.abs(np.einsum("tjj->tj", plain.Q) - 1).max() > 0.1     # it would drift


def test_logistic_test_error_and_class_error_at_t0():
    """test_error is the population loss E[l(yhat, y)] (eq. (7.1)); at t = 0 with M0 = 0, yhat
    is independent of y = sign(z1) and E[l] = (E[softplus(yhat)] + E[softplus(-yhat)]) / 2 by
    quadrature; the class error is 1/2."""
    pr = dmft.Problem("sign(z1)", p=1, activation="tanh", a=[1.5], loss="logistic", steps=1)
    sim = dmft.simulate(pr, d=100, n_seeds=4, seed=2, n_jobs=1, n_test=20000, progress=False)
    sp = lambda u: np.logaddexp(0, u)                                    # noqa: E731
    exact = gauss_expectation(lambda z: 0.5 * (sp(1.5 * np.tanh(z[:, 0]))
                                               + sp(-1.5 * np.tanh(z[:, 0]))), 1)
    assert abs(sim.test_error[0] - exact) < 4 * sim.test_error_err[0] + 1e-12
    assert abs(sim.class_error[0] - 0.5) < 4 * sim.class_error_err[0]
    assert sim.class_error.shape == (2,) and sim.seeds["class_error"].shape == (4, 2)
    assert dmft.simulate(pr.replace(target="sign(z1) + 0.1", loss="square"), d=100, n_seeds=2,
                         seed=2, n_jobs=1, n_test=1000, progress=False).class_error is None


def test_correlation_train_loss_is_minus_mean_label_times_output():
    pr = dmft.Problem("z1", p=1, activation="linear", loss="correlation", eta=0.1, steps=2,
                      M0=[[0.5]])
    sim = dmft.simulate(pr, d=200, n_seeds=2, seed=0, n_jobs=1, n_test=20000, progress=False)
    # E[-y yhat] = -a M for a linear student and y = z1; the test error is that population loss
    expected = -pr.a[0] * sim.seeds["M"][:, :, 0, 0]
    np.testing.assert_allclose(sim.seeds["test_error"], expected, atol=0.03)
    assert np.all(np.diff(sim.test_error) < 0)             # GD on -y yhat: the loss falls
