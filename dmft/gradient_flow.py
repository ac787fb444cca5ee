"""Step size against gradient flow: one problem solved at several learning rates up to the same
time tau = eta t, and the extrapolation eta -> 0 (the gradient-flow limit) with error bars.

At fixed tau the DMFT observables of GD with step eta are smooth in eta, y(eta, tau) =
y_GF(tau) + b(tau) eta + c(tau) eta^2 + ...  At every common time tau (one that is a whole number
of steps for every eta) and for every entry of M, Q, the train loss and the test error,
:func:`extrapolate` fits that polynomial (degree 1 or 2) by weighted least squares, weights
1/err^2 from the runs' Monte Carlo errors (independent runs: different seeds), and reports the
intercept y_GF(tau), its standard error from the fit's covariance, and the fit's chi^2 per degree
of freedom (about 1 when the polynomial describes the data within errors; larger when the
truncation shows).
"""
from dataclasses import dataclass

import numpy as np

from .errors import ProblemError
from .solver import solve

OBSERVABLES = ("M", "Q", "train_loss", "test_error")


def same_time(problem, etas, time):
    """The problem at each learning rate, with as many steps as reach ``time`` = eta * steps.

    Parameters
    ----------
    problem : Problem
        The problem (its ``eta`` and ``steps`` are replaced).
    etas : sequence of float
        Distinct positive learning rates; ``time / eta`` must be a whole number for each.
    time : float
        The time eta * steps every run reaches.

    Returns
    -------
    list of Problem
    """
    etas = [float(e) for e in etas]
    if len(etas) < 2 or len(set(etas)) != len(etas) or min(etas) <= 0:
        raise ProblemError("etas", f"need at least two distinct positive learning rates, "
                                   f"got {etas}")
    if not time > 0:
        raise ProblemError("time", f"must be positive, got {time}")
    out = []
    for eta in etas:
        steps = time / eta
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ProblemError("etas", f"time / eta must be a whole number of steps; "
                                       f"{time} / {eta} = {steps:g}")
        out.append(problem.replace(eta=eta, steps=int(round(steps))))
    return out


def solve_same_time(problem, etas, time, seed=0, **options):
    """:func:`dmft.solve` at every learning rate of :func:`same_time` (seed ``seed + i`` for
    the i-th, so that the runs are independent).

    Parameters
    ----------
    problem : Problem
    etas : sequence of float
    time : float
    seed : int
    **options
        Options of :func:`dmft.solve` (``n_paths``, ...).

    Returns
    -------
    list of Result
    """
    return [solve(pr, seed=seed + i, **options)
            for i, pr in enumerate(same_time(problem, etas, time))]


def common_times(etas, time):
    """The times tau <= ``time`` that are a whole number of steps at every eta (multiples of
    the largest eta that are), as an array."""
    big = max(etas)
    taus = big * np.arange(int(round(time / big)) + 1)
    ok = np.ones(len(taus), bool)
    for eta in etas:
        k = taus / eta
        ok &= np.abs(k - np.round(k)) <= 1e-9 * np.maximum(k, 1.0)
    return taus[ok]


def series(result, name, taus):
    """Value and error of observable ``name`` of ``result`` at the times ``taus`` (steps
    tau / eta)."""
    t = np.round(np.asarray(taus) / result.problem.eta).astype(int)
    return getattr(result, name)[t], getattr(result, name + "_err")[t]


@dataclass
class GradientFlowLimit:
    """Extrapolation eta -> 0 at common times.

    Attributes
    ----------
    tau : ndarray, shape (n,)
        The common times eta t.
    etas : ndarray
        The learning rates extrapolated from.
    degree : int
        Degree of the polynomial in eta.
    value, error : dict of str to ndarray
        Per observable name, the intercept y_GF(tau) (n, ...) and its standard error.
    chi2 : dict of str to ndarray
        Per observable name, the fit's chi^2 per degree of freedom (n, ...) (NaN without
        one).
    """

    tau: np.ndarray
    etas: np.ndarray
    degree: int
    value: dict
    error: dict
    chi2: dict


def wls_intercept(x, y, e, degree):
    """Weighted least-squares polynomial fits in x (n,) of y, e (n, m) (one fit per column):
    intercepts, their standard errors and chi^2 per degree of freedom."""
    X = np.vander(x, degree + 1, increasing=True)                          # (n, d+1)
    e = np.maximum(e, 1e-12 * np.abs(y) + 1e-150)           # exact values (t = 0): tiny error
    w = 1.0 / e ** 2                                                      # (n, m)
    A = np.einsum("ni,nm,nj->mij", X, w, X)                               # (m, d+1, d+1)
    b = np.einsum("ni,nm,nm->mi", X, w, y)
    cov = np.linalg.inv(A)
    beta = np.einsum("mij,mj->mi", cov, b)
    resid = y - X @ beta.T
    dof = len(x) - degree - 1
    chi2 = (w * resid ** 2).sum(axis=0) / dof if dof > 0 else np.full(y.shape[1], np.nan)
    return beta[:, 0], np.sqrt(cov[:, 0, 0]), chi2


def extrapolate(results, degree=2, observables=OBSERVABLES):
    """The gradient-flow limit eta -> 0 of runs that reach the same time (module docstring).

    Parameters
    ----------
    results : sequence of Result
        Runs of one problem at distinct learning rates up to the same time eta * steps (e.g.
        :func:`solve_same_time`), all finished.
    degree : int
        Degree of the polynomial in eta (1 or 2; at least degree + 1 runs).
    observables : sequence of str
        Observables to extrapolate.

    Returns
    -------
    GradientFlowLimit
    """
    etas = np.array([r.problem.eta for r in results])
    times = {round(r.problem.eta * r.problem.steps, 9) for r in results}
    if len(times) != 1:
        raise ProblemError("results", f"runs must reach the same time eta * steps, got "
                                      f"{sorted(times)}")
    if degree not in (1, 2) or len(results) < degree + 1:
        raise ProblemError("degree", f"must be 1 or 2 with at least degree + 1 runs, got "
                                     f"{degree} with {len(results)}")
    bad = [r.problem.eta for r in results if not r.ok]
    if bad:
        raise ProblemError("results", f"runs at eta = {bad} did not finish")
    taus = common_times(etas, times.pop())
    value, error, chi2 = {}, {}, {}
    for name in observables:
        ys, es = zip(*(series(r, name, taus) for r in results))
        y, e = np.stack(ys), np.stack(es)                              # (n_eta, n_tau, ...)
        shape = y.shape[1:]
        v, s, c = wls_intercept(etas, y.reshape(len(etas), -1), e.reshape(len(etas), -1), degree)
        value[name], error[name], chi2[name] = v.reshape(shape), s.reshape(shape), c.reshape(shape)
    return GradientFlowLimit(tau=taus, etas=etas, degree=degree, value=value, error=error,
                             chi2=chi2)


#: the panels of :func:`plot_gradient_flow`: (observable, index, label)
PANELS = (("M", (0, 0), "$M_{11}$"), ("M", (0, 1), "$M_{12}$"), ("Q", (0, 0), "$Q_{11}$"),
          ("train_loss", (), "train loss"), ("test_error", (), "test error"))


def plot_gradient_flow(results, limit, path=None, panels=PANELS):
    """Top row: the runs against tau = eta t and the gradient-flow limit (black, 2-sigma band);
    bottom row: each run minus the limit at the common times (2-sigma bars of the difference),
    so that the sign shows where a finite step is above or below gradient flow.

    Parameters
    ----------
    results : sequence of Result
        The runs :func:`extrapolate` was given.
    limit : GradientFlowLimit
    path : str, optional
        Save the figure there.
    panels : sequence of (str, tuple, str)
        Observable, index into it and label, one column each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(panels), figsize=(3.3 * len(panels), 6.2), sharex=True,
                             squeeze=False)
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(results)))
    for col, (name, idx, label) in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        gf = limit.value[name][(slice(None),) + idx]
        gf_err = limit.error[name][(slice(None),) + idx]
        for r, c in zip(results, colors):
            eta = r.problem.eta
            y = getattr(r, name)[(slice(None),) + idx]
            top.plot(eta * np.arange(len(y)), y, color=c, lw=1.2, label=f"$\\eta$ = {eta:g}")
            v, e = series(r, name, limit.tau)
            d, de = v[(slice(None),) + idx] - gf, np.hypot(e[(slice(None),) + idx], gf_err)
            bottom.errorbar(limit.tau, d, yerr=2 * de, color=c, lw=1, ms=2.5, fmt="o-",
                            capsize=0, elinewidth=0.6)
        top.fill_between(limit.tau, gf - 2 * gf_err, gf + 2 * gf_err, color="k", alpha=0.25,
                         lw=0)
        top.plot(limit.tau, gf, "k--", lw=1.2, label="$\\eta \\to 0$")
        bottom.fill_between(limit.tau, -2 * gf_err, 2 * gf_err, color="k", alpha=0.25, lw=0)
        bottom.axhline(0.0, color="k", lw=0.8, ls="--")
        top.set_title(label, fontsize=10)
        bottom.set_xlabel("time $\\tau = \\eta t$")
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_ylabel("value")
    axes[1, 0].set_ylabel("run $-$ gradient flow")
    fig.suptitle(f"step size against gradient flow: lines the runs, black the limit "
                 f"$\\eta \\to 0$ (degree-{limit.degree} fit in $\\eta$, 2-sigma band)",
                 fontsize=10)
    fig.tight_layout()
    if path is not None:
        from .io import save_figure
        save_figure(fig, path)
    return fig
