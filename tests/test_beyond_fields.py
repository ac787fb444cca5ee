"""The Problem fields beyond the paper's model (loss, readout, eta_readout, ridge_readout,
normalize): defaults, serialisation, configs, sweeps and result metadata.  Their bad inputs are
in the catalogue of tests/test_robustness.py."""
import numpy as np
import pytest

import dmft
import dmft.config
from dmft import sweep_params
from dmft.cli import main

SMALL_SIM = {"d": 60, "n_seeds": 2, "seed": 0, "n_jobs": 1, "n_test": 1000, "progress": False}
SMALL_SOLVE = {"n_paths": 400, "n_groups": 4, "seed": 0, "progress": False}


def test_defaults_are_the_papers_model():
    pr = dmft.Problem("z1")
    assert (pr.loss, pr.readout, pr.normalize) == ("square", "fixed", "none")
    assert pr.eta_readout is None and pr.ridge_readout is None
    d = pr.to_dict()
    assert (d["loss"], d["readout"], d["normalize"]) == ("square", "fixed", "none")
    assert d["eta_readout"] is None and d["ridge_readout"] is None
    assert dmft.Problem.from_dict(d) == pr
    assert "loss" not in repr(pr) and "readout" not in repr(pr)


def test_trained_readout_defaults_follow_eta():
    pr = dmft.Problem("z1", eta=0.3, readout="trained")
    assert pr.eta_readout == 0.3 and pr.ridge_readout == 0.0
    assert pr.replace(eta=0.7).eta_readout == 0.7            # derived again
    given = dmft.Problem("z1", eta=0.3, readout="trained", eta_readout=0.05, ridge_readout=0.1)
    assert given.replace(eta=0.7).eta_readout == 0.05        # kept
    assert dmft.Problem.from_dict(given.to_dict()) == given
    assert "eta_readout=0.05" in repr(given)
    fixed = pr.replace(readout="fixed")
    assert fixed.eta_readout is None and fixed == dmft.Problem("z1", eta=0.3)


@pytest.mark.parametrize("target, noise, pm", [
    ("sign(z1)", 0.0, True), ("sign(z1 * z2)", 0.0, True), ("sign(He3(z1))", 0.0, True),
    ("z1", 0.0, False), ("sign(z1)", 0.1, False), ("1", 0.0, True), ("log(z1)", 0.0, False),
])
def test_pm_labels(target, noise, pm):
    assert dmft.Problem(target, noise=noise).pm_labels is pm


def test_logistic_accepts_sign_targets():
    pr = dmft.Problem("sign(z1 * z2)", p=2, loss="logistic", normalize="sphere")
    assert pr.loss == "logistic" and pr.normalize == "sphere"
    assert "loss='logistic'" in repr(pr) and "normalize='sphere'" in repr(pr)


def test_sphere_accepts_unit_diagonal_with_correlations():
    pr = dmft.Problem("z1", p=2, normalize="sphere", Q0=[[1.0, 0.3], [0.3, 1.0]],
                      M0=[[0.5], [0.0]])
    assert np.allclose(np.diag(pr.Q0), 1.0)


def test_config_and_sweep_accept_the_new_fields(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[problem]\ntarget = "sign(z1)"\nloss = "logistic"\nreadout = "trained"\n'
                    'eta_readout = 0.05\nridge_readout = 0.01\nnormalize = "sphere"\n')
    pr = dmft.config.problem_from_config(dmft.config.read_config(path))
    assert (pr.loss, pr.readout, pr.eta_readout, pr.ridge_readout, pr.normalize) == \
        ("logistic", "trained", 0.05, 0.01, "sphere")
    for name in ("loss", "readout", "eta_readout", "ridge_readout", "normalize"):
        assert name in sweep_params.SWEEPABLE
    assert sweep_params.value("loss", " correlation ") == "correlation"
    assert sweep_params.value("eta_readout", "0.5") == 0.5


@pytest.mark.parametrize("changes", [
    {"target": "sign(z1)", "loss": "logistic"},
    {"target": "sign(z1)", "loss": "correlation"},
    {"readout": "trained"},
    {"normalize": "sphere"},
])
def test_dmft_solves_the_new_fields(changes, tmp_path):
    """The DMFT solves every new field, in Python and on the command line (its numbers are
    checked by tests/test_beyond_dmft.py)."""
    pr = dmft.Problem(**dict({"target": "z1", "activation": "tanh", "steps": 2}, **changes))
    res = dmft.solve(pr, **SMALL_SOLVE)
    assert res.ok and np.all(np.isfinite(res.M)) and np.all(np.isfinite(res.a))
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in changes.items()]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[problem]\n' + ('' if "target" in changes else 'target = "z1"\n')
                   + "steps = 2\n" + "\n".join(lines) + "\n[solver]\nn_paths = 2000\nprogress = false\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 0


def test_results_carry_a_and_round_trip_without_class_error(tmp_path):
    pr = dmft.Problem("z1", p=2, activation="tanh", steps=2)
    res = dmft.solve(pr, **SMALL_SOLVE)
    assert res.a.shape == (3, 2) and np.array_equal(res.a, np.tile(pr.a, (3, 1)))
    assert np.array_equal(res.a_err, np.zeros((3, 2)))
    assert res.class_error is None and res.class_error_err is None
    back = dmft.load(res.save(tmp_path / "r.nc"))
    np.testing.assert_array_equal(back.a, res.a)
    assert back.class_error is None
    ds = res.to_dataset()
    assert "class_error" not in ds and ds["a"].attrs["long_name"] == "second layer"
    assert ds["a"].dims == ("t", "neuron")
    assert "7.4" in ds["a"].attrs["equation"]


def test_class_error_round_trip(tmp_path):
    pr = dmft.Problem("sign(z1)", p=2, activation="tanh", steps=2)
    sim = dmft.simulate(pr, **SMALL_SIM)
    assert sim.a.shape == (3, 2) and np.array_equal(sim.a, np.tile(pr.a, (3, 1)))
    sim.class_error, sim.class_error_err = np.array([0.5, 0.4, 0.3]), np.array([0.1, 0.1, 0.1])
    back = dmft.load(sim.save(tmp_path / "s.nc"))
    np.testing.assert_array_equal(back.class_error, sim.class_error)
    np.testing.assert_array_equal(back.class_error_err, sim.class_error_err)
    ds = sim.to_dataset()
    assert ds["class_error"].attrs["equation"] == "eq. (7.3)"
    assert "standard error" in ds["class_error_err"].attrs["long_name"]
