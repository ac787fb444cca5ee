"""Parameter sweeps: a grid of DMFT solves (and optionally simulations) on dask.distributed,
cached point by point so that an interrupted sweep resumes, gathered in one xarray Dataset.

Every point is a plain :func:`dmft.solve` with the config's ``[solver]`` options and the *same*
seed (a point equals a stand-alone solve with that seed), plus :func:`dmft.simulate` with the
``[simulation]`` options (n_jobs = 1) when asked.  Decisions recorded here:

* Sweepable (:mod:`dmft.sweep_params`): the Problem fields that keep the array shapes (a swept
  target must keep k) and the solver options declared sweepable in :data:`dmft.options.SOLVER`;
  ``p k steps a M0 Q0`` are refused.  A missing seed means 0, as for ``dmft run``.  Every
  point's problem and options are checked (:func:`dmft.solver.solver_settings`) before any work.
* Cache: the client writes each finished point atomically to ``<out>.points/<hash>.npz``, hash
  of the full point configuration (problem dict, every solver and simulation option that
  changes the numbers, version); a rerun submits only points without a valid file.  The folder
  is kept (delete it at will).
* A diverging point is kept and flagged (``diverged``, ``status``, ``steps_completed``, NaN
  after the failure step); bad input raises ProblemError, before any work when possible.
* One task per point, one Numba thread each (``threads_per_point``); the default cluster is a
  LocalCluster of min(CPUs, missing points) one-thread processes (scripts that start it need
  the usual ``if __name__ == "__main__":`` guard).
"""
import hashlib
import itertools
import json
import os
import uuid
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np

from .checks import integer
from .errors import DivergenceWarning, ProblemError
from .io import atomic_write, open_dataset, output_dir, write_dataset
from .options import SIMULATION, SOLVER
from .schema import attributes, coordinates, dims
from .sweep_params import (PROBLEM_SWEEPABLE, SOLVER_SWEEPABLE, normalize_params, unique,
                           value)
from .version import __version__

OBSERVABLES = ("M", "Q", "overlap", "train_loss", "test_error")
#: meanings of the per-point variables of a sweep (netCDF ``long_name``)
_POINT_ATTRS = {"status": "'ok' or why the run stopped", "message": "the step and the cause "
                "of a failure", "steps_completed": "last step with finite M and Q (-1: none)",
                "diverged": "the run stopped before the last step", "point": "hash of the "
                "point's configuration (its file in the points folder)"}
#: stored for every point: the observables, the second layer a(t) (constant unless trained)
_ARRAYS = tuple(n + s for n in OBSERVABLES + ("a",) for s in ("", "_err"))
#: stored when the results carry them (labels +-1), in the data set when every point has them
_OPTIONAL = ("class_error", "class_error_err")


# ---------------------------------------------------------------------- points
def _hashed(opts, options):
    """The options that change the numbers (the rest, e.g. progress, stay out of the hash)."""
    return {k: opts[k] for k in options.names(numbers=True)}


def _options(cfg, simulate):
    """The config's solver options and, with ``simulate``, simulation options (checked, the
    whole config with them), restricted to those that change the numbers."""
    from .config import check_config
    conf = check_config(cfg)
    return conf.problem, _hashed(conf.solver, SOLVER), \
        (_hashed(conf.simulation, SIMULATION) if simulate else None)


def _point(base, solver, sim, changes):
    """The full configuration of one point and its hash (validated here, before any work)."""
    from .solver import solver_settings
    pch = {k: v for k, v in changes.items() if k in PROBLEM_SWEEPABLE}
    problem = base.replace(**pch) if pch else base
    if (problem.p, problem.k) != (base.p, base.k):
        raise ProblemError("target", f"{problem.target.expr!r} has k = {problem.k} but the sweep "
                                     f"needs k = {base.k}; set k in [problem]")
    sopts = dict(solver, **{k: v for k, v in changes.items() if k in SOLVER_SWEEPABLE})
    solver_settings(problem, **sopts)
    key = json.dumps({"problem": problem.to_dict(), "solver": sopts, "simulation": sim,
                      "version": __version__}, sort_keys=True, separators=(",", ":"))
    return {"key": key, "hash": hashlib.sha256(key.encode()).hexdigest()[:24],
            "problem": problem.to_dict(), "solver": sopts, "simulation": sim}


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
        out.update({n: np.asarray(getattr(res, n)) for n in _OPTIONAL
                    if getattr(res, n, None) is not None})
        out.update(status=res.status, message=res.message,
                   steps_completed=int(res.steps_completed))
        if spec["simulation"] is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DivergenceWarning)
                sim = simulate(problem, n_jobs=1, progress=False, **spec["simulation"])
            out.update({"sim_" + n: np.asarray(getattr(sim, n)) for n in _ARRAYS})
            out.update({"sim_" + n: np.asarray(getattr(sim, n)) for n in _OPTIONAL
                        if getattr(sim, n, None) is not None})
            out.update(sim_status=sim.status, sim_message=sim.message,
                       sim_steps_completed=int(sim.steps_completed))
        return out
    except ProblemError as exc:
        return {"error": [exc.field, str(exc)[len(exc.field) + 2:]]}
    except Exception:                                     # noqa: BLE001 (reported on the client)
        return {"error": [None, traceback.format_exc()]}


def _write_point(cache, spec, out):
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
    """What :func:`run_sweep` did: ``dataset`` (the sweep), ``path`` (its file), ``computed``
    and ``reused`` (how many points were computed now and read from their files)."""
    dataset: object
    path: str
    computed: int
    reused: int

    def summary(self):
        """One line: the grid, the point counts, the diverged points and the file.

        Returns
        -------
        str
        """
        ds = self.dataset
        grid = " x ".join(f"{d} ({ds.sizes[d]})" for d in ds["diverged"].dims)
        return (f"sweep {grid}: {self.computed + self.reused} points, computed "
                f"{self.computed}, reused {self.reused}, diverged {int(ds['diverged'].sum())}; "
                f"wrote {self.path}")


def run_sweep(config, params, schedules=None, *, simulate=False, out="sweep.nc", scheduler=None,
              client=None, n_workers=None, progress=True, threads_per_point=1):
    """Solve the DMFT (and optionally simulate) at every point of a grid of parameters, on
    Dask, resuming from the points already computed.

    Every point is a :func:`dmft.solve` with the config's ``[solver]`` options and seed (so it
    equals a stand-alone solve), plus a :func:`dmft.simulate` with the ``[simulation]`` options
    when ``simulate``.  Each finished point is written atomically to ``<out>.points/``; a rerun
    with the same arguments computes only the missing points.  A point that diverges is kept
    and flagged (``diverged``, ``status``, ``steps_completed``).  Everything is checked before
    any work: bad input raises :class:`~dmft.ProblemError` naming the field.

    Parameters
    ----------
    config : str, path-like or dict
        A TOML config (:func:`dmft.config.read_config`) or its dict of tables; its
        ``[problem]`` is the base point.
    params : str, list or dict
        The swept parameters: ``--param`` strings (``"eta=0.05:2.0:40"`` linear,
        ``"eta=0.01:1:20:log"`` geometric, ``"alpha=1,2,4"`` explicit;
        :func:`dmft.sweep_params.parse_param`), (name, values) pairs or ``{name: values}``.
        Sweepable: the Problem fields that keep the array shapes and the sweepable solver
        options (:data:`dmft.sweep_params.SWEEPABLE`).
    schedules : str or list of str, optional
        Adds a ``schedule`` dimension, e.g. ``"one-pass,multi-pass"``.
    simulate : bool, default False
        Also run :func:`dmft.simulate` at every point (``[simulation]`` options, one process
        per point); its arrays are stored with a ``sim_`` prefix.
    out : str or path-like, default "sweep.nc"
        The netCDF file written; point files go to ``<out>.points/`` (kept; delete at will).
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    client : distributed.Client, optional
        An existing client (left open).  Without ``scheduler`` or ``client``, a LocalCluster of
        ``n_workers`` one-thread processes is started (only if points are missing) and closed
        at the end.
    n_workers : int, optional
        Size of that local cluster (default: min(CPUs, missing points)).
    progress : bool, default True
        A tqdm bar over points.
    threads_per_point : int, default 1
        Numba threads of each point's solve.

    Returns
    -------
    SweepRun
        ``dataset`` (an :class:`xarray.Dataset`, see :func:`build_dataset`: one dimension per
        swept parameter, then ``t``, ``neuron``, ``direction``; the observables, their
        standard errors and the per-point status), ``path`` (the file written), ``computed``
        and ``reused`` (point counts).

    Examples
    --------
    A step-size sweep of the paper's case under both schedules, then its figure (a script
    that starts a local cluster needs the ``if __name__ == "__main__":`` guard):

    >>> from dmft.sweep import run_sweep, load_sweep
    >>> from dmft.sweep_plot import plot_sweep
    >>> run = run_sweep("examples/step_size.toml", "eta=0.05:2.0:40",
    ...                 schedules="one-pass,multi-pass", out="out/step_size_sweep.nc")
    ...                                                     # doctest: +SKIP
    >>> print(run.summary())                                # doctest: +SKIP
    sweep eta (40) x schedule (2): 80 points, computed 80, reused 0, diverged 6; wrote ...
    >>> ds = load_sweep("out/step_size_sweep.nc")           # doctest: +SKIP
    >>> ds["overlap"].sel(schedule="one-pass").isel(t=-1)   # doctest: +SKIP
    >>> plot_sweep(ds, "out/step_size_sweep.png")           # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from .cluster import connect
    from .config import check_tables, read_config
    cfg = check_tables(config) if isinstance(config, dict) else read_config(config)
    params = normalize_params(params)
    if schedules is not None:
        items = schedules.split(",") if isinstance(schedules, str) else list(schedules)
        if "schedule" in [n for n, _ in params]:
            raise ProblemError("schedules", "schedule is already swept with --param")
        params.append(("schedule", unique("schedules", [value("schedule", s) for s in items])))
    if not params:
        raise ProblemError("param", "nothing to sweep: give at least one NAME=VALUES")
    if scheduler is not None and client is not None:
        raise ProblemError("scheduler", "give a scheduler address or a client, not both")
    if n_workers is not None:
        n_workers = integer("n_workers", n_workers, 1)
        if scheduler is not None or client is not None:
            raise ProblemError("n_workers", "sizes a local cluster; not with a scheduler or "
                                            "a client")
    base, solver, sim = _options(cfg, simulate)
    names = [n for n, _ in params]
    points = [(idx, _point(base, solver, sim, {n: params[i][1][j] for i, (n, j) in
                                               enumerate(zip(names, idx))}))
              for idx in itertools.product(*(range(len(v)) for _, v in params))]
    out = os.fspath(out)
    cache = out + ".points"
    with output_dir(os.path.dirname(out) or "."):       # bad input found late: nothing left
        results = {idx: r for idx, spec in points
                   if (r := _read_point(cache, spec)) is not None}
        missing = [(idx, spec) for idx, spec in points if idx not in results]
        reused = len(results)
        if missing:
            workers = n_workers or min(os.cpu_count() or 1, len(missing))
            with output_dir(cache), tqdm(total=len(points), initial=reused, desc="sweep",
                                         unit="point", disable=not progress) as bar, \
                    connect(scheduler, client, workers) as cl:
                _compute(missing, cache, cl, threads_per_point, results, bar)
        ds = build_dataset(params, results, base, cfg, solver, sim,
                           {idx: spec["hash"] for idx, spec in points})
        write_dataset(ds, out, "out")
    return SweepRun(ds, out, len(missing), reused)


# ---------------------------------------------------------------------- results
def build_dataset(params, results, base, cfg, solver, sim, hashes):
    """Gather the points of a sweep in one Dataset.

    Parameters
    ----------
    params : list of (str, list)
        The swept parameters and their values (the grid's dimensions, in order).
    results : dict
        {grid index: the point's arrays and status} (what the workers return).
    base : Problem
        The base problem (swept fields vary around it).
    cfg : dict
        The config's tables (stored as JSON).
    solver, sim : dict or None
        The base solver and simulation options that change the numbers (``sim`` None when
        nothing was simulated).
    hashes : dict
        {grid index: the point's hash (its file name in the points folder)}.

    Returns
    -------
    xarray.Dataset
        A dimension per swept parameter (coordinate: its values), then ``t``, ``neuron``,
        ``direction``, ``neuron2`` (with coordinates and long names); the observables and
        their errors (``sim_*`` for the simulations), ``diverged``, ``status``, ``message``,
        ``steps_completed``, ``point``; attributes ``config``, ``params``, ``problem``,
        ``solver`` and ``simulation`` (JSON), ``version`` and ``kind = "dmft.Sweep"``.
        Points missing from ``results`` are NaN.
    """
    import xarray as xr
    grid = tuple(n for n, _ in params)
    shape = tuple(len(v) for _, v in params)
    T, p, k = base.steps, base.p, base.k
    sizes = {"t": T + 1, "neuron": p, "direction": k, "neuron2": p}
    prefixes = ("",) + (("sim_",) if sim is not None else ())
    data = {}
    for pre in prefixes:
        optional = tuple(n for n in _OPTIONAL
                         if results and all(pre + n in r for r in results.values()))
        for name in _ARRAYS + optional:
            dd = dims(name)
            arr = np.full(shape + tuple(sizes[d] for d in dd), np.nan)
            for idx, r in results.items():
                arr[idx] = r[pre + name]
            data[pre + name] = (grid + dd, arr, attributes(pre + name))
        what = "simulation" if pre else "DMFT"
        for name, kind in (("status", str), ("message", str), ("steps_completed", int)):
            arr = np.zeros(shape, dtype=object if kind is str else np.int64)
            for idx, r in results.items():
                arr[idx] = kind(r[pre + name])
            data[pre + name] = (grid, arr, {"long_name": f"{what}: {_POINT_ATTRS[name]}"})
        data[pre + "diverged"] = (grid, data[pre + "status"][1] != "ok",
                                  {"long_name": f"{what}: {_POINT_ATTRS['diverged']}"})
    point = np.zeros(shape, dtype=object)
    for idx, h in hashes.items():
        point[idx] = h
    data["point"] = (grid, point, {"long_name": _POINT_ATTRS["point"]})
    coords = {n: (n, np.array(v, dtype=object if isinstance(v[0], str) else None),
                  {"long_name": f"swept parameter {n}"}) for n, v in params}
    coords.update(coordinates(sizes))
    attrs = {"kind": "dmft.Sweep", "version": __version__,
             "config": json.dumps(cfg, default=str), "params": json.dumps(params),
             "problem": json.dumps(base.to_dict()), "solver": json.dumps(solver),
             "simulation": json.dumps(sim)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def load_sweep(path):
    """Read a sweep written by :func:`run_sweep`.

    Parameters
    ----------
    path : str or path-like
        The netCDF file (``dmft sweep --out``).

    Returns
    -------
    xarray.Dataset
        Loaded into memory: a dimension per swept parameter (coordinate: its values), then
        ``t``, ``neuron``, ``direction`` (and ``neuron2``); variables ``M``, ``Q``,
        ``overlap``, ``train_loss``, ``test_error``, ``a`` (and ``class_error`` with +-1
        labels) with ``*_err`` (``sim_*`` for simulations),
        ``diverged``, ``status``, ``message``, ``steps_completed``; attributes ``problem``,
        ``solver``, ``simulation``, ``params``, ``config`` (JSON) and ``version``.
        ProblemError on ``path`` when the file is missing or not a sweep.

    Examples
    --------
    >>> from dmft.sweep import load_sweep
    >>> ds = load_sweep("out/step_size_sweep.nc")                     # doctest: +SKIP
    >>> last = ds.isel(t=-1)
    >>> best = last["test_error"].idxmin("eta")                       # doctest: +SKIP
    >>> ds["overlap"].sel(schedule="multi-pass", eta=0.5, method="nearest")  # doctest: +SKIP
    """
    ds = open_dataset(path)
    if ds.attrs.get("kind") != "dmft.Sweep":
        raise ProblemError("path", f"{os.fspath(path)} is not a dmft sweep file")
    return ds
