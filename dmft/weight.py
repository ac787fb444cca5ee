"""Weight side of the DMFT (THEORY.md section 2): exact linear recursions, no sampling.

Representation (decision recorded here; README "How the solver works")
--------------------------------------------------------------------
The weight-side process is driven by theta(0) ~ N(0, C0) and by xi with Cov = alpha C_g.  We
write both through *whitened* drivers, theta(0) = C0^{1/2} eps0 and g(s) = sum_{v<=s} K(s, v)
kappa(v) (K: block Cholesky factor of C_g, kappa: the sample's whitened innovations), so that

    omega(t) = P(t) eps0 + sqrt(alpha) sum_{v<t} B(t, v) eta(v),        eps0, eta i.i.d. N(0, I)
    memory   = sum_{s<t} R_theta(t, s) g(s) = sum_{v<t} B(t, v) kappa(v)
    P(t) = Psi(t) C0^{1/2},   B(t, v) = sum_s R_theta(t, s) K(s, v),
    C_theta(t, t') = P(t) P(t')^T + alpha sum_v B(t, v) B(t', v)^T,

and the recursions for Psi and R_theta, multiplied on the right by C0^{1/2} and K, become

    P(t+1)    = (1 - eta lambda) P(t)    - eta alpha sum_u R_g(t, u) P(u)
    B(t+1, v) = (1 - eta lambda) B(t, v) - eta K(t, v) - eta alpha sum_u R_g(t, u) B(u, v).

By Gaussian integration by parts the only response products needed are Monte Carlo averages,
sum_u R_g(t, u) P(u) = E[g(t) eps0^T] and sum_u R_g(t, u) B(u, v) = E[g(t) eta(v)^T] / sqrt(alpha),
so the Stein estimator never divides by an innovation: no back-solve, no truncation, no
amplified noise (the pitfall of THEORY.md does not arise).  The pathwise estimator computes
R_g(t, u) itself and forms the same products.

Arrays (leading replica axis G).  B, K and the Stein averages over eta are stored *flat*,
one p x (blocks * p) matrix per time, so that every sum over the second time is a single batched
matrix product (measured 30x faster than einsum over 5-d arrays at T = 100):

=============  =======================  ==================================================
``P``          (G, T+1, p, p)           Psi(t) C0^{1/2}
``Bf``         (G, T+1, p, T p)         B(t, v) in columns v p .. v p + p - 1 (v < t)
``Kf``         (G, T+1, p, (T+1) p)     block Cholesky factor of C_g, K(t, v) (v <= t)
``K_inv``      (G, T+1, p, p)           pseudo-inverse of K(t, t) (innovations below CUT: 0)
``S_eps``      (G, T+1, p, p)           E[g(t) eps0^T]                  (Stein estimator)
``S_etaf``     (G, T+1, p, T p)         E[g(t) eta(v)^T], v < t, flat   (Stein estimator)
``C_theta``    (G, T+1, T+1, p, p)      Cov[omega(t), omega(s)]
``C_g``        (G, T+1, T+1, p, p)      E[g(t) g(s)^T]
``R_g``        (G, T+1, T+1, p, p)      E[dg(t)/domega(s)], s <= t
``Psi``        (G, T+1, p, p)           response of theta(t) to theta(0)
``R_theta``    (G, T+1, T+1, p, p)      R_theta(t, s), s < t (R_theta(s+1, s) = -eta I)
``M``          (G, T+1, p, k)           overlaps
=============  =======================  ==================================================

With the Stein estimator, R_g, Psi and R_theta are not needed by the dynamics; they are
reconstructed for reporting by :meth:`WeightSide.reconstruct` (block triangular inverses with
truncated diagonal blocks).
"""
import functools

import numpy as np

from .errors import PSD_RTOL, check_projection


def _overflow_checked(method):
    """Floating-point overflow in the weight side is not reported by numpy: every kernel it
    produces is checked by the solver, which stops and reports the divergence (the values of
    the failing step are discarded)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return method(*args, **kwargs)
    return wrapper


def _sym(V, diag):
    """V diag V^T for stacks of eigenvectors V (..., p, p) and eigenvalues (..., p)."""
    return (V * diag[..., None, :]) @ np.swapaxes(V, -1, -2)


def _flat(blocks):
    """(G, n, p, p) blocks X(v) -> (G, p, n p) matrix [X(0) X(1) ...]."""
    G, n, p, _ = blocks.shape
    return blocks.transpose(0, 2, 1, 3).reshape(G, p, n * p)


def _blocks(flat, p):
    """Inverse of :func:`_flat` (a contiguous copy)."""
    G, _, n = flat.shape
    return np.ascontiguousarray(flat.reshape(G, p, n // p, p).transpose(0, 2, 1, 3))


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


class WeightSide:
    """All two-time kernels of the DMFT and their forward recursions."""

    #: innovations of g with standard deviation below CUT * sqrt(max eig C_g(s, s)) are
    #: treated as zero when whitening (1e-12 in variance: round-off, not physics)
    CUT = 1e-6
    #: innovations below this fraction of the largest are dropped in the reporting back-solves
    REPORT_RTOL = 1e-3

    def __init__(self, G, T, p, k, alpha, eta, ridge, C0, M0, pathwise=False):
        self.G, self.T, self.p, self.k = G, T, p, k
        self.alpha, self.eta, self.ridge = alpha, eta, ridge
        self.pathwise = pathwise
        two = (G, T + 1, T + 1, p, p)
        Tb = max(T, 1)
        self.P = np.zeros((G, T + 1, p, p))
        self.Bf = np.zeros((G, T + 1, p, Tb * p))
        self.Kf = np.zeros((G, T + 1, p, (T + 1) * p))
        self.K_inv = np.zeros((G, T + 1, p, p))
        self.S_eps = np.zeros((G, T + 1, p, p))
        self.S_etaf = np.zeros((G, T + 1, p, Tb * p))
        self.C_theta = np.zeros(two)
        self.C_g = np.zeros(two)
        self.R_g = np.zeros(two)
        self.R_theta = np.zeros(two)
        self.Psi = np.zeros((G, T + 1, p, p))
        self.M = np.zeros((G, T + 1, p, k))
        self.M[:, 0] = M0
        lam, V = np.linalg.eigh(0.5 * (C0 + C0.T))
        self.C0_half = _sym(V, np.sqrt(np.clip(lam, 0.0, None)))
        keep = lam > 1e-12 * max(lam.max(), 1e-300)
        self.C0_half_pinv = _sym(V, np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0))
        self.g_scale = np.zeros(G)                   # sqrt(largest eigenvalue of C_g(s, s))

    def _check_psd(self, lam, t, what):
        """Negative eigenvalues ``lam`` (G, p) of a Monte Carlo covariance are clipped to zero;
        warn (KernelProjectionWarning) when the worst replica's correction exceeds PSD_RTOL of
        the largest eigenvalue of C_g(s, s) so far (round-off stays below)."""
        rel = -lam[:, 0] / np.maximum(self.g_scale, 1e-300) ** 2
        b = int(np.argmax(rel))
        if rel[b] > PSD_RTOL:
            check_projection(lam[b, 0], self.g_scale[b] ** 2, f"{what} (replica {b})", t)

    # ------------------------------------------------------------------ views for the kernels
    def B_row(self, t):
        """B(t, v) for v < t as contiguous blocks (G, t, p, p)."""
        return _blocks(self.Bf[:, t, :, :t * self.p], self.p)

    def K_row(self, t, n):
        """K(t, v) for v < n as contiguous blocks (G, n, p, p)."""
        return _blocks(self.Kf[:, t, :, :n * self.p], self.p)

    # ------------------------------------------------------------------ forward step
    def _response_products(self, s):
        """sum_u R_g(s, u) P(u) (G, p, p) and sum_u R_g(s, u) B(u, v) for v <= s, flat
        (G, p, (s+1) p)."""
        n = (s + 1) * self.p
        if not self.pathwise:
            return self.S_eps[:, s], self.S_etaf[:, s, :, :n] / np.sqrt(self.alpha)
        Rg = self.R_g[:, s, :s + 1]                                     # (G, s+1, p, p)
        XP = np.einsum("guij,gujk->gik", Rg, self.P[:, :s + 1])
        Bu = self.Bf[:, :s + 1, :, :n].reshape(self.G, n, n)             # rows (u, j)
        return XP, _flat(Rg) @ Bu

    @_overflow_checked
    def advance(self, t):
        """P(t), B(t, .) and C_theta(t, .) (and, for the pathwise estimator, Psi(t) and
        R_theta(t, .)) from the kernels at times < t."""
        decay = 1.0 - self.eta * self.ridge
        ea = self.eta * self.alpha
        p, G = self.p, self.G
        n = t * p
        eye = np.broadcast_to(np.eye(p), (G, p, p))
        if t == 0:
            self.P[:, 0] = self.C0_half
            self.Psi[:, 0] = eye
        else:
            XP, XB = self._response_products(t - 1)
            self.P[:, t] = decay * self.P[:, t - 1] - ea * XP
            self.Bf[:, t, :, :n] = decay * self.Bf[:, t - 1, :, :n] \
                - self.eta * self.Kf[:, t - 1, :, :n] - ea * XB
            if self.pathwise:       # Psi and R_theta are needed by the pathwise adjoint
                Rg = self.R_g[:, t - 1, :t]
                self.Psi[:, t] = decay * self.Psi[:, t - 1] - ea * np.einsum(
                    "guij,gujk->gik", Rg, self.Psi[:, :t])
                if t >= 2:
                    self.R_theta[:, t, :t - 1] = decay * self.R_theta[:, t - 1, :t - 1] - ea * \
                        np.einsum("guij,gusjk->gsik", Rg, self.R_theta[:, :t, :t - 1])
                self.R_theta[:, t, t - 1] = -self.eta * eye
        C = np.einsum("gij,gukj->guik", self.P[:, t], self.P[:, :t + 1])
        if t >= 1:
            A = self.Bf[:, t, :, :n]                                          # (G, p, n)
            Bu = self.Bf[:, :t + 1, :, :n]                                    # (G, t+1, p, n)
            C += self.alpha * (A[:, None] @ np.swapaxes(Bu, -1, -2))
        C[:, t] = 0.5 * (C[:, t] + np.swapaxes(C[:, t], -1, -2))
        self.C_theta[:, t, :t + 1] = C
        self.C_theta[:, :t + 1, t] = np.swapaxes(C, -1, -2)

    # ------------------------------------------------------------------ sample-side results
    def set_g_row(self, t, gg, gk):
        """Row t of K from E[g(t) g(t)^T] (G, p, p) and E[g(t) kappa(v)^T], v < t (G, t, p, p).

        K(t, v) = E[g(t) kappa(v)^T] (kappa are orthonormal innovations); K(t, t) is the
        symmetric square root of the residual covariance (provisional: replaced from the
        paths' own residuals by :meth:`finalize_innovation` at the next step).  Returns the
        smallest eigenvalue of that residual relative to C_g(t, t) (round-off only)."""
        p = self.p
        n = t * p
        if t:
            self.Kf[:, t, :, :n] = _flat(gk)
        Kt = self.Kf[:, t, :, :n]
        resid = gg - Kt @ np.swapaxes(Kt, -1, -2)
        lam, V = np.linalg.eigh(0.5 * (resid + np.swapaxes(resid, -1, -2)))
        top = np.linalg.eigvalsh(0.5 * (gg + np.swapaxes(gg, -1, -2)))[:, -1]
        self.g_scale = np.maximum(self.g_scale, np.sqrt(np.clip(top, 0.0, None)))
        self._check_psd(lam, t, "innovation covariance of g (C_g minus its past)")
        std = np.sqrt(np.clip(lam, 0.0, None))
        keep = std > (self.CUT * self.g_scale)[:, None]
        std = np.where(keep, std, 0.0)
        self.Kf[:, t, :, n:n + p] = _sym(V, std)
        self.K_inv[:, t] = _sym(V, np.where(keep, 1.0 / np.where(keep, std, 1.0), 0.0))
        if t == self.T:             # earlier rows are written by finalize_innovation
            self._C_g_row(t)
        return float(np.min(lam[:, 0] / np.maximum(top, 1e-300)))

    def _C_g_row(self, t):
        n = (t + 1) * self.p
        A = self.Kf[:, t, :, :n]
        row = A[:, None] @ np.swapaxes(self.Kf[:, :t + 1, :, :n], -1, -2)    # (G, t+1, p, p)
        row[:, t] = 0.5 * (row[:, t] + np.swapaxes(row[:, t], -1, -2))
        self.C_g[:, t, :t + 1] = row
        self.C_g[:, :t + 1, t] = np.swapaxes(row, -1, -2)

    def finalize_innovation(self, s, rr, c):
        """Re-orthogonalise and normalise the innovation of g(s), from the paths' own raw
        innovations r(s): rr = E[r r^T] (G, p, p), c(w) = E[r kappa(w)^T] (G, s, p, p).

        The second Gram-Schmidt projection moves c(w) into K(s, w) (and -eta c(w) into
        B(s+1, w)); K(s, s) = (rr - sum_w c c^T)^{1/2} replaces the provisional value from
        E[g g^T] - sum K K^T, which loses small innovations to cancellation.  Returns K_inv(s)
        and the relative change of K(s, s) K(s, s)^T (a round-off health indicator)."""
        p = self.p
        n = s * p
        cf = _flat(c) if s else np.zeros((self.G, p, 0))
        resid = rr - cf @ np.swapaxes(cf, -1, -2)
        lam, V = np.linalg.eigh(0.5 * (resid + np.swapaxes(resid, -1, -2)))
        self._check_psd(lam, s, "re-orthogonalised innovation covariance of g")
        std = np.sqrt(np.clip(lam, 0.0, None))
        keep = std > (self.CUT * self.g_scale)[:, None]
        std = np.where(keep, std, 0.0)
        Kss = self.Kf[:, s, :, n:n + p]
        old = Kss @ np.swapaxes(Kss, -1, -2)
        self.Kf[:, s, :, :n] += cf
        self.Bf[:, s + 1, :, :n] -= self.eta * cf
        self.Kf[:, s, :, n:n + p] = _sym(V, std)
        self.K_inv[:, s] = _sym(V, np.where(keep, 1.0 / np.where(keep, std, 1.0), 0.0))
        self.Bf[:, s + 1, :, n:n + p] = -self.eta * self.Kf[:, s, :, n:n + p]
        self._C_g_row(s)
        scale = np.maximum(self.g_scale, 1e-300) ** 2
        change = float(np.max(np.abs(resid - old).max(axis=(-1, -2)) / scale))
        return self.K_inv[:, s], change

    def update_M(self, t, gz):
        """M(t+1) = (1 - eta*lambda) M(t) - eta*alpha E[g(t) z*^T]."""
        self.M[:, t + 1] = (1.0 - self.eta * self.ridge) * self.M[:, t] - self.eta * self.alpha * gz

    def Q(self, t):
        """Q(t) = M M^T + C_theta(t, t), per replica (G, p, p)."""
        M = self.M[:, t]
        return M @ np.swapaxes(M, -1, -2) + self.C_theta[:, t, t]

    # ------------------------------------------------------------------ reporting
    def _truncated_inv_diag(self, last):
        """Pseudo-inverses of K(s, s), s < last, dropping innovations below REPORT_RTOL of the
        largest (THEORY.md's truncated pseudo-inverse)."""
        p = self.p
        D = np.stack([self.Kf[:, s, :, s * p:(s + 1) * p] for s in range(last)], axis=1)
        lam, V = np.linalg.eigh(D)
        ref = lam.max(axis=(1, 2))[:, None, None]
        keep = lam > self.REPORT_RTOL * np.where(ref > 0, ref, 1.0)
        return _sym(V, np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0))

    @_overflow_checked
    def reconstruct(self, last):
        """Fill R_g, Psi and R_theta up to time ``last`` for reporting (Stein estimator).

        R_theta solves sum_{s>=v} R_theta(t, s) K(s, v) = B(t, v), and R_g solves
        sum_{w>=u} R_g(t, w) B(w, u-1) = E[g(t) eta(u-1)^T] / sqrt(alpha) (B(u, u-1) =
        -eta K(u-1, u-1)) and sum_w R_g(t, w) P(w) = S_eps(t): block triangular systems, solved
        through block inverses whose diagonal blocks drop innovations below REPORT_RTOL of the
        largest.  For inspection only: the dynamics never divides by an innovation."""
        if self.pathwise:
            return
        G, p, T = self.G, self.p, last
        self.Psi[:, :T + 1] = self.P[:, :T + 1] @ self.C0_half_pinv
        if T == 0:
            self.R_g[:, 0, 0] = self.S_eps[:, 0] @ self.C0_half_pinv
            return
        n = T * p
        D = self._truncated_inv_diag(T)                                   # (G, T, p, p)
        X = block_lower_inverse(self.Kf[:, :T, :, :n].reshape(G, n, n), D)
        Rf = self.Bf[:, :T + 1, :, :n].reshape(G, (T + 1) * p, n) @ X     # rows (t, i)
        self.R_theta[:, :T + 1, :T] = Rf.reshape(G, T + 1, p, T, p).transpose(0, 1, 3, 2, 4)
        Y = block_lower_inverse(self.Bf[:, 1:T + 1, :, :n].reshape(G, n, n), -D / self.eta)
        Sf = self.S_etaf[:, :T + 1, :, :n].reshape(G, (T + 1) * p, n) / np.sqrt(self.alpha)
        Rw = (Sf @ Y).reshape(G, T + 1, p, n)                               # R_g(t, w), w >= 1
        self.R_g[:, :T + 1, 1:T + 1] = Rw.reshape(G, T + 1, p, T, p).transpose(0, 1, 3, 2, 4)
        Pw = self.P[:, 1:T + 1].reshape(G, n, p)                            # rows (w, j)
        rhs = self.S_eps[:, :T + 1] - Rw @ Pw[:, None]
        self.R_g[:, :T + 1, 0] = rhs @ self.C0_half_pinv
