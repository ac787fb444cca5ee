"""What each ``dmft`` sub-command does, given its parsed arguments (the parser and the exit
codes are in :mod:`dmft.cli`).  Every command checks all its input (the whole config, the
flags, the output folder) before any work and writes every file atomically."""
import os
import sys
from dataclasses import replace

import numpy as np

from .errors import ProblemError
from .io import atomic_write, ensure_dir, output_dir, write_text
from .options import SIMULATION, SOLVER, Option

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_DIVERGED, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141            # 128 + SIGPIPE, as a shell reports a killed writer


#: ``dmft exact --order``: Gauss nodes per coordinate (checked further by two_steps)
ORDER = Option("order", "int", None, "Gauss nodes per coordinate", minimum=1)


class _PendingClient:
    """Stands for the Dask client a sharded run will connect to while its options are
    checked (before any cluster is started)."""

    submit = scheduler_info = None


def flag_values(args, options):
    """The values of the option flags of ``options`` (an OptionSet) given on the command line,
    parsed and checked (``ProblemError`` naming the option); absent flags are left out."""
    out = {}
    for o in options:
        raw = getattr(args, "opt_" + o.name, None)
        if raw is not None:
            out[o.name] = raw if isinstance(raw, bool) else o.parse(raw)
    return out


def int_flag(name, text, minimum):
    """An integer flag (``1e6`` and ``1_000`` accepted), ProblemError naming ``name``."""
    return Option(name, "int", None, "", minimum=minimum).parse(text)


def load(args):
    """The checked :class:`~dmft.config.Config` of a run/simulate/compare command (flags
    override the tables) and the output stem; the output folder is made (and probed for
    writing) only once everything is checked."""
    from .config import check_config, read_config
    cfg = read_config(args.config)
    solver, sim = flag_values(args, SOLVER), flag_values(args, SIMULATION)
    scheduler, shards = getattr(args, "scheduler", None), getattr(args, "shards", None)
    if scheduler is not None or shards is not None:
        if shards is not None:          # the flag's name in its messages
            solver["n_shards"] = replace(SOLVER["n_shards"], name="shards").parse(shards)
        solver["client"] = _PendingClient()
    try:
        conf = check_config(cfg, solver=solver, simulation=sim)
    except ProblemError as exc:        # the flag's name, not the option's
        if exc.field == "n_shards":
            raise ProblemError("shards", exc.detail) from None
        raise
    base = os.path.join(args.out, os.path.splitext(os.path.basename(args.config))[0])
    return conf, base


#: the CSV's number format: 10 significant digits (the statistical errors are many orders of
#: magnitude larger than the rounding; the netCDF file holds the exact values)
CSV_FLOAT = "%.10g"


def curves_csv(res, path, errors=None, err="_err"):
    """Plain-text table of the curves (one row per step) next to the netCDF file (a DMFT
    Result, a SimResult, or the exact two steps): a header row of column names, then t as an
    integer and every other column in :data:`CSV_FLOAT` (``nan`` after a divergence).  Each
    quantity X is followed by its error (``errors[X]``, by default ``res.X_err``), named with
    the suffix ``err``.  The class error (+-1 labels) and a trained second layer a_j(t) get
    columns when the result has them."""
    p, k = res.problem.p, res.problem.k
    e = (lambda name: errors[name]) if errors is not None else \
        (lambda name: getattr(res, name + "_err"))
    t = getattr(res, "t", np.arange(len(res.train_loss)))
    cols, data = ["t"], [t]
    has = (lambda name: getattr(res, name, None) is not None
           and (errors is None or name in errors))
    for name in ("train_loss", "test_error", "class_error"):
        if has(name):
            cols += [name, name + err]
            data += [getattr(res, name), e(name)]
    if getattr(res.problem, "readout", "fixed") == "trained" and has("a"):
        for j in range(p):                       # the trained second layer a_j(t)
            cols += [f"a_{j + 1}", f"a_{j + 1}{err}"]
            data += [np.asarray(res.a)[:, j], np.asarray(e("a"))[:, j]]
    for j in range(p):
        for r in range(k):
            cols += [f"M_{j + 1}{r + 1}", f"M_{j + 1}{r + 1}{err}"]
            data += [res.M[:, j, r], e("M")[:, j, r]]
    for j in range(p):
        for l in range(j, p):
            cols += [f"Q_{j + 1}{l + 1}", f"Q_{j + 1}{l + 1}{err}"]
            data += [res.Q[:, j, l], e("Q")[:, j, l]]
    fmt = ["%d"] + [CSV_FLOAT] * (len(cols) - 1)
    atomic_write(path, lambda tmp: np.savetxt(tmp, np.column_stack(data), fmt=fmt, delimiter=",",
                                              header=",".join(cols), comments=""), "out")


def solve_and_save(problem, opts, args, base):
    """Solve (sharded over Dask when asked) and write ``base_dmft.nc`` and ``.csv``."""
    from .solver import solve
    if isinstance(opts["client"], _PendingClient):
        from .cluster import connect
        with connect(scheduler=args.scheduler, n_workers=opts["n_shards"]) as client:
            res = solve(problem, **dict(opts, client=client))
    else:
        res = solve(problem, **opts)
    res.save(base + "_dmft.nc")
    curves_csv(res, base + "_dmft.csv")
    return res


def simulate_and_save(problem, opts, base):
    """Simulate and write ``base_sim.nc`` and ``.csv``."""
    from .simulate import simulate
    sim = simulate(problem, **opts)
    sim.save(base + "_sim.nc")
    curves_csv(sim, base + "_sim.csv")
    return sim


def outcome(runs):
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


def _stem(base, conf, confs):
    return base if len(confs) == 1 else f"{base}_{getattr(conf, 'problem', conf).schedule}"


def cmd_run(args):
    """``dmft run CONFIG``: solve the DMFT, write data, figure and summary."""
    conf, base = load(args)
    with output_dir(args.out):
        res = solve_and_save(conf.problem, conf.solver, args, base)
    res.plot(base + "_dmft.png")
    print(res.summary())
    print(f"wrote {base}_dmft.nc, {base}_dmft.csv, {base}_dmft.png")
    return outcome([("DMFT", res, base + "_dmft.nc")])


def cmd_simulate(args):
    """``dmft simulate CONFIG``: finite-size GD over seeds, write data, figure and summary."""
    conf, base = load(args)
    with output_dir(args.out):
        sim = simulate_and_save(conf.problem, conf.simulation, base)
    sim.plot(base + "_sim.png")
    print(sim.summary())
    print(f"wrote {base}_sim.nc, {base}_sim.csv, {base}_sim.png")
    return outcome([("simulation", sim, base + "_sim.nc")])


def cmd_compare(args):
    """``dmft compare CONFIG [--schedules ...]``: DMFT and simulation, agreement and figure."""
    from .compare import compare
    from .config import check_config
    from .schedules import parse_schedule
    conf, base = load(args)
    confs = [conf]
    if args.schedules is not None:
        names = [parse_schedule(x.strip(), "schedules").name
                 for x in args.schedules.split(",") if x.strip()]
        if not names:
            raise ProblemError("schedules", f"no schedule in {args.schedules!r}")
        confs = [check_config(conf.tables, solver=conf.solver, simulation=conf.simulation,
                              problem=conf.problem.replace(schedule=name)) for name in names]
    cmps, tables, runs = [], [], []
    with output_dir(args.out):
        pairs = [(c.problem, solve_and_save(c.problem, c.solver, args, _stem(base, c, confs)),
                  simulate_and_save(c.problem, c.simulation, _stem(base, c, confs)))
                 for c in confs]
    for pr, res, sim in pairs:
        stem = _stem(base, pr, confs)
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
    return outcome(runs)


def cmd_exact(args):
    """``dmft exact CONFIG``: M, Q and the losses at t = 0, 1, 2 by quadrature, as a table on
    stdout and ``<name>_exact.csv`` (each quantity followed by its stated accuracy)."""
    from .exact import two_steps
    conf, base = load(args)
    order = None
    if args.order is not None:
        order = [ORDER.parse(x) for x in args.order.split(",")]
        if len(order) not in (1, 2):
            raise ProblemError("order", f"expected N or OUTER,INNER, got {args.order!r}")
        order = order[0] if len(order) == 1 else tuple(order)
    with output_dir(args.out):
        ex = two_steps(conf.problem, order=order)
        curves_csv(ex, base + "_exact.csv", errors=ex.accuracy, err="_acc")
    print(exact_table(ex))
    print(f"wrote {base}_exact.csv")
    return EXIT_OK


def exact_table(ex):
    """The exact two steps as a text table (value +- stated accuracy)."""
    pr = ex.problem
    lines = [f"exact first two steps (quadrature, no sampling): {pr!r}",
             " t   " + "  ".join(f"{h:>22s}" for h in ["train_loss", "test_error"] +
                                  [f"M_{j + 1}{r + 1}" for j in range(pr.p) for r in range(pr.k)]
                                  + [f"Q_{j + 1}{l + 1}" for j in range(pr.p)
                                     for l in range(j, pr.p)])]
    for t in range(3):
        vals = [(ex.train_loss[t], ex.accuracy["train_loss"][t]),
                (ex.test_error[t], ex.accuracy["test_error"][t])]
        vals += [(ex.M[t, j, r], ex.accuracy["M"][t, j, r]) for j in range(pr.p)
                 for r in range(pr.k)]
        vals += [(ex.Q[t, j, l], ex.accuracy["Q"][t, j, l]) for j in range(pr.p)
                 for l in range(j, pr.p)]
        lines.append(f"{t:2d}   " + "  ".join(f"{v:>+13.8f} +- {a:6.1e}" for v, a in vals))
    return "\n".join(lines)


def cmd_validate(args):
    """``dmft validate [--quick]``: the validation suite; exit code 1 when a case or the
    calibration test fails."""
    from .config import read_config
    from .validation import case_config, case_files, run_suite
    out = args.out or ("out/validation-quick" if args.quick else "validation/results")
    files = case_files(args.cases, args.cases_dir)
    for path in files:                  # every case checked before any work or folder
        case_config(read_config(path), args.quick)
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
        return EXIT_OK
    summary = run_suite(files, out, quick=args.quick, progress=not args.no_progress)
    results = list(summary["cases"].values())
    failed = [r["case"] for r in results if not r["passed"]]
    total = sum(r["runtime_s"]["total"] for r in results)
    cal = summary["calibration"]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed; calibration p-value "
          f"{cal['p_value']:.3g} ({'pass' if cal['passed'] else 'FAIL'}) (compute {total:.0f} s); "
          f"report: {os.path.join(out, 'report.md')}")
    return EXIT_OK if summary["passed"] else EXIT_FAILED


def cmd_sweep(args):
    """``dmft sweep``: prints a summary; 0 also when points diverge (they are data)."""
    from .sweep import run_sweep
    out = args.out or os.path.join(
        "out", os.path.splitext(os.path.basename(args.config))[0] + "_sweep.nc")
    workers = None if args.workers is None else int_flag("workers", args.workers, 1)
    if workers is not None and args.scheduler is not None:
        raise ProblemError("workers", "sizes a local cluster; not with --scheduler")
    run = run_sweep(args.config, args.param, schedules=args.schedules, simulate=args.simulate,
                    out=out, scheduler=args.scheduler, n_workers=workers,
                    progress=not args.no_progress)
    print(run.summary())
    return EXIT_OK


def cmd_plot_sweep(args):
    """``dmft plot-sweep FILE.nc``: writes the figure."""
    from .sweep import load_sweep
    from .sweep_plot import plot_sweep
    out = args.out or os.path.splitext(args.file)[0] + ".png"
    ds = load_sweep(args.file)
    with output_dir(os.path.dirname(out) or "."):
        plot_sweep(ds, out)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_learnability(args):
    """``dmft learnability EXPR``: 1 if the DMFT check disagrees, else 0."""
    import json

    from .learnability import learnability
    k, order = (None if x is None else int_flag(name, x, 1)
                for name, x in (("k", args.k), ("order", args.order)))
    res = learnability(args.expr, k=k, order=order, check_dmft=args.check_dmft)
    print(json.dumps(res.to_dict(), indent=1) if args.json else res.summary())
    return EXIT_FAILED if res.dmft_check is not None and not res.dmft_check["agrees"] \
        else EXIT_OK
