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
import scipy.linalg
from numba import njit

from .threads import one_blas_thread, over_groups


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


def draw_inputs(rngs, bounds, k, p, out=None):
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
    out : ndarray (k + 1 + p, N) or None
        Where to draw them (rows: z*, the label noise, eps0); None for new arrays.

    Returns
    -------
    tuple of ndarray
        ``zT`` (k, N), ``xi`` (N,), ``eps0`` (p, N), stored by coordinate (views of ``out``).
    """
    n = int(bounds[-1])
    out = np.empty((k + 1 + p, n)) if out is None else out
    zT, xi, eps0 = out[:k], out[k], out[k + 1:]

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
    order (:func:`orthonormal_rows` of X^T, transposed)."""
    return orthonormal_rows(np.asarray(X, dtype=np.float64).T, first, scale).T


def orthonormal_rows(XT, first=0, scale=1.0):
    """Rows ``first`` .. of Q^T, times ``scale``, where X = XT^T = Q R (n, m), n >= m, R's
    diagonal positive: the Gram-Schmidt orthonormalisation of the rows of XT (m, n) in order,
    as rows (each one contiguous).  By Cholesky QR: R from the Gram matrix X^T X = R^T R
    (BLAS ``syrk`` and LAPACK ``potrf``), Q = X R^{-1} (``trsm``), m^2 n + m^3 / 3 + m^2 n
    flops, a fifth of Householder QR's time at these sizes and less than half that of forming
    R^{-1} explicitly.  All three come from SciPy's BLAS (alternating with numpy's cost a
    factor 3 in thread hand-overs).  The loss of orthogonality, about cond(X)^2 times the
    float64 epsilon, is far below the float32 storage of the innovations for the Gaussian
    columns drawn here (cond(X) is below 10^3 even at n = m + 4).  Householder QR when the Gram
    matrix is not numerically positive definite."""
    X = np.asarray(XT, dtype=np.float64).T                   # (n, m), Fortran order
    R, info = scipy.linalg.lapack.dpotrf(scipy.linalg.blas.dsyrk(1.0, X, trans=1), lower=0)
    if info == 0:
        return scipy.linalg.blas.dtrsm(scale, R, X, side=1, lower=0)[:, first:].T
    q, r = np.linalg.qr(X)
    return ((q * np.sign(np.diag(r)))[:, first:] * scale).T


_FM = {"reassoc", "contract"}
#: up to this many columns a group is orthonormalised chunk by chunk in Numba
#: (``_group_gram``, ``_group_apply``); above, through BLAS on the gathered group
#: (``_gathered``), whose cache blocking wins once a chunk's columns outgrow the L2 cache
#: (measured on 2 cores at 2e5 paths: the chunked path takes half the time at 46 columns,
#: two thirds at 306, the same at 406)
CHUNKED_COLUMNS = 400


@njit(cache=True, nogil=True)
def _lead_columns(chunks, c, zT, xi, eps0, X, base=0):
    """The m0 = 2 + k + p leading columns of chunk c's paths as the first rows of X,
    float64, path i of the chunk in column base + i: 1, z* (k), the label noise, eps0 (p)."""
    k, p = zT.shape[0], eps0.shape[0]
    i0, nw = chunks[c, 0], chunks[c, 1]
    for ii in range(nw):
        X[0, base + ii] = 1.0
        X[1 + k, base + ii] = xi[i0 + ii]
    for q in range(k):
        for ii in range(nw):
            X[1 + q, base + ii] = zT[q, i0 + ii]
    for j in range(p):
        for ii in range(nw):
            X[2 + k + j, base + ii] = eps0[j, i0 + ii]


@njit(cache=True, nogil=True)
def _chunk_columns(nu, chunks, c, zT, xi, eps0, X, base=0):
    """The m columns of chunk c's paths as the rows of X, float64, path i of the chunk in
    column base + i: those of :func:`_lead_columns`, then nu(0) .. nu(T-1) (p each).  X is
    one chunk's buffer (m, CHUNK) or a whole group's matrix (m, n)."""
    T, p = nu.shape[1], nu.shape[2]
    m0 = 2 + zT.shape[0] + p
    _lead_columns(chunks, c, zT, xi, eps0, X, base)
    nw = chunks[c, 1]
    for t in range(T):
        for j in range(p):
            src, dst = nu[c, t, j], X[m0 + t * p + j]
            for ii in range(nw):
                dst[base + ii] = src[ii]


@njit(cache=True, nogil=True, fastmath=_FM)
def _dot(x, y, nw):
    """sum_i x[i] y[i] over i < nw in float64 (a float32 row converted exactly): one vector
    reduction, whose order the compiler fixes by the loop's shape alone."""
    s = 0.0
    for ii in range(nw):
        s += np.float64(x[ii]) * np.float64(y[ii])
    return s


@njit(cache=True, nogil=True, fastmath=_FM)
def _dot4(x, y0, y1, y2, y3, nw):
    """The four dot products of x with y0 .. y3 (as :func:`_dot`) in one sweep, x loaded
    once; each is its own vector reduction, in the order of :func:`_dot`."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for ii in range(nw):
        v = np.float64(x[ii])
        s0 += v * np.float64(y0[ii])
        s1 += v * np.float64(y1[ii])
        s2 += v * np.float64(y2[ii])
        s3 += v * np.float64(y3[ii])
    return s0, s1, s2, s3


@njit(cache=True, nogil=True)
def _add4(gram, b, a, s):
    """Add the four sums s to gram[b, a] .. gram[b, a + 3]."""
    gram[b, a] += s[0]
    gram[b, a + 1] += s[1]
    gram[b, a + 2] += s[2]
    gram[b, a + 3] += s[3]


@njit(cache=True, nogil=True, fastmath=_FM)
def _group_gram(nu, chunks, c0, c1, zT, xi, eps0, X, gram):
    """The upper triangle of the Gram matrix X^T X (m, m) of the columns over the chunks
    c0 .. c1-1 (one group), chunk by chunk.  The m0 leading columns (1, z*, the label noise,
    eps0) go into X's first rows; the innovations' rows are read where they lie, in ``nu``
    (float32, converted exactly: half the bytes of float64 copies).  Four rows a at a time
    against every row b before them (:func:`_dot4`): each b is loaded once for four dot
    products while the four stay in the L1 cache.  Each entry is still one dot product per
    chunk, which the compiler vectorises alike in :func:`_dot` and :func:`_dot4`, so the
    blocking moves no bit (tests/test_innovations.py: against the pair-by-pair Gram)."""
    T, p = nu.shape[1], nu.shape[2]
    m = X.shape[0]
    m0 = m - T * p
    for a in range(m):
        for b in range(a + 1):
            gram[b, a] = 0.0
    for c in range(c0, c1):
        _lead_columns(chunks, c, zT, xi, eps0, X)
        nw = chunks[c, 1]
        Y = nu[c].reshape((T * p, nu.shape[3]))          # the innovations' rows
        for a in range(m0):
            for b in range(a + 1):
                gram[b, a] += _dot(X[a], X[b], nw)
        for a1 in range(0, T * p - 3, 4):
            y0, y1, y2, y3 = Y[a1], Y[a1 + 1], Y[a1 + 2], Y[a1 + 3]
            a = m0 + a1
            for b in range(m0):
                _add4(gram, b, a, _dot4(X[b], y0, y1, y2, y3, nw))
            for b1 in range(a1 + 1):
                _add4(gram, m0 + b1, a, _dot4(Y[b1], y0, y1, y2, y3, nw))
            for r in range(1, 4):                     # the block's own triangle
                for b1 in range(a1 + 1, a1 + r + 1):
                    gram[m0 + b1, a + r] += _dot(Y[a1 + r], Y[b1], nw)
        for a1 in range(T * p - T * p % 4, T * p):    # the rows left over
            for b in range(m0):
                gram[b, m0 + a1] += _dot(Y[a1], X[b], nw)
            for b1 in range(a1 + 1):
                gram[m0 + b1, m0 + a1] += _dot(Y[a1], Y[b1], nw)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _group_apply(nu, chunks, c0, c1, zT, xi, eps0, X, R, scale):
    """Q = X R^{-1} on the chunks c0 .. c1-1 (one group), R upper triangular (m, m): forward
    substitution on each chunk's rows, q_a = (x_a - sum_{l<a} R[l, a] q_l) / R[a, a], four
    l at a time; the innovations' rows times ``scale`` go back to ``nu`` (float32)."""
    T, p = nu.shape[1], nu.shape[2]
    m = X.shape[0]
    m0 = m - T * p
    for c in range(c0, c1):
        _chunk_columns(nu, chunks, c, zT, xi, eps0, X)
        nw = chunks[c, 1]
        for a0 in range(0, m, 4):
            # rows a0 .. a0+3 take the same blocks of four l < a0: one sweep updates all
            # four (each x_l loaded once); the sums, and their order, are each row's own
            if a0 + 4 <= m:
                xa0, xa1, xa2, xa3 = X[a0, :nw], X[a0 + 1, :nw], X[a0 + 2, :nw], X[a0 + 3, :nw]
                for ll in range(0, a0, 4):
                    x0, x1, x2, x3 = X[ll, :nw], X[ll + 1, :nw], X[ll + 2, :nw], X[ll + 3, :nw]
                    r00, r10, r20, r30 = R[ll, a0], R[ll + 1, a0], R[ll + 2, a0], R[ll + 3, a0]
                    r01, r11, r21, r31 = R[ll, a0 + 1], R[ll + 1, a0 + 1], R[ll + 2, a0 + 1], \
                        R[ll + 3, a0 + 1]
                    r02, r12, r22, r32 = R[ll, a0 + 2], R[ll + 1, a0 + 2], R[ll + 2, a0 + 2], \
                        R[ll + 3, a0 + 2]
                    r03, r13, r23, r33 = R[ll, a0 + 3], R[ll + 1, a0 + 3], R[ll + 2, a0 + 3], \
                        R[ll + 3, a0 + 3]
                    for ii in range(nw):
                        v0, v1, v2, v3 = x0[ii], x1[ii], x2[ii], x3[ii]
                        xa0[ii] -= r00 * v0 + r10 * v1 + r20 * v2 + r30 * v3
                        xa1[ii] -= r01 * v0 + r11 * v1 + r21 * v2 + r31 * v3
                        xa2[ii] -= r02 * v0 + r12 * v1 + r22 * v2 + r32 * v3
                        xa3[ii] -= r03 * v0 + r13 * v1 + r23 * v2 + r33 * v3
                start = a0
            else:
                start = 0
            for a in range(a0, min(a0 + 4, m)):
                xa = X[a, :nw]
                ll = start
                while ll + 4 <= a:
                    x0, x1, x2, x3 = X[ll, :nw], X[ll + 1, :nw], X[ll + 2, :nw], X[ll + 3, :nw]
                    r0, r1, r2, r3 = R[ll, a], R[ll + 1, a], R[ll + 2, a], R[ll + 3, a]
                    for ii in range(nw):
                        xa[ii] -= r0 * x0[ii] + r1 * x1[ii] + r2 * x2[ii] + r3 * x3[ii]
                    ll += 4
                while ll < a:
                    xl, rl = X[ll, :nw], R[ll, a]
                    for ii in range(nw):
                        xa[ii] -= rl * xl[ii]
                    ll += 1
                d = R[a, a]
                for ii in range(nw):
                    xa[ii] /= d
        for t in range(T):
            for j in range(p):
                src, dst = X[m0 + t * p + j], nu[c, t, j]
                for ii in range(nw):
                    dst[ii] = scale * src[ii]


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
    m0 = 2 + k + p                         # the columns before nu(0) (see nu_columns)
    m = m0 + T * p

    def work(g0, g1):
        X = np.empty((m, nu.shape[3]))       # one chunk's columns, per thread
        gram = np.empty((m, m))
        buf = []                             # the gathered path's matrix, per thread
        for b in range(g0, g1):
            n = int(bounds[b + 1] - bounds[b])
            if n < m:
                raise ValueError(f"group {b}: {n} paths cannot hold {m} orthonormal columns")
            c0, c1 = int(group_chunks[b]), int(group_chunks[b + 1])
            if m <= CHUNKED_COLUMNS:
                _group_gram(nu, chunks, c0, c1, zT, xi, eps0, X, gram)
                R, info = scipy.linalg.lapack.dpotrf(gram, lower=0, clean=1)
                if info == 0:
                    _group_apply(nu, chunks, c0, c1, zT, xi, eps0, X, R, np.sqrt(n))
                    continue
            if not buf:                      # its pages faulted in once per thread
                buf.append(np.empty(m * int(np.diff(bounds).max())))
            _gathered(nu, chunks, c0, c1, zT, xi, eps0, buf[0][:m * n].reshape(m, n))
    # one group per thread, each with a single-threaded BLAS: two levels of threads spin
    # against each other (measured: 2x slower on 2 cores, 10x on a loaded machine), and one
    # BLAS thread also makes the numbers independent of the BLAS thread count; the gathered
    # path keeps one range per thread (its large buffer faulted in once)
    with one_blas_thread():
        over_groups(work, len(group_chunks) - 1, blocks=4 if m <= CHUNKED_COLUMNS else 1)


def _gathered(nu, chunks, c0, c1, zT, xi, eps0, XT):
    """:func:`orthonormal_nu` for one group through BLAS: the group's (m, n) matrix of
    columns gathered into XT chunk by chunk, :func:`orthonormal_rows` (Cholesky QR, or
    Householder QR when the Gram matrix is not numerically positive definite), scattered back."""
    T, p = nu.shape[1], nu.shape[2]
    m, n = XT.shape
    for c in range(c0, c1):
        _chunk_columns(nu, chunks, c, zT, xi, eps0, XT, chunks[c, 0] - chunks[c0, 0])
    _scatter_nu(orthonormal_rows(XT, m - T * p, np.sqrt(n)), nu, chunks, c0, c1)


@njit(cache=True, nogil=True)
def _scatter_nu(QT, nu, chunks, c0, c1):
    """QT (T p, n), nu_j(t) of the group's path i in row t p + j, column i, back into the
    chunks c0 .. c1-1 of ``nu``, rounded to float32."""
    T, p = nu.shape[1], nu.shape[2]
    i0 = chunks[c0, 0]
    for t in range(T):
        for j in range(p):
            row = QT[t * p + j]
            for c in range(c0, c1):
                base = chunks[c, 0] - i0
                dst = nu[c, t, j]
                for ii in range(chunks[c, 1]):
                    dst[ii] = row[base + ii]
