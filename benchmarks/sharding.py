"""When does sharding the Monte Carlo paths over Dask workers pay?

    .venv/bin/python benchmarks/sharding.py            # ~3 minutes on 2 cores
    .venv/bin/python benchmarks/sharding.py --quick    # smaller grid

A sharded solve (``dmft.solve(..., client=client)``, ``dmft run --shards N`` or
``--scheduler ADDRESS``) keeps each shard's paths resident on a worker (a Dask actor) and
exchanges, at every step, the step's coefficients (to the workers) and the per-group sums (back):
two round trips of small messages per step, whatever n_paths.  This script measures, on a
2-worker LocalCluster (one thread per worker) against one process (Numba threads: all cores):

* the cost of the cluster itself: start-up, and the first sharded solve on fresh workers (each
  imports dmft and loads the compiled kernels), against later solves on the same workers;
* at several n_paths x steps, the wall time of a solve in one process and sharded (warm
  workers, best of ``--repeats``) and their ratio;
* the per-step overhead of sharding, at 2,000 paths (where the sample side costs next to
  nothing): (sharded - single) / (steps + 1) at each number of steps, and the slope in the
  number of steps of the sharded time and of the single-process time;
* that the sharded result is bit-identical to the single-process one (M, Q at every step).

Writes benchmarks/sharding.md (machine, commit, load average, the tables).  Wall times on a
shared machine move with its load: the load average is recorded with them.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = "tanh(z1 + He3(z2))"


def _problem(T):
    import dmft
    return dmft.Problem(TARGET, p=2, activation="relu", alpha=3.0, eta=0.2, steps=T)


def _timed(func):
    t0 = time.perf_counter()
    out = func()
    return time.perf_counter() - t0, out


def _warm_worker():
    import dmft
    dmft.solve(_problem(2), n_paths=2000, n_groups=2, seed=0, progress=False)
    return True


def measure(grid, repeats, workers):
    """All measurements, in this process (the single-process solves use every core)."""
    import logging

    import dmft
    from distributed import Client, LocalCluster
    dmft.solve(_problem(2), n_paths=2000, seed=0, progress=False)          # kernels loaded
    out = {"workers": workers, "rows": []}
    t_start, (cluster, client) = _timed(lambda: _start(LocalCluster, Client, workers, logging))
    out["cluster_start_s"] = t_start
    try:
        pr = _problem(10)
        first, _ = _timed(lambda: dmft.solve(pr, n_paths=200_000, seed=0, progress=False,
                                             client=client))
        second, _ = _timed(lambda: dmft.solve(pr, n_paths=200_000, seed=0, progress=False,
                                              client=client))
        out["first_sharded_s"], out["second_sharded_s"] = first, second
        client.run(_warm_worker)
        for N, T in grid:
            pr = _problem(T)
            single = [_timed(lambda: dmft.solve(pr, n_paths=N, seed=0, progress=False))
                      for _ in range(repeats)]
            sharded = [_timed(lambda: dmft.solve(pr, n_paths=N, seed=0, progress=False,
                                                 client=client)) for _ in range(repeats)]
            (ts, a), (tb, b) = min(single, key=lambda x: x[0]), min(sharded, key=lambda x: x[0])
            same = bool(np.array_equal(a.M, b.M) and np.array_equal(a.Q, b.Q))
            out["rows"].append({"N": N, "T": T, "single": ts, "sharded": tb, "identical": same,
                                "sample_single": a.timings["sample_side"],
                                "sample_sharded": b.timings["sample_side"]})
            print(json.dumps(out["rows"][-1]), flush=True)
    finally:
        client.close()
        cluster.close()
    return out


def _start(LocalCluster, Client, workers, logging):
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    return cluster, Client(cluster)


def overhead(rows):
    """Per-step overhead of sharding at the smallest n_paths: (sharded - single) / (T + 1) for
    each T, and the slopes of the sharded and single-process times in T + 1 (least squares;
    T^2 terms are negligible there)."""
    n0 = min(r["N"] for r in rows)
    small = sorted((r for r in rows if r["N"] == n0), key=lambda r: r["T"])
    per_step = [(r["sharded"] - r["single"]) / (r["T"] + 1) for r in small]
    x = [r["T"] + 1 for r in small]
    slopes = [float(np.polyfit(x, [r[k] for r in small], 1)[0]) if len(small) > 1
              else float("nan") for k in ("sharded", "single")]
    return n0, per_step, slopes


def report(out, quick):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    load = os.getloadavg()
    rows = out["rows"]
    n0, per_step, (slope, slope_single) = overhead(rows)
    machine = platform.processor() or platform.machine()
    lines = [
        "# Sharding benchmark", "",
        f"`benchmarks/sharding.py{' --quick' if quick else ''}`, "
        f"{datetime.date.today().isoformat()}, commit `{commit}`, {machine}, "
        f"{os.cpu_count()} CPUs, load average at the end "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min).", "",
        f"Target {TARGET}, ReLU student, p = k = 2, alpha = 3, eta = 0.2, 32 replicas.  "
        f"One process (Numba threads: every core) against {out['workers']} shards on a "
        f"{out['workers']}-worker LocalCluster (one thread each, warm: kernels loaded).  "
        f"Best of the repeats; wall times.", "",
        f"* cluster start-up: {out['cluster_start_s']:.2f} s",
        f"* first sharded solve on fresh workers (200,000 paths, 10 steps): "
        f"{out['first_sharded_s']:.2f} s; the next one: {out['second_sharded_s']:.2f} s",
        f"* per-step overhead of sharding at {n0:,} paths: "
        + ", ".join(f"{1e3 * x:.1f} ms" for x in per_step)
        + f" (steps {', '.join(str(r['T']) for r in rows if r['N'] == n0)}); cost of a "
        f"step: {1e3 * slope:.1f} ms sharded, {1e3 * slope_single:.1f} ms in one process "
        f"(slopes in the number of steps)", "",
        "| n_paths | steps | one process (s) | sharded (s) | sharded / one | sample side, one "
        "(s) | sample side, sharded (s) | bit-identical |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['N']:,} | {r['T']} | {r['single']:.3f} | {r['sharded']:.3f} | "
                     f"{r['sharded'] / r['single']:.2f} | {r['sample_single']:.3f} | "
                     f"{r['sample_sharded']:.3f} | {r['identical']} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(HERE, "sharding.md"), "w") as fh:
        fh.write(text)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--repeats", type=int, default=2, help="solves per cell (best kept)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the local cluster")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    if args.quick:
        grid = [(2_000, 10), (2_000, 40), (200_000, 20)]
    else:
        grid = [(2_000, 10), (2_000, 40), (2_000, 80), (200_000, 20), (200_000, 40),
                (1_000_000, 20), (1_000_000, 40)]
    report(measure(grid, args.repeats, args.workers), args.quick)


if __name__ == "__main__":
    main()
