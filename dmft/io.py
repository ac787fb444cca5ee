"""Saving and loading results as netCDF (via xarray), written atomically.

Layout: dimensions ``t`` and ``s`` (times), ``neuron``/``neuron2`` (p), ``direction`` (k),
``replica`` (G); every array of :class:`dmft.Result` becomes a variable, metadata (problem,
seed, version, timings, status) become attributes, the problem as JSON.
"""
import json
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


def _publish(tmp, path):
    """Give the temporary file ordinary permissions and rename it into place (atomic)."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


from .errors import ProblemError
from .problem import Problem
from .result import KERNELS, OBSERVABLES, Result

_DIMS = {
    "M": ("t", "neuron", "direction"), "overlap": ("t", "neuron", "direction"),
    "Q": ("t", "neuron", "neuron2"), "train_loss": ("t",), "test_error": ("t",),
    "C_theta": ("t", "s", "neuron", "neuron2"), "R_theta": ("t", "s", "neuron", "neuron2"),
    "C_g": ("t", "s", "neuron", "neuron2"), "R_g": ("t", "s", "neuron", "neuron2"),
    "Psi": ("t", "neuron", "neuron2"),
}
_META = ("seed", "n_paths", "n_groups", "response", "version", "status", "message",
         "steps_completed")


def _attr(value):
    """netCDF attributes hold 64-bit integers at most: a larger one (a seed may be any
    non-negative integer) is stored as its decimal string (``int()`` reads both back)."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            not -2 ** 63 <= value < 2 ** 63:
        return str(value)
    return value


def result_to_dataset(res):
    """A :class:`~dmft.Result` as a labelled :class:`xarray.Dataset`."""
    import xarray as xr          # imported on first use: keeps `import dmft` light
    data = {}
    for name in OBSERVABLES + KERNELS:
        data[name] = (_DIMS[name], getattr(res, name))
        data[name + "_err"] = (_DIMS[name], getattr(res, name + "_err"))
    for name, x in res.replicas.items():
        data["replica_" + name] = (("replica",) + _DIMS[name], x)
    for name, x in res.residuals.items():
        data["residual_" + name] = (("t",), x)
    attrs = {"problem": res.problem.to_json(), "timings": json.dumps(res.timings),
             "kind": "dmft.Result"}
    for key in _META:
        attrs[key] = _attr(getattr(res, key))
    return xr.Dataset(data, coords={"t": res.t}, attrs=attrs)


def _reason(exc):
    return exc.strerror or str(exc) or type(exc).__name__


def ensure_dir(folder, field="out"):
    """Create ``folder`` if needed and check that files can be created in it, before any work
    is done; ProblemError on ``field`` otherwise (e.g. ``out: cannot create directory x:
    Permission denied``)."""
    folder = os.fspath(folder) or "."
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ProblemError(field, f"{folder} exists and is not a directory")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ProblemError(field, f"cannot create directory {folder}: {_reason(exc)}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ProblemError(field, f"cannot write in directory {folder}: {_reason(exc)}") from None
    return folder


def atomic_write(path, write, field="path"):
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it into place:
    readers never see a half-written file, and a failure leaves no debris.  Every file the
    package writes goes through here.  An output that cannot be written (missing permission,
    full disk, a file where a folder should be) raises ProblemError on ``field``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ProblemError(field, f"cannot create directory {folder}: {_reason(exc)}") from None
    ext = os.path.splitext(path)[1]
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=ext)
    except OSError as exc:
        raise ProblemError(field, f"cannot write {path}: {_reason(exc)}") from None
    os.close(fd)
    try:
        write(tmp)
        _publish(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise ProblemError(field, f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp):
    try:
        os.remove(tmp)
    except OSError:
        pass


def write_text(path, text, field="path"):
    """Write a text file atomically (UTF-8)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    return atomic_write(path, write, field)


def write_dataset(ds, path, field="path"):
    """Write ``ds`` to ``path`` as netCDF, atomically."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4"), field)


def save_result(res, path):
    """Write a Result to netCDF atomically."""
    return write_dataset(result_to_dataset(res), path)


def dataset_to_result(ds):
    """Rebuild a Result from :func:`result_to_dataset` output."""
    if ds.attrs.get("kind") != "dmft.Result":
        raise ProblemError("path", "not a dmft result file")
    try:
        return _dataset_to_result(ds)
    except (KeyError, ValueError, TypeError) as exc:
        raise ProblemError("path", f"incomplete or corrupt dmft result file ({exc})") from None


def _dataset_to_result(ds):
    f = {key: ds.attrs[key] for key in _META}
    for key in ("seed", "n_paths", "n_groups", "steps_completed"):
        f[key] = int(f[key])
    f["problem"] = Problem.from_dict(json.loads(ds.attrs["problem"]))
    f["timings"] = json.loads(ds.attrs["timings"])
    f["t"] = ds["t"].values
    for name in OBSERVABLES + KERNELS:
        f[name] = ds[name].values
        f[name + "_err"] = ds[name + "_err"].values
    f["replicas"] = {v[len("replica_"):]: ds[v].values for v in ds.data_vars
                     if v.startswith("replica_")}
    f["residuals"] = {v[len("residual_"):]: ds[v].values for v in ds.data_vars
                      if v.startswith("residual_")}
    return Result(**f)


def _open(path):
    import xarray as xr
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ProblemError("path", f"no such file: {path}")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds.load()
    except (OSError, ValueError) as exc:
        raise ProblemError("path", f"cannot read {path}: {exc}") from None
    return ds


def load(path):
    """Load a DMFT result (``Result.save``) or a simulation (``SimResult.save``)."""
    ds = _open(path)
    if ds.attrs.get("kind") == "dmft.SimResult":
        return load_simresult(path)
    return dataset_to_result(ds)


def _atomic_savefig(fig, path, dpi=120):
    """Save a matplotlib figure atomically."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=_fmt(path)))


def _fmt(path):
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    return ext or "png"


# ---------------------------------------------------------------------- simulations
_SIM_META = ("d", "n", "n_seeds", "seed", "dtype", "n_test", "version", "status", "message")


def save_simresult(sim, path):
    """Write a SimResult to netCDF atomically."""
    import xarray as xr
    dims = {k: _DIMS[k] for k in sim.FIELDS + ("overlap",)}
    data = {}
    for name, dd in dims.items():
        data[name] = (dd, getattr(sim, name))
        data[name + "_err"] = (dd, getattr(sim, name + "_err"))
    for name, x in sim.seeds.items():
        data["seed_" + name] = (("seed",) + dims[name], x)
    attrs = {"problem": sim.problem.to_json(), "timings": json.dumps(sim.timings),
             "kind": "dmft.SimResult"}
    attrs.update({key: _attr(getattr(sim, key)) for key in _SIM_META})
    return write_dataset(xr.Dataset(data, coords={"t": sim.t}, attrs=attrs), path)


def load_simresult(path):
    """Load a simulation written by ``SimResult.save``."""
    from .simulate import SimResult
    ds = _open(path)
    if ds.attrs.get("kind") != "dmft.SimResult":
        raise ProblemError("path", "not a dmft simulation file")
    try:
        f = {key: ds.attrs[key] for key in _SIM_META}
        for key in ("d", "n", "n_seeds", "seed", "n_test"):
            f[key] = int(f[key])
        f["problem"] = Problem.from_dict(json.loads(ds.attrs["problem"]))
        f["timings"] = json.loads(ds.attrs["timings"])
        f["t"] = ds["t"].values
        for name in SimResult.FIELDS + ("overlap",):
            f[name] = ds[name].values
            f[name + "_err"] = ds[name + "_err"].values
        f["seeds"] = {v[len("seed_"):]: ds[v].values for v in ds.data_vars
                      if v.startswith("seed_")}
    except (KeyError, ValueError, TypeError) as exc:
        raise ProblemError("path", f"incomplete or corrupt dmft simulation file ({exc})") from None
    return SimResult(**f)
