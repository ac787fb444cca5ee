"""The data schema: every array the package stores, its dimensions and meaning, defined once.

Results (:mod:`dmft.result`) and sweeps (:mod:`dmft.sweep`) are written to netCDF from this
table, and read back by it.  Dimensions and their coordinates (:data:`COORDINATES`): ``t``
and ``s`` (steps 0..T), ``neuron`` and ``neuron2`` (the p hidden units, 1..p), ``direction``
(the k target directions, 1..k), ``replica`` (the DMFT's independent replicas, 0..G-1),
``seed`` (the simulation's runs, 0..S-1).  A variable ``X`` has a standard error ``X_err``
with the same dimensions.  Every variable carries the attributes ``long_name``,
``definition``, ``units`` and, where the theory documentation numbers it, ``equation``
(:func:`attributes`).

A result is a dataclass whose fields say how they are stored (``metadata["store"]``):
``"var"`` an array of :data:`VARIABLES` (``X_err`` included), ``"coord"`` the time
coordinate ``t``, ``"attr"`` a scalar attribute,
``"json"`` a JSON attribute, ``"problem"`` the Problem as JSON, and ``("group", prefix, dim)``
a dict of arrays stored as variables ``prefix + key``, with a leading dimension ``dim`` (or,
when ``dim`` is None, the dimensions of the variable ``prefix + key``).
"""
import json
from dataclasses import dataclass, field, fields

import numpy as np

from .errors import ProblemError
from .problem import Problem


@dataclass(frozen=True)
class Variable:
    """An array of the schema: its dimensions, a short name, its definition, its units and
    the equations of the theory documentation that define it, cited as ``eq. (S.N)``
    (written to netCDF as the attributes ``long_name``, ``definition``, ``units`` and
    ``equation``; an empty ``equation`` is left out)."""

    dims: tuple
    long_name: str
    definition: str = ""
    units: str = "1"
    equation: str = ""


#: every quantity is dimensionless (the inputs are standard Gaussians, the labels and the
#: network's output are numbers): units "1", as the CF conventions write it
VARIABLES = {
    "M": Variable(("t", "neuron", "direction"), "student-target overlaps",
                  "M_jr = w_j . w*_r / d: first-layer weights W (p x d) against the target "
                  "directions W* (k x d, W* W*^T = d I)", equation="eqs. (1.6), (2.11)"),
    "Q": Variable(("t", "neuron", "neuron2"), "student Gram matrix",
                  "Q_jl = w_j . w_l / d", equation="eqs. (1.6), (2.12)"),
    "overlap": Variable(("t", "neuron", "direction"), "normalised overlaps",
                        "m_jr = M_jr / sqrt(Q_jj), the cosine between w_j and w*_r",
                        equation="eq. (1.6)"),
    "train_loss": Variable(("t",), "train loss",
                           "mean of the loss l(yhat, y) over the samples used at step t "
                           "((yhat - y)^2 / 2 for the square loss)",
                           equation="eqs. (1.8), (2.13), (7.1)"),
    "test_error": Variable(("t",), "test error",
                           "population loss E[l(yhat, y)] on a fresh sample (E[(yhat - y)^2"
                           " / 2] for the square loss), label noise included",
                           equation="eqs. (1.9), (2.14), (7.1)"),
    "a": Variable(("t", "neuron"), "second layer",
                  "a_j(t), the second-layer weights (constant for a fixed readout; trained jointly "
                  "with the first layer for readout = 'trained')",
                  equation="eqs. (1.3), (7.4), (7.5)"),
    "class_error": Variable(("t",), "classification error",
                            "population 0-1 error P(y yhat <= 0) on a fresh sample (labels in "
                            "{-1, +1} only)", equation="eq. (7.3)"),
    "test_error_sampled": Variable(("t",), "test error averaged over the sample paths",
                                   "E[l(yhat, y)] averaged over the DMFT sample side's fresh "
                                   "Monte Carlo paths (noisier than test_error, which is a "
                                   "function of M, Q, a; a cross-check)",
                                   equation="eq. (2.14)"),
    "C_theta": Variable(("t", "s", "neuron", "neuron2"), "weight-side covariance",
                        "C_theta(t, s) = E[theta(t) theta(s)^T] = E[omega(t) omega(s)^T], "
                        "theta the weights orthogonal to the target",
                        equation="eqs. (2.7), (2.8)"),
    "R_theta": Variable(("t", "s", "neuron", "neuron2"), "weight-side response",
                        "R_theta(t, s) = dtheta(t) / dxi(s), s < t (zero for s >= t)",
                        equation="eqs. (2.5), (2.6)"),
    "C_g": Variable(("t", "s", "neuron", "neuron2"), "sample-side covariance",
                    "C_g(t, s) = E[g(t) g(s)^T], g = dl/dh the gradient of a sample's loss "
                    "with respect to the pre-activations", equation="eq. (2.10)"),
    "R_g": Variable(("t", "s", "neuron", "neuron2"), "sample-side response",
                    "R_g(t, s) = E[dg(t) / domega(s)], s <= t (zero for s > t)",
                    equation="eq. (2.10)"),
    "Psi": Variable(("t", "neuron", "neuron2"), "response to the initial condition",
                    "Psi(t) = dtheta(t) / dtheta(0)", equation="eq. (2.4)"),
    "residual_omega_cov": Variable(("t",), "omega covariance residual",
                                   "relative deviation of the empirical covariance of the drawn "
                                   "omega(t) from C_theta(t, t)", equation="eq. (3.18)"),
    "residual_g_innovation": Variable(("t",), "g innovation residual",
                                      "relative change of the re-orthogonalised innovation of "
                                      "g(t) (a round-off indicator)", equation="eq. (3.18)"),
}

#: the dimensions' coordinates: (first value, meaning); ``t`` and ``s`` are the steps 0..T,
#: ``replica`` and ``seed`` the index i of ``SeedSequence(seed).spawn(n)[i]``
COORDINATES = {
    "t": (0, "gradient-descent step"),
    "s": (0, "earlier gradient-descent step"),
    "neuron": (1, "hidden unit j of the student (1..p)"),
    "neuron2": (1, "hidden unit l of the student (1..p)"),
    "direction": (1, "target direction r (1..k)"),
    "replica": (0, "DMFT replica (independent solve on n_paths / n_groups paths; its random "
                   "stream is SeedSequence(seed).spawn(n_groups)[replica])"),
    "seed": (0, "simulation run (data, teacher and initial weights from "
                "SeedSequence(seed).spawn(n_seeds)[seed])"),
}


def attributes(name):
    """The netCDF attributes of a variable of the schema: ``X``, its standard error
    ``X_err``, or a per-replica / per-seed array ``replica_X`` / ``seed_X`` (and a sweep's
    ``sim_X``, the simulations')."""
    for prefix, what in (("sim_", "simulation: "), ("replica_", "per replica: "),
                         ("seed_", "per seed: ")):
        if name.startswith(prefix) and name[len(prefix):].removesuffix("_err") in VARIABLES:
            out = attributes(name[len(prefix):])
            out["long_name"] = what + out["long_name"]
            return out
    base = name.removesuffix("_err")
    v = VARIABLES[base]
    out = {"long_name": v.long_name, "definition": v.definition, "units": v.units}
    if name != base:
        out["long_name"] = f"standard error of the {v.long_name}"
        out["definition"] = (f"standard error of {base} over the DMFT replicas or the "
                             f"simulation seeds (mean over them: {base})")
    if v.equation:
        out["equation"] = v.equation
    return out


def coordinates(sizes):
    """Coordinates of the dimensions in ``sizes`` ({dim: length}) that have one
    (:data:`COORDINATES`), with their ``long_name``: {dim: (dim, values, attrs)}."""
    import numpy as np
    return {d: (d, np.arange(COORDINATES[d][0], COORDINATES[d][0] + n),
                {"long_name": COORDINATES[d][1]})
            for d, n in sizes.items() if d in COORDINATES}


def dims(name):
    """Dimensions of a variable of the schema (``X_err`` has those of ``X``)."""
    return VARIABLES[name.removesuffix("_err")].dims


def var(optional=False):
    """A dataclass field stored as a variable of :data:`VARIABLES`; an ``optional`` one defaults
    to None and is stored only when set (e.g. the class error, for +-1 labels only)."""
    if optional:
        return field(default=None, metadata={"store": "var", "optional": True})
    return field(metadata={"store": "var"})


def attr(store="attr"):
    """A dataclass field stored as an attribute (``"attr"``, ``"json"`` or ``"problem"``), or
    the time coordinate (``"coord"``)."""
    return field(metadata={"store": store})


def group(prefix, dim):
    """A dataclass field holding a dict of arrays, stored as variables ``prefix + key`` with a
    leading dimension ``dim``."""
    return field(metadata={"store": ("group", prefix, dim)})


def _attr_value(value):
    """netCDF attributes hold 64-bit integers at most: a larger one (a seed may be any
    non-negative integer) is stored as its decimal string (``int()`` reads both back)."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            not -2 ** 63 <= value < 2 ** 63:
        return str(value)
    return value


def to_dataset(obj, kind):
    """A result dataclass as an :class:`xarray.Dataset` (``attrs["kind"] = kind``)."""
    import xarray as xr
    data, attrs = {}, {"kind": kind}
    for f in fields(obj):
        store, value = f.metadata.get("store"), getattr(obj, f.name)
        if store == "var":
            if value is not None:
                data[f.name] = (dims(f.name), np.asarray(value), attributes(f.name))
        elif isinstance(store, tuple):
            _, prefix, dim = store
            lead = (dim,) if dim else ()
            for key, x in value.items():
                data[prefix + key] = (lead + dims(key if dim else prefix + key), np.asarray(x),
                                      attributes(prefix + key))
        elif store == "json":
            attrs[f.name] = json.dumps(value)
        elif store == "problem":
            attrs[f.name] = value.to_json()
        elif store == "attr":
            attrs[f.name] = _attr_value(value)
    ds = xr.Dataset(data, attrs=attrs)
    coords = coordinates(dict(ds.sizes))
    for f in fields(obj):
        if f.metadata.get("store") == "coord":
            coords[f.name] = (f.name, np.asarray(getattr(obj, f.name)), coords[f.name][2])
    return ds.assign_coords(coords)


def from_dataset(cls, ds):
    """The field values of dataclass ``cls`` read from a Dataset written by
    :func:`to_dataset` (types restored from the field annotations)."""
    values = {}
    for f in fields(cls):
        store = f.metadata.get("store")
        if store == "var":
            if f.metadata.get("optional") and f.name not in ds:
                values[f.name] = None
            else:
                values[f.name] = ds[f.name].values
        elif store == "coord":
            values[f.name] = ds[f.name].values
        elif isinstance(store, tuple):
            _, prefix, _ = store
            values[f.name] = {v[len(prefix):]: ds[v].values for v in ds.data_vars
                              if v.startswith(prefix)}
        elif store == "json":
            values[f.name] = json.loads(ds.attrs[f.name])
        elif store == "problem":
            values[f.name] = Problem.from_dict(json.loads(ds.attrs[f.name]))
        elif store == "attr":
            value = ds.attrs[f.name]
            values[f.name] = int(value) if f.type in (int, "int") else \
                value.item() if isinstance(value, np.generic) else value
    return values


def check_kind(ds, kind, what):
    """ProblemError on ``path`` when a Dataset is not a stored ``kind``."""
    if ds.attrs.get("kind") != kind:
        raise ProblemError("path", f"not a dmft {what} file")
