"""A solve that takes the histories of an earlier one (dmft.memory.recycle) gives the same numbers
as one on fresh memory: spare memory full of NaN (every byte 0xFF, a NaN in float32 and float64)
must not reach a result, so the step kernel writes every history element before reading it."""
import numpy as np
import pytest

import dmft
from dmft.memory import history_array, recycle, release_spare, spare_bytes
from dmft.shard import Shard

FIELDS = ("M", "Q", "train_loss", "test_error", "C_theta", "C_g", "M_err")


def _poison(nbytes=8 * 2**20, count=2):
    """Spare blocks of ``nbytes`` filled with NaN."""
    release_spare()
    blocks = [history_array((nbytes,), np.uint8) for _ in range(count)]
    for i in range(count):
        blocks[i][:] = 0xFF
    recycle(blocks)
    assert spare_bytes() >= count * nbytes


@pytest.mark.parametrize("options", [
    {},
    {"history": "float32"},
    {"response": "pathwise"},
])
@pytest.mark.parametrize("schedule", ["multi-pass", "minibatch-0.5"])
def test_solve_on_spare_memory_equals_fresh(options, schedule):
    act = "tanh" if options.get("response") == "pathwise" else "relu"
    pr = dmft.Problem("z1 + He2(z2)", p=2, activation=act, alpha=2.0, eta=0.3, steps=9,
                      schedule=schedule)
    release_spare()
    fresh = dmft.solve(pr, n_paths=3000, n_groups=8, seed=4, progress=False, **options)
    assert spare_bytes() > 0                          # the finished solve handed its histories back
    _poison()
    reused = dmft.solve(pr, n_paths=3000, n_groups=8, seed=4, progress=False, **options)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(reused, f), getattr(fresh, f), err_msg=f)


def test_innovations_on_spare_memory_equal_fresh():
    """nu is filled by the draws, the lanes past a chunk's width are zeroed: the whole array is
    the same on fresh and on spare memory."""
    pr = dmft.Problem("z1", p=2, activation="relu", alpha=2.0, eta=0.3, steps=6)
    release_spare()
    fresh = Shard(pr.to_dict(), 2, 1500, 4, 0, 4, "stein")
    _poison()
    reused = Shard(pr.to_dict(), 2, 1500, 4, 0, 4, "stein")
    assert spare_bytes() < 2 * 8 * 2**20               # it took spare memory
    assert np.array_equal(reused.nu, fresh.nu)
    partial = np.flatnonzero(reused.chunks[:, 1] < reused.kappa.shape[-1])
    assert len(partial) == 4                           # one partial chunk per group
    for c in partial:                                  # their idle lanes zeroed
        assert not reused.kappa[c, :, :, reused.chunks[c, 1]:].any()
    release_spare()
