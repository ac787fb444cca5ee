"""Performance benchmark of dmft (issue: DMFT kernels at the memory-bandwidth floor).

    .venv/bin/python benchmarks/bench.py            # everything, ~3 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick    # skips the numpy baseline at 1e6 x 100

Every measurement runs in its own subprocess (so that its peak RSS is its own), after a
warm-up solve that loads the compiled kernels (compile time excluded); a time is the best of
the repeats (the sample side's too).  Ratios are measured in one run.  Writes
benchmarks/results.md with the machine and the commit.  benchmarks/sample_side.py checks the
two sample-side ratios at 2e5 x 20 alone, with interleaved rounds.
"""
import argparse
import datetime
import json
import os
import platform
import resource
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


def one(kind, N, T, repeats=1, history="float64"):
    """Runs in the subprocess: best wall time of ``repeats`` solves (after a warm-up that
    loads the compiled kernels) and the peak RSS of the whole process."""
    walls = []
    if kind == "dmft":
        import dmft
        dmft.solve(_problem(3), n_paths=2000, seed=0, progress=False,
                   history=history)                                                  # warm-up
        sample, weight = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = dmft.solve(_problem(T), n_paths=N, seed=0, progress=False, history=history)
            walls.append(time.perf_counter() - t0)
            sample.append(res.timings["sample_side"])
            weight.append(res.timings["weight_side"])
        extra = {"sample_side": min(sample), "weight_side": min(weight),
                 "sample_sides": sample, "M_T": res.M[-1].ravel().tolist()}
    elif kind == "numpy":
        sys.path.insert(0, HERE)
        from numpy_reference import solve_numpy
        solve_numpy(_problem(3), 2000, seed=0)                                          # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            M, _ = solve_numpy(_problem(T), N, seed=0)
            walls.append(time.perf_counter() - t0)
        extra = {"M_T": M[-1].ravel().tolist()}
    else:
        raise ValueError(kind)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2          # GiB
    print(json.dumps({"kind": kind, "N": N, "T": T, "time": min(walls), "times": walls,
                      "rss_gib": rss, **extra}))


def measure(kind, N, T, repeats=1, history="float64"):
    out = subprocess.run([sys.executable, __file__, "--one", kind, str(N), str(T),
                          str(repeats), history],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def simulator_vs_streaming(d=2000, alpha=3.0, T=20):
    """Time per GD step of the simulator against two streaming BLAS passes over X."""
    import dmft
    from dmft.simulate import run_seed
    pr = _problem(T)
    n = int(alpha * d)
    run_seed(pr.replace(steps=1).to_dict(), 200, np.random.SeedSequence(0), n_test=1000)
    t0 = time.perf_counter()
    run_seed(pr.to_dict(), d, np.random.SeedSequence(1), n_test=1000)
    sim = (time.perf_counter() - t0)
    t0 = time.perf_counter()
    run_seed(pr.replace(steps=1).to_dict(), d, np.random.SeedSequence(1), n_test=1000)
    setup = time.perf_counter() - t0                       # data generation + 2 steps
    per_step_sim = (sim - setup) / (T - 1)
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((n, d)), rng.standard_normal((2, d))
    t0 = time.perf_counter()
    for _ in range(10):
        H = X @ W.T
        _ = H.T @ X
    stream = (time.perf_counter() - t0) / 10
    return {"d": d, "n": n, "per_step_sim": per_step_sim, "two_passes": stream,
            "ratio": per_step_sim / stream, "X_gib": X.nbytes / 2 ** 30, "dmft": dmft.__version__}


def history_bytes(N, T, p=2, kappa_bytes=8, eta_bytes=4):
    """Memory a step must read: each path's history once (kappa and eta, p numbers per time)."""
    return sum(t for t in range(T + 1)) * N * p * (kappa_bytes + eta_bytes)


def read_bandwidth(gib=1.0):
    """Best read bandwidth (bytes/s) of a parallel Numba sum over a large array, all cores.

    The sum is vectorised (``fastmath``: several partial sums in SIMD registers), so that the
    memory sets its pace.  (Until 2026-12-03 it was a plain sum, one chain of dependent
    additions per thread: that chain's latency held it to 28 GB/s on the 2-core machine, where
    the memory reads 45 to 57 GB/s; the records before that date used the lower figure, which
    flattered the sample side's ratio to the floor by a factor 1.6 to 2.)"""
    from numba import njit, prange

    @njit(parallel=True, fastmath=True)
    def total(x):
        s = 0.0
        for i in prange(x.shape[0]):
            s += x[i]
        return s
    x = np.ones(int(gib * 2 ** 30) // 8)
    total(x)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        total(x)
        best = min(best, time.perf_counter() - t0)
    return x.nbytes / best


def traffic_time(N, T, p=2, k=2, history="float64", sweeps=5):
    """Seconds for the memory traffic alone of a T-step sample side at N paths, summed over
    steps t = 0 .. T (each the best of ``sweeps``): a Numba kernel with the step kernel's layout
    (chunks of ``dmft.kernels.CHUNK`` paths, one contiguous block of history per chunk), threads
    and prefetching, that reads rows v < t of every chunk's kappa and nu, reads g, eps0, z* and
    y, writes g, kappa(t-1) and kappa(t-2), and computes nothing else (a sum to keep the reads).
    It is the time the sample side's bytes take to move in this design: the step kernel's time
    above it is its arithmetic not hidden behind the memory."""
    import numba
    from numba import njit, prange

    from dmft.kernels import CHUNK
    from dmft.memory import touched_zeros
    from dmft.prefetch import prefetch_row

    @njit(parallel=True, fastmath=True)
    def sweep(kap, nu, g, e, z, y, t):
        n_chunks, p = kap.shape[0], kap.shape[2]
        nt = numba.get_num_threads()
        per = (n_chunks + nt - 1) // nt
        out = np.zeros(nt)
        for th in prange(nt):
            s = 0.0
            c1 = min((th + 1) * per, n_chunks)
            for c in range(th * per, c1):
                i0 = c * CHUNK
                for v in range(t):
                    for l in range(p):
                        kr, er = kap[c, v, l], nu[c, v, l]
                        for ii in range(CHUNK):
                            s += kr[ii] + er[ii]
                for j in range(p):
                    gr, ee = g[j, i0:i0 + CHUNK], e[j, i0:i0 + CHUNK]
                    for ii in range(CHUNK):
                        s += gr[ii] + ee[ii] + y[i0 + ii]
                        gr[ii] = s * 1e-300
                for q in range(z.shape[0]):
                    zq = z[q, i0:i0 + CHUNK]
                    for ii in range(CHUNK):
                        s += zq[ii]
                for v in range(max(t - 2, 0), t):          # kappa(t-2) and kappa(t-1)
                    for j in range(p):
                        kr = kap[c, v, j]
                        for ii in range(CHUNK):
                            kr[ii] = s
                if c + 1 < c1:
                    for v in range(t):
                        for l in range(p):
                            prefetch_row(kap[c + 1, v, l], CHUNK)
                            prefetch_row(nu[c + 1, v, l], CHUNK)
            out[th] = s
        return out.sum()

    n_chunks = -(-N // CHUNK)
    n = n_chunks * CHUNK
    kap = touched_zeros((n_chunks, max(T, 1), p, CHUNK), np.dtype(history))
    nu = touched_zeros((n_chunks, max(T, 1), p, CHUNK), np.float32)
    g, e, z, y = (touched_zeros(s) for s in ((p, n), (p, n), (k, n), (n,)))
    sweep(kap, nu, g, e, z, y, min(T, 3))
    total = 0.0
    for t in range(T + 1):
        best = np.inf
        for _ in range(sweeps):
            t0 = time.perf_counter()
            sweep(kap, nu, g, e, z, y, t)
            best = min(best, time.perf_counter() - t0)
        total += best
    return total


def cached_pace(T, sizes=(8192, 32768), repeats=7):
    """Seconds per path of the sample side of a T-step solve with every history in the cache:
    the slope of the sample side's time (``Result.timings``, best of ``repeats`` solves each)
    between two path counts whose histories fit in the last-level cache (at 20 steps 8192 and
    32768 paths hold 3.9 MB and 15.7 MB of history).  The slope leaves out the costs per step
    that do not grow with the paths.  If the sample side of a large solve runs at this pace,
    the memory is not what holds it back: its arithmetic is.  Runs in the calling process."""
    import dmft
    dmft.solve(_problem(3), n_paths=2000, seed=0, progress=False)                  # warm-up
    best = []
    for N in sizes:
        best.append(min(dmft.solve(_problem(T), n_paths=N, seed=0, progress=False)
                        .timings["sample_side"] for _ in range(repeats)))
    return (best[1] - best[0]) / (sizes[1] - sizes[0])


def conditions():
    """The load average and the scheduling of this process, for a record: on a shared machine
    a benchmark run at real-time priority (``chrt -f 10``) has both cores to itself."""
    rt = hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) in (
        getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1))
    return (f"load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores), "
            + ("real-time priority (chrt)" if rt else "normal priority"))


def append_record(name, lines):
    """Print ``lines`` and append them to benchmarks/``name`` (a dated record)."""
    print("\n".join(lines))
    with open(os.path.join(HERE, name), "a") as fh:
        fh.write("\n".join(lines) + "\n")


def fit_exponent(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip() or "unknown"
    import numba
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__}; commit {commit}; "
            f"{datetime.date.today().isoformat()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=5, metavar=("KIND", "N", "T", "REPEATS", "HISTORY"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.one:
        return one(args.one[0], int(args.one[1]), int(args.one[2]), int(args.one[3]),
                   args.one[4])
    lines, rows = [], []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    say("# dmft performance benchmark")
    say()
    say(f"Machine: {machine()}.  Problem: {TARGET}, ReLU, p = k = 2, alpha = 3, eta = 0.2; "
        "wall time after a warm-up (compile excluded), peak RSS of the whole process.")
    say()
    say("| case | dmft.solve | plain numpy | speed-up | dmft peak RSS | numpy peak RSS |")
    say("|---|---|---|---|---|---|")
    cases = [(200_000, 20, 5), (1_000_000, 100, 1)]
    for N, T, rep in cases:
        d = measure("dmft", N, T, rep)
        if args.quick and N > 200_000:
            say(f"| {N:.0e} paths, {T} steps | {d['time']:.2f} s | (skipped) | - | "
                f"{d['rss_gib']:.2f} GiB | - |")
            rows.append((N, T, d, None))
            continue
        n = measure("numpy", N, T, rep)
        say(f"| {N:.0e} paths, {T} steps | {d['time']:.2f} s | {n['time']:.2f} s | "
            f"{n['time'] / d['time']:.1f}x | {d['rss_gib']:.2f} GiB | {n['rss_gib']:.2f} GiB |")
        rows.append((N, T, d, n))
    f32 = measure("dmft", 1_000_000, 100, 1, "float32")
    say(f"| 1e+06 paths, 100 steps, `history=\"float32\"` | {f32['time']:.2f} s | - | - | "
        f"{f32['rss_gib']:.2f} GiB | - |")
    say()
    say("Times are the best of 5 runs at 2e5 paths (one run at 1e6), each side in its own "
        "process.  Breakdown of dmft.solve (sample side = Numba kernels and random draws; weight "
        "side = exact linear algebra in numpy):")
    say()
    bw = read_bandwidth()
    for N, T, d, _ in rows:
        traffic = history_bytes(N, T)
        say(f"- {N:.0e} x {T}: sample side {d['sample_side']:.2f} s, weight side "
            f"{d['weight_side']:.2f} s; reading the histories once per step is "
            f"{traffic / 2 ** 30:.1f} GiB, {traffic / bw:.2f} s at the machine's read bandwidth "
            f"({bw / 1e9:.0f} GB/s, both cores): the sample side takes "
            f"{d['sample_side'] * bw / traffic:.1f} times that floor.")
    say()
    Ts, mT = [25, 50, 100], []
    for T in Ts:
        mT.append(measure("dmft", 200_000, T, 3))
    Ns, mN = [200_000, 400_000, 800_000, 1_600_000], []
    for N in Ns:
        mN.append(measure("dmft", N, 50, 3))

    def fmt(xs, ms, key):
        return ", ".join(f"{m[key]:.2f} s" for m in ms)
    say(f"Cost exponents (wall time of dmft.solve; in brackets the sample side alone, the part "
        f"that scales as n_paths T^2 - the weight side is a fixed cost per solve, "
        f"{mN[0]['weight_side']:.2f} s at 50 steps, and each step has a cost of about 1 ms "
        f"that does not grow with n_paths, so n_paths starts at 2e5):")
    say()
    say(f"- in T at 2e5 paths (T = 25, 50, 100: {fmt(Ts, mT, 'time')}): "
        f"T^{fit_exponent(Ts, [m['time'] for m in mT]):.2f} "
        f"(sample side {fmt(Ts, mT, 'sample_side')}: "
        f"T^{fit_exponent(Ts, [m['sample_side'] for m in mT]):.2f});")
    say(f"- in n_paths at 50 steps (N = 2e5, 4e5, 8e5, 1.6e6: {fmt(Ns, mN, 'time')}): "
        f"N^{fit_exponent(Ns, [m['time'] for m in mN]):.2f} "
        f"(sample side {fmt(Ns, mN, 'sample_side')}: "
        f"N^{fit_exponent(Ns, [m['sample_side'] for m in mN]):.2f}).")
    say()
    s = simulator_vs_streaming()
    say(f"Simulator: {1000 * s['per_step_sim']:.1f} ms per GD step at d = {s['d']}, "
        f"n = {s['n']} (float64, one seed, one process) against {1000 * s['two_passes']:.1f} ms "
        f"for two streaming BLAS passes over X (X W^T and G^T X): ratio {s['ratio']:.2f}.")
    say()
    with open(os.path.join(HERE, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
