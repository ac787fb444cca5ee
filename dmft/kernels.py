"""Sample side of the DMFT (THEORY.md section 2): Numba kernels over Monte Carlo paths.

One call advances every path by one step t (see :mod:`dmft.weight` for the representation):

    kappa(t-2) = K(t-2,t-2)^+ [r(t-2) - sum_{w<t-2} c(w) kappa(w)]  (finish whitening the last-but-one)
    r(t-1)     = g(t-1) - sum_{w<t-1} K(t-1, w) kappa(w)            (innovation of the path's own g)
    omega(t)   = P(t) eps0 + sqrt(alpha) sum_{v<t} B(t, v) eta(v)   (Gaussian field)
    h(t)       = M(t) z* + omega(t) + sum_{v<t-1} B(t, v) kappa(v) - lr r(t-1)    (memory term)
    g(t)       = (yhat(h(t)) - y) a * sigma'(h(t))

(B(t, t-1) kappa(t-1) = -lr K(t-1, t-1) K(t-1, t-1)^+ r(t-1) = -lr r(t-1), lr the learning rate.)
The raw innovation r(t-1) is stored in ``kappa[t-1]``; the kernel accumulates E[r r^T] and
c(w) = E[r kappa(w)^T], from which the caller computes the re-orthogonalisation and
K(t-1, t-1) = E[r' r'^T]^{1/2} (from the residuals themselves, not by a subtraction that would
lose small innovations to cancellation); the next call applies them to ``kappa[t-1]`` (the first
stage above), so each step reads each path's history in one fused pass per stage.

``mem_scale`` multiplies the memory term: 1 always, except under the test-only switch
``DMFT_TEST_BREAK=memory`` that deliberately breaks the solver (the validation suite must then
fail).  With a data-reuse schedule, g is multiplied by the path's selection s(t) (``mask``
(T+1, N) uint8; an empty array for multi-pass) and the train loss is averaged over selected
paths.  The histories are laid out (time, neuron, path), so that a chunk of paths is contiguous
and the loops over it vectorise (SIMD): ``eta`` (T, p, N) float32 (our own random numbers,
drawn in float32, so storing them loses nothing), ``kappa`` (T, p, N) float64;
the per-path vectors are stored by coordinate too: ``eps0`` (p, N); ``g_prev`` (p, N) holds g(t-1)
and is overwritten with g(t); ``z`` (k, N); ``y`` (N,); ``D_hist`` (T+1, N, p, p) holds
D(s) = dg(s)/dh(s) for the pathwise estimator.

Paths are split in G contiguous groups (``bounds``, length G+1); group b is an independent
replica with its own kernels (``P_t[b]``, ``B_row[b]``, ...) and its own sums, so the ``prange``
over groups needs no atomics and results do not depend on the number of threads.  Within a
group, paths are processed in chunks of ``CHUNK``: every stage is one pass over the chunk's
history with the chunk as the innermost (vector) loop over 1-D contiguous slices (indexing a
2-D array inside the loop defeats LLVM's vectoriser: 3x slower, measured), and the sums over
paths are vector reductions (``fastmath`` reassociation only: NaN and infinities keep their meaning, so
divergence is still detected).  Kernels return *sums* over each group's paths; the caller
divides by the group sizes.
"""
import numpy as np
from numba import njit, prange

from .activations import apply_sigma, d2sigma, dsigma

CHUNK = 256                 # paths per chunk (measured best of 64..4096 on AVX-512)
_FM = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FM)
def _chunk_forward(t, i0, W, b, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev, P_t,
                   B_row, K_prev, c_prev, K_inv_prev, M_t, mask, mem_scale, R, MEM, NZ, GV, HV,
                   HT, ACT, SEL, ERR, sums):
    """The stages of the module docstring for paths i0 .. i0+W-1 of group b.

    Leaves r(t-1) in R and ``kappa[t-1]``, g in GV (and ``g_prev``), h in HV, the selection
    and yhat - y per path in SEL and ERR; adds (s * train loss, test loss, s) to ``sums``."""
    p = a.shape[0]
    k = z.shape[0]                               # z is (k, N)
    if t >= 2:                                   # finish whitening kappa(t-2)
        s = t - 2
        for j in range(p):
            for ii in range(W):
                R[j, ii] = kappa[s, j, i0 + ii]
        for w in range(s):
            for l in range(p):
                kv = kappa[w, l, i0:i0 + W]
                for j in range(p):
                    c = c_prev[b, w, j, l]
                    rj = R[j, :W]
                    for ii in range(W):
                        rj[ii] -= c * kv[ii]
        for j in range(p):
            for ii in range(W):
                acc = 0.0
                for l in range(p):
                    acc += K_inv_prev[b, j, l] * R[l, ii]
                kappa[s, j, i0 + ii] = acc
    for j in range(p):
        for ii in range(W):
            R[j, ii] = g_prev[j, i0 + ii]
            MEM[j, ii] = 0.0
            NZ[j, ii] = 0.0
    for w in range(t - 1):                       # r(t-1) and the memory term, one pass
        for l in range(p):
            kv = kappa[w, l, i0:i0 + W]
            for j in range(p):
                kc = K_prev[b, w, j, l]
                bc = B_row[b, w, j, l]
                rj = R[j, :W]
                mj = MEM[j, :W]
                for ii in range(W):
                    x = kv[ii]
                    rj[ii] -= kc * x
                    mj[ii] += bc * x
    for v in range(t):                           # the Gaussian field's memory of eta
        for l in range(p):
            ev = eta[v, l, i0:i0 + W]
            for j in range(p):
                bc = B_row[b, v, j, l]
                nj = NZ[j, :W]
                for ii in range(W):
                    nj[ii] += bc * ev[ii]
    if t >= 1:
        for j in range(p):
            for ii in range(W):
                kappa[t - 1, j, i0 + ii] = R[j, ii]
    YH, YT = ACT[0, :W], ACT[1, :W]              # yhat and the test prediction
    for ii in range(W):
        YH[ii] = 0.0
        YT[ii] = 0.0
    for j in range(p):                           # pre-activations, vectorised over the chunk
        nj, mj, rj = NZ[j, :W], MEM[j, :W], R[j, :W]
        hv, htv = HV[j, :W], HT[j, :W]
        for ii in range(W):
            nj[ii] = sqrt_alpha * nj[ii]
        for l in range(p):
            pc = P_t[b, j, l]
            el = eps0[l, i0:i0 + W]
            for ii in range(W):
                nj[ii] += pc * el[ii]            # NZ now holds omega(t)
        for ii in range(W):
            htv[ii] = nj[ii]
        for q in range(k):
            mc = M_t[b, j, q]
            zq = z[q, i0:i0 + W]
            for ii in range(W):
                htv[ii] += mc * zq[ii]
        if t >= 1:
            for ii in range(W):
                mj[ii] -= lr * rj[ii]
        for ii in range(W):
            hv[ii] = htv[ii] + mem_scale * mj[ii]
        tmp = ACT[2, :W]
        apply_sigma(code, 0, hv, tmp)
        for ii in range(W):
            YH[ii] += a[j] * tmp[ii]
        apply_sigma(code, 0, htv, tmp)
        for ii in range(W):
            YT[ii] += a[j] * tmp[ii]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for ii in range(W):
        sel = 1.0 if mask.shape[0] == 0 else float(mask[t, i0 + ii])
        err = YH[ii] - y[i0 + ii]
        et = YT[ii] - y[i0 + ii]
        SEL[ii] = sel
        ERR[ii] = err
        s0 += sel * 0.5 * err * err
        s1 += 0.5 * et * et
        s2 += sel
    sums[0] += s0
    sums[1] += s1
    sums[2] += s2
    for j in range(p):
        tmp = ACT[2, :W]
        apply_sigma(code, 1, HV[j, :W], tmp)
        gv = GV[j, :W]
        gp = g_prev[j, i0:i0 + W]
        for ii in range(W):
            gv[ii] = SEL[ii] * ERR[ii] * a[j] * tmp[ii]
            gp[ii] = gv[ii]


@njit(cache=True, fastmath=_FM)
def _chunk_accumulate(t, i0, W, b, GV, R, NZ, z, eps0, eta, kappa, gg, gk, gz, om2, kk, cw,
                      S_eps, S_eta, stein):
    """Per-group sums over the chunk: E[g g^T], E[g kappa(v)^T] (v < t; kappa(t-1) still raw),
    E[g z*^T], E[omega omega^T], E[r r^T], E[r kappa(w)^T] (w < t-1) and, for Stein,
    E[g eps0^T] and E[g eta(v)^T]; vector reductions over the chunk."""
    p = GV.shape[0]
    k = z.shape[0]                               # z is (k, N)
    for j in range(p):
        for l in range(p):
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            for ii in range(W):
                s1 += GV[j, ii] * GV[l, ii]
                s2 += NZ[j, ii] * NZ[l, ii]
                s3 += R[j, ii] * R[l, ii]
                s4 += GV[j, ii] * eps0[l, i0 + ii]
            gg[b, j, l] += s1
            om2[b, j, l] += s2
            if t >= 1:
                kk[b, j, l] += s3
            if stein:
                S_eps[b, j, l] += s4
        for q in range(k):
            s1 = 0.0
            for ii in range(W):
                s1 += GV[j, ii] * z[q, i0 + ii]
            gz[b, j, q] += s1
    for v in range(t):
        for l in range(p):
            kv = kappa[v, l, i0:i0 + W]
            ev = eta[v, l, i0:i0 + W]
            for j in range(p):
                gj = GV[j, :W]
                rj = R[j, :W]
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                for ii in range(W):
                    x = kv[ii]
                    s1 += gj[ii] * x
                    s2 += gj[ii] * ev[ii]
                    s3 += rj[ii] * x
                gk[b, v, j, l] += s1
                if stein:
                    S_eta[b, v, j, l] += s2
                if v < t - 1:
                    cw[b, v, j, l] += s3


@njit(cache=True, parallel=True, fastmath=_FM)
def step_stein(t, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev, bounds, P_t, B_row,
               K_prev, c_prev, K_inv_prev, M_t, mask, mem_scale, gg, gk, gz, om2, kk, cw, S_eps,
               S_eta, losses):
    """Advance all paths to time t and accumulate the per-group sums of
    :func:`_chunk_accumulate` and of (s * train loss, test loss, s)."""
    G = bounds.shape[0] - 1
    p = a.shape[0]
    for b in prange(G):
        R, MEM, NZ = np.empty((p, CHUNK)), np.empty((p, CHUNK)), np.empty((p, CHUNK))
        GV, HV, HT = np.empty((p, CHUNK)), np.empty((p, CHUNK)), np.empty((p, CHUNK))
        ACT = np.empty((3, CHUNK))
        SEL, ERR, sums = np.empty(CHUNK), np.empty(CHUNK), np.zeros(3)
        for i0 in range(bounds[b], bounds[b + 1], CHUNK):
            W = min(CHUNK, bounds[b + 1] - i0)
            _chunk_forward(t, i0, W, b, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev,
                           P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, mask, mem_scale, R, MEM,
                           NZ, GV, HV, HT, ACT, SEL, ERR, sums)
            _chunk_accumulate(t, i0, W, b, GV, R, NZ, z, eps0, eta, kappa, gg, gk, gz, om2, kk,
                              cw, S_eps, S_eta, True)
        for q in range(3):
            losses[b, q] += sums[q]


@njit(cache=True, parallel=True, fastmath=_FM)
def step_pathwise(t, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev, D_hist, bounds,
                  P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, mask, mem_scale, R_theta, gg, gk,
                  gz, om2, kk, cw, Rg_row, losses):
    """As :func:`step_stein`, but R_g(t, u) = E[dg(t)/domega(u)] by reverse-mode
    differentiation of each path: A(t) = D(t), A(u) = sum_{v=u+1..t} A(v) R_theta(v, u) D(u),
    R_g(t, u) = E[A(u)], with D = dg/dh including sigma'' (smooth sigma only)."""
    G = bounds.shape[0] - 1
    p = a.shape[0]
    for b in prange(G):
        R, MEM, NZ = np.empty((p, CHUNK)), np.empty((p, CHUNK)), np.empty((p, CHUNK))
        GV, HV, HT = np.empty((p, CHUNK)), np.empty((p, CHUNK)), np.empty((p, CHUNK))
        ACT = np.empty((3, CHUNK))
        SEL, ERR, sums = np.empty(CHUNK), np.empty(CHUNK), np.zeros(3)
        A = np.empty((t + 1, p, p))
        tmp = np.empty((p, p))
        for i0 in range(bounds[b], bounds[b + 1], CHUNK):
            W = min(CHUNK, bounds[b + 1] - i0)
            _chunk_forward(t, i0, W, b, code, a, z, y, sqrt_alpha, lr, eps0, eta, kappa, g_prev,
                           P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, mask, mem_scale, R, MEM,
                           NZ, GV, HV, HT, ACT, SEL, ERR, sums)
            for ii in range(W):
                i = i0 + ii
                sel, err = SEL[ii], ERR[ii]
                for j in range(p):
                    sj = sel * a[j] * dsigma(code, HV[j, ii])
                    for l in range(p):
                        D_hist[t, i, j, l] = sj * a[l] * dsigma(code, HV[l, ii])
                    D_hist[t, i, j, j] += sel * err * a[j] * d2sigma(code, HV[j, ii])
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
            _chunk_accumulate(t, i0, W, b, GV, R, NZ, z, eps0, eta, kappa, gg, gk, gz, om2, kk,
                              cw, om2, gk, False)
        for q in range(3):
            losses[b, q] += sums[q]
