"""Figures of parameter sweeps (:mod:`dmft.sweep`).

Overlap summary (decision recorded here): for each target direction r, the point's overlap is
``max_j |M_jr / sqrt(Q_jj)|`` at the last step, the normalised overlap of the best-aligned
neuron (a number in [0, 1], blind to the sign convention of a = +-1/sqrt(p)); its error bar is
the standard error of that selected entry.  Error bars are +-2 standard errors, as in
:mod:`dmft.plotting`.  A diverged point has NaN at the last step: it leaves a gap (grey cell in
a heat map) and is marked with an x at the bottom of the line plots.
"""
import numpy as np

from .errors import ProblemError


def overlap_summary(ds, prefix=""):
    """(value, error) DataArrays over the grid and ``direction``: max over neurons of
    ``|overlap|`` at the last step and the error of the selected entry."""
    ov = abs(ds[prefix + "overlap"].isel(t=-1))
    err = ds[prefix + "overlap_err"].isel(t=-1)
    j = ov.fillna(-1.0).argmax("neuron")
    return ov.isel(neuron=j), err.isel(neuron=j)


def _layout(ds):
    """(x dims, series dim or None) of a sweep: ``schedule`` is a series when other dims exist."""
    grid = list(ds["diverged"].dims)
    series = "schedule" if "schedule" in grid and len(grid) > 1 else None
    xdims = [d for d in grid if d != series]
    if len(xdims) not in (1, 2):
        raise ProblemError("sweep", f"plot_sweep draws sweeps over one or two parameters "
                                    f"(besides schedule), not {xdims}; select with ds.isel first")
    return xdims, series


def _axis(ds, dim):
    """Positions and tick labels of a swept coordinate, and whether to use a log scale."""
    vals = ds[dim].values
    if vals.dtype.kind in "fiu":
        v = vals.astype(float)
        with np.errstate(all="ignore"):     # log axis for geometric grids (NAME=a:b:n:log)
            step = np.diff(np.log(v)) if np.all(v > 0) else np.array([np.nan])
        log = bool(v.size > 2 and np.allclose(step, step[0], rtol=1e-6)
                   and not np.allclose(np.diff(v), v[1] - v[0], rtol=1e-6))
        return v, None, log
    return np.arange(vals.size, dtype=float), [str(s) for s in vals], False


def _series(ds, series):
    return [None] if series is None else list(ds[series].values)


def _sel(da, series, value):
    return da if series is None else da.sel({series: value})


def plot_sweep(ds, path=None, fig=None):
    """Plot a sweep: line plots for one parameter, heat maps for two.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`dmft.sweep.load_sweep`).
    path : str, optional
        Write the figure there (PNG, atomically; no pyplot involved).
    fig : matplotlib Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
        One parameter: a panel per target direction (overlap summary at the last step vs the
        parameter, one line per schedule, simulations as open squares when present) and a
        panel of train (dashed) and test (solid) losses.  Two parameters: per schedule, a heat
        map of the overlap summary per direction and one of the test error.
    """
    from .plotting import finish, new_figure
    xdims, series = _layout(ds)
    k = ds.sizes["direction"]
    rows = len(_series(ds, series)) if len(xdims) == 2 else 1
    fig = new_figure(path, fig, (4.2 * (k + 1), 3.6 * rows))
    if len(xdims) == 1:
        _lines(fig, ds, xdims[0], series, k)
    else:
        _heatmaps(fig, ds, xdims, series, k)
    pr = ds.attrs.get("problem", "")
    fig.suptitle(f"sweep of {' x '.join(xdims)} at t = {int(ds['t'].values[-1])}: "
                 f"{_title(pr)}", fontsize=10)
    return finish(fig, path)


def _title(problem_json):
    import json
    try:
        p = json.loads(problem_json)
        return f"f*={p['target']}, {p['activation']}, p={p['p']}"
    except (ValueError, KeyError, TypeError):
        return ""


def _lines(fig, ds, dim, series, k):
    axes = fig.subplots(1, k + 1, squeeze=False)[0]
    x, labels, log = _axis(ds, dim)
    val, err = overlap_summary(ds)
    sim = "sim_overlap" in ds
    if sim:
        sval, serr = overlap_summary(ds, "sim_")
    last = ds.isel(t=-1)
    for n, s in enumerate(_series(ds, series)):
        c, name = f"C{n}", ("DMFT" if s is None else str(s))
        div = _sel(ds["diverged"], series, s).values.astype(bool)
        for r in range(k):
            ax = axes[r]
            y = _sel(val, series, s).isel(direction=r).values
            e = _sel(err, series, s).isel(direction=r).values
            ax.errorbar(x, y, yerr=2 * e, fmt="o-", ms=3, capsize=2, color=c, label=name)
            if sim:
                ax.errorbar(x, _sel(sval, series, s).isel(direction=r).values,
                            yerr=2 * _sel(serr, series, s).isel(direction=r).values, fmt="s",
                            ms=4, mfc="none", capsize=2, color=c, label=f"{name} (sim)")
        for ax in axes:
            if div.any():
                ax.plot(x[div], np.full(div.sum(), 0.02), "x", color=c, ms=7,
                        transform=ax.get_xaxis_transform(),
                        label=f"{name}: diverged" if ax is axes[-1] else None)
        ax = axes[-1]
        for key, style in (("train_loss", "--"), ("test_error", "-")):
            y = _sel(last[key], series, s).values
            e = _sel(last[key + "_err"], series, s).values
            ax.errorbar(x, y, yerr=2 * e, fmt="o" + style, ms=3, capsize=2, color=c,
                        label=f"{name} {key.replace('_', ' ')}")
    for r, ax in enumerate(axes):
        ax.set_title(f"max$_j$ |overlap$_{{j{r + 1}}}$|" if r < k else "train (--), test (-)")
        ax.set_xlabel(dim)
        if log:
            ax.set_xscale("log")
        if labels is not None:
            ax.set_xticks(x, labels, rotation=30, fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    losses = last[["train_loss", "test_error"]].to_array().values
    if np.any(np.isfinite(losses)) and np.nanmin(losses) > 0:
        axes[-1].set_yscale("log")


def _heatmaps(fig, ds, xdims, series, k):
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize
    svals = _series(ds, series)
    axes = fig.subplots(len(svals), k + 1, squeeze=False)
    ydim, xdim = xdims
    cmap = colormaps["viridis"].with_extremes(bad="0.8")
    val, _ = overlap_summary(ds)
    vmax = float(val.max()) if bool(np.isfinite(val).any()) else 1.0
    test = ds["test_error"].isel(t=-1)
    for row, s in enumerate(svals):
        for r in range(k + 1):
            ax = axes[row, r]
            da = _sel(val, series, s).isel(direction=r) if r < k else _sel(test, series, s)
            z = da.transpose(ydim, xdim).values.astype(float)
            norm = None
            if r == k and np.any(np.isfinite(z)) and np.nanmin(z) > 0 \
                    and np.nanmax(z) > 10 * np.nanmin(z):       # losses blow up near divergence
                norm = LogNorm(np.nanmin(z), np.nanmax(z))
            elif r < k:                     # one colour scale for every overlap panel
                norm = Normalize(0.0, max(vmax, 1e-12))
            im = ax.imshow(np.ma.masked_invalid(z), origin="lower", aspect="auto", cmap=cmap,
                           norm=norm, interpolation="nearest")
            fig.colorbar(im, ax=ax)
            for dim, setter in ((xdim, _xticks), (ydim, _yticks)):
                setter(ax, ds[dim].values)
            ax.set_xlabel(xdim)
            ax.set_ylabel(ydim)
            what = f"max$_j$ |overlap$_{{j{r + 1}}}$|" if r < k else "test error"
            ax.set_title(what + ("" if s is None else f"  [{s}]"), fontsize=9)


def _ticks(values):
    n = len(values)
    step = max(1, int(np.ceil(n / 8)))
    pos = np.arange(0, n, step)
    fmt = [f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v) for v in values[pos]]
    return pos, fmt


def _xticks(ax, values):
    pos, fmt = _ticks(values)
    ax.set_xticks(pos, fmt, rotation=30, fontsize=7)


def _yticks(ax, values):
    pos, fmt = _ticks(values)
    ax.set_yticks(pos, fmt, fontsize=7)
