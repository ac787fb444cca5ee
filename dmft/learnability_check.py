"""Comparison of the learnability prediction of :mod:`dmft.learnability` with short DMFT runs.

Each run (one per schedule and student activation) starts at M0 = 0, so any overlap comes from
learning.  The prediction depends on the student through the parity of its activation:
a linear part (Hermite mu_1 != 0) learns E[y z*] (the one-pass direction); on reuse, a
non-linear odd part picks up the directions E[G(y) z*] with G odd in y (tanh, erf: e.g. y^3
for He3) and a non-constant even part those with G even (ReLU, softplus, whose sigma' is a
constant plus an odd function: e.g. y^2 for the z2 direction of z1 + z1*z2).  Error bars
come from the solver's independent replicas.
"""
import itertools
import math

import numpy as np

from .errors import ProblemError
from .learnability import _Grid, _basis, _minus

__all__ = ["dmft_check", "DMFT_DEFAULTS"]

LEARNED_Z, ZERO_Z = 3.0, 4.0   # learned: > 3 error bars at some step >= 2; zero: <= 4 at all
DMFT_DEFAULTS = {"activations": ("tanh", "relu"), "schedules": ("multi-pass", "one-pass"),
                 "p": 1, "alpha": 4.0, "eta": 1.0, "steps": 5, "n_paths": 100_000, "seed": 0}
_PROBLEM_KEYS = ("p", "a", "alpha", "eta", "ridge", "noise", "steps")
_SOLVER_KEYS = ("n_paths", "seed", "n_groups", "response")
_CHECK_KEYS = _PROBLEM_KEYS + _SOLVER_KEYS + ("activation", "activations", "schedules")


def _activation_parity(name):
    """Which parts of sigma a student has: a linear part (mu_1 != 0: one-pass learning), a
    non-linear odd part (picks up G odd in y on reuse) and a non-constant even part (G even)."""
    from .activations import get_activation
    g = _Grid(60, 1)
    s = get_activation(name).f(g.x)
    so, se = 0.5 * (s - s[::-1]), 0.5 * (s + s[::-1])
    mu1, tol = g.w @ (so * g.x), 1e-10 * max(g.w @ s ** 2, 1e-300)
    return {"linear": abs(mu1) > 1e-6, "odd": g.w @ (so - mu1 * g.x) ** 2 > tol,
            "even": g.w @ (se - g.w @ se) ** 2 > tol}


def dmft_check(res, tgt, options):
    """Short DMFT runs, one per (schedule, activation).  For each subspace S with orthonormal
    rows B, the normalised overlaps of every replica are projected, X = overlap @ B^T; reported
    per step t = 1..T: value = RMS over neurons of |mean X_j| (error by the delta method) and
    significance = largest |component| / standard error over replicas.  Predictions: one_pass
    learned if sigma has a linear part; reuse_odd (odd-in-y part of stage 1 beyond one-pass)
    learned under multi-pass if sigma has a non-linear odd part, reuse_even (the rest of stage
    1) if sigma has an even part; both zero under one-pass when E[y z*] = 0; hard always zero;
    otherwise (later stages, other parities) 'free', not tested.  Learned: > LEARNED_Z error
    bars at some step >= 2; zero: <= ZERO_Z error bars at every step."""
    from .problem import Problem
    from .solver import solve
    for key in options:
        if key not in _CHECK_KEYS:
            raise ProblemError(key, f"unknown DMFT option; known: {', '.join(_CHECK_KEYS)}")
    opts = dict(DMFT_DEFAULTS, **options)
    acts = (opts.pop("activation"),) if "activation" in opts else opts["activations"]
    acts = (acts,) if isinstance(acts, str) else tuple(acts)
    schedules = opts["schedules"]
    schedules = (schedules,) if isinstance(schedules, str) else tuple(schedules)
    P, k = res.one_pass_basis, res.k
    r_odd = _minus(res.reuse_odd_basis, P, k)
    r_even = _minus(_minus(res.reuse_stages[0], P, k), r_odd, k)
    later = _basis(np.vstack(res.reuse_stages[1:] + [np.zeros((0, k))]), k)
    spaces = {"one_pass": P, "reuse_odd": r_odd, "reuse_even": r_even, "reuse_2+": later,
              "hard": res.hard_basis}
    check = {"options": {key: v for key, v in opts.items() if key != "a"}, "runs": {},
             "disagreements": [], "thresholds": {"learned": LEARNED_Z, "zero": ZERO_Z}}
    for sch, act in itertools.product(schedules, acts):
        problem = Problem(tgt, k=k, schedule=sch, activation=act,
                          **{key: opts[key] for key in _PROBLEM_KEYS if key in opts})
        par, multi = _activation_parity(problem.activation), not problem.plan.one_pass
        silent = "zero" if not P.shape[0] else "free"
        predicted = {"one_pass": "learned" if par["linear"] else "free",
                     "reuse_odd": ("learned" if par["odd"] else "free") if multi else silent,
                     "reuse_even": ("learned" if par["even"] else "free") if multi else silent,
                     "reuse_2+": "free", "hard": "zero"}
        out = solve(problem, progress=False,
                    **{key: opts[key] for key in _SOLVER_KEYS if key in opts})
        ov = out.replicas["overlap"][:, 1:]              # (G, T, p, k)
        G, p = ov.shape[0], ov.shape[2]
        run = {"schedule": problem.schedule, "activation": problem.activation,
               "status": out.status, "steps": list(range(1, ov.shape[1] + 1)), "subspaces": {}}
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
            pred, ok = predicted[name], None
            if pred == "learned":
                ok = bool(np.any(sig[1:] > LEARNED_Z) if len(sig) > 1 else sig[0] > LEARNED_Z)
            elif pred == "zero":
                ok = bool(np.all(sig <= ZERO_Z))
            if out.status != "ok" and pred != "free":
                ok = False
            if ok is False:
                check["disagreements"].append(
                    f"{problem.schedule}/{problem.activation}: {name} predicted {pred}, overlap "
                    + ", ".join(f"{v:.3g}" for v in value) + " at "
                    + ", ".join(f"{z:.1f}" for z in sig) + f" error bars (status {out.status})")
            run["subspaces"][name] = {"dim": B.shape[0], "basis": B, "predicted": pred,
                                      "value": value, "error": verr, "significance": sig,
                                      "agrees": ok}
        run["agrees"] = all(s["agrees"] is not False for s in run["subspaces"].values())
        check["runs"][f"{problem.schedule}/{problem.activation}"] = run
    tested = {n for r in check["runs"].values() for n, s in r["subspaces"].items()
              if s["predicted"] == "learned"}
    check["untested"] = [n for n in ("one_pass", "reuse_odd", "reuse_even")
                         if spaces[n].shape[0] and n not in tested]
    check["agrees"] = not check["disagreements"]
    return check
