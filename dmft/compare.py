"""Theory against simulation: per-observable z-scores at every step, the verdict of the
project's agreement criterion (:mod:`dmft.agreement`), and an overlay figure.

z = (DMFT - simulation mean) / sqrt(err_DMFT^2 + err_sim^2) for every entry of M (p x k),
the upper triangle of Q, the train loss and the test error, at every step.  Entries that are
exact on both sides (M and Q at t = 0) have zero combined error and are reported as z = 0 when
they agree to 1e-9.  Whether DMFT and simulation agree is decided by one family-wise test over
all entries and steps t >= 1 (``Comparison.agreement``), not by a threshold on a single |z|.
"""
from dataclasses import dataclass

import numpy as np

# OBSERVABLES and entries live with the agreement criterion; compare re-exports them
from .agreement import OBSERVABLES, Agreement, assess, entries  # noqa: F401
from .errors import ProblemError


@dataclass(eq=False)
class Comparison:
    """z-scores of a DMFT :class:`~dmft.Result` against a :class:`~dmft.SimResult` of the same
    problem, and the verdict of the agreement criterion; made by :func:`dmft.compare`.

    T = ``problem.steps``.  Step 0 (the initial condition) is reported but not tested.

    Attributes
    ----------
    result : Result
        The DMFT side.
    sim : SimResult
        The simulation side.
    z : dict of str to ndarray
        For each name of :data:`~dmft.compare.OBSERVABLES` ("M", "Q", "train_loss",
        "test_error"), the signed z-scores of eq. (5.3),
        ``(DMFT - simulation) / sqrt(err_DMFT^2 + err_sim^2)``, of shape (steps+1, n): the n
        independent entries of :func:`~dmft.compare.entries` (M's p x k entries, Q's upper
        triangle, one for a loss) at every step.  Entries exact on both sides (M and Q at
        t = 0) are 0 when they agree to 1e-9, inf otherwise; NaN after a divergence.
    agreement : dmft.agreement.Agreement
        The outcome of the family-wise agreement test over all entries and steps t >= 1
        (``passed``, ``p_value``, ``power``, ...).
    """

    result: object
    sim: object
    z: dict
    agreement: Agreement

    @property
    def passed(self):
        """The verdict of the agreement criterion (family-wise test at its level)."""
        return self.agreement.passed

    @property
    def z_max(self):
        """The raw |z| at which one entry alone fails the agreement test (figures shade
        |z| <= z_max); 0 when nothing random was compared."""
        c = self.agreement.critical_raw_z
        return c if np.isfinite(c) else 0.0

    def worst(self, names=OBSERVABLES):
        """Largest raw |z| over the given observables and all steps (NaN-aware); descriptive,
        the verdict is ``agreement``.

        Parameters
        ----------
        names : iterable of str, default :data:`~dmft.compare.OBSERVABLES`
            Keys of ``z``.

        Returns
        -------
        float
            The largest |z| over the entries and steps t = 0..T of these observables (inf
            where exact entries disagree); NaN entries are ignored, and an observable without
            a finite entry counts as 0.
        """
        return float(max(np.nanmax(np.abs(self.z[n])) if np.isfinite(self.z[n]).any() else 0.0
                         for n in names))

    def worst_per_step(self, names=OBSERVABLES):
        """Largest raw |z| at each step over the given observables.

        Parameters
        ----------
        names : iterable of str, default :data:`~dmft.compare.OBSERVABLES`
            Keys of ``z``.

        Returns
        -------
        ndarray, shape (steps+1,)
            At each step t, the largest |z| over the entries of these observables; NaN at the
            steps where no entry is finite (after a divergence).
        """
        return _rowmax(np.concatenate([np.abs(self.z[n]) for n in names], axis=1))

    def table(self):
        """Agreement table: worst |z| per observable and the step where it occurs.

        Returns
        -------
        str
            One line per observable (its largest |z| over the entries and the first step
            where it occurs), the sizes of both sides (d, seeds, paths) and the verdict of the
            agreement criterion (``Agreement.describe()``), joined by newlines.
        """
        lines = ["observable   worst|z|  at step", "-----------  --------  -------"]
        for n in OBSERVABLES:
            rows = _rowmax(np.abs(self.z[n]))
            finite = np.isfinite(rows)
            t = int(np.nanargmax(rows)) if finite.any() else 0
            lines.append(f"{n:<11}  {rows[t] if finite.any() else np.nan:8.2f}  {t:7d}")
        lines.append(f"d = {self.sim.d}, {self.sim.n_seeds} seeds; DMFT {self.result.n_paths} "
                     f"paths.")
        lines.append(self.agreement.describe())
        return "\n".join(lines)

    def plot(self, path=None, fig=None):
        """Overlay figure: DMFT lines with +-2 standard-error bands, simulation means with +-2
        standard-error bars, and the z-scores of every entry under each quantity.

        Parameters
        ----------
        path : str or path-like, optional
            Save the figure there (atomically; format from the extension, PNG by default).
        fig : matplotlib.figure.Figure, optional
            Draw into this figure instead of a new one.

        Returns
        -------
        matplotlib.figure.Figure
            The figure; its axes carry the quantity's name as their label
            (``ax.get_label()``; ``NAME_z`` for the residual panels).
        """
        from .plotting import plot_comparison
        return plot_comparison(self, path=path, fig=fig)


def compare(result, sim):
    """Compare a DMFT :class:`~dmft.Result` with a :class:`~dmft.SimResult`.

    Parameters
    ----------
    result : Result
    sim : SimResult
        A simulation of the same problem.

    Returns
    -------
    Comparison
    """
    if result.problem.to_dict() != sim.problem.to_dict():
        raise ProblemError("sim", "the simulation was run for a different problem")
    agreement = assess(result, sim)
    return Comparison(result, sim, agreement.z, agreement)


def _rowmax(a):
    """Largest finite entry of each row of a (n, m) array; NaN for a row without one."""
    fin = np.isfinite(a)
    out = np.where(fin, a, -np.inf).max(axis=1)
    return np.where(fin.any(axis=1), out, np.nan)
