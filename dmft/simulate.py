"""Finite-size gradient descent with exactly the conventions of THEORY.md section 1.

* Inputs x ~ N(0, I_d), n = round(alpha d) samples; target directions W* (k x d) with
  W* W*^T = d I_k; labels y = f*(W* x / sqrt d) + sqrt(Delta) eps.
* W(0) = M0 W* + L U sqrt(d), U (p x d) orthonormal rows orthogonal to W*, L L^T = Q0 - M0 M0^T:
  M(0) = M0 and Q(0) = Q0 exactly (to round-off).
* GD with the gradient summed over the samples used at step t (the schedule of the problem,
  :mod:`dmft.schedules`: the full batch for multi-pass, a fresh batch for one-pass and reuse,
  a reshuffled fraction of the data set for mini-batch SGD):
  W <- (1 - eta lambda) W - eta G^T X_t / sqrt(d), G = (yhat - y) a * sigma'(H), H = X_t W^T / sqrt(d).
  The train loss at step t is the mean loss over the samples used at step t.
* Test error (decision recorded here): the population error E_x[(yhat - y)^2 / 2] is a function
  of (M, Q) only, since (h, z*) of a fresh x is exactly Gaussian with Cov [[Q, M], [M^T, I]].  It
  is evaluated by Monte Carlo over ``n_test`` Gaussian samples drawn per seed (so its small Monte
  Carlo error is part of the seed-to-seed spread and of ``test_error_err``); label noise included.

Seeds run in parallel processes (joblib/loky, one BLAS thread each); seed i uses
``SeedSequence(seed).spawn(n_seeds)[i]``, so results do not depend on ``n_jobs``.
"""
import math
import os
import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .activations import get_activation
from .errors import PSD_RTOL, DivergenceWarning, ProblemError, check_projection
from .problem import Problem
from .checks import available_bytes, integer

DTYPES = {"float64": np.float64, "float32": np.float32}
DIVERGENCE = 1e10
#: Q - M M^T is PSD exactly; in float32 the teacher rows are orthonormal only to ~1e-7, so
#: the round-off left in it is larger (KernelProjectionWarning thresholds, relative to Q)
PSD_RTOL_SIM = {"float64": PSD_RTOL, "float32": 1e-5}


def initial_weights(problem, d, rng, dtype=np.float64):
    """(W*, W(0)) with W* W*^T = d I_k, M(0) = M0 and Q(0) = Q0 exactly."""
    p, k = problem.p, problem.k
    basis, _ = np.linalg.qr(rng.standard_normal((d, k + p)))        # orthonormal columns
    W_star = math.sqrt(d) * basis[:, :k].T
    U = basis[:, k:].T
    lam, V = np.linalg.eigh(problem.C0)
    L = V * np.sqrt(np.clip(lam, 0.0, None))                         # L L^T = Q0 - M0 M0^T
    W0 = problem.M0 @ W_star + math.sqrt(d) * (L @ U)
    return W_star.astype(dtype), W0.astype(dtype)


def _overlaps(W, W_star, d):
    W = W.astype(np.float64)
    return W @ W_star.astype(np.float64).T / d, W @ W.T / d


def _test_error(problem, act, M, Q, zt, ut, eps_t):
    """Population error given (M, Q): h = M z + (Q - M M^T)^{1/2} u for the per-seed samples.
    Also returns the most negative eigenvalue of Q - M M^T relative to the largest of Q, that
    clipping to zero corrected (round-off: Q - M M^T = W (I - W*^T W* / d) W^T / d)."""
    lam, V = np.linalg.eigh(Q - M @ M.T)
    S = V * np.sqrt(np.clip(lam, 0.0, None))
    h = zt @ M.T + ut @ S.T
    y = problem.target(zt) + math.sqrt(problem.noise) * eps_t
    top = float(np.abs(np.linalg.eigvalsh(Q)).max())
    corr = max(0.0, -float(lam[0])) / top if top > 0 else 0.0
    return 0.5 * float(np.mean((act.f(h) @ problem.a - y) ** 2)), corr


def run_seed(problem_dict, d, seed_seq, dtype="float64", n_test=100_000):
    """One finite-size GD run; returns per-step arrays and the status (picklable in and out)."""
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
        fz = problem.target(z)
        if not np.all(np.isfinite(fz)):
            raise ProblemError("target", f"{problem.target.expr!r} is not finite at "
                                         f"{int(np.sum(~np.isfinite(fz)))} of {n} Gaussian inputs "
                                         f"(e.g. log or sqrt of a negative number)")
        return X, (fz + math.sqrt(problem.noise) * rng.standard_normal(n)).astype(dt)

    X, y = draw_batch()
    zt, ut = rng.standard_normal((n_test, k)), rng.standard_normal((n_test, p))
    eps_t = rng.standard_normal(n_test)
    plan = problem.plan.batches(rng, n, T)         # (data-set id, indices) per step
    current = plan[0][0]
    out = {"M": np.full((T + 1, p, k), np.nan), "Q": np.full((T + 1, p, p), np.nan),
           "train_loss": np.full(T + 1, np.nan), "test_error": np.full(T + 1, np.nan),
           "psd_correction": np.zeros(T + 1)}
    a = problem.a.astype(dt)
    decay = 1.0 - problem.eta * problem.ridge
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
        err = act_H @ a - yb
        out["M"][t], out["Q"][t] = M, Q
        out["train_loss"][t] = 0.5 * float(np.mean(err.astype(np.float64) ** 2))
        out["test_error"][t], out["psd_correction"][t] = _test_error(problem, act, M, Q, zt, ut,
                                                                     eps_t)
        if t == T:
            break
        G = err[:, None] * a[None, :] * act.df(H).astype(dt)
        W = decay * W - dt(problem.eta / sq) * (G.T @ Xb)
    return out, status, message


def _available_bytes():
    return available_bytes()


class SimResult:
    """Finite-size simulation over seeds.  Per-seed arrays in ``seeds`` (leading axis S);
    ``M, Q, train_loss, test_error`` are means over seeds and ``*_err`` standard errors."""

    FIELDS = ("M", "Q", "train_loss", "test_error")

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @classmethod
    def from_seeds(cls, problem, d, runs, seed, dtype, n_test, timings):
        per = {name: np.stack([r[0][name] for r in runs]) for name in cls.FIELDS}
        status = "ok" if all(r[1] == "ok" for r in runs) else "diverged"
        messages = sorted({r[2] for r in runs if r[2]})
        corr = [float(np.max(r[0].get("psd_correction", 0.0))) for r in runs]
        worst = int(np.argmax(corr))
        check_projection(-corr[worst], 1.0, f"Q - M M^T of the simulation (seed {worst})",
                         int(np.argmax(runs[worst][0]["psd_correction"])) if corr[worst] else 0,
                         rtol=PSD_RTOL_SIM[dtype])
        f = {"problem": problem, "d": d, "n": max(1, int(round(problem.alpha * d))),
             "n_seeds": len(runs), "seed": seed, "dtype": dtype, "n_test": n_test,
             "version": __version__, "status": status, "message": "; ".join(messages),
             "timings": timings, "seeds": per, "t": np.arange(problem.steps + 1)}
        S = len(runs)
        for name, x in per.items():
            f[name] = x.mean(axis=0)
            f[name + "_err"] = x.std(axis=0, ddof=1) / math.sqrt(S) if S > 1 else np.full_like(
                f[name], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ov = per["M"] / np.sqrt(np.einsum("stjj->stj", per["Q"]))[..., None]
        f["overlap"], f["overlap_err"] = ov.mean(axis=0), ov.std(axis=0, ddof=1) / math.sqrt(S)
        sim = cls(**f)
        if status != "ok":
            n_div = sum(r[1] != "ok" for r in runs)
            warnings.warn(DivergenceWarning(
                f"simulation diverged in {n_div} of {S} seeds ({sim.message}); "
                + (f"steps 0..{sim.steps_completed} kept, the mean over seeds is NaN after"
                   if sim.steps_completed >= 0 else "no step completed")), stacklevel=3)
        return sim

    @property
    def steps_completed(self):
        """Last step at which every seed is finite (the means are NaN after it); -1 if none."""
        good = np.isfinite(self.M).all(axis=(1, 2)) & np.isfinite(self.Q).all(axis=(1, 2))
        return len(good) - 1 if good.all() else int(np.argmin(good)) - 1

    @property
    def ok(self):
        return self.status == "ok"

    def save(self, path):
        """Write the simulation to netCDF atomically; read it back with :func:`dmft.load`."""
        from .io import save_simresult
        return save_simresult(self, path)

    def plot(self, path=None, fig=None):
        """Overlap curves, Q and losses with 2-standard-error bands over seeds."""
        from .plotting import plot_result
        return plot_result(self, path=path, fig=fig)

    def summary(self):
        """A short human-readable summary."""
        lines = [f"dmft {self.version} simulation  {self.problem!r}",
                 f"d={self.d} n={self.n} seeds={self.n_seeds} dtype={self.dtype} seed={self.seed}"
                 f" status={self.status}" + (f" ({self.message})" if self.message else ""),
                 f"time {self.timings['total']:.2f} s"]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<dmft.SimResult {self.problem.target.expr!r} d={self.d} "
                f"seeds={self.n_seeds} status={self.status}>")


def check_simulation_args(problem, d=1000, n_seeds=8, seed=None, dtype="float64", n_jobs=None,
                          n_test=100_000):
    """Validate the arguments of :func:`simulate` (ProblemError naming the field) and return
    ``(d, n_seeds, seed, n_jobs, n_test)``: seed drawn when None, n_jobs defaulted and reduced
    so that the runs fit in the available memory."""
    if not isinstance(problem, Problem):
        raise ProblemError("problem", f"expected a dmft.Problem, got {type(problem).__name__}")
    d = integer("d", d, 2)
    n_seeds = integer("n_seeds", n_seeds, 1)
    n_test = integer("n_test", n_test, 100)
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ProblemError("dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    seed = integer("seed", seed, 0)
    cpus = os.cpu_count() or 1
    n_jobs = min(n_seeds, cpus) if n_jobs is None else integer("n_jobs", n_jobs, 1)
    n = max(1, int(round(problem.alpha * d)))
    # X plus matmul temporaries, and the n_test Gaussian samples of the test error
    per_seed = n * d * np.dtype(dtype).itemsize * 2.5 + n_test * (problem.k + problem.p + 2) * 24
    avail = _available_bytes()
    if avail is not None:
        if per_seed > 0.8 * avail:
            field = "n_test" if n_test * (problem.k + problem.p + 2) * 24 > per_seed / 2 else "d"
            raise ProblemError(field, f"n*d = {n}*{d} and n_test = {n_test} need about "
                                      f"{per_seed / 2**30:.1f} GiB per run but only "
                                      f"{avail / 2**30:.1f} GiB are available; lower {field}"
                                      + (" or use dtype='float32'" if field == "d" else ""))
        n_jobs = max(1, min(n_jobs, int(0.8 * avail // per_seed)))
    return d, n_seeds, seed, n_jobs, n_test


def simulate(problem, d=1000, n_seeds=8, seed=None, dtype="float64", n_jobs=None,
             n_test=100_000, progress="auto"):
    """Run finite-size GD for ``n_seeds`` independent draws of data, teacher and W(0).

    Parameters
    ----------
    problem : Problem
    d : int           input dimension (n = round(alpha d) samples)
    n_seeds : int     independent runs (>= 2 for error bars)
    seed : int        root seed (None: drawn and recorded)
    dtype : {"float64", "float32"}
    n_jobs : int      parallel processes (default: min(n_seeds, CPUs), reduced to fit memory)
    n_test : int      Gaussian samples per seed for the population test error
    """
    d, n_seeds, seed, n_jobs, n_test = check_simulation_args(problem, d, n_seeds, seed, dtype,
                                                             n_jobs, n_test)
    n = max(1, int(round(problem.alpha * d)))
    seqs = np.random.SeedSequence(seed).spawn(n_seeds)
    t0 = time.perf_counter()
    pdict = problem.to_dict()
    runs = [None] * n_seeds
    show = progress if progress != "auto" else n_seeds * n * d * problem.steps > 5e9
    bar = tqdm(total=n_seeds, desc=f"GD d={d}", unit="seed", disable=not show, leave=False)
    try:
        if n_jobs == 1:
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
    return SimResult.from_seeds(problem, d, runs, seed, dtype, n_test, timings)


def _indexed(i, *args):
    return i, run_seed(*args)
