"""Compilation is said while it happens and timed apart (issue: a newcomer's first hour).

The first-solve compile time itself is measured by benchmarks/compile_time.py."""
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

import dmft
from dmft import compilation, kernels
from dmft.shard import Shard

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _fresh():
    @njit(cache=False)
    def twice(x):
        return 2.0 * x
    return twice


def test_watch_times_a_compilation_and_notices_once():
    calls = []
    f = _fresh()
    with compilation.watch(lambda: calls.append(1)) as w:
        f(1.0)
        f(2.0)                               # already compiled: no second notice
        f(np.ones(2))                        # a new specialisation: compiled, no second notice
    assert calls == [1]
    assert w.seconds > 0


def test_watch_is_silent_when_nothing_compiles():
    f = _fresh()
    f(1.0)
    calls = []
    with compilation.watch(lambda: calls.append(1)) as w:
        f(3.0)
    assert calls == [] and w.seconds == 0.0


def test_notice_says_compiling_kernels(capsys):
    with compilation.notice(True) as show:
        show()
    assert compilation.MESSAGE in capsys.readouterr().err
    assert compilation.MESSAGE == "compiling kernels (first run only)"


def test_notice_auto_only_on_a_terminal(capsys, monkeypatch):
    with compilation.notice("auto") as show:            # captured stderr: not a terminal
        assert show is None
    monkeypatch.setattr(compilation, "_is_terminal", lambda stream: True)
    with compilation.notice("auto") as show:
        show()
    assert compilation.MESSAGE in capsys.readouterr().err


def test_notice_is_silent_without_progress(capsys):
    with compilation.notice(False) as show:
        assert show is None
    assert capsys.readouterr().err == ""


def test_solve_reports_compile_time_apart():
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2, steps=3)
    res = dmft.solve(pr, n_paths=2000, seed=0, progress=False)
    assert set(res.timings) >= {"total", "compile", "sample_side", "weight_side"}
    again = dmft.solve(pr, n_paths=2000, seed=0, progress=False)
    assert again.timings["compile"] == 0.0          # loaded: nothing compiles twice
    one = dmft.solve(pr.replace(schedule="one-pass"), n_paths=2000, seed=0, progress=False)
    assert one.timings["compile"] >= 0.0 and one.timings["total"] > 0


def test_one_specialisation_per_estimator_and_history():
    """Every step of a solve calls the kernel with the same types: the Stein and pathwise
    estimators and the two history dtypes give one specialisation each, never more."""
    pr = dmft.Problem("tanh(z1)", p=2, activation="tanh", alpha=2.0, eta=0.3, steps=4)
    for response in ("stein", "pathwise"):
        for history in ("float64", "float32"):
            dmft.solve(pr, n_paths=2000, seed=1, progress=False, response=response,
                       history=history)
    assert len(kernels.step.signatures) == 4


@pytest.mark.slow
def test_first_run_says_compiling_and_later_runs_do_not(tmp_path):
    """A fresh Numba cache, as in a fresh clone: the CLI says "compiling kernels (first run
    only)" on stderr while it compiles, the next run (cache hit) does not (``--progress``: the
    notice shows on a redirected stderr too)."""
    cfg = tmp_path / "small.toml"
    cfg.write_text('[problem]\ntarget = "tanh(z1 + He3(z2))"\np = 2\nactivation = "relu"\n'
                   'alpha = 3.0\neta = 0.2\nsteps = 3\n[solver]\nn_paths = 2000\nseed = 0\n')
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "dmft", "run", str(cfg), "--out", str(tmp_path / "out"),
           "--progress"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert compilation.MESSAGE in first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert compilation.MESSAGE not in second.stderr


def test_shard_compile_reports_seconds():
    pr = dmft.Problem("z1", p=1, steps=2)
    sh = Shard(pr.to_dict(), 0, 200, 4, 0, 4, "stein")
    assert sh.compile() >= 0.0 and sh.compiled
