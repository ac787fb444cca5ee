"""Finite-size GD simulator: exact initialisation, exact first step, options, failures, I/O."""
import numpy as np
import pytest

import dmft
from dmft.simulate import initial_weights, run_seed
from dmft.targets import Target

from quadrature import gauss_expectation

PAPER = dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2)


@pytest.mark.parametrize("trial", range(5))
def test_initialisation_is_exact(trial):
    rng = np.random.default_rng(trial)
    p, k, d = 3, 2, 400
    M0 = 0.4 * rng.standard_normal((p, k))
    A = rng.standard_normal((p, p))
    Q0 = M0 @ M0.T + A @ A.T / p + (0.0 if trial % 2 else 0.1) * np.eye(p)
    pr = dmft.Problem("z1 * z2", p=p, k=k, M0=M0, Q0=Q0, alpha=1.0, eta=0.1, steps=1)
    W_star, W0 = initial_weights(pr, d, rng)
    np.testing.assert_allclose(W_star @ W_star.T / d, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(W0 @ W_star.T / d, M0, atol=1e-12)
    np.testing.assert_allclose(W0 @ W0.T / d, Q0, atol=1e-12)
    sim = dmft.simulate(pr, d=d, n_seeds=2, seed=trial, n_jobs=1)
    np.testing.assert_allclose(sim.M[0], M0, atol=1e-12)
    np.testing.assert_allclose(sim.Q[0], Q0, atol=1e-12)


def test_mean_first_step_matches_exact_formula():
    """M(1) = eta alpha E[sigma'(w)] a E[y z*^T] holds in expectation at any finite d
    (h(0) is independent of z* when M0 = 0): the mean over seeds agrees within 4 errors."""
    pr = dmft.Problem(**PAPER, steps=1)
    f = Target(PAPER["target"])
    Eyz = gauss_expectation(lambda z: f(z)[:, None] * z, 2)
    expected = pr.eta * pr.alpha * 0.5 * np.outer(pr.a, Eyz)
    sim = dmft.simulate(pr, d=1000, n_seeds=24, seed=3)
    assert sim.ok and sim.n_seeds == 24
    assert np.all(np.abs(sim.M[1] - expected) < 4 * sim.M_err[1]), (sim.M[1], expected, sim.M_err[1])
    assert np.all(sim.M_err[1] > 0)


def test_same_seed_same_numbers_whatever_the_processes():
    pr = dmft.Problem(**PAPER, steps=3)
    a = dmft.simulate(pr, d=300, n_seeds=3, seed=7, n_jobs=1)
    b = dmft.simulate(pr, d=300, n_seeds=3, seed=7, n_jobs=2)
    for name in ("M", "Q", "train_loss", "test_error"):
        np.testing.assert_array_equal(a.seeds[name], b.seeds[name])
    c = dmft.simulate(pr, d=300, n_seeds=3, seed=8, n_jobs=1)
    assert not np.array_equal(a.M, c.M)


def test_float32_option_agrees_with_float64():
    pr = dmft.Problem(**PAPER, steps=3)
    s64 = dmft.simulate(pr, d=500, n_seeds=8, seed=1, n_jobs=1)
    s32 = dmft.simulate(pr, d=500, n_seeds=8, seed=1, dtype="float32", n_jobs=1)
    assert s32.dtype == "float32" and s32.ok
    z = np.abs(s32.M - s64.M) / np.sqrt(s32.M_err ** 2 + s64.M_err ** 2 + 1e-30)
    assert np.nanmax(z[1:]) < 4.5


def test_refuses_what_does_not_fit_in_memory():
    pr = dmft.Problem(**PAPER, steps=1)
    with pytest.raises(dmft.ProblemError, match="^d:"):
        dmft.simulate(pr, d=2_000_000, n_seeds=2)


@pytest.mark.parametrize("kw, field", [
    (dict(d=1), "d"), (dict(n_seeds=0), "n_seeds"), (dict(dtype="float16"), "dtype"),
    (dict(seed=-3), "seed"), (dict(n_jobs=0), "n_jobs"),
])
def test_bad_arguments(kw, field):
    pr = dmft.Problem(**PAPER, steps=1)
    with pytest.raises(dmft.ProblemError, match=f"^{field}:"):
        dmft.simulate(pr, **{"d": 100, **kw})


def test_divergence_is_reported_and_finished_steps_kept():
    pr = dmft.Problem("z1", p=1, activation="linear", alpha=2.0, eta=50.0, steps=12)
    with pytest.warns(dmft.DivergenceWarning, match=r"simulation diverged in 2 of 2 seeds"):
        sim = dmft.simulate(pr, d=200, n_seeds=2, seed=0, n_jobs=1)
    assert sim.status == "diverged" and "step" in sim.message
    assert 0 <= sim.steps_completed < pr.steps
    assert f"step {sim.steps_completed + 1}:" in sim.message
    assert np.all(np.isfinite(sim.M[:2])) and np.isnan(sim.M[-1]).all()


def test_save_load_round_trip(tmp_path):
    pr = dmft.Problem(**PAPER, steps=2)
    sim = dmft.simulate(pr, d=200, n_seeds=3, seed=2, n_jobs=1)
    sim.save(tmp_path / "s.nc")
    back = dmft.load(tmp_path / "s.nc")
    assert isinstance(back, dmft.SimResult) and back.problem == pr
    for name in ("M", "Q", "train_loss", "test_error", "overlap"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sim, name))
        np.testing.assert_array_equal(getattr(back, name + "_err"), getattr(sim, name + "_err"))
        if name in back.seeds:
            np.testing.assert_array_equal(back.seeds[name], sim.seeds[name])
    assert (back.d, back.n_seeds, back.seed, back.dtype, back.version) == \
        (sim.d, sim.n_seeds, sim.seed, sim.dtype, dmft.__version__)


def test_direct_run_matches_numpy_gd():
    """One seed against a transparent numpy re-implementation of the conventions of docs theory section 1."""
    pr = dmft.Problem("z1 + 0.5 * z1 * z2", p=2, activation="tanh", alpha=1.5, eta=0.3,
                      ridge=0.05, noise=0.1, steps=4)
    d = 150
    seq = np.random.SeedSequence(11)
    out, status, _ = run_seed(pr.to_dict(), d, seq)
    rng = np.random.default_rng(seq)
    W_star, W = initial_weights(pr, d, rng)
    n = int(round(pr.alpha * d))
    X = rng.standard_normal((n, d))
    y = pr.target(X @ W_star.T / np.sqrt(d)) + np.sqrt(pr.noise) * rng.standard_normal(n)
    for t in range(pr.steps + 1):
        np.testing.assert_allclose(out["M"][t], W @ W_star.T / d, atol=1e-12)
        np.testing.assert_allclose(out["Q"][t], W @ W.T / d, atol=1e-12)
        H = X @ W.T / np.sqrt(d)
        err = np.tanh(H) @ pr.a - y
        np.testing.assert_allclose(out["train_loss"][t], 0.5 * np.mean(err ** 2), rtol=1e-12)
        G = err[:, None] * pr.a[None, :] * (1 - np.tanh(H) ** 2)
        W = (1 - pr.eta * pr.ridge) * W - pr.eta * G.T @ X / np.sqrt(d)
    assert status == "ok"
