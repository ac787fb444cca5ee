"""Figures of learning curves: one run (a DMFT :class:`~dmft.Result` or a
:class:`~dmft.SimResult`), theory against simulation (a :class:`~dmft.compare.Comparison`),
several schedules on one figure, the paper's story (:func:`plot_story`), and the calibration QQ
plot of the validation suite (:func:`plot_calibration`).

One convention in every figure (decisions recorded here):

* the DMFT is a line with a band of +-2 standard errors (with 10^6 paths the band is often
  thinner than the line: the residual panel then tells the agreement);
* a simulation is open markers with +-2 standard-error bars; markers of different entries are
  shifted sideways by at most 0.15 step so that coinciding entries (Q11 and Q22 of a
  symmetric problem) stay visible, and entries differ in line style and marker too;
* under each quantity a residual panel shows z = (DMFT - simulation) / combined standard error
  at every step, shaded where |z| is below the raw |z| at which one entry alone would fail the
  agreement test (``Comparison.z_max``, from :mod:`dmft.agreement`);
* the columns are the quantities of the tables (:data:`dmft.quantities.QUANTITIES`):
  normalised overlaps M_jr / sqrt(Q_jj), the entries of Q, the train loss and the test error;
  then, when the problem has them (:func:`dmft.quantities.quantities_for`), the class error
  (+-1 labels), the second layer a_j(t) (trained readout) and the refit error (trained readout,
  or on request);
* the title gives every parameter of the problem (ridge and label noise included) and of the
  runs.
"""
import numpy as np

from .io import save_figure
from .quantities import M_RAW, QUANTITIES, Quantity, entries, quantities_for, series  # noqa: F401


LINESTYLES = ("-", (0, (5, 2)), "-.", (0, (1, 1.2)), (0, (8, 2, 1, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
SCHEDULE_COLORS = ("C0", "C3", "C2", "C1", "C4", "C5")
BAND_ALPHA = 0.3
DODGE = 0.15
#: what a figure of several schedules leaves out of its problem title
ONE_OF_SEVERAL = ("schedule",)


def _count(n):
    """10^6 for powers of ten, 200,000 otherwise."""
    n = int(n)
    exp = int(round(np.log10(n))) if n > 0 else 0
    return f"$10^{{{exp}}}$" if n == 10 ** exp and exp >= 3 else f"{n:,}"


def problem_title(pr, swept=()):
    """Every parameter of a problem on one line; the fields in ``swept`` (e.g. those of a
    sweep, or "schedule" when several are drawn) are left out."""
    default_a = np.allclose(pr.a, [(1 if j % 2 == 0 else -1) / np.sqrt(pr.p)
                                   for j in range(pr.p)])
    parts = [("target", f"f* = {pr.target.expr}"), ("activation", f"{pr.activation} student"),
             ("p", f"p = {pr.p}"), ("k", f"k = {pr.k}"),
             ("a", "" if default_a else f"a = [{', '.join(f'{x:.3g}' for x in pr.a)}]"),
             ("alpha", rf"$\alpha$ = {pr.alpha:g}"), ("eta", rf"$\eta$ = {pr.eta:g}"),
             ("ridge", f"ridge = {pr.ridge:g}"), ("noise", f"noise = {pr.noise:g}"),
             ("schedule", pr.schedule), ("steps", f"T = {pr.steps}"),
             ("loss", "" if pr.loss == "square" else f"{pr.loss} loss"),
             ("readout", "" if pr.readout == "fixed" else
              rf"trained readout ($\eta_a$ = {pr.eta_readout:g}, ridge$_a$ = {pr.ridge_readout:g})"),
             ("normalize", "" if pr.normalize == "none" else "spherical GD")]
    return ", ".join(text for name, text in parts if text and name not in swept)


def run_title(run):
    """The run's own settings: DMFT paths and replicas, or the simulation's d, n and seeds."""
    if hasattr(run, "n_paths"):
        text = f"DMFT: {_count(run.n_paths)} paths, {run.n_groups} replicas, seed {run.seed}"
    else:
        text = (f"GD: d = {run.d:,}, n = {run.n:,}, {run.n_seeds} seeds, {run.dtype}, "
                f"seed {run.seed}")
    return text + ("" if run.ok else f"  [{run.status}: {run.message}]")


def draw_dmft(ax, t, y, e, color, ls="-", label=None):
    """A DMFT curve: a line and its +-2 standard-error band."""
    ax.fill_between(t, y - 2 * e, y + 2 * e, color=color, alpha=BAND_ALPHA, lw=0)
    ax.plot(t, y, color=color, ls=ls, lw=1.6, label=label)


def draw_sim(ax, t, y, e, color, marker="o", shift=0.0, label=None, line=False):
    """A simulation: open markers with +-2 standard-error bars (shifted by ``shift`` steps;
    joined by a thin line when ``line``)."""
    ax.errorbar(t + shift, y, yerr=2 * e, fmt=marker, ms=4.5, mfc="white", mew=1.2,
                color=color, ecolor=color, elinewidth=1.0, capsize=2, ls="-" if line else "none",
                lw=0.6, label=label, zorder=3)


def zscore(cmp, quantity, index):
    """z of one entry at every step: the comparison's own when it has the quantity, else
    (DMFT - simulation) / sqrt(err_DMFT^2 + err_sim^2) (exact agreement on both sides: 0)."""
    if quantity.name in cmp.z:
        cols = [i for i, _ in entries(quantity, cmp.result.problem)]
        return np.asarray(cmp.z[quantity.name])[:, cols.index(index)]
    y, e = series(cmp.result, quantity.name, index)
    ys, es = series(cmp.sim, quantity.name, index)
    den = np.sqrt(e ** 2 + es ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (y - ys) / den
    exact = ~(den > 1e-12)
    z[exact] = np.where(np.abs((y - ys)[exact]) < 1e-9, 0.0, np.inf)
    return z


def style_legend(fig, kinds=("dmft", "sim"), where="outside upper center"):
    """A figure legend saying what lines, bands and markers are."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = []
    if "dmft" in kinds:
        handles += [(Patch(color="0.4", alpha=BAND_ALPHA, lw=0), Line2D([], [], color="0.2")),
                    ]
    if "sim" in kinds:
        handles.append(Line2D([], [], marker="o", mfc="white", color="0.2", ls="none"))
    labels = (["DMFT (line, band: +-2 standard errors)"] if "dmft" in kinds else []) + \
        (["GD simulation (markers, bars: +-2 standard errors)"] if "sim" in kinds else [])
    from matplotlib.legend_handler import HandlerTuple
    fig.legend(handles, labels, loc=where, ncol=len(labels), fontsize=8, frameon=False,
               handler_map={tuple: HandlerTuple(ndivide=1)})


def panel_set(fig, comparisons, names=None, quantities=QUANTITIES):
    """Draw comparisons into ``fig`` (a Figure or SubFigure): one column per quantity, values
    above and the residual z below.  One comparison: one colour per entry.  Several (one
    problem under several schedules, ``names``): one colour per comparison, entries told
    apart by line style and marker.  Returns {quantity name: (values axes, z axes)}."""
    ncol = len(quantities)
    gs = fig.add_gridspec(2, ncol, height_ratios=(3, 1.25))
    zmax = comparisons[0].z_max
    axes = {}
    for c, q in enumerate(quantities):
        ax = fig.add_subplot(gs[0, c])
        zax = fig.add_subplot(gs[1, c], sharex=ax)
        ax.set_label(q.name)
        zax.set_label(q.name + "_z")
        worst = 0.0
        for n, cmp in enumerate(comparisons):
            res, sim = cmp.result, cmp.sim
            ents = entries(q, res.problem)
            for e, (index, label) in enumerate(ents):
                color = f"C{e % 10}" if len(comparisons) == 1 else \
                    SCHEDULE_COLORS[n % len(SCHEDULE_COLORS)]
                if len(comparisons) > 1:
                    label = (names[n] if e == 0 else None) if len(ents) == 1 else \
                        (f"{names[n]}, {label}" if e < 4 else None)
                shift = DODGE * (e - (len(ents) - 1) / 2) / max(1, (len(ents) - 1) / 2) \
                    if len(ents) > 1 else 0.0
                ls, mk = LINESTYLES[e % len(LINESTYLES)], MARKERS[e % len(MARKERS)]
                y, err = series(res, q.name, index)
                ys, errs = series(sim, q.name, index)
                draw_dmft(ax, res.t, y, err, color, ls, label or None)
                draw_sim(ax, sim.t, ys, errs, color, mk, shift)
                z = zscore(cmp, q, index)
                zax.plot(res.t + shift, z, marker=mk, ms=3.5, mfc="white", color=color,
                         lw=0.7, ls=ls)
                finite = np.abs(z[np.isfinite(z)])
                worst = max(worst, float(finite.max()) if finite.size else 0.0)
        ax.set_title(f"{q.title}\nworst |z| = {worst:.2f}", fontsize=9)
        labelled = [h for h in ax.get_lines() if not h.get_label().startswith("_")]
        if len(labelled) > 1 and (c == 0 or len(entries(q, comparisons[0].result.problem)) > 1):
            ax.legend(fontsize=7, ncol=2 if len(labelled) > 4 else 1, handlelength=2.6)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.tick_params(labelbottom=False)
        zax.axhspan(-zmax, zmax, color="0.93", zorder=0)
        for sign in (-1, 1):
            zax.axhline(sign * zmax, color="0.6", lw=0.6, ls="--")
        zax.axhline(0.0, color="0.5", lw=0.6)
        lim = max(zmax + 0.5, 1.1 * worst)
        zax.set_ylim(-lim, lim)
        zax.set_xlabel("step t")
        zax.set_ylabel("z" if c else f"z  (shaded: |z| <= {zmax:.2f})", fontsize=8)
        zax.grid(alpha=0.3)
        axes[q.name] = (ax, zax)
    return axes


def new_figure(path, fig, size):
    """A figure without pyplot when saving to a file (leaves the user's backend alone); laid
    out by matplotlib's constrained layout."""
    if fig is None:
        if path is not None:
            from matplotlib.figure import Figure
            fig = Figure(figsize=size)
        else:
            import matplotlib.pyplot as plt
            fig = plt.figure(figsize=size)
    fig.set_layout_engine("constrained")
    return fig


def finish(fig, path):
    """Save ``fig`` atomically when ``path`` is given; returns ``fig``."""
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_result(res, path=None, fig=None, refit=None):
    """One run: normalised overlaps, Q, train loss and test error per step, and what the
    problem has beyond the paper's model (:func:`dmft.quantities.quantities_for`) (a DMFT
    Result: lines and +-2 standard-error bands; a SimResult: markers and +-2 standard-error
    bars).

    Parameters
    ----------
    res : Result or SimResult
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
    quantities = quantities_for(res.problem, refit)
    fig = new_figure(path, fig, (3.75 * len(quantities), 3.9))
    axes = fig.subplots(1, len(quantities))
    dmft = hasattr(res, "n_paths")
    for ax, q in zip(axes, quantities):
        ents = entries(q, res.problem)
        for e, (index, label) in enumerate(ents):
            y, err = series(res, q.name, index)
            color, ls, mk = f"C{e % 10}", LINESTYLES[e % len(LINESTYLES)], MARKERS[e % 7]
            if dmft:
                draw_dmft(ax, res.t, y, err, color, ls, label or None)
            else:
                shift = DODGE * (e - (len(ents) - 1) / 2) / max(1, (len(ents) - 1) / 2) \
                    if len(ents) > 1 else 0.0
                draw_sim(ax, res.t, y, err, color, mk, shift, label or None, line=True)
        ax.set_title(q.title, fontsize=9)
        ax.set_xlabel("step t")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
        if len(ents) > 1:
            ax.legend(fontsize=7, ncol=2 if len(ents) > 4 else 1, handlelength=2.6)
    fig.suptitle(f"{run_title(res)}\n{problem_title(res.problem)}", fontsize=9)
    style_legend(fig, ("dmft",) if dmft else ("sim",), "outside lower center")
    return finish(fig, path)


def plot_comparison(cmp, path=None, fig=None, quantities=None):
    """Theory against simulation: DMFT lines and bands, simulation markers and bars, and the
    residual z of every entry under each quantity; the worst |z| in each title.

    Parameters
    ----------
    cmp : Comparison
    path : str, optional
        Save the figure there (atomically).
    fig : matplotlib.figure.Figure, optional
        Draw into this figure.
    quantities : tuple of Quantity, optional
        The columns (default: :func:`dmft.quantities.quantities_for` the problem).

    Returns
    -------
    matplotlib.figure.Figure
        Its axes carry the quantity's name as their label (``ax.get_label()``; ``NAME_z`` for
        the residual panels).
    """
    quantities = quantities or quantities_for(cmp.result.problem)
    fig = new_figure(path, fig, (3.9 * len(quantities), 6.2))
    panel_set(fig, [cmp], quantities=quantities)
    fig.suptitle(f"{run_title(cmp.result)}  vs  {run_title(cmp.sim)}\n"
                 f"{problem_title(cmp.result.problem)}", fontsize=9)
    style_legend(fig, where="outside lower center")
    return finish(fig, path)


def plot_schedules(comparisons, path=None, fig=None):
    """One problem under several schedules (one colour each): DMFT lines and bands,
    simulation markers and bars, residual z panels.

    Parameters
    ----------
    comparisons : list of Comparison
        The same problem under different schedules.
    path : str, optional
    fig : matplotlib.figure.Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    quantities = quantities_for(comparisons[0].result.problem)
    fig = new_figure(path, fig, (3.9 * len(quantities), 6.2))
    names = [c.result.problem.schedule for c in comparisons]
    panel_set(fig, comparisons, names, quantities)
    first = comparisons[0]
    title = problem_title(first.result.problem, ONE_OF_SEVERAL)
    fig.suptitle(f"{' vs '.join(names)}:  {run_title(first.result)}  vs  "
                 f"{run_title(first.sim)}\n{title}", fontsize=9)
    style_legend(fig, where="outside lower center")
    return finish(fig, path)


def plot_story(main, schedules, path=None, fig=None):
    """The paper's story on one figure: (a) a problem's theory against simulation
    (:func:`plot_comparison`), (b) a problem under several schedules (:func:`plot_schedules`),
    e.g. He3 one-pass against multi-pass.

    Parameters
    ----------
    main : Comparison
    schedules : list of Comparison
    path : str, optional
    fig : matplotlib.figure.Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    quantities = quantities_for(main.result.problem)
    fig = new_figure(path, fig, (3.9 * len(quantities), 12.6))
    top, bottom = fig.subfigures(2, 1, hspace=0.04)
    panel_set(top, [main], quantities=quantities)
    top.suptitle(f"(a) {run_title(main.result)}  vs  {run_title(main.sim)}\n"
                 f"{problem_title(main.result.problem)}", fontsize=9.5)
    names = [c.result.problem.schedule for c in schedules]
    panel_set(bottom, schedules, names, quantities_for(schedules[0].result.problem))
    first = schedules[0]
    title = problem_title(first.result.problem, ONE_OF_SEVERAL)
    bottom.suptitle(f"(b) {' vs '.join(names)} GD:  {run_title(first.result)}  vs  "
                    f"{run_title(first.sim)}\n{title}", fontsize=9.5)
    style_legend(fig, where="outside lower center")
    return finish(fig, path)


def plot_calibration(cal, cases, z_normal, path=None, fig=None):
    """QQ plots of the validation suite's calibration (:func:`dmft.agreement.calibration`).

    Parameters
    ----------
    cal : Calibration
        The suite's calibration test.
    cases : list of str
        Case names in the order of their sorted dispersion p-values (labels of the points).
    z_normal : ndarray
        The pooled signed normal-equivalent z-scores of all cases (steps t >= 1).
    path : str, optional
        Save the figure there (atomically).
    fig : matplotlib Figure, optional

    Returns
    -------
    matplotlib Figure
    """
    from scipy import stats
    fig = new_figure(path, fig, (11, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    qq = cal.qq
    if cal.n_cases:
        ax1.fill_between(qq["expected"], qq["lower"], qq["upper"], color="0.85",
                         label="95% band (pointwise)")
        ax1.plot([0, 1], [0, 1], color="0.4", lw=0.8)
        ax1.plot(qq["expected"], qq["observed"], "o", color="C0", label="cases")
        for x, y, name in zip(qq["expected"], qq["observed"], cases):
            ax1.annotate(name, (x, y), xytext=(4, -3), textcoords="offset points", fontsize=6)
    ax1.set_xlabel("uniform quantile")
    ax1.set_ylabel("dispersion p-value of a case (sorted)")
    ax1.set_title(f"calibration test: Stouffer Z = {cal.statistic:.2f}, p = {cal.p_value:.3g}\n"
                  f"({cal.n_cases} cases, level {cal.level:g})", fontsize=10)
    ax1.legend(fontsize=8, loc="upper left")
    z = np.sort(np.asarray(z_normal, dtype=float))
    if len(z):
        q = stats.norm.ppf((np.arange(1, len(z) + 1) - 0.5) / len(z))
        ax2.plot(q, z, ".", ms=3, color="C1")
        lim = max(4.0, float(np.abs(z).max()) + 0.3)
        ax2.plot([-lim, lim], [-lim, lim], color="0.4", lw=0.8)
    ax2.set_xlabel("N(0, 1) quantile")
    ax2.set_ylabel("normal-equivalent z (all cases, steps t >= 1)")
    ax2.set_title(f"pooled z-scores ({len(z)}); descriptive: correlated within a case,\n"
                  "so they wander around the line more than independent ones", fontsize=10)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle("Validation suite calibration", fontsize=11)
    return finish(fig, path)
