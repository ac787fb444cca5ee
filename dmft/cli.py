"""The ``dmft`` command line.

Exit codes (also in the README):

=====  ======================================================================================
0      success
1      the run finished but a check failed: a validation case (``validate``) or a
       ``learnability --check-dmft`` disagreement
2      bad input: one line on stderr, ``dmft: error: FIELD: what is wrong`` (a config value, a
       command-line option, a missing or malformed config file, an output folder that cannot
       be written, a run too large for the memory); nothing is computed
3      the dynamics diverged (``run``, ``simulate``, ``compare``): the partial result (the steps
       completed before the failure, NaN after) is written as usual, and one line on stderr,
       ``dmft: warning: ... diverged ...``, names the step
4      internal error (a bug): one line on stderr; set ``DMFT_TRACEBACK=1`` for the traceback
130    interrupted (Ctrl-C); files already written are complete (every write is atomic)
=====  ======================================================================================

``dmft sweep`` returns 0 when points diverge: diverged points are data, flagged in the sweep
file (``diverged``, ``status``, ``steps_completed``).
"""
import argparse
import os
import sys
import warnings

import numpy as np

from .errors import DivergenceWarning, KernelProjectionWarning, ProblemError
from .io import atomic_write, ensure_dir, write_text

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_DIVERGED, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


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
                                              header=",".join(cols), comments=""), "out")


def _load(args):
    """Config, problem and output stem: the config is checked and the output folder made
    (and probed for writing) before any work is done."""
    from .config import problem_from_config, read_config
    shards = getattr(args, "shards", None)
    if shards is not None and shards < 1:
        raise ProblemError("shards", f"must be >= 1, got {shards}")
    cfg = read_config(args.config)
    problem = problem_from_config(cfg)
    base = os.path.join(args.out, os.path.splitext(os.path.basename(args.config))[0])
    ensure_dir(args.out, "out")
    return cfg, problem, base


def _solver_options(cfg, problem, args):
    """Options of :func:`dmft.solve` from [solver] and the flags, checked before any work."""
    import inspect

    from .config import solver_options
    from .solver import _check_solver_args, solve
    opts = solver_options(cfg, seed=args.seed, n_paths=getattr(args, "n_paths", None))
    opts.setdefault("seed", 0)
    full = {k: v.default for k, v in inspect.signature(solve).parameters.items()
            if v.default is not inspect.Parameter.empty}
    full.update(opts)
    sharded = bool(getattr(args, "scheduler", None) or getattr(args, "shards", None))
    _check_solver_args(problem, full["n_paths"], full["seed"], full["response"],
                       full["n_groups"], full["stein_rtol"], full["method"], sharded)
    return opts


def _simulation_options(cfg, problem, args):
    """Options of :func:`dmft.simulate` from [simulation] and the flags, checked before any
    work."""
    from .config import simulation_options
    from .simulate import check_simulation_args
    opts = simulation_options(cfg, seed=args.seed, d=getattr(args, "d", None),
                              n_seeds=getattr(args, "seeds", None))
    opts.setdefault("seed", 0)
    check_simulation_args(problem, **{k: v for k, v in opts.items() if k != "progress"})
    return opts


def _solve(problem, opts, args, base):
    from .solver import solve
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
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ProblemError("scheduler", f"cannot connect to {scheduler}: {exc}") from None
        with client:
            return solve(problem, client=client, n_shards=shards, **opts)
    with LocalCluster(n_workers=shards, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        return solve(problem, client=client, n_shards=shards, **opts)


def _simulate(problem, opts, base):
    from .simulate import simulate
    sim = simulate(problem, **opts)
    sim.save(base + "_sim.nc")
    _curves_csv(sim, base + "_sim.csv")
    return sim


def _outcome(runs):
    """Exit code of run/simulate/compare: 3 (and one line on stderr per diverged run, naming
    the step) when a run diverged, its partial result having been written; 0 otherwise."""
    code = EXIT_OK
    for what, run, path in runs:
        if not run.ok:
            kept = f"steps 0..{run.steps_completed}" if run.steps_completed >= 0 else \
                "no step completed"
            print(f"dmft: warning: {what} diverged ({run.message}); partial result "
                  f"({kept}) written to {path}", file=sys.stderr)
            code = EXIT_DIVERGED
    return code


def cmd_run(args):
    """`dmft run CONFIG`: solve the DMFT, write data, figure and summary."""
    cfg, problem, base = _load(args)
    opts = _solver_options(cfg, problem, args)
    res = _solve(problem, opts, args, base)
    res.plot(base + "_dmft.png")
    print(res.summary())
    print(f"wrote {base}_dmft.nc, {base}_dmft.csv, {base}_dmft.png")
    return _outcome([("DMFT", res, base + "_dmft.nc")])


def cmd_simulate(args):
    """`dmft simulate CONFIG`: finite-size GD over seeds, write data, figure and summary."""
    cfg, problem, base = _load(args)
    opts = _simulation_options(cfg, problem, args)
    sim = _simulate(problem, opts, base)
    sim.plot(base + "_sim.png")
    print(sim.summary())
    print(f"wrote {base}_sim.nc, {base}_sim.csv, {base}_sim.png")
    return _outcome([("simulation", sim, base + "_sim.nc")])


def cmd_compare(args):
    """`dmft compare CONFIG [--schedules ...]`: DMFT and simulation, z-scores and overlay."""
    from .compare import compare
    from .schedules import parse_schedule
    cfg, problem, base = _load(args)
    if args.schedules is not None:
        names = [parse_schedule(x.strip(), "schedules").name
                 for x in args.schedules.split(",") if x.strip()]
        if not names:
            raise ProblemError("schedules", f"no schedule in {args.schedules!r}")
        problems = [problem.replace(schedule=name) for name in names]
    else:
        problems = [problem]
    plans = [(pr, _solver_options(cfg, pr, args), _simulation_options(cfg, pr, args))
             for pr in problems]
    cmps, tables, runs = [], [], []
    for pr, sopts, mopts in plans:
        stem = base if len(problems) == 1 else f"{base}_{pr.schedule}"
        res = _solve(pr, sopts, args, stem)
        sim = _simulate(pr, mopts, stem)
        cmp = compare(res, sim)
        cmps.append(cmp)
        runs += [(f"DMFT ({pr.schedule})", res, stem + "_dmft.nc"),
                 (f"simulation ({pr.schedule})", sim, stem + "_sim.nc")]
        print(res.summary())
        print(sim.summary())
        tables.append(f"schedule {pr.schedule}\n{cmp.table()}")
        print(tables[-1])
    if len(cmps) == 1:
        cmps[0].plot(base + "_compare.png")
    else:
        from .plotting import plot_schedules
        plot_schedules(cmps, base + "_compare.png")
    write_text(base + "_compare.txt", "\n\n".join(tables) + "\n", "out")
    print(f"wrote data under {args.out}/, {base}_compare.png, {base}_compare.txt")
    return _outcome(runs)


def cmd_validate(args):
    """`dmft validate [--quick]`: the validation suite; exit code 1 when a case fails."""
    from .validation import case_files, run_suite
    out = args.out or ("out/validation-quick" if args.quick else "validation/results")
    files = case_files(args.cases, args.cases_dir)
    if args.background:
        import subprocess
        ensure_dir(out, "out")
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


def _one_line(text):
    return " ".join(str(text).split())


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on one line, without the source line: ``dmft: warning: ...``."""
    name = "" if category in (DivergenceWarning, KernelProjectionWarning, UserWarning) else \
        f" ({category.__name__})"
    print(f"dmft: warning: {_one_line(message)}{name}", file=file or sys.stderr)


def main(argv=None):
    """Entry point: run a sub-command and return its exit code (module docstring): input
    errors print one line ``dmft: error: FIELD: ...`` on stderr and return 2."""
    import matplotlib
    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            # a diverged run is reported once, with the file its partial result went to
            warnings.simplefilter("ignore", DivergenceWarning)
            return args.func(args)
    except ProblemError as exc:
        print(f"dmft: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except MemoryError as exc:
        print(f"dmft: error: memory: out of memory ({_one_line(exc) or 'MemoryError'}); lower "
              f"n_paths, steps, d or n_seeds", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("dmft: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:                     # noqa: BLE001 (a bug: say so in one line)
        if os.environ.get("DMFT_TRACEBACK"):
            raise
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()] or [""]
        what = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        print(f"dmft: internal error (please report it): {type(exc).__name__}: "
              f"{_one_line(what)[:500]}; rerun with DMFT_TRACEBACK=1 for the traceback",
              file=sys.stderr)
        return EXIT_INTERNAL
