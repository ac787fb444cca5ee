"""Figures: overlap curves, Q and losses with Monte Carlo error bands."""
from .io import save_figure


def _band(ax, t, y, err, label, **kw):
    line, = ax.plot(t, y, marker="o", ms=3, label=label, **kw)
    ax.fill_between(t, y - 2 * err, y + 2 * err, color=line.get_color(), alpha=0.25, lw=0)
    return line


def new_figure(path, fig, size):
    """A figure without pyplot when saving to a file (leaves the user's backend alone)."""
    if fig is not None:
        return fig
    if path is not None:
        from matplotlib.figure import Figure
        return Figure(figsize=size)
    import matplotlib.pyplot as plt
    return plt.figure(figsize=size)


def finish(fig, path):
    """Lay out ``fig`` and, when ``path`` is given, save it atomically; returns ``fig``."""
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_result(res, path=None, fig=None):
    """Three panels: normalised overlaps M_jr/sqrt(Q_jj), Q entries, train/test losses
    (for a DMFT Result or a SimResult).

    Bands are +-2 standard errors.  Returns the matplotlib Figure (saved to ``path`` if given)."""
    fig = new_figure(path, fig, (13, 3.8))
    axes = fig.subplots(1, 3)
    t = res.t
    p, k = res.problem.p, res.problem.k
    for j in range(p):
        for r in range(k):
            _band(axes[0], t, res.overlap[:, j, r], res.overlap_err[:, j, r],
                  rf"$m_{{{j + 1}{r + 1}}}$")
    axes[0].set_title("overlap $M_{jr}/\\sqrt{Q_{jj}}$")
    for j in range(p):
        for l in range(j, p):
            _band(axes[1], t, res.Q[:, j, l], res.Q_err[:, j, l], rf"$Q_{{{j + 1}{l + 1}}}$")
    axes[1].set_title("$Q$")
    _band(axes[2], t, res.train_loss, res.train_loss_err, "train loss")
    _band(axes[2], t, res.test_error, res.test_error_err, "test error")
    axes[2].set_title("losses")
    for ax in axes:
        ax.set_xlabel("step t")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    pr = res.problem
    what = f"DMFT N={res.n_paths:g}" if hasattr(res, "n_paths") else \
        f"GD d={res.d}, {res.n_seeds} seeds"
    fig.suptitle(f"{what}:  f*={pr.target.expr}, {pr.activation}, p={p}, alpha={pr.alpha:g}, "
                 f"eta={pr.eta:g}" + ("" if res.ok else f"  [{res.status}]"), fontsize=10)
    return finish(fig, path)


def plot_comparison(cmp, path=None, fig=None):
    """DMFT bands (+-2 errors) and simulation means with 2-error bars: M per neuron and
    direction, Q entries, train loss, test error; the worst |z| in each title."""
    res, sim = cmp.result, cmp.sim
    fig = new_figure(path, fig, (12, 8))
    axes = fig.subplots(2, 2).ravel()
    t = res.t
    p, k = res.problem.p, res.problem.k

    def pair(ax, y, e, ys, es, label):
        line = _band(ax, t, y, e, label + " DMFT")
        ax.errorbar(t, ys, yerr=2 * es, fmt="s", ms=4, mfc="none", color=line.get_color(),
                    capsize=2, label=label + " sim")

    for j in range(p):
        for r in range(k):
            pair(axes[0], res.M[:, j, r], res.M_err[:, j, r], sim.M[:, j, r], sim.M_err[:, j, r],
                 f"M{j + 1}{r + 1}")
    for j in range(p):
        for l in range(j, p):
            pair(axes[1], res.Q[:, j, l], res.Q_err[:, j, l], sim.Q[:, j, l], sim.Q_err[:, j, l],
                 f"Q{j + 1}{l + 1}")
    pair(axes[2], res.train_loss, res.train_loss_err, sim.train_loss, sim.train_loss_err, "train")
    pair(axes[3], res.test_error, res.test_error_err, sim.test_error, sim.test_error_err, "test")
    for ax, name, title in zip(axes, ("M", "Q", "train_loss", "test_error"),
                               ("overlaps M", "Q", "train loss", "test error")):
        ax.set_title(f"{title}   worst |z| = {cmp.worst((name,)):.2f}", fontsize=10)
        ax.set_xlabel("step t")
        ax.legend(fontsize=6, ncol=2)
        ax.grid(alpha=0.3)
    pr = res.problem
    fig.suptitle(f"DMFT (N={res.n_paths:g}) vs GD (d={sim.d}, {sim.n_seeds} seeds): "
                 f"f*={pr.target.expr}, {pr.activation}, p={p}, alpha={pr.alpha:g}, "
                 f"eta={pr.eta:g}", fontsize=10)
    return finish(fig, path)


def plot_schedules(comparisons, path=None, fig=None):
    """Several schedules on one figure: normalised overlaps, train loss and test error; DMFT
    as bands (+-2 errors), simulations as points with 2-error bars, one colour per schedule."""
    fig = new_figure(path, fig, (14, 4.2))
    axes = fig.subplots(1, 3)
    colors = ["C0", "C3", "C2", "C1", "C4", "C5"]
    for n, cmp in enumerate(comparisons):
        res, sim = cmp.result, cmp.sim
        c = colors[n % len(colors)]
        name = res.problem.schedule
        p, k = res.problem.p, res.problem.k
        for j in range(p):
            for r in range(k):
                lab = name if (j, r) == (0, 0) else None
                _band(axes[0], res.t, res.overlap[:, j, r], res.overlap_err[:, j, r], lab, color=c)
                axes[0].errorbar(res.t, sim.overlap[:, j, r], yerr=2 * sim.overlap_err[:, j, r],
                                 fmt="s", ms=3, mfc="none", color=c, capsize=2)
        for ax, key in ((axes[1], "train_loss"), (axes[2], "test_error")):
            _band(ax, res.t, getattr(res, key), getattr(res, key + "_err"), name, color=c)
            ax.errorbar(res.t, getattr(sim, key), yerr=2 * getattr(sim, key + "_err"), fmt="s",
                        ms=3, mfc="none", color=c, capsize=2)
    for ax, title in zip(axes, ("overlap $M_{jr}/\\sqrt{Q_{jj}}$", "train loss", "test error")):
        ax.set_title(title)
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    pr, sim = comparisons[0].result.problem, comparisons[0].sim
    fig.suptitle(f"DMFT (lines, bands) vs GD (squares, d={sim.d}, {sim.n_seeds} seeds): "
                 f"f*={pr.target.expr}, {pr.activation}, p={pr.p}, alpha={pr.alpha:g}, "
                 f"eta={pr.eta:g}", fontsize=10)
    return finish(fig, path)
