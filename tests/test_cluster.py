"""The cluster path as a user's cluster runs it: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 (the environment's own executables, random free ports), `dmft sweep
--scheduler ADDRESS` and `dmft run --scheduler ADDRESS` against them give the files of a local
run, and a worker killed in the middle of a sweep costs nothing but time (its points are
recomputed on the other worker: none lost, none duplicated, the same result)."""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

pytestmark = pytest.mark.slow

BIN = pathlib.Path(sys.executable).parent
DMFT = [sys.executable, "-m", "dmft"]
CONFIG = """
[problem]
target = "tanh(z1 + He3(z2))"
p = 2
activation = "relu"
alpha = 3.0
eta = 0.2
steps = {steps}

[solver]
n_paths = {n_paths}
n_groups = 8
seed = 3

[simulation]
d = 100
n_seeds = 2
seed = 1
n_test = 1000
"""


def _spawn(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Cluster:
    """A scheduler and workers started as separate processes, as on a user's machines."""

    def __init__(self, folder, n_workers=2):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.log = open(folder / "cluster.log", "ab")
        self.scheduler = _spawn([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                                 "--port", "0", "--no-dashboard", "--scheduler-file",
                                 str(self.file)], self.log)
        self.workers = []
        self.address = self._wait_address()
        for i in range(n_workers):
            self.add_worker(f"w{i}")
        self.wait_workers(n_workers)

    def _wait_address(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.file.exists():
                try:
                    return json.loads(self.file.read_text())["address"]
                except (ValueError, KeyError):
                    pass
            assert self.scheduler.poll() is None, "the scheduler exited"
            time.sleep(0.2)
        raise TimeoutError("no scheduler address")

    def add_worker(self, name):
        (self.folder / name).mkdir(exist_ok=True)
        self.workers.append(_spawn([str(BIN / "dask"), "worker", self.address, "--name", name,
                                    "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                    "--host", "127.0.0.1", "--local-directory",
                                    str(self.folder / name)], self.log))

    def n_workers(self):
        from distributed import Client
        with Client(self.address, timeout="30s") as c:
            return len(c.scheduler_info()["workers"])

    def wait_workers(self, n, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.n_workers() == n:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{n} workers did not connect")

    def close(self):
        for proc in self.workers + [self.scheduler]:
            _stop(proc)
        self.log.close()


@pytest.fixture()
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.close()


def _config(folder, steps=4, n_paths=20_000):
    path = folder / "c.toml"
    path.write_text(CONFIG.format(steps=steps, n_paths=n_paths))
    return path


def _run(args, cwd, timeout=900):
    r = subprocess.run(DMFT + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, MPLBACKEND="Agg"))
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _same_data(a, b, skip_attrs=()):
    with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
        assert set(x.data_vars) == set(y.data_vars)
        for name in x.data_vars:
            np.testing.assert_array_equal(x[name].values, y[name].values, err_msg=name)
        for key in set(x.attrs) | set(y.attrs):
            if key not in skip_attrs:
                assert x.attrs.get(key) == y.attrs.get(key), key


def test_sweep_and_run_on_a_running_scheduler(cluster, tmp_path):
    config = _config(tmp_path)
    sweep = ["sweep", str(config), "--param", "eta=0.1,0.2,0.3", "--schedules",
             "one-pass,multi-pass", "--simulate", "--no-progress"]
    remote = _run(sweep + ["--scheduler", cluster.address, "--out", "remote.nc"], tmp_path)
    assert "computed 6, reused 0" in remote.stdout
    _run(sweep + ["--workers", "2", "--out", "local.nc"], tmp_path)
    _same_data(tmp_path / "remote.nc", tmp_path / "local.nc")
    assert (tmp_path / "remote.nc").read_bytes() == (tmp_path / "local.nc").read_bytes()

    _run(["run", str(config), "--scheduler", cluster.address, "--out", "remote",
          "--no-progress"], tmp_path)
    _run(["run", str(config), "--out", "local", "--no-progress"], tmp_path)
    _same_data(tmp_path / "remote" / "c_dmft.nc", tmp_path / "local" / "c_dmft.nc",
               skip_attrs=("timings",))
    assert (tmp_path / "remote" / "c_dmft.csv").read_bytes() == \
        (tmp_path / "local" / "c_dmft.csv").read_bytes()


def test_worker_killed_in_a_sweep_costs_only_time(cluster, tmp_path):
    config = _config(tmp_path, steps=10, n_paths=150_000)
    sweep = ["sweep", str(config), "--param", "eta=0.05:0.4:8", "--no-progress"]
    points = tmp_path / "remote.nc.points"
    proc = subprocess.Popen(DMFT + sweep + ["--scheduler", cluster.address, "--out",
                                            "remote.nc"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and not (points.exists() and any(points.glob("*.npz"))):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    done_before = len(list(points.glob("*.npz")))
    assert done_before < 8, "the sweep finished before a worker could be killed"
    victim = cluster.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)                 # in the middle of a point
    victim.wait()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out + err
    m = re.search(r"computed (\d+), reused (\d+)", out)
    assert m and (int(m.group(1)), int(m.group(2))) == (8, 0), out
    assert len(list(points.glob("*.npz"))) == 8           # none lost, none duplicated
    assert cluster.n_workers() == 1
    _run(sweep + ["--workers", "2", "--out", "local.nc"], tmp_path)
    _same_data(tmp_path / "remote.nc", tmp_path / "local.nc")
    with xr.open_dataset(tmp_path / "remote.nc") as ds:
        assert not ds["diverged"].values.any()
        assert len(set(ds["point"].values.tolist())) == 8
