"""`dmft.solve`: causal forward sweep of the discrete-time DMFT (THEORY.md section 2).

Scheme
------
At each step t = 0..T: the weight side (:class:`dmft.weight.WeightSide`) advances P(t) and
B(t, .) (Psi and R_theta multiplied by factors of the driving covariances) and C_theta(t, .)
from kernels at earlier times; every path draws one new Gaussian innovation, so omega(t) is
sampled *conditionally on the path's own past*; the Numba kernels of :mod:`dmft.kernels`
compute h(t), g(t) and the Monte Carlo sums for C_g(t, .), the response products, E[g(t) z*^T]
and the losses; then M(t+1).  Causality makes the sweep exact: there is no outer fixed-point
iteration, and the self-consistency residuals (Monte Carlo and round-off) are reported in
``Result.residuals``: ``omega_cov`` (empirical covariance of the drawn omega(t) against
C_theta(t, t), relative) and ``g_innovation`` (what the re-orthogonalised innovation of g(t)
corrected in the cheap estimate of it, relative to C_g).

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
``response="stein"`` (default, any activation, ReLU included): Gaussian integration by parts
with respect to the whitened drivers of omega gives directly the products sum_u R_g(t, u) P(u)
and sum_u R_g(t, u) B(u, v) that the weight side needs, without ever dividing by an innovation
(see :mod:`dmft.weight`): THEORY.md's pitfall (a back-solve that amplifies Monte Carlo noise by
1/innovation) does not arise, and the linear oracle holds over 40 steps at alpha = 0.5.
``response="pathwise"`` (smooth activations, the cross-check): exact per-path derivatives by
reverse mode, D = dg/dh including sigma''; cost O(t^2 p^3) per path and step instead of
O(t p^2).  R_g, Psi and R_theta are reported in both cases (reconstructed for Stein).
"""
import time

import numpy as np
from tqdm.auto import tqdm

from .activations import get_activation
from .checks import check_solver_memory, integer
from .errors import ProblemError
from .onepass import solve_one_pass
from .problem import Problem
from .result import Result
from .shard import Shard, group_bounds
from .weight import WeightSide, _flat

RESPONSES = ("stein", "pathwise")
DIVERGENCE = 1e10   # |C_theta(t, t)| or |M| beyond this counts as divergence


def _check_solver_args(problem, n_paths, seed, response, n_groups, stein_rtol, method="auto",
                       sharded=False):
    if not isinstance(problem, Problem):
        raise ProblemError("problem", f"expected a dmft.Problem, got {type(problem).__name__}")
    n_paths, n_groups = integer("n_paths", n_paths, 2), integer("n_groups", n_groups, 2)
    if n_paths < 2 * n_groups:
        raise ProblemError("n_paths", f"must be at least 2 * n_groups = {2 * n_groups}")
    if seed is not None:
        integer("seed", seed, 0)
    if response not in RESPONSES:
        raise ProblemError("response", f"unknown estimator {response!r}; choose one of {RESPONSES}")
    if response == "pathwise" and not get_activation(problem.activation).smooth:
        raise ProblemError("response", f"the pathwise estimator needs a smooth activation; "
                                       f"{problem.activation} has none (use 'stein')")
    if not (isinstance(stein_rtol, (int, float)) and 0 <= stein_rtol < 1):
        raise ProblemError("stein_rtol", f"must be in [0, 1), got {stein_rtol!r}")
    check_solver_memory(problem, n_paths, n_groups, response, method, sharded)


def _make_shards(problem, seed, N, G, response, client, n_shards, history):
    """One in-process shard, or shards of whole groups resident on Dask workers (actors)."""
    pdict = problem.to_dict()
    if client is None:
        return [(0, G, Shard(pdict, seed, N, G, 0, G, response, history))]
    n = n_shards or max(1, len(client.scheduler_info().get("workers", {})))
    n = min(int(n), G)
    edges = np.linspace(0, G, n + 1).round().astype(int)
    futures = [(g0, g1, client.submit(Shard, pdict, seed, N, G, int(g0), int(g1), response,
                                      history, actor=True, pure=False))
               for g0, g1 in zip(edges[:-1], edges[1:])]
    return [(g0, g1, f.result()) for g0, g1, f in futures]


def _step_all(shards, t, P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, R_theta):
    """Run step t on every shard (concurrently for actors) and join the per-group sums."""
    calls = []
    for g0, g1, sh in shards:
        sl = slice(g0, g1)
        calls.append(sh.step(t, P_t[sl], B_row[sl], K_prev[sl], c_prev[sl], K_inv_prev[sl],
                             M_t[sl], None if R_theta is None else R_theta[sl]))
    outs = [c.result() if hasattr(c, "result") else c for c in calls]
    return tuple(None if outs[0][i] is None else np.concatenate([o[i] for o in outs], axis=0)
                 for i in range(len(outs[0])))


def solve(problem, n_paths=200_000, seed=None, progress="auto", response="stein",
          n_groups=32, stein_rtol=1e-3, method="auto", client=None, n_shards=None,
          history="float64"):
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
    response : {"stein", "pathwise"}
        Estimator of the responses (see module docstring); "pathwise" needs a smooth activation.
    n_groups : int
        Number of independent replicas used for the error bars.
    stein_rtol : float
        Innovations below this fraction of the largest are dropped when R_g and R_theta are
        reconstructed for reporting (Stein estimator; the dynamics never uses them).

    method : {"auto", "general"}
        "auto" solves one-pass GD with its dedicated memory-less recursion
        (:mod:`dmft.onepass`, O(n_paths) memory); "general" forces the general-schedule DMFT
        (every schedule as selection patterns s(t), THEORY.md section 3).
    client : dask.distributed.Client or None
        Shard the Monte Carlo paths over the client's workers (``n_shards`` shards of whole
        replica groups, default one per worker), resident there as actors; per step only the
        coefficients and per-group sums travel.  Same seed, same result as in one process.
    n_shards : int or None
        Number of shards with a client (at most ``n_groups``).
    history : {"float64", "float32"}
        Storage of the whitened innovations kappa (the largest array: T p n_paths numbers);
        float32 halves it (eta is always float32, drawn in float32).  Measured cost: see README.

    Returns
    -------
    Result
    """
    _check_solver_args(problem, n_paths, seed, response, n_groups, stein_rtol, method,
                       client is not None)
    t_start = time.perf_counter()
    N, G, T, p, k = int(n_paths), int(n_groups), problem.steps, problem.p, problem.k
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    seed = int(seed)
    if method not in ("auto", "general"):
        raise ProblemError("method", f"must be 'auto' or 'general', got {method!r}")
    if method == "auto" and problem.plan.one_pass:
        if response != "stein":
            raise ProblemError("response", "the one-pass recursion uses the Stein estimator; "
                                           "use method='general' for the pathwise one")
        return solve_one_pass(problem, N, G, seed, np.random.default_rng(seed), progress)
    bounds = group_bounds(N, G)
    counts = np.diff(bounds).astype(np.float64)
    alpha = problem.alpha_tot                    # = alpha for multi-pass (THEORY.md section 3)
    W = WeightSide(G, T, p, k, alpha, problem.eta, problem.ridge, problem.C0,
                   problem.M0, pathwise=(response == "pathwise"))
    W.REPORT_RTOL = stein_rtol
    if history not in ("float64", "float32"):
        raise ProblemError("history", f"must be 'float64' or 'float32', got {history!r}")
    shards = _make_shards(problem, seed, N, G, response, client, n_shards, history)
    losses = np.full((G, T + 1, 2), np.nan)
    res_omega = np.full(T + 1, np.nan)
    res_innov = np.full(T + 1, np.nan)
    status, message, completed = "ok", "", T
    t_weight = t_sample = 0.0

    show = progress if progress != "auto" else N * (T + 1) ** 2 * p * p > 2e9
    bar = tqdm(total=T + 1, desc="DMFT", unit="step", disable=not show, leave=False)
    try:
        for t in range(T + 1):
            t0 = time.perf_counter()
            W.advance(t)
            diag = W.C_theta[:, t, t]
            if not np.all(np.isfinite(diag)) or np.abs(diag).max() > DIVERGENCE:
                status, message = "diverged", f"C_theta({t},{t}) diverged (eta too large?)"
                break
            P_t = np.ascontiguousarray(W.P[:, t])
            B_row = W.B_row(t)
            K_prev = W.K_row(t - 1, t - 1) if t >= 1 else np.zeros((G, 0, p, p))
            if t < 2:               # nothing to whiten yet (c_prev, K_inv_prev: kappa(t-2))
                c_prev, K_inv_prev = np.zeros((G, 0, p, p)), np.zeros((G, p, p))
            M_t = np.ascontiguousarray(W.M[:, t])
            R_theta = W.R_theta if response == "pathwise" else None
            t1 = time.perf_counter()
            gg, gk, gz, om2, kk, cw, S_eps, S_eta, lo = _step_all(
                shards, t, P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, R_theta)
            t2 = time.perf_counter()
            c3, c4 = counts[:, None, None], counts[:, None, None, None]
            gk /= c4
            if t >= 1:      # re-orthogonalise and whiten r(t-1) (applied by the next pass)
                cw /= c4
                K_inv, res_innov[t - 1] = W.finalize_innovation(t - 1, kk / c3, cw)
                c_prev, K_inv_prev = cw, np.ascontiguousarray(K_inv)
                # E[g(t) kappa(t-1)^T] = (E[g(t) r^T] - sum_w E[g(t) kappa(w)^T] c(w)^T) K_inv
                gk[:, t - 1] = (gk[:, t - 1] - np.einsum("gwij,gwkj->gik", gk[:, :t - 1], cw)) \
                    @ K_inv
            W.set_g_row(t, gg / c3, gk)
            if response == "stein":
                W.S_eps[:, t] = S_eps / c3
                if t:
                    W.S_etaf[:, t, :, :t * p] = _flat(S_eta / c4)
            else:
                W.R_g[:, t, :t + 1] = S_eps / c4          # the pathwise R_g(t, .) sums
            with np.errstate(invalid="ignore", divide="ignore"):
                losses[:, t, 0] = lo[:, 0] / lo[:, 2]      # mean over the batch used at step t
            losses[:, t, 1] = lo[:, 1] / counts
            # pooled Monte Carlo checks: omega(t) has covariance C_theta(t, t); kappa(t-1) is
            # white on the kept innovations (both O(1/sqrt(N)))
            dev = om2.sum(axis=0) - np.einsum("g,gij->ij", counts, diag)
            res_omega[t] = float(np.abs(dev).max() / (N * max(np.abs(diag).max(), 1e-300)))
            if t < T:
                W.update_M(t, gz / c3)
            t_weight += (t1 - t0) + (time.perf_counter() - t2)
            t_sample += t2 - t1
            if not (np.all(np.isfinite(lo[:, 1])) and np.all(np.isfinite(W.M[:, min(t + 1, T)]))
                    and np.all(np.isfinite(gg))):
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
    t0 = time.perf_counter()
    if completed >= 0:
        W.reconstruct(completed)
    timings = {"total": time.perf_counter() - t_start, "weight_side": t_weight
               + time.perf_counter() - t0, "sample_side": t_sample}
    return Result.from_replicas(
        problem=problem, W=W, losses=losses, completed=completed, status=status,
        message=message, seed=seed, n_paths=N, n_groups=G, response=response,
        timings=timings, residuals={"omega_cov": res_omega, "g_innovation": res_innov})
