"""A plain numpy implementation of the discrete-time DMFT equations (docs: theory section 2), kept as the baseline of the
performance benchmark (it is not used by the package).

One pooled Monte Carlo over N paths, arrays (time, path, neuron): omega(t) drawn conditionally
through the incremental block Cholesky factor of C_theta, the memory term from the g history,
C_g and the Stein averages E[g(t) zeta(u)^T] by einsum over the whole history, R_g by the
truncated back-solve of eq. (3.17).  Vectorised over paths, as a careful numpy user would write it.
"""
import numpy as np


def _sqrt_pinv(S, rtol):
    lam, V = np.linalg.eigh(0.5 * (S + S.T))
    lam = np.clip(lam, 0.0, None)
    root = (V * np.sqrt(lam)) @ V.T
    keep = np.sqrt(lam) > rtol * max(np.sqrt(lam.max()), 1e-300)
    inv = (V * np.where(keep, 1 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)) @ V.T
    return root, inv


def solve_numpy(problem, n_paths, seed=0, stein_rtol=1e-3):
    """Returns M (T+1, p, k) and the test error (T+1,) of the multi-pass DMFT."""
    from dmft.activations import get_activation
    act = get_activation(problem.activation)
    rng = np.random.default_rng(seed)
    T, p, k, N = problem.steps, problem.p, problem.k, n_paths
    al, eta, dec = problem.alpha, problem.eta, 1 - problem.eta * problem.ridge
    a = problem.a
    z = rng.standard_normal((N, k))
    y = problem.target(z) + np.sqrt(problem.noise) * rng.standard_normal(N)
    two = (T + 1, T + 1, p, p)
    Psi, Rth, Cth, Cg, Rg, L = (np.zeros(two[1:]) if i == 0 else np.zeros(two) for i in range(6))
    Linv, Lst = np.zeros((T + 1, p, p)), np.zeros((T + 1, p, p))
    M = np.zeros((T + 1, p, k))
    M[0] = problem.M0
    # path-major histories (N, (T+1) p): the first (t+1) p columns are the history up to t, a
    # strided view that BLAS reads without copies
    zeta, g = np.zeros((N, (T + 1) * p)), np.zeros((N, (T + 1) * p))
    test = np.zeros(T + 1)
    C0 = problem.C0
    for t in range(T + 1):
        if t == 0:
            Psi[0] = np.eye(p)
        else:
            Psi[t] = dec * Psi[t - 1] - eta * al * np.einsum("uij,ujk->ik", Rg[t - 1, :t], Psi[:t])
            for s in range(t - 1):
                Rth[t, s] = dec * Rth[t - 1, s] - eta * al * np.einsum(
                    "uij,ujk->ik", Rg[t - 1, s + 1:t], Rth[s + 1:t, s])
            Rth[t, t - 1] = -eta * np.eye(p)
        for u in range(t + 1):
            c = Psi[t] @ C0 @ Psi[u].T
            if t and u:
                c += al * np.einsum("sij,sqjk,qlk->il", Rth[t, :t], Cg[:t, :u], Rth[u, :u])
            Cth[t, u], Cth[u, t] = c, c.T
        for s in range(t):
            B = Cth[t, s] - np.einsum("uij,ukj->ik", L[t, :s], L[s, :s])
            L[t, s] = B @ Linv[s]
        schur = Cth[t, t] - np.einsum("uij,ukj->ik", L[t, :t], L[t, :t])
        L[t, t], Linv[t] = _sqrt_pinv(schur, 1e-5)
        _, Lst[t] = _sqrt_pinv(schur, stein_rtol)
        zeta[:, t * p:(t + 1) * p] = rng.standard_normal((N, p))
        n1 = (t + 1) * p
        omega = zeta[:, :n1] @ L[t, :t + 1].transpose(0, 2, 1).reshape(n1, p)
        h = z @ M[t].T + omega
        if t:
            h += g[:, :t * p] @ Rth[t, :t].transpose(0, 2, 1).reshape(t * p, p)
        err = act.f(h) @ a - y
        gt = err[:, None] * a * act.df(h)
        g[:, t * p:(t + 1) * p] = gt
        test[t] = 0.5 * np.mean((act.f(z @ M[t].T + omega) @ a - y) ** 2)
        Cg[t, :t + 1] = (gt.T @ g[:, :n1]).reshape(p, t + 1, p).transpose(1, 0, 2) / N
        Cg[:t + 1, t] = np.swapaxes(Cg[t, :t + 1], -1, -2)
        S = (gt.T @ zeta[:, :n1]).reshape(p, t + 1, p).transpose(1, 0, 2) / N
        for u in range(t, -1, -1):
            Rg[t, u] = (S[u] - np.einsum("sij,sjk->ik", Rg[t, u + 1:t + 1], L[u + 1:t + 1, u])) @ Lst[u]
        if t < T:
            M[t + 1] = dec * M[t] - eta * al * (gt.T @ z) / N
    return M, test
