"""The DMFT of the models beyond the paper's (the theory documentation, section 7): losses, a
trained second layer, spherical GD.

Losses enter the Numba kernels as an integer ``loss`` code (no Python objects in kernels), the
way activations do (``dmft.activations``): ``dloss``, ``d2loss`` and ``loss_value`` are the
scalar jitted primitives of eq. (7.1), ``loss_chunk`` the chunk loop of the sample side for a
loss other than the square one (whose loop stays inline in ``dmft.kernels.step``, so that the
default model's arithmetic is untouched).

=============  ====  ======================  =================  ======================
loss           code  l(yhat, y)              l'                 l''
=============  ====  ======================  =================  ======================
square         0     (yhat - y)^2 / 2        yhat - y           1
logistic       1     log(1 + e^{-y yhat})    -y S(-y yhat)      S(y yhat) S(-y yhat)
correlation    2     -y yhat                 -y                 0
=============  ====  ======================  =================  ======================

(S the logistic function.)  The trained readout's update, eq. (7.5), and the spherical
rescaling of the weight side, eqs. (7.8)-(7.9), are the plain numpy functions
:func:`readout_step` and :func:`sphere_factor`.
"""
import math

import numpy as np
from numba import njit

from .errors import ProblemError

SQUARE, LOGISTIC, CORRELATION = range(3)
LOSSES = {"square": SQUARE, "logistic": LOGISTIC, "correlation": CORRELATION}


def loss_code(name):
    """The integer code of the loss ``name`` (table of the module docstring).

    Parameters
    ----------
    name : str
        ``"square"``, ``"logistic"`` or ``"correlation"``.

    Returns
    -------
    int
    """
    if name not in LOSSES:
        raise ProblemError("loss", f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def problem_codes(problem):
    """The kernel codes of a problem's model: loss, trained readout, spherical GD.

    Parameters
    ----------
    problem : Problem
        The problem (one without the fields of section 7 gives the defaults: square loss,
        fixed readout, no normalisation).

    Returns
    -------
    tuple of (int, bool, bool)
        The loss code, whether the readout is trained, whether GD is spherical."""
    return (loss_code(getattr(problem, "loss", "square")),
            getattr(problem, "readout", "fixed") == "trained",
            getattr(problem, "normalize", "none") == "sphere")


@njit(cache=True)
def _softplus(u):
    """log(1 + e^u), stable."""
    if u > 0.0:
        return u + math.log1p(math.exp(-u))
    return math.log1p(math.exp(u))


@njit(cache=True)
def _logistic(u):
    """S(u) = 1 / (1 + e^{-u}), stable."""
    if u >= 0.0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


@njit(cache=True)
def loss_value(loss, yhat, y):
    """l(yhat, y), eq. (7.1)."""
    if loss == SQUARE:
        e = yhat - y
        return 0.5 * e * e
    if loss == LOGISTIC:
        return _softplus(-y * yhat)
    return -y * yhat


@njit(cache=True)
def dloss(loss, yhat, y):
    """l' = dl/dyhat, eq. (7.1)."""
    if loss == SQUARE:
        return yhat - y
    if loss == LOGISTIC:
        return -y * _logistic(-y * yhat)
    return -y


@njit(cache=True)
def d2loss(loss, yhat, y):
    """l'' = d^2 l/dyhat^2, eq. (7.1) (labels +-1 for the logistic loss)."""
    if loss == SQUARE:
        return 1.0
    if loss == LOGISTIC:
        s = _logistic(y * yhat)
        return s * (1.0 - s)
    return 0.0


@njit(cache=True)
def loss_chunk(loss, YH, YT, y, SEL, ERR):
    """ERR[i] = s_i l'(yhat_i, y_i) over a chunk of paths (the factor of g, eq. (7.2)); returns
    the sums of s l(yhat, y) (train), l(yhat_test, y) (test) and s (selected paths).
    Self-contained (no calls): it is compiled into the step kernel of every solve, and each
    jitted callee would add its own compilations (see ``dmft.kernels``)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    n = YH.shape[0]
    if loss == CORRELATION:              # l = -y yhat, l' = -y
        for i in range(n):
            sel = SEL[i]
            ERR[i] = -sel * y[i]
            s0 -= sel * y[i] * YH[i]
            s1 -= y[i] * YT[i]
            s2 += sel
        return s0, s1, s2
    for i in range(n):                   # logistic: l = log(1 + e^{-u}), l' = -y S(-u), u = y yhat
        sel = SEL[i]
        u = y[i] * YH[i]
        e = math.exp(-abs(u))
        ERR[i] = -sel * y[i] * (1.0 / (1.0 + e) if u <= 0.0 else e / (1.0 + e))
        s0 += sel * (max(-u, 0.0) + math.log1p(e))
        v = y[i] * YT[i]
        s1 += max(-v, 0.0) + math.log1p(math.exp(-abs(v)))
        s2 += sel
    return s0, s1, s2


def readout_rates(problem):
    """Step and ridge of a problem's second layer.

    Parameters
    ----------
    problem : Problem
        The problem.

    Returns
    -------
    tuple of (float, float)
        (eta_a, lambda_a): ``eta_readout`` (default eta) and ``ridge_readout`` (default 0)."""
    eta_a = getattr(problem, "eta_readout", None)
    return (problem.eta if eta_a is None else eta_a), (getattr(problem, "ridge_readout", 0.0) or 0.0)


def readout_step(a, la, eta_a, ridge_a, alpha):
    """a(t+1) = (1 - eta_a lambda_a) a(t) - eta_a alpha E[s(t) l' sigma(h(t))], eq. (7.5).

    Parameters
    ----------
    a : ndarray (G, p)
        a(t) per replica.
    la : ndarray (G, p)
        E[s(t) l' sigma(h(t))] per replica (the training paths, memory term included).
    eta_a, ridge_a : float
        Learning rate and ridge of the second layer.
    alpha : float
        alpha_tot, the size over d of the data set (eq. (4.1)).

    Returns
    -------
    ndarray (G, p)
    """
    return (1.0 - eta_a * ridge_a) * a - eta_a * alpha * la


def sphere_factor(M, C):
    """D(t+1) = diag(Qtilde_jj)^{-1/2} with Qtilde = Mtilde Mtilde^T + Ctilde_theta(t+1, t+1),
    eq. (7.8), as the vector of its diagonal.

    Parameters
    ----------
    M : ndarray (G, p, k)
        Mtilde(t+1), the overlaps of the step before normalisation.
    C : ndarray (G, p, p)
        Ctilde_theta(t+1, t+1).

    Returns
    -------
    ndarray (G, p)
        The diagonal of D(t+1) per replica (NaN where Qtilde_jj <= 0).
    """
    q = np.einsum("gjq,gjq->gj", M, M) + np.einsum("gjj->gj", C)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, 1.0 / np.sqrt(np.where(q > 0, q, 1.0)), np.nan)
