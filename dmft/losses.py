"""The per-sample losses l(yhat, y) of ``Problem.loss`` and their derivatives in yhat, eq. (7.1).

===============  ===========================  ====================  =====================
loss             l(yhat, y)                   l' = dl/dyhat         l'' = d^2 l/dyhat^2
===============  ===========================  ====================  =====================
``square``       (yhat - y)^2 / 2             yhat - y              1
``logistic``     log(1 + exp(-y yhat))        -y S(-y yhat)         S(y yhat) S(-y yhat)
``correlation``  -y yhat                      -y                    0
===============  ===========================  ====================  =====================

S(u) = 1 / (1 + exp(-u)) is the logistic function; the logistic loss assumes y in {-1, +1}
(checked by :class:`~dmft.Problem`).  All functions are vectorised over numpy arrays and
evaluated without overflow (``logaddexp``, ``expit``).
"""
import numpy as np
from scipy.special import expit

__all__ = ["loss_value", "loss_derivative", "loss_second_derivative"]


def loss_value(loss, yhat, y):
    """l(yhat, y) of eq. (7.1), elementwise.

    Parameters
    ----------
    loss : {"square", "logistic", "correlation"}
    yhat, y : array_like
        Predictions and labels (broadcast together).

    Returns
    -------
    ndarray
    """
    yhat, y = np.asarray(yhat, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if loss == "square":
        return 0.5 * (yhat - y) ** 2
    if loss == "logistic":
        return np.logaddexp(0.0, -y * yhat)
    if loss == "correlation":
        return -y * yhat
    raise ValueError(f"unknown loss {loss!r}")


def loss_derivative(loss, yhat, y):
    """l' = dl/dyhat of eq. (7.1), elementwise (in the dtype of ``yhat``).

    Parameters
    ----------
    loss : {"square", "logistic", "correlation"}
    yhat, y : ndarray
        Predictions and labels (broadcast together).

    Returns
    -------
    ndarray
    """
    if loss == "square":
        return yhat - y
    if loss == "logistic":
        return (-y * expit(-y * yhat)).astype(yhat.dtype, copy=False)
    if loss == "correlation":
        return np.broadcast_to(-y, np.broadcast_shapes(np.shape(yhat), np.shape(y))) \
            .astype(yhat.dtype)
    raise ValueError(f"unknown loss {loss!r}")


def loss_second_derivative(loss, yhat, y):
    """l'' = d^2 l/dyhat^2 of eq. (7.1), elementwise.

    Parameters
    ----------
    loss : {"square", "logistic", "correlation"}
    yhat, y : array_like
        Predictions and labels (broadcast together).

    Returns
    -------
    ndarray
    """
    yhat, y = np.asarray(yhat, dtype=np.float64), np.asarray(y, dtype=np.float64)
    shape = np.broadcast_shapes(yhat.shape, y.shape)
    if loss == "square":
        return np.ones(shape)
    if loss == "logistic":
        u = y * yhat
        return expit(u) * expit(-u)
    if loss == "correlation":
        return np.zeros(shape)
    raise ValueError(f"unknown loss {loss!r}")
