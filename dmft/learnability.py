"""Learnability of a target f*(z1..zk) by one-pass and batch-reusing GD (docs: theory section 8).

Expectations are tensor Gauss-Hermite sums over the k coordinates (``GRIDS`` nodes per
coordinate, exact for polynomials of degree <= 2n - 1 in each), not Monte Carlo.  The nodes are
symmetric under z_r -> -z_r and permutations, so quantities that vanish by such a symmetry
(He2, z1*z2, sign(z1*z2*z3), ...) come out at round-off even for discontinuous targets.  Each
statistic is also computed on a coarser grid (n_c nodes instead of n); its stated accuracy is
the change times n_c / (n - n_c), the error of the fine grid if the rule converges like 1/n (the
rate for kinks such as |z|; smooth integrands converge much faster, jumps only like n^-1/2, so
their error can be ~2x the stated one).  "Non-zero" needs statistic > max(floor, SAFETY *
accuracy); floor < statistic <= SAFETY * accuracy is counted as zero and reported as
``undetermined`` (e.g. steps at generic places such as sign(z2 + 1): accuracy ~ 0.1 at k = 2).

* Hermite coefficients c_alpha = E[f He_alpha(z)] / sqrt(alpha!), |alpha| <= order, statistic
  |c_alpha| / std(f), floor COEF_FLOOR.  Information exponent: lowest |alpha| >= 1 with a
  non-zero coefficient; None for a constant target (and None with a note if it exceeds order).
* Leap exponent (Abbe, Boix-Adsera, Misiakiewicz 2023, Gaussian inputs) in the coordinates
  z1..zk: order the non-zero Hermite multi-indices alpha; adding one when the coordinates S are
  learned costs its degree on the new coordinates, sum_{r not in S} alpha_r; the leap is the
  minimum over orders of the largest cost (exact, :func:`leap_exponent`).  A single-index
  target's leap is its information exponent (He3(z1): 3); z1 + z2**2: 2; z1 + z1*z2: 1 (a
  staircase); z1*z2*z3: 3.  None for a constant target.  ``leap_order`` is one optimal order.
* One-pass subspace: span of E[y z*] (the degree-1 coefficients), dimension 0 or 1.
* Batch-reuse staircase: stage 1 = directions v with E[v.z* | y] != 0: the right singular
  vectors of the stacked rows b_G = E[G~(y) z*] / sqrt(n_G) over standardised test functions
  G~ (He_1..He_4, tanh steps and Gaussian bumps of the standardised label at its quantiles),
  i.e. the eigen-directions of A = mean_G b_G b_G^T; the statistic, a singular value, is an RMS
  correlation in [0, 1], floor STAT_FLOOR.  Stage s + 1 repeats this on the complement of the
  learned U with G(y) psi(U z*) (psi: Hermite products of degree <= 3 and tanh of the
  projections): E[v.z* | y, U.z*] != 0.  Stages stop when one adds nothing; the hard subspace
  is the complement.  Stage 1 is also split by parity in y, ``reuse_odd_basis`` (G odd in y)
  and ``reuse_even_basis`` (G even), and ``y2_basis``, ``y3_basis`` hold the directions of
  E[y~^2 z*], E[y~^3 z*] (y~ standardised): at the second step of reuse a student with an
  even activation part (ReLU) moves along the first, one with a non-linear odd part (tanh)
  along the second (see :mod:`dmft.learnability_check`).
"""
import itertools
from dataclasses import dataclass, fields
import math

import numpy as np

from .checks import integer as _int
from .errors import ProblemError
from .gauss import (GaussHermiteGrid, complement, hermite_coefficients, hermite_table,
                    orthonormal_basis)
from .targets import Target, hermite

__all__ = ["learnability", "LearnabilityResult", "leap_exponent"]

GRIDS = {1: (200, 150), 2: (120, 90), 3: (40, 30), 4: (20, 16), 5: (12, 10)}  # fine, coarse
DEFAULT_ORDER = {1: 20, 2: 12, 3: 8, 4: 6, 5: 5}
MAX_K = max(GRIDS)
COEF_FLOOR = 1e-8    # floor of the threshold on |c_alpha| / std(f)
STAT_FLOOR = 1e-6    # floor of the threshold on the reuse statistic (an RMS correlation)
SAFETY = 3.0         # a statistic must exceed SAFETY x its stated quadrature accuracy
WIDTH = 0.5          # width of the tanh steps and bumps, in units of std(y)
LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)


def leap_exponent(alphas):
    """Leap exponent, eq. (8.3), of a set of non-zero Hermite multi-indices, computed exactly.

    Adding alpha when the coordinates S are learned costs sum_{r not in S} alpha_r and learns
    its support; the leap is the minimum over orders of the largest cost.  S only grows, so
    best(S') = min over (S, alpha) with S | supp(alpha) = S' of max(best(S), cost(alpha, S)),
    by dynamic programming over the 2^k subsets in order of size.  (Greedy, the cheapest step
    first, is optimal too, as costs only decrease as S grows; not relied upon.)

    Parameters
    ----------
    alphas : iterable of tuples of int
        Multi-indices (alpha_1..alpha_k) of degree >= 1 with a non-zero coefficient.

    Returns
    -------
    (int or None, list of (tuple, int))
        The leap (None for an empty set) and one optimal order: the multi-indices that add
        coordinates, each with its cost.
    """
    alphas = [tuple(int(x) for x in a) for a in alphas if sum(a) > 0]
    if not alphas:
        return None, []
    k = len(alphas[0])
    supp = [sum(1 << r for r in range(k) if a[r]) for a in alphas]
    best = {0: (0, None, None)}                       # S -> (leap so far, previous S, alpha)
    for S in sorted(range(1 << k), key=lambda m: bin(m).count("1")):
        if S not in best:
            continue
        for a, m in zip(alphas, supp):
            if m & ~S:
                cost = sum(a[r] for r in range(k) if not S >> r & 1)
                new, val = S | m, max(best[S][0], cost)
                if new not in best or val < best[new][0]:
                    best[new] = (val, S, a)
    full = 0
    for m in supp:
        full |= m
    order, S = [], full
    while S:
        val, prev, a = best[S]
        order.append((a, sum(a[r] for r in range(k) if not prev >> r & 1)))
        S = prev
    return best[full][0], order[::-1]


def _margin(stat, thr, name, floor):
    """One family of decisions (accepted iff stat > thr): extreme statistics, their ratios to
    their thresholds, margin = (smallest accepted ratio) / (largest rejected ratio)."""
    stat, thr = np.atleast_1d(stat), np.atleast_1d(thr)
    keep = stat > thr
    r = stat / thr
    lo = float(r[keep].min()) if keep.any() else None
    hi = float(r[~keep].max()) if (~keep).any() else None
    return {"statistic": name, "threshold_floor": floor, "safety": SAFETY,
            "threshold": float(thr.max()),
            "smallest_accepted": float(stat[keep].min()) if keep.any() else None,
            "largest_rejected": float(stat[~keep].max()) if (~keep).any() else None,
            "smallest_accepted_over_threshold": lo, "largest_rejected_over_threshold": hi,
            "margin": (lo / hi if hi else math.inf) if lo and hi is not None else None,
            "undetermined": int(((~keep) & (stat > np.maximum(floor, thr / SAFETY))).sum())}


def _label_family(y, mean, std, qs):
    """(n_G, n) test functions of the label: He_1..He_4, tanh steps, bumps of (y - mean)/std."""
    ys = (y - mean) / std
    u2 = [((ys - q) / WIDTH) ** 2 for q in qs]
    return np.array([hermite(j, ys) for j in range(1, 5)]
                    + [np.tanh((ys - q) / WIDTH) for q in qs]
                    + [np.where(u < 200.0, np.exp(-0.5 * np.minimum(u, 200.0)), 0.0) for u in u2])


def _projection_family(t):
    """Constant, Hermite products of degree 1..3 and tanh(2 t_i) of the projections t (n, m)."""
    m = t.shape[1]
    H = [hermite_table(3, t[:, i]) for i in range(m)]
    fam = [np.ones(t.shape[0])]
    for b in itertools.product(range(4), repeat=m):
        if 1 <= sum(b) <= 3:
            fam.append(np.prod([H[i][b[i]] for i in range(m)], axis=0))
    return fam + [np.tanh(2.0 * t[:, i]) for i in range(m)]


def _stage_rows(grid, labels, U, N):
    """Rows b_G = E[G~ N z*] / sqrt(n_G) over the test functions G (G~ standardised), so that
    the singular values are the RMS correlations; batched one psi at a time (few BLAS calls:
    they are slow on busy machines)."""
    zn = grid.zs @ N.T
    wz, ez = grid.ws[:, None] * zn, grid.ws @ zn
    rows, count = [np.zeros((0, N.shape[0]))], 0
    for psi in (_projection_family(grid.zs @ U.T) if U.shape[0] else [None]):
        G = labels if psi is None else labels * psi
        m = G @ grid.ws
        s = np.sqrt(np.clip((G * G) @ grid.ws - m * m, 0.0, None))
        ok = s > 1e-12 * (np.abs(m) + 1e-300)
        rows.append((G[ok] @ wz - m[ok, None] * ez) / s[ok, None])
        count += G.shape[0]
    return np.vstack(rows) / math.sqrt(count)


def _span(grids, labels, U, k):
    """Directions orthogonal to U correlated with the test functions: (basis, margin, acc)."""
    N = complement(U, k)
    B = _stage_rows(grids[0], labels[0], U, N)
    st, V = np.zeros(N.shape[0]), np.eye(N.shape[0])
    if B.shape[0]:
        _, sv, vt = np.linalg.svd(B, full_matrices=True)
        st[:sv.size], V = sv, vt.T
    change = np.abs(st - np.linalg.norm(_stage_rows(grids[1], labels[1], U, N) @ V, axis=0))
    change *= grids[1].n0 / (grids[0].n0 - grids[1].n0)      # stated accuracy, see above
    thr = np.maximum(STAT_FLOOR, SAFETY * change)
    name = "RMS correlation of v.z* with the test functions G(y" + (", U.z*)" if len(U) else ")")
    return (orthonormal_basis((N.T @ V[:, st > thr]).T, k), _margin(st, thr, name, STAT_FLOOR),
            float(change.max()))


@dataclass(eq=False)
class LearnabilityResult:
    """Outcome of :func:`learnability` (definitions in the module docstring).

    Attributes
    ----------
    target : str
        The target expression.
    k, order : int
        Number of directions and highest Hermite order examined.
    information_exponent, leap_exponent : int or None
        None for a constant target.
    leap_order : list of (multi-index, cost)
        One optimal order of the multi-indices that add coordinates, each with its degree on
        the new coordinates (the leap is the largest).
    hermite : dict
        Multi-index tuple -> non-negligible c_alpha (|alpha| <= order).
    one_pass_basis : ndarray (dim, k)
        Orthonormal basis of the one-pass subspace (span of E[y z*]).
    one_pass_subspace_dim : int
    reuse_stages : list of ndarray (d_s, k)
        Directions added by each stage of the batch-reuse staircase (the last adds none
        unless everything is learned).
    reuse_subspace_dims : list of int
        Cumulative dimension after each stage.
    reuse_basis, hard_basis : ndarray (dim, k)
    hard_subspace_dim : int
    reuse_odd_basis, reuse_even_basis : ndarray (dim, k)
        Stage 1 seen through test functions G odd / even in y.
    y2_basis, y3_basis : ndarray (0 or 1, k)
        Normalised E[y~^2 z*], E[y~^3 z*], y~ = (y - E y) / std.
    margins : dict
        Per decision family: statistic, thresholds, extremes, margin, undetermined.
    accuracy : dict
        Grids and quadrature accuracy of every statistic, variance captured.
    notes : list of str
    dmft_check : dict or None
        See :func:`dmft.learnability_check.dmft_check`.
    """

    target: str
    k: int
    order: int
    information_exponent: object
    leap_exponent: object
    leap_order: list
    hermite: dict
    one_pass_basis: np.ndarray
    one_pass_subspace_dim: int
    reuse_stages: list
    reuse_subspace_dims: list
    reuse_basis: np.ndarray
    hard_basis: np.ndarray
    hard_subspace_dim: int
    reuse_odd_basis: np.ndarray
    reuse_even_basis: np.ndarray
    y2_basis: np.ndarray
    y3_basis: np.ndarray
    margins: dict
    accuracy: dict
    notes: list
    dmft_check: object = None

    def to_dict(self):
        """JSON-serialisable dict (arrays as nested lists, non-finite numbers as None)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hermite"}
        d["hermite"] = [{"alpha": list(a), "coefficient": c} for a, c in self.hermite.items()]
        d["leap_order"] = [{"alpha": list(a), "cost": c} for a, c in self.leap_order]
        return _jsonable(d)

    def summary(self):
        """Human-readable summary."""
        def fmt(B):
            return "[" + ", ".join("(" + ", ".join(f"{x:+.3f}" for x in v) + ")" for v in B) + "]"
        top = sorted(self.hermite.items(), key=lambda x: -abs(x[1]))[:6]
        lines = [f"learnability of {self.target!r} (k = {self.k}, Hermite order {self.order})",
                 f"information exponent   {self.information_exponent}",
                 f"leap exponent          {self.leap_exponent}"
                 + ("" if not self.leap_order else "  (order: " + ", ".join(
                     f"{_monomial(a)} +{c}" for a, c in self.leap_order)
                    + "; cost = degree on the new coordinates)"),
                 f"one-pass subspace      dim {self.one_pass_subspace_dim} "
                 f"{fmt(self.one_pass_basis)}",
                 f"batch-reuse staircase  dims {self.reuse_subspace_dims} "
                 + " | ".join(fmt(B) for B in self.reuse_stages),
                 f"  stage 1 by parity    odd in y {fmt(self.reuse_odd_basis)}, even in y "
                 f"{fmt(self.reuse_even_basis)}; E[y~^2 z*] {fmt(self.y2_basis)}, "
                 f"E[y~^3 z*] {fmt(self.y3_basis)}",
                 f"hard subspace          dim {self.hard_subspace_dim} {fmt(self.hard_basis)}",
                 "largest Hermite coefficients: " + ", ".join(f"c{a}={c:+.4g}" for a, c in top)]
        for name, m in self.margins.items():
            lines.append(f"margin {name}: threshold {m['threshold']:.2g}, smallest accepted "
                         f"{_num(m['smallest_accepted'])}, largest rejected "
                         f"{_num(m['largest_rejected'])}, margin {_num(m['margin'])}")
        a = self.accuracy
        lines.append(f"quadrature: {a['nodes_per_dim']} nodes per coordinate (coarse "
                     f"{a['coarse_nodes']}); accuracy Hermite {a['hermite']:.1e}, reuse "
                     + ", ".join(f"{x:.1e}" for x in a["reuse"])
                     + f"; variance captured {_num(a['variance_captured'])}")
        lines += [f"note: {n}" for n in self.notes]
        if self.dmft_check is not None:
            from .learnability_check import check_summary
            lines += check_summary(self.dmft_check)
        return "\n".join(lines)

    def __repr__(self):
        return (f"<LearnabilityResult {self.target!r} IE={self.information_exponent} "
                f"leap={self.leap_exponent} one-pass={self.one_pass_subspace_dim} "
                f"reuse={self.reuse_subspace_dims} hard={self.hard_subspace_dim}>")


def _monomial(alpha):
    """He_alpha(z) written out, e.g. (1, 2) -> z1*He2(z2)."""
    return "*".join(f"z{r + 1}" if a == 1 else f"He{a}(z{r + 1})"
                    for r, a in enumerate(alpha) if a)


def _num(x):
    return "-" if x is None else f"{x:.3g}"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def learnability(target, k=None, order=None, check_dmft=False, **dmft_options):
    """Information and leap exponents, one-pass and batch-reuse learnable subspaces of a target.

    Parameters
    ----------
    target : str or Target
        Expression of z1..zk (see :mod:`dmft.targets`).
    k : int or None
        Number of target directions (default: the largest index used, at least 1; at most 5).
    order : int or None
        Highest total Hermite order examined (default ``DEFAULT_ORDER[k]``).
    check_dmft : bool
        Also compare the prediction with short DMFT runs (see :mod:`dmft.learnability_check`).
    **dmft_options
        Overrides of its ``DMFT_DEFAULTS``: p (default 1), activations (or one activation),
        schedules, a, alpha, eta, ridge, noise, steps, n_paths, seed, n_groups, response.

    Returns
    -------
    LearnabilityResult
    """
    tgt = target if isinstance(target, Target) else Target(target, field="target")
    k = max(tgt.k_used, 1) if k is None else _int("k", k, 1)
    if k < tgt.k_used:
        raise ProblemError("k", f"the target uses z{tgt.k_used} but k = {k}")
    if k > MAX_K:
        raise ProblemError("k", f"at most {MAX_K} directions are supported (tensor "
                                f"quadrature), got {k}")
    n_fine, n_coarse = GRIDS[k]
    order = DEFAULT_ORDER[k] if order is None else _int("order", order, 1)
    if order > n_coarse // 2:
        raise ProblemError("order", f"at most {n_coarse // 2} for k = {k}, got {order}")
    if dmft_options and not check_dmft:
        raise ProblemError(next(iter(dmft_options)), "DMFT options need check_dmft=True")
    grids = (GaussHermiteGrid(n_fine, k), GaussHermiteGrid(n_coarse, k))
    f, fc = tgt(grids[0].z), tgt(grids[1].z)
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(fc))):
        raise ProblemError("target", f"{tgt.expr!r} is not finite at some quadrature nodes "
                                     f"(e.g. log or sqrt of a negative number)")
    mean = float(grids[0].w @ f)
    std = math.sqrt(max(float(grids[0].w @ (f - mean) ** 2), 0.0))
    constant = std <= 1e-12 * max(1.0, abs(mean))
    scale, notes = (1.0 if constant else std), []

    # Hermite expansion, information and leap exponents, one-pass subspace
    C = hermite_coefficients(grids[0], f, order)
    dC = np.abs(C - hermite_coefficients(grids[1], fc, order)) * (n_coarse / (n_fine - n_coarse) / scale)
    alphas = [a for a in np.ndindex(C.shape) if 1 <= sum(a) <= order]
    stat = np.array([abs(C[a]) for a in alphas]) / scale * (not constant)
    thr = np.maximum(COEF_FLOOR, SAFETY * np.array([dC[a] for a in alphas]))
    live = [a for a, s, t in zip(alphas, stat, thr) if s > t]
    coefs = {tuple(map(int, a)): float(C[a]) for a in live}
    if abs(mean) > max(COEF_FLOOR * scale, SAFETY * dC[(0,) * k] * scale):
        coefs = {(0,) * k: mean, **coefs}
    ie = min((sum(a) for a in live), default=None)
    leap, leap_order = leap_exponent(live)
    used = {r - 1 for r in tgt.indices}
    seen = {r for a in live for r, ar in enumerate(a) if ar}
    if live and used - seen:
        notes.append("no non-zero Hermite coefficient of order <= " + str(order) + " involves "
                     + ", ".join(f"z{r + 1}" for r in sorted(used - seen)) + ": the leap "
                     "exponent counts the other coordinates only (it may be larger)")
    if constant:
        notes.append("constant target: nothing to learn (exponents None, every direction hard)")
    elif ie is None:
        notes.append(f"no Hermite coefficient of order 1..{order} is non-zero: the information "
                     f"exponent exceeds {order}")
    unit = [tuple(int(r == s) for s in range(k)) for r in range(k)]
    c1 = np.array([C[e] for e in unit])
    s1 = float(np.linalg.norm(c1)) / scale * (not constant)
    t1 = max(COEF_FLOOR, SAFETY * float(np.linalg.norm([dC[e] for e in unit])))
    one_pass = orthonormal_basis(c1, k) if s1 > t1 else np.zeros((0, k))
    margins = {"hermite": _margin(stat, thr, "|c_alpha| / std(f), 1 <= |alpha| <= order",
                                  COEF_FLOOR),
               "one_pass": _margin(s1, t1, "||E[y z*]|| / std(f)", COEF_FLOOR)}
    moments = {}
    for j in (2, 3):      # the directions picked up at the second step of reuse (checks)
        v, vc = ((g.w * ((y - mean) / scale) ** j) @ g.z for g, y in zip(grids, (f, fc)))
        sj = float(np.linalg.norm(v)) * (not constant)
        tj = max(COEF_FLOOR, SAFETY * float(np.linalg.norm(v - vc)) * n_coarse
                 / (n_fine - n_coarse))
        margins[f"y{j}"] = _margin(sj, tj, f"||E[y~^{j} z*]||", COEF_FLOOR)
        moments[j] = orthonormal_basis(v, k) if sj > tj else np.zeros((0, k))

    # batch-reuse staircase, and stage 1 split by parity in y
    U, stages, acc_r = np.zeros((0, k)), [], []
    odd = even = np.zeros((0, k))
    if not constant:
        fs = tgt(grids[0].zs)
        idx = np.argsort(fs)
        qs = np.interp(LEVELS, np.cumsum(grids[0].ws[idx]), fs[idx])
        qs = np.unique(np.round((qs - mean) / std, 12))
        labels = [_label_family(tgt(g.zs), mean, std, qs) for g in grids]
        while U.shape[0] < k:
            new, margins[f"reuse_stage_{len(stages) + 1}"], acc = _span(grids, labels, U, k)
            stages.append(new)
            acc_r.append(acc)
            U = np.vstack([U, new])
            if len(stages) == 1:
                flipped = [_label_family(-tgt(g.zs), mean, std, qs) for g in grids]
                odd, margins["reuse_odd"] = _span(
                    grids, [a - b for a, b in zip(labels, flipped)], np.zeros((0, k)), k)[:2]
                even, margins["reuse_even"] = _span(
                    grids, [a + b for a, b in zip(labels, flipped)], np.zeros((0, k)), k)[:2]
            if not new.shape[0]:
                break
    stages = stages or [np.zeros((0, k))]
    for name, m in margins.items():
        if m["undetermined"]:
            notes.append(f"{m['undetermined']} {name} decision(s) undetermined (statistic above "
                         f"its stated accuracy but within {SAFETY:g}x of it), counted as zero: "
                         f"a discontinuous or very steep target?")
    hard = complement(U, k)
    res = LearnabilityResult(
        target=tgt.expr, k=k, order=order, information_exponent=ie, leap_exponent=leap,
        leap_order=leap_order,
        hermite=coefs, one_pass_basis=one_pass, one_pass_subspace_dim=one_pass.shape[0],
        reuse_stages=stages, reuse_subspace_dims=list(itertools.accumulate(
            s.shape[0] for s in stages)), reuse_basis=U, hard_basis=hard,
        hard_subspace_dim=hard.shape[0], reuse_odd_basis=odd, reuse_even_basis=even,
        y2_basis=moments[2], y3_basis=moments[3],
        margins=margins, notes=notes, dmft_check=None,
        accuracy={"nodes_per_dim": n_fine, "coarse_nodes": n_coarse,
                  "exact_degree_per_coordinate": 2 * n_fine - 1,
                  "hermite": float(max((dC[a] for a in alphas), default=0.0)),
                  "hermite_order_le_3": float(max((dC[a] for a in alphas if sum(a) <= 3),
                                                  default=0.0)),
                  "reuse": acc_r, "variance_captured": None if constant else
                  float(sum(C[a] ** 2 for a in live) / std ** 2),
                  "meaning": "largest stated accuracy of the statistics: change between "
                             "the fine and the coarse grid times n_c / (n - n_c)"})
    if check_dmft:
        from .learnability_check import dmft_check
        res.dmft_check = dmft_check(res, tgt, dmft_options)
    return res
