"""Sample side of the DMFT (THEORY.md section 2): Numba kernels over Monte Carlo paths.

One call advances every path by one time step t.  Path arrays are laid out (time, path, neuron):

* ``zeta``  (T+1, N, p)   i.i.d. standard normals, omega(t) = sum_{s<=t} L(t, s) zeta(s)
* ``g_hist`` (T+1, N, p)  g(s) = (yhat(h(s)) - y) a * sigma'(h(s)) of every path, written at s = t
* ``D_hist`` (T+1, N, p, p)  D(s) = dg(s)/dh(s) (pathwise estimator only)
* ``z`` (N, k), ``y`` (N,) the sample's target coordinates and label.

Paths are split in G contiguous groups (``bounds``, length G+1); group b is an independent
replica with its own kernels (``L_row[b]``, ``R_row[b]``, ``M_t[b]``) and its own sums, so the
``prange`` over groups needs no atomics and the result does not depend on the thread count.
Every kernel returns *sums* over the group's paths; the caller divides by the group size.
"""
import numpy as np
from numba import njit, prange

from .activations import d2sigma, dsigma, sigma


@njit(cache=True, inline="always")
def _forward(t, i, b, code, a, z, y, zeta, g_hist, L_row, R_row, M_t, om, h, ht, g):
    """omega(t), h(t) (with memory), h_test = M z + omega(t), g(t) for path i of group b.

    Returns (train loss, test loss) of the path."""
    p = a.shape[0]
    k = z.shape[1]
    for j in range(p):
        acc = 0.0
        for s in range(t + 1):
            for l in range(p):
                acc += L_row[b, s, j, l] * zeta[s, i, l]
        om[j] = acc
    for j in range(p):
        acc = om[j]
        for r in range(k):
            acc += M_t[b, j, r] * z[i, r]
        ht[j] = acc
        for s in range(t):
            for l in range(p):
                acc += R_row[b, s, j, l] * g_hist[s, i, l]
        h[j] = acc
    yhat = 0.0
    ytest = 0.0
    for j in range(p):
        yhat += a[j] * sigma(code, h[j])
        ytest += a[j] * sigma(code, ht[j])
    err = yhat - y[i]
    for j in range(p):
        g[j] = err * a[j] * dsigma(code, h[j])
        g_hist[t, i, j] = g[j]
    et = ytest - y[i]
    return 0.5 * err * err, 0.5 * et * et, err


@njit(cache=True, inline="always")
def _accumulate(t, i, b, g, om, z, zeta, g_hist, Cg_row, gz, om2, S_row, stein):
    p = g.shape[0]
    k = z.shape[1]
    for s in range(t + 1):
        for j in range(p):
            for l in range(p):
                Cg_row[b, s, j, l] += g[j] * g_hist[s, i, l]
                if stein:
                    S_row[b, s, j, l] += g[j] * zeta[s, i, l]
    for j in range(p):
        for r in range(k):
            gz[b, j, r] += g[j] * z[i, r]
        for l in range(p):
            om2[b, j, l] += om[j] * om[l]


@njit(cache=True, parallel=True)
def step_stein(t, code, a, z, y, zeta, g_hist, bounds, L_row, R_row, M_t,
               Cg_row, S_row, gz, om2, losses):
    """Advance all paths to time t; accumulate C_g(t, .), S(t, .) = E[g(t) zeta(.)^T],
    E[g(t) z^T], E[omega(t) omega(t)^T] and (train, test) losses per group."""
    G = bounds.shape[0] - 1
    p = a.shape[0]
    for b in prange(G):
        om = np.empty(p)
        h = np.empty(p)
        ht = np.empty(p)
        g = np.empty(p)
        for i in range(bounds[b], bounds[b + 1]):
            tr, te, err = _forward(t, i, b, code, a, z, y, zeta, g_hist, L_row, R_row, M_t,
                                   om, h, ht, g)
            losses[b, 0] += tr
            losses[b, 1] += te
            _accumulate(t, i, b, g, om, z, zeta, g_hist, Cg_row, gz, om2, S_row, True)


@njit(cache=True, parallel=True)
def step_pathwise(t, code, a, z, y, zeta, g_hist, D_hist, bounds, L_row, R_row, R_full, M_t,
                  Cg_row, Rg_row, gz, om2, losses):
    """As :func:`step_stein`, but R_g(t, s) = E[dg(t)/domega(s)] by reverse-mode
    differentiation of each path: A(t) = D(t), A(u) = sum_{v=u+1..t} A(v) R_theta(v, u) D(u),
    R_g(t, u) = E[A(u)].  D = dg/dh includes sigma'' (exact per path; smooth sigma only)."""
    G = bounds.shape[0] - 1
    p = a.shape[0]
    for b in prange(G):
        om = np.empty(p)
        h = np.empty(p)
        ht = np.empty(p)
        g = np.empty(p)
        A = np.empty((t + 1, p, p))
        tmp = np.empty((p, p))
        for i in range(bounds[b], bounds[b + 1]):
            tr, te, err = _forward(t, i, b, code, a, z, y, zeta, g_hist, L_row, R_row, M_t,
                                   om, h, ht, g)
            losses[b, 0] += tr
            losses[b, 1] += te
            for j in range(p):
                sj = a[j] * dsigma(code, h[j])
                for l in range(p):
                    D_hist[t, i, j, l] = sj * a[l] * dsigma(code, h[l])
                D_hist[t, i, j, j] += err * a[j] * d2sigma(code, h[j])
            for j in range(p):
                for l in range(p):
                    A[t, j, l] = D_hist[t, i, j, l]
            for u in range(t - 1, -1, -1):
                for j in range(p):
                    for l in range(p):
                        acc = 0.0
                        for v in range(u + 1, t + 1):
                            for m in range(p):
                                acc += A[v, j, m] * R_full[b, v, u, m, l]
                        tmp[j, l] = acc
                for j in range(p):
                    for l in range(p):
                        acc = 0.0
                        for m in range(p):
                            acc += tmp[j, m] * D_hist[u, i, m, l]
                        A[u, j, l] = acc
            for u in range(t + 1):
                for j in range(p):
                    for l in range(p):
                        Rg_row[b, u, j, l] += A[u, j, l]
            _accumulate(t, i, b, g, om, z, zeta, g_hist, Cg_row, gz, om2, Cg_row, False)
