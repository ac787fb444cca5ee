"""Sample side of the DMFT (see the theory documentation, section 2): the Numba kernel over
Monte Carlo paths.

One call of :func:`step` advances the paths of a range of replica groups by one step t (see
:mod:`dmft.weight` for the representation):

    kappa(t-2) = K(t-2,t-2)^+ [r(t-2) - sum_{w<t-2} c(w) kappa(w)]  (finish whitening the last-but-one)
    r(t-1)     = g(t-1) - sum_{w<t-1} K(t-1, w) kappa(w)            (innovation of the path's own g)
    omega(t)   = P(t) eps0 + sqrt(alpha) sum_{v<t} B(t, v) nu(v)    (Gaussian field)
    h(t)       = M(t) z* + omega(t) + sum_{v<t-1} B(t, v) kappa(v) - eta r(t-1)   (memory term)
    g(t)       = s(t) l'(yhat(h(t)), y) a(t) * sigma'(h(t))                        eq. (7.2)

(B(t, t-1) kappa(t-1) = -eta K(t-1, t-1) K(t-1, t-1)^+ r(t-1) = -eta r(t-1), eta the learning
rate; nu are the fresh standard normals that drive the field.)
The raw innovation r(t-1) is stored in ``kappa[t-1]``; the kernel accumulates E[r r^T] and
c(w) = E[r kappa(w)^T], from which the caller computes the re-orthogonalisation and
K(t-1, t-1) = E[r' r'^T]^{1/2} (from the residuals themselves, not by a subtraction that would
lose small innovations to cancellation); the next call applies them to ``kappa[t-1]``.

One step makes two passes over each path's history, the least causality allows (the sums of
step t decide the coefficients of step t+1): the *forward* pass (whitening of kappa(t-2), r(t-1),
the memory term and the field's memory of nu share one loop over past times, four past times
per sweep over the outputs) and the *accumulation* pass, which finds the chunk's history still in
the L2 cache.  So each step reads the history from memory once.

The memory term has its own coefficients (:class:`dmft.shard.StepCoefficients`): ``B_mem``
multiplies kappa(v) (it is B(t, v), the same array as the field's ``B_row``) and ``c_last``
(G, p) multiplies r(t-1) (the learning rate).  Keeping them apart lets a test perturb the
memory alone (the validation suite must detect it).  With a data-reuse schedule, g is
multiplied by the path's selection s(t) (``mask`` (T+1, N) uint8; an empty array for
multi-pass) and the train loss is averaged over selected paths.

Layout (decision recorded here).  Paths are split in G contiguous groups; group b is an
independent replica with its own kernels (``P_t[b]``, ``B_row[b]``, ...) and its own sums, so
threads that take different groups (:mod:`dmft.threads`) need no atomics and results do not
depend on the number of threads.  Each group is cut in chunks of ``CHUNK`` paths (``chunks[c] =
(first path, width)``, chunks ``group_chunks[b] .. group_chunks[b+1]-1`` belong to group b).
The histories are blocked by chunk, ``nu`` and ``kappa`` of shape (n_chunks, T, p, CHUNK): one
chunk's whole history is one contiguous block, read as a single stream (the earlier (time,
neuron, path) layout cut it into T p short strided pieces and ran at half the bandwidth,
measured), and its rows are contiguous vectors of the chunk's paths, the innermost (SIMD) loop of
every stage (1-D slices: indexing a 2-D array inside the loop defeats LLVM's vectoriser, 3x
slower, measured).  ``nu`` is float32 (drawn in float64 and rounded), ``kappa`` float64 or
float32 (``history``).  The per-path vectors are stored by coordinate over the global path
index: ``eps0`` (p, N); ``g_prev`` (p, N) holds g(t-1) and is overwritten with g(t); ``z``
(k, N); ``y`` (N,); ``D_hist`` (T+1, N, p, p) holds D(s) = dg(s)/dh(s) for the pathwise
estimator.  The sums over paths are vector reductions (``fastmath`` reassociation only: NaN
and infinities keep their meaning, so divergence is still detected).  The kernel returns *sums*
over each group's paths; the caller divides by the group sizes.

Compile time (decision recorded here).  Numba compiles a jitted function called from another
one twice (alone, then again inside its caller's module), and a ``prange`` three times (alone,
in the parallel loop's body, in the launching function); so the whole step - forward pass,
pathwise stage, accumulation pass - is one function, run on threads (:mod:`dmft.threads`),
and only small helpers (the activation loops of :mod:`dmft.activations`, the scratch buffers,
the prefetch intrinsic) are separate.  The estimator is chosen by which arrays are None
(Stein: ``D_hist``, ``R_theta``, ``R_g``; pathwise: ``S_eps``, ``S_nu``): Numba prunes the
other estimator's branches when it compiles, so a Stein solve compiles no pathwise code and
each estimator is compiled on its first use only.  Every call passes the same types
(C-contiguous arrays of the dtypes above), so there is one specialisation per estimator and
history dtype; the activation ``code`` is a run-time argument, dispatched once per loop by the
helpers of :mod:`dmft.activations` (one compilation serves every activation).  A new model
option should enter the same way (a run-time code, or None for an array the default model does
not use), not as a new specialisation.  So do the models of the theory's section 7: the
``loss`` code (square, logistic, correlation, :mod:`dmft.beyond`; the square loss keeps its
inline loop, other losses go through ``loss_chunk``), the ``trained`` flag (a trained readout:
the sums of s l' sigma(h) in ``la``, eq. (7.5)) and the second layer ``a`` (G, p), a(t) per
group, always passed (a fixed readout passes its constant rows).  Spherical GD changes only the
coefficients (the weight side's rows carry D(t), the memory's ``c_last`` is eta D(t), eq.
(7.9)).
"""
import numpy as np
from numba import njit

from .activations import add_sigma, d2sigma, dsigma, scaled_dsigma
from .beyond import d2loss, loss_chunk
from .prefetch import prefetch_row

CHUNK = 256                 # paths per chunk (measured best of 64..4096 on AVX-512)
_FM = {"reassoc", "contract"}


@njit(cache=True)
def _scratch(p):
    """Per-thread chunk buffers of the forward pass: R, R2, MEM, NZ, HV, HT (p, CHUNK), ACT
    (2, CHUNK) (yhat and the test prediction), SEL, ERR (CHUNK,) and the three loss sums."""
    return (np.empty((p, CHUNK)), np.empty((p, CHUNK)), np.empty((p, CHUNK)),
            np.empty((p, CHUNK)), np.empty((p, CHUNK)), np.empty((p, CHUNK)),
            np.empty((2, CHUNK)), np.empty(CHUNK), np.empty(CHUNK), np.zeros(3))


@njit(cache=True, nogil=True, fastmath=_FM)
def step(g0, g1, t, code, loss, trained, a, z, y, sqrt_alpha, eps0, nu, kappa, g_prev, chunks,
         group_chunks, P_t, B_row, B_mem, c_last, K_prev, c_prev, K_inv_prev, M_t, mask, gg, gk,
         gz, om2, kk, cw, losses, la, S_eps, S_nu, D_hist, R_theta, R_g):
    """Advance the paths of groups g0 .. g1-1 to time t (module docstring) and add their sums
    to the outputs (leading axis: group).

    Forward pass, chunk by chunk: leaves r(t-1) in R and ``kappa[c, t-1]``, g(t) in ``g_prev``
    (read first as g(t-1)), h in HV, the selection and s l' per path in SEL and ERR,
    and adds (s * train loss, test loss, s) to ``losses`` (the loss of code ``loss``, eq.
    (7.1)); with ``trained``, adds sum s l' sigma(h) to ``la`` (G, p) (eq. (7.5)).  Accumulation pass: ``gg`` sum
    g g^T, ``gk`` sum g kappa(v)^T (v < t; kappa(t-1) still raw), ``gz`` sum g z*^T, ``om2``
    sum omega omega^T, ``kk`` sum r r^T, ``cw`` sum r kappa(w)^T (w < t-1) and, for the Stein
    estimator, ``S_eps`` sum g eps0^T and ``S_nu`` sum g nu(v)^T (``D_hist``, ``R_theta``,
    ``R_g`` None).  The sums over past times are laid out as the weight side's rows,
    ``gk[b, j, v, l]`` (G, p, t, p), so that a row is a reshape, not a transposing copy; so is
    ``c_prev[b, j, w, l]``.  Pathwise estimator (``S_eps``, ``S_nu`` None): ``R_g`` sum of R_g(t, u) =
    dg(t)/domega(u) by reverse-mode differentiation of each path, A(t) = D(t), A(u) =
    sum_{v=u+1..t} A(v) R_theta(v, u) D(u), with D = dg/dh including sigma'' (smooth sigma
    only), kept in ``D_hist``."""
    p = a.shape[1]                               # a is a(t) per group (G, p)
    k = z.shape[0]                               # z is (k, N)
    R, R2, MEM, NZ, HV, HT, ACT, SEL, ERR, sums = _scratch(p)
    if R_g is not None:                          # one path's adjoint (pathwise)
        A = np.empty((t + 1, p, p))
        tmp = np.empty((p, p))
    for b in range(g0, g1):
        sums[:] = 0.0
        for c in range(group_chunks[b], group_chunks[b + 1]):
            i0, nw = chunks[c, 0], chunks[c, 1]
            nuh, kap = nu[c], kappa[c]             # the chunk's (T, p, CHUNK) histories
            # ---- forward pass: one read of the chunk's history (module docstring)
            for j in range(p):
                gp, rj, mj, nj = g_prev[j, i0:i0 + nw], R[j, :nw], MEM[j, :nw], NZ[j, :nw]
                for ii in range(nw):
                    rj[ii] = gp[ii]
                    mj[ii] = 0.0
                    nj[ii] = 0.0
                if t >= 2:
                    r2, kr = R2[j, :nw], kap[t - 2, j, :nw]
                    for ii in range(nw):
                        r2[ii] = kr[ii]
            # fused pass over kappa(w), nu(w), w < t-2, four past times per sweep over
            # the outputs
            w = 0
            while w + 4 <= t - 2:
                for l in range(p):
                    k0, k1, k2, k3 = kap[w, l, :nw], kap[w + 1, l, :nw], \
                        kap[w + 2, l, :nw], kap[w + 3, l, :nw]
                    e0, e1, e2, e3 = nuh[w, l, :nw], nuh[w + 1, l, :nw], \
                        nuh[w + 2, l, :nw], nuh[w + 3, l, :nw]
                    for j in range(p):
                        c0, c1, c2, c3 = c_prev[b, j, w, l], c_prev[b, j, w + 1, l], \
                            c_prev[b, j, w + 2, l], c_prev[b, j, w + 3, l]
                        q0, q1, q2, q3 = K_prev[b, w, j, l], K_prev[b, w + 1, j, l], \
                            K_prev[b, w + 2, j, l], K_prev[b, w + 3, j, l]
                        b0, b1, b2, b3 = B_row[b, w, j, l], B_row[b, w + 1, j, l], \
                            B_row[b, w + 2, j, l], B_row[b, w + 3, j, l]
                        m0, m1, m2, m3 = B_mem[b, w, j, l], B_mem[b, w + 1, j, l], \
                            B_mem[b, w + 2, j, l], B_mem[b, w + 3, j, l]
                        r2, rj, mj, nj = R2[j, :nw], R[j, :nw], MEM[j, :nw], NZ[j, :nw]
                        for ii in range(nw):
                            x0, x1, x2, x3 = k0[ii], k1[ii], k2[ii], k3[ii]
                            r2[ii] -= c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
                            rj[ii] -= q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3
                            mj[ii] += m0 * x0 + m1 * x1 + m2 * x2 + m3 * x3
                            nj[ii] += b0 * e0[ii] + b1 * e1[ii] + b2 * e2[ii] + b3 * e3[ii]
                w += 4
            while w < t - 2:
                for l in range(p):
                    kv, ev = kap[w, l, :nw], nuh[w, l, :nw]
                    for j in range(p):
                        c2, kc = c_prev[b, j, w, l], K_prev[b, w, j, l]
                        bc = B_row[b, w, j, l]
                        mc = B_mem[b, w, j, l]
                        r2, rj, mj, nj = R2[j, :nw], R[j, :nw], MEM[j, :nw], NZ[j, :nw]
                        for ii in range(nw):
                            x = kv[ii]
                            r2[ii] -= c2 * x
                            rj[ii] -= kc * x
                            mj[ii] += mc * x
                            nj[ii] += bc * ev[ii]
                w += 1
            if t >= 2:                   # kappa(t-2) = K^+ (r(t-2) - sum c kappa)
                s = t - 2
                for j in range(p):
                    kj = kap[s, j, :nw]
                    for ii in range(nw):
                        kj[ii] = 0.0
                    for l in range(p):
                        ci = K_inv_prev[b, j, l]
                        r2 = R2[l, :nw]
                        for ii in range(nw):
                            kj[ii] += ci * r2[ii]
                for l in range(p):
                    kv, ev = kap[s, l, :nw], nuh[s, l, :nw]
                    for j in range(p):
                        kc, bc = K_prev[b, s, j, l], B_row[b, s, j, l]
                        mc = B_mem[b, s, j, l]
                        rj, mj, nj = R[j, :nw], MEM[j, :nw], NZ[j, :nw]
                        for ii in range(nw):
                            x = kv[ii]
                            rj[ii] -= kc * x
                            mj[ii] += mc * x
                            nj[ii] += bc * ev[ii]
            if t >= 1:                   # nu(t-1) (fresh), and r(t-1) stored raw
                for l in range(p):
                    ev = nuh[t - 1, l, :nw]
                    for j in range(p):
                        bc = B_row[b, t - 1, j, l]
                        nj = NZ[j, :nw]
                        for ii in range(nw):
                            nj[ii] += bc * ev[ii]
                for j in range(p):
                    kj, rj = kap[t - 1, j, :nw], R[j, :nw]
                    for ii in range(nw):
                        kj[ii] = rj[ii]
            YH, YT = ACT[0, :nw], ACT[1, :nw]              # yhat and the test prediction
            for ii in range(nw):
                YH[ii] = 0.0
                YT[ii] = 0.0
            for j in range(p):           # pre-activations, vectorised over the chunk
                nj, mj, rj = NZ[j, :nw], MEM[j, :nw], R[j, :nw]
                hv, htv = HV[j, :nw], HT[j, :nw]
                pc, el = P_t[b, j, 0], eps0[0, i0:i0 + nw]
                for ii in range(nw):                      # NZ becomes omega(t)
                    nj[ii] = sqrt_alpha * nj[ii] + pc * el[ii]
                for l in range(1, p):
                    pc, el = P_t[b, j, l], eps0[l, i0:i0 + nw]
                    for ii in range(nw):
                        nj[ii] += pc * el[ii]
                mc, zq = M_t[b, j, 0], z[0, i0:i0 + nw]
                for ii in range(nw):      # HT: the test pre-activation M z* + omega
                    htv[ii] = nj[ii] + mc * zq[ii]
                for q in range(1, k):
                    mc, zq = M_t[b, j, q], z[q, i0:i0 + nw]
                    for ii in range(nw):
                        htv[ii] += mc * zq[ii]
                cl = c_last[b, j]
                for ii in range(nw):      # HV: h = HT + memory - eta r(t-1)
                    hv[ii] = htv[ii] + (mj[ii] - cl * rj[ii])
                sg = R2[j, :nw]           # free after the forward pass
                if trained:               # sigma(h) kept for the readout's sums, eq. (7.5)
                    for ii in range(nw):
                        sg[ii] = 0.0
                # one call site for yhat, the test prediction and (trained) sigma(h):
                # every call site of a helper is compiled again (module docstring)
                for which in range(3 if trained else 2):
                    x, out, coef = hv, YH, a[b, j]
                    if which == 1:
                        x, out = htv, YT
                    elif which == 2:
                        out, coef = sg, 1.0
                    add_sigma(code, x, coef, out)
            if mask.shape[0] == 0:                       # multi-pass: every path selected
                for ii in range(nw):
                    SEL[ii] = 1.0
            else:
                ms = mask[t, i0:i0 + nw]
                for ii in range(nw):
                    SEL[ii] = float(ms[ii])
            yc = y[i0:i0 + nw]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            if loss == 0:                                 # square loss, eq. (1.4)
                for ii in range(nw):                      # ERR = s (yhat - y), s = 0 or 1
                    sel = SEL[ii]
                    err = sel * (YH[ii] - yc[ii])
                    e_test = YT[ii] - yc[ii]
                    ERR[ii] = err
                    s0 += 0.5 * err * err
                    s1 += 0.5 * e_test * e_test
                    s2 += sel
            else:                                         # ERR = s l', eqs. (7.1)-(7.2)
                s0, s1, s2 = loss_chunk(loss, YH[:nw], YT[:nw], yc, SEL[:nw], ERR[:nw])
            sums[0] += s0
            sums[1] += s1
            sums[2] += s2
            for j in range(p):                           # g = s l' a sigma'(h), eq. (7.2)
                scaled_dsigma(code, HV[j, :nw], ERR[:nw], a[b, j], g_prev[j, i0:i0 + nw])
            if trained:                  # sum of s l' sigma(h) for the readout, eq. (7.5)
                for j in range(p):       # (sigma(h) left in R2 by the loop above)
                    sg = R2[j, :nw]
                    s0 = 0.0
                    for ii in range(nw):
                        s0 += ERR[ii] * sg[ii]
                    la[b, j] += s0
            # ---- pathwise estimator only
            if R_g is not None:                  # D(t) and the adjoint A(u), path by path
                for ii in range(nw):
                    i = i0 + ii
                    sel, err = SEL[ii], ERR[ii]
                    lpp = d2loss(loss, YH[ii], yc[ii])    # D = s (l'' v v^T + l' diag), eq. (7.2)
                    for j in range(p):
                        sj = sel * a[b, j] * dsigma(code, HV[j, ii])
                        for l in range(p):
                            D_hist[t, i, j, l] = sj * lpp * a[b, l] * dsigma(code, HV[l, ii])
                        D_hist[t, i, j, j] += err * a[b, j] * d2sigma(code, HV[j, ii])
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
                                R_g[b, u, j, l] += A[u, j, l]
            # ---- accumulation pass: the chunk's history is still in the L2 cache; meanwhile
            # the next chunk's data are prefetched (its forward pass then finds them there)
            nxt = c + 1 < group_chunks[g1]
            if nxt:
                i1, nw1 = chunks[c + 1, 0], chunks[c + 1, 1]
                for j in range(p):
                    prefetch_row(g_prev[j, i1:], nw1)
                    prefetch_row(eps0[j, i1:], nw1)
                for q in range(k):
                    prefetch_row(z[q, i1:], nw1)
                prefetch_row(y[i1:], nw1)
                if mask.shape[0] != 0:
                    prefetch_row(mask[t, i1:], nw1)
            for j in range(p):
                gj, nj, rj = g_prev[j, i0:i0 + nw], NZ[j, :nw], R[j, :nw]
                for l in range(p):
                    gl, nl, rl = g_prev[l, i0:i0 + nw], NZ[l, :nw], R[l, :nw]
                    el = eps0[l, i0:i0 + nw]
                    s1 = 0.0
                    s2 = 0.0
                    s3 = 0.0
                    s4 = 0.0
                    for ii in range(nw):
                        s1 += gj[ii] * gl[ii]
                        s2 += nj[ii] * nl[ii]
                        s3 += rj[ii] * rl[ii]
                        if S_eps is not None:
                            s4 += gj[ii] * el[ii]
                    gg[b, j, l] += s1
                    om2[b, j, l] += s2
                    if t >= 1:
                        kk[b, j, l] += s3
                    if S_eps is not None:
                        S_eps[b, j, l] += s4
                for q in range(k):
                    zq = z[q, i0:i0 + nw]
                    s1 = 0.0
                    for ii in range(nw):
                        s1 += gj[ii] * zq[ii]
                    gz[b, j, q] += s1
            for v in range(t):
                for l in range(p):
                    kv = kap[v, l, :nw]
                    ev = nuh[v, l, :nw]
                    if nxt:
                        prefetch_row(kappa[c + 1, v, l], nw1)
                        prefetch_row(nu[c + 1, v, l], nw1)
                    for j in range(p):
                        gj = g_prev[j, i0:i0 + nw]
                        rj = R[j, :nw]
                        s1 = 0.0
                        s2 = 0.0
                        s3 = 0.0
                        for ii in range(nw):
                            x = kv[ii]
                            s1 += gj[ii] * x
                            if S_nu is not None:
                                s2 += gj[ii] * ev[ii]
                            s3 += rj[ii] * x
                        gk[b, j, v, l] += s1
                        if S_nu is not None:
                            S_nu[b, j, v, l] += s2
                        if v < t - 1:
                            cw[b, j, v, l] += s3
        for q in range(3):
            losses[b, q] += sums[q]
