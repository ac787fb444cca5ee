"""Catalogue of bad inputs, each tried through the Python API and through the command line.

Python: a ``ProblemError`` (a ValueError) whose ``field`` is the offending field and whose
message starts with it.  Command line (``dmft.cli.main`` in process): exit code 2, exactly one
line on stderr, ``dmft: error: FIELD: ...``, no traceback, and nothing written (every input is
checked before any work).  Cases that exist only on one side (a command-line flag, a Python
call) say so with ``api=None`` / ``argv=None``.
"""
import math
import os
import re

import pytest

import dmft
import dmft.config
import dmft.sweep
import dmft.validation
from dmft.cli import main
from dmft.errors import ProblemError

BASE_PROBLEM = {"target": "z1", "p": 1, "activation": "tanh", "alpha": 2.0, "eta": 0.2,
                "steps": 2}
BASE_SOLVER = {"n_paths": 400, "n_groups": 4, "seed": 0, "progress": False}
BASE_SIM = {"d": 50, "n_seeds": 2, "seed": 0, "n_jobs": 1, "n_test": 1000, "progress": False}
DROP = object()           # remove the key from the base table


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, int):
        return str(v)
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def toml(tables):
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def merged(base, changes):
    out = dict(base)
    for k, v in changes.items():
        if v is DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


class Case:
    """One bad input.  ``problem``/``solver``/``simulation``: changes to the base tables, used
    both for the config file and for the Python call of ``command``; ``flags``: extra
    command-line arguments; ``api(tmp)`` / ``argv(tmp)`` replace the default calls."""

    def __init__(self, id, field, command="run", problem=None, solver=None, simulation=None,
                 flags=(), match=None, api="default", argv="default", prefix=None,
                 skip=None):
        self.id, self.field, self.command = id, field, command
        self.problem, self.solver = problem or {}, solver or {}
        self.simulation = simulation or {}
        self.flags, self.match, self.skip = list(flags), match, skip
        self.api, self.argv = api, argv
        self.prefix = prefix if prefix is not None else f"dmft: error: {field}:"

    def tables(self):
        return {"problem": merged(BASE_PROBLEM, self.problem),
                "solver": merged(BASE_SOLVER, self.solver),
                "simulation": merged(BASE_SIM, self.simulation)}

    def call_api(self, tmp):
        if self.api != "default":
            return self.api(tmp)
        t = self.tables()
        pr = dmft.Problem(**t["problem"])
        if self.command in ("run", "compare"):
            dmft.solve(pr, **t["solver"])
        if self.command in ("simulate", "compare"):
            dmft.simulate(pr, **t["simulation"])

    def cli_argv(self, tmp):
        if self.argv != "default":
            return self.argv(tmp)
        path = tmp / "case.toml"
        path.write_text(toml(self.tables()))
        return [self.command, str(path), "--out", str(tmp / "out"), *self.flags]


def _file(tmp, text="x"):
    path = tmp / "afile"
    path.write_text(text)
    return path


def _config(tmp, text):
    path = tmp / "c.toml"
    path.write_text(text)
    return path


GOOD = toml({"problem": BASE_PROBLEM, "solver": BASE_SOLVER, "simulation": BASE_SIM})
GOOD_CASE = GOOD + "[validation]\nds = [50]\n"


def _sweep_api(params, out="s.nc"):
    def api(tmp):
        from dmft.sweep import run_sweep
        run_sweep(str(_config(tmp, GOOD)), params, out=str(tmp / out), progress=False)
    return api


def _sweep_argv(params, out="s.nc"):
    def argv(tmp):
        extra = [a for p in params for a in ("--param", p)]
        return ["sweep", str(_config(tmp, GOOD)), *extra, "--out", str(tmp / out),
                "--no-progress"]
    return argv


def _netcdf(tmp):
    """A netCDF file that is not a dmft file."""
    import numpy as np
    import xarray as xr
    path = tmp / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(path, engine="netcdf4")
    return path


def _read_only(tmp):
    folder = tmp / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    return folder


CASES = [
    # ---------------------------------------------------------------- target expressions
    Case("import", "target", problem={"target": "__import__('os')"}, match="__import__"),
    Case("import-system", "target", problem={"target": "__import__('os').system('ls')"}),
    Case("attribute", "target", problem={"target": "z1.real"}, match="Attribute"),
    Case("dunder-attribute", "target", problem={"target": "tanh(z1).__class__"}),
    Case("lambda", "target", problem={"target": "(lambda x: x)(z1)"}, match="lambda"),
    Case("unknown-variable", "target", problem={"target": "x1 + z1"}, match="x1"),
    Case("z0", "target", problem={"target": "z0 + z1"}, match="z0"),
    Case("empty-target", "target", problem={"target": ""}, match="empty"),
    Case("blank-target", "target", problem={"target": "   "}, match="empty"),
    Case("syntax", "target", problem={"target": "z1 +"}, match="syntax"),
    Case("target-number", "target", problem={"target": 3}, match="expression string"),
    Case("target-missing", "target", problem={"target": DROP}, match="missing",
         api=lambda tmp: dmft.Problem.from_dict(merged(BASE_PROBLEM, {"target": DROP}))),
    Case("too-many-directions", "target", problem={"target": "z5000"}, match="at most"),
    # ---------------------------------------------------------------- scalars out of range
    Case("alpha-zero", "alpha", problem={"alpha": 0.0}, match="> 0"),
    Case("alpha-negative", "alpha", problem={"alpha": -1.0}, match="> 0"),
    Case("alpha-nan", "alpha", problem={"alpha": float("nan")}, match="finite"),
    Case("alpha-inf", "alpha", problem={"alpha": float("inf")}, match="finite"),
    Case("alpha-string", "alpha", problem={"alpha": "2"}, match="real number"),
    Case("eta-zero", "eta", problem={"eta": 0.0}, match="> 0"),
    Case("eta-negative", "eta", problem={"eta": -0.5}, match="> 0"),
    Case("eta-nan", "eta", problem={"eta": float("nan")}, match="finite"),
    Case("ridge-negative", "ridge", problem={"ridge": -0.1}, match=">= 0"),
    Case("noise-negative", "noise", problem={"noise": -1.0}, match=">= 0"),
    Case("steps-zero", "steps", problem={"steps": 0}, match=">= 1"),
    Case("steps-negative", "steps", problem={"steps": -2}, match=">= 1"),
    Case("steps-fraction", "steps", problem={"steps": 2.5}, match="integer"),
    Case("steps-nan", "steps", problem={"steps": float("nan")}, match="integer"),
    Case("steps-too-many", "steps", problem={"steps": 10 ** 9}, match="GiB"),
    Case("p-zero", "p", problem={"p": 0}, match=">= 1"),
    Case("p-negative", "p", problem={"p": -1}, match=">= 1"),
    Case("p-bool", "p", problem={"p": True}, match="integer"),
    Case("p-huge", "p", problem={"p": 10 ** 6}, match="<= 1000"),
    Case("k-too-small", "k", problem={"target": "z1 + z3", "k": 2}, match="z3"),
    Case("n_paths-zero", "n_paths", solver={"n_paths": 0}, match=">= 2"),
    Case("n_paths-negative", "n_paths", solver={"n_paths": -5}, match=">= 2"),
    Case("n_paths-nan", "n_paths", solver={"n_paths": float("nan")}, match="integer"),
    Case("n_paths-string", "n_paths", solver={"n_paths": "many"}, match="integer"),
    Case("n_paths-too-many", "n_paths", solver={"n_paths": 10 ** 15}, match="GiB"),
    Case("n_paths-flag-zero", "n_paths", flags=["--n-paths", "0"], match=">= 2",
         api=lambda tmp: dmft.solve(dmft.Problem(**BASE_PROBLEM),
                                    **merged(BASE_SOLVER, {"n_paths": 0}))),
    Case("n_groups-one", "n_groups", solver={"n_groups": 1}, match=">= 2"),
    Case("paths-per-replica-too-few", "n_paths", solver={"n_paths": 4000, "n_groups": 40},
         problem={"steps": 120}, match="orthonormal"),
    Case("seed-negative", "seed", solver={"seed": -1}, match=">= 0"),
    Case("response-unknown", "response", solver={"response": "magic"}, match="magic"),
    Case("d-zero", "d", "simulate", simulation={"d": 0}, match=">= 2"),
    Case("d-negative", "d", "simulate", simulation={"d": -10}, match=">= 2"),
    Case("d-nan", "d", "simulate", simulation={"d": float("nan")}, match="integer"),
    Case("d-too-large", "d", "simulate", simulation={"d": 10 ** 9}, match="GiB"),
    Case("d-zero-compare", "d", "compare", simulation={"d": 0}, match=">= 2"),
    Case("n_seeds-zero", "n_seeds", "simulate", simulation={"n_seeds": 0}, match=">= 1"),
    Case("dtype-unknown", "dtype", "simulate", simulation={"dtype": "float16"},
         match="float16"),
    Case("dtype-list", "dtype", "simulate", simulation={"dtype": [1]}, match="must be one of"),
    # ---------------------------------------------------------------- arrays
    Case("a-shape", "a", problem={"p": 2, "a": [1.0, 2.0, 3.0]}, match="shape"),
    Case("a-nan", "a", problem={"p": 2, "a": [1.0, float("nan")]}, match="NaN"),
    Case("M0-shape", "M0", problem={"target": "z1 + z2", "p": 2, "M0": [[0.0] * 3] * 2},
         match="shape"),
    Case("M0-ragged", "M0", problem={"p": 2, "M0": [[0.1], [0.1, 0.2]]}, match="array"),
    Case("Q0-shape", "Q0", problem={"p": 2, "Q0": [[1.0, 0.0, 0.0]] * 3}, match="shape"),
    Case("Q0-asymmetric", "Q0", problem={"p": 2, "Q0": [[1.0, 0.5], [0.0, 1.0]]},
         match="symmetric"),
    Case("Q0-not-psd", "Q0", problem={"p": 2, "Q0": [[1.0, 2.0], [2.0, 1.0]]},
         match="positive semi-definite"),
    Case("Q0-minus-M0M0T-not-psd", "Q0",
         problem={"p": 2, "M0": [[1.5], [0.0]], "Q0": [[1.0, 0.0], [0.0, 1.0]]},
         match=r"Q0 - M0 M0\^T must be positive semi-definite"),
    Case("Q0-inf", "Q0", problem={"Q0": [[float("inf")]]}, match="NaN or infinite"),
    # ---------------------------------------------------------------- names
    Case("activation-unknown", "activation", problem={"activation": "swish"}, match="swish"),
    Case("schedule-unknown", "schedule", problem={"schedule": "online"}, match="online"),
    Case("schedule-bad-fraction", "schedule", problem={"schedule": "minibatch-0.3"},
         match="1/m"),
    Case("schedules-flag", "schedules", "compare", flags=["--schedules", "one-pass,twice"],
         match="twice", api=None),
    # ---------------------------------------------------------------- config files
    Case("toml-malformed", "config", match="not valid TOML",
         api=lambda tmp: dmft.config.read_config(_config(tmp, '[problem\ntarget = "z1"\n')),
         argv=lambda tmp: ["run", str(_config(tmp, '[problem\ntarget = "z1"\n')),
                           "--out", str(tmp / "out")]),
    Case("toml-binary", "config", match="not valid TOML",
         api=lambda tmp: dmft.config.read_config(_file(tmp, "\x00\x01 = ")),
         argv=lambda tmp: ["run", str(_file(tmp, "\x00\x01 = ")), "--out", str(tmp / "out")]),
    Case("config-missing", "config", match="no such file",
         api=lambda tmp: dmft.config.read_config(tmp / "nope.toml"),
         argv=lambda tmp: ["simulate", str(tmp / "nope.toml"), "--out", str(tmp / "out")]),
    Case("config-is-directory", "config", match="not a file",
         api=lambda tmp: dmft.config.read_config(tmp),
         argv=lambda tmp: ["run", str(tmp), "--out", str(tmp / "out")]),
    Case("table-unknown", "problm", match="unknown table",
         api=lambda tmp: dmft.config.read_config(_config(tmp, '[problm]\ntarget = "z1"\n')),
         argv=lambda tmp: ["run", str(_config(tmp, '[problm]\ntarget = "z1"\n')),
                           "--out", str(tmp / "out")]),
    Case("field-unknown", "width", problem={"width": 3}, match="unknown problem field",
         api=lambda tmp: dmft.Problem.from_dict(merged(BASE_PROBLEM, {"width": 3}))),
    Case("solver-option-unknown", "tolerance", solver={"tolerance": 1e-3},
         match="unknown \\[solver\\] option",
         api=lambda tmp: dmft.config.check_config({"problem": BASE_PROBLEM,
                                                   "solver": {"tolerance": 1e-3}})),
    # ---------------------------------------------------------------- output folders
    Case("out-under-a-file", "out", match="not a directory",
         api=lambda tmp: _sweep_api(["eta=0.1,0.2"], out=_file(tmp) / "s.nc")(tmp),
         argv=lambda tmp: ["run", str(_config(tmp, GOOD)), "--out", str(_file(tmp) / "sub")]),
    Case("out-is-a-file", "out", match="not a directory",
         api=lambda tmp: dmft.validation.run_suite([str(_config(tmp, GOOD_CASE))],
                                                   str(_file(tmp)), progress=False),
         argv=lambda tmp: ["simulate", str(_config(tmp, GOOD)), "--out", str(_file(tmp))]),
    Case("out-read-only", "out", match="Permission denied",
         skip=(hasattr(os, "geteuid") and os.geteuid() == 0, "root ignores permissions"),
         api=lambda tmp: _sweep_api(["eta=0.1,0.2"], out=_read_only(tmp) / "sub" / "s.nc")(tmp),
         argv=lambda tmp: ["run", str(_config(tmp, GOOD)), "--out",
                           str(_read_only(tmp) / "sub")]),
    # ---------------------------------------------------------------- sweeps
    Case("sweep-zero-points", "param", "sweep", match="NUM must be a positive integer",
         api=_sweep_api(["eta=0.1:1:0"]), argv=_sweep_argv(["eta=0.1:1:0"])),
    Case("sweep-no-values", "param", "sweep", match="no values",
         api=_sweep_api(["eta="]), argv=_sweep_argv(["eta="])),
    Case("sweep-nothing", "param", "sweep", match="nothing to sweep",
         api=_sweep_api([]), argv=_sweep_argv([])),
    Case("sweep-shape-field", "p", "sweep", match="cannot be swept",
         api=_sweep_api(["p=1,2"]), argv=_sweep_argv(["p=1,2"])),
    Case("sweep-bad-value", "eta", "sweep", match="> 0",
         api=_sweep_api(["eta=-1,1"]), argv=_sweep_argv(["eta=-1,1"])),
    # ---------------------------------------------------------------- other commands
    Case("shards-zero", "shards", flags=["--shards", "0"], match=">= 1", api=None),
    Case("learnability-import", "target", match="__import__",
         api=lambda tmp: dmft.learnability("__import__('os')"),
         argv=lambda tmp: ["learnability", "__import__('os')"]),
    Case("validate-unknown-case", "cases", match="unknown case",
         api=lambda tmp: dmft.validation.case_files("nope", str(tmp)),
         argv=lambda tmp: ["validate", "--cases", "nope", "--cases-dir", str(tmp),
                           "--out", str(tmp / "out")]),
    Case("plot-sweep-missing", "path", match="no such file",
         api=lambda tmp: dmft.sweep.load_sweep(tmp / "nope.nc"),
         argv=lambda tmp: ["plot-sweep", str(tmp / "nope.nc")]),
    Case("flag-not-a-number", "d", "simulate", flags=["--d", "many"], api=None,
         match="expected an integer"),
    # ---------------------------------------------------------------- the whole config, by
    # every command: a table the command does not use is checked all the same
    Case("run-checks-simulation", "d", "run", simulation={"d": "big"}, match="integer",
         api=lambda tmp: dmft.config.check_config(
             {"problem": BASE_PROBLEM, "simulation": {"d": "big"}})),
    Case("run-checks-simulation-typo", "dd", "run", simulation={"dd": 100},
         match="unknown \\[simulation\\] option", api=None),
    Case("simulate-checks-solver-typo", "tolerance", "simulate", solver={"tolerance": 1e-3},
         match="unknown \\[solver\\] option", api=None),
    Case("simulate-checks-solver-value", "n_paths", "simulate", solver={"n_paths": -1},
         match=">= 2", api=None),
    Case("run-checks-validation", "ds", "run", match="list of dimensions",
         api=lambda tmp: dmft.config.check_config(
             {"problem": BASE_PROBLEM, "validation": {"ds": 5}}),
         argv=lambda tmp: ["run", str(_config(tmp, GOOD + "[validation]\nds = 5\n")),
                           "--out", str(tmp / "out")]),
    Case("validation-option-unknown", "dz", match="unknown \\[validation\\] option",
         api=lambda tmp: dmft.config.validation_table({"validation": {"ds": [50], "dz": 1}}),
         argv=lambda tmp: ["simulate", str(_config(tmp, GOOD + "[validation]\nds = [50]\n"
                                                   "dz = 1\n")), "--out", str(tmp / "out")]),
    Case("validation-quick-not-table", "quick", match="must be a table",
         api=lambda tmp: dmft.config.validation_table({"validation": {"ds": [50], "quick": 3}}),
         argv=lambda tmp: ["validate", "--quick", "--cases",
                           str(_config(tmp, GOOD + "[validation]\nds = [50]\nquick = 3\n")),
                           "--out", str(tmp / "out")]),
    Case("validation-quick-steps", "steps", match=">= 1",
         api=lambda tmp: dmft.config.validation_table(
             {"validation": {"ds": [50], "quick": {"steps": 0}}}, quick=True),
         argv=lambda tmp: ["validate", "--quick", "--cases", str(_config(
             tmp, GOOD + "[validation]\nds = [50]\n[validation.quick]\nsteps = 0\n")),
             "--out", str(tmp / "out")]),
    Case("validate-case-bad-solver", "n_groups", match=">= 2",
         api=lambda tmp: dmft.validation.run_suite(
             [str(_config(tmp, GOOD_CASE.replace("n_groups = 4", "n_groups = 1")))],
             str(tmp / "out"), progress=False),
         argv=lambda tmp: ["validate", "--cases", str(_config(
             tmp, GOOD_CASE.replace("n_groups = 4", "n_groups = 1"))), "--out",
             str(tmp / "out")]),
    Case("validate-background-bad-case", "target", match="syntax",
         api=None, argv=lambda tmp: ["validate", "--background", "--cases", str(_config(
             tmp, GOOD_CASE.replace('target = "z1"', 'target = "z1 +"'))), "--out",
             str(tmp / "out")]),
    # ---------------------------------------------------------------- config structure
    Case("problem-not-table", "problem", match="must be a table",
         api=lambda tmp: dmft.config.read_config(_config(tmp, "problem = 3\n")),
         argv=lambda tmp: ["run", str(_config(tmp, "problem = 3\n")), "--out",
                           str(tmp / "out")]),
    Case("problem-missing", "problem", match="no \\[problem\\] table",
         api=lambda tmp: dmft.config.read_config(_config(tmp, "[solver]\nseed = 1\n")),
         argv=lambda tmp: ["simulate", str(_config(tmp, "[solver]\nseed = 1\n")), "--out",
                           str(tmp / "out")]),
    Case("config-empty", "problem", match="no \\[problem\\] table",
         api=lambda tmp: dmft.config.read_config(_config(tmp, "")),
         argv=lambda tmp: ["compare", str(_config(tmp, "")), "--out", str(tmp / "out")]),
    Case("solver-not-table", "solver", match="must be a table",
         api=lambda tmp: dmft.config.read_config(_config(
             tmp, 'solver = 1\n[problem]\ntarget = "z1"\n')),
         argv=lambda tmp: ["run", str(_config(tmp, 'solver = 1\n[problem]\ntarget = "z1"\n')),
                           "--out", str(tmp / "out")]),
    # ---------------------------------------------------------------- more problem fields
    Case("target-unknown-function", "target", problem={"target": "foo(z1)"}, match="foo"),
    Case("target-hermite-too-high", "target", problem={"target": "He21(z1)"}, match="He21"),
    Case("target-not-finite", "target", problem={"target": "log(z1)"}, match="not finite"),
    Case("target-not-finite-simulate", "target", "simulate", problem={"target": "sqrt(z1)"},
         match="not finite"),
    Case("activation-number", "activation", problem={"activation": 3}),
    Case("schedule-number", "schedule", problem={"schedule": 2}),
    Case("schedule-reuse-zero", "schedule", problem={"schedule": "reuse-0"}),
    Case("eta-inf", "eta", problem={"eta": float("inf")}, match="finite"),
    Case("eta-string", "eta", problem={"eta": "fast"}, match="real number"),
    Case("ridge-nan", "ridge", problem={"ridge": float("nan")}, match="finite"),
    Case("noise-inf", "noise", problem={"noise": float("inf")}, match="finite"),
    Case("steps-string", "steps", problem={"steps": "3"}, match="integer"),
    Case("k-zero", "k", problem={"k": 0}, match=">= 1"),
    Case("k-fraction", "k", problem={"k": 1.5}, match="integer"),
    Case("a-string", "a", problem={"a": "x"}, match="array"),
    Case("M0-inf", "M0", problem={"M0": [[float("inf")]]}, match="NaN or infinite"),
    Case("Q0-negative", "Q0", problem={"Q0": [[-1.0]]}, match="positive semi-definite"),
    # ---------------------------------------------------------------- more options and flags
    Case("n_groups-above-paths", "n_paths", solver={"n_paths": 6, "n_groups": 4},
         match="2 \\* n_groups"),
    Case("stein_rtol-one", "stein_rtol", solver={"stein_rtol": 1.0}, match="< 1"),
    Case("stein_rtol-negative", "stein_rtol", solver={"stein_rtol": -0.1}, match=">= 0"),
    Case("history-unknown", "history", solver={"history": "float16"}, match="float16"),
    Case("method-unknown", "method", solver={"method": "magic"}, match="magic"),
    Case("progress-string", "progress", solver={"progress": "maybe"}, match="maybe"),
    Case("pathwise-relu", "response", solver={"response": "pathwise"},
         problem={"activation": "relu"}, match="smooth"),
    Case("n_test-small", "n_test", "simulate", simulation={"n_test": 10}, match=">= 100"),
    Case("n_jobs-zero", "n_jobs", "simulate", simulation={"n_jobs": 0}, match=">= 1"),
    Case("sim-seed-string", "seed", "simulate", simulation={"seed": "x"}, match="integer"),
    Case("flag-n-paths-fraction", "n_paths", flags=["--n-paths", "2.5"], api=None,
         match="integer"),
    Case("flag-n-paths-inf", "n_paths", flags=["--n-paths", "inf"], api=None,
         match="integer"),
    Case("flag-seed-negative", "seed", "compare", flags=["--seed", "-3"], api=None,
         match=">= 0"),
    Case("flag-dtype", "dtype", "simulate", flags=["--dtype", "float16"], api=None,
         match="float16"),
    Case("flag-d-memory", "d", "simulate", flags=["--d", "1e9"], api=None, match="GiB"),
    Case("flag-stein-rtol", "stein_rtol", flags=["--stein-rtol", "two"], api=None,
         match="number"),
    Case("flag-progress-value", "progress", flags=["--progress=2"], api=None,
         prefix="dmft: error: argument --progress"),
    Case("flag-shards-text", "shards", flags=["--shards", "x"], api=None, match="integer"),
    Case("flag-shards-above-groups", "shards", flags=["--shards", "9"], api=None,
         match="n_groups"),
    Case("flag-unknown", "flag", flags=["--n-path", "10"], api=None,
         prefix="dmft: error: unrecognized arguments"),
    Case("compare-no-schedule", "schedules", "compare", flags=["--schedules", ","],
         match="no schedule", api=None),
    Case("sweep-workers-zero", "workers", "sweep", match=">= 1", api=None,
         argv=lambda tmp: _sweep_argv(["eta=0.1,0.2"])(tmp) + ["--workers", "0"]),
    Case("sweep-workers-with-scheduler", "n_workers", "sweep", match="local cluster",
         api=lambda tmp: dmft.sweep.run_sweep(str(_config(tmp, GOOD)), "eta=0.1,0.2",
                                              out=str(tmp / "s.nc"), scheduler="tcp://x:1",
                                              n_workers=2),
         argv=None),
    Case("sweep-log-range-negative", "param", "sweep", match="START, STOP > 0",
         api=_sweep_api(["eta=-1:1:3:log"]), argv=_sweep_argv(["eta=-1:1:3:log"])),
    Case("sweep-target-changes-k", "target", "sweep", match="k = 1",
         api=_sweep_api(["target=z1,z1*z2"]), argv=_sweep_argv(["target=z1,z1*z2"])),
    Case("sweep-target-not-finite", "target", "sweep", match="not finite",
         api=_sweep_api(["target=log(z1)"]), argv=_sweep_argv(["target=log(z1)"])),
    Case("plot-sweep-not-a-sweep", "path", match="not a dmft sweep",
         api=lambda tmp: dmft.sweep.load_sweep(_netcdf(tmp)),
         argv=lambda tmp: ["plot-sweep", str(_netcdf(tmp)), "--out", str(tmp / "out" / "x.png")]),
    Case("plot-sweep-garbage", "path", match="cannot read",
         api=lambda tmp: dmft.sweep.load_sweep(_file(tmp, "not netCDF")),
         argv=lambda tmp: ["plot-sweep", str(_file(tmp, "not netCDF"))]),
    Case("load-not-a-result", "path", match="not a dmft result",
         api=lambda tmp: dmft.load(_netcdf(tmp)), argv=None),
    Case("validate-empty-cases-dir", "cases", match="no case files",
         api=lambda tmp: dmft.validation.case_files(None, str(tmp)),
         argv=lambda tmp: ["validate", "--cases-dir", str(tmp), "--out", str(tmp / "out")]),
    Case("learnability-k-zero", "k", match=">= 1",
         api=lambda tmp: dmft.learnability("z1", k=0),
         argv=lambda tmp: ["learnability", "z1", "--k", "0"]),
    Case("learnability-order-text", "order", match="integer", api=None,
         argv=lambda tmp: ["learnability", "z1", "--order", "high"]),
    Case("learnability-syntax", "target", match="syntax",
         api=lambda tmp: dmft.learnability("z1 +"),
         argv=lambda tmp: ["learnability", "z1 +"]),
    # ---------------------------------------------------------------- beyond the paper's model:
    # losses, a trained second layer, spherical GD (docs/theory/beyond.md)
    Case("loss-unknown", "loss", problem={"loss": "hinge"}, match="hinge"),
    Case("loss-number", "loss", problem={"loss": 3}, match="must be one of"),
    Case("loss-nan", "loss", problem={"loss": float("nan")}, match="must be one of"),
    Case("loss-list", "loss", problem={"loss": ["square"]}, match="must be one of"),
    Case("logistic-real-target", "target", "simulate", problem={"loss": "logistic"},
         match=r"\{-1, \+1\}"),
    Case("logistic-three-labels", "target", "simulate",
         problem={"loss": "logistic", "target": "sign(z1) + sign(z2)"}, match=r"\{-1, \+1\}"),
    Case("logistic-noise", "noise", "simulate",
         problem={"loss": "logistic", "target": "sign(z1)", "noise": 0.1}, match="logistic"),
    Case("readout-unknown", "readout", problem={"readout": "frozen"}, match="frozen"),
    Case("readout-bool", "readout", problem={"readout": True}, match="must be one of"),
    Case("readout-nan", "readout", problem={"readout": float("nan")}, match="must be one of"),
    Case("eta_readout-fixed", "eta_readout", problem={"eta_readout": 0.1}, match="trained"),
    Case("ridge_readout-fixed", "ridge_readout", problem={"ridge_readout": 0.0},
         match="trained"),
    Case("eta_readout-zero", "eta_readout", "simulate",
         problem={"readout": "trained", "eta_readout": 0.0}, match="> 0"),
    Case("eta_readout-nan", "eta_readout", "simulate",
         problem={"readout": "trained", "eta_readout": float("nan")}, match="finite"),
    Case("eta_readout-string", "eta_readout", "simulate",
         problem={"readout": "trained", "eta_readout": "fast"}, match="real number"),
    Case("ridge_readout-negative", "ridge_readout", "simulate",
         problem={"readout": "trained", "ridge_readout": -0.1}, match=">= 0"),
    Case("ridge_readout-nan", "ridge_readout", "simulate",
         problem={"readout": "trained", "ridge_readout": float("nan")}, match="finite"),
    Case("ridge_readout-inf", "ridge_readout", "simulate",
         problem={"readout": "trained", "ridge_readout": float("inf")}, match="finite"),
    Case("ridge_readout-bool", "ridge_readout", "simulate",
         problem={"readout": "trained", "ridge_readout": True}, match="real number"),
    Case("normalize-unknown", "normalize", problem={"normalize": "ball"}, match="ball"),
    Case("normalize-number", "normalize", problem={"normalize": 1}, match="must be one of"),
    Case("normalize-nan", "normalize", problem={"normalize": float("nan")},
         match="must be one of"),
    Case("sphere-Q0-diagonal", "Q0", "simulate",
         problem={"normalize": "sphere", "p": 2, "Q0": [[2.0, 0.0], [0.0, 1.0]]},
         match="unit diagonal"),
    Case("sweep-eta_readout-fixed", "eta_readout", "sweep", match="trained",
         api=_sweep_api(["eta_readout=0.1,0.2"]), argv=_sweep_argv(["eta_readout=0.1,0.2"])),
    Case("sweep-loss-unknown", "loss", "sweep", match="hinge",
         api=_sweep_api(["loss=hinge"]), argv=_sweep_argv(["loss=hinge"])),
]


def test_catalogue_is_large_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    both = [c for c in CASES if c.api is not None and c.argv is not None]
    assert len(both) >= 30 and len(CASES) >= 120


#: the inputs a case may create itself (config files, a file in the way, a read-only folder)
INPUTS = {"afile", "c.toml", "case.toml", "ro", "other.nc"}


def written(folder):
    """Every path under ``folder`` (files and folders), relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_main(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:            # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    if case.skip and case.skip[0]:
        pytest.skip(case.skip[1])
    monkeypatch.chdir(tmp_path)
    if case.api is not None:
        api_dir = tmp_path / "api"
        api_dir.mkdir()
        with pytest.raises(ProblemError) as info:
            case.call_api(api_dir)
        assert written(api_dir) <= INPUTS, sorted(written(api_dir) - INPUTS)
        assert isinstance(info.value, ValueError)
        assert info.value.field == case.field, str(info.value)
        assert str(info.value).startswith(case.field + ": ")
        if case.match:
            assert re.search(case.match, str(info.value), re.I), str(info.value)
    if case.argv is not None:
        cli_dir = tmp_path / "cli"
        cli_dir.mkdir()
        argv = case.cli_argv(cli_dir)
        before = written(cli_dir)
        code, _, err = run_main(argv, capsys)
        lines = err.splitlines()
        assert code == 2, err
        assert len(lines) == 1, err
        assert lines[0].startswith(case.prefix), lines[0]
        assert "Traceback" not in err
        if case.match:
            assert re.search(case.match, lines[0], re.I), lines[0]
        assert written(cli_dir) == before    # nothing computed, nothing written (no folder)


def test_permission_denied_even_as_root(tmp_path, capsys, monkeypatch):
    """The read-only case above is skipped for root (who ignores permissions): the same path
    through a folder creation that fails with EACCES."""
    real = os.makedirs

    def makedirs(path, *args, **kwargs):
        if "denied" in os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", makedirs)
    config = _config(tmp_path, GOOD)
    code, _, err = run_main(["run", str(config), "--out", str(tmp_path / "denied")], capsys)
    assert code == 2 and err == f"dmft: error: out: cannot create directory " \
                                f"{tmp_path / 'denied'}: Permission denied\n"
    with pytest.raises(ProblemError, match="^out: cannot create directory .*Permission denied"):
        dmft.sweep.run_sweep(str(config), "eta=0.1,0.2", out=str(tmp_path / "denied" / "s.nc"))
