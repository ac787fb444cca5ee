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


def integer(field, value, minimum, maximum=None):
    """``value`` as an int >= minimum (and <= maximum if given; a float with an integral value
    is accepted)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ProblemError(field, f"expected an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ProblemError(field, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ProblemError(field, f"must be <= {maximum}, got {value}")
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


#: a run may use at most this fraction of the available memory (solver and simulator alike)
MEMORY_HEADROOM = 0.8


def available_bytes():
    """Memory available to a new allocation (MemAvailable of /proc/meminfo, plus the spare
    memory this process keeps for its next solve, :mod:`dmft.memory`), or None when it cannot
    be known (then no memory check is made)."""
    from .memory import spare_bytes          # numba: not loaded by a CLI that only checks
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 + spare_bytes()
    except (OSError, ValueError, IndexError):
        pass
    return None


def solver_memory(problem, n_paths, n_groups, response="stein", method="auto", sharded=False,
                  history="float64"):
    """Bytes a :func:`dmft.solve` needs, as (paths part, kernels part): the per-path histories
    (O(n_paths steps p), O(n_paths) for the one-pass recursion, held by the workers when
    sharded) and the two-time kernels (O(n_groups steps^2 p^2): the weight side's packed rows
    of B, K and the Stein averages, half a dense array each (:mod:`dmft.weight`), and the
    result's means and errors; the pathwise estimator also keeps R_g and R_theta dense)."""
    T, p, k = problem.steps, problem.p, problem.k
    hist = 4 if history == "float32" else 8
    two = float(n_groups) * (T + 1) ** 2 * p * p * 8
    if method == "auto" and problem.plan.one_pass:
        per_path = 3 * 8 * (k + p + 2)                      # z, y, zeta and temporaries
        kernels = 8 * two
    else:
        per_path = 8 * (k + 2 * p + 2) + T * p * (4 + hist)
        per_path += 0 if problem.plan.kind == "multi-pass" else T + 1
        per_path += 8 * (T + 1) * p * p if response == "pathwise" else 0
        kernels = (5.0 if response == "pathwise" else 1.5) * two + 24 * two / n_groups
    return (0.0 if sharded else float(n_paths) * per_path), kernels


def check_solver_memory(problem, n_paths, n_groups, response="stein", method="auto",
                        sharded=False, history="float64"):
    """ProblemError (on ``n_paths``, or ``steps`` when the kernels dominate) when a solve would
    not fit in the available memory: refused before any allocation rather than crashing."""
    paths, kernels = solver_memory(problem, n_paths, n_groups, response, method, sharded,
                                   history)
    avail = available_bytes()
    if avail is None or paths + kernels <= MEMORY_HEADROOM * avail:
        return
    field = "n_paths" if paths >= kernels else "steps"
    hint = "lower n_paths (or shard the paths over a Dask cluster)" if field == "n_paths" else \
        "lower steps (the kernels grow as n_groups steps^2 p^2)"
    raise ProblemError(field, f"the solve needs about {(paths + kernels) / 2**30:.3g} GiB but "
                              f"only {avail / 2**30:.3g} GiB are available; {hint}")
