"""Figures show what a problem has beyond the paper's model: the class error (+-1 labels), the
second layer a(t) (trained readout) and the refit-readout error (trained readout or on
request), and the title names the loss, the readout and spherical GD."""
import matplotlib
import numpy as np

import dmft
from dmft.plotting import plot_comparison, problem_title
from dmft.quantities import QUANTITIES, quantities_for

matplotlib.use("Agg")
SIM = {"d": 80, "n_seeds": 2, "seed": 0, "n_jobs": 1, "n_test": 1000, "progress": False}


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_columns_follow_the_problem():
    assert quantities_for(dmft.Problem("z1")) == QUANTITIES
    names = [q.name for q in quantities_for(dmft.Problem("sign(z1)", readout="trained"))]
    assert names[len(QUANTITIES):] == ["class_error", "a", "refit_error"]
    assert [q.name for q in quantities_for(dmft.Problem("z1"), refit=True)][-1] == "refit_error"


def test_simulation_figure_of_a_trained_logistic_sphere(tmp_path):
    pr = dmft.Problem("sign(z1)", p=2, activation="tanh", steps=2, loss="logistic",
                      readout="trained", eta_readout=0.2, normalize="sphere")
    sim = dmft.simulate(pr, **SIM)
    fig = sim.plot(tmp_path / "s.png")
    titles = _titles(fig)
    assert any("second layer" in t for t in titles) and any("refit" in t for t in titles)
    assert any("class error" in t for t in titles)
    line = problem_title(pr)
    assert "logistic loss" in line and "trained readout" in line and "spherical GD" in line
    assert (tmp_path / "s.png").stat().st_size > 10_000
    plain = dmft.simulate(dmft.Problem("z1", p=2, activation="tanh", steps=2), **SIM)
    assert len(_titles(plain.plot())) == len(QUANTITIES)


def test_comparison_figure_with_class_and_refit_error():
    pr = dmft.Problem("sign(z1)", p=2, activation="tanh", steps=2)
    res = dmft.solve(pr, n_paths=800, n_groups=4, seed=0, progress=False)
    cmp = dmft.compare(res, dmft.simulate(pr, **SIM))
    fig = plot_comparison(cmp, quantities=quantities_for(pr, refit=True))
    labels = [ax.get_label() for ax in fig.axes]
    assert {"class_error", "class_error_z", "refit_error", "refit_error_z"} <= set(labels)
    zax = next(ax for ax in fig.axes if ax.get_label() == "refit_error_z")
    z = zax.get_lines()[-1].get_ydata()
    assert np.all(np.isfinite(z[1:]))
