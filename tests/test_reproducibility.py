"""Same config and seed, identical data files whatever the number of threads; every output
file written atomically (temporary file, then rename)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import dmft
from dmft.io import atomic_write

CONFIG = """
[problem]
target = "tanh(z1 + He3(z2))"
p = 2
activation = "relu"
alpha = 3.0
eta = 0.3
steps = 4

[solver]
n_paths = 6000
n_groups = 8
seed = 11

[simulation]
d = 120
n_seeds = 2
n_jobs = 1
n_test = 2000
seed = 5
"""
TIMING_ATTRS = ("timings",)


def _cli(args, cwd, threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "dmft", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_one_and_two_threads_give_identical_files(tmp_path):
    """`dmft compare` over both solvers (the general DMFT, multi-pass, and the one-pass
    recursion) and the simulator, in two processes with 1 and 2 threads (Numba and BLAS):
    every data variable of every netCDF file and every CSV file is bit-identical; only the
    timings differ."""
    xr = pytest.importorskip("xarray")
    config = tmp_path / "r.toml"
    config.write_text(CONFIG)
    runs = {}
    for threads in (1, 2):
        out = tmp_path / f"t{threads}"
        r = _cli(["compare", str(config), "--out", str(out), "--schedules",
                  "one-pass,multi-pass"], tmp_path, threads)
        assert r.returncode == 0, r.stderr
        runs[threads] = out
    names = sorted(p.name for p in runs[1].iterdir())
    assert names == sorted(p.name for p in runs[2].iterdir())
    ncs = [n for n in names if n.endswith(".nc")]
    assert len(ncs) == 4                        # DMFT and simulation, two schedules
    for name in ncs:
        with xr.open_dataset(runs[1] / name) as a, xr.open_dataset(runs[2] / name) as b:
            assert set(a.data_vars) == set(b.data_vars) and len(a.data_vars) > 8
            for v in a.data_vars:
                x, y = a[v].values, b[v].values
                assert x.dtype == y.dtype and x.shape == y.shape, (name, v)
                assert x.tobytes() == y.tobytes(), (name, v)
            for key in set(a.attrs) | set(b.attrs):
                if key not in TIMING_ATTRS:
                    assert a.attrs[key] == b.attrs[key], (name, key)
            assert a.attrs["status"] == "ok"
    for name in names:
        if name.endswith((".csv", ".txt")):
            assert (runs[1] / name).read_bytes() == (runs[2] / name).read_bytes(), name


def test_threads_in_process_identical():
    """The same check in one process, switching the Numba thread count between solves."""
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, alpha=3.0, eta=0.3, steps=4)
    before = numba.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            out.append(dmft.solve(pr, n_paths=4000, n_groups=8, seed=3, progress=False))
    finally:
        numba.set_num_threads(before)
    for name in ("M", "Q", "train_loss", "test_error", "C_theta", "C_g", "R_g"):
        assert getattr(out[0], name).tobytes() == getattr(out[1], name).tobytes(), name


@pytest.mark.parametrize("G, blocks", [(1, 4), (7, 1), (7, 4), (32, 4), (33, 3)])
def test_over_groups_covers_every_group_once(G, blocks):
    """Static and dynamic scheduling call every group exactly once, in contiguous ranges."""
    import threading

    from dmft.threads import over_groups
    seen, lock = [], threading.Lock()

    def fn(g0, g1, tag):
        assert tag == "x" and 0 <= g0 < g1 <= G
        with lock:
            seen.extend(range(g0, g1))
    over_groups(fn, G, "x", blocks=blocks)
    assert sorted(seen) == list(range(G))


# ------------------------------------------------------------------------ atomic writes
def test_failed_write_leaves_old_file_and_no_debris(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("old\n")

    def half_then_fail(tmp):
        with open(tmp, "w") as fh:
            fh.write("new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]

    def disk_full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(dmft.ProblemError, match="^path: cannot write .*No space left"):
        atomic_write(path, disk_full)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def _renamed(monkeypatch):
    """Record every file put in place by os.replace (the last step of atomic_write)."""
    done = []
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        done.append(os.path.abspath(os.fspath(dst)))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return done


def _files(folder):
    return {os.path.abspath(os.path.join(root, f)) for root, _, files in os.walk(folder)
            for f in files}


def test_every_cli_output_is_written_atomically(tmp_path, monkeypatch, capsys):
    """run, simulate, compare, validate: every file that appears was put in place by a
    rename of a temporary file, and no temporary file is left behind."""
    from dmft.cli import main
    config = tmp_path / "r.toml"
    config.write_text(CONFIG + "\n[validation]\nds = [60, 80]\n")
    done = _renamed(monkeypatch)
    out = tmp_path / "out"
    for command in ("run", "simulate", "compare"):
        assert main([command, str(config), "--out", str(out)]) == 0
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "tiny.toml").write_text(config.read_text())
    code = main(["validate", "--cases-dir", str(cases), "--out", str(tmp_path / "val"),
                 "--no-progress"])
    assert code in (0, 1)
    capsys.readouterr()
    written = _files(out) | _files(tmp_path / "val")
    assert len(written) == 13
    assert written <= set(done), sorted(written - set(done))
    assert not [f for f in written if ".tmp-" in f]
    names = {os.path.basename(f) for f in written}
    for name in ("r_dmft.nc", "r_dmft.csv", "r_dmft.png", "r_sim.nc", "r_sim.png",
                 "r_compare.png", "r_compare.txt", "report.md", "summary.json", "tiny.json",
                 "tiny.png", "calibration_qq.png"):
        assert name in names, name


def test_sweep_outputs_are_written_atomically(client, tmp_path, monkeypatch):
    from dmft.sweep import run_sweep
    from dmft.sweep_plot import plot_sweep
    config = tmp_path / "r.toml"
    config.write_text(CONFIG)
    done = _renamed(monkeypatch)
    out = tmp_path / "s" / "sweep.nc"
    run = run_sweep(str(config), "eta=0.1,0.2", out=str(out), client=client, progress=False)
    plot_sweep(run.dataset, tmp_path / "s" / "sweep.png")
    written = _files(tmp_path / "s")
    assert len(written) == 4                    # the sweep, its figure, two point files
    assert written <= set(done)
    assert np.all(run.dataset["status"].values == "ok")
