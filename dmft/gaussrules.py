"""Gauss rules for expectations over standard Gaussian vectors, also when the integrand has
a kink on a hyperplane (the derivative of ReLU jumps at 0).

:func:`stage_rule` integrates x ~ N(0, I_q) at many points at once, where the integrand
depends on x through a pre-activation h = c + x L^T (L lower triangular, c per point).  Smooth
integrands get the tensor Gauss-Hermite rule.  With a kink at h_i = kink, plain Gauss-Hermite
converges only like 1/n (a jump on an oblique line), so coordinate i is split where h_i crosses
it, at a point b that depends on c and on the earlier coordinates: the half-line away from b
by a half-range Gauss rule (weight exp(-x^2/2) on [0, inf), from the discretised Stieltjes
procedure), the side of b in pieces ending at min(|b|, 2), min(|b|, 4), min(|b|, 8) by
Gauss-Legendre (short pieces, on which the Gaussian weight varies little: one piece of length
|b| would need ~|b|^2 nodes) and the tail by the shifted half-range rule.  The integrand is
smooth on each piece.  A break beyond |b| = 8 stays inside the last piece (mass < 1e-15).
"""
import functools
import itertools
import math

import numpy as np
import scipy.special
from scipy.linalg import eigh_tridiagonal

CUTS = (2.0, 4.0, 8.0)   #: piece ends on the side of the break (where |b| exceeds them)

__all__ = ["hermite_rule", "legendre_rule", "half_range_rule", "split_rule", "stage_rule",
           "stage_size", "lower_factor"]


@functools.lru_cache(maxsize=None)
def hermite_rule(n):
    """Gauss-Hermite rule for N(0, 1), exactly symmetric, weights summing to one.

    Parameters
    ----------
    n : int
        Number of nodes (exact for polynomials of degree <= 2n - 1).

    Returns
    -------
    (ndarray, ndarray)
        Nodes and weights, shape (n,).
    """
    x, w = scipy.special.roots_hermitenorm(n)
    x, w = 0.5 * (x - x[::-1]), 0.5 * (w + w[::-1])
    return x, w / w.sum()


@functools.lru_cache(maxsize=None)
def legendre_rule(n):
    """Gauss-Legendre rule on [-1, 1].

    Parameters
    ----------
    n : int
        Number of nodes.

    Returns
    -------
    (ndarray, ndarray)
        Nodes and weights, shape (n,).
    """
    return scipy.special.roots_legendre(n)


@functools.lru_cache(maxsize=None)
def half_range_rule(m):
    """Gauss rule for the weight exp(-x^2/2)/sqrt(2 pi) on [0, inf) (total mass 1/2), from the
    recurrence coefficients of a fine discretisation (Stieltjes procedure, stable).

    Parameters
    ----------
    m : int
        Number of nodes (exact for polynomials of degree <= 2m - 1).

    Returns
    -------
    (ndarray, ndarray)
        Nodes in (0, inf) and weights summing to 1/2, shape (m,).
    """
    t, w = legendre_rule(800)
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


def split_rule(b, m):
    """Rules for N(0, 1) split at the points b (module docstring).

    Parameters
    ----------
    b : ndarray (N,)
        Break points.
    m : int
        Nodes per piece (five pieces).

    Returns
    -------
    (ndarray, ndarray)
        Nodes and weights, shape (N, 5m); the weights of each row sum to one.
    """
    xh, wh = half_range_rule(m)
    xg, wg = legendre_rule(m)
    sign = np.where(b < 0, -1.0, 1.0)[:, None]
    ends = [np.zeros((len(b), 1))] + [np.minimum(np.abs(b), c)[:, None] for c in CUTS]
    xs, ws = [-sign * xh], [np.broadcast_to(wh, (len(b), m))]
    for lo, hi in zip(ends[:-1], ends[1:]):
        x = 0.5 * (lo + hi) + 0.5 * (hi - lo) * xg
        xs.append(sign * x)
        ws.append(0.5 * (hi - lo) * wg * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi))
    xs.append(sign * (ends[-1] + xh))
    ws.append(wh * np.exp(-ends[-1] * xh - 0.5 * ends[-1] ** 2))
    return np.concatenate(xs, axis=1), np.concatenate(ws, axis=1)


def stage_rule(c, L, n, kink):
    """Rule for x ~ N(0, I_q) at each of N points, where the pre-activation is h = c + x L^T.

    Parameters
    ----------
    c : ndarray (N, q)
        Offsets of the pre-activation, per point.
    L : ndarray (q, q)
        Lower-triangular coefficients.
    n : int
        Nodes per coordinate (tensor Gauss-Hermite), or, with a kink, about n: coordinate i
        split where h_i crosses it, 5 max(1, n // 5) nodes (n where L_ii = 0: no split).
    kink : float or None
        Where the integrand's derivative jumps in each h_i; None for a smooth integrand.

    Returns
    -------
    (ndarray, ndarray)
        Nodes (N, m, q) and weights (N, m), m = :func:`stage_size`; the weights of each point
        sum to one.
    """
    N, q = c.shape
    if kink is None:
        x, w = hermite_rule(n)
        X = np.array(list(itertools.product(x, repeat=q))).reshape(-1, q)
        W = np.prod(np.array(list(itertools.product(w, repeat=q))).reshape(-1, q), axis=1)
        return np.broadcast_to(X, (N,) + X.shape), np.broadcast_to(W, (N,) + W.shape)
    X, W = np.zeros((N, 1, 0)), np.ones((N, 1))
    scale = max(float(np.abs(L).max()), 1e-300)
    for i in range(q):
        if abs(L[i, i]) <= 1e-12 * scale:               # h_i does not move with x_i: no split
            xi, wi = hermite_rule(n)
            xi = np.broadcast_to(xi, (N * X.shape[1], n))
            wi = np.broadcast_to(wi, (N * X.shape[1], n))
        else:
            b = (kink - c[:, None, i] - X @ L[i, :i]) / L[i, i]
            xi, wi = split_rule(b.ravel(), max(1, n // 5))
        mi = xi.shape[1]
        X = np.concatenate([np.repeat(X, mi, axis=1), xi.reshape(N, -1, 1)], axis=2)
        W = (W[:, :, None] * wi.reshape(N, -1, mi)).reshape(N, -1)
    return X, W


def lower_factor(C):
    """Lower-triangular factor of a positive semi-definite matrix (QR of its symmetric square
    root, so a singular C is fine).

    Parameters
    ----------
    C : ndarray (q, q)

    Returns
    -------
    ndarray (q, q)
        L lower triangular with L L^T = C and a non-negative diagonal.
    """
    lam, V = np.linalg.eigh(0.5 * (C + C.T))
    S = (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T
    R = np.linalg.qr(S)[1]
    return (R * np.where(np.diag(R) < 0, -1.0, 1.0)[:, None]).T


def stage_size(L, n, kink):
    """Number of nodes per point of :func:`stage_rule` (same parameters); an int."""
    if kink is None:
        return n ** L.shape[0]
    scale = max(float(np.abs(L).max()), 1e-300)
    return math.prod(n if abs(L[i, i]) <= 1e-12 * scale else 5 * max(1, n // 5)
                     for i in range(L.shape[0]))
