"""The agreement criterion (dmft.agreement): false-alarm rate on null data with the correlation
structure of real validation cases, power, the suite calibration test, the Sidak bound.

Null data: tests/data/agreement_cases.npz holds the replica and seed samples of real validation
cases at their largest d (written by tests/data/make_agreement_fixture.py).  A null comparison
draws G replicas and S seeds from Gaussian laws with those covariances (entries and steps
t >= 1, shrunk by 10 % toward the diagonal so that the truth is full rank while the samples
that estimate it are not) and one common mean, the real DMFT curves."""
import functools
import os
import runpy
import time
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from dmft import ProblemError
from dmft.agreement import (LEVEL, OBSERVABLES, POWER_PROB, agreement, assess, calibration,
                            entries, normal_equivalent, sidak)

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                       "agreement_cases.npz")


def _flat(samples):
    return np.concatenate([entries(n, samples[n]) for n in OBSERVABLES], axis=-1)   # (n, T+1, m0)


class NullCase:
    """Gaussian null law with the covariance structure of a real case (see module docstring)."""

    def __init__(self, name, shrink=0.1):
        with np.load(FIXTURE) as f:
            self.dmft = {n: f[f"{name}/dmft/{n}"] for n in OBSERVABLES}
            self.sim = {n: f[f"{name}/sim/{n}"] for n in OBSERVABLES}
        X, Y = _flat(self.dmft), _flat(self.sim)
        self.G, self.S, self.shape = len(X), len(Y), X.shape[1:]
        self.mean = X.mean(axis=0)
        self.change = self.mean - self.mean[:1]            # the power's direction per unit b
        self.roots = [self._root(A, shrink) for A in (X, Y)]

    @staticmethod
    def _root(A, shrink):
        C = np.cov(A[:, 1:].reshape(len(A), -1), rowvar=False)
        C = (1 - shrink) * C + shrink * np.diag(np.diag(C))
        w, V = np.linalg.eigh(C)
        return V * np.sqrt(np.clip(w, 0.0, None))

    def _unflat(self, F, like):
        out, off = {}, 0
        for n in OBSERVABLES:
            shp = like[n].shape[2:]
            k = entries(n, np.zeros((1, 1) + shp)).shape[-1]
            blk = F[..., off:off + k]
            off += k
            if n == "Q":
                iu = np.triu_indices(shp[-1])
                q = np.zeros(F.shape[:2] + shp)
                q[..., iu[0], iu[1]] = blk
                q[..., iu[1], iu[0]] = blk
                out[n] = q
            elif n == "M":
                out[n] = blk.reshape(F.shape[:2] + shp)
            else:
                out[n] = blk[..., 0]
        return out

    def draw(self, rng, bias=0.0):
        """(dmft, sim) samples of one null comparison; ``bias`` b adds b (mean(t) - mean(0)) to
        the DMFT (the relative bias that ``Agreement.power`` refers to)."""
        out = []
        for n, L, like in ((self.G, self.roots[0], self.dmft), (self.S, self.roots[1], self.sim)):
            F = np.empty((n,) + self.shape)
            F[:, 0] = self.mean[0]
            noise = rng.standard_normal((n, L.shape[1])) @ L.T
            F[:, 1:] = self.mean[1:] + noise.reshape((n,) + self.mean[1:].shape)
            out.append(self._unflat(F, like))
        if bias:
            X = _flat(out[0]) + bias * self.change
            out[0] = self._unflat(X, self.dmft)
        return out


@functools.lru_cache(maxsize=None)
def _case(name):
    return NullCase(name)


@pytest.fixture(scope="module")
def null_cases():
    """Every real case of the fixture file (those with DMFT samples)."""
    with np.load(FIXTURE) as f:
        names = sorted({k.split("/")[0] for k in f.files if "/dmft/" in k})
    return {n: _case(n) for n in names}


def _clopper_pearson_upper(k, n, conf=0.99):
    return 1.0 if k == n else float(stats.beta.ppf(conf, k + 1, n - k))


def _screened(dmft, sim):
    """(the test on 5000 bootstrap draws, whether the default criterion rejects).  The first
    5000 draws are those of the default N_BOOT, so a comparison whose p-value on them exceeds
    0.01 (> 25 / 5001) cannot reach p <= LEVEL on all of them: only the others are recomputed."""
    a = agreement(dmft, sim, n_boot=5000)
    return a, bool(a.p_value <= 0.01 and not agreement(dmft, sim).passed)


# ---------------------------------------------------------------- building blocks
def test_entries_normal_equivalent_and_sidak():
    x = np.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    assert entries("M", x).shape == (2, 3, 4)
    assert entries("Q", x).shape == (2, 3, 3)
    assert entries("test_error", x[..., 0, 0]).shape == (2, 3, 1)
    z = np.array([3.5, 2.0, -1.0, np.inf])
    np.testing.assert_allclose(normal_equivalent(z, 1e7)[:3], np.abs(z[:3]), rtol=1e-5)
    few = normal_equivalent(z, 23)
    assert np.all(few[:3] < np.abs(z[:3])) and few[0] > 3.0 and few[3] == np.inf
    assert sidak(3.0, 1) == pytest.approx(2 * stats.norm.sf(3.0))
    assert sidak(3.0, 100) == pytest.approx(1 - (1 - 2 * stats.norm.sf(3.0)) ** 100)
    assert sidak(3.0, 0) == 1.0


def test_real_case_is_fast_deterministic_and_passes():
    """90 entries x steps, 24 seeds, 32 replicas: well under a second (CPU time of this
    process), the same verdict twice; the stored real comparison agrees."""
    for case in (_case("ridge_noise"),):
        t0 = time.process_time()
        a = agreement(case.dmft, case.sim)
        cpu = time.process_time() - t0
        assert cpu < 1.0, cpu
        b = agreement(case.dmft, case.sim)
        assert a == b and a.method == "bootstrap" and a.passed, a
        assert all(np.array_equal(a.z_normal[n], b.z_normal[n], equal_nan=True)
                   for n in OBSERVABLES)
        assert 0 < a.power < 0.1 and a.p_value <= a.p_sidak
        assert a.z["M"].shape == case.dmft["M"].shape[1:2] + (case.dmft["M"][0, 0].size,)
        assert "agreement: family-wise p" in a.describe()


def test_exact_missing_and_disagreeing_entries():
    rng = np.random.default_rng(0)
    G, S, T = 32, 16, 3

    def samples(n, shift=0.0):
        return {"M": rng.standard_normal((n, T + 1, 1, 1)) * 0.01 + 0.5 + shift,
                "Q": np.ones((n, T + 1, 1, 1)),                   # exact on both sides
                "train_loss": rng.standard_normal((n, T + 1)) * 0.01,
                "test_error": rng.standard_normal((n, T + 1)) * 0.01}
    d, s = samples(G), samples(S)
    fast = dict(n_boot=5000)
    a = agreement(d, s, **fast)
    assert a.passed and a.n_compared == 3 * T and np.all(a.z["Q"] == 0)
    bad = agreement(d, {**s, "Q": s["Q"] * 1.001}, **fast)      # exact, but different
    assert np.isinf(bad.worst_z) and bad.p_value == 0 and not bad.passed
    s3 = {k: v.copy() for k, v in s.items()}
    s3["M"][:, -1] = np.nan                                      # a diverged last step
    assert not agreement(d, s3, **fast).passed
    with pytest.raises(ProblemError, match="^level:"):
        agreement(d, s, level=1.5)
    with pytest.raises(ProblemError, match="^sim:"):
        agreement(d, {k: v[:, :2] for k, v in s.items()})
    with pytest.raises(ProblemError, match="^dmft:"):
        agreement({"M": d["M"]}, s)
    far = agreement(samples(G, shift=0.05), s, **fast)  # raw |z| ~ 17, t with 15 dof
    assert not far.passed and far.worst[0] == "M" and far.worst[1] == (0, 0)
    assert far.p_value == far.p_sidak < 1e-6          # below the bootstrap resolution


def test_sidak_fallback_without_samples():
    case = _case("erf_student")
    res = SimpleNamespace(n_groups=case.G, replicas={})
    sim = SimpleNamespace(n_seeds=case.S, seeds={})
    for obj, samples in ((res, case.dmft), (sim, case.sim)):
        for n in OBSERVABLES:
            x = samples[n]
            setattr(obj, n, x.mean(axis=0))
            setattr(obj, n + "_err", x.std(axis=0, ddof=1) / np.sqrt(len(x)))
    a = assess(res, sim)
    full = agreement(case.dmft, case.sim)
    assert a.method == "sidak" and a.p_value == a.p_sidak == full.p_sidak
    assert a.worst == full.worst and a.critical_z > full.critical_z


@pytest.mark.slow
def test_sidak_is_more_conservative_than_the_bootstrap(null_cases):
    """On correlated data Sidak's critical value is higher and it rejects null comparisons less
    often than its level says (here 0.2, 150 comparisons); the bootstrap is close to its level."""
    rng = np.random.default_rng(1)
    boot = sid = n = 0
    for name, case in null_cases.items():
        a = agreement(case.dmft, case.sim)
        c_sidak = stats.norm.isf(-np.expm1(np.log1p(-a.level) / a.n_compared) / 2)
        assert a.critical_z < c_sidak - 0.1, (name, a.critical_z, c_sidak)
        for _ in range(50 if name != "long_run" else 0):
            r = agreement(*case.draw(rng), n_boot=2000)
            assert r.p_value <= r.p_sidak
            boot += r.p_value <= 0.2
            sid += r.p_sidak <= 0.2
            n += 1
    assert sid < 0.7 * boot, (sid, boot, n)
    assert 0.12 * n < boot < 0.28 * n, (boot, n)


def test_calibration_two_sided_and_qq():
    even = calibration((np.arange(11) + 0.5) / 11)
    assert even.passed and even.p_value > 0.9 and even.n_cases == 11
    assert not calibration([1e-3] * 11).passed                  # z-scores too large
    assert not calibration([1 - 1e-3] * 11).passed              # too small: errors overstated
    one = calibration([0.3, np.nan])
    assert one.n_cases == 1 and one.p_value == pytest.approx(2 * min(0.3, 0.7))
    assert np.all(np.diff(even.qq["observed"]) >= 0) and len(even.qq["expected"]) == 11


# ---------------------------------------------------------------- must show: false alarms
@pytest.mark.slow
def test_false_alarm_rate_at_most_one_percent(null_cases):
    """1000 null comparisons (250 per real case structure).  At LEVEL = 5e-4 about 0.5
    rejections are expected; the one-sided 99 % Clopper-Pearson upper bound of the false-alarm
    rate must be below 1 % (it is for up to 2 rejections in 1000).  The bulk of the law is
    checked too: the fraction of p-values <= 0.05 is close to 0.05 (not conservative to
    uselessness, not above the level beyond noise)."""
    rng = np.random.default_rng(2024)
    n_per = 1000 // len(null_cases)
    rejections, small, n = 0, 0, 0
    for case in null_cases.values():
        for _ in range(n_per):
            a, rejected = _screened(*case.draw(rng))
            rejections += rejected
            small += a.p_value <= 0.05
            n += 1
    bound = _clopper_pearson_upper(rejections, n)
    assert bound < 0.01, (rejections, "expected", LEVEL * n, "in", n, bound)
    assert 0.02 * n <= small <= 0.07 * n, (small, n)


# ---------------------------------------------------------------- must show: power
@pytest.mark.slow
def test_detects_the_bias_its_power_states(null_cases):
    """Inject into the DMFT samples the relative bias that the power estimate names: it is
    detected in about POWER_PROB = 90 % of the comparisons, 0.6 of it much less often.  The
    estimate of one comparison is a plug-in (its relative error is that of the estimated errors,
    about 1 / sqrt(2 min(G, S))), so the bias injected is the median of 20 estimates, itself
    uncertain by a few per cent, which moves the detection rate by about 5 %; 100 trials add
    +-3 % (binomial): the band [0.75, 0.98] is about 2.5 of these standard deviations."""
    rng = np.random.default_rng(7)
    for case in (null_cases["erf_student"], null_cases["ridge_noise"]):
        b = float(np.median([agreement(*case.draw(rng)).power for _ in range(20)]))
        hits = np.mean([not agreement(*case.draw(rng, bias=b)).passed for _ in range(100)])
        less = np.mean([not agreement(*case.draw(rng, bias=0.6 * b)).passed for _ in range(50)])
        assert 0.75 <= hits <= 0.98 and less <= 0.35, (hits, less, b)
    assert POWER_PROB == 0.9


# ---------------------------------------------------------------- must show: calibration
def _suite_p(null_cases, rng, K=11, bias=0.0):
    ps = [agreement(*null_cases[k % len(null_cases)].draw(rng, bias=bias), n_boot=2000)
          .dispersion_p for k in range(K)]
    return calibration(ps)


@pytest.mark.slow
def test_calibration_uniform_under_null_and_small_under_bias(null_cases):
    """Suites of 11 null cases (cycling over the real structures): the calibration p-value is
    uniform (Kolmogorov-Smirnov over 150 suites); with a bias of half of each case's power in
    every case (mostly missed by the cases' own tests) it is small.  2000 bootstrap draws
    suffice for a dispersion p-value (no far tail involved)."""
    rng = np.random.default_rng(3)
    cases = [null_cases["erf_student"], null_cases["ridge_noise"]]
    null = np.array([_suite_p(cases, rng).p_value for _ in range(150)])
    assert stats.kstest(null, "uniform").pvalue > 0.01
    assert np.mean(null <= 0.05) <= 0.1
    b = 0.5 * float(np.median([agreement(c.dmft, c.sim).power for c in cases]))
    biased = np.array([_suite_p(cases, rng, bias=b).p_value for _ in range(20)])
    assert np.median(biased) < 1e-3, biased
    cal = _suite_p(cases, rng)
    assert set(cal.qq) == {"expected", "observed", "lower", "upper"} and cal.n_cases == 11
    assert np.all(cal.qq["lower"] <= cal.qq["expected"]) and np.all(
        cal.qq["expected"] <= cal.qq["upper"])


# ---------------------------------------------------------------- must show: a biased solver
@pytest.mark.slow
def test_one_percent_memory_bias_fails(scale_memory):
    """The DMFT of a problem whose curves depend on the memory term, against a stored simulation
    (96 seeds at d = 4000, tests/data/make_agreement_fixture.py): it agrees; with its memory term
    (StepCoefficients.B_mem and c_last, conftest.scale_memory) scaled by 1.01 or 0.99 it fails."""
    import dmft
    spec = runpy.run_path(os.path.join(os.path.dirname(FIXTURE), "make_agreement_fixture.py"),
                          run_name="spec")
    with np.load(FIXTURE) as f:
        sim = {n: f[f"memory_probe/sim/{n}"] for n in OBSERVABLES}
    problem = dmft.Problem(**spec["PROBE"])
    solve = dict(n_paths=2_000_000, n_groups=64, seed=1, progress=False)
    right = agreement(dmft.solve(problem, **solve).replicas, sim)
    assert right.passed, right.describe()
    for factor in (1.01, 0.99):
        scale_memory(factor)
        wrong = agreement(dmft.solve(problem, **solve).replicas, sim)
        assert not wrong.passed, (factor, wrong.describe())
