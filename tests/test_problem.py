"""Tests for dmft.Problem: defaults, serialisation and validation of user input."""

import math

import numpy as np
import pytest

import dmft
from dmft.errors import ProblemError

TARGET = "tanh(z1 + He3(z2))"


# ----------------------------------------------------------------------------- defaults
@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_default_second_layer_alternates(p):
    pr = dmft.Problem(TARGET, p=p)
    expected = np.array([(-1.0) ** j for j in range(p)]) / math.sqrt(p)
    assert pr.a.shape == (p,)
    np.testing.assert_allclose(pr.a, expected, rtol=0, atol=1e-15)
    assert pr.a[0] > 0
    if p > 1:
        assert pr.a[1] < 0


@pytest.mark.parametrize("target, k", [
    ("z1", 1), ("tanh(z1 + He3(z2))", 2), ("z3", 3), ("z1*z5 + z2", 5), ("1.5", 1),
    ("He2(z4)", 4),
])
def test_default_k_is_largest_index(target, k):
    pr = dmft.Problem(target, p=2)
    assert pr.k == k
    assert pr.M0.shape == (2, k)


def test_default_initial_conditions():
    pr = dmft.Problem(TARGET, p=3)
    assert pr.M0.shape == (3, 2)
    assert np.array_equal(pr.M0, np.zeros((3, 2)))
    assert np.array_equal(pr.Q0, np.eye(3))
    np.testing.assert_array_equal(pr.C0, np.eye(3))
    assert pr.activation == "relu"
    assert pr.schedule == "multi-pass"


def test_explicit_k_larger_than_used():
    pr = dmft.Problem("z1", p=2, k=3)
    assert pr.k == 3
    assert pr.M0.shape == (2, 3)


def test_activation_name_normalised():
    assert dmft.Problem("z1", activation=" TanH ").activation == "tanh"


def _custom():
    M0 = np.array([[0.3, -0.1], [0.0, 0.2]])
    Q0 = np.array([[1.0, 0.1], [0.1, 0.8]])
    return dmft.Problem(TARGET, p=2, activation="erf", a=[0.7, 0.2], alpha=2.5, eta=0.05,
                        ridge=0.01, noise=0.1, steps=7, M0=M0, Q0=Q0, k=2)


@pytest.mark.parametrize("make", [lambda: dmft.Problem(TARGET, p=3), _custom])
def test_to_dict_from_dict_round_trip(make):
    pr = make()
    d = pr.to_dict()
    back = dmft.Problem.from_dict(d)
    assert back == pr
    assert back.to_dict() == d
    for name in ("a", "M0", "Q0"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pr, name))
    # JSON round trip too
    import json
    assert dmft.Problem.from_dict(json.loads(pr.to_json())) == pr


def test_equality():
    assert dmft.Problem(TARGET, p=2) == dmft.Problem(TARGET, p=2)
    assert dmft.Problem(TARGET, p=2) != dmft.Problem(TARGET, p=2, alpha=2.0)
    assert dmft.Problem(TARGET, p=2) != dmft.Problem("z1 + z2", p=2)
    assert dmft.Problem(TARGET, p=2) != "not a problem"


def test_replace():
    pr = _custom()
    pr2 = pr.replace(alpha=4.0, steps=3)
    assert pr2.alpha == 4.0 and pr2.steps == 3
    assert pr2.eta == pr.eta and pr2.activation == pr.activation
    np.testing.assert_array_equal(pr2.M0, pr.M0)
    assert pr.alpha == 2.5 and pr.steps == 7          # original untouched
    assert pr2 != pr
    assert pr2.replace(alpha=2.5, steps=7) == pr
    with pytest.raises(ProblemError) as info:
        pr.replace(alpha=-1.0)
    assert str(info.value).startswith("alpha:")


def test_from_dict_unknown_field():
    d = dmft.Problem("z1").to_dict()
    d["bogus"] = 1
    with pytest.raises(ProblemError) as info:
        dmft.Problem.from_dict(d)
    assert str(info.value).startswith("bogus:")


# ----------------------------------------------------------------------------- bad input
def _nonpsd_resid():
    # Valid shapes, Q0 symmetric PSD, but Q0 - M0 M0^T has a negative eigenvalue.
    return dict(target="z1", p=2, M0=np.array([[1.5], [0.0]]), Q0=np.eye(2))


BAD_PROBLEMS = [
    ("target", dict(target="z1 +* z2")),
    ("target", dict(target="import os")),
    ("target", dict(target="foo(z1)")),
    ("activation", dict(target="z1", activation="swish")),
    ("alpha", dict(target="z1", alpha=0.0)),
    ("alpha", dict(target="z1", alpha=-1.0)),
    ("alpha", dict(target="z1", alpha=float("nan"))),
    ("eta", dict(target="z1", eta=0.0)),
    ("eta", dict(target="z1", eta=float("inf"))),
    ("ridge", dict(target="z1", ridge=-0.1)),
    ("noise", dict(target="z1", noise=-1e-3)),
    ("steps", dict(target="z1", steps=0)),
    ("steps", dict(target="z1", steps=2.5)),
    ("p", dict(target="z1", p=0)),
    ("p", dict(target="z1", p=True)),
    ("a", dict(target="z1", p=3, a=[1.0, 2.0])),
    ("a", dict(target="z1", p=2, a=[1.0, float("nan")])),
    ("M0", dict(target="z1 + z2", p=2, M0=np.zeros((2, 3)))),
    ("Q0", dict(target="z1", p=2, Q0=np.array([[1.0, 0.5], [0.0, 1.0]]))),
    ("Q0", dict(target="z1", p=2, Q0=np.array([[1.0, 2.0], [2.0, 1.0]]))),
    ("Q0", _nonpsd_resid()),
    ("k", dict(target="z1 + z3", p=1, k=2)),
    ("schedule", dict(target="z1", schedule="online")),
]


@pytest.mark.parametrize("field, kwargs", BAD_PROBLEMS,
                         ids=[f"{i}-{f}" for i, (f, _) in enumerate(BAD_PROBLEMS)])
def test_bad_problem(field, kwargs):
    with pytest.raises(ProblemError) as info:
        dmft.Problem(**kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(field + ":"), str(info.value)
    assert info.value.field == field


def test_q0_minus_m0m0t_nonpsd_is_the_residual_check():
    """The case above fails only because of M0: Q0 alone and M0 with a larger Q0 are fine."""
    kw = _nonpsd_resid()
    dmft.Problem(kw["target"], p=2, Q0=kw["Q0"])
    dmft.Problem(kw["target"], p=2, M0=kw["M0"], Q0=np.diag([3.0, 1.0]))
    with pytest.raises(ProblemError, match=r"^Q0: .*positive semi-definite"):
        dmft.Problem(**kw)


def test_nonfinite_target_reaches_solve():
    pr = dmft.Problem("log(z1)", p=1, steps=1)     # parses fine, but NaN for z1 < 0
    with pytest.raises(ProblemError) as info:
        dmft.solve(pr, n_paths=400, n_groups=4, seed=0)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("target:")


BAD_SOLVER_ARGS = [
    ("n_paths", "relu", dict(n_paths=0)),
    ("n_paths", "relu", dict(n_paths=10.5)),
    ("n_groups", "relu", dict(n_groups=1)),
    ("seed", "relu", dict(seed=-1)),
    ("seed", "relu", dict(seed=1.5)),
    ("response", "relu", dict(response="foo")),
    ("response", "relu", dict(response="pathwise")),
    ("stein_rtol", "relu", dict(stein_rtol=1.5)),
]


@pytest.mark.parametrize("field, activation, kwargs", BAD_SOLVER_ARGS,
                         ids=[f"{f}-{list(kw.values())[0]}" for f, _, kw in BAD_SOLVER_ARGS])
def test_bad_solver_args(field, activation, kwargs):
    pr = dmft.Problem("z1", p=1, activation=activation, steps=1)
    args = dict(n_paths=400, n_groups=4, seed=0)
    args.update(kwargs)
    with pytest.raises(ProblemError) as info:
        dmft.solve(pr, **args)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(field + ":"), str(info.value)


def test_solve_rejects_non_problem():
    with pytest.raises(ProblemError, match="^problem:"):
        dmft.solve({"target": "z1"}, n_paths=400, n_groups=4, seed=0)


def test_replace_rederives_defaults():
    pr = dmft.Problem("z1 + z2", p=2)
    assert pr.replace(p=3).a.shape == (3,) and pr.replace(p=3).M0.shape == (3, 2)
    assert pr.replace(target="z1 + z2 + z3").k == 3
    assert pr.replace(target="z1").k == 1
    explicit = dmft.Problem("z1", p=2, k=3)
    assert explicit.replace(alpha=2.0).k == 3          # given explicitly: kept
