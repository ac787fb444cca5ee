"""Tests of dmft.learnability (docs: theory section 8) and of its DMFT cross-check.

Conventions used in the derivations below: c_alpha = E[f He_alpha(z)] / sqrt(alpha!); the
information exponent (IE) is the lowest |alpha| >= 1 with c_alpha != 0; the leap (Abbe,
Boix-Adsera, Misiakiewicz 2023, Gaussian inputs) is the minimum over orders of the non-zero
multi-indices of the largest degree on not-yet-learned coordinates (He3(z1): leap 3 = IE);
"one-pass" is
span E[y z*]; "reuse" is the staircase of E[v.z* | y] != 0, then E[v.z* | y, U.z*] != 0;
reuse_dims lists the cumulative dimension after each stage (the last stage adds nothing unless
everything is learned).
"""
import itertools
import json

import numpy as np
import pytest

from dmft.errors import ProblemError
from dmft.cli import main as cli_main
from dmft.learnability import LearnabilityResult, leap_exponent, learnability


def main(argv):
    return cli_main(["learnability"] + argv)
from dmft.learnability_check import _activation_parity, dmft_check
from dmft.targets import Target

STAIR = "z1*(relu(1 - z2**2) + relu(z2 - 1) - relu(-z2 - 1))"

# (target, IE, leap, one-pass dim, reuse dims, hard dim)
CASES = [
    # He1 = z: c_1 = 1 -> IE 1, leap 1; E[y z] = 1 -> one-pass 1; E[z | y] = y -> reuse [1].
    ("He1(z1)", 1, 1, 1, [1], 0),
    # He2 = z^2 - 1: only c_2 = sqrt(2) -> IE 2, leap 2 (degree 2 on the new z1); E[y z] = 0;
    # y is invariant under z -> -z, so E[z | y] = 0: nothing is learned even with reuse, hard 1.
    ("He2(z1)", 2, 2, 0, [0], 1),
    # He3: IE 3, leap 3 (single index: leap = IE); E[y z] = 0; z -> -z maps y -> -y so
    # E[z | y] is odd in y and E[y^3 z] != 0: learned by reuse.
    ("He3(z1)", 3, 3, 0, [1], 0),
    # He4: IE 4, leap 4; even under z -> -z like He2: hard.
    ("He4(z1)", 4, 4, 0, [0], 1),
    # z1 + z1*z2: c_10 = c_11 = 1 -> IE 1; (1,0) costs 1, then (1,1) has degree 1 on the new
    # z2 -> leap 1 (a staircase).  E[y z] = (1, 0): one-pass learns z1.  Reuse at stage 1 already
    # sees z2: E[y^2 z2] = E[z1^2 (1 + z2)^2 z2] = E[(1 + z2)^2 z2] = 2 != 0 -> reuse [2].
    ("z1 + z1*z2", 1, 1, 1, [2], 0),
    # z1*z2*z3: c_111 = 1 only -> IE 3, leap 3 (degree 3 on new coordinates); flipping the signs
    # of two coordinates keeps y, so E[z_r | y] = 0 for all r: hard 3.
    ("z1*z2*z3", 3, 3, 0, [0], 3),
    # sign(z1 z2 z3) = sign(z1) sign(z2) sign(z3): coefficients factorise, sign has only odd
    # Hermite coefficients, so the lowest is c_111 = (E|z|)^3 = (2/pi)^(3/2) -> IE 3, every
    # multi-index involves z1, z2, z3 with degree >= 3 -> leap 3; same two-sign symmetry as
    # z1 z2 z3 -> hard 3.
    ("sign(z1*z2*z3)", 3, 3, 0, [0], 3),
    # tanh(z1 + He3(z2)): E[y z1] = E[tanh'] > 0 and E[y z2] = E[tanh' (3 z2^2 - 3)] != 0
    # (about -0.30) -> IE 1, (1,0) then (0,1), cost 1 each -> leap 1; E[y z] is one vector
    # mixing both coordinates -> one-pass dim 1; E[z | y] spans both directions -> reuse [2].
    ("tanh(z1 + He3(z2))", 1, 1, 1, [2], 0),
    # z1*z2: c_11 = 1 -> IE 2, degree 2 on the two new coordinates -> leap 2; invariant under
    # (z1, z2) -> (-z1, -z2) -> hard 2.
    ("z1*z2", 2, 2, 0, [0], 2),
    # One learnable and one symmetric direction, z1 + z2^2: c_10 = 1, c_02 = sqrt(2) -> IE 1,
    # (1,0) costs 1, then (0,2) costs 2 (degree 2 on the new z2) -> leap 2; E[y z] = (1, 0)
    # -> one-pass z1; stage 1 learns z1 only
    # (z2 -> -z2 keeps y); stage 2: given z1, y - z1 = z2^2 is still even in z2, so
    # E[z2 | y, z1] = 0: nothing new -> reuse [1, 1], hard 1 (z2).
    ("z1 + z2**2", 1, 2, 1, [1, 1], 1),
    # He3(z1) + z2^2: c_02 = sqrt(2), c_30 = sqrt(6), no degree 1 -> IE 2; whichever comes
    # first, He3(z1) costs 3 -> leap 3; one-pass 0;
    # reuse learns z1 (E[z1 | y] != 0), z2 stays symmetric (also given z1) -> [1, 1], hard 1.
    ("He3(z1) + z2**2", 2, 3, 0, [1, 1], 1),
    # A conditional staircase, y = z1 c(z2) with c = e + o, e = relu(1 - z2^2) even, o odd and
    # e*o = 0, so c^2 is even: given z2, y ~ N(0, c(z2)^2) is even in z2, hence E[z2 | y] = 0
    # while E[y z1] = E[c] = E[relu(1 - z^2)] > 0 (stage 1 and one-pass: z1).  Given z1,
    # c(z2) = y / z1 is known and c is not even (c(2) = 1, c(-2) = -1): E[z2 | y, z1] != 0 ->
    # stage 2 learns z2: reuse [1, 2].  c_10 = E[c] != 0 -> IE 1; c_11 = E[c(z) z] != 0 ->
    # (1,0), then (1,1) of degree 1 on the new z2 -> leap 1.
    (STAIR, 1, 1, 1, [1, 2], 0),
    # k = 4: z1 + z2 z3 z4: (1,0,0,0) costs 1, (0,1,1,1) costs 3 -> IE 1, leap 3; one-pass z1;
    # flipping two
    # of z2, z3, z4 keeps y and z1 -> reuse [1, 1], hard 3.
    ("z1 + z2*z3*z4", 1, 3, 1, [1, 1], 3),
]


def _orthonormal(B, k):
    B = np.asarray(B)
    assert B.shape[1] == k
    np.testing.assert_allclose(B @ B.T, np.eye(B.shape[0]), atol=1e-10)


@pytest.fixture(scope="module")
def results():
    return {case[0]: learnability(case[0]) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_prediction(case, results):
    expr, ie, leap, one_pass, reuse, hard = case
    r = results[expr]
    assert isinstance(r, LearnabilityResult)
    assert (r.information_exponent, r.leap_exponent) == (ie, leap)
    assert (r.one_pass_subspace_dim, r.reuse_subspace_dims, r.hard_subspace_dim) == \
        (one_pass, reuse, hard)
    k = r.k
    for B in [r.one_pass_basis, r.reuse_basis, r.hard_basis, r.reuse_odd_basis,
              r.reuse_even_basis] + r.reuse_stages:
        _orthonormal(B, k)
    assert r.one_pass_basis.shape[0] == one_pass and r.hard_basis.shape[0] == hard
    assert r.reuse_basis.shape[0] + hard == k
    np.testing.assert_allclose(r.reuse_basis @ r.hard_basis.T, 0.0, atol=1e-10)
    # the one-pass direction lies in the first reuse stage
    if one_pass:
        P = r.reuse_stages[0]
        np.testing.assert_allclose(np.linalg.norm(r.one_pass_basis @ P.T), 1.0, atol=1e-8)
    # every decision has a clear margin (no undetermined ones) for these targets
    for name, m in r.margins.items():
        if "reuse" in name or name == "one_pass" or r.accuracy["hermite"] < 1e-10:
            assert m["undetermined"] == 0, (name, m)
        if m["smallest_accepted_over_threshold"] is not None:
            assert m["smallest_accepted_over_threshold"] > 1.1, (name, m)


def test_bases_and_coefficients(results):
    # z1 + z2^2: one-pass and stage 1 = e1, hard = e2 (canonical, axis-aligned bases)
    r = results["z1 + z2**2"]
    np.testing.assert_allclose(r.one_pass_basis, [[1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(r.hard_basis, [[0.0, 1.0]], atol=1e-12)
    assert r.hermite[(1, 0)] == pytest.approx(1.0) and r.hermite[(0, 2)] == pytest.approx(2 ** .5)
    assert r.hermite[(0, 0)] == pytest.approx(1.0)
    # tanh(z1 + He3(z2)): the one-pass direction is E[y z] normalised, both components non-zero
    r = results["tanh(z1 + He3(z2))"]
    c1 = np.array([r.hermite[(1, 0)], r.hermite[(0, 1)]])
    np.testing.assert_allclose(r.one_pass_basis[0], c1 / np.linalg.norm(c1), atol=1e-12)
    assert np.all(np.abs(r.one_pass_basis) > 0.5)
    # sign(z1 z2 z3): c_111 = (2/pi)^(3/2) up to the stated quadrature accuracy
    r = results["sign(z1*z2*z3)"]
    assert r.hermite[(1, 1, 1)] == pytest.approx((2 / np.pi) ** 1.5,
                                                  abs=1.5 * r.accuracy["hermite_order_le_3"])
    # staircase example: stage 1 = e1, stage 2 = e2
    r = results[STAIR]
    np.testing.assert_allclose(np.abs(r.reuse_stages[0]), [[1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(np.abs(r.reuse_stages[1]), [[0.0, 1.0]], atol=1e-12)


def test_parity_split(results):
    # z1 + z1 z2: z1 -> -z1 maps y -> -y and fixes z2, so E[z1 | y] is odd in y and E[z2 | y]
    # even: the odd-G part of stage 1 is e1, the even-G part e2.
    r = results["z1 + z1*z2"]
    np.testing.assert_allclose(np.abs(r.reuse_odd_basis), [[1.0, 0.0]], atol=1e-10)
    np.testing.assert_allclose(np.abs(r.reuse_even_basis), [[0.0, 1.0]], atol=1e-10)
    # The second-step directions: E[y^2 z] = (0, E[(1 + z2)^2 z2]) = (0, 2) -> e2, and
    # E[y^3 z] = (E[z1^4 (1 + z2)^3], 0) = (12, 0) -> e1 (E[z1^3] = 0 kills the z2 part).
    np.testing.assert_allclose(np.abs(r.y2_basis), [[0.0, 1.0]], atol=1e-10)
    np.testing.assert_allclose(np.abs(r.y3_basis), [[1.0, 0.0]], atol=1e-10)
    # He3 and tanh(z1 + He3(z2)): z -> -z maps y -> -y: everything is odd in y, E[y^2 z] = 0
    for expr, dim in (("He3(z1)", 1), ("tanh(z1 + He3(z2))", 2)):
        r = results[expr]
        assert r.reuse_odd_basis.shape[0] == dim and r.reuse_even_basis.shape[0] == 0
        assert r.y2_basis.shape[0] == 0 and r.y3_basis.shape[0] == 1


def test_exact_margins(results):
    """Polynomial targets: coefficients exact to round-off, symmetric zeros at round-off."""
    r = results["He3(z1)"]
    assert r.accuracy["hermite"] < 1e-12
    assert r.margins["hermite"]["margin"] > 1e10
    assert r.margins["reuse_stage_1"]["smallest_accepted"] > 0.3
    r = results["z1*z2*z3"]
    assert r.margins["reuse_stage_1"]["largest_rejected"] < 1e-12
    assert r.margins["hermite"]["smallest_accepted"] == pytest.approx(1.0)


def _leap_brute_force(alphas):
    """min over all orders of the multi-indices of the largest degree on new coordinates"""
    best = None
    for perm in itertools.permutations(alphas):
        learned, worst = set(), 0
        for a in perm:
            worst = max(worst, sum(x for r, x in enumerate(a) if r not in learned))
            learned |= {r for r, x in enumerate(a) if x}
        best = worst if best is None else min(best, worst)
    return best


def test_leap_exponent_is_the_minimum_over_orders():
    rng = np.random.default_rng(3)
    for _ in range(300):
        k = int(rng.integers(1, 4))
        alphas = {tuple(int(x) for x in rng.integers(0, 4, size=k))
                  for _ in range(int(rng.integers(1, 6)))} - {(0,) * k}
        if not alphas:
            continue
        leap, order = leap_exponent(alphas)
        assert leap == _leap_brute_force(list(alphas)), alphas
        assert max(c for _, c in order) == leap and all(a in alphas for a, _ in order)


@pytest.mark.parametrize("expr, leap", [
    ("He1(z1)", 1), ("He2(z1)", 2), ("He3(z1)", 3), ("He4(z1)", 4), ("He5(z1)", 5),
    ("z1 + z1*z2", 1), ("z1 + z2**2", 2), ("z1*z2*z3", 3),
])
def test_published_leap_exponents(expr, leap):
    """Abbe, Boix-Adsera, Misiakiewicz (2023) for Gaussian inputs: He_k has leap k, the
    staircase z1 + z1*z2 leap 1, z1 + z2**2 leap 2, z1*z2*z3 leap 3."""
    r = learnability(expr)
    assert r.leap_exponent == leap
    assert f"leap exponent          {leap}  (order: " in r.summary()
    d = r.to_dict()
    assert d["leap_exponent"] == leap and max(x["cost"] for x in d["leap_order"]) == leap


def test_leap_and_constant():
    assert leap_exponent([(1, 0), (1, 1)])[0] == 1
    assert leap_exponent([(1, 1, 1)]) == (3, [((1, 1, 1), 3)])
    assert leap_exponent([(1, 0, 0), (0, 1, 1)])[0] == 2
    assert leap_exponent([])[0] is None
    r = learnability("3.0")          # constant: nothing to learn, every direction hard
    assert r.information_exponent is None and r.leap_exponent is None
    assert (r.one_pass_subspace_dim, r.reuse_subspace_dims, r.hard_subspace_dim) == (0, [0], 1)
    assert r.notes and "constant" in r.notes[0]
    r = learnability("He20(z1)")     # highest Hermite degree of the grammar, default order 20
    assert (r.information_exponent, r.leap_exponent) == (20, 20)
    r = learnability("z1", k=3)      # extra directions are hard
    assert (r.one_pass_subspace_dim, r.reuse_subspace_dims, r.hard_subspace_dim) == (1, [1, 1], 2)


def test_to_dict_json(results):
    d = json.loads(json.dumps(results["z1 + z2**2"].to_dict(), allow_nan=False))
    for key in ("k", "information_exponent", "leap_exponent", "one_pass_subspace_dim",
                "reuse_subspace_dims", "hard_subspace_dim", "one_pass_basis", "reuse_basis",
                "hard_basis", "reuse_stages", "hermite", "margins", "accuracy"):
        assert key in d
    assert d["k"] == 2 and d["reuse_subspace_dims"] == [1, 1]
    assert d["hard_basis"] == [[0.0, 1.0]] or np.allclose(d["hard_basis"], [[0.0, 1.0]])
    assert d["reuse_stages"][1] == []
    assert {"alpha": [1, 0], "coefficient": pytest.approx(1.0)} in d["hermite"]
    assert "information exponent" in results["z1 + z2**2"].summary()


@pytest.mark.parametrize("kwargs, field", [
    (dict(target="z1 +"), "target"),
    (dict(target="foo(z1)"), "target"),
    (dict(target="log(z1)"), "target"),            # not finite at negative nodes
    (dict(target="z1*z2", k=1), "k"),
    (dict(target="z1", k=6), "k"),
    (dict(target="z1*z2", order=99), "order"),
    (dict(target="z1", alpha=2.0), "alpha"),       # DMFT options need check_dmft
    (dict(target="z1", check_dmft=True, bogus=1), "bogus"),
])
def test_bad_input(kwargs, field):
    with pytest.raises(ProblemError) as exc:
        learnability(**kwargs)
    assert exc.value.field == field and str(exc.value).startswith(field + ":")


def test_cli(capsys):
    assert main(["He3(z1)"]) == 0
    assert "information exponent   3" in capsys.readouterr().out
    assert main(["z1*z2", "--json", "--k", "3"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["k"] == 3 and d["hard_subspace_dim"] == 3
    assert main(["z1 +"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dmft: error: target:") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["z1", "--bogus"])
    assert exc.value.code == 2


def test_activation_parity():
    assert _activation_parity("tanh") == {"linear": True, "odd": True, "even": False}
    assert _activation_parity("relu") == {"linear": True, "odd": False, "even": True}
    assert _activation_parity("softplus") == {"linear": True, "odd": False, "even": True}
    assert _activation_parity("quadratic") == {"linear": False, "odd": False, "even": True}
    assert _activation_parity("linear") == {"linear": True, "odd": False, "even": False}


FAST = dict(n_paths=60_000, steps=4)


@pytest.mark.slow
@pytest.mark.parametrize("expr, learned", [
    # He3: the tanh student learns z1 by reuse (along E[y^3 z]), one-pass GD stays at zero
    ("He3(z1)", {"multi-pass/tanh": ["reuse_step2"]}),
    # He2: hard for every student and schedule
    ("He2(z1)", {}),
    # z1 + z1 z2: z1 in one pass; z2 (along E[y^2 z]) by the ReLU student with reuse
    ("z1 + z1*z2", {"multi-pass/relu": ["one_pass", "reuse_step2"]}),
    # z1 + z2^2: z1 learned, the symmetric z2 stays at zero
    ("z1 + z2**2", {"one-pass/tanh": ["one_pass"]}),
    # z1 z2 z3: nothing moves
    ("z1*z2*z3", {}),
    # tanh(z1 + He3(z2)): the second direction by reuse with the tanh student (E[y^3 z])
    ("tanh(z1 + He3(z2))", {"multi-pass/tanh": ["one_pass", "reuse_step2"]}),
])
def test_dmft_check_agrees(expr, learned):
    r = learnability(expr, check_dmft=True, **FAST)
    c = r.dmft_check
    assert c["agrees"], c["disagreements"]
    assert set(c["runs"]) == {"multi-pass/tanh", "multi-pass/relu", "one-pass/tanh",
                              "one-pass/relu"}
    for run, names in learned.items():
        for name in names:
            s = c["runs"][run]["subspaces"][name]
            assert s["predicted"] == "learned" and s["agrees"]
    if r.hard_subspace_dim:
        for run in c["runs"].values():
            assert run["subspaces"]["hard"]["predicted"] == "zero"
    json.dumps(r.to_dict(), allow_nan=False)


@pytest.mark.slow
def test_dmft_check_detects_wrong_predictions():
    # He3's prediction (learned by a tanh student with reuse) checked against He2's dynamics
    c = dmft_check(learnability("He3(z1)"), Target("He2(z1)"), dict(FAST))
    assert not c["agrees"]
    assert any("reuse_step2 predicted learned" in d for d in c["disagreements"])
    # He2's prediction (hard) checked against He3's dynamics: the hard direction moves
    c = dmft_check(learnability("He2(z1)"), Target("He3(z1)"),
                   dict(FAST, activations="tanh", schedules="multi-pass"))
    assert not c["agrees"] and any("hard predicted zero" in d for d in c["disagreements"])


def test_check_summary_explains_labels():
    """The text output of --check-dmft carries one legend line per subspace label and per
    prediction (no DMFT run needed: an empty check)."""
    from dmft.learnability_check import LEGEND, check_summary
    lines = check_summary({"agrees": True, "runs": {}, "disagreements": []})
    for name in ("one_pass", "reuse_step2", "reuse_rest", "reuse_2+", "hard", "learned",
                 "zero", "free"):
        assert sum(line.strip().startswith(name + ":") for line in lines) == 1, name
        assert LEGEND[name]
