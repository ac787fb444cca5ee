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
    """Plain-text table of the curves (one row per step) written next to the netCDF file
    (a DMFT Result or a SimResult)."""
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


def _load(args):
    from .config import problem_from_config, read_config
    cfg = read_config(args.config)
    base = os.path.join(args.out, os.path.splitext(os.path.basename(args.config))[0])
    os.makedirs(args.out, exist_ok=True)
    return cfg, problem_from_config(cfg), base


def _solve(cfg, problem, args, base):
    from .config import solver_options
    from .solver import solve
    opts = solver_options(cfg, seed=args.seed, n_paths=args.n_paths)
    opts.setdefault("seed", 0)
    scheduler, shards = getattr(args, "scheduler", None), getattr(args, "shards", None)
    if scheduler or shards:
        res = _solve_sharded(problem, opts, scheduler, shards)
    else:
        res = solve(problem, **opts)
    res.save(base + "_dmft.nc")
    _curves_csv(res, base + "_dmft.csv")
    return res


def _solve_sharded(problem, opts, scheduler, shards):
    """Monte Carlo paths sharded over Dask workers: an existing scheduler, or a local cluster."""
    from distributed import Client, LocalCluster

    from .solver import solve
    if shards is not None and shards < 1:
        from .errors import ProblemError
        raise ProblemError("shards", f"must be >= 1, got {shards}")
    if scheduler:
        with Client(scheduler) as client:
            return solve(problem, client=client, n_shards=shards, **opts)
    with LocalCluster(n_workers=shards, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        return solve(problem, client=client, n_shards=shards, **opts)


def _simulate(cfg, problem, args, base):
    from .config import simulation_options
    from .simulate import simulate
    opts = simulation_options(cfg, seed=args.seed, d=args.d, n_seeds=args.seeds)
    opts.setdefault("seed", 0)
    sim = simulate(problem, **opts)
    sim.save(base + "_sim.nc")
    _curves_csv(sim, base + "_sim.csv")
    return sim


def cmd_run(args):
    """`dmft run CONFIG`: solve the DMFT, write data, figure and summary."""
    cfg, problem, base = _load(args)
    res = _solve(cfg, problem, args, base)
    res.plot(base + "_dmft.png")
    print(res.summary())
    print(f"wrote {base}_dmft.nc, {base}_dmft.csv, {base}_dmft.png")
    return 0 if res.ok else 1


def cmd_simulate(args):
    """`dmft simulate CONFIG`: finite-size GD over seeds, write data, figure and summary."""
    cfg, problem, base = _load(args)
    sim = _simulate(cfg, problem, args, base)
    sim.plot(base + "_sim.png")
    print(sim.summary())
    print(f"wrote {base}_sim.nc, {base}_sim.csv, {base}_sim.png")
    return 0 if sim.ok else 1


def cmd_compare(args):
    """`dmft compare CONFIG [--schedules ...]`: DMFT and simulation, z-scores and overlay."""
    from .compare import compare
    from .io import atomic_write
    from .schedules import parse_schedule
    cfg, problem, base = _load(args)
    if args.schedules:
        names = [parse_schedule(x, "schedules").name for x in args.schedules.split(",") if x]
        problems = [problem.replace(schedule=name) for name in names]
    else:
        problems = [problem]
    cmps, tables, ok = [], [], True
    for pr in problems:
        stem = base if len(problems) == 1 else f"{base}_{pr.schedule}"
        res = _solve(cfg, pr, args, stem)
        sim = _simulate(cfg, pr, args, stem)
        cmp = compare(res, sim)
        cmps.append(cmp)
        ok = ok and res.ok and sim.ok
        print(res.summary())
        print(sim.summary())
        tables.append(f"schedule {pr.schedule}\n{cmp.table()}")
        print(tables[-1])
    if len(cmps) == 1:
        cmps[0].plot(base + "_compare.png")
    else:
        from .plotting import plot_schedules
        plot_schedules(cmps, base + "_compare.png")
    text = "\n\n".join(tables) + "\n"
    atomic_write(base + "_compare.txt", lambda tmp: open(tmp, "w").write(text))
    print(f"wrote data under {args.out}/, {base}_compare.png, {base}_compare.txt")
    return 0 if ok else 1


def cmd_validate(args):
    """`dmft validate [--quick]`: the validation suite; exit code 1 when a case fails."""
    from .validation import case_files, run_suite
    out = args.out or ("out/validation-quick" if args.quick else "validation/results")
    files = case_files(args.cases, args.cases_dir)
    if args.background:
        import subprocess
        os.makedirs(out, exist_ok=True)
        argv = [sys.executable, "-m", "dmft", "validate", "--out", out]
        argv += ["--quick"] if args.quick else []
        argv += ["--cases", args.cases] if args.cases else []
        argv += ["--cases-dir", args.cases_dir] if args.cases_dir else []
        log = os.path.join(out, "validate.log")
        with open(log, "ab") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        print(f"validation running in the background (pid {proc.pid}); follow it with "
              f"`tail -f {log}`; rerun the same command to resume after an interruption")
        return 0
    results = run_suite(files, out, quick=args.quick, progress=not args.no_progress)
    failed = [r["case"] for r in results if not r["passed"]]
    total = sum(r["runtime_s"]["total"] for r in results)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed "
          f"(compute {total:.0f} s); report: {os.path.join(out, 'report.md')}")
    return 1 if failed else 0


def build_parser():
    """The argparse parser of the `dmft` command (sub-commands and their options)."""
    parser = _Parser(prog="dmft", description="DMFT of gradient descent in two-layer networks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    helps = {"run": "solve the DMFT for a TOML config",
             "simulate": "finite-size GD simulations for a TOML config",
             "compare": "DMFT and simulations on one figure, with an agreement table"}
    for name, func in (("run", cmd_run), ("simulate", cmd_simulate), ("compare", cmd_compare)):
        cmd = sub.add_parser(name, help=helps[name])
        cmd.add_argument("config", help="TOML file with [problem], [solver], [simulation] tables")
        cmd.add_argument("--out", default="out", help="output folder (default: out)")
        cmd.add_argument("--seed", type=int, default=None, help="seed of DMFT and simulations")
        if name in ("run", "compare"):
            cmd.add_argument("--n-paths", type=int, default=None, dest="n_paths")
            cmd.add_argument("--scheduler", default=None,
                             help="shard the Monte Carlo paths over this Dask scheduler")
            cmd.add_argument("--shards", type=int, default=None,
                             help="shard the paths over a local Dask cluster of N workers")
        if name in ("simulate", "compare"):
            cmd.add_argument("--d", type=int, default=None, help="input dimension")
            cmd.add_argument("--seeds", type=int, default=None, help="number of seeds")
        if name == "compare":
            cmd.add_argument("--schedules", default=None,
                             help="comma-separated schedules to overlay, e.g. one-pass,multi-pass")
        cmd.set_defaults(func=func)
    val = sub.add_parser("validate", help="DMFT against simulations on the validation cases")
    val.add_argument("--quick", action="store_true", help="small d, few seeds, short horizons")
    val.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    val.add_argument("--cases-dir", default=None, dest="cases_dir",
                     help="folder of case files (default: validation/cases)")
    val.add_argument("--out", default=None, help="output folder (default: validation/results, "
                                                 "or out/validation-quick with --quick)")
    val.add_argument("--background", action="store_true", help="detach, log to OUT/validate.log")
    val.add_argument("--no-progress", action="store_true", dest="no_progress")
    val.set_defaults(func=cmd_validate)
    from .sweep import add_plot_arguments, add_sweep_arguments, run_plot_args, run_sweep_args
    sw = sub.add_parser("sweep", help="a grid of DMFT runs (and simulations) on Dask")
    add_sweep_arguments(sw)
    sw.set_defaults(func=run_sweep_args)
    ps = sub.add_parser("plot-sweep", help="figures of a sweep file")
    add_plot_arguments(ps)
    ps.set_defaults(func=run_plot_args)
    from .learnability import add_arguments, run_args
    learn = sub.add_parser("learnability", help="which directions one-pass and batch-reusing "
                                                "GD learn (THEORY.md section 4)")
    add_arguments(learn)
    learn.set_defaults(func=run_args)
    return parser


def main(argv=None):
    """Entry point: run a sub-command; input errors print one line and return 2."""
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
