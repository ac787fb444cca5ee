"""A/B benchmark: `dmft.solve` of this checkout against an earlier revision, in one run.

    .venv/bin/python benchmarks/regression.py                 # against eb4b1ac (before 0.2's changes)
    .venv/bin/python benchmarks/regression.py --base main --rounds 5

The base revision is checked out into a temporary git worktree and imported from there
(PYTHONPATH), with this checkout's environment; every timing is one solve in a fresh process
after a warm-up solve in the same process (compile time excluded), and the rounds alternate
base and head so that a neighbour's load hits both alike.  Prints the median times and the
ratio head/base per case, and writes them to benchmarks/regression.md.  The claim it checks: the
default model does not slow down by more than 5% (ratio <= 1.05).
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CASES = {"2e5 x 20": (200_000, 20), "1e6 x 100": (1_000_000, 100)}
CHILD = """
import json, sys, time
import dmft
n, T = int(sys.argv[1]), int(sys.argv[2])
def problem(steps):
    return dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2,
                        steps=steps)
dmft.solve(problem(3), n_paths=20_000, seed=0, progress=False)        # compile / load
pr = problem(T)
t0 = time.perf_counter()
dmft.solve(pr, n_paths=n, seed=0, progress=False)
print(json.dumps({"wall": time.perf_counter() - t0, "file": dmft.__file__}))
"""


def run(path, n, T):
    env = dict(os.environ, PYTHONPATH=str(path), MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(T)], env=env, check=True,
                         capture_output=True, text=True, cwd=path)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["file"].startswith(str(path)), rec["file"]          # the right code was timed
    return rec["wall"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="eb4b1ac", help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    args = ap.parse_args()
    cases = {c: CASES[c] for c in args.cases.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.base],
                       cwd=ROOT, check=True)
        try:
            times = {c: {"base": [], "head": []} for c in cases}
            for r in range(args.rounds):
                for c, (n, T) in cases.items():
                    for side, path in (("base", base), ("head", ROOT))[::1 if r % 2 else -1]:
                        times[c][side].append(run(path, n, T))
                        print(f"round {r}: {c} {side} {times[c][side][-1]:.3f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    lines = ["# Regression A/B: `dmft.solve`, this checkout against an earlier revision", "",
             f"base `{args.base}`, head `{head}` (+ uncommitted changes, if any); "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"load average {load:.1f} at the end; median of {args.rounds} alternating rounds, "
             "each a fresh process after a warm-up solve.", "",
             "| case | base | head | head / base |", "| --- | --- | --- | --- |"]
    for c in cases:
        b, h = statistics.median(times[c]["base"]), statistics.median(times[c]["head"])
        lines.append(f"| {c} | {b:.3f} s | {h:.3f} s | {h / b:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "regression.md").write_text(text)


if __name__ == "__main__":
    main()
