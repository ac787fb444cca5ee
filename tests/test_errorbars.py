"""Error bars are honest: they match the seed-to-seed spread and scale like 1/sqrt(n_paths)."""
import numpy as np
import pytest

import dmft

PROBLEM = dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2, steps=4)


@pytest.mark.slow
def test_error_bars_match_spread_over_seeds():
    pr = dmft.Problem(**PROBLEM)
    runs = [dmft.solve(pr, n_paths=16_000, seed=100 + s) for s in range(24)]
    M = np.array([r.M[-1] for r in runs])                 # (seeds, p, k)
    err = np.array([r.M_err[-1] for r in runs])
    spread = M.std(axis=0, ddof=1)                         # per entry
    reported = np.sqrt((err ** 2).mean(axis=0))
    ratio = np.sqrt((spread ** 2).mean() / (reported ** 2).mean())
    assert 1 / 1.5 < ratio < 1.5, (ratio, spread, reported)
    # same for the losses
    te = np.array([r.test_error[-1] for r in runs])
    te_err = np.array([r.test_error_err[-1] for r in runs])
    r2 = te.std(ddof=1) / np.sqrt((te_err ** 2).mean())
    assert 1 / 1.6 < r2 < 1.6, r2


@pytest.mark.slow
def test_error_bars_shrink_like_inverse_sqrt_n():
    pr = dmft.Problem(**PROBLEM)
    small = [dmft.solve(pr, n_paths=20_000, seed=s).M_err[-1] for s in range(4)]
    large = [dmft.solve(pr, n_paths=320_000, seed=s).M_err[-1] for s in range(4)]
    ratio = np.sqrt(np.mean(np.square(small)) / np.mean(np.square(large)))
    assert 4 / 1.25 < ratio < 4 * 1.25, ratio             # sqrt(16) = 4
