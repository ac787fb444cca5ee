"""`dmft.solve`: causal forward sweep of the discrete-time DMFT (docs: theory section 2).

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
paths) against a statistical error of order 1/sqrt(N): negligible when N >> G^2.  The largest such bias, that of the Stein averages at long
horizons (O(t p / (N/G)), growing with t), is removed by drawing each replica's innovations nu
exactly orthonormal on its paths (eq. (3.19), :func:`dmft.draws.orthonormal_nu`); a replica
therefore needs steps*p + k + p + 2 paths at least.

Response functions (decision recorded here)
-------------------------------------------
``response="stein"`` (default, any activation, ReLU included): Gaussian integration by parts
with respect to the whitened drivers of omega gives directly the products sum_u R_g(t, u) P(u)
and sum_u R_g(t, u) B(u, v) that the weight side needs, without ever dividing by an innovation
(see :mod:`dmft.weight`): the pitfall of eq. (3.17) (a back-solve that amplifies Monte Carlo noise by
1/innovation) does not arise, and the linear oracle holds over 40 steps at alpha = 0.5.
``response="pathwise"`` (smooth activations, the cross-check): exact per-path derivatives by
reverse mode, D = dg/dh including sigma''; cost O(t^2 p^3) per path and step instead of
O(t p^2).  R_g, Psi and R_theta are reported in both cases (reconstructed for Stein, when a
result's kernels are first read: :mod:`dmft.report`).
"""
import time

import numpy as np

from . import compilation
from .activations import get_activation
from .beyond import problem_codes, readout_rates, readout_step
from .checks import check_solver_memory
from .draws import nu_columns
from .errors import DIVERGENCE, PSD_RTOL_HISTORY, ProblemError
from .onepass import solve_one_pass
from .options import SOLVER, draw_seed, is_client
from .progress import progress_bar
from .result import Result
from .shard import Shard, StepSums, group_bounds
from .weight import WeightSide


def solver_settings(problem, **options):
    """The options of :func:`dmft.solve` for ``problem``, checked: every value against its
    declaration (:data:`dmft.options.SOLVER`), then what depends on the problem or on several
    options.  An option that would have no effect with the others is refused, not ignored.
    Returns the complete dict (defaults filled in; ``seed`` may be None).  The single door of
    the solver's options: :func:`dmft.solve`, the command line, sweeps and the learnability check
    all come through here.

    Parameters
    ----------
    problem : Problem
        The problem the options are for.
    **options
        Any of the options of :func:`dmft.solve`.

    Returns
    -------
    dict
        Every option of :func:`dmft.solve`, checked and converted.
    """
    opts = SOLVER.complete(problem, options)
    if opts["n_paths"] < 2 * opts["n_groups"]:
        raise ProblemError("n_paths", f"must be at least 2 * n_groups = {2 * opts['n_groups']}")
    if opts["response"] == "pathwise":
        if not get_activation(problem.activation).smooth:
            raise ProblemError("response", f"the pathwise estimator needs a smooth activation; "
                                           f"{problem.activation} has none (use 'stein')")
        if opts["stein_rtol"] != SOLVER["stein_rtol"].default:
            raise ProblemError("stein_rtol", "only the Stein estimator reconstructs responses; "
                                             "the pathwise estimator computes them exactly")
    client = opts["client"]
    if client is not None and not is_client(client):
        raise ProblemError("client", f"expected a dask.distributed.Client, got "
                                     f"{type(client).__name__}")
    if opts["n_shards"] is not None and client is None:
        raise ProblemError("n_shards", "shards need a client (a dask.distributed.Client)")
    if opts["n_shards"] is not None and opts["n_shards"] > opts["n_groups"]:
        raise ProblemError("n_shards", f"at most n_groups = {opts['n_groups']} (a shard holds "
                                       f"whole replica groups), got {opts['n_shards']}")
    if opts["method"] == "auto" and problem.plan.one_pass:
        why = "the one-pass recursion (method='auto' on a one-pass problem)"
        if opts["response"] != "stein":
            raise ProblemError("response", f"{why} uses the Stein estimator; use "
                                           f"method='general' for the pathwise one")
        if opts["history"] != SOLVER["history"].default:
            raise ProblemError("history", f"{why} keeps no history; use method='general' to "
                                          f"store one")
        if client is not None:
            raise ProblemError("client", f"{why} runs in one process with O(n_paths) memory; "
                                         f"use method='general' to shard it")
    check_solver_memory(problem, opts["n_paths"], opts["n_groups"], opts["response"],
                        opts["method"], client is not None, opts["history"])
    general = not (opts["method"] == "auto" and problem.plan.one_pass)
    need = nu_columns(problem)
    n_min = int(np.diff(group_bounds(opts["n_paths"], opts["n_groups"])).min())
    if general and n_min < need:
        raise ProblemError("n_paths", f"each of the n_groups = {opts['n_groups']} replicas needs "
                                      f"steps*p + k + p + 2 = {need} paths or more (its "
                                      f"innovations are made orthonormal on them), got {n_min}: "
                                      f"use n_paths >= {need * opts['n_groups']} or fewer "
                                      f"n_groups")
    return opts


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


def _compile(shards, notice):
    """Compile the step kernel of every shard (on its worker for actors) before the sweep,
    calling ``notice`` when a compilation starts; returns the seconds spent compiling (the
    slowest shard's)."""
    return max(_results([sh.compile(notice) if isinstance(sh, Shard) else sh.compile()
                         for _, _, sh in shards]))


def _close(shards):
    """Hand every shard's histories to the next solve of its process (:meth:`Shard.close`)."""
    _results([sh.close() for _, _, sh in shards])


def _step_all(shards, t, coef):
    """Run step t on every shard (concurrently for actors) and join their per-group sums."""
    return StepSums.join(_results([sh.step(t, coef.groups(g0, g1)) for g0, g1, sh in shards]))


def _results(calls):
    """The values of calls made on every shard: an actor's call returns a future (all were
    started before the first is waited for), an in-process shard's its value."""
    return [c.result() if hasattr(c, "result") else c for c in calls]


def solve(problem, **options):
    """Solve the DMFT of ``problem`` by Monte Carlo over ``n_paths`` sample-side paths.

    Every option is declared once in :data:`dmft.options.SOLVER` and checked, for every
    schedule, by :func:`~dmft.solver.solver_settings` before any work.

    Parameters
    ----------
    problem : Problem
        The learning problem.
{options}

    Returns
    -------
    Result
        Replica means and standard errors of the order parameters, losses and kernels, with the
        diagnostics (status, message, timings, residuals).
    """
    opts = solver_settings(problem, **options)
    t_start = time.perf_counter()
    N, G, T, p, k = opts["n_paths"], opts["n_groups"], problem.steps, problem.p, problem.k
    seed = draw_seed() if opts["seed"] is None else opts["seed"]
    response, progress = opts["response"], opts["progress"]
    if opts["method"] == "auto" and problem.plan.one_pass:
        return solve_one_pass(problem, N, G, seed, np.random.default_rng(seed), progress)
    bounds = group_bounds(N, G)
    counts = np.diff(bounds).astype(np.float64)
    alpha = problem.alpha_tot                    # = alpha for multi-pass (eqs. (4.1), (4.6))
    _, trained, sphere = problem_codes(problem)
    t_weight = time.perf_counter()               # its rows' memory is committed here
    weight = WeightSide(G, T, p, k, alpha, problem.eta, problem.ridge, problem.C0,
                        problem.M0, pathwise=(response == "pathwise"),
                        report_rtol=opts["stein_rtol"], sphere=sphere,
                        psd_rtol=PSD_RTOL_HISTORY[opts["history"]])
    t_weight = time.perf_counter() - t_weight
    a_rep = np.broadcast_to(problem.a, (G, T + 1, p)).copy()       # a(t) per replica
    with compilation.notice(progress) as notice:
        # the setup's own small kernels (drawing, orthonormalisation) compile here on a
        # first run: that time is counted as compile time, not setup
        with compilation.watch(notice) as watch:
            t_setup = time.perf_counter()
            shards = _make_shards(problem, seed, N, G, response, opts["client"],
                                  opts["n_shards"], opts["history"])
            t_setup = time.perf_counter() - t_setup
        t_compile = _compile(shards, notice)
    t_setup -= watch.seconds
    t_compile += watch.seconds
    losses = np.full((G, T + 1, 2), np.nan)
    res_omega = np.full(T + 1, np.nan)
    res_innov = np.full(T + 1, np.nan)
    status, message, completed = "ok", "", T
    t_sample = 0.0

    bar = progress_bar(progress, "dmft", N * (T + 1) ** 2 * p * p, total=T + 1, desc="DMFT",
                       unit="step")
    try:
        for t in range(T + 1):
            t0 = time.perf_counter()
            weight.advance(t)
            if sphere and t >= 1:
                weight.normalize(t)                  # eqs. (7.8)-(7.9)
            diag = weight.C_diag[:, t]
            if not np.all(np.isfinite(diag)) or np.abs(diag).max() > DIVERGENCE:
                status, message = "diverged", f"C_theta({t},{t}) diverged (eta too large?)"
                break
            coef = weight.coefficients(t)
            if trained:
                coef.a_t = a_rep[:, t]
            t1 = time.perf_counter()
            sums = _step_all(shards, t, coef)
            t2 = time.perf_counter()
            change = weight.ingest(t, sums, counts)
            if t >= 1:
                res_innov[t - 1] = change
            lo = sums.losses
            with np.errstate(invalid="ignore", divide="ignore"):
                losses[:, t, 0] = lo[:, 0] / lo[:, 2]      # mean over the batch used at step t
            losses[:, t, 1] = lo[:, 1] / counts
            # pooled Monte Carlo check: omega(t) has covariance C_theta(t, t) (O(1/sqrt(N)))
            dev = sums.om2.sum(axis=0) - np.einsum("g,gij->ij", counts, diag)
            res_omega[t] = float(np.abs(dev).max() / (N * max(np.abs(diag).max(), 1e-300)))
            if t < T:
                weight.update_M(t, sums.gz / counts[:, None, None])
                if trained:                          # eq. (7.5)
                    a_rep[:, t + 1] = readout_step(a_rep[:, t], sums.la / counts[:, None],
                                                   *readout_rates(problem), alpha)
            t_weight += (t1 - t0) + (time.perf_counter() - t2)
            t_sample += t2 - t1
            if not (np.all(np.isfinite(lo[:, 1])) and np.all(np.isfinite(weight.M[:, min(t + 1, T)]))
                    and np.all(np.isfinite(sums.gg))):
                status, message = "diverged", f"non-finite values at step {t} (eta too large?)"
                break
            bar.update(1)
        else:
            t = T + 1
    finally:
        bar.close()
    _close(shards)
    if status != "ok":
        completed = t - 1
        message = f"step {t}: {message}"
    kernels = weight.report(completed)
    kernels.a = a_rep                                # read by Result.from_replicas
    timings = {"total": time.perf_counter() - t_start - t_compile, "compile": t_compile,
               "weight_side": t_weight, "sample_side": t_sample, "setup": t_setup}
    return Result.from_replicas(
        problem=problem, kernels=kernels, losses=losses, completed=completed,
        status=status, message=message, seed=seed, n_paths=N, n_groups=G, response=response,
        timings=timings, residuals={"omega_cov": res_omega, "g_innovation": res_innov})


solve.__signature__ = SOLVER.signature()
solve.__doc__ = solve.__doc__.replace("{options}", SOLVER.numpydoc())
