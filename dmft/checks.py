"""Validation helpers shared by every entry point: each raises ProblemError naming the field."""
import math
import numbers

import numpy as np

from .errors import ProblemError


def real(field, value, *, positive=False, nonneg=False):
    """``value`` as a finite float (optionally > 0 or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ProblemError(field, f"expected a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ProblemError(field, f"must be finite, got {value!r}")
    if positive and value <= 0:
        raise ProblemError(field, f"must be > 0, got {value!r}")
    if nonneg and value < 0:
        raise ProblemError(field, f"must be >= 0, got {value!r}")
    return value


def integer(field, value, minimum):
    """``value`` as an int >= minimum (a float with an integral value is accepted)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ProblemError(field, f"expected an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ProblemError(field, f"must be >= {minimum}, got {value}")
    return value


def array(field, value, shape):
    """``value`` as a finite float64 array of the given shape (a flat vector is accepted for a
    (p, 1) or (1, k) matrix)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProblemError(field, f"expected a numeric array of shape {shape}") from None
    if arr.shape != shape:
        if arr.size == int(np.prod(shape)) and arr.ndim <= 1 and len(shape) == 2 and 1 in shape:
            arr = arr.reshape(shape)
        else:
            raise ProblemError(field, f"expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ProblemError(field, "contains NaN or infinite entries")
    return arr
