"""The first two GD steps without sampling: M, Q, train loss and test error at t = 0, 1, 2.

For t <= 2 the sample side of the DMFT (see the theory documentation, sections 2, 3 and 6) is a
function of finitely many Gaussians: the target coordinates z* (k), the label noise eps (1,
when noise > 0), the sample's field at t = 0, omega(0) = P(0) e (e ~ N(0, I_p), P(0) P(0)^T =
Q0 - M0 M0^T), the innovation u0 ~ N(0, I_p) of omega(1) and, for the train loss at t = 2 of a
reused batch, the innovation u1 of omega(2).  The weight side is linear.  In the whitened form
of :mod:`dmft.weight` (A = alpha, the size over d of the batch used at each step; lr = the
learning rate eta; d = 1 - eta * ridge; K(t, .) the lower-triangular factor of C_g):

    h(0) = M0 z* + P0 e,                          g = l'(yhat, y) a * sigma'(h),  l' = yhat - y
    M(1) = d M0 - lr A E[g(0) z*^T],  P1 = d P0 - lr A E[g(0) e^T],  B10 = -lr K00
    omega(1) = P1 e + sqrt(A) B10 u0,  h(1) = M(1) z* + omega(1) - lr g(0)  (reused batch)
    M(2) = d M(1) - lr A E[g(1) z*^T],  P2 = d P1 - lr A E[g(1) e^T],
    K10 = E[g(1) g(0)^T] K00^+T (0 for a fresh batch),  B20 = d B10 - lr K10 - lr sqrt(A) E[g(1) u0^T]
    B21 = -lr K11,  C_theta(t, t) = P_t P_t^T + A sum_v B_tv B_tv^T,  Q(t) = M M^T + C_theta(t, t)
    h(2) = M(2) z* + P2 e + sqrt(A) (B20 u0 + B21 u1) - lr (d g(0) + sqrt(A) E[g(1) u0^T] K00^+ g(0) + g(1))

(E[g e^T], E[g u0^T]: Gaussian integration by parts, the response functions times the field's
factors, so no response is ever divided out.)  Schedules: the batch of step 1 is the batch of
step 0 for multi-pass and reuse-R (R >= 2), fresh for one-pass; the batch of step 2 is the same
again for multi-pass and reuse-R (R >= 3), fresh for one-pass and reuse-2 (whose train loss at
t = 2 is then the test error).  Mini-batch SGD with 1/B >= 3 steps per epoch is one-pass with
alpha B per step; with 1/B = 2 it is refused: step 2 starts a reshuffled epoch whose samples
carry the memory of step 0 or of step 1, a mixture this module does not implement.

Quadrature (decisions recorded here).  The integrals are nested: Gauss-Hermite over z* and eps,
then over e given them, u0 given those, u1 given those (``order`` nodes per coordinate); the
pre-activation of each stage is affine in its Gaussians, h = c + x L^T with L lower triangular.
Smooth activations use the tensor Gauss-Hermite rule.  An activation with a kink (ReLU: sigma'
jumps at 0) would make plain Gauss-Hermite converge like 1/order (a jump on an oblique line:
1e-2 at 40 nodes), so each coordinate of a stage is split where its pre-activation crosses the
kink, at a point that depends on the outer nodes: (-inf, min(b, 0)], [min(b, 0), max(b, 0)],
[max(b, 0), inf), Gauss-Legendre on the middle piece and a shifted half-range Gauss rule (for
exp(-x^2/2) on [0, inf), computed once by the discretised Stieltjes procedure) on the tails; the
integrand is smooth on each piece.  Every quantity is computed at two orders (the check
orders are about 3/4 of the others); its stated ``accuracy`` at time t is the largest change
of its entries (an error estimate of the coarser rule; one entry alone can agree by chance),
at least ROUNDOFF relative.  Smooth integrands converge fast but not always to round-off at
affordable orders: reuse puts the label into the pre-activations (e.g. tanh(lr He3(z*))), steep
in z*.  Memory is bounded: the
outer nodes are processed in chunks of at most ``CHUNK`` points of the full nested grid.
Deterministic: fixed rules, fixed summation order, no BLAS reductions.

Extending (not implemented): another loss changes :func:`_dloss` and :func:`_loss` (and the
noise term of the test error); a trained second layer makes ``a`` a per-step array updated from
E[l' sigma(h(t))] accumulated in the same passes; spherical normalisation multiplies the new
rows M(t+1), P(t+1), B(t+1, .) by D(t+1) in :func:`_advance`.
"""
import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.special
from scipy.linalg import eigh_tridiagonal

from .activations import get_activation
from .checks import integer
from .errors import ProblemError
from .problem import Problem

__all__ = ["two_steps", "TwoSteps", "MAX_DIM"]

MAX_DIM = 6              #: largest accepted 2p + k
CHUNK = 1 << 17          #: points of the nested grid evaluated at once
BUDGET = 3e6             #: points per integral when ``order`` is None
KINKS = {"relu": 0.0}    #: activations whose derivative jumps, and where
ROUNDOFF = 1e-13         #: relative round-off floor of the stated accuracy


@dataclass(frozen=True)
class TwoSteps:
    """Result of :func:`two_steps` (arrays indexed by t = 0, 1, 2).

    Attributes
    ----------
    problem : Problem
    M : (3, p, k);  Q : (3, p, p);  train_loss, test_error : (3,)
    accuracy : dict  name -> array of the quantity's shape: at each t, the largest change of
        its entries between the orders and the check orders (at least ROUNDOFF relative)
    orders, check_orders : dict  integral -> Gauss nodes per coordinate ("t0": the averages at
        t = 0, "t1": at t = 1, "train2": the reused batch at t = 2, "test": test errors)
    """

    problem: Problem
    M: np.ndarray
    Q: np.ndarray
    train_loss: np.ndarray
    test_error: np.ndarray
    accuracy: dict
    orders: dict
    check_orders: dict


# ------------------------------------------------------------------------------- Gauss rules
@functools.lru_cache(maxsize=None)
def _hermite(n):
    """Gauss-Hermite rule for N(0, 1), exactly symmetric, weights summing to one."""
    x, w = scipy.special.roots_hermitenorm(n)
    x, w = 0.5 * (x - x[::-1]), 0.5 * (w + w[::-1])
    return x, w / w.sum()


@functools.lru_cache(maxsize=None)
def _legendre(n):
    """Gauss-Legendre rule on [-1, 1]."""
    return scipy.special.roots_legendre(n)


@functools.lru_cache(maxsize=None)
def _half_range(m):
    """Gauss rule for the weight exp(-x^2/2)/sqrt(2 pi) on [0, inf) (total mass 1/2), from the
    recurrence coefficients of a fine discretisation (Stieltjes procedure, stable)."""
    t, w = _legendre(800)
    x = 6.5 * (t + 1.0)                                   # [0, 13]: exp(-13^2/2) ~ 1e-37
    w = 6.5 * w * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    alpha, beta = np.zeros(m), np.zeros(m)
    prev, cur, norm_prev = np.zeros_like(x), np.ones_like(x), 1.0
    for j in range(m):
        norm = w @ (cur * cur)
        alpha[j] = w @ (x * cur * cur) / norm
        beta[j] = norm / norm_prev if j else norm
        prev, cur = cur, (x - alpha[j]) * cur - (beta[j] if j else 0.0) * prev
        norm_prev = norm
    nodes, vecs = eigh_tridiagonal(alpha, np.sqrt(beta[1:]))
    return nodes, 0.5 * vecs[0] ** 2 / np.sum(vecs[0] ** 2)       # exact mass 1/2


def _split_rule(b, m):
    """Nodes and weights (len(b), 3m) for N(0, 1) split at the points b (see module docstring)."""
    xh, wh = _half_range(m)
    xg, wg = _legendre(m)
    lo, hi = np.minimum(b, 0.0)[:, None], np.maximum(b, 0.0)[:, None]
    mid = 0.5 * (lo + hi) + 0.5 * (hi - lo) * xg
    x = np.concatenate([lo - xh, mid, hi + xh], axis=1)
    w = np.concatenate([wh * np.exp(lo * xh - 0.5 * lo * lo),
                        0.5 * (hi - lo) * wg * np.exp(-0.5 * mid * mid) / math.sqrt(2 * math.pi),
                        wh * np.exp(-hi * xh - 0.5 * hi * hi)], axis=1)
    return x, w


def _rule(c, L, n, kink):
    """Rule for x ~ N(0, I_q) at each of the N rows of c, where the stage's pre-activation is
    h = c + x L^T (L lower triangular): nodes (N, m, q) and weights (N, m).  Tensor
    Gauss-Hermite with n nodes per coordinate, or, when the activation has a kink, coordinate
    i split where h_i crosses it (3 * max(1, n // 3) nodes per coordinate)."""
    N, q = c.shape
    if kink is None:
        x, w = _hermite(n)
        X = np.array(list(itertools.product(x, repeat=q))).reshape(-1, q)
        W = np.prod(np.array(list(itertools.product(w, repeat=q))).reshape(-1, q), axis=1)
        return np.broadcast_to(X, (N,) + X.shape), np.broadcast_to(W, (N,) + W.shape)
    X, W = np.zeros((N, 1, 0)), np.ones((N, 1))
    scale = max(float(np.abs(L).max()), 1e-300)
    for i in range(q):
        if abs(L[i, i]) <= 1e-12 * scale:               # h_i does not move with x_i: no split
            xi, wi = _hermite(n)
            xi = np.broadcast_to(xi, (N * X.shape[1], n))
            wi = np.broadcast_to(wi, (N * X.shape[1], n))
        else:
            b = (kink - c[:, None, i] - X @ L[i, :i]) / L[i, i]
            xi, wi = _split_rule(b.ravel(), max(1, n // 3))
        mi = xi.shape[1]
        X = np.concatenate([np.repeat(X, mi, axis=1), xi.reshape(N, -1, 1)], axis=2)
        W = (W[:, :, None] * wi.reshape(N, -1, mi)).reshape(N, -1)
    return X, W


def _lower_factor(C):
    """Lower-triangular L with L L^T = C for a PSD C (semi-definite allowed: QR of the
    symmetric square root), non-negative diagonal."""
    lam, V = np.linalg.eigh(0.5 * (C + C.T))
    S = (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T
    R = np.linalg.qr(S)[1]
    return (R * np.where(np.diag(R) < 0, -1.0, 1.0)[:, None]).T


# ------------------------------------------------------------------------------- sample side
def _loss(yhat, y):
    """Per-sample loss l(yhat, y) (square loss)."""
    return 0.5 * (yhat - y) ** 2


def _dloss(yhat, y):
    """l'(yhat, y) = dl/dyhat (square loss)."""
    return yhat - y


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
        self.M0, self.P0 = problem.M0, _lower_factor(problem.C0)

    def forward(self, h, y):
        """g = l'(yhat, y) a sigma'(h) and the loss, per point (h: (N, p))."""
        yhat = self.act.f(h) @ self.a
        return _dloss(yhat, y)[:, None] * self.a * self.act.df(h), _loss(yhat, y)


def _lin(x, A):
    """x A^T for a stack of short vectors x (N, q): q axpys, faster than matmul here."""
    out = np.zeros((x.shape[0], A.shape[0]))
    for j in range(A.shape[1]):
        out += x[:, j, None] * A[:, j]
    return out


def _nest(arrays, w, c, L, n, kink):
    """Nest a Gaussian stage (pre-activation c + x L^T) inside the current points: the arrays
    repeated over its nodes, the weights, its variable x and the pre-activation."""
    X, W = _rule(c, L, n, kink)
    m = W.shape[1]
    x = X.reshape(-1, X.shape[2])
    h = np.repeat(c, m, axis=0) + _lin(x, L)
    return [np.repeat(v, m, axis=0) for v in arrays], (w[:, None] * W).ravel(), x, h


def _stage_size(L, n, kink):
    if kink is None:
        return n ** L.shape[0]
    scale = max(float(np.abs(L).max()), 1e-300)
    return math.prod(n if abs(L[i, i]) <= 1e-12 * scale else 3 * max(1, n // 3)
                     for i in range(L.shape[0]))


def _outer(m, n, noise=True):
    """Gauss-Hermite nodes over z* (k) and, with label noise, eps: z (N, k), y (N,), w (N,)."""
    x, w = _hermite(n)
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


def _pass(m, n, depth):
    """Sums over the nested grid (stage e: t = 0; u0: t = 1; u1: t = 2 of a reused batch).
    depth 1: E[g0 [z, e, g0, 1]^T], E[l0];  depth 2: E[g1 [z, e, u0, g1, g0, 1]^T], E[l1];
    depth 3: E[l2]."""
    z, y, w = _outer(m, n)
    Ls = [m.P0, m.sA * m.B10 if depth >= 2 else None, m.sA * m.B21 if depth >= 3 else None]
    per = max(1, CHUNK // math.prod(_stage_size(L, n, m.kink) for L in Ls[:depth]))
    total = 0.0
    for i0 in range(0, len(w), per):
        (zc, yc), wc, e, h0 = _nest([z[i0:i0 + per], y[i0:i0 + per]], w[i0:i0 + per],
                                    _lin(z[i0:i0 + per], m.M0), m.P0, n, m.kink)
        g0, l0 = m.forward(h0, yc)
        if depth == 1:
            one = np.ones((len(wc), 1))
            total = total + _averages(wc, np.hstack([g0, one]),
                                      np.hstack([zc, e, g0, l0[:, None]]))
            continue
        c = _lin(zc, m.M1) + _lin(e, m.P1) - (m.lr * g0 if m.reuse1 else 0.0)
        (zc, yc, e, g0), wc, u0, h1 = _nest([zc, yc, e, g0], wc, c, Ls[1], n, m.kink)
        g1, l1 = m.forward(h1, yc)
        if depth == 2:
            one = np.ones((len(wc), 1))
            total = total + _averages(wc, np.hstack([g1, one]),
                                      np.hstack([zc, e, u0, g1, g0, l1[:, None]]))
            continue
        c = _lin(zc, m.M2) + _lin(e, m.P2) + m.sA * _lin(u0, m.B20) \
            - m.lr * (m.d * g0 + m.sA * _lin(g0, m.GK) + g1)
        (yc,), wc, _, h2 = _nest([yc], wc, c, Ls[2], n, m.kink)
        total += np.einsum("n,n->", wc, m.forward(h2, yc)[1])
    return total


def _test_error(m, M, C, n):
    """E[(yhat - f*)^2 / 2] at h = M z* + omega, omega ~ N(0, C), plus noise / 2 (square loss)."""
    L = _lower_factor(C)
    total = 0.0
    z, f, w = _outer(m, n, noise=False)
    per = max(1, CHUNK // _stage_size(L, n, m.kink))
    for i0 in range(0, len(w), per):
        (fc,), wc, _, h = _nest([f[i0:i0 + per]], w[i0:i0 + per], _lin(z[i0:i0 + per], M), L,
                                n, m.kink)
        total += np.einsum("n,n->", wc, m.forward(h, fc)[1])
    return total + 0.5 * m.noise


def _advance(m, t, Gz, Ge, Cgg, Cg_prev=None, Gu=None):
    """Weight side: row t + 1 (M, P, B) from the averages E[g(t) z*^T], E[g(t) e^T],
    E[g(t) g(t)^T], E[g(t) g(t-1)^T] and E[g(t) u0^T] (module docstring)."""
    lr, d, A = m.lr, m.d, m.A
    if t == 0:
        m.M1 = d * m.M0 - lr * A * Gz
        m.P1 = d * m.P0 - lr * A * Ge
        m.K00 = _lower_factor(Cgg)
        m.B10 = -lr * m.K00
        m.C11 = m.P1 @ m.P1.T + A * m.B10 @ m.B10.T
        return
    K00p = np.linalg.pinv(m.K00, rcond=1e-10)
    K10 = Cg_prev @ K00p.T if m.reuse1 else np.zeros_like(m.K00)
    m.M2 = d * m.M1 - lr * A * Gz
    m.P2 = d * m.P1 - lr * A * Ge
    m.B20 = d * m.B10 - lr * K10 - lr * m.sA * Gu
    m.B21 = -lr * _lower_factor(Cgg - K10 @ K10.T)
    m.GK = Gu @ K00p                        # memory of g(0) at t = 2 (see module docstring)
    m.C22 = m.P2 @ m.P2.T + A * (m.B20 @ m.B20.T + m.B21 @ m.B21.T)


def _solve(problem, orders):
    """All quantities at the given orders (dict integral -> nodes per coordinate)."""
    m = _Model(problem)
    p, k = problem.p, problem.k
    S = _pass(m, orders["t0"], 1)                   # rows g0 (p), 1; columns z, e, g0, l0
    _advance(m, 0, S[:p, :k], S[:p, k:k + p], S[:p, k + p:k + 2 * p])
    train0 = S[p, -1]
    S = _pass(m, orders["t1"], 2)                   # rows g1, 1; columns z, e, u0, g1, g0, l1
    cols = np.cumsum([0, k, p, p, p, p])
    Gz, Ge, Gu, Cgg, Cg10 = (S[:p, i:j] for i, j in zip(cols[:-1], cols[1:]))
    _advance(m, 1, Gz, Ge, Cgg, Cg10, Gu)
    train1 = S[p, -1]
    M = np.stack([m.M0, m.M1, m.M2])
    C = np.stack([problem.C0, m.C11, m.C22])
    test = np.array([_test_error(m, M[t], C[t], orders["test"]) for t in range(3)])
    train2 = _pass(m, orders["train2"], 3) if m.reuse2 else test[2]
    return {"M": M, "Q": M @ np.swapaxes(M, 1, 2) + C,
            "train_loss": np.array([train0, train1, train2]), "test_error": test}


def _dims(problem):
    """Gaussian dimension of each integral."""
    p, k = problem.p, problem.k
    outer = k + (problem.noise > 0)
    return {"t0": outer + p, "t1": outer + 2 * p, "train2": outer + 3 * p, "test": k + p}


def _check_order(n, kinked):
    nc = n - max(2, n // 4)
    return min(nc, 3 * (n // 3) - 3) if kinked else nc


def two_steps(problem, order=None):
    """M, Q, train loss and test error at t = 0, 1, 2, by nested Gauss quadrature (no sampling).

    Parameters
    ----------
    problem : Problem
        Any target, activation, ridge, label noise, M0, Q0; schedules multi-pass, one-pass,
        reuse-R and minibatch-B with 1/B >= 3 (module docstring); 2p + k <= MAX_DIM (6).
        ``problem.steps`` is ignored.
    order : int or None
        Gauss nodes per Gaussian coordinate for every integral (>= 6 for a kinked activation
        such as ReLU, >= 4 otherwise); None chooses, per integral of dimension D, about
        BUDGET^(1/D) nodes (at most 200).  The check orders, from which the accuracy is stated,
        are about 3/4 of these.

    Returns
    -------
    TwoSteps
    """
    if not isinstance(problem, Problem):
        raise ProblemError("problem", f"expected a dmft.Problem, got {type(problem).__name__}")
    if 2 * problem.p + problem.k > MAX_DIM:
        raise ProblemError("k" if 2 + problem.k > MAX_DIM else "p",
                           f"two_steps integrates over 2p + k = {2 * problem.p + problem.k} "
                           f"Gaussian coordinates (plus the label noise); at most {MAX_DIM}")
    kinked = get_activation(problem.activation).name in KINKS
    dims = _dims(problem)
    lowest = 6 if kinked else 4
    if order is None:
        orders = {key: max(lowest, min(200, int(BUDGET ** (1.0 / D) + 1e-9)))
                  for key, D in dims.items()}
    else:
        n = integer("order", order, lowest)
        orders = dict.fromkeys(dims, n)
        worst = max(n ** D for D in dims.values())
        if worst > 1e9:
            raise ProblemError("order", f"{n} nodes per coordinate would evaluate {worst:.2g} "
                                        f"points in one integral (at most 1e9)")
    check = {key: _check_order(n, kinked) for key, n in orders.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        hi, lo = _solve(problem, orders), _solve(problem, check)
    acc = {}
    for key in hi:          # per time: the largest change over the entries, round-off floor
        diff = np.abs(hi[key] - lo[key]).reshape(3, -1).max(axis=1)
        floor = ROUNDOFF * np.maximum(1.0, np.abs(hi[key]).reshape(3, -1).max(axis=1))
        acc[key] = np.broadcast_to(np.maximum(diff, floor).reshape((3,) + (1,) * (hi[key].ndim - 1)),
                                   hi[key].shape).copy()
    return TwoSteps(problem=problem, accuracy=acc, orders=orders, check_orders=check, **hi)
