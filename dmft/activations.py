"""Student activations: one registry shared by the DMFT solver and the simulator.

Every activation has an integer ``code`` so that the Numba kernels can dispatch on it without
Python objects; ``sigma(code, x)``, ``dsigma(code, x)`` and ``d2sigma(code, x)`` are the scalar
jitted primitives.  ``smooth`` says whether sigma'' is an ordinary function (needed by the
pathwise response estimator); for ReLU sigma'' is a Dirac delta and only the Stein estimator
applies.

Conventions (written once here):

=========  ====================================  =========================================
name       sigma(x)                              note
=========  ====================================  =========================================
relu       max(x, 0)                             sigma'(0) := 0, not smooth
tanh       tanh(x)
erf        erf(x / sqrt(2))                      Saad-Solla convention, range (-1, 1)
sigmoid    1 / (1 + exp(-x))
linear     x
quadratic  x**2
softplus   log(1 + exp(x))
=========  ====================================  =========================================
"""
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import ProblemError

RELU, TANH, ERF, SIGMOID, LINEAR, QUADRATIC, SOFTPLUS = range(7)
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 / math.pi)


@njit(cache=True, inline="always")
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def sigma(code, x):
    """sigma(x) for the activation with integer ``code``."""
    if code == RELU:
        return x if x > 0.0 else 0.0
    if code == TANH:
        return math.tanh(x)
    if code == ERF:
        return math.erf(x / _SQRT2)
    if code == SIGMOID:
        return _sigmoid(x)
    if code == LINEAR:
        return x
    if code == QUADRATIC:
        return x * x
    # SOFTPLUS, stable form
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True, inline="always")
def dsigma(code, x):
    """sigma'(x)."""
    if code == RELU:
        return 1.0 if x > 0.0 else 0.0
    if code == TANH:
        th = math.tanh(x)
        return 1.0 - th * th
    if code == ERF:
        return _SQRT2PI * math.exp(-0.5 * x * x)
    if code == SIGMOID:
        s = _sigmoid(x)
        return s * (1.0 - s)
    if code == LINEAR:
        return 1.0
    if code == QUADRATIC:
        return 2.0 * x
    return _sigmoid(x)


@njit(cache=True, inline="always")
def d2sigma(code, x):
    """sigma''(x); 0 for ReLU (whose true sigma'' is a Dirac delta: use Stein there)."""
    if code == RELU:
        return 0.0
    if code == TANH:
        th = math.tanh(x)
        return -2.0 * th * (1.0 - th * th)
    if code == ERF:
        return -_SQRT2PI * x * math.exp(-0.5 * x * x)
    if code == SIGMOID:
        s = _sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if code == LINEAR:
        return 0.0
    if code == QUADRATIC:
        return 2.0
    s = _sigmoid(x)
    return s * (1.0 - s)


@njit(cache=True, fastmath={"contract"})
def add_sigma(code, x, c, out):
    """out[i] += c sigma(x[i]) over a contiguous chunk: the branch on the activation is taken
    once, so each loop is branch-free (vectorised where the function allows)."""
    n = x.shape[0]
    if code == RELU:
        for i in range(n):
            out[i] += c * (x[i] if x[i] > 0.0 else 0.0)
    elif code == LINEAR:
        for i in range(n):
            out[i] += c * x[i]
    elif code == QUADRATIC:
        for i in range(n):
            out[i] += c * x[i] * x[i]
    else:
        for i in range(n):
            out[i] += c * sigma(code, x[i])


@njit(cache=True, fastmath={"contract"})
def scaled_dsigma(code, x, w, c, out):
    """out[i] = c w[i] sigma'(x[i]) over a contiguous chunk (branch taken once, as above)."""
    n = x.shape[0]
    if code == RELU:
        for i in range(n):
            out[i] = c * w[i] if x[i] > 0.0 else 0.0
    elif code == LINEAR:
        for i in range(n):
            out[i] = c * w[i]
    elif code == QUADRATIC:
        for i in range(n):
            out[i] = 2.0 * c * w[i] * x[i]
    else:
        for i in range(n):
            out[i] = c * w[i] * dsigma(code, x[i])


@njit(cache=True)
def _apply(code, order, x):
    out = np.empty_like(x)
    for i in range(x.size):
        if order == 0:
            out[i] = sigma(code, x[i])
        elif order == 1:
            out[i] = dsigma(code, x[i])
        else:
            out[i] = d2sigma(code, x[i])
    return out


@dataclass(frozen=True)
class Activation:
    """A registered activation; call ``f``, ``df``, ``d2f`` on numpy arrays."""

    name: str
    code: int
    smooth: bool

    def _eval(self, x, order):
        x = np.asarray(x, dtype=np.float64)
        return _apply(self.code, order, np.ascontiguousarray(x).ravel()).reshape(x.shape)

    def f(self, x):
        """sigma(x), elementwise on an array."""
        return self._eval(x, 0)

    def df(self, x):
        """sigma'(x), elementwise on an array."""
        return self._eval(x, 1)

    def d2f(self, x):
        """sigma''(x), elementwise (smooth activations only)."""
        if not self.smooth:
            raise ProblemError("activation", f"{self.name} has no ordinary second derivative")
        return self._eval(x, 2)


ACTIVATIONS = {
    "relu": Activation("relu", RELU, False),
    "tanh": Activation("tanh", TANH, True),
    "erf": Activation("erf", ERF, True),
    "sigmoid": Activation("sigmoid", SIGMOID, True),
    "linear": Activation("linear", LINEAR, True),
    "quadratic": Activation("quadratic", QUADRATIC, True),
    "softplus": Activation("softplus", SOFTPLUS, True),
}


def get_activation(name, field="activation"):
    """Look up an activation by (case-insensitive) name, raising ProblemError otherwise."""
    if not isinstance(name, str):
        raise ProblemError(field, f"expected a name (one of {', '.join(ACTIVATIONS)}), got {name!r}")
    key = name.strip().lower()
    if key not in ACTIVATIONS:
        raise ProblemError(field, f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]
