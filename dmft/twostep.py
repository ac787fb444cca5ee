"""The first two GD steps without sampling: M, Q, train loss and test error at t = 0, 1, 2.

For t <= 2 the sample side of the DMFT is a function of finitely many Gaussians, eqs.
(6.10)-(6.13): the target coordinates z* (k), the label noise eps (1,
when noise > 0), the sample's field at t = 0, omega(0) = P(0) e (e ~ N(0, I_p), P(0) P(0)^T =
Q0 - M0 M0^T), the innovation u0 ~ N(0, I_p) of omega(1) and, for the train loss at t = 2 of a
reused batch, the innovation u1 of omega(2).  The weight side is linear.  In the whitened form
of :mod:`dmft.weight` (A = alpha, the size over d of the batch used at each step; lr = the
learning rate eta; d = 1 - eta * ridge; K(t, .) the lower-triangular factor of C_g):

    h(0) = M0 z* + P0 e,                          g = l'(yhat, y) a * sigma'(h),  l' = yhat - y
    M(1) = d M0 - lr A E[g(0) z*^T],  P1 = d P0 - lr A E[g(0) e^T],  B10 = -lr K00
    omega(1) = P1 e + sqrt(A) B10 u0,  h(1) = M(1) z* + omega(1) - lr g(0)  (reused batch)
    M(2) = d M(1) - lr A E[g(1) z*^T],  P2 = d P1 - lr A E[g(1) e^T],
    K10 = E[g(1) g(0)^T] K00^+T (0 for a fresh batch),
    B20 = d B10 - lr K10 - lr sqrt(A) E[g(1) u0^T],
    B21 = -lr K11,  C_theta(t, t) = P_t P_t^T + A sum_v B_tv B_tv^T,  Q(t) = M M^T + C_theta(t, t)
    h(2) = M(2) z* + P2 e + sqrt(A) (B20 u0 + B21 u1)
           - lr (d g(0) + sqrt(A) E[g(1) u0^T] K00^+ g(0) + g(1))

(E[g e^T], E[g u0^T]: Gaussian integration by parts, the response functions times the field's
factors, so no response is ever divided out.)  Schedules: the batch of step 1 is the batch of
step 0 for multi-pass and reuse-R (R >= 2), fresh for one-pass; the batch of step 2 is the same
again for multi-pass and reuse-R (R >= 3), fresh for one-pass and reuse-2 (whose train loss at
t = 2 is then the test error).  Mini-batch SGD with 1/B >= 3 steps per epoch is one-pass with
alpha B per step; with 1/B = 2 it is refused: step 2 starts a reshuffled epoch whose samples
carry the memory of step 0 or of step 1, a mixture this module does not implement.

Quadrature (decisions recorded here).  The integrals are nested: Gauss-Hermite over z* and eps
("outer" coordinates), then, by :func:`dmft.gaussrules.stage_rule`, over e given them, u0 given
those, u1 given those ("inner"); the pre-activation of each stage is affine in its Gaussians,
so an activation with a kink (ReLU) is integrated piece by piece, split where it crosses the
kink.  The outer coordinates carry the label, which reuse puts into the pre-activations (e.g.
tanh(lr He3(z*))), steep in z*: for a kinked activation, whose inner stages are smooth piece by
piece, they get RATIO times the inner nodes.  Each integral gets about BUDGET points (the train
loss at t = 2 of a reused batch, of dimension 3p + k + 1, four times that).
Every quantity is computed three times, with the outer and then the inner order lowered to
about 3/4; its stated ``accuracy`` at time t is SAFETY times the sum of the two changes, the
largest over its entries (a single change can vanish by chance), at least ROUNDOFF relative.
Smooth integrands converge fast, but not always to round-off at affordable orders (those steep
pre-activations).  Memory is bounded: the outer nodes are processed in chunks of at most
``CHUNK`` points of the nested grid.  Deterministic: fixed rules, fixed summation order, no
BLAS reductions.

Beyond the paper's model (section 7 of the theory): the loss enters through l and l' in
:meth:`_Model.forward` (square and correlation; the logistic loss is refused: its +-1 labels are
discontinuous in z*, which the tensor rule over z* does not integrate to a stated accuracy); a
trained second layer makes ``a`` a per-step list, a(1) and a(2) from E[l' sigma(h(t))]
accumulated in the same passes (eqs. (7.5), (7.6)); spherical normalisation multiplies the new
rows M(t+1), P(t+1), B(t+1, .) by D(t+1) in :func:`_advance` (eqs. (7.8), (7.9)), so that the
memory term of h(1) is -eta D(1) g(0) and that of h(2) is
-eta D(2) (d D(1) g(0) + sqrt(A) E[g(1) u0^T] K00^+ g(0) + g(1)).
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .activations import get_activation
from .beyond import readout_rates, readout_step
from .checks import integer
from .errors import ProblemError
from .gaussrules import hermite_rule, lower_factor, stage_rule, stage_size
from .losses import loss_derivative, loss_value
from .problem import Problem

__all__ = ["two_steps", "TwoSteps", "MAX_DIM"]

MAX_DIM = 6              #: largest accepted 2p + k
CHUNK = 1 << 17          #: points of the nested grid evaluated at once
BUDGET = 3e6             #: points per integral when ``order`` is None (train2: 4x)
RATIO = {False: 1, True: 2}   #: outer over inner nodes per coordinate (smooth, kinked)
KINKS = {"relu": 0.0}    #: activations whose derivative jumps, and where
ROUNDOFF = 1e-13         #: relative round-off floor of the stated accuracy
SAFETY = 2.0             #: stated accuracy = SAFETY x the changes between the orders


@dataclass(frozen=True)
class TwoSteps:
    """Result of :func:`two_steps`: exact large-d values at t = 0, 1, 2 and their accuracy.

    The quadrature of eqs. (6.10)-(6.13); every array is indexed by t on its first axis.

    Attributes
    ----------
    problem : Problem
        The problem integrated (its ``steps`` ignored).
    M : ndarray, shape (3, p, k)
        Student-target overlaps M(t), eq. (1.6).
    Q : ndarray, shape (3, p, p)
        Gram matrix Q(t) of the student, eq. (1.6).
    train_loss, test_error : ndarray, shape (3,)
        Train loss, eq. (1.8), and test error, eq. (1.9), of the problem's loss (eq. (7.1)).
    a : ndarray, shape (3, p)
        The second layer a(t) (constant for a fixed readout; eqs. (7.5), (7.6)).
    accuracy : dict of str to ndarray
        For each of "M", "Q", "a", "train_loss" and "test_error", an array of the quantity's
        shape, constant over its entries at each t: SAFETY (2) times the largest change of the
        entries when the outer, then the inner order is lowered (the two changes summed), at
        least ROUNDOFF (1e-13) times ``max(1, largest |entry|)``; an absolute bound.
    orders : dict of str to tuple of int
        For each integral, the Gauss nodes per coordinate (outer, inner): "t0" the averages at
        t = 0, "t1" at t = 1, "train2" the train loss at t = 2 of a reused batch, "test" the
        test errors.
    check_orders : dict of str to list of tuple of int
        For each integral, the two lowered (outer, inner) pairs from which ``accuracy`` is
        stated.
    """

    problem: Problem
    M: np.ndarray
    Q: np.ndarray
    train_loss: np.ndarray
    test_error: np.ndarray
    accuracy: dict
    orders: dict
    check_orders: dict
    a: np.ndarray = None


# ------------------------------------------------------------------------------- sample side
def _loss(yhat, y, loss="square"):
    """Per-sample loss l(yhat, y), eq. (7.1)."""
    if loss == "square":
        return 0.5 * (yhat - y) ** 2
    return loss_value(loss, yhat, y)


def _dloss(yhat, y, loss="square"):
    """l'(yhat, y) = dl/dyhat, eq. (7.1)."""
    if loss == "square":
        return yhat - y
    return loss_derivative(loss, yhat, y)


class _Model:
    """Constants of the problem and the weight-side rows known so far (filled by _advance)."""

    def __init__(self, problem):
        pl = problem.plan
        if pl.kind == "minibatch" and pl.steps_per_epoch() == 2:
            raise ProblemError("schedule", "minibatch-0.5 is not reduced to a fixed batch law "
                                           "at t = 2 (step 2 reshuffles samples that carry the "
                                           "memory of step 0 or of step 1); use the Monte Carlo "
                                           "solver")
        self.reuse1 = pl.kind == "multi-pass" or (pl.kind == "reuse" and pl.r >= 2)
        self.reuse2 = pl.kind == "multi-pass" or (pl.kind == "reuse" and pl.r >= 3)
        self.A = problem.alpha * (pl.b if pl.kind == "minibatch" else 1.0)
        self.sA = math.sqrt(self.A)
        self.lr, self.d = problem.eta, 1.0 - problem.eta * problem.ridge
        self.act = get_activation(problem.activation)
        self.kink = KINKS.get(self.act.name)
        self.a, self.noise, self.target = problem.a, problem.noise, problem.target
        self.M0, self.P0 = problem.M0, lower_factor(problem.C0)
        # beyond the paper's model (section 7): the loss, a(t) of a trained readout (a(1),
        # a(2) set by _solve), spherical GD (the factors D(1), D(2) set by _advance)
        self.loss = problem.loss
        self.trained, self.sphere = problem.readout == "trained", problem.normalize == "sphere"
        self.rates = readout_rates(problem)
        self.a_t = [problem.a, problem.a, problem.a]
        self.D1 = self.D2 = np.ones(problem.p)

    def forward(self, h, y, t=0):
        """g = l'(yhat, y) a(t) sigma'(h) and the loss, per point (h: (N, p)); with a trained
        readout also l' sigma(h) (N, p), eq. (7.5)."""
        a = self.a_t[t]
        s = self.act.f(h)
        yhat = s @ a
        lp = _dloss(yhat, y, self.loss)
        g, loss = lp[:, None] * a * self.act.df(h), _loss(yhat, y, self.loss)
        return (g, loss, lp[:, None] * s) if self.trained else (g, loss)


def _lin(x, A):
    """x A^T for a stack of short vectors x (N, q): q axpys, faster than matmul here."""
    out = np.zeros((x.shape[0], A.shape[0]))
    for j in range(A.shape[1]):
        out += x[:, j, None] * A[:, j]
    return out


def _nest(arrays, w, c, L, n, kink):
    """Nest a Gaussian stage (pre-activation c + x L^T) inside the current points: the arrays
    repeated over its nodes, the weights, its variable x and the pre-activation."""
    X, W = stage_rule(c, L, n, kink)
    m = W.shape[1]
    x = X.reshape(-1, X.shape[2])
    h = np.repeat(c, m, axis=0) + _lin(x, L)
    return [np.repeat(v, m, axis=0) for v in arrays], (w[:, None] * W).ravel(), x, h


def _outer(m, n, noise=True):
    """Gauss-Hermite nodes over z* (k) and, with label noise, eps: z (N, k), y (N,), w (N,)."""
    x, w = hermite_rule(n)
    k = m.M0.shape[1]
    z = np.array(list(itertools.product(x, repeat=k))).reshape(-1, k)
    wz = np.prod(np.array(list(itertools.product(w, repeat=k))).reshape(-1, k), axis=1)
    f = m.target(z)
    if not np.all(np.isfinite(f)):
        raise ProblemError("target", f"{m.target.expr!r} is not finite at some quadrature nodes "
                                     f"(e.g. log or sqrt of a negative number)")
    if not (noise and m.noise > 0):
        return z, f, wz
    y = f[:, None] + math.sqrt(m.noise) * x[None, :]
    return np.repeat(z, n, axis=0), y.ravel(), (wz[:, None] * w[None, :]).ravel()


def _averages(w, left, right):
    """E[left right^T] (einsum without BLAS: a fixed summation order, deterministic)."""
    return np.einsum("n,ni,nj->ij", w, left, right)


def _chunks(N, size):
    """Slices of N points such that nesting a stage of ``size`` nodes keeps <= CHUNK points."""
    per = max(1, CHUNK // size)
    return [slice(i, min(i + per, N)) for i in range(0, N, per)]


def _pass(m, n, depth):
    """Sums over the nested grid (stage e: t = 0; u0: t = 1; u1: t = 2 of a reused batch).
    depth 1: E[g0 [z, e, g0, 1]^T], E[l0];  depth 2: E[g1 [z, e, u0, g1, g0, 1]^T], E[l1];
    depth 3: E[l2].  n = (nodes per outer coordinate, nodes per stage coordinate)."""
    z, y, w = _outer(m, n[0])
    n, kink = n[1], m.kink
    L1 = m.sA * m.B10 if depth >= 2 else None
    L2 = m.sA * m.B21 if depth >= 3 else None
    total = 0.0
    for a in _chunks(len(w), stage_size(m.P0, n, kink)):
        (z0, y0), w0, e0, h0 = _nest([z[a], y[a]], w[a], _lin(z[a], m.M0), m.P0, n, kink)
        g0, l0, *la = m.forward(h0, y0, 0)
        if depth == 1:
            one = np.ones((len(w0), 1))
            total = total + _averages(w0, np.hstack([g0, one]),
                                      np.hstack([z0, e0, g0, l0[:, None], *la]))
            continue
        c0 = _lin(z0, m.M1) + _lin(e0, m.P1) - ((m.lr * m.D1) * g0 if m.reuse1 else 0.0)
        for b in _chunks(len(w0), stage_size(L1, n, kink)):
            (z1, y1, e1, g01), w1, u0, h1 = _nest([z0[b], y0[b], e0[b], g0[b]], w0[b], c0[b], L1,
                                                  n, kink)
            g1, l1, *la = m.forward(h1, y1, 1)
            if depth == 2:
                one = np.ones((len(w1), 1))
                total = total + _averages(w1, np.hstack([g1, one]),
                                          np.hstack([z1, e1, u0, g1, g01, l1[:, None], *la]))
                continue
            if m.sphere:        # R_theta(2, .) carries D(2), R_theta(1, 0) D(1) (eq. (7.9))
                c1 = _lin(z1, m.M2) + _lin(e1, m.P2) + m.sA * _lin(u0, m.B20) \
                    - (m.lr * m.D2) * ((m.d * m.D1) * g01 + m.sA * _lin(g01, m.GK) + g1)
            else:
                c1 = _lin(z1, m.M2) + _lin(e1, m.P2) + m.sA * _lin(u0, m.B20) \
                    - m.lr * (m.d * g01 + m.sA * _lin(g01, m.GK) + g1)
            for c in _chunks(len(w1), stage_size(L2, n, kink)):
                (y2,), w2, _, h2 = _nest([y1[c]], w1[c], c1[c], L2, n, kink)
                total += np.einsum("n,n->", w2, m.forward(h2, y2, 2)[1])
    return total


def _test_error(m, M, C, n, t=0):
    """E[l(yhat, f*)] at h = M z* + omega, omega ~ N(0, C), plus noise / 2 (square loss; the
    noise averages out of the correlation loss)."""
    L = lower_factor(C)
    total = 0.0
    z, f, w = _outer(m, n[0], noise=False)
    for a in _chunks(len(w), stage_size(L, n[1], m.kink)):
        (fa,), wa, _, h = _nest([f[a]], w[a], _lin(z[a], M), L, n[1], m.kink)
        total += np.einsum("n,n->", wa, m.forward(h, fa, t)[1])
    return total + (0.5 * m.noise if m.loss == "square" else 0.0)


def _advance(m, t, Gz, Ge, Cgg, Cg_prev=None, Gu=None):
    """Weight side: row t + 1 (M, P, B) from the averages E[g(t) z*^T], E[g(t) e^T],
    E[g(t) g(t)^T], E[g(t) g(t-1)^T] and E[g(t) u0^T] (module docstring)."""
    lr, d, A = m.lr, m.d, m.A
    if t == 0:
        m.M1 = d * m.M0 - lr * A * Gz
        m.P1 = d * m.P0 - lr * A * Ge
        m.K00 = lower_factor(Cgg)
        m.B10 = -lr * m.K00
        m.C11 = m.P1 @ m.P1.T + A * m.B10 @ m.B10.T
        if m.sphere:                            # rows times D(1), eqs. (7.8)-(7.9)
            m.D1 = 1.0 / np.sqrt(np.diag(m.M1 @ m.M1.T + m.C11))
            m.M1, m.P1, m.B10 = (m.D1[:, None] * x for x in (m.M1, m.P1, m.B10))
            m.C11 = m.P1 @ m.P1.T + A * m.B10 @ m.B10.T
        return
    K00p = np.linalg.pinv(m.K00, rcond=1e-10)
    K10 = Cg_prev @ K00p.T if m.reuse1 else np.zeros_like(m.K00)
    m.M2 = d * m.M1 - lr * A * Gz
    m.P2 = d * m.P1 - lr * A * Ge
    m.B20 = d * m.B10 - lr * K10 - lr * m.sA * Gu
    m.B21 = -lr * lower_factor(Cgg - K10 @ K10.T)
    m.GK = Gu @ K00p                        # memory of g(0) at t = 2 (see module docstring)
    m.C22 = m.P2 @ m.P2.T + A * (m.B20 @ m.B20.T + m.B21 @ m.B21.T)
    if m.sphere:                                # rows times D(2), eqs. (7.8)-(7.9)
        m.D2 = 1.0 / np.sqrt(np.diag(m.M2 @ m.M2.T + m.C22))
        m.M2, m.P2, m.B20, m.B21 = (m.D2[:, None] * x for x in (m.M2, m.P2, m.B20, m.B21))
        m.C22 = m.P2 @ m.P2.T + A * (m.B20 @ m.B20.T + m.B21 @ m.B21.T)


def _solve(problem, orders):
    """All quantities at the given orders (dict integral -> nodes per coordinate)."""
    m = _Model(problem)
    p, k = problem.p, problem.k
    S = _pass(m, orders["t0"], 1)           # rows g0 (p), 1; columns z, e, g0, l0 (, l' sigma)
    _advance(m, 0, S[:p, :k], S[:p, k:k + p], S[:p, k + p:k + 2 * p])
    train0 = S[p, k + 2 * p]
    if m.trained:                           # a(1), eq. (7.6)
        m.a_t[1] = readout_step(m.a_t[0], S[p, k + 2 * p + 1:], *m.rates, m.A)
    S = _pass(m, orders["t1"], 2)           # rows g1, 1; columns z, e, u0, g1, g0, l1 (, ...)
    cols = np.cumsum([0, k, p, p, p, p])
    Gz, Ge, Gu, Cgg, Cg10 = (S[:p, i:j] for i, j in zip(cols[:-1], cols[1:]))
    _advance(m, 1, Gz, Ge, Cgg, Cg10, Gu)
    train1 = S[p, cols[-1]]
    if m.trained:                           # a(2), eq. (7.5)
        m.a_t[2] = readout_step(m.a_t[1], S[p, cols[-1] + 1:], *m.rates, m.A)
    M = np.stack([m.M0, m.M1, m.M2])
    C = np.stack([problem.C0, m.C11, m.C22])
    test = np.array([_test_error(m, M[t], C[t], orders["test"], t) for t in range(3)])
    train2 = _pass(m, orders["train2"], 3) if m.reuse2 else test[2]
    return {"M": M, "Q": M @ np.swapaxes(M, 1, 2) + C, "a": np.stack(m.a_t),
            "train_loss": np.array([train0, train1, train2]), "test_error": test}


def _dims(problem):
    """Gaussian dimensions (outer: z* and eps; inner: the stages) of each integral."""
    p, k = problem.p, problem.k
    outer = k + (problem.noise > 0)
    return {"t0": (outer, p), "t1": (outer, 2 * p), "train2": (outer, 3 * p), "test": (k, p)}


def _cost(n, dims, kinked):
    return n[0] ** dims[0] * (5 * max(1, n[1] // 5) if kinked else n[1]) ** dims[1]


def _auto(dims, kinked, lowest, budget):
    """The largest inner order with outer = RATIO x inner (at most 200) within ``budget``
    points; if even the lowest inner order does not fit, the largest outer order (>= 4) that
    does."""
    best = None
    for n in range(lowest, 201):
        cand = (min(200, RATIO[kinked] * n), n)
        if _cost(cand, dims, kinked) > budget:
            break
        best = cand
    if best is None:
        best = (4, lowest)
        for out in range(4, min(200, RATIO[kinked] * lowest) + 1):
            if _cost((out, lowest), dims, kinked) <= budget:
                best = (out, lowest)
    return best


def _check_orders(n, kinked):
    """About 3/4 of the outer order, then of the inner one (fewer nodes per kinked piece)."""
    inner = n[1] - max(2, n[1] // 4)
    return (n[0] - max(2, n[0] // 4), n[1]), (n[0], min(inner, 5 * (n[1] // 5) - 5)
                                              if kinked else inner)


def two_steps(problem, order=None):
    """M, Q, train loss and test error at t = 0, 1, 2, by nested Gauss quadrature (no sampling).

    Parameters
    ----------
    problem : Problem
        Any target, activation, ridge, label noise, M0, Q0; schedules multi-pass, one-pass,
        reuse-R and minibatch-B with 1/B >= 3 (module docstring); 2p + k <= MAX_DIM (6).
        ``problem.steps`` is ignored.
    order : int, pair of int or None
        Gauss nodes per coordinate for every integral: (outer, inner), outer for z* and the
        label noise (>= 4), inner for e, u0, u1 (>= 15 for a kinked activation such as ReLU,
        >= 4 otherwise); an int sets both.  None: per integral, the largest inner order with
        outer = RATIO x inner (at most 200) within BUDGET points; the outer coordinates carry
        the label, which reuse puts inside the pre-activations, so they need more nodes.  The
        check orders, from which the accuracy is stated, are about 3/4 of these.

    Returns
    -------
    TwoSteps
    """
    if not isinstance(problem, Problem):
        raise ProblemError("problem", f"expected a dmft.Problem, got {type(problem).__name__}")
    if problem.loss == "logistic":
        raise ProblemError("loss", "two_steps does not support the logistic loss: its labels "
                                   "are +-1, discontinuous in z*, which tensor Gauss quadrature "
                                   "does not integrate to a stated accuracy (use dmft.solve)")
    if 2 * problem.p + problem.k > MAX_DIM:
        raise ProblemError("k" if 2 + problem.k > MAX_DIM else "p",
                           f"two_steps integrates over 2p + k = {2 * problem.p + problem.k} "
                           f"Gaussian coordinates (plus the label noise); at most {MAX_DIM}")
    kinked = get_activation(problem.activation).name in KINKS
    dims = _dims(problem)
    lowest = 15 if kinked else 4
    if order is None:
        orders = {key: _auto(D, kinked, lowest, BUDGET * (4 if key == "train2" else 1))
                  for key, D in dims.items()}
    else:
        pair = tuple(order) if isinstance(order, (tuple, list)) else (order, order)
        if len(pair) != 2:
            raise ProblemError("order", f"expected an int or a pair (outer, inner), got {order!r}")
        pair = (integer("order", pair[0], 4), integer("order", pair[1], lowest))
        orders = dict.fromkeys(dims, pair)
        worst = max(_cost(pair, D, kinked) for D in dims.values())
        if worst > 1e9:
            raise ProblemError("order", f"{order} would evaluate {worst:.2g} points in one "
                                        f"integral (at most 1e9)")
    checks = {key: _check_orders(n, kinked) for key, n in orders.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        hi = _solve(problem, orders)
        lo = [_solve(problem, {key: c[i] for key, c in checks.items()}) for i in (0, 1)]
    acc = {}
    for key in hi:          # per time: the largest change over the entries, round-off floor
        diff = SAFETY * sum(np.abs(hi[key] - x[key]) for x in lo).reshape(3, -1).max(axis=1)
        floor = ROUNDOFF * np.maximum(1.0, np.abs(hi[key]).reshape(3, -1).max(axis=1))
        shape = (3,) + (1,) * (hi[key].ndim - 1)
        acc[key] = np.broadcast_to(np.maximum(diff, floor).reshape(shape), hi[key].shape).copy()
    return TwoSteps(problem=problem, accuracy=acc, orders=orders,
                    check_orders={key: list(c) for key, c in checks.items()}, **hi)
