"""Weight side of the DMFT (THEORY.md section 2): exact linear recursions, no sampling.

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
amplified noise (the pitfall of THEORY.md does not arise).  The pathwise estimator computes
R_g(t, u) itself and forms the same products.

Arrays (leading replica axis G).  B, K and the Stein averages over nu are stored *flat*,
one p x (blocks * p) matrix per time, so that every sum over the second time is a single batched
matrix product (measured 30x faster than einsum over 5-d arrays at T = 100):

=============  =======================  ==================================================
``P``          (G, T+1, p, p)           Psi(t) C0^{1/2}
``Bf``         (G, T+1, p, T p)         B(t, v) in columns v p .. v p + p - 1 (v < t)
``Kf``         (G, T+1, p, (T+1) p)     block Cholesky factor of C_g, K(t, v) (v <= t)
``K_inv``      (G, T+1, p, p)           pseudo-inverse of K(t, t) (innovations below CUT: 0)
``S_eps``      (G, T+1, p, p)           E[g(t) eps0^T]                  (Stein estimator)
``S_nuf``      (G, T+1, p, T p)         E[g(t) nu(v)^T], v < t, flat    (Stein estimator)
=============  =======================  ==================================================

The reported order parameters and kernels (M, C_theta, C_g, R_g, Psi, R_theta per replica)
live in ``WeightSide.kernels``, a :class:`Kernels`.

With the Stein estimator, R_g, Psi and R_theta are not needed by the dynamics; they are
reconstructed for reporting by :meth:`WeightSide.reconstruct` (block triangular inverses with
truncated diagonal blocks).
"""
import functools
from dataclasses import dataclass

import numpy as np

from .beyond import sphere_factor
from .errors import PSD_RTOL, check_projection
from .linalg import eigh_sym, psd_sqrt, sqrt_and_pinv, swap, sym
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


def unflat(mat, p):
    """Inverse of :func:`flat` (a contiguous copy)."""
    G, _, n = mat.shape
    return np.ascontiguousarray(mat.reshape(G, p, n // p, p).transpose(0, 2, 1, 3))


def block_lower_inverse(L, D):
    """Inverse of a block lower-triangular matrix L (G, n p, n p) whose diagonal blocks are
    replaced by the given (truncated) pseudo-inverses D (G, n, p, p)."""
    G, n = D.shape[:2]
    p = D.shape[-1]
    X = np.zeros_like(L)
    for i in range(n):
        r = slice(i * p, (i + 1) * p)
        X[:, r, r] = D[:, i]
        if i:
            X[:, r, :i * p] = -D[:, i] @ (L[:, r, :i * p] @ X[:, :i * p, :i * p])
    return X


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


class WeightSide:
    """All two-time kernels of the DMFT and their forward recursions (module docstring)."""

    #: innovations of g with standard deviation below CUT * sqrt(max eig C_g(s, s)) are
    #: treated as zero when whitening (1e-12 in variance: round-off, not physics)
    CUT = 1e-6

    def __init__(self, G, T, p, k, alpha, eta, ridge, C0, M0, pathwise=False, report_rtol=1e-3,
                 sphere=False):
        self.G, self.T, self.p, self.k = G, T, p, k
        #: spherical GD: the factors D(t) of eq. (7.8), diagonal (G, T+1, p); None otherwise
        self.D = np.ones((G, T + 1, p)) if sphere else None
        self.alpha, self.eta, self.ridge = alpha, eta, ridge
        self.pathwise = pathwise
        #: innovations below this fraction of the largest are dropped in the reporting
        #: back-solves (:meth:`reconstruct`; the dynamics never uses them)
        self.report_rtol = report_rtol
        Tb = max(T, 1)
        self.P = np.zeros((G, T + 1, p, p))
        self.Bf = np.zeros((G, T + 1, p, Tb * p))
        self.Kf = np.zeros((G, T + 1, p, (T + 1) * p))
        self.K_inv = np.zeros((G, T + 1, p, p))
        self.S_eps = np.zeros((G, T + 1, p, p))
        self.S_nuf = np.zeros((G, T + 1, p, Tb * p))
        self.kernels = Kernels.zeros(G, T, p, k)
        self.kernels.M[:, 0] = M0
        self.C0_half, self.C0_half_pinv, _ = psd_sqrt(C0)
        self.g_scale = np.zeros(G)                   # sqrt(largest eigenvalue of C_g(s, s))
        # re-orthogonalisation of the last-but-one innovation, applied by the next step
        self.c_prev, self.K_inv_prev = np.zeros((G, 0, p, p)), np.zeros((G, p, p))

    def _check_psd(self, lam, t, what):
        """Negative eigenvalues ``lam`` (G, p) of a Monte Carlo covariance are clipped to zero;
        warn (KernelProjectionWarning) when the worst replica's correction exceeds PSD_RTOL of
        the largest eigenvalue of C_g(s, s) so far (round-off stays below)."""
        rel = -lam[:, 0] / np.maximum(self.g_scale, 1e-300) ** 2
        b = int(np.argmax(rel))
        if rel[b] > PSD_RTOL:
            check_projection(lam[b, 0], self.g_scale[b] ** 2, f"{what} (replica {b})", t)

    def _whiten(self, resid, t, what):
        """Square root K(t, t) of an innovation covariance (G, p, p) and its pseudo-inverse,
        innovations below CUT of the scale of g treated as zero; also the eigenvalues."""
        lam, V = eigh_sym(resid)
        self._check_psd(lam, t, what)
        keep = np.sqrt(np.clip(lam, 0.0, None)) > (self.CUT * self.g_scale)[:, None]
        K, K_inv = sqrt_and_pinv(V, np.sqrt(np.clip(lam, 0.0, None)), keep)
        return K, K_inv, lam

    # ------------------------------------------------------------------ views for the kernels
    def B_row(self, t):
        """B(t, v) for v < t as contiguous blocks (G, t, p, p)."""
        return unflat(self.Bf[:, t, :, :t * self.p], self.p)

    def K_row(self, t, n):
        """K(t, v) for v < n as contiguous blocks (G, n, p, p)."""
        return unflat(self.Kf[:, t, :, :n * self.p], self.p)

    def coefficients(self, t):
        """The :class:`~dmft.shard.StepCoefficients` of step t (after :meth:`advance`)."""
        G, p = self.G, self.p
        B_row = self.B_row(t)
        return StepCoefficients(
            P_t=np.ascontiguousarray(self.P[:, t]), B_row=B_row, B_mem=B_row,
            c_last=self._c_last(t),
            K_prev=self.K_row(t - 1, t - 1) if t >= 1 else np.zeros((G, 0, p, p)),
            c_prev=self.c_prev, K_inv_prev=self.K_inv_prev,
            M_t=np.ascontiguousarray(self.kernels.M[:, t]),
            R_theta=self.kernels.R_theta if self.pathwise else None)

    def _c_last(self, t):
        """Coefficient of -r(t-1) in the memory term: eta, or eta D(t) on the sphere, since
        B(t, t-1) = -eta D(t) K(t-1, t-1) (eq. (7.9))."""
        c = np.full((self.G, self.p), self.eta if t >= 1 else 0.0)
        return c if self.D is None else c * self.D[:, t]

    # ------------------------------------------------------------------ forward step
    def _response_products(self, s):
        """sum_u R_g(s, u) P(u) (G, p, p) and sum_u R_g(s, u) B(u, v) for v <= s, flat
        (G, p, (s+1) p)."""
        n = (s + 1) * self.p
        if not self.pathwise:
            return self.S_eps[:, s], self.S_nuf[:, s, :, :n] / np.sqrt(self.alpha)
        Rg = self.kernels.R_g[:, s, :s + 1]                             # (G, s+1, p, p)
        XP = np.einsum("guij,gujk->gik", Rg, self.P[:, :s + 1])
        Bu = self.Bf[:, :s + 1, :, :n].reshape(self.G, n, n)             # rows (u, j)
        return XP, flat(Rg) @ Bu

    @_overflow_checked
    def advance(self, t):
        """P(t), B(t, .) and C_theta(t, .) (and, for the pathwise estimator, Psi(t) and
        R_theta(t, .)) from the kernels at times < t."""
        decay = 1.0 - self.eta * self.ridge
        ea = self.eta * self.alpha
        p, G = self.p, self.G
        n = t * p
        K = self.kernels
        eye = np.broadcast_to(np.eye(p), (G, p, p))
        if t == 0:
            self.P[:, 0] = self.C0_half
            K.Psi[:, 0] = eye
        else:
            XP, XB = self._response_products(t - 1)
            self.P[:, t] = decay * self.P[:, t - 1] - ea * XP
            self.Bf[:, t, :, :n] = decay * self.Bf[:, t - 1, :, :n] \
                - self.eta * self.Kf[:, t - 1, :, :n] - ea * XB
            if self.pathwise:       # Psi and R_theta are needed by the pathwise adjoint
                Rg = K.R_g[:, t - 1, :t]
                K.Psi[:, t] = decay * K.Psi[:, t - 1] - ea * np.einsum(
                    "guij,gujk->gik", Rg, K.Psi[:, :t])
                if t >= 2:
                    K.R_theta[:, t, :t - 1] = decay * K.R_theta[:, t - 1, :t - 1] - ea * \
                        np.einsum("guij,gusjk->gsik", Rg, K.R_theta[:, :t, :t - 1])
                K.R_theta[:, t, t - 1] = -self.eta * eye
        C = np.einsum("gij,gukj->guik", self.P[:, t], self.P[:, :t + 1])
        if t >= 1:
            A = self.Bf[:, t, :, :n]                                          # (G, p, n)
            Bu = self.Bf[:, :t + 1, :, :n]                                    # (G, t+1, p, n)
            C += self.alpha * (A[:, None] @ swap(Bu))
        C[:, t] = 0.5 * (C[:, t] + swap(C[:, t]))
        K.C_theta[:, t, :t + 1] = C
        K.C_theta[:, :t + 1, t] = swap(C)

    @_overflow_checked
    def normalize(self, t):
        """Spherical GD: multiply row t of M, P, B, C_theta (and Psi, R_theta for the pathwise
        estimator) by D(t) on the left, eqs. (7.8)-(7.9), after :meth:`advance` (t >= 1; M(t)
        is then still the unnormalised Mtilde(t) of :meth:`update_M`)."""
        K = self.kernels
        D = sphere_factor(K.M[:, t], K.C_theta[:, t, t])
        self.D[:, t] = D
        col = D[:, :, None]
        K.M[:, t] *= col
        self.P[:, t] *= col
        self.Bf[:, t] *= col
        C = col[:, None] * K.C_theta[:, t, :t + 1]                       # D Ctilde(t, s)
        C[:, t] *= D[:, None, :]                                           # D Ctilde(t, t) D
        C[:, t] = 0.5 * (C[:, t] + swap(C[:, t]))
        K.C_theta[:, t, :t + 1] = C
        K.C_theta[:, :t + 1, t] = swap(C)
        if self.pathwise:
            K.Psi[:, t] *= col
            K.R_theta[:, t, :t] *= col[:, None]

    # ------------------------------------------------------------------ sample-side results
    def ingest(self, t, sums, counts):
        """Take the :class:`~dmft.shard.StepSums` of step t (divided here by the group sizes
        ``counts`` (G,)): finish the innovation of g(t-1), set row t of K (and C_g), store the
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
            gk[:, t - 1] = (gk[:, t - 1] - np.einsum("gwij,gwkj->gik", gk[:, :t - 1], cw)) \
                @ K_inv
        self.set_g_row(t, sums.gg / c3, gk)
        if self.pathwise:
            self.kernels.R_g[:, t, :t + 1] = sums.R_g / c4     # the pathwise R_g(t, .) sums
        else:
            self.S_eps[:, t] = sums.S_eps / c3
            if t:
                self.S_nuf[:, t, :, :t * self.p] = flat(sums.S_nu / c4)
        return change

    def set_g_row(self, t, gg, gk):
        """Row t of K from E[g(t) g(t)^T] (G, p, p) and E[g(t) kappa(v)^T], v < t (G, t, p, p).

        K(t, v) = E[g(t) kappa(v)^T] (kappa are orthonormal innovations); K(t, t) is the
        symmetric square root of the residual covariance (provisional: replaced from the
        paths' own residuals by :meth:`finalize_innovation` at the next step).  Returns the
        smallest eigenvalue of that residual relative to C_g(t, t) (round-off only)."""
        p = self.p
        n = t * p
        if t:
            self.Kf[:, t, :, :n] = flat(gk)
        Kt = self.Kf[:, t, :, :n]
        resid = gg - Kt @ swap(Kt)
        top = np.linalg.eigvalsh(0.5 * (gg + swap(gg)))[:, -1]
        self.g_scale = np.maximum(self.g_scale, np.sqrt(np.clip(top, 0.0, None)))
        Kss, self.K_inv[:, t], lam = self._whiten(
            resid, t, "innovation covariance of g (C_g minus its past)")
        self.Kf[:, t, :, n:n + p] = Kss
        if t == self.T:             # earlier rows are written by finalize_innovation
            self._C_g_row(t)
        return float(np.min(lam[:, 0] / np.maximum(top, 1e-300)))

    def _C_g_row(self, t):
        n = (t + 1) * self.p
        A = self.Kf[:, t, :, :n]
        row = A[:, None] @ swap(self.Kf[:, :t + 1, :, :n])                   # (G, t+1, p, p)
        row[:, t] = 0.5 * (row[:, t] + swap(row[:, t]))
        self.kernels.C_g[:, t, :t + 1] = row
        self.kernels.C_g[:, :t + 1, t] = swap(row)

    def finalize_innovation(self, s, rr, c):
        """Re-orthogonalise and normalise the innovation of g(s), from the paths' own raw
        innovations r(s): rr = E[r r^T] (G, p, p), c(w) = E[r kappa(w)^T] (G, s, p, p).

        The second Gram-Schmidt projection moves c(w) into K(s, w) (and -eta c(w) into
        B(s+1, w)); K(s, s) = (rr - sum_w c c^T)^{1/2} replaces the provisional value from
        E[g g^T] - sum K K^T, which loses small innovations to cancellation.  Returns K_inv(s)
        and the relative change of K(s, s) K(s, s)^T (a round-off health indicator)."""
        p = self.p
        n = s * p
        cf = flat(c) if s else np.zeros((self.G, p, 0))
        resid = rr - cf @ swap(cf)
        Knew, Kinv, _ = self._whiten(resid, s, "re-orthogonalised innovation covariance of g")
        Kss = self.Kf[:, s, :, n:n + p]
        old = Kss @ swap(Kss)
        self.Kf[:, s, :, :n] += cf
        self.Kf[:, s, :, n:n + p] = Knew
        self.K_inv[:, s] = Kinv
        if self.D is None:
            self.Bf[:, s + 1, :, :n] -= self.eta * cf
            self.Bf[:, s + 1, :, n:n + p] = -self.eta * self.Kf[:, s, :, n:n + p]
        else:                        # row s+1 of B carries D(s+1) (eq. (7.9))
            lr = self.eta * self.D[:, s + 1, :, None]
            self.Bf[:, s + 1, :, :n] -= lr * cf
            self.Bf[:, s + 1, :, n:n + p] = -lr * self.Kf[:, s, :, n:n + p]
        self._C_g_row(s)
        scale = np.maximum(self.g_scale, 1e-300) ** 2
        change = float(np.max(np.abs(resid - old).max(axis=(-1, -2)) / scale))
        return self.K_inv[:, s], change

    def update_M(self, t, gz):
        """M(t+1) = (1 - eta*lambda) M(t) - eta*alpha E[g(t) z*^T]."""
        M = self.kernels.M
        M[:, t + 1] = (1.0 - self.eta * self.ridge) * M[:, t] - self.eta * self.alpha * gz

    # ------------------------------------------------------------------ reporting
    def _truncated_inv_diag(self, last):
        """Pseudo-inverses of K(s, s), s < last, dropping innovations below ``report_rtol`` of
        the largest (a truncated pseudo-inverse)."""
        p = self.p
        D = np.stack([self.Kf[:, s, :, s * p:(s + 1) * p] for s in range(last)], axis=1)
        lam, V = np.linalg.eigh(D)
        ref = lam.max(axis=(1, 2))[:, None, None]
        keep = lam > self.report_rtol * np.where(ref > 0, ref, 1.0)
        return sym(V, np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0))

    @_overflow_checked
    def reconstruct(self, last):
        """Fill R_g, Psi and R_theta up to time ``last`` for reporting (Stein estimator).

        R_theta solves sum_{s>=v} R_theta(t, s) K(s, v) = B(t, v), and R_g solves
        sum_{w>=u} R_g(t, w) B(w, u-1) = E[g(t) nu(u-1)^T] / sqrt(alpha) (B(u, u-1) =
        -eta K(u-1, u-1)) and sum_w R_g(t, w) P(w) = S_eps(t): block triangular systems, solved
        through block inverses whose diagonal blocks drop innovations below ``report_rtol`` of
        the largest.  For inspection only: the dynamics never divides by an innovation."""
        if self.pathwise:
            return
        G, p, T = self.G, self.p, last
        K = self.kernels
        K.Psi[:, :T + 1] = self.P[:, :T + 1] @ self.C0_half_pinv
        if T == 0:
            K.R_g[:, 0, 0] = self.S_eps[:, 0] @ self.C0_half_pinv
            return
        n = T * p
        D = self._truncated_inv_diag(T)                                   # (G, T, p, p)
        X = block_lower_inverse(self.Kf[:, :T, :, :n].reshape(G, n, n), D)
        Rf = self.Bf[:, :T + 1, :, :n].reshape(G, (T + 1) * p, n) @ X     # rows (t, i)
        K.R_theta[:, :T + 1, :T] = Rf.reshape(G, T + 1, p, T, p).transpose(0, 1, 3, 2, 4)
        Dg = -D / self.eta          # inverse of B(u, u-1) = -eta D(u) K(u-1, u-1), eq. (7.9)
        if self.D is not None:
            Dg = Dg / self.D[:, 1:T + 1, None, :]
        Y = block_lower_inverse(self.Bf[:, 1:T + 1, :, :n].reshape(G, n, n), Dg)
        Sf = self.S_nuf[:, :T + 1, :, :n].reshape(G, (T + 1) * p, n) / np.sqrt(self.alpha)
        Rw = (Sf @ Y).reshape(G, T + 1, p, n)                               # R_g(t, w), w >= 1
        K.R_g[:, :T + 1, 1:T + 1] = Rw.reshape(G, T + 1, p, T, p).transpose(0, 1, 3, 2, 4)
        Pw = self.P[:, 1:T + 1].reshape(G, n, p)                            # rows (w, j)
        rhs = self.S_eps[:, :T + 1] - Rw @ Pw[:, None]
        K.R_g[:, :T + 1, 0] = rhs @ self.C0_half_pinv
