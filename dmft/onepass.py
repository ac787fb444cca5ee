"""Dedicated memory-less DMFT recursion for one-pass GD (docs: theory section 4, eqs. (4.7)-(4.13)).

With a fresh batch of alpha*d samples at every step, a sample meets the network once: its
pre-activation is h = M(t) z* + omega with omega ~ N(0, C(t)), C(t) = C_theta(t, t), and no
memory term.  The weight side closes on equal-time quantities (d = 1 - eta lambda):

    M(t+1) = d M(t) - eta alpha E[g z*^T]
    C(t+1) = (d - eta alpha R) C (d - eta alpha R)^T + eta^2 alpha E[g g^T],   R = E[dg/dh],

written without inverting C through Stein's lemma, S = E[g zeta^T] = R C^{1/2} for
omega = C^{1/2} zeta:  C(t+1) = d^2 C - d eta alpha (S C^{1/2} + C^{1/2} S^T)
+ eta^2 alpha^2 S S^T + eta^2 alpha E[g g^T].  Fresh Gaussian samples are drawn at every step,
so memory is O(n_paths) whatever the horizon.  Error bars come from independent replicas, as
in :mod:`dmft.solver`.  Two-time kernels are reported in the conventions of the general
schedule (alpha_tot = alpha (T+1), C_g = E[s g g^T], R_g = E[s dg/domega]) so that they can be
compared with ``solve(..., method="general")``.

The models of the theory's section 7 enter as in the general solver: the loss as an integer
code in the kernel (g = l' a sigma'(h), eq. (7.2)), a trained readout's a(t) per replica
(eq. (7.5) with alpha), and spherical GD by rescaling row t+1 with D(t+1), eq. (7.14).
"""
import time

import numpy as np
from numba import njit

from . import compilation
from .activations import dsigma, get_activation, sigma
from .beyond import (SQUARE, dloss, loss_value, problem_codes, readout_rates, readout_step,
                     sphere_factor)
from .errors import DIVERGENCE, check_projection
from .linalg import psd_sqrt, swap
from .progress import progress_bar
from .result import Result
from .threads import over_groups
from .weight import Kernels


@njit(cache=True, nogil=True)
def _step(g0, g1, code, loss, trained, a, z, y, zeta, bounds, C_half, M_t, gg, gz, S, losses,
          la):
    """Sums of g g^T, g z^T, g zeta^T and the loss over the fresh samples of groups g0 .. g1-1
    (one range per thread, :func:`dmft.threads.over_groups`); g = l' a(t) sigma'(h), eq.
    (7.2), with a(t) per group (G, p), and for a trained readout the sums of l' sigma(h) in
    ``la`` (eq. (7.5))."""
    p = a.shape[1]
    k = z.shape[1]
    h = np.empty(p)
    g = np.empty(p)
    for b in range(g0, g1):
        for i in range(bounds[b], bounds[b + 1]):
            for j in range(p):
                acc = 0.0
                for l in range(p):
                    acc += C_half[b, j, l] * zeta[i, l]
                for q in range(k):
                    acc += M_t[b, j, q] * z[i, q]
                h[j] = acc
            yhat = 0.0
            for j in range(p):
                yhat += a[b, j] * sigma(code, h[j])
            if loss == SQUARE:
                err = yhat - y[i]
                losses[b] += 0.5 * err * err
            else:
                err = dloss(loss, yhat, y[i])
                losses[b] += loss_value(loss, yhat, y[i])
            for j in range(p):
                g[j] = err * a[b, j] * dsigma(code, h[j])
            if trained:
                for j in range(p):
                    la[b, j] += err * sigma(code, h[j])
            for j in range(p):
                for l in range(p):
                    gg[b, j, l] += g[j] * g[l]
                    S[b, j, l] += g[j] * zeta[i, l]
                for q in range(k):
                    gz[b, j, q] += g[j] * z[i, q]


def _sqrtm(C, t):
    """C^{1/2} and its pseudo-inverse per replica, with a warning when C(t) = C_theta(t, t)
    had to be projected onto the positive semi-definite cone beyond round-off."""
    half, inv, lam = psd_sqrt(C)
    top = np.abs(lam).max(axis=-1)
    b = int(np.argmax(-lam[:, 0] / np.maximum(top, 1e-300)))
    check_projection(lam[b, 0], top[b], f"C_theta(t, t) (replica {b})", t)
    return half, inv


def _normalize(K, t):
    """Spherical GD: row t of M, C_theta, Psi and R_theta times D(t) on the left, eqs.
    (7.8)-(7.9)."""
    D = sphere_factor(K.M[:, t], K.C_theta[:, t, t])
    col = D[:, :, None]
    K.M[:, t] *= col
    K.Psi[:, t] *= col
    K.R_theta[:, t, :t] *= col[:, None]
    C = col[:, None] * K.C_theta[:, t, :t + 1]
    C[:, t] *= D[:, None, :]
    C[:, t] = 0.5 * (C[:, t] + swap(C[:, t]))
    K.C_theta[:, t, :t + 1] = C
    K.C_theta[:, :t + 1, t] = swap(C)


def solve_one_pass(problem, N, G, seed, rng, progress):
    """Memory-less one-pass recursion (module docstring); returns a :class:`~dmft.Result`."""
    t_start = time.perf_counter()
    T, p, k = problem.steps, problem.p, problem.k
    # numpy scalars: an overflow (eta far too large) gives inf, caught below as a divergence
    alpha, eta = np.float64(problem.alpha), np.float64(problem.eta)
    with np.errstate(over="ignore"):
        decay = 1.0 - eta * np.float64(problem.ridge)
    n_b = T + 1                                    # alpha_tot = alpha (T+1) in the general form
    act = get_activation(problem.activation)
    loss, trained, sphere = problem_codes(problem)
    a_rep = np.broadcast_to(problem.a, (G, T + 1, p)).copy()       # a(t) per replica
    bounds = np.linspace(0, N, G + 1).round().astype(np.int64)
    counts = np.diff(bounds).astype(np.float64)
    K = Kernels.zeros(G, T, p, k)
    K.M[:, 0] = problem.M0
    K.C_theta[:, 0, 0] = problem.C0
    K.Psi[:, 0] = np.eye(p)
    losses = np.full((G, T + 1, 2), np.nan)
    status, message, completed = "ok", "", T
    t_sample = t_compile = 0.0
    eye = np.eye(p)
    # overflow is not reported by numpy: every step is checked and a divergence reported
    with np.errstate(over="ignore", invalid="ignore"):
        for t in progress_bar(progress, "one-pass", N * (T + 1), iterable=range(T + 1),
                              desc="DMFT one-pass", unit="step"):
            C = K.C_theta[:, t, t]
            if not np.all(np.isfinite(C)) or np.abs(C).max() > DIVERGENCE:
                status, message, completed = "diverged", f"step {t}: C_theta diverged", t - 1
                break
            C_half, C_ihalf = _sqrtm(C, t)
            z = rng.standard_normal((N, k))
            y = problem.labels(z, rng.standard_normal(N))
            zeta = rng.standard_normal((N, p))
            gg, S = np.zeros((G, p, p)), np.zeros((G, p, p))
            gz, lo, la = np.zeros((G, p, k)), np.zeros(G), np.zeros((G, p))
            args = (act.code, loss, trained, np.ascontiguousarray(a_rep[:, t]), z, y, zeta,
                    bounds, np.ascontiguousarray(C_half), np.ascontiguousarray(K.M[:, t]), gg,
                    gz, S, lo, la)
            if t == 0:          # compiled (or loaded) before the first step, and said so
                with compilation.notice(progress) as notice, compilation.watch(notice) as w:
                    compilation.compile_for(_step, 0, G, *args)
                t_compile = w.seconds
            t0 = time.perf_counter()
            over_groups(_step, G, *args)
            t_sample += time.perf_counter() - t0
            gg, S = gg / counts[:, None, None], S / counts[:, None, None]
            gz = gz / counts[:, None, None]
            losses[:, t, 0] = losses[:, t, 1] = lo / counts
            K.C_g[:, t, t] = gg / n_b
            R = S @ C_ihalf                                   # E[dg/dh], for reporting only
            K.R_g[:, t, t] = R / n_b
            if t == T:
                break
            K.M[:, t + 1] = decay * K.M[:, t] - eta * alpha * gz
            SC = S @ C_half
            K.C_theta[:, t + 1, t + 1] = decay ** 2 * C - decay * eta * alpha * (
                SC + swap(SC)) + (eta * alpha) ** 2 * S @ swap(S) \
                + eta ** 2 * alpha * gg
            A = decay * eye - eta * alpha * R                 # theta(t+1) = A theta(t) - eta xi(t)
            K.C_theta[:, t + 1, :t + 1] = A[:, None] @ K.C_theta[:, t, :t + 1]
            K.C_theta[:, :t + 1, t + 1] = swap(K.C_theta[:, t + 1, :t + 1])
            K.Psi[:, t + 1] = A @ K.Psi[:, t]
            K.R_theta[:, t + 1, :t] = A[:, None] @ K.R_theta[:, t, :t]
            K.R_theta[:, t + 1, t] = -eta * eye
            if sphere:
                _normalize(K, t + 1)
            if trained:
                a_rep[:, t + 1] = readout_step(a_rep[:, t], la / counts[:, None],
                                               *readout_rates(problem), alpha)
            if not np.all(np.isfinite(lo)):
                status, message, completed = "diverged", f"step {t}: non-finite losses", t - 1
                break
            if not (np.all(np.isfinite(K.M[:, t + 1]))
                    and np.all(np.isfinite(K.C_theta[:, t + 1, t + 1]))):
                status, message, completed = "diverged", f"step {t + 1}: non-finite M or " \
                                                         f"C_theta", t
                break
    K.a = a_rep                                      # read by Result.from_replicas
    total = time.perf_counter() - t_start - t_compile
    timings = {"total": total, "compile": t_compile, "sample_side": t_sample,
               "weight_side": total - t_sample}
    nan = np.full(T + 1, np.nan)
    return Result.from_replicas(
        problem=problem, kernels=K, losses=losses, completed=completed, status=status,
        message=message, seed=seed, n_paths=N, n_groups=G, response="stein",
        timings=timings, residuals={"omega_cov": nan, "g_innovation": nan.copy()})
