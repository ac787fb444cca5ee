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
from threadpoolctl import threadpool_limits

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


def orthonormal_columns(X, first=0, scale=1.0):
    """Columns ``first`` .. of Q, times ``scale``, of the QR factorisation X = Q R (n, m),
    n >= m, with R's diagonal positive: the Gram-Schmidt orthonormalisation of the columns in
    order.  By Cholesky QR (R = L^T from the Gram matrix X^T X = L L^T, Q = X R^{-1}: two
    matrix products and an m x m inverse, a third of the time of Householder QR at these sizes;
    numpy's BLAS only, since alternating with SciPy's own BLAS cost a factor 3 in thread
    hand-overs); the loss of orthogonality, about cond(X)^2 times the float64 epsilon, is far
    below the float32 storage of the innovations for the Gaussian columns drawn here (cond(X) is
    below 10^3 even at n = m + 4).  Householder QR when the Gram matrix is not numerically
    positive definite."""
    X = np.asarray(X, dtype=np.float64)
    try:
        L = np.linalg.cholesky(X.T @ X)
        return X @ (np.linalg.inv(L).T[:, first:] * scale)
    except np.linalg.LinAlgError:
        q, r = np.linalg.qr(X)
        return (q * np.sign(np.diag(r)))[:, first:] * scale


@njit(cache=True, nogil=True)
def _gather_nu(nu, chunks, c0, c1, X, m0):
    """Copy the innovations of the chunks c0 .. c1-1 (one group) into the columns m0 .. of X
    (n, m0 + T p): path i of the group in row i, nu_j(t) in column m0 + t p + j."""
    T, p = nu.shape[1], nu.shape[2]
    i0 = chunks[c0, 0]
    for c in range(c0, c1):
        base = chunks[c, 0] - i0
        for t in range(T):
            for j in range(p):
                col = m0 + t * p + j
                for ii in range(chunks[c, 1]):
                    X[base + ii, col] = nu[c, t, j, ii]


@njit(cache=True, nogil=True)
def _scatter_nu(Q, nu, chunks, c0, c1):
    """The reverse of :func:`_gather_nu` for Q (n, T p), rounded to float32."""
    T, p = nu.shape[1], nu.shape[2]
    i0 = chunks[c0, 0]
    for c in range(c0, c1):
        base = chunks[c, 0] - i0
        for t in range(T):
            for j in range(p):
                for ii in range(chunks[c, 1]):
                    nu[c, t, j, ii] = Q[base + ii, t * p + j]


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
    k = zT.shape[0]
    m0 = 2 + k + p

    def work(g0, g1):
        for b in range(g0, g1):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            n = hi - lo
            if n < m0 + T * p:
                raise ValueError(f"group {b}: {n} paths cannot hold {m0 + T * p} orthonormal "
                                 f"columns")
            X = np.empty((n, m0 + T * p), order="F")
            X[:, 0] = 1.0
            X[:, 1:1 + k] = zT[:, lo:hi].T
            X[:, 1 + k] = xi[lo:hi]
            X[:, 2 + k:m0] = eps0[:, lo:hi].T
            c0, c1 = int(group_chunks[b]), int(group_chunks[b + 1])
            _gather_nu(nu, chunks, c0, c1, X, m0)
            _scatter_nu(orthonormal_columns(X, m0, np.sqrt(n)), nu, chunks, c0, c1)
    # one group per thread, each with a single-threaded BLAS: two levels of threads spin
    # against each other (measured: 2x slower on 2 cores, 10x on a loaded machine), and one
    # BLAS thread also makes the numbers independent of the BLAS thread count
    with threadpool_limits(1, user_api="blas"):
        over_groups(work, len(group_chunks) - 1)
