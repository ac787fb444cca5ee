"""Population quantities of a network as functions of its order parameters (M, Q, a).

For a fresh input x ~ N(0, I_d) the pre-activations h = W x / sqrt(d) and the latent target
coordinates z* = W* x / sqrt(d) are exactly jointly Gaussian with covariance [[Q, M], [M^T, I]]
(eq. (1.10)): h = M z* + (Q - M M^T)^{1/2} u with z* ~ N(0, I_k), u ~ N(0, I_p) independent.
Every population average is therefore a Gaussian integral of dimension p + k, which
:class:`PopulationRule` evaluates on a fixed, deterministic set of points:

* p + k <= 3: tensor Gauss-Hermite (400 nodes per coordinate for p + k <= 2, 64 for 3: a ReLU
  kink across the grid converges only like n^-1.7);
* p + k >= 4: 2^16 scrambled Sobol points (fixed seed) mapped to Gaussians (quasi-Monte Carlo);
* the class error, whose integrand jumps, and every quantity of a problem with +-1 labels (a
  target that jumps) on 2^18 Sobol points (Gauss-Hermite converges only like 1/n across a jump).

Accuracy (measured in tests/test_population.py against adaptive quadrature and closed forms):
round-off for smooth integrands on the Gauss-Hermite rules, 6e-6 with a ReLU kink in two
dimensions and 1e-5 in three, about 2e-4 of the value with quasi-Monte Carlo (ReLU, four
dimensions), 1e-5 for the class error of a sign target.  The same points serve every replica
and seed (common random numbers), so this integration error is common to them and cancels in
differences; it stays below the statistical error bars of the DMFT and of simulations.

:func:`replica_errors` evaluates many parameter sets at once (the replicas of a DMFT solve at
every step) for the price of a few: each replica on a small rule, corrected by the difference
between the accurate and the small rule at the replicas' mean (a control variate: the
replica-to-replica differences are smooth functions of (M, Q, a) that a small rule resolves).

Functions: :func:`population_errors` (test error = population loss E[l(yhat, y)] of eq.
(7.1), label noise included, and class error P(y yhat <= 0) of eq. (7.3)) and
:func:`refit` (the best second layer on the frozen features and its square-loss test error,
eqs. (7.10), (7.11)).
"""
import warnings

import functools

import numpy as np
import scipy.special
from numba import njit
from scipy.stats import qmc

from .activations import add_sigma, get_activation
from .beyond import SQUARE, loss_code, loss_value
from .gaussrules import hermite_rule
from .threads import one_blas_thread, over_groups

__all__ = ["PopulationRule", "population_errors", "replica_errors", "refit", "replica_refit",
           "rule_for"]

#: Gauss-Hermite nodes per coordinate by dimension p + k (accurate and small rules); above,
#: quasi-Monte Carlo with 2^SOBOL_LOG2 points
HERMITE_NODES = {"accurate": {1: 400, 2: 400, 3: 64}, "small": {1: 24, 2: 24, 3: 16}}
SOBOL_LOG2 = {"accurate": 16, "small": 11, "class": 18, "class-small": 12}
SOBOL_SEED = 20240214
#: largest number of pre-activations (parameter sets x points x p) held at once
CHUNK = 2 ** 22
#: points per block of ``_errors`` (its pre-activations stay in the L1 cache)
BLOCK = 512


class PopulationRule:
    """Fixed points (z*, u) and weights for E over z* ~ N(0, I_k), u ~ N(0, I_p) (module
    docstring); the target's values at the points are computed once per target.

    Parameters
    ----------
    p, k : int
        Student width and number of target directions.
    size : {"accurate", "small", "class", "class-small"}
        The accurate rule, the small one of :func:`replica_errors`, or the Sobol rules of the
        class error (accurate and small).

    Attributes
    ----------
    z : ndarray (N, k);  u : ndarray (N, p);  w : ndarray (N,)
        Points and weights (summing to one); ``zT``, ``uT`` the points transposed.
    kind : str
        ``"gauss-hermite-n"`` or ``"sobol-N"``.
    """

    def __init__(self, p, k, size="accurate"):
        D = p + k
        nodes = HERMITE_NODES.get(size, {}).get(D)
        if nodes:
            x, w = hermite_rule(nodes)
            grid = np.meshgrid(*([x] * D), indexing="ij")
            X = np.stack([g.ravel() for g in grid], axis=1)
            W = np.prod(np.meshgrid(*([w] * D), indexing="ij"), axis=0).ravel()
            keep = W > 1e-100                           # no subnormal arithmetic
            X, W = X[keep], W[keep] / W[keep].sum()
            self.kind = f"gauss-hermite-{nodes}"
        else:
            sob = qmc.Sobol(D, scramble=True, seed=SOBOL_SEED).random_base2(SOBOL_LOG2[size])
            X = scipy.special.ndtri(np.clip(sob, 1e-16, 1 - 1e-16))
            W = np.full(len(X), 1.0 / len(X))
            self.kind = f"sobol-{len(X)}"
        self.p, self.k = p, k
        self.z, self.u, self.w = X[:, :k].copy(), X[:, k:].copy(), W
        self.zT, self.uT = np.ascontiguousarray(self.z.T), np.ascontiguousarray(self.u.T)
        self._labels = {}

    def labels(self, target):
        """f*(z*) at the points (cached per target expression).

        Parameters
        ----------
        target : Target
            The target function.

        Returns
        -------
        ndarray, shape (N,)
            Its values at the N points."""
        key = target.expr
        if key not in self._labels:
            with np.errstate(all="ignore"):
                self._labels[key] = np.asarray(target(self.z), dtype=np.float64)
        return self._labels[key]

    def features(self, act, M, Q):
        """sigma(h) at the points for a stack of (M, Q).

        h = M z* + (Q - M M^T)^{1/2} u with the symmetric square root (negative eigenvalues of
        Q - M M^T, round-off, clipped).

        Parameters
        ----------
        act : Activation
            The activation sigma.
        M : ndarray, shape (B, p, k)
            Overlaps of the B parameter sets.
        Q : ndarray, shape (B, p, p)
            Gram matrices of the B parameter sets.

        Returns
        -------
        ndarray, shape (B, p, N)
            sigma(h) at the N points."""
        return act.f(M @ self.zT + _root(M, Q) @ self.uT)

    def errors(self, act, loss, M, Q, A, f, classes=False):
        """The population loss E[l(yhat, f)] (and the class error P(f yhat <= 0)) at the points
        for a stack of (M, Q, a), in one pass over the points per set (``_errors``, sets on
        threads): no array of outputs or features is formed.

        Parameters
        ----------
        act : Activation
            The activation sigma.
        loss : str
            The loss l (``problem.loss``).
        M : ndarray, shape (B, p, k)
            Overlaps of the B parameter sets.
        Q : ndarray, shape (B, p, p)
            Gram matrices of the B parameter sets.
        A : ndarray, shape (B, p)
            Second layers of the B parameter sets.
        f : ndarray, shape (N,)
            The labels f*(z*) at the points (:meth:`labels`).
        classes : bool
            Also the class error.

        Returns
        -------
        (ndarray, ndarray or None)
            E[l(yhat, f)] and, with ``classes``, P(f yhat <= 0), shape (B,) each."""
        S = _root(M, Q)
        test, cls = np.zeros(len(M)), np.zeros(len(M))
        over_groups(_errors, len(M), act.code, loss_code(loss), classes,
                    np.ascontiguousarray(M), np.ascontiguousarray(S), np.ascontiguousarray(A),
                    self.zT, self.uT, np.ascontiguousarray(f, dtype=np.float64), self.w,
                    test, cls)
        return test, (cls if classes else None)


def _root(M, Q):
    """(Q - M M^T)^{1/2} (B, p, p), negative eigenvalues (round-off) clipped: the symmetric
    square root, unique and smooth in (M, Q), so that nearby replicas see nearby points (an
    eigenvector factor may flip or rotate from one replica to the next)."""
    lam, V = np.linalg.eigh(Q - M @ np.swapaxes(M, -1, -2))
    return (V * np.sqrt(np.clip(lam, 0.0, None))[..., None, :]) @ np.swapaxes(V, -1, -2)


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _errors(b0, b1, code, loss, classes, M, S, A, zT, uT, f, wt, test, cls):
    """For the sets b0 .. b1-1: yhat = sum_j A[b, j] sigma(h_j), h = M[b] z* + S[b] u, block
    by block of points (the same helper as the sample side's kernel), and the weighted sums
    test[b] = sum_n w_n l(yhat_n, f_n) and, with ``classes``, cls[b] = sum_n w_n [f_n yhat_n
    <= 0]."""
    p, k = M.shape[1], M.shape[2]
    N = zT.shape[1]
    H, Y = np.empty(BLOCK), np.empty(BLOCK)
    for b in range(b0, b1):
        st = 0.0
        sc = 0.0
        for n0 in range(0, N, BLOCK):
            w = min(BLOCK, N - n0)
            h, o = H[:w], Y[:w]
            for i in range(w):
                o[i] = 0.0
            for j in range(p):
                c, x = M[b, j, 0], zT[0, n0:n0 + w]
                for i in range(w):
                    h[i] = c * x[i]
                for q in range(1, k):
                    c, x = M[b, j, q], zT[q, n0:n0 + w]
                    for i in range(w):
                        h[i] += c * x[i]
                for q in range(p):
                    c, x = S[b, j, q], uT[q, n0:n0 + w]
                    for i in range(w):
                        h[i] += c * x[i]
                add_sigma(code, h, A[b, j], o)
            fb, wb = f[n0:n0 + w], wt[n0:n0 + w]
            if loss == SQUARE:
                for i in range(w):
                    e = o[i] - fb[i]
                    st += wb[i] * (0.5 * e * e)
            else:
                for i in range(w):
                    st += wb[i] * loss_value(loss, o[i], fb[i])
            if classes:
                for i in range(w):
                    sc += wb[i] if fb[i] * o[i] <= 0.0 else 0.0
        test[b] = st
        cls[b] = sc


_RULES = {}


def rule_for(p, k, size="accurate"):
    """The (cached) :class:`PopulationRule` of dimension p + k and the given size.

    Parameters
    ----------
    p, k : int
        Width of the student and number of target directions.
    size : {"accurate", "small", "class", "class-small"}
        Which rule (module docstring).

    Returns
    -------
    PopulationRule
        The integration points and weights.
    """
    if (p, k, size) not in _RULES:
        _RULES[(p, k, size)] = PopulationRule(p, k, size)
    return _RULES[(p, k, size)]


def default_rule(problem):
    """The accurate rule for ``problem``: Gauss-Hermite or Sobol by dimension, the Sobol rule of
    the class error when the labels are +-1 (a target that jumps, where Gauss-Hermite converges
    only like 1/n)."""
    return rule_for(problem.p, problem.k, "class" if problem.pm_labels else "accurate")


def _stack(M, Q, a, p, k):
    """Flatten leading axes: M (B, p, k), Q (B, p, p), a (B, p), the leading shape and which
    sets are finite (the others are replaced by M = 0, Q = I and give NaN)."""
    M, Q = np.asarray(M, dtype=np.float64), np.asarray(Q, dtype=np.float64)
    lead = M.shape[:-2]
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), lead + (p,))
    Ms, Qs, As = M.reshape(-1, p, k).copy(), Q.reshape(-1, p, p).copy(), a.reshape(-1, p).copy()
    ok = np.isfinite(Ms).all(axis=(1, 2)) & np.isfinite(Qs).all(axis=(1, 2)) & \
        np.isfinite(As).all(axis=1)
    Ms[~ok], Qs[~ok], As[~ok] = 0.0, np.eye(p), 0.0
    return Ms, Qs, As, lead, ok


def _chunks(B, N, p):
    step = max(1, CHUNK // max(1, N * p))
    return [slice(i, min(B, i + step)) for i in range(0, B, step)]


def _test_error(problem, rule, act, Ms, Qs, As):
    test, _ = rule.errors(act, problem.loss, Ms, Qs, As, rule.labels(problem.target))
    # square loss: the label noise adds noise/2; logistic: no label noise; correlation: the
    # noise has mean zero
    return test + 0.5 * problem.noise if problem.loss == "square" else test


def _class_error(problem, rule, act, Ms, Qs, As):
    return rule.errors(act, problem.loss, Ms, Qs, As, rule.labels(problem.target), True)[1]


def control_variate(func, problem, M, Q, a, **kwargs):
    """``func(problem, M, Q, a, rule=...)`` (a tuple of arrays with the leading shape (G, T+1),
    None allowed) for every replica at every step: each replica on the small rules plus, per
    step, the accurate-minus-small difference at the replicas' mean (module docstring)."""
    p, k = problem.p, problem.k
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # all-NaN steps stay NaN
        means = [np.nanmean(x, axis=0) for x in (M, Q, a)]
    small = {"rule": rule_for(p, k, "class-small" if problem.pm_labels else "small"),
             "class_rule": rule_for(p, k, "class-small")}
    per = func(problem, M, Q, a, **small, **kwargs)
    at_small = func(problem, *means, **small, **kwargs)
    at_accurate = func(problem, *means, **kwargs)
    return tuple(None if x is None else x + (acc - sm)[None]
                 for x, sm, acc in zip(per, at_small, at_accurate))


def _one_thread(func):
    """Run without BLAS threads: the products here have inner dimensions p, k (a few), where
    threads only cost (and oversubscribe the cores that the solver's own threads use)."""
    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        with one_blas_thread():
            return func(*args, **kwargs)
    return wrapped


@_one_thread
def population_errors(problem, M, Q, a=None, rule=None, class_rule=None):
    """Test error (population loss E[l(yhat, y)], eq. (7.1), label noise included) and class
    error P(y yhat <= 0) (eq. (7.3)) of a network with overlaps (M, Q) and second layer a.

    Parameters
    ----------
    problem : Problem
        Target, activation, loss and label noise.
    M : array (..., p, k)
        Overlaps; any leading axes (steps, replicas, seeds).  Non-finite entries give NaN.
    Q : array (..., p, p)
        Gram matrices, with the leading axes of M.
    a : array (..., p) or (p,), optional
        Second layer (default ``problem.a``).
    rule, class_rule : PopulationRule, optional
        Integration points of the test error and of the class error (default:
        ``default_rule(problem)`` and :func:`rule_for` (p, k, "class")).

    Returns
    -------
    (ndarray, ndarray or None)
        Test error and class error with the leading shape of M; the class error is None unless
        the labels are +-1 (``problem.pm_labels``).
    """
    p, k = problem.p, problem.k
    act = get_activation(problem.activation)
    Ms, Qs, As, lead, ok = _stack(M, Q, problem.a if a is None else a, p, k)
    test = _test_error(problem, rule or default_rule(problem), act, Ms, Qs, As)
    test[~ok] = np.nan
    if not problem.pm_labels:
        return test.reshape(lead), None
    cls = _class_error(problem, class_rule or rule_for(p, k, "class"), act, Ms, Qs, As)
    cls[~ok] = np.nan
    return test.reshape(lead), cls.reshape(lead)


@_one_thread
def replica_errors(problem, M, Q, a=None):
    """:func:`population_errors` of many replicas at every step, at the cost of a few: each
    replica on the small rules plus, per step, the accurate-minus-small difference at the
    replicas' mean (module docstring).

    Parameters
    ----------
    problem : Problem
        Target, activation, loss and label noise.
    M : array (G, T+1, p, k)
        Per-replica overlaps (NaN after a failure).
    Q : array (G, T+1, p, p)
        Per-replica Gram matrices.
    a : array (G, T+1, p), optional
        Per-replica second layer (default ``problem.a``).

    Returns
    -------
    (ndarray, ndarray or None)
        Test error and class error (None unless +-1 labels), shape (G, T+1).
    """
    a = np.broadcast_to(problem.a if a is None else a, np.shape(M)[:-1])
    return control_variate(population_errors, problem, M, Q, a)


@_one_thread
def replica_refit(problem, M, Q, ridge=0.0):
    """:func:`refit` errors of many replicas (or seeds) at every step at the cost of a few (the
    control variate of :func:`replica_errors`).

    Parameters
    ----------
    problem : Problem
        Target, activation and label noise.
    M : array (G, T+1, p, k)
        Per-replica (or per-seed) overlaps.
    Q : array (G, T+1, p, p)
        Per-replica (or per-seed) Gram matrices.
    ridge : float >= 0
        Ridge of the refit.

    Returns
    -------
    ndarray (G, T+1)
        The refit error of each replica at each step.
    """
    def errors(problem, M, Q, a, rule=None, class_rule=None):
        return (refit(problem, M, Q, ridge, rule)[1],)
    return control_variate(errors, problem, M, Q, np.zeros(np.shape(M)[:-1]))[0]


@_one_thread
def refit(problem, M, Q, ridge=0.0, rule=None):
    """The best second layer on the frozen features sigma(h) and its square-loss test error,
    eqs. (7.10), (7.11): a* = (E[sigma sigma^T] + ridge I)^{-1} E[sigma y] and
    E_refit = E[(a* . sigma - y)^2] / 2, label noise included (whatever ``problem.loss``).

    Parameters
    ----------
    problem : Problem
        Target, activation and label noise.
    M : array (..., p, k)
        Overlaps; any leading axes.
    Q : array (..., p, p)
        Gram matrices, with the leading axes of M.
    ridge : float >= 0
        Ridge rho of the refit (0: least squares; a singular E[sigma sigma^T] gives the
        minimum-norm a*).
    rule : PopulationRule, optional
        Integration points (default: :func:`rule_for` (p, k)).

    Returns
    -------
    (ndarray, ndarray)
        a* with shape (..., p) and the refit error with the leading shape of M (NaN where M or
        Q is not finite).
    """
    from .checks import real
    ridge = real("ridge", ridge, nonneg=True)
    p, k = problem.p, problem.k
    rule = rule or default_rule(problem)
    act = get_activation(problem.activation)
    Ms, Qs, _, lead, ok = _stack(M, Q, np.zeros(p), p, k)
    f = rule.labels(problem.target)
    Ey2 = float(np.einsum("n,n->", rule.w, f ** 2)) + problem.noise
    a_star, err = np.empty((len(Ms), p)), np.empty(len(Ms))
    for c in _chunks(len(Ms), len(f), p):
        F = rule.features(act, Ms[c], Qs[c])
        K = (F * rule.w) @ np.swapaxes(F, -1, -2)
        b = F @ (rule.w * f)
        if ridge > 0:
            a_c = np.linalg.solve(K + ridge * np.eye(p), b[..., None])[..., 0]
        else:
            a_c = np.einsum("bjl,bl->bj", np.linalg.pinv(K, rcond=1e-12, hermitian=True), b)
        a_star[c] = a_c
        err[c] = 0.5 * (np.einsum("bj,bjl,bl->b", a_c, K, a_c)
                        - 2 * np.einsum("bj,bj->b", a_c, b) + Ey2)
    a_star[~ok], err[~ok] = np.nan, np.nan
    return a_star.reshape(lead + (p,)), err.reshape(lead)
