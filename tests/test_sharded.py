"""Sharded Monte Carlo on Dask workers equals the single-process solve."""
import numpy as np
import pytest

import dmft

distributed = pytest.importorskip("distributed")


@pytest.mark.parametrize("kw", [
    dict(target="tanh(z1 + He3(z2))", activation="relu", alpha=3.0, eta=0.2, steps=5),
    dict(target="z1 + z1*z2", activation="tanh", alpha=2.0, eta=0.3, steps=4,
         schedule="reuse-2"),
])
@pytest.mark.parametrize("response", ["stein", "pathwise"])
def test_sharded_equals_single_process(client, kw, response):
    if response == "pathwise" and kw["activation"] == "relu":
        pytest.skip("pathwise needs a smooth activation")
    pr = dmft.Problem(p=2, **kw)
    one = dmft.solve(pr, n_paths=40_000, n_groups=8, seed=11, response=response)
    sharded = dmft.solve(pr, n_paths=40_000, n_groups=8, seed=11, response=response,
                         client=client, n_shards=3)
    for name in ("M", "Q", "train_loss", "test_error", "M_err", "Q_err", "C_theta", "C_g",
                 "R_g", "R_theta"):
        a, b = getattr(one, name), getattr(sharded, name)
        scale = np.nanmax(np.abs(a)) or 1.0
        assert np.nanmax(np.abs(a - b)) <= 1e-10 * scale, name
    assert sharded.ok and sharded.seed == 11
