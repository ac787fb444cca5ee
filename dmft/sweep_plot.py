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
    """The overlap summary of every point (module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep.
    prefix : str
        "" for the DMFT, "sim_" for the simulations.

    Returns
    -------
    (xarray.DataArray, xarray.DataArray)
        Over the grid and ``direction``: max over neurons of ``|overlap|`` at the last step,
        and the standard error of the selected entry.
    """
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
    """Plot a sweep: line plots for one parameter, heat maps for two; every value with its
    uncertainty.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`dmft.sweep.load_sweep`).
    path : str, optional
        Write the figure there (PNG, atomically; no pyplot involved).
    fig : matplotlib.figure.Figure, optional
        Draw into this figure.

    Returns
    -------
    matplotlib.figure.Figure
        One parameter: a panel per target direction (overlap summary at the last step against
        the parameter, one colour per schedule; DMFT as a line with a band of +-2 standard
        errors, simulations, when present, as open markers with +-2 standard-error bars),
        then the train loss and the test error (log scale when positive).  Two parameters:
        per schedule, a heat map of the overlap summary per direction (cells whose overlap is
        within 2 standard errors of zero hatched), a companion map of 2 standard errors of the
        overlap summary on the same colour scale, and the test error; each cell is annotated
        with its value when the grid is small enough to read.

    Examples
    --------
    >>> from dmft.sweep import load_sweep
    >>> from dmft.sweep_plot import plot_sweep
    >>> fig = plot_sweep(load_sweep("out/step_size_sweep.nc"), "step_size.png")  # doctest: +SKIP
    """
    from .plotting import finish, new_figure, style_legend
    xdims, series = _layout(ds)
    k = ds.sizes["direction"]
    rows = len(_series(ds, series)) if len(xdims) == 2 else 1
    if len(xdims) == 1:
        fig = new_figure(path, fig, (3.9 * (k + 2), 4.2))
        _lines(fig, ds, xdims[0], series, k)
        style_legend(fig, ("dmft", "sim") if "sim_overlap" in ds else ("dmft",),
                     "outside lower center")
    else:
        fig = new_figure(path, fig, (4.3 * (k + 2), 3.7 * rows + 0.8))
        _heatmaps(fig, ds, xdims, series, k)
    fig.suptitle(f"sweep of {' x '.join(xdims)}, values at the last step t = "
                 f"{int(ds['t'].values[-1])}\n{_title(ds)}", fontsize=9)
    return finish(fig, path)


def _title(ds):
    """The base problem and runs of a sweep (swept fields vary around it)."""
    import json

    from .plotting import problem_title
    from .problem import Problem
    try:
        text = problem_title(Problem.from_dict(json.loads(ds.attrs["problem"])),
                             swept=tuple(ds["diverged"].dims))
        solver = json.loads(ds.attrs.get("solver", "null")) or {}
        sim = json.loads(ds.attrs.get("simulation", "null"))
    except (ValueError, KeyError, TypeError, ProblemError):
        return ""
    runs = f"DMFT {solver['n_paths']:,} paths" if "n_paths" in solver else ""
    if sim:
        runs += f", GD d = {sim['d']:,}, {sim['n_seeds']} seeds"
    return f"{text};  {runs}" if runs else text


def _lines(fig, ds, dim, series, k):
    from .plotting import SCHEDULE_COLORS, draw_dmft, draw_sim
    axes = fig.subplots(1, k + 2, squeeze=False)[0]
    x, labels, log = _axis(ds, dim)
    val, err = overlap_summary(ds)
    sim = "sim_overlap" in ds
    if sim:
        sval, serr = overlap_summary(ds, "sim_")
    last = ds.isel(t=-1)
    for n, s in enumerate(_series(ds, series)):
        c = SCHEDULE_COLORS[n % len(SCHEDULE_COLORS)]
        name = "DMFT" if s is None else str(s)
        div = _sel(ds["diverged"], series, s).values.astype(bool)
        panels = [(_sel(val, series, s).isel(direction=r), _sel(err, series, s).isel(
            direction=r), _sel(sval, series, s).isel(direction=r) if sim else None,
            _sel(serr, series, s).isel(direction=r) if sim else None) for r in range(k)]
        for key in ("train_loss", "test_error"):
            panels.append((_sel(last[key], series, s), _sel(last[key + "_err"], series, s),
                           _sel(last["sim_" + key], series, s) if sim else None,
                           _sel(last["sim_" + key + "_err"], series, s) if sim else None))
        for ax, (y, e, ys, es) in zip(axes, panels):
            draw_dmft(ax, x, y.values, e.values, c, label=name)
            ax.plot(x, y.values, ".", color=c, ms=4)
            if sim:
                draw_sim(ax, x, ys.values, es.values, c)
            if div.any():
                ax.plot(x[div], np.full(div.sum(), 0.03), "x", color=c, ms=7, mew=1.5,
                        transform=ax.get_xaxis_transform(),
                        label=f"{name}: diverged" if ax is axes[0] else None)
    titles = [f"overlap: max$_j$ |$M_{{j{r + 1}}}/\\sqrt{{Q_{{jj}}}}$|" for r in range(k)]
    for ax, title in zip(axes, titles + ["train loss", "test error"]):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(dim)
        if log:
            ax.set_xscale("log")
        if labels is not None:
            ax.set_xticks(x, labels, rotation=30, fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    for ax in axes[k:]:
        ys = np.concatenate([ln.get_ydata() for ln in ax.get_lines()
                             if len(ln.get_ydata()) == len(x)]).astype(float)
        if np.any(np.isfinite(ys)) and np.nanmin(ys) > 0 and np.nanmax(ys) > 10 * np.nanmin(ys):
            ax.set_yscale("log")


def _heatmaps(fig, ds, xdims, series, k):
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize
    svals = _series(ds, series)
    axes = fig.subplots(len(svals), k + 2, squeeze=False)
    ydim, xdim = xdims
    cmap = colormaps["viridis"].with_extremes(bad="0.8")
    val, err = overlap_summary(ds)
    vmax = float(val.max()) if bool(np.isfinite(val).any()) else 1.0
    overlap_norm = Normalize(0.0, max(vmax, 1e-12))       # one scale: overlaps and their errors
    test = ds["test_error"].isel(t=-1)
    test_err = ds["test_error_err"].isel(t=-1)
    for row, s in enumerate(svals):
        v, e = _sel(val, series, s), _sel(err, series, s)
        maps = [(v.isel(direction=r), e.isel(direction=r),
                 f"overlap: max$_j$ |$M_{{j{r + 1}}}/\\sqrt{{Q_{{jj}}}}$|") for r in range(k)]
        maps.append((2 * e.max("direction"), None, "2 standard errors of the overlap\n"
                                                    "(largest over directions)"))
        maps.append((_sel(test, series, s), _sel(test_err, series, s), "test error"))
        for col, (da, de, what) in enumerate(maps):
            ax = axes[row, col]
            z = da.transpose(ydim, xdim).values.astype(float)
            ze = None if de is None else de.transpose(ydim, xdim).values.astype(float)
            norm = overlap_norm
            if col == k + 1:
                norm = None
                if np.any(np.isfinite(z)) and np.nanmin(z) > 0 \
                        and np.nanmax(z) > 10 * np.nanmin(z):    # losses blow up near divergence
                    norm = LogNorm(np.nanmin(z), np.nanmax(z))
            im = ax.imshow(np.ma.masked_invalid(z), origin="lower", aspect="auto", cmap=cmap,
                           norm=norm, interpolation="nearest")
            fig.colorbar(im, ax=ax)
            if col < k:                       # significance mask: overlap within 2 s.e. of 0
                _hatch_cells(ax, np.isfinite(z) & (z < 2 * ze))
            if z.size <= 80:
                _annotate(ax, z, ze, im)
            for dim, setter in ((xdim, _xticks), (ydim, _yticks)):
                setter(ax, ds[dim].values)
            ax.set_xlabel(xdim)
            ax.set_ylabel(ydim)
            ax.set_title(what + ("" if s is None else f"  [{s}]"), fontsize=8.5)
    fig.supxlabel("hatched: overlap within 2 standard errors of zero (not significant);  "
                  "grey: diverged;  numbers: value (+-2 standard errors)", fontsize=8)


def _hatch_cells(ax, mask):
    """Hatch the cells where ``mask`` holds (whole cells: contourf would cut corners)."""
    from matplotlib.patches import Rectangle
    for i, j in zip(*np.nonzero(mask)):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="////", lw=0,
                               edgecolor="white", alpha=0.9))


def _annotate(ax, z, ze, im):
    """Each cell's value (and +-2 standard errors) in black or white, whichever reads."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            if not np.isfinite(z[i, j]):
                continue
            r, g, b, _ = im.cmap(im.norm(z[i, j]))
            color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            text = f"{z[i, j]:.2g}" if ze is None or not np.isfinite(ze[i, j]) else \
                f"{z[i, j]:.2g}\n$\\pm${2 * ze[i, j]:.1g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)


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
