"""Linear algebra on stacks of symmetric matrices (any leading batch axes), shared by the
weight side, the one-pass recursion and the simulator: symmetric square roots and their
pseudo-inverses, and factors L with L L^T = C, from one eigendecomposition each."""
import numpy as np


def swap(X):
    """Transpose of the last two axes."""
    return np.swapaxes(X, -1, -2)


def sym(V, diag):
    """V diag(d) V^T for stacks of eigenvectors V (..., p, p) and values d (..., p)."""
    return (V * diag[..., None, :]) @ swap(V)


def eigh_sym(C):
    """Eigenvalues (ascending) and eigenvectors of the symmetric part of C."""
    return np.linalg.eigh(0.5 * (C + swap(C)))


def sqrt_and_pinv(V, std, keep):
    """Symmetric factor V diag(std) V^T and its pseudo-inverse, the directions where ``keep``
    is False set to zero in both (innovations treated as zero)."""
    std = np.where(keep, std, 0.0)
    return sym(V, std), sym(V, np.where(keep, 1.0 / np.where(keep, std, 1.0), 0.0))


def psd_sqrt(C, rtol=1e-12):
    """Symmetric square root of a positive semi-definite stack C and the pseudo-inverse of that
    root, eigenvalues below ``rtol`` times the largest treated as zero in the inverse; negative
    eigenvalues (round-off or Monte Carlo noise) are clipped to zero.  Returns
    ``(half, half_pinv, lam)`` with ``lam`` the eigenvalues before clipping."""
    lam, V = eigh_sym(C)
    lamc = np.clip(lam, 0.0, None)
    half = sym(V, np.sqrt(lamc))
    keep = lamc > rtol * np.maximum(lamc.max(axis=-1, keepdims=True), 1e-300)
    pinv = sym(V, np.where(keep, 1.0 / np.sqrt(np.where(keep, lamc, 1.0)), 0.0))
    return half, pinv, lam


def psd_factor(C):
    """A factor L = V diag(sqrt(lam))  of a positive semi-definite matrix C (L L^T = C, negative
    eigenvalues clipped to zero) and the eigenvalues ``lam`` before clipping."""
    lam, V = np.linalg.eigh(C)
    return V * np.sqrt(np.clip(lam, 0.0, None)), lam
