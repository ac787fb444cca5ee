"""Figures (issue 19, item 2): theory and simulation drawn in distinct styles (DMFT: lines and
bands without markers; simulation: open markers with error bars, shifted so that coinciding
entries stay visible), residual z panels, every quantity of the tables, full parameters in the
titles, the paper's story in one figure, and sweeps with their uncertainty."""
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import Rectangle

import dmft
from dmft.plotting import QUANTITIES, plot_schedules, plot_story

PROBLEM = dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2,
               steps=3, ridge=0.01, noise=0.1)


def _cmp(schedule="multi-pass"):
    pr = dmft.Problem(**dict(PROBLEM, schedule=schedule))
    return dmft.compare(dmft.solve(pr, n_paths=800, n_groups=4, seed=0),
                        dmft.simulate(pr, d=60, n_seeds=3, seed=0, n_test=1000, n_jobs=1))


@pytest.fixture(scope="module")
def cmp():
    return _cmp()


@pytest.fixture(scope="module")
def schedules():
    return [_cmp("one-pass"), _cmp("multi-pass")]


def _axes(fig):
    return {ax.get_label(): ax for ax in fig.axes}


def _check_panel_set(axes, ncurves, runs=1):
    """Per quantity: a band per DMFT curve, no markers on the DMFT lines, one error-bar set
    per simulated curve, a residual panel with the threshold shaded."""
    for q in QUANTITIES:
        ax, zax = axes[q.name], axes[q.name + "_z"]
        n = ncurves[q.name]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) >= n, q.name
        errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(errorbars) == n, q.name
        dmft_lines = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", "", None)
                      and len(ln.get_xdata()) == PROBLEM["steps"] + 1]
        assert len(dmft_lines) >= n, q.name
        if n > runs:                                # entries told apart: style and position
            styles = {ln.get_linestyle() for ln in dmft_lines[:n // runs]}
            assert len(styles) >= min(3, n // runs), (q.name, styles)
            xs = {tuple(np.round(c.lines[0].get_xdata(), 6)) for c in errorbars}
            assert len(xs) == n // runs, f"{q.name}: simulation markers not shifted apart"
            markers = {c.lines[0].get_marker() for c in errorbars}
            assert len(markers) == n // runs, q.name
        assert len(zax.get_lines()) >= n and zax.patches, q.name      # z lines, shaded band
        assert "worst |z|" in ax.get_title()


def test_comparison_figure(cmp, tmp_path):
    fig = cmp.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    axes = _axes(fig)
    assert [q.name for q in QUANTITIES] == ["overlap", "Q", "train_loss", "test_error"]
    _check_panel_set(axes, {"overlap": 4, "Q": 3, "train_loss": 1, "test_error": 1})
    title = fig.get_suptitle()
    for word in ("ridge = 0.01", "noise = 0.1", "800 paths", "4 replicas", "d = 60",
                 "3 seeds", "tanh(z1 + He3(z2))", "relu", "p = 2", "k = 2", "T = 3",
                 "multi-pass"):
        assert word in title, word
    labels = [t.get_text() for t in axes["Q"].get_legend().get_texts()]
    assert labels == ["$Q_{11}$", "$Q_{12}$", "$Q_{22}$"]


def test_overlaps_are_normalised(cmp):
    fig = cmp.plot()
    line = next(ln for ln in _axes(fig)["overlap"].get_lines() if ln.get_label() == "$m_{11}$")
    np.testing.assert_array_equal(line.get_ydata(), cmp.result.overlap[:, 0, 0])


def test_result_and_simulation_figures(cmp, tmp_path):
    fig = cmp.result.plot(tmp_path / "r.png")
    assert len(fig.axes) == len(QUANTITIES)
    assert not fig.axes[0].containers and fig.axes[0].collections      # lines and bands
    fig = cmp.sim.plot(tmp_path / "s.png")
    assert len(fig.axes[0].containers) == 4                             # markers and bars
    assert "d = 60" in fig.get_suptitle() and "noise = 0.1" in fig.get_suptitle()


def test_schedules_and_story(cmp, schedules, tmp_path):
    fig = plot_schedules(schedules, tmp_path / "s.png")
    axes = _axes(fig)
    _check_panel_set(axes, {"overlap": 8, "Q": 6, "train_loss": 2, "test_error": 2}, runs=2)
    assert "one-pass vs multi-pass" in fig.get_suptitle()
    fig = plot_story(cmp, schedules, tmp_path / "story.png")
    assert len(fig.axes) == 4 * len(QUANTITIES)
    titles = [sub.get_suptitle() for sub in fig.subfigs]
    assert titles[0].startswith("(a)") and titles[1].startswith("(b) one-pass vs multi-pass")
    assert "ridge = 0.01" in titles[0] and "noise = 0.1" in titles[1]


def test_paper_story_script(cmp, schedules, tmp_path):
    """examples/paper_story.py (the last step of `make run`) draws from what dmft compare
    wrote."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1]
    cmp.result.save(tmp_path / "paper_tanh_he3_dmft.nc")
    cmp.sim.save(tmp_path / "paper_tanh_he3_sim.nc")
    for c in schedules:
        c.result.save(tmp_path / f"he3_reuse_{c.result.problem.schedule}_dmft.nc")
        c.sim.save(tmp_path / f"he3_reuse_{c.result.problem.schedule}_sim.nc")
    r = subprocess.run([sys.executable, str(root / "examples" / "paper_story.py"),
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "paper_story.png").stat().st_size > 50_000
    makefile = (root / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:"):].split("\n\n")[0]
    assert "examples/paper_tanh_he3.toml" in run and "he3_reuse.toml --schedules one-pass," \
        "multi-pass" in run and "examples/paper_story.py" in run


def _sweep(two_params, simulate=True):
    """A synthetic sweep Dataset (the layout of dmft.sweep.build_dataset) with known errors."""
    from dmft.sweep import _ARRAYS, build_dataset
    base = dmft.Problem(**PROBLEM)
    params = [("eta", [0.1, 0.5, 1.0])] + ([("alpha", [1.0, 2.0])] if two_params else [])
    params.append(("schedule", ["one-pass", "multi-pass"]))
    shapes = {"M": (4, 2, 2), "Q": (4, 2, 2), "overlap": (4, 2, 2), "train_loss": (4,),
              "test_error": (4,), "a": (4, 2)}
    rng = np.random.default_rng(0)
    results = {}
    for idx in np.ndindex(*[len(v) for _, v in params]):
        out = {}
        for pre in ("", "sim_") if simulate else ("",):
            for name in _ARRAYS:
                shape = shapes[name.removesuffix("_err")]
                out[pre + name] = np.abs(rng.normal(0.3, 0.1, shape)) if not name.endswith(
                    "_err") else np.full(shape, 0.02 if idx[0] else 0.5)   # eta=0.1: noisy
            out.update({pre + "status": "ok", pre + "message": "", pre + "steps_completed": 3})
        results[idx] = out
    hashes = {idx: "h" for idx in results}
    return build_dataset(params, results, base, {}, {"n_paths": 1000},
                         {"d": 50, "n_seeds": 2} if simulate else None, hashes)


def test_sweep_lines_show_uncertainty(tmp_path):
    from dmft.sweep_plot import plot_sweep
    fig = plot_sweep(_sweep(False), tmp_path / "l.png")
    assert len(fig.axes) == 2 + 2                       # k overlaps, train loss, test error
    for ax in fig.axes:
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2   # bands
        assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2  # sims
    assert "ridge = 0.01" in fig.get_suptitle() and "1,000 paths" in fig.get_suptitle()


def test_sweep_heatmaps_show_uncertainty(tmp_path):
    from dmft.sweep_plot import plot_sweep
    ds = _sweep(True, simulate=False)
    fig = plot_sweep(ds, tmp_path / "h.png")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2 * (2 + 2)                   # per schedule: k, error map, test
    titles = [ax.get_title() for ax in images]
    assert sum("2 standard errors" in t for t in titles) == 2
    hatched = sum(isinstance(p, Rectangle) and bool(p.get_hatch()) for ax in images
                  for p in ax.patches)
    from dmft.sweep_plot import overlap_summary
    val, err = overlap_summary(ds)
    assert hatched == int((val < 2 * err).sum()) > 0    # the noisy eta = 0.1 cells
    texts = [t.get_text() for ax in images for t in ax.texts]
    assert any("\\pm" in t for t in texts)
