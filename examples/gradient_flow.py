"""Step size against gradient flow on the paper's case: GD at eta = 0.4, 0.2, 0.1, 0.05, 0.025,
each run to the same time eta * t = 10 (25 to 400 steps), and the extrapolation eta -> 0 of M, Q
and the losses at every common time, with error bars (dmft.gradient_flow).

    python examples/gradient_flow.py                      # ~2 minutes on 2 cores
    python examples/gradient_flow.py --config my_study.toml --out /tmp/gf

The study is examples/gradient_flow.toml: the [problem] and [solver] tables of any config (the
learning rate and the steps are set per run) and a [gradient_flow] table (etas, time = eta *
steps, degree of the fit).  Writes OUT/gradient_flow.png (the runs and the limit against eta t;
each run minus the limit) and OUT/gradient_flow.csv (the limit and its standard error at every
common time).  Bad input: one line on stderr naming the field, exit 2.
"""
import argparse
import os
import sys
import tomllib

import numpy as np

import dmft
from dmft.config import check_tables, problem_from_config
from dmft.gradient_flow import extrapolate, plot_gradient_flow, solve_same_time

HERE = os.path.dirname(os.path.abspath(__file__))


def read_study(path):
    """The problem, the [gradient_flow] table (checked) and the solver options of a study."""
    try:
        with open(path, "rb") as fh:
            cfg = tomllib.load(fh)
    except OSError as exc:
        raise dmft.ProblemError("config", f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise dmft.ProblemError("config", f"{path} is not valid TOML: {exc}") from None
    study = {"etas": [0.4, 0.2, 0.1, 0.05, 0.025], "time": 10.0, "degree": 2,
             **cfg.pop("gradient_flow", {})}
    unknown = sorted(set(study) - {"etas", "time", "degree"})
    if unknown:
        raise dmft.ProblemError(unknown[0], "unknown [gradient_flow] key; known: etas, time, "
                                            "degree")
    etas = study["etas"]
    if not (isinstance(etas, list) and len(etas) >= 2 and all(
            isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0 for e in etas)):
        raise dmft.ProblemError("etas", f"expected a list of two or more positive learning "
                                        f"rates, got {etas!r}")
    if isinstance(study["time"], bool) or not isinstance(study["time"], (int, float)) \
            or not study["time"] > 0:
        raise dmft.ProblemError("time", f"expected eta * steps > 0, got {study['time']!r}")
    if study["degree"] not in (1, 2) or isinstance(study["degree"], bool):
        raise dmft.ProblemError("degree", f"the fit in eta is of degree 1 or 2, got "
                                          f"{study['degree']!r}")
    cfg = check_tables(cfg, path)
    return problem_from_config(cfg), study, dict(cfg.get("solver", {}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(HERE, "gradient_flow.toml"))
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)
    try:
        problem, study, solver = read_study(args.config)
        runs = solve_same_time(problem, study["etas"], study["time"], progress=False, **solver)
        limit = extrapolate(runs, degree=study["degree"])
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
