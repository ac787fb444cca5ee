"""Measured behaviour of the agreement criterion (dmft.agreement) on null data with the correlation
structure of real validation cases (the null laws of tests/test_agreement.py), with more trials
than the tests: false-alarm rates at several levels (bootstrap and Sidak), detection of the bias
the power names, the suite calibration test under the null and under a bias, CPU time per
comparison.  Writes a markdown report to stdout:

    .venv/bin/python benchmarks/agreement.py [TRIALS_PER_CASE] > benchmarks/agreement.md
"""
import argparse
import os
import runpy
import time

import numpy as np
from scipy import stats

from dmft.agreement import LEVEL, agreement

HERE = os.path.dirname(os.path.abspath(__file__))
T = runpy.run_path(os.path.join(HERE, "..", "tests", "test_agreement.py"), run_name="bench")
LEVELS = (0.2, 0.05, 0.01, 0.002, LEVEL)


def main(trials):
    rng = np.random.default_rng(12345)
    cases = {n: T["NullCase"](n) for n in ("erf_student", "ridge_noise", "p4_init", "long_run")}
    print("# Agreement criterion: measured behaviour\n")
    print(f"`benchmarks/agreement.py {trials}`; null laws of `tests/test_agreement.py` (covariances "
          "of the replicas and seeds of real validation cases at their largest d, shrunk 10 % "
          "toward the diagonal); G = 32 replicas, S = 24 seeds.  p-values at levels >= 0.002 from "
          "5000 bootstrap draws, the verdict at the criterion's level from the default draws.\n")
    print("## False alarms (fraction of null comparisons rejected)\n")
    print("| case | m | trials | " + " | ".join(f"boot {lv:g}" for lv in LEVELS) + " | "
          + " | ".join(f"Sidak {lv:g}" for lv in LEVELS[:3]) + " | CPU s / comparison |")
    print("|---" * (4 + len(LEVELS) + 3) + "|")
    total_rej = total = 0
    for name, case in cases.items():
        ps, psid, rej = [], [], 0
        for _ in range(trials):
            a, rejected = T["_screened"](*case.draw(rng))
            ps.append(a.p_value)
            psid.append(a.p_sidak)
            rej += rejected
        t0 = time.process_time()
        a = agreement(case.dmft, case.sim)
        cpu = time.process_time() - t0
        ps, psid = np.array(ps), np.array(psid)
        cells = [f"{np.mean(ps <= lv):.4f}" for lv in LEVELS[:-1]] + [f"{rej / trials:.4f}"]
        cells += [f"{np.mean(psid <= lv):.4f}" for lv in LEVELS[:3]]
        print(f"| {name} | {a.n_compared} | {trials} | " + " | ".join(cells) + f" | {cpu:.2f} |")
        total_rej, total = total_rej + rej, total + trials
    ub = T["_clopper_pearson_upper"](total_rej, total)
    print(f"\nAt the level {LEVEL:g}: {total_rej} rejections in {total} null comparisons; "
          f"99 % Clopper-Pearson upper bound of the false-alarm rate {ub:.4f}.\n")
    print("## Detection of the bias the power names\n")
    print("| case | power b (median of 5) | detected at b | detected at b/2 | trials |")
    print("|---|---|---|---|---|")
    for name in ("erf_student", "ridge_noise"):
        case = cases[name]
        b = float(np.median([agreement(*case.draw(rng)).power for _ in range(5)]))
        n = max(100, trials // 5)
        hit = np.mean([not agreement(*case.draw(rng, bias=b)).passed for _ in range(n)])
        half = np.mean([not agreement(*case.draw(rng, bias=b / 2)).passed for _ in range(n)])
        print(f"| {name} | {b:.5f} | {hit:.3f} | {half:.3f} | {n} |")
    print("\n## Suite calibration (suites of 11 null cases, erf_student and ridge_noise "
          "alternating)\n")
    two = [cases["erf_student"], cases["ridge_noise"]]
    null = np.array([T["_suite_p"](two, rng).p_value for _ in range(max(150, trials // 4))])
    b = 0.5 * float(np.median([agreement(c.dmft, c.sim).power for c in two]))
    biased = np.array([T["_suite_p"](two, rng, bias=b).p_value for _ in range(50)])
    fw = np.mean([not agreement(*two[k % 2].draw(rng, bias=b)).passed for k in range(100)])
    print(f"- null: {len(null)} suites, Kolmogorov-Smirnov p-value against uniform "
          f"{stats.kstest(null, 'uniform').pvalue:.3f}, fraction <= 0.05: "
          f"{np.mean(null <= 0.05):.3f}, <= 0.01: {np.mean(null <= 0.01):.3f}")
    print(f"- every case biased by b = {b:.5f} (half of its power): median calibration p-value "
          f"{np.median(biased):.2e}, fraction <= {LEVEL:g}: {np.mean(biased <= LEVEL):.2f}; the "
          f"cases' own family-wise tests reject {fw:.2f} of such comparisons")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trials", nargs="?", type=int, default=1000,
                    help="trials per case (default 1000)")
    main(ap.parse_args().trials)
