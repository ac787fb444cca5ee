"""Parameter sweeps (dmft.sweep): every point equals a stand-alone solve, resume from point
files, diverging points flagged, --param parsing, plots and the CLI hooks."""
import glob
import os

import numpy as np
import pytest

import dmft
from dmft.errors import ProblemError
from dmft.cli import build_parser
from dmft.commands import cmd_plot_sweep, cmd_sweep
from dmft.sweep import load_sweep, run_sweep
from dmft.sweep_params import parse_param
from dmft.sweep_plot import plot_sweep

distributed = pytest.importorskip("distributed")

SOLVER = {"n_paths": 20_000, "n_groups": 8, "seed": 0}
PAPER = {"problem": {"target": "tanh(z1 + He3(z2))", "p": 2, "activation": "relu",
                     "alpha": 3.0, "eta": 0.2, "steps": 3}, "solver": SOLVER}
LINEAR = {"problem": {"target": "z1", "p": 1, "activation": "linear", "alpha": 3.0,
                      "eta": 0.2, "steps": 4}, "solver": SOLVER,
          "simulation": {"d": 100, "n_seeds": 2, "seed": 0, "n_test": 1000}}
ARRAYS = ("M", "M_err", "Q", "Q_err", "overlap", "overlap_err", "train_loss", "train_loss_err",
          "test_error", "test_error_err")


@pytest.fixture(scope="module")
def grid(client, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "grid.nc"
    return run_sweep(PAPER, ["alpha=2,3", "eta=0.1:0.3:3"], out=out, client=client,
                     progress=False)


def _standalone(cfg, **changes):
    problem = dmft.Problem.from_dict(dict(cfg["problem"], **changes))
    return dmft.solve(problem, progress=False, **cfg["solver"])


def _assert_point(ds, res, prefix=""):
    for name in ARRAYS:
        np.testing.assert_array_equal(ds[prefix + name].values, getattr(res, name), err_msg=name)


def test_grid_points_equal_standalone_solves(grid):
    assert (grid.computed, grid.reused) == (6, 0)
    ds = load_sweep(grid.path)
    assert dict(ds["diverged"].sizes) == {"alpha": 2, "eta": 3}
    np.testing.assert_allclose(ds["eta"].values, [0.1, 0.2, 0.3], rtol=1e-15)
    assert ds.sizes["t"] == 4 and ds.sizes["neuron"] == 2 and ds.sizes["direction"] == 2
    assert ds.attrs["version"] == dmft.__version__ and "eta" in ds.attrs["params"]
    assert not ds["diverged"].values.any()
    assert ds["M"].attrs["long_name"] == "student-target overlaps"           # data with meaning
    assert ds["test_error_err"].attrs["long_name"].startswith("standard error")
    assert list(ds["neuron"].values) == [1, 2] and list(ds["direction"].values) == [1, 2]
    assert ds["eta"].attrs["long_name"] == "swept parameter eta"
    for alpha in ds["alpha"].values:
        for eta in ds["eta"].values:
            point = ds.sel(alpha=alpha, eta=eta)
            _assert_point(point, _standalone(PAPER, alpha=float(alpha), eta=float(eta)))
            assert str(point["status"].values) == "ok"


def test_resume_computes_only_missing_points(client, tmp_path):
    out = tmp_path / "lin.nc"
    first = run_sweep(LINEAR, "eta=0.1:0.4:4", out=out, client=client, progress=False)
    assert (first.computed, first.reused) == (4, 0)
    files = sorted(glob.glob(str(tmp_path / "lin.nc.points" / "*.npz")))
    assert len(files) == 4
    os.remove(files[0])
    with open(files[1], "wb") as fh:            # a corrupt point file counts as missing
        fh.write(b"garbage")
    again = run_sweep(LINEAR, "eta=0.1:0.4:4", out=out, client=client, progress=False)
    assert (again.computed, again.reused) == (2, 2)
    # everything cached: no cluster is needed (client=None starts none)
    third = run_sweep(LINEAR, "eta=0.1:0.4:4", out=out, progress=False)
    assert (third.computed, third.reused) == (0, 4)
    for run in (again, third):
        for name in ARRAYS:
            np.testing.assert_array_equal(run.dataset[name].values, first.dataset[name].values)
    # a different configuration of the points (more paths) is not reused
    more = dict(LINEAR, solver=dict(SOLVER, n_paths=24_000))
    fresh = run_sweep(more, "eta=0.1,0.2", out=out, client=client, progress=False)
    assert (fresh.computed, fresh.reused) == (2, 0)


@pytest.mark.filterwarnings("ignore::dmft.DivergenceWarning")    # the stand-alone references
def test_diverging_point_is_flagged_and_others_intact(client, tmp_path):
    run = run_sweep(LINEAR, ["eta=0.1,0.5,50"], simulate=True, out=tmp_path / "div.nc",
                    client=client, progress=False)
    ds = load_sweep(run.path)
    assert list(ds["diverged"].values) == [False, False, True]
    assert list(ds["sim_diverged"].values) == [False, False, True]
    bad = ds.sel(eta=50.0)
    assert str(bad["status"].values) == "diverged" and "diverged" in str(bad["message"].values)
    done = int(bad["steps_completed"].values)
    assert 0 <= done < 4
    assert np.isnan(bad["M"].values[done + 1:]).all()
    assert np.isfinite(bad["M"].values[:done + 1]).all()
    for eta in (0.1, 0.5, 50.0):
        point = ds.sel(eta=eta)
        res = _standalone(LINEAR, eta=eta)
        _assert_point(point, res)                  # NaN tails compare equal too
        sim = dmft.simulate(res.problem, n_jobs=1, progress=False, **LINEAR["simulation"])
        _assert_point(point, sim, "sim_")
        if eta < 1:
            assert np.isfinite(point["M"].values).all()
            assert int(point["steps_completed"].values) == 4


@pytest.mark.parametrize("text, name, values", [
    ("eta=0.05:2.0:40", "eta", [float(v) for v in np.linspace(0.05, 2.0, 40)]),
    ("eta=0.01:1:3:log", "eta", [0.01, 0.1, 1.0]),
    ("alpha=1,2,4", "alpha", [1.0, 2.0, 4.0]),
    (" ridge = 0, 1e-3 ", "ridge", [0.0, 0.001]),
    ("n_paths=10000,20_000", "n_paths", [10000, 20000]),
    ("seed=0:4:3", "seed", [0, 2, 4]),
    ("activation=ReLU,tanh", "activation", ["relu", "tanh"]),
    ("schedule=one-pass,reuse-2", "schedule", ["one-pass", "reuse-2"]),
    ("target=z1,tanh(z1 + He3(z2))", "target", ["z1", "tanh(z1 + He3(z2))"]),
    ("response=stein,pathwise", "response", ["stein", "pathwise"]),
])
def test_parse_param(text, name, values):
    got_name, got = parse_param(text)
    assert got_name == name
    if isinstance(values[0], float):
        np.testing.assert_allclose(got, values, rtol=1e-12)
    else:
        assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


@pytest.mark.parametrize("text, field", [
    ("eta", "param"), ("eta=", "param"), ("eta=1:2", "param"), ("eta=1:2:x", "param"),
    ("eta=1:2:3:cubic", "param"), ("eta=0:1:3:log", "param"), ("eta=a,b", "param"),
    ("eta=1,,2", "param"), ("eta=1,1", "param"), ("seed=0.5,1", "param"), ("bogus=1,2", "param"),
    ("activation=relu:tanh:2", "param"), ("steps=3,4", "steps"), ("p=1,2", "p"), ("k=2", "k"),
    ("M0=0", "M0"), ("Q0=1", "Q0"), ("a=1", "a"), ("activation=nope", "activation"),
    ("schedule=twice", "schedule"),
])
def test_parse_param_errors(text, field):
    with pytest.raises(ProblemError) as info:
        parse_param(text)
    assert info.value.field == field


def test_bad_sweeps_raise_problem_error(client, tmp_path):
    out = tmp_path / "bad.nc"
    cases = [(["eta=0.1,-1"], "eta"), (["target=z1,z1*z2"], "target"), ([], "param"),
             (["eta=0.1", "eta=0.2"], "param"), (["response=pathwise"], "response")]
    for params, field in cases:                     # found before any work is submitted
        with pytest.raises(ProblemError) as info:
            run_sweep(PAPER, params, out=out, client=client, progress=False)
        assert info.value.field == field, params
    with pytest.raises(ProblemError) as info:       # raised inside a worker, re-raised here
        run_sweep(LINEAR, ["target=z1,log(z1)"], out=out, client=client, progress=False)
    assert info.value.field == "target"
    with pytest.raises(ProblemError) as info:
        run_sweep(str(tmp_path / "missing.toml"), ["eta=0.1"], out=out, client=client)
    assert info.value.field == "config"


def test_plots(client, grid, tmp_path):
    run = run_sweep(LINEAR, ["eta=0.1,0.5,50"], schedules="one-pass,multi-pass",
                    out=tmp_path / "sched.nc", client=client, progress=False)
    assert run.dataset["diverged"].dims == ("eta", "schedule")
    for ds, name in ((load_sweep(run.path), "lines.png"), (load_sweep(grid.path), "heat.png")):
        path = tmp_path / name
        plot_sweep(ds, path)
        data = path.read_bytes()
        assert len(data) > 5000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ProblemError):
        plot_sweep(load_sweep(grid.path).expand_dims(noise=[0.0, 0.1]), tmp_path / "x.png")


def _toml(cfg):
    def fmt(v):
        return f'"{v}"' if isinstance(v, str) else repr(v)
    return "\n".join(f"[{t}]\n" + "\n".join(f"{k} = {fmt(v)}" for k, v in tab.items())
                     for t, tab in cfg.items()) + "\n"


def test_cli_hooks(client, tmp_path, capsys):
    config = tmp_path / "lin.toml"
    config.write_text(_toml(LINEAR))
    out = tmp_path / "cli.nc"
    run_sweep(config, ["eta=0.1,0.2"], schedules=["one-pass"], out=out, client=client,
              progress=False)
    parser = build_parser()
    args = parser.parse_args(["sweep", str(config), "--param", "eta=0.1,0.2", "--schedules",
                              "one-pass", "--out", str(out), "--no-progress"])
    assert cmd_sweep(args) == 0                     # all cached: no cluster started
    assert "computed 0, reused 2" in capsys.readouterr().out
    assert cmd_plot_sweep(parser.parse_args(["plot-sweep", str(out)])) == 0
    assert (tmp_path / "cli.png").stat().st_size > 0
    for argv in ([str(config), "--param", "steps=1,2"], [str(tmp_path / "no.toml"), "--param",
                                                         "eta=1"]):
        with pytest.raises(ProblemError):
            cmd_sweep(parser.parse_args(["sweep"] + argv + ["--out", str(out)]))
    with pytest.raises(ProblemError) as info:
        cmd_plot_sweep(parser.parse_args(["plot-sweep", str(tmp_path / "none.nc")]))
    assert info.value.field == "path"


def test_sweep_api_documented():
    """The Python sweep API has numpydoc docstrings with an example."""
    from dmft.sweep import build_dataset
    from dmft.sweep_plot import overlap_summary
    for func in (run_sweep, load_sweep, plot_sweep):
        doc = func.__doc__
        for section in ("Parameters\n    ----------", "Returns\n    -------",
                        "Examples\n    --------", ">>> "):
            assert section in doc, (func.__name__, section)
    for func in (build_dataset, overlap_summary, parse_param):
        assert "Parameters\n    ----------" in func.__doc__ and "Returns" in func.__doc__


def test_new_model_outputs_in_a_sweep(client, tmp_path):
    """A trained readout on +-1 labels: the sweep stores a(t) and the class error of the DMFT
    and of the simulation, equal to stand-alone runs."""
    config = tmp_path / "c.toml"
    config.write_text('[problem]\ntarget = "sign(z1)"\nactivation = "tanh"\nalpha = 2.0\n'
                      'steps = 2\nreadout = "trained"\n[solver]\nn_paths = 4000\nn_groups = 8\n'
                      'seed = 1\n[simulation]\nd = 200\nn_seeds = 2\nseed = 1\n')
    run = run_sweep(str(config), "eta=0.2,0.4", out=tmp_path / "s.nc", client=client,
                    simulate=True, progress=False)
    ds = load_sweep(run.path)
    for name in ("a", "a_err", "class_error", "class_error_err", "sim_a", "sim_class_error"):
        assert name in ds, name
    pr = dmft.Problem("sign(z1)", activation="tanh", alpha=2.0, steps=2, readout="trained",
                      eta=0.4)
    res = dmft.solve(pr, n_paths=4000, n_groups=8, seed=1, progress=False)
    np.testing.assert_array_equal(ds["a"].sel(eta=0.4).values, res.a)
    np.testing.assert_array_equal(ds["class_error"].sel(eta=0.4).values, res.class_error)
    assert np.any(ds["a"].sel(eta=0.4).values[-1] != ds["a"].sel(eta=0.4).values[0])
