"""The allocators of dmft.memory: zeros of the requested shape and type, every page mapped."""
import numpy as np
import pytest

from dmft.memory import PAGE, committed_zeros, touched_zeros


@pytest.mark.parametrize("shape,dtype", [((3, 5, 2, 256), np.float32), ((0, 4), np.float64),
                                         ((1000, 1000), np.float64)])
def test_touched_zeros_are_zeros(shape, dtype):
    x = touched_zeros(shape, dtype)
    assert x.shape == shape and x.dtype == dtype and x.flags.c_contiguous
    assert x.size == 0 or x.ctypes.data % 64 == 0   # starts on a cache line
    assert not x.any()


def test_touched_zeros_maps_its_pages_at_allocation():
    """Writing every element of a freshly touched array costs no further page fault."""
    resource = pytest.importorskip("resource")
    n = 64 * PAGE
    x = touched_zeros((n,), np.float64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x[:] = 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before <= 2


def test_committed_zeros():
    x = committed_zeros(1000)
    assert x.shape == (1000,) and x.dtype == np.float64 and not x.any()
    x[:] = 2.0                                   # writable
    assert committed_zeros(0).size == 0
