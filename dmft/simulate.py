"""Finite-size gradient descent with exactly the conventions of the theory's section 1 (eqs. (1.1)-(1.10)).

* Inputs x ~ N(0, I_d), n = round(alpha d) samples; target directions W* (k x d) with
  W* W*^T = d I_k; labels y = f*(W* x / sqrt d) + sqrt(Delta) eps.
* W(0) = M0 W* + L U sqrt(d), U (p x d) orthonormal rows orthogonal to W*, L L^T = Q0 - M0 M0^T:
  M(0) = M0 and Q(0) = Q0 exactly (to round-off).
* GD with the gradient summed over the samples used at step t (the schedule of the problem,
  :mod:`dmft.schedules`: the full batch for multi-pass, a fresh batch for one-pass and reuse,
  a reshuffled fraction of the data set for mini-batch SGD):
  W <- (1 - eta lambda) W - eta G^T X_t / sqrt(d), G = (yhat - y) a * sigma'(H), H = X_t W^T / sqrt(d).
  The train loss at step t is the mean loss over the samples used at step t.
* Test error (decision recorded here): the population loss E_x[l(yhat, y)] of the problem's loss
  (eq. (7.1); for the square loss E[(yhat - y)^2 / 2]) is a function of (M, Q, a) only, since
  (h, z*) of a fresh x is exactly Gaussian with Cov [[Q, M], [M^T, I]].  It is evaluated by Monte
  Carlo over ``n_test`` Gaussian samples drawn per seed (so its small Monte Carlo error is part of
  the seed-to-seed spread and of ``test_error_err``); label noise included.  With +-1 labels the
  class error P(y yhat <= 0) (eq. (7.3)) comes from the same samples.
* Other losses (eq. (7.1)): G = l'(yhat, y) a * sigma'(H), eq. (7.2).  A trained readout moves on
  the same forward pass, a <- (1 - eta_a lambda_a) a - (eta_a / d) sigma(H)^T l', eq. (7.4): the
  sum over the samples used at step t divided by d, as the first layer's gradient is summed.
  Spherical GD puts every row back on |w_j|^2 = d after each step, eq. (7.7) (Q_jj = 1 to
  round-off: 1e-15 in float64, 1e-7 in float32).

Seeds run in parallel processes (joblib/loky, one BLAS thread each); seed i uses
``SeedSequence(seed).spawn(n_seeds)[i]``, so results do not depend on ``n_jobs``.
"""
import math
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from .version import __version__
from .activations import get_activation
from .linalg import psd_factor
from .losses import loss_derivative, loss_value
from .errors import DIVERGENCE, PSD_RTOL, ProblemError, check_projection
from .problem import Problem
from .result import SimResult, mean_err
from .checks import MEMORY_HEADROOM, available_bytes
from .options import SIMULATION, draw_seed
from .progress import progress_bar

DTYPES = {"float64": np.float64, "float32": np.float32}
#: the arrays each run returns per step (and the SimResult keeps per seed)
PER_SEED = ("M", "Q", "train_loss", "test_error", "a")
#: and, for +-1 labels, the class error
#: Q - M M^T is PSD exactly; in float32 the teacher rows are orthonormal only to ~1e-7, so
#: the round-off left in it is larger (KernelProjectionWarning thresholds, relative to Q)
PSD_RTOL_SIM = {"float64": PSD_RTOL, "float32": 1e-5}


def initial_weights(problem, d, rng, dtype=np.float64):
    """(W*, W(0)) with W* W*^T = d I_k, M(0) = M0 and Q(0) = Q0 exactly."""
    p, k = problem.p, problem.k
    basis, _ = np.linalg.qr(rng.standard_normal((d, k + p)))        # orthonormal columns
    W_star = math.sqrt(d) * basis[:, :k].T
    U = basis[:, k:].T
    L, _ = psd_factor(problem.C0)                                    # L L^T = Q0 - M0 M0^T
    W0 = problem.M0 @ W_star + math.sqrt(d) * (L @ U)
    return W_star.astype(dtype), W0.astype(dtype)


def _overlaps(W, W_star, d):
    W = W.astype(np.float64)
    return W @ W_star.astype(np.float64).T / d, W @ W.T / d


def _test_error(problem, act, M, Q, a, zt, ut, eps_t):
    """Population loss given (M, Q, a): h = M z + (Q - M M^T)^{1/2} u for the per-seed samples,
    and the class error P(y yhat <= 0) (NaN unless the labels are +-1).  Also returns the most
    negative eigenvalue of Q - M M^T relative to the largest of Q, that clipping to zero
    corrected (round-off: Q - M M^T = W (I - W*^T W* / d) W^T / d)."""
    S, lam = psd_factor(Q - M @ M.T)
    h = zt @ M.T + ut @ S.T
    y = problem.target(zt) + math.sqrt(problem.noise) * eps_t
    top = float(np.abs(np.linalg.eigvalsh(Q)).max())
    corr = max(0.0, -float(lam[0])) / top if top > 0 else 0.0
    yhat = act.f(h) @ a
    cls = float(np.mean(y * yhat <= 0)) if problem.pm_labels else np.nan
    if problem.loss == "square":
        return 0.5 * float(np.mean((yhat - y) ** 2)), cls, corr
    return float(np.mean(loss_value(problem.loss, yhat, y))), cls, corr


def run_seed(problem_dict, d, seed_seq, dtype="float64", n_test=100_000, observer=None):
    """One finite-size GD run; returns per-step arrays and the status (picklable in and out).
    ``observer(t, W, W_star, a)``, if given, sees the weights at every step (before the update;
    for tests that need more than the order parameters, e.g. an actual refit on fresh data)."""
    problem = Problem.from_dict(problem_dict)
    act = get_activation(problem.activation)
    dt = DTYPES[dtype]
    rng = np.random.default_rng(seed_seq)
    T, p, k = problem.steps, problem.p, problem.k
    n = max(1, int(round(problem.alpha * d)))
    W_star, W = initial_weights(problem, d, rng, dt)
    sq = math.sqrt(d)

    def draw_batch():
        X = rng.standard_normal((n, d), dtype=dt)
        z = (X @ W_star.T).astype(np.float64) / sq
        return X, problem.labels(z, rng.standard_normal(n)).astype(dt)

    X, y = draw_batch()
    zt, ut = rng.standard_normal((n_test, k)), rng.standard_normal((n_test, p))
    eps_t = rng.standard_normal(n_test)
    plan = problem.plan.batches(rng, n, T)         # (data-set id, indices) per step
    current = plan[0][0]
    out = {"M": np.full((T + 1, p, k), np.nan), "Q": np.full((T + 1, p, p), np.nan),
           "train_loss": np.full(T + 1, np.nan), "test_error": np.full(T + 1, np.nan),
           "psd_correction": np.zeros(T + 1), "a": np.full((T + 1, p), np.nan),
           "class_error": np.full(T + 1, np.nan)}
    a = problem.a.astype(dt)
    decay = 1.0 - problem.eta * problem.ridge
    trained, sphere = problem.readout == "trained", problem.normalize == "sphere"
    if trained:
        decay_a, step_a = 1.0 - problem.eta_readout * problem.ridge_readout, problem.eta_readout / d
    status, message = "ok", ""
    for t in range(T + 1):
        M, Q = _overlaps(W, W_star, d)
        if not (np.all(np.isfinite(Q)) and np.abs(Q).max() < DIVERGENCE):
            status, message = "diverged", f"step {t}: weights diverged (eta too large?)"
            break
        if plan[t][0] != current:                  # a fresh batch (one-pass, reuse-R)
            X, y = draw_batch()
            current = plan[t][0]
        idx = plan[t][1]
        Xb, yb = (X, y) if idx is None else (X[idx], y[idx])   # mini-batch of the epoch
        H = (Xb @ W.T) / dt(sq)
        act_H = act.f(H).astype(dt)
        yhat = act_H @ a
        out["M"][t], out["Q"][t], out["a"][t] = M, Q, a
        if observer is not None:
            observer(t, W, W_star, a)
        if problem.loss == "square":               # the paper's model, bit for bit
            err = yhat - yb
            out["train_loss"][t] = 0.5 * float(np.mean(err.astype(np.float64) ** 2))
        else:                                      # l' of eq. (7.1)
            err = loss_derivative(problem.loss, yhat, yb)
            out["train_loss"][t] = float(np.mean(loss_value(problem.loss, yhat, yb)))
        out["test_error"][t], out["class_error"][t], out["psd_correction"][t] = _test_error(
            problem, act, M, Q, a.astype(np.float64) if trained else problem.a, zt, ut, eps_t)
        if t == T:
            break
        G = err[:, None] * a[None, :] * act.df(H).astype(dt)
        W = decay * W - dt(problem.eta / sq) * (G.T @ Xb)
        if trained:                                # eq. (7.4), the same forward pass
            a = (decay_a * a - step_a * (act_H.T @ err)).astype(dt)
        if sphere:                                 # eq. (7.7)
            norms = np.sqrt(np.einsum("ij,ij->i", W.astype(np.float64), W.astype(np.float64)))
            W = (W * (sq / norms)[:, None]).astype(dt)
    return out, status, message


def collect(problem, d, runs, seed, dtype, n_test, timings):
    """The :class:`~dmft.SimResult` of finished runs (``run_seed`` outputs): means over seeds,
    standard errors, per-seed arrays; warns when Q - M M^T needed more than round-off
    projection or when a run diverged."""
    names = PER_SEED + (("class_error",) if problem.pm_labels else ())
    per = {name: np.stack([r[0][name] for r in runs]) for name in names}
    status = "ok" if all(r[1] == "ok" for r in runs) else "diverged"
    messages = sorted({r[2] for r in runs if r[2]})
    corr = [float(np.max(r[0].get("psd_correction", 0.0))) for r in runs]
    worst = int(np.argmax(corr))
    check_projection(-corr[worst], 1.0, f"Q - M M^T of the simulation (seed {worst})",
                     int(np.argmax(runs[worst][0]["psd_correction"])) if corr[worst] else 0,
                     rtol=PSD_RTOL_SIM[dtype])
    with np.errstate(invalid="ignore", divide="ignore"):
        per["overlap"] = per["M"] / np.sqrt(np.einsum("stjj->stj", per["Q"]))[..., None]
    f = {}
    for name in ("M", "Q", "overlap", "train_loss", "test_error", "a") + names[len(PER_SEED):]:
        f[name], f[name + "_err"] = mean_err(per[name])
    del per["overlap"]
    sim = SimResult(problem=problem, d=d, n=max(1, int(round(problem.alpha * d))),
                    n_seeds=len(runs), seed=seed, dtype=dtype, n_test=n_test,
                    version=__version__, status=status, message="; ".join(messages),
                    timings=timings, seeds=per, t=np.arange(problem.steps + 1), **f)
    if status != "ok":
        n_div = sum(r[1] != "ok" for r in runs)
        sim.warn_if_failed(f"simulation diverged in {n_div} of {len(runs)} seeds")
    return sim


def simulation_settings(problem, **options):
    """The options of :func:`dmft.simulate` for ``problem``, checked against their declarations
    (:data:`dmft.options.SIMULATION`) and against the available memory; returns the complete
    dict (defaults filled in; ``seed`` and ``n_jobs`` may be None).  The single door of the
    simulator's options (Python, configs, command line, sweeps).

    Parameters
    ----------
    problem : Problem
        The problem the options are for.
    **options
        Any of the options of :func:`dmft.simulate`.

    Returns
    -------
    dict
        Every option of :func:`dmft.simulate`, checked and converted.
    """
    opts = SIMULATION.complete(problem, options)
    d, n_test, dtype = opts["d"], opts["n_test"], opts["dtype"]
    n = max(1, int(round(problem.alpha * d)))
    per_seed = _bytes_per_seed(problem, n, d, dtype, n_test)
    avail = available_bytes()
    if avail is not None and per_seed > MEMORY_HEADROOM * avail:
        field = "n_test" if n_test * (problem.k + problem.p + 2) * 24 > per_seed / 2 else "d"
        raise ProblemError(field, f"n*d = {n}*{d} and n_test = {n_test} need about "
                                  f"{per_seed / 2**30:.1f} GiB per run but only "
                                  f"{avail / 2**30:.1f} GiB are available; lower {field}"
                                  + (" or use dtype = 'float32' (--dtype float32)" if field == "d" and
                                     dtype == "float64" else ""))
    return opts


def _bytes_per_seed(problem, n, d, dtype, n_test):
    """X plus matmul temporaries, and the n_test Gaussian samples of the test error."""
    return n * d * np.dtype(dtype).itemsize * 2.5 + n_test * (problem.k + problem.p + 2) * 24


def simulate(problem, **options):
    """Run finite-size GD for ``n_seeds`` independent draws of data, teacher and W(0).

    Every option is declared once in :data:`dmft.options.SIMULATION` and checked by
    :func:`~dmft.simulate.simulation_settings` before any work.

    Parameters
    ----------
    problem : Problem
        The learning problem.
{options}

    Returns
    -------
    SimResult
        Means over seeds and standard errors, the per-seed arrays and the diagnostics.
    """
    opts = simulation_settings(problem, **options)
    d, n_seeds, dtype, n_test = opts["d"], opts["n_seeds"], opts["dtype"], opts["n_test"]
    seed = draw_seed() if opts["seed"] is None else opts["seed"]
    n = max(1, int(round(problem.alpha * d)))
    n_jobs = min(n_seeds, os.cpu_count() or 1) if opts["n_jobs"] is None else opts["n_jobs"]
    avail = available_bytes()
    if avail is not None:            # as many processes as fit in memory
        per_seed = _bytes_per_seed(problem, n, d, dtype, n_test)
        n_jobs = max(1, min(n_jobs, int(MEMORY_HEADROOM * avail // per_seed)))
    seqs = np.random.SeedSequence(seed).spawn(n_seeds)
    t0 = time.perf_counter()
    pdict = problem.to_dict()
    runs = [None] * n_seeds
    bar = progress_bar(opts["progress"], "simulate", n_seeds * n * d * problem.steps,
                       total=n_seeds, desc=f"GD d={d}", unit="seed")
    try:
        if n_jobs == 1:
            with threadpool_limits(1):          # as in the worker processes: same numbers
                for i, sq in enumerate(seqs):
                    runs[i] = run_seed(pdict, d, sq, dtype, n_test)
                    bar.update(1)
        else:
            # joblib's loky workers: no `if __name__ == "__main__"` needed in user scripts,
            # one BLAS thread per worker (seeds are the parallelism), reused across calls
            from joblib import Parallel, delayed
            jobs = (delayed(_indexed)(i, pdict, d, sq, dtype, n_test) for i, sq in enumerate(seqs))
            for i, out in Parallel(n_jobs=n_jobs, backend="loky", inner_max_num_threads=1,
                                   return_as="generator_unordered")(jobs):
                runs[i] = out
                bar.update(1)
    finally:
        bar.close()
    timings = {"total": time.perf_counter() - t0, "n_jobs": n_jobs}
    return collect(problem, d, runs, seed, dtype, n_test, timings)


simulate.__signature__ = SIMULATION.signature()
simulate.__doc__ = simulate.__doc__.replace("{options}", SIMULATION.numpydoc())


def _indexed(i, *args):
    return i, run_seed(*args)
