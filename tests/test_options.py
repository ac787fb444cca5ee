"""Every solver and simulation option is declared once (dmft.options) and goes through one
door: the Python API, the TOML reader, the CLI flags, `dmft sweep --param` and the
learnability check all use the declaration; bad or inapplicable values are refused, naming the
option, for every schedule."""
import inspect

import numpy as np
import pytest

import dmft
from dmft.cli import build_parser, main
from dmft.config import check_config
from dmft.options import SIMULATION, SOLVER, Option
from dmft.simulate import simulation_settings
from dmft.solver import solver_settings
from dmft.sweep_params import SOLVER_SWEEPABLE, parse_param

SCHEDULES = ("multi-pass", "one-pass", "reuse-2", "minibatch-0.5")
PROBLEM = dict(target="tanh(z1)", p=2, activation="tanh", alpha=2.0, eta=0.2, steps=2)


def bad_value(o):
    """A value the declaration refuses."""
    return {"int": 0, "seed": -1, "float": -1.0, "choice": "nope", "progress": "sometimes",
            "object": 3}[o.kind]


def good_value(o):
    """A valid value other than the default."""
    if o.kind == "choice":
        return [c for c in o.choices if c != o.default][0]
    return {"n_paths": 1000, "seed": 5, "n_groups": 4, "stein_rtol": 1e-2, "progress": False,
            "d": 50, "n_seeds": 2, "n_jobs": 1, "n_test": 200, "n_shards": 1}[o.name]


@pytest.mark.parametrize("options", [SOLVER, SIMULATION], ids=["solver", "simulation"])
def test_each_option_declared_once_and_used_by_the_python_api(options):
    func = dmft.solve if options is SOLVER else dmft.simulate
    sig = inspect.signature(func).parameters
    assert list(sig)[1:] == [o.name for o in options]
    for o in options:
        assert isinstance(o, Option) and o.doc
        assert sig[o.name].default == o.default                     # the signature's default
        assert o.name in func.__doc__ and o.doc.split()[0] in func.__doc__


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("name", SOLVER.names())
def test_bad_solver_option_refused_for_every_schedule(schedule, name):
    pr = dmft.Problem(**PROBLEM, schedule=schedule)
    o = SOLVER[name]
    with pytest.raises(dmft.ProblemError) as exc:
        dmft.solve(pr, **{name: bad_value(o)})
    assert exc.value.field == name
    if o.toml:                                                    # the TOML reader
        with pytest.raises(dmft.ProblemError) as exc:
            check_config({"problem": dict(PROBLEM, schedule=schedule),
                          "solver": {name: bad_value(o)}})
        assert exc.value.field == name


@pytest.mark.parametrize("name", SIMULATION.names())
def test_bad_simulation_option_refused(name):
    pr = dmft.Problem(**PROBLEM)
    o = SIMULATION[name]
    with pytest.raises(dmft.ProblemError) as exc:
        dmft.simulate(pr, **{name: bad_value(o)})
    assert exc.value.field == name
    with pytest.raises(dmft.ProblemError) as exc:
        check_config({"problem": PROBLEM, "simulation": {name: bad_value(o)}})
    assert exc.value.field == name


@pytest.mark.parametrize("options", [SOLVER, SIMULATION], ids=["solver", "simulation"])
def test_good_values_pass_every_door(options):
    pr = dmft.Problem(**PROBLEM)
    settle = solver_settings if options is SOLVER else simulation_settings
    for o in options:
        if o.kind == "object" or o.name == "n_shards":
            continue                             # need a Dask client (tests/test_sharded.py)
        v = good_value(o)
        assert settle(pr, **{o.name: v})[o.name] == v
        if o.toml:
            conf = check_config({"problem": PROBLEM, options.table: {o.name: v}})
            assert getattr(conf, options.table)[o.name] == v


def test_inapplicable_options_are_refused_not_ignored():
    one = dmft.Problem(**PROBLEM, schedule="one-pass")
    relu = dmft.Problem(**dict(PROBLEM, activation="relu"))
    cases = [(one, dict(history="float32"), "history"),
             (one, dict(response="pathwise"), "response"),
             (one, dict(client=type("C", (), {"submit": 0, "scheduler_info": 0})()), "client"),
             (dmft.Problem(**PROBLEM), dict(n_shards=2), "n_shards"),
             (relu, dict(response="pathwise"), "response"),
             (dmft.Problem(**PROBLEM), dict(response="pathwise", stein_rtol=0.01), "stein_rtol"),
             (dmft.Problem(**PROBLEM), dict(n_paths=10, n_groups=8), "n_paths")]
    for pr, opts, field in cases:
        with pytest.raises(dmft.ProblemError) as exc:
            solver_settings(pr, **opts)
        assert exc.value.field == field, (opts, exc.value)
    # the same options are fine where they apply
    solver_settings(one, history="float32", method="general")
    solver_settings(one, response="pathwise", method="general")


def test_cli_has_a_flag_with_help_for_every_option(capsys):
    parser = build_parser()
    sub = {a.dest: a for a in parser._subparsers._group_actions[0].choices["compare"]._actions}
    for options in (SOLVER, SIMULATION):
        for o in options:
            if o.cli:
                action = sub["opt_" + o.name]
                assert o.flag in action.option_strings and action.help
    for name in ("run", "simulate", "compare", "sweep", "validate", "learnability"):
        for a in parser._subparsers._group_actions[0].choices[name]._actions:
            assert a.help, (name, a.option_strings)          # help text on every flag


@pytest.mark.parametrize("name", [o.name for o in SOLVER if o.cli and o.kind != "progress"])
def test_cli_flag_checked_by_the_declaration(tmp_path, capsys, name):
    o = SOLVER[name]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[problem]\ntarget = "tanh(z1)"\np = 2\nactivation = "tanh"\nsteps = 2\n')
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), o.flag, str(bad_value(o))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dmft: error: {name}:") and err.count("\n") == 1
    assert not out.exists()                                   # nothing written


def test_integer_flags_accept_scientific_notation():
    assert SOLVER["n_paths"].parse("1e6") == 1_000_000
    assert SOLVER["n_paths"].parse("1_000") == 1000
    with pytest.raises(dmft.ProblemError):
        SOLVER["n_paths"].parse("1.5e3x")
    with pytest.raises(dmft.ProblemError):
        SOLVER["n_paths"].parse("2.5")


@pytest.mark.parametrize("name", SOLVER_SWEEPABLE)
def test_sweep_param_uses_the_declaration(name):
    o = SOLVER[name]
    v = good_value(o)
    field, values = parse_param(f"{name}={v},{o.default if o.default is not None else 1}")
    assert field == name and values[0] == v
    with pytest.raises(dmft.ProblemError):
        parse_param(f"{name}={bad_value(o)}")
    assert {"method", "history", "response", "n_paths", "seed"} <= set(SOLVER_SWEEPABLE)


def test_learnability_check_uses_the_declaration():
    from dmft.learnability_check import dmft_check
    from dmft.targets import Target
    res = dmft.learnability("z1")
    for o in SOLVER:
        if not o.toml or o.kind == "progress":
            continue
        with pytest.raises(dmft.ProblemError) as exc:
            dmft_check(res, Target("z1"), {o.name: bad_value(o)})
        assert exc.value.field == o.name


def test_sweep_point_equals_solve_with_method_and_history(tmp_path, client):
    from dmft.sweep import run_sweep
    cfg = {"problem": dict(PROBLEM, target="tanh(z1) + He3(z1)", activation="relu", steps=3),
           "solver": {"n_paths": 4000, "n_groups": 4, "seed": 3, "method": "general",
                      "history": "float32"}}
    run = run_sweep(cfg, ["eta=0.1,0.2"], schedules="one-pass", out=str(tmp_path / "s.nc"),
                    client=client, progress=False)
    ds = run.dataset
    for i, eta in enumerate((0.1, 0.2)):
        pr = dmft.Problem(**dict(cfg["problem"], eta=eta, schedule="one-pass"))
        res = dmft.solve(pr, **cfg["solver"], progress=False)
        np.testing.assert_array_equal(ds["M"].isel(eta=i, schedule=0).values, res.M)
        np.testing.assert_array_equal(ds["train_loss"].isel(eta=i, schedule=0).values,
                                      res.train_loss)
    # the options are part of each point's hash
    hashes = set(ds["point"].values.ravel())
    cfg2 = {"problem": cfg["problem"], "solver": dict(cfg["solver"], history="float64")}
    run2 = run_sweep(cfg2, ["eta=0.1,0.2"], schedules="one-pass", out=str(tmp_path / "t.nc"),
                     client=client, progress=False)
    assert hashes.isdisjoint(set(run2.dataset["point"].values.ravel()))
