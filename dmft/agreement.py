"""The agreement criterion between a DMFT result and a simulation: one family-wise test, used by
:func:`dmft.compare`, ``dmft validate`` and the tests.  Decisions, in plain words:

* **What is compared.**  Every entry of M (p x k), the upper triangle of Q, the train loss and the
  test error at every step t >= 1 (step 0 is the initial condition: reported, not tested); and
  the second layer a (p entries) when both sides carry its samples (a trained readout, eq.
  (7.5); a fixed one is equal on both sides and carries no test).
* **z-scores.**  z = (DMFT mean - simulation mean) / sqrt(e_DMFT^2 + e_sim^2), means and errors
  from the samples: the G replicas of the DMFT, the S seeds of the simulation.  Both errors are
  estimated, so |z| has heavier tails than a normal deviate: each z becomes the
  *normal-equivalent* z, the normal deviate with the same p-value under a Student t law with
  min(G, S) - 1 degrees of freedom, the classical conservative choice for two samples of unequal
  variances (Hsu; Scheffe 1970).  Welch-Satterthwaite degrees of freedom (used before) are
  estimated and approximate in the far tail: on null data with real correlations they made even
  the Sidak test exceed its level.
* **One test per comparison.**  The statistic is the largest normal-equivalent |z| over the
  entries and steps.  Its law for a correct DMFT is taken from the comparison's own correlations
  (one replica or one seed moves whole curves) by a Gaussian multiplier bootstrap:
  z* = (sum_g xi_g (x_g - xbar) / sqrt(G (G-1)) + sum_s zeta_s (y_s - ybar) / sqrt(S (S-1))) / se,
  xi and zeta independent N(0, 1): unit variances and exactly the estimated correlation.
  ``N_BOOT`` draws from a fixed seed (``SEED``), so the test is deterministic; p = (1 + #draws
  with max|z*| >= observed) / (N_BOOT + 1).  Sidak's p-value 1 - (1 - p1)^m (p1 the two-sided p
  of the largest |z|, m entries x steps) bounds it for Gaussian scores of any correlation (Sidak
  1967): the reported p-value is the smaller of the two (Sidak resolves p below 1 / N_BOOT), and
  Sidak alone is the fallback without samples (``method = "sidak"``).  A comparison fails when
  p <= level, or when a compared step is NaN (a diverged run cannot be verified).  The estimated
  correlation has rank <= G + S - 2, often below m: the false-alarm rate this gives is measured
  (tests/test_agreement.py, benchmarks/agreement.py), not assumed.
* **Levels.**  ``LEVEL`` = 1/2000 for every comparison (compare, validate, tests); N_BOOT puts 25
  draws beyond the critical value.  The validation suite makes K case tests and one calibration
  test, each at ``LEVEL``, so a correct solver fails it with probability at most (K + 1) * LEVEL
  (union bound): 0.8 % for 15 cases, below 1 % up to 19.  A lower level costs little power: the
  critical |z| grows slowly (Sidak's by about 0.15 per halving of the level, at 100 entries).
* **Power.**  A relative bias b of the DMFT is b times its change since t = 0: DMFT_b(t) =
  DMFT(t) + b (DMFT(t) - DMFT(0)) for every entry (dynamics a factor 1 + b too fast).  ``power``
  is the smallest b > 0 detected with probability ``POWER_PROB`` (0.9) at the level: the shift
  b (DMFT(t) - DMFT(0)) / se is added to the bootstrap draws, each divided by a random error
  ratio se_hat / se (chi-square laws with G - 1 and S - 1 degrees of freedom: a new comparison
  estimates its errors too) and held to the raw critical |z| (the t quantile of the family-wise
  critical value); the smallest b that makes a draw reject is found in closed form, and ``power``
  is their 0.9 quantile (inf when nothing moves).  A plug-in estimate: its relative error is that
  of the estimated errors, about 1 / sqrt(2 min(G, S)).
* **Suite calibration.**  Each comparison also gives ``dispersion_p``, the p-value of the mean
  squared normal-equivalent z under the same bootstrap law (correlations included, so correlated
  z-scores cannot fake a failure).  Cases use independent seeds, so these p-values are independent
  and uniform for a correct solver; :func:`calibration` combines them by Stouffer's
  Z = sum_k Phi^-1(1 - p_k) / sqrt(K), two-sided: z-scores too large (a bias, underestimated
  errors) or too small (overestimated errors) both fail it.  The estimated correlation spreads the
  bootstrap law of the mean slightly too wide, which makes this test conservative.
"""
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .checks import integer
from .errors import ProblemError

LEVEL = 5e-4          # family-wise level of one comparison
N_BOOT = 50_000       # bootstrap draws of the null law of max |z|
POWER_PROB = 0.9      # detection probability that defines the power
SEED = 20240601       # the bootstrap's fixed seed
OBSERVABLES = ("M", "Q", "train_loss", "test_error")
_CHUNK = 5000


def entries(name, x):
    """The independent entries of observable ``name`` of ``x``, shape ``(..., T+1, *shape)``,
    flattened to (..., T+1, n): M's p x k entries, Q's upper triangle, a loss as one entry.

    Parameters
    ----------
    name : str
        One of ``OBSERVABLES``.
    x : ndarray
        Array whose axes after the time axis are those of the observable.

    Returns
    -------
    ndarray
        (..., T+1, n) array of entries.
    """
    x = np.asarray(x, dtype=float)
    if name == "Q":
        iu = np.triu_indices(x.shape[-1])
        return x[..., iu[0], iu[1]]
    if name == "M":
        return x.reshape(x.shape[:-2] + (-1,))
    if name == "a":
        return x
    return x[..., None]


def _entry_index(name, shape, j):
    """Tuple index (0-based) of flattened entry j of observable ``name`` of the given shape."""
    if name == "Q":
        iu = np.triu_indices(shape[-1])
        return int(iu[0][j]), int(iu[1][j])
    if name == "M":
        return tuple(int(i) for i in np.unravel_index(j, shape[-2:]))
    if name == "a":
        return (int(j),)
    return ()


def normal_equivalent(z, nu):
    """The normal deviate with the same two-sided p-value as a Student t score.

    Parameters
    ----------
    z : ndarray
        Scores following a Student t law with ``nu`` degrees of freedom.
    nu : float
        Degrees of freedom (here min(G, S) - 1, see the module docstring).

    Returns
    -------
    ndarray
        |z| mapped to the normal deviate of equal p-value (inf and NaN kept).
    """
    z = np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore"):
        out = stats.norm.isf(stats.t.sf(np.abs(z), nu))
    return np.where(np.isfinite(z), out, np.abs(z))


def sidak(z_max, m):
    """Sidak family-wise p-value of the largest |z| among m Gaussian scores (any correlation).

    Parameters
    ----------
    z_max : float
        The largest (normal-equivalent) |z|.
    m : int
        Number of scores.

    Returns
    -------
    float
        1 - (1 - p1)^m with p1 = 2 Phi(-z_max); an upper bound of the family-wise p-value.
    """
    if m == 0:
        return 1.0
    p1 = 2 * stats.norm.sf(z_max)
    return float(-np.expm1(m * np.log1p(-min(p1, 1 - 1e-16))))


@dataclass(frozen=True)
class Agreement:
    """Outcome of the agreement test of one comparison (see the module docstring).

    Attributes
    ----------
    z, z_normal : dict of ndarray
        Per observable, (T+1, entries) raw and normal-equivalent |z| (step 0 included).
    worst, worst_z : tuple, float
        (observable, 0-based entry index, step) of the largest normal-equivalent |z|, and it.
    p_value, p_sidak : float
        Family-wise p-value (the smaller of bootstrap and Sidak), and Sidak's alone.
    passed : bool
        p_value > level and no compared step missing.
    level, critical_z, critical_raw_z : float
        The level, the critical normal-equivalent |z| at it, and the raw |z| at which one
        entry alone fails the test (its t quantile; figures shade |z| below it).
    power : float
        Smallest relative bias of the DMFT's change since t = 0 detected with probability 0.9.
    method : str
        "bootstrap" (Gaussian multiplier, Sidak-bounded) or "sidak" (no samples).
    dispersion_p : float
        The p-value entering the suite calibration.
    n_compared : int
        Entries x steps tested.
    """
    z: dict = field(repr=False, compare=False)
    z_normal: dict = field(repr=False, compare=False)
    worst: tuple
    worst_z: float
    p_value: float
    passed: bool
    level: float
    power: float
    method: str
    p_sidak: float
    critical_z: float
    critical_raw_z: float
    dispersion_p: float
    n_compared: int

    def describe(self):
        """The verdict in one line: p-value, level, worst entry and step, power.

        Returns
        -------
        str
        """
        name, idx, t = self.worst
        where = name + ("[" + ",".join(str(i + 1) for i in idx) + "]" if idx else "") + f" t={t}"
        return (f"{'agreement' if self.passed else 'DISAGREEMENT'}: family-wise p = "
                f"{self.p_value:.3g} ({self.method}, {self.n_compared} entries x steps, level "
                f"{self.level:g}); worst |z| {self.worst_z:.2f} at {where}; detects a relative "
                f"bias of {self.power:.3g} of the DMFT's change since t = 0 "
                f"(probability {POWER_PROB:g})")


def agreement(dmft, sim, level=LEVEL, n_boot=N_BOOT):
    """Test a DMFT against a simulation from their samples.

    Parameters
    ----------
    dmft : mapping
        Per observable of ``OBSERVABLES``, the per-replica array (G, T+1, ...)
        (``Result.replicas``).
    sim : mapping
        Per observable, the per-seed array (S, T+1, ...) (``SimResult.seeds``).
    level : float
        Family-wise level (default ``LEVEL``).
    n_boot : int
        Bootstrap draws (default ``N_BOOT``; fewer resolve p-values down to 1/n_boot only).

    Returns
    -------
    Agreement
    """
    for field_, samples in (("dmft", dmft), ("sim", sim)):
        missing = [n for n in OBSERVABLES if n not in samples]
        if missing:
            raise ProblemError(field_, f"no samples of {', '.join(missing)}")
    names = OBSERVABLES + (("a",) if "a" in dmft and "a" in sim else ())
    X = np.concatenate([entries(n, dmft[n]) for n in names], axis=-1)           # (G, T+1, m0)
    Y = np.concatenate([entries(n, sim[n]) for n in names], axis=-1)            # (S, T+1, m0)
    if X.shape[1:] != Y.shape[1:]:
        raise ProblemError("sim", f"steps x entries {Y.shape[1:]} differ from the DMFT's "
                                  f"{X.shape[1:]} (another problem?)")
    G, S = X.shape[0], Y.shape[0]
    dx, dy = X.mean(axis=0), Y.mean(axis=0)
    ex = X.std(axis=0, ddof=1) / np.sqrt(G) if G > 1 else np.full_like(dx, np.nan)
    ey = Y.std(axis=0, ddof=1) / np.sqrt(S) if S > 1 else np.full_like(dy, np.nan)
    scores = _scores(dx - dy, ex, ey, G, S)
    factor = None
    if G > 1 and S > 1:     # rows whose Gaussian combinations have the differences' covariance
        factor = np.concatenate([(X - dx) / np.sqrt(G * (G - 1.0)),
                                 (Y - dy) / np.sqrt(S * (S - 1.0))])      # (G+S, T+1, m0)
    return _test(scores, dx - dx[:1], factor, _layout(dmft, names), level, n_boot)


def assess(result, sim, level=LEVEL, n_boot=N_BOOT):
    """Test a :class:`~dmft.Result` against a :class:`~dmft.SimResult`.

    Uses the replicas and seeds when present; otherwise the means and errors with the Sidak test
    (errors then counted with G = ``result.n_groups`` and S = ``sim.n_seeds``).

    Parameters
    ----------
    result : Result
    sim : SimResult
    level : float
        Family-wise level (default ``LEVEL``).
    n_boot : int
        Bootstrap draws.

    Returns
    -------
    Agreement
    """
    reps, seeds = getattr(result, "replicas", None) or {}, getattr(sim, "seeds", None) or {}
    if all(n in reps for n in OBSERVABLES) and all(n in seeds for n in OBSERVABLES):
        return agreement(reps, seeds, level, n_boot)

    def cat(obj, suffix):
        return np.concatenate([entries(n, getattr(obj, n + suffix)) for n in OBSERVABLES], -1)

    dx, dy = cat(result, ""), cat(sim, "")
    scores = _scores(dx - dy, cat(result, "_err"), cat(sim, "_err"), result.n_groups,
                     sim.n_seeds)
    layout = _layout({n: getattr(result, n)[None] for n in OBSERVABLES})
    return _test(scores, dx - dx[:1], None, layout, level, n_boot)


def _scores(diff, ex, ey, G, S):
    """Raw z, normal-equivalent |z|, combined error, the DMFT's share of the variance, and the
    sample sizes (both sides exact: z = 0 when they agree to 1e-9, inf otherwise)."""
    se = np.sqrt(ex ** 2 + ey ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = diff / se
        share = ex ** 2 / se ** 2
    exact = se <= 1e-12
    z[exact] = np.where(np.abs(diff[exact]) < 1e-9, 0.0, np.inf)
    return z, normal_equivalent(z, max(min(G, S) - 1, 1)), se, share, (G, S)


def _layout(samples, names=OBSERVABLES):
    """(name, shape of one step, number of entries) per observable."""
    shapes = {n: np.shape(samples[n])[2:] for n in names}
    return [(n, shp, entries(n, np.zeros((1, 1) + shp)).shape[-1]) for n, shp in shapes.items()]


def _null_draws(C, m, n_draw):
    """Null scores in chunks: Gaussian combinations of the rows of C (n, m), or independent
    N(0, 1) scores when C is None (the Sidak fallback)."""
    rng = np.random.default_rng(SEED)
    Cf = None if C is None else C.astype(np.float32)
    for start in range(0, n_draw, _CHUNK):
        size = min(_CHUNK, n_draw - start)
        if Cf is None:
            yield rng.standard_normal((size, m), dtype=np.float32)
        else:
            yield rng.standard_normal((size, Cf.shape[0]), dtype=np.float32) @ Cf


def _test(scores, change, factor, layout, level, n_boot):
    """The family-wise test on (T+1, m0) arrays; ``factor`` (n, T+1, m0) or None (Sidak)."""
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ProblemError("level", f"must be a probability in (0, 1), got {level!r}")
    n_boot = integer("n_boot", n_boot, 1)
    z, u, se, share, sizes = scores
    exact = se <= 1e-12
    tested = ~np.isnan(z) & ~(exact & (z == 0))          # exact agreeing pairs carry no test
    tested[0] = False                                    # step 0: the initial condition
    complete = not np.isnan(z[1:]).any()                 # a diverged step cannot be verified
    m = int(tested.sum())
    uu = np.where(tested, u, -np.inf)
    flat = int(np.argmax(uu))
    z_max = float(uu.flat[flat]) if m else 0.0
    p_sidak = sidak(z_max, m)
    noisy = tested & ~exact
    C = None if factor is None else factor[:, noisy] / se[noisy]
    method = "bootstrap" if C is not None and np.isfinite(C).all() else "sidak"
    C = C if method == "bootstrap" else None
    n_draw = n_boot if method == "bootstrap" else min(n_boot, 2 * _CHUNK)
    maxes, disp, first = [], [], None
    for draws in (_null_draws(C, int(noisy.sum()), n_draw) if noisy.any() else ()):
        maxes.append(np.abs(draws).max(axis=1))
        disp.append(np.mean(np.square(draws, dtype=np.float64), axis=1))
        first = draws if first is None else first
    if first is None:                                    # nothing random to compare
        p, crit, disp_p, power = (0.0 if np.isinf(z_max) else 1.0), np.inf, 1.0, np.inf
    else:
        maxes, disp = np.concatenate(maxes), np.concatenate(disp)
        if method == "bootstrap":
            p = min((1 + np.count_nonzero(maxes >= z_max)) / (n_draw + 1), p_sidak)
            crit = float(np.quantile(maxes, 1 - level))
        else:
            p = p_sidak
            crit = float(stats.norm.isf(-np.expm1(np.log1p(-level) / m) / 2))
        p = 0.0 if np.isinf(z_max) else p
        mean_u2 = float(np.mean(np.square(u[noisy])))
        disp_p = float((1 + np.count_nonzero(disp >= mean_u2)) / (len(disp) + 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = change[noisy] / se[noisy]
        power = _power(first, mu, share[noisy], sizes, crit)
    # per observable, and the worst entry's label
    zs, us, off, worst = {}, {}, 0, ("", (), 0)
    t_w, j_w = divmod(flat, z.shape[1])
    for name, shape, n in layout:
        zs[name] = z[:, off:off + n]
        us[name] = np.where(np.isnan(z[:, off:off + n]), np.nan, u[:, off:off + n])
        if m and off <= j_w < off + n:
            worst = (name, _entry_index(name, shape, j_w - off), int(t_w))
        off += n
    return Agreement(z=zs, z_normal=us, worst=worst, worst_z=z_max, p_value=float(p),
                     passed=bool(p > level and complete and m > 0), level=float(level),
                     power=float(power), method=method, p_sidak=p_sidak, critical_z=crit,
                     critical_raw_z=_raw(crit, sizes), dispersion_p=disp_p, n_compared=m)


def _raw(crit, sizes):
    """The raw |z| with the tail probability of the normal-equivalent ``crit``."""
    return float(stats.t.isf(stats.norm.sf(crit), max(min(sizes) - 1, 1)))


def _power(draws, mu, share, sizes, crit):
    """Smallest b > 0 with P(reject) >= POWER_PROB when b * mu is added to the scores (see the
    module docstring); draws (n, m) are null scores, mu (m,) the injected direction per unit b,
    share (m,) the DMFT's part of each variance, sizes (G, S)."""
    G, S = sizes
    c = _raw(crit, sizes)                  # the critical raw |z|
    mu = np.where(np.isfinite(mu), mu, 0.0)
    moving = np.abs(mu) > 0
    if not moving.any():
        return np.inf
    # estimated errors: se_hat / se = sqrt(share chi2_{G-1}/(G-1) + (1 - share) chi2_{S-1}/(S-1))
    rng = np.random.default_rng(SEED + 1)
    n = len(draws)
    cx, cy = rng.chisquare(max(G - 1, 1), n) / max(G - 1, 1), rng.chisquare(max(S - 1, 1), n) / \
        max(S - 1, 1)
    w = np.where(np.isfinite(share), share, 0.5)[moving]
    limit = c * np.sqrt(w * cx[:, None] + (1 - w) * cy[:, None])          # (n, moving)
    d = draws[:, moving].astype(np.float64) * np.sign(mu[moving])
    # a draw that does not reject at b = 0 rejects from b = min_j (limit_j - s_j z_j) / |mu_j| on
    b = np.min((limit - d) / np.abs(mu[moving]), axis=1)
    null_reject = np.any(np.abs(d) >= limit, axis=1)
    b = np.where(null_reject, 0.0, np.maximum(b, 0.0))
    return float(np.quantile(b, POWER_PROB))


@dataclass(frozen=True)
class Calibration:
    """Suite-level calibration test (see the module docstring).

    Attributes
    ----------
    p_value, statistic : float
        Two-sided p-value of Stouffer's Z, and Z = sum_k Phi^-1(1 - p_k) / sqrt(K).
    n_cases : int
        K, the number of dispersion p-values combined.
    passed, level : bool, float
        p_value > level, and the level.
    qq : dict of ndarray
        The sorted p-values ("observed") against uniform quantiles ("expected"), with a
        pointwise 95 % band ("lower", "upper", Beta order statistics).
    """
    p_value: float
    statistic: float
    n_cases: int
    passed: bool
    level: float
    qq: dict = field(repr=False, compare=False)


def calibration(p_values, level=LEVEL):
    """Combine the independent dispersion p-values of the cases of a suite.

    Parameters
    ----------
    p_values : sequence of float
        ``Agreement.dispersion_p`` of each case (NaN entries are skipped).
    level : float
        Level of the calibration test.

    Returns
    -------
    Calibration
    """
    p = np.sort(np.asarray([x for x in p_values if np.isfinite(x)], dtype=float))
    K = len(p)
    if K == 0:
        return Calibration(float("nan"), float("nan"), 0, False, float(level), {})
    Z = float(np.sum(stats.norm.isf(np.clip(p, 1e-300, 1.0))) / np.sqrt(K))
    # dispersion p-values are upper-tail: small p, large z-scores; Z large <=> z too large
    p_value = float(min(1.0, 2 * stats.norm.sf(abs(Z))))
    i = np.arange(1, K + 1)
    qq = {"expected": (i - 0.5) / K, "observed": p, "lower": stats.beta.ppf(0.025, i, K + 1 - i),
          "upper": stats.beta.ppf(0.975, i, K + 1 - i)}
    return Calibration(p_value, Z, K, bool(p_value > level), float(level), qq)
