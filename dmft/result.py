"""Results: the DMFT's :class:`Result` and the simulator's :class:`SimResult`, two kinds of
learning curves with error bars that share one base, :class:`Curves`; and :func:`load`.

Every field is declared (dataclasses); arrays follow :data:`dmft.schema.VARIABLES`
(T = problem.steps; every array ``X`` has a standard error ``X_err``):

==================  ===================  ==============================================
field               shape                meaning
==================  ===================  ==============================================
``t``               (T+1,)               time steps 0..T
``M``               (T+1, p, k)          overlaps W W*^T / d
``Q``               (T+1, p, p)          Gram matrix W W^T / d
``overlap``         (T+1, p, k)          normalised overlaps M_jr / sqrt(Q_jj)
``train_loss``      (T+1,)               mean loss over the samples used at step t
``test_error``      (T+1,)               population loss on a fresh sample, noise included
                                         (DMFT: a function of each replica's M, Q, a, eq.
                                         (1.10); simulation: over n_test Gaussian samples)
``a``               (T+1, p)             second layer (constant for a fixed readout)
``class_error``     (T+1,)               P(y yhat <= 0) on a fresh sample (+-1 labels only;
                                         None otherwise)
``C_theta``         (T+1, T+1, p, p)     weight-side covariance (Result only)
``R_theta``         (T+1, T+1, p, p)     weight-side response R_theta(t, s), s < t
``C_g``, ``R_g``    (T+1, T+1, p, p)     sample-side covariance and response of g
``Psi``             (T+1, p, p)          response of theta(t) to theta(0)
==================  ===================  ==============================================

A Result's ``replicas`` hold the per-replica M, Q, overlap, train_loss, test_error, a (and
class_error) (leading axis G) from which means and errors are formed, and
``test_error_sampled``, the test error averaged over the sample side's own paths (the estimate
before 0.2, noisier: a cross-check); a SimResult's ``seeds`` the per-seed ones.
:meth:`Curves.refit_error` gives the error of the best second layer refit on the frozen
features at every step (eqs. (7.10), (7.11)).
Steps after a numerical failure are NaN (``steps_completed`` says how far the curves are
valid, ``status`` and ``message`` why they stop) and a :class:`~dmft.DivergenceWarning` is
issued when the result is built.
"""
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .curves import OBSERVABLES, Curves
from .errors import ProblemError
from .io import open_dataset
from .population import replica_errors
from .report import KERNELS, Deferred, mean_err
from .schema import attr, group, var
from .version import __version__

__all__ = ["Curves", "Result", "SimResult", "load", "OBSERVABLES", "mean_err"]


@dataclass(eq=False, kw_only=True)
class Result(Curves):
    """Solution of the DMFT, as returned by :func:`dmft.solve`.

    The curves of :class:`~dmft.result.Curves` (replica means and standard errors, eq. (5.1)),
    the two-time kernels, the per-replica curves and the solver's diagnostics; T =
    ``problem.steps``.  ``timings`` (seconds): ``compile`` the time spent compiling Numba
    kernels (0 when loaded from the cache), ``total`` the run without it, ``sample_side`` and
    ``weight_side`` its two parts (the weight side's from the allocation of its rows),
    ``setup`` (general method) the drawing of the paths' inputs and the orthonormalisation of
    their innovations, part of ``total``.

    Attributes
    ----------
    C_theta, C_theta_err : ndarray, shape (steps+1, steps+1, p, p)
        Weight-side covariance ``C_theta(t, s) = E[theta(t) theta(s)^T]``, eq. (2.7), the
        two-time Gram matrix of the weights orthogonal to the target (also the covariance of
        the sample side's field omega, eq. (2.8)); ``C_theta[t, s]``.
    R_theta, R_theta_err : ndarray, shape (steps+1, steps+1, p, p)
        Weight-side response ``R_theta(t, s) = dtheta(t) / dxi(s)``, eqs. (2.5), (2.6), zero for
        s >= t.
    C_g, C_g_err : ndarray, shape (steps+1, steps+1, p, p)
        Sample-side covariance ``C_g(t, s) = E[g(t) g(s)^T]`` of the gradient g of a sample's
        loss with respect to its pre-activations, eq. (2.10).
    R_g, R_g_err : ndarray, shape (steps+1, steps+1, p, p)
        Sample-side response ``R_g(t, s) = E[dg(t) / domega(s)]``, eq. (2.10), zero for s > t;
        ``R_g[t, t]`` is the curvature.
    Psi, Psi_err : ndarray, shape (steps+1, p, p)
        Response of theta(t) to the initial condition, ``Psi(t) = dtheta(t) / dtheta(0)``,
        eq. (2.4).  With ``response="stein"``, R_theta, R_g and Psi are reconstructed for
        reporting (eq. (3.17)); the dynamics never uses them.
    replicas : dict of str to ndarray
        The per-replica curves from which means and errors are formed: ``"M"`` and
        ``"overlap"`` of shape (G, steps+1, p, k), ``"Q"`` (G, steps+1, p, p),
        ``"train_loss"`` and ``"test_error"`` (G, steps+1), G = ``n_groups``.
    residuals : dict of str to ndarray
        Self-consistency residuals, eq. (3.18), shape (steps+1,): ``"omega_cov"`` the relative
        deviation of the empirical covariance of the drawn omega(t) from C_theta(t, t) (Monte
        Carlo, O(1/sqrt(n_paths))), ``"g_innovation"`` the relative change of the
        re-orthogonalised innovation of g(t) (a round-off indicator).  NaN where not computed
        (the one-pass recursion).
    n_paths : int
        Number N of Monte Carlo paths of the sample side, over all replicas.
    n_groups : int
        Number G of independent replicas the paths were split into (about N/G paths each).
    response : {"stein", "pathwise"}
        Estimator of the responses: Gaussian integration by parts or pathwise derivatives.
    """

    KIND: ClassVar[str] = "dmft.Result"
    C_theta: np.ndarray = var()
    C_theta_err: np.ndarray = var()
    R_theta: np.ndarray = var()
    R_theta_err: np.ndarray = var()
    C_g: np.ndarray = var()
    C_g_err: np.ndarray = var()
    R_g: np.ndarray = var()
    R_g_err: np.ndarray = var()
    Psi: np.ndarray = var()
    Psi_err: np.ndarray = var()
    replicas: dict = group("replica_", "replica")
    residuals: dict = group("residual_", None)
    n_paths: int = attr()
    n_groups: int = attr()
    response: str = attr()

    @classmethod
    def from_replicas(cls, problem, kernels, losses, completed, status, message, seed, n_paths,
                      n_groups, response, timings, residuals):
        """Means and errors over the replicas of a solve.

        Parameters
        ----------
        problem : Problem
        kernels : dmft.weight.Kernels or dmft.report.PackedKernels
            Per-replica M and kernels (dense), or the weight side's rows from which the
            kernels are formed when first read.
        losses : ndarray (G, T+1, 2)
            Per-replica train loss and test error.
        completed : int
            Last step completed; later steps are set to NaN.
        status, message : str
        seed, n_paths, n_groups : int
        response : str
        timings, residuals : dict

        Returns
        -------
        Result
        """
        T = problem.steps
        with np.errstate(over="ignore", invalid="ignore"):   # steps after a failure: NaN below
            Q_rep = np.stack([kernels.Q(t) for t in range(T + 1)], axis=1)   # (G, T+1, p, p)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            diag = np.sqrt(np.einsum("gtjj->gtj", Q_rep))
            ov_rep = kernels.M / diag[..., None]
        a_rep = getattr(kernels, "a", None)       # a trained readout's a(t) per replica
        if a_rep is None:
            a_rep = np.broadcast_to(problem.a, Q_rep.shape[:2] + problem.a.shape)
        rep = {"M": kernels.M.copy(), "Q": Q_rep, "overlap": ov_rep,
               "train_loss": losses[..., 0].copy(), "test_error_sampled": losses[..., 1].copy(),
               "a": np.array(a_rep, dtype=np.float64)}
        bad = slice(completed + 1, None)
        for x in rep.values():
            x[:, bad] = np.nan
        # the test error (and class error) of each replica from its own M, Q, a: a function of
        # them (eq. (1.10)), free of the sample side's Monte Carlo noise on the losses
        rep["test_error"], class_rep = replica_errors(problem, rep["M"], rep["Q"], rep["a"])
        if class_rep is not None:
            rep["class_error"] = class_rep
        f = {}
        for name in OBSERVABLES + ("a",) + (("class_error",) if class_rep is not None else ()):
            f[name], f[name + "_err"] = mean_err(rep[name])
        f.update(kernels.fields(completed) if hasattr(kernels, "C_theta") else kernels.fields())
        res = cls(problem=problem, seed=seed, n_paths=n_paths, n_groups=n_groups,
                  response=response, version=__version__, timings=timings, status=status,
                  message=message, t=np.arange(T + 1), replicas=rep,
                  residuals={key: np.asarray(v) for key, v in residuals.items()}, **f)
        res.warn_if_failed(f"DMFT {status}")
        return res

    @property
    def kernel_source(self):
        """What the kernels (C_theta, C_g, R_theta, R_g, Psi) will be formed from when first
        read: a ``dmft.report.PackedKernels`` (its ``nbytes`` the weight side's memory),
        or None once they are formed (or for a loaded result)."""
        value = self.__dict__.get("C_theta")
        return value.source if isinstance(value, Deferred) else None

    def summary(self):
        """A short human-readable summary: the run, then the losses and overlaps per step.

        Returns
        -------
        str
        """
        lines = [f"dmft {self.version}  {self.problem!r}",
                 f"n_paths={self.n_paths}  replicas={self.n_groups}  response={self.response}  "
                 f"seed={self.seed}  status={self.status}"
                 + (f" ({self.message})" if self.message else ""),
                 f"time {self.timings['total']:.2f} s "
                 f"(sample side {self.timings['sample_side']:.2f} s)",
                 " t   test_error             train_loss             overlap M/sqrt(Q_jj)"]
        for t in range(self.problem.steps + 1):
            ov = " ".join(f"{m:+.4f}" for m in np.ravel(self.overlap[t]))
            lines.append(f"{t:2d}   {self.test_error[t]:.5f}+-{self.test_error_err[t]:.5f}  "
                         f"{self.train_loss[t]:.5f}+-{self.train_loss_err[t]:.5f}  {ov}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<dmft.Result {self.problem.target.expr!r} p={self.problem.p} "
                f"T={self.problem.steps} n_paths={self.n_paths} status={self.status}>")


def deferred_field(name):
    """A Result field whose value may be a :class:`~dmft.report.Deferred` (the kernels of a
    solve, formed from the weight side's rows when first read), replaced by its value then."""
    def get(self):
        value = self.__dict__[name]
        if isinstance(value, Deferred):
            value = self.__dict__[name] = value.value(name)
        return value

    def put(self, value):
        self.__dict__[name] = value
    return property(get, put, doc=f"``{name}`` (see the module docstring), formed when first "
                                  f"read")


for _name in KERNELS:
    for _field in (_name, _name + "_err"):
        setattr(Result, _field, deferred_field(_field))


@dataclass(eq=False, kw_only=True)
class SimResult(Curves):
    """Finite-size simulation of gradient descent, as returned by :func:`dmft.simulate`.

    The curves of :class:`~dmft.result.Curves` (means over S independent seeds of data,
    teacher and initial weights, and their standard errors), the per-seed curves and the
    run's settings; T = ``problem.steps``.  ``status`` is "diverged" when any seed diverged;
    ``timings``: ``total`` (seconds) and ``n_jobs`` (the number of processes used).

    Attributes
    ----------
    seeds : dict of str to ndarray
        The per-seed curves: ``"M"`` of shape (S, steps+1, p, k), ``"Q"`` (S, steps+1, p, p),
        ``"train_loss"`` and ``"test_error"`` (S, steps+1), S = ``n_seeds``; run i used the
        seed ``SeedSequence(seed).spawn(n_seeds)[i]``.
    d : int
        Input dimension.
    n : int
        Number of samples per data set, ``max(1, round(alpha d))`` (per fresh batch for the
        one-pass and reuse schedules), eq. (1.1).
    n_seeds : int
        Number S of independent runs.
    dtype : {"float64", "float32"}
        Floating-point type of the data and the weights.
    n_test : int
        Gaussian samples per run of the Monte Carlo estimate of the test error, eqs. (1.9),
        (1.10).
    """

    KIND: ClassVar[str] = "dmft.SimResult"
    seeds: dict = group("seed_", "seed")
    d: int = attr()
    n: int = attr()
    n_seeds: int = attr()
    dtype: str = attr()
    n_test: int = attr()

    def summary(self):
        """A short human-readable summary of the run.

        Returns
        -------
        str
        """
        lines = [f"dmft {self.version} simulation  {self.problem!r}",
                 f"d={self.d} n={self.n} seeds={self.n_seeds} dtype={self.dtype} seed={self.seed}"
                 f" status={self.status}" + (f" ({self.message})" if self.message else ""),
                 f"time {self.timings['total']:.2f} s"]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<dmft.SimResult {self.problem.target.expr!r} d={self.d} "
                f"seeds={self.n_seeds} status={self.status}>")


def load(path):
    """Load a DMFT result (``Result.save``) or a simulation (``SimResult.save``).

    Parameters
    ----------
    path : str or path-like
        A netCDF file written by :meth:`~dmft.result.Curves.save`.

    Returns
    -------
    Result or SimResult
    """
    ds = open_dataset(path)
    cls = {c.KIND: c for c in (Result, SimResult)}.get(ds.attrs.get("kind"))
    if cls is None:
        raise ProblemError("path", f"{path} is not a dmft result or simulation file")
    return cls.from_dataset(ds)
