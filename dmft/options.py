"""Every option of :func:`dmft.solve` and :func:`dmft.simulate`, declared once.

An :class:`Option` carries its name, kind, allowed values, default and one line of
documentation.  The Python functions (their signatures and the Parameters of their docstrings),
the TOML reader (``[solver]`` and ``[simulation]`` tables), the command-line flags,
``dmft sweep --param`` and the learnability check all read these declarations, and every value,
from wherever it comes, is checked by :meth:`Option.check` (``ProblemError`` naming the
option).  Checks that involve the problem or several options (applicability: an option that
would have no effect is refused rather than ignored) live with the function they serve
(:func:`dmft.solver.solver_settings`, :func:`dmft.simulate.simulation_settings`).
"""
import inspect
import math
import re
from dataclasses import dataclass

import numpy as np

from .checks import integer, real
from .errors import ProblemError

__all__ = ["Option", "OptionSet", "SOLVER", "SIMULATION", "draw_seed"]

#: seeds drawn when none is given are below this (they fit a netCDF attribute)
SEED_BOUND = 2 ** 63


def draw_seed():
    """A fresh seed from the operating system's entropy, for runs given ``seed=None`` (the
    seed used is recorded in the result)."""
    return int(np.random.SeedSequence().entropy % SEED_BOUND)


@dataclass(frozen=True)
class Option:
    """One option of :func:`dmft.solve` or :func:`dmft.simulate`: its declaration, from which
    the keyword argument, the config key, the command-line flag and their checks all follow.

    Attributes
    ----------
    name : str
        The keyword argument and the config key, e.g. ``"n_paths"`` (the flag is
        :attr:`flag`).
    kind : {"int", "float", "choice", "seed", "progress", "object"}
        What the values are: an integer or a real number within ``minimum`` and ``maximum``,
        one of ``choices``, a seed (an integer >= 0, or None to draw one), a progress setting
        (True, False or "auto"), or any Python object (not checked).
    default : object
        The value when the option is not given (None where the value is drawn or derived at
        run time, e.g. ``seed``).
    doc : str
        One line of documentation (the Parameters entry of the function, the flag's help).
    choices : tuple of str, default ()
        The allowed values of a "choice".
    minimum, maximum : float or None, default None
        Bounds of an "int" or "float" (inclusive; None: unbounded).
    open_max : bool, default False
        Whether ``maximum`` itself is excluded (a "float").
    toml : bool, default True
        Whether it may be set in a config table (``[solver]``, ``[simulation]``).
    cli : bool, default True
        Whether it has a command-line flag.
    sweep : bool, default False
        Whether ``dmft sweep --param`` may vary it.
    numbers : bool, default True
        Whether it changes the numbers computed (so that it is part of a sweep point's hash);
        False for settings such as ``progress`` or ``n_jobs``.
    """

    name: str
    kind: str
    default: object
    doc: str
    choices: tuple = ()
    minimum: float = None
    maximum: float = None
    open_max: bool = False
    toml: bool = True
    cli: bool = True
    sweep: bool = False
    numbers: bool = True

    def check(self, value):
        """Check a value of the option and convert it to its canonical type.

        Parameters
        ----------
        value : object
            A value from Python, a config or a sweep.  None is accepted as is when the
            default is None; an "object" is not checked.

        Returns
        -------
        object
            The value: an int for "int" and "seed" (a float with an integral value is
            accepted), a float for "float", the string for "choice", a bool or "auto" for
            "progress".

        Raises
        ------
        ProblemError
            Naming the option, when the value has the wrong type or is out of range.
        """
        name = self.name
        if self.kind == "object" or (value is None and self.default is None):
            return value
        if self.kind == "int":
            return integer(name, value, self.minimum,
                           None if self.maximum is None else self.maximum)
        if self.kind == "seed":
            return integer(name, value, 0)
        if self.kind == "float":
            x = real(name, value)
            if self.minimum is not None and x < self.minimum:
                raise ProblemError(name, f"must be >= {self.minimum:g}, got {value!r}")
            if self.maximum is not None and (x > self.maximum or
                                             (self.open_max and x == self.maximum)):
                op = "<" if self.open_max else "<="
                raise ProblemError(name, f"must be {op} {self.maximum:g}, got {value!r}")
            return x
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ProblemError(name, f"must be one of {', '.join(map(repr, self.choices))}, "
                                         f"got {value!r}")
            return value
        if self.kind == "progress":
            if isinstance(value, (bool, np.bool_)) or value == "auto":
                return value if isinstance(value, str) else bool(value)
            raise ProblemError(name, f"must be true, false or 'auto', got {value!r}")
        raise AssertionError(self.kind)

    def parse(self, text):
        """Convert a command-line string to a value of the option, then :meth:`check` it.

        Parameters
        ----------
        text : str
            The flag's argument: for "int" and "seed" an integer, also written ``1e6`` or
            ``1_000_000``; for "float" a number; for "progress" true, yes, 1, false, no, 0 or
            auto (any case); otherwise the value itself.  Surrounding spaces are ignored.

        Returns
        -------
        object
            The checked value, as returned by :meth:`check`.

        Raises
        ------
        ProblemError
            Naming the option, when the text is not a value of its kind or is out of range.
        """
        t = text.strip()
        if self.kind in ("int", "seed"):
            digits = t.replace("_", "")
            if re.fullmatch(r"[+-]?[0-9]+", digits):
                return self.check(int(digits))
            try:
                x = float(digits)
            except ValueError:
                raise ProblemError(self.name, f"expected an integer, got {text!r}") from None
            if not (math.isfinite(x) and x.is_integer()):
                raise ProblemError(self.name, f"expected an integer, got {text!r}")
            return self.check(int(x))
        if self.kind == "float":
            try:
                return self.check(float(t))
            except ValueError:
                raise ProblemError(self.name, f"expected a number, got {text!r}") from None
        if self.kind == "progress":
            table = {"true": True, "yes": True, "1": True, "false": False, "no": False,
                     "0": False, "auto": "auto"}
            if t.lower() not in table:
                raise ProblemError(self.name, f"must be true, false or auto, got {text!r}")
            return table[t.lower()]
        return self.check(t)

    @property
    def flag(self):
        """The command-line flag, e.g. ``--n-paths``."""
        return "--" + self.name.replace("_", "-")

    def describe(self):
        """One line for help texts: the doc, the allowed values and the default.

        Returns
        -------
        str
            ``doc``, then the choices of a "choice" in parentheses, separated by ``|``, and
            ``; default X`` (X the ``repr`` of the default) unless the default is None.
        """
        allowed = f" ({' | '.join(self.choices)})" if self.choices else ""
        default = "" if self.default is None else f"; default {self.default!r}"
        return f"{self.doc}{allowed}{default}"


class OptionSet:
    """An ordered, named collection of :class:`Option`: the options of one function
    (:data:`SOLVER`, :data:`SIMULATION`).

    Iterating gives the options in declaration order; ``SOLVER[name]`` and ``name in SOLVER``
    look one up by name.

    Parameters
    ----------
    table : str
        The config table of these options (``"solver"``, ``"simulation"``), used in messages.
    options : iterable of Option
        The declarations, in the order of the function's signature.
    """

    def __init__(self, table, options):
        self.table = table
        self.options = {o.name: o for o in options}

    def __iter__(self):
        return iter(self.options.values())

    def __getitem__(self, name):
        return self.options[name]

    def __contains__(self, name):
        return name in self.options

    def names(self, **where):
        """Names of the options whose attributes have the given values.

        Parameters
        ----------
        **where
            Attribute of :class:`Option` -> required value, e.g. ``sweep=True``; none: every
            option.

        Returns
        -------
        tuple of str
            The names, in declaration order.
        """
        return tuple(o.name for o in self if all(getattr(o, k) == v for k, v in where.items()))

    def defaults(self):
        """The default of every option.

        Returns
        -------
        dict
            Option name -> default, in declaration order (None where the value is drawn or
            derived at run time).
        """
        return {o.name: o.default for o in self}

    def complete(self, problem, values):
        """Every option's value for a problem: the defaults, updated by the given values
        checked against their declarations (:meth:`check`).

        Parameters
        ----------
        problem : Problem
            The problem the options are for (checks that involve it are made by
            :func:`dmft.solver.solver_settings` and :func:`dmft.simulate.simulation_settings`).
        values : dict
            Option name -> value, for the options given.

        Returns
        -------
        dict
            Option name -> value for every option, in declaration order.

        Raises
        ------
        ProblemError
            When ``problem`` is not a :class:`~dmft.Problem` (naming ``problem``), or naming
            an unknown option or a bad value.
        """
        from .problem import Problem
        if not isinstance(problem, Problem):
            raise ProblemError("problem", f"expected a dmft.Problem, got "
                                          f"{type(problem).__name__}")
        out = self.defaults()
        out.update(self.check(values))
        return out

    def check(self, values, where=None):
        """Check a dict of option values, each by :meth:`Option.check`.

        Parameters
        ----------
        values : dict
            Option name -> value.
        where : str, optional
            Where the values came from, for the message on an unknown name, e.g.
            ``"[solver] table"`` (then only the options settable in a config are listed as
            known); default ``"<table> option"``, e.g. "solver option".

        Returns
        -------
        dict
            Option name -> converted value, for the names of ``values`` only.

        Raises
        ------
        ProblemError
            Naming the first unknown option, or an option with a bad value.
        """
        where = where or f"{self.table} option"
        out = {}
        for key, value in values.items():
            if key not in self.options:
                known = ", ".join(self.names(toml=True) if "table" in where else self.options)
                raise ProblemError(key, f"unknown {where}; known: {known}")
            out[key] = self.options[key].check(value)
        return out

    def signature(self, first="problem"):
        """The signature of the function these options serve (set as its
        ``__signature__``, e.g. ``solve.__signature__ = SOLVER.signature()``).

        Parameters
        ----------
        first : str, default "problem"
            Name of the one positional-or-keyword parameter.

        Returns
        -------
        inspect.Signature
            ``first``, then every option as a keyword-only parameter with its default, in
            declaration order, e.g. ``(problem, *, n_paths=200000, seed=None, ...)``.
        """
        params = [inspect.Parameter(first, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default)
                   for o in self]
        return inspect.Signature(params)

    def numpydoc(self, indent="    "):
        """The options as entries of a numpydoc Parameters section (they replace the
        ``{options}`` placeholder of the docstrings of :func:`dmft.solve` and
        :func:`dmft.simulate`).

        Parameters
        ----------
        indent : str, default four spaces
            Indentation of each entry's first line; its description is indented four more.

        Returns
        -------
        str
            Two lines per option, in declaration order, joined by newlines:
            ``{indent}name : type, default value`` (the type "int", "float", "int or None"
            for a seed, "bool or 'auto'", "object or None", or the set of choices, e.g.
            ``{'stein', 'pathwise'}``; the default as its ``repr``), then
            ``{indent}    doc``.
        """
        kinds = {"int": "int", "float": "float", "seed": "int or None",
                 "progress": "bool or 'auto'", "object": "object or None"}
        lines = []
        for o in self:
            kind = "{" + ", ".join(repr(c) for c in o.choices) + "}" if o.kind == "choice" \
                else kinds[o.kind]
            lines += [f"{indent}{o.name} : {kind}, default {o.default!r}", f"{indent}    {o.doc}"]
        return "\n".join(lines)


def is_client(value):
    """Whether ``value`` looks like a ``dask.distributed.Client``."""
    return hasattr(value, "submit") and hasattr(value, "scheduler_info")


#: the options of :func:`dmft.solve` (the ``[solver]`` table of a config)
SOLVER = OptionSet("solver", (
    Option("n_paths", "int", 200_000, "Monte Carlo paths of the sample side, split into "
           "n_groups independent replicas", minimum=2, sweep=True),
    Option("seed", "seed", None, "seed of every random draw; None draws one, recorded in the "
           "result", sweep=True),
    Option("response", "choice", "stein", "estimator of the responses: Gaussian integration by "
           "parts (any activation) or pathwise derivatives (smooth activations, the "
           "cross-check)", choices=("stein", "pathwise"), sweep=True),
    Option("n_groups", "int", 32, "independent replicas the paths are split into; the error "
           "bars are standard errors over them", minimum=2, sweep=True),
    Option("stein_rtol", "float", 1e-3, "innovations below this fraction of the largest are "
           "dropped when R_g, R_theta and Psi are reconstructed for reporting (Stein estimator "
           "only; the dynamics never uses them)", minimum=0.0, maximum=1.0, open_max=True,
           sweep=True),
    Option("method", "choice", "auto", "'auto' solves one-pass GD by its memory-less "
           "recursion; 'general' forces the general-schedule DMFT for every schedule",
           choices=("auto", "general"), sweep=True),
    Option("history", "choice", "float64", "storage of the whitened innovations of every path "
           "(the largest array); float32 halves it", choices=("float64", "float32"),
           sweep=True),
    Option("progress", "progress", "auto", "progress bar over steps; 'auto' shows it for runs "
           "expected to take more than a few seconds", numbers=False),
    Option("client", "object", None, "a dask.distributed.Client: shard the paths over its "
           "workers (resident there as actors); same numbers as in one process",
           toml=False, cli=False, numbers=False),
    Option("n_shards", "int", None, "number of shards with a client (at most n_groups; "
           "default one per worker)", minimum=1, toml=False, cli=False, numbers=False),
))

#: the options of :func:`dmft.simulate` (the ``[simulation]`` table of a config)
SIMULATION = OptionSet("simulation", (
    Option("d", "int", 1000, "input dimension (n = round(alpha d) samples)", minimum=2),
    Option("n_seeds", "int", 8, "independent runs (data, teacher and initial weights); at "
           "least 2 for error bars", minimum=1),
    Option("seed", "seed", None, "root seed (seed i of the runs is SeedSequence(seed).spawn"
           "(n_seeds)[i]); None draws one, recorded in the result"),
    Option("dtype", "choice", "float64", "floating-point type of the data and weights; "
           "float32 halves the memory", choices=("float64", "float32")),
    Option("n_jobs", "int", None, "parallel processes (default: min(n_seeds, CPUs), reduced "
           "to fit in memory); the numbers do not depend on it", minimum=1, numbers=False),
    Option("n_test", "int", 100_000, "Gaussian samples per run for the population test error",
           minimum=100),
    Option("progress", "progress", "auto", "progress bar over runs; 'auto' shows it for runs "
           "expected to take more than a few seconds", numbers=False),
))

