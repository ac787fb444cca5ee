"""Theory against simulation: per-observable z-scores at every step, and an overlay figure.

z = (DMFT - simulation mean) / sqrt(err_DMFT^2 + err_sim^2) for every entry of M (p x k),
the upper triangle of Q, the train loss and the test error, at every step.  Entries that are
exact on both sides (M and Q at t = 0) have zero combined error and are reported as z = 0 when
they agree to 1e-9.
"""
from dataclasses import dataclass

import numpy as np

from .errors import ProblemError

OBSERVABLES = ("M", "Q", "train_loss", "test_error")
#: agreement: every (normal-equivalent) |z| at most this
Z_MAX = 3.5


def entries(name, x):
    """(T+1, m) array of the independent entries of an observable."""
    if name == "Q":
        iu = np.triu_indices(x.shape[-1])
        return x[:, iu[0], iu[1]]
    return x.reshape(x.shape[0], -1)


@dataclass(eq=False)
class Comparison:
    """z-scores of a DMFT :class:`~dmft.Result` against a :class:`~dmft.SimResult`:
    ``z[name]`` has shape (T+1, entries) (:func:`~dmft.compare.entries`) for each of
    :data:`~dmft.compare.OBSERVABLES`."""

    result: object
    sim: object
    z: dict

    @property
    def z_max(self):
        """The agreement threshold on |z| (figures shade |z| <= z_max)."""
        return Z_MAX

    def worst(self, names=OBSERVABLES):
        """Largest |z| over the given observables and all steps (NaN-aware)."""
        return float(max(np.nanmax(np.abs(self.z[n])) if np.isfinite(self.z[n]).any() else 0.0
                         for n in names))

    def worst_per_step(self, names=OBSERVABLES):
        """Largest |z| at each step over the given observables, shape (T+1,)."""
        return np.nanmax(np.concatenate([np.abs(self.z[n]) for n in names], axis=1), axis=1)

    def table(self):
        """Agreement table: worst |z| per observable and the step where it occurs."""
        lines = ["observable   worst|z|  at step", "-----------  --------  -------"]
        for n in OBSERVABLES:
            a = np.abs(self.z[n])
            t = int(np.nanargmax(np.nanmax(a, axis=1))) if np.isfinite(a).any() else 0
            lines.append(f"{n:<11}  {np.nanmax(a):8.2f}  {t:7d}")
        lines.append(f"d = {self.sim.d}, {self.sim.n_seeds} seeds; DMFT {self.result.n_paths} "
                     f"paths.  |z| <= {Z_MAX} everywhere: {self.worst() <= Z_MAX}")
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
    z = {}
    for name in OBSERVABLES:
        th, eth = entries(name, getattr(result, name)), entries(name, getattr(result, name + "_err"))
        sm, esm = entries(name, getattr(sim, name)), entries(name, getattr(sim, name + "_err"))
        diff, den = th - sm, np.sqrt(eth ** 2 + esm ** 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            zz = diff / den
        exact = ~(den > 1e-12)
        zz[exact] = np.where(np.abs(diff[exact]) < 1e-9, 0.0, np.inf)
        z[name] = zz
    return Comparison(result, sim, z)
