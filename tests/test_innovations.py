"""The innovations nu(t) are orthonormal on each replica's paths (docs: theory section 3.9, eq. (3.19)):
the group averages (1/n) sum nu nu^T are the identity and those of nu with 1, z*, the label
noise and eps0 vanish, while each nu stays close to its own Gaussian draw."""
import numpy as np
import pytest
from numba import njit

import dmft
from dmft.draws import nu_columns
from dmft.shard import Shard


def _group_matrix(sh, b, T, p):
    """Group b's innovations as an (n, T p) matrix, the paths in order."""
    cs = range(sh.group_chunks[b], sh.group_chunks[b + 1])
    return np.concatenate([sh.nu[c, :T, :, :sh.chunks[c, 1]].reshape(T * p, -1) for c in cs],
                          axis=1).T.astype(np.float64)


@pytest.mark.parametrize("N, G", [(3000, 3), (2500, 4)])
def test_group_averages_are_exact(N, G):
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=2.0, eta=0.2,
                      noise=0.1, steps=40)
    sh = Shard(pr.to_dict(), 5, N, G, 0, G, "stein")
    for b in range(G):
        lo, hi = sh.bounds[b], sh.bounds[b + 1]
        n = hi - lo
        X = _group_matrix(sh, b, pr.steps, pr.p)
        gram = X.T @ X / n
        np.testing.assert_allclose(gram, np.eye(X.shape[1]), atol=2e-6)     # float32 storage
        first = np.column_stack([np.ones(n), sh.zT[:, lo:hi].T, sh.eps0[:, lo:hi].T])
        assert np.abs(first.T @ X / n).max() < 2e-6
        assert abs(np.mean(X[:, 0])) < 2e-7


def test_close_to_the_draws_and_gaussian():
    """Each column is its own draw minus an O(sqrt(columns / n)) projection: with 100 columns
    on 4000 paths, the change is about 0.16 per entry in norm, and the entries stay
    standard normal (moments of a million numbers)."""
    pr = dmft.Problem("z1", p=1, activation="tanh", alpha=2.0, eta=0.2, steps=96)
    a = Shard(pr.to_dict(), 3, 64_000, 16, 0, 16, "stein")
    X = np.concatenate([_group_matrix(a, b, 96, 1) for b in range(16)])
    m2, m4 = np.mean(X ** 2), np.mean(X ** 4)
    assert abs(m2 - 1.0) < 1e-6 and abs(m4 - 3.0) < 0.03
    # the same generator's raw draws: redo the draws without orthonormalisation
    from dmft.draws import draw_nu
    raw = np.zeros_like(a.nu)
    rngs = tuple(np.random.default_rng(s) for s in np.random.SeedSequence(3).spawn(16))
    from dmft.draws import draw_inputs
    draw_inputs(rngs, a.bounds, 1, 1)
    for b, rng in enumerate(rngs):
        pr.plan.mask(rng, int(a.bounds[b + 1] - a.bounds[b]), 96)
    draw_nu(rngs, raw, a.chunks, a.group_chunks)
    R = np.concatenate([_group_matrix(type("S", (), {"nu": raw, "chunks": a.chunks,
                                                     "group_chunks": a.group_chunks}), b, 96, 1)
                        for b in range(16)])
    rel = np.linalg.norm(X - R, axis=0) / np.linalg.norm(R, axis=0)
    assert 0.05 < np.median(rel) < 0.3


def test_a_replica_needs_its_columns():
    pr = dmft.Problem("z1 * z2", p=3, activation="relu", alpha=2.0, eta=0.2, steps=50)
    assert nu_columns(pr) == 2 + 2 + 3 + 50 * 3
    need = nu_columns(pr)
    dmft.solver.solver_settings(pr, n_paths=need * 8, n_groups=8)
    with pytest.raises(dmft.ProblemError, match="^n_paths: .*157 paths or more"):
        dmft.solver.solver_settings(pr, n_paths=need * 8 - 1, n_groups=8)


def test_orthonormal_columns_is_gram_schmidt():
    from dmft.draws import orthonormal_columns
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 40))
    q, r = np.linalg.qr(X)
    np.testing.assert_allclose(orthonormal_columns(X), q * np.sign(np.diag(r)), atol=1e-13)
    X[:, 7] = X[:, 3] * (1 + 1e-12)                 # Gram matrix singular: Householder QR
    Q = orthonormal_columns(X)
    np.testing.assert_allclose(Q[:, :7], (q * np.sign(np.diag(r)))[:, :7], atol=1e-13)


def test_chunked_and_gathered_paths_agree(monkeypatch):
    """The two ways of orthonormalising (Numba chunk by chunk for few columns, BLAS on the
    gathered group for many) give the same innovations to float32 rounding."""
    import dmft.draws
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=2.0, eta=0.2,
                      noise=0.1, steps=30)
    chunked = Shard(pr.to_dict(), 7, 2100, 3, 0, 3, "stein").nu
    monkeypatch.setattr(dmft.draws, "CHUNKED_COLUMNS", 0)
    gathered = Shard(pr.to_dict(), 7, 2100, 3, 0, 3, "stein").nu
    assert np.abs(chunked - gathered).max() < 1e-5
    assert np.abs(chunked).max() > 2.0 and np.mean(chunked != gathered) < 0.01


@njit(fastmath={"contract"})
def _apply_row_by_row(X, R, nw):
    """The forward substitution of ``dmft.draws._group_apply`` on one chunk, one row at a
    time (its form before the rows were taken four at a time)."""
    m = X.shape[0]
    for a in range(m):
        xa = X[a, :nw]
        ll = 0
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


@pytest.mark.parametrize("k, p, T", [(2, 2, 15), (1, 1, 7), (3, 2, 10), (1, 2, 40)])
def test_blocked_apply_is_the_row_by_row_substitution(k, p, T):
    """Taking the rows four at a time changes no sum: each row's updates keep their grouping
    and order, so the innovations are bit for bit those of the row-by-row substitution."""
    from dmft.draws import _chunk_columns, _group_apply, _group_gram, draw_inputs, draw_nu
    from dmft.kernels import CHUNK
    from dmft.shard import chunk_layout, group_bounds
    bounds = group_bounds(3000, 1)
    chunks, group_chunks = chunk_layout(bounds)
    rngs = (np.random.default_rng(7),)
    zT, xi, eps0 = draw_inputs(rngs, bounds, k, p)
    nu = np.zeros((len(chunks), T, p, CHUNK), np.float32)
    draw_nu(rngs, nu, chunks, group_chunks)
    drawn = nu.copy()
    m = 2 + k + p + T * p
    X, gram = np.empty((m, CHUNK)), np.empty((m, m))
    _group_gram(nu, chunks, 0, len(chunks), zT, xi, eps0, X, gram)
    R = np.linalg.cholesky(np.triu(gram) + np.triu(gram, 1).T).T.copy()
    _group_apply(nu, chunks, 0, len(chunks), zT, xi, eps0, X, R, 1.0)
    for c in range(len(chunks)):
        Y = np.empty_like(X)
        _chunk_columns(drawn, chunks, c, zT, xi, eps0, Y)
        nw = chunks[c, 1]
        _apply_row_by_row(Y, R, nw)
        np.testing.assert_array_equal(nu[c, :, :, :nw],
                                      Y[m - T * p:, :nw].reshape(T, p, nw).astype(np.float32))
    np.testing.assert_array_equal(X[:, :nw], Y[:, :nw])        # the last chunk in float64


@njit(fastmath={"reassoc", "contract"})
def _gram_pair_by_pair(X, nw, gram):
    """The Gram matrix of one chunk's rows one dot product at a time (the form of
    ``dmft.draws._group_gram`` before four rows shared each sweep), added to ``gram``."""
    m = X.shape[0]
    for a in range(m):
        for b in range(a + 1):
            s = 0.0
            for ii in range(nw):
                s += X[a, ii] * X[b, ii]
            gram[b, a] += s


@pytest.mark.parametrize("k, p, T, N", [(2, 2, 15, 3000), (1, 1, 7, 700), (3, 2, 10, 1111),
                                        (1, 3, 9, 2049)])
def test_blocked_gram_is_the_pair_by_pair_gram(k, p, T, N):
    """Taking four rows against each earlier row, the innovations' rows read in float32, moves
    no bit of the Gram matrix: each entry is still one dot product per chunk, in the same
    order (chunks of every width, the last one partial)."""
    from dmft.draws import _chunk_columns, _group_gram, draw_inputs, draw_nu
    from dmft.kernels import CHUNK
    from dmft.shard import chunk_layout, group_bounds
    bounds = group_bounds(N, 1)
    chunks, group_chunks = chunk_layout(bounds)
    rngs = (np.random.default_rng(3),)
    zT, xi, eps0 = draw_inputs(rngs, bounds, k, p)
    nu = np.zeros((len(chunks), T, p, CHUNK), np.float32)
    draw_nu(rngs, nu, chunks, group_chunks)
    m = 2 + k + p + T * p
    X, gram = np.empty((m, CHUNK)), np.empty((m, m))
    _group_gram(nu, chunks, 0, len(chunks), zT, xi, eps0, X, gram)
    ref, cols = np.zeros((m, m)), []
    for c in range(len(chunks)):
        _chunk_columns(nu, chunks, c, zT, xi, eps0, X)
        _gram_pair_by_pair(X, chunks[c, 1], ref)
        cols.append(X[:, :chunks[c, 1]].copy())
    iu = np.triu_indices(m)
    np.testing.assert_array_equal(gram[iu], ref[iu])
    full = np.concatenate(cols, axis=1)
    np.testing.assert_allclose(gram[iu], (full @ full.T)[iu], rtol=1e-12, atol=1e-9 * N)
