"""Comparison of the learnability prediction of :mod:`dmft.learnability` with short DMFT runs.

Each run (one per schedule and student activation) starts at M0 = 0, so any overlap comes from
learning.  What a student picks up first depends on the parity of its activation: a linear
part (Hermite mu_1 != 0) learns E[y z*] (one pass); on reuse, a non-linear odd part (tanh, erf)
moves the overlap along E[y^3 z*] (He3) and an even part (ReLU, softplus: sigma' = const + odd;
quadratic) along E[y^2 z*] (the z2 direction of z1 + z1*z2).  An odd student never learns a
direction v whose E[v.z* | y] is even in y when the target law has the symmetry y -> -y fixing
v (e.g. z2 in z1 + z1*z2): the dynamics is equivariant under (W, y) -> (-W, -y).  Error bars
come from the solver's independent replicas.

Labels of the subspaces compared (``LEGEND``, printed with the check):

==============  ==============================================================================
``one_pass``    span E[y z*]: what one-pass GD learns from M0 = 0 (first Hermite coefficients)
``reuse_step2`` the directions the second step of batch reuse moves along for this student,
                E[y^3 z*] (non-linear odd part of sigma) and/or E[y^2 z*] (even part), minus
                ``one_pass``
``reuse_rest``  the rest of the first batch-reuse stage (E[v.z* | y] != 0) beyond ``one_pass``
                and ``reuse_step2``: learnable by reuse, not necessarily within the T steps run
``reuse_2+``    later stages of the batch-reuse staircase (E[v.z* | y, U.z*] != 0 once U is
                learned)
``hard``        the complement: E[v.z* | y, U.z*] = 0 at every stage, zero overlap at finite t
==============  ==============================================================================

Predictions: ``learned`` (more than LEARNED_Z error bars at some step >= 2), ``zero`` (within
the family-wise zero threshold at every step) and ``free`` (reported, not tested: the theory
allows movement but does not say when).  At t = 2 the exact quadrature of
:func:`dmft.exact.two_steps` is the noise-free reference wherever it applies (2p + k <= 6, not
a mini-batch of half the data).  The reference is *conclusive* when its value exceeds
EXACT_SAFETY times its stated accuracy (non-zero) or when value and accuracy are both at round-off
(below EXACT_ZERO: zero by symmetry); then a ``zero`` subspace must be zero there and
``reuse_step2``, predicted learned, non-zero.  A quadrature that cannot resolve the value (slowly
converging rules, e.g. a target with steep features) is reported as inconclusive and leaves the
verdict to the DMFT.
"""
import itertools
import math

import numpy as np
import scipy.stats

from .errors import ProblemError
from .options import SOLVER
from .gauss import GaussHermiteGrid, orthonormal_basis, subtract_span

__all__ = ["dmft_check", "check_summary", "exact_verdict", "DMFT_DEFAULTS", "LEGEND"]

LEARNED_Z = 3.0      # learned: > 3 error bars at some step >= 2
ZERO_Z = 4.0         # zero: <= max(4, Bonferroni t-quantile at family-wise level FAMILY) at all
FAMILY = 1e-3        # steps and components: a false alarm in about 1 run in 1000
EXACT_SAFETY = 3.0   # exact t = 2 reference: non-zero when above 3x its stated accuracy,
EXACT_ZERO = 1e-9    # zero when value and accuracy are both below this (round-off)
DMFT_DEFAULTS = {"activations": ("tanh", "relu"), "schedules": ("multi-pass", "one-pass"),
                 "p": 1, "alpha": 4.0, "eta": 1.0, "steps": 5, "n_paths": 100_000, "seed": 0}
_PROBLEM_KEYS = ("p", "a", "alpha", "eta", "ridge", "noise", "steps")
_SOLVER_KEYS = SOLVER.names(toml=True)
_CHECK_KEYS = _PROBLEM_KEYS + _SOLVER_KEYS + ("activation", "activations", "schedules")
#: one line per subspace label and per prediction (see the module docstring)
LEGEND = {
    "one_pass": "span E[y z*], learned by one-pass GD from M0 = 0",
    "reuse_step2": "moved along at the second step of batch reuse: E[y^3 z*] (odd non-linear "
                   "part of sigma) and/or E[y^2 z*] (even part), beyond one_pass",
    "reuse_rest": "the rest of reuse stage 1 (E[v.z* | y] != 0): learnable by reuse, maybe "
                  "after more than T steps",
    "reuse_2+": "later reuse stages (E[v.z* | y, U.z*] != 0 once U is learned)",
    "hard": "the complement: zero overlap at any finite t",
    "learned": f"prediction: overlap above {LEARNED_Z:g} error bars at some step >= 2",
    "zero": "prediction: overlap within the family-wise zero threshold at every step",
    "free": "prediction: allowed to move, not tested (the theory does not say when)",
}


def _activation_parity(name):
    """Which parts of sigma a student has: a linear part (mu_1 != 0: one-pass learning), a
    non-linear odd part (picks up G odd in y on reuse) and a non-constant even part (G even)."""
    from .activations import get_activation
    g = GaussHermiteGrid(60, 1)
    s = get_activation(name).f(g.x)
    so, se = 0.5 * (s - s[::-1]), 0.5 * (s + s[::-1])
    mu1, tol = g.w @ (so * g.x), 1e-10 * max(g.w @ s ** 2, 1e-300)
    return {"linear": bool(abs(mu1) > 1e-6), "odd": bool(g.w @ (so - mu1 * g.x) ** 2 > tol),
            "even": bool(g.w @ (se - g.w @ se) ** 2 > tol)}


def dmft_check(res, tgt, options):
    """Short DMFT runs, one per (schedule, activation), compared with the prediction ``res``.

    For each subspace with orthonormal rows B, the normalised overlaps of every replica are
    projected, X = overlap @ B^T; reported per step t = 1..T: value = RMS over neurons of the
    norm of the mean projection (error by the delta method) and significance = largest
    |component| / standard error over replicas.  Predictions, at M0 = 0:

    * one_pass (E[y z*]): learned if sigma has a linear part;
    * reuse_step2: the second step of reuse moves the overlap along E[y^3 z*] if sigma has a
      non-linear odd part, along E[y^2 z*] if it has an even part (expand the step-2 gradient
      in the label term that reuse adds to the pre-activations; the y^2 term carries the
      Gaussian mean of sigma'', zero for odd sigma): learned under multi-pass;
    * reuse_rest (the rest of stage 1) and reuse_2+ (later stages): free (reuse reaches them
      eventually, not necessarily within T steps); under one-pass, reuse_step2 and reuse_rest
      are zero when E[y z*] = 0 (M = 0 is then a fixed point of one-pass GD);
    * hard: zero.

    Learned: > LEARNED_Z error bars at some step >= 2.  Zero: every |component| / error
    <= max(ZERO_Z, q), q the two-sided Bonferroni quantile of Student's t (G - 1 dof) at
    family-wise level FAMILY over the T * p * dim components (replica errors have heavy
    tails).  'free' subspaces are reported, not tested.
    """
    from .problem import Problem
    from .solver import solve, solver_settings
    for key in options:
        if key not in _CHECK_KEYS:
            raise ProblemError(key, f"unknown DMFT option; known: {', '.join(_CHECK_KEYS)}")
    opts = dict(DMFT_DEFAULTS, **options)
    acts = (opts.pop("activation"),) if "activation" in opts else opts["activations"]
    acts = (acts,) if isinstance(acts, str) else tuple(acts)
    schedules = opts["schedules"]
    schedules = (schedules,) if isinstance(schedules, str) else tuple(schedules)
    P, k = res.one_pass_basis, res.k
    stage1 = subtract_span(res.reuse_stages[0], P, k)
    check = {"options": {key: v for key, v in opts.items() if key != "a"}, "runs": {},
             "disagreements": [], "thresholds": {"learned": LEARNED_Z, "zero_min": ZERO_Z,
                                                    "family_level": FAMILY}}
    sopts = dict({key: opts[key] for key in _SOLVER_KEYS if key in opts}, progress=False)
    runs = []                             # every problem and option checked before any solve
    for sch, act in itertools.product(schedules, acts):
        problem = Problem(tgt, k=k, schedule=sch, activation=act,
                          **{key: opts[key] for key in _PROBLEM_KEYS if key in opts})
        runs.append((problem, solver_settings(problem, **sopts)))
    for problem, settings in runs:
        par, multi = _activation_parity(problem.activation), not problem.plan.one_pass
        step2 = np.vstack([np.zeros((0, k))] + [res.y3_basis] * par["odd"]
                          + [res.y2_basis] * par["even"])
        step2 = subtract_span(orthonormal_basis(step2, k, scale=1.0), P, k)
        later = np.vstack([np.zeros((0, k))] + res.reuse_stages[1:])
        spaces = {"one_pass": P, "reuse_step2": step2,
                  "reuse_rest": subtract_span(stage1, step2, k),
                  "reuse_2+": orthonormal_basis(later, k), "hard": res.hard_basis}
        silent = "zero" if not P.shape[0] else "free"
        predicted = {"one_pass": "learned" if par["linear"] else "free",
                     "reuse_step2": "learned" if multi else silent,
                     "reuse_rest": "free" if multi else silent, "reuse_2+": "free",
                     "hard": "zero"}
        out = solve(problem, **settings)
        exact = _exact_t2(problem, spaces) if problem.steps >= 2 else None
        ov = out.replicas["overlap"][:, 1:]              # (G, T, p, k)
        G, p = ov.shape[0], ov.shape[2]
        run = {"schedule": problem.schedule, "activation": problem.activation,
               "activation_parts": par, "status": out.status,
               "steps": list(range(1, ov.shape[1] + 1)), "subspaces": {}}
        for name, B in spaces.items():
            if not B.shape[0]:
                continue
            X = ov @ B.T                                 # (G, T, p, dim)
            x, err = X.mean(axis=0), X.std(axis=0, ddof=1) / math.sqrt(G)
            value = np.sqrt((x ** 2).sum(axis=(1, 2)) / p)
            with np.errstate(invalid="ignore", divide="ignore"):
                verr = np.where(value > 0, np.sqrt((x ** 2 * err ** 2).sum(axis=(1, 2)))
                                / (p * value), np.sqrt((err ** 2).sum(axis=(1, 2)) / p))
                sig = np.max(np.where(err > 0, np.abs(x) / err, 0.0), axis=(1, 2))
            pred, ok, zero_z = predicted[name], None, None
            if pred == "learned":
                ok = bool(np.any(sig[1:] > LEARNED_Z) if len(sig) > 1 else sig[0] > LEARNED_Z)
            elif pred == "zero":
                zero_z = max(ZERO_Z, scipy.stats.t.isf(FAMILY / (2 * x.size), G - 1))
                ok = bool(np.all(sig <= zero_z))
            ex = None if exact is None else exact[name]
            verdict = None if ex is None else exact_verdict(*ex)
            if verdict == "non-zero" and pred == "zero":       # the noise-free reference at t = 2
                ok = False
            elif verdict == "zero" and name == "reuse_step2" and pred == "learned":
                ok = False
            if out.status != "ok" and pred != "free":
                ok = False
            if ok is False:
                check["disagreements"].append(
                    f"{problem.schedule}/{problem.activation}: {name} predicted {pred}, overlap "
                    + ", ".join(f"{v:.3g}" for v in value) + " at "
                    + ", ".join(f"{z:.1f}" for z in sig) + f" error bars (status {out.status})")
            run["subspaces"][name] = {"dim": B.shape[0], "basis": B, "predicted": pred,
                                      "value": value, "error": verr, "significance": sig,
                                      "zero_threshold": zero_z, "agrees": ok,
                                      "exact_t2": None if ex is None else ex[0],
                                      "exact_t2_accuracy": None if ex is None else ex[1],
                                      "exact_t2_verdict": verdict}
        run["agrees"] = all(s["agrees"] is not False for s in run["subspaces"].values())
        check["runs"][f"{problem.schedule}/{problem.activation}"] = run
    check["agrees"] = not check["disagreements"]
    return check


def exact_verdict(value, accuracy):
    """What the exact t = 2 reference says about a subspace (see the module docstring).

    Parameters
    ----------
    value : float
        RMS over neurons of the norm of the projected normalised overlap at t = 2.
    accuracy : float
        Its stated accuracy (two quadrature orders compared).

    Returns
    -------
    str
        ``"non-zero"`` (value above EXACT_SAFETY accuracies), ``"zero"`` (value and accuracy at
        round-off, below EXACT_ZERO) or ``"inconclusive"``.
    """
    if value > EXACT_SAFETY * accuracy:
        return "non-zero"
    if value <= EXACT_ZERO and accuracy <= EXACT_ZERO:
        return "zero"
    return "inconclusive"


def _exact_t2(problem, spaces):
    """The noise-free reference at t = 2 (:func:`dmft.exact.two_steps`): per subspace, the RMS
    over neurons of the norm of the normalised overlap's projection and its stated accuracy;
    None when the quadrature does not apply (2p + k > MAX_DIM, or a schedule it refuses)."""
    from .exact import two_steps
    try:
        ex = two_steps(problem)
    except ProblemError:
        return None
    q = np.sqrt(np.diagonal(ex.Q[2]))[:, None]                              # (p, 1)
    ov = ex.M[2] / q
    acc = ex.accuracy["M"][2] / q + np.abs(ex.M[2]) * \
        (np.diagonal(ex.accuracy["Q"][2])[:, None] / (2 * q ** 3))
    out, p = {}, problem.p
    for name, B in spaces.items():
        if B.shape[0]:
            X, A = ov @ B.T, acc @ np.abs(B).T                              # (p, dim)
            out[name] = (float(np.sqrt((X ** 2).sum() / p)), float(np.sqrt((A ** 2).sum() / p)))
    return out


def check_summary(check):
    """Lines of text for :meth:`LearnabilityResult.summary`."""
    lines = [f"DMFT check: {'agrees' if check['agrees'] else 'DISAGREES'} (per run and "
             f"subspace: prediction, then overlap(error bars) at steps 1..T)"]
    lines += [f"  {name + ':':12s} {text}" for name, text in LEGEND.items()]
    for run, r in check["runs"].items():
        for name, s in r["subspaces"].items():
            exact = "" if s.get("exact_t2") is None else \
                f"   exact t=2: {s['exact_t2']:.3g} +- {s['exact_t2_accuracy']:.1g} " \
                f"({s['exact_t2_verdict']})"
            lines.append(f"  {run:16s} {name:10s} dim {s['dim']} {s['predicted']:7s} "
                         + " ".join(f"{v:.3f}({z:.1f})" for v, z in
                                    zip(s["value"], s["significance"])) + exact)
    return lines + [f"  disagreement: {x}" for x in check["disagreements"]]
