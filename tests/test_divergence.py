"""Divergence (large eta): solver and simulator stop, keep the finished steps, name the step
and warn; the CLI writes the partial result and exits with code 3.  Kernels that Monte Carlo
noise makes non-positive are projected back with a warning giving the size of the correction;
normal runs stay quiet."""
import re
import warnings

import numpy as np
import pytest

import dmft
from dmft.cli import main
from dmft.commands import EXIT_DIVERGED
from dmft.errors import PSD_RTOL, KernelProjectionWarning, check_projection

DIVERGING = """
[problem]
target = "tanh(z1 + He3(z2))"
p = 2
activation = "relu"
alpha = 3.0
eta = 50.0
steps = 6

[solver]
n_paths = 4000
n_groups = 8
seed = 1

[simulation]
d = 200
n_seeds = 2
n_jobs = 1
n_test = 1000
"""


def _check_partial(run, steps):
    """Finite up to steps_completed, NaN after, the failing step named in the message."""
    done = run.steps_completed
    assert run.status == "diverged" and not run.ok
    assert 0 <= done < steps
    assert f"step {done + 1}:" in run.message
    for name in ("M", "Q", "train_loss", "test_error"):
        x = getattr(run, name)
        assert np.all(np.isfinite(x[:done + 1])), name
        assert np.all(np.isnan(x[done + 1:])), name


@pytest.mark.parametrize("schedule", ["multi-pass", "one-pass"])
def test_solve_diverges_warns_and_keeps_finished_steps(schedule):
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, alpha=3.0, eta=50.0, steps=6,
                      schedule=schedule)
    with pytest.warns(dmft.DivergenceWarning) as record:
        res = dmft.solve(pr, n_paths=4000, n_groups=8, seed=0)
    _check_partial(res, 6)
    (w,) = [r for r in record if issubclass(r.category, dmft.DivergenceWarning)]
    assert issubclass(w.category, RuntimeWarning)
    assert f"step {res.steps_completed + 1}:" in str(w.message)
    assert f"steps 0..{res.steps_completed} kept" in str(w.message)


def test_simulate_diverges_warns_and_keeps_finished_steps():
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, alpha=3.0, eta=50.0, steps=6)
    with pytest.warns(dmft.DivergenceWarning, match=r"simulation diverged in 2 of 2 seeds "
                                                    r"\(step \d+: weights diverged"):
        sim = dmft.simulate(pr, d=200, n_seeds=2, seed=0, n_jobs=1, n_test=1000)
    _check_partial(sim, 6)


def test_cli_run_writes_partial_result_and_exits_3(tmp_path, capsys):
    config = tmp_path / "div.toml"
    config.write_text(DIVERGING)
    out = tmp_path / "out"
    code = main(["run", str(config), "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == EXIT_DIVERGED == 3
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    m = re.fullmatch(r"dmft: warning: DMFT diverged \(step (\d+): .*\); partial result "
                     r"\(steps 0\.\.(\d+)\) written to (.*)", lines[0])
    assert m, lines[0]
    step, done, path = int(m[1]), int(m[2]), m[3]
    assert done == step - 1 and path == str(out / "div_dmft.nc")
    for name in ("div_dmft.nc", "div_dmft.csv", "div_dmft.png"):
        assert (out / name).stat().st_size > 0, name
    res = dmft.load(path)
    assert res.steps_completed == done and res.message.startswith(f"step {step}:")
    _check_partial(res, 6)
    curves = np.loadtxt(out / "div_dmft.csv", delimiter=",", skiprows=1)
    assert np.all(np.isfinite(curves[:done + 1])) and np.all(np.isnan(curves[done + 1:, 1:]))
    assert "status=diverged" in stdout


def test_cli_simulate_and_compare_exit_3(tmp_path, capsys):
    config = tmp_path / "div.toml"
    config.write_text(DIVERGING)
    code = main(["simulate", str(config), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 3 and err.startswith("dmft: warning: simulation diverged (step ")
    assert len(err.splitlines()) == 1
    _check_partial(dmft.load(tmp_path / "s" / "div_sim.nc"), 6)
    code = main(["compare", str(config), "--out", str(tmp_path / "c"),
                 "--schedules", "one-pass,multi-pass"])
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.splitlines()) == 4, err        # DMFT and simulation, two schedules
    for schedule in ("one-pass", "multi-pass"):
        for kind in ("dmft", "sim"):
            _check_partial(dmft.load(tmp_path / "c" / f"div_{schedule}_{kind}.nc"), 6)
    assert (tmp_path / "c" / "div_compare.png").stat().st_size > 0


def test_converging_run_exits_0_without_warnings(tmp_path, capsys):
    config = tmp_path / "ok.toml"
    config.write_text(DIVERGING.replace("eta = 50.0", "eta = 0.2"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["run", str(config), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------ kernel projection
def test_check_projection_threshold():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_projection(-1e-15, 1.0, "K", 3) == pytest.approx(1e-15)   # round-off
        assert check_projection(0.5, 1.0, "K", 3) == 0.0
    with pytest.warns(KernelProjectionWarning, match=r"K at step 3 .* most negative eigenvalue "
                                                     r"-0\.002, 1\.00e-03 of the largest"):
        assert check_projection(-2e-3, 2.0, "K", 3) == pytest.approx(1e-3)
    assert issubclass(KernelProjectionWarning, RuntimeWarning) and PSD_RTOL == 1e-12


def test_non_psd_g_covariance_is_projected_with_a_warning():
    """A Monte Carlo estimate of C_g(t, t) with a negative eigenvalue (as noise can produce)
    is projected onto the PSD cone: the warning names the step and the size."""
    from dmft.weight import WeightSide
    G, T, p = 2, 3, 2
    W = WeightSide(G, T, p, 1, 1.0, 0.1, 0.0, np.eye(p), np.zeros((p, 1)))
    good = np.stack([np.eye(p)] * G)
    W.set_g_row(0, good, np.zeros((G, p, 0, p)))
    bad = good.copy()
    bad[1] = [[1.0, 0.0], [0.0, -0.01]]
    with pytest.warns(KernelProjectionWarning, match=r"innovation covariance of g .*replica 1\) "
                                                     r"at step 1 .*-0\.01, 1\.00e-02 of the"):
        W.set_g_row(1, bad, np.zeros((G, p, 1, p)))
    K = W.K_rows[1][1, :, p:2 * p]                   # K(1, 1) of replica 1: clipped, PSD
    assert np.all(np.linalg.eigvalsh(K @ K.T) >= 0)
    np.testing.assert_allclose(K @ K.T, np.diag([1.0, 0.0]), atol=1e-12)


def test_one_pass_covariance_projection_warns():
    from dmft.onepass import _sqrtm
    C = np.array([[[1.0, 0.0], [0.0, -1e-3]]])
    with pytest.warns(KernelProjectionWarning, match=r"C_theta\(t, t\) \(replica 0\) at step 4"):
        half, _ = _sqrtm(C, 4)
    np.testing.assert_allclose(half[0] @ half[0], np.diag([1.0, 0.0]), atol=1e-12)


@pytest.mark.parametrize("schedule, activation", [("multi-pass", "relu"), ("one-pass", "tanh"),
                                                  ("reuse-2", "erf")])
def test_normal_runs_do_not_warn(schedule, activation):
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation=activation, alpha=3.0, eta=0.2,
                      steps=5, schedule=schedule)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = dmft.solve(pr, n_paths=3200, n_groups=8, seed=0)
        sim = dmft.simulate(pr, d=100, n_seeds=2, seed=0, n_jobs=1, n_test=1000)
    assert res.ok and sim.ok
