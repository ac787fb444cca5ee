"""DMFT against finite-size simulations (d -> infinity; docs: theory section 5)."""
import numpy as np
import pytest

import dmft

from conftest import PAPER


@pytest.fixture(scope="module")
def paper_dmft(paper_result):
    return paper_result


@pytest.mark.slow
def test_paper_case_dmft_agrees_with_simulation(paper_dmft, tmp_path):
    sim = dmft.simulate(dmft.Problem(**PAPER), d=1500, n_seeds=16, seed=42)
    cmp = dmft.compare(paper_dmft, sim)
    assert cmp.worst_per_step(("M", "Q")).shape == (7,)
    assert cmp.passed and cmp.agreement.p_value > cmp.agreement.level, cmp.table()
    # the comparison has power: the overlaps are far from zero in units of the errors
    assert np.all(np.abs(sim.M[3:]) > 5 * sim.M_err[3:])
    assert "worst|z|" in cmp.table() and "family-wise p" in cmp.table()
    cmp.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000


@pytest.mark.slow
def test_gap_shrinks_with_dimension(paper_dmft):
    """RMS distance between simulation means and DMFT (M and Q, steps 1..T) falls with d."""
    pr = dmft.Problem(**PAPER)
    gaps = []
    for d in (250, 1000, 4000):
        sim = dmft.simulate(pr, d=d, n_seeds=16, seed=d)
        dev = np.concatenate([(sim.M - paper_dmft.M)[1:].ravel(), (sim.Q - paper_dmft.Q)[1:].ravel()])
        gaps.append(float(np.sqrt(np.mean(dev ** 2))))
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert gaps[0] > 2 * gaps[2], gaps


def test_z_scores_are_zero_where_both_sides_are_exact(paper_dmft):
    sim = dmft.simulate(dmft.Problem(**PAPER), d=300, n_seeds=4, seed=1, n_jobs=1)
    cmp = dmft.compare(paper_dmft, sim)
    assert np.all(cmp.z["M"][0] == 0) and np.all(cmp.z["Q"][0] == 0)
    assert cmp.z["M"].shape == (7, 4) and cmp.z["Q"].shape == (7, 3)
    assert cmp.z["train_loss"].shape == (7, 1)


def test_compare_refuses_different_problems(paper_dmft):
    other = dmft.Problem(**{**PAPER, "eta": 0.3})
    sim = dmft.simulate(other, d=100, n_seeds=2, seed=1, n_jobs=1)
    with pytest.raises(dmft.ProblemError, match="^sim:"):
        dmft.compare(paper_dmft, sim)
