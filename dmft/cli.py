"""The ``dmft`` command line.  Errors in the input: one line on stderr, exit code 2."""
import argparse
import os
import sys

import numpy as np

from .errors import ProblemError
from .io import atomic_write


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"dmft: error: {message}", file=sys.stderr)
        sys.exit(2)


def _curves_csv(res, path):
    """Plain-text table of the curves (one row per step) written next to the netCDF file."""
    p, k = res.problem.p, res.problem.k
    cols = ["t", "train_loss", "train_loss_err", "test_error", "test_error_err"]
    data = [res.t, res.train_loss, res.train_loss_err, res.test_error, res.test_error_err]
    for j in range(p):
        for r in range(k):
            cols += [f"M_{j + 1}{r + 1}", f"M_{j + 1}{r + 1}_err"]
            data += [res.M[:, j, r], res.M_err[:, j, r]]
    for j in range(p):
        for l in range(j, p):
            cols += [f"Q_{j + 1}{l + 1}", f"Q_{j + 1}{l + 1}_err"]
            data += [res.Q[:, j, l], res.Q_err[:, j, l]]
    atomic_write(path, lambda tmp: np.savetxt(tmp, np.column_stack(data), delimiter=",",
                                              header=",".join(cols), comments=""))


def cmd_run(args):
    from .config import problem_from_config, read_config, solver_options
    from .solver import solve
    cfg = read_config(args.config)
    problem = problem_from_config(cfg)
    opts = solver_options(cfg, seed=args.seed, n_paths=args.n_paths)
    opts.setdefault("seed", 0)
    res = solve(problem, **opts)
    name = os.path.splitext(os.path.basename(args.config))[0]
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, name)
    res.save(base + "_dmft.nc")
    _curves_csv(res, base + "_dmft.csv")
    res.plot(base + "_dmft.png")
    print(res.summary())
    print(f"wrote {base}_dmft.nc, {base}_dmft.csv, {base}_dmft.png")
    return 0 if res.ok else 1


def build_parser():
    parser = _Parser(prog="dmft", description="DMFT of gradient descent in two-layer networks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="solve the DMFT for a TOML config")
    run.add_argument("config", help="TOML file with [problem] and optional [solver] tables")
    run.add_argument("--out", default="out", help="output folder (default: out)")
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--n-paths", type=int, default=None, dest="n_paths")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv=None):
    import matplotlib
    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ProblemError as exc:
        print(f"dmft: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dmft: interrupted", file=sys.stderr)
        return 130
