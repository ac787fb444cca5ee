"""Figures: overlap curves, Q and losses with Monte Carlo error bands."""



def _band(ax, t, y, err, label, **kw):
    line, = ax.plot(t, y, marker="o", ms=3, label=label, **kw)
    ax.fill_between(t, y - 2 * err, y + 2 * err, color=line.get_color(), alpha=0.25, lw=0)
    return line


def plot_result(res, path=None, fig=None):
    """Three panels: normalised overlaps M_jr/sqrt(Q_jj), Q entries, train/test losses.

    Bands are +-2 standard errors.  Returns the matplotlib Figure (saved to ``path`` if given)."""
    if fig is None:
        if path is not None:        # no pyplot: leaves the user's backend and figures alone
            from matplotlib.figure import Figure
            fig = Figure(figsize=(13, 3.8))
        else:
            import matplotlib.pyplot as plt
            fig = plt.figure(figsize=(13, 3.8))
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
    fig.suptitle(f"DMFT  f*={pr.target.expr}, {pr.activation}, p={p}, alpha={pr.alpha:g}, "
                 f"eta={pr.eta:g}, N={res.n_paths:g}" + ("" if res.ok else f"  [{res.status}]"),
                 fontsize=10)
    fig.tight_layout()
    if path is not None:
        from .io import _atomic_savefig
        _atomic_savefig(fig, path)
    return fig


__all__ = ["plot_result"]
