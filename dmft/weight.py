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

Arrays (leading replica axis G):

=============  =======================  ==================================================
``P``          (G, T+1, p, p)           Psi(t) C0^{1/2}
``B``          (G, T+1, T, p, p)        B(t, v), v < t
``K``          (G, T+1, T+1, p, p)      block Cholesky factor of C_g, K(t, v), v <= t
``K_inv``      (G, T+1, p, p)           pseudo-inverse of K(t, t) (innovations below CUT: 0)
``C_theta``    (G, T+1, T+1, p, p)      Cov[omega(t), omega(s)]
``C_g``        (G, T+1, T+1, p, p)      E[g(t) g(s)^T]
``R_g``        (G, T+1, T+1, p, p)      E[dg(t)/domega(s)], s <= t
``Psi``        (G, T+1, p, p)           response of theta(t) to theta(0)
``R_theta``    (G, T+1, T+1, p, p)      R_theta(t, s), s < t (R_theta(s+1, s) = -eta I)
``S_eps``      (G, T+1, p, p)           E[g(t) eps0^T]            (Stein estimator)
``S_eta``      (G, T+1, T, p, p)        E[g(t) eta(v)^T], v < t   (Stein estimator)
``M``          (G, T+1, p, k)           overlaps
=============  =======================  ==================================================

With the Stein estimator, R_g, Psi and R_theta are not needed by the dynamics; they are
reconstructed for reporting by :meth:`WeightSide.reconstruct` (least squares, truncated).
"""
import numpy as np


def _sym(V, diag):
    """V diag V^T for stacks of eigenvectors V (..., p, p) and eigenvalues (..., p)."""
    return (V * diag[..., None, :]) @ np.swapaxes(V, -1, -2)


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
        self.P = np.zeros((G, T + 1, p, p))
        self.B = np.zeros((G, T + 1, max(T, 1), p, p))
        self.K = np.zeros(two)
        self.K_inv = np.zeros((G, T + 1, p, p))
        self.C_theta = np.zeros(two)
        self.C_g = np.zeros(two)
        self.R_g = np.zeros(two)
        self.R_theta = np.zeros(two)
        self.Psi = np.zeros((G, T + 1, p, p))
        self.S_eps = np.zeros((G, T + 1, p, p))
        self.S_eta = np.zeros((G, T + 1, max(T, 1), p, p))
        self.M = np.zeros((G, T + 1, p, k))
        self.M[:, 0] = M0
        lam, V = np.linalg.eigh(0.5 * (C0 + C0.T))
        self.C0_half = _sym(V, np.sqrt(np.clip(lam, 0.0, None)))
        keep = lam > 1e-12 * max(lam.max(), 1e-300)
        self.C0_half_pinv = _sym(V, np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0))
        self.g_scale = np.zeros(G)                   # sqrt(largest eigenvalue of C_g(s, s))

    # ------------------------------------------------------------------ forward step
    def _response_products(self, s):
        """sum_u R_g(s, u) P(u)  (G, p, p)  and  sum_u R_g(s, u) B(u, v) for v <= s (G, s+1, p, p)."""
        if not self.pathwise:
            return self.S_eps[:, s], self.S_eta[:, s, :s + 1] / np.sqrt(self.alpha)
        Rg = self.R_g[:, s, :s + 1]
        XP = np.einsum("guij,gujk->gik", Rg, self.P[:, :s + 1])
        XB = np.einsum("guij,guvjk->gvik", Rg, self.B[:, :s + 1, :s + 1])
        return XP, XB

    def advance(self, t):
        """P(t), B(t, .) and C_theta(t, .) (and, for the pathwise estimator, Psi(t) and
        R_theta(t, .)) from the kernels at times < t."""
        decay = 1.0 - self.eta * self.ridge
        ea = self.eta * self.alpha
        p, G = self.p, self.G
        eye = np.broadcast_to(np.eye(p), (G, p, p))
        if t == 0:
            self.P[:, 0] = self.C0_half
            self.Psi[:, 0] = eye
        else:
            XP, XB = self._response_products(t - 1)
            self.P[:, t] = decay * self.P[:, t - 1] - ea * XP
            self.B[:, t, :t] = decay * self.B[:, t - 1, :t] - self.eta * self.K[:, t - 1, :t] - ea * XB
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
            C += self.alpha * np.einsum("gvij,guvkj->guik", self.B[:, t, :t], self.B[:, :t + 1, :t])
        C[:, t] = 0.5 * (C[:, t] + np.swapaxes(C[:, t], -1, -2))
        self.C_theta[:, t, :t + 1] = C
        self.C_theta[:, :t + 1, t] = np.swapaxes(C, -1, -2)

    # ------------------------------------------------------------------ sample-side results
    def set_g_row(self, t, gg, gk):
        """Row t of K from E[g(t) g(t)^T] (G, p, p) and E[g(t) kappa(v)^T], v < t (G, t, p, p).

        K(t, v) = E[g(t) kappa(v)^T] (kappa are orthonormal innovations); K(t, t) is the
        symmetric square root of the residual covariance.  Returns the largest negative
        eigenvalue of that residual relative to C_g(t, t) (round-off only)."""
        self.K[:, t, :t] = gk
        resid = gg - np.einsum("gvij,gvkj->gik", gk, gk)
        lam, V = np.linalg.eigh(0.5 * (resid + np.swapaxes(resid, -1, -2)))
        top = np.linalg.eigvalsh(0.5 * (gg + np.swapaxes(gg, -1, -2)))[:, -1]
        self.g_scale = np.maximum(self.g_scale, np.sqrt(np.clip(top, 0.0, None)))
        std = np.sqrt(np.clip(lam, 0.0, None))
        keep = std > (self.CUT * self.g_scale)[:, None]
        std = np.where(keep, std, 0.0)
        self.K[:, t, t] = _sym(V, std)
        self.K_inv[:, t] = _sym(V, np.where(keep, 1.0 / np.where(keep, std, 1.0), 0.0))
        row = np.einsum("gvij,gsvkj->gsik", self.K[:, t, :t + 1], self.K[:, :t + 1, :t + 1])
        row[:, t] = 0.5 * (row[:, t] + np.swapaxes(row[:, t], -1, -2))
        self.C_g[:, t, :t + 1] = row
        self.C_g[:, :t + 1, t] = np.swapaxes(row, -1, -2)
        return float(np.min(lam[:, 0] / np.maximum(top, 1e-300)))

    def finalize_innovation(self, s, rr, c):
        """Re-orthogonalise and normalise the innovation of g(s), from the paths' own raw
        innovations r(s): rr = E[r r^T] (G, p, p), c(w) = E[r kappa(w)^T] (G, s, p, p).

        The second Gram-Schmidt projection moves c(w) into K(s, w) (and -eta c(w) into
        B(s+1, w)); K(s, s) = (rr - sum_w c c^T)^{1/2} replaces the provisional value from
        E[g g^T] - sum K K^T, which loses small innovations to cancellation.  Returns K_inv(s)
        and the relative change of K(s, s) K(s, s)^T (a round-off health indicator)."""
        resid = rr - np.einsum("gwij,gwkj->gik", c, c)
        lam, V = np.linalg.eigh(0.5 * (resid + np.swapaxes(resid, -1, -2)))
        std = np.sqrt(np.clip(lam, 0.0, None))
        keep = std > (self.CUT * self.g_scale)[:, None]
        std = np.where(keep, std, 0.0)
        old = self.K[:, s, s] @ np.swapaxes(self.K[:, s, s], -1, -2)
        self.K[:, s, :s] += c
        self.B[:, s + 1, :s] -= self.eta * c
        self.K[:, s, s] = _sym(V, std)
        self.K_inv[:, s] = _sym(V, np.where(keep, 1.0 / np.where(keep, std, 1.0), 0.0))
        self.B[:, s + 1, s] = -self.eta * self.K[:, s, s]
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
    def reconstruct(self, last):
        """Fill R_g, Psi and R_theta up to time ``last`` for reporting (Stein estimator).

        Block back-substitution of the triangular systems
            sum_{w>=u} R_g(t, w) B(w, u-1) = S_eta(t, u-1) / sqrt(alpha),  B(u, u-1) = -eta K(u-1, u-1),
            sum_w R_g(t, w) P(w) = S_eps(t),
            sum_{s>=v} R_theta(t, s) K(s, v) = B(t, v),
        with innovations of g below REPORT_RTOL of the largest treated as zero (THEORY.md's
        truncated pseudo-inverse).  These kernels are for inspection only: the dynamics never
        divides by an innovation."""
        if self.pathwise:
            return
        sa = np.sqrt(self.alpha)
        self.Psi[:, :last + 1] = self.P[:, :last + 1] @ self.C0_half_pinv
        lam, V = np.linalg.eigh(self.K[:, :last + 1, :last + 1].diagonal(axis1=1, axis2=2)
                                .transpose(0, 3, 1, 2))                     # (G, T+1, p)
        ref = lam.max(axis=(1, 2))[:, None, None]
        keep = lam > self.REPORT_RTOL * np.where(ref > 0, ref, 1.0)
        K_inv = _sym(V, np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0))   # (G, T+1, p, p)
        for t in range(last + 1):
            Rg = self.R_g[:, t]
            Rg[:] = 0.0
            for u in range(t, 0, -1):
                rhs = self.S_eta[:, t, u - 1] / sa - np.einsum(
                    "gwij,gwjk->gik", Rg[:, u + 1:t + 1], self.B[:, u + 1:t + 1, u - 1])
                Rg[:, u] = -(rhs @ K_inv[:, u - 1]) / self.eta
            rhs = self.S_eps[:, t] - np.einsum("gwij,gwjk->gik", Rg[:, 1:t + 1], self.P[:, 1:t + 1])
            Rg[:, 0] = rhs @ self.C0_half_pinv
            Rt = self.R_theta[:, t]
            Rt[:] = 0.0
            for v in range(t - 1, -1, -1):
                rhs = self.B[:, t, v] - np.einsum("gsij,gsjk->gik", Rt[:, v + 1:t], self.K[:, v + 1:t, v])
                Rt[:, v] = rhs @ K_inv[:, v]
