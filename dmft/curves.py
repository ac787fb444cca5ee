"""The base of both kinds of result, :class:`Curves`: learning curves with error bars (the
fields of :mod:`dmft.result`'s table that a DMFT solve and a simulation share), their netCDF
round trip, figures, refit-readout errors and the divergence warning."""
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import schema
from .errors import DivergenceWarning, ProblemError
from .io import write_dataset
from .population import refit, replica_refit
from .problem import Problem
from .report import mean_err
from .schema import attr, var

OBSERVABLES = ("M", "Q", "overlap", "train_loss", "test_error")


@dataclass(eq=False, kw_only=True)
class Curves:
    """Learning curves with standard errors and the diagnostics of the run that made them.

    The base of :class:`~dmft.Result` (DMFT) and :class:`~dmft.SimResult` (simulation).
    T = ``problem.steps``.  Every observable ``X`` is a mean (over the DMFT's replicas,
    eq. (5.1), or the simulation's seeds) with ``X_err``, the standard error of that mean, of
    the same shape; NaN after the last completed step (:attr:`steps_completed`).

    Attributes
    ----------
    problem : Problem
        The learning problem that was solved or simulated.
    t : ndarray of int, shape (steps+1,)
        The steps 0, 1, ..., T at which the curves are given (step t: the weights W(t) after
        t updates).
    M, M_err : ndarray, shape (steps+1, p, k)
        Student-target overlaps ``M(t) = W(t) W*^T / d`` (``M[t, j, r]`` for neuron j and
        target direction r), eq. (1.6), and their standard errors.
    Q, Q_err : ndarray, shape (steps+1, p, p)
        Gram matrix of the student ``Q(t) = W(t) W(t)^T / d``, eq. (1.6), and its standard
        error.
    overlap, overlap_err : ndarray, shape (steps+1, p, k)
        Normalised overlaps ``m_jr(t) = M_jr(t) / sqrt(Q_jj(t))``, eq. (1.6), the cosine between
        neuron j and target direction r (the mean of the per-replica or per-seed ratios), and
        their standard errors.
    train_loss, train_loss_err : ndarray, shape (steps+1,)
        Train loss, eq. (1.8): the mean of ``(yhat - y)^2 / 2`` over the samples used at step
        t, with the weights W(t) before the update, and its standard error.
    test_error, test_error_err : ndarray, shape (steps+1,)
        Test error, eq. (1.9): the population loss on a fresh sample, label noise included,
        and its standard error.
    a, a_err : ndarray, shape (steps+1, p)
        The second layer a(t) (constant for a fixed readout; eqs. (7.5), (7.6)) and its
        standard error.
    class_error, class_error_err : ndarray, shape (steps+1,), optional
        Class error P(y yhat <= 0) on a fresh sample, eq. (7.3), and its standard error
        (labels +-1 only; None otherwise).
    seed : int
        The root seed of every random draw (drawn from the operating system's entropy when
        the run was given ``seed=None``); the same seed and options reproduce the result.
    version : str
        The version of ``dmft`` that computed the result.
    status : {"ok", "diverged"}
        "ok" when every step completed (see :attr:`ok`).
    message : str
        Why the run stopped early, with the step (empty when ``status`` is "ok").
    timings : dict of str to float
        Wall-clock times in seconds; the keys are given by :class:`~dmft.Result` and
        :class:`~dmft.SimResult`.
    """

    KIND: ClassVar[str] = ""
    problem: Problem = attr("problem")
    t: np.ndarray = attr("coord")
    M: np.ndarray = var()
    M_err: np.ndarray = var()
    Q: np.ndarray = var()
    Q_err: np.ndarray = var()
    overlap: np.ndarray = var()
    overlap_err: np.ndarray = var()
    train_loss: np.ndarray = var()
    train_loss_err: np.ndarray = var()
    test_error: np.ndarray = var()
    test_error_err: np.ndarray = var()
    a: np.ndarray = var()
    a_err: np.ndarray = var()
    class_error: np.ndarray = var(optional=True)
    class_error_err: np.ndarray = var(optional=True)
    seed: int = attr()
    version: str = attr()
    status: str = attr()
    message: str = attr()
    timings: dict = attr("json")

    @property
    def steps_completed(self):
        """Last step at which M and Q are finite (the curves are NaN after it); -1 if none."""
        good = np.isfinite(self.M).all(axis=(1, 2)) & np.isfinite(self.Q).all(axis=(1, 2))
        return len(good) - 1 if good.all() else int(np.argmin(good)) - 1

    @property
    def ok(self):
        """Whether the run finished every step."""
        return self.status == "ok"

    def to_dataset(self):
        """The result as a labelled :class:`xarray.Dataset` (the layout of
        ``dmft.schema``).

        Returns
        -------
        xarray.Dataset
        """
        ds = schema.to_dataset(self, self.KIND)
        ds.attrs["steps_completed"] = self.steps_completed
        return ds

    @classmethod
    def from_dataset(cls, ds):
        """Rebuild a result from :meth:`to_dataset` output.

        Parameters
        ----------
        ds : xarray.Dataset

        Returns
        -------
        Curves
            An instance of ``cls``.
        """
        schema.check_kind(ds, cls.KIND, cls.__name__)
        try:
            return cls(**schema.from_dataset(cls, ds))
        except (KeyError, ValueError, TypeError) as exc:
            raise ProblemError("path", f"incomplete or corrupt {cls.KIND} file ({exc})") from None

    def save(self, path):
        """Write the result to a netCDF file, atomically; read it back with :func:`dmft.load`.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        str
            The path written.
        """
        return write_dataset(self.to_dataset(), path)

    def plot(self, path=None, fig=None, refit=None):
        """Overlaps, Q and losses with +-2 standard-error bands (and the class error, a(t) and
        the refit error when the problem has them, :func:`dmft.quantities.quantities_for`).

        Parameters
        ----------
        path : str, optional
            Save the figure there (atomically).
        fig : matplotlib.figure.Figure, optional
            Draw into this figure.
        refit : bool or None
            Draw the refit-readout error (None: when the readout is trained).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting import plot_result
        return plot_result(self, path=path, fig=fig, refit=refit)

    def refit_error(self, ridge=0.0):
        """Test error of the best second layer refit on the frozen features sigma(W(t) x) at every
        step (square loss, label noise included; eqs. (7.10), (7.11)): a function of M(t) and
        Q(t), evaluated for each DMFT replica (:func:`dmft.population.replica_refit`) or each
        simulation seed (:func:`dmft.population.refit`), then averaged.

        Parameters
        ----------
        ridge : float >= 0
            Ridge of the refit.

        Returns
        -------
        (ndarray, ndarray)
            The refit error and its standard error over the replicas or seeds, shape (T+1,).
        """
        if hasattr(self, "replicas"):          # many replicas, close together: control variate
            return mean_err(replica_refit(self.problem, self.replicas["M"], self.replicas["Q"],
                                          ridge))
        return mean_err(refit(self.problem, self.seeds["M"], self.seeds["Q"], ridge)[1])

    def warn_if_failed(self, what):
        """Issue the :class:`~dmft.DivergenceWarning` of a run that stopped early; nothing if
        ``status`` is "ok".

        The warning reads ``"{what} ({message}); steps 0..S kept, later steps are NaN"``, S the
        last completed step (:attr:`steps_completed`), or ends with "no step completed".

        Parameters
        ----------
        what : str
            The words that open the warning, e.g. ``"DMFT diverged"``.

        Warns
        -----
        DivergenceWarning
            When ``status`` is not "ok".
        """
        if not self.ok:
            kept = f"steps 0..{self.steps_completed} kept, later steps are NaN" \
                if self.steps_completed >= 0 else "no step completed"
            warnings.warn(DivergenceWarning(f"{what} ({self.message}); {kept}"), stacklevel=4)
