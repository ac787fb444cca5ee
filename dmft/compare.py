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
    """z-scores of a DMFT :class:`~dmft.Result` against a :class:`~dmft.SimResult`:
    ``z[name]`` has shape (T+1, entries) (:func:`~dmft.compare.entries`) for each of
    :data:`~dmft.compare.OBSERVABLES`; ``agreement`` is the verdict of the agreement criterion
    (:class:`~dmft.agreement.Agreement`: ``passed``, ``p_value``, ``power``, ...)."""

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
        the verdict is ``agreement``."""
        return float(max(np.nanmax(np.abs(self.z[n])) if np.isfinite(self.z[n]).any() else 0.0
                         for n in names))

    def worst_per_step(self, names=OBSERVABLES):
        """Largest |z| at each step over the given observables, shape (T+1,); NaN at the steps
        where no entry is finite (after a divergence)."""
        return _rowmax(np.concatenate([np.abs(self.z[n]) for n in names], axis=1))

    def table(self):
        """Agreement table: worst |z| per observable and the step where it occurs."""
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
        """Overlay figure (DMFT bands, simulation error bars); saved to ``path`` if given."""
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
