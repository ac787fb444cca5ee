"""`Problem`: the learning problem of section 1 of the theory documentation (eqs. (1.1)-(1.7)),
validated once at construction.

Shapes (defined once, used everywhere):

* ``p``  width of the student (number of hidden neurons), ``k`` number of target directions;
* ``a``  (p,)   fixed second layer, default +-1/sqrt(p) alternating (+, -, +, ...);
* ``M0`` (p, k) initial overlaps with the target directions, default zeros;
* ``Q0`` (p, p) initial student Gram matrix, default identity; ``Q0 - M0 M0^T`` must be PSD.

Beyond the paper's model (docs/theory/beyond.md): the ``loss`` (square, logistic, correlation),
a second layer that is ``fixed`` or ``trained`` (its step ``eta_readout`` and ridge
``ridge_readout``), and spherical normalisation of the first-layer rows (``normalize``).
"""
import json
import math

import numpy as np

from .activations import get_activation
from .errors import ProblemError
from .schedules import parse_schedule
from .targets import Target
from .checks import array as _array
from .checks import integer as _int
from .checks import real as _real


#: largest accepted width p and number of target directions k (the DMFT kernels grow as p^2;
#: the package is about narrow networks, p = O(1))
MAX_WIDTH = 1000


#: every field of a Problem (the arguments of its constructor) and its kind: "expr" (a target
#: expression), "name" (one of a list of names), "real", "int" or "array"
FIELDS = {"target": "expr", "p": "int", "activation": "name", "a": "array", "alpha": "real",
          "eta": "real", "ridge": "real", "noise": "real", "steps": "int", "M0": "array",
          "Q0": "array", "k": "int", "schedule": "name", "loss": "name", "readout": "name",
          "eta_readout": "real", "ridge_readout": "real", "normalize": "name"}
#: the fields that set the shapes of the arrays of a solve (a sweep cannot vary them)
SHAPE_FIELDS = ("p", "k", "steps", "a", "M0", "Q0")
#: the per-sample losses l(yhat, y) (docs/theory/beyond.md)
LOSSES = ("square", "logistic", "correlation")
#: a fixed second layer, or one trained jointly with the first on the same forward pass
READOUTS = ("fixed", "trained")
#: no normalisation, or the first-layer rows put back on the sphere |w_j|^2 = d after each step
NORMALIZATIONS = ("none", "sphere")
#: Gaussian inputs on which a target's labels are checked to be +-1 (fixed seed)
LABEL_CHECK_DRAWS = 1000


def _choice(field, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ProblemError(field, f"must be one of {', '.join(map(repr, choices))}, "
                                  f"got {value!r}")
    return value


def pm_one_labels(target, k):
    """Whether ``target`` takes only the values -1 and +1 on LABEL_CHECK_DRAWS Gaussian inputs
    z ~ N(0, I_k) drawn with a fixed seed (a classification target such as ``sign(z1)``)."""
    z = np.random.default_rng(0).standard_normal((LABEL_CHECK_DRAWS, k))
    with np.errstate(all="ignore"):
        y = np.asarray(target(z), dtype=np.float64)
    return bool(np.all((y == 1.0) | (y == -1.0)))


def default_second_layer(p):
    """+-1/sqrt(p), alternating +, -, +, ..."""
    return np.array([(1.0 if j % 2 == 0 else -1.0) / math.sqrt(p) for j in range(p)])


class Problem:
    """A two-layer-network learning problem: data, target, student and GD step, eqs. (1.1)-(1.7).

    Every argument is validated here, once (a bad value raises :class:`~dmft.ProblemError`
    naming it), and stored under its own name; ``a``, ``M0``, ``Q0`` and ``k`` left at None are
    derived (from ``p`` and the target) and derived again by :meth:`replace`.  Two problems are
    equal when their :meth:`to_dict` are.

    Parameters
    ----------
    target : str
        Expression of ``z1..zk`` (see :mod:`dmft.targets`), e.g. ``"tanh(z1 + He3(z2))"``: the
        function f* of the label ``y = f*(z*) + sqrt(Delta) eps``, eq. (1.2).
    p : int
        Student width, 1 <= p <= MAX_WIDTH (1000).
    activation : str
        Name in :data:`dmft.activations.ACTIVATIONS` (default ``"relu"``): sigma of the
        student, eq. (1.3).
    a : array (p,) or None
        Fixed second layer, eq. (1.3); None means +-1/sqrt(p) alternating (+, -, +, ...).
    alpha, eta : float > 0
        Sample ratio n/d, eq. (1.1), and learning rate of the GD step, eq. (1.5).
    ridge : float >= 0
        Weight decay lambda: ``W <- (1 - eta*lambda) W - eta * grad``, the gradient summed over
        the samples used at the step, eq. (1.5).
    noise : float >= 0
        Label-noise variance Delta.
    steps : int >= 1
        Number of GD steps T; observables are returned at t = 0..T.
    M0 : array (p, k) or None
        Initial student-target overlaps M(0), eq. (1.7); None means zeros.
    Q0 : array (p, p) or None
        Initial Gram matrix Q(0), symmetric, eq. (1.7); None means the identity.
        ``Q0 - M0 M0^T`` (the covariance C0 of theta(0)) must be positive semi-definite.
    k : int or None
        Number of target directions; defaults to the largest index used in ``target`` (at least 1).
    schedule : str
        Data-reuse schedule (:mod:`dmft.schedules`): ``"multi-pass"`` (default, the full batch
        reused at every step), ``"one-pass"``, ``"reuse-R"``, ``"minibatch-B"``.  ``alpha`` is the
        data-set size over d for multi-pass and mini-batch, the size of each fresh batch for
        one-pass and reuse.
    loss : {"square", "logistic", "correlation"}
        Per-sample loss: ``(yhat - y)^2 / 2``, ``log(1 + exp(-y yhat))`` (labels in {-1, +1},
        checked on Gaussian inputs; no label noise) or ``-y yhat``.
    readout : {"fixed", "trained"}
        Whether the second layer ``a`` stays fixed or is trained jointly with the first.
    eta_readout : float > 0 or None
        Step of the second layer (trained readout only); None means ``eta``.
    ridge_readout : float >= 0 or None
        Ridge of the second layer (trained readout only); None means 0.
    normalize : {"none", "sphere"}
        ``"sphere"`` puts every first-layer row back on ``|w_j|^2 = d`` after each step (Q0
        must have a unit diagonal).

    Notes
    -----
    With a fixed readout ``eta_readout`` and ``ridge_readout`` are None (they may not be given).
    ``pm_labels`` says whether the labels are +-1 (then results carry a class error).
    """

    def __init__(self, target, p=1, activation="relu", a=None, alpha=1.0, eta=0.1, ridge=0.0,
                 noise=0.0, steps=10, M0=None, Q0=None, k=None, schedule="multi-pass",
                 loss="square", readout="fixed", eta_readout=None, ridge_readout=None,
                 normalize="none"):
        #: fields given explicitly (others are derived from p and the target, see replace())
        self._given = {name for name, value in (("a", a), ("M0", M0), ("Q0", Q0), ("k", k),
                                                 ("eta_readout", eta_readout),
                                                 ("ridge_readout", ridge_readout))
                       if value is not None}
        self.target = target if isinstance(target, Target) else Target(target, field="target")
        self.p = _int("p", p, 1, MAX_WIDTH)
        self.activation = get_activation(activation).name
        self.alpha = _real("alpha", alpha, positive=True)
        self.eta = _real("eta", eta, positive=True)
        self.ridge = _real("ridge", ridge, nonneg=True)
        self.noise = _real("noise", noise, nonneg=True)
        self.steps = _int("steps", steps, 1)
        used = self.target.k_used
        if used > MAX_WIDTH:
            raise ProblemError("target", f"uses z{used}; at most {MAX_WIDTH} target directions")
        if k is None:
            self.k = max(used, 1)
        else:
            self.k = _int("k", k, 1, MAX_WIDTH)
            if self.k < used:
                raise ProblemError("k", f"the target uses z{used} but k = {self.k}")
        self.a = default_second_layer(self.p) if a is None else _array("a", a, (self.p,))
        self.M0 = np.zeros((self.p, self.k)) if M0 is None else _array("M0", M0, (self.p, self.k))
        if Q0 is None:
            self.Q0 = np.eye(self.p)
        else:
            Q0 = _array("Q0", Q0, (self.p, self.p))
            scale = max(1.0, float(np.max(np.abs(Q0))))
            if np.max(np.abs(Q0 - Q0.T)) > 1e-10 * scale:
                raise ProblemError("Q0", "must be symmetric")
            self.Q0 = 0.5 * (Q0 + Q0.T)
        resid = self.Q0 - self.M0 @ self.M0.T
        scale = max(1.0, float(np.max(np.abs(self.Q0))))
        lam_min = float(np.linalg.eigvalsh(resid).min())
        if lam_min < -1e-10 * scale:
            raise ProblemError("Q0", f"Q0 - M0 M0^T must be positive semi-definite "
                                      f"(smallest eigenvalue {lam_min:.3g})")
        self.plan = parse_schedule(schedule)
        self.schedule = self.plan.name
        self._beyond(loss, readout, eta_readout, ridge_readout, normalize)

    def _beyond(self, loss, readout, eta_readout, ridge_readout, normalize):
        """Check and set the fields beyond the paper's model (docs/theory/beyond.md)."""
        self.loss = _choice("loss", loss, LOSSES)
        self.readout = _choice("readout", readout, READOUTS)
        self.normalize = _choice("normalize", normalize, NORMALIZATIONS)
        if self.readout == "fixed":
            for name, value in (("eta_readout", eta_readout), ("ridge_readout", ridge_readout)):
                if value is not None:
                    raise ProblemError(name, "only a trained second layer has one "
                                             "(readout = 'fixed'; set readout = 'trained')")
            self.eta_readout = self.ridge_readout = None
        else:
            self.eta_readout = self.eta if eta_readout is None else \
                _real("eta_readout", eta_readout, positive=True)
            self.ridge_readout = 0.0 if ridge_readout is None else \
                _real("ridge_readout", ridge_readout, nonneg=True)
        self.pm_labels = self.noise == 0 and pm_one_labels(self.target, self.k)
        if self.loss == "logistic":
            if not pm_one_labels(self.target, self.k):
                raise ProblemError("target", f"the logistic loss needs labels in {{-1, +1}}; "
                                             f"{self.target.expr!r} takes other values on "
                                             f"Gaussian inputs (use e.g. sign(...))")
            if self.noise > 0:
                raise ProblemError("noise", "label noise is not defined for the logistic loss "
                                            "(labels in {-1, +1}); set noise = 0")
        if self.normalize == "sphere":
            dev = float(np.max(np.abs(np.diag(self.Q0) - 1.0)))
            if dev > 1e-12:
                raise ProblemError("Q0", f"spherical normalisation needs a unit diagonal "
                                         f"(|w_j|^2 = d); the diagonal of Q0 is off by {dev:.3g}")

    # ------------------------------------------------------------------ derived
    @property
    def alpha_tot(self):
        """Size over d of all the data used over steps 0..T, eqs. (4.1), (4.6): ``alpha`` for
        multi-pass and mini-batch, ``alpha * n_b`` for reuse-R (n_b batches), ``alpha * (T+1)``
        for one-pass."""
        return self.plan.alpha_tot(self.alpha, self.steps)

    @property
    def C0(self):
        """Covariance of theta(0): ``Q0 - M0 M0^T`` (p, p)."""
        return self.Q0 - self.M0 @ self.M0.T

    def labels(self, z, xi):
        """Labels ``y = f*(z) + sqrt(noise) xi`` of eq. (1.2).

        Parameters
        ----------
        z : ndarray, shape (n, k)
            Latent target coordinates ``z*`` of n samples (standard normal).
        xi : ndarray, shape (n,)
            Standard normal label noise (multiplied by ``sqrt(noise)``).

        Returns
        -------
        ndarray, shape (n,)
            The labels.

        Raises
        ------
        ProblemError
            On ``target`` when f* is not finite at some of the ``z`` (e.g. the log of a
            negative number).
        """
        fz = self.target(z)
        bad = int(np.sum(~np.isfinite(fz)))
        if bad:
            raise ProblemError("target", f"{self.target.expr!r} is not finite at {bad} of "
                                         f"{fz.size} Gaussian inputs (e.g. log or sqrt of a "
                                         f"negative number)")
        return fz + math.sqrt(self.noise) * xi

    def to_dict(self):
        """The problem as a JSON-serialisable dict that :meth:`from_dict` turns back into an
        equal Problem.

        Returns
        -------
        dict
            Every field of the constructor (``target`` as its expression, ``a``, ``M0`` and
            ``Q0`` as nested lists, derived values included; ``eta_readout`` and
            ``ridge_readout`` are None for a fixed readout).
        """
        return {
            "target": self.target.expr, "p": self.p, "activation": self.activation,
            "a": self.a.tolist(), "alpha": self.alpha, "eta": self.eta, "ridge": self.ridge,
            "noise": self.noise, "steps": self.steps, "M0": self.M0.tolist(),
            "Q0": self.Q0.tolist(), "k": self.k, "schedule": self.schedule,
            "loss": self.loss, "readout": self.readout, "eta_readout": self.eta_readout,
            "ridge_readout": self.ridge_readout, "normalize": self.normalize,
        }

    @classmethod
    def from_dict(cls, d):
        """Build a Problem from a dict of constructor arguments (:meth:`to_dict`, a config's
        ``[problem]`` table).

        Parameters
        ----------
        d : dict
            Field name -> value; ``target`` is required, the other fields are optional and
            take the constructor's defaults.

        Returns
        -------
        Problem

        Raises
        ------
        ProblemError
            When ``d`` is not a dict, lacks ``target``, has an unknown field or a bad value.
        """
        if not isinstance(d, dict):
            raise ProblemError("problem", "expected a table of problem fields")
        known = set(FIELDS)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ProblemError(unknown[0], f"unknown problem field; known fields: "
                                           f"{', '.join(sorted(known))}")
        if "target" not in d:
            raise ProblemError("target", "missing")
        return cls(**d)

    def to_json(self):
        """The problem as a JSON string.

        Returns
        -------
        str
            ``json.dumps`` of :meth:`to_dict`.
        """
        return json.dumps(self.to_dict())

    def replace(self, **changes):
        """A new Problem with some fields changed.

        Fields that were derived (``a``, ``M0``, ``Q0``, ``k``, ``eta_readout``,
        ``ridge_readout`` left at None) are derived again,
        so ``replace(p=3)`` or ``replace(target=...)`` work; fields given explicitly are kept
        unless changed.

        Parameters
        ----------
        **changes
            New values of constructor arguments, by name (validated as by the constructor).

        Returns
        -------
        Problem
            A new problem; this one is unchanged.
        """
        d = self.to_dict()
        for name in ("a", "M0", "Q0", "k", "eta_readout", "ridge_readout"):
            if name not in self._given:
                d[name] = None
        d.update(changes)
        return Problem.from_dict(d)

    def __eq__(self, other):
        return isinstance(other, Problem) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return (f"Problem(target={self.target.expr!r}, p={self.p}, k={self.k}, "
                f"activation={self.activation!r}, alpha={self.alpha}, eta={self.eta}, "
                f"ridge={self.ridge}, noise={self.noise}, steps={self.steps}, "
                f"schedule={self.schedule!r}{self._beyond_repr()})")

    def _beyond_repr(self):
        """The fields beyond the paper's model that differ from their defaults."""
        out = [f"loss={self.loss!r}"] if self.loss != "square" else []
        if self.readout == "trained":
            out += ["readout='trained'", f"eta_readout={self.eta_readout}",
                    f"ridge_readout={self.ridge_readout}"]
        if self.normalize != "none":
            out.append(f"normalize={self.normalize!r}")
        return "".join(", " + x for x in out)
