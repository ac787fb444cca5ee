"""Weight side of the DMFT (THEORY.md section 2): exact linear recursions, no sampling.

All kernels carry a leading replica axis ``G`` (independent Monte Carlo replicas, see
:mod:`dmft.solver`) and are stored as dense two-time arrays:

=============  =======================  ==================================================
name           shape                    meaning
=============  =======================  ==================================================
``Psi``        (G, T+1, p, p)           Psi(t), response of theta(t) to theta(0)
``R_theta``    (G, T+1, T+1, p, p)      R_theta(t, s), s < t   (R_theta(s+1, s) = -eta I)
``C_theta``    (G, T+1, T+1, p, p)      C_theta(t, s) = Cov[omega(t), omega(s)], symmetric
``C_g``        (G, T+1, T+1, p, p)      C_g(t, s) = E[g(t) g(s)^T], symmetric
``R_g``        (G, T+1, T+1, p, p)      R_g(t, s) = E[dg(t)/domega(s)], s <= t
``L``          (G, T+1, T+1, p, p)      block lower Cholesky factor of C_theta:
                                         omega(t) = sum_{s<=t} L(t, s) zeta(s)
``M``          (G, T+1, p, k)           overlaps with the target directions
=============  =======================  ==================================================

Entries not yet computed (or structurally zero, like R_theta(t, s >= t)) are exactly 0.
"""
import numpy as np


class WeightSide:
    """Holds every two-time kernel and advances the weight-side recursions one time at a time."""

    #: innovation standard deviations below CHOL_RTOL * sqrt(max eigenvalue of C_theta(s, s))
    #: are treated as zero in the factor L (variance 1e-10 relative: far above round-off, far
    #: below anything observable).  C_theta is a moment matrix of the GD operator and its
    #: innovations decay geometrically, so without this cut the Cholesky recursion divides
    #: round-off by round-off after ~10 steps.
    CHOL_RTOL = 1e-5

    def __init__(self, G, T, p, k, alpha, eta, ridge, C0, M0, stein_rtol=1e-3):
        self.G, self.T, self.p, self.k = G, T, p, k
        self.alpha, self.eta, self.ridge = alpha, eta, ridge
        self.C0 = np.asarray(C0, dtype=np.float64)
        self.stein_rtol = stein_rtol
        two = (G, T + 1, T + 1, p, p)
        self.Psi = np.zeros((G, T + 1, p, p))
        self.R_theta = np.zeros(two)
        self.C_theta = np.zeros(two)
        self.C_g = np.zeros(two)
        self.R_g = np.zeros(two)
        self.L = np.zeros(two)
        self.M = np.zeros((G, T + 1, p, k))
        self.M[:, 0] = M0
        self.L_inv = np.zeros((G, T + 1, p, p))      # pseudo-inverse of L(s, s) (tight)
        self.L_stein = np.zeros((G, T + 1, p, p))    # truncated pseudo-inverse for Stein
        self.innov_ref = np.zeros(G)                 # largest innovation std so far
        self.scale_ref = np.zeros(G)                 # sqrt(largest eigenvalue of C_theta(s, s))
        self.min_schur = np.full(T + 1, np.nan)      # smallest Schur-complement eigenvalue

    # ------------------------------------------------------------------ forward step
    def advance(self, t):
        """Compute Psi(t), R_theta(t, .), C_theta(t, .) and L(t, .) from R_g, C_g at times < t.

        Returns the smallest eigenvalue of the innovation covariance (negative: non-PSD)."""
        G, p = self.G, self.p
        decay = 1.0 - self.eta * self.ridge
        ea = self.eta * self.alpha
        eye = np.broadcast_to(np.eye(p), (G, p, p))
        if t == 0:
            self.Psi[:, 0] = eye
        else:
            Rg = self.R_g[:, t - 1, :t]                                   # (G, t, p, p)
            self.Psi[:, t] = decay * self.Psi[:, t - 1] - ea * np.einsum(
                "guij,gujk->gik", Rg, self.Psi[:, :t])
            if t >= 2:
                self.R_theta[:, t, :t - 1] = decay * self.R_theta[:, t - 1, :t - 1] - ea * np.einsum(
                    "guij,gusjk->gsik", Rg, self.R_theta[:, :t, :t - 1])
            self.R_theta[:, t, t - 1] = -self.eta * eye
        # C_theta(t, t') for t' <= t
        Psi_t = self.Psi[:, t]
        C = np.einsum("gij,jk,gulk->guil", Psi_t, self.C0, self.Psi[:, :t + 1])
        if t >= 1:
            X = np.einsum("gsij,gsqjk->gqik", self.R_theta[:, t, :t], self.C_g[:, :t, :t])
            C += self.alpha * np.einsum("gqik,guqlk->guil", X, self.R_theta[:, :t + 1, :t])
        C[:, t] = 0.5 * (C[:, t] + np.swapaxes(C[:, t], -1, -2))
        self.C_theta[:, t, :t + 1] = C
        self.C_theta[:, :t + 1, t] = np.swapaxes(C, -1, -2)
        return self._factor(t)

    def _factor(self, t):
        """Row t of the block Cholesky factor, robust to semi-definite blocks.

        L(t, s) = [C_theta(t, s) - sum_{u<s} L(t, u) L(s, u)^T] L(s, s)^+ for s < t; the diagonal
        block is the symmetric square root of the Schur complement (the innovation covariance),
        with innovations below the cut set to zero."""
        L = self.L
        for s in range(t):
            B = self.C_theta[:, t, s] - np.einsum("guij,gukj->gik", L[:, t, :s], L[:, s, :s])
            L[:, t, s] = B @ self.L_inv[:, s]          # L(s, s) is symmetric
        schur = self.C_theta[:, t, t] - np.einsum("guij,gukj->gik", L[:, t, :t], L[:, t, :t])
        lam, V = np.linalg.eigh(0.5 * (schur + np.swapaxes(schur, -1, -2)))
        top = np.linalg.eigvalsh(self.C_theta[:, t, t])[:, -1]
        self.scale_ref = np.maximum(self.scale_ref, np.sqrt(np.clip(top, 0.0, None)))
        std = np.sqrt(np.clip(lam, 0.0, None))
        std = np.where(std > (self.CHOL_RTOL * self.scale_ref)[:, None], std, 0.0)
        self.innov_ref = np.maximum(self.innov_ref, std.max(axis=-1))
        Vt = np.swapaxes(V, -1, -2)

        def sym(diag):
            return (V * diag[..., None, :]) @ Vt

        L[:, t, t] = sym(std)
        with np.errstate(divide="ignore"):
            self.L_inv[:, t] = sym(np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0))
            keep = std > (self.stein_rtol * self.innov_ref)[:, None]
            self.L_stein[:, t] = sym(np.where(keep, 1.0 / np.where(keep, std, 1.0), 0.0))
        scale = np.maximum(1.0, np.abs(self.C_theta[:, t, t]).max(axis=(-1, -2)))
        self.min_schur[t] = float(np.min(lam[:, 0] / scale))
        return self.min_schur[t]

    def factor_residual(self, t):
        """max_s |sum_u L(t, u) L(s, u)^T - C_theta(t, s)| relative to max |C_theta(t, t)|."""
        L = self.L[:, :t + 1, :t + 1]
        recon = np.einsum("guij,gsukj->gsik", L[:, t], L)
        scale = max(float(np.abs(self.C_theta[:, t, t]).max()), 1e-300)
        return float(np.abs(recon - self.C_theta[:, t, :t + 1]).max() / scale)

    # ------------------------------------------------------------------ sample-side results
    def set_C_g_row(self, t, row):
        """Store C_g(t, s) for s <= t (row of shape (G, t+1, p, p)) and its transpose."""
        row = row.copy()
        row[:, t] = 0.5 * (row[:, t] + np.swapaxes(row[:, t], -1, -2))
        self.C_g[:, t, :t + 1] = row
        self.C_g[:, :t + 1, t] = np.swapaxes(row, -1, -2)

    def stein_backsolve(self, t, S):
        """R_g(t, u) from S(t, u) = E[g(t) zeta(u)^T] = sum_{s=u..t} R_g(t, s) L(s, u).

        Solved backwards in u with the truncated pseudo-inverse of the innovations (see
        THEORY.md 'Pitfall').  Returns the largest residual of the triangular system, which is
        non-zero only where innovations were truncated."""
        L = self.L
        for u in range(t, -1, -1):
            B = S[:, u] - np.einsum("gsij,gsjk->gik", self.R_g[:, t, u + 1:t + 1], L[:, u + 1:t + 1, u])
            self.R_g[:, t, u] = B @ self.L_stein[:, u]
        recon = np.einsum("gsij,gsujk->guik", self.R_g[:, t, :t + 1], L[:, :t + 1, :t + 1])
        return float(np.max(np.abs(recon - S))) if S.size else 0.0

    def update_M(self, t, gz):
        """M(t+1) = (1 - eta*lambda) M(t) - eta*alpha E[g(t) z*^T]."""
        self.M[:, t + 1] = (1.0 - self.eta * self.ridge) * self.M[:, t] - self.eta * self.alpha * gz

    def Q(self, t):
        """Q(t) = M M^T + C_theta(t, t), per replica (G, p, p)."""
        M = self.M[:, t]
        return M @ np.swapaxes(M, -1, -2) + self.C_theta[:, t, t]
