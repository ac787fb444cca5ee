"""The validation suite: it passes (quick mode), it resumes, and it can fail."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dmft.agreement import LEVEL
from dmft.validation import fit_c0

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def validate(out, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "dmft", "validate", "--quick", "--out", str(out),
                           "--no-progress", *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def test_fit_c0():
    ds = np.array([250.0, 500.0, 1000.0])
    means = 0.3 + 2.0 / ds + np.zeros((4, 3))
    c0, e0 = fit_c0(ds, means, np.full((4, 3), 0.01))
    np.testing.assert_allclose(c0, 0.3, atol=1e-12)
    assert np.all(e0 > 0.01)                      # extrapolation costs precision


@pytest.mark.slow
def test_quick_suite_passes_and_resumes(tmp_path):
    r = validate(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    cases = summary["cases"]
    assert summary["passed"] and len(cases) >= 8
    assert summary["level"] == LEVEL and summary["false_alarm_bound"] == (len(cases) + 1) * LEVEL
    assert summary["calibration"]["p_value"] > LEVEL and summary["calibration"]["n_cases"] == \
        len(cases)
    for name, c in cases.items():
        assert c["passed"] and c["p_value"] > c["level"] == LEVEL and c["method"] == "bootstrap"
        assert 0 < c["power"] < 1 and 0 < c["dispersion_p"] <= 1
        assert (tmp_path / "cases" / f"{name}.png").stat().st_size > 10_000
    assert (tmp_path / "calibration_qq.png").stat().st_size > 10_000
    report = (tmp_path / "report.md").read_text()
    assert "commit" in report and all(name in report for name in cases)
    assert "family-wise p" in report and "Stouffer" in report
    # the required coverage (full settings, from the case files)
    probs = {n: c["problem"] for n, c in cases.items()}
    targets = {p["target"] for p in probs.values()}
    assert {"tanh(z1 + He3(z2))", "He3(z1)", "z1 + z1*z2", "z1*z2*z3"} <= targets
    assert any(p["ridge"] > 0 and p["noise"] > 0 for p in probs.values())
    assert {"one-pass", "reuse-2"} <= {p["schedule"] for p in probs.values()}
    assert {"tanh", "erf"} & {p["activation"] for p in probs.values()}
    assert any(p["p"] == 4 and np.any(p["M0"]) and not np.allclose(p["Q0"], np.eye(4))
               for p in probs.values())
    assert any(p["alpha"] < 1 for p in probs.values())
    import tomllib
    with open(os.path.join(ROOT, "dmft", "cases", "long_run.toml"), "rb") as fh:
        assert tomllib.load(fh)["problem"]["steps"] >= 50
    # resume: a second run reuses every finished case
    r2 = validate(tmp_path, "--cases", "staircase,symmetric")
    assert r2.returncode == 0 and r2.stdout.count("reused") == 2


@pytest.mark.slow
def test_suite_fails_when_the_solver_is_broken(tmp_path, scale_memory):
    """The memory term of the DMFT dropped (injected by the test, see conftest.scale_memory):
    the quick suite must fail, in every case that has a memory term (four multi-pass or reuse
    cases of different targets and widths, a third of the suite's time)."""
    from dmft.validation import case_files, run_suite
    scale_memory(0.0)
    files = case_files("he3_single,paper_tanh_he3,reuse2,p4_init")
    run_suite(files, str(tmp_path), quick=True, progress=False, log=lambda *a: None)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert not summary["passed"]
    failed = [n for n, c in summary["cases"].items() if not c["passed"]]
    assert len(failed) == 4, failed


def test_bad_case_names(tmp_path):
    r = validate(tmp_path, "--cases", "nope")
    assert r.returncode == 2 and r.stderr.startswith("dmft: error: cases:")
