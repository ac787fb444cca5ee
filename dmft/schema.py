"""The data schema: every array the package stores, its dimensions and meaning, defined once.

Results (:mod:`dmft.result`) and sweeps (:mod:`dmft.sweep`) are written to netCDF from this
table, and read back by it.  Dimensions: ``t`` and ``s`` (times 0..T), ``neuron`` and
``neuron2`` (the p hidden units), ``direction`` (the k target directions), ``replica`` (the
DMFT's independent replicas), ``seed`` (the simulation's runs).  A variable ``X`` has a
standard error ``X_err`` with the same dimensions.

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
    """An array of the schema: dimensions and a one-line meaning."""

    dims: tuple
    long_name: str


VARIABLES = {
    "M": Variable(("t", "neuron", "direction"), "overlaps M = W W*^T / d"),
    "Q": Variable(("t", "neuron", "neuron2"), "Gram matrix Q = W W^T / d"),
    "overlap": Variable(("t", "neuron", "direction"),
                        "normalised overlaps M_jr / sqrt(Q_jj)"),
    "train_loss": Variable(("t",), "mean loss over the samples used at step t"),
    "test_error": Variable(("t",), "population loss E[l] on a fresh sample, label noise "
                                   "included"),
    "C_theta": Variable(("t", "s", "neuron", "neuron2"),
                        "weight-side covariance Cov[omega(t), omega(s)]"),
    "R_theta": Variable(("t", "s", "neuron", "neuron2"),
                        "weight-side response R_theta(t, s), s < t"),
    "C_g": Variable(("t", "s", "neuron", "neuron2"), "sample-side covariance E[g(t) g(s)^T]"),
    "R_g": Variable(("t", "s", "neuron", "neuron2"),
                    "sample-side response E[dg(t)/domega(s)], s <= t"),
    "Psi": Variable(("t", "neuron", "neuron2"), "response of theta(t) to theta(0)"),
    "residual_omega_cov": Variable(("t",), "relative deviation of the empirical covariance of "
                                           "the drawn omega(t) from C_theta(t, t)"),
    "residual_g_innovation": Variable(("t",), "relative change of the re-orthogonalised "
                                              "innovation of g(t) (round-off indicator)"),
}


def dims(name):
    """Dimensions of a variable of the schema (``X_err`` has those of ``X``)."""
    return VARIABLES[name.removesuffix("_err")].dims


def var():
    """A dataclass field stored as a variable of :data:`VARIABLES`."""
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
            data[f.name] = (dims(f.name), np.asarray(value))
        elif isinstance(store, tuple):
            _, prefix, dim = store
            lead = (dim,) if dim else ()
            for key, x in value.items():
                data[prefix + key] = (lead + dims(key if dim else prefix + key), np.asarray(x))
        elif store == "json":
            attrs[f.name] = json.dumps(value)
        elif store == "problem":
            attrs[f.name] = value.to_json()
        elif store == "attr":
            attrs[f.name] = _attr_value(value)
    return xr.Dataset(data, coords={"t": obj.t}, attrs=attrs)


def from_dataset(cls, ds):
    """The field values of dataclass ``cls`` read from a Dataset written by
    :func:`to_dataset` (types restored from the field annotations)."""
    values = {}
    for f in fields(cls):
        store = f.metadata.get("store")
        if store == "var":
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
