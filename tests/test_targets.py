"""Tests for dmft.targets: safe parsing and vectorised evaluation of target expressions."""

import math

import numpy as np
import pytest
import scipy.special

from dmft.errors import ProblemError
from dmft.targets import Target, hermite


@pytest.fixture
def z():
    return np.random.default_rng(0).standard_normal((257, 4))


def relu(x):
    return np.maximum(x, 0.0)


CASES = [
    ("tanh(z1 + He3(z2))", lambda z: np.tanh(z[:, 0] + z[:, 1] ** 3 - 3 * z[:, 1])),
    ("z1*z2*z3", lambda z: z[:, 0] * z[:, 1] * z[:, 2]),
    ("relu(z1) - 0.5*z2**2", lambda z: relu(z[:, 0]) - 0.5 * z[:, 1] ** 2),
    ("sign(z1*z2)", lambda z: np.sign(z[:, 0] * z[:, 1])),
    ("erf(z1)/2", lambda z: scipy.special.erf(z[:, 0]) / 2),
    ("He4(z1)", lambda z: z[:, 0] ** 4 - 6 * z[:, 0] ** 2 + 3),
    ("sigmoid(z4) + exp(-z1) * cos(pi*z2)", lambda z: 1 / (1 + np.exp(-z[:, 3]))
     + np.exp(-z[:, 0]) * np.cos(np.pi * z[:, 1])),
    ("sqrt(abs(z1)) + log(1 + z2**2) - sin(z3) / e", lambda z: np.sqrt(np.abs(z[:, 0]))
     + np.log(1 + z[:, 1] ** 2) - np.sin(z[:, 2]) / np.e),
    ("+z1 - -z2 - z3 + z1 / 4 / 2", lambda z: z[:, 0] + z[:, 1] - z[:, 2] + z[:, 0] / 8),
    ("2**-1 * z2 ** 2 ** 1", lambda z: 0.5 * z[:, 1] ** 2),
]


@pytest.mark.parametrize("expr, reference", CASES, ids=[c[0] for c in CASES])
def test_values_match_numpy(expr, reference, z):
    out = Target(expr)(z)
    assert out.dtype == np.float64 and out.shape == (z.shape[0],)
    np.testing.assert_allclose(out, reference(z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("expr, indices", [
    ("tanh(z1 + He3(z2))", (1, 2)),
    ("z3 * z1", (1, 3)),
    ("He2(z7)", (7,)),
    ("1.5", ()),
    ("pi * e", ()),
])
def test_indices_and_k_used(expr, indices):
    target = Target(expr)
    assert target.indices == indices
    assert target.k_used == (max(indices) if indices else 0)


def test_expr_stripped_and_repr():
    target = Target("  z1 + 1 \n")
    assert target.expr == "z1 + 1"
    assert repr(target) == "Target('z1 + 1')"


def test_constant_broadcasts(z):
    out = Target("2 * pi")(z)
    assert out.shape == (z.shape[0],) and out.dtype == np.float64
    np.testing.assert_allclose(out, 2 * np.pi)
    assert Target("3")(np.zeros((5, 0))).shape == (5,)


def test_extra_columns_ok_and_missing_columns_rejected(z):
    np.testing.assert_allclose(Target("z2")(z), z[:, 1])
    with pytest.raises(ProblemError, match=r"^target:.*z3"):
        Target("z1 + z3")(z[:, :2])


def test_numerical_trouble_is_silent(z):
    with np.errstate(all="raise"):  # evaluation must not warn or raise
        out = Target("log(z1) + 1/(z2 - z2) + (-8)**(1/3) + 10.0**400")(z)
    assert not np.isfinite(out).any()


def test_hermite_low_orders():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(hermite(0, x), np.ones_like(x))
    np.testing.assert_allclose(hermite(1, x), x)
    np.testing.assert_allclose(hermite(2, x), x ** 2 - 1)
    np.testing.assert_allclose(hermite(3, x), x ** 3 - 3 * x)
    np.testing.assert_allclose(hermite(5, x), x ** 5 - 10 * x ** 3 + 15 * x)
    assert float(hermite(4, 2.0)) == 16 - 24 + 3


def test_hermite_matches_numpy_hermite_e():
    x = np.linspace(-4, 4, 41)
    for n in range(21):
        coeffs = np.zeros(n + 1)
        coeffs[n] = 1.0
        expected = np.polynomial.hermite_e.hermeval(x, coeffs)
        np.testing.assert_allclose(hermite(n, x), expected, rtol=1e-10, atol=1e-8)


def test_hermite_orthogonality():
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()  # expectation under N(0, 1)
    for m in range(7):
        for n in range(7):
            inner = np.sum(weights * hermite(m, nodes) * hermite(n, nodes))
            expected = math.factorial(n) if m == n else 0.0
            assert inner == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_hermite_bad_degree(bad):
    with pytest.raises(ValueError):
        hermite(bad, 0.0)


REJECTED = [
    "__import__('os')",
    "z1.real",
    "z0",
    "z01",
    "x + 1",
    "tanh(z1, z2)",
    "tanh()",
    "lambda: 1",
    "z1 if z1 else 2",
    "'a'",
    "",
    "   ",
    "1j*z1",
    "z1 +",
    "foo(z1)",
    "tanh(x=z1)",
    "tanh(*z1)",
    "He21(z1)",
    "z1 < 2",
    "z1 // 2",
    "z1 % 2",
    "~z1",
    "not z1",
    "True + z1",
    "[z1]",
    "z[0]",
    "np.tanh(z1)",
    "(lambda: 1)()",
    "z1; z2",
    "z1 = 2",
    "1" * 400,
    "z1 + " * 500 + "z1",
    "-" * 150 + "z1",
    "(" * 300 + "z1" + ")" * 300,
]


@pytest.mark.parametrize("expr", REJECTED)
def test_rejected(expr):
    with pytest.raises(ProblemError) as info:
        Target(expr)
    assert str(info.value).startswith("target:")


@pytest.mark.parametrize("bad", [None, 3, b"z1", ["z1"]])
def test_rejects_non_string(bad):
    with pytest.raises(ProblemError, match=r"^target:"):
        Target(bad)


def test_message_names_token_and_lists_allowed():
    with pytest.raises(ProblemError) as info:
        Target("tanh(z1) + foo(z2)")
    message = str(info.value)
    assert "'foo'" in message and "z1, z2" in message and "He0" in message
    with pytest.raises(ProblemError, match="'x'"):
        Target("x + 1")


def test_custom_field_name():
    with pytest.raises(ProblemError, match=r"^teacher\.f: ") as info:
        Target("x + 1", field="teacher.f")
    assert info.value.field == "teacher.f"
    with pytest.raises(ProblemError, match=r"^teacher\.f: "):
        Target("z2", field="teacher.f")(np.zeros((3, 1)))


def test_long_sum_is_accepted(z):
    expr = " + ".join(["z1"] * 300)
    np.testing.assert_allclose(Target(expr)(z), 300 * z[:, 0])
