"""Step size against gradient flow on the paper's case: GD at eta = 0.4, 0.2, 0.1, 0.05, 0.025,
each run to the same time eta * t = 10 (25 to 400 steps), and the extrapolation eta -> 0 of M, Q
and the losses at every common time, with error bars (dmft.gradient_flow).

    python examples/gradient_flow.py                      # ~2 minutes on 2 cores
    python examples/gradient_flow.py --n-paths 50000 --out /tmp/gf

Writes OUT/gradient_flow.png (the runs and the limit against eta t; each run minus the limit)
and OUT/gradient_flow.csv (the limit and its standard error at every common time).  The problem
is the [problem] table of examples/paper_tanh_he3.toml.  Long runs need many paths per replica:
the replicas' bias grows with the number of steps (docs: "Long horizons"), hence the default of
8 replicas of 25,000 paths.
"""
import argparse
import os
import sys

import numpy as np

import dmft
from dmft.config import problem_from_config, read_config
from dmft.gradient_flow import extrapolate, plot_gradient_flow, solve_same_time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(HERE, "paper_tanh_he3.toml"))
    parser.add_argument("--etas", default="0.4,0.2,0.1,0.05,0.025")
    parser.add_argument("--time", type=float, default=10.0, help="eta * steps of every run")
    parser.add_argument("--n-paths", type=int, default=200_000)
    parser.add_argument("--n-groups", type=int, default=8)
    parser.add_argument("--degree", type=int, default=2, help="of the fit in eta (1 or 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)
    try:
        problem = problem_from_config(read_config(args.config))
        etas = [float(e) for e in args.etas.split(",")]
        runs = solve_same_time(problem, etas, args.time, seed=args.seed, n_paths=args.n_paths,
                               n_groups=args.n_groups, progress=False)
        limit = extrapolate(runs, degree=args.degree)
    except dmft.ProblemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    plot_gradient_flow(runs, limit, path=os.path.join(args.out, "gradient_flow.png"))
    cols, head = [limit.tau], ["tau"]
    for name in ("M", "Q", "train_loss", "test_error"):
        v, e = limit.value[name].reshape(len(limit.tau), -1), \
            limit.error[name].reshape(len(limit.tau), -1)
        for j in range(v.shape[1]):
            suffix = f"_{j}" if v.shape[1] > 1 else ""
            cols += [v[:, j], e[:, j]]
            head += [f"{name}{suffix}", f"{name}{suffix}_err"]
    path = os.path.join(args.out, "gradient_flow.csv")
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=",".join(head), comments="")
    for r in runs:
        print(f"eta = {r.problem.eta:g}: {r.problem.steps} steps, {r.timings['total']:.1f} s, "
              f"test error at the end {r.test_error[-1]:.4f} +- {r.test_error_err[-1]:.4f}")
    print(f"gradient flow at tau = {limit.tau[-1]:g}: test error "
          f"{limit.value['test_error'][-1]:.4f} +- {limit.error['test_error'][-1]:.4f}")
    print(f"wrote {args.out}/gradient_flow.png and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
