"""Tests for dmft.activations: derivatives against finite differences, and conventions."""

import math

import numpy as np
import pytest
import scipy.special

from dmft.activations import ACTIVATIONS, get_activation
from dmft.errors import ProblemError

# Grid avoiding 0 (the ReLU kink) by a margin much larger than the finite-difference step.
X = np.concatenate([np.linspace(-4.0, -0.05, 40), np.linspace(0.05, 4.0, 40)])
H = 1e-5


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_first_derivative_matches_finite_difference(name):
    act = ACTIVATIONS[name]
    fd = (act.f(X + H) - act.f(X - H)) / (2 * H)
    np.testing.assert_allclose(act.df(X), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(n for n, a in ACTIVATIONS.items() if a.smooth))
def test_second_derivative_matches_finite_difference(name):
    act = ACTIVATIONS[name]
    fd = (act.df(X + H) - act.df(X - H)) / (2 * H)
    np.testing.assert_allclose(act.d2f(X), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_registry_consistent_and_shapes(name):
    act = ACTIVATIONS[name]
    assert act.name == name
    assert get_activation(name) is act
    assert get_activation(name.upper()) is act
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    for fn in (act.f, act.df) + ((act.d2f,) if act.smooth else ()):
        out = fn(x)
        assert out.shape == (3, 4)
        assert np.all(np.isfinite(out))


def test_codes_are_distinct():
    codes = [a.code for a in ACTIVATIONS.values()]
    assert len(set(codes)) == len(codes)


def test_erf_convention():
    x = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(ACTIVATIONS["erf"].f(x), scipy.special.erf(x / math.sqrt(2)),
                               rtol=1e-14, atol=1e-15)


def test_sigmoid_convention():
    sig = ACTIVATIONS["sigmoid"]
    assert sig.f(np.array([0.0]))[0] == 0.5
    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sig.f(x), scipy.special.expit(x), rtol=1e-14)
    # stable at extreme arguments
    assert np.all(np.isfinite(sig.f(np.array([-800.0, 800.0]))))


def test_quadratic_linear_relu_tanh_softplus_conventions():
    x = np.linspace(-3, 3, 31)
    np.testing.assert_array_equal(ACTIVATIONS["quadratic"].f(x), x ** 2)
    np.testing.assert_array_equal(ACTIVATIONS["linear"].f(x), x)
    np.testing.assert_array_equal(ACTIVATIONS["relu"].f(x), np.maximum(x, 0.0))
    np.testing.assert_allclose(ACTIVATIONS["tanh"].f(x), np.tanh(x), rtol=1e-14)
    np.testing.assert_allclose(ACTIVATIONS["softplus"].f(x), np.logaddexp(0.0, x), rtol=1e-14)
    # relu'(0) := 0
    assert ACTIVATIONS["relu"].df(np.array([0.0]))[0] == 0.0


def test_unknown_activation():
    with pytest.raises(ProblemError) as info:
        get_activation("swish")
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("activation:")
    with pytest.raises(ProblemError, match="^activation:"):
        get_activation(3)


def test_relu_has_no_second_derivative():
    relu = ACTIVATIONS["relu"]
    assert not relu.smooth
    with pytest.raises(ProblemError) as info:
        relu.d2f(np.array([1.0]))
    assert str(info.value).startswith("activation:")
