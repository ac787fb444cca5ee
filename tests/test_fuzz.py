"""Property-based fuzz (hypothesis) of the target parser and of the config reader: whatever
the string or the TOML document, the outcome is a valid problem (a config, a target finite on
Gaussian inputs) or one ProblemError naming a field; never another exception, never a hang
(each example is bounded in time by an alarm) and never a file written.

The fast tier runs a few hundred examples per property, derandomised (the same every run);
the slow tier runs thousands, with fresh random examples.  Hypothesis keeps no example
database here (it would write a folder).
"""
import collections
import contextlib
import math
import os
import signal
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import dmft
from dmft.activations import ACTIVATIONS
from dmft.config import check_config, read_config
from dmft.errors import ProblemError
from dmft.options import SIMULATION, SOLVER
from dmft.problem import FIELDS
from dmft.targets import MAX_HERMITE

#: wall-clock bound of one example (a loaded 2-core machine; the examples take milliseconds)
EXAMPLE_SECONDS = 20
FAST = dict(max_examples=100, derandomize=True)
THOROUGH = dict(max_examples=1000)          # x 2 strategies: 2,000 of each kind
COMMON = dict(deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))

Z = np.random.default_rng(0).standard_normal((64, 8))
FUNCTIONS = ("tanh", "exp", "log", "sqrt", "abs", "sign", "sin", "cos", "erf", "relu",
             "sigmoid")
TOKENS = ("z1", "z2", "z3", "z0", "z1000", "z1001", "x", "pi", "e", "He3", "He0", "He20",
          "He21", "(", ")", "+", "-", "*", "/", "**", "//", "%", "@", ",", ".", " ", "1",
          "2.5", "1e308", "1e999", "0", "-1", "nan", "inf", "__import__", "'os'", "lambda",
          ":", "[", "]", "{", "}", "=", ";", "if", "else", "not", "and", "<", "__class__",
          "real", "\n", "\t", "\x00", "\\", '"', "z\u0661", "\u00b2") + FUNCTIONS


@contextlib.contextmanager
def time_limit(seconds=EXAMPLE_SECONDS):
    """Fail (TimeoutError) when the block runs longer than ``seconds``: a hang is a failure."""
    def alarm(signum, frame):
        raise TimeoutError(f"example took more than {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _expressions():
    """Expressions of the target grammar (valid syntax; values may still be non-finite)."""
    leaf = st.one_of(st.sampled_from([f"z{i}" for i in range(1, 5)] + ["pi", "e"]),
                     st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: f"{x:g}"),
                     st.integers(0, 30).map(str))

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
                lambda x: f"({x[0]} {x[1]} {x[2]})"),
            st.tuples(st.sampled_from(FUNCTIONS + tuple(f"He{n}" for n in range(
                0, MAX_HERMITE + 2))), inner).map(lambda x: f"{x[0]}({x[1]})"),
            inner.map(lambda x: f"-{x}"))
    return st.recursive(leaf, extend, max_leaves=12)


TARGETS = st.one_of(_expressions(), st.lists(st.sampled_from(TOKENS), max_size=24).map("".join),
                    st.text(max_size=40),
                    st.text(alphabet=string.printable, max_size=40))

OUTCOMES = collections.Counter()


def check_target(expr):
    """Problem(expr) and its labels on Gaussian inputs: valid, or ProblemError on target."""
    with time_limit():
        try:
            problem = dmft.Problem(expr)
            z = Z[:, :problem.k] if problem.k <= Z.shape[1] else \
                np.random.default_rng(1).standard_normal((64, problem.k))
            y = problem.labels(z, np.zeros(len(z)))
        except ProblemError as exc:
            assert exc.field == "target", (expr, str(exc))
            assert str(exc).startswith("target: ")
            OUTCOMES["target error"] += 1
            return
    assert np.all(np.isfinite(y)), expr
    OUTCOMES["target valid"] += 1


# ---------------------------------------------------------------------- TOML documents
def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else
                             f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                             for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"


def document(tables):
    """TOML text of {table: {key: value}} (keys quoted, so any string is a key)."""
    lines = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            lines.insert(0, f"{_toml(name)} = {_toml(table)}")
            continue
        lines.append(f"[{_toml(name)}]")
        lines += [f"{_toml(str(k))} = {_toml(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


SCALARS = st.one_of(st.integers(-10, 10 ** 6), st.integers(), st.floats(), st.booleans(),
                    st.text(max_size=12))
ANY = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=6), inner,
                                                                    max_size=3)), max_leaves=8)
PLAUSIBLE = {
    "target": st.one_of(_expressions(), st.sampled_from(["z1", "tanh(z1 + He3(z2))", "He3(z1)"])),
    "p": st.integers(-1, 4), "k": st.integers(-1, 5),
    "activation": st.sampled_from(tuple(ACTIVATIONS) + ("swish", "ReLU")),
    "alpha": st.floats(-1, 10), "eta": st.floats(-0.5, 3), "ridge": st.floats(-0.1, 1),
    "noise": st.floats(-0.1, 1), "steps": st.integers(-1, 50),
    "schedule": st.sampled_from(["multi-pass", "one-pass", "reuse-2", "reuse-0",
                                 "minibatch-0.25", "minibatch-0.3", "online"]),
    "a": st.lists(st.floats(-2, 2), min_size=1, max_size=3),
    "M0": st.lists(st.lists(st.floats(-1, 1), min_size=1, max_size=2), min_size=1, max_size=3),
    "Q0": st.lists(st.lists(st.floats(-1, 2), min_size=1, max_size=3), min_size=1, max_size=3),
    "n_paths": st.integers(-1, 10 ** 16), "n_groups": st.integers(-1, 64),
    "seed": st.integers(-5, 2 ** 70), "response": st.sampled_from(["stein", "pathwise", "x"]),
    "stein_rtol": st.floats(-0.5, 1.5), "method": st.sampled_from(["auto", "general", "x"]),
    "history": st.sampled_from(["float64", "float32", "float16"]),
    "progress": st.sampled_from([True, False, "auto", "maybe"]),
    "d": st.integers(-1, 10 ** 7), "n_seeds": st.integers(-1, 40),
    "dtype": st.sampled_from(["float64", "float32", "int8"]), "n_jobs": st.integers(-1, 8),
    "n_test": st.integers(-1, 10 ** 6), "ds": st.lists(st.integers(-1, 5000), max_size=3),
    "description": st.one_of(st.text(max_size=10), st.integers()),
}
KEYS = {"problem": tuple(FIELDS), "solver": SOLVER.names(toml=True),
        "simulation": SIMULATION.names(toml=True), "validation": ("ds", "description")}


@st.composite
def tables(draw):
    """A config: the known tables (sometimes an unknown one, or a value where a table is
    expected), their fields mostly plausible, sometimes of any type or unknown."""
    cfg = {}
    for name in draw(st.lists(st.sampled_from(tuple(KEYS) + ("problm", "extra")),
                              unique=True, max_size=4).map(lambda x: ["problem"] + x)
                     if draw(st.booleans()) else st.just(["problem", "solver", "simulation"])):
        if draw(st.integers(0, 30)) == 0:
            cfg[name] = draw(SCALARS)
            continue
        keys = KEYS.get(name, ("x",))
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        if name == "problem" and draw(st.integers(0, 9)):
            chosen = ["target"] + [k for k in chosen if k != "target"]
        table = {}
        for key in chosen:
            kind = draw(st.integers(0, 9))
            table[key] = draw(ANY) if kind == 0 or key not in PLAUSIBLE else draw(PLAUSIBLE[key])
        if draw(st.integers(0, 9)) == 0:
            table[draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
        cfg[name] = table
    return cfg


@st.composite
def mutated(draw):
    """A TOML document with a few random edits (often not TOML any more)."""
    text = document(draw(tables()))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 6)))
        text = text[:i] + draw(st.text(max_size=4)) + text[j:]
    return text


def check_document(text, folder):
    """read_config + check_config of a document: a Config or one ProblemError naming a
    field; nothing written besides the document itself."""
    path = folder / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = sorted(os.listdir(folder))
    with time_limit():
        try:
            conf = check_config(read_config(path))
        except ProblemError as exc:
            assert isinstance(exc.field, str) and exc.field, (text, str(exc))
            assert str(exc).startswith(exc.field + ": "), str(exc)
            OUTCOMES["config error"] += 1
        else:
            assert isinstance(conf.problem, dmft.Problem)
            OUTCOMES["config valid"] += 1
    assert sorted(os.listdir(folder)) == before, text


def _run(prop, strategy, options, *args, examples=()):
    """Run ``prop`` on generated values (and on the explicit ``examples`` first, so that both
    outcomes of a property occur whatever the generator draws)."""
    @settings(**COMMON, **options)
    @given(strategy)
    def run(value):
        prop(value, *args)
    for value in examples:
        run = example(value)(run)
    run()


@pytest.fixture()
def quiet_cwd(tmp_path, monkeypatch):
    """Work in an empty folder: anything written there would be seen."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fuzz_targets(options, cwd):
    OUTCOMES.clear()
    _run(lambda e: check_target(e), TARGETS, options, examples=["tanh(z1 + He3(z2))", "z1 +"])
    _run(lambda e: check_target(e), _expressions(), options)
    assert OUTCOMES["target valid"] > 0 and OUTCOMES["target error"] > 0, OUTCOMES
    assert os.listdir(cwd) == []


def _fuzz_configs(options, cwd):
    OUTCOMES.clear()
    (cwd / "docs").mkdir()
    valid = {"problem": {"target": "tanh(z1)", "p": 2}, "solver": {"n_paths": 1000}}
    _run(lambda t: check_document(document(t), cwd / "docs"), tables(), options,
         examples=[valid, {"problem": 0}])
    _run(lambda t: check_document(t, cwd / "docs"), mutated(), options,
         examples=[document(valid), "[problem\n"])
    assert OUTCOMES["config valid"] > 0 and OUTCOMES["config error"] > 0, OUTCOMES
    assert os.listdir(cwd) == ["docs"]


def test_fuzz_targets(quiet_cwd):
    _fuzz_targets(FAST, quiet_cwd)


def test_fuzz_configs(quiet_cwd):
    _fuzz_configs(FAST, quiet_cwd)


@pytest.mark.slow
def test_fuzz_targets_thorough(quiet_cwd):
    _fuzz_targets(THOROUGH, quiet_cwd)


@pytest.mark.slow
def test_fuzz_configs_thorough(quiet_cwd):
    _fuzz_configs(THOROUGH, quiet_cwd)


def test_time_limit_catches_a_hang():
    import time
    with pytest.raises(TimeoutError):
        with time_limit(0.2):
            time.sleep(5)
