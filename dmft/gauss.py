"""Tensor Gauss-Hermite quadrature over standard Gaussian coordinates, Hermite expansions on
it, and canonical orthonormal bases of subspaces of R^k (shared by the learnability analysis and
its DMFT check)."""
import math

import numpy as np
import scipy.linalg
import scipy.special


class GaussHermiteGrid:
    """Tensor Gauss-Hermite rule, weights summing to one.  Nodes of weight < 1e-60 (|z| > 16)
    and, in the flat list (zs, ws) used by the test functions, points of product weight
    < 1e-100 are dropped: they contribute below round-off here and would produce subnormal
    numbers that slow the arithmetic down by orders of magnitude."""

    def __init__(self, n, k):
        x, w = scipy.special.roots_hermitenorm(n)
        x, w = 0.5 * (x - x[::-1]), 0.5 * (w + w[::-1])          # exactly symmetric
        w = w / w.sum()
        self.x, w = x[w >= 1e-60], w[w >= 1e-60]
        self.n, self.n0, self.k = self.x.size, n, k
        self.z = np.stack([m.ravel() for m in np.meshgrid(*([self.x] * k), indexing="ij")], 1)
        self.w = np.prod(np.meshgrid(*([w] * k), indexing="ij"), axis=0).ravel()
        keep = self.w >= 1e-100
        self.zs, self.ws = self.z[keep], self.w[keep]


def hermite_table(order, x):
    """Normalised He_a(x) / sqrt(a!) for a = 0..order, shape (order + 1, len(x))."""
    h = np.empty((order + 1, x.size))
    h[0] = 1.0
    if order >= 1:
        h[1] = x
    for a in range(1, order):
        h[a + 1] = (x * h[a] - math.sqrt(a) * h[a - 1]) / math.sqrt(a + 1)
    return h


def hermite_coefficients(grid, f, order):
    """Tensor of c_alpha for every alpha with alpha_r <= order, shape (order + 1,) * k."""
    H = hermite_table(order, grid.x)
    T = (f * grid.w).reshape((grid.n,) * grid.k)
    for ax in range(grid.k):
        T = np.moveaxis(np.tensordot(H, T, axes=([1], [ax])), 0, ax)
    return T


def orthonormal_basis(B, k, scale=None):
    """Canonical orthonormal rows spanning the rows of B (singular values below 1e-8 * scale
    dropped): QR with column pivoting of the projector, so that axis-aligned subspaces get
    axis vectors; the largest entry of each row is made positive."""
    B = np.asarray(B, dtype=float).reshape(-1, k)
    if B.shape[0] == 0:
        return np.zeros((0, k))
    s, vt = np.linalg.svd(B, full_matrices=False)[1:]
    V = vt[s > 1e-8 * (s.max() if scale is None else scale)]
    Q = scipy.linalg.qr(V.T @ V, pivoting=True)[0][:, :V.shape[0]].T
    return Q * np.where(Q[np.arange(len(Q)), np.argmax(np.abs(Q), 1)] < 0, -1.0, 1.0)[:, None]


def complement(U, k):
    lam, V = np.linalg.eigh(np.eye(k) - U.T @ U)
    return orthonormal_basis(V[:, lam > 0.5].T, k)


def subtract_span(B, U, k):
    """Orthonormal basis of the part of span(B) orthogonal to span(U) (orthonormal rows)."""
    return orthonormal_basis(B - (B @ U.T) @ U, k, scale=1.0) if B.shape[0] and U.shape[0] else B
