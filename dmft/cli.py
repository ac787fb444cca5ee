"""The ``dmft`` command line.

Exit codes (also in the README):

=====  ======================================================================================
0      success
1      the run finished but a check failed: a validation case or the suite's calibration test
       (``validate``), or a ``learnability --check-dmft`` disagreement
2      bad input: one line on stderr, ``dmft: error: FIELD: what is wrong`` (a config value, a
       command-line option, a missing or malformed config file, an output folder that cannot
       be written, a run too large for the memory); nothing is computed
3      the dynamics diverged (``run``, ``simulate``, ``compare``): the partial result (the steps
       completed before the failure, NaN after) is written as usual, and one line on stderr,
       ``dmft: warning: ... diverged ...``, names the step
4      internal error (a bug): one line on stderr; set ``DMFT_TRACEBACK=1`` for the traceback
130    interrupted (Ctrl-C); files already written are complete (every write is atomic)
141    the output pipe was closed by its reader (``dmft ... | head``): stopped quietly
=====  ======================================================================================

``dmft sweep`` returns 0 when points diverge: diverged points are data, flagged in the sweep
file (``diverged``, ``status``, ``steps_completed``).
"""
import argparse
import os
import sys
import textwrap
import warnings

from .version import __version__
from .commands import (EXIT_BROKEN_PIPE, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, cmd_compare,
                       cmd_exact, cmd_learnability, cmd_plot_sweep, cmd_run, cmd_simulate,
                       cmd_sweep, cmd_validate)
from .errors import DivergenceWarning, KernelProjectionWarning, ProblemError
from .config import EXAMPLE
from .options import SIMULATION, SOLVER
from .problem import FIELDS

CONFIG_HELP = ("A config is a TOML file with a [problem] table (the fields of dmft.Problem: "
               "{problem}) and optional [solver] ({solver}) and [simulation] ({simulation}) "
               "tables; a flag overrides the table's value.  Example:")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)    # a mistyped flag is an error, not a guess
        super().__init__(*args, **kwargs)

    def error(self, message):
        print(f"dmft: error: {message}", file=sys.stderr)
        sys.exit(EXIT_INPUT)


def _option_flags(cmd, option_sets):
    """One flag per declared option that has one (:mod:`dmft.options`); an option of several
    sets (seed, progress) gets one flag that sets it for each.  Values are parsed and checked
    by the command (:func:`dmft.commands.flag_values`), so errors name the option."""
    seen = set()
    for options in option_sets:
        for o in options:
            if not o.cli or o.name in seen:
                continue
            seen.add(o.name)
            shared = [s.table for s in option_sets if o.name in s]
            who = " and ".join(shared)
            text = f"{o.describe()}; overrides [{'] and ['.join(shared)}] {o.name}"
            if o.kind == "progress":
                cmd.add_argument("--progress", action=argparse.BooleanOptionalAction,
                                 default=None, dest="opt_progress",
                                 help=f"show a progress bar ({who}); default: when the run "
                                      f"is expected to take more than a few seconds")
                continue
            if o.kind == "seed":         # a config's runs are reproducible (check_config)
                text = f"{o.doc.split(';')[0]}; default 0; overrides [" + \
                    "] and [".join(shared) + f"] {o.name}"
            names = [o.flag] + (["--seeds"] if o.name == "n_seeds" else [])
            meta = "{" + ",".join(o.choices) + "}" if o.choices else o.name.upper()
            cmd.add_argument(*names, default=None, dest="opt_" + o.name, metavar=meta,
                             help=text.replace("%", "%%"))


def _run_commands(sub):
    helps = {"run": "solve the DMFT for a TOML config",
             "simulate": "finite-size GD simulations for a TOML config",
             "compare": "DMFT and simulations on one figure, with an agreement table"}
    sets = {"run": (SOLVER,), "simulate": (SIMULATION,), "compare": (SOLVER, SIMULATION)}
    funcs = {"run": cmd_run, "simulate": cmd_simulate, "compare": cmd_compare}
    text = CONFIG_HELP.format(problem=", ".join(FIELDS), solver=", ".join(
        SOLVER.names(toml=True)), simulation=", ".join(SIMULATION.names(toml=True)))
    epilog = textwrap.fill(text, 79) + "\n\n" + textwrap.indent(EXAMPLE, "  ")
    for name, help_text in helps.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_argument("config", help="TOML file with [problem], [solver], [simulation] tables")
        cmd.add_argument("--out", default="out", help="output folder (default: out)")
        _option_flags(cmd, sets[name])
        if name in ("run", "compare"):
            cmd.add_argument("--scheduler", default=None, metavar="ADDRESS",
                             help="shard the Monte Carlo paths over the workers of this running "
                                  "Dask scheduler (e.g. tcp://10.0.0.5:8786)")
            cmd.add_argument("--shards", default=None, metavar="N",
                             help="shard the paths in N parts (over a local Dask cluster of N "
                                  "workers unless --scheduler is given)")
        if name == "compare":
            cmd.add_argument("--schedules", default=None, metavar="A,B",
                             help="comma-separated schedules to overlay, e.g. one-pass,multi-pass")
        cmd.set_defaults(func=funcs[name])


def _other_commands(sub):
    ex = sub.add_parser("exact", help="the first two steps exactly (quadrature, no sampling)",
                        description="M, Q, train loss and test error at t = 0, 1, 2 by Gauss "
                                    "quadrature (dmft.exact.two_steps), each with its stated "
                                    "accuracy; for 2p + k <= 6.  Prints a table and writes "
                                    "OUT/<config name>_exact.csv.")
    ex.add_argument("config", help="TOML file with a [problem] table (the whole file is checked)")
    ex.add_argument("--out", default="out", help="output folder (default: out)")
    ex.add_argument("--order", default=None, metavar="N|OUTER,INNER",
                    help="Gauss nodes per coordinate (default: chosen within a fixed budget)")
    ex.set_defaults(func=cmd_exact)
    val = sub.add_parser("validate", help="DMFT against simulations on the validation cases")
    val.add_argument("--quick", action="store_true", help="small d, few seeds, short horizons")
    val.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    val.add_argument("--cases-dir", default=None, dest="cases_dir",
                     help="folder of case files (default: the cases shipped with dmft)")
    val.add_argument("--out", default=None, help="output folder (default: validation/results, "
                                                 "or out/validation-quick with --quick)")
    val.add_argument("--background", action="store_true", help="detach, log to OUT/validate.log")
    val.add_argument("--no-progress", action="store_true", dest="no_progress",
                     help="no progress bar")
    val.set_defaults(func=cmd_validate)
    sw = sub.add_parser("sweep", help="a grid of DMFT runs (and simulations) on Dask")
    add = sw.add_argument
    add("config", help="TOML file with [problem], [solver], [simulation] tables")
    add("--param", action="append", default=[], metavar="NAME=VALUES", help="swept field: "
        "eta=0.05:2.0:40 (linspace), eta=0.01:1:20:log (geomspace) or alpha=1,2,4; repeatable")
    add("--schedules", default=None, metavar="A,B",
        help="comma-separated schedules, a dimension of the sweep, e.g. one-pass,multi-pass")
    add("--simulate", action="store_true", help="also finite-size GD at every point")
    add("--scheduler", default=None, metavar="ADDRESS",
        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a "
             "local cluster)")
    add("--workers", default=None, metavar="N",
        help="worker processes of the local cluster (default: one per CPU, at most one per "
             "missing point); not with --scheduler")
    add("--out", default=None, help="netCDF output (default: out/<config name>_sweep.nc)")
    add("--no-progress", action="store_true", dest="no_progress", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)
    ps = sub.add_parser("plot-sweep", help="figures of a sweep file")
    ps.add_argument("file", help="a sweep written by dmft sweep")
    ps.add_argument("--out", default=None, help="figure (default: FILE with .png)")
    ps.set_defaults(func=cmd_plot_sweep)
    learn = sub.add_parser("learnability", help="which directions one-pass and batch-reusing "
                                                "GD learn: information and leap exponents")
    add = learn.add_argument
    add("expr", help="target expression of z1..zk, e.g. 'tanh(z1 + He3(z2))'")
    add("--json", action="store_true", help="print the result as JSON")
    add("--check-dmft", action="store_true", dest="check_dmft",
        help="compare with short multi-pass and one-pass DMFT runs")
    add("--k", default=None, metavar="K",
        help="number of target directions (default: the largest index in EXPR)")
    add("--order", default=None, metavar="N",
        help="highest total Hermite order examined (default: by k, 8 for k = 1)")
    learn.set_defaults(func=cmd_learnability)


def build_parser():
    """The argparse parser of the ``dmft`` command (sub-commands and their options).

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``parse_args`` gives a namespace whose ``func`` runs the sub-command.
    """
    parser = _Parser(prog="dmft", description="DMFT of gradient descent in two-layer networks")
    parser.add_argument("--version", action="version", version=f"dmft {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _run_commands(sub)
    _other_commands(sub)
    return parser


def _one_line(text):
    return " ".join(str(text).split())


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on one line, without the source line: ``dmft: warning: ...``."""
    name = "" if category in (DivergenceWarning, KernelProjectionWarning, UserWarning) else \
        f" ({category.__name__})"
    print(f"dmft: warning: {_one_line(message)}{name}", file=file or sys.stderr)


def main(argv=None):
    """Entry point: run a sub-command and return its exit code (module docstring): input
    errors print one line ``dmft: error: FIELD: ...`` on stderr and return 2."""
    import matplotlib
    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            # a diverged run is reported once, with the file its partial result went to
            warnings.simplefilter("ignore", DivergenceWarning)
            code = args.func(args)
            sys.stdout.flush()          # a closed pipe is found here, not at interpreter exit
            return code
    except ProblemError as exc:
        print(f"dmft: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except MemoryError as exc:
        print(f"dmft: error: memory: out of memory ({_one_line(exc) or 'MemoryError'}); lower "
              f"n_paths, steps, d or n_seeds", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("dmft: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:           # the reader went away (dmft ... | head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:                     # noqa: BLE001 (a bug: say so in one line)
        if os.environ.get("DMFT_TRACEBACK"):
            raise
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()] or [""]
        what = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        print(f"dmft: internal error (please report it): {type(exc).__name__}: "
              f"{_one_line(what)[:500]}; rerun with DMFT_TRACEBACK=1 for the traceback",
              file=sys.stderr)
        return EXIT_INTERNAL
