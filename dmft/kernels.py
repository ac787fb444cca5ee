"""Sample side of the DMFT (THEORY.md section 2): Numba kernels over Monte Carlo paths.

One call advances every path by one step t (see :mod:`dmft.weight` for the representation):

    r(t-1)   = g(t-1) - sum_{w<t-1} K(t-1, w) kappa(w)        (innovation of the path's own g)
    omega(t) = P(t) eps0 + sqrt(alpha) sum_{v<t} B(t, v) eta(v)       (Gaussian field)
    h(t)     = M(t) z* + omega(t) + sum_{v<t-1} B(t, v) kappa(v) - lr r(t-1)    (memory term)
    g(t)     = (yhat(h(t)) - y) a * sigma'(h(t))

(B(t, t-1) kappa(t-1) = -lr K(t-1, t-1) K(t-1, t-1)^+ r(t-1) = -lr r(t-1), lr the learning rate.)
The kernel stores the raw innovation r(t-1) in ``kappa[t-1]`` and accumulates E[r r^T] and
E[r kappa(w)^T]; the caller then re-orthogonalises and whitens ``kappa[t-1]`` with
:func:`whiten`, K(t-1, t-1) being computed from the residuals themselves (not by a subtraction
that would lose the small innovations to cancellation).

``mem_scale`` multiplies the memory term: 1 always, except under the test-only switch
``DMFT_TEST_BREAK=memory`` that deliberately breaks the solver (the validation suite must then
fail).  With a data-reuse schedule, g is multiplied by the path's selection s(t) (``mask`` (T+1, N)
uint8; an empty array for multi-pass) and the train loss is averaged over selected paths.
Path arrays are laid out (time, path, neuron): ``eta`` and ``kappa`` (T, N, p); ``eps0`` (N, p),
``g_prev`` (N, p) holds g(t-1) and is overwritten with g(t); ``D_hist`` (T+1, N, p, p) holds
D(s) = dg(s)/dh(s) for the pathwise estimator; ``z`` (N, k), ``y`` (N,).

Paths are split in G contiguous groups (``bounds``, length G+1); group b is an independent
replica with its own kernels (``P_t[b]``, ``B_row[b]``, ...) and its own sums, so the ``prange``
over groups needs no atomics and results do not depend on the number of threads.  Kernels
return *sums* over each group's paths; the caller divides by the group sizes.
"""
import numpy as np
from numba import njit, prange

from .activations import d2sigma, dsigma, sigma


@njit(cache=True, inline="always")
def _forward(t, i, b, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev, P_t, B_row,
             K_prev, M_t, mask, mem_scale, om, h, ht, g):
    """Innovation r(t-1) of the path's g, then omega(t), h(t), h_test, g(t) of path i in
    group b; g is multiplied by the selection s(t) = mask[t, i] of the schedule (1 when
    ``mask`` is empty: multi-pass).  Returns (s, train loss, test loss, yhat - y)."""
    p = a.shape[0]
    k = z.shape[1]
    if t >= 1:
        for j in range(p):
            acc = g_prev[i, j]
            for w in range(t - 1):
                for l in range(p):
                    acc -= K_prev[b, w, j, l] * kappa[w, i, l]
            kappa[t - 1, i, j] = acc
    for j in range(p):
        acc = 0.0
        for l in range(p):
            acc += P_t[b, j, l] * eps0[i, l]
        noise = 0.0
        mem = 0.0
        for v in range(t):
            for l in range(p):
                noise += B_row[b, v, j, l] * eta[v, i, l]
        for v in range(t - 1):
            for l in range(p):
                mem += B_row[b, v, j, l] * kappa[v, i, l]
        if t >= 1:
            mem -= lr * kappa[t - 1, i, j]
        om[j] = acc + sqrt_alpha * noise
        acc = om[j]
        for q in range(k):
            acc += M_t[b, j, q] * z[i, q]
        ht[j] = acc
        h[j] = acc + mem_scale * mem
    yhat = 0.0
    ytest = 0.0
    for j in range(p):
        yhat += a[j] * sigma(code, h[j])
        ytest += a[j] * sigma(code, ht[j])
    err = yhat - y[i]
    sel = 1.0 if mask.shape[0] == 0 else float(mask[t, i])
    for j in range(p):
        g[j] = sel * err * a[j] * dsigma(code, h[j])
        g_prev[i, j] = g[j]
    et = ytest - y[i]
    return sel, 0.5 * err * err, 0.5 * et * et, err


@njit(cache=True, inline="always")
def _accumulate(t, i, b, g, om, z, eps0, eta, kappa, gg, gk, gz, om2, kk, cw, S_eps, S_eta,
                stein):
    p = g.shape[0]
    k = z.shape[1]
    if t >= 1:
        for j in range(p):
            for l in range(p):
                kk[b, j, l] += kappa[t - 1, i, j] * kappa[t - 1, i, l]
        for w in range(t - 1):                   # re-orthogonalisation coefficients
            for j in range(p):
                for l in range(p):
                    cw[b, w, j, l] += kappa[t - 1, i, j] * kappa[w, i, l]
    for j in range(p):
        for l in range(p):
            gg[b, j, l] += g[j] * g[l]
            om2[b, j, l] += om[j] * om[l]
        for q in range(k):
            gz[b, j, q] += g[j] * z[i, q]
    for v in range(t):
        for j in range(p):
            for l in range(p):
                gk[b, v, j, l] += g[j] * kappa[v, i, l]
    if stein:
        for j in range(p):
            for l in range(p):
                S_eps[b, j, l] += g[j] * eps0[i, l]
        for v in range(t):
            for j in range(p):
                for l in range(p):
                    S_eta[b, v, j, l] += g[j] * eta[v, i, l]


@njit(cache=True, parallel=True)
def step_stein(t, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev, bounds, P_t, B_row,
               K_prev, M_t, mask, mem_scale, gg, gk, gz, om2, kk, cw, S_eps, S_eta, losses):
    """Advance all paths to time t and accumulate, per group: E[g g^T], E[g(t) kappa(v)^T],
    (kappa(t-1) still raw: r(t-1)), E[g z*^T], E[omega omega^T], E[r(t-1) r(t-1)^T],
    E[r(t-1) kappa(w)^T] (w < t-1, for re-orthogonalisation), the Stein averages
    E[g(t) eps0^T] and E[g(t) eta(v)^T], and the sums of (s * train loss, test loss, s)."""
    G = bounds.shape[0] - 1
    p = a.shape[0]
    for b in prange(G):
        om = np.empty(p)
        h = np.empty(p)
        ht = np.empty(p)
        g = np.empty(p)
        for i in range(bounds[b], bounds[b + 1]):
            sel, tr, te, err = _forward(t, i, b, code, a, z, y, sqrt_alpha, lr, eps0, eta,
                                        kappa, g_prev, P_t, B_row, K_prev, M_t, mask,
                                        mem_scale, om, h, ht, g)
            losses[b, 0] += sel * tr
            losses[b, 1] += te
            losses[b, 2] += sel
            _accumulate(t, i, b, g, om, z, eps0, eta, kappa, gg, gk, gz, om2, kk, cw, S_eps,
                        S_eta, True)


@njit(cache=True, parallel=True)
def step_pathwise(t, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev, D_hist, bounds,
                  P_t, B_row, K_prev, M_t, mask, mem_scale, R_theta, gg, gk, gz, om2, kk, cw,
                  Rg_row, losses):
    """As :func:`step_stein`, but R_g(t, u) = E[dg(t)/domega(u)] by reverse-mode
    differentiation of each path: A(t) = D(t), A(u) = sum_{v=u+1..t} A(v) R_theta(v, u) D(u),
    R_g(t, u) = E[A(u)], with D = dg/dh including sigma'' (smooth sigma only)."""
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
            sel, tr, te, err = _forward(t, i, b, code, a, z, y, sqrt_alpha, lr, eps0, eta,
                                        kappa, g_prev, P_t, B_row, K_prev, M_t, mask,
                                        mem_scale, om, h, ht, g)
            losses[b, 0] += sel * tr
            losses[b, 1] += te
            losses[b, 2] += sel
            for j in range(p):
                sj = sel * a[j] * dsigma(code, h[j])
                for l in range(p):
                    D_hist[t, i, j, l] = sj * a[l] * dsigma(code, h[l])
                D_hist[t, i, j, j] += sel * err * a[j] * d2sigma(code, h[j])
            for j in range(p):
                for l in range(p):
                    A[t, j, l] = D_hist[t, i, j, l]
            for u in range(t - 1, -1, -1):
                for j in range(p):
                    for l in range(p):
                        acc = 0.0
                        for v in range(u + 1, t + 1):
                            for m in range(p):
                                acc += A[v, j, m] * R_theta[b, v, u, m, l]
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
            _accumulate(t, i, b, g, om, z, eps0, eta, kappa, gg, gk, gz, om2, kk, cw, om2,
                        gk, False)


@njit(cache=True, parallel=True)
def whiten(s, kappa, bounds, c, K_inv):
    """Second Gram-Schmidt pass on the raw innovations r(s) stored in ``kappa[s]``:
    kappa(s) = K(s, s)^+ [r(s) - sum_{w<s} c(w) kappa(w)], c(w) = E[r(s) kappa(w)^T].

    Classical Gram-Schmidt loses orthogonality in proportion to 1/innovation, and innovations of
    g decay geometrically when GD converges; projecting twice restores it to round-off."""
    G = bounds.shape[0] - 1
    p = kappa.shape[2]
    for b in prange(G):
        r = np.empty(p)
        for i in range(bounds[b], bounds[b + 1]):
            for j in range(p):
                acc = kappa[s, i, j]
                for w in range(s):
                    for l in range(p):
                        acc -= c[b, w, j, l] * kappa[w, i, l]
                r[j] = acc
            for j in range(p):
                acc = 0.0
                for l in range(p):
                    acc += K_inv[b, j, l] * r[l]
                kappa[s, i, j] = acc
