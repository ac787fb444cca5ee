"""`Result`: one object carrying the DMFT solution, its error bars and its diagnostics.

Array attributes (T = problem.steps; every ``X`` has a standard error ``X_err``):

==================  ===================  ==============================================
attribute           shape                meaning
==================  ===================  ==============================================
``t``               (T+1,)               time steps 0..T
``M``               (T+1, p, k)          overlaps W W*^T / d
``Q``               (T+1, p, p)          Gram matrix W W^T / d
``overlap``         (T+1, p, k)          normalised overlaps M_jr / sqrt(Q_jj)
``train_loss``      (T+1,)               mean loss over the (reused) batch
``test_error``      (T+1,)               E[(yhat - y)^2 / 2] on a fresh sample, noise included
``C_theta``         (T+1, T+1, p, p)     weight-side covariance
``R_theta``         (T+1, T+1, p, p)     weight-side response (R_theta(t, s), s < t)
``C_g``, ``R_g``    (T+1, T+1, p, p)     sample-side covariance and response of g
``Psi``             (T+1, p, p)          response of theta(t) to theta(0)
==================  ===================  ==============================================

``replicas`` holds the per-replica M, Q, train_loss and test_error (leading axis G) from which
means and errors are formed.  Steps after a numerical failure are NaN (``steps_completed``
tells how far the solution is valid, ``status`` and ``message`` why it stopped) and a
:class:`~dmft.DivergenceWarning` is issued when the result is built.
"""
import warnings

import numpy as np

from . import __version__
from .errors import DivergenceWarning

OBSERVABLES = ("M", "Q", "overlap", "train_loss", "test_error")
KERNELS = ("C_theta", "R_theta", "C_g", "R_g", "Psi")


def _mean_err(x):
    """Replica mean and standard error over axis 0."""
    G = x.shape[0]
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(G)


class Result:
    """Solution of the DMFT (see module docstring for the attributes)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_replicas(cls, problem, W, losses, completed, status, message, seed, n_paths,
                      n_groups, response, timings, residuals):
        T = problem.steps
        with np.errstate(over="ignore", invalid="ignore"):   # steps after a failure: NaN below
            Q_rep = np.stack([W.Q(t) for t in range(T + 1)], axis=1)           # (G, T+1, p, p)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            diag = np.sqrt(np.einsum("gtjj->gtj", Q_rep))
            ov_rep = W.M / diag[..., None]
        rep = {"M": W.M.copy(), "Q": Q_rep, "overlap": ov_rep,
               "train_loss": losses[..., 0].copy(), "test_error": losses[..., 1].copy()}
        bad = slice(completed + 1, None)
        for x in rep.values():
            x[:, bad] = np.nan
        f = {"problem": problem, "seed": seed, "n_paths": n_paths, "n_groups": n_groups,
             "response": response, "version": __version__, "timings": timings,
             "status": status, "message": message, "steps_completed": completed,
             "residuals": {key: np.asarray(v) for key, v in residuals.items()},
             "t": np.arange(T + 1), "replicas": rep}
        for name in OBSERVABLES:
            f[name], f[name + "_err"] = _mean_err(rep[name])
        for name in KERNELS:
            x = getattr(W, name).copy()
            x[:, bad] = np.nan
            if x.ndim == 5:
                x[:, :, bad] = np.nan
            f[name], f[name + "_err"] = _mean_err(x)
        if status != "ok":
            kept = f"steps 0..{completed} kept, later steps are NaN" if completed >= 0 else \
                "no step completed"
            warnings.warn(DivergenceWarning(f"DMFT {status} ({message}); {kept}"), stacklevel=3)
        return cls(**f)

    # ------------------------------------------------------------------ conveniences
    @property
    def ok(self):
        return self.status == "ok"

    def save(self, path):
        """Write the result to a netCDF file (atomically); read it back with :func:`dmft.load`."""
        from .io import save_result
        return save_result(self, path)

    def to_dataset(self):
        """The result as a labelled :class:`xarray.Dataset`."""
        from .io import result_to_dataset
        return result_to_dataset(self)

    def plot(self, path=None, fig=None):
        """Overlap curves (with error bands), Q and losses; saved to ``path`` if given."""
        from .plotting import plot_result
        return plot_result(self, path=path, fig=fig)

    def summary(self):
        """A short human-readable summary."""
        T = self.problem.steps
        lines = [f"dmft {self.version}  {self.problem!r}",
                 f"n_paths={self.n_paths}  replicas={self.n_groups}  response={self.response}  "
                 f"seed={self.seed}  status={self.status}"
                 + (f" ({self.message})" if self.message else ""),
                 f"time {self.timings['total']:.2f} s "
                 f"(sample side {self.timings['sample_side']:.2f} s)",
                 " t   test_error             train_loss             overlap M/sqrt(Q_jj)"]
        for t in range(T + 1):
            ov = " ".join(f"{m:+.4f}" for m in np.ravel(self.overlap[t]))
            lines.append(f"{t:2d}   {self.test_error[t]:.5f}+-{self.test_error_err[t]:.5f}  "
                         f"{self.train_loss[t]:.5f}+-{self.train_loss_err[t]:.5f}  {ov}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<dmft.Result {self.problem.target.expr!r} p={self.problem.p} "
                f"T={self.problem.steps} n_paths={self.n_paths} status={self.status}>")
