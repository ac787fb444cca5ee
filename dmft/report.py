"""The reported kernels of a solve, formed from the weight side's packed rows (see
:mod:`dmft.weight`) only when they are first read.

The dynamics needs, at step t, only the new row of B, K and of the Stein averages and
C_theta(t, t).  The two-time kernels a :class:`~dmft.Result` reports are, per replica (one
replica at a time, so that only one replica's dense matrices are ever held):

* C_theta = P P^T + alpha B B^T and C_g = K K^T, Gram matrices of the rows (eqs. (2.7),
  (2.10)), the diagonal blocks C_theta(t, t) those the dynamics used;
* R_theta solves sum_{s>=v} R_theta(t, s) K(s, v) = B(t, v) and R_g solves
  sum_{w>=u} R_g(t, w) B(w, u-1) = E[g(t) nu(u-1)^T] / sqrt(alpha) (B(u, u-1) =
  -eta K(u-1, u-1), -eta D(u) K(u-1, u-1) under spherical GD, eq. (7.9)) and
  sum_w R_g(t, w) P(w) = E[g(t) eps0^T]: block triangular systems whose
  diagonal blocks are replaced by truncated pseudo-inverses D (innovations below
  ``report_rtol`` of the largest dropped).  With L the strictly block-lower part of the matrix,
  the solution is rhs (I + D L)^{-1} D, and I + D L is unit lower triangular: one BLAS-3
  triangular solve (LAPACK ``trtrs``) per kernel;
* Psi(t) = P(t) C0^{-1/2}.

Under spherical GD the rows P(t), B(t, .) already carry D(t) on the left (eqs. (7.8)-(7.9)), so
the Gram matrices give C_theta(t, s) = D(t) Ctilde(t, s) D(s) and the solves R_theta(t, s) =
D(t) Rtilde(t, s) (R_theta(s+1, s) = -eta D(s+1)) and Psi(t) = D(t) Psitilde(t).

The pathwise estimator computes R_g itself and carries Psi and R_theta in its dynamics; only
its Gram matrices are formed here.  Means over replicas are sums in replica order, the
standard errors from sums of deviations from the first replica (no cancellation).
"""
import math

import numpy as np
from scipy.linalg import solve_triangular

from .linalg import swap, sym

KERNELS = ("C_theta", "R_theta", "C_g", "R_g", "Psi")


def mean_err(x):
    """Mean and standard error over the first axis (replicas or seeds); NaN errors for one
    sample."""
    n = x.shape[0]
    if n < 2:
        return x.mean(axis=0), np.full(x.shape[1:], np.nan)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(n)


class Deferred:
    """Values of several fields computed together by ``compute()`` (a dict) when the first of
    them is read; the computation (and what it holds) is dropped afterwards."""

    def __init__(self, compute):
        self._compute, self._values = compute, None

    @property
    def source(self):
        """The object whose method computes the values (None once they are computed)."""
        return None if self._compute is None else getattr(self._compute, "__self__", None)

    def value(self, name):
        """The value of field ``name``, computing all of them on the first call."""
        if self._values is None:
            self._values, self._compute = self._compute(), None
        return self._values[name]


def dense_rows(rows, g, n_rows, n_cols):
    """Replica g's packed rows 0..n_rows-1 (each (G, p, m)) as one dense (n_rows p, n_cols)
    matrix, zero-padded (or cut) to n_cols columns."""
    p = rows[0].shape[1]
    X = np.zeros((n_rows * p, n_cols))
    for t in range(n_rows):
        w = min(rows[t].shape[2], n_cols)
        X[t * p:(t + 1) * p, :w] = rows[t][g, :, :w]
    return X


def to_blocks(X, p):
    """(R p, C p) matrix -> (R, C, p, p) blocks."""
    return X.reshape(X.shape[0] // p, p, X.shape[1] // p, p).transpose(0, 2, 1, 3)


def solve_block_lower(L, D, rhs):
    """rhs X with X the inverse of the block lower-triangular L (n p, n p) whose diagonal
    blocks are replaced by D (n, p, p): X = (I + D L_)^{-1} D, L_ the strictly block-lower
    part of L.  rhs (m, n p) -> (m, n p)."""
    n, p = D.shape[:2]
    Lb = L.reshape(n, p, n * p).copy()
    for s in range(n):
        Lb[s, :, s * p:] = 0.0
    U = (D @ Lb).reshape(n * p, n * p)                  # unit lower triangular, less I
    Y = solve_triangular(U, rhs.T, trans="T", lower=True, unit_diagonal=True,
                         check_finite=False).T
    Y = np.ascontiguousarray(Y.reshape(-1, n, p).transpose(1, 0, 2)) @ D        # (n, m, p)
    return Y.transpose(1, 0, 2).reshape(-1, n * p)


def truncated_inv_diag(K, n, p, rtol):
    """Pseudo-inverses of the diagonal blocks K(s, s), s < n, of a dense K (one replica),
    dropping innovations below ``rtol`` of the largest."""
    D = np.stack([K[s * p:(s + 1) * p, s * p:(s + 1) * p] for s in range(n)])
    lam, V = np.linalg.eigh(D)
    ref = lam.max()
    keep = lam > rtol * (ref if ref > 0 else 1.0)
    return sym(V, np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0))


class PackedKernels:
    """Per-replica M and C_theta(t, t) of a solve and the weight side's rows, from which the
    two-time kernels of steps 0..``last`` are formed on demand (module docstring).  Built by
    :meth:`dmft.weight.WeightSide.report`; consumed by :meth:`dmft.Result.from_replicas`."""

    def __init__(self, weight, last):
        self.w, self.last = weight, last
        self.M = weight.M
        #: a trained readout's a(t) per replica (G, T+1, p), set by the solver; None: fixed
        self.a = None

    def Q(self, t):
        """Q(t) = M M^T + C_theta(t, t), per replica (G, p, p)."""
        M = self.M[:, t]
        return M @ swap(M) + self.w.C_diag[:, t]

    @property
    def nbytes(self):
        """Bytes held by the weight side's arrays (rows and per-time arrays)."""
        w = self.w
        rows = sum(x.nbytes for r in (w.B_rows, w.K_rows, w.S_nu_rows) for x in r
                   if x is not None)
        dense = 0 if w.dense is None else sum(
            getattr(w.dense, n).nbytes for n in ("R_g", "R_theta", "Psi"))
        return rows + dense + sum(x.nbytes for x in (w.P, w.K_inv, w.S_eps, w.M, w.C_diag))

    def replica(self, g):
        """Replica g's C_theta, C_g, R_theta, R_g ((last+1, last+1, p, p) each; R_theta and
        R_g only for the Stein estimator)."""
        w, T = self.w, self.last
        p = w.p
        n = T * p
        Pf = w.P[g, :T + 1].reshape((T + 1) * p, p)
        B = dense_rows(w.B_rows, g, T + 1, n)
        C = Pf @ Pf.T + w.alpha * (B @ B.T)
        out = {"C_theta": np.ascontiguousarray(to_blocks(C, p))}
        out["C_theta"][np.arange(T + 1), np.arange(T + 1)] = w.C_diag[g, :T + 1]
        K = dense_rows(w.K_rows, g, T + 1, n + p)
        out["C_g"] = np.ascontiguousarray(to_blocks(K @ K.T, p))
        diag = out["C_g"][np.arange(T + 1), np.arange(T + 1)]
        out["C_g"][np.arange(T + 1), np.arange(T + 1)] = 0.5 * (diag + swap(diag))
        if w.pathwise:
            return out
        R_theta = np.zeros((T + 1, T + 1, p, p))
        R_g = np.zeros((T + 1, T + 1, p, p))
        if T:
            D = truncated_inv_diag(K, T, p, w.report_rtol)
            R_theta[:, :T] = to_blocks(solve_block_lower(K[:n, :n], D, B), p)
            S = dense_rows(w.S_nu_rows, g, T + 1, n) / np.sqrt(w.alpha)
            Dg = -D / w.eta                 # inverse of B(u, u-1) = -eta D(u) K(u-1, u-1)
            if w.D is not None:             # spherical GD, eq. (7.9)
                Dg = Dg / w.D[g, 1:T + 1, None, :]
            Rw = solve_block_lower(B[p:], Dg, S)                 # R_g(t, w), w >= 1
            R_g[:, 1:] = to_blocks(Rw, p)
            rhs = w.S_eps[g, :T + 1] - Rw.reshape(T + 1, p, n) @ w.P[g, 1:T + 1].reshape(n, p)
        else:
            rhs = w.S_eps[g, :1]
        R_g[:, 0] = rhs @ w.C0_half_pinv
        out["R_theta"], out["R_g"] = R_theta, R_g
        return out

    def _stream(self):
        """Means and errors over replicas of :meth:`replica`, one replica at a time."""
        G = self.w.G
        acc = {}
        for g in range(G):
            for name, x in self.replica(g).items():
                if g == 0:
                    acc[name] = (x, np.zeros_like(x), np.zeros_like(x))
                else:
                    shift, s1, s2 = acc[name]
                    x -= shift
                    s1 += x
                    x *= x
                    s2 += x
        out = {}
        for name, (shift, s1, s2) in acc.items():
            mean = shift + s1 / G
            if G < 2:
                err = np.full(mean.shape, np.nan)
            else:
                err = np.sqrt(np.clip(s2 - s1 * s1 / G, 0.0, None) / (G - 1)) / math.sqrt(G)
            out[name], out[name + "_err"] = mean, err
        return out

    def compute(self):
        """All reported kernels, means and errors over replicas, NaN after step ``last``."""
        w, T = self.w, self.last
        shape = (w.T + 1, w.T + 1, w.p, w.p)
        out = {}
        if T >= 0:
            for name, x in self._stream().items():
                full = np.full(shape, np.nan)
                full[:T + 1, :T + 1] = x
                out[name] = full
        else:
            out = {n + e: np.full(shape, np.nan) for n in ("C_theta", "C_g", "R_theta", "R_g")
                   for e in ("", "_err")}
        psi = np.full((w.G, w.T + 1, w.p, w.p), np.nan)
        if w.pathwise:
            psi[:, :T + 1] = w.dense.Psi[:, :T + 1]
            for name in ("R_theta", "R_g"):
                x = getattr(w.dense, name).copy()
                x[:, T + 1:] = np.nan
                x[:, :, T + 1:] = np.nan
                out[name], out[name + "_err"] = mean_err(x)
        elif T >= 0:
            psi[:, :T + 1] = w.P[:, :T + 1] @ w.C0_half_pinv
        out["Psi"], out["Psi_err"] = mean_err(psi)
        self.w = None                                   # release the rows
        return out

    def fields(self):
        """The ten kernel fields of a Result (``X`` and ``X_err``), deferred: computed by
        :meth:`compute` when the first of them is read."""
        deferred = Deferred(self.compute)
        return {n + e: deferred for n in KERNELS for e in ("", "_err")}


def dense_fields(kernels, completed):
    """The ten kernel fields of a Result from dense per-replica kernels (a
    :class:`dmft.weight.Kernels`), NaN after step ``completed``."""
    out = {}
    bad = slice(completed + 1, None)
    for name in KERNELS:
        x = getattr(kernels, name).copy()
        x[:, bad] = np.nan
        if x.ndim == 5:
            x[:, :, bad] = np.nan
        out[name], out[name + "_err"] = mean_err(x)
    return out
