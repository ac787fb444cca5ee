"""The parameters of a sweep: which Problem fields and solver options can be swept (declared
in :data:`dmft.problem.FIELDS` and :data:`dmft.options.SOLVER`) and how ``--param`` strings
(``NAME=START:STOP:NUM[:log]`` or ``NAME=V1,V2,...``) turn into their values."""
import numpy as np

from .errors import ProblemError
from .options import SOLVER
from .problem import FIELDS, SHAPE_FIELDS

#: Problem fields that keep the array shapes (a swept target must keep k)
PROBLEM_SWEEPABLE = tuple(n for n in FIELDS if n not in SHAPE_FIELDS)
#: solver options that may be swept
SOLVER_SWEEPABLE = SOLVER.names(sweep=True)
SWEEPABLE = PROBLEM_SWEEPABLE + SOLVER_SWEEPABLE


_STRINGS = tuple(n for n in SWEEPABLE if FIELDS.get(n) in ("expr", "name") or
                 (n in SOLVER and SOLVER[n].kind == "choice"))
_INTEGERS = tuple(n for n in SOLVER_SWEEPABLE if SOLVER[n].kind in ("int", "seed"))


def value(name, x):
    """One swept value converted to the field's type (strings from the command line); names
    are put in their canonical form (``multipass`` -> ``multi-pass``).

    Parameters
    ----------
    name : str
        A sweepable field or option (:data:`SWEEPABLE`), or "range" for a range's end.
    x : str, int or float

    Returns
    -------
    str, int or float
    """
    from .activations import get_activation
    from .schedules import parse_schedule
    if name in _STRINGS:
        if not isinstance(x, str) or not x.strip():
            raise ProblemError("param", f"{name}: expected a non-empty name, got {x!r}")
        canon = {"schedule": lambda v: parse_schedule(v, "schedule").name,
                 "activation": lambda v: get_activation(v).name}
        if name in SOLVER:
            canon[name] = SOLVER[name].check
        return canon.get(name, str)(x.strip())
    ok = isinstance(x, (str, int, float, np.integer, np.floating)) and not isinstance(x, bool)
    try:
        v = float(x) if ok else None
    except ValueError:
        v = None
    if v is None or not np.isfinite(v) or (name in _INTEGERS and not (
            v.is_integer() and abs(v) < 2 ** 63)):
        kind = "an integer below 2^63" if name in _INTEGERS else "a finite number"
        raise ProblemError("param", f"{name}: expected {kind}, got {x!r}")
    v = int(v) if name in _INTEGERS else v
    return SOLVER[name].check(v) if name in SOLVER else v


def check_name(name):
    if name in SHAPE_FIELDS:
        raise ProblemError(name, "cannot be swept: it changes the shapes of the arrays "
                                 "(run one sweep per value instead)")
    if name not in SWEEPABLE:
        raise ProblemError("param", f"unknown parameter {name!r}; sweepable: "
                                    f"{', '.join(SWEEPABLE)}")


def parse_param(text):
    """Parse one ``--param`` specification.

    Parameters
    ----------
    text : str
        ``"NAME=START:STOP:NUM"`` (``numpy.linspace``), ``"NAME=START:STOP:NUM:log"``
        (``numpy.geomspace``) or ``"NAME=V1,V2,..."`` (a list; names for string fields).

    Returns
    -------
    (str, list)
        The field and its values (floats; ints for the integer options; strings).
        ProblemError on ``"param"`` for bad syntax or an unknown name, on the field itself
        for the fields that cannot be swept (p, k, steps, a, M0, Q0).
    """
    if not isinstance(text, str) or "=" not in text:
        raise ProblemError("param", f"expected NAME=VALUES (e.g. eta=0.05:2.0:40, "
                                    f"eta=0.01:1:20:log, alpha=1,2,4), got {text!r}")
    name, _, spec = (s.strip() for s in text.partition("="))
    check_name(name)
    if not spec:
        raise ProblemError("param", f"{name}: no values given")
    if ":" in spec:
        if name in _STRINGS:
            raise ProblemError("param", f"{name} takes a list of names (a,b,...), not a range")
        parts = [s.strip() for s in spec.split(":")]
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ("lin", "log")):
            raise ProblemError("param", f"{name}: a range is START:STOP:NUM or "
                                        f"START:STOP:NUM:log, got {spec!r}")
        start, stop = (value("range", s) for s in parts[:2])
        num = int(parts[2]) if parts[2].isdigit() else 0
        if num < 1:
            raise ProblemError("param", f"{name}: NUM must be a positive integer, "
                                        f"got {parts[2]!r}")
        log = len(parts) == 4 and parts[3] == "log"
        if log and (start <= 0 or stop <= 0):
            raise ProblemError("param", f"{name}: a log range needs START, STOP > 0")
        grid = (np.geomspace if log else np.linspace)(start, stop, num)
        values = [value(name, float(np.round(v)) if name in _INTEGERS else float(v))
                  for v in grid]
    else:
        items = [s.strip() for s in spec.split(",")]
        if any(not s for s in items):
            raise ProblemError("param", f"{name}: empty item in {spec!r}")
        values = [value(name, s) for s in items]
    return name, unique(name, values)


def unique(name, values):
    if len(set(values)) != len(values):
        raise ProblemError("param", f"{name}: repeated values in {values}")
    return list(values)


def normalize_params(params):
    """``params`` as a list of (name, values): accepts one string, a list of strings and/or
    (name, values) pairs, or a dict {name: values}."""
    params = [params] if isinstance(params, str) else (params or [])
    out = []
    for item in (params.items() if isinstance(params, dict) else params):
        if isinstance(item, str):
            name, values = parse_param(item)
        else:
            name, values = item
            check_name(name)
            values = [values] if isinstance(values, (str, int, float)) else list(values)
            if not values:
                raise ProblemError("param", f"{name}: no values given")
            values = unique(name, [value(name, v) for v in values])
        if name in [n for n, _ in out]:
            raise ProblemError("param", f"{name} is swept twice")
        out.append((name, values))
    return out
