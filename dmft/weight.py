"""Weight side of the DMFT (docs: theory section 2): exact linear recursions, no sampling.

Representation (decision recorded here; README "How the solver works")
--------------------------------------------------------------------
The weight-side process is driven by theta(0) ~ N(0, C0) and by xi with Cov = alpha C_g.  We
write both through *whitened* drivers, theta(0) = C0^{1/2} eps0 and g(s) = sum_{v<=s} K(s, v)
kappa(v) (K: block Cholesky factor of C_g, kappa: the sample's whitened innovations), so that

    omega(t) = P(t) eps0 + sqrt(alpha) sum_{v<t} B(t, v) nu(v),         eps0, nu i.i.d. N(0, I)
    memory   = sum_{s<t} R_theta(t, s) g(s) = sum_{v<t} B(t, v) kappa(v)
    P(t) = Psi(t) C0^{1/2},   B(t, v) = sum_s R_theta(t, s) K(s, v),
    C_theta(t, t') = P(t) P(t')^T + alpha sum_v B(t, v) B(t', v)^T,

and the recursions for Psi and R_theta, multiplied on the right by C0^{1/2} and K, become

    P(t+1)    = (1 - eta lambda) P(t)    - eta alpha sum_u R_g(t, u) P(u)
    B(t+1, v) = (1 - eta lambda) B(t, v) - eta K(t, v) - eta alpha sum_u R_g(t, u) B(u, v).

By Gaussian integration by parts the only response products needed are Monte Carlo averages,
sum_u R_g(t, u) P(u) = E[g(t) eps0^T] and sum_u R_g(t, u) B(u, v) = E[g(t) nu(v)^T] / sqrt(alpha),
so the Stein estimator never divides by an innovation: no back-solve, no truncation, no
amplified noise (the pitfall of eq. (3.17) does not arise).  The pathwise estimator computes
R_g(t, u) itself and forms the same products.

Arrays (leading replica axis G).  The rows of B, K and of the Stein averages over nu are kept
*packed*: one p x (blocks * p) matrix per time, only the blocks that can be non-zero, so that a
step touches only the new row of each (O(G t p^2) work) and the memory is G T^2 p^2 / 2 numbers
per array instead of G T^2 p^2:

=================  =======================  ============================================
``P``              (G, T+1, p, p)           Psi(t) C0^{1/2}
``B_rows[t]``      (G, p, t p)              B(t, v), v < t, in columns v p .. v p + p - 1
``K_rows[t]``      (G, p, (t+1) p)          block Cholesky factor of C_g, K(t, v), v <= t
``K_inv``          (G, T+1, p, p)           pseudo-inverse of K(t, t) (innovations below CUT: 0)
``S_eps``          (G, T+1, p, p)           E[g(t) eps0^T]                  (Stein estimator)
``S_nu_rows[t]``   (G, p, t p)              E[g(t) nu(v)^T], v < t          (Stein estimator)
``M``, ``C_diag``  (G, T+1, p, k), (.., p)  overlaps M(t) and C_theta(t, t)
``D``              (G, T+1, p)              spherical GD only: the diagonal of D(t), eq. (7.8)
=================  =======================  ============================================

Spherical GD (eqs. (7.7)-(7.9)) multiplies row t of M, P and B (and C_theta(t, t) on both
sides) by D(t) on the left once C_theta(t, t) is known (:meth:`WeightSide.normalize`); the
corrections that :meth:`WeightSide.finalize_innovation` later makes to B(t, .) carry D(t) too,
B(t, t-1) = -eta D(t) K(t-1, t-1), and so does the memory's coefficient of -r(t-1).

The dynamics needs only the rows of the current step and C_theta(t, t).  The two-time kernels
that are reported (C_theta, C_g, R_g, Psi, R_theta per replica) are formed from these rows by
:mod:`dmft.report`, replica by replica and only when a result's kernels are first read
(:meth:`WeightSide.report`): Gram matrices of the rows and block triangular solves with
truncated diagonal blocks.  The pathwise estimator computes R_g itself and needs Psi and
R_theta in its dynamics: it keeps them dense (``WeightSide.dense``, a :class:`Kernels`).
"""
import functools
from dataclasses import dataclass

import numpy as np

from .beyond import sphere_factor
from .errors import PSD_RTOL, check_projection
from .linalg import eigh_sym, psd_sqrt, sqrt_and_pinv, swap
from .memory import committed_zeros
from .report import PackedKernels, dense_fields
from .shard import StepCoefficients


def _overflow_checked(method):
    """Floating-point overflow in the weight side is not reported by numpy: every kernel it
    produces is checked by the solver, which stops and reports the divergence (the values of
    the failing step are discarded)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return method(*args, **kwargs)
    return wrapper


def flat(blocks):
    """(G, n, p, p) blocks X(v) -> (G, p, n p) matrix [X(0) X(1) ...]."""
    G, n, p, _ = blocks.shape
    return blocks.transpose(0, 2, 1, 3).reshape(G, p, n * p)


def packed_rows(G, p, widths):
    """Rows of ``widths[t]`` p x p blocks, (G, p, widths[t] p) each, as consecutive views of one
    zeroed buffer (:func:`dmft.memory.committed_zeros`; no fragmentation of the heap)."""
    sizes = [G * p * p * w for w in widths]
    buf = committed_zeros(sum(sizes))
    ends = np.cumsum(sizes)
    return [buf[e - n:e].reshape(G, p, w * p) for e, n, w in zip(ends, sizes, widths)]


def unflat(mat, p):
    """Inverse of :func:`flat` (a contiguous copy)."""
    G, _, n = mat.shape
    return np.ascontiguousarray(mat.reshape(G, p, n // p, p).transpose(0, 2, 1, 3))


@dataclass
class Kernels:
    """Per-replica order parameters and two-time kernels of a solve (leading axis G), the
    arrays a :class:`~dmft.Result` is built from.

    ``M`` (G, T+1, p, k) overlaps; ``C_theta``, ``R_theta``, ``C_g``, ``R_g``
    (G, T+1, T+1, p, p): Cov[omega(t), omega(s)], R_theta(t, s) (s < t), E[g(t) g(s)^T],
    E[dg(t)/domega(s)] (s <= t); ``Psi`` (G, T+1, p, p) the response of theta(t) to theta(0)."""

    M: np.ndarray
    C_theta: np.ndarray
    R_theta: np.ndarray
    C_g: np.ndarray
    R_g: np.ndarray
    Psi: np.ndarray

    @classmethod
    def zeros(cls, G, T, p, k):
        """All arrays zero, for T steps of a width-p student and k target directions."""
        two = (G, T + 1, T + 1, p, p)
        return cls(M=np.zeros((G, T + 1, p, k)), C_theta=np.zeros(two), R_theta=np.zeros(two),
                   C_g=np.zeros(two), R_g=np.zeros(two), Psi=np.zeros((G, T + 1, p, p)))

    def Q(self, t):
        """Q(t) = M M^T + C_theta(t, t), per replica (G, p, p)."""
        M = self.M[:, t]
        return M @ swap(M) + self.C_theta[:, t, t]

    def fields(self, completed):
        """The ten kernel fields of a Result (means and errors over replicas), NaN after step
        ``completed``."""
        return dense_fields(self, completed)


class WeightSide:
    """All two-time kernels of the DMFT and their forward recursions (module docstring)."""

    #: innovations of g with standard deviation below CUT * sqrt(max eig C_g(s, s)) are
    #: treated as zero when whitening (1e-12 in variance: round-off, not physics)
    CUT = 1e-6

    def __init__(self, G, T, p, k, alpha, eta, ridge, C0, M0, pathwise=False, report_rtol=1e-3,
                 sphere=False, psd_rtol=PSD_RTOL):
        self.G, self.T, self.p, self.k = G, T, p, k
        #: spherical GD: the factors D(t) of eq. (7.8), diagonal (G, T+1, p); None otherwise
        self.D = np.ones((G, T + 1, p)) if sphere else None
        self.alpha, self.eta, self.ridge = alpha, eta, ridge
        self.pathwise = pathwise
        #: negative eigenvalues of Monte Carlo covariances up to this fraction are round-off
        self.psd_rtol = psd_rtol
        #: innovations below this fraction of the largest are dropped in the reporting
        #: back-solves (:mod:`dmft.report`; the dynamics never uses them)
        self.report_rtol = report_rtol
        self.P = np.zeros((G, T + 1, p, p))
        self.B_rows = packed_rows(G, p, [t for t in range(T + 1)])
        self.K_rows = packed_rows(G, p, [t + 1 for t in range(T + 1)])
        self.S_nu_rows = packed_rows(G, p, [0 if pathwise else t for t in range(T + 1)])
        self.K_inv = np.zeros((G, T + 1, p, p))
        self.S_eps = np.zeros((G, T + 1, p, p))
        self.M = np.zeros((G, T + 1, p, k))
        self.M[:, 0] = M0
        self.C_diag = np.zeros((G, T + 1, p, p))            # C_theta(t, t)
        #: R_g, Psi and R_theta, dense, for the pathwise estimator's dynamics (else None)
        self.dense = Kernels.zeros(G, T, p, k) if pathwise else None
        self.C0_half, self.C0_half_pinv, _ = psd_sqrt(C0)
        self.g_scale = np.zeros(G)                   # sqrt(largest eigenvalue of C_g(s, s))
        # re-orthogonalisation of the last-but-one innovation, applied by the next step
        self.c_prev, self.K_inv_prev = np.zeros((G, p, 0, p)), np.zeros((G, p, p))

    def _check_psd(self, lam, t, what):
        """Negative eigenvalues ``lam`` (G, p) of a Monte Carlo covariance are clipped to zero;
        warn (KernelProjectionWarning) when the worst replica's correction exceeds ``psd_rtol`` of
        the largest eigenvalue of C_g(s, s) so far (round-off stays below)."""
        rel = -lam[:, 0] / np.maximum(self.g_scale, 1e-300) ** 2
        b = int(np.argmax(rel))
        if rel[b] > self.psd_rtol:
            check_projection(lam[b, 0], self.g_scale[b] ** 2, f"{what} (replica {b})", t,
                             rtol=self.psd_rtol)

    def _whiten(self, resid, t, what):
        """Square root K(t, t) of an innovation covariance (G, p, p) and its pseudo-inverse,
        innovations below CUT of the scale of g treated as zero; also the eigenvalues."""
        lam, V = eigh_sym(resid)
        self._check_psd(lam, t, what)
        keep = np.sqrt(np.clip(lam, 0.0, None)) > (self.CUT * self.g_scale)[:, None]
        K, K_inv = sqrt_and_pinv(V, np.sqrt(np.clip(lam, 0.0, None)), keep)
        return K, K_inv, lam

    def _padded(self, row, n):
        """A packed row (G, p, m) with zero columns appended up to n (a new array)."""
        out = np.zeros((self.G, self.p, n))
        out[:, :, :row.shape[2]] = row
        return out

    # ------------------------------------------------------------------ views for the kernels
    def B_row(self, t):
        """B(t, v) for v < t as contiguous blocks (G, t, p, p)."""
        return unflat(self.B_rows[t], self.p)

    def K_row(self, t, n):
        """K(t, v) for v < n as contiguous blocks (G, n, p, p)."""
        return unflat(self.K_rows[t][:, :, :n * self.p], self.p)

    def coefficients(self, t):
        """The :class:`~dmft.shard.StepCoefficients` of step t (after :meth:`advance`)."""
        G, p = self.G, self.p
        B_row = self.B_row(t)
        return StepCoefficients(
            P_t=np.ascontiguousarray(self.P[:, t]), B_row=B_row, B_mem=B_row,
            c_last=self._c_last(t),
            K_prev=self.K_row(t - 1, t - 1) if t >= 1 else np.zeros((G, 0, p, p)),
            c_prev=self.c_prev, K_inv_prev=self.K_inv_prev,
            M_t=np.ascontiguousarray(self.M[:, t]),
            R_theta=self.dense.R_theta if self.pathwise else None)

    def _c_last(self, t):
        """Coefficient of -r(t-1) in the memory term: eta, or eta D(t) on the sphere, since
        B(t, t-1) = -eta D(t) K(t-1, t-1) (eq. (7.9))."""
        c = np.full((self.G, self.p), self.eta if t >= 1 else 0.0)
        return c if self.D is None else c * self.D[:, t]

    # ------------------------------------------------------------------ forward step
    def _response_products(self, s):
        """sum_u R_g(s, u) P(u) (G, p, p) and sum_u R_g(s, u) B(u, v) for v <= s, flat
        (G, p, w p): the Stein averages give w = s (the block v = s is zero), the pathwise
        products w = s + 1."""
        n = (s + 1) * self.p
        if not self.pathwise:
            return self.S_eps[:, s], self.S_nu_rows[s] / np.sqrt(self.alpha)
        Rg = self.dense.R_g[:, s, :s + 1]                               # (G, s+1, p, p)
        XP = np.einsum("guij,gujk->gik", Rg, self.P[:, :s + 1])
        Bu = np.stack([self._padded(self.B_rows[u], n) for u in range(s + 1)], axis=1)
        return XP, flat(Rg) @ Bu.reshape(self.G, n, n)                  # rows (u, j)

    def _advance_dense(self, t, decay, ea):
        """Psi(t) and R_theta(t, .) of the pathwise estimator (needed by its adjoint)."""
        K = self.dense
        Rg = K.R_g[:, t - 1, :t]
        K.Psi[:, t] = decay * K.Psi[:, t - 1] - ea * np.einsum(
            "guij,gujk->gik", Rg, K.Psi[:, :t])
        if t >= 2:
            K.R_theta[:, t, :t - 1] = decay * K.R_theta[:, t - 1, :t - 1] - ea * \
                np.einsum("guij,gusjk->gsik", Rg, K.R_theta[:, :t, :t - 1])
        K.R_theta[:, t, t - 1] = -self.eta * np.broadcast_to(np.eye(self.p), (self.G,) + (self.p,) * 2)

    @_overflow_checked
    def advance(self, t):
        """P(t), the row B(t, .) and C_theta(t, t) (and, for the pathwise estimator, Psi(t)
        and R_theta(t, .)) from the kernels at times < t: O(G t p^2) work."""
        decay = 1.0 - self.eta * self.ridge
        ea = self.eta * self.alpha
        n = t * self.p
        if t == 0:
            self.P[:, 0] = self.C0_half
            if self.pathwise:
                self.dense.Psi[:, 0] = np.eye(self.p)
        else:
            # B(t, .) = decay B(t-1, .) - eta K(t-1, .) - ea XB, in place (row t starts at
            # zero; temporaries of the row's size cost page faults at long horizons)
            XP, XB = self._response_products(t - 1)
            row, m = self.B_rows[t], n - self.p
            np.multiply(self.B_rows[t - 1], decay, out=row[:, :, :m])
            row -= self.K_rows[t - 1] * self.eta
            row[:, :, :XB.shape[2]] -= ea * XB
            self.P[:, t] = decay * self.P[:, t - 1] - ea * XP
            if self.pathwise:
                self._advance_dense(t, decay, ea)
        Pt = self.P[:, t]
        C = Pt @ swap(Pt)
        if t >= 1:
            A = self.B_rows[t]                                                # (G, p, n)
            C += self.alpha * (A @ swap(A))
        self.C_diag[:, t] = 0.5 * (C + swap(C))

    @_overflow_checked
    def normalize(self, t):
        """Spherical GD: multiply row t of M, P, B and C_theta(t, t) (and Psi, R_theta for the
        pathwise estimator) by D(t) on the left, eqs. (7.8)-(7.9), after :meth:`advance`
        (t >= 1; M(t) is then still the unnormalised Mtilde(t) of :meth:`update_M`).  The
        reported C_theta(t, s) = D(t) Ctilde(t, s) D(s) and R_theta(t, s) = D(t) Rtilde(t, s)
        follow from the rows (:mod:`dmft.report`)."""
        D = sphere_factor(self.M[:, t], self.C_diag[:, t])
        self.D[:, t] = D
        col = D[:, :, None]
        self.M[:, t] *= col
        self.P[:, t] *= col
        self.B_rows[t] *= col
        C = col * self.C_diag[:, t] * D[:, None, :]                      # D Ctilde(t, t) D
        self.C_diag[:, t] = 0.5 * (C + swap(C))
        if self.pathwise:
            self.dense.Psi[:, t] *= col
            self.dense.R_theta[:, t, :t] *= col[:, None]

    # ------------------------------------------------------------------ sample-side results
    def ingest(self, t, sums, counts):
        """Take the :class:`~dmft.shard.StepSums` of step t (divided here by the group sizes
        ``counts`` (G,)): finish the innovation of g(t-1), set row t of K, store the
        response products.  Returns the relative change of the re-orthogonalised innovation of
        g(t-1) (NaN at t = 0)."""
        c3, c4 = counts[:, None, None], counts[:, None, None, None]
        gk = sums.gk / c4
        change = np.nan
        if t >= 1:      # re-orthogonalise and whiten r(t-1) (applied by the next pass)
            cw = sums.cw / c4
            K_inv, change = self.finalize_innovation(t - 1, sums.kk / c3, cw)
            self.c_prev, self.K_inv_prev = cw, np.ascontiguousarray(K_inv)
            # E[g(t) kappa(t-1)^T] = (E[g(t) r^T] - sum_w E[g(t) kappa(w)^T] c(w)^T) K_inv
            past = np.ascontiguousarray(gk[:, :, :t - 1]).reshape(self.G, self.p, -1) @ \
                swap(cw.reshape(self.G, self.p, -1)) if t >= 2 else 0.0      # one BLAS call
            gk[:, :, t - 1] = (gk[:, :, t - 1] - past) @ K_inv
        self.set_g_row(t, sums.gg / c3, gk)
        if self.pathwise:
            self.dense.R_g[:, t, :t + 1] = sums.R_g / c4     # the pathwise R_g(t, .) sums
        else:
            self.S_eps[:, t] = sums.S_eps / c3
            if t:
                np.divide(sums.S_nu.reshape(self.S_nu_rows[t].shape), c3, out=self.S_nu_rows[t])
        return change

    def set_g_row(self, t, gg, gk):
        """Row t of K from E[g(t) g(t)^T] (G, p, p) and E[g(t) kappa(v)^T], v < t (G, p, t, p),
        ``gk[:, j, v, l]`` (the layout of the rows).

        K(t, v) = E[g(t) kappa(v)^T] (kappa are orthonormal innovations); K(t, t) is the
        symmetric square root of the residual covariance (provisional: replaced from the
        paths' own residuals by :meth:`finalize_innovation` at the next step).  Returns the
        smallest eigenvalue of that residual relative to C_g(t, t) (round-off only)."""
        p = self.p
        n = t * p
        row = self.K_rows[t]
        Kt = row[:, :, :n]
        if t:
            Kt[...] = gk.reshape(self.G, p, n)
        resid = gg - Kt @ swap(Kt)
        top = np.linalg.eigvalsh(0.5 * (gg + swap(gg)))[:, -1]
        self.g_scale = np.maximum(self.g_scale, np.sqrt(np.clip(top, 0.0, None)))
        Kss, self.K_inv[:, t], lam = self._whiten(
            resid, t, "innovation covariance of g (C_g minus its past)")
        row[:, :, n:n + p] = Kss
        return float(np.min(lam[:, 0] / np.maximum(top, 1e-300)))

    def finalize_innovation(self, s, rr, c):
        """Re-orthogonalise and normalise the innovation of g(s), from the paths' own raw
        innovations r(s): rr = E[r r^T] (G, p, p), c(w) = E[r kappa(w)^T] (G, p, s, p),
        ``c[:, j, w, l]`` (the layout of the rows).

        The second Gram-Schmidt projection moves c(w) into K(s, w) (and -eta c(w) into
        B(s+1, w)); K(s, s) = (rr - sum_w c c^T)^{1/2} replaces the provisional value from
        E[g g^T] - sum K K^T, which loses small innovations to cancellation.  Returns K_inv(s)
        and the relative change of K(s, s) K(s, s)^T (a round-off health indicator)."""
        p = self.p
        n = s * p
        cf = c.reshape(self.G, p, n)
        resid = rr - cf @ swap(cf)
        Knew, Kinv, _ = self._whiten(resid, s, "re-orthogonalised innovation covariance of g")
        K_row, B_next = self.K_rows[s], self.B_rows[s + 1]
        Kss = K_row[:, :, n:n + p]
        old = Kss @ swap(Kss)
        K_row[:, :, :n] += cf
        K_row[:, :, n:n + p] = Knew
        self.K_inv[:, s] = Kinv
        if self.D is None:
            B_next[:, :, :n] -= self.eta * cf
            B_next[:, :, n:n + p] = -self.eta * K_row[:, :, n:n + p]
        else:                        # row s+1 of B carries D(s+1) (eq. (7.9))
            lr = self.eta * self.D[:, s + 1, :, None]
            B_next[:, :, :n] -= lr * cf
            B_next[:, :, n:n + p] = -lr * K_row[:, :, n:n + p]
        scale = np.maximum(self.g_scale, 1e-300) ** 2
        change = float(np.max(np.abs(resid - old).max(axis=(-1, -2)) / scale))
        return self.K_inv[:, s], change

    def update_M(self, t, gz):
        """M(t+1) = (1 - eta*lambda) M(t) - eta*alpha E[g(t) z*^T]."""
        self.M[:, t + 1] = (1.0 - self.eta * self.ridge) * self.M[:, t] \
            - self.eta * self.alpha * gz

    # ------------------------------------------------------------------ reporting
    def report(self, last):
        """The per-replica kernels of steps 0..``last`` for a :class:`~dmft.Result`, as a
        :class:`~dmft.report.PackedKernels` that forms the two-time kernels from the rows
        only when they are first read (the rows are shared, not copied)."""
        return PackedKernels(self, last)
