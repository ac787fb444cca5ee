"""The command line's rough edges (issue 19, item 4): a closed pipe, --version, integers such
as 1e6, help on every flag, --dtype, the whole config checked by every command (the bad-input
catalogue, tests/test_robustness.py, holds those cases and checks that nothing is written),
validation cases found from any directory, the documented Problem signature."""
import argparse
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

import dmft
from dmft.cli import build_parser
from dmft.commands import load
from dmft.options import SIMULATION, SOLVER
from dmft.problem import FIELDS

ROOT = pathlib.Path(__file__).resolve().parents[1]
DMFT = [sys.executable, "-m", "dmft"]
TINY = """[problem]
target = "z1"
p = 1
activation = "tanh"
alpha = 2.0
eta = 0.2
steps = 2
[solver]
n_paths = 400
n_groups = 4
"""


def closed_pipe(argv, cwd):
    """Run ``argv`` with its stdout a pipe whose reader has gone away before the first write
    (what ``dmft ... | head -1`` does to a long output); returns (exit code, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.wait(timeout=600), err


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--version"],
                                  ["learnability", "z1 + z2**2"]],
                         ids=["help", "run-help", "version", "learnability"])
def test_closed_pipe_is_quiet(args, tmp_path):
    code, err = closed_pipe(DMFT + args, tmp_path)
    assert code in (0, 141) and err == "", (code, err)


@pytest.mark.slow
def test_closed_pipe_after_a_run(tmp_path):
    """The output of a finished run meets the closed pipe at the end: exit 141, no message, the
    files written."""
    (tmp_path / "tiny.toml").write_text(TINY)
    code, err = closed_pipe(DMFT + ["run", "tiny.toml", "--out", "o", "--no-progress"],
                            tmp_path)
    assert code in (0, 141) and err == "", (code, err)
    assert (tmp_path / "o" / "tiny_dmft.nc").exists()


def test_head_in_a_shell(tmp_path):
    """``dmft learnability ... | head -1`` in a shell: one line, nothing on stderr, dmft's own
    exit status 0 or 141."""
    cmd = " ".join(f"'{a}'" for a in DMFT + ["learnability", "z1 + z2**2"])
    r = subprocess.run(["bash", "-c", f"{cmd} 2>err | head -1; echo ${{PIPESTATUS[0]}} > rc"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.stdout.count("\n") == 1
    assert (tmp_path / "err").read_text() == ""
    assert int((tmp_path / "rc").read_text()) in (0, 141)


def test_version():
    r = subprocess.run(DMFT + ["--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"dmft {dmft.__version__}"


@pytest.mark.parametrize("flags, table, name, value", [
    (["--n-paths", "1e6"], "solver", "n_paths", 10 ** 6),
    (["--n-paths", "1_000_000"], "solver", "n_paths", 10 ** 6),
    (["--n-paths", "2.5E5"], "solver", "n_paths", 250_000),
    (["--d", "2e3"], "simulation", "d", 2000),
    (["--seeds", "1e1"], "simulation", "n_seeds", 10),
    (["--n-test", "1e5"], "simulation", "n_test", 100_000),
    (["--dtype", "float32"], "simulation", "dtype", "float32"),
    (["--history", "float32"], "solver", "history", "float32"),
    (["--seed", "7"], "solver", "seed", 7),
    (["--seed", "7"], "simulation", "seed", 7),
    ([], "solver", "seed", 0),
])
def test_flags_are_parsed(tmp_path, flags, table, name, value):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    args = build_parser().parse_args(["compare", str(config), "--out", str(tmp_path / "o"),
                                      *flags])
    conf, base = load(args)
    assert getattr(conf, table)[name] == value
    assert not (tmp_path / "o").exists()          # load checks, writes nothing


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_flag_has_help():
    parser = build_parser()
    commands = _subcommands(parser)
    assert set(commands) >= {"run", "simulate", "compare", "sweep", "plot-sweep", "validate",
                             "learnability"}
    for name, cmd in commands.items():
        for action in cmd._actions:
            what = f"dmft {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help != argparse.SUPPRESS, what
            assert len(action.help) >= 10, what
            assert "default None" not in action.help, what
    for name in ("run", "compare", "simulate"):
        flags = {s for a in commands[name]._actions for s in a.option_strings}
        options = {"run": (SOLVER,), "simulate": (SIMULATION,),
                   "compare": (SOLVER, SIMULATION)}[name]
        for o in (o for s in options for o in s if o.cli):
            assert o.flag in flags, (name, o.flag)
    assert "--dtype" in {s for a in commands["simulate"]._actions for s in a.option_strings}


def test_run_help_shows_config_fields_and_example():
    r = subprocess.run(DMFT + ["run", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for name in list(FIELDS) + list(SOLVER.names(toml=True)) + list(SIMULATION.names(toml=True)):
        assert re.search(rf"\b{name}\b", text), name
    assert "Example:" in r.stdout and "[problem]" in r.stdout and "[solver]" in r.stdout
    assert 'target = "tanh(z1 + He3(z2))"' in r.stdout
    assert "--n-paths" in r.stdout and "default 200000" in text


def test_example_in_help_is_a_valid_config(tmp_path):
    from dmft.config import EXAMPLE, check_config, read_config
    path = tmp_path / "example.toml"
    path.write_text(EXAMPLE)
    conf = check_config(read_config(path))
    assert conf.problem.target.expr == "tanh(z1 + He3(z2))"


def test_memory_refusal_names_the_dtype_flag(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    r = subprocess.run(DMFT + ["simulate", str(config), "--d", "1e6", "--out",
                               str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("dmft: error: d:")
    assert "--dtype float32" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cases_ship_with_the_package(tmp_path, monkeypatch):
    """The validation cases are package data: found by name from any working directory."""
    from importlib.resources import files

    from dmft.validation import case_files
    monkeypatch.chdir(tmp_path)
    shipped = files("dmft") / "cases"
    names = sorted(p.name for p in shipped.iterdir() if p.name.endswith(".toml"))
    assert len(names) >= 10 and "he3_single.toml" in names
    path, = case_files("he3_single")
    assert pathlib.Path(path).is_file() and not pathlib.Path(path).is_relative_to(tmp_path)
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'dmft\s*=\s*\[\s*"cases/\*\.toml"', text)     # installed with dmft


@pytest.mark.slow
def test_validate_quick_outside_the_clone(tmp_path):
    """``dmft validate --quick --cases he3_single`` from a folder that is not the clone."""
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run(DMFT + ["validate", "--quick", "--cases", "he3_single", "--out", "v",
                               "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 0 failed" in r.stdout
    assert (tmp_path / "v" / "cases" / "he3_single.json").exists()
    assert (tmp_path / "v" / "report.md").exists()


def test_readme_problem_signature():
    """The first-hour guide shows Problem's real signature (the defaults included); the README
    shows a call with keywords and links to it."""
    text = (ROOT / "docs" / "guide" / "first_hour.md").read_text()
    m = re.search(r"`(Problem\(target,.*?\))`", text, re.S)
    assert m, "no Problem(...) signature in docs/guide/first_hour.md"
    shown = " ".join(m.group(1).split()).replace('"', "'")
    assert shown == "Problem" + str(inspect.signature(dmft.Problem)), shown
