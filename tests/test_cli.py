"""The command line end to end (in a subprocess, as a user runs it)."""
import subprocess
import sys

import pytest

TINY = """
[problem]
target = "tanh(z1 + He3(z2))"
p = 2
activation = "relu"
alpha = 2.0
eta = 0.2
steps = 3

[solver]
n_paths = 20000
n_groups = 8

[simulation]
d = 200
n_seeds = 3
n_jobs = 1
"""


def dmft_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dmft", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.mark.slow
def test_compare_end_to_end(config, tmp_path):
    out = tmp_path / "res"
    r = dmft_cli("compare", str(config), "--out", str(out), "--seed", "3", "--d", "250",
                 "--seeds", "4", "--n-paths", "16000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("tiny_dmft.nc", "tiny_dmft.csv", "tiny_sim.nc", "tiny_sim.csv",
                 "tiny_compare.png", "tiny_compare.txt"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "tiny_compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "tiny_compare.png").stat().st_size > 10_000
    assert "worst|z|" in r.stdout and "d = 250, 4 seeds" in r.stdout
    import dmft
    assert dmft.load(out / "tiny_sim.nc").n_seeds == 4
    assert dmft.load(out / "tiny_dmft.nc").n_paths == 16000


@pytest.mark.parametrize("command, product", [("run", "tiny_dmft.png"),
                                              ("simulate", "tiny_sim.png")])
@pytest.mark.slow
def test_run_and_simulate(config, tmp_path, command, product):
    r = dmft_cli(command, str(config), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / product).stat().st_size > 10_000
    assert "status=ok" in r.stdout


@pytest.mark.parametrize("text, field", [
    ('[problem]\ntarget = "z1 +"\n', "target"),
    ('[problem]\ntarget = "z1"\nalpha = -1\n', "alpha"),
    ('[problem]\ntarget = "z1"\nactivation = "swish"\n', "activation"),
    ('[problem]\ntarget = "z1"\nwidth = 3\n', "width"),
    ('[problem]\ntarget = "z1"\n[simulation]\nd = 0\n', "d"),
    ('[problem]\ntarget = "z1"\n[solver]\nn_paths = "many"\n', "n_paths"),
    ('[problm]\ntarget = "z1"\n', "problm"),
    ('[problem\ntarget = "z1"\n', "config"),
])
@pytest.mark.slow
def test_bad_config_one_line_exit_2(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    r = dmft_cli("compare", str(path), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"dmft: error: {field}:"), lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_missing_file_and_bad_flags(tmp_path):
    r = dmft_cli("run", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = dmft_cli("run", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = dmft_cli("simulate", str(tmp_path / "x.toml"), "--d", "many", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_compare_overlays_schedules(config, tmp_path):
    out = tmp_path / "s"
    r = dmft_cli("compare", str(config), "--out", str(out), "--schedules", "one-pass,multi-pass",
                 "--d", "200", "--seeds", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "schedule one-pass" in r.stdout and "schedule multi-pass" in r.stdout
    assert (out / "tiny_one-pass_dmft.nc").exists() and (out / "tiny_multi-pass_sim.nc").exists()
    assert (out / "tiny_compare.png").stat().st_size > 10_000
    r = dmft_cli("compare", str(config), "--out", str(out), "--schedules", "one-pass,twice",
                 cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("dmft: error: schedules:")


@pytest.mark.slow
def test_learnability_command(tmp_path):
    import json
    r = dmft_cli("learnability", "z1 + z2**2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["one_pass_subspace_dim"] == 1 and out["hard_subspace_dim"] == 1
    r = dmft_cli("learnability", "z1 + import", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("dmft: error: target:")
