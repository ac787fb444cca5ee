"""The optional float32 history of whitened innovations: half the memory, negligible cost."""
import numpy as np
import pytest

import dmft


@pytest.mark.parametrize("kw", [
    dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2, steps=12),
    dict(target="z1", p=1, activation="linear", alpha=0.5, eta=0.2, ridge=0.1, noise=0.25,
         steps=30),                        # ill-conditioned: innovations decay geometrically
])
@pytest.mark.slow
def test_float32_history_costs_far_less_than_an_error_bar(kw):
    pr = dmft.Problem(**kw)
    a = dmft.solve(pr, n_paths=50_000, n_groups=16, seed=1)
    b = dmft.solve(pr, n_paths=50_000, n_groups=16, seed=1, history="float32")
    for name in ("M", "Q", "train_loss", "test_error"):
        diff = np.abs(getattr(a, name) - getattr(b, name))
        assert np.nanmax(diff / np.maximum(getattr(a, name + "_err"), 1e-300)) < 0.01, name


def test_bad_history():
    with pytest.raises(dmft.ProblemError, match="^history:"):
        dmft.solve(dmft.Problem("z1", steps=2), n_paths=1000, history="float16")
