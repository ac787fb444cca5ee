"""Long horizons (issue 17): the weight side against the sample side at 200 to 2000 steps.

    .venv/bin/python benchmarks/long_horizon.py            # all cases, ~15 minutes on 2 cores
    .venv/bin/python benchmarks/long_horizon.py --quick    # T = 200 and 400 only
    chrt -f 10 .venv/bin/python benchmarks/long_horizon.py # on a shared machine

Problem: the paper's target tanh(z1 + He3(z2)), ReLU, p = k = 2, alpha = 3, eta = 0.05 (the
issue's case).  Every solve runs in its own process (``--one``) after a warm-up solve that loads
the compiled kernels, so that each peak RSS is its own; the ratios come from one run.  Recorded
per case: the solve's wall time and ``Result.timings`` (weight side, sample side), the peak RSS of
the process, the weight side's memory (its packed rows, :mod:`dmft.weight`) against one dense
G (T+1)^2 p^2 array, and for T = 400 the time to form the reported kernels (C_theta, C_g, R_theta,
R_g, Psi) from the rows when they are first read (``--kernels``).

Targets: weight side at most 15% of the total at T = 400 / 5e4 paths; that solve at most 1.3x
the T = 200 / 2e5-path one (the same history traffic); T = 1000 / 1e5 paths (float32 history)
under 150 s and T = 2000 / 5e4 paths under 600 s, each under 12 GB.  Appends to
benchmarks/long_horizon.md.
"""
import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import append_record, conditions, machine  # noqa: E402

#: (steps, paths, history, replicas): at T = 2000 a replica of 5e4 / 32 paths is smaller than the
#: 2 T + 6 it needs for orthonormal innovations (docs: theory section 3.7), so 8 replicas
CASES = [(200, 200_000, "float64", 32), (400, 50_000, "float64", 32),
         (1000, 100_000, "float32", 32), (2000, 50_000, "float64", 8)]
LIMITS = {1000: 150.0, 2000: 600.0}
RSS_LIMIT_GB = 12.0


def problem(T):
    import dmft
    return dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.05,
                        steps=T)


def one(T, N, history, G, kernels):
    """In the subprocess: one solve (after a warm-up), its timings and memory."""
    import dmft
    dmft.solve(problem(3), n_paths=2000, seed=0, progress=False, history=history)
    t0 = time.perf_counter()
    res = dmft.solve(problem(T), n_paths=N, n_groups=G, seed=0, progress=False, history=history)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9          # GB
    src = res.kernel_source
    out = {"T": T, "N": N, "G": G, "history": history, "wall": wall, "rss_gb": rss,
           "weight_bytes": src.nbytes, "dense_bytes": 8 * G * (T + 1) ** 2 * 4,
           "load": os.getloadavg()[0], **res.timings}
    if kernels:
        t0 = time.perf_counter()
        res.C_theta
        out["kernels_s"] = time.perf_counter() - t0
        out["rss_after_kernels_gb"] = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(json.dumps(out))


def measure(T, N, history, G, kernels=False):
    args = [sys.executable, __file__, "--one", str(T), str(N), history, str(G)] + \
        (["--kernels"] if kernels else [])
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def verdict(ok):
    return "met" if ok else "not met"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=4, metavar=("T", "N", "HISTORY", "G"))
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.one:
        return one(int(args.one[0]), int(args.one[1]), args.one[2], int(args.one[3]),
                   args.kernels)
    before = conditions()
    rows = {}
    for T, N, history, G in CASES[:2] if args.quick else CASES:
        rows[T] = measure(T, N, history, G, kernels=(T == 400))
        r = rows[T]
        print(f"T={T} N={N:.0e} {history}: {r['wall']:.1f} s (weight {r['weight_side']:.2f} s, "
              f"sample {r['sample_side']:.1f} s), peak RSS {r['rss_gb']:.2f} GB, load "
              f"{r['load']:.1f}", flush=True)
    r2, r4 = rows[200], rows[400]
    share = r4["weight_side"] / r4["total"]
    ratio = r4["total"] / r2["total"]
    lines = [f"## {datetime.datetime.now().isoformat(timespec='minutes')}", "",
             f"Machine: {machine()}; before: {before}; after: {conditions()}.  Problem: "
             "tanh(z1 + He3(z2)), ReLU, p = 2, alpha = 3, eta = 0.05; one solve per case in "
             "its own process after a warm-up (compile excluded); setup: drawing the paths' "
             "inputs and orthonormalising their innovations (part of the solve).", "",
             "| steps, paths, replicas, history | solve | weight side | sample side | setup | "
             "peak RSS | weight-side rows | one dense G (T+1)^2 p^2 array | load |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for T, r in rows.items():
        lines.append(f"| {T}, {r['N']:.0e}, {r['G']}, {r['history']} | {r['total']:.2f} s | "
                     f"{r['weight_side']:.2f} s ({100 * r['weight_side'] / r['total']:.1f}%) | "
                     f"{r['sample_side']:.2f} s | {r['setup']:.2f} s | {r['rss_gb']:.2f} GB | "
                     f"{r['weight_bytes'] / 1e9:.3f} GB | {r['dense_bytes'] / 1e9:.3f} GB | "
                     f"{r['load']:.1f} |")
    lines += ["",
              f"- weight side at T = 400, 5e4 paths: **{100 * share:.1f}%** of the solve "
              f"(target at most 15%: {verdict(share <= 0.15)});",
              f"- T = 400 / 5e4 paths against T = 200 / 2e5 paths: **{ratio:.2f}x** (target at "
              f"most 1.3x: {verdict(ratio <= 1.3)});",
              f"- reported kernels formed from the rows when first read, T = 400: "
              f"{r4['kernels_s']:.1f} s (not part of the solve; peak RSS then "
              f"{r4['rss_after_kernels_gb']:.2f} GB);"]
    for T, limit in LIMITS.items():
        if T in rows:
            r = rows[T]
            ok = r["total"] <= limit and r["rss_gb"] <= RSS_LIMIT_GB
            lines.append(f"- T = {T}, {r['N']:.0e} paths ({r['history']} history): "
                         f"**{r['total']:.1f} s, {r['rss_gb']:.2f} GB** (target under {limit:.0f} s "
                         f"and {RSS_LIMIT_GB:.0f} GB: {verdict(ok)});")
    lines.append("")
    append_record("long_horizon.md", lines)


if __name__ == "__main__":
    main()
