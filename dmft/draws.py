"""The random inputs of the sample side's paths.

Every replica group b draws from its own generator, in a fixed order: z* (``standard_normal
((n_b, k))``), the label noise (``standard_normal(n_b)``), eps0 (``standard_normal((p,
n_b))``), the selection patterns (:meth:`dmft.schedules.Plan.mask`), then the innovations nu(t)
step by step, chunk by chunk and neuron by neuron (so the first steps' numbers do not depend on
the horizon).  Small Numba kernels draw them from one group's generator at a time (Numba's
port of NumPy's ziggurat gives NumPy's very numbers, twice as fast as NumPy's own loop,
measured; one generator per call keeps them quick to compile), groups in parallel
(:func:`dmft.threads.over_groups`; the kernels release the GIL), so the numbers depend neither on the number of threads nor on how groups are spread
over shards.  Each group's innovations are then made orthonormal on its own paths
(:func:`orthonormal_nu`, eq. (3.19)).
"""
import numpy as np
from numba import njit

from .threads import over_groups


@njit(cache=True, nogil=True)
def _draw_group_inputs(gen, zT, xi, eps0, lo, hi):
    """z*, label noise and eps0 of the paths lo .. hi-1 of one group from its generator, in
    the order of NumPy's ``standard_normal((n_b, k))``, ``standard_normal(n_b)``,
    ``standard_normal((p, n_b))``."""
    k, p = zT.shape[0], eps0.shape[0]
    for i in range(lo, hi):
        for q in range(k):
            zT[q, i] = gen.standard_normal()
    for i in range(lo, hi):
        xi[i] = gen.standard_normal()
    for j in range(p):
        for i in range(lo, hi):
            eps0[j, i] = gen.standard_normal()


def draw_inputs(rngs, bounds, k, p):
    """Each path's z* (k, N), label-noise normal (N,) and eps0 (p, N), N = ``bounds[-1]``,
    group b = paths ``bounds[b]`` .. ``bounds[b+1]-1`` drawn from ``rngs[b]``.

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One generator per group.
    bounds : ndarray (G+1,)
        Group boundaries.
    k, p : int
        Target directions and student width.

    Returns
    -------
    tuple of ndarray
        ``zT`` (k, N), ``xi`` (N,), ``eps0`` (p, N), stored by coordinate.
    """
    n = int(bounds[-1])
    zT, xi, eps0 = np.empty((k, n)), np.empty(n), np.empty((p, n))

    def work(g0, g1):
        for b in range(g0, g1):
            _draw_group_inputs(rngs[b], zT, xi, eps0, int(bounds[b]), int(bounds[b + 1]))
    over_groups(work, len(rngs))
    return zT, xi, eps0


@njit(cache=True, nogil=True)
def _draw_group_nu(gen, nu, chunks, c0, c1):
    """nu(t) of the chunks c0 .. c1-1 of one group from its generator: step by step, then
    chunk by chunk and neuron by neuron, drawn in float64 and rounded to float32."""
    T, p = nu.shape[1], nu.shape[2]
    for t in range(T):
        for c in range(c0, c1):
            nw = chunks[c, 1]
            for j in range(p):
                for ii in range(nw):
                    nu[c, t, j, ii] = gen.standard_normal()


def draw_nu(rngs, nu, chunks, group_chunks):
    """Fill the innovations nu(t) of every path and step (``nu`` (n_chunks, T, p, CHUNK),
    float32, blocked by chunk as in :mod:`dmft.kernels`): drawn in float64 and rounded (a
    relative change below 6e-8).

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One generator per group, after the draws of :func:`draw_inputs` and the masks.
    nu : ndarray (n_chunks, T, p, CHUNK)
        Filled in place (lanes beyond a chunk's width are left untouched).
    chunks, group_chunks : ndarray
        The chunk layout (:func:`dmft.shard.chunk_layout`).

    Returns
    -------
    None
    """
    def work(g0, g1):
        for b in range(g0, g1):
            _draw_group_nu(rngs[b], nu, chunks, int(group_chunks[b]), int(group_chunks[b + 1]))
    over_groups(work, len(rngs))



def nu_columns(problem):
    """Columns the innovations of one replica are orthonormalised against and among:
    1, z* (k), the label noise, eps0 (p), then nu(0) .. nu(T-1) (p each); a replica needs at
    least this many paths (checked by :func:`dmft.solver.solver_settings`)."""
    return 2 + problem.k + problem.p + max(problem.steps, 1) * problem.p


def orthonormal_columns(X):
    """Q of the QR factorisation X = Q R (n, m), n >= m, with R's diagonal positive: the
    Gram-Schmidt orthonormalisation of the columns in order.  By Cholesky QR (R = L^T from the
    Gram matrix X^T X = L L^T, Q = X R^{-1}: two matrix products and an m x m inverse, a third
    of the time of Householder QR at these sizes; numpy's BLAS only, since alternating with
    SciPy's own BLAS cost a factor 3 in thread hand-overs); the loss of orthogonality, about
    cond(X)^2 times the float64 epsilon, is far below the float32 storage of the innovations for
    the Gaussian columns drawn here (cond(X) is below 10^3 even at n = m + 4).  Householder QR
    when the Gram matrix is not numerically positive definite."""
    X = np.asarray(X, dtype=np.float64)
    try:
        L = np.linalg.cholesky(X.T @ X)
        return X @ np.linalg.inv(L).T
    except np.linalg.LinAlgError:
        q, r = np.linalg.qr(X)
        return q * np.sign(np.diag(r))


def orthonormal_nu(nu, chunks, group_chunks, bounds, zT, xi, eps0):
    """Make every group's innovations exactly orthonormal on its own paths (decision recorded
    in the docs, theory section 3.9, eq. (3.19)).

    Within a group of n paths the n-vectors nu_j(t) are replaced by the Gram-Schmidt
    orthonormalisation of the columns [1, z*, label noise, eps0, nu(0), nu(1), ...], in this
    order (so each nu_j(t) is its own draw minus its projection on the columns before it,
    normalised), times sqrt(n): the group's averages (1/n) sum nu nu^T are then exactly the
    identity, and those of nu with 1, z*, the label noise and eps0 exactly zero.  The group
    needs n >= :func:`nu_columns` paths.

    Parameters
    ----------
    nu : ndarray (n_chunks, T, p, CHUNK), float32
        Drawn by :func:`draw_nu`; changed in place.
    chunks, group_chunks, bounds : ndarray
        The chunk layout and the group boundaries.
    zT, xi, eps0 : ndarray
        The paths' z* (k, N), label noise (N,) and eps0 (p, N).

    Returns
    -------
    None
    """
    _, T, p, _ = nu.shape

    def work(g0, g1):
        for b in range(g0, g1):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            first = np.column_stack([np.ones(hi - lo), zT[:, lo:hi].T, xi[lo:hi],
                                     eps0[:, lo:hi].T])
            cs = range(int(group_chunks[b]), int(group_chunks[b + 1]))
            X = np.concatenate([nu[c, :, :, :chunks[c, 1]].reshape(T * p, -1) for c in cs],
                               axis=1).T                                  # (n, T p)
            if X.shape[0] < first.shape[1] + X.shape[1]:
                raise ValueError(f"group {b}: {X.shape[0]} paths cannot hold "
                                 f"{first.shape[1] + X.shape[1]} orthonormal columns")
            q = orthonormal_columns(np.column_stack([first, X]))[:, first.shape[1]:]
            q *= np.sqrt(hi - lo)
            i = 0
            for c in cs:
                nw = int(chunks[c, 1])
                nu[c, :, :, :nw] = q[i:i + nw].T.reshape(T, p, nw)
                i += nw
    work(0, len(group_chunks) - 1)      # groups in turn: BLAS threads each (2x faster than
    #                                     one group per thread, measured on 2 cores)
