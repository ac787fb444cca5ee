"""Wall time of the paper's case (tanh(z1 + He3(z2)), ReLU, p = k = 2, alpha = 3, eta = 0.2,
6 steps) at 10^6 paths, compilation excluded (a warm-up solve runs first).

    .venv/bin/python benchmarks/paper_case.py
"""
import resource
import time

import dmft


def main():
    pr = dmft.Problem("tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2, steps=6)
    t0 = time.perf_counter()
    dmft.solve(pr, n_paths=1000, n_groups=8, seed=0)            # compile / load the cache
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = dmft.solve(pr, n_paths=1_000_000, seed=0)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"warm-up (compile or cache load): {warm:.2f} s")
    print(f"paper case, 1e6 paths, 6 steps: {wall:.2f} s "
          f"(sample side {res.timings['sample_side']:.2f} s), peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
