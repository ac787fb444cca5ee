"""Exact large-d answers without sampling: oracles for the DMFT solver.

* :func:`two_steps` (from :mod:`dmft.twostep`): M, Q, train loss and test error at t = 0, 1, 2
  for any activation, target and schedule of a small problem (2p + k <= 6), by quadrature.
* :func:`linear_gd_exact`: whole learning curves of GD on linear ridge regression (below).

For a linear student and a linear teacher, full-batch gradient descent is a linear recursion
whose large-d limit is an integral against the Marchenko-Pastur (MP) law.

Setting: ``x_mu ~ N(0, I_d)`` for ``mu = 1..n``, ``n = alpha d``; teacher ``w*``
with ``|w*|^2 = d``; labels ``y = w*.x/sqrt(d) + sqrt(Delta) eps``; student
``yhat = w.x/sqrt(d)``; loss ``l = (yhat - y)^2 / 2``.  Gradient descent with the
gradient *summed* over samples and ridge ``lambda``::

    w(t+1) = (1 - eta lambda) w(t) - eta sum_mu (yhat_mu - y_mu) x_mu / sqrt(d),

started at ``w(0) = M0 w* + sqrt(Q0 - M0^2) u``, ``u`` a random direction
orthogonal to ``w*`` with ``|u|^2 = d``.

Derivation.  With ``A = X^T X / d`` and ``b = X^T eps / sqrt(d)`` the update is
``w(t+1) = (1 - eta(lambda + A)) w(t) + eta (A w* + sqrt(Delta) b)``, hence::

    w(t) = c_t(A) w* + sqrt(Q0 - M0^2) F_t(A) u + sqrt(Delta) P_t(A) b,
    F_t(x) = (1 - eta lambda - eta x)^t,
    P_t(x) = (1 - F_t(x)) / (lambda + x) = eta sum_{s<t} F_s(x),
    c_t(x) = M0 F_t(x) + x P_t(x).

Quadratic forms ``v^T g(A) v / d`` with ``v`` in a generic direction
concentrate on ``int g dmu`` (``mu`` = spectral law of ``A``), cross terms
vanish, and ``E_eps b^T g(A) b / d = int x g(x) dmu``,
``E_eps eps^T X g(A) X^T eps / d^2 = int x g dmu``.  This gives::

    M(t)  = int c_t dmu
    Q(t)  = int c_t^2 dmu + (Q0 - M0^2) int F_t^2 dmu + Delta int x P_t^2 dmu
    train = [int x (c_t - 1)^2 + (Q0 - M0^2) int x F_t^2 + Delta int x^2 P_t^2
             - 2 Delta int x P_t + Delta alpha] / (2 alpha)
    test  = (Q - 2 M + 1 + Delta) / 2          (equal to train at t = 0).

The law ``mu`` of ``A`` is MP: density ``sqrt((x+ - x)(x - x-)) / (2 pi x)`` on
``[x-, x+]``, ``x+- = (1 +- sqrt(alpha))^2``, of mass ``min(1, alpha)``, plus an
atom of mass ``1 - alpha`` at 0 when ``alpha < 1``.  Moments: ``E x = alpha``,
``E x^2 = alpha (1 + alpha)``.

Quadrature.  The MP density contains a ``1/x`` factor, so Gauss-Chebyshev on
``x = m + r cos(theta)`` is *not* exact for polynomial integrands (and converges
slowly near ``alpha = 1``, where ``x- -> 0``).  Instead we use the Gauss rule of
the MP law itself (Golub-Welsch): the normalised continuous part is a free
Poisson law whose Jacobi matrix is known in closed form (diagonal
``max(1, alpha), 1 + alpha, 1 + alpha, ...``, off-diagonal ``sqrt(alpha)``).
An ``N``-node rule integrates polynomials of degree ``<= 2N - 1`` exactly; every
integrand above is a polynomial of degree ``<= 2t + 1``, so the curves are exact
up to rounding (``~1e-13``) whenever ``N >= steps + 1``, which is enforced.
"""


import numpy as np
from scipy.linalg import eigh_tridiagonal

from dmft.errors import ProblemError
from dmft.checks import integer
from dmft.checks import real as _real

from dmft.twostep import TwoSteps, two_steps

__all__ = ["marchenko_pastur_quadrature", "linear_gd_exact", "two_steps", "TwoSteps"]


def marchenko_pastur_quadrature(alpha, n_nodes=400):
    """Gauss quadrature for the spectral law of ``A = X^T X / d``, ``n = alpha d``.

    Returns ``(x, w)``: nodes (ascending) and positive weights with
    ``sum(w) == 1``.  The continuous part gets an ``n_nodes``-point Gauss rule,
    exact for polynomials of degree ``<= 2 n_nodes - 1``; when ``alpha < 1`` an
    extra node ``x = 0`` with weight ``1 - alpha`` (the atom) is prepended.
    """
    alpha = _real("alpha", alpha, positive=True)
    n_nodes = integer("n_nodes", n_nodes, 1)
    diag = np.full(n_nodes, 1.0 + alpha)
    diag[0] = max(1.0, alpha)
    off = np.full(n_nodes - 1, np.sqrt(alpha))
    x, vecs = eigh_tridiagonal(diag, off)
    w = vecs[0] ** 2
    w /= w.sum()                      # remove rounding in the normalisation
    x = np.clip(x, 0.0, None)         # nodes lie in [x-, x+] with x- >= 0
    if alpha < 1.0:
        x = np.concatenate(([0.0], x))
        w = np.concatenate(([1.0 - alpha], alpha * w))
    return x, w


def linear_gd_exact(alpha, eta, ridge=0.0, noise=0.0, steps=20, M0=0.0, Q0=1.0):
    """Exact ``d -> infinity`` learning curves of GD on linear ridge regression, eqs. (6.3)-(6.7).

    Full-batch GD with the gradient summed over the samples, eq. (1.5), of a linear student
    (p = 1, ``sigma(h) = h``, ``a = 1``) on a linear target ``y = z*_1 + sqrt(Delta) eps``; the
    integrals over the Marchenko-Pastur law, eq. (6.8), are done by its Gauss rule, eq. (6.9),
    with ``max(400, steps + 1)`` nodes, which is exact up to rounding (about 1e-13).  Diverging
    GD (``eta (ridge + x+) > 2``, ``x+ = (1 + sqrt(alpha))^2``) yields growing or non-finite
    values.

    Parameters
    ----------
    alpha : float > 0
        Sample ratio n/d.
    eta : float > 0
        Learning rate.
    ridge : float >= 0, default 0.0
        Weight decay lambda.
    noise : float >= 0, default 0.0
        Label-noise variance Delta.
    steps : int >= 0, default 20
        Number of GD steps T.
    M0 : float, default 0.0
        Initial overlap ``w(0).w*/d``.
    Q0 : float >= M0^2, default 1.0
        Initial squared norm ``|w(0)|^2/d``.

    Returns
    -------
    dict of str to ndarray
        Float64 arrays of shape (steps+1,), entry t after t GD steps: ``"M"`` and ``"Q"``
        (eq. (6.6)), ``"train_loss"`` (the mean per-sample loss ``(yhat - y)^2 / 2`` on the
        training set, without the ridge term) and ``"test_error"`` (the expected loss on a
        fresh noisy sample, ``(Q - 2 M + 1 + Delta) / 2``), eq. (6.7).

    Raises
    ------
    ProblemError
        On a parameter out of its range, naming it (``Q0 < M0^2`` names ``Q0``).
    """
    alpha = _real("alpha", alpha, positive=True)
    eta = _real("eta", eta, positive=True)
    lam = _real("ridge", ridge, nonneg=True)
    delta = _real("noise", noise, nonneg=True)
    steps = integer("steps", steps, 0)
    M0 = _real("M0", M0)
    Q0 = _real("Q0", Q0, nonneg=True)
    if Q0 < M0 * M0:
        raise ProblemError("Q0", f"must satisfy Q0 >= M0^2, got Q0={Q0!r}, M0={M0!r}")
    s2 = Q0 - M0 * M0                 # squared norm (per d) of the part orthogonal to w*

    x, w = marchenko_pastur_quadrature(alpha, max(400, steps + 1))
    g = 1.0 - eta * (lam + x)         # one-step contraction factor
    F = np.ones_like(x)               # F_0
    P = np.zeros_like(x)              # P_0; P_{t+1} = P_t + eta F_t (no 0/0 at x = -lambda)

    out = {k: np.empty(steps + 1) for k in ("M", "Q", "train_loss", "test_error")}
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            c = M0 * F + x * P
            M = w @ c
            Q = w @ (c * c + s2 * F * F + delta * x * P * P)
            train = w @ (x * (c - 1.0) ** 2 + s2 * x * F * F
                         + delta * (x * x * P * P - 2.0 * x * P))
            out["M"][t] = M
            out["Q"][t] = Q
            out["train_loss"][t] = (train + delta * alpha) / (2.0 * alpha)
            out["test_error"][t] = (Q - 2.0 * M + 1.0 + delta) / 2.0
            P = P + eta * F
            F = g * F
    return out
