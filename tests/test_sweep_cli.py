"""`dmft sweep` killed half way, then restarted: finished points are not recomputed."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

CONFIG = """
[problem]
target = "tanh(z1 + He3(z2))"
p = 2
activation = "relu"
alpha = 3.0
eta = 0.2
steps = 12

[solver]
n_paths = 300_000
seed = 0
"""


def sweep(tmp_path, *extra, **kw):
    cmd = [sys.executable, "-m", "dmft", "sweep", str(tmp_path / "c.toml"), "--param",
           "eta=0.05:0.5:10", "--workers", "1", "--out", str(tmp_path / "s.nc"), "--no-progress",
           *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


@pytest.mark.slow
def test_killed_sweep_resumes_without_recomputing(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    points = tmp_path / "s.nc.points"
    proc = sweep(tmp_path)
    deadline = time.time() + 240
    while time.time() < deadline:
        done = list(points.glob("*.npz")) if points.exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)                   # the whole process group, workers too
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in points.glob("*.npz")}
    assert 3 <= len(finished) < 10, len(finished)
    assert not (tmp_path / "s.nc").exists()
    proc = sweep(tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    m = re.search(r"computed (\d+), reused (\d+)", out)
    assert m, out
    computed, reused = int(m.group(1)), int(m.group(2))
    assert reused == len(finished) and computed == 10 - len(finished), out
    for name, mtime in finished.items():                  # finished points untouched
        assert (points / name).stat().st_mtime_ns == mtime
    assert (tmp_path / "s.nc").exists()
