"""TOML configuration files: ``[problem]`` (Problem fields), ``[solver]`` (options of
:func:`dmft.solve`) and ``[simulation]`` (options of :func:`dmft.simulate`).

Example::

    [problem]
    target = "tanh(z1 + He3(z2))"
    p = 2
    activation = "relu"
    alpha = 3.0
    eta = 0.2
    steps = 6

    [solver]
    n_paths = 1_000_000
    seed = 0

    [simulation]
    d = 2000
    n_seeds = 16
    seed = 0
"""
import os

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from .errors import ProblemError
from .problem import Problem

SOLVER_KEYS = ("n_paths", "seed", "response", "n_groups", "stein_rtol", "progress", "method",
               "history")
SIMULATION_KEYS = ("d", "n_seeds", "seed", "dtype", "n_jobs", "n_test", "progress")
TABLES = ("problem", "solver", "simulation", "validation")


def read_config(path):
    """Parse a TOML config; returns the dict of tables (unknown tables are an error)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ProblemError("config", f"no such file: {path}")
    if not os.path.isfile(path):
        raise ProblemError("config", f"not a file: {path}")
    try:
        with open(path, "rb") as fh:
            cfg = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProblemError("config", f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ProblemError("config", f"cannot read {path}: {exc.strerror or exc}") from None
    unknown = sorted(set(cfg) - set(TABLES))
    if unknown:
        raise ProblemError(unknown[0], f"unknown table in {path}; known: {', '.join(TABLES)}")
    for name in TABLES:
        if name in cfg and not isinstance(cfg[name], dict):
            raise ProblemError(name, f"must be a table ([{name}])")
    if "problem" not in cfg:
        raise ProblemError("problem", f"{path} has no [problem] table")
    return cfg


def problem_from_config(cfg):
    """The :class:`~dmft.Problem` of a config's ``[problem]`` table."""
    return Problem.from_dict(dict(cfg["problem"]))


def _options(cfg, table, keys, overrides):
    opts = dict(cfg.get(table, {}))
    unknown = sorted(set(opts) - set(keys))
    if unknown:
        raise ProblemError(unknown[0], f"unknown [{table}] option; known: {', '.join(keys)}")
    opts.update({k: v for k, v in overrides.items() if v is not None})
    return opts


def solver_options(cfg, **overrides):
    """Keyword arguments of :func:`dmft.solve` from ``[solver]`` plus non-None overrides."""
    return _options(cfg, "solver", SOLVER_KEYS, overrides)


def simulation_options(cfg, **overrides):
    """Keyword arguments of :func:`dmft.simulate` from ``[simulation]`` plus overrides."""
    return _options(cfg, "simulation", SIMULATION_KEYS, overrides)
