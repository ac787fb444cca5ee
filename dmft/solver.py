"""`dmft.solve`: causal forward sweep of the discrete-time DMFT (THEORY.md section 2).

Scheme
------
At each step t = 0..T: the weight side (:class:`dmft.weight.WeightSide`) gives Psi(t),
R_theta(t, .), C_theta(t, .) and the Cholesky row L(t, .) from kernels at earlier times; every
path draws zeta(t) and so omega(t) *conditionally on its own past*; the Numba kernels of
:mod:`dmft.kernels` compute h(t), g(t) and the Monte Carlo sums for C_g(t, .), R_g(t, .),
E[g(t) z*^T] and the losses; then M(t+1).  Causality makes the sweep exact: there is no outer
fixed-point iteration, and the only self-consistency residuals are Monte Carlo ones, reported
in ``Result.residuals``.

Error bars (decision recorded here)
-----------------------------------
The N paths are split into G independent *replicas* (default 32) of N/G paths.  Each replica
solves the DMFT with its own kernels, so its outputs at step t carry the Monte Carlo noise of
every earlier step, propagated through the dynamics.  Reported values are replica means and
errors are their standard errors, std / sqrt(G): an honest error for the propagated noise at
the same cost as a single run.  The price is a bias of order G/N (nonlinear estimators on N/G
paths) against a statistical error of order 1/sqrt(N): negligible when N >> G^2.

Response functions (decision recorded here)
-------------------------------------------
``response="stein"`` (valid for any activation, ReLU included): Gaussian integration by parts,
S(t, u) = E[g(t) zeta(u)^T] = sum_{s=u..t} R_g(t, s) L(s, u), solved backwards with innovations
below ``stein_rtol`` (1e-3) of the largest one treated as zero (THEORY.md pitfall).
``response="pathwise"`` (smooth activations): exact per-path derivatives by reverse mode, cost
O(t^2 p^3) per path and step instead of O(t p^2).
The default ``"auto"`` takes "pathwise" where sigma is smooth and "stein" otherwise, as
THEORY.md recommends.  Reason, measured: C_theta is a moment matrix of the GD operator, so when
GD converges its innovations L(t, t) decay geometrically (a factor ~7 per step for a linear
student at alpha = 0.5), the back-solve divides Monte Carlo noise by them, and Stein on the
linear oracle (alpha = 0.5, ridge 0.1, 2e5 paths in 32 replicas) leaves the exact curves after
~17 steps whatever the truncation; pathwise matches them over 40 steps.  For ReLU (the paper's
case, few steps, innovations O(1)) Stein is the only option and is accurate.
"""
import math
import time

import numpy as np
from tqdm.auto import tqdm

from . import kernels
from .activations import get_activation
from .errors import ProblemError
from .problem import Problem
from .result import Result
from .weight import WeightSide

RESPONSES = ("auto", "stein", "pathwise")
DIVERGENCE = 1e10   # |C_theta(t, t)| or |M| beyond this counts as divergence
# C_theta is PSD by construction (a Gram matrix of the weight-side process), so a negative
# innovation eigenvalue is round-off: clipped to 0 and reported in the residual "cholesky";
# only a gross violation (relative to C_theta(t, t)) is treated as a failure.
NONPSD = 1e-3


def _check_solver_args(problem, n_paths, seed, response, n_groups, stein_rtol):
    if not isinstance(problem, Problem):
        raise ProblemError("problem", f"expected a dmft.Problem, got {type(problem).__name__}")
    for name, value, lo in (("n_paths", n_paths, 2), ("n_groups", n_groups, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or \
                (isinstance(value, float) and not value.is_integer()):
            raise ProblemError(name, f"expected an integer, got {value!r}")
        if int(value) < lo:
            raise ProblemError(name, f"must be >= {lo}, got {value}")
    if int(n_paths) < 2 * int(n_groups):
        raise ProblemError("n_paths", f"must be at least 2 * n_groups = {2 * int(n_groups)}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ProblemError("seed", f"expected a non-negative integer or None, got {seed!r}")
    if response not in RESPONSES:
        raise ProblemError("response", f"unknown estimator {response!r}; choose one of {RESPONSES}")
    if response == "pathwise" and not get_activation(problem.activation).smooth:
        raise ProblemError("response", f"the pathwise estimator needs a smooth activation; "
                                       f"{problem.activation} has none (use 'stein')")
    if not (isinstance(stein_rtol, (int, float)) and 0 <= stein_rtol < 1):
        raise ProblemError("stein_rtol", f"must be in [0, 1), got {stein_rtol!r}")


def _draw_samples(problem, rng, N):
    """z* ~ N(0, I_k), y = f*(z*) + sqrt(Delta) eps, checked for finiteness."""
    z = rng.standard_normal((N, problem.k))
    eps = rng.standard_normal(N)
    y = problem.target(z) + math.sqrt(problem.noise) * eps
    if not np.all(np.isfinite(y)):
        bad = int(np.sum(~np.isfinite(y)))
        raise ProblemError("target", f"{problem.target.expr!r} is not finite at {bad} of {N} "
                                     f"Gaussian inputs (e.g. log or sqrt of a negative number)")
    return np.ascontiguousarray(z), np.ascontiguousarray(y)


def solve(problem, n_paths=200_000, seed=None, progress="auto", response="auto",
          n_groups=32, stein_rtol=1e-3):
    """Solve the DMFT of ``problem`` by Monte Carlo over ``n_paths`` sample-side paths.

    Parameters
    ----------
    problem : Problem
    n_paths : int
        Number of Monte Carlo paths (split into ``n_groups`` independent replicas).
    seed : int or None
        Seed of all random draws; None draws one (recorded in the result).
    progress : bool or "auto"
        tqdm progress bar over steps; "auto" shows it for runs expected to take over ~2 s.
    response : {"auto", "stein", "pathwise"}
        Estimator of R_g (see module docstring); "auto" is "pathwise" for smooth activations
        and "stein" otherwise.
    n_groups : int
        Number of independent replicas used for the error bars.
    stein_rtol : float
        Relative threshold below which innovations are dropped in the Stein back-solve.

    Returns
    -------
    Result
    """
    _check_solver_args(problem, n_paths, seed, response, n_groups, stein_rtol)
    if response == "auto":
        response = "pathwise" if get_activation(problem.activation).smooth else "stein"
    t_start = time.perf_counter()
    N, G, T, p, k = int(n_paths), int(n_groups), problem.steps, problem.p, problem.k
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    seed = int(seed)
    rng = np.random.default_rng(seed)
    act = get_activation(problem.activation)
    z, y = _draw_samples(problem, rng, N)
    a = np.ascontiguousarray(problem.a)
    bounds = np.linspace(0, N, G + 1).round().astype(np.int64)
    counts = np.diff(bounds).astype(np.float64)

    W = WeightSide(G, T, p, k, problem.alpha, problem.eta, problem.ridge, problem.C0,
                   problem.M0, stein_rtol=stein_rtol)
    zeta = np.empty((T + 1, N, p))
    g_hist = np.zeros((T + 1, N, p))
    D_hist = np.zeros((T + 1, N, p, p)) if response == "pathwise" else None
    losses = np.full((G, T + 1, 2), np.nan)
    res_omega = np.full(T + 1, np.nan)
    res_stein = np.full(T + 1, np.nan)
    res_chol = np.full(T + 1, np.nan)
    status, message, completed = "ok", "", T
    t_weight = t_sample = 0.0

    show = progress if progress != "auto" else N * (T + 1) ** 2 * p * p > 2e9
    bar = tqdm(total=T + 1, desc="DMFT", unit="step", disable=not show, leave=False)
    try:
        for t in range(T + 1):
            t0 = time.perf_counter()
            min_eig = W.advance(t)
            diag = W.C_theta[:, t, t]
            if not np.all(np.isfinite(diag)) or np.abs(diag).max() > DIVERGENCE:
                status, message = "diverged", f"C_theta({t},{t}) diverged (eta too large?)"
                break
            if min_eig < -NONPSD:
                status, message = "non-psd", f"C_theta is not PSD at step {t} " \
                                             f"(innovation eigenvalue {min_eig:.3g})"
                break
            res_chol[t] = W.factor_residual(t)
            rng.standard_normal(out=zeta[t])
            L_row = np.ascontiguousarray(W.L[:, t, :t + 1])
            R_row = np.ascontiguousarray(W.R_theta[:, t, :t])
            M_t = np.ascontiguousarray(W.M[:, t])
            Cg = np.zeros((G, t + 1, p, p))
            Rs = np.zeros((G, t + 1, p, p))
            gz = np.zeros((G, p, k))
            om2 = np.zeros((G, p, p))
            lo = np.zeros((G, 2))
            t1 = time.perf_counter()
            if response == "stein":
                kernels.step_stein(t, act.code, a, z, y, zeta, g_hist, bounds, L_row, R_row, M_t,
                                   Cg, Rs, gz, om2, lo)
            else:
                kernels.step_pathwise(t, act.code, a, z, y, zeta, g_hist, D_hist, bounds, L_row,
                                      R_row, W.R_theta, M_t, Cg, Rs, gz, om2, lo)
            t2 = time.perf_counter()
            c = counts[:, None, None, None]
            W.set_C_g_row(t, Cg / c)
            if response == "stein":
                res_stein[t] = W.stein_backsolve(t, Rs / c)
            else:
                W.R_g[:, t, :t + 1] = Rs / c
            losses[:, t] = lo / counts[:, None]
            # pooled check that the drawn omega(t) has covariance C_theta(t, t) (MC-sized)
            dev = om2.sum(axis=0) - np.einsum("g,gij->ij", counts, diag)
            res_omega[t] = float(np.abs(dev).max() / (N * max(np.abs(diag).max(), 1e-300)))
            if t < T:
                W.update_M(t, gz / counts[:, None, None])
            t_weight += (t1 - t0) + (time.perf_counter() - t2)
            t_sample += t2 - t1
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(W.M[:, min(t + 1, T)]))
                    and np.all(np.isfinite(W.R_g[:, t, :t + 1]))):
                status, message = "diverged", f"non-finite values at step {t} (eta too large?)"
                break
            bar.update(1)
        else:
            t = T + 1
    finally:
        bar.close()
    if status != "ok":
        completed = t - 1
        message = f"step {t}: {message}"
    timings = {"total": time.perf_counter() - t_start, "weight_side": t_weight,
               "sample_side": t_sample}
    return Result.from_replicas(
        problem=problem, W=W, losses=losses, completed=completed, status=status,
        message=message, seed=seed, n_paths=N, n_groups=G, response=response,
        timings=timings, residuals={"omega_cov": res_omega, "stein_backsolve": res_stein,
                                         "cholesky": res_chol})
