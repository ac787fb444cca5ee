"""TOML configuration files: ``[problem]`` (the fields of :class:`~dmft.Problem`), ``[solver]``
(options of :func:`dmft.solve`), ``[simulation]`` (options of :func:`dmft.simulate`) and, for
validation cases, ``[validation]``.

An example is :data:`EXAMPLE` (shown by ``dmft run --help``).  Every command checks the whole
file (all tables, whatever it runs) through :func:`check_config`, before any work.
"""
import os
from dataclasses import dataclass

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from .checks import integer
from .errors import ProblemError
from .options import SIMULATION, SOLVER
from .problem import Problem

TABLES = ("problem", "solver", "simulation", "validation")

#: a complete config: the paper's case (run, simulate and compare it with ``dmft``)
EXAMPLE = """\
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


def read_config(path):
    """Parse a TOML config; returns the dict of tables (unknown tables are an error).

    Parameters
    ----------
    path : str or path-like
        The TOML file.

    Returns
    -------
    dict
        ``{table name: dict}``; ``problem`` is always present.
    """
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
    return check_tables(cfg, path)


def check_tables(cfg, where="the config"):
    """The tables of a config dict: known names, tables where tables are expected and a
    ``[problem]`` table; returns ``cfg``."""
    if not isinstance(cfg, dict):
        raise ProblemError("config", "expected a dict of tables")
    unknown = sorted(set(cfg) - set(TABLES))
    if unknown:
        raise ProblemError(unknown[0], f"unknown table in {where}; known: {', '.join(TABLES)}")
    for name in TABLES:
        if name in cfg and not isinstance(cfg[name], dict):
            raise ProblemError(name, f"must be a table ([{name}])")
    if "problem" not in cfg:
        raise ProblemError("problem", f"{where} has no [problem] table")
    return cfg


@dataclass
class Config:
    """A checked config: the problem and the complete, checked options of the solver and of
    the simulator (defaults filled in; command-line overrides applied)."""

    problem: Problem
    solver: dict
    simulation: dict
    tables: dict


def problem_from_config(cfg):
    """The :class:`~dmft.Problem` of a config's ``[problem]`` table.

    Parameters
    ----------
    cfg : dict
        Tables of a config (:func:`read_config`).

    Returns
    -------
    Problem
    """
    return Problem.from_dict(dict(cfg["problem"]))


def table_options(cfg, options):
    """The options set in the config's table for ``options`` (an
    :class:`~dmft.options.OptionSet`), each checked against its declaration."""
    values = dict(cfg.get(options.table, {}))
    known = options.names(toml=True)
    for key in values:
        if key not in known:
            raise ProblemError(key, f"unknown [{options.table}] option; known: "
                                    f"{', '.join(known)}")
    return options.check(values)


#: the keys of a case's [validation.quick] table (overrides for ``dmft validate --quick``)
QUICK_KEYS = ("ds", "n_seeds", "steps", "n_paths")


def _dims(value, where):
    if not isinstance(value, list) or not value or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 2 for d in value):
        raise ProblemError("ds", f"{where} needs ds = [list of dimensions >= 2], got {value!r}")
    return sorted(value)


def validation_table(cfg, quick=False):
    """The ``[validation]`` table of a validation case, checked.

    Parameters
    ----------
    cfg : dict
        Tables of a config (:func:`read_config`).
    quick : bool
        Return the ``[validation.quick]`` overrides (checked in any case).

    Returns
    -------
    (str, list of int, dict)
        The description, the dimensions to simulate (sorted) and the quick overrides (empty
        unless ``quick``; ints: ``ds``, ``n_seeds``, ``steps``, ``n_paths``).
    """
    val = dict(cfg.get("validation", {}))
    q = val.pop("quick", {})
    if not isinstance(q, dict):
        raise ProblemError("quick", "must be a table ([validation.quick])")
    unknown = sorted(set(val) - {"ds", "description"}) + sorted(set(q) - set(QUICK_KEYS))
    if unknown:
        raise ProblemError(unknown[0], f"unknown [validation] option; known: ds, description, "
                                       f"quick.{', quick.'.join(QUICK_KEYS)}")
    description = val.get("description", "")
    if not isinstance(description, str):
        raise ProblemError("description", f"must be a string, got {description!r}")
    ds = _dims(val.get("ds"), "[validation]")
    quick_ds = _dims(q["ds"], "[validation.quick]") if "ds" in q else ds
    mins = {"n_seeds": 1, "steps": 1, "n_paths": 2}
    checked = {key: integer(key, q[key], mins[key]) for key in mins if key in q}
    if not quick:
        return description, ds, {}
    return description, quick_ds, dict(checked, ds=quick_ds)


def check_config(cfg, solver=None, simulation=None, problem=None):
    """Check a whole config (every table, whatever the command runs) and return a
    :class:`Config`.

    Parameters
    ----------
    cfg : dict
        Tables of a config (:func:`read_config`).
    solver, simulation : dict, optional
        Overrides of ``[solver]`` and ``[simulation]`` values (e.g. from command-line flags;
        None values are ignored).
    problem : Problem, optional
        Use this problem instead of the ``[problem]`` table's (e.g. another schedule).

    Returns
    -------
    Config
        The problem and the complete solver and simulation options, checked together
        (:func:`dmft.solver.solver_settings`, :func:`dmft.simulate.simulation_settings`).
    """
    from .simulate import simulation_settings
    from .solver import solver_settings
    check_tables(cfg)
    problem = problem or problem_from_config(cfg)
    if "validation" in cfg:
        validation_table(cfg)
    sopts = table_options(cfg, SOLVER)
    sopts.update({k: v for k, v in (solver or {}).items() if v is not None})
    mopts = table_options(cfg, SIMULATION)
    mopts.update({k: v for k, v in (simulation or {}).items() if v is not None})
    for opts in (sopts, mopts):            # a config's runs are reproducible: seed 0 by default
        opts.setdefault("seed", 0)
    return Config(problem, solver_settings(problem, **sopts),
                  simulation_settings(problem, **mopts), cfg)
