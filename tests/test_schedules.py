"""Data-reuse schedules (docs: theory section 4) in the DMFT and the simulator."""
import numpy as np
import pytest

import dmft
from dmft.agreement import LEVEL, agreement, normal_equivalent, sidak
from dmft.schedules import parse_schedule

PAIR = dict(p=2, activation="relu", alpha=2.0, eta=0.3, steps=6)


# ---------------------------------------------------------------- the schedules themselves
@pytest.mark.parametrize("text, name, alpha_tot", [
    ("multi-pass", "multi-pass", 2.0), ("one-pass", "one-pass", 14.0),
    ("reuse-2", "reuse-2", 8.0), ("reuse-1", "one-pass", 14.0),
    ("minibatch-0.25", "minibatch-0.25", 2.0), ("minibatch-1", "multi-pass", 2.0),
])
def test_forms_and_alpha_tot(text, name, alpha_tot):
    pr = dmft.Problem("z1", alpha=2.0, steps=6, schedule=text)
    assert pr.schedule == name and pr.alpha_tot == alpha_tot


@pytest.mark.parametrize("bad", ["reuse-0", "minibatch-0.3", "minibatch-2", "sgd", "", 2])
def test_bad_schedules(bad):
    with pytest.raises(dmft.ProblemError, match="^schedule:"):
        dmft.Problem("z1", schedule=bad)


def test_selection_laws():
    rng = np.random.default_rng(0)
    T, N = 9, 20000
    s = parse_schedule("one-pass").mask(rng, N, T)
    assert np.all(s.sum(axis=0) == 1)                          # each sample used once
    s = parse_schedule("reuse-2").mask(rng, N, T)
    assert np.all(s.sum(axis=0) == 2) and np.all(s[0] == s[1]) and np.all(s[8] == s[9])
    s = parse_schedule("minibatch-0.25").mask(rng, N, T)
    assert np.all(s[0:4].sum(axis=0) == 1) and np.all(s[4:8].sum(axis=0) == 1)
    assert abs(s.mean() - 0.25) < 0.01                          # fraction b per step
    plan = parse_schedule("minibatch-0.25").batches(rng, 100, T)
    assert len(plan) == T + 1
    epoch = np.concatenate([idx for _, idx in plan[:4]])
    assert np.array_equal(np.sort(epoch), np.arange(100))       # an epoch sees the data once
    assert not np.array_equal(plan[0][1], plan[4][1])           # reshuffled
    assert [i for i, _ in parse_schedule("reuse-3").batches(rng, 10, 7)] == [0, 0, 0, 1, 1, 1, 2, 2]


# ---------------------------------------------------------------- DMFT against simulation
@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["one-pass", "reuse-2"])
@pytest.mark.parametrize("target", ["tanh(z1 + He3(z2))", "z1 + z1*z2"])
def test_schedules_dmft_vs_simulation(schedule, target):
    pr = dmft.Problem(target, schedule=schedule, **PAIR)
    res = dmft.solve(pr, n_paths=400_000, seed=1)
    sim = dmft.simulate(pr, d=1500, n_seeds=16, seed=3)
    cmp = dmft.compare(res, sim)
    assert cmp.passed, cmp.table()
    assert np.abs(sim.M[-1]).max() > 10 * sim.M_err[-1].max()     # something is learned


# ---------------------------------------------------------------- the paper's headline
def test_he3_one_pass_stays_at_zero_multi_pass_learns():
    base = dict(target="He3(z1)", p=1, activation="tanh", alpha=2.0, eta=0.5, steps=20)
    one = dmft.solve(dmft.Problem(**base, schedule="one-pass"), n_paths=200_000, seed=0)
    multi = dmft.solve(dmft.Problem(**base), n_paths=200_000, seed=0)
    z_one = np.abs(one.overlap[1:, 0, 0]) / one.overlap_err[1:, 0, 0]
    u = normal_equivalent(z_one, one.n_groups - 1)             # 0 within errors, 20 steps:
    assert sidak(u.max(), len(u)) > LEVEL, z_one               # the criterion against 0 exactly
    z_multi = np.abs(multi.overlap[1:, 0, 0]) / multi.overlap_err[1:, 0, 0]
    assert np.all(z_multi[1:] > 5), z_multi                    # non-zero from step 2 on
    assert z_multi.max() >= 10 and np.abs(multi.overlap[-1, 0, 0]) > 0.2


@pytest.mark.parametrize("target, k", [("z1*z2*z3", 3), ("z1**2", 1)])
@pytest.mark.parametrize("schedule", ["multi-pass", "one-pass", "reuse-2", "minibatch-0.5"])
def test_symmetric_targets_stay_at_zero_overlap(target, k, schedule):
    pr = dmft.Problem(target, p=2, activation="relu", alpha=2.0, eta=0.3, steps=8,
                      schedule=schedule)
    res = dmft.solve(pr, n_paths=100_000, seed=2)
    assert res.ok
    z = np.abs(res.M[1:]) / res.M_err[1:]
    assert np.all(z < 4.0), z.max()
    # not vacuous: the error bars are small at first (z1**2 sits on an unstable zero-overlap
    # point, so Monte Carlo noise is amplified with t: ~0.06 at t = 8 with 1e5 paths)
    assert res.M_err[:4].max() < 0.03 and res.M_err.max() < 0.15


# ---------------------------------------------------------------- two independent code paths
@pytest.mark.parametrize("target", ["He3(z1)", "tanh(z1 + He3(z2))"])
def test_general_schedule_equals_one_pass_recursion(target):
    pr = dmft.Problem(target, schedule="one-pass", **PAIR)
    rec = dmft.solve(pr, n_paths=200_000, seed=1)                      # memory-less recursion
    gen = dmft.solve(pr, n_paths=1_400_000, seed=2, method="general")  # s(t) = 1 at one step
    agr = agreement(rec.replicas, gen.replicas)     # the one criterion, DMFT against DMFT
    assert agr.passed, agr.describe()
