"""Compile time of the first `dmft.solve` in a fresh clone (issue: a newcomer's first hour).

    .venv/bin/python benchmarks/compile_time.py               # 5 repeats, ~1-2 minutes
    .venv/bin/python benchmarks/compile_time.py --repeats 3

Each repeat runs in a fresh process whose Numba cache (NUMBA_CACHE_DIR) is an empty temporary
folder, as in a fresh clone: it times the first solve of the flagship problem (examples/
paper_tanh_he3.toml's problem with the solver's default options) and a second identical
solve; the compile time is the first minus the second (wall clock), and is compared with what
the solver itself reports (``Result.timings["compile"]``).  A last process reuses the cache of
the first repeat to time a later run (the kernels loaded from the cache).  Process CPU time is
given next to the wall clock: on a shared machine the wall clock includes the waits for the
CPU, and compiling runs on one core, so the CPU time is the figure to trust there.  Appends the
result, the machine and the load average to benchmarks/compile_time.md.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import append_record, conditions, machine  # noqa: E402


def one():
    """Runs in the subprocess: import, first solve, second solve (wall and CPU seconds)."""
    w0, c0 = time.perf_counter(), time.process_time()
    import dmft
    w1, c1 = time.perf_counter(), time.process_time()
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2,
                      steps=6)
    out = {"import_wall": w1 - w0, "import_cpu": c1 - c0}
    for name in ("first", "second"):
        w, c = time.perf_counter(), time.process_time()
        res = dmft.solve(pr, seed=0, progress=False)
        out[name + "_wall"] = time.perf_counter() - w
        out[name + "_cpu"] = time.process_time() - c
        out[name + "_reported"] = res.timings.get("compile", float("nan"))
    print(json.dumps(out))


def run(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, __file__, "--one"], capture_output=True, text=True,
                         cwd=ROOT, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.one:
        return one()
    load0 = os.getloadavg()[0]
    rows, keep = [], tempfile.mkdtemp(prefix="dmft-numba-cache-")
    try:
        for i in range(args.repeats):
            cache = keep if i == 0 else tempfile.mkdtemp(prefix="dmft-numba-cache-")
            try:
                r = run(cache)
            finally:
                if cache != keep:
                    shutil.rmtree(cache, ignore_errors=True)
            r["compile_wall"] = r["first_wall"] - r["second_wall"]
            r["compile_cpu"] = r["first_cpu"] - r["second_cpu"]
            rows.append(r)
            print(f"repeat {i + 1}: first solve {r['first_wall']:.2f} s ({r['first_cpu']:.2f} s "
                  f"CPU), second {r['second_wall']:.3f} s; compile {r['compile_wall']:.2f} s "
                  f"wall, {r['compile_cpu']:.2f} s CPU; reported timings['compile'] "
                  f"{r['first_reported']:.2f} s", flush=True)
        warm = run(keep)                       # a later process: kernels from the cache
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("compile_wall", "compile_cpu", "first_reported", "import_wall")}
    lines = [
        f"## {datetime.datetime.now().isoformat(timespec='minutes')}",
        "",
        f"Machine: {machine()}; load average {load0:.1f} before; after: {conditions()}.  "
        f"Flagship problem, default solver options (2e5 paths, 6 "
        f"steps), empty Numba cache, {args.repeats} fresh processes.",
        "",
        f"- compile time of the first solve (first minus second solve), median: "
        f"**{med['compile_wall']:.2f} s wall, {med['compile_cpu']:.2f} s CPU** (each repeat: "
        + ", ".join(f"{r['compile_wall']:.2f}/{r['compile_cpu']:.2f}" for r in rows) + " s);",
        f"- reported by the solver, `timings[\"compile\"]`: {med['first_reported']:.2f} s "
        f"(median);",
        f"- a later process (kernels loaded from the cache): first solve "
        f"{warm['first_wall']:.2f} s against {warm['second_wall']:.2f} s for the second "
        f"(`timings[\"compile\"]` = {warm['first_reported']:.2f} s); `import dmft` "
        f"{med['import_wall']:.2f} s.",
        "",
    ]
    append_record("compile_time.md", lines)


if __name__ == "__main__":
    main()
