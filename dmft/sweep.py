"""Parameter sweeps: a grid of DMFT solves (and optionally simulations) on dask.distributed,
cached point by point so that an interrupted sweep resumes, gathered in one xarray Dataset.

Every point is a plain :func:`dmft.solve` with the config's ``[solver]`` options and the *same*
seed (a point equals a stand-alone solve with that seed), plus :func:`dmft.simulate` with the
``[simulation]`` options (n_jobs = 1) when asked.  Decisions recorded here:

* Sweepable: the Problem fields that keep the array shapes (``alpha eta ridge noise activation
  target schedule``; a swept target must keep k) and the solver fields ``n_paths n_groups seed
  response``; ``p k steps a M0 Q0`` are refused.  A missing seed means 0, as for ``dmft run``.
* Cache: the client writes each finished point atomically to ``<out>.points/<hash>.npz``, hash
  of the full point configuration (problem dict, solver and simulation options, version); a
  rerun submits only points without a valid file.  The folder is kept (delete it at will).
* A diverging point is kept and flagged (``diverged``, ``status``, ``steps_completed``, NaN
  after the failure step); bad input raises ProblemError, before any work when possible.
* One task per point, one Numba thread each (``threads_per_point``); the default cluster is a
  LocalCluster of min(CPUs, missing points) one-thread processes (scripts that start it need
  the usual ``if __name__ == "__main__":`` guard).
"""
import contextlib
import hashlib
import inspect
import itertools
import json
import os
import uuid
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np

from . import __version__
from .errors import DivergenceWarning, ProblemError

PROBLEM_FIELDS = ("alpha", "eta", "ridge", "noise", "activation", "target", "schedule")
SOLVER_FIELDS = ("n_paths", "n_groups", "seed", "response")
SWEEPABLE = PROBLEM_FIELDS + SOLVER_FIELDS
SHAPE_FIELDS = ("p", "k", "steps", "a", "M0", "Q0")
_STRINGS = ("activation", "target", "schedule", "response")
_INTEGERS = ("n_paths", "n_groups", "seed")
_SOLVE_KEYS = ("n_paths", "seed", "response", "n_groups", "stein_rtol")
_SIM_KEYS = ("d", "n_seeds", "seed", "dtype", "n_test")
OBSERVABLES = ("M", "Q", "overlap", "train_loss", "test_error")
_DIMS = {"M": ("t", "neuron", "direction"), "overlap": ("t", "neuron", "direction"),
         "Q": ("t", "neuron", "neuron2"), "train_loss": ("t",), "test_error": ("t",)}
_ARRAYS = tuple(n + s for n in OBSERVABLES for s in ("", "_err"))


# ---------------------------------------------------------------------- parameters
def _value(name, x):
    """One swept value, converted to the field's type (strings from the command line)."""
    from .activations import get_activation
    from .schedules import parse_schedule
    if name in _STRINGS:
        if not isinstance(x, str) or not x.strip():
            raise ProblemError("param", f"{name}: expected a non-empty name, got {x!r}")
        canon = {"schedule": lambda v: parse_schedule(v, "schedule").name,
                 "activation": lambda v: get_activation(v).name}
        return canon.get(name, str)(x.strip())
    ok = isinstance(x, (str, int, float, np.integer, np.floating)) and not isinstance(x, bool)
    try:
        v = float(x) if ok else None
    except ValueError:
        v = None
    if v is None or not np.isfinite(v) or (name in _INTEGERS and not (
            v.is_integer() and abs(v) < 2 ** 63)):
        kind = "an integer below 2^63" if name in _INTEGERS else "a finite number"
        raise ProblemError("param", f"{name}: expected {kind}, got {x!r}")
    return int(v) if name in _INTEGERS else v


def _check_name(name):
    if name in SHAPE_FIELDS:
        raise ProblemError(name, "cannot be swept: it changes the shapes of the arrays "
                                 "(run one sweep per value instead)")
    if name not in SWEEPABLE:
        raise ProblemError("param", f"unknown parameter {name!r}; sweepable: "
                                    f"{', '.join(SWEEPABLE)}")


def parse_param(text):
    """Parse one ``--param`` specification.

    Parameters
    ----------
    text : str
        ``"NAME=START:STOP:NUM"`` (``numpy.linspace``), ``"NAME=START:STOP:NUM:log"``
        (``numpy.geomspace``) or ``"NAME=V1,V2,..."`` (a list; names for string fields).

    Returns
    -------
    (str, list)
        The field and its values (floats; ints for n_paths, n_groups, seed; strings).
        ProblemError on ``"param"`` for bad syntax or an unknown name, on the field itself
        for the fields that cannot be swept (p, k, steps, a, M0, Q0).
    """
    if not isinstance(text, str) or "=" not in text:
        raise ProblemError("param", f"expected NAME=VALUES (e.g. eta=0.05:2.0:40, "
                                    f"eta=0.01:1:20:log, alpha=1,2,4), got {text!r}")
    name, _, spec = (s.strip() for s in text.partition("="))
    _check_name(name)
    if not spec:
        raise ProblemError("param", f"{name}: no values given")
    if ":" in spec:
        if name in _STRINGS:
            raise ProblemError("param", f"{name} takes a list of names (a,b,...), not a range")
        parts = [s.strip() for s in spec.split(":")]
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ("lin", "log")):
            raise ProblemError("param", f"{name}: a range is START:STOP:NUM or "
                                        f"START:STOP:NUM:log, got {spec!r}")
        start, stop = (_value("range", s) for s in parts[:2])
        num = int(parts[2]) if parts[2].isdigit() else 0
        if num < 1:
            raise ProblemError("param", f"{name}: NUM must be a positive integer, "
                                        f"got {parts[2]!r}")
        log = len(parts) == 4 and parts[3] == "log"
        if log and (start <= 0 or stop <= 0):
            raise ProblemError("param", f"{name}: a log range needs START, STOP > 0")
        grid = (np.geomspace if log else np.linspace)(start, stop, num)
        values = [_value(name, float(np.round(v)) if name in _INTEGERS else float(v))
                  for v in grid]
    else:
        items = [s.strip() for s in spec.split(",")]
        if any(not s for s in items):
            raise ProblemError("param", f"{name}: empty item in {spec!r}")
        values = [_value(name, s) for s in items]
    return name, _unique(name, values)


def _unique(name, values):
    if len(set(values)) != len(values):
        raise ProblemError("param", f"{name}: repeated values in {values}")
    return list(values)


def normalize_params(params):
    """``params`` as a list of (name, values): accepts one string, a list of strings and/or
    (name, values) pairs, or a dict {name: values}."""
    params = [params] if isinstance(params, str) else (params or [])
    out = []
    for item in (params.items() if isinstance(params, dict) else params):
        if isinstance(item, str):
            name, values = parse_param(item)
        else:
            name, values = item
            _check_name(name)
            values = [values] if isinstance(values, (str, int, float)) else list(values)
            if not values:
                raise ProblemError("param", f"{name}: no values given")
            values = _unique(name, [_value(name, v) for v in values])
        if name in [n for n, _ in out]:
            raise ProblemError("param", f"{name} is swept twice")
        out.append((name, values))
    return out


# ---------------------------------------------------------------------- points
def _defaults(func, keys):
    sig = inspect.signature(func).parameters
    return {k: sig[k].default for k in keys if k in sig}


def _options(cfg, simulate):
    from .config import simulation_options, solver_options
    from .simulate import simulate as sim_func
    from .solver import solve
    solver = _defaults(solve, _SOLVE_KEYS)
    solver.update({k: v for k, v in solver_options(cfg).items() if k in _SOLVE_KEYS})
    solver["seed"] = 0 if solver.get("seed") is None else solver["seed"]
    sim = None
    if simulate:
        sim = _defaults(sim_func, _SIM_KEYS)
        sim.update({k: v for k, v in simulation_options(cfg).items() if k in _SIM_KEYS})
        sim["seed"] = 0 if sim.get("seed") is None else sim["seed"]
    return solver, sim


def _point(base, solver, sim, changes):
    """The full configuration of one point and its hash (validated here, before any work)."""
    from . import solver as solver_module
    pch = {k: v for k, v in changes.items() if k in PROBLEM_FIELDS}
    problem = base.replace(**pch) if pch else base
    if (problem.p, problem.k) != (base.p, base.k):
        raise ProblemError("target", f"{problem.target.expr!r} has k = {problem.k} but the sweep "
                                     f"needs k = {base.k}; set k in [problem]")
    sopts = dict(solver, **{k: v for k, v in changes.items() if k in SOLVER_FIELDS})
    check = getattr(solver_module, "_check_solver_args", None)
    if check is not None:
        check(problem, sopts["n_paths"], sopts["seed"], sopts["response"], sopts["n_groups"],
              sopts["stein_rtol"])
    key = json.dumps({"problem": problem.to_dict(), "solver": sopts, "simulation": sim,
                      "version": __version__}, sort_keys=True, separators=(",", ":"))
    return {"key": key, "hash": hashlib.sha256(key.encode()).hexdigest()[:24],
            "problem": problem.to_dict(), "solver": sopts, "simulation": sim}


def _completed(M, Q):
    good = np.isfinite(M).all(axis=(1, 2)) & np.isfinite(Q).all(axis=(1, 2))
    return len(good) - 1 if good.all() else int(np.argmin(good)) - 1


def _run_point(spec, threads=1):
    """Worker task: solve (and simulate) one point.  Errors come back as data (the traceback of
    an unexpected one is kept for the client)."""
    import traceback
    try:
        import numba
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        from .problem import Problem
        from .simulate import simulate
        from .solver import solve
        problem = Problem.from_dict(spec["problem"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)   # diverged points are data
            res = solve(problem, progress=False, **spec["solver"])
        out = {name: np.asarray(getattr(res, name)) for name in _ARRAYS}
        out.update(status=res.status, message=res.message,
                   steps_completed=int(res.steps_completed))
        if spec["simulation"] is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DivergenceWarning)
                sim = simulate(problem, n_jobs=1, progress=False, **spec["simulation"])
            out.update({"sim_" + n: np.asarray(getattr(sim, n)) for n in _ARRAYS})
            out.update(sim_status=sim.status, sim_message=sim.message,
                       sim_steps_completed=_completed(sim.M, sim.Q))
        return out
    except ProblemError as exc:
        return {"error": [exc.field, str(exc)[len(exc.field) + 2:]]}
    except Exception:                                     # noqa: BLE001 (reported on the client)
        return {"error": [None, traceback.format_exc()]}


def _write_point(cache, spec, out):
    from .io import atomic_write
    arrays = {k: v for k, v in out.items() if isinstance(v, np.ndarray)}
    meta = dict({k: v for k, v in out.items() if k not in arrays}, key=spec["key"])
    atomic_write(os.path.join(cache, spec["hash"] + ".npz"),
                 lambda tmp: np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays), "out")


def _read_point(cache, spec):
    """The cached result of a point, or None if absent, unreadable or for another config."""
    try:
        with np.load(os.path.join(cache, spec["hash"] + ".npz"), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.pop("key", None) != spec["key"]:
                return None
            out = {k: z[k] for k in z.files if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    need = _ARRAYS + (tuple("sim_" + n for n in _ARRAYS) if spec["simulation"] else ())
    return dict(out, **meta) if all(n in out for n in need) else None


# ---------------------------------------------------------------------- execution
@contextlib.contextmanager
def _connect(scheduler, client, n_workers):
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            own = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ProblemError("scheduler", f"cannot connect to {scheduler}: {exc}") from None
        with own:
            yield own
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as own:
        yield own


def _prepare_worker():
    import dmft.sweep  # noqa: F401  (imports dmft, numba and the solver once per worker)
    return True


def _compute(missing, cache, cl, threads, results, bar):
    """Submit the missing points and write each one's file as it finishes (on the client)."""
    from distributed import as_completed
    try:
        cl.run(_prepare_worker)
    except ImportError as exc:
        raise ProblemError("scheduler", f"the workers cannot import dmft: {exc}") from None
    tag = uuid.uuid4().hex[:8]
    futures = {cl.submit(_run_point, spec, threads, key=f"dmft-point-{spec['hash']}-{tag}"):
               (idx, spec) for idx, spec in missing}
    failed = None
    try:
        for fut in as_completed(list(futures)):
            idx, spec = futures[fut]
            out = fut.result()
            fut.release()
            if "error" in out:
                failed = (out["error"], spec)
                break
            _write_point(cache, spec, out)
            results[idx] = out
            bar.update(1)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            cl.cancel(pending)
    if failed is not None:
        (field, message), spec = failed
        if field is not None:
            raise ProblemError(field, message)
        raise RuntimeError(f"sweep point {spec['problem']} failed:\n{message}")


@dataclass
class SweepRun:
    """What :func:`run_sweep` did: the Dataset, its path and the point counts."""
    dataset: object
    path: str
    computed: int
    reused: int

    def summary(self):
        ds = self.dataset
        grid = " x ".join(f"{d} ({ds.sizes[d]})" for d in ds["diverged"].dims)
        return (f"sweep {grid}: {self.computed + self.reused} points, computed "
                f"{self.computed}, reused {self.reused}, diverged {int(ds['diverged'].sum())}; "
                f"wrote {self.path}")


def run_sweep(config, params, schedules=None, *, simulate=False, out="sweep.nc", scheduler=None,
              client=None, n_workers=None, progress=True, threads_per_point=1):
    """Solve the DMFT on the grid of ``params`` (x ``schedules``), resuming from cached points.

    Parameters
    ----------
    config : str, path or dict
        A TOML config (:func:`dmft.config.read_config`) or its dict of tables.
    params : str, list or dict
        ``--param`` strings (:func:`parse_param`), (name, values) pairs or {name: values}.
    schedules : str or list of str, optional
        Adds a ``schedule`` dimension (e.g. ``"one-pass,multi-pass"``).
    simulate : bool
        Also run :func:`dmft.simulate` at every point (``[simulation]`` options, n_jobs = 1).
    out : str
        netCDF output; point files go to ``<out>.points/``.
    scheduler, client : str, distributed.Client, optional
        A scheduler address, or an existing client (left open).  Default: a LocalCluster of
        ``n_workers`` processes (default min(CPUs, missing points)), one thread each, no
        dashboard, started only if points are missing and closed at the end.
    progress : bool
        tqdm bar over points.
    threads_per_point : int
        Numba threads of each point's solve.

    Returns
    -------
    SweepRun
        ``dataset`` (see :func:`build_dataset`), ``path``, ``computed`` and ``reused`` counts.
    """
    from tqdm.auto import tqdm
    from .config import problem_from_config, read_config
    from .io import ensure_dir, write_dataset
    cfg = config if isinstance(config, dict) else read_config(config)
    if "problem" not in cfg:
        raise ProblemError("problem", "the config has no [problem] table")
    params = normalize_params(params)
    if schedules is not None:
        items = schedules.split(",") if isinstance(schedules, str) else list(schedules)
        if "schedule" in [n for n, _ in params]:
            raise ProblemError("schedules", "schedule is already swept with --param")
        params.append(("schedule", _unique("schedules", [_value("schedule", s) for s in items])))
    if not params:
        raise ProblemError("param", "nothing to sweep: give at least one NAME=VALUES")
    if scheduler is not None and client is not None:
        raise ProblemError("scheduler", "give a scheduler address or a client, not both")
    base = problem_from_config(cfg)
    solver, sim = _options(cfg, simulate)
    names = [n for n, _ in params]
    points = [(idx, _point(base, solver, sim, {n: params[i][1][j] for i, (n, j) in
                                               enumerate(zip(names, idx))}))
              for idx in itertools.product(*(range(len(v)) for _, v in params))]
    out = os.fspath(out)
    cache = out + ".points"
    ensure_dir(os.path.dirname(out) or ".", "out")
    results = {idx: r for idx, spec in points
               if (r := _read_point(cache, spec)) is not None}
    missing = [(idx, spec) for idx, spec in points if idx not in results]
    reused = len(results)
    if missing:
        ensure_dir(cache, "out")
        workers = n_workers or min(os.cpu_count() or 1, len(missing))
        with tqdm(total=len(points), initial=reused, desc="sweep", unit="point",
                  disable=not progress) as bar, _connect(scheduler, client, workers) as cl:
            _compute(missing, cache, cl, threads_per_point, results, bar)
    ds = build_dataset(params, results, base, cfg, solver, sim,
                       {idx: spec["hash"] for idx, spec in points})
    write_dataset(ds, out, "out")
    return SweepRun(ds, out, len(missing), reused)


# ---------------------------------------------------------------------- results
def build_dataset(params, results, base, cfg, solver, sim, hashes):
    """One Dataset: a dimension per swept parameter (coordinate = its values), then ``t``,
    ``neuron``, ``direction``/``neuron2``; the observables and their errors (``sim_*`` for the
    simulations), ``diverged``, ``status``, ``message``, ``steps_completed``, ``point`` (hash);
    attributes ``config``, ``params``, ``problem`` (base), ``solver`` and ``simulation`` (base
    options; swept fields override them) as JSON, ``version`` and ``kind = dmft.Sweep``."""
    import xarray as xr
    grid = tuple(n for n, _ in params)
    shape = tuple(len(v) for _, v in params)
    T, p, k = base.steps, base.p, base.k
    sizes = {"t": T + 1, "neuron": p, "direction": k, "neuron2": p}
    prefixes = ("",) + (("sim_",) if sim is not None else ())
    data = {}
    for pre in prefixes:
        for name in _ARRAYS:
            dims = _DIMS[name.removesuffix("_err")]
            arr = np.full(shape + tuple(sizes[d] for d in dims), np.nan)
            for idx, r in results.items():
                arr[idx] = r[pre + name]
            data[pre + name] = (grid + dims, arr)
        for name, kind in (("status", str), ("message", str), ("steps_completed", int)):
            arr = np.zeros(shape, dtype=object if kind is str else np.int64)
            for idx, r in results.items():
                arr[idx] = kind(r[pre + name])
            data[pre + name] = (grid, arr)
        data[pre + "diverged"] = (grid, data[pre + "status"][1] != "ok")
    point = np.zeros(shape, dtype=object)
    for idx, h in hashes.items():
        point[idx] = h
    data["point"] = (grid, point)
    coords = {n: np.array(v, dtype=object if n in _STRINGS else None) for n, v in params}
    coords["t"] = np.arange(T + 1)
    attrs = {"kind": "dmft.Sweep", "version": __version__,
             "config": json.dumps(cfg, default=str), "params": json.dumps(params),
             "problem": json.dumps(base.to_dict()), "solver": json.dumps(solver),
             "simulation": json.dumps(sim)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def load_sweep(path):
    """Read a sweep written by :func:`run_sweep` (an xarray Dataset, loaded into memory)."""
    from .io import _open
    ds = _open(path)
    if ds.attrs.get("kind") != "dmft.Sweep":
        raise ProblemError("path", f"{os.fspath(path)} is not a dmft sweep file")
    return ds


# ---------------------------------------------------------------------- command line
def add_sweep_arguments(parser):
    """Arguments of ``dmft sweep CONFIG.toml --param ... [--schedules ...] [--simulate]
    [--scheduler ADDRESS] [--workers N] [--out FILE.nc] [--no-progress]``."""
    add = parser.add_argument
    add("config", help="TOML file with [problem], [solver], [simulation] tables")
    add("--param", action="append", default=[], metavar="NAME=VALUES", help="swept field: "
        "eta=0.05:2.0:40 (linspace), eta=0.01:1:20:log (geomspace) or alpha=1,2,4; repeatable")
    add("--schedules", default=None, help="comma-separated schedules, e.g. one-pass,multi-pass")
    add("--simulate", action="store_true", help="also finite-size GD at every point")
    add("--scheduler", default=None, help="dask scheduler address (default: a local cluster)")
    add("--workers", type=int, default=None, help="local worker processes (default: CPUs)")
    add("--out", default=None, help="netCDF output (default: out/<config name>_sweep.nc)")
    add("--no-progress", action="store_true", dest="no_progress")
    return parser


def run_sweep_args(args):
    """Run ``dmft sweep`` for parsed arguments; prints a summary, returns 0 (diverged points
    are data, not errors).  Raises ProblemError on bad input."""
    out = args.out or os.path.join(
        "out", os.path.splitext(os.path.basename(args.config))[0] + "_sweep.nc")
    run = run_sweep(args.config, args.param, schedules=args.schedules, simulate=args.simulate,
                    out=out, scheduler=args.scheduler, n_workers=getattr(args, "workers", None),
                    progress=not args.no_progress)
    print(run.summary())
    return 0


def add_plot_arguments(parser):
    """Arguments of ``dmft plot-sweep FILE.nc [--out PNG]``."""
    parser.add_argument("file", help="a sweep written by dmft sweep")
    parser.add_argument("--out", default=None, help="figure (default: FILE with .png)")
    return parser


def run_plot_args(args):
    """Run ``dmft plot-sweep``: writes the figure, returns 0; ProblemError on bad input."""
    from .io import ensure_dir
    from .sweep_plot import plot_sweep
    out = args.out or os.path.splitext(args.file)[0] + ".png"
    ds = load_sweep(args.file)
    ensure_dir(os.path.dirname(out) or ".", "out")
    plot_sweep(ds, out)
    print(f"wrote {out}")
    return 0
